//! The learn stage wired to the store: events stored since the last
//! analysis are read back in event time order (whatever order their files
//! were ingested in), with inventory snapshots at their collection times,
//! matched against Sigma rules, learned from and detected on; findings and
//! risk go back to the store, and so does the learner's state, so the next
//! run carries on where this one stopped.
//!
//! [`ingest_and_analyse`] does the same while ingesting, on the events as
//! they are stored, when their order allows: reading them back afterwards
//! costs as much as analysing them.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use tenet_learn::{Config, Learner, Stats};
use tenet_sigma::RuleSet;
use tenet_store::{AnalysisState, EventStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Unreadable saved state makes [`analyse`] re-learn from all stored events.
    #[error("the saved analysis state is unreadable ({0})")]
    State(String),
    #[error("starting an analysis thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Ingest(#[from] crate::IngestError),
}

/// What an analysis run did.
#[derive(Debug, Default, Serialize)]
pub struct AnalyseReport {
    pub events: u64,
    pub snapshots: u64,
    pub sigma_matches: u64,
    /// Findings raised or changed in this run, by category.
    pub findings: BTreeMap<String, u64>,
    pub risk_points: u64,
    pub seconds: f64,
    /// Whether the events were analysed as they were stored (in order, no
    /// read back) rather than read back from the store afterwards.
    pub streamed: bool,
    pub learner: Stats,
}

/// Events read back per slice: bounded memory however much is pending.
const SLICE: usize = 8_192;

/// One slice of events with the Sigma rules each matched.
struct Matched {
    last_seq: i64,
    events: Vec<(tenet_model::Event, Vec<tenet_learn::SigmaMatch>)>,
}

fn restore(state: Option<&AnalysisState>, config: &Config) -> Result<Learner, AnalyseError> {
    match state {
        Some(s) if !s.learner.is_empty() => {
            let mut l: Learner = serde_json::from_slice(&s.learner).map_err(|e| AnalyseError::State(e.to_string()))?;
            l.set_config(config.clone());
            Ok(l)
        }
        _ => Ok(Learner::new(config.clone())),
    }
}

/// The analysis step every way of running shares (read back from the
/// store, beside ingestion, live in the service): a learner fed events in
/// time order, each preceded by the inventory snapshots collected before
/// it, with what it has seen counted.
pub struct Analysis {
    pub learner: Learner,
    /// Snapshots not yet applied, in collection order.
    snapshots: std::collections::VecDeque<tenet_store::StoredSnapshot>,
    /// The newest event sequence number and snapshot id analysed.
    pub events_seq: i64,
    pub snapshot_id: i64,
    pub report: AnalyseReport,
}

impl Analysis {
    /// Starts from `learner` at the watermark (`events_seq`, `snapshot_id`),
    /// with the snapshots stored since.
    pub fn new(
        learner: Learner,
        mut snapshots: Vec<tenet_store::StoredSnapshot>,
        events_seq: i64,
        snapshot_id: i64,
    ) -> Self {
        snapshots.retain(|s| s.id > snapshot_id);
        snapshots.sort_by_key(|s| (s.snapshot.collected_at, s.id));
        Analysis { learner, snapshots: snapshots.into(), events_seq, snapshot_id, report: AnalyseReport::default() }
    }

    /// A snapshot stored after the analysis began: applied before the
    /// first event newer than its collection time.
    pub fn add_snapshot(&mut self, s: tenet_store::StoredSnapshot) {
        let at = self.snapshots.partition_point(|x| (x.snapshot.collected_at, x.id) <= (s.snapshot.collected_at, s.id));
        self.snapshots.insert(at, s);
    }

    /// Applies the snapshots collected no later than `t`; returns how many.
    pub fn snapshots_until(&mut self, t: tenet_model::Timestamp) -> u64 {
        let mut n = 0;
        while self.snapshots.front().is_some_and(|s| s.snapshot.collected_at <= t) {
            let Some(s) = self.snapshots.pop_front() else { break };
            self.learner.apply_snapshot(&s.snapshot, &s.provenance);
            self.snapshot_id = self.snapshot_id.max(s.id);
            self.report.snapshots += 1;
            n += 1;
        }
        n
    }

    /// One event (sequence number `seq`) with the Sigma rules it matched.
    pub fn observe(&mut self, e: &tenet_model::Event, seq: i64, matches: &[tenet_learn::SigmaMatch]) {
        self.snapshots_until(e.time);
        self.report.sigma_matches += matches.len() as u64;
        self.learner.observe(e, matches);
        self.report.events += 1;
        self.events_seq = self.events_seq.max(seq);
    }

    /// Applies every remaining snapshot (the end of a run).
    pub fn finish_snapshots(&mut self) {
        self.snapshots_until(tenet_model::Timestamp::from_unix_nanos(i64::MAX));
    }

    /// The findings raised or changed since the last take, counted by category.
    pub fn take_findings(&mut self) -> Vec<tenet_model::Finding> {
        let findings = self.learner.take_findings();
        for f in &findings {
            *self.report.findings.entry(f.category.as_str().to_string()).or_default() += 1;
        }
        findings
    }

    /// The saved state at this watermark.
    pub fn state(&self) -> Result<AnalysisState, AnalyseError> {
        let blob = serde_json::to_vec(&self.learner).map_err(|e| AnalyseError::State(e.to_string()))?;
        Ok(AnalysisState { events_seq: self.events_seq, snapshot_id: self.snapshot_id, learner: blob })
    }
}

/// Analyses everything stored since the last run.
pub fn analyse(store: &mut dyn EventStore, rules: &RuleSet, config: &Config) -> Result<AnalyseReport, AnalyseError> {
    let started = Instant::now();
    let mut state = store.analysis_state()?;
    let learner = match restore(state.as_ref(), config) {
        Ok(l) => l,
        // Baselines are derived data: when a new version cannot read the
        // old ones, learn again from every stored event rather than stop.
        Err(AnalyseError::State(why)) => {
            tracing::warn!(%why, "saved baselines are unreadable by this version; re-learning from all stored events");
            let fresh = AnalysisState { events_seq: 0, snapshot_id: 0, learner: Vec::new() };
            store.put_analysis_state(&fresh)?;
            state = Some(fresh);
            Learner::new(config.clone())
        }
        Err(e) => return Err(e),
    };
    let (events_seq, snapshot_id) = state.as_ref().map_or((0, 0), |s| (s.events_seq, s.snapshot_id));
    let mut analysis = Analysis::new(learner, store.reader()?.snapshots()?, events_seq, snapshot_id);
    let pending = store.pending_analysis()?;
    // Reading, decoding and Sigma matching are per event and need no
    // learner: a second thread does them, a slice ahead, over its own
    // read connection, while this one learns (it is sequential by nature).
    let reader = store.reader()?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Matched, AnalyseError>>(2);
    std::thread::scope(|scope| -> Result<(), AnalyseError> {
        let slices = &pending;
        let read = std::thread::Builder::new().name("tenet-analyse-read".into());
        read.spawn_scoped(scope, move || {
            for slice in slices.chunks(SLICE) {
                let seqs: Vec<i64> = slice.iter().map(|p| p.seq).collect();
                let batch = reader.events_by_seq(&seqs).map_err(AnalyseError::from).map(|events| {
                    let matched = events
                        .into_iter()
                        .map(|e| {
                            let m = rules.matches(&e);
                            (e, m)
                        })
                        .collect();
                    Matched { last_seq: seqs.iter().copied().max().unwrap_or(0), events: matched }
                });
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        })?;
        for batch in rx {
            let batch = batch?;
            for (e, matches) in &batch.events {
                analysis.observe(e, 0, matches);
            }
            analysis.events_seq = analysis.events_seq.max(batch.last_seq);
            flush(store, &mut analysis)?;
        }
        Ok(())
    })?;
    analysis.finish_snapshots();
    flush(store, &mut analysis)?;
    store.put_analysis_state(&analysis.state()?)?;
    store.commit()?;
    let mut report = analysis.report;
    report.learner = analysis.learner.stats();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Stores the findings and risk points taken from the learner. Risk
/// follows the findings as stored: a person's resolution stands.
fn flush(store: &mut dyn EventStore, analysis: &mut Analysis) -> Result<(), AnalyseError> {
    let findings = analysis.take_findings();
    for f in store.put_findings(&findings)? {
        analysis.learner.finding_updated(&f);
    }
    let risk = analysis.learner.take_risk();
    analysis.report.risk_points += risk.len() as u64;
    store.put_risk(&risk)?;
    Ok(())
}

/// Changes a finding's status and lets risk follow: the learner's view of
/// the principal's open findings is updated and the new score recorded.
pub fn set_status(
    store: &mut dyn EventStore,
    id: &str,
    to: tenet_model::FindingStatus,
    reason: Option<&str>,
    config: &Config,
) -> Result<tenet_model::Finding, AnalyseError> {
    let now = tenet_model::Timestamp::now();
    let finding = store.set_finding_status(id, to, reason, now)?;
    // What the change means to trust, recorded with it for the running
    // service to announce (a quiet finding changes no one's trust).
    let mut changes = Vec::new();
    if finding.is_alert() {
        // Re-opened is opened, as when analysis re-opens it.
        let change = if finding.status == tenet_model::FindingStatus::Open {
            tenet_model::NoticeChange::FindingOpened {
                finding: finding.id.clone(),
                category: finding.category,
                severity: finding.severity,
            }
        } else {
            tenet_model::NoticeChange::FindingStatus { finding: finding.id.clone(), status: finding.status }
        };
        changes.push((now, finding.principal.clone(), change));
    }
    if let Some(state) = store.analysis_state()? {
        let mut learner = restore(Some(&state), config)?;
        learner.finding_updated(&finding);
        let mut risk = learner.take_risk();
        for p in &mut risk {
            // A learner restored without events has no clock of its own:
            // the score holds from the decision.
            if p.at.unix_nanos() == 0 {
                p.at = now;
            }
        }
        let before = store.reader()?;
        for p in &risk {
            let from = before.risk(Some(&p.principal))?.pop().map_or(tenet_model::RiskLevel::Low, |r| r.level);
            if from != p.level {
                let change = tenet_model::NoticeChange::RiskLevel { from, to: p.level, score: p.score };
                changes.push((p.at, p.principal.clone(), change));
            }
        }
        store.put_risk(&risk)?;
        let blob = serde_json::to_vec(&learner).map_err(|e| AnalyseError::State(e.to_string()))?;
        store.put_analysis_state(&AnalysisState { learner: blob, ..state })?;
    }
    store.queue_notices(&changes)?;
    store.commit()?;
    Ok(finding)
}

// ----- analysis beside ingestion -----

/// How far behind the newest event analysis waits for late ones.
const REORDER_WINDOW: i64 = 5 * 60 * 1_000_000_000;
/// Events held back at most, whatever the window: bounded memory.
const REORDER_HELD: usize = 32_768;

/// A stored batch's events and which of them were new (see
/// [`crate::ingest::Follower`]).
type StoredBatch = (Vec<tenet_model::Event>, Vec<(u32, i64)>);

/// A stored batch's new events, each with its sequence number and Sigma matches.
type MatchedBatch = Vec<(tenet_model::Event, i64, Vec<tenet_learn::SigmaMatch>)>;

/// The new events of a stored batch (positions ascend), each moved once,
/// with its Sigma matches: the part of analysis that needs no learner
/// state, done on a thread of its own ahead of the learner.
fn match_new(rules: &RuleSet, (events, fresh): StoredBatch) -> MatchedBatch {
    let mut fresh = fresh.into_iter().peekable();
    events
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| fresh.next_if(|&(j, _)| j as usize == i).map(|(_, seq)| (e, seq)))
        .map(|(e, seq)| {
            let matches = rules.matches(&e);
            (e, seq, matches)
        })
        .collect()
}

/// An event waiting in time order (boxed: entries shift when a late one is
/// slotted in, and an event is hundreds of bytes).
struct Held {
    time: i64,
    seq: i64,
    event: Box<tenet_model::Event>,
    matches: Vec<tenet_learn::SigmaMatch>,
}

/// What analysing beside ingestion produced, kept until ingestion is done.
struct Followed {
    analysis: Analysis,
    findings: std::collections::HashMap<String, tenet_model::Finding>,
    risk: Vec<tenet_model::RiskPoint>,
}

/// Ingests `paths` and analyses what it stores. When nothing is pending
/// from before, the new events are analysed as they are stored, through a
/// short reorder window, on a thread of their own; if they arrive further
/// out of time order than the window allows (directories of different
/// sources, say), or sessions had to be relinked to their issuers after
/// being stored, that analysis is dropped and everything is analysed from
/// the store in time order, exactly as [`analyse`] does. Either way the
/// result is the same analysis of the same events in the same order.
pub fn ingest_and_analyse(
    paths: &[std::path::PathBuf],
    store: &mut dyn EventStore,
    options: crate::IngestOptions,
    observer: &mut dyn crate::IngestObserver,
    rules: &RuleSet,
    config: &Config,
) -> Result<(crate::IngestReport, AnalyseReport), AnalyseError> {
    let started = Instant::now();
    let state = store.analysis_state()?;
    let learner = match restore(state.as_ref(), config) {
        Ok(l) if store.pending_analysis()?.is_empty() => l,
        // A backlog, or state to rebuild: the ordinary way.
        _ => {
            let report = crate::ingest(paths, store, options, observer)?;
            return Ok((report, analyse(store, rules, config)?));
        }
    };
    let (events_seq, snapshot_id) = state.as_ref().map_or((0, 0), |s| (s.events_seq, s.snapshot_id));
    let analysis = Analysis::new(learner, store.reader()?.snapshots()?, events_seq, snapshot_id);

    let (tx, rx) = std::sync::mpsc::sync_channel::<StoredBatch>(2);
    let (matched_tx, matched_rx) = std::sync::mpsc::sync_channel::<MatchedBatch>(2);
    let (ingested, followed) = std::thread::scope(|scope| {
        // Sigma matching needs no learner state: on its own thread, it
        // overlaps learning instead of adding to it.
        let matcher = std::thread::Builder::new().name("tenet-sigma".into()).spawn_scoped(scope, move || {
            for batch in rx {
                if matched_tx.send(match_new(rules, batch)).is_err() {
                    return;
                }
            }
        });
        let matcher = match matcher {
            Ok(m) => m,
            Err(e) => return (Err(AnalyseError::from(e)), None),
        };
        let follow = std::thread::Builder::new()
            .name("tenet-analyse".into())
            .spawn_scoped(scope, move || follow(matched_rx, analysis));
        let follow = match follow {
            Ok(f) => f,
            Err(e) => return (Err(AnalyseError::from(e)), None),
        };
        let mut send = |events: Vec<tenet_model::Event>, fresh: Vec<(u32, i64)>| tx.send((events, fresh)).is_ok();
        let ingested = crate::ingest::ingest_following(paths, store, options, observer, Some(&mut send));
        drop(tx);
        // A panic in the analysis or matching thread costs the shortcut,
        // not the run: the events are stored and pending, and are analysed
        // from the store. (A matcher that died early ended the learner's
        // stream early: what the learner made of it is not kept.)
        let followed = follow.join().unwrap_or_else(|_| {
            tracing::warn!("the analysis thread panicked; analysing from the store instead");
            None
        });
        let followed = match matcher.join() {
            Ok(()) => followed,
            Err(_) => {
                tracing::warn!("the Sigma matching thread panicked; analysing from the store instead");
                None
            }
        };
        (ingested.map_err(AnalyseError::from), followed)
    });
    let ingested = ingested?;
    let Some(mut f) = followed.filter(|_| ingested.relinked == 0) else {
        tracing::debug!("events arrived out of order or were relinked: analysing from the store");
        return Ok((ingested, analyse(store, rules, config)?));
    };
    // What people decided about findings stands: store, then let risk follow.
    let findings: Vec<tenet_model::Finding> = f.findings.into_values().collect();
    for stored in store.put_findings(&findings)? {
        f.analysis.learner.finding_updated(&stored);
    }
    f.risk.extend(f.analysis.learner.take_risk());
    f.analysis.report.risk_points = f.risk.len() as u64;
    store.put_risk(&f.risk)?;
    store.put_analysis_state(&f.analysis.state()?)?;
    store.commit()?;
    let mut report = f.analysis.report;
    report.learner = f.analysis.learner.stats();
    report.seconds = started.elapsed().as_secs_f64();
    report.streamed = true;
    Ok((ingested, report))
}

/// The analysis thread: events through the reorder window into the
/// learner. `None` when they came too far out of order (the caller then
/// analyses from the store); it keeps draining so ingestion never waits.
fn follow(rx: std::sync::mpsc::Receiver<MatchedBatch>, mut analysis: Analysis) -> Option<Followed> {
    // In time order. Events mostly come in order: appended at the back;
    // a late one is slotted in by binary search.
    let mut held = std::collections::VecDeque::<Held>::new();
    let (mut newest, mut released) = (i64::MIN, i64::MIN);
    let mut findings = std::collections::HashMap::default();
    let mut risk = Vec::new();
    let mut since_take = 0usize;
    // Taken where reading back would flush, every SLICE events in order,
    // so both ways produce the same findings and risk points.
    let mut process = |h: Held, analysis: &mut Analysis| {
        analysis.observe(&h.event, h.seq, &h.matches);
        since_take += 1;
        if since_take == SLICE {
            for f in analysis.take_findings() {
                findings.insert(f.id.clone(), f);
            }
            risk.extend(analysis.learner.take_risk());
            since_take = 0;
        }
    };
    let mut disordered = false;
    for new in rx {
        if disordered {
            continue;
        }
        for (event, seq, matches) in new {
            let time = event.time.unix_nanos();
            if time < released {
                disordered = true;
                break;
            }
            newest = newest.max(time);
            let h = Held { time, seq, event: Box::new(event), matches };
            if held.back().is_none_or(|b| (b.time, b.seq) <= (time, seq)) {
                held.push_back(h);
            } else {
                let at = held.partition_point(|x| (x.time, x.seq) <= (time, seq));
                held.insert(at, h);
            }
        }
        if disordered {
            continue;
        }
        while held.front().is_some_and(|h| h.time <= newest - REORDER_WINDOW || held.len() > REORDER_HELD) {
            let Some(h) = held.pop_front() else { break };
            released = h.time;
            process(h, &mut analysis);
        }
    }
    if disordered {
        return None;
    }
    while let Some(h) = held.pop_front() {
        process(h, &mut analysis);
    }
    analysis.finish_snapshots();
    for f in analysis.take_findings() {
        findings.insert(f.id.clone(), f);
    }
    risk.extend(analysis.learner.take_risk());
    Some(Followed { analysis, findings, risk })
}
