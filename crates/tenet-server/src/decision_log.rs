//! Writing the decision log off the request path: decisions go into a
//! channel, one thread writes them in batches (one commit per batch, never
//! one disk flush per decision), and closing drains every record already
//! handed over, so a clean shutdown loses no acknowledged decision.

use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tenet_policy::Decision;
use tenet_policy::authzen::Evaluation;
use tenet_store::decisions::{DecisionLogWriter, LoggedDecision};

/// Records per commit at most, and how long a record may wait for company.
const BATCH: usize = 4096;
const LINGER: Duration = Duration::from_millis(20);

/// A decision as the request path hands it over: formatting it for the log
/// (JSON, the reason, the signals) happens on the writer's thread.
pub struct Pending {
    pub at: tenet_model::Timestamp,
    pub request_id: Option<String>,
    pub request: Asked,
    pub decision: Decision,
    pub policy_version: String,
}

/// What was asked: the body as received (a single evaluation: kept by
/// reference, logged verbatim) or the evaluation as parsed (a batch's item).
pub enum Asked {
    Body(axum::body::Bytes),
    Parsed(Box<Evaluation>),
}

pub struct DecisionLog {
    tx: RwLock<Option<Sender<Pending>>>,
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

    pub fn record(&self, d: Pending) {
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

fn write_loop(mut writer: DecisionLogWriter, rx: Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    // Blocks for the first record of a batch, then lets the rest arrive for
    // LINGER without being woken per record (a wake-up per decision costs
    // more than writing it); ends when every sender is gone and all is written.
    while let Ok(first) = rx.recv() {
        batch.push(record_of(first));
        std::thread::sleep(LINGER);
        batch.extend(rx.try_iter().take(BATCH).map(record_of));
        if let Err(e) = writer.append(&batch) {
            tracing::error!(error = %e, records = batch.len(), "decision log write failed; retrying once");
            if let Err(e) = writer.append(&batch) {
                tracing::error!(error = %e, records = batch.len(), "decision log records lost");
            }
        }
        batch.clear();
    }
}

#[derive(serde::Serialize)]
struct EntityOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    properties: &'a tenet_policy::authzen::Properties,
}

#[derive(serde::Serialize)]
struct ActionOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    properties: &'a tenet_policy::authzen::Properties,
}

#[derive(serde::Serialize)]
struct RequestOut<'a> {
    subject: EntityOut<'a>,
    action: ActionOut<'a>,
    resource: EntityOut<'a>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    context: &'a tenet_policy::authzen::Properties,
}

#[derive(serde::Serialize)]
struct ReasonsOut<'a> {
    policies: &'a [String],
    errors: &'a [String],
    reason: String,
    /// The signals decided with (`null`: not available).
    signals: &'a tenet_policy::TrustSignals,
}

/// A decision as the log records it (serialised straight from borrowed
/// parts: no intermediate JSON values).
fn record_of(p: Pending) -> LoggedDecision {
    let Pending { at, request_id, request: asked, decision: d, policy_version } = p;
    fn entity(x: &tenet_policy::authzen::Entity) -> EntityOut<'_> {
        EntityOut { kind: &x.kind, id: &x.id, properties: &x.properties }
    }
    // Serialising borrowed strings and JSON values cannot fail.
    let request = match &asked {
        // `from_utf8` first: checking is several times faster than the
        // lossy conversion's chunking, and bodies are nearly always UTF-8.
        Asked::Body(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        Asked::Parsed(e) => serde_json::to_string(&RequestOut {
            subject: entity(&e.subject),
            action: ActionOut { name: &e.action.name, properties: &e.action.properties },
            resource: entity(&e.resource),
            context: &e.context,
        })
        .unwrap_or_default(),
    };
    let reasons = ReasonsOut { policies: &d.policies, errors: &d.errors, reason: d.reason(), signals: &d.signals };
    LoggedDecision {
        at: at.to_string(),
        request_id,
        request,
        decision: d.allowed,
        policy_version,
        reasons: serde_json::to_string(&reasons).unwrap_or_default(),
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
