//! An OCSF validator for tests: exports are checked against the schema in
//! `../shared/specs/ocsf-schema`, not against our own idea of it.
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

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

pub const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/ocsf-schema");

// ----- the validator -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
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
pub enum NoteKind {
    SiblingDisagrees,
    Deprecated,
    RegexNotChecked,
    OtherVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub path: String,
    pub problem: Problem,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub path: String,
    pub kind: NoteKind,
    pub detail: String,
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

pub fn display_path(path: &str) -> &str {
    if path.is_empty() { "<event>" } else { path }
}

#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub notes: Vec<Note>,
}

impl Report {
    pub fn violation(&mut self, path: &str, problem: Problem, detail: impl Into<String>) {
        self.violations.push(Violation { path: path.to_string(), problem, detail: detail.into() });
    }

    pub fn note(&mut self, path: &str, kind: NoteKind, detail: impl Into<String>) {
        self.notes.push(Note { path: path.to_string(), kind, detail: detail.into() });
    }
}

/// The schema files with their `$include`s resolved; `extends` is resolved on
/// demand, per class or object.
pub struct Schema {
    pub version: String,
    pub dictionary: Map<String, Value>,
    pub types: Map<String, Value>,
    pub categories: Map<String, Value>,
    pub classes: HashMap<String, Value>,
    pub objects: HashMap<String, Value>,
    pub profiles: HashSet<String>,
}

/// A class or object with its `extends` chain merged and every attribute
/// completed from the dictionary.
pub struct Resolved {
    pub name: String,
    pub attributes: Map<String, Value>,
    pub constraints: Map<String, Value>,
    pub deprecated: bool,
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn json_files(dir: &Path) -> Vec<PathBuf> {
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
pub fn deep_merge(base: &mut Value, overlay: &Value) {
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

pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl Schema {
    pub fn load(root: &Path) -> Schema {
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
    pub fn merged(&self, table: &HashMap<String, Value>, name: &str, depth: usize) -> Option<Value> {
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

    pub fn complete(&self, def: Value, report: &mut Report, path: &str) -> Resolved {
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

    pub fn object(&self, name: &str, report: &mut Report, path: &str) -> Option<Resolved> {
        let def = self.merged(&self.objects, name, 0)?;
        Some(self.complete(def, report, path))
    }

    /// The concrete class whose `class_uid` (category × 1000 + uid) is
    /// `class_uid`, with the enums the OCSF server derives for it.
    pub fn class(&self, class_uid: i64, report: &mut Report) -> Option<Resolved> {
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

    pub fn validate_event(&self, event: &Value) -> Report {
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

    pub fn declared_profiles(&self, fields: &Map<String, Value>, report: &mut Report) -> HashSet<String> {
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
    pub fn applicable(&self, def: &Resolved, profiles: &HashSet<String>) -> BTreeMap<String, Value> {
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

    pub fn check_object(
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

    pub fn check_value(
        &self,
        value: &Value,
        attr: &Value,
        path: &str,
        profiles: &HashSet<String>,
        report: &mut Report,
    ) {
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

    pub fn check_single(
        &self,
        value: &Value,
        attr: &Value,
        path: &str,
        profiles: &HashSet<String>,
        report: &mut Report,
    ) {
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
    pub fn check_primitive(&self, value: &Value, t: &str, data_type: &Value, path: &str, report: &mut Report) {
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

    pub fn check_enum(
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
pub fn resolve_includes(root: &Path, mut def: Value) -> Value {
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

pub fn kind(v: &Value) -> &'static str {
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

pub fn schema() -> Schema {
    Schema::load(Path::new(SCHEMA_DIR))
}

/// Everything wrong with `doc` that the OCSF server would reject or warn
/// about, as lines. Regex-typed values (IPs, datetimes) are only noted as
/// unchecked by this validator: exports write them with `IpAddr` and
/// `Timestamp` formatting, so those notes are left out.
pub fn problems(schema: &Schema, doc: &Value) -> Vec<String> {
    let report = schema.validate_event(doc);
    report
        .violations
        .iter()
        .map(ToString::to_string)
        .chain(report.notes.iter().filter(|n| n.kind != NoteKind::RegexNotChecked).map(ToString::to_string))
        .collect()
}

/// The schema at `dir`, for tests outside this crate (whose manifest
/// directory is elsewhere).
pub fn schema_at(dir: &Path) -> Schema {
    Schema::load(dir)
}

#[track_caller]
pub fn assert_valid(schema: &Schema, doc: &Value, what: &str) {
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
pub fn assert_exact_violations(report: &Report, expected: &[(&str, Problem)]) {
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
