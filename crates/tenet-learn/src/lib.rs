//! The learn stage: adaptive baselines per principal, peer group and
//! workflow; detectors over them and over trust changes, sequences and
//! Sigma matches; every deviation classified, grouped into findings, and
//! turned into per-principal risk. Pure: events and facts in, findings and
//! trust signals out; no I/O.
//!
//! - [`sketch`]: bounded, decayed summaries (Bloom novelty, heavy hitters,
//!   hour-of-week, EWMA/CUSUM rate);
//! - [`baseline`]: what normal is for a principal, a peer group, a workflow;
//! - [`identity`]: who an event is about and who its peers are;
//! - [`actions`]: what an action is (reads, secrets, logging, privilege …);
//! - [`detect`]: the detectors, each producing [`Deviation`]s;
//! - [`incident`]: grouping, classification into the five categories, findings;
//! - [`risk`]: each principal's risk score and its history.

pub mod actions;
pub mod baseline;
mod detect;
pub mod deviation;
pub mod identity;
mod incident;
pub mod knowledge;
pub mod risk;
pub mod sketch;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tenet_model::{Event, Finding, RuleMatch, Snapshot};

pub use deviation::{Deviation, Lean};
pub use knowledge::{Knowledge, KnowledgeIndex, KnownPrincipal, Learned};
pub use tenet_model::{RiskLevel, RiskPoint};

use crate::baseline::{PeerBaseline, PrincipalBaseline, WorkflowBaseline};
use crate::identity::IdentityIndex;
use crate::incident::Incidents;

/// A Sigma rule that matched an event, as the edge reports it.
#[derive(Debug, Clone)]
pub struct SigmaMatch {
    pub rule: RuleMatch,
    /// MITRE ATT&CK technique ids from the rule's tags.
    pub techniques: Vec<String>,
    /// The ATT&CK tactics its tags name.
    pub behaviours: Vec<tenet_model::Behaviour>,
}

/// Tunables. The defaults are what the tests and the simulator run with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Host suffixes that are inside the organisation (`.acme.internal`):
    /// agent tools reaching anything else reach outside.
    pub internal_domains: Vec<String>,
    /// Events before a principal's baseline speaks with full confidence.
    pub warmup_events: u64,
    /// Incident score at which a finding alerts; below it, from
    /// `incident::RECORD_SCORE`, it is recorded without alerting.
    pub alert_threshold: f32,
    /// A quiet gap that ends an incident.
    pub incident_gap: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            internal_domains: vec![".internal".into(), ".local".into(), ".corp".into(), ".lan".into()],
            warmup_events: 50,
            alert_threshold: 50.0,
            incident_gap: 2 * sketch::HOUR,
        }
    }
}

/// Baselines kept, and what they cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub events: u64,
    pub principals: usize,
    pub peer_groups: usize,
    pub workflows: usize,
    /// Average bytes of a principal baseline (inline and heap).
    pub bytes_per_principal: usize,
    pub deviations: u64,
    pub findings: usize,
}

/// The learner: feed it events in time order (and inventory snapshots at
/// their time); take the findings and risk changes it produces.
#[derive(Clone, Serialize, Deserialize)]
pub struct Learner {
    config: Config,
    clock: i64,
    events: u64,
    deviations: u64,
    principals: FxHashMap<String, PrincipalBaseline>,
    peers: FxHashMap<String, PeerBaseline>,
    workflows: FxHashMap<String, WorkflowBaseline>,
    identity: IdentityIndex,
    detect: detect::State,
    incidents: Incidents,
    risk: risk::Risk,
    last_prune: i64,
    /// The principals events were about, and the peer groups they taught,
    /// since [`Learner::take_learned`], when tracked.
    #[serde(skip)]
    touched: Option<Touched>,
    /// On a cluster node: what the learners of other partitions taught
    /// each peer group (group → partition → its members' part), pooled
    /// with this learner's own when a detector asks about peers.
    #[serde(default)]
    peers_elsewhere: FxHashMap<String, FxHashMap<u32, PeerBaseline>>,
}

#[derive(Clone, Default)]
struct Touched {
    principals: rustc_hash::FxHashSet<String>,
    peers: rustc_hash::FxHashSet<String>,
}

impl Learner {
    pub fn new(config: Config) -> Self {
        Learner {
            config,
            clock: 0,
            events: 0,
            deviations: 0,
            principals: FxHashMap::default(),
            peers: FxHashMap::default(),
            workflows: FxHashMap::default(),
            identity: IdentityIndex::default(),
            detect: detect::State::default(),
            incidents: Incidents::default(),
            risk: risk::Risk::default(),
            last_prune: 0,
            touched: None,
            peers_elsewhere: FxHashMap::default(),
        }
    }

    /// Applies an inventory snapshot at its collection time: memberships,
    /// aliases and delegations for peer groups; grants and tools as
    /// authorised changes.
    pub fn apply_snapshot(&mut self, snap: &Snapshot, provenance: &str) {
        self.identity.apply_snapshot(snap, provenance);
        for d in self.confirm_unknown(snap) {
            let young = self.principals.get(&d.subject).is_none_or(|p| detect::is_young(p, d.at));
            self.deviations += 1;
            self.incidents.add(d, young, &self.identity, &self.config);
        }
    }

    /// Learns from one event and runs every detector on it; `sigma` are the
    /// rules it matched at the edge.
    pub fn observe(&mut self, e: &Event, sigma: &[SigmaMatch]) {
        let t = e.time.unix_nanos();
        self.clock = self.clock.max(t);
        self.events += 1;
        self.identity.apply_event(e);
        let deviations = self.detect(e, sigma);
        self.deviations += deviations.len() as u64;
        for d in deviations {
            // Why a finding did or did not form is the first thing tuning asks.
            tracing::debug!(subject = %d.subject, detector = d.detector, score = d.score, lean = ?d.lean, detail = %d.detail, "deviation");
            let young = self.principals.get(&d.subject).is_none_or(|p| detect::is_young(p, t));
            self.incidents.add(d, young, &self.identity, &self.config);
        }
        if self.clock - self.last_prune > sketch::DAY {
            self.last_prune = self.clock;
            self.identity.prune(self.clock, 30 * sketch::DAY);
            self.detect.prune(self.clock);
            self.incidents.close_stale(self.clock, &self.config);
        }
    }

    /// Trust changes an event analysed by another learner made (a cluster
    /// partitions its events by principal; grants, memberships and
    /// delegations explain what other principals do next): known as
    /// authorised changes, as if this learner had seen the event.
    pub fn apply_changes_elsewhere(&mut self, changes: &tenet_model::DeclaredChanges) {
        let by = changes.by.iter().map(String::as_str);
        self.identity.apply_changes(by, changes.at.unix_nanos(), &changes.event, &changes.changes);
    }

    /// Findings raised or changed since the last call.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        let findings = self.incidents.take_changed(&self.config);
        for f in &findings {
            self.risk.update(f);
        }
        findings
    }

    /// Risk scores that changed since the last call.
    pub fn take_risk(&mut self) -> Vec<RiskPoint> {
        self.risk.take_changed(self.clock)
    }

    /// A finding's status changed outside (acknowledged, resolved,
    /// suppressed): risk follows.
    pub fn finding_updated(&mut self, f: &Finding) {
        self.risk.update(f);
        self.incidents.status_changed(f);
    }

    pub fn stats(&self) -> Stats {
        let bytes: usize = self.principals.values().map(PrincipalBaseline::bytes).sum();
        Stats {
            events: self.events,
            principals: self.principals.len(),
            peer_groups: self.peers.len(),
            workflows: self.workflows.len(),
            bytes_per_principal: bytes.checked_div(self.principals.len()).unwrap_or(0),
            deviations: self.deviations,
            findings: self.incidents.emitted(),
        }
    }

    /// Replaces the tunables (a restored learner runs with today's).
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The latest event time seen.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// What the learn stage knows of `principal` for a decision about
    /// `action` on a resource of `resource_type`: whether it, and any of its
    /// peer groups, did that before; whom it acts for; how it last
    /// authenticated. `None` when it has never been seen.
    pub fn knowledge(&self, principal: &str, action: &str, resource_type: &str) -> Option<Knowledge> {
        let id = self.identity.canonical(principal);
        let groups: Vec<String> = self.identity.groups_of(id).into_iter().map(str::to_string).collect();
        let acts_for: Vec<String> = self.identity.acts_for(id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        knowledge::knowledge_of(
            id,
            self.principals.get(id).map(|p| &p.seen),
            groups,
            acts_for,
            self.identity.authentication(id).cloned(),
            |g, k| self.peer_parts(g).any(|p| p.seen.contains(k)),
            action,
            resource_type,
        )
    }

    /// A peer group's baselines: this learner's, and what other
    /// partitions' learners taught it.
    fn peer_parts<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a PeerBaseline> {
        self.peers.get(group).into_iter().chain(self.peers_elsewhere.get(group).into_iter().flat_map(|m| m.values()))
    }

    /// Whether a peer group of two members or more has seen `k`.
    fn peer_knows(&self, group: &str, k: u64) -> bool {
        let (mut members, mut seen) = (0, false);
        for p in self.peer_parts(group) {
            members += p.members;
            seen = seen || p.seen.contains(k);
        }
        members >= 2 && seen
    }

    /// What the learner of partition `part` (another's) learned: its part
    /// of each peer group it taught replaces the one it sent before.
    pub fn learned_elsewhere(&mut self, part: u32, learned: &Learned) {
        for (group, baseline) in &learned.peers {
            self.peers_elsewhere.entry(group.clone()).or_default().insert(part, baseline.clone());
        }
    }

    /// From now on, remembers which principals events were about, for
    /// [`Learner::take_learned`] (a cluster node's partition learners).
    pub fn track_learned(&mut self) {
        self.touched.get_or_insert_with(Default::default);
    }

    /// What decisions need of the principals events were about since the
    /// last call, as it now stands (empty unless tracked).
    pub fn take_learned(&mut self) -> Learned {
        let Some(touched) = self.touched.as_mut() else { return Learned::default() };
        let Touched { principals: touched, mut peers } = std::mem::take(touched);
        let mut learned = Learned::default();
        for id in &touched {
            let groups: Vec<String> = self.identity.groups_of(id).into_iter().map(str::to_string).collect();
            peers.extend(groups.iter().filter(|g| knowledge::is_peer_group(g)).cloned());
            let known = KnownPrincipal {
                seen: self.principals.get(id).map(|p| p.seen.clone()),
                groups,
                acts_for: self.identity.acts_for(id).map(|s| s.iter().cloned().collect()).unwrap_or_default(),
                authentication: self.identity.authentication(id).cloned(),
            };
            learned.principals.push((id.clone(), known));
        }
        learned.aliases = self.identity.aliases_of(|canonical| touched.contains(canonical));
        learned.peers = peers.into_iter().filter_map(|g| self.peers.get(&g).map(|p| (g, p.clone()))).collect();
        learned
    }
}
