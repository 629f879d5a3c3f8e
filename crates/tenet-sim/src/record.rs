//! What the simulation produces before it is written: one typed record per
//! telemetry event, in the shape of its real format, rendered to that
//! format's JSON by `render`.

use serde_json::Value;

use crate::org::Call;

/// Who made an AWS call, as CloudTrail's `userIdentity` will say.
#[derive(Clone, Debug)]
pub enum Who {
    /// A long-lived IAM user and its access key.
    IamUser { account: usize, name: String, key: String },
    /// A role session: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`;
    /// `federated` when the session came from a web identity (its
    /// `webIdFederationData`).
    Role {
        account: usize,
        role: String,
        session: String,
        key: String,
        source_identity: Option<String>,
        mfa: bool,
        federated: Option<Idp>,
    },
    /// The IAM Identity Center user calling `AssumeRoleWithSAML`.
    SamlUser { account: usize, email: String },
    /// A web identity calling `AssumeRoleWithWebIdentity`: a Kubernetes
    /// service account (IRSA) or a GitHub Actions workflow.
    WebIdentity { account: usize, subject: String, idp: Idp },
    /// An AWS service acting in the account.
    Service { invoked_by: &'static str },
    /// A principal of another account (cross-account trust).
    OtherAccount { account_id: &'static str, principal_id: String },
}

/// The OpenID Connect providers web identities come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idp {
    /// The EKS cluster's issuer (IRSA).
    Eks,
    /// GitHub Actions (`token.actions.githubusercontent.com`).
    GitHub,
}

/// One CloudTrail record.
#[derive(Clone, Debug)]
pub struct Trail {
    pub time: i64,
    pub id: String,
    pub account: usize,
    pub region: &'static str,
    pub call: Call,
    pub who: Who,
    pub ip: String,
    pub ua: String,
    pub request: Option<Value>,
    pub response: Option<Value>,
    pub error: Option<(&'static str, String)>,
    /// CloudTrail's own `resources` list: `(type, ARN)`.
    pub resources: Vec<(&'static str, String)>,
    pub console: bool,
    /// The AWS service that made the call on the identity's behalf
    /// (`userIdentity.invokedBy`): Athena reading S3, Secrets Manager
    /// calling KMS, CloudFormation creating a stack's resources.
    pub invoked_by: Option<&'static str>,
    /// Made by the console with the session's credentials
    /// (`sessionCredentialFromConsole`).
    pub from_console: bool,
}

/// Where a client is, as Okta's `geographicalContext` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
}

/// An Okta actor or target: `(id, type, alternateId, displayName)`.
pub type OktaEntity = (String, &'static str, String, String);

/// One Okta System Log event.
#[derive(Clone, Debug)]
pub struct Okta {
    pub time_ms: i64,
    pub uuid: String,
    pub event_type: &'static str,
    pub message: &'static str,
    pub actor: OktaEntity,
    pub ip: String,
    pub ua: String,
    /// `outcome.result`: `SUCCESS`, `FAILURE`, `ALLOW`, `CHALLENGE`…
    pub result: &'static str,
    pub reason: Option<&'static str>,
    pub session: Option<String>,
    pub credential: Option<&'static str>,
    pub targets: Vec<OktaEntity>,
    pub place: Place,
    /// `debugContext.debugData.factor`: the factor verified.
    pub factor: Option<&'static str>,
    /// `debugContext.debugData.behaviors`, as Okta writes it on sign-in.
    pub behaviors: Option<String>,
}

impl Okta {
    /// A successful event with no session, credential or targets.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        time_ms: i64,
        uuid: String,
        event_type: &'static str,
        message: &'static str,
        actor: OktaEntity,
        ip: String,
        ua: String,
        place: Place,
    ) -> Okta {
        Okta {
            time_ms,
            uuid,
            event_type,
            message,
            actor,
            ip,
            ua,
            result: "SUCCESS",
            reason: None,
            session: None,
            credential: None,
            targets: vec![],
            place,
            factor: None,
            behaviors: None,
        }
    }
}

/// One Kubernetes audit event (stage ResponseComplete).
#[derive(Clone, Debug)]
pub struct Audit {
    pub time_us: i64,
    pub id: String,
    pub verb: &'static str,
    pub user: String,
    pub groups: Vec<String>,
    pub impersonated: Option<String>,
    pub resource: &'static str,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: u16,
    pub ip: String,
    pub ua: String,
}

/// A span of an agent trace, with the service that emitted it.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent: Option<String>,
    pub name: String,
    /// 1 internal, 2 server, 3 client.
    pub kind: u8,
    pub start_ns: i64,
    pub end_ns: i64,
    pub attrs: Vec<(&'static str, String)>,
    /// Integer-valued attributes (`http.response.status_code`, …).
    pub ints: Vec<(&'static str, i64)>,
    pub error: Option<String>,
}

/// A whole trace: written together so its span tree stays in one file.
#[derive(Clone, Debug)]
pub struct Trace {
    pub spans: Vec<Span>,
}

impl Trace {
    pub fn start_ns(&self) -> i64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0)
    }
}

/// Any record, for the per-hour stream.
#[derive(Clone, Debug)]
pub enum Record {
    Trail(Trail),
    Okta(Okta),
    Audit(Audit),
    Trace(Trace),
}

/// A ground-truth label: one line of `labels.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub event_id: String,
    pub scenario: String,
    pub category: String,
    pub principal: String,
}

/// The stable event id Tenet's OTLP adapter assigns a span.
pub fn span_event_id(trace_id: &str, span_id: &str) -> String {
    format!("{trace_id}-{span_id}")
}
