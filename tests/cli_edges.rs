//! Small things a user hits: a closed pipe after a listing command, and `keygen`'s files.

use std::path::Path;
use std::process::{Command, Stdio};

const QUICKSTART: &str = "specs/quickstart.yaml";

fn tessera(dir: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("tessera"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TESSERA_STATE", format!("sqlite://{}", dir.join("state.db").display()))
        .env("TESSERA_SIM_CLOUD", dir.join("sim.db"))
        .env("TESSERA_SIM_TIME_SCALE", "0")
        .env("NO_COLOR", "1");
    c
}

/// Runs `args` with its stdout's reader already gone, as `| head -1` is once it has its line:
/// every write meets a broken pipe. The command must end quietly and successfully.
fn with_closed_stdout(dir: &Path, args: &[&str]) {
    let full = tessera(dir).args(args).output().expect("runs");
    assert!(full.status.success(), "{args:?}: {}", String::from_utf8_lossy(&full.stderr));
    assert!(full.stdout.iter().filter(|b| **b == b'\n').count() >= 2, "{args:?} lists more than one line");

    let mut child = tessera(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
}

#[test]
fn every_listing_command_exits_cleanly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tessera(dir.path()).args(["apply", QUICKSTART, "--auto-approve"]).output().expect("apply");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `audit log` needs a pipeline apply: it is checked in `tests/pipeline.rs`.
    for args in [
        &["state", "list"][..],
        &["state", "history"],
        &["plan", QUICKSTART, "--destroy"],
        &["verify", QUICKSTART],
        &["graph", QUICKSTART],
    ] {
        with_closed_stdout(dir.path(), args);
    }
}

#[test]
fn keygen_refuses_a_pub_name_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keygen = |out: &str, force: bool| {
        let mut c = tessera(dir.path());
        c.current_dir(dir.path()).args(["keygen", "--out", out]);
        if force {
            c.arg("--force");
        }
        c.output().expect("keygen")
    };
    let refused = keygen("alice.pub", false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`.pub`"), "{refused:?}");
    assert!(!dir.path().join("alice.pub").exists(), "nothing was written");

    assert!(keygen("alice.key", false).status.success());
    let secret = std::fs::read_to_string(dir.path().join("alice.key")).expect("the private key");
    let public = std::fs::read_to_string(dir.path().join("alice.pub")).expect("the public key");
    assert_ne!(secret, public);

    let again = keygen("alice.key", false);
    assert!(!again.status.success(), "an existing key is not overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "{again:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("alice.key")).expect("kept"), secret);
    // The public key's file alone existing is refused too: the pair must stay a pair.
    std::fs::remove_file(dir.path().join("alice.key")).expect("remove");
    assert!(!keygen("alice.key", false).status.success());
    assert_eq!(std::fs::read_to_string(dir.path().join("alice.pub")).expect("kept"), public);

    assert!(keygen("alice.key", true).status.success(), "--force replaces both");
    assert_ne!(std::fs::read_to_string(dir.path().join("alice.pub")).expect("new"), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("alice.key")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
