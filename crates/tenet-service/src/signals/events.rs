//! What a trust change means to a receiver: the CAEP and RISC events a
//! [`TrustNotice`] becomes, about which subject, with the reason in plain
//! words for the receiver's administrators and for the person concerned.

use tenet_model::{Category, NoticeChange, RiskLevel, TrustNotice};
use tenet_ssf::{CaepRiskLevel, Initiator, SecurityEvent, Subject, Why};

/// Tenet has no credential type CAEP lists for a cloud or API credential;
/// CAEP 1.0 §3.3 allows a type agreed with the receiver.
pub const CLOUD_CREDENTIAL: &str = "cloud-access-key";

fn caep_level(level: RiskLevel) -> CaepRiskLevel {
    match level {
        RiskLevel::Low => CaepRiskLevel::Low,
        RiskLevel::Medium => CaepRiskLevel::Medium,
        // CAEP has no level above HIGH.
        RiskLevel::High | RiskLevel::Critical => CaepRiskLevel::High,
    }
}

/// The subject identifier a principal is sent under: an email address as
/// `email`, anything else as `opaque` with Tenet's canonical reference.
pub fn subject_of(principal: &str) -> Subject {
    let bare = principal.strip_prefix("user:").unwrap_or(principal);
    let looks_like_email = bare
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !bare.contains([' ', ':', '/']));
    if looks_like_email {
        Subject::Email { email: bare.to_string() }
    } else {
        Subject::Opaque { id: principal.to_string() }
    }
}

/// The events one trust change produces, each with its subject.
pub fn for_notice(n: &TrustNotice) -> Vec<(Subject, SecurityEvent)> {
    let at = n.at.unix_millis() / 1000;
    let who = subject_of(&n.principal);
    match &n.change {
        NoticeChange::RiskLevel { from, to, score } => {
            let (previous, current) = (caep_level(*from), caep_level(*to));
            if previous == current {
                return Vec::new();
            }
            let direction = if to > from { "rose" } else { "fell" };
            vec![(
                who,
                SecurityEvent::RiskLevelChange {
                    principal: "USER".into(),
                    current,
                    previous: Some(previous),
                    why: Why {
                        at,
                        initiator: Initiator::Policy,
                        admin: format!(
                            "Tenet's risk for {} {direction} from {} to {} (score {score}) on the evidence of its open findings",
                            n.principal,
                            from.as_str(),
                            to.as_str()
                        ),
                        user: format!("The risk Tenet sees in your account {direction} to {}.", to.as_str()),
                    },
                },
            )]
        }
        NoticeChange::FindingOpened { finding, category: Category::LikelyMalicious, severity } => vec![(
            who,
            SecurityEvent::CredentialCompromise {
                credential_type: CLOUD_CREDENTIAL.into(),
                why: Why {
                    at,
                    initiator: Initiator::Policy,
                    admin: format!(
                        "Tenet raised finding {finding} ({} severity): behaviour of {} consistent with an attack; treat its credentials as compromised",
                        severity.as_str(),
                        n.principal
                    ),
                    user:
                        "Activity under your account looks like an attack; your credentials are treated as compromised."
                            .into(),
                },
            },
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use tenet_model::{Severity, Timestamp};

    use super::*;

    fn notice(change: NoticeChange) -> TrustNotice {
        TrustNotice {
            seq: 1,
            at: Timestamp::from_unix_millis(1_700_000_000_500),
            principal: "user:alice@example.com".into(),
            change,
        }
    }

    #[test]
    fn a_risk_level_crossing_is_a_risk_level_change_and_critical_is_sent_as_high() {
        let events =
            for_notice(&notice(NoticeChange::RiskLevel { from: RiskLevel::Low, to: RiskLevel::Critical, score: 93 }));
        assert_eq!(events.len(), 1);
        let (subject, event) = &events[0];
        assert_eq!(*subject, Subject::Email { email: "alice@example.com".into() });
        let p = event.payload();
        assert_eq!((p["previous_level"].as_str(), p["current_level"].as_str()), (Some("LOW"), Some("HIGH")));
        assert_eq!(p["event_timestamp"], 1_700_000_000);
        assert!(p["reason_admin"]["en"].as_str().unwrap().contains("rose from low to critical"));
        let same =
            for_notice(&notice(NoticeChange::RiskLevel { from: RiskLevel::High, to: RiskLevel::Critical, score: 95 }));
        assert!(same.is_empty(), "HIGH to HIGH is no change to a receiver");
    }

    #[test]
    fn a_likely_malicious_finding_marks_the_credentials_compromised_and_others_send_nothing_themselves() {
        let opened = |category| {
            for_notice(&notice(NoticeChange::FindingOpened {
                finding: "f-1".into(),
                category,
                severity: Severity::High,
            }))
        };
        let events = opened(Category::LikelyMalicious);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.uri(), "https://schemas.openid.net/secevent/risc/event-type/credential-compromise");
        assert!(events[0].1.payload()["reason_admin"]["en"].as_str().unwrap().contains("f-1"));
        // Other findings move risk, and the risk change is what is sent.
        assert!(opened(Category::UnintendedDrift).is_empty());
    }

    #[test]
    fn principals_are_sent_by_email_when_they_are_one_and_opaque_otherwise() {
        assert_eq!(subject_of("bob@corp.example"), Subject::Email { email: "bob@corp.example".into() });
        assert_eq!(
            subject_of("arn:aws:iam::123456789012:role/deploy"),
            Subject::Opaque { id: "arn:aws:iam::123456789012:role/deploy".into() }
        );
        assert_eq!(subject_of("agent:triage-bot"), Subject::Opaque { id: "agent:triage-bot".into() });
    }
}
