//! The Shared Signals Framework 1.0 endpoints: the transmitter's metadata
//! (`/.well-known/ssf-configuration`), its JWKS, stream management
//! (`/ssf/stream`, `/ssf/status`, `/ssf/subjects:add|remove`,
//! `/ssf/verify`) and each stream's RFC 8936 poll URL (`/ssf/poll/{id}`).
//!
//! The edge reads, bounds, authenticates (scope `ssf`) and types each
//! request; what it does is the running system's ([`Transmitter`]), so
//! this crate never owns streams, keys or delivery. Management answers
//! carry `Cache-Control: no-store`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tenet_ssf::{Invalid, PollRequest, StatusRequest, SubjectRequest, VerifyRequest};

use crate::auth::{Caller, Keys};
use crate::error::{ApiError, Where};
use crate::limits::Limits;

/// Why the transmitter refused a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 400: the property at fault and why.
    Invalid(Invalid),
    /// 404: no such stream for this receiver.
    NoStream(String),
    /// 409: the receiver has a stream already.
    Exists(String),
    /// 429: verification asked for sooner than the stream's minimum interval.
    TooSoon { retry_after: u64 },
    /// 503: the transmitter cannot act now (its store failed).
    Unavailable(String),
}

impl From<Invalid> for Fault {
    fn from(e: Invalid) -> Self {
        Fault::Invalid(e)
    }
}

impl From<Fault> for ApiError {
    fn from(f: Fault) -> ApiError {
        match f {
            Fault::Invalid(e) => {
                let field = e.field.trim_start_matches('/').replace('/', ".");
                let err = ApiError::bad_request("invalid_request", Where::Body, e.to_string());
                if field.is_empty() { err } else { err.field(field) }
            }
            Fault::NoStream(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "stream_not_found",
                Where::Body,
                format!("no stream {id:?} for this receiver"),
            ),
            Fault::Exists(owner) => ApiError::new(
                StatusCode::CONFLICT,
                "stream_exists",
                Where::Server,
                format!("receiver {owner:?} has a stream already: one stream per receiver (read it with GET /ssf/stream)"),
            ),
            Fault::TooSoon { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_soon",
                Where::Server,
                format!("verification requested sooner than the stream's min_verification_interval; retry in {retry_after} s"),
            )
            .retry_after(retry_after),
            Fault::Unavailable(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", Where::Server, why).retry_after(1)
            }
        }
    }
}

pub type Answer<T> = Result<T, Fault>;

/// The running system's side of Shared Signals. `receiver` is the calling
/// API key's name (`anonymous` on an open loopback server): it owns the
/// streams it creates, and another receiver's stream id is unknown to it.
pub trait Transmitter: Send + Sync + 'static {
    /// The transmitter configuration metadata (SSF 1.0 §7.1).
    fn metadata(&self) -> Value;
    /// The keys SETs are signed with (both during a rotation).
    fn jwks(&self) -> Value;
    fn create(&self, receiver: &str, body: &Value) -> Answer<Value>;
    /// One stream, or (no id) every stream of the receiver as an array.
    fn read(&self, receiver: &str, stream_id: Option<&str>) -> Answer<Value>;
    /// PATCH (`replace` false) or PUT (`replace` true).
    fn update(&self, receiver: &str, body: &Value, replace: bool) -> Answer<Value>;
    fn delete(&self, receiver: &str, stream_id: &str) -> Answer<()>;
    fn status(&self, receiver: &str, stream_id: &str) -> Answer<Value>;
    fn set_status(&self, receiver: &str, request: StatusRequest) -> Answer<Value>;
    fn add_subject(&self, receiver: &str, request: SubjectRequest) -> Answer<()>;
    fn remove_subject(&self, receiver: &str, request: SubjectRequest) -> Answer<()>;
    fn verify(&self, receiver: &str, request: VerifyRequest) -> Answer<()>;
    /// RFC 8936: acknowledges, then answers the SETs pending (waiting for
    /// some, up to the transmitter's long-poll limit, unless
    /// `returnImmediately`).
    fn poll(
        self: Arc<Self>,
        receiver: &str,
        stream_id: &str,
        request: PollRequest,
    ) -> Pin<Box<dyn Future<Output = Answer<Value>> + Send>>;
}

#[derive(Clone)]
struct Ssf {
    transmitter: Arc<dyn Transmitter>,
    limits: Arc<Limits>,
}

/// The SSF routes: metadata and JWKS open to all (receivers fetch them
/// before they have a key), everything else needing a key with scope `ssf`.
pub fn router(transmitter: Arc<dyn Transmitter>, keys: Keys, limits: Arc<Limits>) -> Router {
    let state = Ssf { transmitter, limits };
    let open = Router::new()
        .route("/.well-known/ssf-configuration", get(metadata))
        .route("/ssf/jwks.json", get(jwks))
        .with_state(state.clone());
    let managed = Router::new()
        .route("/ssf/stream", post(create).get(read).patch(patch).put(put).delete(delete))
        .route("/ssf/status", get(status).post(set_status))
        .route("/ssf/subjects:add", post(add_subject))
        .route("/ssf/subjects:remove", post(remove_subject))
        .route("/ssf/verify", post(verify))
        .route("/ssf/poll/{stream_id}", post(poll))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state((keys, "ssf"), crate::auth::require));
    open.merge(managed)
}

fn no_store(status: StatusCode, body: Option<Value>) -> Response {
    let mut resp = match body {
        Some(v) => (status, axum::Json(v)).into_response(),
        None => status.into_response(),
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// What every managed route does once its request is typed: runs `call`
/// for the calling receiver off the async workers (the transmitter reads
/// and writes its store) and answers with `status`, never cached.
async fn answer(
    s: &Ssf,
    caller: Option<axum::Extension<Caller>>,
    status: StatusCode,
    call: impl FnOnce(&dyn Transmitter, &str) -> Answer<Option<Value>> + Send + 'static,
) -> Result<Response, ApiError> {
    let who = crate::auth::name_of(caller.as_deref()).to_string();
    let t = s.transmitter.clone();
    let body = match tokio::task::spawn_blocking(move || call(&*t, &who)).await {
        Ok(r) => r?,
        Err(e) => return Err(Fault::Unavailable(format!("the transmitter failed: {e}")).into()),
    };
    Ok(no_store(status, body))
}

async fn metadata(State(s): State<Ssf>) -> Response {
    let mut resp = axum::Json(s.transmitter.metadata()).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    resp
}

async fn jwks(State(s): State<Ssf>) -> Response {
    let mut resp = axum::Json(s.transmitter.jwks()).into_response();
    // Short: receivers must see a rotation's new key soon.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    resp
}

/// `stream_id` from the query: where GET, DELETE and status name a stream.
fn query_id(raw: &Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut ids = form_urlencoded::parse(raw.as_bytes()).filter(|(k, _)| k == "stream_id").map(|(_, v)| v.into_owned());
    let id = ids.next();
    if ids.next().is_some() {
        return Err(
            ApiError::bad_request("invalid_request", Where::Path, "stream_id given more than once").field("stream_id")
        );
    }
    Ok(id)
}

fn required_id(q: &Option<String>) -> Result<String, ApiError> {
    query_id(q)?.ok_or_else(|| {
        ApiError::bad_request("invalid_request", Where::Path, "the stream_id query parameter is required")
            .field("stream_id")
    })
}

/// The request body, as JSON that passed the edge's checks.
async fn json_body(s: &Ssf, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    crate::access::json_value(headers, body, &s.limits).await
}

/// The calling receiver: its key, when it presented one.
type Receiver = Option<axum::Extension<Caller>>;

async fn create(State(s): State<Ssf>, caller: Receiver, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = json_body(&s, &headers, body).await?;
    answer(&s, caller, StatusCode::CREATED, move |t, who| t.create(who, &body).map(Some)).await
}

async fn read(State(s): State<Ssf>, caller: Receiver, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let id = query_id(&q)?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.read(who, id.as_deref()).map(Some)).await
}

async fn patch(State(s): State<Ssf>, caller: Receiver, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = json_body(&s, &headers, body).await?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.update(who, &body, false).map(Some)).await
}

async fn put(State(s): State<Ssf>, caller: Receiver, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let body = json_body(&s, &headers, body).await?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.update(who, &body, true).map(Some)).await
}

async fn delete(State(s): State<Ssf>, caller: Receiver, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let id = required_id(&q)?;
    answer(&s, caller, StatusCode::NO_CONTENT, move |t, who| t.delete(who, &id).map(|()| None)).await
}

async fn status(State(s): State<Ssf>, caller: Receiver, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let id = required_id(&q)?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.status(who, &id).map(Some)).await
}

async fn set_status(
    State(s): State<Ssf>,
    caller: Receiver,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request = StatusRequest::parse(&json_body(&s, &headers, body).await?).map_err(Fault::from)?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.set_status(who, request).map(Some)).await
}

async fn add_subject(
    State(s): State<Ssf>,
    caller: Receiver,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request = SubjectRequest::parse(&json_body(&s, &headers, body).await?).map_err(Fault::from)?;
    answer(&s, caller, StatusCode::OK, move |t, who| t.add_subject(who, request).map(|()| None)).await
}

async fn remove_subject(
    State(s): State<Ssf>,
    caller: Receiver,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request = SubjectRequest::parse(&json_body(&s, &headers, body).await?).map_err(Fault::from)?;
    answer(&s, caller, StatusCode::NO_CONTENT, move |t, who| t.remove_subject(who, request).map(|()| None)).await
}

async fn verify(State(s): State<Ssf>, caller: Receiver, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let request = VerifyRequest::parse(&json_body(&s, &headers, body).await?).map_err(Fault::from)?;
    answer(&s, caller, StatusCode::NO_CONTENT, move |t, who| t.verify(who, request).map(|()| None)).await
}

async fn poll(
    State(s): State<Ssf>,
    caller: Receiver,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = crate::edge::read_body(&headers, body, &s.limits).await?;
    // An empty body is a poll with every default (RFC 8936 §2.2: all members optional).
    let request = if bytes.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        crate::access::check_body(&headers, &bytes, &s.limits)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("malformed_json", Where::Body, e.to_string()))?;
        PollRequest::parse(&v).map_err(Fault::from)?
    };
    let who = crate::auth::name_of(caller.as_deref()).to_string();
    let answer = s.transmitter.clone().poll(&who, &stream_id, request).await?;
    Ok(no_store(StatusCode::OK, Some(answer)))
}

/// Why a pushed SET was not taken.
#[derive(Debug, Clone)]
pub enum NotTaken {
    /// Never acceptable (RFC 8935 §2.3: 400 with `err` and `description`).
    Refused(tenet_ssf::Refused),
    /// Not now (503): the transmitter should retry.
    Unavailable(String),
}

/// The running system's side of receiving SETs from upstream transmitters.
pub trait SignalIntake: Send + Sync + 'static {
    /// Verifies `token` and takes what it says in; answers once it is committed.
    fn receive(
        self: Arc<Self>,
        token: String,
        origin: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotTaken>> + Send>>;
}

#[derive(Clone)]
struct Reception {
    intake: Arc<dyn SignalIntake>,
    limits: Arc<Limits>,
}

/// `POST /ssf/receive`: an RFC 8935 push endpoint for upstream
/// transmitters (scope `ingest`). 202 once taken; 400 with RFC 8935's error
/// body when the SET is not acceptable.
pub fn receiver_router(intake: Arc<dyn SignalIntake>, keys: Keys, limits: Arc<Limits>) -> Router {
    Router::new()
        .route("/ssf/receive", post(receive))
        .with_state(Reception { intake, limits })
        .layer(axum::middleware::from_fn_with_state((keys, "ingest"), crate::auth::require))
}

fn rfc8935(err: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"err": err, "description": description}))).into_response()
}

async fn receive(
    State(r): State<Reception>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !media.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/secevent+jwt") {
        return Ok(rfc8935("invalid_request", "Content-Type must be application/secevent+jwt (RFC 8935 §2.1)"));
    }
    let bytes = crate::edge::read_body(&headers, body, &r.limits).await?;
    let Ok(token) = String::from_utf8(bytes.to_vec()) else {
        return Ok(rfc8935("invalid_request", "the body is not a compact JWS"));
    };
    let origin = format!("{} via /ssf/receive", crate::auth::name_of(caller.as_deref()));
    match r.intake.clone().receive(token, origin).await {
        Ok(()) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(NotTaken::Refused(e)) => Ok(rfc8935(e.err, &e.description)),
        Err(NotTaken::Unavailable(why)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", Where::Server, why).retry_after(1))
        }
    }
}
