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
