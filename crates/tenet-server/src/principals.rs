//! Administrators act on principals: `POST /api/v1/principals/{id}/compromise`
//! and `…/dismiss` (scope `admin`), each with a `reason`. A verdict is a
//! trust change like any other; what it does is the running system's
//! ([`Verdicts`]), which answers once it is recorded in the audit log with
//! the risk and the notice it brings.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tenet_model::{PrincipalVerdict, Verdict};

use crate::auth::{Caller, Keys};
use crate::error::{ApiError, Where};
use crate::limits::Limits;

/// The longest reason kept.
pub const MAX_REASON: usize = 2048;

/// Why a verdict was not recorded.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// No principal answers to the name (404).
    Unknown(String),
    /// Several do: their canonical references (409).
    Ambiguous(Vec<String>),
    /// The service cannot record it now (503).
    Unavailable(String),
}

/// The running system's side of administrators' verdicts.
pub trait Verdicts: Send + Sync + 'static {
    /// Records `verdict` on the principal `name` resolves to, by `by`.
    fn record(
        &self,
        name: String,
        verdict: Verdict,
        reason: String,
        by: String,
    ) -> Pin<Box<dyn Future<Output = Result<PrincipalVerdict, Refusal>> + Send>>;
}

#[derive(Clone)]
struct Admin {
    verdicts: Arc<dyn Verdicts>,
    limits: Arc<Limits>,
}

pub fn router(verdicts: Arc<dyn Verdicts>, keys: Keys, limits: Arc<Limits>) -> Router {
    Router::new()
        .route("/api/v1/principals/{id}/{verdict}", post(act))
        .with_state(Admin { verdicts, limits })
        .layer(axum::middleware::from_fn_with_state((keys, "admin"), crate::auth::require))
}

/// `{"reason": "…"}`: why, in words the audit log keeps.
fn reason_of(body: &Value) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::bad_request("invalid_request", Where::Body, m).field("reason");
    if let Some(k) = body.as_object().and_then(|o| o.keys().find(|k| *k != "reason")) {
        return Err(ApiError::bad_request(
            "invalid_request",
            Where::Body,
            format!("unknown property {k:?}; send {{\"reason\": \"…\"}}"),
        )
        .field(k.clone()));
    }
    match body.get("reason") {
        Some(Value::String(r)) if r.trim().is_empty() => Err(bad("the reason is empty; say why")),
        Some(Value::String(r)) if r.len() > MAX_REASON => Err(bad("the reason is longer than 2048 bytes")),
        Some(Value::String(r)) => Ok(r.trim().to_string()),
        Some(_) => Err(bad("the reason must be a string")),
        None => Err(bad("a reason is required: {\"reason\": \"…\"}")),
    }
}

/// `POST /api/v1/principals/{id}/compromise` and `…/dismiss`.
async fn act(
    State(s): State<Admin>,
    Path((name, action)): Path<(String, String)>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let verdict = match action.as_str() {
        "compromise" => Verdict::Compromised,
        "dismiss" => Verdict::Dismissed,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                Where::Path,
                format!("no action {other:?} on principals; POST …/compromise or …/dismiss"),
            ));
        }
    };
    let body = crate::access::json_value(&headers, body, &s.limits).await?;
    let reason = reason_of(&body)?;
    let by = crate::auth::name_of(caller.as_deref()).to_string();
    match s.verdicts.record(name, verdict, reason, by).await {
        Ok(v) => Ok((StatusCode::OK, axum::Json(v)).into_response()),
        Err(Refusal::Unknown(name)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_principal",
            Where::Path,
            format!("no principal answers to {name:?}"),
        )),
        Err(Refusal::Ambiguous(candidates)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ambiguous_principal",
            Where::Path,
            format!("more than one principal answers; give one of: {}", candidates.join(", ")),
        )),
        Err(Refusal::Unavailable(why)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", Where::Server, why).retry_after(1))
        }
    }
}
