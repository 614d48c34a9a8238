//! Credentials are references, never values (see [`crate::spec::secrets`]): a URL with user-info,
//! a credential field of a log output, a credential in chart values and a plain `remoteWriteAuth`
//! value are each refused at their line with the way to reference a Secret.

use tessera_provider_api::{RemoteWriteAuth, SecretKeyRef};

use super::super::diagnostic::Problem;
use super::super::raw::{Located, RawRemoteWriteAuth, S};
use super::super::secrets;
use super::Validator;

impl Validator<'_> {
    /// A URL may not carry user-info: credentials go in a Secret. `reference` says how, for
    /// this field.
    pub(super) fn url_without_credentials(&mut self, u: &S<String>, what: &str, reference: &str) -> bool {
        if !secrets::is_credential_value(u.get()) {
            return true;
        }
        // A credential beyond user-info (in the query) cannot be cut out in place: only the
        // scheme and host are shown.
        let shown = if secrets::is_credential_beyond_userinfo(u.get()) {
            let (scheme, rest) = u.get().split_once("://").unwrap_or(("", u.get()));
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{}/…", secrets::redact_userinfo(host))
        } else {
            secrets::redact_userinfo(u.get())
        };
        self.push(
            Problem::at(u.loc(), format!("{what} `{shown}` carries a credential (a user name, password or token)"))
                .help(format!("a spec never holds a secret: {reference}")),
        );
        false
    }

    /// A log output's credential fields must be `valueFrom.secretKeyRef`s; no URL of it carries
    /// user-info.
    pub(super) fn log_output_credentials(
        &mut self,
        at: serde_saphyr::Location,
        plugin: &str,
        settings: &serde_json::Value,
    ) {
        for found in secrets::in_log_output(settings, &format!("output.{plugin}")) {
            self.push(Problem::at(at, found.message).help(found.help));
        }
    }

    /// Chart values hold no credential, each refused at its own key.
    pub(super) fn chart_value_credentials(&mut self, raw: &S<Located>, values: &serde_json::Value) {
        for found in secrets::in_chart_values(values, "values") {
            let keys: Vec<&str> = found.path.split('.').skip(1).collect();
            self.push(Problem::at(raw.loc_of(&keys), found.message).help(found.help));
        }
    }

    /// `remoteWriteAuth`: Secret references only, one kind of authentication.
    pub(super) fn remote_write_auth(&mut self, raw: &RawRemoteWriteAuth) -> Option<RemoteWriteAuth> {
        match (&raw.basic_auth, &raw.bearer_token) {
            (Some(basic), None) => Some(RemoteWriteAuth::Basic {
                username: self.secret_ref(&basic.username, "remoteWriteAuth.basicAuth.username")?,
                password: self.secret_ref(&basic.password, "remoteWriteAuth.basicAuth.password")?,
            }),
            (None, Some(token)) => {
                Some(RemoteWriteAuth::Bearer { token: self.secret_ref(token, "remoteWriteAuth.bearerToken")? })
            }
            _ => {
                self.push(
                    Problem::at(self.fleet_loc, "remoteWriteAuth takes exactly one of `basicAuth` and `bearerToken`")
                        .help(
                            "e.g. `remoteWriteAuth: { bearerToken: { secretRef: { name: remote-write, key: token } } }`",
                        ),
                );
                None
            }
        }
    }

    /// `{ secretRef: { name, key } }`: anything else (above all a plain value) is refused here.
    /// The name must be a Secret's (a DNS subdomain) and the key a Secret key's
    /// (`[-._a-zA-Z0-9]`), as the API server requires: anything else could never be read.
    pub(super) fn secret_ref(&mut self, raw: &S<serde_json::Value>, what: &str) -> Option<SecretKeyRef> {
        let r = &raw.get()["secretRef"];
        let subdomain = |s: &&str| s.len() <= 253 && s.split('.').all(super::labels::is_dns_label);
        let secret_key = |s: &&str| {
            s.len() <= 253
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && *s != "."
                && *s != ".."
        };
        let name = r["name"].as_str().filter(|s| !s.is_empty()).filter(subdomain);
        let key = r["key"].as_str().filter(|s| !s.is_empty()).filter(secret_key);
        let only = raw.get().as_object().is_some_and(|m| m.len() == 1) && r.as_object().is_some_and(|m| m.len() == 2);
        match (name, key, only) {
            (Some(name), Some(key), true) => Some(SecretKeyRef { name: name.into(), key: key.into() }),
            _ => {
                self.push(
                    Problem::at(raw.loc(), format!("`{what}` must reference a Secret's key, not hold a value"))
                        .help("a spec never holds a secret: put it in a Secret in the monitoring namespace and write `{ secretRef: { name: SECRET, key: KEY } }` (a Secret's name: lowercase letters, digits, `-` and `.`; a key: letters, digits, `-`, `_` and `.`)"),
                );
                None
            }
        }
    }
}
