//! From HTTP to the fixture's API and back, on the shared test server (`tessera-http-fixture`:
//! 127.0.0.1, a random port, a thread and runtime of its own). Watches are answered with a body
//! that streams their lines as they come.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming as Body};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::{Request, Response};
use tokio::sync::mpsc;

use crate::api::{self, Incoming, Shared};
use crate::error::FixtureError;

pub use tessera_http_fixture::Running;

/// A listener on 127.0.0.1 and a random port.
pub fn bind() -> Result<(std::net::TcpListener, SocketAddr), FixtureError> {
    tessera_http_fixture::bind().map_err(|e| FixtureError::Start(e.to_string()))
}

/// Serves `shared` on `listener` until the returned handle is dropped.
pub fn start(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<Running, FixtureError> {
    tessera_http_fixture::serve("kube-fixture", 2, listener, move |req| respond(Arc::clone(&shared), req))
        .map_err(|e| FixtureError::Start(e.to_string()))
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
