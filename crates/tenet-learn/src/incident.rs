//! Deviations grouped into incidents (one subject, one burst of activity;
//! or, for drift, one identity over weeks), each classified into exactly
//! one category and turned into a finding once it matters.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tenet_model::{Category, EventId, Evidence, Finding, FindingStatus, Severity, Timestamp};

use crate::Config;
use crate::deviation::{Deviation, Lean};
use crate::identity::IdentityIndex;
use crate::sketch::DAY;

/// Drift is slow: grants to one identity within this window are one story.
const DRIFT_WINDOW: i64 = 45 * DAY;
const MAX_EVIDENCE: usize = 40;
const MAX_EVENTS: usize = 400;

#[derive(Clone, Serialize, Deserialize)]
struct Scored {
    evidence: Evidence,
    lean: u8,
    score: f32,
}

fn lean_code(l: Lean) -> u8 {
    match l {
        Lean::Neutral => 0,
        Lean::Drift => 1,
        Lean::Workflow => 2,
        Lean::Trust => 3,
        Lean::Malicious => 4,
    }
}

/// What an incident gathers: a burst of activity, expected change backed
/// by positive evidence, or grants accumulating on one identity.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Activity,
    Adaptation,
    Drift,
}

#[derive(Clone, Serialize, Deserialize)]
struct Incident {
    id: String,
    subject: String,
    kind: Kind,
    start: i64,
    last: i64,
    devs: Vec<Scored>,
    /// Positive evidence that the change is expected: (what, event or inventory).
    support: Vec<(String, Option<String>)>,
    events: Vec<String>,
    techniques: BTreeSet<String>,
    raised_at: Option<i64>,
    /// When it first mattered as an alert.
    alerted_at: Option<i64>,
    /// What was last handed out, to hand out again only on change.
    emitted: Option<(Category, Severity, usize, usize, i64)>,
    dirty: bool,
}

/// The verdict on an incident.
struct Verdict {
    category: Category,
    score: f32,
    confidence: f64,
    explanation: String,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Incidents {
    open: FxHashMap<String, Vec<Incident>>,
    /// Closed incidents whose final state has not been handed out yet.
    closing: Vec<Incident>,
    emitted: usize,
}

fn finding_id(subject: &str, start: i64, kind: Kind) -> String {
    let ns = match kind {
        Kind::Activity => 20,
        Kind::Drift => 21,
        Kind::Adaptation => 22,
    };
    let k = crate::sketch::key(ns, &format!("{subject}|{start}"));
    format!("f-{k:016x}")
}

impl Kind {
    /// How long a quiet spell ends the incident.
    fn window(self, config: &Config) -> i64 {
        match self {
            Kind::Activity => config.incident_gap,
            Kind::Adaptation => DAY,
            Kind::Drift => DRIFT_WINDOW,
        }
    }
}

fn severity(score: f32) -> Severity {
    match score {
        s if s >= 85.0 => Severity::Critical,
        s if s >= 70.0 => Severity::High,
        s if s >= 50.0 => Severity::Medium,
        _ => Severity::Low,
    }
}

impl Incident {
    fn new(d: &Deviation, kind: Kind) -> Self {
        Incident {
            id: finding_id(&d.subject, d.at, kind),
            subject: d.subject.clone(),
            kind,
            start: d.at,
            last: d.at,
            devs: Vec::new(),
            support: Vec::new(),
            events: Vec::new(),
            techniques: BTreeSet::new(),
            raised_at: None,
            alerted_at: None,
            emitted: None,
            dirty: false,
        }
    }

    fn add(&mut self, d: Deviation) {
        self.last = self.last.max(d.at);
        for e in &d.event_ids {
            if self.events.len() < MAX_EVENTS && !self.events.iter().any(|x| x == e.as_str()) {
                self.events.push(e.to_string());
            }
        }
        for (what, ev) in &d.support {
            if !self.support.iter().any(|(w, _)| w == what) && self.support.len() < 16 {
                self.support.push((what.clone(), ev.clone()));
            }
        }
        self.techniques.extend(d.techniques.iter().cloned());
        let scored = Scored { evidence: d.to_evidence(), lean: lean_code(d.lean), score: d.score };
        // Many small novelties merge into one line per detector; strong
        // deviations are each kept.
        if d.score < 20.0
            && let Some(same) = self.devs.iter_mut().find(|s| s.evidence.detector == d.detector && s.score < 20.0)
        {
            same.score = (same.score + d.score * 0.5).min(19.9);
            if same.evidence.event_ids.len() < 20 {
                same.evidence.event_ids.extend(d.event_ids);
            }
            if same.evidence.detail.len() < 200 {
                same.evidence.detail.push_str("; ");
                same.evidence.detail.push_str(&d.detail);
            } else if !same.evidence.detail.ends_with('…') {
                same.evidence.detail.push_str("; …");
            }
        } else if self.devs.len() < MAX_EVIDENCE {
            self.devs.push(scored);
        } else if let Some(weakest) = self.devs.iter_mut().min_by(|a, b| a.score.total_cmp(&b.score))
            && weakest.score < scored.score
        {
            *weakest = scored;
        }
        self.dirty = true;
    }

    fn verdict(&self) -> Verdict {
        let mut scores: Vec<f32> = self.devs.iter().map(|d| d.score).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        // Independent detectors agreeing corroborate each other; cheap
        // context novelties do not count as a voice of their own.
        let voices = self
            .devs
            .iter()
            .filter(|d| d.evidence.detector != "context")
            .map(|d| d.evidence.detector.as_str())
            .collect::<BTreeSet<_>>()
            .len();
        let corroboration = (voices.saturating_sub(1) as f32 * 4.0).min(16.0);
        let score = match scores.split_first() {
            Some((top, rest)) => (top + 0.25 * rest.iter().sum::<f32>() + corroboration).min(100.0),
            None => 0.0,
        };
        let strongest = |lean: u8| self.devs.iter().filter(|d| d.lean == lean).map(|d| d.score).fold(0.0f32, f32::max);
        let (mal, trust, workflow, drift) = (strongest(4), strongest(3), strongest(2), strongest(1));
        let detectors: BTreeSet<&str> = self.devs.iter().map(|d| d.evidence.detector.as_str()).collect();
        let confidence = (0.45 + 0.1 * detectors.len() as f64 + f64::from(score) / 400.0).min(0.97);
        if self.kind == Kind::Drift {
            let grants = self.devs.iter().filter(|d| d.lean == 1).count();
            return Verdict {
                category: Category::UnintendedDrift,
                score: (20.0 + 12.0 * grants as f32).min(69.0),
                confidence: (0.4 + 0.1 * grants as f64).min(0.9),
                explanation: format!(
                    "{grants} grants to {} within weeks, each by someone else, none backed by a change in what it does: access accumulating without a matching need",
                    self.subject
                ),
            };
        }
        if self.kind == Kind::Adaptation {
            return Verdict {
                category: Category::ExpectedAdaptation,
                score,
                confidence: (0.5 + 0.1 * self.support.len() as f64).min(0.9),
                explanation: format!(
                    "new behaviour with positive evidence that it is expected: {}",
                    listed(self.support.iter().map(|(w, _)| w.as_str()), 3)
                ),
            };
        }
        // The category of the strongest pointed deviation; attack signs win ties.
        let mut leans = [
            (mal, Category::LikelyMalicious),
            (trust, Category::AbnormalTrustRelationship),
            (workflow, Category::RiskyWorkflowInteraction),
            (drift, Category::UnintendedDrift),
        ];
        leans.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (top, category) = leans[0];
        let category = if top > 0.0 { category } else { Category::LikelyMalicious };
        let explanation = match category {
            Category::AbnormalTrustRelationship => {
                "a trust relationship that should not exist, or is used for someone it was not granted to"
            }
            Category::RiskyWorkflowInteraction => {
                "an agent workflow combined steps (outside content, secrets, sending out) into something risky"
            }
            Category::UnintendedDrift => "access changed without a matching need",
            _ if mal > 0.0 => {
                "behaviour consistent with an attack: the strongest signs are attack techniques, not change in routine"
            }
            _ => "many departures from this identity's own habits at once, with nothing to say they were expected",
        };
        Verdict { category, score, confidence, explanation: explanation.to_string() }
    }

    /// Whether the incident is worth a finding yet.
    fn matters(&self, v: &Verdict, config: &Config) -> bool {
        match v.category {
            Category::UnintendedDrift if self.kind == Kind::Drift => {
                self.devs.iter().filter(|d| d.lean == 1).count() >= 2
            }
            Category::ExpectedAdaptation => v.score >= 10.0,
            _ => v.score >= config.alert_threshold,
        }
    }

    fn finding(&mut self, v: &Verdict) -> Finding {
        let raised = if v.category.is_alert() { self.alerted_at.or(self.raised_at) } else { self.raised_at }
            .unwrap_or(self.last);
        let mut devs: Vec<&Scored> = self.devs.iter().collect();
        devs.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut evidence: Vec<Evidence> = devs.iter().map(|d| d.evidence.clone()).collect();
        let mut event_ids: Vec<EventId> = self.events.iter().map(|e| EventId::from(e.as_str())).collect();
        for (what, ev) in &self.support {
            if let Some(ev) = ev
                && !ev.contains(' ')
            {
                event_ids.push(EventId::from(ev.as_str()));
            }
            evidence.push(Evidence {
                detector: "adaptation".into(),
                detail: what.clone(),
                at: Timestamp::from_unix_nanos(self.start),
                event_ids: ev.iter().filter(|e| !e.contains(' ')).map(|e| EventId::from(e.as_str())).collect(),
                baseline: None,
                rule: None,
                path: Vec::new(),
            });
        }
        let severity = if v.category == Category::ExpectedAdaptation { Severity::Low } else { severity(v.score) };
        let why = match v.category {
            Category::LikelyMalicious => {
                "Treat it as a possible compromise: confirm with the owner and contain the credentials if it was not them."
            }
            Category::AbnormalTrustRelationship => {
                "Someone gained a way to act that the trust model does not grant; check who approved it."
            }
            Category::RiskyWorkflowInteraction => {
                "An agent was steered into combining access it holds in a dangerous way; review the task and its inputs."
            }
            Category::UnintendedDrift => {
                "Access grows while use does not; remove what is not needed before it is misused."
            }
            Category::ExpectedAdaptation => "Recorded to explain why the baseline moves; no action needed.",
        };
        let summary = format!(
            "{} {}. {} {}",
            self.subject,
            listed(devs.iter().map(|d| d.evidence.detail.as_str()), 3),
            capitalise(&v.explanation),
            why
        );
        Finding {
            id: self.id.clone(),
            category: v.category,
            severity,
            confidence: (v.confidence * 100.0).round() / 100.0,
            principal: self.subject.clone(),
            first_seen: Timestamp::from_unix_nanos(self.start),
            last_seen: Timestamp::from_unix_nanos(self.last),
            raised_at: Timestamp::from_unix_nanos(raised),
            event_ids,
            techniques: self.techniques.iter().cloned().collect(),
            summary,
            status: FindingStatus::Open,
            explanation: v.explanation.clone(),
            evidence,
            history: Vec::new(),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str() + ".",
        None => String::new(),
    }
}

impl Incidents {
    /// Files a deviation: grants to an identity go to its drift incident;
    /// unusual-but-neutral behaviour with positive evidence that it is
    /// expected goes to its adaptation incident; the rest to its activity
    /// incident. An alert never absorbs expected change, nor the reverse.
    pub fn add(&mut self, d: Deviation, _identity: &IdentityIndex, config: &Config) {
        let kind = match d.lean {
            Lean::Drift => Kind::Drift,
            Lean::Neutral if !d.support.is_empty() => Kind::Adaptation,
            _ => Kind::Activity,
        };
        let window = kind.window(config);
        let list = self.open.entry(d.subject.clone()).or_default();
        let at = d.at;
        let i = match list.iter().position(|i| i.kind == kind && at - i.last <= window && at >= i.start - window) {
            Some(i) => i,
            None => {
                list.push(Incident::new(&d, kind));
                list.len() - 1
            }
        };
        let i = &mut list[i];
        i.add(d);
        // When it first matters (and first as an alert) is when it is raised:
        // what time-to-detect measures, whenever the finding is handed out.
        if i.alerted_at.is_none() {
            let v = i.verdict();
            if i.matters(&v, config) {
                i.raised_at.get_or_insert(at);
                if v.category.is_alert() {
                    i.alerted_at = Some(at);
                }
            }
        }
    }

    /// Ends incidents that have been quiet longer than their window.
    pub fn close_stale(&mut self, now: i64, config: &Config) {
        for list in self.open.values_mut() {
            let (stale, live): (Vec<Incident>, Vec<Incident>) =
                list.drain(..).partition(|i| now - i.last > i.kind.window(config));
            *list = live;
            self.closing.extend(stale.into_iter().filter(|i| i.dirty));
        }
        self.open.retain(|_, l| !l.is_empty());
    }

    /// Findings for incidents that matter and changed since last time.
    pub fn take_changed(&mut self, config: &Config) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut emit = |i: &mut Incident, emitted: &mut usize| {
            if !i.dirty {
                return;
            }
            i.dirty = false;
            let v = i.verdict();
            if !i.matters(&v, config) {
                return;
            }
            let sev = if v.category == Category::ExpectedAdaptation { Severity::Low } else { severity(v.score) };
            // The last event is part of what was said: a finding whose
            // incident went on must say until when.
            let state = (v.category, sev, i.devs.len(), i.events.len(), i.last);
            if i.emitted == Some(state) {
                return;
            }
            if i.emitted.is_none() {
                *emitted += 1;
            }
            out.push(i.finding(&v));
            i.emitted = Some(state);
        };
        for list in self.open.values_mut() {
            for i in list.iter_mut() {
                emit(i, &mut self.emitted);
            }
        }
        for mut i in std::mem::take(&mut self.closing) {
            emit(&mut i, &mut self.emitted);
        }
        out.sort_by(|a, b| a.raised_at.cmp(&b.raised_at).then(a.id.cmp(&b.id)));
        out
    }

    pub fn emitted(&self) -> usize {
        self.emitted
    }
}

/// The first `keep` items joined, then how many more there are: a summary is a paragraph a
/// person reads; the full list stays in the evidence.
fn listed<'a>(items: impl Iterator<Item = &'a str>, keep: usize) -> String {
    let items: Vec<&str> = items.collect();
    let mut out = items.iter().take(keep).copied().collect::<Vec<_>>().join("; ");
    if items.len() > keep {
        out.push_str(&format!("; and {} more", items.len() - keep));
    }
    out
}
