//! The one shape every HTTP error takes, on every endpoint:
//!
//! ```json
//! {"error": {"status": 413, "code": "payload_too_large",
//!            "message": "…", "where": "body", "field": null}}
//! ```
//!
//! `where` names the part of the request at fault (`body`,
//! `header:content-length`, `path`, `method`, `server`…), `field` the JSON
//! path inside the body when there is one (`subject.id`,
//! `evaluations[3].resource`). Handlers return [`ApiError`]; what axum or
//! the router would answer by itself (an unknown path, a wrong method) goes
//! through [`fallback`], [`method_not_allowed`] and, for anything else,
//! [`reshape`], so no error leaves the server in another form.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The part of a request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    Body,
    /// A request header, lower-case.
    Header(&'static str),
    /// The URL path.
    Path,
    Method,
    /// The server's own state (overloaded, keys unreadable, not ready).
    Server,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Where::Body => f.write_str("body"),
            Where::Header(h) => write!(f, "header:{h}"),
            Where::Path => f.write_str("path"),
            Where::Method => f.write_str("method"),
            Where::Server => f.write_str("server"),
        }
    }
}

/// An HTTP error: status, a stable machine-readable code, a sentence for
/// people, where in the request it is, and any headers the status calls for
/// (`WWW-Authenticate`, `Retry-After`, `Allow`, `Connection: close`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message} ({location})")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub location: Where,
    /// The JSON path in the body, when the error is about one field.
    pub field: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, location: Where, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), location, field: None, headers: Vec::new() }
    }

    pub fn bad_request(code: &'static str, location: Where, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, location, message)
    }

    /// Too large (bytes or items); the connection is closed after the
    /// answer, since the rest of an over-limit body is never read.
    pub fn too_large(location: Where, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", location, message).closing()
    }

    /// The field (JSON path) the error is about.
    pub fn field(mut self, path: impl Into<String>) -> Self {
        self.field = Some(path.into());
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// `Retry-After: secs`.
    pub fn retry_after(self, secs: u64) -> Self {
        self.header(header::RETRY_AFTER, HeaderValue::from(secs))
    }

    /// `Connection: close`: the request was not (wholly) read, so the
    /// connection cannot carry another.
    pub fn closing(self) -> Self {
        self.header(header::CONNECTION, HeaderValue::from_static("close"))
    }

    /// The JSON body, as bytes.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            status: u16,
            code: &'a str,
            message: &'a str,
            #[serde(rename = "where")]
            location: String,
            field: Option<&'a str>,
        }
        // Serialising strings and numbers cannot fail.
        serde_json::to_vec(&Envelope {
            error: Inner {
                status: self.status.as_u16(),
                code: self.code,
                message: &self.message,
                location: self.location.to_string(),
                field: self.field.as_deref(),
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], self.body())
                .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// The stable code for a status an error was produced with elsewhere.
pub fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "overloaded",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

/// The router's fallback: no such path.
pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", Where::Path, format!("no endpoint at {method} {}", uri.path()))
}

/// A path that exists, asked with a method it does not take (axum keeps
/// the `Allow` header it computed).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        Where::Method,
        format!("{} does not take {method}", uri.path()),
    )
}

/// The most of an error body [`reshape`] reads to reuse as its message.
const MESSAGE_BYTES: usize = 4096;

/// Middleware net: any error response that is not already JSON (a
/// rejection axum produced by itself) is rewritten into the one shape,
/// keeping its status, its headers and its text as the message.
pub async fn reshape(resp: Response) -> Response {
    let status = resp.status();
    // JSON is already the shape; protobuf is OTLP's own error form
    // (`google.rpc.Status`), which an OTLP client expects instead.
    let shaped = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("application/x-protobuf"));
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MESSAGE_BYTES).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    let location = match status {
        StatusCode::NOT_FOUND => Where::Path,
        StatusCode::METHOD_NOT_ALLOWED => Where::Method,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => Where::Body,
        s if s.is_server_error() => Where::Server,
        _ => Where::Body,
    };
    let err = ApiError::new(status, code_of(status), location, message);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(err.body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_error_has_the_same_five_fields() {
        let e = ApiError::too_large(Where::Body, "too big").field("evaluations");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"status": 413, "code": "payload_too_large", "message": "too big", "where": "body", "field": "evaluations"}})
        );
        let plain = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
        let shaped = reshape(plain).await;
        assert_eq!(shaped.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(shaped.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
        assert_eq!(v["error"]["where"], "method");
        assert_eq!(v["error"]["field"], serde_json::Value::Null);
    }
}
