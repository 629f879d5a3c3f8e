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
    Action, Condition, Effect, Event, EventId, Fact, IssuedCredential, Matcher, NodeKind, Outcome, PolicyDocument,
    Principal, PrincipalKind, PrincipalMatcher, RawRecord, Resource, Session, Source, SourceContext, Statement, Status,
    Timestamp, TrustChange,
};

use crate::format::{Format, Sample};
use crate::framing::{self, RecordError};
use crate::json;
use crate::json::FieldFailure;

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

    fn wrappers(&self) -> &'static [&'static str] {
        &["Records"]
    }

    fn read_records(
        &self,
        data: &Bytes,
        records: &[framing::Record<'_>],
        emit: &mut dyn FnMut(Result<Event, RecordError>),
    ) {
        json::read_each::<Record>(data, records, emit, normalise);
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
    /// A web identity's provider (`…:oidc-provider/token.actions.githubusercontent.com`).
    #[serde(borrow)]
    identity_provider: Option<Str<'a>>,
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
    let changes = if outcome.status == Status::Success { trust_changes(r, service, account) } else { Vec::new() };
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
        changes,
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
            // A Kubernetes service account federated through the cluster's
            // OIDC provider (IRSA), or a CI pipeline's job token (GitHub
            // Actions `repo:…`, GitLab `project_path:…`), is a workload, not a person.
            let provider = u.identity_provider.as_deref().unwrap_or("");
            let machine = name.contains("system:serviceaccount:")
                || name.starts_with("repo:")
                || name.starts_with("project_path:")
                || ["token.actions.githubusercontent.com", "gitlab", "circleci", "oidc.eks."]
                    .iter()
                    .any(|p| provider.contains(p));
            let who = if machine { PrincipalKind::Workload } else { PrincipalKind::Human };
            Principal::new(format!("aws:{}/{name}", kind.to_ascii_lowercase()), who)
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

// ----- Trust changes -----

/// The request parameters of IAM calls that change trust. Parsed leniently
/// and apart from [`RequestParameters`]: a surprise here costs the trust
/// changes, never the record.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IamParameters<'a> {
    #[serde(borrow)]
    user_name: Option<Str<'a>>,
    #[serde(borrow)]
    role_name: Option<Str<'a>>,
    #[serde(borrow)]
    group_name: Option<Str<'a>>,
    #[serde(borrow)]
    policy_arn: Option<Str<'a>>,
    #[serde(borrow)]
    policy_name: Option<Str<'a>>,
    /// A JSON string (sometimes URL-encoded), or an object in exports that
    /// expanded it.
    #[serde(borrow)]
    policy_document: Option<&'a RawValue>,
    #[serde(borrow)]
    assume_role_policy_document: Option<&'a RawValue>,
    #[serde(borrow)]
    permissions_boundary: Option<Str<'a>>,
    #[serde(borrow)]
    set_as_default: Option<BoolOrString<'a>>,
}

/// The response elements of IAM calls that create something: its ARN
/// (which, unlike request parameters, includes the path).
#[derive(Deserialize, Default)]
#[serde(default)]
struct IamResponse<'a> {
    #[serde(borrow)]
    user: Option<Created<'a>>,
    #[serde(borrow)]
    role: Option<Created<'a>>,
    #[serde(borrow)]
    group: Option<Created<'a>>,
    #[serde(borrow)]
    policy: Option<Created<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Created<'a> {
    #[serde(borrow)]
    arn: Option<Str<'a>>,
    #[serde(borrow)]
    assume_role_policy_document: Option<&'a RawValue>,
}

fn assert(fact: Fact) -> TrustChange {
    TrustChange::Assert { fact }
}

fn retract(key: String) -> TrustChange {
    TrustChange::Retract { key }
}

/// The trust changes a successful record makes: IAM changes to users,
/// groups, roles and policies, and the identity observations any record
/// carries (a SAML user's or a source identity's email).
fn trust_changes(r: &Record<'_>, service: &str, account: Option<&str>) -> Vec<TrustChange> {
    let mut out = Vec::new();
    identity_observations(r.user_identity.as_ref(), &mut out);
    if service == "iam" {
        iam_changes(r, account, &mut out);
    }
    out
}

fn identity_observations(identity: Option<&UserIdentity<'_>>, out: &mut Vec<TrustChange>) {
    let Some(u) = identity else { return };
    match u.kind.as_deref() {
        Some("SAMLUser") => {
            if let Some(name) = u.user_name.as_deref().filter(|n| n.contains('@')) {
                out.push(TrustChange::Observe {
                    fact: Fact::SameAs { a: format!("aws:samluser/{name}"), b: format!("user:{name}") },
                });
            }
        }
        Some("AssumedRole") => {
            let source = u.session_context.as_ref().and_then(|c| c.source_identity.as_deref());
            if let Some(v) = source.filter(|v| v.contains('@')) {
                out.push(TrustChange::Observe {
                    fact: Fact::SameAs { a: format!("aws:source-identity/{v}"), b: format!("user:{v}") },
                });
            }
        }
        _ => {}
    }
}

/// An IAM principal's ARN from its bare name (request parameters carry no
/// path), or the name itself when it already is an ARN.
fn iam_arn(account: Option<&str>, kind: &str, name: Option<&str>) -> Option<String> {
    let name = name.filter(|n| !n.is_empty())?;
    if name.starts_with("arn:") {
        return Some(name.to_string());
    }
    Some(format!("arn:aws:iam::{}:{kind}/{name}", account?))
}

fn nonempty<'s>(s: &'s Option<Str<'_>>) -> Option<&'s str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A policy document from request or response elements: a JSON string
/// (possibly URL-encoded) or, in some exports, the object itself.
fn document_of(raw: Option<&RawValue>) -> Option<PolicyDocument> {
    let raw = raw?.get();
    match serde_json::from_str::<Cow<'_, str>>(raw) {
        Ok(text) => parse_policy_document(&text).ok(),
        Err(_) => parse_policy_document(raw).ok(),
    }
}

fn iam_changes(r: &Record<'_>, account: Option<&str>, out: &mut Vec<TrustChange>) {
    let event = r.event_name.as_ref();
    let p: IamParameters = lenient(r.request_parameters);
    let user = || iam_arn(account, "user", nonempty(&p.user_name));
    let role = || iam_arn(account, "role", nonempty(&p.role_name));
    let group = || iam_arn(account, "group", nonempty(&p.group_name));
    // The user, group or role an `…User…`/`…Group…`/`…Role…` call names.
    let holder = || match event {
        e if e.contains("User") => user(),
        e if e.contains("Group") => group(),
        e if e.contains("Role") => role(),
        _ => None,
    };
    let policy_arn = nonempty(&p.policy_arn);
    match event {
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            if let (Some(holder), Some(policy)) = (holder(), policy_arn) {
                out.push(assert(Fact::Attached { holder, policy: policy.to_string() }));
            }
        }
        "DetachUserPolicy" | "DetachGroupPolicy" | "DetachRolePolicy" => {
            if let (Some(holder), Some(policy)) = (holder(), policy_arn) {
                out.push(retract(Fact::Attached { holder, policy: policy.to_string() }.key()));
            }
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            if let (Some(holder), Some(name)) = (holder(), nonempty(&p.policy_name)) {
                let policy = format!("{holder}#inline/{name}");
                if let Some(document) = document_of(p.policy_document) {
                    out.push(assert(Fact::Policy { policy: policy.clone(), document }));
                }
                out.push(assert(Fact::Attached { holder, policy }));
            }
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            if let (Some(holder), Some(name)) = (holder(), nonempty(&p.policy_name)) {
                let policy = format!("{holder}#inline/{name}");
                out.push(retract(format!("policy|{policy}")));
                out.push(retract(Fact::Attached { holder, policy }.key()));
            }
        }
        "CreatePolicy" => {
            let response: IamResponse = lenient(r.response_elements);
            let arn = nonempty(&response.policy.unwrap_or_default().arn)
                .map(str::to_string)
                .or_else(|| iam_arn(account, "policy", nonempty(&p.policy_name)));
            if let Some(arn) = arn {
                let name = nonempty(&p.policy_name).map(str::to_string);
                out.push(assert(Fact::Node { id: arn.clone(), kind: NodeKind::Policy, name }));
                if let Some(document) = document_of(p.policy_document) {
                    out.push(assert(Fact::Policy { policy: arn, document }));
                }
            }
        }
        "CreatePolicyVersion" => {
            let default = p.set_as_default.as_ref().and_then(BoolOrString::as_bool).unwrap_or(false);
            if default
                && let Some(policy) = policy_arn
                && let Some(document) = document_of(p.policy_document)
            {
                out.push(assert(Fact::Policy { policy: policy.to_string(), document }));
            }
        }
        "DeletePolicy" => {
            if let Some(policy) = policy_arn {
                out.push(retract(format!("node|{policy}")));
                out.push(retract(format!("policy|{policy}")));
            }
        }
        "CreateRole" => {
            let response: IamResponse = lenient(r.response_elements);
            let created = response.role.unwrap_or_default();
            let Some(id) = nonempty(&created.arn).map(str::to_string).or_else(role) else { return };
            let name = nonempty(&p.role_name).map(str::to_string);
            out.push(assert(Fact::Node { id: id.clone(), kind: NodeKind::ROLE, name }));
            let document =
                document_of(p.assume_role_policy_document).or_else(|| document_of(created.assume_role_policy_document));
            if let Some(document) = document {
                out.push(assert(Fact::Trust { role: id.clone(), document }));
            }
            if let Some(policy) = nonempty(&p.permissions_boundary) {
                out.push(assert(Fact::Boundary { holder: id, policy: policy.to_string() }));
            }
        }
        "UpdateAssumeRolePolicy" => {
            if let (Some(role), Some(document)) = (role(), document_of(p.policy_document)) {
                out.push(assert(Fact::Trust { role, document }));
            }
        }
        "DeleteRole" => {
            if let Some(role) = role() {
                out.push(retract(format!("node|{role}")));
                out.push(retract(format!("trust|{role}")));
                out.push(retract(format!("boundary|{role}")));
            }
        }
        "CreateUser" => {
            let response: IamResponse = lenient(r.response_elements);
            let Some(id) = nonempty(&response.user.unwrap_or_default().arn).map(str::to_string).or_else(user) else {
                return;
            };
            let name = nonempty(&p.user_name).map(str::to_string);
            out.push(assert(Fact::Node { id: id.clone(), kind: NodeKind::HUMAN, name }));
            if let Some(policy) = nonempty(&p.permissions_boundary) {
                out.push(assert(Fact::Boundary { holder: id, policy: policy.to_string() }));
            }
        }
        "DeleteUser" => {
            if let Some(user) = user() {
                out.push(retract(format!("node|{user}")));
                out.push(retract(format!("boundary|{user}")));
            }
        }
        "CreateGroup" => {
            let response: IamResponse = lenient(r.response_elements);
            if let Some(id) = nonempty(&response.group.unwrap_or_default().arn).map(str::to_string).or_else(group) {
                let name = nonempty(&p.group_name).map(str::to_string);
                out.push(assert(Fact::Node { id, kind: NodeKind::Group, name }));
            }
        }
        "DeleteGroup" => {
            if let Some(group) = group() {
                out.push(retract(format!("node|{group}")));
            }
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            if let (Some(member), Some(group)) = (user(), group()) {
                let fact = Fact::Member { member, group };
                out.push(if event == "AddUserToGroup" { assert(fact) } else { retract(fact.key()) });
            }
        }
        "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => {
            if let (Some(holder), Some(policy)) = (holder(), nonempty(&p.permissions_boundary)) {
                out.push(assert(Fact::Boundary { holder, policy: policy.to_string() }));
            }
        }
        "DeleteUserPermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            if let Some(holder) = holder() {
                out.push(retract(format!("boundary|{holder}")));
            }
        }
        _ => {}
    }
}

// ----- Policy documents -----

/// Parses an IAM policy document (identity, resource, trust or boundary
/// policy) into its typed form. Accepts the JSON text, or the JSON text
/// URL-encoded as IAM returns it from `Get*` calls and in some response
/// elements. `Statement` may be one object or an array; `Action`,
/// `Resource` and their `Not…` forms a string or an array; `Principal` /
/// `NotPrincipal` `"*"` or `{AWS|Service|Federated: string|array}`;
/// conditions are flattened to one [`Condition`] per operator and key, with
/// values rendered as strings.
pub fn parse_policy_document(json: &str) -> Result<PolicyDocument, String> {
    let trimmed = json.trim();
    let decoded;
    let text = if trimmed.starts_with('{') {
        trimmed
    } else if trimmed.starts_with('%') || trimmed.contains("%7B") || trimmed.contains("%7b") {
        decoded = percent_decode(trimmed)?;
        decoded.trim()
    } else {
        return Err("not a JSON object".to_string());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let serde_json::Value::Object(doc) = value else {
        return Err("a policy document must be a JSON object".to_string());
    };
    let statements = match field(&doc, "Statement") {
        Some(serde_json::Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        Some(_) => return Err("`Statement` must be an object or an array".to_string()),
        None => return Err("missing `Statement`".to_string()),
    };
    let statements = statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| statement(s).map_err(|why| format!("Statement[{i}]: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PolicyDocument { statements })
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// A policy element by name: exact first, then ignoring case.
fn field<'v>(m: &'v JsonMap, name: &str) -> Option<&'v serde_json::Value> {
    m.get(name).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn statement(v: &serde_json::Value) -> Result<Statement, String> {
    let serde_json::Value::Object(s) = v else {
        return Err("a statement must be an object".to_string());
    };
    let effect = match field(s, "Effect").and_then(|e| e.as_str()) {
        Some(e) if e.eq_ignore_ascii_case("Allow") => Effect::Allow,
        Some(e) if e.eq_ignore_ascii_case("Deny") => Effect::Deny,
        Some(e) => return Err(format!("unknown `Effect` `{e}`")),
        None => return Err("missing `Effect`".to_string()),
    };
    let sid = field(s, "Sid").and_then(|v| v.as_str()).filter(|v| !v.is_empty()).map(str::to_string);
    let actions = matcher(s, "Action", "NotAction")?;
    let resources = matcher(s, "Resource", "NotResource")?;
    let principals = match (field(s, "Principal"), field(s, "NotPrincipal")) {
        (Some(p), _) => Some(principal_matcher(p, false).map_err(|e| format!("Principal: {e}"))?),
        (None, Some(p)) => Some(principal_matcher(p, true).map_err(|e| format!("NotPrincipal: {e}"))?),
        (None, None) => None,
    };
    let conditions = match field(s, "Condition") {
        Some(c) => conditions(c)?,
        None => Vec::new(),
    };
    Ok(Statement { sid, effect, actions, resources, principals, conditions })
}

fn matcher(s: &JsonMap, only: &str, not: &str) -> Result<Matcher, String> {
    match (field(s, only), field(s, not)) {
        (Some(v), _) => Ok(Matcher::Only(strings(v).map_err(|e| format!("{only}: {e}"))?)),
        (None, Some(v)) => Ok(Matcher::Not(strings(v).map_err(|e| format!("{not}: {e}"))?)),
        (None, None) => Ok(Matcher::Any),
    }
}

/// A string-or-array element as strings; other scalars as their text.
fn strings(v: &serde_json::Value) -> Result<Vec<String>, String> {
    match v {
        serde_json::Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn scalar(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Err("null where a string was expected".to_string()),
        _ => Err("a nested value where a string was expected".to_string()),
    }
}

fn principal_matcher(v: &serde_json::Value, not: bool) -> Result<PrincipalMatcher, String> {
    let mut m = PrincipalMatcher { not, anyone: false, aws: Vec::new(), service: Vec::new(), federated: Vec::new() };
    match v {
        serde_json::Value::String(s) if s == "*" => m.anyone = true,
        serde_json::Value::String(s) => return Err(format!("`{s}`: only `*` may stand alone")),
        serde_json::Value::Object(kinds) => {
            for (kind, ids) in kinds {
                let ids = strings(ids).map_err(|e| format!("{kind}: {e}"))?;
                match kind.to_ascii_lowercase().as_str() {
                    "aws" => {
                        m.anyone |= ids.iter().any(|i| i == "*");
                        m.aws.extend(ids.into_iter().filter(|i| i != "*"));
                    }
                    "service" => m.service.extend(ids),
                    "federated" => m.federated.extend(ids),
                    // `CanonicalUser` (S3) names an account by another id;
                    // it never names a principal of the trust graph.
                    _ => {}
                }
            }
        }
        _ => return Err("must be `*` or an object".to_string()),
    }
    Ok(m)
}

fn conditions(v: &serde_json::Value) -> Result<Vec<Condition>, String> {
    let serde_json::Value::Object(ops) = v else {
        return Err("`Condition` must be an object".to_string());
    };
    let mut out = Vec::new();
    for (operator, keys) in ops {
        let serde_json::Value::Object(keys) = keys else {
            return Err(format!("Condition.{operator} must be an object"));
        };
        for (key, values) in keys {
            let values = match values {
                serde_json::Value::Array(items) => items.iter().map(rendered).collect(),
                one => vec![rendered(one)],
            };
            out.push(Condition { operator: operator.clone(), key: key.clone(), values });
        }
    }
    Ok(out)
}

/// A condition value as text: strings as themselves, anything else as JSON.
fn rendered(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `%XX` escapes decoded (RFC 3986: `+` stays a plus).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => return Err(format!("bad percent escape at byte {i}")),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "URL-encoded text is not UTF-8".to_string())
}

/// OCSF class and activity for a CloudTrail call, following the AWS Security
/// Lake mapping: sign-ins are Authentication, IAM identity changes are
/// Account / Group / Role Management, everything else API Activity.
pub fn classify(service: &str, event: &str) -> (ClassUid, ActivityId) {
    match (service, event) {
        // Reading identities changes nothing: API Activity, as Security Lake maps it.
        ("iam", e) if ["Get", "List", "Generate", "Simulate"].iter().any(|p| e.starts_with(p)) => {
            (ClassUid::API_ACTIVITY, ocsf::api_activity_for_operation(event))
        }
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
            (ClassUid::USER_MANAGEMENT, user_activity(e))
        }
        _ => (ClassUid::API_ACTIVITY, ocsf::api_activity_for_operation(event)),
    }
}

/// User Management (3007; OCSF 1.9 deprecates Account Change for it) activities.
fn user_activity(e: &str) -> ActivityId {
    ActivityId(match e {
        _ if e.contains("MFADevice") && (e.starts_with("Enable") || e.starts_with("Create")) => 12,
        _ if e.contains("MFADevice") && (e.starts_with("Deactivate") || e.starts_with("Delete")) => 13,
        _ if e.contains("AccessKey") || e.contains("SSHPublicKey") || e.contains("ServiceSpecificCredential") => {
            match e {
                _ if e.starts_with("Create") || e.starts_with("Upload") => 18,
                _ if e.starts_with("Delete") => 19,
                _ => 2,
            }
        }
        "CreateLoginProfile" | "UpdateLoginProfile" | "ChangePassword" => 8,
        _ if e.starts_with("Create") => 1,
        _ if e.starts_with("Delete") && e.contains("Policy") => 11,
        _ if e.starts_with("Delete") && e != "DeleteUser" => 2,
        "DeleteUser" => 3,
        _ if e.starts_with("Attach") || e.starts_with("Put") => 10,
        _ if e.starts_with("Detach") => 11,
        _ if e.starts_with("Update") || e.starts_with("Tag") || e.starts_with("Untag") => 2,
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
    fn a_service_account_federated_by_web_identity_is_a_workload() {
        let data = br#"[{"eventTime":"2024-08-01T11:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity","eventID":"w1",
          "userIdentity":{"type":"WebIdentityUser","principalId":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.amazonaws.com/id/X:sts.amazonaws.com:system:serviceaccount:payments:api","userName":"system:serviceaccount:payments:api","identityProvider":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.amazonaws.com/id/X"}},
          {"eventTime":"2024-08-01T11:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity","eventID":"w2",
          "userIdentity":{"type":"WebIdentityUser","principalId":"cognito:abc","userName":"abc","identityProvider":"cognito-identity.amazonaws.com"}}]"#;
        let (ev, bad) = read_all(data);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ev[0].actor.id, "aws:webidentityuser/system:serviceaccount:payments:api");
        assert_eq!(ev[0].actor.kind, PrincipalKind::Workload);
        assert_eq!(ev[1].actor.kind, PrincipalKind::Human);
    }

    #[test]
    fn a_ci_pipeline_federated_by_web_identity_is_a_workload() {
        let data = br#"[{"eventTime":"2024-08-01T11:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithWebIdentity","eventID":"g1",
          "userIdentity":{"type":"WebIdentityUser","principalId":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:repo:acme/app:pull_request","userName":"repo:acme/app:pull_request","identityProvider":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}}]"#;
        let (ev, bad) = read_all(data);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ev[0].actor.kind, PrincipalKind::Workload);
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
