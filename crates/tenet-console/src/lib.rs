//! The console: the pages a person keeps open to see how trust is
//! evolving, rendered on the server (maud) from the running system's
//! state, with charts drawn as SVG on the server (plotters) and a little
//! JavaScript of Tenet's own for live updates from the stream of trust
//! changes (Server-Sent Events).
//!
//! The console owns no state: what it shows and the changes people make
//! through it are the running system's ([`Site`]), as the HTTP API's are.
//! Pages are open on a loopback server without keys; otherwise a person
//! signs in with an API key holding `read`, and changing anything needs
//! `admin` ([`access`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tenet_model::{Finding, FindingStatus, PrincipalKind, TrustNotice};

pub mod access;
mod chart;
mod decisions;
mod drawing;
mod explorer;
mod findings;
mod overview;
pub mod page;
mod policies;
mod principal;
mod signals;

pub use access::Access;
pub use decisions::Redecided;
pub use page::display_name;
pub use policies::ActivePolicies;

/// A principal as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Tenet's canonical reference (`user:alice@example.com`, an ARN).
    pub id: String,
    pub kind: PrincipalKind,
    /// What people call it: a person's name or email, an agent's name.
    pub display: String,
}

/// What the trust graph says of one principal.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalCard {
    pub principal: Principal,
    /// The other ids it is known by (an IdP's user id, a cloud identity).
    pub aliases: Vec<String>,
    pub groups: Vec<String>,
    /// For an agent: the people it acts for.
    pub acts_for: Vec<String>,
    /// The agents acting for it.
    pub agents: Vec<String>,
}

/// A Shared Signals stream as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamView {
    /// The API key name of the receiver that owns it.
    pub receiver: String,
    pub stream_id: String,
    pub status: String,
    /// `push to <url>` or `polled`.
    pub delivery: String,
    /// The event types it gets (their last path segment).
    pub events: Vec<String>,
    pub delivered: u64,
    pub failed: u64,
    /// SETs waiting in the outbox.
    pub pending: u64,
    pub last_error: Option<String>,
}

/// How a telemetry source stands: the ones needing attention sort first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceState {
    /// Gone quiet: no event for many of its usual gaps.
    Silent,
    /// Still sending, but far less than on a usual day.
    Degraded,
    Healthy,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Silent => "silent",
            SourceState::Degraded => "degraded",
            SourceState::Healthy => "healthy",
        }
    }
}

/// A telemetry source (a format and the system emitting it) as the
/// overview shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceView {
    /// `cloudtrail · aws`
    pub source: String,
    pub last_event: tenet_model::Timestamp,
    /// How far its last event is behind the newest event of any source.
    pub behind_seconds: i64,
    /// When it last delivered (wall clock), if since the service started.
    pub delivered: Option<tenet_model::Timestamp>,
    /// Events in the last day (of the observed clock).
    pub last_day: u64,
    /// Its usual day over up to the six days before, when it has one.
    pub daily_average: Option<f64>,
    pub total: u64,
    pub state: SourceState,
    /// Why it is flagged, in words (empty when healthy).
    pub why: String,
}

/// The running system's side of the console.
pub trait Site: Send + Sync + 'static {
    /// A reader of the store, for one page.
    fn reader(&self) -> Result<Box<dyn tenet_store::StoreReader>, String>;
    /// The people, workloads and agents the trust graph knows.
    fn principals(&self) -> Vec<Principal>;
    /// One principal, by any reference the graph knows it under.
    fn principal(&self, id: &str) -> Option<PrincipalCard>;
    /// Changes a finding's status for a person (`by`), as `tenet finding`
    /// does: recorded in its history, risk following, announced.
    fn set_finding_status(&self, id: &str, to: FindingStatus, reason: &str, by: &str) -> Result<Finding, String>;
    /// The Shared Signals streams, with their delivery state.
    fn streams(&self) -> Result<Vec<StreamView>, String>;
    /// Trust changes announced, newest first: `limit` of them after skipping
    /// the `skip` newest, and how many there are in all.
    fn recent_changes(&self, skip: usize, limit: usize) -> Result<(Vec<TrustNotice>, usize), String>;
    /// A page of the decision log, newest first, and how many match.
    fn decisions(
        &self,
        search: &tenet_store::decisions::DecisionSearch,
    ) -> Result<(Vec<tenet_store::decisions::DecisionRow>, usize), String>;
    /// One logged decision.
    fn decision(&self, seq: i64) -> Result<Option<tenet_store::decisions::DecisionRow>, String>;
    /// A logged request (its AuthZEN JSON) decided again with the policies
    /// and trust signals of now, unlogged.
    fn evaluate_again(&self, request: &str) -> Result<Redecided, String>;
    /// The policies decisions are made with, and their directory's state.
    fn policies(&self) -> Result<ActivePolicies, String>;
    /// Every policy version activated, oldest first.
    fn policy_versions(&self) -> Result<Vec<tenet_store::decisions::PolicyVersion>, String>;
    /// Each telemetry source's coverage, the ones needing attention first.
    fn sources(&self) -> Vec<SourceView>;
    /// The live trust graph, to ask about any moment of its history.
    fn graph(&self) -> tenet_graph::SharedGraph;
    /// The stream of trust changes, from now on.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<TrustNotice>>;
}

#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) site: Arc<dyn Site>,
    pub(crate) access: Arc<Access>,
    pub(crate) drift: Arc<overview::DriftCache>,
}

/// The console's routes, at `/`.
pub fn router(site: Arc<dyn Site>, keys: tenet_server::auth::Keys) -> Router {
    let console = Console { site, access: Arc::new(Access::new(keys)), drift: Default::default() };
    Router::new()
        .route("/", get(overview::page))
        .route("/principals/{id}", get(principal::page))
        .route("/signals", get(signals::page))
        .route("/graph", get(explorer::page))
        .route("/decisions", get(decisions::list))
        .route("/decisions/{seq}", get(decisions::one))
        .route("/decisions/{seq}/evaluate", post(decisions::evaluate))
        .route("/policies", get(policies::page))
        .route("/findings", get(findings::list))
        .route("/findings/{id}", get(findings::one))
        .route("/findings/{id}/status", post(findings::set_status))
        .route("/console/changes", get(changes))
        .route("/login", get(access::sign_in_page).post(access::sign_in))
        .route("/logout", post(access::sign_out))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .with_state(console)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../assets/console.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../assets/console.js"))
}

async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../assets/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Trust changes as Server-Sent Events, for the pages that show live state.
async fn changes(State(c): State<Console>, headers: HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;
    if c.access.viewer(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let rx = c.site.changes();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(n) => {
                    let data = serde_json::to_string(&*n).unwrap_or_default();
                    return Some((Ok::<_, std::convert::Infallible>(Event::default().event("change").data(data)), rx));
                }
                // Too slow a reader: it missed some; the page reloads its numbers anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed();
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `?page=N` and the filters a list page takes, as given.
pub(crate) type Params = Query<Vec<(String, String)>>;
/// The id in a page's path.
pub(crate) type Id = UrlPath<String>;
