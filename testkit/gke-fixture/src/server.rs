//! From HTTP to the fixture's routes and back, on the shared test server
//! (`tessera-http-fixture`).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use serde_json::{Value, json};

use crate::api::{self, RecordedRequest, State};
use crate::schema::Discovery;

pub struct Shared {
    pub discovery: Discovery,
    pub state: Mutex<State>,
}

impl Shared {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub use tessera_http_fixture::Running;

pub fn start(shared: Arc<Shared>) -> std::io::Result<Running> {
    let (listener, _) = tessera_http_fixture::bind()?;
    tessera_http_fixture::serve("gke-fixture", 2, listener, move |req| respond(Arc::clone(&shared), req))
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    response
}

async fn respond(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let bytes = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let (status, body) = answer(&shared, &method, &path, &bytes);
    Ok(reply(status, &body))
}

fn answer(shared: &Shared, method: &str, path: &str, bytes: &[u8]) -> (u16, Value) {
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                return (
                    400,
                    json!({ "error": { "code": 400, "message": format!("invalid JSON: {e}"), "status": "INVALID_ARGUMENT" } }),
                );
            }
        }
    };
    let mut state = shared.state();
    let routed = shared.discovery.route(method, path).map(|(m, vars)| (m.clone(), vars));
    let record = |state: &mut State, id: Option<&str>, status: u16, body: &Value| {
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            method_id: id.map(str::to_string),
            status,
            body: body.clone(),
        });
    };
    let Some((m, vars)) = routed else {
        record(&mut state, None, 404, &body);
        return (
            404,
            json!({ "error": { "code": 404, "message": format!("no method for {method} {path}"), "status": "NOT_FOUND" } }),
        );
    };
    if let Some(i) = state.faults.iter().position(|f| {
        f.count > 0 && path.contains(&f.path) && f.method.as_deref().is_none_or(|fm| fm.eq_ignore_ascii_case(method))
    }) {
        state.faults[i].count -= 1;
        record(&mut state, Some(&m.id), 503, &body);
        return (
            503,
            json!({ "error": { "code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE" } }),
        );
    }
    let named = match (&m.request, body.is_null()) {
        (Some(schema), _) => match api::check(&shared.discovery, &mut state, &m.id, schema, "request", &body) {
            Ok(named) => named,
            Err(errors) => {
                record(&mut state, Some(&m.id), 400, &body);
                let message = format!("Invalid JSON payload received ({schema}): {}", errors.join("; "));
                return (400, json!({ "error": { "code": 400, "message": message, "status": "INVALID_ARGUMENT" } }));
            }
        },
        (None, _) => body.clone(),
    };
    let out = state.handle(&m.id, &vars, &named);
    if out.status == 200 {
        if let Some(schema) = &m.response {
            let _ = api::check(&shared.discovery, &mut state, &m.id, schema, "response", &out.body);
        }
    }
    record(&mut state, Some(&m.id), out.status, &named);
    (out.status, out.body)
}
