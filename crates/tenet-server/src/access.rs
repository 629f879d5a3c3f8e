//! The AuthZEN Authorization API 1.0 over HTTP: `/access/v1/evaluation`,
//! `/access/v1/evaluations`, `/access/v1/search/{subject,resource,action}`
//! and `/.well-known/authzen-configuration`.
//!
//! Whole-payload problems (content type, malformed or empty JSON, a
//! repeated key, a missing or mistyped field) are 400 in the one error
//! shape ([`crate::error`]) naming the field; a request beyond a limit is
//! 413; inside a valid batch a broken item is `decision: false` for that
//! item alone.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tenet_policy::authzen::{self, Evaluations, RequestError, Search, SearchTarget, Semantic};
use tenet_policy::{Decision, PolicyBundle, TrustSource};

use crate::decision_log::{Asked, DecisionLog, Pending, PolicyHistory, Reservation};
use crate::edge::read_body;
use crate::error::{ApiError, Where};
use crate::json::{self, JsonError};
use crate::limits::{Limits, RECORD_OVERHEAD};
use crate::metrics::Metrics;

/// What the access API decides with: the active policy set (swapped whole
/// on reload), the live trust signals, the metrics and the decision log.
pub struct DecisionPoint {
    bundle: RwLock<Arc<PolicyBundle>>,
    pub trust: Arc<dyn TrustSource>,
    pub metrics: Arc<Metrics>,
    pub log: Option<DecisionLog>,
    pub history: Option<PolicyHistory>,
    /// Where decisions made within a session go (the running system keeps
    /// live sessions to re-evaluate them when trust changes).
    sessions: Option<crossbeam_channel::Sender<SessionUse>>,
}

/// A decision made for a request whose context names its session
/// (`context.session_id`): what the enforcement point holds and may have
/// to take back.
#[derive(Debug, Clone)]
pub struct SessionUse {
    pub session_id: String,
    pub evaluation: authzen::Evaluation,
    pub allowed: bool,
    pub at: tenet_model::Timestamp,
}

/// The longest session id kept; a longer one is not a session Tenet tracks.
pub const MAX_SESSION_ID: usize = 256;

impl DecisionPoint {
    pub fn new(bundle: PolicyBundle, trust: Arc<dyn TrustSource>, metrics: Arc<Metrics>) -> Self {
        metrics.policy_loaded(bundle.version());
        DecisionPoint {
            bundle: RwLock::new(Arc::new(bundle)),
            trust,
            metrics,
            log: None,
            history: None,
            sessions: None,
        }
    }

    /// Publishes every decision made within a session on `sessions`
    /// (bounded: when the consumer falls behind, uses are dropped, not waited for).
    pub fn with_sessions(mut self, sessions: crossbeam_channel::Sender<SessionUse>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Decides `e` again with the policies and trust signals of now, as a
    /// session's earlier request would be decided today. Not logged: no
    /// enforcement point asked.
    pub fn reevaluate(&self, e: &authzen::Evaluation) -> Result<Decision, tenet_policy::DecideError> {
        self.bundle().decide(e, &*self.trust)
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

/// What the access API's handlers read: the decision point and the limits.
#[derive(Clone)]
pub struct Api {
    pub pdp: Arc<DecisionPoint>,
    pub limits: Arc<Limits>,
}

pub fn router(pdp: Arc<DecisionPoint>, limits: Arc<Limits>) -> Router {
    Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/subject", post(|s, r| search(s, r, SearchTarget::Subject)))
        .route("/access/v1/search/resource", post(|s, r| search(s, r, SearchTarget::Resource)))
        .route("/access/v1/search/action", post(|s, r| search(s, r, SearchTarget::Action)))
        .route("/.well-known/authzen-configuration", get(configuration))
        .with_state(Api { pdp, limits })
}

fn request_error(e: RequestError) -> ApiError {
    ApiError::bad_request("invalid_request", Where::Body, e.to_string()).field(e.path)
}

fn decide_error(e: tenet_policy::DecideError) -> ApiError {
    ApiError::bad_request("invalid_request", Where::Body, e.to_string())
}

/// The body as JSON, refusing what the transport binding does not allow.
fn json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(
            "invalid_content_type",
            Where::Header("content-type"),
            format!("Content-Type must be application/json, not {:?}", if ct.is_empty() { "(none)" } else { ct }),
        ));
    }
    Ok(())
}

/// The one way a JSON body is taken: content type, size, time and
/// encoding ([`read_body`]), then [`check_body`]. Nothing reads a body that
/// has not passed.
pub async fn json_bytes(headers: &HeaderMap, body: axum::body::Body, limits: &Limits) -> Result<Bytes, ApiError> {
    json_content_type(headers)?;
    let bytes = read_body(headers, body, limits).await?;
    check_body(headers, &bytes, limits)?;
    Ok(bytes)
}

/// A JSON body taken as [`json_bytes`] says, parsed.
pub async fn json_value(headers: &HeaderMap, body: axum::body::Body, limits: &Limits) -> Result<Value, ApiError> {
    let bytes = json_bytes(headers, body, limits).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("malformed_json", Where::Body, e.to_string()))
}

/// A received body's checks, pure: JSON content type, not empty,
/// well-formed with unique keys and bounded depth ([`json::check`]).
pub fn check_body(headers: &HeaderMap, bytes: &[u8], limits: &Limits) -> Result<(), ApiError> {
    json_content_type(headers)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "empty_body",
            Where::Body,
            "the request body is empty; expected a JSON object",
        ));
    }
    json::check(bytes, limits.max_json_depth).map_err(|e| {
        let code = match e {
            JsonError::Syntax { .. } => "malformed_json",
            JsonError::DuplicateKey { .. } => "duplicate_key",
            JsonError::TooDeep { .. } => "too_deep",
        };
        let path = e.path().to_string();
        let err = ApiError::bad_request(code, Where::Body, e.to_string());
        if path.is_empty() { err } else { err.field(path) }
    })
}

/// `POST /access/v1/evaluation`'s received body, checked and parsed as the
/// handler does: pure, so the fuzz harness runs exactly this.
pub fn parse_evaluation_body(
    headers: &HeaderMap,
    bytes: &[u8],
    limits: &Limits,
) -> Result<authzen::Evaluation, ApiError> {
    check_body(headers, bytes, limits)?;
    match authzen::parse_evaluation_fast(bytes) {
        Some(e) => Ok(e),
        None => authzen::parse_evaluation(&json_object(bytes)?).map_err(request_error),
    }
}

/// `POST /access/v1/evaluations`'s received body: one evaluation or a
/// batch whose broken items are kept as item errors.
pub fn parse_evaluations_body(headers: &HeaderMap, bytes: &[u8], limits: &Limits) -> Result<Evaluations, ApiError> {
    check_body(headers, bytes, limits)?;
    authzen::parse_evaluations(&json_object(bytes)?).map_err(request_error)
}

/// `POST /access/v1/search/{subject,resource,action}`'s received body.
pub fn parse_search_body(
    headers: &HeaderMap,
    bytes: &[u8],
    target: SearchTarget,
    limits: &Limits,
) -> Result<Search, ApiError> {
    check_body(headers, bytes, limits)?;
    authzen::parse_search(&json_object(bytes)?, target).map_err(request_error)
}

/// A checked body as a JSON object.
fn json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_json", Where::Body, format!("malformed JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("not_an_object", Where::Body, "the request body must be a JSON object"));
    }
    Ok(v)
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
        if let (Some(tx), Ok(d)) = (&self.sessions, &result)
            && let Some(Value::String(session)) = e.context.get("session_id")
            && !session.is_empty()
            && session.len() <= MAX_SESSION_ID
        {
            let _ = tx.try_send(SessionUse {
                session_id: session.clone(),
                evaluation: e.clone(),
                allowed: d.allowed,
                at: tenet_model::Timestamp::now(),
            });
        }
        result
    }

    /// Room in the decision log for `records` decisions about `bytes` of
    /// requests, taken before deciding: without it, nothing is decided (429).
    pub fn reserve(&self, records: usize, bytes: usize) -> Result<Reservation, ApiError> {
        let Some(log) = &self.log else { return Ok(Reservation::unlimited()) };
        let bytes = bytes.saturating_add(records.saturating_mul(RECORD_OVERHEAD));
        log.reserve(records, bytes).map_err(|full| {
            self.metrics.shed();
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                Where::Server,
                format!("{full}; nothing was decided, retry shortly"),
            )
            .retry_after(1)
        })
    }

    /// Hands a decision to the log (moved, not copied: formatting it is the writer's work).
    fn log(
        &self,
        slot: &mut Reservation,
        bundle: &PolicyBundle,
        request: Asked,
        decision: Decision,
        request_id: Option<String>,
    ) {
        if let Some(log) = &self.log {
            log.record(
                slot,
                Pending {
                    at: tenet_model::Timestamp::now(),
                    request_id,
                    request,
                    decision,
                    policy_version: bundle.version().to_string(),
                },
            );
        }
    }
}

/// `?explain=true` (or `explain=1`) in a query string.
fn explain_flag(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| matches!(kv, "explain=true" | "explain=1" | "explain")))
}

/// The single-evaluation endpoint, the hot path: headers read in place, no
/// extractor copies, a well-formed body read straight into its evaluation.
async fn evaluation(State(api): State<Api>, req: axum::extract::Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    json_content_type(&parts.headers)?;
    let body = read_body(&parts.headers, body, &api.limits).await?;
    let e = parse_evaluation_body(&parts.headers, &body, &api.limits)?;
    let pdp = &api.pdp;
    let mut slot = pdp.reserve(1, body.len())?;
    let bundle = pdp.bundle();
    let d = pdp.decide(&bundle, &e, "evaluation").map_err(decide_error)?;
    let response = decision_response(&d, explain_flag(parts.uri.query()), bundle.version());
    drop(e);
    // Copied to its own size: the received body is a slice of the
    // connection's read buffer, and queued it would hold all of it.
    let body = Bytes::copy_from_slice(&body);
    pdp.log(&mut slot, &bundle, Asked::Body(body), d, request_id(&parts.headers));
    Ok(response)
}

/// About how many bytes of JSON `v` is (what it costs to hold and log).
fn json_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| json_size(x) + 1).sum::<usize>(),
        Value::Object(o) => 2 + o.iter().map(|(k, x)| k.len() + 4 + json_size(x)).sum::<usize>(),
    }
}

/// The JSON a batch amounts to once each item takes the top-level
/// defaults it lacks (each item is decided, and logged, whole).
fn batch_size(body: &Value, items: &[Value]) -> usize {
    let defaults: Vec<(&str, usize)> = ["subject", "action", "resource", "context"]
        .into_iter()
        .filter_map(|k| body.get(k).filter(|v| !v.is_null()).map(|v| (k, json_size(v))))
        .collect();
    items
        .iter()
        .map(|item| {
            let inherited: usize =
                defaults.iter().filter(|(k, _)| item.get(*k).is_none_or(Value::is_null)).map(|(_, size)| size).sum();
            json_size(item) + inherited
        })
        .sum()
}

async fn evaluations(State(api): State<Api>, req: axum::extract::Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let explain = explain_flag(parts.uri.query());
    let bytes = json_bytes(&parts.headers, body, &api.limits).await?;
    let v = json_object(&bytes)?;
    let limits = &api.limits;
    // Bounded before the batch is built: building copies the defaults into every item.
    let expanded = match v.get("evaluations").and_then(Value::as_array) {
        Some(items) if items.len() > limits.max_batch_items => {
            return Err(ApiError::too_large(
                Where::Body,
                format!(
                    "{} evaluations in one request; at most {} (tenet_limits.max_batch_items)",
                    items.len(),
                    limits.max_batch_items
                ),
            )
            .field("evaluations"));
        }
        Some(items) => batch_size(&v, items),
        None => bytes.len(),
    };
    if expanded > limits.max_decompressed_bytes {
        return Err(ApiError::too_large(
            Where::Body,
            format!(
                "the batch amounts to about {expanded} bytes once each item takes its defaults; at most {} (tenet_limits.max_decompressed_bytes)",
                limits.max_decompressed_bytes
            ),
        )
        .field("evaluations"));
    }
    let pdp = &api.pdp;
    let rid = request_id(&parts.headers);
    match authzen::parse_evaluations(&v).map_err(request_error)? {
        Evaluations::Single(e) => {
            let mut slot = pdp.reserve(1, expanded)?;
            let bundle = pdp.bundle();
            let d = pdp.decide(&bundle, &e, "evaluations").map_err(decide_error)?;
            let response = decision_response(&d, explain, bundle.version());
            pdp.log(&mut slot, &bundle, Asked::Parsed(e), d, rid);
            Ok(response)
        }
        Evaluations::Batch(batch) => {
            // Room for every item before the first is decided; what a
            // short-circuited batch leaves unused goes back with `slot`.
            let mut slot = pdp.reserve(batch.items.len(), expanded)?;
            let bundle = pdp.bundle();
            let mut out = Vec::with_capacity(batch.items.len());
            for (i, item) in batch.items.into_iter().enumerate() {
                let item_id = rid.as_ref().map(|r| format!("{r}#{i}"));
                let (allowed, v) = match item {
                    Ok(e) => match pdp.decide(&bundle, &e, "evaluations") {
                        Ok(d) => {
                            let v = decision_json(&d, explain, bundle.version());
                            let allowed = d.allowed;
                            pdp.log(&mut slot, &bundle, Asked::Parsed(Box::new(e)), d, item_id);
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
    State(api): State<Api>,
    req: axum::extract::Request,
    target: SearchTarget,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = json_bytes(&parts.headers, body, &api.limits).await?;
    let v = json_object(&bytes)?;
    let mut s = authzen::parse_search(&v, target).map_err(request_error)?;
    // A page is never larger than the limit: a larger or absent `limit` is
    // served in pages of the limit, with a `next_token` (the spec lets the
    // PDP return fewer results than asked).
    let page_max = api.limits.max_search_page;
    s.page.limit = Some(s.page.limit.map_or(page_max, |l| l.min(page_max)));
    let pdp = &api.pdp;
    let bundle = pdp.bundle();
    let started = Instant::now();
    let page = bundle.search(&s, &*pdp.trust).map_err(decide_error)?;
    pdp.metrics.searched(target.as_str(), started.elapsed());
    let results: Vec<Value> = match target {
        SearchTarget::Action => page.ids.iter().map(|name| json!({"name": name})).collect(),
        _ => page.ids.iter().map(|id| json!({"type": page.kind, "id": id})).collect(),
    };
    let mut out = serde_json::Map::new();
    if v.get("page").is_some_and(|p| !p.is_null()) || !page.next_token.is_empty() {
        out.insert("page".into(), json!({"next_token": page.next_token, "count": results.len(), "total": page.total}));
    }
    if explain_flag(parts.uri.query()) {
        out.insert("context".into(), json!({"policy_version": bundle.version(), "candidates_permitted": page.total}));
    }
    out.insert("results".into(), Value::Array(results));
    Ok(json_response(&Value::Object(out)))
}

/// PDP metadata, with endpoint URLs on the base the caller reached us at,
/// and the limits requests are held to (`tenet_limits`, the serve
/// configuration's `limits` section as in force).
async fn configuration(State(api): State<Api>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let base = format!("{scheme}://{host}");
    let mut limits = serde_json::to_value(&*api.limits).unwrap_or_else(|_| json!({}));
    limits["content_encodings"] = json!(crate::edge::ENCODINGS);
    json_response(&json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_subject_endpoint": format!("{base}/access/v1/search/subject"),
        "search_resource_endpoint": format!("{base}/access/v1/search/resource"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
        "tenet_limits": limits,
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
