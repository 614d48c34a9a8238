//! `/metrics`, `/healthz` and `/readyz` over HTTP/1 (hyper).
//!
//! `/healthz` answers 200 while the loop runs and 503 once it has stopped; `/readyz` answers 200
//! once a tick has planned completely (in sync, drift or pending), and 503 before that and while
//! the last tick erred: a Service then sends scrapes only to a loop that can see its clouds.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::{CONTENT_TYPE, Metrics};

#[derive(Debug, Default)]
pub struct Health {
    pub alive: AtomicBool,
    pub ready: AtomicBool,
}

/// Binds `addr` (an error here is the command's error: a port in use is named at start).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `stop` turns true.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, metrics.clone(), health.clone()));
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!("metrics connection: {e}");
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = status;
        r
    };
    let flag = |ok: bool, what: &str| {
        if ok { text(StatusCode::OK, "ok\n") } else { text(StatusCode::SERVICE_UNAVAILABLE, what) }
    };
    Ok(match req.uri().path() {
        "/metrics" => {
            let mut r = text(StatusCode::OK, &metrics.encode());
            if let Ok(v) = hyper::header::HeaderValue::from_str(CONTENT_TYPE) {
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            r
        }
        "/healthz" => flag(health.alive.load(Ordering::Relaxed), "the reconcile loop has stopped\n"),
        "/readyz" => flag(health.ready.load(Ordering::Relaxed), "no tick has planned completely yet\n"),
        _ => text(StatusCode::NOT_FOUND, "not found: /metrics, /healthz, /readyz\n"),
    })
}
