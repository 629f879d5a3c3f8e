//! Tenet's pipeline wiring: sources → credential linking → store, and
//! store → trust graph.
//!
//! The stages themselves live in their crates; this crate only connects
//! them, counts what passes, and reports progress.

pub mod activity;
pub mod analyse;
pub mod ingest;
pub mod link;
pub mod principals;
pub mod trace_link;
pub mod trust;

pub use ingest::{Counts, IngestError, IngestObserver, IngestOptions, IngestReport, Ingestor, Rejection, ingest};
