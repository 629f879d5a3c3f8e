//! The live pipeline: one thread owns the store's writer, the learner, the
//! trust graph and the live trust state, and takes work from a bounded
//! queue (HTTP bodies already parsed, watched files, the simulator,
//! inventory). For each delivery it links, stores and commits, answers the
//! sender (acknowledged means committed), then analyses the new events in
//! memory: the findings, risk and graph change at once, a new trust
//! snapshot is published to the decision point, and every trust change goes
//! out on the change stream. Nothing is rebuilt from the store on a timer.
//!
//! Live analysis takes deliveries in the order they are committed, each
//! sorted by time: a source that delivers late (CloudTrail's files come
//! minutes after the fact) is analysed when it arrives; the learner's
//! sketches treat time that goes backwards as the present. The learner's
//! state is saved with its watermark every [`SAVE_EVERY`] and on stop; a
//! service killed in between re-analyses from the last save on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tenet_graph::EdgeKind;
use tenet_learn::Learner;
use tenet_model::{
    Event, Finding, FindingStatus, NoticeChange, PrincipalKind, PrincipalVerdict, RiskLevel, Severity, Timestamp,
    TrustNotice, Verdict,
};
use tenet_pipeline::analyse::{AnalyseError, Analysis};
use tenet_pipeline::ingest::{Counts, IngestReport, Rejection};
use tenet_pipeline::link::{self, CredentialLinker};
use tenet_pipeline::trust::{ImportReport, InventoryFile};
use tenet_policy::signals::OpenFindings;
use tenet_server::StatusBoard;
use tenet_server::intake::{Accepted, Answer, Refusal};
use tenet_sigma::RuleSet;
use tenet_store::{EventStore, FindingQuery, PreparedBatch, UseTally};
use tokio::sync::{broadcast, oneshot};

use crate::trust::{LiveTrust, TrustSnapshot, risk_of};

/// The learner's state is saved with its watermark this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);
/// A cluster node saves its partitions' learners this often: other nodes
/// read them for their decisions (novelty, authentication), and a new
/// owner re-analyses from there.
pub const PARTITION_SAVE_EVERY: Duration = Duration::from_secs(10);
/// A cluster node looks for learners other nodes saved this often.
const OTHERS_LEARNERS_EVERY: Duration = Duration::from_secs(2);
/// Observed use is written to the store this often (CLI queries read it).
const USE_EVERY: Duration = Duration::from_secs(1);
/// Commits by other processes (the CLI) are looked for this often.
const OTHERS_EVERY: Duration = Duration::from_millis(250);
/// The learner the decision point reads (novelty, authentication) is
/// copied at most this often; risk, findings and the graph at every change.
const LEARNER_EVERY: Duration = Duration::from_millis(500);
/// What other nodes' learners sent is handed to the decision point this
/// often (it is copied each time: a partition's index, whole).
const ELSEWHERE_EVERY: Duration = Duration::from_millis(200);
/// Trust changes kept for a slow reader of the stream before it is told
/// how many it missed.
pub const CHANGES_BUFFER: usize = 4096;

/// Events parsed from one delivery, with the records that could not be,
/// and where its sender waits for the answer.
pub struct Delivered {
    pub origin: String,
    pub format: &'static str,
    pub events: Vec<Event>,
    pub rejections: Vec<Rejection>,
    /// For OTLP: spans in the export (rejected = spans − events).
    pub spans: Option<usize>,
    pub reply: Option<oneshot::Sender<Answer>>,
}

/// One unit of work for the pipeline thread.
pub enum Work {
    /// A delivery's events, to store and analyse.
    Events(Delivered),
    /// Inventory documents collected at `at`.
    Inventory { files: Vec<InventoryFile>, at: Timestamp, reply: Option<oneshot::Sender<Answer>> },
    /// An administrator's verdict on the principal `name` resolves to.
    Verdict {
        name: String,
        verdict: Verdict,
        reason: String,
        by: String,
        reply: oneshot::Sender<Result<PrincipalVerdict, tenet_server::principals::Refusal>>,
    },
    /// Events a partition's reader took from the event stream (cluster
    /// mode): stored in that partition and analysed by its learner; the
    /// answer comes once committed, and only then are they acknowledged
    /// to the stream.
    /// Each run is one delivery's events in this partition.
    Partition { part: u32, runs: Vec<Vec<Event>>, reply: oneshot::Sender<Result<(), String>> },
    /// This node now owns `part`: load its learner and analyse what its
    /// previous owner stored and did not analyse.
    Own { part: u32, reply: oneshot::Sender<Result<(), String>> },
    /// This node gives `part` up: its learner is saved and dropped.
    Release { part: u32, reply: oneshot::Sender<()> },
    /// What another node committed: applied to this node's live state.
    Remote(Box<crate::cluster::NodeUpdate>),
    /// Risk and open findings read again from the store (a node died, and
    /// its last commit may not have reached the trust stream).
    Resync,
    /// A trust change an upstream transmitter reported (a verified SET).
    /// `key` identifies the SET: a retried one changes trust once.
    Relay {
        key: String,
        principal: String,
        at: Timestamp,
        change: NoticeChange,
        reply: oneshot::Sender<Result<Option<u64>, String>>,
    },
}

impl Work {
    /// What the work holds in memory while queued (for the byte bound).
    fn weight(&self) -> usize {
        match self {
            Work::Events(d) => d.events.iter().map(|e| e.raw.0.len() + 512).sum(),
            Work::Inventory { files, .. } => files.iter().map(|f| f.data.len()).sum(),
            Work::Verdict { name, reason, .. } => name.len() + reason.len() + 256,
            Work::Relay { principal, .. } => principal.len() + 512,
            Work::Partition { .. } | Work::Own { .. } | Work::Release { .. } | Work::Remote(_) | Work::Resync => 0,
        }
    }
}

/// Where work enters the pipeline: bounded in items and bytes. On a
/// cluster node, events go to the event stream instead (see
/// [`crate::cluster::Publisher`]), and come back through the reader of
/// their partition, on whichever node owns it.
#[derive(Clone)]
pub struct Inlet {
    tx: SyncSender<(Work, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    metrics: Arc<crate::metrics::ServiceMetrics>,
    publisher: Option<Arc<crate::cluster::Publisher>>,
}

impl Inlet {
    /// This inlet, its events published to the cluster's event stream.
    pub fn publishing_to(mut self, publisher: Arc<crate::cluster::Publisher>) -> Inlet {
        self.publisher = Some(publisher);
        self
    }

    /// Queues work a partition's reader or the cluster's ownership loop
    /// hands over, waiting for room: never refused, never counted against
    /// the intake's bounds (the stream holds what waits).
    pub fn submit_partition_work(&self, work: Work) -> Result<(), Refusal> {
        self.tx
            .send((work, 0))
            .map_err(|_| Refusal::Unavailable { message: "the pipeline has stopped".into(), retry_after: 5 })
    }

    /// Queues `work`, or refuses at once when the queue is full (429).
    pub fn try_submit(&self, work: Work) -> Result<(), Refusal> {
        let work = match (&self.publisher, work) {
            (Some(p), Work::Events(delivered)) => return p.try_publish(delivered),
            (_, work) => work,
        };
        let w = work.weight();
        if self.queued_bytes.fetch_add(w, Ordering::AcqRel) + w > self.max_bytes {
            self.queued_bytes.fetch_sub(w, Ordering::AcqRel);
            self.metrics.rejected_busy();
            return Err(Refusal::Busy { retry_after: 1 });
        }
        match self.tx.try_send((work, w)) {
            Ok(()) => {
                self.metrics.queued(1);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(w, Ordering::AcqRel);
                self.metrics.rejected_busy();
                Err(Refusal::Busy { retry_after: 1 })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued_bytes.fetch_sub(w, Ordering::AcqRel);
                Err(Refusal::Unavailable { message: "the pipeline has stopped".into(), retry_after: 5 })
            }
        }
    }

    /// Queues `work`, waiting for room: for trusted in-process inputs (the
    /// simulator, watched folders) that should be paced, not refused.
    pub fn submit_waiting(&self, work: Work) -> Result<(), Refusal> {
        let work = match (&self.publisher, work) {
            (Some(p), Work::Events(delivered)) => return p.publish_waiting(delivered),
            (_, work) => work,
        };
        let w = work.weight();
        self.queued_bytes.fetch_add(w, Ordering::AcqRel);
        self.metrics.queued(1);
        self.tx.send((work, w)).map_err(|_| {
            self.queued_bytes.fetch_sub(w, Ordering::AcqRel);
            Refusal::Unavailable { message: "the pipeline has stopped".into(), retry_after: 5 }
        })
    }
}

/// What the pipeline thread publishes beside the trust snapshot.
pub struct Outlets {
    pub trust: Arc<LiveTrust>,
    pub changes: broadcast::Sender<Arc<TrustNotice>>,
    pub status: Arc<StatusBoard>,
    pub metrics: Arc<crate::metrics::ServiceMetrics>,
    /// The live trust graph, for readers asking it about any moment.
    pub graph: tenet_graph::SharedGraph,
    /// Each telemetry source's volume and last event.
    pub coverage: crate::coverage::SharedCoverage,
}

/// The running pipeline thread.
pub struct LivePipeline {
    pub inlet: Inlet,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LivePipeline {
    /// Catches up on anything stored but not analysed (a restart), then
    /// runs. The store is this thread's: the one writer.
    pub fn start(
        mut store: Box<dyn EventStore>,
        rules: Arc<RuleSet>,
        config: tenet_learn::Config,
        outlets: Outlets,
        queue: usize,
        queue_bytes: usize,
        link: Option<crate::cluster::ClusterLink>,
    ) -> Result<LivePipeline, crate::ServiceError> {
        let partitioned = link.is_some();
        // What was known before catching up: what catching up finds anew
        // is announced like any other change (events stored just before a
        // crash, never analysed, must not change trust silently).
        let known_before = known_alerts_and_levels(&*store)?;
        // A cluster node catches up partition by partition, as it comes to
        // own each (`Work::Own`).
        let caught_up = if partitioned {
            Default::default()
        } else {
            tenet_pipeline::analyse::analyse(&mut *store, &rules, &config)?
        };
        if caught_up.events > 0 {
            tracing::info!(events = caught_up.events, "analysed what was stored since the last run");
        }
        let state = if partitioned {
            None
        } else {
            store.analysis_state().map_err(crate::ServiceError::store("reading the analysis state"))?
        };
        let learner = match &state {
            Some(s) if !s.learner.is_empty() => serde_json::from_slice::<Learner>(&s.learner)
                .map_err(|e| crate::ServiceError::Trust(AnalyseError::State(e.to_string())))?,
            _ => Learner::new(config.clone()),
        };
        let (events_seq, snapshot_id) = state.as_ref().map_or((0, 0), |s| (s.events_seq, s.snapshot_id));
        let reader = store.reader().map_err(crate::ServiceError::store("opening a reader"))?;
        let snapshots = reader.snapshots().map_err(crate::ServiceError::store("reading snapshots"))?;
        let last_snapshot = snapshots.iter().map(|s| s.id).max().unwrap_or(0);
        // Observed use is part of the graph: counted up to the last event
        // stored, then kept current as events are analysed.
        store.refresh_use().map_err(crate::ServiceError::store("counting observed use"))?;
        let tally =
            UseTally::after(store.use_watermark().map_err(crate::ServiceError::store("counting observed use"))?);
        let mut graph =
            tenet_pipeline::trust::load_graph(&*reader).map_err(crate::ServiceError::store("building the graph"))?;
        graph.journal_closures();
        let first = TrustSnapshot::read_with(&*store, &graph, Some(Arc::new(learner.clone())))?;
        *outlets.graph.write() = graph;
        // Coverage counts hours back to a week and a day before the newest event.
        let newest = reader.time_range().map_err(crate::ServiceError::store("reading the event times"))?;
        let since = newest.map_or(Timestamp::MIN, |(_, hi)| hi.saturating_add_seconds(-8 * 86_400));
        let volumes =
            reader.source_volumes(since).map_err(crate::ServiceError::store("counting each source's events"))?;
        *outlets.coverage.lock().unwrap_or_else(|p| p.into_inner()) = crate::coverage::Coverage::from_store(volumes);
        let graph = outlets.graph.clone();
        outlets.trust.publish(first.clone());
        drop(reader);
        let (alerts, levels) = known_alerts_and_levels(&*store)?;
        let mut last_notice =
            store.last_notice().map_err(crate::ServiceError::store("reading the trust notice log"))?;
        if caught_up.events > 0 {
            let found = caught_up_notices(&*store, &known_before, (&alerts, &levels), &first, last_notice)?;
            if !found.is_empty() {
                let mut found = found;
                store
                    .number_notices(&mut found)
                    .and_then(|()| store.put_notices(&found))
                    .map_err(crate::ServiceError::store("recording trust notices"))?;
                store.commit().map_err(crate::ServiceError::store("recording trust notices"))?;
                last_notice += found.len() as u64;
                tracing::info!(notices = found.len(), "trust changes found while catching up are announced");
            }
        }
        let others = store.others_commits().map_err(crate::ServiceError::store("reading the store's version"))?;
        let mut compromised = std::collections::HashSet::new();
        for v in store.verdicts(false).map_err(crate::ServiceError::store("reading verdicts"))? {
            match v.verdict {
                Verdict::Compromised => compromised.insert(v.principal),
                Verdict::Dismissed => compromised.remove(&v.principal),
            };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(queue.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = outlets.metrics.clone();
        let mut pipeline = Pipeline {
            config,
            partitioned,
            learners_changed: Default::default(),
            unsaved_parts: Default::default(),
            batch: None,
            published_learners: BTreeMap::new(),
            others_learners: BTreeMap::new(),
            others_read: Instant::now(),
            link,
            outgoing: Default::default(),
            elsewhere: BTreeMap::new(),
            elsewhere_changed: Default::default(),
            published_elsewhere: BTreeMap::new(),
            outgoing_uses: HashMap::new(),
            parts: BTreeMap::new(),
            store,
            linker: CredentialLinker::default(),
            traces: Default::default(),
            analysis: Analysis::new(learner, Vec::new(), events_seq, snapshot_id),
            rules,
            graph,
            tally,
            use_recorded: Instant::now(),
            snapshot: first,
            outlets,
            seq: last_notice,
            alerts,
            levels,
            compromised,
            last_snapshot,
            others,
            learner_copied: Instant::now(),
            elsewhere_copied: Instant::now(),
            learner_changed: false,
            saved: Instant::now(),
            unsaved: false,
            seen: Seen::default(),
            queued_bytes: queued_bytes.clone(),
            queue_unannounced: false,
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tenet-pipeline".into())
                .spawn(move || pipeline.run(rx, &stop))
                .map_err(crate::ServiceError::io("starting the pipeline thread"))?
        };
        Ok(LivePipeline {
            inlet: Inlet { tx, queued_bytes, max_bytes: queue_bytes.max(1), metrics, publisher: None },
            stop,
            thread: Some(thread),
        })
    }

    /// Finishes the work already queued, saves the learner and stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // The queue's sender lives on in clones held by the HTTP edge; the
        // thread sees the flag within one poll.
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the pipeline thread panicked");
        }
    }
}

type Known2 = (HashMap<String, Known>, HashMap<String, RiskLevel>);

/// Alerting findings by id and each principal's latest risk level, as stored.
fn known_alerts_and_levels(store: &dyn EventStore) -> Result<Known2, crate::ServiceError> {
    let reader = store.reader().map_err(crate::ServiceError::store("opening a reader"))?;
    let alerts = reader
        .findings(&FindingQuery::default())
        .map_err(crate::ServiceError::store("reading findings"))?
        .into_iter()
        .filter(|f| f.is_alert())
        .map(|f| (f.id.clone(), Known::of(&f)))
        .collect();
    let levels = reader
        .risk(None)
        .map_err(crate::ServiceError::store("reading risk"))?
        .into_iter()
        .map(|p| (p.principal, p.level))
        .collect();
    Ok((alerts, levels))
}

/// The notices for what catching up changed: alerts opened, risk levels crossed.
fn caught_up_notices(
    store: &dyn EventStore,
    before: &Known2,
    after: (&HashMap<String, Known>, &HashMap<String, RiskLevel>),
    names: &TrustSnapshot,
    last: u64,
) -> Result<Vec<TrustNotice>, crate::ServiceError> {
    let reader = store.reader().map_err(crate::ServiceError::store("opening a reader"))?;
    let mut notices = Vec::new();
    let mut next = |at: Timestamp, principal: &str, change: NoticeChange| {
        notices.push(TrustNotice {
            seq: last + notices.len() as u64 + 1,
            at,
            principal: principal.to_string(),
            change,
        });
    };
    let opened = after.0.iter().filter(|(id, k)| {
        k.status == FindingStatus::Open && before.0.get(*id).is_none_or(|b| b.status != FindingStatus::Open)
    });
    let mut opened: Vec<&String> = opened.map(|(id, _)| id).collect();
    opened.sort();
    for id in opened {
        if let Some(f) = reader.finding(id).map_err(crate::ServiceError::store("reading findings"))? {
            let change =
                NoticeChange::FindingOpened { finding: f.id.clone(), category: f.category, severity: f.severity };
            next(f.last_seen, names.canonical_of(&f.principal), change);
        }
    }
    let mut crossed: Vec<(&String, &RiskLevel)> =
        after.1.iter().filter(|(p, l)| before.1.get(*p).copied().unwrap_or(RiskLevel::Low) != **l).collect();
    crossed.sort();
    for (p, to) in crossed {
        let from = before.1.get(p).copied().unwrap_or(RiskLevel::Low);
        let point = reader.risk(Some(p)).map_err(crate::ServiceError::store("reading risk"))?.pop();
        let (at, score) = point.map_or((Timestamp::now(), 0), |pt| (pt.at, pt.score));
        next(at, names.canonical_of(p), NoticeChange::RiskLevel { from, to: *to, score });
    }
    Ok(notices)
}

/// What the pipeline knows of an alerting finding.
#[derive(Clone, PartialEq)]
struct Known {
    principal: String,
    status: FindingStatus,
    severity: Severity,
}

impl Known {
    fn of(f: &Finding) -> Self {
        Known { principal: f.principal.clone(), status: f.status, severity: f.severity }
    }
}

/// What the status page shows since the service started, kept by the
/// pipeline thread.
#[derive(Default)]
struct Seen {
    events: u64,
    rejected: u64,
    principals: HashMap<String, PrincipalKind>,
    formats: BTreeMap<String, u64>,
    clock: Option<Timestamp>,
    snapshots: u64,
    opened: u64,
    closed: u64,
}

/// A partition's batch, stored and analysed in one transaction.
#[derive(Default)]
struct Batch {
    /// Notices to announce once it is committed.
    notices: Vec<TrustNotice>,
    /// Why it cannot be committed (a step failed and rolled it back).
    failed: Option<String>,
}

/// A use: (principal, action, resource); counted with its first and last time.
type UseKey = (String, String, Option<String>);

struct Pipeline {
    config: tenet_learn::Config,
    /// A cluster node: analysis is by partition, for those it owns.
    partitioned: bool,
    /// On a cluster node, owned partitions whose learner changed since it
    /// was last copied for the decision point.
    learners_changed: std::collections::BTreeSet<u32>,
    /// On a cluster node, owned partitions analysed since their last save.
    unsaved_parts: std::collections::BTreeSet<u32>,
    /// A partition's batch being stored and analysed.
    batch: Option<Batch>,
    /// On a cluster node, each known partition's learner as the decision
    /// point reads it.
    published_learners: BTreeMap<u32, Arc<Learner>>,
    /// Other nodes' partitions: the watermark their learner was read at.
    others_learners: BTreeMap<u32, i64>,
    others_read: Instant,
    /// On a cluster node, where what it commits goes out to the others.
    link: Option<crate::cluster::ClusterLink>,
    /// What the next commit changes, for the other nodes.
    outgoing: crate::cluster::NodeUpdate,
    /// On a cluster node, what the learners of partitions others own
    /// learned since this node read them (`published_learners`), as sent.
    elsewhere: BTreeMap<u32, tenet_learn::KnowledgeIndex>,
    elsewhere_changed: std::collections::BTreeSet<u32>,
    published_elsewhere: BTreeMap<u32, Arc<tenet_learn::KnowledgeIndex>>,
    /// Use seen since the last update.
    outgoing_uses: HashMap<UseKey, (Timestamp, Timestamp, u64)>,
    /// On a cluster node, each owned partition's analysis (the one being
    /// worked on is swapped into `analysis` meanwhile).
    parts: BTreeMap<u32, Analysis>,
    store: Box<dyn EventStore>,
    linker: CredentialLinker,
    traces: tenet_pipeline::trace_link::TraceLinker,
    analysis: Analysis,
    rules: Arc<RuleSet>,
    /// Written here only; shared with the console's readers.
    graph: tenet_graph::SharedGraph,
    /// Observed use analysed and not yet written to the store.
    tally: UseTally,
    use_recorded: Instant,
    snapshot: TrustSnapshot,
    outlets: Outlets,
    seq: u64,
    /// Alerting findings by id: their status and severity as last known.
    alerts: HashMap<String, Known>,
    /// Each principal's risk level as last published.
    levels: HashMap<String, RiskLevel>,
    /// Principals an administrator confirmed compromised (canonical
    /// references): their risk stays critical until dismissed.
    compromised: std::collections::HashSet<String>,
    last_snapshot: i64,
    others: i64,
    learner_copied: Instant,
    elsewhere_copied: Instant,
    learner_changed: bool,
    saved: Instant,
    unsaved: bool,
    seen: Seen,
    queued_bytes: Arc<AtomicUsize>,
    /// Queued trust changes whose notices failed to be stored after the
    /// live state had followed them: the next attempt announces them as
    /// recorded (the live state no longer shows them as different).
    queue_unannounced: bool,
}

impl Pipeline {
    fn run(&mut self, rx: Receiver<(Work, usize)>, stop: &AtomicBool) {
        // Verdicts and finding decisions recorded by the CLI while no
        // service ran, or just before this one crashed.
        if self.store_wide_duties() {
            self.apply_pending_verdicts();
            if let Err(e) = self.announce_queued(true) {
                tracing::warn!(error = %e, "queued trust notices not read; trying again");
            }
        }
        let mut last_others = Instant::now();
        let mut others_failing = false;
        loop {
            match rx.recv_timeout(OTHERS_EVERY) {
                Ok((work, weight)) => {
                    self.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
                    self.outlets.metrics.queued(-1);
                    self.handle(work);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_others.elapsed() >= OTHERS_EVERY {
                last_others = Instant::now();
                // Said once when it starts failing (a store outage would
                // say it four times a second) and once when it recovers.
                match self.notice_others() {
                    Err(e) if !others_failing => {
                        others_failing = true;
                        tracing::warn!(error = %e, "changes made by another process not read; trying again");
                    }
                    Ok(()) if others_failing => {
                        others_failing = false;
                        tracing::info!("changes made by another process read again");
                    }
                    _ => {}
                }
                self.publish_learner(false);
                self.outlets.metrics.tick();
            }
            if self.use_recorded.elapsed() >= USE_EVERY {
                self.record_use();
            }
            if self.partitioned && self.others_read.elapsed() >= OTHERS_LEARNERS_EVERY {
                self.others_read = Instant::now();
                self.read_others_learners();
            }
            let save_every = if self.partitioned { PARTITION_SAVE_EVERY } else { SAVE_EVERY };
            if self.unsaved && self.saved.elapsed() >= save_every {
                self.save();
            }
            if stop.load(Ordering::Acquire) {
                // Finish what was acknowledged into the queue, then stop.
                while let Ok((work, weight)) = rx.try_recv() {
                    self.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
                    self.outlets.metrics.queued(-1);
                    self.handle(work);
                }
                break;
            }
        }
        self.record_use();
        if self.unsaved {
            self.save();
        }
    }

    /// Writes the observed use tallied since the last write. (A cluster
    /// node writes each partition batch's use in the batch's transaction
    /// instead: see `store_partition`.)
    fn record_use(&mut self) {
        self.use_recorded = Instant::now();
        if self.partitioned || self.tally.is_empty() {
            return;
        }
        match self.store.record_use(&self.tally) {
            Ok(()) => self.tally = UseTally::after(self.tally.through()),
            Err(e) => {
                // Kept, and written with the next tally's.
                self.store.rollback();
                tracing::warn!(error = %e, "observed use not written; trying again");
            }
        }
    }

    fn handle(&mut self, work: Work) {
        match work {
            Work::Events(Delivered { origin, format, events, rejections, spans, reply }) => {
                let answer = self.store_events(&origin, format, events, rejections, spans);
                if let Some(r) = reply {
                    let _ = r.send(answer);
                }
            }
            Work::Inventory { files, at, reply } => {
                let answer = self.import(files, at);
                if let Some(r) = reply {
                    let _ = r.send(answer);
                }
            }
            Work::Verdict { name, verdict, reason, by, reply } => {
                let _ = reply.send(self.verdict(&name, verdict, reason, by));
            }
            Work::Partition { part, runs, reply } => {
                let _ = reply.send(self.store_partition(part, runs));
            }
            Work::Own { part, reply } => {
                let _ = reply.send(self.own(part));
            }
            Work::Release { part, reply } => {
                self.release(part);
                let _ = reply.send(());
            }
            Work::Remote(update) => self.apply_remote(*update),
            Work::Resync => self.resync(),
            Work::Relay { key, principal, at, change, reply } => {
                let who = self.snapshot.canonical_of(&principal).to_string();
                let numbered = self.seq;
                let result = (|| -> Result<Option<TrustNotice>, tenet_store::StoreError> {
                    if !self.store.first_time(&key)? {
                        return Ok(None);
                    }
                    let mut notice = [self.notice(at, &who, change)];
                    self.record_notices(&mut notice)?;
                    self.store.commit()?;
                    let [notice] = notice;
                    Ok(Some(notice))
                })();
                match result {
                    Ok(notice) => {
                        let seq = notice.as_ref().map(|n| n.seq);
                        if self.link.is_some() {
                            self.outgoing.trust.notices.extend(notice.iter().cloned());
                        }
                        self.announce(notice.into_iter().collect());
                        self.send_update();
                        let _ = reply.send(Ok(seq));
                    }
                    Err(e) => {
                        self.store.rollback();
                        self.seq = numbered;
                        let _ = reply.send(Err(format!("the store failed: {e}")));
                    }
                }
            }
        }
    }

    /// Links, stores and commits one delivery, then analyses what was new.
    fn store_events(
        &mut self,
        origin: &str,
        format: &'static str,
        mut events: Vec<Event>,
        rejections: Vec<Rejection>,
        spans: Option<usize>,
    ) -> Answer {
        let read = events.len() as u64;
        let received = Instant::now();
        let stored = (|| -> Result<_, tenet_store::StoreError> {
            // Agent spans whose ancestors came in another delivery, then
            // sessions whose credentials another event minted.
            let late_children = self.traces.link_batch(&mut events);
            let fresh = self.linker.link_batch(&*self.store, &mut events)?;
            if self.link.is_some() {
                self.outgoing.issued.extend(fresh.iter().map(|(cred, _)| cred.clone()));
            }
            let (batch, events) = PreparedBatch::keeping(events);
            let appended = if batch.is_empty() { Default::default() } else { self.store.append(batch)? };
            let mut completed = link::relink_stored(&mut *self.store, &fresh)?;
            for mut child in late_children {
                child.known = self.store.relink(&child.event, child.known)?;
                if child.known < child.event.principals().count() {
                    completed.push(child);
                }
            }
            self.commit()?;
            Ok((appended, events, completed))
        })();
        let (appended, events, completed) = match stored {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, %origin, "a delivery could not be stored");
                // Whatever the failed transaction held is gone with it.
                self.store.rollback();
                return Err(Refusal::Unavailable { message: format!("the store failed: {e}"), retry_after: 5 });
            }
        };
        let rejected = rejections.len() as u64;
        self.outlets.metrics.ingested(format, appended.stored, appended.duplicates, rejected);
        let counts =
            Counts { read: read + rejected, stored: appended.stored, duplicates: appended.duplicates, rejected };
        let report = IngestReport {
            read: counts.read,
            stored: counts.stored,
            duplicates: counts.duplicates,
            rejected,
            files: 1,
            relinked: completed.len() as u64,
            store_seconds: received.elapsed().as_secs_f64(),
            formats: BTreeMap::from([(format.to_string(), counts)]),
            rejections,
            ..Default::default()
        };
        let answer = match spans {
            Some(spans) => {
                let rejected_spans = spans.saturating_sub(read as usize) as i64;
                let message = match report.rejections.first() {
                    Some(r) if rejected_spans > 0 => {
                        format!("{rejected_spans} span(s) not used; first: {}: {}", r.location, r.reason)
                    }
                    _ => String::new(),
                };
                Accepted::Otlp { rejected_spans, message }
            }
            None => Accepted::Summary(serde_json::to_value(&report).unwrap_or_default()),
        };
        self.analyse(events, appended.fresh, &completed, format, rejected);
        Ok(answer)
    }

    /// Analyses the newly stored events in time order and publishes what changed.
    fn analyse(
        &mut self,
        events: Vec<Event>,
        fresh: Vec<(u32, i64)>,
        completed: &[link::Completed],
        format: &'static str,
        rejected: u64,
    ) {
        let mut slots: Vec<Option<Event>> = events.into_iter().map(Some).collect();
        let mut new: Vec<(Event, i64)> =
            fresh.iter().filter_map(|&(i, seq)| slots.get_mut(i as usize)?.take().map(|e| (e, seq))).collect();
        new.sort_by_key(|(e, seq)| (e.time, *seq));
        let revision = self.graph.read().revision();
        for (e, seq) in &new {
            let matches = self.rules.matches(e);
            self.analysis.observe(e, *seq, &matches);
            {
                // Per event, not per batch: readers wait for one event's facts at most.
                let mut graph = self.graph.write();
                if !e.changes.is_empty() {
                    graph.apply_changes(&e.changes, e.time, e.id.as_str());
                }
                graph.observe_event(e);
            }
            if self.link.is_some() {
                self.outgoing_event(e, 0);
            }
            self.tally.add(e, *seq);
            let actors = if e.chain.is_empty() { std::slice::from_ref(&e.actor) } else { &e.chain[..] };
            for p in actors {
                if !self.seen.principals.contains_key(&p.id) {
                    self.seen.principals.insert(p.id.clone(), p.kind);
                }
            }
            self.seen.clock = self.seen.clock.max(Some(e.time));
            self.outlets.metrics.analysed(e.time);
        }
        // Use shown by chains completed after their events were analysed.
        for c in completed {
            self.graph.write().observe_completed(&c.event, c.known);
            self.tally.add_completed(&c.event, c.known);
            if self.link.is_some() {
                self.outgoing_event(&c.event, c.known);
            }
        }
        self.outlets
            .coverage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(new.iter().map(|(e, _)| e), Timestamp::now());
        self.seen.events += new.len() as u64;
        self.seen.rejected += rejected;
        *self.seen.formats.entry(format.to_string()).or_default() += new.len() as u64;
        if !new.is_empty() {
            self.learner_changed = true;
            self.unsaved = true;
        }
        // Agents' traces re-observe who they act for on every run: only a
        // fact that started or stopped holding is worth a new view.
        let changed = self.graph.read().revision() != revision;
        self.after_analysis(changed);
    }

    /// Stores the findings and risk the learner produced, announces the
    /// trust changes and publishes the new snapshot.
    fn after_analysis(&mut self, graph_changed: bool) {
        // The graph first: notices name principals by the aliases it knows.
        if graph_changed {
            self.snapshot = std::mem::take(&mut self.snapshot).with_graph(&self.graph.read());
        }
        let mut notices = Vec::new();
        let numbered = self.seq;
        let result = (|| -> Result<(), tenet_store::StoreError> {
            let findings = self.analysis.take_findings();
            let stored = self.store.put_findings(&findings)?;
            for f in &stored {
                self.analysis.learner.finding_updated(f);
            }
            let taken = self.analysis.learner.take_risk();
            let risk = self.pinned(taken);
            self.store.put_risk(&risk)?;
            self.findings_changed(&stored, &mut notices);
            self.risk_changed(&risk, &mut notices);
            let closed = self.graph.write().take_closed();
            self.closures(&closed, &mut notices);
            // In the same transaction as what they announce: a consumer
            // reading the log after a crash finds every change committed.
            // (A partition's batch numbers its notices at its end: the
            // log's end is held from numbering to commit.)
            if self.batch.is_none() {
                self.record_notices(&mut notices)?;
            }
            self.commit()?;
            if self.link.is_some() {
                self.outgoing.trust.findings.extend(stored);
                self.outgoing.trust.risk.extend(risk);
                if self.batch.is_none() {
                    self.outgoing.trust.notices.extend(notices.iter().cloned());
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            // The events are stored; their findings come back on the next
            // start's catch-up, which re-analyses from the last save. (In a
            // partition's batch, the events went with the rollback: the
            // batch fails whole, and comes again.)
            tracing::error!(error = %e, lost = notices.len(), "findings, risk and trust notices not stored");
            self.store.rollback();
            self.seq = numbered;
            notices.clear();
            if let Some(batch) = &mut self.batch {
                batch.failed = Some(e.to_string());
            }
        }
        self.publish_learner(false);
        self.publish_trust();
        match &mut self.batch {
            // Announced once the batch is committed.
            Some(batch) => batch.notices.extend(notices),
            None => {
                self.announce(notices);
                self.send_update();
            }
        }
        self.update_status();
    }

    /// Commits, unless a partition's batch is open: then its one commit
    /// comes at the end.
    fn commit(&mut self) -> Result<(), tenet_store::StoreError> {
        if self.batch.is_some() { Ok(()) } else { self.store.commit() }
    }

    /// What event `e` (its chain beyond the first `known`) changes in
    /// trust, for the other nodes: the facts it declared, the use it showed.
    fn outgoing_event(&mut self, e: &Event, known: usize) {
        if known == 0 && !e.changes.is_empty() {
            self.outgoing.trust.facts.push(tenet_model::DeclaredChanges {
                at: e.time,
                event: e.id.0.clone(),
                by: e.principals().map(|p| p.id.clone()).collect(),
                changes: e.changes.clone(),
            });
        }
        let action = e.action.qualified();
        for (p, r) in e.uses_beyond(known) {
            let key = (p.to_string(), action.clone(), r.map(str::to_string));
            let seen = self.outgoing_uses.entry(key).or_insert((e.time, e.time, 0));
            seen.0 = seen.0.min(e.time);
            seen.1 = seen.1.max(e.time);
            seen.2 += 1;
        }
    }

    /// Sends what was committed since the last update to the other nodes.
    fn send_update(&mut self) {
        let Some(link) = &self.link else { return };
        let mut update = std::mem::take(&mut self.outgoing);
        update.trust.uses = self
            .outgoing_uses
            .drain()
            .map(|((principal, action, resource), (first, last, count))| tenet_model::ObservedUse {
                principal,
                action,
                resource,
                first,
                last,
                count,
            })
            .collect();
        if update.is_empty() {
            return;
        }
        update.trust.revision = self.store.revision();
        update.trust.node = link.node.clone();
        link.send(update);
    }

    /// Another node's commit: its findings, risk and facts applied to this
    /// node's live state (its notices were recorded by that node, and are
    /// announced here as they were there), and what its learners learned
    /// kept for decisions.
    fn apply_remote(&mut self, update: crate::cluster::NodeUpdate) {
        let crate::cluster::NodeUpdate { trust: update, learned, issued } = update;
        self.changes_elsewhere(None, &update.facts);
        for (part, l) in learned {
            if !self.parts.contains_key(&part) && !l.is_empty() {
                self.learned_elsewhere(part, &l);
                self.elsewhere.entry(part).or_default().absorb(l);
                self.elsewhere_changed.insert(part);
            }
        }
        let revision = self.graph.read().revision();
        {
            let mut graph = self.graph.write();
            for f in &update.facts {
                graph.apply_changes(&f.changes, f.at, &f.event);
            }
            for u in &update.uses {
                graph.observe(&u.principal, &u.action, u.resource.as_deref(), u.first, u.last, u.count);
            }
            // The node that committed them announced what closed.
            drop(graph.take_closed());
        }
        if self.graph.read().revision() != revision {
            self.snapshot = std::mem::take(&mut self.snapshot).with_graph(&self.graph.read());
        }
        let numbered = self.seq;
        let mut theirs = Vec::new();
        self.findings_changed(&update.findings, &mut theirs);
        self.risk_changed(&update.risk, &mut theirs);
        self.seq = numbered;
        self.publish_trust();
        self.announce(update.notices);
        self.publish_partition_learners(false);
        if let Some(link) = &self.link {
            link.state.reached(update.revision);
        }
        if !issued.is_empty() {
            self.complete_chains_issued_elsewhere(&issued);
        }
        self.update_status();
    }

    /// What partition `from`'s learner learned, taught to the learners of
    /// the other partitions this node owns: its part of each peer group.
    fn learned_elsewhere(&mut self, from: u32, learned: &tenet_learn::Learned) {
        if learned.peers.is_empty() {
            return;
        }
        for (p, a) in self.parts.iter_mut().filter(|(p, _)| **p != from) {
            a.learner.learned_elsewhere(from, learned);
            self.unsaved_parts.insert(*p);
        }
    }

    /// Risk and open findings as the store has them: what a dead node
    /// committed and did not publish is in it.
    fn resync(&mut self) {
        let read = TrustSnapshot::read_with(&*self.store, &self.graph.read(), None);
        match read {
            Ok(stored) => {
                self.snapshot = std::mem::take(&mut self.snapshot)
                    .with_risk(stored.risk().clone())
                    .with_findings(stored.findings().clone());
                self.publish_trust();
            }
            Err(e) => tracing::warn!(error = %e, "live risk and findings not read again from the store"),
        }
    }

    /// Trust changes events of partition `from` (`None`: another node's)
    /// declared, taught to the learners of the other partitions this node
    /// owns: a grant in one partition explains a use in another, as one
    /// learner seeing every event would know.
    fn changes_elsewhere(&mut self, from: Option<u32>, facts: &[tenet_model::DeclaredChanges]) {
        if facts.is_empty() {
            return;
        }
        for (p, a) in self.parts.iter_mut().filter(|(p, _)| Some(**p) != from) {
            for f in facts {
                a.learner.apply_changes_elsewhere(f);
            }
            self.unsaved_parts.insert(*p);
        }
    }

    /// Another node stored the issuance of `creds`: the chains of events
    /// using them that this node stored before it knew (or while it was
    /// being stored) are completed, with the use they show, in a commit of
    /// their own sent to the other nodes as any other.
    fn complete_chains_issued_elsewhere(&mut self, creds: &[String]) {
        let done = (|| -> Result<Vec<link::Completed>, tenet_store::StoreError> {
            let completed = self.linker.issued_elsewhere(&mut *self.store, creds)?;
            if completed.is_empty() {
                self.store.rollback();
                return Ok(completed);
            }
            let mut tally = UseTally::after(0);
            for c in &completed {
                tally.add_completed(&c.event, c.known);
            }
            self.store.count_stored_use(&tally)?;
            self.store.commit()?;
            Ok(completed)
        })();
        let completed = match done {
            Ok(c) => c,
            Err(e) => {
                self.store.rollback();
                tracing::warn!(error = %e, credentials = creds.len(), "chains completed by another node's issuance not linked here");
                return;
            }
        };
        if completed.is_empty() {
            return;
        }
        let revision = self.graph.read().revision();
        for c in &completed {
            self.graph.write().observe_completed(&c.event, c.known);
            self.outgoing_event(&c.event, c.known);
        }
        self.send_update();
        if self.graph.read().revision() != revision {
            self.snapshot = std::mem::take(&mut self.snapshot).with_graph(&self.graph.read());
            self.publish_trust();
        }
    }

    fn findings_changed(&mut self, stored: &[Finding], notices: &mut Vec<TrustNotice>) {
        let mut touched = std::collections::BTreeSet::new();
        for f in stored.iter().filter(|f| f.is_alert()) {
            let before = self.alerts.insert(f.id.clone(), Known::of(f));
            let was_open = before.as_ref().is_some_and(|k| k.status == FindingStatus::Open);
            let who = self.snapshot.canonical_of(&f.principal).to_string();
            if f.status == FindingStatus::Open && !was_open {
                notices.push(self.notice(
                    f.last_seen,
                    &who,
                    NoticeChange::FindingOpened { finding: f.id.clone(), category: f.category, severity: f.severity },
                ));
            } else if before.as_ref().is_some_and(|k| k.status != f.status) {
                notices.push(self.notice(
                    Timestamp::now(),
                    &who,
                    NoticeChange::FindingStatus { finding: f.id.clone(), status: f.status },
                ));
            }
            if before.as_ref() != Some(&Known::of(f)) {
                touched.insert(f.principal.clone());
            }
        }
        if touched.is_empty() {
            return;
        }
        // Recount the touched principals' open alerts from what is known.
        let mut changes: HashMap<String, Option<OpenFindings>> = touched.iter().map(|p| (p.clone(), None)).collect();
        let mut by: HashMap<&str, (u32, Severity)> = HashMap::new();
        for k in self.alerts.values().filter(|k| k.status == FindingStatus::Open && touched.contains(&k.principal)) {
            let e = by.entry(k.principal.as_str()).or_insert((0, k.severity));
            e.0 += 1;
            e.1 = e.1.max(k.severity);
        }
        for (p, (open, sev)) in by {
            changes.insert(p.to_string(), Some(OpenFindings { open, max_severity: sev.as_str().to_string() }));
        }
        let map = self.snapshot.findings().with(changes);
        self.snapshot = std::mem::take(&mut self.snapshot).with_findings(map);
    }

    fn risk_changed(&mut self, risk: &[tenet_model::RiskPoint], notices: &mut Vec<TrustNotice>) {
        if risk.is_empty() {
            return;
        }
        let mut changes = Vec::with_capacity(risk.len());
        for p in risk {
            let from = self.levels.insert(p.principal.clone(), p.level).unwrap_or(RiskLevel::Low);
            if from != p.level {
                let who = self.snapshot.canonical_of(&p.principal).to_string();
                notices.push(self.notice(p.at, &who, NoticeChange::RiskLevel { from, to: p.level, score: p.score }));
            }
            changes.push((p.principal.clone(), Some(risk_of(p))));
        }
        let map = self.snapshot.risk().with(changes);
        self.snapshot = std::mem::take(&mut self.snapshot).with_risk(map);
    }

    fn closures(&mut self, closed: &[tenet_graph::Closed], notices: &mut Vec<TrustNotice>) {
        if closed.is_empty() {
            return;
        }
        // Announced under the principal's canonical reference, whichever
        // alias the fact was attached to (an IdP user id, say).
        let named: Vec<(String, NoticeChange, Timestamp)> = {
            let graph = self.graph.read();
            let view = graph.current();
            closed
                .iter()
                .filter_map(|c| {
                    let change = match c.kind {
                        EdgeKind::Member => NoticeChange::MembershipRemoved { group: c.b.clone(), by: c.by.clone() },
                        EdgeKind::Attached | EdgeKind::RbacBinding | EdgeKind::Boundary => NoticeChange::GrantRemoved {
                            grant: c.b.clone(),
                            kind: c.kind.as_str().to_string(),
                            by: c.by.clone(),
                        },
                        EdgeKind::ActsFor => NoticeChange::DelegationEnded {
                            person: tenet_pipeline::principals::canonical_in(&view, &c.b),
                            by: c.by.clone(),
                        },
                        _ => return None,
                    };
                    Some((tenet_pipeline::principals::canonical_in(&view, &c.a), change, c.at))
                })
                .collect()
        };
        for (principal, change, at) in named {
            notices.push(self.notice(at, &principal, change));
        }
    }

    fn publish_trust(&self) {
        self.outlets.trust.publish(self.snapshot.clone());
        self.outlets.metrics.state_published();
    }

    /// Numbers `notices` where the log ends (other nodes append to it too)
    /// and writes them in the open transaction.
    fn record_notices(&mut self, notices: &mut [TrustNotice]) -> Result<(), tenet_store::StoreError> {
        self.store.number_notices(notices)?;
        if let Some(last) = notices.last() {
            self.seq = last.seq;
        }
        self.store.put_notices(notices)
    }

    fn notice(&mut self, at: Timestamp, principal: &str, change: NoticeChange) -> TrustNotice {
        self.seq += 1;
        TrustNotice { seq: self.seq, at, principal: principal.to_string(), change }
    }

    fn announce(&mut self, notices: Vec<TrustNotice>) {
        for n in notices {
            self.outlets.metrics.trust_change();
            // No reader is not an error: the stream is for whoever listens.
            let _ = self.outlets.changes.send(Arc::new(n));
        }
    }

    /// Copies the learner for the decision point when it changed and the
    /// last copy is old enough (or at once when `now`).
    fn publish_learner(&mut self, now: bool) {
        if self.partitioned {
            return self.publish_partition_learners(now);
        }
        if self.learner_changed && (now || self.learner_copied.elapsed() >= LEARNER_EVERY) {
            self.learner_changed = false;
            self.learner_copied = Instant::now();
            self.snapshot = std::mem::take(&mut self.snapshot).with_learner(Arc::new(self.analysis.learner.clone()));
            self.publish_trust();
        }
    }

    /// On a cluster node: the learners of the partitions it owns that
    /// changed, copied for the decision point beside the others it knows,
    /// with what the other nodes sent of theirs. (A partition worked on
    /// right now is copied at the next call.)
    fn publish_partition_learners(&mut self, now: bool) {
        let own = !self.learners_changed.is_empty() && (now || self.learner_copied.elapsed() >= LEARNER_EVERY);
        let sent = !self.elsewhere_changed.is_empty() && (now || self.elsewhere_copied.elapsed() >= ELSEWHERE_EVERY);
        if own {
            self.learner_copied = Instant::now();
            let changed: Vec<u32> =
                self.learners_changed.iter().copied().filter(|p| self.parts.contains_key(p)).collect();
            for p in changed {
                self.learners_changed.remove(&p);
                if let Some(a) = self.parts.get(&p) {
                    self.published_learners.insert(p, Arc::new(a.learner.clone()));
                }
            }
        }
        if sent {
            self.elsewhere_copied = Instant::now();
            for p in std::mem::take(&mut self.elsewhere_changed) {
                if let Some(k) = self.elsewhere.get(&p) {
                    self.published_elsewhere.insert(p, Arc::new(k.clone()));
                }
            }
        }
        if own || sent {
            self.publish_learners();
        }
    }

    /// Hands the decision point every learner this node knows of.
    fn publish_learners(&mut self) {
        self.snapshot = std::mem::take(&mut self.snapshot).with_learners(
            self.published_learners.values().cloned().collect(),
            self.published_elsewhere.values().cloned().collect(),
        );
        self.publish_trust();
    }

    /// On a cluster node: the learners of partitions other nodes own, as
    /// they last saved them, read again when they saved since.
    fn read_others_learners(&mut self) {
        let saved = match self.store.partition_watermarks() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "other partitions' learners not read; trying again");
                return;
            }
        };
        let mut read = false;
        for (p, seq) in saved {
            if self.parts.contains_key(&p) || self.others_learners.get(&p) == Some(&seq) {
                continue;
            }
            let state = self.store.set_partition(Some(p)).and_then(|()| self.store.analysis_state());
            let _ = self.store.set_partition(None);
            let learner = match state {
                Ok(Some(s)) => serde_json::from_slice::<Learner>(&s.learner),
                _ => continue,
            };
            match learner {
                Ok(l) => {
                    self.published_learners.insert(p, Arc::new(l));
                    self.others_learners.insert(p, seq);
                    read = true;
                }
                Err(e) => tracing::warn!(error = %e, part = p, "another partition's saved learner does not read"),
            }
        }
        if read {
            self.publish_learners();
        }
    }

    /// Inventory collected at `at`: stored as `tenet import` stores it, then
    /// applied to the live graph and the learner.
    fn import(&mut self, files: Vec<InventoryFile>, at: Timestamp) -> Answer {
        let report: ImportReport =
            match tenet_pipeline::trust::import_inventory(&mut *self.store, files, at, &Default::default()) {
                Ok(r) => r,
                Err(e) => {
                    self.store.rollback();
                    return Err(Refusal::Unavailable { message: format!("the store failed: {e}"), retry_after: 5 });
                }
            };
        if report.snapshots == 0 && report.unchanged_snapshots == 0 && !report.rejected.is_empty() {
            let why = report.rejected.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join("; ");
            return Err(Refusal::Invalid { code: "not_inventory", message: why });
        }
        self.seen.opened += report.opened;
        self.seen.closed += report.closed;
        if let Err(e) = self.apply_new_snapshots() {
            tracing::warn!(error = %e, "imported snapshots not applied live; they apply on the next start");
        }
        Ok(Accepted::Summary(serde_json::to_value(&report).unwrap_or_default()))
    }

    /// Applies every snapshot stored since the last one applied, whoever
    /// stored it (this thread or `tenet import` beside the service).
    fn apply_new_snapshots(&mut self) -> Result<(), tenet_store::StoreError> {
        let reader = self.store.reader()?;
        // Other nodes commit all the time: look before reading every snapshot.
        if reader.last_snapshot_id()? <= self.last_snapshot {
            return Ok(());
        }
        let mut new: Vec<tenet_store::StoredSnapshot> =
            reader.snapshots()?.into_iter().filter(|s| s.id > self.last_snapshot).collect();
        if new.is_empty() {
            return Ok(());
        }
        new.sort_by_key(|s| (s.snapshot.collected_at, s.id));
        let revision = self.graph.read().revision();
        for s in new {
            self.last_snapshot = self.last_snapshot.max(s.id);
            self.graph.write().apply_snapshot(&s.snapshot, &s.provenance);
            self.seen.snapshots += 1;
            for a in self.parts.values_mut() {
                a.add_snapshot(s.clone());
            }
            self.analysis.add_snapshot(s);
        }
        // Snapshots collected before the newest event analysed apply now;
        // later ones wait for the events after them.
        if let Some(clock) = self.seen.clock {
            for a in self.parts.values_mut() {
                a.snapshots_until(clock);
            }
            self.analysis.snapshots_until(clock);
        }
        self.learner_changed = true;
        self.unsaved = true;
        let changed = self.graph.read().revision() != revision;
        self.after_analysis(changed);
        Ok(())
    }

    /// Commits made by another process: finding statuses set by people
    /// (`tenet finding --resolve`), snapshots imported (`tenet import`).
    fn notice_others(&mut self) -> Result<(), tenet_store::StoreError> {
        let version = self.store.others_commits()?;
        if version == self.others {
            return Ok(());
        }
        self.others = version;
        self.apply_new_snapshots()?;
        if self.store_wide_duties() {
            self.apply_pending_verdicts();
            self.announce_queued(false)?;
        }
        Ok(())
    }

    /// Whether this pipeline applies what people decided outside it (CLI
    /// verdicts and finding decisions): a single service does; in a
    /// cluster, the owner of partition 0, so each is applied once.
    fn store_wide_duties(&self) -> bool {
        !self.partitioned || self.parts.contains_key(&0)
    }

    /// Trust changes another process made (`tenet finding --resolve`, the
    /// console), queued with the change in its transaction. The live state
    /// follows the findings they name, and the queue is cleared in the
    /// transaction of the notices, so each change is announced once:
    ///
    /// - running (`at_start` false): what this call found different in the
    ///   live state is the news, announced now; a change the analysis of
    ///   new events already picked up (it reads findings as stored) was
    ///   announced then, and is not again;
    /// - at start: nothing has announced the queued changes (the service
    ///   was down, or died just after they were made), and the live state,
    ///   loaded from the store, already holds them: they are announced as
    ///   the process that made them recorded them.
    fn announce_queued(&mut self, at_start: bool) -> Result<(), tenet_store::StoreError> {
        let queued = self.store.pending_notices()?;
        if queued.is_empty() {
            return Ok(());
        }
        let reader = self.store.reader()?;
        let mut changed = Vec::new();
        for (_, _, _, change) in &queued {
            if let NoticeChange::FindingStatus { finding, .. } | NoticeChange::FindingOpened { finding, .. } = change
                && let Some(f) = reader.finding(finding)?
                && f.is_alert()
                && self.alerts.get(&f.id).is_some_and(|k| k.status != f.status)
            {
                changed.push(f);
            }
        }
        drop(reader);
        let numbered = self.seq;
        let mut notices = Vec::new();
        // A cluster node's learners are its partitions', and this one may
        // not own the finding's: its risk stays as stored (the owner's
        // learner learns of the decision when it next loads).
        let risk = if self.partitioned {
            Vec::new()
        } else {
            for f in &changed {
                self.analysis.learner.finding_updated(f);
            }
            let taken = self.analysis.learner.take_risk();
            self.pinned(taken)
        };
        self.findings_changed(&changed, &mut notices);
        self.risk_changed(&risk, &mut notices);
        if at_start || std::mem::take(&mut self.queue_unannounced) {
            self.seq = numbered;
            notices.clear();
            for (_, at, principal, change) in &queued {
                let who = self.snapshot.canonical_of(principal).to_string();
                // A confirmed compromise holds whatever the finding's fate.
                if matches!(change, NoticeChange::RiskLevel { .. }) && self.compromised.contains(&who) {
                    continue;
                }
                notices.push(self.notice(*at, &who, change.clone()));
            }
        }
        self.learner_changed = true;
        self.unsaved = true;
        self.publish_trust();
        let ids: Vec<i64> = queued.iter().map(|(id, ..)| *id).collect();
        let stored = self
            .record_notices(&mut notices)
            .and_then(|()| self.store.clear_pending_notices(&ids))
            .and_then(|()| self.store.commit());
        if let Err(e) = stored {
            // Still queued: announced on the next attempt.
            tracing::error!(error = %e, queued = ids.len(), "queued trust notices not stored");
            self.store.rollback();
            self.seq = numbered;
            self.queue_unannounced = true;
            return Ok(());
        }
        if self.link.is_some() {
            self.outgoing.trust.findings.extend(changed);
            self.outgoing.trust.risk.extend(risk);
            self.outgoing.trust.notices.extend(notices.iter().cloned());
        }
        self.announce(notices);
        self.update_status();
        self.send_update();
        Ok(())
    }

    /// A confirmed compromise keeps the principal critical whatever the
    /// learner concludes.
    fn pinned(&self, mut risk: Vec<tenet_model::RiskPoint>) -> Vec<tenet_model::RiskPoint> {
        if !self.compromised.is_empty() {
            for p in &mut risk {
                if self.compromised.contains(self.snapshot.canonical_of(&p.principal)) {
                    p.score = 100;
                    p.level = RiskLevel::Critical;
                }
            }
        }
        risk
    }

    /// An administrator's verdict from the API: resolved, recorded with its
    /// risk and notice in one transaction, then published.
    fn verdict(
        &mut self,
        name: &str,
        verdict: Verdict,
        reason: String,
        by: String,
    ) -> Result<PrincipalVerdict, tenet_server::principals::Refusal> {
        use tenet_pipeline::principals::{Resolved, resolve};
        use tenet_server::principals::Refusal as R;
        let unavailable = |e: tenet_store::StoreError| R::Unavailable(format!("the store failed: {e}"));
        // A principal's canonical reference, as the API is usually given:
        // no search needed.
        if self.snapshot.canonical_of(name) == name
            && let Some(aliases) = self.snapshot.aliases_of(name)
        {
            let v = PrincipalVerdict { seq: 0, at: Timestamp::now(), principal: name.to_string(), verdict, reason, by };
            return self.apply_verdict(v, aliases, None).map_err(unavailable);
        }
        let reader = self.store.reader().map_err(unavailable)?;
        let aliases = match resolve(&*reader, &self.graph.read(), name).map_err(unavailable)? {
            Resolved::Known { aliases, .. } => aliases,
            Resolved::Unknown => return Err(R::Unknown(name.to_string())),
            Resolved::Ambiguous(c) => return Err(R::Ambiguous(c)),
        };
        drop(reader);
        let v = PrincipalVerdict { seq: 0, at: Timestamp::now(), principal: aliases[0].clone(), verdict, reason, by };
        self.apply_verdict(v, aliases, None).map_err(unavailable)
    }

    /// Verdicts the CLI recorded beside the running service.
    fn apply_pending_verdicts(&mut self) {
        let pending = match self.store.verdicts(true) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "pending verdicts not read; trying again");
                return;
            }
        };
        for v in pending {
            let aliases = self.aliases_of(&v.principal);
            let seq = v.seq;
            if let Err(e) = self.apply_verdict(v, aliases, Some(seq)) {
                tracing::error!(error = %e, verdict = seq, "a verdict was not applied; trying again");
                return;
            }
        }
    }

    fn aliases_of(&self, principal: &str) -> Vec<String> {
        self.snapshot.aliases_of(principal).unwrap_or_else(|| vec![principal.to_string()])
    }

    /// Records `v` (or marks the stored verdict `stored` applied) with the
    /// risk it sets on every alias and its notices, in one transaction.
    fn apply_verdict(
        &mut self,
        mut v: PrincipalVerdict,
        aliases: Vec<String>,
        stored: Option<i64>,
    ) -> Result<PrincipalVerdict, tenet_store::StoreError> {
        let numbered = self.seq;
        let was_compromised = self.compromised.contains(&v.principal);
        let mut notices = Vec::new();
        let mut points_sent = Vec::new();
        let result = (|| -> Result<(), tenet_store::StoreError> {
            v.seq = match stored {
                Some(seq) => {
                    self.store.verdict_applied(seq)?;
                    seq
                }
                None => self.store.put_verdict(&v, true)?,
            };
            match v.verdict {
                Verdict::Compromised => self.compromised.insert(v.principal.clone()),
                Verdict::Dismissed => self.compromised.remove(&v.principal),
            };
            // Every alias: a principal's risk is the highest under any of them.
            let points: Vec<tenet_model::RiskPoint> = aliases
                .iter()
                .filter(|a| *a == &v.principal || self.levels.contains_key(*a))
                .map(|a| v.verdict.risk(a, v.at))
                .collect();
            self.store.put_risk(&points)?;
            points_sent = points.clone();
            let notice = self.notice(v.at, &v.principal, v.verdict.notice(&v.reason, &v.by));
            notices.push(notice);
            self.risk_changed(&points, &mut notices);
            self.record_notices(&mut notices)?;
            self.store.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            self.store.rollback();
            self.seq = numbered;
            if was_compromised {
                self.compromised.insert(v.principal.clone());
            } else {
                self.compromised.remove(&v.principal);
            }
            return Err(e);
        }
        tracing::info!(principal = %v.principal, verdict = v.verdict.as_str(), by = %v.by, reason = %v.reason, "verdict recorded");
        self.publish_trust();
        if self.link.is_some() {
            self.outgoing.trust.risk.extend(points_sent);
            self.outgoing.trust.notices.extend(notices.iter().cloned());
        }
        self.announce(notices);
        self.send_update();
        Ok(v)
    }

    fn save(&mut self) {
        let saved = if self.partitioned {
            // Only those analysed since their last save.
            let parts = std::mem::take(&mut self.unsaved_parts);
            let mut left = parts.iter().copied();
            let saved = left.by_ref().try_for_each(|p| self.in_partition(p, |s| s.save_analysis()).unwrap_or(Ok(())));
            if saved.is_err() {
                self.unsaved_parts = parts;
            }
            saved
        } else {
            self.save_analysis()
        };
        match saved {
            Ok(()) => {
                self.unsaved = false;
                self.saved = Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "the learner's state was not saved; trying again later"),
        }
    }

    /// Saves the analysis worked on (the whole store's, or a partition's).
    fn save_analysis(&mut self) -> Result<(), AnalyseError> {
        let saved = self.store.put_analysis_state(&self.analysis.state()?).and_then(|()| self.store.commit());
        if saved.is_err() {
            self.store.rollback();
        }
        Ok(saved?)
    }

    /// Runs `f` with partition `part`'s analysis and the store narrowed
    /// to it; `None` when this node does not own it.
    fn in_partition<R>(&mut self, part: u32, f: impl FnOnce(&mut Self) -> R) -> Option<R> {
        let mut analysis = self.parts.remove(&part)?;
        std::mem::swap(&mut self.analysis, &mut analysis);
        let r = match self.store.set_partition(Some(part)) {
            Ok(()) => Some(f(self)),
            Err(e) => {
                tracing::error!(error = %e, part, "the store cannot be narrowed to a partition");
                None
            }
        };
        let _ = self.store.set_partition(None);
        std::mem::swap(&mut self.analysis, &mut analysis);
        self.parts.insert(part, analysis);
        r
    }

    /// Stores a partition's deliveries, each as a single service stores a
    /// body (one transaction, analysed in time order), with the
    /// partition's learner.
    fn store_partition(&mut self, part: u32, runs: Vec<Vec<Event>>) -> Result<(), String> {
        self.learners_changed.insert(part);
        self.unsaved_parts.insert(part);
        // One transaction for the batch: each delivery stored and analysed
        // in turn, as a single service would, and one commit (a commit per
        // delivery per partition would be most of the work).
        self.batch = Some(Batch::default());
        let stored = self
            .in_partition(part, |s| {
                for events in runs {
                    let format = events
                        .first()
                        .and_then(|e| tenet_sources::format::by_name(&e.source.format))
                        .map_or("other", |f| f.name());
                    s.store_events(&format!("partition {part}"), format, events, Vec::new(), None)
                        .map_err(|r| format!("{r:?}"))?;
                    if let Some(why) = s.batch.as_ref().and_then(|b| b.failed.clone()) {
                        return Err(why);
                    }
                }
                // The use these events show is counted with them, once.
                let tally = std::mem::replace(&mut s.tally, UseTally::after(0));
                s.store.count_stored_use(&tally).map_err(|e| e.to_string())?;
                let mut notices = s.batch.as_mut().map(|b| std::mem::take(&mut b.notices)).unwrap_or_default();
                s.record_notices(&mut notices).and_then(|()| s.store.commit()).map_err(|e| e.to_string())?;
                if let Some(b) = &mut s.batch {
                    b.notices = notices;
                }
                Ok(())
            })
            .unwrap_or_else(|| Err(format!("partition {part} is not owned by this node")));
        let batch = self.batch.take().unwrap_or_default();
        match stored {
            Ok(()) => {
                self.changes_elsewhere(Some(part), &self.outgoing.trust.facts.clone());
                if self.link.is_some() {
                    self.outgoing.trust.notices.extend(batch.notices.iter().cloned());
                    if let Some(a) = self.parts.get_mut(&part) {
                        let learned = a.learner.take_learned();
                        self.learned_elsewhere(part, &learned);
                        self.outgoing.learned.push((part, learned));
                    }
                }
                self.announce(batch.notices);
                self.send_update();
                Ok(())
            }
            Err(e) => {
                // Nothing of the batch is stored, but its learner saw some
                // of it: it is loaded again from its last save and what
                // is stored since, and the batch comes again.
                self.store.rollback();
                self.outgoing = Default::default();
                self.outgoing_uses.clear();
                self.tally = UseTally::after(0);
                self.parts.remove(&part);
                if let Err(again) = self.own(part) {
                    tracing::error!(error = %again, part, "partition not loaded again after a failed batch");
                }
                Err(e)
            }
        }
    }

    /// Takes partition `part` on: its learner as last saved, then what was
    /// stored in it since (a previous owner that died before saving)
    /// analysed again. Findings are stored by id, so re-analysis updates
    /// them rather than counting them twice.
    fn own(&mut self, part: u32) -> Result<(), String> {
        if self.parts.contains_key(&part) {
            return Ok(());
        }
        let loaded = (|| -> Result<Analysis, AnalyseError> {
            self.store.set_partition(Some(part))?;
            let state = self.store.analysis_state()?;
            let learner = match &state {
                Some(s) if !s.learner.is_empty() => {
                    let mut l: Learner =
                        serde_json::from_slice(&s.learner).map_err(|e| AnalyseError::State(e.to_string()))?;
                    l.set_config(self.config.clone());
                    l
                }
                _ => Learner::new(self.config.clone()),
            };
            let (events_seq, snapshot_id) = state.as_ref().map_or((0, 0), |s| (s.events_seq, s.snapshot_id));
            let reader = self.store.reader()?;
            let mut analysis = Analysis::new(learner, reader.snapshots()?, events_seq, snapshot_id);
            analysis.snapshots_until(self.seen.clock.unwrap_or(Timestamp::MIN));
            Ok(analysis)
        })();
        let _ = self.store.set_partition(None);
        let mut analysis = loaded.map_err(|e| format!("loading partition {part}'s analysis: {e}"))?;
        if self.link.is_some() {
            analysis.learner.track_learned();
        }
        self.parts.insert(part, analysis);
        // Its learner is here now: what its owner sent is superseded.
        self.elsewhere.remove(&part);
        self.elsewhere_changed.remove(&part);
        if self.published_elsewhere.remove(&part).is_some() {
            self.publish_learners();
        }
        let caught_up = self.in_partition(part, |s| s.catch_up()).unwrap_or(Ok(0));
        match caught_up {
            Ok(n) => {
                self.learners_changed.insert(part);
                self.others_learners.remove(&part);
                tracing::info!(part, caught_up = n, "partition owned");
                Ok(())
            }
            Err(e) => {
                self.parts.remove(&part);
                Err(format!("catching up on partition {part}: {e}"))
            }
        }
    }

    /// Analyses the events stored in the current partition after its
    /// watermark, in time order, a slice at a time.
    fn catch_up(&mut self) -> Result<u64, AnalyseError> {
        let pending = self.store.pending_analysis()?;
        let reader = self.store.reader()?;
        for slice in pending.chunks(8192) {
            let seqs: Vec<i64> = slice.iter().map(|p| p.seq).collect();
            for e in reader.events_by_seq(&seqs)? {
                let matches = self.rules.matches(&e);
                self.analysis.observe(&e, 0, &matches);
            }
            self.analysis.events_seq = self.analysis.events_seq.max(seqs.iter().copied().max().unwrap_or(0));
            self.after_analysis(false);
        }
        if !pending.is_empty() {
            self.save_analysis()?;
        }
        Ok(pending.len() as u64)
    }

    /// Gives partition `part` up: its learner saved, then dropped.
    fn release(&mut self, part: u32) {
        self.unsaved_parts.remove(&part);
        self.learners_changed.remove(&part);
        if let Some(Err(e)) = self.in_partition(part, |s| s.save_analysis()) {
            // Whoever owns it next re-analyses from the last save.
            tracing::warn!(error = %e, part, "a released partition's learner was not saved");
        }
        self.parts.remove(&part);
    }

    fn update_status(&mut self) {
        let s = &self.seen;
        let mut kinds = BTreeMap::new();
        for k in s.principals.values() {
            *kinds.entry(k.as_str().to_string()).or_insert(0u64) += 1;
        }
        let (events, rejected, clock, formats) = (s.events, s.rejected, s.clock, s.formats.clone());
        let (snapshots, opened, closed) = (s.snapshots, s.opened, s.closed);
        self.outlets.status.update(|st| {
            st.events = events;
            st.rejected = rejected;
            st.clock = clock.map(|c| c.to_string());
            st.principals_by_kind = kinds;
            st.formats = formats;
            st.inventory_snapshots = snapshots;
            st.trust_facts_opened = opened;
            st.trust_facts_closed = closed;
        });
    }
}
