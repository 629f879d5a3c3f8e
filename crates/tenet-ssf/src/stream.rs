//! Stream configuration (SSF 1.0 §8.1.1) and the rules for creating,
//! updating (PATCH) and replacing (PUT) one, as pure functions: a request
//! in, the new configuration or the reason it is refused out.
//!
//! Receiver-supplied properties are `events_requested`, `delivery` and
//! `description`; the transmitter sets the rest, and a request may repeat
//! one only with its current value. `events_delivered` is always exactly
//! the events supported that were requested. A push `authorization_header`
//! is kept but never shown again ([`StreamConfig::to_json`]).

use serde_json::{Map, Value, json};

pub const PUSH: &str = "urn:ietf:rfc:8935";
pub const POLL: &str = "urn:ietf:rfc:8936";
/// Tenet's own method: plain JSON with an HMAC signature, for consumers
/// that do not speak SSF. Configured by the operator, never by a receiver.
pub const WEBHOOK: &str = "urn:tenet:webhook";

const MAX_DESCRIPTION: usize = 1024;
const MAX_URL: usize = 2048;
const MAX_HEADER: usize = 4096;
const MAX_EVENT_URI: usize = 512;
const MAX_EVENTS_REQUESTED: usize = 64;

/// Why a stream request is refused (400): the property and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The property at fault (a JSON pointer into the request), or "" for the body.
    pub field: String,
    pub reason: String,
}

impl Invalid {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Invalid { field: field.to_string(), reason: reason.into() }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for Invalid {}

/// How a stream's SETs reach its receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// RFC 8935: Tenet POSTs each SET to the receiver's URL, with the
    /// `Authorization` header the receiver configured, if any.
    Push { endpoint_url: String, authorization_header: Option<String> },
    /// RFC 8936: the receiver polls the URL Tenet assigned to this stream.
    Poll { endpoint_url: String },
    /// Plain JSON POSTed to `endpoint_url`, signed with HMAC-SHA256 under `secret`.
    Webhook { endpoint_url: String, secret: String },
}

impl Delivery {
    pub fn method(&self) -> &'static str {
        match self {
            Delivery::Push { .. } => PUSH,
            Delivery::Poll { .. } => POLL,
            Delivery::Webhook { .. } => WEBHOOK,
        }
    }

    pub fn endpoint_url(&self) -> &str {
        match self {
            Delivery::Push { endpoint_url, .. }
            | Delivery::Poll { endpoint_url }
            | Delivery::Webhook { endpoint_url, .. } => endpoint_url,
        }
    }
}

/// What the transmitter decides about a new stream.
#[derive(Debug, Clone)]
pub struct Issuing {
    pub stream_id: String,
    pub iss: String,
    pub aud: String,
    pub events_supported: Vec<String>,
    pub min_verification_interval: u64,
    /// The URL a receiver polls this stream at.
    pub poll_url: String,
}

/// A stream's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    pub stream_id: String,
    pub iss: String,
    pub aud: String,
    pub events_supported: Vec<String>,
    /// As the receiver asked (unknown URIs kept: they are its words).
    pub events_requested: Vec<String>,
    pub events_delivered: Vec<String>,
    pub delivery: Delivery,
    pub min_verification_interval: u64,
    pub description: Option<String>,
    /// The URL polling uses if the receiver switches to poll.
    pub poll_url: String,
}

/// The receiver's side of a stream request, parsed: present properties
/// only (`None`: absent).
#[derive(Debug, Default)]
struct Request {
    stream_id: Option<String>,
    events_requested: Option<Vec<String>>,
    delivery: Option<RequestedDelivery>,
    description: Option<String>,
    /// Transmitter-supplied properties the request repeats, as sent.
    transmitter: Vec<(&'static str, Value)>,
}

#[derive(Debug)]
enum RequestedDelivery {
    Push { endpoint_url: String, authorization_header: Option<String> },
    Poll,
}

const TRANSMITTER_PROPERTIES: &[&str] =
    &["iss", "aud", "events_supported", "events_delivered", "min_verification_interval", "inactivity_timeout"];

fn parse(body: &Value, poll_url: &str) -> Result<Request, Invalid> {
    let Value::Object(o) = body else {
        return Err(Invalid::new("", "a stream configuration is a JSON object"));
    };
    let mut r = Request::default();
    for (k, v) in o {
        match k.as_str() {
            "stream_id" => r.stream_id = Some(string(v, "/stream_id", 256)?),
            "events_requested" => r.events_requested = Some(events_requested(v)?),
            "delivery" => r.delivery = Some(delivery(v, poll_url)?),
            "description" => match v {
                Value::Null => {}
                _ => r.description = Some(string(v, "/description", MAX_DESCRIPTION)?),
            },
            t if TRANSMITTER_PROPERTIES.contains(&t) => {
                let name = TRANSMITTER_PROPERTIES.iter().find(|p| **p == t).copied().unwrap_or("");
                r.transmitter.push((name, v.clone()));
            }
            other => {
                return Err(Invalid::new(
                    &format!("/{other}"),
                    "not a stream configuration property (SSF 1.0 §8.1.1: events_requested, delivery, description)",
                ));
            }
        }
    }
    Ok(r)
}

fn string(v: &Value, field: &str, max: usize) -> Result<String, Invalid> {
    match v {
        Value::String(s) if s.len() > max => Err(Invalid::new(field, format!("longer than {max} bytes"))),
        Value::String(s) => Ok(s.clone()),
        _ => Err(Invalid::new(field, "must be a string")),
    }
}

fn events_requested(v: &Value) -> Result<Vec<String>, Invalid> {
    let Value::Array(items) = v else {
        return Err(Invalid::new("/events_requested", "must be an array of event type URIs"));
    };
    if items.is_empty() {
        return Err(Invalid::new("/events_requested", "is empty: request at least one event type"));
    }
    if items.len() > MAX_EVENTS_REQUESTED {
        return Err(Invalid::new("/events_requested", format!("more than {MAX_EVENTS_REQUESTED} event types")));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let uri = string(item, &format!("/events_requested/{i}"), MAX_EVENT_URI)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn delivery(v: &Value, poll_url: &str) -> Result<RequestedDelivery, Invalid> {
    let Value::Object(o) = v else {
        return Err(Invalid::new("/delivery", "must be an object with a method"));
    };
    if let Some(k) = o.keys().find(|k| !["method", "endpoint_url", "authorization_header"].contains(&k.as_str())) {
        return Err(Invalid::new(&format!("/delivery/{k}"), "not a delivery property"));
    }
    let method = match o.get("method") {
        None => return Err(Invalid::new("/delivery/method", "is required")),
        Some(m) => string(m, "/delivery/method", 128)?,
    };
    match method.as_str() {
        PUSH => {
            let url = match o.get("endpoint_url") {
                None => return Err(Invalid::new("/delivery/endpoint_url", "push delivery needs the receiver's URL")),
                Some(u) => string(u, "/delivery/endpoint_url", MAX_URL)?,
            };
            check_url(&url)?;
            let authorization_header = match o.get("authorization_header") {
                None | Some(Value::Null) => None,
                Some(h) => {
                    let h = string(h, "/delivery/authorization_header", MAX_HEADER)?;
                    if h.is_empty() || h.bytes().any(|b| b < 0x20 || b == 0x7f) {
                        return Err(Invalid::new(
                            "/delivery/authorization_header",
                            "must be a non-empty header value without control characters",
                        ));
                    }
                    Some(h)
                }
            };
            Ok(RequestedDelivery::Push { endpoint_url: url, authorization_header })
        }
        POLL => {
            // The URL is the transmitter's to assign; repeating it is fine.
            if o.get("endpoint_url").is_some_and(|u| u.as_str() != Some(poll_url)) {
                return Err(Invalid::new(
                    "/delivery/endpoint_url",
                    "for poll delivery the transmitter assigns the URL; leave it out",
                ));
            }
            if o.contains_key("authorization_header") {
                return Err(Invalid::new(
                    "/delivery/authorization_header",
                    "only push delivery sends an authorization header",
                ));
            }
            Ok(RequestedDelivery::Poll)
        }
        other => Err(Invalid::new(
            "/delivery/method",
            format!("{other:?} is not a delivery method Tenet supports ({PUSH} push, {POLL} poll)"),
        )),
    }
}

/// An absolute http(s) URL with a host, no fragment, no whitespace.
fn check_url(url: &str) -> Result<(), Invalid> {
    let field = "/delivery/endpoint_url";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Invalid::new(field, "must be an absolute https:// (or http://) URL"))?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(Invalid::new(field, "has no host"));
    }
    if url.contains('#') {
        return Err(Invalid::new(field, "must not have a fragment"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(field, "must not contain whitespace or control characters"));
    }
    Ok(())
}

fn intersect(supported: &[String], requested: &[String]) -> Vec<String> {
    requested.iter().filter(|e| supported.contains(e)).cloned().collect()
}

impl StreamConfig {
    /// A new stream from a receiver's creation request. Without `delivery`
    /// the receiver polls (SSF 1.0 §8.1.1.1).
    pub fn create(body: &Value, issuing: Issuing) -> Result<StreamConfig, Invalid> {
        let r = parse(body, &issuing.poll_url)?;
        if r.stream_id.is_some() {
            return Err(Invalid::new("/stream_id", "is assigned by the transmitter; leave it out when creating"));
        }
        let mut config = StreamConfig {
            stream_id: issuing.stream_id,
            iss: issuing.iss,
            aud: issuing.aud,
            events_supported: issuing.events_supported,
            events_requested: Vec::new(),
            events_delivered: Vec::new(),
            delivery: Delivery::Poll { endpoint_url: issuing.poll_url.clone() },
            min_verification_interval: issuing.min_verification_interval,
            description: None,
            poll_url: issuing.poll_url,
        };
        // Creating has no current values to repeat: transmitter properties are refused.
        if let Some((name, _)) = r.transmitter.first() {
            return Err(Invalid::new(&format!("/{name}"), "is set by the transmitter; leave it out when creating"));
        }
        config.apply(r, true);
        Ok(config)
    }

    /// SSF 1.0 §8.1.1.3: the properties present are updated, the others kept.
    pub fn patch(&self, body: &Value) -> Result<StreamConfig, Invalid> {
        let r = self.request_for_this_stream(body)?;
        let mut next = self.clone();
        next.apply(r, false);
        Ok(next)
    }

    /// SSF 1.0 §8.1.1.4: the receiver's properties are replaced; one left
    /// out is removed (and a stream without `delivery` is polled).
    pub fn replace(&self, body: &Value) -> Result<StreamConfig, Invalid> {
        let r = self.request_for_this_stream(body)?;
        let mut next = self.clone();
        next.apply(r, true);
        Ok(next)
    }

    /// The stream id a PATCH/PUT/DELETE-style body names.
    pub fn stream_id_of(body: &Value) -> Result<String, Invalid> {
        match body.get("stream_id") {
            None => Err(Invalid::new("/stream_id", "is required")),
            Some(v) => string(v, "/stream_id", 256),
        }
    }

    fn request_for_this_stream(&self, body: &Value) -> Result<Request, Invalid> {
        let r = parse(body, &self.poll_url)?;
        match &r.stream_id {
            None => return Err(Invalid::new("/stream_id", "is required")),
            Some(id) if *id != self.stream_id => {
                return Err(Invalid::new("/stream_id", "does not name this stream"));
            }
            Some(_) => {}
        }
        let current = self.to_json();
        for (name, value) in &r.transmitter {
            if current.get(*name) != Some(value) {
                return Err(Invalid::new(
                    &format!("/{name}"),
                    "is set by the transmitter and may only be repeated with its current value",
                ));
            }
        }
        Ok(r)
    }

    /// `whole`: absent receiver properties are removed (create, replace)
    /// rather than kept (patch).
    fn apply(&mut self, r: Request, whole: bool) {
        if let Some(e) = r.events_requested {
            self.events_requested = e;
        } else if whole {
            self.events_requested.clear();
        }
        match r.delivery {
            Some(RequestedDelivery::Push { endpoint_url, authorization_header }) => {
                self.delivery = Delivery::Push { endpoint_url, authorization_header }
            }
            Some(RequestedDelivery::Poll) => self.delivery = Delivery::Poll { endpoint_url: self.poll_url.clone() },
            None if whole => self.delivery = Delivery::Poll { endpoint_url: self.poll_url.clone() },
            None => {}
        }
        if r.description.is_some() || whole {
            self.description = r.description;
        }
        self.events_delivered = intersect(&self.events_supported, &self.events_requested);
    }

    /// The configuration as the receiver reads it: every property but the
    /// push authorization secret.
    pub fn to_json(&self) -> Value {
        let mut delivery = Map::new();
        delivery.insert("method".into(), self.delivery.method().into());
        delivery.insert("endpoint_url".into(), self.delivery.endpoint_url().into());
        let mut o = Map::new();
        o.insert("stream_id".into(), self.stream_id.clone().into());
        o.insert("iss".into(), self.iss.clone().into());
        o.insert("aud".into(), self.aud.clone().into());
        o.insert("events_supported".into(), json!(self.events_supported));
        o.insert("events_requested".into(), json!(self.events_requested));
        o.insert("events_delivered".into(), json!(self.events_delivered));
        o.insert("delivery".into(), Value::Object(delivery));
        o.insert("min_verification_interval".into(), self.min_verification_interval.into());
        if let Some(d) = &self.description {
            o.insert("description".into(), d.clone().into());
        }
        Value::Object(o)
    }

    /// Everything, the secret included: what the store keeps.
    pub fn to_stored(&self) -> Value {
        let mut v = self.to_json();
        match &self.delivery {
            Delivery::Push { authorization_header: Some(h), .. } => {
                v["delivery"]["authorization_header"] = h.clone().into()
            }
            Delivery::Webhook { secret, .. } => v["delivery"]["secret"] = secret.clone().into(),
            _ => {}
        }
        v["poll_url"] = self.poll_url.clone().into();
        v
    }

    /// Back from [`StreamConfig::to_stored`].
    pub fn from_stored(v: &Value) -> Result<StreamConfig, Invalid> {
        let s =
            |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| Invalid::new(k, "missing"));
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let poll_url = s("poll_url")?;
        let d = v.get("delivery").ok_or_else(|| Invalid::new("delivery", "missing"))?;
        let delivery = match d.get("method").and_then(Value::as_str) {
            Some(PUSH) => Delivery::Push {
                endpoint_url: d.get("endpoint_url").and_then(Value::as_str).unwrap_or_default().to_string(),
                authorization_header: d.get("authorization_header").and_then(Value::as_str).map(str::to_string),
            },
            Some(WEBHOOK) => Delivery::Webhook {
                endpoint_url: d.get("endpoint_url").and_then(Value::as_str).unwrap_or_default().to_string(),
                secret: d.get("secret").and_then(Value::as_str).unwrap_or_default().to_string(),
            },
            _ => Delivery::Poll { endpoint_url: poll_url.clone() },
        };
        Ok(StreamConfig {
            stream_id: s("stream_id")?,
            iss: s("iss")?,
            aud: s("aud")?,
            events_supported: list("events_supported"),
            events_requested: list("events_requested"),
            events_delivered: list("events_delivered"),
            delivery,
            min_verification_interval: v.get("min_verification_interval").and_then(Value::as_u64).unwrap_or(0),
            description: v.get("description").and_then(Value::as_str).map(str::to_string),
            poll_url,
        })
    }

    /// An operator's webhook: events of the types asked for (every type
    /// supported when none), as plain JSON signed with `secret`.
    pub fn webhook(issuing: Issuing, events: &[String], url: &str, secret: &str) -> Result<StreamConfig, Invalid> {
        check_url(url)?;
        if secret.len() < 16 {
            return Err(Invalid::new("secret", "a webhook secret needs at least 16 characters"));
        }
        let requested = if events.is_empty() { issuing.events_supported.clone() } else { events.to_vec() };
        Ok(StreamConfig {
            events_delivered: intersect(&issuing.events_supported, &requested),
            events_requested: requested,
            delivery: Delivery::Webhook { endpoint_url: url.to_string(), secret: secret.to_string() },
            stream_id: issuing.stream_id,
            iss: issuing.iss,
            aud: issuing.aud,
            events_supported: issuing.events_supported,
            min_verification_interval: issuing.min_verification_interval,
            description: Some("webhook".into()),
            poll_url: issuing.poll_url,
        })
    }

    /// Whether the receiver asked for events of this type.
    pub fn delivers(&self, event_uri: &str) -> bool {
        self.events_delivered.iter().any(|e| e == event_uri)
    }
}

/// A stream's status (SSF 1.0 §8.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// Events are transmitted.
    Enabled,
    /// Events are held and sent, in order, once enabled again.
    Paused,
    /// Events are dropped.
    Disabled,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Enabled => "enabled",
            StreamStatus::Paused => "paused",
            StreamStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<StreamStatus> {
        match s {
            "enabled" => Some(StreamStatus::Enabled),
            "paused" => Some(StreamStatus::Paused),
            "disabled" => Some(StreamStatus::Disabled),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISK: &str = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    const REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    fn issuing() -> Issuing {
        Issuing {
            stream_id: "s1".into(),
            iss: "https://tenet.example".into(),
            aud: "urn:tenet:ssf:receiver:idp".into(),
            events_supported: vec![REVOKED.into(), RISK.into()],
            min_verification_interval: 15,
            poll_url: "https://tenet.example/ssf/poll/s1".into(),
        }
    }

    fn push(url: &str) -> Value {
        json!({"method": PUSH, "endpoint_url": url, "authorization_header": "Bearer secret-of-the-receiver"})
    }

    #[test]
    fn events_delivered_is_what_is_both_supported_and_requested() {
        let body = json!({"events_requested": [RISK, "urn:example:unknown", RISK], "delivery": push("https://rx.example/events")});
        let s = StreamConfig::create(&body, issuing()).unwrap();
        assert_eq!(s.events_requested, vec![RISK.to_string(), "urn:example:unknown".into()]);
        assert_eq!(s.events_delivered, vec![RISK.to_string()]);
        assert!(s.delivers(RISK) && !s.delivers(REVOKED));
    }

    #[test]
    fn a_stream_created_without_delivery_is_polled_at_the_url_tenet_assigns() {
        let s = StreamConfig::create(&json!({"events_requested": [RISK]}), issuing()).unwrap();
        assert_eq!(
            s.to_json()["delivery"],
            json!({"method": POLL, "endpoint_url": "https://tenet.example/ssf/poll/s1"})
        );
    }

    #[test]
    fn the_push_authorization_secret_is_kept_but_never_shown() {
        let s = StreamConfig::create(&json!({"delivery": push("https://rx.example/e")}), issuing()).unwrap();
        assert!(!s.to_json().to_string().contains("secret-of-the-receiver"));
        assert_eq!(s.to_json()["delivery"], json!({"method": PUSH, "endpoint_url": "https://rx.example/e"}));
        let back = StreamConfig::from_stored(&s.to_stored()).unwrap();
        assert_eq!(back, s, "the store keeps it");
    }

    #[test]
    fn patch_keeps_what_it_omits_and_put_removes_it() {
        let s = StreamConfig::create(
            &json!({"events_requested": [RISK], "delivery": push("https://rx.example/e"), "description": "idp"}),
            issuing(),
        )
        .unwrap();
        let patched = s.patch(&json!({"stream_id": "s1", "description": "the IdP"})).unwrap();
        assert_eq!(patched.description.as_deref(), Some("the IdP"));
        assert_eq!(
            (patched.events_delivered.clone(), patched.delivery.clone()),
            (s.events_delivered.clone(), s.delivery.clone())
        );
        let replaced = s.replace(&json!({"stream_id": "s1", "events_requested": [REVOKED]})).unwrap();
        assert_eq!(replaced.description, None, "omitted: removed");
        assert_eq!(replaced.events_delivered, vec![REVOKED.to_string()]);
        assert_eq!(replaced.delivery, Delivery::Poll { endpoint_url: s.poll_url.clone() }, "no delivery: polled");
        let emptied = s.replace(&json!({"stream_id": "s1"})).unwrap();
        assert!(emptied.events_requested.is_empty() && emptied.events_delivered.is_empty());
    }

    #[test]
    fn transmitter_properties_may_be_repeated_only_unchanged() {
        let s = StreamConfig::create(&json!({"events_requested": [RISK]}), issuing()).unwrap();
        let same = s.to_json();
        assert_eq!(s.replace(&same).unwrap(), s, "the configuration as read, sent back, changes nothing");
        let e = s.patch(&json!({"stream_id": "s1", "aud": "someone-else"})).unwrap_err();
        assert_eq!(e.field, "/aud");
        let e = s.patch(&json!({"stream_id": "s1", "events_delivered": [REVOKED]})).unwrap_err();
        assert_eq!(e.field, "/events_delivered");
        let e = StreamConfig::create(&json!({"iss": "https://tenet.example"}), issuing()).unwrap_err();
        assert_eq!(e.field, "/iss");
    }

    #[test]
    fn bad_requests_are_refused_with_the_property_and_the_reason() {
        let cases = [
            (json!([]), ""),
            (json!({"events_requested": RISK}), "/events_requested"),
            (json!({"events_requested": []}), "/events_requested"),
            (json!({"events_requested": [1]}), "/events_requested/0"),
            (json!({"delivery": {"method": "urn:example:carrier-pigeon"}}), "/delivery/method"),
            (json!({"delivery": {"endpoint_url": "https://rx.example"}}), "/delivery/method"),
            (json!({"delivery": {"method": PUSH}}), "/delivery/endpoint_url"),
            (json!({"delivery": {"method": PUSH, "endpoint_url": "ftp://rx.example"}}), "/delivery/endpoint_url"),
            (json!({"delivery": {"method": PUSH, "endpoint_url": "https:///nohost"}}), "/delivery/endpoint_url"),
            (json!({"delivery": {"method": PUSH, "endpoint_url": "https://rx.example/a b"}}), "/delivery/endpoint_url"),
            (
                json!({"delivery": {"method": PUSH, "endpoint_url": "https://rx", "authorization_header": "a\nb"}}),
                "/delivery/authorization_header",
            ),
            (json!({"delivery": {"method": POLL, "endpoint_url": "https://rx.example"}}), "/delivery/endpoint_url"),
            (json!({"delivery": {"method": POLL, "colour": "red"}}), "/delivery/colour"),
            (json!({"description": 5}), "/description"),
            (json!({"description": "x".repeat(2000)}), "/description"),
            (json!({"stream_id": "mine"}), "/stream_id"),
            (json!({"format": "json"}), "/format"),
        ];
        for (body, field) in cases {
            let e = StreamConfig::create(&body, issuing()).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
            assert!(!e.reason.is_empty());
        }
        let s = StreamConfig::create(&json!({}), issuing()).unwrap();
        assert_eq!(s.patch(&json!({"description": "x"})).unwrap_err().field, "/stream_id");
        assert_eq!(s.replace(&json!({"stream_id": "s2"})).unwrap_err().field, "/stream_id");
    }

    #[test]
    fn statuses_are_the_three_ssf_names() {
        for s in [StreamStatus::Enabled, StreamStatus::Paused, StreamStatus::Disabled] {
            assert_eq!(StreamStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(StreamStatus::parse("Enabled"), None);
    }
}
