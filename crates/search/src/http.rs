//! The HTTP face of `/v2/_zot/ext/search`, with gqlgen's status codes:
//! GET (`?query=&variables=&operationName=`) and POST (JSON body); a GET
//! without a query, a parse or a validation error → 422; an unreadable
//! JSON body or variables → 400; a query over 64 KiB (or a body over
//! 256 KiB) → 413; a resolver error → 200 with `errors` and `data: null`;
//! methods other than GET, POST and OPTIONS → 405. Empty argument lists
//! `()` are accepted, as gqlparser accepts them (zli sends `__schema()`).
//!
//! Invariant: no request body is buffered past [`MAX_BODY_BYTES`], and no
//! query text past [`MAX_QUERY_BYTES`] reaches the parser.

use async_graphql::Variables;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde::Deserialize;

use crate::plans::Prepared;
use crate::{Search, Viewer};

/// Longest accepted query text.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Longest accepted POST body (query plus variables).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

const ALLOW: &str = "GET, POST, OPTIONS";

#[derive(Deserialize)]
struct PostBody {
    query: Option<String>,
    variables: Option<serde_json::Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A transport-level refusal in GraphQL's error shape.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }], "data": null });
    json(status, body.to_string().into_bytes())
}

/// A request refused before it reaches the schema.
struct Refusal(StatusCode, String);

impl Refusal {
    fn new(status: StatusCode, message: &str) -> Refusal {
        Refusal(status, message.to_owned())
    }

    fn into_response(self) -> Response {
        refuse(self.0, &self.1)
    }
}

fn request(
    query: Option<String>,
    variables: Option<serde_json::Value>,
    operation_name: Option<String>,
) -> Result<async_graphql::Request, Refusal> {
    let query = match query {
        Some(q) if !q.trim().is_empty() => q,
        _ => {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no operation provided",
            ));
        }
    };
    if query.len() > MAX_QUERY_BYTES {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "query text exceeds 65536 bytes",
        ));
    }
    let variables = match variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "variables could not be decoded",
            ));
        }
    };
    // gqlparser accepts `()`; zli sends `__schema()` (see `lenient`).
    let query = crate::lenient::drop_empty_parens(&query).into_owned();
    let mut req = async_graphql::Request::new(query).variables(variables);
    if let Some(op) = operation_name.filter(|o| !o.is_empty()) {
        req = req.operation_name(op);
    }
    Ok(req)
}

fn from_get(query_string: Option<&str>) -> Result<async_graphql::Request, Refusal> {
    let (mut query, mut variables, mut operation) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query_string.unwrap_or("").as_bytes()) {
        match &*k {
            "query" => query = Some(v.into_owned()),
            "variables" => variables = Some(v.into_owned()),
            "operationName" => operation = Some(v.into_owned()),
            _ => {}
        }
    }
    let variables = match variables.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match serde_json::from_str(&v) {
            Ok(v) => Some(v),
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "variables could not be decoded",
                ));
            }
        },
    };
    request(query, variables, operation)
}

/// A refused body of at most this many bytes is read and dropped before
/// the answer, so that a client that sends its whole body before reading
/// (most do, without `Expect: 100-continue`) sees the 413 rather than a
/// reset connection; past it, or past [`DRAIN_TIME`], the connection is
/// closed with the answer unread.
const DRAIN_BYTES: u64 = 4 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

async fn drain(body: Body, declared: Option<u64>) {
    drain_stream(body.into_data_stream(), declared).await;
}

async fn drain_stream(mut body: axum::body::BodyDataStream, declared: Option<u64>) {
    if declared.is_some_and(|n| n > DRAIN_BYTES) {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.next().await {
            seen += frame.len() as u64;
            if seen > DRAIN_BYTES {
                return;
            }
        }
    })
    .await;
}

async fn from_post(req: Request) -> Result<async_graphql::Request, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body exceeds 262144 bytes",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        drain(req.into_body(), declared).await;
        return Err(too_large());
    }
    let mut body = req.into_body().into_data_stream();
    let mut bytes = Vec::new();
    while let Some(frame) = body.next().await {
        let Ok(frame) = frame else {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "request body not received",
            ));
        };
        if bytes.len() + frame.len() > MAX_BODY_BYTES {
            drain_stream(body, None).await;
            return Err(too_large());
        }
        bytes.extend_from_slice(&frame);
    }
    let body: PostBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                &format!("json request body could not be decoded: {e}"),
            ));
        }
    };
    request(body.query, body.variables, body.operation_name)
}

impl Search {
    /// Answers one request to `/v2/_zot/ext/search` for `viewer`.
    pub async fn graphql(&self, req: Request, viewer: Viewer) -> Response {
        let parsed = match *req.method() {
            Method::GET => from_get(req.uri().query()),
            Method::POST => from_post(req).await,
            Method::OPTIONS => {
                let mut resp = Response::new(Body::empty());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
                return resp;
            }
            _ => {
                let mut resp = refuse(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
                return resp;
            }
        };
        let mut gql = match parsed {
            Ok(r) => r.data(viewer),
            Err(refusal) => return refusal.into_response(),
        };
        let prepared = self.plans.prepare(&mut gql);
        let schema = match prepared {
            Prepared::Reused => &self.fast,
            Prepared::New(_) | Prepared::Full => &self.schema,
        };
        let resp = schema.execute(gql).await;
        // Errors before execution (parse, validation, limits) carry no
        // path and leave no data: gqlgen answers those with 422.
        let before_execution = !resp.errors.is_empty()
            && resp.data == async_graphql::Value::Null
            && resp.errors.iter().all(|e| e.path.is_empty());
        let status = if before_execution {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        if let Prepared::New(shape) = prepared
            && !before_execution
        {
            self.plans.learn(shape);
        }
        match serde_json::to_vec(&resp) {
            Ok(body) => json(status, body),
            Err(e) => {
                tracing::error!(error = %e, "search: response not serializable");
                refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}
