//! Inventory importers: what exists and who may do what, read from the files
//! real collectors export, into typed [`Snapshot`]s of [`Fact`]s.
//!
//! | format | what | detected by |
//! |---|---|---|
//! | `aws-iam` | `aws iam get-account-authorization-details` | `UserDetailList` / `GroupDetailList` / `RoleDetailList` |
//! | `scim` | SCIM 2.0 `ListResponse`, `User` or `Group` (RFC 7643/7644) | a `urn:ietf:params:scim:` schema |
//! | `k8s-rbac` | Kubernetes RBAC objects: a `List`, one object, JSON or a YAML stream | `apiVersion: rbac.authorization.k8s.io/…` |
//! | `agent-registry` | `tenet.agent-registry/v1` | `format` |
//!
//! Ids are the canonical ids the event adapters give the same principals
//! (ARNs, `k8s:…`, `user:<email>`, `<idp>:<id>`, `agent:…`, `tool:…`), so
//! facts and events meet in one graph.
//!
//! Errors. A file that cannot be read as its format at all (not JSON or
//! YAML, truncated, not this format, a paginated page, nothing in it
//! readable) is an [`InventoryError`] naming the line and, where there is
//! one, the field.
//! Inside a good file, each entry (an IAM user, group, role or policy; a
//! SCIM resource; an RBAC object; a registry server or agent) is imported
//! whole or not at all: a bad entry, or an object of a kind the format does
//! not describe, is listed in [`Imported::skipped`] with its location and
//! reason, and the rest of the file is imported. (One exception: an RBAC
//! aggregation selector's `matchExpressions`, which the model cannot hold,
//! are listed there while the ClusterRole is imported with its `matchLabels`,
//! exactly as the audit adapter reads the same object.)
//!
//! A snapshot says that what its scope held and it does not list no longer
//! holds. Two consequences for callers:
//! - files of one collection that share a scope (SCIM users and groups in
//!   separate files) must be combined with [`merge`] before they are
//!   applied, or the second retracts the first;
//! - an entry in `skipped` still exists at the source; its facts are absent
//!   from the snapshot only because they could not be read. [`Skipped::entry`]
//!   names it where the entry got that far.

mod agent_registry;
mod aws_iam;
mod k8s_rbac;
mod scim;
mod walk;

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tenet_model::{Snapshot, Timestamp};

use crate::framing::Location;

/// The inventory formats Tenet imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryFormat {
    /// `aws iam get-account-authorization-details`.
    AwsIam,
    /// SCIM 2.0 users and groups.
    Scim,
    /// Kubernetes RBAC: Roles, ClusterRoles and their bindings.
    K8sRbac,
    /// Tenet's agent registry (`tenet.agent-registry/v1`).
    AgentRegistry,
}

impl InventoryFormat {
    pub const ALL: [InventoryFormat; 4] =
        [InventoryFormat::AwsIam, InventoryFormat::Scim, InventoryFormat::K8sRbac, InventoryFormat::AgentRegistry];

    /// The format's name, which is also its snapshots' `source`.
    pub fn name(&self) -> &'static str {
        match self {
            InventoryFormat::AwsIam => "aws-iam",
            InventoryFormat::Scim => "scim",
            InventoryFormat::K8sRbac => "k8s-rbac",
            InventoryFormat::AgentRegistry => "agent-registry",
        }
    }

    pub fn by_name(name: &str) -> Option<InventoryFormat> {
        InventoryFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for InventoryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names the importers cannot learn from the files themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The identity provider SCIM comes from: the prefix of its ids
    /// (`okta:<id>`, as the Okta adapter names them) and the scope `idp:<idp>`.
    pub idp: String,
    /// The Kubernetes cluster RBAC comes from: the scope `k8s:<cluster>`.
    pub cluster: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { idp: "okta".to_string(), cluster: "k8s".to_string() }
    }
}

/// What an import produced: the snapshots, and what in the file was not
/// imported and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub snapshots: Vec<Snapshot>,
    pub skipped: Vec<Skipped>,
}

/// Something in an otherwise readable file that was not imported: a bad
/// entry, part of one, or an object the format does not describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where: the entry's line, its index in its list, and the path of the
    /// offending field (`RoleDetailList[3].AssumeRolePolicyDocument.Statement[0]`,
    /// `Resources[7].userName`).
    pub location: Location,
    /// The entry, when it could be named (an ARN, `kind/namespace/name`, a SCIM id).
    pub entry: Option<String>,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(e) = &self.entry {
            write!(f, " ({e})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A file that cannot be imported as the format asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Not well-formed JSON (or YAML): a syntax error, truncation, bad UTF-8,
    /// nesting past the parser's limit.
    #[error("{format}: malformed input at {location}: {reason}")]
    Malformed { format: &'static str, location: Location, reason: String },
    /// Well-formed, but not this format, or its frame is the wrong shape
    /// (`UserDetailList` not an array, `schemas` naming no SCIM resource).
    #[error("{format}: invalid inventory at {location}: {reason}")]
    Invalid { format: &'static str, location: Location, reason: String },
    /// One page of a paginated response: importing it as the whole inventory
    /// would retract everything on the other pages.
    #[error("{format}: incomplete inventory at {location}: {reason}")]
    Incomplete { format: &'static str, location: Location, reason: String },
    #[error("{format}: the file is {size} bytes, over the {limit} byte limit for one inventory file")]
    TooLarge { format: &'static str, size: usize, limit: usize },
    /// Every entry was rejected: an empty snapshot would say the scope holds
    /// nothing, and retract everything it held.
    #[error("{format}: nothing could be imported, {} rejected; the first: {}", .skipped.len(), first(.skipped))]
    NothingImported { format: &'static str, skipped: Vec<Skipped> },
}

fn first(skipped: &[Skipped]) -> String {
    skipped.first().map(ToString::to_string).unwrap_or_default()
}

impl InventoryError {
    /// Where the problem is, when it has a place.
    pub fn location(&self) -> Option<&Location> {
        match self {
            InventoryError::Malformed { location, .. }
            | InventoryError::Invalid { location, .. }
            | InventoryError::Incomplete { location, .. } => Some(location),
            InventoryError::NothingImported { skipped, .. } => skipped.first().map(|s| &s.location),
            InventoryError::TooLarge { .. } => None,
        }
    }
}

/// No real inventory file is this large (the largest AWS organisations'
/// authorization details run to tens of megabytes).
pub const MAX_INVENTORY_BYTES: usize = 256 << 20;

/// How much of a file detection reads.
const SNIFF_PREFIX: usize = 1 << 20;

/// Parses an inventory file into snapshots collected at `collected_at`.
///
/// - `aws-iam`: one snapshot per account the ARNs name, scope `aws:<account>`
///   (AWS managed policies go with every account that lists them);
/// - `scim`: one snapshot, scope `idp:<options.idp>`;
/// - `k8s-rbac`: one snapshot, scope `k8s:<options.cluster>`;
/// - `agent-registry`: one snapshot, scope `agents`.
///
/// A file holding one SCIM resource or one RBAC object (not a list) is
/// complete for that resource only; its scope says so
/// (`idp:<idp>/Users/<id>`, `k8s:<cluster>/role/<ns>/<name>`), so applying
/// it retracts nothing else.
///
/// Bad entries are returned in [`Imported::skipped`]; a file where every
/// entry was rejected is [`InventoryError::NothingImported`]. Facts are in
/// file order, without duplicates. Never panics.
pub fn import(
    format: InventoryFormat,
    data: &[u8],
    collected_at: Timestamp,
    options: &ImportOptions,
) -> Result<Imported, InventoryError> {
    let name = format.name();
    if data.len() > MAX_INVENTORY_BYTES {
        return Err(InventoryError::TooLarge { format: name, size: data.len(), limit: MAX_INVENTORY_BYTES });
    }
    let text = walk::text(data, name)?;
    let imported = match format {
        InventoryFormat::AwsIam => aws_iam::import(text, collected_at),
        InventoryFormat::Scim => scim::import(text, collected_at, &options.idp),
        InventoryFormat::K8sRbac => k8s_rbac::import(text, collected_at, &options.cluster),
        InventoryFormat::AgentRegistry => agent_registry::import(text, collected_at),
    }?;
    if !imported.skipped.is_empty() && imported.snapshots.iter().all(|s| s.facts.is_empty()) {
        return Err(InventoryError::NothingImported { format: name, skipped: imported.skipped });
    }
    Ok(imported)
}

/// Combines snapshots of one source and scope taken at one instant (the
/// SCIM users and groups of one collection, written as two files) into one,
/// keeping the first of any duplicate facts. Snapshots are applied whole:
/// two of one scope at one instant would each retract what the other lists.
/// Order is that of first appearance.
pub fn merge(snapshots: impl IntoIterator<Item = Snapshot>) -> Vec<Snapshot> {
    let mut out: Vec<Snapshot> = Vec::new();
    let mut seen: Vec<std::collections::HashSet<tenet_model::Fact>> = Vec::new();
    for snap in snapshots {
        let at = out
            .iter()
            .position(|s| s.source == snap.source && s.scope == snap.scope && s.collected_at == snap.collected_at);
        let i = match at {
            Some(i) => i,
            None => {
                out.push(Snapshot {
                    source: snap.source.clone(),
                    scope: snap.scope.clone(),
                    collected_at: snap.collected_at,
                    facts: Vec::new(),
                });
                seen.push(Default::default());
                out.len() - 1
            }
        };
        for fact in snap.facts {
            if seen[i].insert(fact.clone()) {
                out[i].facts.push(fact);
            }
        }
    }
    out
}

/// The inventory format of a file's content, from a bounded prefix: JSON
/// for every format, YAML too for Kubernetes RBAC. `None` for anything else,
/// telemetry included.
pub fn detect(data: &[u8]) -> Option<InventoryFormat> {
    let prefix = &data[..data.len().min(SNIFF_PREFIX)];
    let prefix = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let first = prefix.iter().position(|b| !b.is_ascii_whitespace())?;
    match prefix[first] {
        b'{' | b'[' => detect_json(&prefix[first..]),
        _ => detect_yaml(prefix),
    }
}

const RBAC_KINDS: [&str; 4] = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];
const RBAC_API: &str = "rbac.authorization.k8s.io/";

fn detect_json(prefix: &[u8]) -> Option<InventoryFormat> {
    let mut s = Sniff::default();
    let mut de = serde_json::Deserializer::from_slice(prefix);
    // A prefix ends mid-document; what was seen before the cut is kept.
    let _ = SniffSeed { out: &mut s, top: true }.deserialize(&mut de);

    let has = |s: &Sniff, k: &str| s.keys.iter().any(|key| key == k);
    if ["UserDetailList", "GroupDetailList", "RoleDetailList"].iter().any(|k| has(&s, k)) {
        return Some(InventoryFormat::AwsIam);
    }
    if s.format.as_deref().is_some_and(|f| f.starts_with(agent_registry::FORMAT_PREFIX)) {
        return Some(InventoryFormat::AgentRegistry);
    }
    let scim = |s: &Sniff| s.schemas.iter().any(|u| scim::is_scim_urn(u));
    if scim(&s) || (has(&s, "Resources") && s.first.as_deref().is_some_and(scim)) {
        return Some(InventoryFormat::Scim);
    }
    let rbac = |s: &Sniff| {
        s.api_version.as_deref().is_some_and(|a| a.starts_with(RBAC_API))
            && s.kind.as_deref().is_some_and(|k| RBAC_KINDS.contains(&k) || k.ends_with("List"))
    };
    let listing = s.keys.is_empty() || has(&s, "items");
    if rbac(&s) || (listing && s.first.as_deref().is_some_and(rbac)) {
        return Some(InventoryFormat::K8sRbac);
    }
    // A registry without its `format` line: agents with owners and users.
    if has(&s, "agents") && s.first.as_deref().is_some_and(|a| ["id", "owner", "users"].iter().all(|k| has(a, k))) {
        return Some(InventoryFormat::AgentRegistry);
    }
    None
}

/// YAML: Kubernetes RBAC is the only YAML inventory. An `apiVersion` line
/// (top level or a list item) naming the RBAC API group.
fn detect_yaml(prefix: &[u8]) -> Option<InventoryFormat> {
    let text = match std::str::from_utf8(prefix) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or(""),
    };
    let rbac = text.lines().any(|line| {
        let l = line.trim_start().trim_start_matches("- ").trim_start();
        l.strip_prefix("apiVersion:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
            .is_some_and(|v| v.starts_with(RBAC_API))
    });
    rbac.then_some(InventoryFormat::K8sRbac)
}

/// What detection saw of a JSON document: its top-level keys, a few values
/// that name formats, and the same of the first element of its list.
#[derive(Default)]
struct Sniff {
    keys: Vec<String>,
    kind: Option<String>,
    api_version: Option<String>,
    format: Option<String>,
    schemas: Vec<String>,
    first: Option<Box<Sniff>>,
}

/// Walks one value into a [`Sniff`], skipping everything it does not need.
struct SniffSeed<'a> {
    out: &'a mut Sniff,
    /// Whether this is the document itself (whose lists are looked into).
    top: bool,
}

impl<'de> DeserializeSeed<'de> for SniffSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SniffSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.out.keys.push(key.clone());
            match key.as_str() {
                "kind" => self.out.kind = map.next_value::<Shallow>()?.text,
                "apiVersion" => self.out.api_version = map.next_value::<Shallow>()?.text,
                "format" => self.out.format = map.next_value::<Shallow>()?.text,
                "schemas" => self.out.schemas = map.next_value::<Shallow>()?.list,
                "items" | "Resources" | "agents" if self.top => {
                    let first = self.out.first.get_or_insert_with(Default::default);
                    map.next_value_seed(FirstSeed { out: first })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        if !self.top {
            return drain(seq);
        }
        let first = self.out.first.get_or_insert_with(Default::default);
        FirstSeed { out: first }.visit_seq(seq)
    }
}

fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The first element of an array, sniffed; the rest skipped.
struct FirstSeed<'a> {
    out: &'a mut Sniff,
}

impl<'de> DeserializeSeed<'de> for FirstSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if seq.next_element_seed(SniffSeed { out: self.out, top: false })?.is_some() {
            drain(seq)?;
        }
        Ok(())
    }
}

/// A value's text when it is a string, or the strings of an array.
#[derive(Default)]
struct Shallow {
    text: Option<String>,
    list: Vec<String>,
}

impl<'de> Deserialize<'de> for Shallow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shallow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Shallow, E> {
                Ok(Shallow { text: Some(v.to_string()), list: Vec::new() })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shallow, A::Error> {
                let mut list = Vec::new();
                while let Some(s) = seq.next_element::<Shallow>()? {
                    list.extend(s.text);
                }
                Ok(Shallow { text: None, list })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shallow, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shallow::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shallow, E> {
                Ok(Shallow::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shallow, E> {
                Ok(Shallow::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shallow, E> {
                Ok(Shallow::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shallow, E> {
                Ok(Shallow::default())
            }
            fn visit_unit<E>(self) -> Result<Shallow, E> {
                Ok(Shallow::default())
            }
        }
        d.deserialize_any(V)
    }
}
