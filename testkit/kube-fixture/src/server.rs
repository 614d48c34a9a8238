//! The HTTP server: plain HTTP/1.1 on 127.0.0.1 and a random port, on a runtime of its own.
//!
//! ## Overview
//! The server runs on a dedicated thread with its own tokio runtime, so that a test can use the
//! fixture from synchronous code or from any async runtime, and dropping the fixture (which
//! stops the thread) never drops a runtime inside another one. Watches are answered with a
//! body that streams their lines as they come.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming as Body};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::api::{self, Incoming, Shared};
use crate::error::FixtureError;

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
pub fn bind() -> Result<(std::net::TcpListener, SocketAddr), FixtureError> {
    let start_err = |e: std::io::Error| FixtureError::Start(e.to_string());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(start_err)?;
    listener.set_nonblocking(true).map_err(start_err)?;
    let address = listener.local_addr().map_err(start_err)?;
    Ok((listener, address))
}

/// Serves `shared` on `listener` until the returned handle is dropped.
pub fn start(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<Running, FixtureError> {
    let address = listener.local_addr().map_err(|e| FixtureError::Start(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| FixtureError::Start(e.to_string()))?;
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("kube-fixture-{}", address.port()))
        .spawn(move || runtime.block_on(serve(listener, shared, rx)))
        .map_err(|e| FixtureError::Start(e.to_string()))?;
    Ok(Running { address, shutdown: Some(tx), thread: Some(thread) })
}

async fn serve(std_listener: std::net::TcpListener, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let Ok(listener) = TcpListener::from_std(std_listener) else { return };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| respond(Arc::clone(&shared), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

/// A response body: whole, or the lines of a watch as they come.
enum Reply {
    Whole(Full<Bytes>),
    Lines(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Reply::Whole(full) => Pin::new(full).poll_frame(cx),
            Reply::Lines(rx) => rx.poll_recv(cx).map(|line| line.map(|l| Ok(Frame::data(l)))),
        }
    }
}

async fn respond(shared: Arc<Shared>, req: Request<Body>) -> Result<Response<Reply>, Infallible> {
    let header = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_string);
    let content_type = header(CONTENT_TYPE);
    let user_agent = header(USER_AGENT);
    let authorization = header(AUTHORIZATION);
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let out =
        api::handle(shared, Incoming { method, path, query, content_type, user_agent, authorization, body }).await;
    let reply = match out.stream {
        Some(lines) => Reply::Lines(lines),
        None => Reply::Whole(Full::new(Bytes::from(serde_json::to_vec(&out.body).unwrap_or_default()))),
    };
    let mut response = Response::new(reply);
    *response.status_mut() =
        hyper::StatusCode::from_u16(out.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = out.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    Ok(response)
}
