//! The HTTP server: plain HTTP/1.1 on 127.0.0.1 and a random port, on a thread and runtime of
//! its own, so a test can use the fixture from any runtime, or none, and drop it anywhere.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::FixtureError;
use crate::api::{Incoming, Shared};

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

pub fn start(shared: Arc<Shared>) -> Result<Running, FixtureError> {
    let err = |e: std::io::Error| FixtureError::Start(e.to_string());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let address = listener.local_addr().map_err(err)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(err)?;
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("aks-fixture-{}", address.port()))
        .spawn(move || runtime.block_on(serve(listener, shared, address, rx)))
        .map_err(err)?;
    Ok(Running { address, shutdown: Some(tx), thread: Some(thread) })
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    address: SocketAddr,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else { return };
    let base = format!("http://{address}");
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (shared, base) = (Arc::clone(&shared), base.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| respond(Arc::clone(&shared), base.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

async fn respond(shared: Arc<Shared>, base: String, req: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_string);
    let (authorization, if_match, if_none_match) =
        (header("authorization"), header("if-match"), header("if-none-match"));
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let out = shared.handle(Incoming { method, path, query, authorization, if_match, if_none_match, body, base });
    let bytes = out.body.as_ref().map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(out.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if out.body.is_some() {
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    for (name, value) in out.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}
