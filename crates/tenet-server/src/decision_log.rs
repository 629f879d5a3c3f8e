//! Writing the decision log off the request path: decisions go into a
//! channel, one thread writes them in batches (one commit per batch, never
//! one disk flush per decision), and closing drains every record already
//! handed over, so a clean shutdown loses no acknowledged decision.

use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::json;
use tenet_policy::Decision;
use tenet_policy::authzen::Evaluation;
use tenet_store::decisions::{DecisionLogWriter, LoggedDecision};

/// Records per commit at most, and how long a record may wait for company.
const BATCH: usize = 4096;
const LINGER: Duration = Duration::from_millis(20);

pub struct DecisionLog {
    tx: RwLock<Option<Sender<LoggedDecision>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DecisionLog {
    /// Opens (creating) the log at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Self, tenet_store::StoreError> {
        let writer = DecisionLogWriter::open(path)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = std::thread::Builder::new()
            .name("tenet-decision-log".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| tenet_store::StoreError::DataDir { path: path.display().to_string(), source: e })?;
        Ok(DecisionLog { tx: RwLock::new(Some(tx)), writer: Mutex::new(Some(handle)) })
    }

    pub fn record(&self, d: LoggedDecision) {
        if let Some(tx) = &*self.tx.read().unwrap_or_else(|p| p.into_inner()) {
            // The writer only stops after `close`; a send cannot fail before.
            let _ = tx.send(d);
        }
    }

    /// Stops accepting records and waits until every one is written.
    pub fn close(&self) {
        self.tx.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(mut writer: DecisionLogWriter, rx: Receiver<LoggedDecision>) {
    let mut batch = Vec::with_capacity(BATCH);
    // Blocks for the first record of each batch; ends when every sender is gone and the channel is empty.
    while let Ok(first) = rx.recv() {
        batch.push(first);
        let deadline = Instant::now() + LINGER;
        while batch.len() < BATCH {
            match rx.recv_deadline(deadline) {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        if let Err(e) = writer.append(&batch) {
            tracing::error!(error = %e, records = batch.len(), "decision log write failed; retrying once");
            if let Err(e) = writer.append(&batch) {
                tracing::error!(error = %e, records = batch.len(), "decision log records lost");
            }
        }
        batch.clear();
    }
}

/// A decision as the log records it.
pub fn record_of(e: &Evaluation, d: &Decision, version: &str, request_id: Option<&str>) -> LoggedDecision {
    {
        let entity =
            |x: &tenet_policy::authzen::Entity| json!({"type": x.kind, "id": x.id, "properties": x.properties});
        LoggedDecision {
            at: now_rfc3339(),
            request_id: request_id.map(str::to_string),
            request: json!({
                "subject": entity(&e.subject),
                "action": {"name": e.action.name, "properties": e.action.properties},
                "resource": entity(&e.resource),
                "context": e.context,
            })
            .to_string(),
            decision: d.allowed,
            policy_version: version.to_string(),
            reasons:
                json!({"policies": d.policies, "errors": d.errors, "reason": d.reason(), "signals": d.signals.to_json()})
                    .to_string(),
        }
    }
}

pub fn now_rfc3339() -> String {
    tenet_model::Timestamp::now().to_string()
}

/// Where each activated policy version is recorded (the decision log's
/// file, its own connection: activations are rare).
pub struct PolicyHistory {
    path: std::path::PathBuf,
}

impl PolicyHistory {
    pub fn new(path: &Path) -> Self {
        PolicyHistory { path: path.to_path_buf() }
    }

    pub fn record(&self, bundle: &tenet_policy::PolicyBundle, diff: &str, author: &str) {
        let files = serde_json::to_string(bundle.files()).unwrap_or_default();
        let result = DecisionLogWriter::open(&self.path)
            .and_then(|mut w| w.policy_version(bundle.version(), &now_rfc3339(), author, diff, &files));
        if let Err(e) = result {
            tracing::error!(error = %e, version = bundle.version(), "policy version not recorded");
        }
    }
}
