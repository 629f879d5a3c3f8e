//! Subject identifiers (RFC 9493; SSF 1.0 §3 adds `complex`): the `sub_id`
//! of every SET.

use serde::{Deserialize, Serialize};

/// Who or what an event is about, in one of the formats Tenet sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Subject {
    Email {
        email: String,
    },
    /// An identity provider's subject: its issuer and the subject there.
    IssSub {
        iss: String,
        sub: String,
    },
    /// An identifier meaningful to transmitter and receiver alone (a
    /// session id, a stream id, Tenet's canonical principal reference).
    Opaque {
        id: String,
    },
    /// Several facets of one principal (SSF 1.0 §3.2): a person and the
    /// session the event concerns, say.
    Complex(ComplexSubject),
}

/// The members of a `complex` subject; each describes the same principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplexSubject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<Subject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<Subject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Box<Subject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Box<Subject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Box<Subject>>,
}

impl Subject {
    /// A session of `user`, as SSF sends it: `complex` with an opaque
    /// `session` and the principal as `user`.
    pub fn session_of(user: Subject, session_id: &str) -> Subject {
        Subject::Complex(ComplexSubject {
            user: Some(Box::new(user)),
            session: Some(Box::new(Subject::Opaque { id: session_id.to_string() })),
            ..Default::default()
        })
    }

    /// Whether an event about `self` concerns a subject a receiver named
    /// (SSF 1.0 §8.1.3.1): simple subjects when identical; complex ones
    /// when every member either side has is absent on the other or
    /// identical. A simple subject also matches a complex one it is a
    /// member of: a receiver that named a person hears about their sessions.
    pub fn matches(&self, named: &Subject) -> bool {
        match (self, named) {
            (Subject::Complex(a), Subject::Complex(b)) => {
                let pairs = [
                    (&a.user, &b.user),
                    (&a.session, &b.session),
                    (&a.device, &b.device),
                    (&a.application, &b.application),
                    (&a.tenant, &b.tenant),
                ];
                pairs.iter().all(|(x, y)| match (x, y) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                }) && pairs.iter().any(|(x, y)| x.is_some() && y.is_some())
            }
            (Subject::Complex(c), simple) | (simple, Subject::Complex(c)) => {
                [&c.user, &c.session, &c.device, &c.application, &c.tenant]
                    .into_iter()
                    .flatten()
                    .any(|member| **member == *simple)
            }
            (a, b) => a == b,
        }
    }

    /// A subject from a receiver's request, or why it is not one Tenet reads.
    pub fn parse(v: &serde_json::Value) -> Result<Subject, String> {
        let format = v.get("format").and_then(serde_json::Value::as_str).ok_or("a subject needs a format")?;
        if !["email", "iss_sub", "opaque", "complex"].contains(&format) {
            return Err(format!(
                "subject format {format:?} is not one Tenet matches (email, iss_sub, opaque, complex)"
            ));
        }
        serde_json::from_value(v.clone()).map_err(|e| format!("not a valid {format} subject: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_formats_serialize_as_rfc_9493_writes_them() {
        let cases = [
            (Subject::Email { email: "a@example.com".into() }, json!({"format": "email", "email": "a@example.com"})),
            (
                Subject::IssSub { iss: "https://idp.example.com/".into(), sub: "145234573".into() },
                json!({"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "145234573"}),
            ),
            (
                Subject::Opaque { id: "11112222333344445555".into() },
                json!({"format": "opaque", "id": "11112222333344445555"}),
            ),
        ];
        for (subject, expected) in cases {
            assert_eq!(serde_json::to_value(&subject).unwrap(), expected);
            assert_eq!(serde_json::from_value::<Subject>(expected).unwrap(), subject, "and back");
        }
    }

    /// The CAEP specification's session-revoked example subject.
    #[test]
    fn a_session_is_a_complex_subject_with_the_person_as_user() {
        let user = Subject::IssSub {
            iss: "https://idp.example.com/123456789/".into(),
            sub: "99beb27c-c1c2-4955-882a-e0dc4996fcbc".into(),
        };
        let s = Subject::session_of(user, "dMTlD|1600802906337.16|16008.16");
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"format": "complex",
                "user": {"format": "iss_sub", "iss": "https://idp.example.com/123456789/", "sub": "99beb27c-c1c2-4955-882a-e0dc4996fcbc"},
                "session": {"format": "opaque", "id": "dMTlD|1600802906337.16|16008.16"}})
        );
    }

    #[test]
    fn receivers_name_subjects_simple_or_complex_and_sessions_match_their_person() {
        let alice = Subject::Email { email: "alice@example.com".into() };
        let bob = Subject::Email { email: "bob@example.com".into() };
        let session = Subject::session_of(alice.clone(), "s-1");
        assert!(alice.matches(&alice) && !alice.matches(&bob));
        assert!(session.matches(&alice), "a person named: their sessions too");
        assert!(!session.matches(&bob));
        assert!(session.matches(&Subject::session_of(alice.clone(), "s-1")));
        assert!(!session.matches(&Subject::session_of(alice.clone(), "s-2")));
        let only_session = Subject::Complex(ComplexSubject {
            session: Some(Box::new(Subject::Opaque { id: "s-1".into() })),
            ..Default::default()
        });
        assert!(session.matches(&only_session), "members one side lacks do not count");
        let device = Subject::Complex(ComplexSubject { device: Some(Box::new(bob.clone())), ..Default::default() });
        assert!(!session.matches(&device), "no member in common: nothing matched");
    }

    #[test]
    fn subjects_in_formats_tenet_does_not_match_are_refused_with_the_reason() {
        assert!(
            Subject::parse(&json!({"format": "phone_number", "phone_number": "+1"}))
                .unwrap_err()
                .contains("phone_number")
        );
        assert!(Subject::parse(&json!({"email": "a@b"})).unwrap_err().contains("format"));
        assert!(Subject::parse(&json!({"format": "email"})).unwrap_err().contains("email"));
        assert_eq!(
            Subject::parse(&json!({"format": "opaque", "id": "x"})).unwrap(),
            Subject::Opaque { id: "x".into() }
        );
    }
}
