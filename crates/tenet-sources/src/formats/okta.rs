//! Okta System Log events (`/api/v1/logs` arrays, or NDJSON exports).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use tenet_model::ocsf::{self, ActivityId, ClassUid};
use tenet_model::{
    Action, Event, EventId, Fact, Outcome, Principal, PrincipalKind, RawRecord, Resource, Session, Source,
    SourceContext, Status, Timestamp, TrustChange,
};

use crate::format::{Format, Sample};
use crate::framing::{self, RecordError};
use crate::json;
use crate::json::FieldFailure;

pub struct Okta;

pub const NAME: &str = "okta";

impl Format for Okta {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, sample: &Sample) -> bool {
        sample.any_record(|r| {
            r.get("eventType").is_some_and(|v| v.is_string())
                && r.contains_key("published")
                && (r.contains_key("uuid") || r.contains_key("actor"))
        })
    }

    fn read_records(
        &self,
        data: &Bytes,
        records: &[framing::Record<'_>],
        emit: &mut dyn FnMut(Result<Event, RecordError>),
    ) {
        json::read_each::<LogEvent>(data, records, emit, normalise);
    }
}

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEvent<'a> {
    #[serde(borrow)]
    uuid: Option<Str<'a>>,
    #[serde(borrow)]
    published: Str<'a>,
    #[serde(borrow)]
    event_type: Str<'a>,
    #[serde(borrow)]
    actor: Option<Actor<'a>>,
    #[serde(borrow)]
    client: Option<Client<'a>>,
    #[serde(borrow)]
    outcome: Option<OktaOutcome<'a>>,
    #[serde(borrow, default)]
    target: Option<Vec<Target<'a>>>,
    #[serde(borrow)]
    authentication_context: Option<AuthContext<'a>>,
    #[serde(borrow)]
    debug_context: Option<DebugContext<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Actor<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    alternate_id: Option<Str<'a>>,
    #[serde(borrow)]
    display_name: Option<Str<'a>>,
}

type Target<'a> = Actor<'a>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Client<'a> {
    #[serde(borrow)]
    ip_address: Option<Str<'a>>,
    #[serde(borrow)]
    user_agent: Option<UserAgent<'a>>,
    #[serde(borrow)]
    device: Option<Str<'a>>,
    #[serde(borrow)]
    geographical_context: Option<Geo<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserAgent<'a> {
    #[serde(borrow)]
    raw_user_agent: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Geo<'a> {
    #[serde(borrow)]
    country: Option<Str<'a>>,
    #[serde(borrow)]
    state: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct OktaOutcome<'a> {
    #[serde(borrow)]
    result: Option<Str<'a>>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthContext<'a> {
    #[serde(borrow)]
    external_session_id: Option<Str<'a>>,
    #[serde(borrow)]
    credential_type: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DebugContext<'a> {
    #[serde(borrow, default)]
    debug_data: Option<DebugData<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DebugData<'a> {
    /// Okta writes the factor used for authentication here.
    #[serde(borrow)]
    factor: Option<Str<'a>>,
}

fn normalise(l: &LogEvent<'_>, raw: RawRecord) -> Result<Event, FieldFailure> {
    let time = Timestamp::parse_rfc3339(&l.published).map_err(|e| ("published", e.to_string()))?;
    if l.event_type.is_empty() {
        return Err(("eventType", "empty event type".to_string()));
    }
    let actor = l.actor.as_ref().map(principal).unwrap_or_else(Principal::unknown);
    let outcome = match l.outcome.as_ref().and_then(|o| o.result.as_deref()) {
        Some("SUCCESS" | "ALLOW") => Outcome::success(),
        Some(r @ ("FAILURE" | "DENY")) => Outcome::failure(
            Some(r.to_string()),
            l.outcome.as_ref().and_then(|o| o.reason.as_ref()).map(|s| s.to_string()),
        ),
        Some(other) => Outcome {
            status: Status::Unknown,
            code: Some(other.to_string()),
            message: l.outcome.as_ref().and_then(|o| o.reason.as_ref()).map(|s| s.to_string()),
        },
        None => Outcome::unknown(),
    };
    let mut context = SourceContext::default();
    if let Some(c) = &l.client {
        context.set_origin(c.ip_address.as_deref());
        context.user_agent = c.user_agent.as_ref().and_then(|u| u.raw_user_agent.as_ref()).map(|s| s.to_string());
        context.device = c.device.as_ref().map(|s| s.to_string());
        context.region = c.geographical_context.as_ref().and_then(|g| match (&g.country, &g.state) {
            (Some(c), Some(s)) => Some(format!("{c}/{s}")),
            (Some(c), None) => Some(c.to_string()),
            _ => None,
        });
    }
    let auth = l.authentication_context.as_ref();
    let factor = l.debug_context.as_ref().and_then(|d| d.debug_data.as_ref()).and_then(|d| d.factor.as_deref());
    let session =
        auth.and_then(|a| a.external_session_id.as_deref()).filter(|s| !s.is_empty() && *s != "unknown").map(|sid| {
            Session {
                id: Some(sid.to_string()),
                credential_id: None,
                issued_at: None,
                mfa: mfa_from(l.event_type.as_ref(), auth.and_then(|a| a.credential_type.as_deref()), factor),
            }
        });
    let resources = l
        .target
        .iter()
        .flatten()
        .map(|t| Resource {
            kind: t.kind.as_deref().unwrap_or("unknown").to_string(),
            id: format!("okta:{}", t.id.as_deref().or(t.alternate_id.as_deref()).unwrap_or("unknown")),
            account: None,
            name: t.alternate_id.as_ref().or(t.display_name.as_ref()).map(|s| s.to_string()),
        })
        .collect();
    let (class_uid, activity_id) = classify(&l.event_type);
    let changes = if outcome.status == Status::Success { trust_changes(l) } else { Vec::new() };
    let id = match &l.uuid {
        Some(u) if !u.is_empty() => EventId(u.to_string()),
        _ => EventId(json::content_id("okta:", raw.as_bytes())),
    };
    Ok(Event {
        id,
        time,
        class_uid,
        activity_id,
        actor,
        chain: Vec::new(),
        session,
        action: Action::new("okta", l.event_type.as_ref()),
        resources,
        outcome,
        context,
        trace: None,
        source: Source { format: NAME.to_string(), system: "okta".to_string(), tenant: None },
        issued: None,
        changes,
        raw,
    })
}

/// The trust changes of a successful event: group membership added or
/// removed, and the email a user's Okta id stands for.
fn trust_changes(l: &LogEvent<'_>) -> Vec<TrustChange> {
    let mut out = Vec::new();
    if let Some(a) = l.actor.as_ref().filter(|a| a.kind.as_deref() == Some("User")) {
        out.extend(same_as(a));
    }
    let event_type = l.event_type.as_ref();
    if matches!(event_type, "group.user_membership.add" | "group.user_membership.remove") {
        let targets = l.target.as_deref().unwrap_or_default();
        let of = |kind: &'static str| targets.iter().filter(move |t| t.kind.as_deref() == Some(kind));
        for user in of("User") {
            out.extend(same_as(user));
        }
        for user in of("User").filter_map(okta_id) {
            for group in of("UserGroup").filter_map(okta_id) {
                let fact = Fact::Member { member: user.clone(), group };
                out.push(match event_type {
                    "group.user_membership.add" => TrustChange::Assert { fact },
                    _ => TrustChange::Retract { key: fact.key() },
                });
            }
        }
    }
    out
}

/// `okta:<id>` for an actor or target with a real id.
fn okta_id(a: &Actor<'_>) -> Option<String> {
    a.id.as_deref().filter(|id| !id.is_empty() && *id != "unknown").map(|id| format!("okta:{id}"))
}

/// An Okta user's id is the same person as their email login.
fn same_as(a: &Actor<'_>) -> Option<TrustChange> {
    let email = a.alternate_id.as_deref().filter(|alt| alt.contains('@'))?;
    Some(TrustChange::Observe { fact: Fact::SameAs { a: okta_id(a)?, b: format!("user:{email}") } })
}

fn mfa_from(event_type: &str, credential_type: Option<&str>, factor: Option<&str>) -> Option<bool> {
    if event_type.starts_with("user.authentication.auth_via_mfa") || factor.is_some() {
        return Some(true);
    }
    credential_type.map(|c| !c.eq_ignore_ascii_case("PASSWORD"))
}

fn principal(a: &Actor<'_>) -> Principal {
    let kind = match a.kind.as_deref() {
        Some("User") => PrincipalKind::Human,
        Some("SystemPrincipal") => PrincipalKind::CloudService,
        Some("PublicClientApp" | "AppInstance" | "Client" | "ApiToken") => PrincipalKind::Workload,
        _ => PrincipalKind::Unknown,
    };
    let id = match (&a.id, &a.alternate_id) {
        (Some(id), _) if !id.is_empty() && id != "unknown" => format!("okta:{id}"),
        (_, Some(alt)) => format!("okta:{alt}"),
        _ => "okta:unknown".to_string(),
    };
    Principal::new(id, kind).with_name_opt(a.alternate_id.as_deref().or(a.display_name.as_deref()))
}

/// OCSF class for an Okta event type, by its dotted family.
fn classify(event_type: &str) -> (ClassUid, ActivityId) {
    let a = ActivityId;
    match event_type {
        "user.session.start" => (ClassUid::AUTHENTICATION, ocsf::authentication::LOGON),
        "user.session.end" => (ClassUid::AUTHENTICATION, ocsf::authentication::LOGOFF),
        t if t.starts_with("user.authentication.") || t.starts_with("user.session.") => {
            (ClassUid::AUTHENTICATION, ActivityId::OTHER)
        }
        "user.lifecycle.create" => (ClassUid::USER_MANAGEMENT, a(1)),
        "user.lifecycle.activate" | "user.lifecycle.reactivate" | "user.lifecycle.unsuspend" => {
            (ClassUid::USER_MANAGEMENT, a(4))
        }
        "user.account.update_password" => (ClassUid::USER_MANAGEMENT, a(8)),
        "user.account.reset_password" => (ClassUid::USER_MANAGEMENT, a(9)),
        "user.lifecycle.deactivate" | "user.lifecycle.suspend" => (ClassUid::USER_MANAGEMENT, a(5)),
        "user.lifecycle.delete.initiated" | "user.lifecycle.delete.completed" => (ClassUid::USER_MANAGEMENT, a(3)),
        "user.account.lock" => (ClassUid::USER_MANAGEMENT, a(6)),
        "user.mfa.factor.activate" => (ClassUid::USER_MANAGEMENT, a(12)),
        "user.mfa.factor.deactivate" | "user.mfa.factor.reset_all" => (ClassUid::USER_MANAGEMENT, a(13)),
        "user.account.unlock" => (ClassUid::USER_MANAGEMENT, a(7)),
        "group.user_membership.add" => (ClassUid::GROUP_MANAGEMENT, a(3)),
        "group.user_membership.remove" => (ClassUid::GROUP_MANAGEMENT, a(4)),
        "group.lifecycle.delete" => (ClassUid::GROUP_MANAGEMENT, a(5)),
        "group.lifecycle.create" => (ClassUid::GROUP_MANAGEMENT, a(6)),
        "group.privilege.grant" => (ClassUid::GROUP_MANAGEMENT, a(1)),
        "group.privilege.revoke" => (ClassUid::GROUP_MANAGEMENT, a(2)),
        "user.account.privilege.grant" | "application.user_membership.add" => (ClassUid::USER_MANAGEMENT, a(14)),
        "user.account.privilege.revoke" | "application.user_membership.remove" => (ClassUid::USER_MANAGEMENT, a(15)),
        t if t.starts_with("app.oauth2.") && t.contains("token.grant") => (ClassUid::AUTHORIZE_SESSION, a(1)),
        t if t.starts_with("user.lifecycle.") || t.starts_with("user.account.") => {
            (ClassUid::USER_MANAGEMENT, ActivityId::OTHER)
        }
        t if t.starts_with("group.") => (ClassUid::GROUP_MANAGEMENT, ActivityId::OTHER),
        t => (ClassUid::API_ACTIVITY, ocsf::api_activity_for_operation(t.rsplit('.').next().unwrap_or(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_start_is_a_logon_by_the_user() {
        let data = br#"[{"uuid":"u1","published":"2026-03-01T09:00:00.123Z","eventType":"user.session.start","actor":{"id":"00u1","type":"User","alternateId":"alice@corp.example","displayName":"Alice"},"client":{"ipAddress":"203.0.113.9","userAgent":{"rawUserAgent":"Mozilla/5.0"}},"outcome":{"result":"SUCCESS"},"authenticationContext":{"externalSessionId":"102abc","credentialType":"PASSWORD"},"target":[{"id":"0oa1","type":"AppInstance","alternateId":"AWS"}]}]"#;
        let mut out = Vec::new();
        Okta.read(&Bytes::copy_from_slice(data), &mut |r| out.push(r.unwrap()));
        let e = &out[0];
        assert_eq!(e.id.as_str(), "u1");
        assert_eq!(e.class_uid, ClassUid::AUTHENTICATION);
        assert_eq!(e.actor.id, "okta:00u1");
        assert_eq!(e.actor.name.as_deref(), Some("alice@corp.example"));
        assert_eq!(e.session.as_ref().unwrap().mfa, Some(false));
        assert_eq!(e.resources[0].id, "okta:0oa1");
        assert_eq!(e.time.to_string(), "2026-03-01T09:00:00.123Z");
    }
}
