//! The learn stage wired to the store: events stored since the last
//! analysis are read back in event time order (whatever order their files
//! were ingested in), with inventory snapshots at their collection times,
//! matched against Sigma rules, learned from and detected on; findings and
//! risk go back to the store, and so does the learner's state, so the next
//! run carries on where this one stopped.

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
    #[error("starting the analysis reader thread: {0}")]
    Thread(#[from] std::io::Error),
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

/// Analyses everything stored since the last run.
pub fn analyse(store: &mut dyn EventStore, rules: &RuleSet, config: &Config) -> Result<AnalyseReport, AnalyseError> {
    let started = Instant::now();
    let mut state = store.analysis_state()?;
    let mut learner = match restore(state.as_ref(), config) {
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
    let (mut events_seq, mut snapshot_id) = state.as_ref().map_or((0, 0), |s| (s.events_seq, s.snapshot_id));
    let mut snapshots: Vec<tenet_store::StoredSnapshot> =
        store.reader()?.snapshots()?.into_iter().filter(|s| s.id > snapshot_id).collect();
    snapshots.sort_by_key(|s| (s.snapshot.collected_at, s.id));
    let mut snapshots = snapshots.into_iter().peekable();
    let pending = store.pending_analysis()?;
    let mut report = AnalyseReport::default();
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
                let t = e.time;
                while let Some(s) = snapshots.next_if(|s| s.snapshot.collected_at <= t) {
                    learner.apply_snapshot(&s.snapshot, &s.provenance);
                    snapshot_id = snapshot_id.max(s.id);
                    report.snapshots += 1;
                }
                report.sigma_matches += matches.len() as u64;
                learner.observe(e, matches);
                report.events += 1;
            }
            events_seq = events_seq.max(batch.last_seq);
            flush(store, &mut learner, &mut report)?;
        }
        Ok(())
    })?;
    for s in snapshots {
        learner.apply_snapshot(&s.snapshot, &s.provenance);
        snapshot_id = snapshot_id.max(s.id);
        report.snapshots += 1;
    }
    flush(store, &mut learner, &mut report)?;
    let blob = serde_json::to_vec(&learner).map_err(|e| AnalyseError::State(e.to_string()))?;
    store.put_analysis_state(&AnalysisState { events_seq, snapshot_id, learner: blob })?;
    store.commit()?;
    report.learner = learner.stats();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn flush(store: &mut dyn EventStore, learner: &mut Learner, report: &mut AnalyseReport) -> Result<(), AnalyseError> {
    let findings = learner.take_findings();
    for f in &findings {
        *report.findings.entry(f.category.as_str().to_string()).or_default() += 1;
    }
    // Risk follows the findings as stored: a person's resolution stands.
    for f in store.put_findings(&findings)? {
        learner.finding_updated(&f);
    }
    let risk = learner.take_risk();
    report.risk_points += risk.len() as u64;
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
    let finding = store.set_finding_status(id, to, reason, tenet_model::Timestamp::now())?;
    if let Some(state) = store.analysis_state()? {
        let mut learner = restore(Some(&state), config)?;
        learner.finding_updated(&finding);
        store.put_risk(&learner.take_risk())?;
        let blob = serde_json::to_vec(&learner).map_err(|e| AnalyseError::State(e.to_string()))?;
        store.put_analysis_state(&AnalysisState { learner: blob, ..state })?;
        store.commit()?;
    }
    Ok(finding)
}
