//! The AuthZEN Authorization API 1.0 over HTTP: `/access/v1/evaluation`,
//! `/access/v1/evaluations`, `/access/v1/search/{subject,resource,action}`
//! and `/.well-known/authzen-configuration`.
//!
//! Whole-payload problems (content type, malformed or empty JSON, a missing
//! or mistyped field) are 400 with a message naming the field; inside a
//! valid batch a broken item is `decision: false` for that item alone.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tenet_policy::authzen::{self, Evaluations, RequestError, Search, SearchTarget, Semantic};
use tenet_policy::{Decision, PolicyBundle, TrustSource};

use crate::decision_log::{Asked, DecisionLog, Pending, PolicyHistory};
use crate::metrics::Metrics;

/// What the access API decides with: the active policy set (swapped whole
/// on reload), the live trust signals, the metrics and the decision log.
pub struct DecisionPoint {
    bundle: RwLock<Arc<PolicyBundle>>,
    pub trust: Arc<dyn TrustSource>,
    pub metrics: Arc<Metrics>,
    pub log: Option<DecisionLog>,
    pub history: Option<PolicyHistory>,
}

impl DecisionPoint {
    pub fn new(bundle: PolicyBundle, trust: Arc<dyn TrustSource>, metrics: Arc<Metrics>) -> Self {
        metrics.policy_loaded(bundle.version());
        DecisionPoint { bundle: RwLock::new(Arc::new(bundle)), trust, metrics, log: None, history: None }
    }

    /// Logs every decision to `log` and every activated policy version to `history`.
    pub fn with_log(mut self, log: DecisionLog, history: PolicyHistory) -> Self {
        self.log = Some(log);
        self.history = Some(history);
        self
    }

    /// The set decisions are made with now.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        self.bundle.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `bundle` the active set; returns the one it replaced.
    pub fn replace(&self, bundle: PolicyBundle) -> Arc<PolicyBundle> {
        self.metrics.policy_loaded(bundle.version());
        let mut slot = self.bundle.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, Arc::new(bundle))
    }
}

pub fn router(pdp: Arc<DecisionPoint>) -> Router {
    Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/subject", post(|s, q, h, b| search(s, q, h, b, SearchTarget::Subject)))
        .route("/access/v1/search/resource", post(|s, q, h, b| search(s, q, h, b, SearchTarget::Resource)))
        .route("/access/v1/search/action", post(|s, q, h, b| search(s, q, h, b, SearchTarget::Action)))
        .route("/.well-known/authzen-configuration", get(configuration))
        .with_state(pdp)
}

/// A whole-request error: the status and a message saying what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub StatusCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.1).into_response()
    }
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Self {
        Refusal(StatusCode::BAD_REQUEST, e.to_string())
    }
}

/// The body as JSON, refusing what the transport binding does not allow.
fn json_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("Content-Type must be application/json, not {:?}", if ct.is_empty() { "(none)" } else { ct }),
        ));
    }
    Ok(())
}

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    json_content_type(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal(StatusCode::BAD_REQUEST, "the request body is empty; expected a JSON object".into()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Refusal(StatusCode::BAD_REQUEST, format!("malformed JSON at line {} column {}: {e}", e.line(), e.column()))
    })?;
    if !v.is_object() {
        return Err(Refusal(StatusCode::BAD_REQUEST, "the request body must be a JSON object".into()));
    }
    Ok(v)
}

/// `POST /access/v1/evaluation`'s body as the handler reads it: a
/// well-formed body straight from its bytes, anything else through the JSON
/// tree, which names what is wrong. Pure, so the fuzz harness runs exactly
/// what the server runs.
pub fn parse_evaluation_body(headers: &HeaderMap, body: &[u8]) -> Result<authzen::Evaluation, Refusal> {
    match authzen::parse_evaluation_fast(body) {
        // A well-formed body still has to come as JSON.
        Some(e) => {
            json_content_type(headers)?;
            Ok(e)
        }
        None => Ok(authzen::parse_evaluation(&json_body(headers, body)?)?),
    }
}

/// `POST /access/v1/evaluations`'s body: one evaluation or a batch whose
/// broken items are kept as item errors.
pub fn parse_evaluations_body(headers: &HeaderMap, body: &[u8]) -> Result<Evaluations, Refusal> {
    Ok(authzen::parse_evaluations(&json_body(headers, body)?)?)
}

/// A search request and whether the caller sent a `page` (the response then
/// carries one even on a single page).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchBody {
    pub search: Search,
    pub page_asked: bool,
}

/// `POST /access/v1/search/{subject,resource,action}`'s body.
pub fn parse_search_body(headers: &HeaderMap, body: &[u8], target: SearchTarget) -> Result<SearchBody, Refusal> {
    let v = json_body(headers, body)?;
    let search = authzen::parse_search(&v, target)?;
    Ok(SearchBody { search, page_asked: v.get("page").is_some_and(|p| !p.is_null()) })
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn json_response(v: &Value) -> Response {
    // `{"decision":true}` exactly: compact, no trailing newline.
    ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(v).unwrap_or_default()).into_response()
}

/// The `context` an explained decision carries.
fn explanation(d: &Decision, version: &str) -> Value {
    json!({
        "policies": d.policies,
        "errors": d.errors,
        "signals": d.signals.to_json(),
        "reason": d.reason(),
        "policy_version": version,
    })
}

fn decision_json(d: &Decision, explain: bool, version: &str) -> Value {
    if explain {
        json!({"decision": d.allowed, "context": explanation(d, version)})
    } else {
        json!({"decision": d.allowed})
    }
}

/// The response to one evaluation: without an explanation, one of two constant bodies.
fn decision_response(d: &Decision, explain: bool, version: &str) -> Response {
    if explain {
        return json_response(&decision_json(d, true, version));
    }
    let body: &'static [u8] = if d.allowed { br#"{"decision":true}"# } else { br#"{"decision":false}"# };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl DecisionPoint {
    /// Decides and counts one evaluation.
    fn decide(
        &self,
        bundle: &PolicyBundle,
        e: &authzen::Evaluation,
        endpoint: &'static str,
    ) -> Result<Decision, tenet_policy::DecideError> {
        let started = Instant::now();
        let result = bundle.decide(e, &*self.trust);
        let outcome = match &result {
            Ok(d) if d.allowed => "permit",
            Ok(_) => "deny",
            Err(_) => "error",
        };
        self.metrics.decided(endpoint, outcome, started.elapsed());
        result
    }

    /// Hands a decision to the log (moved, not copied: formatting it is the writer's work).
    fn log(&self, bundle: &PolicyBundle, request: Asked, decision: Decision, request_id: Option<String>) {
        if let Some(log) = &self.log {
            log.record(Pending {
                at: tenet_model::Timestamp::now(),
                request_id,
                request,
                decision,
                policy_version: bundle.version().to_string(),
            });
        }
    }
}

/// The largest request body read (a batch of thousands of evaluations fits).
const BODY_LIMIT: usize = 4 << 20;

/// `?explain=true` (or `explain=1`) in a query string.
fn explain_flag(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| matches!(kv, "explain=true" | "explain=1" | "explain")))
}

/// The single-evaluation endpoint, the hot path: headers read in place, no
/// extractor copies.
async fn evaluation(State(pdp): State<Arc<DecisionPoint>>, req: axum::extract::Request) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("the request body could not be read: {e}")))?;
    let e = parse_evaluation_body(&parts.headers, &body)?;
    let bundle = pdp.bundle();
    let d = pdp.decide(&bundle, &e, "evaluation").map_err(|err| Refusal(StatusCode::BAD_REQUEST, err.to_string()))?;
    let response = decision_response(&d, explain_flag(parts.uri.query()), bundle.version());
    drop(e);
    pdp.log(&bundle, Asked::Body(body), d, request_id(&parts.headers));
    Ok(response)
}

async fn evaluations(
    State(pdp): State<Arc<DecisionPoint>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let explain = explain_flag(query.as_deref());
    let parsed = parse_evaluations_body(&headers, &body)?;
    let bundle = pdp.bundle();
    let rid = request_id(&headers);
    match parsed {
        Evaluations::Single(e) => {
            let d = pdp
                .decide(&bundle, &e, "evaluations")
                .map_err(|err| Refusal(StatusCode::BAD_REQUEST, err.to_string()))?;
            let response = decision_response(&d, explain, bundle.version());
            pdp.log(&bundle, Asked::Parsed(e), d, rid);
            Ok(response)
        }
        Evaluations::Batch(batch) => {
            let mut out = Vec::with_capacity(batch.items.len());
            for (i, item) in batch.items.into_iter().enumerate() {
                let item_id = rid.as_ref().map(|r| format!("{r}#{i}"));
                let (allowed, v) = match item {
                    Ok(e) => match pdp.decide(&bundle, &e, "evaluations") {
                        Ok(d) => {
                            let v = decision_json(&d, explain, bundle.version());
                            let allowed = d.allowed;
                            pdp.log(&bundle, Asked::Parsed(Box::new(e)), d, item_id);
                            (allowed, v)
                        }
                        Err(err) => (false, item_error(&err.to_string())),
                    },
                    Err(err) => {
                        pdp.metrics.decided("evaluations", "error", std::time::Duration::ZERO);
                        (false, item_error(&err.to_string()))
                    }
                };
                out.push(v);
                let stop = match batch.semantic {
                    Semantic::ExecuteAll => false,
                    Semantic::DenyOnFirstDeny => !allowed,
                    Semantic::PermitOnFirstPermit => allowed,
                };
                if stop {
                    break;
                }
            }
            Ok(json_response(&json!({"evaluations": out})))
        }
    }
}

fn item_error(message: &str) -> Value {
    json!({"decision": false, "context": {"error": {"status": 400, "message": message}}})
}

async fn search(
    State(pdp): State<Arc<DecisionPoint>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    target: SearchTarget,
) -> Result<Response, Refusal> {
    let SearchBody { search: s, page_asked } = parse_search_body(&headers, &body, target)?;
    let bundle = pdp.bundle();
    let started = Instant::now();
    let page = bundle.search(&s, &*pdp.trust).map_err(|err| Refusal(StatusCode::BAD_REQUEST, err.to_string()))?;
    pdp.metrics.searched(target.as_str(), started.elapsed());
    let results: Vec<Value> = match target {
        SearchTarget::Action => page.ids.iter().map(|name| json!({"name": name})).collect(),
        _ => page.ids.iter().map(|id| json!({"type": page.kind, "id": id})).collect(),
    };
    let mut out = serde_json::Map::new();
    if page_asked || !page.next_token.is_empty() {
        out.insert("page".into(), json!({"next_token": page.next_token, "count": results.len(), "total": page.total}));
    }
    if explain_flag(query.as_deref()) {
        out.insert("context".into(), json!({"policy_version": bundle.version(), "candidates_permitted": page.total}));
    }
    out.insert("results".into(), Value::Array(results));
    Ok(json_response(&Value::Object(out)))
}

/// PDP metadata, with endpoint URLs on the base the caller reached us at.
async fn configuration(headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let base = format!("{scheme}://{host}");
    json_response(&json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_subject_endpoint": format!("{base}/access/v1/search/subject"),
        "search_resource_endpoint": format!("{base}/access/v1/search/resource"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
    }))
}

/// `POST /admin/policies/reload`: load the policy directory now. 200 with
/// the version in force; 422 with Cedar's diagnostics when the change is
/// refused (the last good set keeps serving).
pub fn admin_router(pdp: Arc<DecisionPoint>, dir: std::path::PathBuf, keys: crate::auth::Keys) -> Router {
    Router::new()
        .route(
            "/admin/policies/reload",
            post(move |caller: Option<axum::Extension<crate::auth::Caller>>| {
                let (pdp, dir) = (pdp.clone(), dir.clone());
                async move {
                    // The key's name, or `admin` on an open (loopback, keyless) server.
                    let author = caller.map_or_else(|| "admin".to_string(), |c| c.0.0.clone());
                    match crate::policy_dir::reload(&pdp, &dir, &author) {
                        Ok(crate::policy_dir::Reload::Unchanged) => {
                            json_response(&json!({"status": "unchanged", "version": pdp.bundle().version()}))
                        }
                        Ok(crate::policy_dir::Reload::Activated { version, previous }) => {
                            json_response(&json!({"status": "activated", "version": version, "previous": previous}))
                        }
                        Err(e) => {
                            let body =
                                json!({"status": "refused", "version": pdp.bundle().version(), "error": e.to_string()});
                            (StatusCode::UNPROCESSABLE_ENTITY, json_response(&body)).into_response()
                        }
                    }
                }
            }),
        )
        .layer(axum::middleware::from_fn_with_state((keys, "admin"), crate::auth::require))
}

/// Echoes the caller's `X-Request-ID` on every response.
pub async fn echo_request_id(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = req.headers().get("x-request-id").cloned();
    let mut resp = next.run(req).await;
    if let Some(id) = id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}
