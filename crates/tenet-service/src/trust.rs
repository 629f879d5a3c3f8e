//! The decision point's view of what Tenet knows, held in memory: each
//! principal's risk and open findings (learn stage), its baselines and
//! authentications (the learner), and its groups, roles and delegations
//! (the trust graph). The live pipeline publishes a new snapshot as each
//! change is analysed; a decision is a few map lookups, never a query.
//!
//! AuthZEN subjects and resources are matched to Tenet ids as `type:id`
//! (Tenet's own form: `user:alice@example.com`, `agent:agt-42`), else `id`
//! alone (an ARN). Tenet ids become Cedar entities the same way back: the
//! part before the first `:` is the type, the rest the id.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tenet_learn::{KnowledgeIndex, Learner};
use tenet_model::{FindingStatus, NodeKind};
use tenet_policy::authzen::{Action, Entity};
use tenet_policy::signals::{Assurance, Attr, Delegation, Novelty, OpenFindings, Risk};
use tenet_policy::{KnownEntity, TrustSignals, TrustSource};
use tenet_store::{EventStore, FindingQuery};

use tenet_pipeline::trust::load_graph;

/// A map snapshots share, split in shards so that a change copies only the
/// shards it touches: with tens of thousands of principals, copying the
/// whole map at every risk change would cost more than the change.
#[derive(Clone)]
pub struct SharedMap<V> {
    shards: Arc<[Arc<HashMap<String, V>>]>,
}

const SHARDS: usize = 64;

fn shard_of(key: &str) -> usize {
    use std::hash::Hasher;
    // Cheap: decisions look keys up on every request.
    let mut h = rustc_hash::FxHasher::default();
    h.write(key.as_bytes());
    (h.finish() as usize) % SHARDS
}

impl<V> Default for SharedMap<V> {
    fn default() -> Self {
        SharedMap { shards: (0..SHARDS).map(|_| Arc::new(HashMap::new())).collect() }
    }
}

impl<V: Clone> FromIterator<(String, V)> for SharedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(items: I) -> Self {
        let mut shards: Vec<HashMap<String, V>> = (0..SHARDS).map(|_| HashMap::new()).collect();
        for (k, v) in items {
            shards[shard_of(&k)].insert(k, v);
        }
        SharedMap { shards: shards.into_iter().map(Arc::new).collect() }
    }
}

impl<V: Clone> SharedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[shard_of(key)].get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.shards[shard_of(key)].contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new map with `changes` applied (`None` removes the key), sharing
    /// every shard they do not touch with this one.
    pub fn with(&self, changes: impl IntoIterator<Item = (String, Option<V>)>) -> Self {
        let mut shards: Vec<Arc<HashMap<String, V>>> = self.shards.to_vec();
        for (k, v) in changes {
            let shard = Arc::make_mut(&mut shards[shard_of(&k)]);
            match v {
                Some(v) => shard.insert(k, v),
                None => shard.remove(&k),
            };
        }
        SharedMap { shards: shards.into() }
    }
}

/// Everything decisions read, as of one moment. Each part is shared: the
/// live pipeline replaces the parts a change touched and keeps the rest.
#[derive(Default, Clone)]
pub struct TrustSnapshot {
    risk: SharedMap<Risk>,
    findings: SharedMap<OpenFindings>,
    /// What analysis learned: one learner, or on a cluster node one per
    /// partition it knows (its own, and the others' as they last saved
    /// them); what they know of a principal is combined.
    learners: Arc<[Arc<Learner>]>,
    /// On a cluster node, what other nodes' partition learners learned.
    elsewhere: Arc<[Arc<KnowledgeIndex>]>,
    /// Tenet id → what the graph says of it.
    graph: Arc<HashMap<String, GraphNode>>,
    /// Cedar type → ids of that type the graph knows (search candidates).
    by_type: Arc<HashMap<String, Vec<String>>>,
    /// Each alias of a principal known by several ids → its canonical
    /// reference (see `tenet_pipeline::principals`).
    canonical: Arc<HashMap<String, String>>,
}

struct GraphNode {
    kind: NodeKind,
    entity: KnownEntity,
    acts_for: Vec<String>,
    /// Every id the principal is known by, canonical first, when it has
    /// more than one: findings and risk recorded under any are its own.
    aliases: Arc<[String]>,
    /// The name the inventory gives it or any of its aliases (SCIM
    /// `displayName`, an agent registry's name).
    display: Option<Arc<str>>,
}

/// `type:id` → (`type`, `id`); `None` for an id without a type.
fn split(tenet_id: &str) -> Option<(String, String)> {
    let (t, id) = tenet_id.split_once(':')?;
    (!t.is_empty() && !id.is_empty()).then(|| (t.to_string(), id.to_string()))
}

/// A group as its source names it: the inventory's display name (SCIM
/// `displayName`, an Okta group's name), else the IAM group's name from its
/// ARN, else the id after its source prefix. A policy writes
/// `principal in group::"admins"`.
fn group_name(view: &tenet_graph::View<'_>, g: tenet_graph::intern::Id) -> String {
    if let Some(n) = view.display_name(g) {
        return n.to_string();
    }
    let id = view.name(g);
    if let Some((_, name)) = id.split_once(":group/") {
        return name.rsplit('/').next().unwrap_or(name).to_string();
    }
    id.split_once(':').map_or(id, |(_, rest)| rest).to_string()
}

/// Each principal's open alerting findings: how many, the worst severity.
pub fn open_findings(open: &[tenet_model::Finding]) -> HashMap<String, OpenFindings> {
    let mut by: HashMap<String, (u32, tenet_model::Severity)> = HashMap::new();
    for f in open.iter().filter(|f| f.is_alert() && f.status == FindingStatus::Open) {
        let e = by.entry(f.principal.clone()).or_insert((0, f.severity));
        e.0 += 1;
        e.1 = e.1.max(f.severity);
    }
    by.into_iter().map(|(p, (open, sev))| (p, OpenFindings { open, max_severity: sev.as_str().to_string() })).collect()
}

/// The signal form of a risk point.
pub fn risk_of(p: &tenet_model::RiskPoint) -> Risk {
    Risk { score: p.score, level: p.level.as_str().to_string() }
}

impl TrustSnapshot {
    /// Everything at once from the store: what `tenet check` decides with.
    pub fn read(store: &dyn EventStore) -> Result<Self, tenet_pipeline::analyse::AnalyseError> {
        let learner = match store.analysis_state()? {
            Some(a) if !a.learner.is_empty() => Some(Arc::new(
                serde_json::from_slice(&a.learner)
                    .map_err(|e| tenet_pipeline::analyse::AnalyseError::State(e.to_string()))?,
            )),
            _ => None,
        };
        let graph = load_graph(store)?;
        Self::read_with(store, &graph, learner)
    }

    /// Risk and open findings from the store, with a graph and learner the
    /// caller already holds (a starting service builds them once).
    pub fn read_with(
        store: &dyn EventStore,
        graph: &tenet_graph::TrustGraph,
        learner: Option<Arc<Learner>>,
    ) -> Result<Self, tenet_pipeline::analyse::AnalyseError> {
        let risk =
            tenet_store::FindingReader::risk(store, None)?.iter().map(|p| (p.principal.clone(), risk_of(p))).collect();
        let open = tenet_store::FindingReader::findings(
            store,
            &FindingQuery { status: Some(FindingStatus::Open), ..Default::default() },
        )?;
        Ok(TrustSnapshot {
            risk,
            findings: open_findings(&open).into_iter().collect(),
            learners: learner.into_iter().collect(),
            elsewhere: Arc::new([]),
            ..Default::default()
        }
        .with_graph(graph))
    }

    /// This snapshot with the graph's current principals (entity data,
    /// parents, owners, delegations) in place of the old ones.
    pub fn with_graph(mut self, graph: &tenet_graph::TrustGraph) -> Self {
        let view = graph.current();
        let (mut nodes, mut by_type) = (HashMap::new(), HashMap::<String, Vec<String>>::new());
        let mut alias_of: Vec<(String, String)> = Vec::new();
        let mut canonical = HashMap::new();
        for id in view.present_nodes() {
            let kind = view.kind(id);
            if !kind.is_principal() {
                continue;
            }
            let name = view.name(id).to_string();
            // Facts attached to any alias belong to the principal: an IdP
            // user's SCIM groups are the person's groups.
            let aliases = view.aliases(id);
            let mut groups: Vec<tenet_graph::intern::Id> = aliases.iter().flat_map(|a| view.groups_of(*a)).collect();
            groups.sort_unstable();
            groups.dedup();
            let mut parents: Vec<(String, String)> =
                groups.into_iter().map(|g| ("group".to_string(), group_name(&view, g))).collect();
            parents.extend(view.assumed_roles(id).iter().filter_map(|r| split(view.name(*r))));
            parents.sort();
            parents.dedup();
            let mut attrs = vec![
                ("kind".to_string(), Attr::Str(kind.as_str().to_string())),
                ("tenet_id".to_string(), Attr::Str(name.clone())),
            ];
            let acts_for: Vec<String> = view.acts_for(id).iter().map(|p| view.name(*p).to_string()).collect();
            if let Some((t, i)) = acts_for
                .first()
                .and_then(|p| split(p))
                .or_else(|| view.owners_of(id).first().and_then(|o| split(view.name(*o))))
            {
                attrs.push(("owner".to_string(), Attr::Entity(t, i)));
            }
            if let Some((t, i)) = split(&name) {
                by_type.entry(t).or_default().push(i);
            }
            for a in aliases.iter().skip(1) {
                alias_of.push((view.name(*a).to_string(), name.clone()));
            }
            let mut known_as: Vec<String> = Vec::new();
            if aliases.len() > 1 {
                let c = tenet_pipeline::principals::canonical_in(&view, &name);
                known_as.push(c.clone());
                known_as.extend(aliases.iter().map(|a| view.name(*a).to_string()).filter(|a| *a != c));
                canonical.insert(name.clone(), c);
            }
            let display = aliases.iter().find_map(|a| view.display_name(*a)).map(Arc::from);
            let aliases = known_as.into();
            nodes.insert(name, GraphNode { kind, entity: KnownEntity { attrs, parents }, acts_for, aliases, display });
        }
        // An alias that is not a principal of its own answers as the principal.
        for (alias, principal) in alias_of {
            if nodes.contains_key(&alias) {
                continue;
            }
            if let Some(n) = nodes.get(&principal) {
                if let Some(c) = n.aliases.first() {
                    canonical.insert(alias.clone(), c.clone());
                }
                let copy = GraphNode {
                    kind: n.kind,
                    entity: n.entity.clone(),
                    acts_for: n.acts_for.clone(),
                    aliases: n.aliases.clone(),
                    display: n.display.clone(),
                };
                nodes.insert(alias, copy);
            }
        }
        for ids in by_type.values_mut() {
            ids.sort();
            ids.dedup();
        }
        self.graph = Arc::new(nodes);
        self.by_type = Arc::new(by_type);
        self.canonical = Arc::new(canonical);
        self
    }

    /// The canonical reference of a principal id: the one name notices,
    /// decisions and the stream use for it.
    pub fn canonical_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.canonical.get(id).map_or(id, String::as_str)
    }

    /// The people, workloads and agents the graph knows, each once (by its
    /// canonical reference), with the name people call it by.
    pub fn principals(&self) -> Vec<tenet_console::Principal> {
        use tenet_model::PrincipalKind;
        let mut out: Vec<tenet_console::Principal> = self
            .graph
            .iter()
            .filter(|(id, _)| self.canonical_of(id) == id.as_str())
            .filter_map(|(id, n)| match n.kind {
                NodeKind::Actor(kind @ (PrincipalKind::Human | PrincipalKind::Workload | PrincipalKind::Agent)) => {
                    Some(tenet_console::Principal { id: id.clone(), kind, display: Self::shown(id, n) })
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// What people call a principal: its inventory name, else one derived from its id.
    fn shown(id: &str, n: &GraphNode) -> String {
        n.display.as_deref().map_or_else(|| tenet_console::display_name(id), str::to_string)
    }

    /// What the graph says of one principal, by any id it knows it under.
    pub fn card(&self, id: &str) -> Option<tenet_console::PrincipalCard> {
        let canonical = self.canonical_of(id).to_string();
        let n = self.graph.get(&canonical)?;
        let NodeKind::Actor(kind) = n.kind else { return None };
        let agents: Vec<String> = {
            let mut v: Vec<String> = self
                .graph
                .iter()
                .filter(|(_, a)| {
                    a.kind == NodeKind::AGENT && a.acts_for.iter().any(|p| self.canonical_of(p) == canonical)
                })
                .map(|(id, _)| id.clone())
                .collect();
            v.sort();
            v
        };
        Some(tenet_console::PrincipalCard {
            principal: tenet_console::Principal { id: canonical.clone(), kind, display: Self::shown(&canonical, n) },
            aliases: n.aliases.iter().filter(|a| **a != canonical).cloned().collect(),
            groups: n.entity.parents.iter().filter(|(t, _)| t == "group").map(|(_, g)| g.clone()).collect(),
            acts_for: n.acts_for.iter().map(|p| self.canonical_of(p).to_string()).collect(),
            agents,
        })
    }

    /// Every id a principal the graph knows goes by, canonical first.
    pub fn aliases_of(&self, id: &str) -> Option<Vec<String>> {
        let n = self.graph.get(id)?;
        Some(if n.aliases.is_empty() { vec![id.to_string()] } else { n.aliases.to_vec() })
    }

    /// The principal an AuthZEN subject is, as notices name it (its
    /// canonical reference), and the person it acts for when it is an agent.
    pub fn principal_of(&self, kind: &str, id: &str) -> (String, Option<String>) {
        let typed = Self::typed_key(kind, id);
        for k in [typed.as_str(), id] {
            if let Some(n) = self.graph.get(k) {
                let origin = (n.kind == NodeKind::AGENT)
                    .then(|| n.acts_for.first().map(|p| self.canonical_of(p).to_string()))
                    .flatten();
                return (self.canonical_of(k).to_string(), origin);
            }
            if self.risk.contains_key(k) || self.canonical.contains_key(k) {
                return (self.canonical_of(k).to_string(), None);
            }
        }
        (typed, None)
    }

    pub fn with_risk(mut self, risk: SharedMap<Risk>) -> Self {
        self.risk = risk;
        self
    }

    pub fn with_findings(mut self, findings: SharedMap<OpenFindings>) -> Self {
        self.findings = findings;
        self
    }

    pub fn with_learner(mut self, learner: Arc<Learner>) -> Self {
        self.learners = Arc::new([learner]);
        self
    }

    /// A cluster node's learners: one per partition it knows, and what
    /// the owners of others sent since (see [`tenet_learn::KnowledgeIndex`]).
    pub fn with_learners(mut self, learners: Vec<Arc<Learner>>, elsewhere: Vec<Arc<KnowledgeIndex>>) -> Self {
        self.learners = learners.into();
        self.elsewhere = elsewhere.into();
        self
    }

    /// What the learners know of `principal` (under any of `keys`) for
    /// `action` on a `resource_type`: one learner's knowledge, or several
    /// combined (seen by any; groups and delegations of all; the latest
    /// authentication).
    fn knowledge(&self, keys: &[&str], action: &str, resource_type: &str) -> Option<tenet_learn::Knowledge> {
        let mut known =
            self.learners.iter().filter_map(|l| keys.iter().find_map(|k| l.knowledge(k, action, resource_type))).chain(
                self.elsewhere.iter().filter_map(|l| keys.iter().find_map(|k| l.knowledge(k, action, resource_type))),
            );
        let mut all = known.next()?;
        for k in known {
            all.observed |= k.observed;
            all.principal_before |= k.principal_before;
            all.peer_group_before |= k.peer_group_before;
            for g in k.groups {
                if !all.groups.contains(&g) {
                    all.groups.push(g);
                }
            }
            for p in k.acts_for {
                if !all.acts_for.contains(&p) {
                    all.acts_for.push(p);
                }
            }
            if k.authentication.as_ref().map(|a| a.at) > all.authentication.as_ref().map(|a| a.at) {
                all.authentication = k.authentication;
            }
        }
        Some(all)
    }

    pub fn risk(&self) -> &SharedMap<Risk> {
        &self.risk
    }

    pub fn findings(&self) -> &SharedMap<OpenFindings> {
        &self.findings
    }

    /// The Tenet ids an AuthZEN entity may be known under, most specific first.
    /// `type:id` (built without the formatting machinery: this runs on
    /// every decision).
    fn typed_key(e_kind: &str, e_id: &str) -> String {
        let mut key = String::with_capacity(e_kind.len() + 1 + e_id.len());
        key.push_str(e_kind);
        key.push(':');
        key.push_str(e_id);
        key
    }

    /// The highest risk recorded under any of a principal's ids.
    fn risk_of_all(&self, aliases: &[String]) -> Option<Risk> {
        aliases.iter().filter_map(|a| self.risk.get(a)).max_by_key(|r| r.score).cloned()
    }

    /// Open findings recorded under any of a principal's ids, together.
    fn findings_of_all(&self, aliases: &[String]) -> Option<OpenFindings> {
        let rank = tenet_model::Severity::parse;
        aliases.iter().filter_map(|a| self.findings.get(a)).fold(None, |acc: Option<OpenFindings>, f| {
            Some(match acc {
                None => f.clone(),
                Some(a) => OpenFindings {
                    open: a.open + f.open,
                    max_severity: if rank(&f.max_severity) > rank(&a.max_severity) {
                        f.max_severity.clone()
                    } else {
                        a.max_severity
                    },
                },
            })
        })
    }

    fn signals(&self, subject: &Entity, action: &Action, resource: &Entity) -> TrustSignals {
        let typed = Self::typed_key(&subject.kind, &subject.id);
        let keys = [typed.as_str(), subject.id.as_str()];
        let learner_knows = self.knowledge(&keys, &action.name, &resource.kind);
        let node = keys.iter().find_map(|&k| self.graph.get(k).map(|n| (k.to_string(), n)));
        let known = node.is_some() || learner_knows.is_some() || keys.iter().any(|&k| self.risk.contains_key(k));
        let aliases = node.as_ref().map_or(&[][..], |(_, n)| &n.aliases[..]);
        let (risk, findings) = if aliases.is_empty() {
            (
                keys.iter().find_map(|&k| self.risk.get(k).cloned()),
                keys.iter().find_map(|&k| self.findings.get(k).cloned()),
            )
        } else {
            (self.risk_of_all(aliases), self.findings_of_all(aliases))
        };
        // Known to Tenet with nothing recorded: nothing against it yet.
        let risk = risk.or_else(|| known.then(|| Risk { score: 0, level: "low".into() }));
        let findings = findings.or_else(|| known.then(|| OpenFindings { open: 0, max_severity: "none".into() }));
        let delegation = node.map(|(id, n)| {
            let acting_for = if n.kind == NodeKind::AGENT { n.acts_for.first().cloned() } else { None };
            match acting_for {
                Some(person) => Delegation {
                    depth: 1,
                    chain: vec![id.clone(), person.clone()],
                    origin_risk: Some(self.risk.get(&person).map_or(0, |r| r.score)),
                    origin: Some(person),
                    via_agent: Some(id),
                },
                None => Delegation {
                    depth: 0,
                    chain: vec![id.clone()],
                    origin_risk: (n.kind == NodeKind::HUMAN).then(|| self.risk.get(&id).map_or(0, |r| r.score)),
                    origin: (n.kind == NodeKind::HUMAN).then_some(id),
                    via_agent: None,
                },
            }
        });
        let novelty = learner_knows
            .as_ref()
            .map(|k| Novelty { principal_before: k.principal_before, peer_group_before: k.peer_group_before });
        let assurance = learner_knows.as_ref().and_then(|k| k.authentication.as_ref()).map(|a| Assurance {
            method: a.via.clone(),
            mfa: a.mfa,
            at: tenet_model::Timestamp::from_unix_nanos(a.at).to_string(),
        });
        TrustSignals { risk, delegation, novelty, findings, assurance }
    }
}

/// The decision point's [`TrustSource`]: the latest [`TrustSnapshot`] the
/// live pipeline published (or one read from the store, for `tenet check`).
/// A decision takes the snapshot current when it starts: a few map lookups,
/// never a query.
pub struct LiveTrust {
    snapshot: RwLock<Arc<TrustSnapshot>>,
}

impl LiveTrust {
    pub fn new(first: TrustSnapshot) -> Arc<Self> {
        Arc::new(LiveTrust { snapshot: RwLock::new(Arc::new(first)) })
    }

    pub fn current(&self) -> Arc<TrustSnapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `next` what every decision from now on reads.
    pub fn publish(&self, next: TrustSnapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }
}

impl TrustSource for LiveTrust {
    fn signals(&self, subject: &Entity, action: &Action, resource: &Entity) -> TrustSignals {
        self.current().signals(subject, action, resource)
    }

    fn entity(&self, kind: &str, id: &str) -> Option<KnownEntity> {
        let s = self.current();
        if s.graph.is_empty() {
            return None;
        }
        let typed = TrustSnapshot::typed_key(kind, id);
        s.graph.get(typed.as_str()).or_else(|| s.graph.get(id)).map(|n| n.entity.clone())
    }

    fn candidates(&self, kind: &str) -> Vec<String> {
        self.current().by_type.get(kind).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod shared_map_tests {
    use super::*;

    #[test]
    fn a_change_copies_only_the_shards_it_touches_and_leaves_the_old_map_as_it_was() {
        let before: SharedMap<u32> = (0..1000).map(|i| (format!("user:{i}"), i)).collect();
        let after = before.with([("user:7".to_string(), Some(70)), ("user:8".to_string(), None)]);
        assert_eq!((before.get("user:7"), before.get("user:8")), (Some(&7), Some(&8)), "the old map unchanged");
        assert_eq!((after.get("user:7"), after.get("user:8")), (Some(&70), None));
        assert_eq!((before.len(), after.len()), (1000, 999));
        let shared = before.shards.iter().zip(after.shards.iter()).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert!(shared >= SHARDS - 2, "at most the two touched shards copied: {shared} of {SHARDS} shared");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{Fact, Timestamp};

    fn entity(kind: &str, id: &str) -> Entity {
        Entity { kind: kind.into(), id: id.into(), properties: Default::default() }
    }

    /// Facts and findings attached to any alias belong to the principal: a
    /// person decided by email carries the risk and open findings the
    /// learner recorded under their IdP identity, and both names lead to
    /// one canonical reference.
    #[test]
    fn risk_and_findings_under_any_alias_are_the_principals() {
        let mut graph = tenet_graph::TrustGraph::new();
        let t = Timestamp::from_unix_seconds(1);
        graph.assert(&Fact::SameAs { a: "okta:00u1".into(), b: "user:alice@example.com".into() }, t, "scim");
        graph.assert(&Fact::Member { member: "user:bob@example.com".into(), group: "okta:00g1".into() }, t, "scim");
        let risk = HashMap::from([
            ("okta:00u1".to_string(), Risk { score: 80, level: "high".into() }),
            ("user:alice@example.com".to_string(), Risk { score: 10, level: "low".into() }),
        ]);
        let findings = HashMap::from([
            ("okta:00u1".to_string(), OpenFindings { open: 2, max_severity: "high".into() }),
            ("user:alice@example.com".to_string(), OpenFindings { open: 1, max_severity: "medium".into() }),
        ]);
        let snapshot = TrustSnapshot::default()
            .with_risk(risk.into_iter().collect())
            .with_findings(findings.into_iter().collect())
            .with_graph(&graph);
        assert_eq!(snapshot.canonical_of("okta:00u1"), "user:alice@example.com");
        assert_eq!(snapshot.canonical_of("user:alice@example.com"), "user:alice@example.com");
        assert_eq!(snapshot.canonical_of("user:bob@example.com"), "user:bob@example.com", "one name only");
        let action = Action { name: "read".into(), properties: Default::default() };
        let doc = entity("document", "d");
        for subject in [entity("user", "alice@example.com"), entity("okta", "00u1")] {
            let s = snapshot.signals(&subject, &action, &doc);
            assert_eq!(s.risk, Some(Risk { score: 80, level: "high".into() }), "{subject:?}: the highest");
            assert_eq!(s.findings, Some(OpenFindings { open: 3, max_severity: "high".into() }), "{subject:?}: all");
        }
        let bob = snapshot.signals(&entity("user", "bob@example.com"), &action, &doc);
        assert_eq!(bob.risk, Some(Risk { score: 0, level: "low".into() }), "known, nothing against him");
    }
}
