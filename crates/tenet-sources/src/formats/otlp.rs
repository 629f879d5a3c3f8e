//! OTLP/JSON traces (`{"resourceSpans": [...]}`, one request per document or
//! per line as the collector's file exporter writes them), read with the
//! OpenTelemetry GenAI and MCP semantic conventions.
//!
//! Every span becomes an event. The span tree is the workflow: each span's
//! actor chain is assembled by walking its ancestors within the input,
//! - an `invoke_agent` span introduces an agent (`gen_ai.agent.id`/`name`);
//! - an `execute_tool` span or an MCP `tools/call` span introduces a tool,
//!   acting for the nearest enclosing agent;
//! - the end user (`enduser.id` or `user.id`, on the span, an ancestor, or
//!   the resource) closes the chain.
//!
//! So a tool call resolves to tool → agent → user, a model call inside an
//! agent to agent → user, and a plain service span to service → user.
//! Parents outside the input are not seen: such spans start a chain afresh.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tenet_model::ocsf::{self, ClassUid};
use tenet_model::{
    Action, Event, EventId, Fact, Outcome, Principal, PrincipalKind, RawRecord, Resource, Session, Source,
    SourceContext, Timestamp, TraceLink, TrustChange,
};

use crate::format::{Format, Sample};
use crate::framing::{self, Location, RecordError};
use crate::json;

pub struct Otlp;

pub const NAME: &str = "otlp";

impl Format for Otlp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, sample: &Sample) -> bool {
        sample.has_top_key("resourceSpans") || sample.any_record(|r| r.contains_key("resourceSpans"))
    }

    /// A span's chain is walked through its parents anywhere in the input.
    fn windowed(&self) -> bool {
        false
    }

    fn read_records(
        &self,
        data: &Bytes,
        records: &[framing::Record<'_>],
        emit: &mut dyn FnMut(Result<Event, RecordError>),
    ) {
        let mut spans: Vec<SpanInfo<'_>> = Vec::new();
        for record in records {
            collect_request(data, record, &mut spans, emit);
        }
        let index: HashMap<(&str, &str), usize> =
            spans.iter().enumerate().map(|(i, s)| ((s.trace_id.as_str(), s.span_id.as_str()), i)).collect();
        for s in &spans {
            emit(Ok(to_event(s, &spans, &index, data)));
        }
    }
}

type Str<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, rename = "resourceSpans")]
    resource_spans: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResourceSpans<'a> {
    #[serde(borrow)]
    resource: Option<ResourceObj<'a>>,
    #[serde(borrow, rename = "scopeSpans", alias = "instrumentationLibrarySpans", default)]
    scope_spans: Vec<ScopeSpans<'a>>,
}

#[derive(Deserialize)]
struct ResourceObj<'a> {
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
struct ScopeSpans<'a> {
    #[serde(borrow, default)]
    spans: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span<'a> {
    #[serde(borrow)]
    trace_id: Str<'a>,
    #[serde(borrow)]
    span_id: Str<'a>,
    #[serde(borrow)]
    parent_span_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    name: Str<'a>,
    #[serde(borrow)]
    start_time_unix_nano: Option<IntOrString<'a>>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
    #[serde(borrow)]
    status: Option<SpanStatus<'a>>,
    #[serde(borrow)]
    kind: Option<IntOrString<'a>>,
}

#[derive(Deserialize)]
struct SpanStatus<'a> {
    #[serde(borrow)]
    code: Option<IntOrString<'a>>,
    #[serde(borrow)]
    message: Option<Str<'a>>,
}

/// OTLP/JSON writes 64-bit integers as strings, enums as numbers or names.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString<'a> {
    Int(i64),
    #[serde(borrow)]
    Str(Str<'a>),
}

impl IntOrString<'_> {
    fn as_i64(&self) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::Str(s) => s.parse().ok(),
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            IntOrString::Str(s) => Some(s),
            IntOrString::Int(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: Str<'a>,
    #[serde(borrow)]
    value: Option<AnyValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue<'a> {
    #[serde(borrow)]
    string_value: Option<Str<'a>>,
    bool_value: Option<bool>,
    #[serde(borrow)]
    int_value: Option<IntOrString<'a>>,
    double_value: Option<f64>,
}

impl AnyValue<'_> {
    /// Scalars as text; arrays and maps are not identities and are skipped.
    fn text(&self) -> Option<String> {
        if let Some(s) = &self.string_value {
            return Some(s.to_string());
        }
        if let Some(i) = self.int_value.as_ref().and_then(IntOrString::as_i64) {
            return Some(i.to_string());
        }
        if let Some(b) = self.bool_value {
            return Some(b.to_string());
        }
        self.double_value.map(|d| d.to_string())
    }
}

/// The attributes Tenet reads, by semantic-convention key.
const KEYS: &[&str] = &[
    "gen_ai.operation.name",
    "gen_ai.agent.id",
    "gen_ai.agent.name",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "gen_ai.conversation.id",
    "gen_ai.request.model",
    "gen_ai.data_source.id",
    "gen_ai.workflow.name",
    "mcp.method.name",
    "mcp.session.id",
    "mcp.resource.uri",
    "enduser.id",
    "user.id",
    "error.type",
    "http.response.status_code",
    "rpc.grpc.status_code",
    "rpc.jsonrpc.error_code",
    "gen_ai.tool.call.arguments",
    "client.address",
    "source.address",
    "server.address",
    "url.full",
    "user_agent.original",
    "db.namespace",
    "db.collection.name",
    "cloud.resource_id",
    "cloud.region",
    "cloud.account.id",
    "service.name",
    "host.name",
    "device.id",
];

type Attrs = HashMap<&'static str, String>;

fn attrs(kvs: &[KeyValue<'_>]) -> Attrs {
    let mut out = Attrs::new();
    for kv in kvs {
        if let Some(k) = KEYS.iter().find(|k| **k == kv.key)
            && let Some(v) = kv.value.as_ref().and_then(AnyValue::text)
        {
            out.insert(k, v);
        }
    }
    out
}

struct SpanInfo<'a> {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    start: Timestamp,
    kind: i64,
    failed: Option<Outcome>,
    attrs: Attrs,
    resource: std::rc::Rc<Attrs>,
    raw: &'a [u8],
}

impl SpanInfo<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    fn operation(&self) -> Option<&str> {
        self.get("gen_ai.operation.name")
    }

    fn agent(&self) -> Option<Principal> {
        let op = self.operation();
        let is_agent = matches!(op, Some("invoke_agent" | "create_agent")) || self.name.starts_with("invoke_agent");
        if !is_agent {
            return None;
        }
        let name = self.get("gen_ai.agent.name");
        let id = self.get("gen_ai.agent.id").or(name)?;
        Some(Principal::new(format!("agent:{id}"), PrincipalKind::Agent).with_name_opt(name.or(Some(id))))
    }

    fn tool_name(&self) -> Option<String> {
        let is_tool = self.operation() == Some("execute_tool")
            || self.get("mcp.method.name") == Some("tools/call")
            || self.name.starts_with("execute_tool");
        if !is_tool {
            return None;
        }
        self.get("gen_ai.tool.name").map(str::to_string).or_else(|| {
            // Span names are `execute_tool {tool}` / `tools/call {tool}`.
            self.name.split_once(' ').map(|(_, t)| t.to_string())
        })
    }

    fn tool(&self) -> Option<Principal> {
        let tool = self.tool_name()?;
        let host = self.get("server.address").or_else(|| self.resource.get("service.name").map(String::as_str));
        let id = match host {
            Some(h) => format!("tool:{h}/{tool}"),
            None => format!("tool:{tool}"),
        };
        Some(Principal::new(id, PrincipalKind::Workload).with_name(tool))
    }

    fn user(&self) -> Option<Principal> {
        let id = self
            .get("enduser.id")
            .or(self.get("user.id"))
            .or_else(|| self.resource.get("enduser.id").or(self.resource.get("user.id")).map(String::as_str))?;
        Some(Principal::new(format!("user:{id}"), PrincipalKind::Human).with_name(id))
    }

    fn service(&self) -> Option<&str> {
        self.resource.get("service.name").map(String::as_str)
    }
}

fn collect_request<'a>(
    data: &'a [u8],
    record: &framing::Record<'a>,
    spans: &mut Vec<SpanInfo<'a>>,
    emit: &mut dyn FnMut(Result<Event, RecordError>),
) {
    let request = match json::parse_document::<Request>(data, record) {
        Ok(r) => r,
        Err(e) => return emit(Err(e)),
    };
    let base = record.location(data);
    for (ri, rs_raw) in request.resource_spans.iter().enumerate() {
        let rs_path = format!("resourceSpans[{ri}]");
        let rs: ResourceSpans = match json::parse_at(data, rs_raw.get().as_bytes(), base.clone(), &rs_path, false) {
            Ok(r) => r,
            Err(e) => {
                emit(Err(e));
                continue;
            }
        };
        let resource = std::rc::Rc::new(rs.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default());
        for (si, scope) in rs.scope_spans.iter().enumerate() {
            for (pi, span_raw) in scope.spans.iter().enumerate() {
                let path = format!("{rs_path}.scopeSpans[{si}].spans[{pi}]");
                let bytes = span_raw.get().as_bytes();
                match json::parse_at::<Span>(data, bytes, base.clone(), &path, true)
                    .and_then(|s| span_info(s, resource.clone(), bytes, data, &base, &path))
                {
                    Ok(info) => spans.push(info),
                    Err(e) => emit(Err(e)),
                }
            }
        }
    }
}

fn normalise_id(id: &str) -> String {
    if id.bytes().all(|b| b.is_ascii_hexdigit()) { id.to_ascii_lowercase() } else { id.to_string() }
}

fn span_info<'a>(
    s: Span<'_>,
    resource: std::rc::Rc<Attrs>,
    raw: &'a [u8],
    data: &[u8],
    base: &Location,
    path: &str,
) -> Result<SpanInfo<'a>, RecordError> {
    let at = |field: &str, why: String| {
        let offset = raw.as_ptr() as usize - data.as_ptr() as usize;
        let loc = Location { line: framing::line_of(data, offset), index: base.index, path: None };
        RecordError::new(loc.with_path(path).with_path(field), why)
    };
    if s.trace_id.is_empty() {
        return Err(at("traceId", "empty trace id".into()));
    }
    if s.span_id.is_empty() {
        return Err(at("spanId", "empty span id".into()));
    }
    let start = s
        .start_time_unix_nano
        .as_ref()
        .ok_or_else(|| at("startTimeUnixNano", "missing field `startTimeUnixNano`".into()))?
        .as_i64()
        .ok_or_else(|| at("startTimeUnixNano", "not an integer number of nanoseconds".into()))?;
    let attrs = attrs(&s.attributes);
    let code = s.status.as_ref().and_then(|st| st.code.as_ref());
    let is_error = code.is_some_and(|c| c.as_i64() == Some(2) || c.as_str() == Some("STATUS_CODE_ERROR"));
    let failed = (is_error || attrs.contains_key("error.type")).then(|| {
        // The most specific code the span carries: a protocol's status says
        // more than `error.type`'s often generic class (`tool_error`).
        let status = attrs.get("http.response.status_code").filter(|c| c.parse::<u16>().is_ok_and(|c| c >= 400));
        let code = status
            .or(attrs.get("rpc.grpc.status_code").filter(|c| c.as_str() != "0"))
            .or(attrs.get("rpc.jsonrpc.error_code"))
            .or(attrs.get("error.type"))
            .cloned()
            .or_else(|| Some("ERROR".to_string()));
        Outcome::failure(
            code,
            s.status.as_ref().and_then(|st| st.message.as_ref()).map(|m| m.to_string()).filter(|m| !m.is_empty()),
        )
    });
    let kind = s.kind.as_ref().and_then(|k| {
        k.as_i64().or_else(|| match k.as_str()? {
            "SPAN_KIND_INTERNAL" => Some(1),
            "SPAN_KIND_SERVER" => Some(2),
            "SPAN_KIND_CLIENT" => Some(3),
            "SPAN_KIND_PRODUCER" => Some(4),
            "SPAN_KIND_CONSUMER" => Some(5),
            _ => None,
        })
    });
    Ok(SpanInfo {
        trace_id: normalise_id(&s.trace_id),
        span_id: normalise_id(&s.span_id),
        parent: s.parent_span_id.as_deref().filter(|p| !p.is_empty()).map(normalise_id),
        name: s.name.to_string(),
        start: Timestamp::from_unix_nanos(start),
        kind: kind.unwrap_or(0),
        failed,
        attrs,
        resource,
        raw,
    })
}

/// The delegations a successful span shows: an agent invocation on behalf
/// of an end user is the agent acting for that user.
fn trust_changes(s: &SpanInfo<'_>, actor: &Principal, chain: &[Principal]) -> Vec<TrustChange> {
    let mut out = Vec::new();
    let invokes =
        s.operation() == Some("invoke_agent") || (s.operation().is_none() && s.name.starts_with("invoke_agent"));
    if invokes
        && actor.kind == PrincipalKind::Agent
        && let Some(user) = chain.last().filter(|p| p.kind == PrincipalKind::Human && p.id.starts_with("user:"))
    {
        out.push(TrustChange::Observe {
            fact: Fact::ActsFor { agent: actor.id.clone(), person: user.id.clone(), scope: Vec::new(), expires: None },
        });
    }
    // Tool calls are observed use, not trust: which identity a tool runs as
    // is the tool registry's to say (inventory), not something a span shows.
    out
}

/// URLs among a tool call's arguments (a JSON object, as the GenAI
/// conventions record them): at most two, in the order given. Arguments
/// that are not JSON name no target.
fn urls_in_arguments(args: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>, depth: usize) {
        if out.len() >= 2 || depth > 4 {
            return;
        }
        match v {
            serde_json::Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => {
                out.push(s.chars().take(2048).collect())
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out, depth + 1)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out, depth + 1)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if args.len() <= 64 * 1024
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(args)
    {
        walk(&v, &mut out, 0);
    }
    out
}

/// Ancestors are walked at most this far: traces are shallow, cycles are not.
const MAX_ANCESTRY: usize = 256;

fn to_event(s: &SpanInfo<'_>, spans: &[SpanInfo<'_>], index: &HashMap<(&str, &str), usize>, data: &Bytes) -> Event {
    // Collect tool and agent principals from the span outward, then the user.
    let mut links: Vec<Principal> = Vec::new();
    let mut user = None;
    let mut session = None;
    let mut cur = Some(s);
    let mut steps = 0;
    while let Some(span) = cur {
        // The nearest tool acts; tools further out do not act for it.
        if let Some(t) = span.tool().filter(|_| links.is_empty()) {
            links.push(t);
        }
        if let Some(a) = span.agent().filter(|a| links.last().is_none_or(|l| l.id != a.id)) {
            links.push(a);
        }
        if session.is_none() {
            session = span
                .get("gen_ai.tool.call.id")
                .or(span.get("mcp.session.id"))
                .or(span.get("gen_ai.conversation.id"))
                .map(str::to_string);
        }
        if user.is_none() {
            user = span.user();
        }
        steps += 1;
        cur = match (&span.parent, steps < MAX_ANCESTRY) {
            (Some(p), true) => index.get(&(span.trace_id.as_str(), p.as_str())).map(|&i| &spans[i]),
            _ => None,
        };
    }
    let service_name = s.service().unwrap_or("unknown_service");
    let mut principals = links;
    if principals.is_empty() {
        principals
            .push(Principal::new(format!("service:{service_name}"), PrincipalKind::Workload).with_name(service_name));
    }
    principals.extend(user.filter(|u| !principals.iter().any(|p| p.id == u.id)));
    let actor = principals.remove(0);
    let chain = principals;
    let changes = if s.failed.is_none() { trust_changes(s, &actor, &chain) } else { Vec::new() };

    let (service, operation) = if let Some(tool) = s.tool_name() {
        (if s.get("mcp.method.name").is_some() { "mcp" } else { "gen_ai.tool" }, tool)
    } else if let Some(method) = s.get("mcp.method.name") {
        ("mcp", method.to_string())
    } else if let Some(op) = s.operation() {
        ("gen_ai", op.to_string())
    } else {
        (service_name, s.name.clone())
    };

    let mut resources = Vec::new();
    for (key, kind) in [
        ("mcp.resource.uri", "mcp.resource"),
        ("gen_ai.data_source.id", "data_source"),
        ("gen_ai.request.model", "model"),
        ("url.full", "url"),
        ("db.collection.name", "db.collection"),
        ("db.namespace", "database"),
        ("cloud.resource_id", "cloud.resource"),
    ] {
        if let Some(v) = s.get(key) {
            resources.push(Resource::new(kind, v));
        }
    }
    // A tool's target, when its arguments name one: the URL it fetches or posts to.
    if !resources.iter().any(|r| r.kind == "url")
        && let Some(args) = s.get("gen_ai.tool.call.arguments")
    {
        resources.extend(urls_in_arguments(args).into_iter().map(|u| Resource::new("url", u)));
    }
    if s.kind == 3
        && resources.is_empty()
        && let Some(host) = s.get("server.address")
    {
        resources.push(Resource::new("endpoint", host));
    }

    let mut context = SourceContext {
        user_agent: s.get("user_agent.original").map(str::to_string),
        region: s.resource.get("cloud.region").cloned(),
        device: s.resource.get("host.name").or(s.resource.get("device.id")).cloned(),
        ..Default::default()
    };
    context.set_origin(s.get("client.address").or(s.get("source.address")));

    Event {
        id: EventId(format!("{}-{}", s.trace_id, s.span_id)),
        time: s.start,
        class_uid: ClassUid::API_ACTIVITY,
        activity_id: ocsf::api_activity_for_operation(&operation),
        actor,
        chain,
        session: session.map(|id| Session { id: Some(id), ..Default::default() }),
        action: Action::new(service, operation),
        resources,
        outcome: s.failed.clone().unwrap_or_else(Outcome::success),
        context,
        trace: Some(TraceLink {
            trace_id: s.trace_id.clone(),
            span_id: Some(s.span_id.clone()),
            parent_span_id: s.parent.clone(),
        }),
        source: Source {
            format: NAME.to_string(),
            system: service_name.to_string(),
            tenant: s.resource.get("cloud.account.id").cloned(),
        },
        issued: None,
        changes,
        raw: RawRecord(data.slice_ref(s.raw)),
    }
}

/// An OTLP/HTTP protobuf trace export (`ExportTraceServiceRequest`),
/// decoded with the OpenTelemetry project's generated types and written in
/// its OTLP/JSON form (hex ids, nanoseconds as strings), which [`Otlp`]
/// reads: both encodings give the same events. Returns the JSON and the
/// number of spans in the export.
pub fn protobuf_to_json(body: &[u8]) -> Result<(Bytes, usize), String> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let request =
        ExportTraceServiceRequest::decode(body).map_err(|e| format!("not an OTLP protobuf trace export: {e}"))?;
    let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    let json = serde_json::to_vec(&request).map_err(|e| format!("the export cannot be written as OTLP/JSON: {e}"))?;
    Ok((Bytes::from(json), spans))
}

/// How many spans an OTLP/JSON export holds (for `rejected_spans`); `None`
/// when it is not an export at all.
pub fn json_span_count(body: &[u8]) -> Option<usize> {
    #[derive(Deserialize)]
    struct Export<'a> {
        #[serde(borrow, rename = "resourceSpans")]
        resource_spans: Vec<Resource<'a>>,
    }
    #[derive(Deserialize)]
    struct Resource<'a> {
        #[serde(borrow, rename = "scopeSpans", alias = "instrumentationLibrarySpans", default)]
        scope_spans: Vec<Scope<'a>>,
    }
    #[derive(Deserialize)]
    struct Scope<'a> {
        #[serde(borrow, default)]
        spans: Vec<&'a RawValue>,
    }
    let e: Export<'_> = serde_json::from_slice(body).ok()?;
    Some(e.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum())
}
