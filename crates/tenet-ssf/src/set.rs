//! The claims of a Security Event Token (RFC 8417) as SSF 1.0 §4 profiles
//! them: `iss` and `aud` from the stream, `iat`, `jti`, `txn` when the
//! cause is known, `sub_id` always, exactly one event, and never `sub` or
//! `exp`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{SecurityEvent, Subject};

/// A stream's audience: one receiver, or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// One SET's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct SetClaims {
    pub iss: String,
    pub aud: Audience,
    /// Seconds since the epoch: when the SET was issued (never ahead of the
    /// transmitter's clock).
    pub iat: i64,
    /// Unique per SET: what receivers deduplicate on.
    pub jti: String,
    /// The cause shared by every SET it produced (the trust change's id).
    pub txn: Option<String>,
    pub sub_id: Subject,
    pub event: SecurityEvent,
}

impl SetClaims {
    /// The JWT claims set.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("iss".into(), self.iss.clone().into());
        o.insert("aud".into(), serde_json::to_value(&self.aud).unwrap_or(Value::Null));
        o.insert("iat".into(), self.iat.into());
        o.insert("jti".into(), self.jti.clone().into());
        if let Some(t) = &self.txn {
            o.insert("txn".into(), t.clone().into());
        }
        o.insert("sub_id".into(), serde_json::to_value(&self.sub_id).unwrap_or(Value::Null));
        let mut events = Map::new();
        events.insert(self.event.uri(), self.event.payload());
        o.insert("events".into(), Value::Object(events));
        Value::Object(o)
    }

    /// The JOSE header a SET is signed under: explicitly typed (SSF 1.0 §4.1.1).
    pub fn header(kid: &str) -> Value {
        serde_json::json!({"typ": "secevent+jwt", "alg": "RS256", "kid": kid})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Initiator, Why};
    use serde_json::json;

    #[test]
    fn a_set_has_sub_id_one_event_and_neither_sub_nor_exp() {
        let claims = SetClaims {
            iss: "https://tenet.example.com/".into(),
            aud: Audience::One("https://receiver.example.com/".into()),
            iat: 1_700_000_000,
            jti: "4d3559ec67504aaba65d40b0363faad8".into(),
            txn: Some("notice-42".into()),
            sub_id: Subject::session_of(Subject::Email { email: "alice@example.com".into() }, "s-1"),
            event: SecurityEvent::SessionRevoked {
                why: Why {
                    at: 1_699_999_999,
                    initiator: Initiator::Admin,
                    admin: "confirmed compromised".into(),
                    user: "signed out".into(),
                },
            },
        };
        let v = claims.to_json();
        for claim in ["iss", "aud", "iat", "jti", "txn", "sub_id", "events"] {
            assert!(v.get(claim).is_some(), "{claim} in {v}");
        }
        assert!(v.get("sub").is_none() && v.get("exp").is_none(), "{v}");
        assert_eq!(v["events"].as_object().unwrap().len(), 1);
        assert_eq!(v["sub_id"]["session"], json!({"format": "opaque", "id": "s-1"}));
        assert_eq!(SetClaims::header("k1")["typ"], "secevent+jwt");
        let many = SetClaims { aud: Audience::Many(vec!["a".into(), "b".into()]), txn: None, ..claims };
        let v = many.to_json();
        assert_eq!(v["aud"], json!(["a", "b"]));
        assert!(v.get("txn").is_none(), "no cause, no txn");
    }
}
