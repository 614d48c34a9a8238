//! Test-only: the HTTP server under every API fixture (Kubernetes, ARM, GKE).
//!
//! ## Overview
//!
//! A fixture answers requests with a function of its own; this crate runs it: plain HTTP/1.1 on
//! 127.0.0.1 and a random port, on a dedicated thread with its own tokio runtime, so that a test
//! can use the fixture from synchronous code or from any runtime, and dropping the fixture (which
//! stops the thread) never drops a runtime inside another one.
//!
//! [`bind`] takes the port first, for fixtures whose answers name their own address (status
//! URLs); [`serve`] then runs the answering function until the [`Running`] handle is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A fixture's server, serving until dropped.
pub struct Running {
    pub address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on 127.0.0.1 and a random port.
pub fn bind() -> std::io::Result<(std::net::TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Answers every request on `listener` with `respond`, on a thread named `name-PORT` with
/// `workers` runtime threads, until the handle is dropped.
pub fn serve<F, Fut, B>(
    name: &str,
    workers: usize,
    listener: std::net::TcpListener,
    respond: F,
) -> std::io::Result<Running>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers.max(1)).enable_all().build()?;
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("{name}-{}", address.port()))
        .spawn(move || runtime.block_on(accept(listener, respond, rx)))?;
    Ok(Running { address, shutdown: Some(tx), thread: Some(thread) })
}

async fn accept<F, Fut, B>(listener: std::net::TcpListener, respond: F, mut shutdown: oneshot::Receiver<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Ok(listener) = TcpListener::from_std(listener) else { return };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let respond = respond.clone();
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(respond)).await;
                });
            }
        }
    }
}
