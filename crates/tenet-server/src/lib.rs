//! Tenet's HTTP service (tokio + axum): health and readiness, a live status
//! document, and the mount point for the console and APIs.
//!
//! The server reads shared state; it never writes the store itself.

pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;

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

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.status.ready() { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "starting") }
}

async fn status(State(s): State<AppState>) -> Json<Status> {
    Json(s.status.snapshot())
}

/// Binds `addr` and serves until `shutdown` resolves, finishing requests in
/// flight. Returns the bound address through `bound` (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    bound(listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
