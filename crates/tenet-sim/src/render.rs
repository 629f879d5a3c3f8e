//! Records to their real formats' JSON: CloudTrail, Okta System Log,
//! Kubernetes audit, OTLP/JSON traces.
//!
//! Each format is a borrowed `Serialize` struct written straight to bytes:
//! building `serde_json::Value` trees first cost the generator most of its
//! time in allocation.

use serde::Serialize;
use serde_json::Value;
use tenet_model::Timestamp;

use crate::org::Org;
use crate::record::{Audit, Idp, Okta, Span, Trace, Trail, Who};

fn iso_seconds(secs: i64) -> String {
    Timestamp::from_unix_seconds(secs).to_string()
}

/// Ids in the style IAM uses (`AIDA…`, `AROA…`): one derivation, so the
/// principal ids in rendered CloudTrail, the IAM inventory and replayed
/// detonations agree.
pub(crate) fn short_hash(s: &str, len: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..len as u64)
        .map(|i| {
            // SplitMix64's finaliser over the name's hash and the position.
            let mut z = h ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ALPHA[((z ^ (z >> 31)) % 32) as usize] as char
        })
        .collect()
}

/// The unique id IAM gives a role (`AROA…`), as CloudTrail and the inventory show it.
pub fn role_id(role: &str) -> String {
    format!("AROA{}", short_hash(role, 17))
}

/// The IAM path a role lives under: Identity Center roles under
/// `aws-reserved`, service-linked roles under `aws-service-role/<service>`.
pub fn role_path(role: &str) -> &'static str {
    match role {
        r if r.starts_with("AWSReservedSSO_") => "aws-reserved/sso.amazonaws.com/",
        "AWSServiceRoleForConfig" => "aws-service-role/config.amazonaws.com/",
        "AWSServiceRoleForAccessAnalyzer" => "aws-service-role/access-analyzer.amazonaws.com/",
        "AWSServiceRoleForBackup" => "aws-service-role/backup.amazonaws.com/",
        _ => "",
    }
}

/// The ARN of an account's OpenID Connect provider.
pub fn oidc_provider(acct: &str, idp: Idp) -> String {
    match idp {
        Idp::Eks => {
            format!("arn:aws:iam::{acct}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/{}", short_hash(acct, 32))
        }
        Idp::GitHub => format!("arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com"),
    }
}

// ----- CloudTrail -----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<SessionContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<&'a str>,
}

impl Identity<'_> {
    fn of(kind: &'static str) -> Self {
        Identity {
            kind,
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            session_context: None,
            identity_provider: None,
            invoked_by: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    session_issuer: Issuer<'a>,
    attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_id_federation_data: Option<WebIdData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identity: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebIdData {
    federated_provider: String,
    attributes: Empty,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Issuer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    principal_id: String,
    arn: String,
    account_id: &'a str,
    user_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    creation_date: String,
    mfa_authenticated: &'static str,
}

fn user_identity<'a>(org: &'a Org, who: &'a Who, time: i64, invoked_by: Option<&'a str>) -> Identity<'a> {
    match who {
        Who::IamUser { account, name, key } => {
            let acct = org.account(*account).id.as_str();
            Identity {
                principal_id: Some(format!("AIDA{}", short_hash(name, 17))),
                arn: Some(format!("arn:aws:iam::{acct}:user/{name}")),
                account_id: Some(acct),
                access_key_id: Some(key),
                user_name: Some(name),
                ..Identity::of("IAMUser")
            }
        }
        Who::Role { account, role, session, key, source_identity, mfa, federated } => {
            let acct = org.account(*account).id.as_str();
            let id = role_id(role);
            Identity {
                principal_id: Some(format!("{id}:{session}")),
                arn: Some(format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}")),
                account_id: Some(acct),
                access_key_id: Some(key),
                session_context: Some(SessionContext {
                    session_issuer: Issuer {
                        kind: "Role",
                        principal_id: id,
                        arn: format!("arn:aws:iam::{acct}:role/{}{role}", role_path(role)),
                        account_id: acct,
                        user_name: role,
                    },
                    attributes: Attributes {
                        creation_date: iso_seconds(time - time.rem_euclid(3600)),
                        mfa_authenticated: if *mfa { "true" } else { "false" },
                    },
                    web_id_federation_data: federated
                        .map(|idp| WebIdData { federated_provider: oidc_provider(acct, idp), attributes: Empty {} }),
                    source_identity: source_identity.as_deref(),
                }),
                invoked_by,
                ..Identity::of("AssumedRole")
            }
        }
        Who::SamlUser { account, email } => {
            let acct = org.account(*account).id.as_str();
            let idp = format!("arn:aws:iam::{acct}:saml-provider/AWSSSO_{}_DO_NOT_DELETE", short_hash(acct, 16));
            Identity {
                principal_id: Some(format!("{}:{email}", short_hash(&idp, 28))),
                user_name: Some(email),
                identity_provider: Some(idp),
                ..Identity::of("SAMLUser")
            }
        }
        Who::WebIdentity { account, subject, idp } => {
            let acct = org.account(*account).id.as_str();
            let provider = oidc_provider(acct, *idp);
            Identity {
                principal_id: Some(format!("{provider}:sts.amazonaws.com:{subject}")),
                user_name: Some(subject),
                identity_provider: Some(provider),
                ..Identity::of("WebIdentityUser")
            }
        }
        Who::Service { invoked_by } => Identity { invoked_by: Some(invoked_by), ..Identity::of("AWSService") },
        Who::OtherAccount { account_id, principal_id } => Identity {
            principal_id: Some(principal_id.clone()),
            account_id: Some(account_id),
            ..Identity::of("AWSAccount")
        },
    }
}

/// Data events in CloudTrail's terms: object, item and invocation level.
fn category(name: &str, source: &str) -> &'static str {
    let data = match source {
        "s3.amazonaws.com" => matches!(name, "GetObject" | "PutObject" | "DeleteObject" | "HeadObject"),
        "dynamodb.amazonaws.com" => {
            matches!(name, "GetItem" | "PutItem" | "Query" | "Scan" | "UpdateItem" | "DeleteItem")
        }
        "lambda.amazonaws.com" => name == "Invoke",
        _ => false,
    };
    if data { "Data" } else { "Management" }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrailJson<'a> {
    event_version: &'static str,
    user_identity: Identity<'a>,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    request_parameters: Option<&'a Value>,
    response_elements: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<ConsoleData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_credential_from_console: Option<&'static str>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<TrailResource<'a>>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
}

#[derive(Serialize)]
struct ConsoleData {
    #[serde(rename = "LoginTo")]
    login_to: &'static str,
    #[serde(rename = "MobileVersion")]
    mobile: &'static str,
    #[serde(rename = "MFAUsed")]
    mfa: &'static str,
}

#[derive(Serialize)]
struct TrailResource<'a> {
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "ARN")]
    arn: &'a str,
}

/// Writes one CloudTrail record as JSON.
pub fn write_trail(out: &mut Vec<u8>, org: &Org, t: &Trail) {
    let acct = org.account(t.account).id.as_str();
    let cat = category(t.call.name, t.call.source);
    let record = TrailJson {
        event_version: "1.09",
        user_identity: user_identity(org, &t.who, t.time, t.invoked_by),
        event_time: iso_seconds(t.time),
        event_source: t.call.source,
        event_name: t.call.name,
        aws_region: t.region,
        source_ip_address: &t.ip,
        user_agent: &t.ua,
        error_code: t.error.as_ref().map(|e| e.0),
        error_message: t.error.as_ref().map(|e| e.1.as_str()),
        request_parameters: t.request.as_ref(),
        response_elements: t.response.as_ref(),
        additional_event_data: t.console.then_some(ConsoleData {
            login_to: "https://console.aws.amazon.com/console/home",
            mobile: "No",
            mfa: "No",
        }),
        session_credential_from_console: t.from_console.then_some("true"),
        request_id: &t.id[..18],
        event_id: &t.id,
        read_only: t.call.read_only,
        resources: t.resources.iter().map(|(kind, arn)| TrailResource { account_id: acct, kind, arn }).collect(),
        event_type: if t.console { "AwsConsoleSignIn" } else { "AwsApiCall" },
        management_event: cat == "Management",
        recipient_account_id: acct,
        event_category: cat,
    };
    let _ = serde_json::to_writer(out, &record);
}

// ----- Okta -----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OktaEntity<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    alternate_id: &'a str,
    display_name: &'a str,
    detail_entry: Option<()>,
}

fn entity<'a>(e: &'a (String, &'static str, String, String)) -> OktaEntity<'a> {
    OktaEntity { id: &e.0, kind: e.1, alternate_id: &e.2, display_name: &e.3, detail_entry: None }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OktaJson<'a> {
    actor: OktaEntity<'a>,
    client: serde_json::Value,
    device: Option<()>,
    authentication_context: AuthContext<'a>,
    display_message: &'a str,
    event_type: &'a str,
    outcome: OktaOutcome<'a>,
    published: String,
    security_context: serde_json::Value,
    severity: &'static str,
    debug_context: serde_json::Value,
    legacy_event_type: Option<()>,
    transaction: serde_json::Value,
    uuid: &'a str,
    version: &'static str,
    request: serde_json::Value,
    target: Vec<OktaEntity<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthContext<'a> {
    authentication_provider: Option<()>,
    credential_provider: Option<()>,
    credential_type: Option<&'a str>,
    issuer: Option<()>,
    interface: Option<()>,
    authentication_step: u8,
    external_session_id: &'a str,
}

#[derive(Serialize)]
struct OktaOutcome<'a> {
    result: &'static str,
    reason: Option<&'a str>,
}

pub fn write_okta(out: &mut Vec<u8>, o: &Okta) {
    let os = if o.ua.contains("Macintosh") {
        "Mac OS X"
    } else if o.ua.contains("Windows") {
        "Windows 10"
    } else if o.ua.contains("Linux") {
        "Linux"
    } else {
        "Unknown"
    };
    let browser = if o.ua.contains("Edg/") {
        "EDGE"
    } else if o.ua.contains("Firefox/") {
        "FIREFOX"
    } else if o.ua.contains("Chrome/") {
        "CHROME"
    } else if o.ua.contains("Safari/") {
        "SAFARI"
    } else {
        "UNKNOWN"
    };
    let mut debug = serde_json::json!({"requestId": format!("Y{}", &o.uuid[..20])});
    if let Some(f) = o.factor {
        debug["factor"] = f.into();
    }
    if let Some(b) = &o.behaviors {
        debug["behaviors"] = b.as_str().into();
        debug["risk"] = "{level=LOW}".into();
    }
    let failed = matches!(o.result, "FAILURE" | "DENY");
    let record = OktaJson {
        actor: entity(&o.actor),
        client: serde_json::json!({
            "userAgent": {"rawUserAgent": o.ua, "os": os, "browser": browser},
            "zone": "null",
            "device": "Computer",
            "id": null,
            "ipAddress": o.ip,
            "geographicalContext": {"city": o.place.city, "state": o.place.state, "country": o.place.country, "postalCode": null, "geolocation": null},
        }),
        device: None,
        authentication_context: AuthContext {
            authentication_provider: None,
            credential_provider: None,
            credential_type: o.credential,
            issuer: None,
            interface: None,
            authentication_step: 0,
            external_session_id: o.session.as_deref().unwrap_or("unknown"),
        },
        display_message: o.message,
        event_type: o.event_type,
        outcome: OktaOutcome { result: o.result, reason: o.reason },
        published: Timestamp::from_unix_millis(o.time_ms).to_string(),
        security_context: serde_json::json!({"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null}),
        severity: if failed { "WARN" } else { "INFO" },
        debug_context: serde_json::json!({"debugData": debug}),
        legacy_event_type: None,
        transaction: serde_json::json!({"type": "WEB", "id": format!("Y{}", &o.uuid[9..27]), "detail": {}}),
        uuid: &o.uuid,
        version: "0",
        request: serde_json::json!({"ipChain": [{"ip": o.ip, "geographicalContext": null, "version": "V4", "source": null}]}),
        target: o.targets.iter().map(entity).collect(),
    };
    let _ = serde_json::to_writer(out, &record);
}

// ----- Kubernetes audit -----

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditJson<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: &'static str,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: &'static str,
    #[serde(rename = "requestURI")]
    request_uri: String,
    verb: &'a str,
    user: UserInfo<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<UserInfo<'a>>,
    #[serde(rename = "sourceIPs")]
    source_ips: [&'a str; 1],
    user_agent: &'a str,
    object_ref: ObjectRef<'a>,
    response_status: ResponseStatus,
    request_received_timestamp: &'a str,
    stage_timestamp: &'a str,
    annotations: Annotations,
}

#[derive(Serialize)]
struct UserInfo<'a> {
    username: &'a str,
    groups: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subresource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    api_version: &'static str,
}

#[derive(Serialize)]
struct ResponseStatus {
    metadata: Empty,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Annotations {
    #[serde(rename = "authorization.k8s.io/decision")]
    decision: &'static str,
    #[serde(rename = "authorization.k8s.io/reason")]
    reason: &'static str,
}

pub fn write_audit(out: &mut Vec<u8>, a: &Audit) {
    let ts = Timestamp::from_unix_nanos(a.time_us * 1000).to_string();
    let group = match a.resource {
        "deployments" | "deployments/scale" => "apps",
        "leases" => "coordination.k8s.io",
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => "rbac.authorization.k8s.io",
        _ => "",
    };
    let (resource, sub) = match a.resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (a.resource, None),
    };
    let prefix = if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/v1") };
    let sub_path = sub.map(|s| format!("/{s}")).unwrap_or_default();
    let request_uri = match (&a.namespace, &a.name) {
        (Some(ns), Some(n)) => format!("{prefix}/namespaces/{ns}/{resource}/{n}{sub_path}"),
        (Some(ns), None) => format!("{prefix}/namespaces/{ns}/{resource}"),
        (None, Some(n)) => format!("{prefix}/{resource}/{n}{sub_path}"),
        (None, None) => format!("{prefix}/{resource}"),
    };
    let record = AuditJson {
        kind: "Event",
        api_version: "audit.k8s.io/v1",
        level: "Metadata",
        audit_id: &a.id,
        stage: "ResponseComplete",
        request_uri,
        verb: a.verb,
        user: UserInfo { username: &a.user, groups: a.groups.iter().map(String::as_str).collect() },
        impersonated_user: a
            .impersonated
            .as_deref()
            .map(|u| UserInfo { username: u, groups: vec!["system:authenticated"] }),
        source_ips: [&a.ip],
        user_agent: &a.ua,
        object_ref: ObjectRef {
            resource,
            subresource: sub,
            namespace: a.namespace.as_deref(),
            name: a.name.as_deref(),
            api_group: group,
            api_version: "v1",
        },
        response_status: ResponseStatus { metadata: Empty {}, code: a.code },
        request_received_timestamp: &ts,
        stage_timestamp: &ts,
        annotations: Annotations { decision: if a.code == 403 { "forbid" } else { "allow" }, reason: "" },
    };
    let _ = serde_json::to_writer(out, &record);
}

// ----- OTLP -----

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    value: AnyValue<'a>,
}

/// OTLP/JSON's `AnyValue`: a string, or a 64-bit integer written as a string.
#[derive(Serialize)]
enum AnyValue<'a> {
    #[serde(rename = "stringValue")]
    String(&'a str),
    #[serde(rename = "intValue")]
    Int(String),
}

fn kv<'a>(key: &'a str, value: &'a str) -> KeyValue<'a> {
    KeyValue { key, value: AnyValue::String(value) }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanJson<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<&'a str>,
    name: &'a str,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue<'a>>,
    status: SpanStatus<'a>,
}

#[derive(Serialize)]
struct SpanStatus<'a> {
    code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

fn span_json(s: &Span) -> SpanJson<'_> {
    SpanJson {
        trace_id: &s.trace_id,
        span_id: &s.span_id,
        parent_span_id: s.parent.as_deref(),
        name: &s.name,
        kind: s.kind,
        start_time_unix_nano: s.start_ns.to_string(),
        end_time_unix_nano: s.end_ns.to_string(),
        attributes: s
            .attrs
            .iter()
            .map(|(k, v)| kv(k, v))
            .chain(s.ints.iter().map(|(k, v)| KeyValue { key: k, value: AnyValue::Int(v.to_string()) }))
            .collect(),
        status: match &s.error {
            Some(m) => SpanStatus { code: 2, message: Some(m) },
            None => SpanStatus { code: 1, message: None },
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    resource_spans: Vec<ResourceSpans<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource<'a>,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource<'a> {
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Serialize)]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: Vec<SpanJson<'a>>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

/// Writes one OTLP `ExportTraceServiceRequest` holding a whole trace, its
/// spans grouped by the service that emitted them.
pub fn write_trace(out: &mut Vec<u8>, t: &Trace) {
    let mut services: Vec<&str> = Vec::new();
    for s in &t.spans {
        if !services.contains(&s.service.as_str()) {
            services.push(&s.service);
        }
    }
    let request = Request {
        resource_spans: services
            .iter()
            .map(|svc| ResourceSpans {
                resource: Resource {
                    attributes: vec![kv("service.name", svc), kv("deployment.environment.name", "production")],
                },
                scope_spans: [ScopeSpans {
                    scope: Scope { name: "opentelemetry.instrumentation.genai", version: "0.47b0" },
                    spans: t.spans.iter().filter(|s| s.service == *svc).map(span_json).collect(),
                }],
            })
            .collect(),
    };
    let _ = serde_json::to_writer(out, &request);
}
