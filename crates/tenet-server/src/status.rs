//! The live status document: what the pipeline has seen so far.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// A snapshot of the pipeline's progress, served at `/api/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub events: u64,
    pub events_per_second: f64,
    pub rejected: u64,
    /// The simulated or observed clock: the newest event time ingested.
    pub clock: Option<String>,
    pub principals_by_kind: BTreeMap<String, u64>,
    pub findings_by_category: BTreeMap<String, u64>,
    pub formats: BTreeMap<String, u64>,
    /// Inventory snapshots imported (IAM, SCIM, RBAC, agent registry) and
    /// the trust facts they opened and closed in the graph's history.
    pub inventory_snapshots: u64,
    pub trust_facts_opened: u64,
    pub trust_facts_closed: u64,
}

/// Shared between the producer that updates it and the handlers that read it.
#[derive(Default)]
pub struct StatusBoard {
    inner: Mutex<Status>,
    ready: AtomicBool,
}

impl StatusBoard {
    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.inner.lock() {
            f(&mut s);
        }
    }

    pub fn snapshot(&self) -> Status {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
