//! How the process meets its surroundings: its log filter, a reader that goes away, and the
//! signals that stop a run.

/// `tessera state list | head -1`: once the reader has gone, printing fails with a broken pipe,
/// which `println!` turns into a panic. The reader has what it wanted, so the process ends there,
/// quietly and with success, as `cat` would (without SIGPIPE's death, which Rust turns off so that
/// a closed socket or child's pipe is an error, not the end of the process).
pub(super) fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Tessera's log filter. A bare level (`warn`, the default, or `debug`) applies to Tessera's own
/// crates only (`tessera*` targets): what libraries log (kube-rs's `kube_client` errors on every
/// refused connection, hyper, the SDKs) is Tessera's to classify and report once, not to repeat
/// on stderr. Full directives (`kube_client=debug,tessera=info`) are taken as written, so a
/// library can still be looked into.
pub(super) fn log_filter(text: &str) -> tracing_subscriber::EnvFilter {
    let text = text.trim();
    let directives = if text.contains('=') || text.contains(',') {
        text.to_string()
    } else {
        let level = if text.is_empty() { "warn" } else { text };
        format!("off,tessera={level}")
    };
    tracing_subscriber::EnvFilter::try_new(directives).unwrap_or_else(|_| "off,tessera=warn".into())
}

/// Ctrl-C, or SIGTERM (what CI cancellations and `timeout` send): both stop a run the same way:
/// steps waiting to retry stop at once, calls in flight get the executor's grace period, and the
/// lock is released.
pub(super) async fn stop_requested() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `filter` lets through of one library line and one of Tessera's.
    fn logged(filter: &str) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "kube_client::client::builder", "failed with error client error (Connect)");
            tracing::warn!(target: "tessera::engine", "recovered an interrupted run");
            tracing::debug!(target: "tessera_kube_client::wire", "discovering v1");
        });
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_level_is_for_tesseras_own_lines_and_directives_are_taken_as_written() {
        let default = logged("warn");
        assert!(!default.contains("kube_client::client::builder"), "{default}");
        assert!(default.contains("recovered an interrupted run"), "{default}");
        let debug = logged("debug");
        assert!(!debug.contains("kube_client::client::builder"), "{debug}");
        assert!(debug.contains("discovering v1"), "the crates named tessera_* are Tessera's: {debug}");
        let library = logged("kube_client=error");
        assert!(library.contains("kube_client::client::builder"), "{library}");
    }
}
