//! Tenet's HTTP service (tokio + axum): health and readiness, a live status
//! document, and the mount point for the console and APIs.
//!
//! The server reads shared state; it never writes the event store itself.
//! What it writes is its own: the decision log (`decisions.db`).
//!
//! It fails closed (an unreadable key file refuses requests), stays
//! bounded (every size, count, queue and wait has a limit: [`Limits`]), and
//! answers every error in one JSON shape ([`error::ApiError`]).

pub mod access;
pub mod auth;
pub mod decision_log;
pub mod edge;
pub mod error;
pub mod intake;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod otlp;
pub mod policy_dir;
pub mod principals;
pub mod serve;
pub mod ssf;
pub mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

pub use limits::Limits;
pub use serve::{Tls, serve, serve_tls};
pub use status::{Status, StatusBoard};

/// Everything the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub status: Arc<StatusBoard>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/status", get(status))
        .with_state(state)
}

/// `router`'s routes plus the decision point's: the AuthZEN API (held to
/// `limits`) and `/metrics`.
pub fn with_decisions(app: Router, pdp: Arc<access::DecisionPoint>, keys: auth::Keys, limits: Arc<Limits>) -> Router {
    let metrics = pdp.metrics.clone();
    let decide =
        access::router(pdp, limits).layer(axum::middleware::from_fn_with_state((keys, "decide"), auth::require));
    app.route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    m.render(),
                )
            }
        }),
    )
    .merge(decide)
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.status.ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        error::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", error::Where::Server, "starting")
            .retry_after(1)
            .into_response()
    }
}

async fn status(State(s): State<AppState>) -> Json<Status> {
    Json(s.status.snapshot())
}

/// How current the live state answers come from is (a cluster node's).
pub trait Freshness: Send + Sync + 'static {
    /// The store revision the live state includes.
    fn revision(&self) -> Option<i64>;
    /// How long the state has not followed the other nodes, once that is
    /// longer than allowed: answers from it are stale.
    fn stale_for(&self) -> Option<std::time::Duration>;
}

/// The header every answer carries on a cluster node: the store revision
/// its live state (decisions, queries) includes.
pub const REVISION_HEADER: &str = "tenet-revision";
/// The header on answers from a state that has not followed the other
/// nodes for longer than allowed: for how many seconds.
pub const STALE_HEADER: &str = "tenet-stale-seconds";

/// `app` with every answer saying which revision it used, and whether it
/// is stale.
pub fn with_freshness(app: Router, freshness: Arc<dyn Freshness>) -> Router {
    app.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let freshness = freshness.clone();
        async move {
            // Read before answering: the answer used this revision or a later one.
            let revision = freshness.revision();
            let stale = freshness.stale_for();
            let mut resp = next.run(req).await;
            let headers = resp.headers_mut();
            if let Some(r) = revision.and_then(|r| axum::http::HeaderValue::from_str(&r.to_string()).ok()) {
                headers.insert(REVISION_HEADER, r);
            }
            if let Some(s) = stale.and_then(|s| axum::http::HeaderValue::from_str(&s.as_secs().to_string()).ok()) {
                headers.insert(STALE_HEADER, s);
            }
            resp
        }
    }))
}
