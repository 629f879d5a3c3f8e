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
}
