//! The console's view of the running system ([`tenet_console::Site`]):
//! reads through read-only connections to the store, the live trust graph
//! for who exists, and a person's decision on a finding written as the
//! CLI writes it (its trust changes queued with it), which the pipeline
//! then picks up like any other process's.

use std::path::PathBuf;
use std::sync::Arc;

use tenet_model::{Finding, FindingStatus, TrustNotice};
use tenet_store::{SqliteReader, SqliteStore, StoreReader};

use crate::trust::LiveTrust;

pub struct ConsoleSite {
    pub data_dir: PathBuf,
    pub trust: Arc<LiveTrust>,
    pub changes: tokio::sync::broadcast::Sender<Arc<TrustNotice>>,
}

impl tenet_console::Site for ConsoleSite {
    fn reader(&self) -> Result<Box<dyn StoreReader>, String> {
        SqliteReader::open_dir(&self.data_dir)
            .map(|r| Box::new(r) as Box<dyn StoreReader>)
            .map_err(|e| format!("the store cannot be read: {e}"))
    }

    fn principals(&self) -> Vec<tenet_console::Principal> {
        self.trust.current().principals()
    }

    fn principal(&self, id: &str) -> Option<tenet_console::PrincipalCard> {
        self.trust.current().card(id)
    }

    fn set_finding_status(&self, id: &str, to: FindingStatus, reason: &str, by: &str) -> Result<Finding, String> {
        let mut store =
            SqliteStore::open_dir(&self.data_dir).map_err(|e| format!("the store cannot be opened: {e}"))?;
        let reason = format!("{reason} (by {by}, in the console)");
        tenet_pipeline::analyse::set_status(&mut store, id, to, Some(&reason), &Default::default())
            .map_err(|e| e.to_string())
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<TrustNotice>> {
        self.changes.subscribe()
    }
}
