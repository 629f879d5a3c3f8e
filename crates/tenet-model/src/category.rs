//! The five categories every deviation is classified into, everywhere in Tenet.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Legitimate change, backed by positive evidence. Recorded, never alerted.
    ExpectedAdaptation,
    /// Change nobody approved that accumulates without a matching need.
    UnintendedDrift,
    /// A workflow (often agent-driven) combining steps into something risky.
    RiskyWorkflowInteraction,
    /// A trust relationship that should not exist or is used the wrong way.
    AbnormalTrustRelationship,
    /// Behaviour consistent with an attack.
    LikelyMalicious,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::ExpectedAdaptation,
        Category::UnintendedDrift,
        Category::RiskyWorkflowInteraction,
        Category::AbnormalTrustRelationship,
        Category::LikelyMalicious,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ExpectedAdaptation => "expected_adaptation",
            Category::UnintendedDrift => "unintended_drift",
            Category::RiskyWorkflowInteraction => "risky_workflow_interaction",
            Category::AbnormalTrustRelationship => "abnormal_trust_relationship",
            Category::LikelyMalicious => "likely_malicious",
        }
    }

    /// Whether findings of this category are alerts (everything but adaptation).
    pub fn is_alert(self) -> bool {
        self != Category::ExpectedAdaptation
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown category `{0}`; expected one of expected_adaptation, unintended_drift, risky_workflow_interaction, abnormal_trust_relationship, likely_malicious"
)]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownCategory(s.to_string()))
    }
}
