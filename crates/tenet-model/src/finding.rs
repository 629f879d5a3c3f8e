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

    /// The severity named `s` (`low|medium|high|critical`).
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Low, Severity::Medium, Severity::High, Severity::Critical].into_iter().find(|x| x.as_str() == s)
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

/// What a piece of evidence shows the principal doing: an ATT&CK tactic,
/// or one of the two kinds of change that are not attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Collection,
    Exfiltration,
    Impact,
    /// Departures from routine with no tactic of their own: a new action,
    /// place, tool or rate.
    UnusualActivity,
    /// Access granted without a matching need.
    AccessDrift,
}

impl Behaviour {
    pub const ALL: [Behaviour; 13] = [
        Behaviour::InitialAccess,
        Behaviour::Execution,
        Behaviour::Persistence,
        Behaviour::PrivilegeEscalation,
        Behaviour::DefenseEvasion,
        Behaviour::CredentialAccess,
        Behaviour::Discovery,
        Behaviour::LateralMovement,
        Behaviour::Collection,
        Behaviour::Exfiltration,
        Behaviour::Impact,
        Behaviour::UnusualActivity,
        Behaviour::AccessDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::InitialAccess => "initial_access",
            Behaviour::Execution => "execution",
            Behaviour::Persistence => "persistence",
            Behaviour::PrivilegeEscalation => "privilege_escalation",
            Behaviour::DefenseEvasion => "defense_evasion",
            Behaviour::CredentialAccess => "credential_access",
            Behaviour::Discovery => "discovery",
            Behaviour::LateralMovement => "lateral_movement",
            Behaviour::Collection => "collection",
            Behaviour::Exfiltration => "exfiltration",
            Behaviour::Impact => "impact",
            Behaviour::UnusualActivity => "unusual_activity",
            Behaviour::AccessDrift => "access_drift",
        }
    }

    /// The behaviour in plain words.
    pub fn label(self) -> &'static str {
        match self {
            Behaviour::InitialAccess => "initial access",
            Behaviour::Execution => "execution",
            Behaviour::Persistence => "persistence",
            Behaviour::PrivilegeEscalation => "privilege escalation",
            Behaviour::DefenseEvasion => "defence evasion",
            Behaviour::CredentialAccess => "credential access",
            Behaviour::Discovery => "discovery",
            Behaviour::LateralMovement => "lateral movement",
            Behaviour::Collection => "collection",
            Behaviour::Exfiltration => "exfiltration",
            Behaviour::Impact => "impact",
            Behaviour::UnusualActivity => "unusual activity",
            Behaviour::AccessDrift => "access drift",
        }
    }

    /// The MITRE ATT&CK tactic id, for the behaviours that are tactics.
    pub fn tactic(self) -> Option<&'static str> {
        Some(match self {
            Behaviour::InitialAccess => "TA0001",
            Behaviour::Execution => "TA0002",
            Behaviour::Persistence => "TA0003",
            Behaviour::PrivilegeEscalation => "TA0004",
            Behaviour::DefenseEvasion => "TA0005",
            Behaviour::CredentialAccess => "TA0006",
            Behaviour::Discovery => "TA0007",
            Behaviour::LateralMovement => "TA0008",
            Behaviour::Collection => "TA0009",
            Behaviour::Exfiltration => "TA0010",
            Behaviour::Impact => "TA0040",
            Behaviour::UnusualActivity | Behaviour::AccessDrift => return None,
        })
    }

    /// From an ATT&CK tactic's name as Sigma tags spell it (`defense-evasion`).
    pub fn from_tactic_name(name: &str) -> Option<Behaviour> {
        let n = name.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Behaviour::ALL.into_iter().find(|b| b.tactic().is_some() && b.as_str() == n)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The evidence of one behaviour within a finding: what an analyst reads
/// as one step of an incident (discovery, then persistence, then …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourGroup {
    pub behaviour: Behaviour,
    /// The ATT&CK tactic id, where the behaviour is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tactic: Option<String>,
    /// MITRE ATT&CK technique ids the evidence points to.
    #[serde(default)]
    pub techniques: Vec<String>,
    /// One sentence, repetition grouped.
    pub summary: String,
    /// The events that show it, strongest first.
    pub event_ids: Vec<EventId>,
}

fn yes() -> bool {
    true
}

/// One conclusion about one principal, grouped from its deviations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub category: Category,
    pub severity: Severity,
    /// 0–1.
    pub confidence: f64,
    /// 0–100: the incident's score, from which severity follows and against
    /// which the alert score is set.
    #[serde(default)]
    pub score: f32,
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
    /// Whether it asks for attention: false for an incident recorded below
    /// the alert score (kept for the record and for later evidence, never
    /// counted as risk) and for recorded adaptation.
    #[serde(default = "yes")]
    pub alert: bool,
    /// The evidence grouped by behaviour, each group with its ATT&CK ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behaviours: Vec<BehaviourGroup>,
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
    /// What it shows the principal doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour: Option<Behaviour>,
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
    /// Whether the finding asks for attention: an incident at or above the
    /// alert score, never recorded adaptation.
    pub fn is_alert(&self) -> bool {
        self.alert && self.category.is_alert()
    }
}
