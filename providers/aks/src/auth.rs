//! Bearer tokens for Azure Resource Manager, behind one small trait.
//!
//! [`AzureIdentity`] wraps an `azure_identity` 1.x credential: a client secret or a federated
//! token (workload identity, CI) from the sealed `azure` section, else the Azure CLI's login on a
//! laptop. [`StaticToken`] is a token handed in (tests, and fixtures, which `azure_core` would
//! refuse to send a token to over plain http). A token is a [`SecretString`]: never printed,
//! never stored.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{Secret, TokenCredential};
use secrecy::SecretString;
use tessera_provider_api::ProviderError;

/// The scope of Azure Resource Manager tokens.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    async fn token(&self) -> Result<SecretString, ProviderError>;
}

/// A token given as is.
pub struct StaticToken(pub SecretString);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(..)")
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<SecretString, ProviderError> {
        Ok(self.0.clone())
    }
}

/// An `azure_identity` credential.
#[derive(Debug)]
pub struct AzureIdentity(pub Arc<dyn TokenCredential>);

/// How to sign in, from the sealed credentials or the environment.
pub enum SignIn {
    ClientSecret { tenant: String, client: String, secret: SecretString },
    Federated { tenant: String, client: String, token_file: PathBuf },
    AzureCli,
}

fn refused(what: &str, e: impl fmt::Display) -> ProviderError {
    ProviderError::Fatal(format!("cannot sign in to Azure with {what}: {e}"))
}

impl AzureIdentity {
    pub fn new(how: SignIn) -> Result<Self, ProviderError> {
        use azure_identity::{
            AzureCliCredential, ClientSecretCredential, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
        };
        use secrecy::ExposeSecret;
        let credential: Arc<dyn TokenCredential> = match how {
            SignIn::ClientSecret { tenant, client, secret } => {
                ClientSecretCredential::new(&tenant, client, Secret::new(secret.expose_secret().to_string()), None)
                    .map_err(|e| refused("a client secret", e))?
            }
            SignIn::Federated { tenant, client, token_file } => {
                let options = WorkloadIdentityCredentialOptions {
                    tenant_id: Some(tenant),
                    client_id: Some(client),
                    token_file_path: Some(token_file),
                    ..Default::default()
                };
                WorkloadIdentityCredential::new(Some(options)).map_err(|e| refused("a federated token", e))?
            }
            SignIn::AzureCli => AzureCliCredential::new(None).map_err(|e| refused("the Azure CLI", e))?,
        };
        Ok(Self(credential))
    }
}

#[async_trait]
impl TokenSource for AzureIdentity {
    async fn token(&self) -> Result<SecretString, ProviderError> {
        let token = self
            .0
            .get_token(&[ARM_SCOPE], None)
            .await
            // A failed sign-in is worth retrying only when the identity endpoint was unreachable;
            // azure_identity does not say which, and its own client already retried.
            .map_err(|e| {
                use azure_core::error::ErrorKind;
                let text = format!("cannot get an Azure Resource Manager token: {e}");
                // The identity endpoint unreachable or failing is worth retrying; a refusal is not.
                let transient = match e.kind() {
                    ErrorKind::Connection | ErrorKind::Io => true,
                    ErrorKind::HttpResponse { status, .. } => u16::from(*status) >= 500 || u16::from(*status) == 429,
                    _ => false,
                };
                if transient { ProviderError::unavailable(text) } else { ProviderError::Fatal(text) }
            })?;
        Ok(SecretString::from(token.token.secret().to_string()))
    }
}
