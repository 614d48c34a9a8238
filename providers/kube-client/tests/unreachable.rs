//! An API server that cannot be reached is classified once, at the transport: refused, a name
//! that does not resolve, and a TLS handshake that fails are each `Unreachable`, with one message
//! naming the endpoint, what failed, and the likely cause and fix. Real kube-rs clients against
//! real sockets on 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use base64::Engine as _;
use secrecy::SecretString;
use tessera_kube_client::{KubeClientSettings, KubeProvider};
use tessera_provider_api::{ProviderError, ProviderExt};

fn provider_at(endpoint: &str, ca: Option<String>) -> KubeProvider {
    let settings = KubeClientSettings {
        endpoint: Some(endpoint.to_string()),
        bearer_token: Some(SecretString::from("t".to_string())),
        ..KubeClientSettings::default()
    };
    let mut conn = support::connection();
    if let Some(ca) = ca {
        conn.outputs.insert("certificateAuthority".into(), ca.into());
    }
    KubeProvider::new(support::provider_ref(), Some(conn), settings)
}

async fn read_error(kube: &KubeProvider) -> ProviderError {
    match kube.read("kube.object", &"v1/ConfigMap/monitoring/settings".to_string()).await {
        Err(e) => e,
        Ok(found) => panic!("nothing listens there, yet the read answered {found:?}"),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test]
async fn connection_refused_is_unreachable_and_says_where_and_why() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let err = read_error(&provider_at(&endpoint, None)).await;
    assert!(err.is_unreachable(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&endpoint), "names the endpoint: {msg}");
    assert!(msg.contains("connection refused"), "says what failed: {msg}");
    assert!(msg.contains("Likely cause") && msg.contains("Fix:"), "says why and what to do: {msg}");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_unreachable() {
    // `.invalid` never resolves (RFC 6761).
    let err = read_error(&provider_at("http://api.no-such-cluster.invalid:6443", None)).await;
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("does not resolve"), "{err}");
    assert!(err.to_string().contains("api.no-such-cluster.invalid"), "{err}");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_unreachable() {
    // A server that answers the TLS ClientHello with plain HTTP, as a misrouted proxy does.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    // Any well-formed CA will do: the handshake fails before a certificate is seen.
    let pem = std::fs::read("/etc/ssl/certs/ssl-cert-snakeoil.pem")
        .or_else(|_| std::fs::read("/etc/ssl/certs/ca-certificates.crt"))
        .expect("a PEM certificate on this machine");
    let ca = base64::engine::general_purpose::STANDARD.encode(pem);
    let err = read_error(&provider_at(&format!("https://127.0.0.1:{port}"), Some(ca))).await;
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("TLS handshake failed"), "{err}");
}
