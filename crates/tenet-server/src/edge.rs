//! What every request meets before any route: its `X-Request-ID` echoed on
//! whatever is answered, a declared `Content-Length` over the limit refused
//! before a byte of body is read (so `Expect: 100-continue` never gets its
//! `100 Continue`), and every error answered in the one JSON shape.
//!
//! Reading a body (size before and after gzip, total time) is
//! [`read_body`]'s, the one way a handler takes its body.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{self, ApiError, Where};
use crate::limits::Limits;

/// `app` as served: the edge layer around every route, and the fallbacks
/// for an unknown path or a wrong method answered in the error shape.
pub fn finish(app: Router, limits: Arc<Limits>) -> Router {
    app.method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn_with_state(limits, edge))
}

async fn edge(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let request_id = req.headers().get("x-request-id").cloned();
    let mut resp = match declared_length(req.uri().path(), req.headers(), &limits) {
        Err(e) => e.into_response(),
        Ok(()) => error::reshape(next.run(req).await).await,
    };
    if let Some(id) = request_id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

/// Refuses a body declared larger than the limit, from its headers alone.
fn declared_length(path: &str, headers: &HeaderMap, limits: &Limits) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else { return Ok(()) };
    // hyper has already refused a Content-Length that is not a number.
    let declared = value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    let (max, key) = if is_intake_path(path) {
        (limits.max_ingest_bytes, "max_ingest_bytes")
    } else {
        (limits.max_body_bytes, "max_body_bytes")
    };
    if declared > max as u64 {
        return Err(ApiError::too_large(
            Where::Header("content-length"),
            format!("the body is declared as {declared} bytes; at most {max} are read (tenet_limits.{key})"),
        ));
    }
    Ok(())
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
}

/// The content codings a body may come in.
pub const ENCODINGS: &[&str] = &["gzip", "identity"];

fn coding(headers: &HeaderMap) -> Result<Coding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Coding::Identity) };
    let text = value.to_str().unwrap_or("").trim();
    if text.eq_ignore_ascii_case("identity") || text.is_empty() {
        Ok(Coding::Identity)
    } else if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Coding::Gzip)
    } else {
        // Stacked codings (`gzip, gzip`) are refused too: one layer is undone, no more.
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            Where::Header("content-encoding"),
            format!("Content-Encoding {text:?} is not accepted; send gzip or no encoding"),
        )
        .header(header::ACCEPT_ENCODING, axum::http::HeaderValue::from_static("gzip, identity")))
    }
}

/// A body's bounds: bytes as sent and once gzip is undone, with the
/// `tenet_limits` keys that set them (named in refusals).
#[derive(Clone, Copy)]
struct Cap {
    sent: usize,
    sent_key: &'static str,
    inflated: usize,
    inflated_key: &'static str,
}

/// The request body, whole and decoded: at most `max_body_bytes` received
/// within `body_timeout_ms`, and when gzip, at most
/// `max_decompressed_bytes` and `max_decompression_ratio` times its size
/// once decompressed. Anything beyond is refused without reading further.
pub async fn read_body(headers: &HeaderMap, body: Body, limits: &Limits) -> Result<Bytes, ApiError> {
    let cap = Cap {
        sent: limits.max_body_bytes,
        sent_key: "max_body_bytes",
        inflated: limits.max_decompressed_bytes,
        inflated_key: "max_decompressed_bytes",
    };
    read_capped(headers, body, limits, cap).await
}

/// A telemetry or inventory body: as [`read_body`], bounded by
/// `max_ingest_bytes` as sent and once decompressed.
pub async fn read_telemetry_body(headers: &HeaderMap, body: Body, limits: &Limits) -> Result<Bytes, ApiError> {
    let cap = Cap {
        sent: limits.max_ingest_bytes,
        sent_key: "max_ingest_bytes",
        inflated: limits.max_ingest_bytes,
        inflated_key: "max_ingest_bytes",
    };
    read_capped(headers, body, limits, cap).await
}

/// Whether `path` takes telemetry or inventory (bounded by `max_ingest_bytes`).
pub fn is_intake_path(path: &str) -> bool {
    path == "/v1/traces"
        || path.starts_with("/api/v1/events")
        || path.starts_with("/api/v1/hooks/")
        || path.starts_with("/api/v1/inventory")
}

async fn read_capped(headers: &HeaderMap, body: Body, limits: &Limits, cap: Cap) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let coding = coding(headers)?;
    let limited = http_body_util::Limited::new(body, cap.sent);
    let sent = match tokio::time::timeout(limits.body_timeout(), limited.collect()).await {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                Where::Body,
                format!("the body did not arrive within {} ms (tenet_limits.body_timeout_ms)", limits.body_timeout_ms),
            )
            .closing());
        }
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(ApiError::too_large(
                Where::Body,
                format!("the body is larger than {} bytes (tenet_limits.{})", cap.sent, cap.sent_key),
            ));
        }
        Ok(Err(e)) => {
            return Err(ApiError::bad_request(
                "unreadable_body",
                Where::Body,
                format!("the body could not be read: {e}"),
            )
            .closing());
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    match coding {
        Coding::Identity => Ok(sent),
        Coding::Gzip => {
            let inflated = cap.inflated.min(sent.len().saturating_mul(limits.max_decompression_ratio));
            let ratio = limits.max_decompression_ratio;
            // Inflating megabytes is CPU work: off the request threads.
            tokio::task::spawn_blocking(move || gunzip(&sent, inflated, (cap.inflated, cap.inflated_key), ratio))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", Where::Server, e.to_string())
                })?
        }
    }
}

fn gunzip(sent: &[u8], cap: usize, (max, max_key): (usize, &str), ratio: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(cap.min(sent.len().saturating_mul(4)));
    let mut decoder = flate2::read::MultiGzDecoder::new(sent).take(cap as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request("invalid_gzip", Where::Body, format!("the body is not valid gzip: {e}")))?;
    if out.len() > cap {
        return Err(ApiError::too_large(
            Where::Body,
            format!(
                "the body inflates beyond {cap} bytes: at most {max} (tenet_limits.{max_key}) and {ratio} times its {} compressed bytes (tenet_limits.max_decompression_ratio)",
                sent.len()
            ),
        ));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_undone_within_both_the_size_and_the_ratio_bound() {
        let json = br#"{"subject": {"type": "user", "id": "alice"}}"#;
        assert_eq!(&gunzip(&gz(json), 1 << 20, (1 << 20, "max_decompressed_bytes"), 100).unwrap()[..], json);
        let bomb = gz(&vec![b' '; 1 << 20]);
        let e = gunzip(&bomb, bomb.len() * 100, (8 << 20, "max_decompressed_bytes"), 100).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        assert_eq!(gunzip(b"not gzip", 1000, (1000, "max_decompressed_bytes"), 100).unwrap_err().code, "invalid_gzip");
    }
}
