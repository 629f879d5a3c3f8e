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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustNotice {
    /// Position in the running service's stream, from 1.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}
