//! The OpenID AuthZEN Authorization API 1.0 information model, parsed from
//! request bodies into typed values with errors that name the field.
//!
//! Unknown fields are ignored (the spec's forward compatibility rule);
//! missing required fields and wrong types are errors, which the HTTP edge
//! answers with 400 (or, inside a batch, with `decision: false` for that
//! item only).

use serde_json::{Map, Value};

/// Open-ended attributes, as the spec defines them (`properties`, `context`).
pub type Properties = Map<String, Value>;

/// A subject or a resource: typed, identified, with optional attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub kind: String,
    pub id: String,
    pub properties: Properties,
}

/// An entity whose id may be absent: the target of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityPattern {
    pub kind: String,
    pub id: Option<String>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    pub properties: Properties,
}

/// One access evaluation: may `subject` perform `action` on `resource`?
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub subject: Entity,
    pub action: Action,
    pub resource: Entity,
    pub context: Properties,
}

impl Evaluation {
    /// The request as AuthZEN JSON, as [`parse_evaluation`] reads it back:
    /// how a decision is kept to be taken again later.
    pub fn to_json(&self) -> Value {
        fn with_properties(mut o: Map<String, Value>, properties: &Properties) -> Value {
            if !properties.is_empty() {
                o.insert("properties".into(), Value::Object(properties.clone()));
            }
            Value::Object(o)
        }
        let entity = |e: &Entity| {
            let mut o = Map::new();
            o.insert("type".into(), Value::String(e.kind.clone()));
            o.insert("id".into(), Value::String(e.id.clone()));
            with_properties(o, &e.properties)
        };
        let mut action = Map::new();
        action.insert("name".into(), Value::String(self.action.name.clone()));
        let mut o = Map::new();
        o.insert("subject".into(), entity(&self.subject));
        o.insert("action".into(), with_properties(action, &self.action.properties));
        o.insert("resource".into(), entity(&self.resource));
        if !self.context.is_empty() {
            o.insert("context".into(), Value::Object(self.context.clone()));
        }
        Value::Object(o)
    }
}

/// How a batch stops early, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// A batch after defaults were applied: each item is an evaluation or the
/// reason it is not a valid one (answered `decision: false`, never a failed batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub items: Vec<Result<Evaluation, RequestError>>,
    pub semantic: Semantic,
}

/// What an evaluations request turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluations {
    /// No (or an empty) `evaluations` array: a single evaluation, answered as one.
    Single(Box<Evaluation>),
    Batch(Batch),
}

/// Which entity a search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTarget {
    Subject,
    Resource,
    Action,
}

impl SearchTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchTarget::Subject => "subject",
            SearchTarget::Resource => "resource",
            SearchTarget::Action => "action",
        }
    }
}

/// A search: every input entity identified, the target only typed (or absent, for actions).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub target: SearchTarget,
    pub subject: EntityPattern,
    /// Absent for an action search.
    pub action: Option<Action>,
    pub resource: EntityPattern,
    pub context: Properties,
    pub page: Page,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub token: Option<String>,
    pub limit: Option<usize>,
}

/// A request that is not a valid AuthZEN request, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RequestError {
    /// The field, as a JSON path (`subject.type`, `evaluations[1].resource`).
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> RequestError {
    RequestError { path: if path.is_empty() { "(body)".into() } else { path.into() }, message: message.into() }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

fn object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, RequestError> {
    v.as_object().ok_or_else(|| err(path, format!("expected an object, found {}", kind_of(v))))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<Option<String>, RequestError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(err(&join(parent, key), format!("expected a string, found {}", kind_of(v)))),
    }
}

fn required_string(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<String, RequestError> {
    match string(obj, key, parent)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(err(&join(parent, key), "must not be empty")),
        None => Err(err(&join(parent, key), "is required")),
    }
}

fn properties(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<Properties, RequestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(v) => Err(err(&join(parent, key), format!("expected an object, found {}", kind_of(v)))),
    }
}

fn entity_pattern(v: &Value, path: &str) -> Result<EntityPattern, RequestError> {
    let o = object(v, path)?;
    Ok(EntityPattern {
        kind: required_string(o, "type", path)?,
        id: string(o, "id", path)?.filter(|s| !s.is_empty()),
        properties: properties(o, "properties", path)?,
    })
}

fn entity(v: &Value, path: &str) -> Result<Entity, RequestError> {
    let p = entity_pattern(v, path)?;
    let id = p.id.ok_or_else(|| err(&join(path, "id"), "is required"))?;
    Ok(Entity { kind: p.kind, id, properties: p.properties })
}

fn action(v: &Value, path: &str) -> Result<Action, RequestError> {
    let o = object(v, path)?;
    Ok(Action { name: required_string(o, "name", path)?, properties: properties(o, "properties", path)? })
}

fn required<'v>(obj: &'v Map<String, Value>, key: &str, parent: &str) -> Result<&'v Value, RequestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(err(&join(parent, key), "is required")),
        Some(v) => Ok(v),
    }
}

/// A well-formed single evaluation straight from its bytes, without the
/// intermediate JSON tree; `None` for anything else (take the
/// [`parse_evaluation`] path, which says what is wrong and where).
pub fn parse_evaluation_fast(body: &[u8]) -> Option<Evaluation> {
    #[derive(serde::Deserialize)]
    struct WireEntity {
        #[serde(rename = "type")]
        kind: String,
        id: String,
        #[serde(default)]
        properties: Option<Properties>,
    }
    #[derive(serde::Deserialize)]
    struct WireAction {
        name: String,
        #[serde(default)]
        properties: Option<Properties>,
    }
    #[derive(serde::Deserialize)]
    struct Wire {
        subject: WireEntity,
        action: WireAction,
        resource: WireEntity,
        #[serde(default)]
        context: Option<Properties>,
    }
    // JSON text is UTF-8 (RFC 8259). serde_json skips the strings of fields
    // it ignores without checking them, so bytes would let a body the full
    // parser refuses through here; `from_str` on checked text cannot.
    let w: Wire = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    let entity = |e: WireEntity| {
        (!e.kind.is_empty() && !e.id.is_empty()).then(|| Entity {
            kind: e.kind,
            id: e.id,
            properties: e.properties.unwrap_or_default(),
        })
    };
    if w.action.name.is_empty() {
        return None;
    }
    Some(Evaluation {
        subject: entity(w.subject)?,
        action: Action { name: w.action.name, properties: w.action.properties.unwrap_or_default() },
        resource: entity(w.resource)?,
        context: w.context.unwrap_or_default(),
    })
}

/// `POST /access/v1/evaluation`.
pub fn parse_evaluation(body: &Value) -> Result<Evaluation, RequestError> {
    let o = object(body, "")?;
    evaluation_from(o, None, "")
}

/// One evaluation from `o`, each of subject, action, resource and context
/// taken whole from `defaults` where `o` lacks it (no sub-field merging).
fn evaluation_from(
    o: &Map<String, Value>,
    defaults: Option<&Map<String, Value>>,
    path: &str,
) -> Result<Evaluation, RequestError> {
    let pick = |key: &str| -> Result<(&Value, String), RequestError> {
        match (o.get(key).filter(|v| !v.is_null()), defaults.and_then(|d| d.get(key)).filter(|v| !v.is_null())) {
            (Some(v), _) => Ok((v, join(path, key))),
            (None, Some(v)) => Ok((v, key.to_string())),
            (None, None) => Err(err(&join(path, key), "is required (in the evaluation or as a top-level default)")),
        }
    };
    let (s, sp) = pick("subject")?;
    let (a, ap) = pick("action")?;
    let (r, rp) = pick("resource")?;
    let context = match (o.get("context").filter(|v| !v.is_null()), defaults.and_then(|d| d.get("context"))) {
        (Some(v), _) => object(v, &join(path, "context"))?.clone(),
        (None, Some(v)) if !v.is_null() => object(v, "context")?.clone(),
        _ => Map::new(),
    };
    Ok(Evaluation { subject: entity(s, &sp)?, action: action(a, &ap)?, resource: entity(r, &rp)?, context })
}

/// `POST /access/v1/evaluations`. Errors are whole-payload errors (400);
/// an item that is not a valid evaluation is carried inside the batch.
pub fn parse_evaluations(body: &Value) -> Result<Evaluations, RequestError> {
    let o = object(body, "")?;
    let items = match o.get("evaluations") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) => Some(a),
        Some(v) => return Err(err("evaluations", format!("expected an array, found {}", kind_of(v)))),
    };
    let Some(items) = items else {
        return Ok(Evaluations::Single(Box::new(evaluation_from(o, None, "")?)));
    };
    // Top-level defaults must themselves be well-formed when given.
    for key in ["subject", "action", "resource", "context"] {
        if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
            object(v, key)?;
        }
    }
    let semantic = match o.get("options").filter(|v| !v.is_null()) {
        None => Semantic::default(),
        Some(opts) => match object(opts, "options")?.get("evaluations_semantic") {
            None | Some(Value::Null) => Semantic::default(),
            Some(Value::String(s)) => match s.as_str() {
                "execute_all" => Semantic::ExecuteAll,
                "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
                "permit_on_first_permit" => Semantic::PermitOnFirstPermit,
                other => {
                    return Err(err(
                        "options.evaluations_semantic",
                        format!(
                            "unknown semantic {other:?} (execute_all, deny_on_first_deny or permit_on_first_permit)"
                        ),
                    ));
                }
            },
            Some(v) => {
                return Err(err("options.evaluations_semantic", format!("expected a string, found {}", kind_of(v))));
            }
        },
    };
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("evaluations[{i}]");
            object(item, &path).and_then(|io| evaluation_from(io, Some(o), &path))
        })
        .collect();
    Ok(Evaluations::Batch(Batch { items, semantic }))
}

/// `POST /access/v1/search/{subject,resource,action}`: the searched entity
/// needs only its type (an id, if sent, is ignored); every input entity
/// must be fully identified.
pub fn parse_search(body: &Value, target: SearchTarget) -> Result<Search, RequestError> {
    let o = object(body, "")?;
    let subject = entity_pattern(required(o, "subject", "")?, "subject")?;
    let resource = entity_pattern(required(o, "resource", "")?, "resource")?;
    let action = match target {
        SearchTarget::Action => None,
        _ => Some(action(required(o, "action", "")?, "action")?),
    };
    if target != SearchTarget::Subject && subject.id.is_none() {
        return Err(err("subject.id", "is required: the subject is an input of this search"));
    }
    if target != SearchTarget::Resource && resource.id.is_none() {
        return Err(err("resource.id", "is required: the resource is an input of this search"));
    }
    let context = properties(o, "context", "")?;
    let page = match o.get("page").filter(|v| !v.is_null()) {
        None => Page::default(),
        Some(p) => {
            let p = object(p, "page")?;
            let limit = match p.get("limit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .map(|n| n as usize)
                        .ok_or_else(|| err("page.limit", "expected a non-negative integer"))?,
                ),
            };
            Page { token: string(p, "token", "page")?.filter(|t| !t.is_empty()), limit }
        }
    };
    Ok(Search { target, subject, action, resource, context, page })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_evaluation_written_as_json_reads_back_the_same() {
        for body in [
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                   "resource": {"type": "document", "id": "q3"}}),
            json!({"subject": {"type": "agent", "id": "a-1", "properties": {"owner": {"__entity": {"type": "user", "id": "bob"}}}},
                   "action": {"name": "write", "properties": {"method": "PUT"}},
                   "resource": {"type": "document", "id": "q3", "properties": {"tags": ["x", 1, null]}},
                   "context": {"session_id": "s-1", "nested": {"a": [true]}}}),
        ] {
            let e = parse_evaluation(&body).unwrap();
            assert_eq!(e.to_json(), body);
            assert_eq!(parse_evaluation(&e.to_json()).unwrap(), e);
        }
    }

    #[test]
    fn the_direct_parse_agrees_with_the_checked_one_and_declines_what_it_would_refuse() {
        let agree = [
            json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": {"type": "user", "id": "a", "properties": {"x": [1, {"y": null}]}, "extra": 1},
                   "action": {"name": "read", "properties": null}, "resource": {"type": "doc", "id": "1", "properties": {}},
                   "context": {"time": "now"}, "unknown": true}),
            json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}, "context": null}),
        ];
        for body in agree {
            let bytes = serde_json::to_vec(&body).unwrap();
            assert_eq!(parse_evaluation_fast(&bytes), Some(parse_evaluation(&body).unwrap()), "{body}");
        }
        let refused = [
            json!({"subject": {"type": "user", "id": ""}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": {"type": "", "id": "a"}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": {"type": "user", "id": "a"}, "action": {"name": ""}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": {"type": "user", "id": 7}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": null, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}}),
            json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}, "context": []}),
        ];
        for body in refused {
            assert!(parse_evaluation(&body).is_err(), "{body}");
            assert_eq!(parse_evaluation_fast(&serde_json::to_vec(&body).unwrap()), None, "{body}");
        }
    }

    /// Found by fuzzing (fuzz/ `authzen`): bad UTF-8 in a field the fast
    /// path ignores was decided on, where the full parser refuses the body.
    #[test]
    fn the_direct_parse_declines_a_body_that_is_not_utf8() {
        let body = b"{\"subject\":{\"type\":\"u\",\"id\":\"a\",\"x\":\"\xff\"},\"action\":{\"name\":\"r\"},\"resource\":{\"type\":\"d\",\"id\":\"1\"}}";
        assert!(serde_json::from_slice::<Value>(body).is_err());
        assert_eq!(parse_evaluation_fast(body), None);
        let fine = String::from_utf8_lossy(body).replace('\u{fffd}', "y");
        assert!(parse_evaluation_fast(fine.as_bytes()).is_some());
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let e =
            parse_evaluation(&json!({"action": {"name": "read"}, "resource": {"type": "r", "id": "1"}})).unwrap_err();
        assert_eq!(e.path, "subject");
        let e = parse_evaluation(&json!({"subject": {"type": "user", "id": "a"}, "action": {"name": 123}, "resource": {"type": "r", "id": "1"}}))
            .unwrap_err();
        assert_eq!((e.path.as_str(), e.message.as_str()), ("action.name", "expected a string, found a number"));
        let e = parse_evaluation(
            &json!({"subject": "alice", "action": {"name": "x"}, "resource": {"type": "r", "id": "1"}}),
        )
        .unwrap_err();
        assert_eq!(e.path, "subject");
    }

    #[test]
    fn batch_items_take_defaults_whole_and_keep_their_own_errors() {
        let body = json!({
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "read"},
            "context": {"k": 1},
            "evaluations": [{"resource": {"type": "record", "id": "1"}}, {}, {"resource": {"type": "record"}}],
            "unknown": true
        });
        let Evaluations::Batch(b) = parse_evaluations(&body).unwrap() else { panic!("a batch") };
        let first = b.items[0].as_ref().unwrap();
        assert_eq!((first.subject.id.as_str(), first.context["k"].as_i64()), ("alice", Some(1)));
        assert_eq!(b.items[1].as_ref().unwrap_err().path, "evaluations[1].resource");
        assert_eq!(b.items[2].as_ref().unwrap_err().path, "evaluations[2].resource.id");
    }

    #[test]
    fn search_inputs_must_be_identified_and_the_target_need_not_be() {
        let body = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}});
        assert_eq!(parse_search(&body, SearchTarget::Subject).unwrap_err().path, "resource.id");
        assert_eq!(parse_search(&body, SearchTarget::Resource).unwrap_err().path, "subject.id");
        let ok = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "1"}, "page": {"limit": 1}});
        let s = parse_search(&ok, SearchTarget::Subject).unwrap();
        assert_eq!(s.page.limit, Some(1));
    }
}
