//! Findings: what Tenet concludes about a principal's deviations, with the
//! events that show it. Raised by the detection stage, read by the CLI,
//! the API, evaluation and the decision point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::category::Category;
use crate::event::EventId;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Open,
    Acknowledged,
    Resolved,
    Suppressed,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Acknowledged => "acknowledged",
            FindingStatus::Resolved => "resolved",
            FindingStatus::Suppressed => "suppressed",
        }
    }
}

impl fmt::Display for FindingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`; expected open, acknowledged, resolved or suppressed")]
pub struct UnknownStatus(pub String);

impl FromStr for FindingStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [FindingStatus::Open, FindingStatus::Acknowledged, FindingStatus::Resolved, FindingStatus::Suppressed]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// One conclusion about one principal, grouped from its deviations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    /// 0–1.
    pub confidence: f64,
    pub principal: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// When (in event time) the finding was first raised: what time-to-detect measures.
    pub raised_at: Timestamp,
    /// The stable ids of the evidence events.
    pub event_ids: Vec<EventId>,
    /// MITRE ATT&CK technique ids, where known.
    #[serde(default)]
    pub techniques: Vec<String>,
    pub summary: String,
    pub status: FindingStatus,
    /// Why it was classified as it was, in a sentence or two.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub explanation: String,
    /// The deviations behind it, each with what shows it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Every status change, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<StatusChange>,
}

/// One deviation behind a finding and what shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The detector that saw it: `novelty`, `peer_novelty`, `rate`, `shift`,
    /// `trust_edge`, `privilege_change`, `sequence`, `failure_then_success`,
    /// `dormant`, `workflow`, `sigma`, `adaptation`.
    pub detector: String,
    /// What happened, in plain words.
    pub detail: String,
    pub at: Timestamp,
    /// The events that show it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<EventId>,
    /// The learned statistic it departs from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineStat>,
    /// The Sigma rule it matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleMatch>,
    /// Trust-graph hops that matter (`alice →[assumption] role/x`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// A baseline statistic and how the event departed from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineStat {
    /// Whose baseline: `principal`, `peer group <id>`, `workflow <id>`.
    pub scope: String,
    /// What is measured: `action`, `resource`, `network`, `hour of week`, `rate` …
    pub feature: String,
    pub observed: String,
    /// What the baseline holds (e.g. `never seen in 1,204 events over 9 days`, `mean 3.1/h`).
    pub expected: String,
    /// Events the baseline had learned from: little history means less confidence.
    pub history: u64,
}

/// A Sigma rule match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleMatch {
    pub id: String,
    pub title: String,
    pub level: String,
    /// The rule's file, relative to the rules directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
}

/// A lifecycle step: who changed the status, to what, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    /// Wall-clock time of the change.
    pub at: Timestamp,
    pub from: FindingStatus,
    pub to: FindingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Finding {
    /// Whether the finding asks for attention: everything but recorded adaptation.
    pub fn is_alert(&self) -> bool {
        self.category.is_alert()
    }
}
