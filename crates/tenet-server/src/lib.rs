//! Tenet's HTTP service (tokio + axum): health and readiness, a live status
//! document, and the mount point for the console and APIs.
//!
//! The server reads shared state; it never writes the event store itself.
//! What it writes is its own: the decision log (`decisions.db`).
//!
//! Every error it answers has one JSON shape ([`error::ApiError`]); what a
//! request may make it hold or do is bounded ([`Limits`]).

pub mod access;
pub mod auth;
pub mod decision_log;
pub mod edge;
pub mod error;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod policy_dir;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

pub use limits::Limits;
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

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// As [`serve`], over TLS (rustls): requests in flight finish on shutdown
/// (up to 10 s).
pub async fn serve_tls(
    addr: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    tls: &Tls,
    bound: impl FnOnce(SocketAddr) + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("TLS certificate {} / key {}: {e}", tls.cert.display(), tls.key.display()),
        )
    })?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        if let Some(a) = h.listening().await {
            bound(a);
        }
    });
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let app = edge::finish(app, limits);
    axum_server::bind_rustls(addr, config).handle(handle).serve(app.into_make_service()).await
}

/// Binds `addr` and serves `app` within `limits` until `shutdown`
/// resolves, finishing requests in flight. Returns the bound address
/// through `bound` (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    limits: Arc<Limits>,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    bound(listener.local_addr()?);
    axum::serve(listener, edge::finish(app, limits)).with_graceful_shutdown(shutdown).await
}
