//! `scope.auth: kind`: the client certificate comes from `kind get kubeconfig` when a client is
//! built, and is never written into the kubeconfig Tessera builds (nor anywhere else). The `kind`
//! here is a stand-in script: this checks the argument and the parsing, not kind itself.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use tessera_kube_client::KubeClientSettings;
use tessera_kube_client::connect::{client, kubeconfig};
use tessera_kube_fixture::KubeFixture;
use tessera_provider_api::{Address, Attrs, Connection, ProviderRef};

fn stand_in(dir: &Path, body: &str) -> std::path::PathBuf {
    let script = dir.join("kind");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}/args\n{body}\n", dir.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn kind_ref() -> (ProviderRef, Connection) {
    let source = Address::new("local", "kind.cluster", "main");
    let mut p = ProviderRef::connected("kube", source.clone());
    p.scope.insert("auth".into(), "kind".into());
    let mut outputs = Attrs::new();
    outputs.insert("name".into(), "dev-local".into());
    outputs.insert("endpoint".into(), "https://127.0.0.1:6443".into());
    outputs.insert("certificateAuthority".into(), "LS0tLS1CRUdJTi0tLS0t".into());
    (p, Connection { source, id: "dev-local".into(), outputs })
}

#[tokio::test]
async fn the_client_certificate_is_taken_from_kind_at_connect_time_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=kubernetes-admin"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let b64 = |p: &Path| base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap());
    let (cert_b64, key_b64) = (b64(&cert), b64(&key));
    let kubeconfig_yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: kind-dev-local, cluster: {{server: 'https://127.0.0.1:6443'}}}}]\n\
         users: [{{name: kind-dev-local, user: {{client-certificate-data: {cert_b64}, client-key-data: {key_b64}}}}}]\n\
         contexts: [{{name: kind-dev-local, context: {{cluster: kind-dev-local, user: kind-dev-local}}}}]\n\
         current-context: kind-dev-local\n"
    );
    let script = stand_in(dir.path(), &format!("cat <<'EOF'\n{kubeconfig_yaml}EOF"));
    // SAFETY: nextest runs each test in its own process, so no other thread reads the variable.
    unsafe { std::env::set_var("TESSERA_KIND", &script) };
    let fixture = KubeFixture::start().unwrap();
    let settings = KubeClientSettings { endpoint: Some(fixture.url()), ..Default::default() };
    let (provider, conn) = kind_ref();

    let written = kubeconfig(&conn, &provider, &settings).unwrap().to_string();
    assert!(!written.contains(&key_b64) && !written.contains("client-key"), "{written}");
    let kube = client(&conn, &provider, &settings).await.expect("a client with kind's certificate");
    let version = kube.apiserver_version().await.unwrap();
    assert!(!version.git_version.is_empty());
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args.trim(), "get kubeconfig --name dev-local");
}

#[tokio::test]
async fn a_kind_failure_is_a_clear_error_with_kinds_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = stand_in(
        dir.path(),
        "echo 'ERROR: could not locate any control plane nodes for cluster named dev-local' >&2\nexit 1",
    );
    // SAFETY: as above, one test per process.
    unsafe { std::env::set_var("TESSERA_KIND", &script) };
    let (provider, conn) = kind_ref();
    let Err(err) = client(&conn, &provider, &KubeClientSettings::default()).await else {
        panic!("a failing kind must not give a client");
    };
    let err = err.to_string();
    assert!(err.contains("ERROR: could not locate any control plane nodes"), "{err}");
}
