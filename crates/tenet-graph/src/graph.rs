//! The temporal store of facts: every edge with its versions over time and
//! the provenance of each.
//!
//! Evidence is applied in time order: an inventory snapshot asserts what it
//! lists and retracts what it owns but no longer lists; an event asserts or
//! retracts single facts. Asserting what already holds with the same
//! content changes nothing, so nightly snapshots do not churn history.

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use tenet_model::{Fact, NodeKind, PolicyDocument, RbacRule, Snapshot, Timestamp, TrustChange};

use crate::intern::{Id, Interner, NONE};

/// The end of an interval still open.
pub const OPEN: i64 = i64::MAX;

/// Marks a version's provenance as an observation (see
/// [`TrustChange::Observe`]): evidence the fact held, not when it began.
const OBSERVED: u32 = 1 << 31;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum EdgeKind {
    Node,
    Member,
    Policy,
    Attached,
    Boundary,
    Trust,
    RbacRole,
    RbacBinding,
    ActsFor,
    Owns,
    Tool,
    SameAs,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Node => "node",
            EdgeKind::Member => "membership",
            EdgeKind::Policy => "policy",
            EdgeKind::Attached => "attachment",
            EdgeKind::Boundary => "boundary",
            EdgeKind::Trust => "trust",
            EdgeKind::RbacRole => "rbac-role",
            EdgeKind::RbacBinding => "binding",
            EdgeKind::ActsFor => "delegation",
            EdgeKind::Owns => "ownership",
            EdgeKind::Tool => "tool",
            EdgeKind::SameAs => "same-as",
        }
    }
}

/// The identity of an edge: what a fact's key names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EdgeKey {
    pub kind: EdgeKind,
    pub a: Id,
    pub b: Id,
    pub c: Id,
}

/// What a version of an edge says beyond its key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    Empty,
    Node {
        kind: NodeKind,
        name: Option<String>,
    },
    Document(PolicyDocument),
    /// The id of another node (a boundary's policy, a tool's identity).
    Ref(Id),
    Rbac {
        namespace: Option<String>,
        rules: Vec<RbacRule>,
        labels: Vec<(String, String)>,
        aggregate: Vec<Vec<(String, String)>>,
    },
    Delegation {
        scope: Vec<String>,
        expires: Option<Timestamp>,
    },
}

/// One interval during which an edge held with one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub from: i64,
    pub to: i64,
    pub payload: u32,
    pub provenance: u32,
}

impl Version {
    pub fn holds_at(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    /// Whether the version opened on an observation rather than a declaration.
    pub fn observed(&self) -> bool {
        self.provenance & OBSERVED != 0
    }

    /// Whether the version holds at `t` as known at `known` (≥ `t`): an
    /// observed fact seen by `known` is taken to have held before it was
    /// first seen, since being seen says nothing of when it began.
    pub fn holds_known(&self, t: i64, known: i64) -> bool {
        (self.from <= t || self.observed() && self.from <= known) && t < self.to
    }
}

/// An edge and its history. Most edges never change: one version inline.
pub struct Edge {
    pub key: EdgeKey,
    first: Version,
    // A thin pointer (8 bytes) rather than a Vec (24): edges with history are rare
    // and a million edges pay for the difference.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Version>>>,
}

impl Edge {
    /// The edge's versions in time order (a newly created edge has none).
    pub fn versions(&self) -> impl Iterator<Item = &Version> {
        std::iter::once(&self.first).chain(self.more.iter().flat_map(|v| v.iter())).filter(|v| v.from < v.to)
    }

    pub fn at(&self, t: i64) -> Option<&Version> {
        self.versions().find(|v| v.holds_at(t))
    }

    /// The version holding at `t` as known at `known` (see [`Version::holds_known`]).
    pub fn at_known(&self, t: i64, known: i64) -> Option<&Version> {
        self.versions().find(|v| v.holds_known(t, known))
    }

    fn versions_vec(&self) -> Vec<Version> {
        self.versions().copied().collect()
    }

    fn set_versions(&mut self, mut vs: Vec<Version>) {
        vs.sort_by_key(|v| v.from);
        vs.retain(|v| v.from < v.to);
        match vs.len() {
            0 => {
                // No version left: an empty interval stands in.
                self.first = Version { from: 0, to: 0, payload: 0, provenance: 0 };
                self.more = None;
            }
            1 => {
                self.first = vs[0];
                self.more = None;
            }
            _ => {
                self.first = vs[0];
                self.more = Some(Box::new(vs[1..].to_vec()));
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NodeInfo {
    pub kind: NodeKind,
    /// Whether the kind came from a declaration (rather than the id's shape).
    pub declared: bool,
}

/// The trust graph with its full history. Query it through [`crate::View`].
#[derive(Default)]
pub struct TrustGraph {
    pub(crate) ids: Interner,
    pub(crate) scopes: Interner,
    pub(crate) provenance: Interner,
    pub(crate) nodes: Vec<NodeInfo>,
    pub(crate) edges: Vec<Edge>,
    /// Edge indices, hashed by the edge's key: a table of `u32`s rather
    /// than a map holding a second copy of every key.
    index: HashTable<u32>,
    pub(crate) payloads: Vec<Payload>,
    payload_index: FxHashMap<u64, Vec<u32>>,
    /// Edge indices per scope, for snapshot retraction.
    by_scope: FxHashMap<u32, Vec<u32>>,
    /// What principals were seen doing, from the event log.
    pub(crate) uses: Vec<Use>,
    /// Where each (principal, action, resource) is in `uses`.
    use_index: FxHashMap<(Id, Id, Id), u32>,
    /// Roles seen assumed: (role, principal, first time).
    pub(crate) observed_assumptions: Vec<(Id, Id, i64)>,
    /// What closed a version, by (edge, end time): closing is rare, so it
    /// lives here rather than in every version.
    closed_by: FxHashMap<(u32, i64), u32>,
    /// Edges closed since the last [`TrustGraph::take_closed`], when a
    /// live reader asked for them (`None`: not kept, so replaying history
    /// costs nothing).
    closed_journal: Option<Vec<(u32, i64)>>,
    /// Counts changes to what holds (see [`TrustGraph::revision`]).
    revision: u64,
}

/// Observed use: a principal used an action (on a resource) between
/// `first` and `last`, `count` times.
#[derive(Clone, Copy, Debug)]
pub struct Use {
    pub principal: Id,
    pub action: Id,
    pub resource: Id,
    pub first: i64,
    pub last: i64,
    pub count: u64,
}

/// IAM users, roles and groups are named by ARN with their path in some
/// places (inventory, CloudTrail identities) and by bare name in others (API
/// request parameters). Names are unique per account regardless of path, so
/// the graph keys them path-free: `arn:aws:iam::1:role/a/b/name` is
/// `arn:aws:iam::1:role/name`. Inline-policy ids keep their suffix.
pub fn canonical(id: &str) -> std::borrow::Cow<'_, str> {
    let (head, tail) = match id.find('#') {
        Some(i) => (&id[..i], &id[i..]),
        None => (id, ""),
    };
    if let Some(rest) = head.strip_prefix("arn:aws:iam::") {
        for kind in [":role/", ":user/", ":group/"] {
            if let Some(i) = rest.find(kind) {
                let name = &rest[i + kind.len()..];
                if let Some(last) = name.rsplit('/').next()
                    && last.len() != name.len()
                {
                    return std::borrow::Cow::Owned(format!("arn:aws:iam::{}{kind}{last}{tail}", &rest[..i]));
                }
            }
        }
    }
    std::borrow::Cow::Borrowed(id)
}

/// Canonical ids of the kinds Tenet's adapters and importers emit.
pub fn infer_kind(id: &str) -> NodeKind {
    if id.starts_with("agent:") {
        NodeKind::AGENT
    } else if id.starts_with("tool:") {
        NodeKind::Tool
    } else if id.starts_with("k8s:system:serviceaccount:")
        || id.starts_with("k8s:system:")
        || id.starts_with("aws:service/")
    {
        NodeKind::WORKLOAD
    } else if id.starts_with("k8s:group/") || id.contains(":group/") {
        NodeKind::Group
    } else if id.starts_with("k8s:clusterrole/")
        || id.starts_with("k8s:role/")
        || id.contains(":policy/")
        || id.contains("#inline/")
    {
        NodeKind::Policy
    } else if id.ends_with(":root") {
        NodeKind::ACCOUNT
    } else if id.contains(":assumed-role/") {
        NodeKind::Session
    } else if id.contains(":role/") {
        NodeKind::ROLE
    } else if id.starts_with("user:")
        || id.contains(":user/")
        || id.starts_with("aws:samluser/")
        || id.starts_with("aws:source-identity/")
        || id.starts_with("k8s:")
        || id.starts_with("okta:00u")
    {
        NodeKind::HUMAN
    } else if id.starts_with("okta:00g") {
        NodeKind::Group
    } else if id.starts_with("arn:") {
        NodeKind::Resource
    } else {
        NodeKind::WORKLOAD
    }
}

/// The inventory scope an id belongs to: the account of an ARN, the
/// identity provider, the cluster, the agent registry.
pub fn scope_of(id: &str) -> String {
    if let Some(rest) = id.strip_prefix("arn:aws:") {
        // arn:aws:<service>:<region>:<account>:...
        let account = rest.split(':').nth(2).unwrap_or("");
        if !account.is_empty() {
            return format!("aws:{account}");
        }
        return "aws".into();
    }
    if id.starts_with("k8s:") {
        return "k8s:k8s".into();
    }
    if id.starts_with("agent:") || id.starts_with("tool:") {
        return "agents".into();
    }
    if id.starts_with("okta:") || id.starts_with("user:") {
        return "idp:okta".into();
    }
    "other".into()
}

fn hash_key(k: &EdgeKey) -> u64 {
    let mut h = FxHasher::default();
    k.hash(&mut h);
    h.finish()
}

fn hash_payload(p: &Payload) -> u64 {
    let mut h = FxHasher::default();
    p.hash(&mut h);
    h.finish()
}

impl TrustGraph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn id(&self, name: &str) -> Option<Id> {
        self.ids.get(&canonical(name))
    }

    pub fn name(&self, id: Id) -> &str {
        self.ids.name(id)
    }

    pub fn node_kind(&self, id: Id) -> NodeKind {
        self.nodes.get(id as usize).map_or(NodeKind::WORKLOAD, |n| n.kind)
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    pub fn version_count(&self) -> usize {
        self.edges.iter().map(|e| e.versions().count()).sum()
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    pub fn payload(&self, i: u32) -> &Payload {
        self.payloads.get(i as usize).unwrap_or(&Payload::Empty)
    }

    pub fn provenance(&self, i: u32) -> &str {
        self.provenance.name(i & !OBSERVED)
    }

    /// The provenance of what closed edge `edge`'s version at `t`, if recorded.
    pub fn closed_by(&self, edge: u32, t: i64) -> Option<&str> {
        self.closed_by.get(&(edge, t)).map(|p| self.provenance(*p))
    }

    pub fn scope_name(&self, i: u32) -> &str {
        self.scopes.name(i)
    }

    /// A number that changes whenever a fact starts or stops holding (and
    /// not when one is re-asserted or re-observed as it was): whether
    /// anything derived from the graph must be derived again.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// From now on, keep what closes for [`TrustGraph::take_closed`].
    pub fn journal_closures(&mut self) {
        self.closed_journal.get_or_insert_with(Vec::new);
    }

    /// The facts that stopped holding since the last call (needs
    /// [`TrustGraph::journal_closures`]): what a live system announces as
    /// access removed or a delegation ended.
    pub fn take_closed(&mut self) -> Vec<Closed> {
        let Some(journal) = self.closed_journal.as_mut() else { return Vec::new() };
        std::mem::take(journal)
            .into_iter()
            .filter_map(|(i, t)| {
                let key = self.edges.get(i as usize)?.key;
                Some(Closed {
                    kind: key.kind,
                    a: self.ids.name(key.a).to_string(),
                    b: self.ids.name(key.b).to_string(),
                    at: Timestamp::from_unix_nanos(t),
                    by: self.closed_by(i, t).unwrap_or_default().to_string(),
                })
            })
            .collect()
    }

    pub(crate) fn node(&mut self, name: &str) -> Id {
        let name = canonical(name);
        let id = self.ids.intern(&name);
        // Other strings (actions, namespaces) share the interner: keep the
        // node table as long as it, whatever was interned in between.
        while self.nodes.len() <= id as usize {
            let kind = infer_kind(self.ids.name(self.nodes.len() as Id));
            self.nodes.push(NodeInfo { kind, declared: false });
        }
        id
    }

    fn payload_id(&mut self, p: Payload) -> u32 {
        let h = hash_payload(&p);
        if let Some(cands) = self.payload_index.get(&h) {
            for &c in cands {
                if self.payloads[c as usize] == p {
                    return c;
                }
            }
        }
        let id = self.payloads.len() as u32;
        self.payloads.push(p);
        self.payload_index.entry(h).or_default().push(id);
        id
    }

    /// The key and payload a fact becomes.
    fn encode(&mut self, fact: &Fact) -> (EdgeKey, Payload) {
        let key = |g: &mut Self, kind, a: &str, b: Option<&str>, c: Option<&str>| EdgeKey {
            kind,
            a: g.node(a),
            b: b.map_or(NONE, |b| g.node(b)),
            c: c.map_or(NONE, |c| g.ids.intern(c)),
        };
        match fact {
            Fact::Node { id, kind, name } => {
                let k = key(self, EdgeKind::Node, id, None, None);
                if let Some(n) = self.nodes.get_mut(k.a as usize) {
                    *n = NodeInfo { kind: *kind, declared: true };
                }
                (k, Payload::Node { kind: *kind, name: name.clone() })
            }
            Fact::Member { member, group } => (key(self, EdgeKind::Member, member, Some(group), None), Payload::Empty),
            Fact::Policy { policy, document } => {
                (key(self, EdgeKind::Policy, policy, None, None), Payload::Document(document.clone()))
            }
            Fact::Attached { holder, policy } => {
                (key(self, EdgeKind::Attached, holder, Some(policy), None), Payload::Empty)
            }
            Fact::Boundary { holder, policy } => {
                let k = key(self, EdgeKind::Boundary, holder, None, None);
                let p = self.node(policy);
                (k, Payload::Ref(p))
            }
            Fact::Trust { role, document } => {
                // Whoever a trust policy lets in is a node, known or not:
                // an external account named there is exactly what to see.
                for st in &document.statements {
                    let Some(p) = &st.principals else { continue };
                    for entry in &p.aws {
                        match crate::view::account_root(entry) {
                            Some(acct) => self.node(&format!("arn:aws:iam::{acct}:root")),
                            None if entry != "*" => self.node(entry),
                            None => continue,
                        };
                    }
                    for svc in &p.service {
                        self.node(&format!("aws:service/{svc}"));
                    }
                    for fed in &p.federated {
                        self.node(fed);
                    }
                }
                (key(self, EdgeKind::Trust, role, None, None), Payload::Document(document.clone()))
            }
            Fact::RbacRole { role, namespace, rules, labels, aggregate } => (
                key(self, EdgeKind::RbacRole, role, None, None),
                Payload::Rbac {
                    namespace: namespace.clone(),
                    rules: rules.clone(),
                    labels: labels.clone(),
                    aggregate: aggregate.clone(),
                },
            ),
            Fact::RbacBinding { subject, role, namespace } => {
                (key(self, EdgeKind::RbacBinding, subject, Some(role), namespace.as_deref()), Payload::Empty)
            }
            Fact::ActsFor { agent, person, scope, expires } => (
                key(self, EdgeKind::ActsFor, agent, Some(person), None),
                Payload::Delegation { scope: scope.clone(), expires: *expires },
            ),
            Fact::Owns { owner, agent } => (key(self, EdgeKind::Owns, owner, Some(agent), None), Payload::Empty),
            Fact::Tool { agent, tool, identity } => {
                let k = key(self, EdgeKind::Tool, agent, Some(tool), None);
                let i = self.node(identity);
                (k, Payload::Ref(i))
            }
            Fact::SameAs { a, b } => {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                (key(self, EdgeKind::SameAs, a, Some(b), None), Payload::Empty)
            }
        }
    }

    /// Parses a fact key (`member|a|b`, see [`Fact::key`]) into an edge key.
    fn decode_key(&mut self, key: &str) -> Option<EdgeKey> {
        let parts: Vec<&str> = key.split('|').collect();
        let kind = match *parts.first()? {
            "node" => EdgeKind::Node,
            "member" => EdgeKind::Member,
            "policy" => EdgeKind::Policy,
            "attached" => EdgeKind::Attached,
            "boundary" => EdgeKind::Boundary,
            "trust" => EdgeKind::Trust,
            "rbac-role" => EdgeKind::RbacRole,
            "rbac-binding" => EdgeKind::RbacBinding,
            "acts-for" => EdgeKind::ActsFor,
            "owns" => EdgeKind::Owns,
            "tool" => EdgeKind::Tool,
            "same-as" => EdgeKind::SameAs,
            _ => return None,
        };
        let a = self.node(parts.get(1)?);
        let b = match parts.get(2) {
            Some(b) if !(kind == EdgeKind::RbacBinding && parts.len() < 4) => self.node(b),
            _ => NONE,
        };
        let c = match (kind, parts.get(3)) {
            (EdgeKind::RbacBinding, Some(&"*")) | (_, None) => NONE,
            (_, Some(c)) => self.ids.intern(c),
        };
        Some(EdgeKey { kind, a, b, c })
    }

    fn find_edge(&self, key: &EdgeKey) -> Option<u32> {
        self.index.find(hash_key(key), |&i| self.edges[i as usize].key == *key).copied()
    }

    fn edge_index(&mut self, key: EdgeKey, scope: &str) -> u32 {
        if let Some(i) = self.find_edge(&key) {
            return i;
        }
        let i = self.edges.len() as u32;
        let scope = self.scopes.intern(scope);
        self.edges.push(Edge { key, first: Version { from: 0, to: 0, payload: 0, provenance: 0 }, more: None });
        let edges = &self.edges;
        self.index.insert_unique(hash_key(&key), i, |&j| hash_key(&edges[j as usize].key));
        self.by_scope.entry(scope).or_default().push(i);
        i
    }

    /// The fact holds from `t` on, with this payload, until something says
    /// otherwise. Evidence from the past holds until the next recorded change.
    fn assert_key(&mut self, key: EdgeKey, payload: u32, t: i64, provenance: u32, scope: &str) {
        let i = self.edge_index(key, scope) as usize;
        let edge = &mut self.edges[i];
        // The common case, an unchanged fact re-asserted, without allocating.
        if edge.more.is_none() && edge.first.holds_at(t) && edge.first.payload == payload {
            return;
        }
        let mut vs = edge.versions_vec();
        match vs.iter().position(|v| v.holds_at(t)) {
            // Already true, with the same content: nothing happened.
            Some(k) if vs[k].payload == payload => return,
            // New content from `t`, for as long as the old would have lasted.
            Some(k) => {
                let old_to = vs[k].to;
                vs[k].to = t;
                vs.push(Version { from: t, to: old_to, payload, provenance });
            }
            None => {
                let next = vs.iter().map(|v| v.from).filter(|&f| f > t).min().unwrap_or(OPEN);
                vs.push(Version { from: t, to: next, payload, provenance });
            }
        }
        edge.set_versions(vs);
        self.revision += 1;
    }

    /// The fact stops holding at `t`.
    fn retract_key(&mut self, key: EdgeKey, t: i64, provenance: u32) -> bool {
        let Some(i) = self.find_edge(&key) else { return false };
        let edge = &mut self.edges[i as usize];
        let mut vs = edge.versions_vec();
        let Some(k) = vs.iter().position(|v| v.holds_at(t)) else { return false };
        vs[k].to = t;
        edge.set_versions(vs);
        self.revision += 1;
        self.closed_by.insert((i, t), provenance);
        if let Some(j) = &mut self.closed_journal {
            j.push((i, t));
        }
        true
    }

    /// Applies one fact asserted at `t`.
    pub fn assert(&mut self, fact: &Fact, t: Timestamp, provenance: &str) {
        let (key, payload) = self.encode(fact);
        let payload = self.payload_id(payload);
        let prov = self.provenance.intern(provenance);
        let scope = scope_of(self.ids.name(key.a));
        self.assert_key(key, payload, t.unix_nanos(), prov, &scope);
    }

    /// Applies one fact observed to hold at `t`: it opens an interval only
    /// when nothing holds, and never replaces a declared version.
    pub fn observe_fact(&mut self, fact: &Fact, t: Timestamp, provenance: &str) {
        let (key, payload) = self.encode(fact);
        let t = t.unix_nanos();
        if let Some(i) = self.find_edge(&key)
            && self.edges[i as usize].at(t).is_some()
        {
            return;
        }
        let payload = self.payload_id(payload);
        let prov = self.provenance.intern(provenance) | OBSERVED;
        let scope = scope_of(self.ids.name(key.a));
        self.assert_key(key, payload, t, prov, &scope);
    }

    /// Applies an event's changes at its time.
    pub fn apply_changes(&mut self, changes: &[TrustChange], t: Timestamp, provenance: &str) {
        for c in changes {
            match c {
                TrustChange::Assert { fact } => self.assert(fact, t, provenance),
                TrustChange::Observe { fact } => self.observe_fact(fact, t, provenance),
                TrustChange::Retract { key } => {
                    if let Some(k) = self.decode_key(key) {
                        let prov = self.provenance.intern(provenance);
                        self.retract_key(k, t.unix_nanos(), prov);
                    }
                }
            }
        }
    }

    /// Applies an inventory snapshot: what it lists holds from its time;
    /// what its scope held before and it no longer lists stops holding.
    /// Returns how many facts it opened and closed.
    pub fn apply_snapshot(&mut self, snap: &Snapshot, provenance: &str) -> SnapshotEffect {
        let t = snap.collected_at.unix_nanos();
        let prov = self.provenance.intern(provenance);
        // Edges the snapshot lists, by index: a bit each.
        let mut seen: Vec<u64> = Vec::new();
        let mut effect = SnapshotEffect::default();
        for fact in &snap.facts {
            let (key, payload) = self.encode(fact);
            let payload = self.payload_id(payload);
            let i = self.edge_index(key, &snap.scope) as usize;
            if seen.len() <= i / 64 {
                seen.resize(i / 64 + 1, 0);
            }
            seen[i / 64] |= 1 << (i % 64);
            let before = self.edges[i].at(t).copied();
            if before.map(|v| v.payload) != Some(payload) {
                effect.opened += 1;
            }
            // An observed fact the inventory now lists is declared from here:
            // from now on the inventory's saying so is what keeps it.
            if let Some(v) = before.filter(Version::observed) {
                let mut vs = self.edges[i].versions_vec();
                if let Some(o) = vs.iter_mut().find(|o| **o == v) {
                    o.to = t;
                }
                vs.push(Version { from: t, to: v.to, payload, provenance: prov });
                self.edges[i].set_versions(vs);
                self.revision += 1;
                continue;
            }
            self.assert_key(key, payload, t, prov, &snap.scope);
        }
        // What the scope owned, held at `t`, and the snapshot no longer lists.
        let scope = self.scopes.intern(&snap.scope);
        let owned: Vec<u32> = self.by_scope.get(&scope).cloned().unwrap_or_default();
        for i in owned {
            let key = self.edges[i as usize].key;
            let listed = seen.get(i as usize / 64).is_some_and(|w| w & (1 << (i % 64)) != 0);
            // Observations are not the inventory's to retract.
            let held = self.edges[i as usize].at(t).is_some_and(|v| !v.observed());
            if !listed && held && self.retract_key(key, t, prov) {
                effect.closed += 1;
            }
        }
        effect
    }

    /// Records observed use: from the event log's aggregate when the graph
    /// is built, then as each event is analysed. Use of the same action on
    /// the same resource widens one record. A role seen assumed for the
    /// first time is evidence that the principal can assume it: a change
    /// of trust, so it moves the graph's revision.
    pub fn observe(
        &mut self,
        principal: &str,
        action: &str,
        resource: Option<&str>,
        first: Timestamp,
        last: Timestamp,
        count: u64,
    ) {
        let p = self.node(principal);
        let a = self.ids.intern(action);
        let r = resource.map_or(NONE, |r| self.node(r));
        let (first, last) = (first.unix_nanos(), last.unix_nanos());
        if let Some(&i) = self.use_index.get(&(p, a, r)) {
            let u = &mut self.uses[i as usize];
            if first < u.first && action.starts_with("sts:AssumeRole") {
                if let Some(o) = self.observed_assumptions.iter_mut().find(|o| o.0 == r && o.1 == p) {
                    o.2 = first;
                }
                self.revision += 1;
            }
            u.first = u.first.min(first);
            u.last = u.last.max(last);
            u.count += count;
            return;
        }
        if r != NONE && action.starts_with("sts:AssumeRole") && self.nodes[r as usize].kind == NodeKind::ROLE {
            self.observed_assumptions.push((r, p, first));
            self.revision += 1;
        }
        self.use_index.insert((p, a, r), self.uses.len() as u32);
        self.uses.push(Use { principal: p, action: a, resource: r, first, last, count });
    }

    /// Records what an analysed event shows in use.
    pub fn observe_event(&mut self, e: &tenet_model::Event) {
        self.observe_completed(e, 0);
    }

    /// Records what an analysed event's chain, completed after it was
    /// observed with `known` principals, adds.
    pub fn observe_completed(&mut self, e: &tenet_model::Event, known: usize) {
        let uses = e.uses_beyond(known);
        if uses.is_empty() {
            return;
        }
        let action = e.action.qualified();
        for (p, r) in uses {
            self.observe(p, &action, r, e.time, e.time, 1);
        }
    }

    pub fn uses(&self) -> &[Use] {
        &self.uses
    }

    /// Approximate heap bytes, for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        let edges = self.edges.capacity() * std::mem::size_of::<Edge>()
            + self
                .edges
                .iter()
                .filter_map(|e| e.more.as_ref())
                .map(|m| m.capacity() * std::mem::size_of::<Version>() + 24)
                .sum::<usize>();
        let index = self.index.capacity() * (4 + 1);
        let scopes: usize = self.by_scope.values().map(|v| v.capacity() * 4).sum();
        let nodes = self.nodes.capacity() * std::mem::size_of::<NodeInfo>();
        let payloads = self.payloads.capacity() * std::mem::size_of::<Payload>()
            + self.payloads.iter().map(payload_heap).sum::<usize>();
        edges
            + index
            + scopes
            + nodes
            + payloads
            + self.ids.heap_bytes()
            + self.provenance.heap_bytes()
            + self.payload_index.capacity() * 40
    }
}

fn payload_heap(p: &Payload) -> usize {
    match p {
        Payload::Document(d) => d.statements.len() * 256,
        Payload::Rbac { rules, .. } => rules.len() * 160,
        Payload::Node { name, .. } => name.as_ref().map_or(0, |n| n.len()),
        Payload::Delegation { scope, .. } => scope.iter().map(|s| s.len() + 24).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn iam_paths_are_dropped_from_principal_ids_only() {
        assert_eq!(
            canonical("arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_X"),
            "arn:aws:iam::1:role/AWSReservedSSO_X"
        );
        assert_eq!(canonical("arn:aws:iam::1:role/app/ops#inline/p"), "arn:aws:iam::1:role/ops#inline/p");
        assert_eq!(canonical("arn:aws:iam::1:role/ops"), "arn:aws:iam::1:role/ops");
        assert_eq!(
            canonical("arn:aws:iam::aws:policy/service-role/AWSLambdaRole"),
            "arn:aws:iam::aws:policy/service-role/AWSLambdaRole"
        );
        assert_eq!(canonical("arn:aws:sts::1:assumed-role/ops/s"), "arn:aws:sts::1:assumed-role/ops/s");
    }

    /// Live analysis observes one event at a time: repeated use widens one
    /// record, and only a role assumed for the first time changes trust.
    #[test]
    fn repeated_use_widens_one_record_and_a_first_assumption_moves_the_revision() {
        use tenet_model::{Action, Event, Principal, PrincipalKind, Resource, Source, Timestamp};
        let mut g = super::TrustGraph::new();
        let role = "arn:aws:iam::1:role/deploy";
        g.assert(
            &tenet_model::Fact::Member { member: "user:ann".into(), group: "group:ops".into() },
            Timestamp::from_unix_seconds(0),
            "inventory",
        );
        let call = |secs: i64, op: &str| Event {
            resources: vec![Resource::new("AWS::IAM::Role", role)],
            ..Event::api_call(
                format!("e{secs}"),
                Timestamp::from_unix_seconds(secs),
                Principal::new("user:ann", PrincipalKind::Human),
                Action::new("sts", op),
                Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
            )
        };
        let before = g.revision();
        g.observe_event(&call(10, "AssumeRole"));
        assert_eq!(g.revision(), before + 1, "a first assumption is new trust");
        g.observe_event(&call(20, "AssumeRole"));
        g.observe_event(&call(30, "GetCallerIdentity"));
        assert_eq!(g.revision(), before + 1, "seen again: nothing new");
        assert_eq!(g.uses().len(), 2);
        let u = g.uses().iter().find(|u| g.name(u.action) == "sts:AssumeRole").unwrap();
        assert_eq!((u.first, u.last, u.count), (10_000_000_000, 20_000_000_000, 2));
        let view = g.current();
        let ann = view.id("user:ann").unwrap();
        assert_eq!(view.assumed_roles(ann).iter().map(|r| view.name(*r)).collect::<Vec<_>>(), vec![role]);
    }
}

/// A fact that stopped holding: its kind, its two ends (member and group,
/// holder and policy, agent and person…), when, and what closed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub kind: EdgeKind,
    pub a: String,
    pub b: String,
    pub at: Timestamp,
    pub by: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEffect {
    pub opened: u64,
    pub closed: u64,
}
