//! Findings exported as OCSF Detection Findings are valid OCSF: checked
//! against the schema in `../shared/specs/ocsf-schema`, not against our own
//! idea of it.
//!
//! The validator here is test-only and small. It resolves the schema the way
//! the OCSF server does — `$include`d profiles tag their attributes with the
//! profile's name, `extends` merges a parent's definition under the child's,
//! and every attribute is completed from `dictionary.json` — and it counts as
//! errors what the server's event validator counts as errors: missing
//! required attributes, attributes the class or object does not define
//! (including those of profiles the event does not declare), wrong types,
//! enum values not listed, failed `at_least_one`/`just_one` constraints and a
//! `type_uid` that is not `class_uid × 100 + activity_id`. What the server
//! only warns about (enum captions that disagree with their id, deprecated
//! attributes, another schema version, type regexes) is collected as notes,
//! which the exports here must not raise either.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use tenet_model::{
    BaselineStat, Category, EventId, Evidence, Finding, FindingStatus, RuleMatch, Severity, StatusChange, Timestamp,
};
use tenet_sources::formats::ocsf::{FINDING_SCHEMA_VERSION, finding_to_ocsf};

const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/ocsf-schema");

// ----- the validator -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    MissingRequired,
    UnknownAttribute,
    WrongType,
    OutOfRange,
    InvalidEnumValue,
    ConstraintFailed,
    TypeUidMismatch,
    UnknownProfile,
    UnknownClass,
    /// The schema refers to a type or attribute it does not define.
    SchemaGap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoteKind {
    SiblingDisagrees,
    Deprecated,
    RegexNotChecked,
    OtherVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    path: String,
    problem: Problem,
    detail: String,
}

#[derive(Debug, Clone)]
struct Note {
    path: String,
    kind: NoteKind,
    detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}: {}", display_path(&self.path), self.problem, self.detail)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}: {}", display_path(&self.path), self.kind, self.detail)
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "<event>" } else { path }
}

#[derive(Debug, Default)]
struct Report {
    violations: Vec<Violation>,
    notes: Vec<Note>,
}

impl Report {
    fn violation(&mut self, path: &str, problem: Problem, detail: impl Into<String>) {
        self.violations.push(Violation { path: path.to_string(), problem, detail: detail.into() });
    }

    fn note(&mut self, path: &str, kind: NoteKind, detail: impl Into<String>) {
        self.notes.push(Note { path: path.to_string(), kind, detail: detail.into() });
    }
}

/// The schema files with their `$include`s resolved; `extends` is resolved on
/// demand, per class or object.
struct Schema {
    version: String,
    dictionary: Map<String, Value>,
    types: Map<String, Value>,
    categories: Map<String, Value>,
    classes: HashMap<String, Value>,
    objects: HashMap<String, Value>,
    profiles: HashSet<String>,
}

/// A class or object with its `extends` chain merged and every attribute
/// completed from the dictionary.
struct Resolved {
    name: String,
    attributes: Map<String, Value>,
    constraints: Map<String, Value>,
    deprecated: bool,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The OCSF server's merge: maps merge key by key, anything else (including
/// `null`, which is how a class drops an inherited `profile` tag) replaces.
fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Schema {
    fn load(root: &Path) -> Schema {
        let dictionary = read_json(&root.join("dictionary.json"));
        let by_name = |dir: &str| -> HashMap<String, Value> {
            json_files(&root.join(dir))
                .into_iter()
                .map(|p| {
                    let def = resolve_includes(root, read_json(&p));
                    let name = str_field(&def, "name").unwrap_or_else(|| panic!("{} has no name", p.display()));
                    (name.to_string(), def)
                })
                .collect()
        };
        let profiles = json_files(&root.join("profiles"))
            .iter()
            .filter_map(|p| str_field(&read_json(p), "name").map(String::from))
            .collect();
        Schema {
            version: str_field(&read_json(&root.join("version.json")), "version").expect("version.json").to_string(),
            types: dictionary["types"]["attributes"].as_object().expect("dictionary types").clone(),
            dictionary: dictionary["attributes"].as_object().expect("dictionary attributes").clone(),
            categories: read_json(&root.join("categories.json"))["attributes"].as_object().expect("categories").clone(),
            classes: by_name("events"),
            objects: by_name("objects"),
            profiles,
        }
    }

    /// A definition with its whole `extends` chain merged: the child's
    /// top-level keys replace the parent's, attributes merge deeply.
    fn merged(&self, table: &HashMap<String, Value>, name: &str, depth: usize) -> Option<Value> {
        let def = table.get(name)?;
        let Some(parent) = str_field(def, "extends") else { return Some(def.clone()) };
        assert!(depth < 32, "`extends` cycle at {name}");
        let mut merged = self.merged(table, parent, depth + 1)?;
        let mut attributes = merged.get("attributes").cloned().unwrap_or_else(|| json!({}));
        deep_merge(&mut attributes, def.get("attributes").unwrap_or(&json!({})));
        let merged_map = merged.as_object_mut()?;
        for (k, v) in def.as_object()? {
            merged_map.insert(k.clone(), v.clone());
        }
        merged_map.remove("extends");
        merged_map.insert("attributes".into(), attributes);
        Some(merged)
    }

    fn complete(&self, def: Value, report: &mut Report, path: &str) -> Resolved {
        let mut attributes = Map::new();
        for (name, attr) in def.get("attributes").and_then(Value::as_object).into_iter().flatten() {
            let Some(base) = self.dictionary.get(name) else {
                report.violation(path, Problem::SchemaGap, format!("attribute `{name}` is not in the dictionary"));
                continue;
            };
            let mut full = base.clone();
            deep_merge(&mut full, attr);
            attributes.insert(name.clone(), full);
        }
        Resolved {
            name: str_field(&def, "name").unwrap_or_default().to_string(),
            attributes,
            constraints: def.get("constraints").and_then(Value::as_object).cloned().unwrap_or_default(),
            deprecated: def.get("@deprecated").is_some(),
        }
    }

    fn object(&self, name: &str, report: &mut Report, path: &str) -> Option<Resolved> {
        let def = self.merged(&self.objects, name, 0)?;
        Some(self.complete(def, report, path))
    }

    /// The concrete class whose `class_uid` (category × 1000 + uid) is
    /// `class_uid`, with the enums the OCSF server derives for it.
    fn class(&self, class_uid: i64, report: &mut Report) -> Option<Resolved> {
        for (name, raw) in &self.classes {
            if raw.get("uid").and_then(Value::as_i64).is_none() {
                continue;
            }
            let def = self.merged(&self.classes, name, 0)?;
            let category = str_field(&def, "category").and_then(|c| self.categories.get(c));
            let Some(category_uid) = category.and_then(|c| c["uid"].as_i64()) else { continue };
            let uid = category_uid * 1000 + def["uid"].as_i64().unwrap_or_default();
            if uid != class_uid {
                continue;
            }
            let caption = def.get("caption").cloned().unwrap_or(Value::Null);
            let mut class = self.complete(def, report, "");
            let set_enum = |attrs: &mut Map<String, Value>, attr: &str, values: Map<String, Value>| {
                if let Some(a) = attrs.get_mut(attr).and_then(Value::as_object_mut) {
                    a.insert("enum".into(), Value::Object(values));
                }
            };
            let one = |k: i64, caption: Value| Map::from_iter([(k.to_string(), json!({ "caption": caption }))]);
            set_enum(&mut class.attributes, "class_uid", one(uid, caption));
            let category_caption = category.and_then(|c| c.get("caption")).cloned().unwrap_or(Value::Null);
            set_enum(&mut class.attributes, "category_uid", one(category_uid, category_caption));
            let activities: Vec<i64> = class.attributes["activity_id"]["enum"]
                .as_object()
                .map(|e| e.keys().filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default();
            let type_uids = activities.iter().map(|a| (format!("{}", uid * 100 + a), json!({}))).collect();
            set_enum(&mut class.attributes, "type_uid", type_uids);
            return Some(class);
        }
        None
    }

    fn validate_event(&self, event: &Value) -> Report {
        let mut report = Report::default();
        let Some(fields) = event.as_object() else {
            report.violation("", Problem::WrongType, "an event is a JSON object");
            return report;
        };
        let Some(class_uid) = fields.get("class_uid").and_then(Value::as_i64) else {
            report.violation("class_uid", Problem::MissingRequired, "no integer class_uid; cannot pick a class");
            return report;
        };
        let Some(class) = self.class(class_uid, &mut report) else {
            report.violation("class_uid", Problem::UnknownClass, format!("no class has uid {class_uid}"));
            return report;
        };
        let profiles = self.declared_profiles(fields, &mut report);
        self.check_object(fields, &class, "", &profiles, &mut report);
        if let (Some(c), Some(a), Some(t)) = (
            fields.get("class_uid").and_then(Value::as_i64),
            fields.get("activity_id").and_then(Value::as_i64),
            fields.get("type_uid").and_then(Value::as_i64),
        ) && t != c * 100 + a
        {
            report.violation("type_uid", Problem::TypeUidMismatch, format!("{t} is not {c} × 100 + {a}"));
        }
        if let Some(v) = fields.get("metadata").and_then(|m| m.get("version")).and_then(Value::as_str)
            && v != self.version
        {
            report.note("metadata.version", NoteKind::OtherVersion, format!("{v}, schema is {}", self.version));
        }
        report
    }

    fn declared_profiles(&self, fields: &Map<String, Value>, report: &mut Report) -> HashSet<String> {
        let mut out = HashSet::new();
        let declared = fields.get("metadata").and_then(|m| m.get("profiles")).and_then(Value::as_array);
        for (i, p) in declared.into_iter().flatten().enumerate() {
            if let Some(p) = p.as_str() {
                if !self.profiles.contains(p) {
                    report.violation(&format!("metadata.profiles[{i}]"), Problem::UnknownProfile, p);
                }
                out.insert(p.to_string());
            }
        }
        out
    }

    /// The attributes an event declaring `profiles` may carry here: those of
    /// no profile, those of a declared one, and with `datetime` a `_dt`
    /// companion for every timestamp.
    fn applicable(&self, def: &Resolved, profiles: &HashSet<String>) -> BTreeMap<String, Value> {
        let mut out: BTreeMap<String, Value> = def
            .attributes
            .iter()
            .filter(|(_, a)| match a.get("profile") {
                None | Some(Value::Null) => true,
                Some(Value::String(p)) => profiles.contains(p),
                Some(_) => false,
            })
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        if profiles.contains("datetime") {
            let stamps: Vec<String> = out
                .iter()
                .filter(|(_, a)| str_field(a, "type") == Some("timestamp_t"))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stamps {
                out.entry(format!("{k}_dt"))
                    .or_insert_with(|| json!({"type": "datetime_t", "requirement": "optional"}));
            }
        }
        out
    }

    fn check_object(
        &self,
        fields: &Map<String, Value>,
        def: &Resolved,
        path: &str,
        profiles: &HashSet<String>,
        report: &mut Report,
    ) {
        if def.deprecated {
            report.note(path, NoteKind::Deprecated, format!("object `{}` is deprecated", def.name));
        }
        let attributes = self.applicable(def, profiles);
        for (name, attr) in &attributes {
            let here = join(path, name);
            match fields.get(name) {
                None | Some(Value::Null) => {
                    if str_field(attr, "requirement") == Some("required") {
                        report.violation(&here, Problem::MissingRequired, "required attribute is missing");
                    }
                }
                Some(value) => {
                    if attr.get("@deprecated").is_some() {
                        report.note(&here, NoteKind::Deprecated, "attribute is deprecated");
                    }
                    self.check_value(value, attr, &here, profiles, report);
                    self.check_enum(fields, name, value, attr, &here, report);
                }
            }
        }
        // An object that defines no attributes (`object`, behind `unmapped`)
        // is open by design.
        if !attributes.is_empty() {
            for key in fields.keys().filter(|k| !attributes.contains_key(*k)) {
                let why = match def.attributes.get(key).and_then(|a| str_field(a, "profile")) {
                    Some(p) => format!("belongs to profile `{p}`, which the event does not declare"),
                    None => format!("`{}` defines no attribute `{key}`", def.name),
                };
                report.violation(&join(path, key), Problem::UnknownAttribute, why);
            }
        }
        for (kind, keys) in &def.constraints {
            let keys: Vec<&str> = keys.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let present = keys.iter().filter(|k| fields.contains_key(**k)).count();
            let failed = match kind.as_str() {
                "at_least_one" => present == 0,
                "just_one" => present != 1,
                other => {
                    report.violation(path, Problem::SchemaGap, format!("unknown constraint `{other}`"));
                    false
                }
            };
            if failed {
                report.violation(path, Problem::ConstraintFailed, format!("{kind} of {keys:?}, found {present}"));
            }
        }
    }

    fn check_value(&self, value: &Value, attr: &Value, path: &str, profiles: &HashSet<String>, report: &mut Report) {
        if attr.get("is_array").and_then(Value::as_bool) == Some(true) {
            let Some(items) = value.as_array() else {
                let t = str_field(attr, "type").unwrap_or("?");
                report.violation(path, Problem::WrongType, format!("expected an array of {t}, got {}", kind(value)));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                self.check_single(item, attr, &format!("{path}[{i}]"), profiles, report);
            }
        } else {
            self.check_single(value, attr, path, profiles, report);
        }
    }

    fn check_single(&self, value: &Value, attr: &Value, path: &str, profiles: &HashSet<String>, report: &mut Report) {
        let Some(t) = str_field(attr, "type") else {
            report.violation(path, Problem::SchemaGap, "attribute has no type");
            return;
        };
        if let Some(data_type) = self.types.get(t) {
            self.check_primitive(value, t, data_type, path, report);
        } else if self.objects.contains_key(t) {
            let Some(fields) = value.as_object() else {
                report.violation(path, Problem::WrongType, format!("expected a `{t}` object, got {}", kind(value)));
                return;
            };
            match self.object(t, report, path) {
                Some(def) => self.check_object(fields, &def, path, profiles, report),
                None => report.violation(path, Problem::SchemaGap, format!("object `{t}` extends an unknown object")),
            }
        } else {
            report.violation(path, Problem::SchemaGap, format!("type `{t}` is neither a data type nor an object"));
        }
    }

    /// A dictionary data type: derived types (`uuid_t`, `timestamp_t` …)
    /// carry their base in `type`; limits may sit on either.
    fn check_primitive(&self, value: &Value, t: &str, data_type: &Value, path: &str, report: &mut Report) {
        let base_name = str_field(data_type, "type").unwrap_or(t);
        let base = self.types.get(base_name).unwrap_or(data_type);
        let limit = |key: &str| data_type.get(key).or_else(|| base.get(key));
        let ok = match base_name {
            "string_t" => value.is_string(),
            "integer_t" => value.is_i64(),
            "long_t" => value.is_i64() || value.is_u64(),
            "float_t" => value.is_f64(),
            "boolean_t" => value.is_boolean(),
            "json_t" => true,
            other => {
                report.violation(path, Problem::SchemaGap, format!("`{t}` rests on unknown base type `{other}`"));
                return;
            }
        };
        if !ok {
            let shown = if base_name == t { t.to_string() } else { format!("{t} ({base_name})") };
            report.violation(path, Problem::WrongType, format!("expected {shown}, got {}", kind(value)));
            return;
        }
        if let (Some(s), Some(max)) = (value.as_str(), limit("max_len").and_then(Value::as_u64))
            && s.chars().count() as u64 > max
        {
            report.violation(path, Problem::OutOfRange, format!("longer than {t}'s {max} characters"));
        }
        if let (Some(n), Some([lo, hi])) =
            (value.as_f64(), limit("range").and_then(Value::as_array).map(|r| r.as_slice()))
            && let (Some(lo), Some(hi)) = (lo.as_f64(), hi.as_f64())
            && !(lo..=hi).contains(&n)
        {
            report.violation(path, Problem::OutOfRange, format!("outside {t}'s range {lo}..={hi}"));
        }
        if let Some(allowed) = limit("values").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            report.violation(path, Problem::InvalidEnumValue, format!("not one of {t}'s values {allowed:?}"));
        }
        // No regex engine without a new dependency; the OCSF server only warns
        // on a mismatch, so it is a note, and exports must not need one.
        if value.is_string() && limit("regex").is_some() {
            report.note(path, NoteKind::RegexNotChecked, format!("{t} has a regex this validator does not evaluate"));
        }
    }

    fn check_enum(
        &self,
        fields: &Map<String, Value>,
        name: &str,
        value: &Value,
        attr: &Value,
        path: &str,
        report: &mut Report,
    ) {
        let Some(values) = attr.get("enum").and_then(Value::as_object) else { return };
        let items: Vec<(String, &Value)> = match value.as_array() {
            Some(items) => items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect(),
            None => vec![(path.to_string(), value)],
        };
        for (here, item) in items {
            let key = match item {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                // Not a scalar: the type check has reported it.
                _ => continue,
            };
            let Some(entry) = values.get(&key) else {
                let allowed: Vec<&String> = values.keys().collect();
                report.violation(&here, Problem::InvalidEnumValue, format!("{key} is not one of {allowed:?}"));
                continue;
            };
            if entry.get("@deprecated").is_some() {
                report.note(&here, NoteKind::Deprecated, format!("enum value {key} of `{name}` is deprecated"));
            }
            // The caption sibling may hold any string; with 99 (Other) it is
            // the source's own label, otherwise it should match the caption.
            let sibling = str_field(attr, "sibling").and_then(|s| fields.get(s)).and_then(Value::as_str);
            if let (Some(sibling), Some(caption)) = (sibling, str_field(entry, "caption"))
                && key != "99"
                && sibling != caption
            {
                report.note(
                    &here,
                    NoteKind::SiblingDisagrees,
                    format!("{key} is `{caption}`, sibling says `{sibling}`"),
                );
            }
        }
    }
}

/// Resolves `attributes.$include`: each included file's attributes go
/// underneath the including file's, tagged with the profile's name when the
/// file is a profile, so they apply only to events that declare it.
fn resolve_includes(root: &Path, mut def: Value) -> Value {
    let Some(attributes) = def.get_mut("attributes").and_then(Value::as_object_mut) else { return def };
    let files: Vec<String> = match attributes.remove("$include") {
        Some(Value::String(f)) => vec![f],
        Some(Value::Array(fs)) => fs.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    let mut included = json!({});
    for file in files {
        let inc = resolve_includes(root, read_json(&root.join(&file)));
        let profile = (str_field(&inc, "meta") == Some("profile")).then(|| str_field(&inc, "name")).flatten();
        let mut attrs = inc.get("attributes").cloned().unwrap_or_else(|| json!({}));
        if let (Some(profile), Some(map)) = (profile, attrs.as_object_mut()) {
            for attr in map.values_mut().filter_map(Value::as_object_mut) {
                attr.entry("profile").or_insert_with(|| json!(profile));
            }
        }
        deep_merge(&mut included, &attrs);
    }
    for (name, attr) in attributes.iter() {
        assert!(attr.get("$include").is_none(), "attribute-level $include in `{name}` is not supported");
    }
    deep_merge(&mut included, &Value::Object(attributes.clone()));
    def["attributes"] = included;
    def
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn schema() -> Schema {
    Schema::load(Path::new(SCHEMA_DIR))
}

#[track_caller]
fn assert_valid(schema: &Schema, doc: &Value, what: &str) {
    let report = schema.validate_event(doc);
    let listed = |items: Vec<String>| items.join("\n  ");
    assert!(
        report.violations.is_empty(),
        "{what}: {} OCSF violation(s):\n  {}\n\ndocument:\n{}",
        report.violations.len(),
        listed(report.violations.iter().map(ToString::to_string).collect()),
        serde_json::to_string_pretty(doc).unwrap_or_default()
    );
    assert!(
        report.notes.is_empty(),
        "{what}: notes the OCSF server would warn about:\n  {}",
        listed(report.notes.iter().map(ToString::to_string).collect())
    );
}

/// Every planted error is reported, once, and nothing else is.
#[track_caller]
fn assert_exact_violations(report: &Report, expected: &[(&str, Problem)]) {
    let mut found: Vec<(&str, Problem)> = report.violations.iter().map(|v| (v.path.as_str(), v.problem)).collect();
    let mut expected = expected.to_vec();
    found.sort();
    expected.sort();
    assert_eq!(
        found,
        expected,
        "violations reported:\n  {}",
        report.violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    );
}

// ----- findings -----

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("test time")
}

const STATUSES: [FindingStatus; 4] =
    [FindingStatus::Open, FindingStatus::Acknowledged, FindingStatus::Resolved, FindingStatus::Suppressed];
const SEVERITIES: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
const PRINCIPALS: [&str; 3] = ["arn:aws:iam::123456789012:role/deploy", "user:alice@corp", "agent:agt-1"];

fn history(status: FindingStatus) -> Vec<StatusChange> {
    let step = |t: &str, from, to, reason: Option<&str>| StatusChange {
        at: at(t),
        from,
        to,
        reason: reason.map(String::from),
    };
    let ack = step("2026-11-27T11:00:00Z", FindingStatus::Open, FindingStatus::Acknowledged, None);
    match status {
        FindingStatus::Open => Vec::new(),
        FindingStatus::Acknowledged => vec![ack],
        FindingStatus::Resolved => vec![
            ack,
            step("2026-11-27T12:30:00Z", FindingStatus::Acknowledged, FindingStatus::Resolved, Some("key rotated")),
        ],
        FindingStatus::Suppressed => vec![step(
            "2026-11-27T11:15:00Z",
            FindingStatus::Open,
            FindingStatus::Suppressed,
            Some("approved migration"),
        )],
    }
}

/// A finding with evidence of every kind: a baseline departure, a Sigma
/// match and a trust-graph path.
fn full_finding(category: Category, status: FindingStatus, n: usize) -> Finding {
    let principal = PRINCIPALS[n % PRINCIPALS.len()];
    Finding {
        id: format!("fnd-{n:04}"),
        category,
        severity: SEVERITIES[n % SEVERITIES.len()],
        confidence: 0.83,
        principal: principal.to_string(),
        first_seen: at("2026-11-27T09:58:12Z"),
        last_seen: at("2026-11-27T10:04:40.250Z"),
        raised_at: at("2026-11-27T10:02:00Z"),
        event_ids: vec![EventId::from("ct:a1"), EventId::from("ct:a2"), EventId::from("k8s:b7")],
        techniques: vec!["T1078.004".into(), "T1098".into()],
        summary: format!("{principal} assumed role/admin for the first time and attached a policy"),
        status,
        explanation: "No change ticket or deploy explains the new role; the policy widens access.".into(),
        evidence: vec![
            Evidence {
                detector: "novelty".into(),
                detail: "first AssumeRole into role/admin".into(),
                at: at("2026-11-27T09:58:12Z"),
                event_ids: vec![EventId::from("ct:a1")],
                baseline: Some(BaselineStat {
                    scope: "principal".into(),
                    feature: "action".into(),
                    observed: "sts:AssumeRole role/admin".into(),
                    expected: "never seen in 1,204 events over 9 days".into(),
                    history: 1204,
                }),
                rule: None,
                path: Vec::new(),
            },
            Evidence {
                detector: "sigma".into(),
                detail: "matched an AWS IAM policy attachment rule".into(),
                at: at("2026-11-27T10:01:00Z"),
                event_ids: vec![EventId::from("ct:a2"), EventId::from("ct:a9")],
                baseline: None,
                rule: Some(RuleMatch {
                    id: "6a0c5b9d-0b57-4ad1-a5b6-6b3b9b0a7f3e".into(),
                    title: "AWS IAM Backdoor Users Keys".into(),
                    level: "medium".into(),
                    file: "cloud/aws/cloudtrail/aws_iam_backdoor_users_keys.yml".into(),
                }),
                path: Vec::new(),
            },
            Evidence {
                detector: "trust_edge".into(),
                detail: "a new path to role/admin".into(),
                at: at("2026-11-27T10:04:40.250Z"),
                event_ids: vec![EventId::from("k8s:b7")],
                baseline: None,
                rule: None,
                path: vec![
                    format!("{principal} →[assumption] role/deploy"),
                    "role/deploy →[assumption] role/admin".into(),
                ],
            },
        ],
        history: history(status),
    }
}

/// A finding with nothing optional filled in.
fn bare_finding(confidence: f64) -> Finding {
    Finding {
        id: "fnd-bare".into(),
        category: Category::UnintendedDrift,
        severity: Severity::Low,
        confidence,
        principal: "user:bob@corp".into(),
        first_seen: at("2026-11-27T10:00:00Z"),
        last_seen: at("2026-11-27T10:00:00Z"),
        raised_at: at("2026-11-27T10:00:00Z"),
        event_ids: Vec::new(),
        techniques: Vec::new(),
        summary: String::new(),
        status: FindingStatus::Open,
        explanation: String::new(),
        evidence: Vec::new(),
        history: Vec::new(),
    }
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

// ----- tests -----

#[test]
fn schema_resolution_follows_extends_includes_and_profiles() {
    let schema = schema();
    let mut report = Report::default();
    let class = schema.class(2004, &mut report).expect("Detection Finding resolves");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(class.name, "detection_finding");
    let attr = |name: &str| class.attributes.get(name).unwrap_or_else(|| panic!("`{name}` resolved"));
    // One attribute from each level of the chain, completed from the dictionary.
    assert_eq!(str_field(attr("metadata"), "requirement"), Some("required"), "base_event");
    assert_eq!(str_field(attr("finding_info"), "requirement"), Some("required"), "finding");
    assert_eq!(str_field(attr("evidences"), "type"), Some("evidences"), "detection_finding + dictionary");
    assert_eq!(attr("evidences")["is_array"], json!(true));
    // Profile attributes are tagged; the class's `"profile": null` untags.
    assert_eq!(str_field(attr("actor"), "profile"), Some("host"));
    assert_eq!(str_field(attr("osint"), "profile"), Some("osint"));
    assert_eq!(str_field(attr("osint"), "requirement"), Some("required"));
    assert_eq!(attr("confidence_score").get("profile"), Some(&Value::Null));
    // Enums merge down the chain: the dictionary's 0 and 99, the Finding's 1–3.
    let activities: Vec<&String> = attr("activity_id")["enum"].as_object().expect("enum").keys().collect();
    assert_eq!(activities, ["0", "1", "2", "3", "99"]);
    let types: Vec<&String> = attr("type_uid")["enum"].as_object().expect("enum").keys().collect();
    assert_eq!(types, ["200400", "200401", "200402", "200403", "200499"]);
    assert_eq!(schema.version, FINDING_SCHEMA_VERSION, "the exporter names the schema it is checked against");
}

#[test]
fn every_category_and_status_exports_a_valid_detection_finding() {
    let schema = schema();
    let mut n = 0;
    for category in Category::ALL {
        for status in STATUSES {
            let finding = full_finding(category, status, n);
            n += 1;
            let doc = finding_to_ocsf(&finding);
            assert_valid(&schema, &doc, &format!("{category}/{status}"));

            assert!(strs(&doc["finding_info"]["types"]).contains(&category.as_str()), "{category}: types");
            let (activity, status_id, status_caption) = match status {
                FindingStatus::Open => (1, 1, "New"),
                FindingStatus::Acknowledged => (2, 2, "In Progress"),
                FindingStatus::Resolved => (3, 4, "Resolved"),
                FindingStatus::Suppressed => (3, 3, "Suppressed"),
            };
            assert_eq!(doc["activity_id"], json!(activity), "{status}");
            assert_eq!(doc["type_uid"], json!(200400 + activity), "{status}");
            assert_eq!((&doc["status_id"], &doc["status"]), (&json!(status_id), &json!(status_caption)));
            assert_eq!(doc["is_alert"], json!(category.is_alert() && activity != 3), "{category}/{status}");
            assert_eq!(doc["unmapped"]["history"].as_array().map_or(0, Vec::len), finding.history.len());
        }
    }
}

#[test]
fn export_maps_each_finding_field_to_its_ocsf_attribute() {
    let finding = full_finding(Category::LikelyMalicious, FindingStatus::Resolved, 2);
    let doc = finding_to_ocsf(&finding);
    let info = &doc["finding_info"];

    assert_eq!((&doc["class_uid"], &doc["category_uid"]), (&json!(2004), &json!(2)));
    assert_eq!(doc["metadata"]["version"], json!(FINDING_SCHEMA_VERSION));
    assert_eq!(doc["metadata"]["product"]["name"], json!("Tenet"));
    assert_eq!(doc["metadata"]["profiles"], json!(["host"]));
    assert_eq!((&doc["severity_id"], &doc["severity"]), (&json!(4), &json!("High")));
    assert_eq!(doc["confidence_score"], json!(83));
    assert_eq!(doc["time"], json!(finding.raised_at.unix_millis()));
    assert_eq!(doc["start_time"], json!(finding.first_seen.unix_millis()));
    assert_eq!(doc["end_time"], json!(at("2026-11-27T10:04:40.250Z").unix_millis()));
    assert_eq!(doc["message"], json!(finding.summary));
    assert_eq!(doc["actor"]["user"]["uid"], json!("agent:agt-1"));

    assert_eq!(info["uid"], json!("fnd-0002"));
    assert_eq!(info["title"], json!("Likely malicious: agent:agt-1"));
    assert_eq!(info["desc"], json!(format!("{}\n{}", finding.summary, finding.explanation)));
    assert_eq!(info["created_time"], doc["time"]);
    assert_eq!((&info["first_seen_time"], &info["last_seen_time"]), (&doc["start_time"], &doc["end_time"]));
    assert_eq!(info["modified_time"], json!(at("2026-11-27T12:30:00Z").unix_millis()));
    assert_eq!(
        info["attacks"],
        json!([
            {"technique": {"uid": "T1078"}, "sub_technique": {"uid": "T1078.004"}},
            {"technique": {"uid": "T1098"}},
        ])
    );
    let related: Vec<&str> =
        info["related_events"].as_array().expect("related").iter().filter_map(|e| e["uid"].as_str()).collect();
    assert_eq!(related, ["ct:a1", "ct:a2", "k8s:b7", "ct:a9"], "the finding's events, then the evidence's others");
    assert_eq!(info["related_events_count"], json!(4));
    assert_eq!(info["analytic"], json!({"name": "novelty", "type_id": 2, "type": "Behavioral"}));
    assert_eq!(
        info["related_analytics"],
        json!([
            {"uid": "6a0c5b9d-0b57-4ad1-a5b6-6b3b9b0a7f3e", "name": "AWS IAM Backdoor Users Keys", "type_id": 1, "type": "Rule"},
            {"name": "trust_edge", "type_id": 2, "type": "Behavioral"},
        ])
    );

    let evidences = doc["evidences"].as_array().expect("evidences");
    assert_eq!(evidences.len(), 3);
    assert_eq!(evidences[0]["name"], json!("novelty"));
    assert_eq!(evidences[0]["data"]["baseline"]["history"], json!(1204));
    assert_eq!(evidences[1]["data"]["rule"]["file"], json!("cloud/aws/cloudtrail/aws_iam_backdoor_users_keys.yml"));
    assert_eq!(evidences[2]["data"]["path"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        doc["anomaly_analyses"],
        json!([{
            "analysis_targets": [{"name": "agent:agt-1", "type": "principal"}],
            "anomalies": [{"observation_parameter": "action", "observations": [{"value": "sts:AssumeRole role/admin"}]}],
            "baselines": [{"observation_parameter": "action", "observations": [{"value": "never seen in 1,204 events over 9 days"}]}],
        }])
    );
    assert_eq!(doc["unmapped"]["history"][1]["reason"], json!("key rotated"));
}

#[test]
fn validator_reports_exactly_the_errors_planted_in_a_broken_document() {
    let schema = schema();
    let mut doc = finding_to_ocsf(&full_finding(Category::UnintendedDrift, FindingStatus::Open, 0));
    assert_valid(&schema, &doc, "before breaking it");

    let fields = doc.as_object_mut().expect("object");
    fields.remove("severity_id");
    fields.insert("time".into(), json!("2026-11-27T10:02:00Z"));
    fields.insert("status_id".into(), json!(42));
    doc["finding_info"]["colour"] = json!("red");

    assert_exact_violations(
        &schema.validate_event(&doc),
        &[
            ("severity_id", Problem::MissingRequired),
            ("finding_info.colour", Problem::UnknownAttribute),
            ("time", Problem::WrongType),
            ("status_id", Problem::InvalidEnumValue),
        ],
    );
}

#[test]
fn validator_reaches_into_arrays_profiles_constraints_and_type_uid() {
    let schema = schema();
    let mut doc = finding_to_ocsf(&full_finding(Category::LikelyMalicious, FindingStatus::Acknowledged, 1));
    // Deep in an array of objects: a required uid gone, an enum out of range.
    doc["finding_info"]["related_events"][1].as_object_mut().expect("related event").remove("uid");
    doc["finding_info"]["analytic"]["type_id"] = json!(12);
    // A constraint: an ATT&CK entry naming neither tactic nor technique.
    doc["finding_info"]["attacks"][1] = json!({"version": "14.1"});
    // Arrays must be arrays; strings must be strings.
    doc["finding_info"]["types"] = json!("likely_malicious");
    doc["evidences"][0]["name"] = json!(7);
    // `actor` needs the Host profile declared; `cloud` its own.
    doc["metadata"]["profiles"] = json!(["no_such_profile"]);
    doc["cloud"] = json!({"provider": "aws"});
    doc["type_uid"] = json!(200401);

    assert_exact_violations(
        &schema.validate_event(&doc),
        &[
            ("finding_info.related_events[1].uid", Problem::MissingRequired),
            ("finding_info.analytic.type_id", Problem::InvalidEnumValue),
            ("finding_info.attacks[1]", Problem::ConstraintFailed),
            ("finding_info.types", Problem::WrongType),
            ("evidences[0].name", Problem::WrongType),
            ("metadata.profiles[0]", Problem::UnknownProfile),
            ("actor", Problem::UnknownAttribute),
            ("cloud", Problem::UnknownAttribute),
            ("type_uid", Problem::TypeUidMismatch),
        ],
    );
}

#[test]
fn odd_findings_still_export_valid_detection_findings() {
    let schema = schema();
    for (confidence, score) in [(1.0, Some(100)), (0.0, Some(0)), (-0.5, Some(0)), (7.0, Some(100)), (0.005, Some(1))] {
        let doc = finding_to_ocsf(&bare_finding(confidence));
        assert_valid(&schema, &doc, &format!("confidence {confidence}"));
        assert_eq!(doc.get("confidence_score"), score.map(|s: i64| json!(s)).as_ref(), "confidence {confidence}");
        assert!(doc.get("message").is_none(), "an empty summary is no message");
        assert!(doc["finding_info"].get("related_events").is_none() && doc["finding_info"].get("attacks").is_none());
        assert_eq!(strs(&doc["finding_info"]["types"]), ["unintended_drift"]);
    }
    for confidence in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let doc = finding_to_ocsf(&bare_finding(confidence));
        assert_valid(&schema, &doc, &format!("confidence {confidence}"));
        assert!(doc.get("confidence_score").is_none(), "{confidence} is no score");
    }

    let mut nobody = bare_finding(0.5);
    nobody.id = String::new();
    nobody.principal = String::new();
    nobody.first_seen = Timestamp::MIN;
    nobody.raised_at = Timestamp::MAX;
    nobody.last_seen = Timestamp::MAX;
    nobody.techniques = vec![String::new(), "  ".into(), "T1078.004".into(), "T1078.004".into(), "x.y.z".into()];
    nobody.event_ids = vec![EventId::from(""), EventId::from("")];
    nobody.evidence = vec![Evidence {
        detector: String::new(),
        detail: String::new(),
        at: Timestamp::MIN,
        event_ids: Vec::new(),
        baseline: Some(BaselineStat {
            scope: String::new(),
            feature: String::new(),
            observed: String::new(),
            expected: String::new(),
            history: u64::MAX,
        }),
        rule: Some(RuleMatch { id: String::new(), title: String::new(), level: String::new(), file: String::new() }),
        path: vec![String::new()],
    }];
    nobody.summary = "ünïcödé \u{0} \"quoted\" ".repeat(500);
    let doc = finding_to_ocsf(&nobody);
    assert_valid(&schema, &doc, "empty ids, extreme times, blank evidence");
    assert!(doc.get("actor").is_none(), "no principal, no actor");
    assert_eq!(doc["metadata"]["profiles"], json!([]));
    assert_eq!(doc["finding_info"]["attacks"].as_array().map(Vec::len), Some(2), "blank and repeated ids dropped");
    assert_eq!(doc["finding_info"]["related_events_count"], json!(1));
}
