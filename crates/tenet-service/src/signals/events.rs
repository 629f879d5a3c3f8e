//! What a trust change means to a receiver: the CAEP and RISC events a
//! [`TrustNotice`] becomes, about which subject, with the reason in plain
//! words for the receiver's administrators and for the person concerned.

use tenet_model::{Category, NoticeChange, RiskLevel, TrustNotice, UpstreamSignal};
use tenet_ssf::{CaepRiskLevel, ChangeType, Initiator, SecurityEvent, Subject, Why};

use super::sessions::Verdict;

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

/// How principals are named to receivers: the identity provider's own
/// subject (`iss_sub`) where an alias comes from a provider whose issuer is
/// configured, else an email address, else Tenet's canonical reference.
pub struct Naming<'a> {
    /// Alias prefix (`okta`) → that provider's issuer.
    pub issuers: &'a std::collections::BTreeMap<String, String>,
    /// Every alias of a principal, canonical first (`None`: only the id).
    pub aliases: &'a dyn Fn(&str) -> Option<Vec<String>>,
}

impl Naming<'_> {
    pub fn subject(&self, principal: &str) -> Subject {
        let aliases = (self.aliases)(principal).unwrap_or_else(|| vec![principal.to_string()]);
        for a in &aliases {
            if let Some((prefix, id)) = a.split_once(':')
                && let Some(iss) = self.issuers.get(prefix)
                && !id.is_empty()
            {
                return Subject::IssSub { iss: iss.clone(), sub: id.to_string() };
            }
        }
        for a in &aliases {
            if let Subject::Email { email } = subject_of(a) {
                return Subject::Email { email };
            }
        }
        subject_of(principal)
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

/// The change in plain words, for the reasons events give.
pub fn describe(n: &TrustNotice) -> String {
    n.change.describe()
}

/// A change grave enough to end a session Tenet has no decision for.
pub fn severe(n: &TrustNotice) -> bool {
    matches!(
        n.change,
        NoticeChange::RiskLevel { to: RiskLevel::Critical, .. }
            | NoticeChange::FindingOpened { category: Category::LikelyMalicious, .. }
    )
}

/// Whether the change is an administrator's confirmed compromise: every
/// live session of the principal is revoked, whatever the policies say.
pub fn revokes_every_session(n: &TrustNotice) -> bool {
    matches!(
        n.change,
        NoticeChange::Compromised { .. }
            | NoticeChange::Relayed {
                signal: UpstreamSignal::AccountDisabled | UpstreamSignal::CredentialCompromise { .. },
                ..
            }
    )
}

/// The event for a live session whose access the change took away: all
/// of it (`session-revoked`) or part (`token-claims-change`).
pub fn for_session(
    n: &TrustNotice,
    principal: &str,
    session: &str,
    verdict: Verdict,
    naming: &Naming<'_>,
) -> (Subject, SecurityEvent) {
    let subject = Subject::session_of(naming.subject(principal), session);
    let at = n.at.unix_millis() / 1000;
    let cause = describe(n);
    let event = match verdict {
        Verdict::Revoke => SecurityEvent::SessionRevoked {
            why: Why {
                at,
                initiator: if revokes_every_session(n) { Initiator::Admin } else { Initiator::Policy },
                admin: format!(
                    "Tenet re-evaluated session {session} of {principal} after a trust change on {}: {cause}; every request the session was allowed is now denied",
                    n.principal
                ),
                user: "Your session was ended because the trust in your account changed; sign in again.".into(),
            },
        },
        Verdict::Lower { denied } => {
            let mut claims = serde_json::Map::new();
            claims.insert("tenet_denied_requests".into(), denied.clone().into());
            SecurityEvent::TokenClaimsChange {
                claims,
                why: Why {
                    at,
                    initiator: Initiator::Policy,
                    admin: format!(
                        "Tenet re-evaluated session {session} of {principal} after a trust change on {}: {cause}; now denied: {}",
                        n.principal,
                        denied.join(", ")
                    ),
                    user: "Some of what your session could do is no longer allowed.".into(),
                },
            }
        }
    };
    (subject, event)
}

/// The events one trust change produces, each with its subject.
pub fn for_notice(n: &TrustNotice, naming: &Naming<'_>) -> Vec<(Subject, SecurityEvent)> {
    let at = n.at.unix_millis() / 1000;
    let who = naming.subject(&n.principal);
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
        NoticeChange::Compromised { reason, by } => {
            let admin = format!("{by} confirmed {} compromised: {reason}", n.principal);
            let why =
                |user: &str| Why { at, initiator: Initiator::Admin, admin: admin.clone(), user: user.to_string() };
            vec![
                (
                    who.clone(),
                    SecurityEvent::AccountDisabled {
                        hijacked: true,
                        why: why("Your account was taken over; it is disabled until an administrator restores it."),
                    },
                ),
                (
                    who,
                    SecurityEvent::CredentialCompromise {
                        credential_type: CLOUD_CREDENTIAL.into(),
                        why: why("Your credentials are known to be compromised; they must be replaced."),
                    },
                ),
            ]
        }
        NoticeChange::Relayed { issuer, signal, .. } => {
            let why = Why {
                at,
                initiator: Initiator::System,
                admin: describe(n),
                user: format!("{issuer} reported a change to your account."),
            };
            let event = match signal {
                UpstreamSignal::CredentialChange { credential_type, change_type } => SecurityEvent::CredentialChange {
                    credential_type: credential_type.clone(),
                    change: match change_type.as_str() {
                        "create" => ChangeType::Create,
                        "revoke" => ChangeType::Revoke,
                        "delete" => ChangeType::Delete,
                        _ => ChangeType::Update,
                    },
                    why,
                },
                UpstreamSignal::CredentialCompromise { credential_type } => {
                    SecurityEvent::CredentialCompromise { credential_type: credential_type.clone(), why }
                }
                UpstreamSignal::DeviceCompliance { compliant } => {
                    SecurityEvent::DeviceComplianceChange { compliant: *compliant, why }
                }
                UpstreamSignal::AssuranceLevel { namespace, current, previous } => {
                    SecurityEvent::AssuranceLevelChange {
                        namespace: namespace.clone(),
                        current: current.clone(),
                        previous: previous.clone(),
                        why,
                    }
                }
                UpstreamSignal::AccountDisabled => SecurityEvent::AccountDisabled { hijacked: false, why },
                // The upstream's own session: ended here, nothing to relay.
                UpstreamSignal::SessionRevoked { .. } => return Vec::new(),
            };
            vec![(who, event)]
        }
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
        let events = for_notice_plain(&notice(NoticeChange::RiskLevel {
            from: RiskLevel::Low,
            to: RiskLevel::Critical,
            score: 93,
        }));
        assert_eq!(events.len(), 1);
        let (subject, event) = &events[0];
        assert_eq!(*subject, Subject::Email { email: "alice@example.com".into() });
        let p = event.payload();
        assert_eq!((p["previous_level"].as_str(), p["current_level"].as_str()), (Some("LOW"), Some("HIGH")));
        assert_eq!(p["event_timestamp"], 1_700_000_000);
        assert!(p["reason_admin"]["en"].as_str().unwrap().contains("rose from low to critical"));
        let same = for_notice_plain(&notice(NoticeChange::RiskLevel {
            from: RiskLevel::High,
            to: RiskLevel::Critical,
            score: 95,
        }));
        assert!(same.is_empty(), "HIGH to HIGH is no change to a receiver");
    }

    #[test]
    fn a_likely_malicious_finding_marks_the_credentials_compromised_and_others_send_nothing_themselves() {
        let opened = |category| {
            for_notice_plain(&notice(NoticeChange::FindingOpened {
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

    fn for_notice_plain(n: &TrustNotice) -> Vec<(Subject, SecurityEvent)> {
        let issuers = std::collections::BTreeMap::new();
        for_notice(n, &Naming { issuers: &issuers, aliases: &|_| None })
    }

    #[test]
    fn a_principal_known_to_a_configured_identity_provider_is_sent_as_its_iss_sub() {
        let issuers = std::collections::BTreeMap::from([("okta".to_string(), "https://acme.okta.com".to_string())]);
        let aliases = |p: &str| (p == "user:ada@acme.example").then(|| vec![p.to_string(), "okta:00u1ada".to_string()]);
        let naming = Naming { issuers: &issuers, aliases: &aliases };
        assert_eq!(
            naming.subject("user:ada@acme.example"),
            Subject::IssSub { iss: "https://acme.okta.com".into(), sub: "00u1ada".into() }
        );
        assert_eq!(naming.subject("user:bo@acme.example"), Subject::Email { email: "bo@acme.example".into() });
        let none = std::collections::BTreeMap::new();
        let plain = Naming { issuers: &none, aliases: &aliases };
        assert_eq!(plain.subject("user:ada@acme.example"), Subject::Email { email: "ada@acme.example".into() });
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
