//! OTLP/HTTP answers, in the request's encoding (protobuf or JSON) with the
//! OpenTelemetry project's own message types: `ExportTraceServiceResponse`
//! with `partial_success` on success, `google.rpc.Status` on failure.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;

use crate::error::ApiError;

const PROTOBUF: &str = "application/x-protobuf";

/// 200 with `partial_success` when some spans could not be used (the
/// specification leaves it unset when all were).
pub fn response(protobuf: bool, rejected_spans: i64, message: &str) -> Response {
    let partial_success = (rejected_spans > 0 || !message.is_empty())
        .then(|| ExportTracePartialSuccess { rejected_spans, error_message: message.to_string() });
    let msg = ExportTraceServiceResponse { partial_success };
    if protobuf {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF))], msg.encode_to_vec()).into_response()
    } else {
        let body = serde_json::to_vec(&msg).unwrap_or_else(|_| b"{}".to_vec());
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}

/// `google.rpc.Status`: code (field 1), message (field 2); details unused.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A refusal in OTLP's error form: the status code and its headers
/// (`Retry-After` on 429/503) as decided, the body a `Status` message in the
/// request's encoding.
pub fn error(protobuf: bool, e: ApiError) -> Response {
    if !protobuf {
        return e.into_response();
    }
    let status = e.status;
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => 3, // INVALID_ARGUMENT
        StatusCode::UNAUTHORIZED => 16,                               // UNAUTHENTICATED
        StatusCode::FORBIDDEN => 7,                                   // PERMISSION_DENIED
        StatusCode::TOO_MANY_REQUESTS => 8,                           // RESOURCE_EXHAUSTED
        _ => 14,                                                      // UNAVAILABLE
    };
    let body = RpcStatus { code, message: e.message.clone() }.encode_to_vec();
    let mut resp = e.into_response();
    *resp.body_mut() = axum::body::Body::from(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}
