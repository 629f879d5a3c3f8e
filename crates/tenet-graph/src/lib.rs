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
