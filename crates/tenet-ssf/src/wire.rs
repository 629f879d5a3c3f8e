//! The bodies receivers send to the management, verification and poll
//! endpoints, parsed into typed requests or refused with the property at
//! fault; and the error bodies receivers answer a push with (RFC 8935 §2.3).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Subject;
use crate::stream::{Invalid, StreamStatus};

const MAX_STATE: usize = 1024;
const MAX_REASON: usize = 1024;
const MAX_ACKS: usize = 10_000;

fn object<'a>(body: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>, Invalid> {
    body.as_object().ok_or_else(|| Invalid { field: String::new(), reason: format!("{what} is a JSON object") })
}

fn only(o: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), Invalid> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            Err(Invalid { field: format!("/{k}"), reason: format!("not a property here ({})", allowed.join(", ")) })
        }
        None => Ok(()),
    }
}

fn text(o: &serde_json::Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, Invalid> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(Invalid { field: format!("/{key}"), reason: format!("longer than {max} bytes") }),
        Some(_) => Err(Invalid { field: format!("/{key}"), reason: "must be a string".into() }),
    }
}

fn stream_id(o: &serde_json::Map<String, Value>) -> Result<String, Invalid> {
    text(o, "stream_id", 256)?.ok_or_else(|| Invalid { field: "/stream_id".into(), reason: "is required".into() })
}

/// `POST` to the status endpoint: a status the receiver sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    pub stream_id: String,
    pub status: StreamStatus,
    pub reason: Option<String>,
}

impl StatusRequest {
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let o = object(body, "a status update")?;
        only(o, &["stream_id", "status", "reason"])?;
        let status =
            text(o, "status", 32)?.ok_or_else(|| Invalid { field: "/status".into(), reason: "is required".into() })?;
        let status = StreamStatus::parse(&status).ok_or_else(|| Invalid {
            field: "/status".into(),
            reason: format!("{status:?} is not a status (enabled, paused, disabled)"),
        })?;
        Ok(StatusRequest { stream_id: stream_id(o)?, status, reason: text(o, "reason", MAX_REASON)? })
    }
}

/// Add or remove subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRequest {
    pub stream_id: String,
    pub subject: Subject,
}

impl SubjectRequest {
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let o = object(body, "a subject request")?;
        only(o, &["stream_id", "subject", "verified"])?;
        if o.get("verified").is_some_and(|v| !v.is_boolean()) {
            return Err(Invalid { field: "/verified".into(), reason: "must be true or false".into() });
        }
        let subject =
            o.get("subject").ok_or_else(|| Invalid { field: "/subject".into(), reason: "is required".into() })?;
        let subject = Subject::parse(subject).map_err(|reason| Invalid { field: "/subject".into(), reason })?;
        Ok(SubjectRequest { stream_id: stream_id(o)?, subject })
    }
}

/// A receiver's verification request: the `state` to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    pub stream_id: String,
    pub state: Option<String>,
}

impl VerifyRequest {
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let o = object(body, "a verification request")?;
        only(o, &["stream_id", "state"])?;
        Ok(VerifyRequest { stream_id: stream_id(o)?, state: text(o, "state", MAX_STATE)? })
    }
}

/// A receiver's error for one SET (RFC 8935 §2.3, RFC 8936 §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub err: String,
    pub description: String,
}

/// RFC 8936 §2.2: a poll (and acknowledgement) request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollRequest {
    /// At most this many SETs; `Some(0)`: acknowledge only. `None`: no cap.
    pub max_events: Option<u64>,
    pub return_immediately: bool,
    pub ack: Vec<String>,
    pub set_errs: BTreeMap<String, SetError>,
}

impl PollRequest {
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let o = object(body, "a poll request")?;
        only(o, &["maxEvents", "returnImmediately", "ack", "setErrs"])?;
        let bad = |field: &str, reason: &str| Invalid { field: field.into(), reason: reason.into() };
        let max_events = match o.get("maxEvents") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| bad("/maxEvents", "must be a non-negative integer"))?),
        };
        let return_immediately = match o.get("returnImmediately") {
            None => false,
            Some(v) => v.as_bool().ok_or_else(|| bad("/returnImmediately", "must be true or false"))?,
        };
        let mut ack = Vec::new();
        if let Some(v) = o.get("ack") {
            let items = v.as_array().ok_or_else(|| bad("/ack", "must be an array of jti strings"))?;
            if items.len() > MAX_ACKS {
                return Err(bad("/ack", "more than 10000 acknowledgements in one request"));
            }
            for (i, item) in items.iter().enumerate() {
                let jti = item.as_str().ok_or_else(|| bad(&format!("/ack/{i}"), "must be a jti string"))?;
                ack.push(jti.to_string());
            }
        }
        let mut set_errs = BTreeMap::new();
        if let Some(v) = o.get("setErrs") {
            let errs = v.as_object().ok_or_else(|| bad("/setErrs", "must be an object keyed by jti"))?;
            if errs.len() > MAX_ACKS {
                return Err(bad("/setErrs", "more than 10000 errors in one request"));
            }
            for (jti, e) in errs {
                let field = format!("/setErrs/{jti}");
                let err = e.get("err").and_then(Value::as_str).ok_or_else(|| bad(&field, "needs an err string"))?;
                let description = match e.get("description") {
                    None => String::new(),
                    Some(d) => d.as_str().ok_or_else(|| bad(&field, "description must be a string"))?.to_string(),
                };
                set_errs.insert(jti.clone(), SetError { err: err.to_string(), description });
            }
        }
        Ok(PollRequest { max_events, return_immediately, ack, set_errs })
    }
}

/// What a receiver's answer to a push says about the SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// 202: accepted.
    Accepted,
    /// 400 with an RFC 8935 error: the receiver will never take this SET.
    Rejected(SetError),
    /// Anything else (5xx, 429, 401, a 400 without an error body,
    /// unreachable): try again later.
    Retry(String),
}

impl PushOutcome {
    /// Judges a push response's status and body.
    pub fn of(status: u16, body: &[u8]) -> PushOutcome {
        match status {
            202 => PushOutcome::Accepted,
            // Some receivers answer 200/204: taken, though RFC 8935 says 202.
            200 | 204 => PushOutcome::Accepted,
            400 => match serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                let err = v.get("err")?.as_str()?.to_string();
                let description = v.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
                Some(SetError { err, description })
            }) {
                Some(e) => PushOutcome::Rejected(e),
                None => PushOutcome::Retry("400 without an RFC 8935 error body".into()),
            },
            s => PushOutcome::Retry(format!("HTTP {s}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_updates_name_one_of_the_three_statuses() {
        let r = StatusRequest::parse(&json!({"stream_id": "s1", "status": "paused", "reason": "maintenance"})).unwrap();
        assert_eq!((r.status, r.reason.as_deref()), (StreamStatus::Paused, Some("maintenance")));
        assert_eq!(StatusRequest::parse(&json!({"stream_id": "s1", "status": "off"})).unwrap_err().field, "/status");
        assert_eq!(StatusRequest::parse(&json!({"status": "enabled"})).unwrap_err().field, "/stream_id");
    }

    #[test]
    fn poll_requests_read_rfc_8936_members() {
        let r = PollRequest::parse(&json!({"maxEvents": 0, "returnImmediately": true, "ack": ["a", "b"],
            "setErrs": {"c": {"err": "invalid_key", "description": "unknown kid"}}}))
        .unwrap();
        assert_eq!(r.max_events, Some(0));
        assert!(r.return_immediately);
        assert_eq!(r.ack, ["a", "b"]);
        assert_eq!(r.set_errs["c"].err, "invalid_key");
        assert_eq!(
            PollRequest::parse(&json!({})).unwrap(),
            PollRequest::default(),
            "all optional; long poll by default"
        );
        assert_eq!(PollRequest::parse(&json!({"maxEvents": -1})).unwrap_err().field, "/maxEvents");
        assert_eq!(PollRequest::parse(&json!({"ack": [1]})).unwrap_err().field, "/ack/0");
        assert_eq!(PollRequest::parse(&json!({"setErrs": {"x": {}}})).unwrap_err().field, "/setErrs/x");
    }

    #[test]
    fn push_answers_are_accepted_rejected_for_good_or_retried() {
        assert_eq!(PushOutcome::of(202, b""), PushOutcome::Accepted);
        assert_eq!(
            PushOutcome::of(400, br#"{"err":"invalid_audience","description":"not us"}"#),
            PushOutcome::Rejected(SetError { err: "invalid_audience".into(), description: "not us".into() })
        );
        assert!(matches!(PushOutcome::of(400, b"<html>"), PushOutcome::Retry(_)));
        assert!(matches!(PushOutcome::of(503, b""), PushOutcome::Retry(_)));
        assert!(matches!(PushOutcome::of(401, b""), PushOutcome::Retry(_)));
    }

    #[test]
    fn subject_and_verification_requests_are_typed() {
        let r = SubjectRequest::parse(
            &json!({"stream_id": "s", "subject": {"format": "email", "email": "a@b"}, "verified": true}),
        )
        .unwrap();
        assert_eq!(r.subject, Subject::Email { email: "a@b".into() });
        assert_eq!(SubjectRequest::parse(&json!({"stream_id": "s"})).unwrap_err().field, "/subject");
        let v = VerifyRequest::parse(&json!({"stream_id": "s", "state": "abc"})).unwrap();
        assert_eq!(v.state.as_deref(), Some("abc"));
        assert_eq!(VerifyRequest::parse(&json!({"stream_id": "s", "state": 1})).unwrap_err().field, "/state");
    }
}
