//! From HTTP to the fixture's [`Shared::handle`] and back, on the shared test server
//! (`tessera-http-fixture`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};

use crate::FixtureError;
use crate::api::{Incoming, Shared};

pub use tessera_http_fixture::Running;

pub fn start(shared: Arc<Shared>) -> Result<Running, FixtureError> {
    let err = |e: std::io::Error| FixtureError::Start(e.to_string());
    let (listener, address) = tessera_http_fixture::bind().map_err(err)?;
    let base = format!("http://{address}");
    tessera_http_fixture::serve("aks-fixture", 1, listener, move |req| respond(Arc::clone(&shared), base.clone(), req))
        .map_err(err)
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
