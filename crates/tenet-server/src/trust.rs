//! Trust signals for the decision point, from what the learn stage stored:
//! each principal's latest risk and its open findings. Read from the store
//! into memory on a timer, so a decision is a few map lookups, never a query.
//!
//! An AuthZEN subject `{type, id}` is matched to a Tenet principal as
//! `type:id` (Tenet's own form, e.g. `user:alice@example.com`,
//! `agent:agt-42`), else as `id` alone (an ARN, say).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tenet_model::FindingStatus;
use tenet_policy::authzen::{Action, Entity};
use tenet_policy::signals::{OpenFindings, Risk};
use tenet_policy::{KnownEntity, TrustSignals, TrustSource};
use tenet_store::{FindingQuery, FindingReader};

/// What was read at the last refresh.
#[derive(Debug, Default)]
pub struct TrustSnapshot {
    risk: HashMap<String, Risk>,
    findings: HashMap<String, OpenFindings>,
}

impl TrustSnapshot {
    /// Reads every principal's latest risk and open findings.
    pub fn read(store: &dyn FindingReader) -> Result<Self, tenet_store::StoreError> {
        let mut s = TrustSnapshot::default();
        for p in store.risk(None)? {
            s.risk.insert(p.principal.clone(), Risk { score: p.score, level: p.level.as_str().to_string() });
        }
        let open = store.findings(&FindingQuery { status: Some(FindingStatus::Open), ..Default::default() })?;
        let mut max: HashMap<String, (u32, tenet_model::Severity)> = HashMap::new();
        for f in open.iter().filter(|f| f.category.is_alert()) {
            let e = max.entry(f.principal.clone()).or_insert((0, f.severity));
            e.0 += 1;
            e.1 = e.1.max(f.severity);
        }
        s.findings = max
            .into_iter()
            .map(|(p, (open, sev))| (p, OpenFindings { open, max_severity: sev.as_str().to_string() }))
            .collect();
        Ok(s)
    }

    fn principal(&self, subject: &Entity) -> [String; 2] {
        [format!("{}:{}", subject.kind, subject.id), subject.id.clone()]
    }
}

/// The decision point's view of Tenet's trust signals, refreshed from the store.
pub struct StoreTrust {
    snapshot: RwLock<Arc<TrustSnapshot>>,
}

impl StoreTrust {
    pub fn new(first: TrustSnapshot) -> Arc<Self> {
        Arc::new(StoreTrust { snapshot: RwLock::new(Arc::new(first)) })
    }

    pub fn replace(&self, s: TrustSnapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }

    fn current(&self) -> Arc<TrustSnapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the store every `every`, for as long as the process runs.
    pub fn refresh_every(self: &Arc<Self>, reader: Box<dyn tenet_store::StoreReader>, every: Duration) {
        let me = self.clone();
        let _ = std::thread::Builder::new().name("tenet-trust-refresh".into()).spawn(move || {
            loop {
                std::thread::sleep(every);
                match TrustSnapshot::read(&*reader) {
                    Ok(s) => me.replace(s),
                    Err(e) => tracing::warn!(error = %e, "trust signals not refreshed; keeping the last read"),
                }
            }
        });
    }
}

impl TrustSource for StoreTrust {
    fn signals(&self, subject: &Entity, _action: &Action, _resource: &Entity) -> TrustSignals {
        let s = self.current();
        let keys = s.principal(subject);
        // A principal the learn stage has seen but holds no open finding
        // against is known to have none: available, zero.
        let known = keys.iter().any(|k| s.risk.contains_key(k));
        let findings = keys
            .iter()
            .find_map(|k| s.findings.get(k).cloned())
            .or_else(|| known.then(|| OpenFindings { open: 0, max_severity: "none".into() }));
        TrustSignals {
            risk: keys.iter().find_map(|k| s.risk.get(k).cloned()),
            findings,
            // Not yet wired to the graph and the learner's baselines: said so, not invented.
            delegation: None,
            novelty: None,
            assurance: None,
        }
    }

    fn entity(&self, _kind: &str, _id: &str) -> Option<KnownEntity> {
        None
    }

    fn candidates(&self, _kind: &str) -> Vec<String> {
        Vec::new()
    }
}
