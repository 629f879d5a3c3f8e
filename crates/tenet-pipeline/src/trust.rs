//! Building the trust graph from what the store holds: inventory snapshots
//! and trust-changing events, applied in time order, plus observed use.

use tenet_graph::TrustGraph;
use tenet_model::Timestamp;
use tenet_store::{EventStore, Result, StoreReader};

/// Everything stored that the graph is built from, in time order.
enum Evidence {
    Snapshot(tenet_store::StoredSnapshot),
    Event(Box<tenet_model::Event>),
}

impl Evidence {
    fn time(&self) -> Timestamp {
        match self {
            Evidence::Snapshot(s) => s.snapshot.collected_at,
            Evidence::Event(e) => e.time,
        }
    }
}

/// The trust graph as the store's evidence builds it.
pub fn load_graph(reader: &dyn StoreReader) -> Result<TrustGraph> {
    let mut evidence: Vec<Evidence> = reader.snapshots()?.into_iter().map(Evidence::Snapshot).collect();
    evidence.extend(reader.trust_events()?.into_iter().map(|e| Evidence::Event(Box::new(e))));
    // Stable: at equal times, snapshots (listed first) go before events.
    evidence.sort_by_key(Evidence::time);
    let mut graph = TrustGraph::new();
    for item in evidence {
        match item {
            Evidence::Snapshot(s) => {
                graph.apply_snapshot(&s.snapshot, &s.provenance);
            }
            Evidence::Event(e) => graph.apply_changes(&e.changes, e.time, e.id.as_str()),
        }
    }
    for u in reader.observed_use()? {
        graph.observe(&u.principal, &u.action, u.resource.as_deref(), u.first, u.last, u.count);
    }
    Ok(graph)
}

/// Brings observed use up to date, then builds the graph.
pub fn refresh_and_load(store: &mut dyn EventStore) -> Result<TrustGraph> {
    store.refresh_use()?;
    let reader = store.reader()?;
    load_graph(&*reader)
}
