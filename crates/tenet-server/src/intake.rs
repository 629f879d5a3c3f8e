//! Telemetry and inventory received over HTTP, and the stream of trust
//! changes sent back out. The edge reads, bounds and authenticates; what a
//! body means is the running system's ([`Intake`]), so this crate never
//! depends on the pipeline. A 2xx answers only what the intake has
//! committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tenet_model::TrustNotice;
use tokio::sync::{broadcast, watch};

use crate::auth::{Caller, Keys};
use crate::edge::read_telemetry_body;
use crate::error::{ApiError, Where};
use crate::limits::Limits;

/// What a body carries, as the route and its parameters say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Telemetry records in any framing `tenet ingest` reads; `format`
    /// forces one format by name, else it is detected.
    Events { format: Option<String> },
    /// An OTLP/HTTP trace export, protobuf or JSON.
    OtlpTraces { protobuf: bool },
    /// An Okta Event Hook delivery.
    OktaHook,
    /// An inventory document (IAM, SCIM, RBAC, agent registry) collected at
    /// `at` (RFC 3339), or now.
    Inventory { at: Option<String> },
}

/// One body handed to the running system.
#[derive(Debug, Clone)]
pub struct Submission {
    pub payload: Payload,
    pub body: Bytes,
    /// Who sent it and how, for provenance and rejections: the API key's
    /// name (or `anonymous` on an open loopback server) and the route.
    pub origin: String,
}

/// What the intake answers once a body's events are committed.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// The summary `tenet ingest --json` prints (or `tenet import --json`).
    Summary(serde_json::Value),
    /// An OTLP export: spans the intake could not use, and why.
    Otlp { rejected_spans: i64, message: String },
}

/// Why the intake did not take a body.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The body cannot be used at all (400): nothing was stored.
    Invalid { code: &'static str, message: String },
    /// The queue is full: try again after `retry_after` seconds (429).
    Busy { retry_after: u64 },
    /// The intake cannot store now (503), e.g. the store failed or the
    /// service is stopping.
    Unavailable { message: String, retry_after: u64 },
}

pub type Answer = Result<Accepted, Refusal>;

/// The running system's side of intake.
pub trait Intake: Send + Sync + 'static {
    /// Takes a body; the answer comes once its events are committed (or
    /// refused). Must refuse at once, never wait, when its queue is full.
    fn submit(&self, submission: Submission) -> Pin<Box<dyn Future<Output = Answer> + Send>>;
}

#[derive(Clone)]
struct Edge {
    intake: Arc<dyn Intake>,
    limits: Arc<Limits>,
}

/// The intake routes, each needing a key with the `ingest` scope (an open
/// loopback server excepted), and `GET /api/v1/changes` (scope `read`).
/// `closing` turns true when the service begins to stop: open change
/// streams end then, so they never hold shutdown up.
pub fn router(
    intake: Arc<dyn Intake>,
    changes: broadcast::Sender<Arc<TrustNotice>>,
    closing: watch::Receiver<bool>,
    keys: Keys,
    limits: Arc<Limits>,
) -> Router {
    let ingest = Router::new()
        .route("/api/v1/events", post(events))
        .route("/v1/traces", post(traces))
        .route("/api/v1/hooks/okta", post(okta_hook).get(okta_verification))
        .route("/api/v1/inventory", post(inventory))
        .with_state(Edge { intake, limits })
        .layer(axum::middleware::from_fn_with_state((keys.clone(), "ingest"), crate::auth::require));
    let read = Router::new()
        .route("/api/v1/changes", get(stream_changes))
        .with_state(Stream { changes, closing })
        .layer(axum::middleware::from_fn_with_state((keys, "read"), crate::auth::require));
    ingest.merge(read)
}

fn origin(caller: Option<&Caller>, route: &str) -> String {
    format!("{} via {route}", crate::auth::name_of(caller))
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid { code, message } => ApiError::bad_request(code, Where::Body, message),
        Refusal::Busy { retry_after } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            Where::Server,
            "the ingest queue is full (tenet_limits.ingest_queue); retry later",
        )
        .retry_after(retry_after),
        Refusal::Unavailable { message, retry_after } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", Where::Server, message)
                .retry_after(retry_after)
        }
    }
}

async fn submit(
    edge: &Edge,
    payload: Payload,
    headers: &HeaderMap,
    body: Body,
    origin: String,
) -> Result<Accepted, ApiError> {
    let body = read_telemetry_body(headers, body, &edge.limits).await?;
    edge.intake.submit(Submission { payload, body, origin }).await.map_err(refused)
}

fn summary(a: Accepted) -> Response {
    match a {
        Accepted::Summary(v) => Json(v).into_response(),
        Accepted::Otlp { rejected_spans, message } => {
            Json(serde_json::json!({"rejected_spans": rejected_spans, "message": message})).into_response()
        }
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    format: Option<String>,
}

async fn events(
    State(edge): State<Edge>,
    Query(q): Query<EventsQuery>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = origin(caller.as_deref(), "POST /api/v1/events");
    match submit(&edge, Payload::Events { format: q.format }, &headers, body, origin).await {
        Ok(a) => summary(a),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct InventoryQuery {
    at: Option<String>,
}

async fn inventory(
    State(edge): State<Edge>,
    Query(q): Query<InventoryQuery>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = origin(caller.as_deref(), "POST /api/v1/inventory");
    match submit(&edge, Payload::Inventory { at: q.at }, &headers, body, origin).await {
        Ok(a) => summary(a),
        Err(e) => e.into_response(),
    }
}

/// Okta's one-time verification: the challenge header echoed as `verification`.
async fn okta_verification(headers: HeaderMap) -> Response {
    match headers.get("x-okta-verification-challenge").and_then(|v| v.to_str().ok()) {
        Some(challenge) => Json(serde_json::json!({ "verification": challenge })).into_response(),
        None => ApiError::bad_request(
            "missing_challenge",
            Where::Header("x-okta-verification-challenge"),
            "an Okta Event Hook verification request carries x-okta-verification-challenge",
        )
        .into_response(),
    }
}

async fn okta_hook(
    State(edge): State<Edge>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = origin(caller.as_deref(), "POST /api/v1/hooks/okta");
    match submit(&edge, Payload::OktaHook, &headers, body, origin).await {
        // Okta needs only a 200 with any body: the summary serves operators.
        Ok(a) => summary(a),
        Err(e) => e.into_response(),
    }
}

/// OTLP/HTTP: the content type chooses protobuf or JSON, and the answer
/// comes in the request's encoding, as the specification asks.
async fn traces(
    State(edge): State<Edge>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let protobuf = match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => true,
        "application/json" => false,
        _ => {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_content_type",
                Where::Header("content-type"),
                format!(
                    "OTLP/HTTP takes application/x-protobuf or application/json, not {:?}",
                    if ct.is_empty() { "(none)" } else { ct }
                ),
            )
            .into_response();
        }
    };
    let origin = origin(caller.as_deref(), "POST /v1/traces");
    match submit(&edge, Payload::OtlpTraces { protobuf }, &headers, body, origin).await {
        Ok(Accepted::Otlp { rejected_spans, message }) => crate::otlp::response(protobuf, rejected_spans, &message),
        Ok(other) => summary(other),
        Err(e) => crate::otlp::error(protobuf, e),
    }
}

/// The change stream's state: the notices, and whether the service stops.
#[derive(Clone)]
struct Stream {
    changes: broadcast::Sender<Arc<TrustNotice>>,
    closing: watch::Receiver<bool>,
}

/// `GET /api/v1/changes`: every trust change from now on, as Server-Sent
/// Events (`event: trust_change`, the notice as JSON data, its sequence
/// number as the id). A reader too slow for the stream is told how many it
/// missed (`event: lagged`) and carries on. The stream ends when the
/// service stops.
async fn stream_changes(State(s): State<Stream>) -> Response {
    let rx = s.changes.subscribe();
    let stream = futures_util::stream::unfold((rx, s.closing), |(mut rx, mut closing)| async move {
        if *closing.borrow() {
            return None;
        }
        let received = tokio::select! {
            r = rx.recv() => r,
            _ = closing.changed() => return None,
        };
        let event = match received {
            Ok(notice) => {
                let data = serde_json::to_string(&*notice).unwrap_or_default();
                SseEvent::default().event("trust_change").id(notice.seq.to_string()).data(data)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                SseEvent::default().event("lagged").data(format!("{{\"missed\":{n}}}"))
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), (rx, closing)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
