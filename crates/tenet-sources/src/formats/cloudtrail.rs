//! AWS CloudTrail: S3 delivery files `{"Records":[…]}`, plain arrays, and
//! NDJSON exports (including ELK-style exports with `@timestamp`).
//!
//! Every `userIdentity.type` maps onto the actor chain:
//! - `IAMUser`, `Root`: the user itself;
//! - `AssumedRole`: the session, acting for its role (`sessionIssuer`), acting
//!   for whoever assumed it when the record says so (`onBehalfOf`,
//!   `sourceIdentity`) or when the pipeline links the session's access key
//!   to the `AssumeRole` call that issued it;
//! - `FederatedUser`: the federated session acting for the IAM user that called
//!   `GetFederationToken`;
//! - `AWSService`, `AWSAccount`, `IdentityCenterUser`, `Unknown`, and records
//!   without a type (service-initiated events with only `invokedBy`).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tenet_model::ocsf::{self, ActivityId, ClassUid};
use tenet_model::{
    Action, Event, EventId, IssuedCredential, Outcome, Principal, PrincipalKind, RawRecord, Resource, Session, Source,
    SourceContext, Timestamp,
};

use crate::format::{Format, Sample};
use crate::framing::{self, RecordError};
use crate::json;

pub struct CloudTrail;

pub const NAME: &str = "cloudtrail";

impl Format for CloudTrail {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, sample: &Sample) -> bool {
        sample.has_top_key("Records")
            || sample.any_record(|r| {
                r.contains_key("eventSource")
                    && r.contains_key("eventName")
                    && (r.contains_key("eventTime") || r.contains_key("@timestamp"))
            })
    }

    fn read(&self, data: &Bytes, emit: &mut dyn FnMut(Result<Event, RecordError>)) {
        let framed = framing::frame(data, &["Records"]);
        for e in framed.errors {
            emit(Err(e));
        }
        for record in &framed.records {
            emit(json::parse::<Record>(data, record).and_then(|r| {
                normalise(&r, RawRecord(data.slice_ref(record.bytes)))
                    .map_err(|(f, why)| json::field_error(data, record, f, why))
            }));
        }
    }
}

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    #[serde(borrow)]
    event_time: Option<Str<'a>>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    event_source: Str<'a>,
    #[serde(borrow)]
    event_name: Str<'a>,
    #[serde(borrow, rename = "eventID")]
    event_id: Option<Str<'a>>,
    #[serde(borrow)]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow)]
    aws_region: Option<Str<'a>>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip_address: Option<Str<'a>>,
    #[serde(borrow)]
    user_agent: Option<Str<'a>>,
    #[serde(borrow)]
    error_code: Option<Str<'a>>,
    #[serde(borrow)]
    error_message: Option<Str<'a>>,
    read_only: Option<bool>,
    #[serde(borrow)]
    recipient_account_id: Option<Str<'a>>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    additional_event_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resources: Vec<TrailResource<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    arn: Option<Str<'a>>,
    #[serde(borrow)]
    principal_id: Option<Str<'a>>,
    #[serde(borrow)]
    account_id: Option<Str<'a>>,
    #[serde(borrow)]
    access_key_id: Option<Str<'a>>,
    #[serde(borrow)]
    user_name: Option<Str<'a>>,
    #[serde(borrow)]
    invoked_by: Option<Str<'a>>,
    #[serde(borrow)]
    session_context: Option<SessionContext<'a>>,
    #[serde(borrow)]
    on_behalf_of: Option<OnBehalfOf<'a>>,
    #[serde(borrow)]
    credential_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    #[serde(borrow)]
    session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow)]
    attributes: Option<SessionAttributes<'a>>,
    #[serde(borrow)]
    source_identity: Option<Str<'a>>,
    #[serde(borrow)]
    web_id_federation_data: Option<WebIdFederation<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionIssuer<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    arn: Option<Str<'a>>,
    #[serde(borrow)]
    user_name: Option<Str<'a>>,
    #[serde(borrow)]
    account_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionAttributes<'a> {
    #[serde(borrow)]
    creation_date: Option<Str<'a>>,
    /// `"true"`/`"false"` as strings in CloudTrail, booleans in some exports.
    #[serde(borrow)]
    mfa_authenticated: Option<BoolOrString<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrString<'a> {
    Bool(bool),
    #[serde(borrow)]
    Str(Str<'a>),
}

impl BoolOrString<'_> {
    fn as_bool(&self) -> Option<bool> {
        match self {
            BoolOrString::Bool(b) => Some(*b),
            BoolOrString::Str(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") => Some(true),
            BoolOrString::Str(s) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") => Some(false),
            BoolOrString::Str(_) => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebIdFederation<'a> {
    #[serde(borrow)]
    federated_provider: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnBehalfOf<'a> {
    #[serde(borrow)]
    user_id: Option<Str<'a>>,
    #[serde(borrow)]
    identity_store_arn: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct TrailResource<'a> {
    #[serde(borrow, rename = "ARN", alias = "arn")]
    arn: Option<Str<'a>>,
    #[serde(borrow, rename = "accountId")]
    account_id: Option<Str<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
}

/// The request parameters that name a resource, across the services whose
/// calls matter for trust. Parsed leniently and separately: a surprise in
/// request parameters must not cost the record.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RequestParameters<'a> {
    #[serde(borrow)]
    role_arn: Option<Str<'a>>,
    #[serde(borrow)]
    role_name: Option<Str<'a>>,
    #[serde(borrow)]
    user_name: Option<Str<'a>>,
    #[serde(borrow)]
    group_name: Option<Str<'a>>,
    #[serde(borrow)]
    policy_arn: Option<Str<'a>>,
    #[serde(borrow)]
    policy_name: Option<Str<'a>>,
    #[serde(borrow)]
    bucket_name: Option<Str<'a>>,
    #[serde(borrow)]
    key: Option<Str<'a>>,
    #[serde(borrow)]
    secret_id: Option<Str<'a>>,
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    function_name: Option<Str<'a>>,
    #[serde(borrow)]
    trail_name: Option<Str<'a>>,
    #[serde(borrow)]
    instance_id: Option<Str<'a>>,
    #[serde(borrow)]
    snapshot_id: Option<Str<'a>>,
    #[serde(borrow)]
    image_id: Option<Str<'a>>,
    #[serde(borrow)]
    key_id: Option<Str<'a>>,
    #[serde(borrow)]
    group_id: Option<Str<'a>>,
    #[serde(borrow)]
    db_snapshot_identifier: Option<Str<'a>>,
    #[serde(borrow)]
    log_group_name: Option<Str<'a>>,
    #[serde(borrow)]
    detector_id: Option<Str<'a>>,
    #[serde(borrow)]
    instances_set: Option<InstancesSet<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InstancesSet<'a> {
    #[serde(borrow)]
    items: Vec<InstanceItem<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct InstanceItem<'a> {
    #[serde(borrow)]
    instance_id: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ResponseElements<'a> {
    #[serde(borrow)]
    credentials: Option<Credentials<'a>>,
    #[serde(borrow)]
    assumed_role_user: Option<AssumedRoleUser<'a>>,
    #[serde(borrow)]
    federated_user: Option<AssumedRoleUser<'a>>,
    #[serde(borrow, rename = "ConsoleLogin")]
    console_login: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials<'a> {
    #[serde(borrow)]
    access_key_id: Option<Str<'a>>,
    #[serde(borrow)]
    expiration: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssumedRoleUser<'a> {
    #[serde(borrow)]
    arn: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AdditionalEventData<'a> {
    #[serde(borrow, rename = "MFAUsed")]
    mfa_used: Option<Str<'a>>,
}

type FieldFailure = (&'static str, String);

fn lenient<'a, T: Deserialize<'a> + Default>(raw: Option<&'a RawValue>) -> T {
    raw.and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or_default()
}

fn normalise(r: &Record<'_>, raw: RawRecord) -> Result<Event, FieldFailure> {
    let time = match (&r.event_time, &r.at_timestamp) {
        (Some(t), _) => Timestamp::parse_rfc3339(t).map_err(|e| ("eventTime", e.to_string()))?,
        (None, Some(t)) => Timestamp::parse_rfc3339(t).map_err(|e| ("@timestamp", e.to_string()))?,
        (None, None) => return Err(("eventTime", "missing field `eventTime`".to_string())),
    };
    if r.event_name.is_empty() {
        return Err(("eventName", "empty event name".to_string()));
    }
    let service = service_of(&r.event_source);
    let params: RequestParameters = lenient(r.request_parameters);
    let response: ResponseElements = lenient(r.response_elements);
    let account =
        r.recipient_account_id.as_deref().or_else(|| r.user_identity.as_ref().and_then(|u| u.account_id.as_deref()));

    let (actor, chain, mut session) = actor_chain(r.user_identity.as_ref());
    if r.event_name == "ConsoleLogin" {
        let extra: AdditionalEventData = lenient(r.additional_event_data);
        if let Some(m) = extra.mfa_used {
            session.get_or_insert_with(Session::default).mfa = Some(m.eq_ignore_ascii_case("yes"));
        }
    }

    let outcome = match (&r.error_code, &response.console_login) {
        (Some(code), _) => Outcome::failure(Some(code.to_string()), r.error_message.as_ref().map(|m| m.to_string())),
        (None, Some(c)) if c.eq_ignore_ascii_case("failure") => {
            Outcome::failure(None, r.error_message.as_ref().map(|m| m.to_string()))
        }
        _ => Outcome::success(),
    };

    let mut context = SourceContext {
        region: r.aws_region.as_ref().map(|s| s.to_string()),
        user_agent: r.user_agent.as_ref().map(|s| s.to_string()),
        ..SourceContext::default()
    };
    context.set_origin(r.source_ip_address.as_deref());

    let resources = resources(r, &params, &response, service, account);
    let issued = issued_credential(&r.event_name, &response);
    let (class_uid, activity_id) = classify(service, &r.event_name);
    let id = match &r.event_id {
        Some(id) if !id.is_empty() => EventId(id.to_string()),
        _ => EventId(json::content_id("cloudtrail:", raw.as_bytes())),
    };

    Ok(Event {
        id,
        time,
        class_uid,
        activity_id,
        actor,
        chain,
        session,
        action: Action { service: service.to_string(), operation: r.event_name.to_string(), read_only: r.read_only },
        resources,
        outcome,
        context,
        trace: None,
        source: Source { format: NAME.to_string(), system: "aws".to_string(), tenant: account.map(str::to_string) },
        issued,
        raw,
    })
}

/// `iam.amazonaws.com` → `iam`: the IAM service prefix policies use.
fn service_of(event_source: &str) -> &str {
    event_source.strip_suffix(".amazonaws.com").unwrap_or(event_source)
}

fn actor_chain(identity: Option<&UserIdentity<'_>>) -> (Principal, Vec<Principal>, Option<Session>) {
    let Some(u) = identity else {
        return (Principal::unknown(), Vec::new(), None);
    };
    let account = u.account_id.as_deref();
    let attrs = u.session_context.as_ref().and_then(|c| c.attributes.as_ref());
    let session = if u.access_key_id.is_some() || attrs.is_some() || u.credential_id.is_some() {
        Some(Session {
            id: None,
            credential_id: u
                .access_key_id
                .as_deref()
                .or(u.credential_id.as_deref())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            issued_at: attrs.and_then(|a| a.creation_date.as_deref()).and_then(|d| Timestamp::parse_rfc3339(d).ok()),
            mfa: attrs.and_then(|a| a.mfa_authenticated.as_ref()).and_then(BoolOrString::as_bool),
        })
    } else {
        None
    };
    let issuer = u.session_context.as_ref().and_then(|c| c.session_issuer.as_ref()).filter(|i| i.arn.is_some());
    let kind = u.kind.as_deref().unwrap_or("");
    let mut chain = Vec::new();
    let actor = match kind {
        "IAMUser" => iam_principal(u, PrincipalKind::Human),
        "Root" => Principal::new(
            u.arn
                .as_deref()
                .map(str::to_string)
                .unwrap_or_else(|| format!("arn:aws:iam::{}:root", account.unwrap_or("unknown"))),
            PrincipalKind::Human,
        )
        .with_name("root")
        .with_account(account),
        "AssumedRole" => {
            let session_name = u.arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_string);
            if let Some(i) = issuer {
                chain.push(issuer_principal(i, PrincipalKind::Role));
            }
            if let Some(obo) = &u.on_behalf_of {
                chain.extend(identity_center_user(obo));
            }
            let ctx = u.session_context.as_ref();
            if let Some(src) = ctx.and_then(|c| c.source_identity.as_deref()).filter(|s| !s.is_empty()) {
                chain.push(Principal::new(format!("aws:source-identity/{src}"), PrincipalKind::Human).with_name(src));
            }
            if let Some(p) =
                ctx.and_then(|c| c.web_id_federation_data.as_ref()).and_then(|w| w.federated_provider.as_deref())
            {
                chain.push(Principal::new(format!("aws:web-identity/{p}"), PrincipalKind::Unknown).with_name(p));
            }
            let id = u
                .arn
                .as_deref()
                .map(str::to_string)
                .unwrap_or_else(|| format!("aws:session/{}", u.principal_id.as_deref().unwrap_or("unknown")));
            let role_name = issuer.and_then(|i| i.user_name.as_deref()).unwrap_or("");
            Principal::new(id, session_kind(role_name, session_name.as_deref(), &chain))
                .with_name_opt(session_name)
                .with_account(account)
        }
        "FederatedUser" => {
            if let Some(i) = issuer {
                chain.push(issuer_principal(i, PrincipalKind::Human));
            }
            let id =
                u.arn.as_deref().map(str::to_string).unwrap_or_else(|| {
                    format!("aws:federated-user/{}", u.principal_id.as_deref().unwrap_or("unknown"))
                });
            let name = u.arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_string);
            Principal::new(id, PrincipalKind::Human).with_name_opt(name).with_account(account)
        }
        "AWSService" => service_principal(u.invoked_by.as_deref()),
        "AWSAccount" => {
            let acct = account.or_else(|| u.principal_id.as_deref().and_then(|p| p.split(':').next()));
            Principal::new(format!("arn:aws:iam::{}:root", acct.unwrap_or("unknown")), PrincipalKind::Account)
                .with_account(acct)
                .with_name_opt(u.invoked_by.as_deref())
        }
        "IdentityCenterUser" => match &u.on_behalf_of {
            Some(obo) => identity_center_user(obo).unwrap_or_else(Principal::unknown).with_account(account),
            None => Principal::new(
                format!(
                    "aws:identitycenter-user/{}",
                    u.principal_id.as_deref().or(u.user_name.as_deref()).unwrap_or("unknown")
                ),
                PrincipalKind::Human,
            ),
        },
        "SAMLUser" | "WebIdentityUser" => {
            let name = u.user_name.as_deref().or(u.principal_id.as_deref()).unwrap_or("unknown");
            Principal::new(format!("aws:{}/{name}", kind.to_ascii_lowercase()), PrincipalKind::Human)
                .with_name(name)
                .with_account(account)
        }
        "" if u.invoked_by.is_some() => service_principal(u.invoked_by.as_deref()),
        _ => {
            // `Unknown` (e.g. a failed console login for a name that is not a
            // user) or a type this adapter has not seen: keep what is there.
            match u.arn.as_deref().or(u.user_name.as_deref()).or(u.principal_id.as_deref()) {
                Some(name) if u.arn.is_some() => Principal::new(name, PrincipalKind::Unknown)
                    .with_name_opt(u.user_name.as_deref())
                    .with_account(account),
                Some(name) => {
                    Principal::new(format!("aws:unknown/{}/{name}", account.unwrap_or("-")), PrincipalKind::Unknown)
                        .with_name(name)
                        .with_account(account)
                }
                None if kind == "Anonymous" => Principal::new("aws:anonymous", PrincipalKind::Anonymous),
                None => Principal::unknown(),
            }
        }
    };
    (actor, chain, session)
}

fn iam_principal(u: &UserIdentity<'_>, kind: PrincipalKind) -> Principal {
    let account = u.account_id.as_deref();
    let id = match (&u.arn, &u.user_name) {
        (Some(arn), _) => arn.to_string(),
        (None, Some(name)) => format!("arn:aws:iam::{}:user/{name}", account.unwrap_or("unknown")),
        (None, None) => format!("aws:principal/{}", u.principal_id.as_deref().unwrap_or("unknown")),
    };
    let name = u
        .user_name
        .as_deref()
        .map(str::to_string)
        .or_else(|| u.arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_string));
    Principal::new(id, kind).with_name_opt(name).with_account(account)
}

fn issuer_principal(i: &SessionIssuer<'_>, default: PrincipalKind) -> Principal {
    let kind = match i.kind.as_deref() {
        Some("Role") => PrincipalKind::Role,
        Some("IAMUser") => PrincipalKind::Human,
        Some("Root") => PrincipalKind::Human,
        _ => default,
    };
    Principal::new(i.arn.as_deref().unwrap_or("unknown"), kind)
        .with_name_opt(i.user_name.as_deref())
        .with_account(i.account_id.as_deref())
}

fn service_principal(invoked_by: Option<&str>) -> Principal {
    match invoked_by {
        Some(s) => Principal::new(format!("aws:service/{s}"), PrincipalKind::CloudService).with_name(s),
        None => Principal::new("aws:service/unknown", PrincipalKind::CloudService),
    }
}

fn identity_center_user(obo: &OnBehalfOf<'_>) -> Option<Principal> {
    let user = obo.user_id.as_deref()?;
    let store = obo.identity_store_arn.as_deref().and_then(|a| a.rsplit('/').next()).unwrap_or("-");
    Some(Principal::new(format!("aws:identitycenter-user/{store}/{user}"), PrincipalKind::Human).with_name(user))
}

/// A role session is as human as whoever holds it. The chain says so when
/// known; otherwise the role and session names often do (SSO permission sets
/// are people, EC2 instance ids and Lambda functions are workloads).
fn session_kind(role_name: &str, session_name: Option<&str>, chain: &[Principal]) -> PrincipalKind {
    if chain.iter().any(|p| p.kind == PrincipalKind::Human) || role_name.starts_with("AWSReservedSSO_") {
        return PrincipalKind::Human;
    }
    let s = session_name.unwrap_or("");
    let instance_like = s.starts_with("i-") && s.len() > 2 && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if instance_like || role_name.starts_with("AWSServiceRoleFor") || s.starts_with("botocore-session") {
        return PrincipalKind::Workload;
    }
    PrincipalKind::Unknown
}

fn issued_credential(event_name: &str, response: &ResponseElements<'_>) -> Option<IssuedCredential> {
    if !matches!(
        event_name,
        "AssumeRole"
            | "AssumeRoleWithSAML"
            | "AssumeRoleWithWebIdentity"
            | "GetFederationToken"
            | "GetSessionToken"
            | "AssumeRoot"
    ) {
        return None;
    }
    let creds = response.credentials.as_ref()?;
    let key = creds.access_key_id.as_deref()?;
    let to_arn =
        response.assumed_role_user.as_ref().or(response.federated_user.as_ref()).and_then(|u| u.arn.as_deref());
    let kind = match event_name {
        "GetFederationToken" => PrincipalKind::Human,
        _ => PrincipalKind::Unknown,
    };
    Some(IssuedCredential {
        credential_id: key.to_string(),
        to: Principal::new(to_arn.unwrap_or("unknown"), kind),
        expires: creds.expiration.as_deref().and_then(parse_aws_time),
    })
}

/// STS writes expirations as RFC 3339 or as `Jul 10, 2023, 1:07:35 PM`.
fn parse_aws_time(s: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(s).ok().or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%b %e, %Y, %l:%M:%S %p")
            .ok()
            .and_then(|n| Timestamp::from_chrono(n.and_utc()))
    })
}

fn arn_of(service: &str, account: Option<&str>, kind: &str, name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    match service {
        "iam" => format!("arn:aws:iam::{}:{kind}/{name}", account.unwrap_or("")),
        _ => format!("arn:aws:{service}::{}:{kind}/{name}", account.unwrap_or("")),
    }
}

fn resources(
    r: &Record<'_>,
    p: &RequestParameters<'_>,
    response: &ResponseElements<'_>,
    service: &str,
    account: Option<&str>,
) -> Vec<Resource> {
    let mut out: Vec<Resource> = r
        .resources
        .iter()
        .filter_map(|res| {
            Some(Resource {
                kind: res.kind.as_deref().unwrap_or("AWS::Unknown").to_string(),
                id: res.arn.as_deref()?.to_string(),
                account: res.account_id.as_deref().or(account).map(str::to_string),
                name: None,
            })
        })
        .collect();
    let mut push = |kind: &str, id: String, name: Option<&str>| {
        if !out.iter().any(|x| x.id == id) {
            out.push(Resource {
                kind: kind.to_string(),
                id,
                account: account.map(str::to_string),
                name: name.map(str::to_string),
            });
        }
    };
    if let Some(arn) = p.role_arn.as_deref() {
        push("AWS::IAM::Role", arn.to_string(), arn.rsplit('/').next());
    }
    if service == "iam" {
        if let Some(n) = p.role_name.as_deref() {
            push("AWS::IAM::Role", arn_of("iam", account, "role", n), Some(n));
        }
        if let Some(n) = p.user_name.as_deref() {
            push("AWS::IAM::User", arn_of("iam", account, "user", n), Some(n));
        }
        if let Some(n) = p.group_name.as_deref() {
            push("AWS::IAM::Group", arn_of("iam", account, "group", n), Some(n));
        }
    }
    if let Some(arn) = p.policy_arn.as_deref() {
        push("AWS::IAM::Policy", arn.to_string(), arn.rsplit('/').next());
    }
    if let Some(b) = p.bucket_name.as_deref() {
        match p.key.as_deref() {
            Some(k) => push("AWS::S3::Object", format!("arn:aws:s3:::{b}/{k}"), Some(k)),
            None => push("AWS::S3::Bucket", format!("arn:aws:s3:::{b}"), Some(b)),
        }
    }
    if let Some(s) = p.secret_id.as_deref() {
        push("AWS::SecretsManager::Secret", arn_of("secretsmanager", account, "secret", s), Some(s));
    }
    if let Some(f) = p.function_name.as_deref() {
        push("AWS::Lambda::Function", arn_of("lambda", account, "function", f), Some(f));
    }
    match service {
        "ssm" => {
            if let Some(n) = p.name.as_deref() {
                push("AWS::SSM::Parameter", arn_of("ssm", account, "parameter", n.trim_start_matches('/')), Some(n));
            }
        }
        "cloudtrail" => {
            if let Some(n) = p.name.as_deref().or(p.trail_name.as_deref()) {
                push("AWS::CloudTrail::Trail", arn_of("cloudtrail", account, "trail", n), Some(n));
            }
        }
        _ => {}
    }
    if let Some(i) = p.instance_id.as_deref() {
        push("AWS::EC2::Instance", arn_of("ec2", account, "instance", i), Some(i));
    }
    if let Some(set) = &p.instances_set {
        for i in set.items.iter().filter_map(|i| i.instance_id.as_deref()) {
            push("AWS::EC2::Instance", arn_of("ec2", account, "instance", i), Some(i));
        }
    }
    for (kind, rtype, v) in [
        ("AWS::EC2::Snapshot", "snapshot", &p.snapshot_id),
        ("AWS::EC2::Image", "image", &p.image_id),
        ("AWS::EC2::SecurityGroup", "security-group", &p.group_id),
        ("AWS::KMS::Key", "key", &p.key_id),
        ("AWS::RDS::DBSnapshot", "snapshot", &p.db_snapshot_identifier),
        ("AWS::Logs::LogGroup", "log-group", &p.log_group_name),
        ("AWS::GuardDuty::Detector", "detector", &p.detector_id),
    ] {
        if let Some(v) = v.as_deref() {
            let svc = kind.split("::").nth(1).map(str::to_ascii_lowercase).unwrap_or_default();
            push(kind, arn_of(&svc, account, rtype, v), Some(v));
        }
    }
    if let Some(u) = response.assumed_role_user.as_ref().and_then(|u| u.arn.as_deref()) {
        push("AWS::STS::AssumedRole", u.to_string(), None);
    }
    out
}

/// OCSF class and activity for a CloudTrail call, following the AWS Security
/// Lake mapping: sign-ins are Authentication, IAM identity changes are
/// Account / Group / Role Management, everything else API Activity.
pub fn classify(service: &str, event: &str) -> (ClassUid, ActivityId) {
    match (service, event) {
        ("signin", "ConsoleLogin") => (ClassUid::AUTHENTICATION, ocsf::authentication::LOGON),
        ("signin", _) => (ClassUid::AUTHENTICATION, ActivityId::OTHER),
        ("iam", e) if e.ends_with("Group") || e.contains("UserToGroup") || e.contains("GroupPolic") => {
            (ClassUid::GROUP_MANAGEMENT, group_activity(e))
        }
        ("iam", e) if e.contains("Role") && !e.contains("User") => (ClassUid::ROLE_MANAGEMENT, role_activity(e)),
        ("iam", e)
            if e.contains("User")
                || e.contains("AccessKey")
                || e.contains("LoginProfile")
                || e.contains("MFADevice")
                || e.contains("SSHPublicKey") =>
        {
            (ClassUid::ACCOUNT_CHANGE, account_activity(e))
        }
        _ => (ClassUid::API_ACTIVITY, ocsf::api_activity_for_operation(event)),
    }
}

fn account_activity(e: &str) -> ActivityId {
    ActivityId(match e {
        _ if e.starts_with("Create") => 1,
        _ if e.contains("MFADevice") && (e.starts_with("Enable") || e.starts_with("Create")) => 10,
        _ if e.contains("MFADevice") && (e.starts_with("Deactivate") || e.starts_with("Delete")) => 11,
        _ if e.starts_with("Delete") => 6,
        _ if e.starts_with("Attach") || e.starts_with("Put") => 7,
        _ if e.starts_with("Detach") => 8,
        "UpdateLoginProfile" | "ChangePassword" => 3,
        _ => 99,
    })
}

fn group_activity(e: &str) -> ActivityId {
    ActivityId(match e {
        "AddUserToGroup" => 3,
        "RemoveUserFromGroup" => 4,
        "DeleteGroup" => 5,
        "CreateGroup" => 6,
        "AttachGroupPolicy" | "PutGroupPolicy" => 10,
        "DetachGroupPolicy" | "DeleteGroupPolicy" => 11,
        _ if e.starts_with("Update") => 9,
        _ => 99,
    })
}

fn role_activity(e: &str) -> ActivityId {
    ActivityId(match e {
        "CreateRole" => 1,
        "DeleteRole" => 3,
        "AttachRolePolicy" | "PutRolePolicy" => 8,
        "DetachRolePolicy" | "DeleteRolePolicy" => 9,
        _ if e.starts_with("Update") || e.starts_with("Tag") || e.starts_with("Untag") => 2,
        _ => 99,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> (Vec<Event>, Vec<RecordError>) {
        let data = Bytes::copy_from_slice(data);
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        CloudTrail.read(&data, &mut |r| match r {
            Ok(e) => ok.push(e),
            Err(e) => bad.push(e),
        });
        (ok, bad)
    }

    const ASSUMED: &str = r#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-08-01T11:30:22Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventID":"e1","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","recipientAccountId":"111122223333",
      "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/ops/alice-session","principalId":"AROA1:alice-session","accountId":"111122223333","accessKeyId":"ASIAX",
        "sessionContext":{"attributes":{"creationDate":"2024-08-01T11:30:00Z","mfaAuthenticated":"true"},"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/ops","userName":"ops","accountId":"111122223333"}}},
      "requestParameters":{"instancesSet":{"items":[{"instanceId":"i-0abc"}]}}}]}"#;

    #[test]
    fn assumed_role_becomes_session_acting_for_role() {
        let (ev, bad) = read_all(ASSUMED.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        let e = &ev[0];
        assert_eq!(e.actor.id, "arn:aws:sts::111122223333:assumed-role/ops/alice-session");
        assert_eq!(e.actor.name.as_deref(), Some("alice-session"));
        assert_eq!(e.chain.len(), 1);
        assert_eq!(e.chain[0].id, "arn:aws:iam::111122223333:role/ops");
        assert_eq!(e.chain[0].kind, PrincipalKind::Role);
        let s = e.session.as_ref().unwrap();
        assert_eq!(s.credential_id.as_deref(), Some("ASIAX"));
        assert_eq!(s.mfa, Some(true));
        assert_eq!(e.action.qualified(), "ec2:RunInstances");
        assert_eq!(e.resources[0].id, "arn:aws:ec2::111122223333:instance/i-0abc");
        assert_eq!(e.context.ip.unwrap().to_string(), "1.2.3.4");
    }

    #[test]
    fn assume_role_call_records_the_credential_it_issued() {
        let data = br#"[{"eventTime":"2024-08-01T11:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"e0",
          "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice","accountId":"111122223333","accessKeyId":"AKIA1"},
          "requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/ops","roleSessionName":"alice-session"},
          "responseElements":{"credentials":{"accessKeyId":"ASIAX","expiration":"Aug 1, 2024, 12:30:00 PM"},"assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/ops/alice-session"}}}]"#;
        let (ev, bad) = read_all(data);
        assert!(bad.is_empty(), "{bad:?}");
        let issued = ev[0].issued.as_ref().unwrap();
        assert_eq!(issued.credential_id, "ASIAX");
        assert_eq!(issued.to.id, "arn:aws:sts::111122223333:assumed-role/ops/alice-session");
        assert_eq!(issued.expires.unwrap().to_string(), "2024-08-01T12:30:00Z");
        assert_eq!(ev[0].actor.kind, PrincipalKind::Human);
        assert_eq!(ev[0].resources[0].kind, "AWS::IAM::Role");
    }

    #[test]
    fn wrong_type_names_the_field_and_keeps_neighbours() {
        let data = br#"[{"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"a"},
 {"eventTime":5,"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"b"},
 {"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventID":"c"},
 {"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"d"}]"#;
        let (ev, bad) = read_all(data);
        assert_eq!(ev.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["a", "d"]);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].location.path.as_deref(), Some("eventTime"));
        assert_eq!(bad[0].location.line, 2);
        assert_eq!(bad[0].location.index, Some(1));
        assert!(bad[1].reason.contains("eventName"), "{}", bad[1].reason);
    }

    #[test]
    fn service_events_without_identity_type_are_cloud_services() {
        let data = br#"{"eventTime":"2023-07-10T12:08:04Z","eventSource":"secretsmanager.amazonaws.com","eventName":"StartSecretVersionDelete","eventID":"x","userIdentity":{"accountId":"1","invokedBy":"secretsmanager.amazonaws.com"}}"#;
        let (ev, _) = read_all(data);
        assert_eq!(ev[0].actor.kind, PrincipalKind::CloudService);
        assert_eq!(ev[0].actor.id, "aws:service/secretsmanager.amazonaws.com");
    }

    #[test]
    fn console_login_is_authentication_with_mfa() {
        let data = br#"{"eventTime":"2023-07-10T12:08:04Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventID":"x","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","accountId":"1","userName":"bob"},"responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"errorMessage":"Failed authentication"}"#;
        let (ev, _) = read_all(data);
        assert_eq!(ev[0].class_uid, ClassUid::AUTHENTICATION);
        assert_eq!(ev[0].outcome.status, tenet_model::Status::Failure);
        assert_eq!(ev[0].session.as_ref().unwrap().mfa, Some(false));
    }
}
