//! `/metrics`, `/healthz` and `/readyz` over HTTP/1 (hyper).
//!
//! `/healthz` answers 200 while the loop runs and 503 once it has stopped; `/readyz` answers 200
//! once a tick has planned completely (in sync, drift or pending), and 503 before that and while
//! the last tick erred: a Service then sends scrapes only to a loop that can see its clouds.
//!
//! The listener is on for weeks and reachable by whatever can reach the port, so nothing a client
//! does may starve it: a request's headers must arrive within [`HEADER_TIMEOUT`], a connection
//! lives at most [`CONNECTION_LIFETIME`], at most [`MAX_CONNECTIONS`] are served at once (one
//! more is accepted and closed at once, so the backlog never fills), and a failing `accept()`
//! (out of file descriptors) backs off instead of spinning. Only GET and HEAD are answered; any
//! other method gets 405 with `Allow`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

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

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, requests included (a scraper reconnects).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves until `stop` turns true.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut pause = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                pause = Duration::ZERO;
                stream
            }
            Err(e) => {
                // EMFILE and the like do not clear by retrying at once: back off (10 ms to 1 s).
                pause = (pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!("metrics listener: accept failed: {e}; again in {pause:?}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        // Over the limit, the connection is closed at once rather than left in the backlog.
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| answer(req, metrics.clone(), health.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Err(e)) => tracing::debug!("metrics connection: {e}"),
                Err(_) => tracing::debug!("metrics connection: closed after {CONNECTION_LIFETIME:?}"),
                Ok(Ok(())) => {}
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
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn start() -> (SocketAddr, watch::Sender<bool>) {
        let listener = bind("127.0.0.1:0".parse().expect("an address")).await.expect("bind");
        let addr = listener.local_addr().expect("its address");
        let health = Arc::new(Health::default());
        health.alive.store(true, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        tokio::spawn(serve(listener, Arc::new(Metrics::default()), health, rx));
        (addr, tx)
    }

    /// One request on a fresh connection; the status line.
    async fn request(addr: SocketAddr, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn healthz_answers_while_150_idle_connections_are_open() {
        let (addr, _stop) = start().await;
        let mut idle = Vec::new();
        for _ in 0..150 {
            idle.push(TcpStream::connect(addr).await.expect("an idle connection"));
        }
        // A generous ceiling: the answer must not wait for the idle ones to time out.
        let answer = tokio::time::timeout(Duration::from_secs(3), request(addr, "GET", "/healthz")).await;
        let answer = answer.expect("/healthz answered while 150 connections sat idle");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        drop(idle);
    }

    #[tokio::test]
    async fn a_connection_that_never_sends_its_headers_is_closed() {
        let (addr, _stop) = start().await;
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.expect("a partial request");
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(HEADER_TIMEOUT * 3, s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "the server closed the connection");
    }

    #[tokio::test]
    async fn only_get_and_head_are_answered() {
        let (addr, _stop) = start().await;
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let answer = request(addr, method, "/healthz").await;
            assert!(answer.starts_with("HTTP/1.1 405"), "{method}: {answer}");
            assert!(answer.to_ascii_lowercase().contains("allow: get, head"), "{answer}");
        }
        assert!(request(addr, "HEAD", "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(request(addr, "GET", "/metrics").await.starts_with("HTTP/1.1 200"));
    }
}
