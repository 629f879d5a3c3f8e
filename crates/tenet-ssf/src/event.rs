//! The events Tenet sends: CAEP 1.0 and RISC 1.0 event types, each with the
//! claims its specification requires and the optional ones CAEP defines
//! for every event (`event_timestamp`, `initiating_entity`, `reason_admin`,
//! `reason_user`), which Tenet always sends: a receiver's administrator
//! should read why without asking Tenet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
const SSF: &str = "https://schemas.openid.net/secevent/ssf/event-type/";

/// Text for people, by BCP 47 language tag (`{"en": "…"}`).
pub type Reason = BTreeMap<String, String>;

/// Who caused the change (CAEP 1.0 §2, `initiating_entity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Admin,
    User,
    Policy,
    System,
}

/// When and why, common to every event Tenet sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// Seconds since the epoch: when the change happened.
    pub at: i64,
    pub initiator: Initiator,
    /// For the receiver's administrators.
    pub admin: String,
    /// For the person concerned.
    pub user: String,
}

/// CAEP's risk levels; Tenet's `critical` is sent as `HIGH`, CAEP having
/// no higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CaepRiskLevel {
    Low,
    Medium,
    High,
}

/// A credential-change's kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    Create,
    Revoke,
    Update,
    Delete,
}

/// One event, of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum SecurityEvent {
    SessionRevoked {
        why: Why,
    },
    /// Claims of the subject's tokens that changed, with their new values.
    TokenClaimsChange {
        claims: Map<String, Value>,
        why: Why,
    },
    /// `credential_type` as CAEP lists it, or a type agreed with the receiver.
    CredentialChange {
        credential_type: String,
        change: ChangeType,
        why: Why,
    },
    AssuranceLevelChange {
        namespace: String,
        current: String,
        previous: Option<String>,
        why: Why,
    },
    /// `principal` is what the level is about (`USER`, `SESSION`, …).
    RiskLevelChange {
        principal: String,
        current: CaepRiskLevel,
        previous: Option<CaepRiskLevel>,
        why: Why,
    },
    DeviceComplianceChange {
        compliant: bool,
        why: Why,
    },
    /// RISC; `hijacking` where an account was taken over.
    AccountDisabled {
        hijacked: bool,
        why: Why,
    },
    /// RISC.
    CredentialCompromise {
        credential_type: String,
        why: Why,
    },
    /// SSF 1.0 §8.1.4: the answer to a receiver's verification request.
    Verification {
        state: Option<String>,
    },
}

/// The event types Tenet transmits: a stream's `events_supported`.
pub fn supported_event_types() -> Vec<String> {
    [
        (CAEP, "session-revoked"),
        (CAEP, "token-claims-change"),
        (CAEP, "credential-change"),
        (CAEP, "assurance-level-change"),
        (CAEP, "risk-level-change"),
        (CAEP, "device-compliance-change"),
        (RISC, "account-disabled"),
        (RISC, "credential-compromise"),
    ]
    .iter()
    .map(|(base, name)| format!("{base}{name}"))
    .collect()
}

fn text(s: &str) -> Value {
    json!({ "en": s })
}

impl SecurityEvent {
    /// The event type's URI: the key of the SET's `events` claim.
    pub fn uri(&self) -> String {
        let (base, name) = match self {
            SecurityEvent::SessionRevoked { .. } => (CAEP, "session-revoked"),
            SecurityEvent::TokenClaimsChange { .. } => (CAEP, "token-claims-change"),
            SecurityEvent::CredentialChange { .. } => (CAEP, "credential-change"),
            SecurityEvent::AssuranceLevelChange { .. } => (CAEP, "assurance-level-change"),
            SecurityEvent::RiskLevelChange { .. } => (CAEP, "risk-level-change"),
            SecurityEvent::DeviceComplianceChange { .. } => (CAEP, "device-compliance-change"),
            SecurityEvent::AccountDisabled { .. } => (RISC, "account-disabled"),
            SecurityEvent::CredentialCompromise { .. } => (RISC, "credential-compromise"),
            SecurityEvent::Verification { .. } => (SSF, "verification"),
        };
        format!("{base}{name}")
    }

    /// The event's claims: the value under its URI in `events`.
    pub fn payload(&self) -> Value {
        let mut o = Map::new();
        let why = match self {
            SecurityEvent::SessionRevoked { why } => why,
            SecurityEvent::TokenClaimsChange { claims, why } => {
                o.insert("claims".into(), Value::Object(claims.clone()));
                why
            }
            SecurityEvent::CredentialChange { credential_type, change, why } => {
                o.insert("credential_type".into(), credential_type.clone().into());
                o.insert("change_type".into(), json!(change));
                why
            }
            SecurityEvent::AssuranceLevelChange { namespace, current, previous, why } => {
                o.insert("namespace".into(), namespace.clone().into());
                o.insert("current_level".into(), current.clone().into());
                if let Some(p) = previous {
                    o.insert("previous_level".into(), p.clone().into());
                }
                why
            }
            SecurityEvent::RiskLevelChange { principal, current, previous, why } => {
                o.insert("principal".into(), principal.clone().into());
                o.insert("current_level".into(), json!(current));
                if let Some(p) = previous {
                    o.insert("previous_level".into(), json!(p));
                }
                o.insert("risk_reason".into(), why.admin.clone().into());
                why
            }
            SecurityEvent::DeviceComplianceChange { compliant, why } => {
                let (now, before) =
                    if *compliant { ("compliant", "not-compliant") } else { ("not-compliant", "compliant") };
                o.insert("current_status".into(), now.into());
                o.insert("previous_status".into(), before.into());
                why
            }
            SecurityEvent::AccountDisabled { hijacked, why } => {
                if *hijacked {
                    o.insert("reason".into(), "hijacking".into());
                }
                why
            }
            SecurityEvent::CredentialCompromise { credential_type, why } => {
                o.insert("credential_type".into(), credential_type.clone().into());
                why
            }
            SecurityEvent::Verification { state } => {
                if let Some(s) = state {
                    o.insert("state".into(), s.clone().into());
                }
                return Value::Object(o);
            }
        };
        o.insert("event_timestamp".into(), why.at.into());
        o.insert("initiating_entity".into(), json!(why.initiator));
        o.insert("reason_admin".into(), text(&why.admin));
        o.insert("reason_user".into(), text(&why.user));
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why() -> Why {
        Why {
            at: 1_615_304_991,
            initiator: Initiator::Policy,
            admin: "Tenet opened a likely-malicious finding for this person".into(),
            user: "Your session was ended for your protection".into(),
        }
    }

    #[test]
    fn every_event_carries_when_who_and_why_in_plain_words() {
        let e = SecurityEvent::SessionRevoked { why: why() };
        assert_eq!(e.uri(), "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        assert_eq!(
            e.payload(),
            json!({"event_timestamp": 1_615_304_991, "initiating_entity": "policy",
                "reason_admin": {"en": "Tenet opened a likely-malicious finding for this person"},
                "reason_user": {"en": "Your session was ended for your protection"}})
        );
    }

    #[test]
    fn event_specific_claims_use_the_specifications_names_and_values() {
        let risk = SecurityEvent::RiskLevelChange {
            principal: "USER".into(),
            current: CaepRiskLevel::High,
            previous: Some(CaepRiskLevel::Low),
            why: why(),
        };
        let p = risk.payload();
        assert_eq!(
            (p["principal"].clone(), p["current_level"].clone(), p["previous_level"].clone()),
            (json!("USER"), json!("HIGH"), json!("LOW"))
        );
        assert!(p["risk_reason"].is_string());
        let cred = SecurityEvent::CredentialChange {
            credential_type: "password".into(),
            change: ChangeType::Revoke,
            why: why(),
        };
        assert_eq!(
            (cred.payload()["credential_type"].clone(), cred.payload()["change_type"].clone()),
            (json!("password"), json!("revoke"))
        );
        let disabled = SecurityEvent::AccountDisabled { hijacked: true, why: why() };
        assert_eq!(disabled.uri(), "https://schemas.openid.net/secevent/risc/event-type/account-disabled");
        assert_eq!(disabled.payload()["reason"], "hijacking");
        let device = SecurityEvent::DeviceComplianceChange { compliant: false, why: why() };
        assert_eq!(
            (device.payload()["current_status"].clone(), device.payload()["previous_status"].clone()),
            (json!("not-compliant"), json!("compliant"))
        );
    }

    #[test]
    fn verification_echoes_the_receivers_state_and_nothing_else() {
        let v = SecurityEvent::Verification { state: Some("VGhpcyBpcyBhbiBleGFtcGxl".into()) };
        assert_eq!(v.uri(), "https://schemas.openid.net/secevent/ssf/event-type/verification");
        assert_eq!(v.payload(), json!({"state": "VGhpcyBpcyBhbiBleGFtcGxl"}));
        assert_eq!(SecurityEvent::Verification { state: None }.payload(), json!({}));
    }
}
