//! Kubernetes RBAC: `Role`, `ClusterRole`, `RoleBinding` and
//! `ClusterRoleBinding` objects, as a `List` (what `kubectl get … -o json`
//! prints), typed lists (`ClusterRoleList`), one object, an array, or a
//! stream of documents; JSON or YAML.
//!
//! Ids are the ones the audit adapter gives the same principals: a user is
//! `k8s:<name>`, a service account `k8s:system:serviceaccount:<ns>:<name>`;
//! a group is `k8s:group/<name>`; roles are `k8s:clusterrole/<name>` and
//! `k8s:role/<namespace>/<name>`. Objects of other kinds are reported in
//! `skipped` and otherwise ignored.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tenet_model::{Fact, NodeKind, RbacRule, Snapshot, Timestamp};

use super::walk::{
    Entry, Facts, Lines, Problem, Res, at, describe, entries, join, json_error, object, opt_array, opt_object, opt_str,
    problem, raw_list, req_str, str_list, string_map,
};
use super::{Imported, InventoryError, RBAC_API, RBAC_KINDS, Skipped};
use crate::framing::Location;

const NAME: &str = "k8s-rbac";

pub(super) fn import(text: &str, collected_at: Timestamp, cluster: &str) -> Result<Imported, InventoryError> {
    let mut skipped = Vec::new();
    let json = text.trim_start().starts_with(['{', '[']);
    let (objects, single) = if json { json_objects(text, &mut skipped)? } else { yaml_objects(text)? };

    let mut facts = Facts::default();
    let mut only_id = None;
    for e in &objects {
        let mut notes = Vec::new();
        match rbac_object(e, &mut notes) {
            Ok(Some((id, f))) => {
                facts.extend(f);
                only_id = Some(id);
                skipped.extend(notes.into_iter().map(|p| e.skipped(object_name(&e.value), p)));
            }
            Ok(None) => {
                let kind = e.value.get("kind").and_then(Value::as_str).unwrap_or("(none)");
                let api = e.value.get("apiVersion").and_then(Value::as_str).unwrap_or("(none)");
                skipped.push(Skipped {
                    location: Location {
                        line: e.line,
                        index: e.index,
                        path: (!e.path.is_empty()).then(|| e.path.clone()),
                    },
                    entry: object_name(&e.value),
                    reason: format!("kind {kind} (apiVersion {api}) is not RBAC; skipped"),
                });
            }
            Err(p) => skipped.push(e.skipped(object_name(&e.value), p)),
        }
    }
    // One object on its own is complete for itself, not for the cluster:
    // importing it must not retract the rest of the cluster's RBAC.
    let scope = match (single, only_id) {
        (true, Some(id)) => format!("k8s:{cluster}/{id}"),
        _ => format!("k8s:{cluster}"),
    };
    let snapshot = Snapshot { source: NAME.to_string(), scope, collected_at, facts: facts.into_vec() };
    Ok(Imported { snapshots: vec![snapshot], skipped })
}

/// `Kind/namespace/name` for reports.
fn object_name(v: &Value) -> Option<String> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("?");
    let meta = v.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str)?;
    Some(match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    })
}

/// Whether a document is a list of objects rather than one.
fn is_list(kind: Option<&str>, has_items: bool) -> bool {
    has_items && kind.is_none_or(|k| k.ends_with("List"))
}

/// JSON: one document or several in a row; each a list or one object.
/// Returns the objects, and whether the input was one lone object.
fn json_objects(text: &str, skipped: &mut Vec<Skipped>) -> Result<(Vec<Entry>, bool), InventoryError> {
    let mut docs: Vec<&RawValue> = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        docs.push(doc.map_err(|e| json_error(NAME, text, text, &e))?);
    }
    let mut lines = Lines::new(text);
    let mut out = Vec::new();
    let mut single = docs.len() == 1;
    let several = docs.len() > 1;
    for (d, raw) in docs.iter().enumerate() {
        let prefix = if several { format!("document[{d}]") } else { String::new() };
        let s = raw.get();
        if s.starts_with('[') {
            single = false;
            let items = raw_list(NAME, text, &prefix, Some(raw))?;
            out.extend(entries(&mut lines, &prefix, &items, skipped));
            continue;
        }
        if s.starts_with('{') {
            let members: std::collections::BTreeMap<String, &RawValue> =
                serde_json::from_str(s).map_err(|e| json_error(NAME, text, s, &e))?;
            let kind: Option<String> = members.get("kind").and_then(|k| serde_json::from_str(k.get()).ok());
            if is_list(kind.as_deref(), members.contains_key("items")) {
                single = false;
                let path = join(&prefix, "items");
                let items = raw_list(NAME, text, &path, members.get("items").copied())?;
                out.extend(entries(&mut lines, &path, &items, skipped));
                continue;
            }
        }
        let line = lines.of(s);
        match serde_json::from_str::<Value>(s) {
            Ok(Value::Null) => {}
            Ok(value) => out.push(Entry { line, index: several.then_some(d), path: prefix, value }),
            Err(e) => skipped.push(Skipped {
                location: Location { line, index: several.then_some(d), path: None },
                entry: None,
                reason: super::walk::message(&e),
            }),
        }
    }
    Ok((out, single))
}

/// YAML: a stream of documents separated by `---` lines; each a list or
/// one object. Documents are split on their markers (which YAML forbids
/// inside any scalar) so that every error and entry has its real line.
fn yaml_objects(text: &str) -> Result<(Vec<Entry>, bool), InventoryError> {
    let mut docs: Vec<(usize, Value)> = Vec::new();
    for (line, segment) in yaml_segments(text) {
        let value: Value = serde_yaml_ng::from_str(segment).map_err(|e| {
            // libyaml places an error at the end of input on the line after
            // the last one; a location names a line of the file.
            let last = line + memchr::memchr_iter(b'\n', segment.as_bytes()).count();
            let at = e.location().map_or(line, |l| line + l.line().saturating_sub(1)).min(last);
            InventoryError::Malformed {
                format: NAME,
                location: Location::line(at),
                reason: shift_lines(&e.to_string(), line - 1, last),
            }
        })?;
        if !value.is_null() {
            docs.push((line, value));
        }
    }
    if docs.is_empty() {
        return Err(InventoryError::Invalid {
            format: NAME,
            location: Location::line(1),
            reason: "no YAML documents; expected Kubernetes RBAC objects".to_string(),
        });
    }
    let several = docs.len() > 1;
    let mut single = !several;
    let mut out = Vec::new();
    for (d, (line, value)) in docs.into_iter().enumerate() {
        let prefix = if several { format!("document[{d}]") } else { String::new() };
        let items = match &value {
            Value::Array(items) => Some((items.clone(), prefix.clone())),
            Value::Object(m) if is_list(m.get("kind").and_then(Value::as_str), m.contains_key("items")) => {
                let path = join(&prefix, "items");
                match m.get("items") {
                    Some(Value::Array(items)) => Some((items.clone(), path)),
                    Some(Value::Null) => Some((Vec::new(), path)),
                    Some(other) => {
                        return Err(InventoryError::Invalid {
                            format: NAME,
                            location: Location::line(line).with_path(path),
                            reason: format!("items is {}, expected an array", describe(other)),
                        });
                    }
                    None => None,
                }
            }
            _ => None,
        };
        match items {
            Some((items, path)) => {
                single = false;
                for (i, value) in items.into_iter().enumerate() {
                    out.push(Entry { line, index: Some(i), path: at(&path, i), value });
                }
            }
            None => out.push(Entry { line, index: several.then_some(d), path: prefix, value }),
        }
    }
    Ok((out, single))
}

/// The documents of a YAML stream: (first line, text), split at `---` lines.
fn yaml_segments(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut start_line) = (0usize, 1usize);
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if marker && offset > start {
            out.push((start_line, &text[start..offset]));
            start = offset;
            start_line = i + 1;
        } else if marker {
            start_line = i + 1;
        }
        offset += line.len();
    }
    if offset > start {
        out.push((start_line, &text[start..]));
    }
    // A segment of nothing but blank lines, comments and directives is no document.
    out.retain(|(_, s)| {
        s.lines().any(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t.starts_with('%') || t == "---" || t == "...")
        })
    });
    out
}

/// Rewrites `line N` in a YAML error (counted from its document) to count
/// from the start of the file.
fn shift_lines(message: &str, by: usize, last: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(k) = rest.find("line ") {
        out.push_str(&rest[..k + 5]);
        rest = &rest[k + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).min(last).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// One object: `Ok(None)` when it is not RBAC; otherwise its id (for a lone
/// object's scope) and facts. Parts left out of an imported object go to `notes`.
fn rbac_object(e: &Entry, notes: &mut Vec<Problem>) -> Res<Option<(String, Vec<Fact>)>> {
    let path = e.path.as_str();
    let m = object(&e.value, path)?;
    let kind = opt_str(m, path, "kind")?;
    let rbac_api = opt_str(m, path, "apiVersion")?.is_none_or(|a| a.starts_with(RBAC_API));
    let Some(kind) = kind.filter(|k| rbac_api && RBAC_KINDS.contains(k)) else { return Ok(None) };
    let mp = join(path, "metadata");
    let Some(meta) = opt_object(m, path, "metadata")? else { return problem(mp, "is missing") };
    let name = req_str(meta, &mp, "name")?;
    let namespaced = kind == "Role" || kind == "RoleBinding";
    let namespace = if namespaced {
        Some(req_str(meta, &mp, "namespace").map_err(|mut p| {
            p.reason = format!("is missing: a {kind} is namespaced");
            p
        })?)
    } else {
        None
    };
    match kind {
        "Role" | "ClusterRole" => role(m, path, meta, &mp, name, namespace, notes).map(Some),
        _ => binding(m, path, kind, name, namespace).map(Some),
    }
}

fn role(
    m: &Map<String, Value>,
    path: &str,
    meta: &Map<String, Value>,
    mp: &str,
    name: &str,
    namespace: Option<&str>,
    notes: &mut Vec<Problem>,
) -> Res<(String, Vec<Fact>)> {
    let id = match namespace {
        Some(ns) => format!("k8s:role/{ns}/{name}"),
        None => format!("k8s:clusterrole/{name}"),
    };
    let rp = join(path, "rules");
    let rules = opt_array(m, path, "rules")?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = at(&rp, i);
            let r = object(r, &p)?;
            Ok(RbacRule {
                api_groups: str_list(r, &p, "apiGroups")?,
                resources: str_list(r, &p, "resources")?,
                verbs: str_list(r, &p, "verbs")?,
                resource_names: str_list(r, &p, "resourceNames")?,
                non_resource_urls: str_list(r, &p, "nonResourceURLs")?,
            })
        })
        .collect::<Res<Vec<_>>>()?;
    let labels = string_map(meta, mp, "labels")?;
    let mut aggregate = Vec::new();
    if namespace.is_none()
        && let Some(rule) = opt_object(m, path, "aggregationRule")?
    {
        let ap = join(path, "aggregationRule");
        let sp = join(&ap, "clusterRoleSelectors");
        for (i, sel) in opt_array(rule, &ap, "clusterRoleSelectors")?.iter().enumerate() {
            let p = at(&sp, i);
            let sel = object(sel, &p)?;
            // As the audit adapter reads a ClusterRole: selectors by their
            // labels, empty ones dropped; expressions are not modelled.
            if !opt_array(sel, &p, "matchExpressions")?.is_empty() {
                notes.push(Problem {
                    path: join(&p, "matchExpressions"),
                    reason: "label selector expressions are not modelled; only matchLabels imported".to_string(),
                });
            }
            let labels = string_map(sel, &p, "matchLabels")?;
            if !labels.is_empty() {
                aggregate.push(labels);
            }
        }
    }
    let facts = vec![
        Fact::Node { id: id.clone(), kind: NodeKind::Policy, name: Some(name.to_string()) },
        Fact::RbacRole { role: id.clone(), namespace: namespace.map(str::to_string), rules, labels, aggregate },
    ];
    let own = match namespace {
        Some(ns) => format!("role/{ns}/{name}"),
        None => format!("clusterrole/{name}"),
    };
    Ok((own, facts))
}

fn binding(
    m: &Map<String, Value>,
    path: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Res<(String, Vec<Fact>)> {
    let rp = join(path, "roleRef");
    let Some(role_ref) = opt_object(m, path, "roleRef")? else { return problem(rp, "is missing") };
    let role_kind = req_str(role_ref, &rp, "kind")?;
    let role_name = req_str(role_ref, &rp, "name")?;
    let role = match (role_kind, namespace) {
        ("ClusterRole", _) => format!("k8s:clusterrole/{role_name}"),
        ("Role", Some(ns)) => format!("k8s:role/{ns}/{role_name}"),
        ("Role", None) => return problem(join(&rp, "kind"), "a ClusterRoleBinding cannot refer to a Role"),
        (other, _) => return problem(join(&rp, "kind"), format!("`{other}` is neither Role nor ClusterRole")),
    };
    let mut facts = Vec::new();
    let sp = join(path, "subjects");
    for (i, s) in opt_array(m, path, "subjects")?.iter().enumerate() {
        let p = at(&sp, i);
        let s = object(s, &p)?;
        let subject_kind = req_str(s, &p, "kind")?;
        let subject_name = req_str(s, &p, "name")?;
        let (id, node_kind, display) = match subject_kind {
            "User" => {
                let kind = if subject_name.starts_with("system:") { NodeKind::WORKLOAD } else { NodeKind::HUMAN };
                (format!("k8s:{subject_name}"), kind, subject_name.to_string())
            }
            "Group" => (format!("k8s:group/{subject_name}"), NodeKind::Group, subject_name.to_string()),
            "ServiceAccount" => {
                let ns = match (opt_str(s, &p, "namespace")?, namespace) {
                    (Some(ns), _) | (None, Some(ns)) => ns,
                    (None, None) => {
                        return problem(join(&p, "namespace"), "is missing: a ServiceAccount subject needs one");
                    }
                };
                let user = format!("system:serviceaccount:{ns}:{subject_name}");
                (format!("k8s:{user}"), NodeKind::WORKLOAD, user)
            }
            other => {
                return problem(
                    join(&p, "kind"),
                    format!("`{other}` is not a subject kind (User, Group, ServiceAccount)"),
                );
            }
        };
        facts.push(Fact::Node { id: id.clone(), kind: node_kind, name: Some(display) });
        facts.push(Fact::RbacBinding { subject: id, role: role.clone(), namespace: namespace.map(str::to_string) });
    }
    let own = match namespace {
        Some(ns) => format!("{}/{ns}/{name}", kind.to_ascii_lowercase()),
        None => format!("{}/{name}", kind.to_ascii_lowercase()),
    };
    Ok((own, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_on_markers_only() {
        let text = "# header\n---\nkind: Role\n---  \n--- # c\na: |\n  --- not a marker\n...\n---\n\n";
        let segs = yaml_segments(text);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(segs[0].0, 2);
        assert!(segs[0].1.contains("kind: Role"));
        assert_eq!(segs[1].0, 5);
        assert!(segs[1].1.contains("not a marker"));
    }

    #[test]
    fn yaml_error_lines_count_from_the_file() {
        assert_eq!(
            shift_lines("did not find expected key at line 3 column 5, while parsing at line 1 column 1", 10, 20),
            "did not find expected key at line 13 column 5, while parsing at line 11 column 1"
        );
        assert_eq!(shift_lines("no line here", 4, 20), "no line here");
    }

    /// Found by fuzzing (fuzz/ `inventory`): libyaml reports a document
    /// cut short at the end of input on the line after the last, a line
    /// the file does not have.
    #[test]
    fn a_yaml_error_at_the_end_of_input_names_the_last_line() {
        for (text, last) in [
            ("kind: Role\nx", 2),
            ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nx", 3),
            ("kind: Role\n---\nkind: Role\nx", 4),
        ] {
            let Err(InventoryError::Malformed { location, reason, .. }) = yaml_objects(text) else {
                panic!("{text:?} is malformed")
            };
            assert_eq!(location.line, last, "{text:?}: {reason}");
            assert!(!reason.contains(&format!("line {}", last + 1)), "{text:?}: {reason}");
        }
    }
}
