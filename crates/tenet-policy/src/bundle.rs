//! A policy set as loaded from a policy directory's files: Cedar policies,
//! an optional schema they are validated against, and optional entity data.
//! Built from file contents (the caller reads the files), so loading is
//! pure and a refused change leaves the serving set untouched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Entities, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

/// One file of a policy directory, by its name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// Why a policy directory was refused, with Cedar's diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{file}:{line}:{column}: {message}")]
    Parse { file: String, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    Schema { file: String, message: String },
    #[error("policy {policy} ({file}) fails validation against the schema: {message}")]
    Invalid { file: String, policy: String, message: String },
    #[error("{file}: {message}")]
    Entities { file: String, message: String },
    #[error("{file}: policy id {id:?} is also used in {other}")]
    DuplicateId { file: String, id: String, other: String },
    #[error("{file}: templates are not supported; write the policies they would link")]
    Template { file: String },
    #[error("no *.cedar policy files")]
    Empty,
}

/// A loaded, validated policy set with its data: what one decision needs.
pub struct PolicyBundle {
    pub(crate) policies: PolicySet,
    pub(crate) schema: Option<Schema>,
    pub(crate) entities: Entities,
    /// Entity references found in each entity's attributes: followed when a
    /// request's entities are gathered, so `principal.manager.team` works.
    pub(crate) refs: HashMap<EntityUid, Vec<EntityUid>>,
    /// Entity ids by type name: search candidates.
    pub(crate) by_type: HashMap<String, Vec<String>>,
    /// Every action the policies, schema or entities name: action-search candidates.
    pub(crate) actions: Vec<String>,
    /// Which file each policy came from.
    pub(crate) origin: HashMap<String, String>,
    version: String,
    files: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Whether any policy reads an attribute of an entity named literally
    /// (`Group::"x".owner`): then a request's entities include its ancestors.
    pub(crate) literal_attrs: bool,
    /// The policies that can apply to each action (see `engine::policies_for`).
    pub(crate) by_action: std::sync::Mutex<rustc_hash::FxHashMap<String, std::sync::Arc<PolicySet>>>,
    /// Contexts already built, by the signals they hold (see `engine::context`).
    pub(crate) contexts: std::sync::Mutex<rustc_hash::FxHashMap<crate::TrustSignals, cedar_policy::Context>>,
    /// Request entity sets drawn from the directory alone, by (principal,
    /// action, resource) (see `engine::request_entities`).
    pub(crate) assembled:
        std::sync::Mutex<rustc_hash::FxHashMap<[cedar_policy::EntityUid; 3], std::sync::Arc<cedar_policy::Entities>>>,
}

impl std::fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyBundle").field("version", &self.version).field("policies", &self.origin.len()).finish()
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}

/// The first labelled span of a Cedar diagnostic, as a line and column.
fn located(e: &dyn miette::Diagnostic, text: &str) -> (usize, usize) {
    e.labels().and_then(|mut l| l.next()).map_or((1, 1), |l| line_col(text, l.offset()))
}

fn diagnostic_message(e: &(dyn miette::Diagnostic + Send + Sync)) -> String {
    let mut m = e.to_string();
    if let Some(h) = e.help() {
        m.push_str(&format!(" (help: {h})"));
    }
    m
}

impl PolicyBundle {
    /// Parses and validates. `files` holds every `*.cedar`, `*.cedarschema`
    /// and `entities.json` of the directory; others are ignored.
    pub fn load(files: Vec<SourceFile>) -> Result<Self, BundleError> {
        let mut files = files;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut policies = PolicySet::new();
        let mut origin: HashMap<String, String> = HashMap::new();
        let mut warnings = Vec::new();
        let mut schema = None;
        let mut entities_file = None;
        for f in &files {
            if f.name.ends_with(".cedarschema") {
                let (s, w) = Schema::from_cedarschema_str(&f.text).map_err(|e| {
                    let (line, column) = located(&e, &f.text);
                    BundleError::Schema {
                        file: f.name.clone(),
                        message: format!("{line}:{column}: {}", diagnostic_message(&e)),
                    }
                })?;
                warnings.extend(w.map(|w| format!("{}: {w}", f.name)));
                if schema.is_some() {
                    return Err(BundleError::Schema {
                        file: f.name.clone(),
                        message: "a second schema file; keep one *.cedarschema per directory".into(),
                    });
                }
                schema = Some(s);
            } else if f.name.ends_with("entities.json") {
                entities_file = Some(f);
            }
        }
        for f in files.iter().filter(|f| f.name.ends_with(".cedar")) {
            let set = PolicySet::from_str(&f.text).map_err(|e| {
                let (line, column) = located(&e, &f.text);
                BundleError::Parse { file: f.name.clone(), line, column, message: diagnostic_message(&e) }
            })?;
            if set.templates().next().is_some() {
                return Err(BundleError::Template { file: f.name.clone() });
            }
            let mut parsed: Vec<&Policy> = set.policies().collect();
            // Cedar numbers policies `policy0`, `policy1`… in source order.
            parsed.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0));
            for (n, p) in parsed.into_iter().enumerate() {
                let id = p.annotation("id").map_or_else(|| format!("{}#{n}", f.name), str::to_string);
                if let Some(other) = origin.get(&id) {
                    return Err(BundleError::DuplicateId { file: f.name.clone(), id, other: other.clone() });
                }
                policies.add(p.new_id(PolicyId::new(&id))).map_err(|e| BundleError::DuplicateId {
                    file: f.name.clone(),
                    id: id.clone(),
                    other: e.to_string(),
                })?;
                origin.insert(id, f.name.clone());
            }
        }
        if origin.is_empty() {
            return Err(BundleError::Empty);
        }
        if let Some(s) = &schema {
            let result = Validator::new(s.clone()).validate(&policies, ValidationMode::Strict);
            if let Some(e) = result.validation_errors().next() {
                let policy = e.policy_id().to_string();
                return Err(BundleError::Invalid {
                    file: origin.get(&policy).cloned().unwrap_or_default(),
                    policy,
                    message: diagnostic_message(e),
                });
            }
            warnings.extend(result.validation_warnings().map(|w| w.to_string()));
        }
        let (entities, refs) = match entities_file {
            None => (Entities::empty(), HashMap::new()),
            Some(f) => {
                let value: serde_json::Value = serde_json::from_str(&f.text).map_err(|e| BundleError::Entities {
                    file: f.name.clone(),
                    message: format!("line {} column {}: {e}", e.line(), e.column()),
                })?;
                let refs = entity_refs(&value);
                let entities = Entities::from_json_value(value, schema.as_ref())
                    .map_err(|e| BundleError::Entities { file: f.name.clone(), message: diagnostic_message(&e) })?;
                (entities, refs)
            }
        };
        let mut by_type: HashMap<String, Vec<String>> = HashMap::new();
        let mut actions: HashSet<String> = HashSet::new();
        for e in entities.iter() {
            let uid = e.uid();
            let t = uid.type_name().to_string();
            if t == "Action" || t.ends_with("::Action") {
                actions.insert(uid.id().unescaped().to_string());
            } else {
                by_type.entry(t).or_default().push(uid.id().unescaped().to_string());
            }
        }
        for ids in by_type.values_mut() {
            ids.sort();
            ids.dedup();
        }
        for p in policies.policies() {
            match p.action_constraint() {
                ActionConstraint::Eq(a) => {
                    actions.insert(a.id().unescaped().to_string());
                }
                ActionConstraint::In(list) => actions.extend(list.iter().map(|a| a.id().unescaped().to_string())),
                ActionConstraint::Any => {}
            }
        }
        if let Some(s) = &schema {
            actions.extend(s.actions().map(|a| a.id().unescaped().to_string()));
        }
        let literal_attrs = policies.policies().any(|p| p.to_json().is_ok_and(|j| reads_literal_attr(&j)));
        let mut actions: Vec<String> = actions.into_iter().collect();
        actions.sort();
        let files: BTreeMap<String, String> = files.into_iter().map(|f| (f.name, f.text)).collect();
        let mut hash = Sha256::new();
        for (name, text) in &files {
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        let version = hash.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
        Ok(PolicyBundle {
            policies,
            schema,
            entities,
            refs,
            by_type,
            actions,
            origin,
            version,
            files,
            warnings,
            literal_attrs,
            by_action: Default::default(),
            contexts: Default::default(),
            assembled: Default::default(),
        })
    }

    /// A content hash of the files: equal sets have equal versions.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn policy_count(&self) -> usize {
        self.origin.len()
    }

    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.origin.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The file a policy came from.
    pub fn origin_of(&self, policy: &str) -> Option<&str> {
        self.origin.get(policy).map(String::as_str)
    }

    pub fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    pub fn entity_count(&self) -> usize {
        self.entities.iter().count()
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// Cedar's own policy set and entities, for comparisons (benchmarks).
    pub fn cedar_parts(&self) -> (&PolicySet, &Entities) {
        (&self.policies, &self.entities)
    }

    /// What changed from `old` to this set, as a unified line diff per file.
    pub fn diff_from(&self, old: Option<&PolicyBundle>) -> String {
        let empty = BTreeMap::new();
        let before = old.map_or(&empty, |o| &o.files);
        let mut out = String::new();
        let names: std::collections::BTreeSet<&String> = before.keys().chain(self.files.keys()).collect();
        for name in names {
            let (a, b) = (before.get(name), self.files.get(name));
            if a == b {
                continue;
            }
            out.push_str(&format!(
                "--- {}\n+++ {}\n",
                if a.is_some() { name } else { "/dev/null" },
                if b.is_some() { name } else { "/dev/null" }
            ));
            out.push_str(&line_diff(a.map_or("", String::as_str), b.map_or("", String::as_str)));
        }
        out
    }
}

/// Whether a policy (as Cedar's JSON form) reads an attribute (`.`, `has`)
/// of an entity literal.
fn reads_literal_attr(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(o) => {
            for op in [".", "has"] {
                let literal = o
                    .get(op)
                    .and_then(|x| x.get("left"))
                    .and_then(|l| l.get("Value"))
                    .is_some_and(|x| x.get("__entity").is_some());
                if literal {
                    return true;
                }
            }
            o.values().any(reads_literal_attr)
        }
        serde_json::Value::Array(a) => a.iter().any(reads_literal_attr),
        _ => false,
    }
}

/// A minimal line diff (longest common subsequence; policy files are small).
fn line_diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let (n, m) = (a.len(), b.len());
    if n * m > 4_000_000 {
        // Too large to align: whole-file replacement.
        return a.iter().map(|l| format!("-{l}\n")).chain(b.iter().map(|l| format!("+{l}\n"))).collect();
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Entity references inside each entity's attributes in Cedar entities JSON
/// (`{"__entity": {...}}` or a `{"type", "id"}` object).
fn entity_refs(doc: &serde_json::Value) -> HashMap<EntityUid, Vec<EntityUid>> {
    fn uid_of(v: &serde_json::Value) -> Option<EntityUid> {
        let o = v.as_object()?;
        let inner = o.get("__entity").and_then(|e| e.as_object()).unwrap_or(o);
        let (t, id) = (inner.get("type")?.as_str()?, inner.get("id")?.as_str()?);
        crate::values::uid(t, id, "").ok()
    }
    fn walk(v: &serde_json::Value, out: &mut Vec<EntityUid>) {
        if let Some(u) = uid_of(v) {
            out.push(u);
            return;
        }
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut refs = HashMap::new();
    for e in doc.as_array().into_iter().flatten() {
        let (Some(uid), Some(attrs)) = (e.get("uid").and_then(uid_of), e.get("attrs")) else { continue };
        let mut out = Vec::new();
        walk(attrs, &mut out);
        if !out.is_empty() {
            refs.insert(uid, out);
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile { name: name.into(), text: text.into() }
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let e = PolicyBundle::load(vec![file(
            "a.cedar",
            "permit(principal, action, resource);\n\npermit(principal action, resource);",
        )])
        .unwrap_err();
        let BundleError::Parse { file, line, .. } = &e else { panic!("{e}") };
        assert_eq!((file.as_str(), *line), ("a.cedar", 3));
    }

    #[test]
    fn policies_take_their_id_annotation_or_file_and_position() {
        let b = PolicyBundle::load(vec![file(
            "p.cedar",
            "@id(\"readers\") permit(principal, action == Action::\"read\", resource);\npermit(principal, action in [Action::\"a\", Action::\"b\"], resource);",
        )])
        .unwrap();
        assert_eq!(b.policy_ids(), vec!["p.cedar#1", "readers"]);
        assert_eq!(b.actions, vec!["a", "b", "read"]);
    }

    #[test]
    fn a_policy_that_breaks_the_schema_is_refused() {
        let schema = "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };";
        let e = PolicyBundle::load(vec![
            file("s.cedarschema", schema),
            file(
                "p.cedar",
                "permit(principal, action == Action::\"read\", resource) when { resource.owner == principal };",
            ),
        ])
        .unwrap_err();
        assert!(matches!(e, BundleError::Invalid { .. }), "{e}");
    }

    #[test]
    fn action_groups_from_the_entities_still_admit_their_members() {
        let b = PolicyBundle::load(vec![
            file("p.cedar", "@id(\"writers\") permit(principal, action in Action::\"writes\", resource);\n@id(\"readers\") permit(principal, action == Action::\"view\", resource) when { principal.ok };"),
            file(
                "entities.json",
                r#"[{"uid": {"type": "Action", "id": "edit"}, "attrs": {}, "parents": [{"type": "Action", "id": "writes"}]},
                    {"uid": {"type": "Action", "id": "writes"}, "attrs": {}, "parents": []}]"#,
            ),
        ])
        .unwrap();
        let eval = |action: &str| {
            let body = serde_json::json!({"subject": {"type": "user", "id": "a"}, "action": {"name": action}, "resource": {"type": "doc", "id": "d"}});
            b.decide(&crate::authzen::parse_evaluation(&body).unwrap(), &crate::NoTrust).unwrap()
        };
        let edit = eval("edit");
        assert!(edit.allowed && edit.policies == ["writers"], "{edit:?}");
        // The view policy errs (no `ok` attribute) and says so; edit never reached it.
        let view = eval("view");
        assert!(!view.allowed && view.errors.len() == 1, "{view:?}");
        assert!(edit.errors.is_empty());
        assert!(!eval("delete").allowed);
    }

    #[test]
    fn request_properties_override_a_directory_entity_whose_plain_request_was_decided_before() {
        let b = PolicyBundle::load(vec![
            file("p.cedar", "@id(\"owners\") permit(principal, action, resource) when { resource.owner == principal };"),
            file(
                "entities.json",
                r#"[{"uid": {"type": "doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "user", "id": "a"}}}, "parents": []}]"#,
            ),
        ])
        .unwrap();
        let eval = |resource: serde_json::Value| {
            let body = serde_json::json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "read"}, "resource": resource});
            b.decide(&crate::authzen::parse_evaluation(&body).unwrap(), &crate::NoTrust).unwrap().allowed
        };
        let plain = serde_json::json!({"type": "doc", "id": "d"});
        let given = serde_json::json!({"type": "doc", "id": "d", "properties": {"owner": {"__entity": {"type": "user", "id": "b"}}}});
        // The plain request's entities are assembled once and reused; a
        // request bringing its own properties is never answered from them.
        assert!(eval(plain.clone()));
        assert!(eval(plain.clone()));
        assert!(!eval(given.clone()));
        assert!(eval(plain));
        assert!(!eval(given));
    }

    #[test]
    fn the_diff_shows_changed_lines() {
        let a = PolicyBundle::load(vec![file("p.cedar", "permit(principal, action, resource);\n")]).unwrap();
        let b = PolicyBundle::load(vec![file("p.cedar", "forbid(principal, action, resource);\n")]).unwrap();
        let d = b.diff_from(Some(&a));
        assert!(
            d.contains("-permit(principal, action, resource);") && d.contains("+forbid(principal, action, resource);"),
            "{d}"
        );
        assert_ne!(a.version(), b.version());
    }
}
