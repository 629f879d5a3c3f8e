//! Writing the decision log off the request path: decisions go into a
//! channel, one thread writes them in batches (one commit per batch, never
//! one disk flush per decision), and closing drains every record already
//! handed over, so a clean shutdown loses no acknowledged decision.
//!
//! The queue is bounded, in records and in bytes. A request reserves room
//! for every record it could produce *before* anything is decided; a
//! request that cannot reserve is refused (429) undecided. So the queue
//! never grows past its bound, and no answered decision is ever without
//! its place in the log. Room is given back when a record is written (or
//! when a reserved record is not needed: a batch that stopped early).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tenet_policy::Decision;
use tenet_policy::authzen::Evaluation;
use tenet_store::TablesAt;
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

/// Records and bytes queued for the writer (reserved, handed over, or
/// being written), against their bounds.
struct Queue {
    used: Mutex<(usize, usize)>,
    max_records: usize,
    max_bytes: usize,
}

impl Queue {
    fn release(&self, records: usize, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.0 = used.0.saturating_sub(records);
        used.1 = used.1.saturating_sub(bytes);
    }
}

/// Room in the log's queue for up to `records` records, held by a request
/// while it decides; what it does not use goes back when it is dropped.
pub struct Reservation {
    queue: Option<Arc<Queue>>,
    records: usize,
    bytes: usize,
}

impl Reservation {
    /// Room that needs no queue (a decision point without a log).
    pub fn unlimited() -> Self {
        Reservation { queue: None, records: 0, bytes: 0 }
    }

    /// One record's share of what is left.
    fn take_one(&mut self) -> Option<usize> {
        self.queue.as_ref()?;
        if self.records == 0 {
            return None;
        }
        let share = self.bytes / self.records;
        self.records -= 1;
        self.bytes -= share;
        Some(share)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.release(self.records, self.bytes);
        }
    }
}

/// The queue is full: nothing may be decided until the writer catches up.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the decision log's queue is full ({queued_records} of {max_records} records, {queued_bytes} of {max_bytes} bytes waiting to be written); this request needs room for {records} records and {bytes} bytes"
)]
pub struct QueueFull {
    pub records: usize,
    pub bytes: usize,
    pub queued_records: usize,
    pub queued_bytes: usize,
    pub max_records: usize,
    pub max_bytes: usize,
}

/// A handed-over record and the queue bytes it holds until written.
struct Queued {
    pending: Pending,
    bytes: usize,
}

/// What was asked: the body as received (a single evaluation: kept by
/// reference, logged verbatim) or the evaluation as parsed (a batch's item).
pub enum Asked {
    Body(axum::body::Bytes),
    Parsed(Box<Evaluation>),
}

pub struct DecisionLog {
    tx: RwLock<Option<Sender<Queued>>>,
    queue: Arc<Queue>,
    closing: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DecisionLog {
    /// Opens (creating) the log at `at` and starts its writer, with a
    /// queue of at most `max_records` records holding `max_bytes` bytes.
    pub fn open(at: &TablesAt, max_records: usize, max_bytes: usize) -> Result<Self, tenet_store::StoreError> {
        let writer = DecisionLogWriter::open(at)?;
        let max_records = max_records.max(1);
        let queue = Arc::new(Queue { used: Mutex::new((0, 0)), max_records, max_bytes });
        // Reservations keep what is queued within `max_records`, so a send never waits.
        let (tx, rx) = crossbeam_channel::bounded(max_records);
        let closing = Arc::new(AtomicBool::new(false));
        let (q, c) = (queue.clone(), closing.clone());
        let handle = std::thread::Builder::new()
            .name("tenet-decision-log".into())
            .spawn(move || write_loop(writer, rx, &q, &c))
            .map_err(|e| tenet_store::StoreError::DataDir { path: at.to_string(), source: e })?;
        Ok(DecisionLog { tx: RwLock::new(Some(tx)), queue, closing, writer: Mutex::new(Some(handle)) })
    }

    /// Room for `records` records holding `bytes` bytes in all, or why not.
    pub fn reserve(&self, records: usize, bytes: usize) -> Result<Reservation, QueueFull> {
        let q = &self.queue;
        let mut used = q.used.lock().unwrap_or_else(|p| p.into_inner());
        let fits = used.0.saturating_add(records) <= q.max_records && used.1.saturating_add(bytes) <= q.max_bytes;
        if !fits {
            return Err(QueueFull {
                records,
                bytes,
                queued_records: used.0,
                queued_bytes: used.1,
                max_records: q.max_records,
                max_bytes: q.max_bytes,
            });
        }
        used.0 += records;
        used.1 += bytes;
        Ok(Reservation { queue: Some(q.clone()), records, bytes })
    }

    /// Hands `d` to the writer in room `slot` reserved for it.
    pub fn record(&self, slot: &mut Reservation, d: Pending) {
        let Some(bytes) = slot.take_one() else {
            // Deciding without room is a bug in the caller; the record is
            // still written (the send may wait), never dropped.
            tracing::error!("a decision was logged without reserved room in the queue");
            self.queue.used.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
            return self.send(Queued { pending: d, bytes: 0 });
        };
        self.send(Queued { pending: d, bytes });
    }

    fn send(&self, q: Queued) {
        if let Some(tx) = &*self.tx.read().unwrap_or_else(|p| p.into_inner()) {
            // The writer only stops after `close`; a send cannot fail before.
            let _ = tx.send(q);
        } else {
            tracing::error!("a decision was answered after the log closed: not recorded");
        }
    }

    /// Records and bytes waiting to be written.
    pub fn queued(&self) -> (usize, usize) {
        *self.queue.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops accepting records and waits until every one is written.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
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

/// Attempts at a failing write once the log is closing (before, it retries
/// for as long as it takes: the full queue refuses new decisions meanwhile).
const ATTEMPTS_WHEN_CLOSING: u32 = 5;

fn write_loop(mut writer: DecisionLogWriter, rx: Receiver<Queued>, queue: &Queue, closing: &AtomicBool) {
    let mut batch = Vec::with_capacity(BATCH);
    // Blocks for the first record of a batch, then lets the rest arrive for
    // LINGER without being woken per record (a wake-up per decision costs
    // more than writing it); ends when every sender is gone and all is written.
    while let Ok(first) = rx.recv() {
        let mut bytes = first.bytes;
        batch.push(record_of(first.pending));
        std::thread::sleep(LINGER);
        batch.extend(rx.try_iter().take(BATCH).map(|q| {
            bytes += q.bytes;
            record_of(q.pending)
        }));
        // A failed write keeps its records and tries again: they stay
        // queued, so when the disk is gone the queue fills and the server
        // stops deciding instead of deciding unlogged.
        let mut wait = Duration::from_millis(100);
        let mut attempts = 0u32;
        while let Err(e) = writer.append(&batch) {
            attempts += 1;
            if closing.load(Ordering::Acquire) && attempts >= ATTEMPTS_WHEN_CLOSING {
                tracing::error!(error = %e, records = batch.len(), "decision log records lost: the log cannot be written and the server is stopping");
                break;
            }
            tracing::error!(error = %e, records = batch.len(), attempts, "decision log write failed; retrying");
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        queue.release(batch.len(), bytes);
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

/// Where each activated policy version is recorded (beside the decision
/// log, its own connection: activations are rare).
pub struct PolicyHistory {
    at: TablesAt,
}

impl PolicyHistory {
    pub fn new(at: &TablesAt) -> Self {
        PolicyHistory { at: at.clone() }
    }

    pub fn record(&self, bundle: &tenet_policy::PolicyBundle, diff: &str, author: &str) {
        let files = serde_json::to_string(bundle.files()).unwrap_or_default();
        let result = DecisionLogWriter::open(&self.at)
            .and_then(|mut w| w.policy_version(bundle.version(), &now_rfc3339(), author, diff, &files));
        if let Err(e) = result {
            tracing::error!(error = %e, version = bundle.version(), "policy version not recorded");
        }
    }
}
