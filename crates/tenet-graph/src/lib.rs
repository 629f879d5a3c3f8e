//! Tenet's temporal trust graph: who can reach what, why, through whom,
//! and what changed. Pure: facts in, answers out, no I/O.
//!
//! - [`graph`]: every fact as an edge with its versions over time and the
//!   provenance of each; inventory snapshots and event changes applied in
//!   time order;
//! - [`view`]: the graph as of an instant, indexed for traversal;
//! - [`query`]: who-can, reach, drift and unused, with IAM and RBAC semantics.

pub mod graph;
pub mod intern;
pub mod query;
pub mod view;

pub use graph::{Closed, EdgeKind, OPEN, SnapshotEffect, TrustGraph};
pub use query::{Access, Change, Deny, Drift, Emerged, Grant, Hop, Principal, Reach, Reached, Reason, Unused};
pub use view::View;

/// The live graph, shared: one writer (the pipeline that applies facts as
/// they arrive) and readers that ask it questions as of any time (the
/// console). A poisoned lock still holds a whole graph: every write is a
/// sequence of complete fact applications, so readers go on.
#[derive(Clone, Default)]
pub struct SharedGraph(std::sync::Arc<std::sync::RwLock<TrustGraph>>);

impl SharedGraph {
    pub fn new(graph: TrustGraph) -> Self {
        SharedGraph(std::sync::Arc::new(std::sync::RwLock::new(graph)))
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, TrustGraph> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, TrustGraph> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}
