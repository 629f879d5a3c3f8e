//! The normalised event: one typed shape for every source.
//!
//! Field names follow OCSF where OCSF has the concept (`class_uid`,
//! `activity_id`, actor, resources, status), so an event maps to an OCSF
//! record and back without guesswork; what OCSF lacks and Tenet needs (the
//! ordered chain of principals an actor acts for, credential issuance) is
//! explicit here.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ocsf::{ActivityId, ClassUid};
use crate::principal::Principal;
use crate::time::Timestamp;

/// The stable identifier of an event: the source's own id where it has one
/// (CloudTrail `eventID`, OCSF `metadata.uid`, Kubernetes `auditID`, Okta
/// `uuid`, OTLP `<traceId>-<spanId>`), a content hash only where it has none.
/// Idempotent ingestion rests on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl EventId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        EventId(s)
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        EventId(s.to_string())
    }
}

/// One thing that happened, as every later stage sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub time: Timestamp,
    pub class_uid: ClassUid,
    pub activity_id: ActivityId,
    /// The immediate actor: whoever presented the credential.
    pub actor: Principal,
    /// Whom the actor acts for, nearest first, ending with the origin:
    /// session → role → the user who assumed it; tool call → agent → user.
    #[serde(default)]
    pub chain: Vec<Principal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    pub action: Action,
    #[serde(default)]
    pub resources: Vec<Resource>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "SourceContext::is_empty")]
    pub context: SourceContext,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceLink>,
    pub source: Source,
    /// Set when this event minted a credential or session for someone
    /// (STS AssumeRole, GetFederationToken …): later events presenting that
    /// credential act for this event's actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<IssuedCredential>,
    /// Changes to trust the event made (a policy attached, a member added,
    /// a role's trust rewritten, an agent acting for someone new).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::trust::TrustChange>,
    /// The source record exactly as read. Opaque to every stage but storage.
    #[serde(skip)]
    pub raw: RawRecord,
}

impl Event {
    /// An API call that succeeded, with its OCSF activity from the
    /// operation's verb, and nothing else known: no chain, session,
    /// resources, context, trace, issuance, trust change or raw record.
    /// Adapters and tests fill in what they know with struct update syntax.
    pub fn api_call(
        id: impl Into<EventId>,
        time: Timestamp,
        actor: Principal,
        action: Action,
        source: Source,
    ) -> Event {
        Event {
            id: id.into(),
            time,
            class_uid: ClassUid::API_ACTIVITY,
            activity_id: crate::ocsf::api_activity_for_operation(&action.operation),
            actor,
            chain: Vec::new(),
            session: None,
            action,
            resources: Vec::new(),
            outcome: Outcome::success(),
            context: SourceContext::default(),
            trace: None,
            source,
            issued: None,
            changes: Vec::new(),
            raw: RawRecord::default(),
        }
    }

    /// The principal at the end of the chain: the person or workload on
    /// whose behalf everything in the chain acted.
    pub fn origin(&self) -> &Principal {
        self.chain.last().unwrap_or(&self.actor)
    }

    /// The actor followed by its chain.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        std::iter::once(&self.actor).chain(self.chain.iter())
    }

    /// What this event shows in use, as (principal, resource) pairs with
    /// the event's action: each principal of the chain used it on each
    /// resource, or on none when the event names none. A denied attempt is
    /// not use, nor evidence of the ability to use.
    pub fn uses(&self) -> Vec<(&str, Option<&str>)> {
        self.uses_beyond(0)
    }

    /// [`Self::uses`] by the principals after the first `known` of the
    /// chain: what a chain completed later adds.
    pub fn uses_beyond(&self, known: usize) -> Vec<(&str, Option<&str>)> {
        if self.outcome.status == Status::Failure {
            return Vec::new();
        }
        let mut out = Vec::new();
        for p in self.principals().skip(known) {
            if self.resources.is_empty() {
                out.push((p.id.as_str(), None));
            }
            out.extend(self.resources.iter().map(|r| (p.id.as_str(), Some(r.id.as_str()))));
        }
        out
    }
}

/// The credential or session the actor used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The credential presented (AWS access key id, Okta session, token id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
}

/// A credential minted by the event, and to which principal it was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredential {
    pub credential_id: String,
    /// The principal that will present the credential (e.g. the assumed-role session).
    pub to: Principal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}

/// What was attempted: the service and its operation, in the source's words
/// (`iam` / `CreateAccessKey`, `kubernetes` / `create`, `mcp` / `tools/call`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action {
    pub service: String,
    pub operation: String,
    /// Whether the operation only reads, when the source says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

impl Action {
    pub fn new(service: impl Into<String>, operation: impl Into<String>) -> Self {
        Action { service: service.into(), operation: operation.into(), read_only: None }
    }

    /// `service:operation`, the form queries and policies use.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

/// Something acted upon.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// The resource type in the source's vocabulary (`AWS::IAM::Role`, `pods`, `secret`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its identifier: an ARN where there is one.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Resource {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Resource { kind: kind.into(), id: id.into(), account: None, name: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Failure,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Outcome {
    pub fn success() -> Self {
        Outcome { status: Status::Success, code: None, message: None }
    }

    pub fn unknown() -> Self {
        Outcome { status: Status::Unknown, code: None, message: None }
    }

    pub fn failure(code: Option<String>, message: Option<String>) -> Self {
        Outcome { status: Status::Failure, code, message }
    }

    /// Why it failed, when it did.
    pub fn failure_kind(&self) -> Option<crate::FailureKind> {
        (self.status == Status::Failure)
            .then(|| crate::FailureKind::classify(self.code.as_deref(), self.message.as_deref()))
    }
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// A named origin where the source gives a host or service instead of an
    /// address (CloudTrail writes `ec2.amazonaws.com` in `sourceIPAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl SourceContext {
    pub fn is_empty(&self) -> bool {
        self == &SourceContext::default()
    }

    /// Files an address-or-name field: addresses parse, anything else is a host.
    pub fn set_origin(&mut self, value: Option<&str>) {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return };
        match v.parse::<IpAddr>().ok().or_else(|| zero_padded_ipv4(v)) {
            Some(ip) => self.ip = Some(ip),
            None => self.host = Some(v.to_string()),
        }
    }
}

/// A dotted quad with zero-padded octets (`035.249.253.008`, as some
/// anonymised exports write addresses): still an address, not a host name.
fn zero_padded_ipv4(v: &str) -> Option<IpAddr> {
    let mut octets = [0u8; 4];
    let mut parts = v.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = part.parse().ok()?;
    }
    parts.next().is_none().then(|| IpAddr::from(octets))
}

/// Distributed-trace linkage: the span tree of an agent workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLink {
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
}

/// Which reader produced the event and from which system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The adapter's format name (`cloudtrail`, `ocsf`, `otlp`, `k8s-audit`, `okta`).
    pub format: String,
    /// The system that emitted the record (`aws`, `kubernetes`, `okta`, a service name).
    pub system: String,
    /// The account, cluster or tenant the record was logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The record as the source wrote it (JSON text for every current format).
/// Shares the input buffer it was read from rather than copying it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawRecord(pub bytes::Bytes);

impl RawRecord {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for RawRecord {
    fn from(b: &[u8]) -> Self {
        RawRecord(bytes::Bytes::copy_from_slice(b))
    }
}

impl From<Vec<u8>> for RawRecord {
    fn from(b: Vec<u8>) -> Self {
        RawRecord(bytes::Bytes::from(b))
    }
}

impl From<bytes::Bytes> for RawRecord {
    fn from(b: bytes::Bytes) -> Self {
        RawRecord(b)
    }
}

impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawRecord({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_an_address_when_it_reads_as_one_even_zero_padded() {
        let mut c = SourceContext::default();
        c.set_origin(Some("035.249.253.008"));
        assert_eq!(c.ip, Some(IpAddr::from([35, 249, 253, 8])));
        let mut c = SourceContext::default();
        c.set_origin(Some("ec2.amazonaws.com"));
        assert_eq!((c.ip, c.host.as_deref()), (None, Some("ec2.amazonaws.com")));
        let mut c = SourceContext::default();
        c.set_origin(Some("256.1.1.1"));
        assert!(c.ip.is_none(), "not an address: an octet out of range");
    }
}
