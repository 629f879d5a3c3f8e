//! Trust signals: what the learn stage concludes about each principal's
//! current risk, for the decision point and the console.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub fn of(score: u8) -> Self {
        match score {
            75.. => RiskLevel::Critical,
            50.. => RiskLevel::High,
            25.. => RiskLevel::Medium,
            _ => RiskLevel::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }
}

/// A principal's risk at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskPoint {
    pub principal: String,
    /// Event time the score holds from.
    pub at: Timestamp,
    /// 0–100.
    pub score: u8,
    pub level: RiskLevel,
    /// The open alerting findings behind it.
    pub findings: Vec<String>,
}

/// A change of trust the running system announces, in the order it took
/// effect: the one stream the decision point's live state, `GET
/// /api/v1/changes` and the Shared Signals transmitter consume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustNotice {
    /// Position in the durable log of notices, from 1.
    pub seq: u64,
    /// When the change took effect: the event's or the collection's time.
    pub at: Timestamp,
    /// Whose trust changed, as Tenet names it everywhere.
    pub principal: String,
    #[serde(flatten)]
    pub change: NoticeChange,
}

/// What changed. Each kind names its evidence: the finding, the risk
/// levels, the fact that stopped holding and what closed it (an inventory
/// file or an event id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum NoticeChange {
    /// An alerting finding was raised (or re-opened).
    FindingOpened { finding: String, category: crate::Category, severity: crate::Severity },
    /// A person acknowledged, resolved or suppressed an alerting finding.
    FindingStatus { finding: String, status: crate::FindingStatus },
    /// The principal's risk crossed into another level.
    RiskLevel { from: RiskLevel, to: RiskLevel, score: u8 },
    /// A group membership stopped holding.
    MembershipRemoved { group: String, by: String },
    /// A grant stopped holding: a policy detached, a role binding or a
    /// role's trust removed. `kind` says which.
    GrantRemoved { grant: String, kind: String, by: String },
    /// An agent stopped acting for a person.
    DelegationEnded { person: String, by: String },
    /// An administrator confirmed the principal compromised: its risk is
    /// critical until dismissed, whatever the learner concludes.
    Compromised { reason: String, by: String },
    /// An administrator dismissed the principal's risk: low again, until
    /// new findings raise it.
    RiskDismissed { reason: String, by: String },
    /// An upstream transmitter (an identity provider) said so in a SET
    /// Tenet received and verified.
    Relayed { issuer: String, signal: UpstreamSignal, reason: Option<String> },
}

impl NoticeChange {
    /// The change in plain words, said of the principal ("its risk went …"):
    /// what receivers' reasons and the console show.
    pub fn describe(&self) -> String {
        match self {
            NoticeChange::FindingOpened { finding, category, severity } => format!(
                "Tenet raised a {} finding ({}, {} severity)",
                category.as_str().replace('_', "-"),
                finding,
                severity.as_str()
            ),
            NoticeChange::FindingStatus { finding, status } => format!("finding {finding} became {}", status.as_str()),
            NoticeChange::RiskLevel { from, to, .. } => {
                format!("its risk went from {} to {}", from.as_str(), to.as_str())
            }
            NoticeChange::MembershipRemoved { group, by } => format!("its membership of {group} was removed ({by})"),
            NoticeChange::GrantRemoved { grant, kind, by } => format!("its {kind} grant {grant} was removed ({by})"),
            NoticeChange::DelegationEnded { person, by } => format!("it stopped acting for {person} ({by})"),
            NoticeChange::Compromised { reason, by } => format!("{by} confirmed it compromised: {reason}"),
            NoticeChange::RiskDismissed { reason, by } => format!("{by} dismissed its risk: {reason}"),
            NoticeChange::Relayed { issuer, signal, reason } => {
                let what = match signal {
                    UpstreamSignal::CredentialChange { credential_type, change_type } => {
                        format!("its {credential_type} credential changed ({change_type})")
                    }
                    UpstreamSignal::CredentialCompromise { credential_type } => {
                        format!("its {credential_type} credential is compromised")
                    }
                    UpstreamSignal::DeviceCompliance { compliant: true } => "its device became compliant".to_string(),
                    UpstreamSignal::DeviceCompliance { compliant: false } => {
                        "its device is no longer compliant".to_string()
                    }
                    UpstreamSignal::AssuranceLevel { namespace, current, .. } => {
                        format!("its assurance level is now {current} ({namespace})")
                    }
                    UpstreamSignal::AccountDisabled => "its account was disabled".to_string(),
                    UpstreamSignal::SessionRevoked { .. } => "a session of it was revoked".to_string(),
                };
                match reason {
                    Some(r) => format!("{issuer} reported that {what}: {r}"),
                    None => format!("{issuer} reported that {what}"),
                }
            }
        }
    }
}

/// What an upstream transmitter's SET said about a principal, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum UpstreamSignal {
    CredentialChange { credential_type: String, change_type: String },
    CredentialCompromise { credential_type: String },
    DeviceCompliance { compliant: bool },
    AssuranceLevel { namespace: String, current: String, previous: Option<String> },
    AccountDisabled,
    SessionRevoked { session: Option<String> },
}

/// What an administrator decided about a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compromised,
    Dismissed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compromised => "compromised",
            Verdict::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "compromised" => Some(Verdict::Compromised),
            "dismissed" => Some(Verdict::Dismissed),
            _ => None,
        }
    }

    /// The risk it sets: critical (100) for a confirmed compromise, low (0) for a dismissal.
    pub fn risk(self, principal: &str, at: Timestamp) -> RiskPoint {
        let score = match self {
            Verdict::Compromised => 100,
            Verdict::Dismissed => 0,
        };
        RiskPoint { principal: principal.to_string(), at, score, level: RiskLevel::of(score), findings: Vec::new() }
    }

    pub fn notice(self, reason: &str, by: &str) -> NoticeChange {
        let (reason, by) = (reason.to_string(), by.to_string());
        match self {
            Verdict::Compromised => NoticeChange::Compromised { reason, by },
            Verdict::Dismissed => NoticeChange::RiskDismissed { reason, by },
        }
    }
}

/// An administrator's verdict on a principal, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalVerdict {
    /// Position in the log of verdicts, from 1 (0 before it is stored).
    pub seq: i64,
    pub at: Timestamp,
    /// The principal's canonical reference.
    pub principal: String,
    pub verdict: Verdict,
    pub reason: String,
    /// Who decided: the API key's name, or the operating-system user of the CLI.
    pub by: String,
}

/// What one commit by a cluster node changed in trust, for every other
/// node to apply to its live state: the findings and risk as stored, the
/// facts events declared, the use they showed, and the notices announcing
/// it all. Carried on the cluster's trust stream in commit order.
/// (Inventory snapshots are not: nodes read new ones from the store.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrustUpdate {
    /// The store's revision after the commit (monotonic across nodes).
    pub revision: i64,
    /// The node that committed it.
    pub node: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<crate::Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk: Vec<RiskPoint>,
    /// Trust changes events declared, each with the event's time and id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<DeclaredChanges>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<ObservedUse>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<TrustNotice>,
}

impl TrustUpdate {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.risk.is_empty()
            && self.facts.is_empty()
            && self.uses.is_empty()
            && self.notices.is_empty()
    }
}

/// The trust changes one event declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredChanges {
    pub at: Timestamp,
    pub event: String,
    /// The event's principals (actor, then chain): a change an identity
    /// makes to itself authorises nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    pub changes: Vec<crate::TrustChange>,
}

/// A principal's use of an action (on a resource) seen `count` times
/// between `first` and `last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedUse {
    pub principal: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u64,
}
