//! Kubernetes audit events (`audit.k8s.io/v1`, and `v1beta1` which shares
//! the fields Tenet reads): one Event, an EventList, arrays, or NDJSON as the
//! API server's log backend writes it.
//!
//! When a request impersonates someone, the impersonated user is the actor
//! (its permissions applied) acting for the authenticated user who asked.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tenet_model::ocsf::{self, ClassUid};
use tenet_model::{
    Action, Event, EventId, Fact, Outcome, Principal, PrincipalKind, RawRecord, RbacRule, Resource, Source,
    SourceContext, Timestamp, TrustChange,
};

use crate::format::{Format, Sample};
use crate::framing::{self, RecordError};
use crate::json;
use crate::json::FieldFailure;

pub struct K8sAudit;

pub const NAME: &str = "k8s-audit";

impl Format for K8sAudit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, sample: &Sample) -> bool {
        sample.any_record(|r| {
            let kind = r.get("kind").and_then(|v| v.as_str());
            let api = r.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
            kind == Some("Event") && (api.starts_with("audit.k8s.io/") || r.contains_key("auditID"))
        })
    }

    fn wrappers(&self) -> &'static [&'static str] {
        &["items"]
    }

    fn read_records(
        &self,
        data: &Bytes,
        records: &[framing::Record<'_>],
        emit: &mut dyn FnMut(Result<Event, RecordError>),
    ) {
        json::read_each::<AuditEvent>(data, records, emit, normalise);
    }
}

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<Str<'a>>,
    #[serde(borrow)]
    stage: Option<Str<'a>>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Option<Str<'a>>,
    #[serde(borrow)]
    verb: Option<Str<'a>>,
    #[serde(borrow)]
    user: Option<UserInfo<'a>>,
    #[serde(borrow)]
    impersonated_user: Option<UserInfo<'a>>,
    #[serde(borrow, rename = "sourceIPs", default)]
    source_ips: Vec<Str<'a>>,
    #[serde(borrow)]
    user_agent: Option<Str<'a>>,
    #[serde(borrow)]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow)]
    response_status: Option<Status<'a>>,
    #[serde(borrow)]
    request_received_timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    stage_timestamp: Option<Str<'a>>,
    #[serde(borrow)]
    timestamp: Option<Str<'a>>,
    #[serde(borrow, default)]
    annotations: std::collections::BTreeMap<Str<'a>, Str<'a>>,
    /// Bodies, at `Request`/`RequestResponse` audit levels. Kept raw and
    /// parsed leniently only for RBAC objects: a surprise costs the trust
    /// changes, never the record.
    #[serde(borrow)]
    request_object: Option<&'a RawValue>,
    #[serde(borrow)]
    response_object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct UserInfo<'a> {
    #[serde(borrow)]
    username: Option<Str<'a>>,
    /// A list of strings; parsed leniently.
    #[serde(borrow)]
    groups: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<Str<'a>>,
    #[serde(borrow)]
    subresource: Option<Str<'a>>,
    #[serde(borrow)]
    namespace: Option<Str<'a>>,
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    api_group: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Status<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    message: Option<Str<'a>>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
}

fn normalise(a: &AuditEvent<'_>, raw: RawRecord) -> Result<Event, FieldFailure> {
    if a.kind != "Event" {
        return Err(("kind", format!("expected an audit `Event`, found kind `{}`", a.kind)));
    }
    let (field, when) = [
        ("stageTimestamp", &a.stage_timestamp),
        ("requestReceivedTimestamp", &a.request_received_timestamp),
        ("timestamp", &a.timestamp),
    ]
    .into_iter()
    .find_map(|(f, v)| v.as_deref().map(|v| (f, v)))
    .ok_or(("stageTimestamp", "no timestamp in the event".to_string()))?;
    let time = Timestamp::parse_rfc3339(when).map_err(|e| (field, e.to_string()))?;
    let verb = a.verb.as_deref().ok_or(("verb", "missing field `verb`".to_string()))?;

    let authenticated = a.user.as_ref().map(user_principal).unwrap_or_else(Principal::unknown);
    let (actor, chain) = match a.impersonated_user.as_ref().filter(|u| u.username.is_some()) {
        Some(imp) => (user_principal(imp), vec![authenticated]),
        None => (authenticated, Vec::new()),
    };

    let mut resources = Vec::new();
    let mut resource_kind = None;
    if let Some(o) = &a.object_ref
        && let Some(res) = o.resource.as_deref()
    {
        let kind = match o.subresource.as_deref() {
            Some(sub) => format!("{res}/{sub}"),
            None => res.to_string(),
        };
        let group = o.api_group.as_deref().unwrap_or("core");
        let ns = o.namespace.as_deref().unwrap_or("");
        let id = match o.name.as_deref() {
            Some(n) => format!("k8s:{group}/{res}/{ns}/{n}"),
            None => format!("k8s:{group}/{res}/{ns}"),
        };
        resource_kind = Some(kind.clone());
        resources.push(Resource {
            kind,
            id,
            account: o.namespace.as_ref().map(|s| s.to_string()),
            name: o.name.as_ref().map(|s| s.to_string()),
        });
    }

    let decision = a.annotations.get("authorization.k8s.io/decision").map(|d| d.as_ref());
    let outcome = match (&a.response_status, decision) {
        (_, Some("forbid")) => Outcome::failure(
            Some("403".to_string()),
            a.annotations.get("authorization.k8s.io/reason").map(|r| r.to_string()).filter(|r| !r.is_empty()),
        ),
        (Some(s), _) if s.code.is_some_and(|c| c >= 400) => Outcome::failure(
            s.code.map(|c| c.to_string()),
            s.message.as_ref().or(s.reason.as_ref()).map(|m| m.to_string()),
        ),
        (Some(s), _) if s.code.is_some() => Outcome::success(),
        _ => Outcome::unknown(),
    };

    let mut context = SourceContext { user_agent: a.user_agent.as_ref().map(|s| s.to_string()), ..Default::default() };
    context.set_origin(a.source_ips.first().map(|s| s.as_ref()));

    let id = match (&a.audit_id, a.stage.as_deref()) {
        // One request is logged once per stage under the same auditID; the
        // completed stage is the event, the others are distinct records.
        (Some(id), None | Some("ResponseComplete")) => EventId(id.to_string()),
        (Some(id), Some(stage)) => EventId(format!("{id}/{stage}")),
        (None, _) => EventId(json::content_id("k8s:", raw.as_bytes())),
    };
    let changes = if outcome.status == tenet_model::Status::Success { trust_changes(a, verb) } else { Vec::new() };
    let operation = match &resource_kind {
        Some(_) => verb.to_string(),
        None => format!("{verb} {}", a.request_uri.as_deref().unwrap_or("")).trim_end().to_string(),
    };

    Ok(Event {
        id,
        time,
        class_uid: ClassUid::API_ACTIVITY,
        activity_id: ocsf::api_activity_for_operation(verb),
        actor,
        chain,
        session: None,
        action: Action {
            service: "kubernetes".to_string(),
            operation,
            read_only: Some(matches!(verb, "get" | "list" | "watch")),
        },
        resources,
        outcome,
        context,
        trace: None,
        source: Source { format: NAME.to_string(), system: "kubernetes".to_string(), tenant: None },
        issued: None,
        changes,
        raw,
    })
}

fn user_principal(u: &UserInfo<'_>) -> Principal {
    let name = u.username.as_deref().unwrap_or("unknown");
    let kind = if name == "system:anonymous" {
        PrincipalKind::Anonymous
    } else if name.starts_with("system:serviceaccount:")
        || name.starts_with("system:node:")
        || name.starts_with("system:")
    {
        PrincipalKind::Workload
    } else if u.username.is_none() {
        PrincipalKind::Unknown
    } else {
        PrincipalKind::Human
    };
    let mut p = Principal::new(format!("k8s:{name}"), kind).with_name(name);
    if let Some(ns) = name.strip_prefix("system:serviceaccount:").and_then(|r| r.split(':').next()) {
        p.account = Some(ns.to_string());
    }
    p
}

// ----- Trust changes -----

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// An RBAC object as the API server writes it in audit bodies; only what
/// trust needs.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RbacObject {
    kind: Option<String>,
    metadata: Option<ObjectMeta>,
    rules: Option<Vec<RuleJson>>,
    aggregation_rule: Option<AggregationRule>,
    role_ref: Option<RoleRef>,
    subjects: Option<Vec<Subject>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectMeta {
    name: Option<String>,
    namespace: Option<String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RuleJson {
    api_groups: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    verbs: Option<Vec<String>>,
    resource_names: Option<Vec<String>>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct AggregationRule {
    cluster_role_selectors: Option<Vec<LabelSelector>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LabelSelector {
    match_labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleRef {
    kind: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Subject {
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

fn lenient<T: for<'de> Deserialize<'de>>(raw: Option<&RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// The trust changes of a successful request: the authenticated user's
/// groups and email (observed on every request), and RBAC objects written
/// or deleted.
fn trust_changes(a: &AuditEvent<'_>, verb: &str) -> Vec<TrustChange> {
    let mut out = Vec::new();
    if let Some(u) = &a.user
        && let Some(name) = u.username.as_deref().filter(|n| !n.is_empty())
    {
        let member = format!("k8s:{name}");
        for g in lenient::<Vec<String>>(u.groups).unwrap_or_default() {
            out.push(TrustChange::Observe {
                fact: Fact::Member { member: member.clone(), group: format!("k8s:group/{g}") },
            });
        }
        if name.contains('@') {
            out.push(TrustChange::Observe { fact: Fact::SameAs { a: member, b: format!("user:{name}") } });
        }
    }
    if let Some(o) = &a.object_ref
        && o.api_group.as_deref() == Some(RBAC_GROUP)
        && o.subresource.is_none()
    {
        rbac_changes(a, o, verb, &mut out);
    }
    out
}

fn rbac_changes(a: &AuditEvent<'_>, o: &ObjectRef<'_>, verb: &str, out: &mut Vec<TrustChange>) {
    let Some(resource) = o.resource.as_deref() else { return };
    let kind = match resource {
        "roles" => "Role",
        "clusterroles" => "ClusterRole",
        "rolebindings" => "RoleBinding",
        "clusterrolebindings" => "ClusterRoleBinding",
        _ => return,
    };
    let namespaced = matches!(resource, "roles" | "rolebindings");
    // The object as it is after the request: the response for a patch (its
    // request is a partial patch), else either, as long as it is the object
    // itself (not `DeleteOptions` or a `Status`).
    let parse = |raw| lenient::<RbacObject>(raw);
    let body = [parse(a.response_object), parse(a.request_object)]
        .into_iter()
        .flatten()
        .find(|b| b.kind.as_deref() == Some(kind))
        .or_else(|| {
            matches!(verb, "create" | "update").then(|| parse(a.request_object)).flatten().filter(|b| b.kind.is_none())
        });
    let meta = body.as_ref().and_then(|b| b.metadata.as_ref());
    let Some(name) =
        meta.and_then(|m| m.name.as_deref()).or(o.name.as_deref()).filter(|n| !n.is_empty()).map(str::to_string)
    else {
        return;
    };
    let ns = if namespaced {
        let ns = o.namespace.as_deref().or(meta.and_then(|m| m.namespace.as_deref())).filter(|n| !n.is_empty());
        let Some(ns) = ns else { return };
        Some(ns.to_string())
    } else {
        None
    };
    match (verb, resource) {
        ("create" | "update" | "patch", "roles" | "clusterroles") => {
            let Some(body) = body else { return };
            let role = role_id(kind, &name, ns.as_deref());
            out.push(TrustChange::Assert { fact: rbac_role(role, ns, body) });
        }
        ("delete", "roles" | "clusterroles") => {
            out.push(TrustChange::Retract { key: format!("rbac-role|{}", role_id(kind, &name, ns.as_deref())) });
        }
        ("create" | "update" | "patch", _) => {
            let Some(body) = body else { return };
            for fact in bindings(&body, ns) {
                out.push(TrustChange::Assert { fact });
            }
        }
        // A delete's body is usually `DeleteOptions` and its response a
        // `Status`: the subjects are unknown and nothing can be retracted.
        // When the deleted binding itself is logged, its subjects are.
        ("delete", _) => {
            if let Some(body) = body {
                for fact in bindings(&body, ns) {
                    out.push(TrustChange::Retract { key: fact.key() });
                }
            }
        }
        _ => {}
    }
}

/// `k8s:clusterrole/<name>` or `k8s:role/<namespace>/<name>`.
fn role_id(kind: &str, name: &str, namespace: Option<&str>) -> String {
    match (kind, namespace) {
        ("Role", Some(ns)) => format!("k8s:role/{ns}/{name}"),
        _ => format!("k8s:clusterrole/{name}"),
    }
}

fn labels(map: Option<std::collections::BTreeMap<String, String>>) -> Vec<(String, String)> {
    map.unwrap_or_default().into_iter().collect()
}

fn rbac_role(role: String, namespace: Option<String>, body: RbacObject) -> Fact {
    let rules = body
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| RbacRule {
            api_groups: r.api_groups.unwrap_or_default(),
            resources: r.resources.unwrap_or_default(),
            verbs: r.verbs.unwrap_or_default(),
            resource_names: r.resource_names.unwrap_or_default(),
            non_resource_urls: r.non_resource_urls.unwrap_or_default(),
        })
        .collect();
    let aggregate = body
        .aggregation_rule
        .and_then(|a| a.cluster_role_selectors)
        .unwrap_or_default()
        .into_iter()
        .map(|s| labels(s.match_labels))
        .filter(|s| !s.is_empty())
        .collect();
    Fact::RbacRole { role, namespace, rules, labels: labels(body.metadata.and_then(|m| m.labels)), aggregate }
}

/// One `RbacBinding` per subject of a (Cluster)RoleBinding.
fn bindings(body: &RbacObject, namespace: Option<String>) -> Vec<Fact> {
    let Some(role_ref) = body.role_ref.as_ref() else { return Vec::new() };
    let (Some(kind), Some(name)) = (role_ref.kind.as_deref(), role_ref.name.as_deref().filter(|n| !n.is_empty()))
    else {
        return Vec::new();
    };
    if !(kind == "ClusterRole" || kind == "Role" && namespace.is_some()) {
        return Vec::new();
    }
    let role = role_id(kind, name, namespace.as_deref());
    body.subjects
        .iter()
        .flatten()
        .filter_map(|s| {
            let name = s.name.as_deref().filter(|n| !n.is_empty())?;
            let subject = match s.kind.as_deref()? {
                "User" => format!("k8s:{name}"),
                "Group" => format!("k8s:group/{name}"),
                "ServiceAccount" => {
                    let ns = s.namespace.as_deref().or(namespace.as_deref())?;
                    format!("k8s:system:serviceaccount:{ns}:{name}")
                }
                _ => return None,
            };
            Some(Fact::RbacBinding { subject, role: role.clone(), namespace: namespace.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> (Vec<Event>, Vec<RecordError>) {
        let data = Bytes::copy_from_slice(data);
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        K8sAudit.read(&data, &mut |r| match r {
            Ok(e) => ok.push(e),
            Err(e) => bad.push(e),
        });
        (ok, bad)
    }

    #[test]
    fn impersonation_puts_the_impersonator_in_the_chain() {
        let data = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/namespaces/prod/secrets/db","user":{"username":"alice@corp"},"impersonatedUser":{"username":"system:serviceaccount:prod:deployer"},"sourceIPs":["10.0.0.7"],"objectRef":{"resource":"secrets","namespace":"prod","name":"db","apiVersion":"v1"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:00.5Z"}]}"#;
        let (ev, bad) = read_all(data);
        assert!(bad.is_empty(), "{bad:?}");
        let e = &ev[0];
        assert_eq!(e.id.as_str(), "a1");
        assert_eq!(e.actor.id, "k8s:system:serviceaccount:prod:deployer");
        assert_eq!(e.actor.kind, PrincipalKind::Workload);
        assert_eq!(e.chain[0].id, "k8s:alice@corp");
        assert_eq!(e.chain[0].kind, PrincipalKind::Human);
        assert_eq!(e.resources[0].id, "k8s:core/secrets/prod/db");
        assert_eq!(e.action.qualified(), "kubernetes:get");
    }

    #[test]
    fn non_final_stages_keep_distinct_ids() {
        let data = b"{\"kind\":\"Event\",\"auditID\":\"a\",\"stage\":\"ResponseStarted\",\"verb\":\"create\",\"user\":{\"username\":\"x\"},\"stageTimestamp\":\"2026-01-01T00:00:00Z\"}\n{\"kind\":\"Event\",\"auditID\":\"a\",\"stage\":\"ResponseComplete\",\"verb\":\"create\",\"user\":{\"username\":\"x\"},\"stageTimestamp\":\"2026-01-01T00:00:01Z\"}\n";
        let (ev, _) = read_all(data);
        assert_eq!(ev[0].id.as_str(), "a/ResponseStarted");
        assert_eq!(ev[1].id.as_str(), "a");
    }

    #[test]
    fn kind_that_is_not_an_event_is_rejected_by_field() {
        let (_, bad) = read_all(br#"{"kind":"Pod","verb":"get","stageTimestamp":"2026-01-01T00:00:00Z"}"#);
        assert_eq!(bad[0].location.path.as_deref(), Some("kind"));
    }
}
