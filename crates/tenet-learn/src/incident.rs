//! Deviations grouped into incidents (one subject, one burst of activity;
//! or, for drift, one identity over weeks), each classified into exactly
//! one category and turned into a finding once it matters.
//!
//! How an incident is scored, and when it alerts:
//! - its strongest deviation, a quarter of the rest, and a little for each
//!   further independent detector that agrees;
//! - `high` and `critical` (a score of 70 or more) need a high-impact
//!   action (credentials minted for another identity, logging or detection
//!   disabled, trust opened to outsiders, data shared out, a secret read
//!   followed by egress) corroborated by evidence from another detector;
//!   anything else caps at 69, `medium`;
//! - an incident made only of departures from routine (no sign of intent)
//!   is behavioural drift, never an attack, and caps at `medium` too;
//! - it alerts at [`crate::Config::alert_threshold`] (50) and above, or at
//!   [`DRIFT_ALERT`] (65) when it has no sign of intent; from
//!   [`RECORD_SCORE`] (25) it is recorded without alerting: listed with
//!   `--all`, never counted as risk;
//! - a principal alerts at most once a day for the same kinds of
//!   behaviour: a further incident that day alerts only if it shows a
//!   behaviour the day's alerts did not.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tenet_model::{
    Behaviour, BehaviourGroup, Category, EventId, Evidence, Finding, FindingStatus, Severity, Timestamp,
};

use crate::Config;
use crate::deviation::{Deviation, Lean};
use crate::identity::IdentityIndex;
use crate::sketch::DAY;

/// Drift is slow: grants to one identity within this window are one story.
const DRIFT_WINDOW: i64 = 45 * DAY;
const MAX_EVIDENCE: usize = 40;
/// Events a finding cites per behaviour from its strong evidence, from its
/// weak (merged) evidence, and in all: the events that deviate most, not
/// every event of the principal in the incident's window.
const STRONG_EVENTS: usize = 25;
const WEAK_EVENTS: usize = 5;
const MAX_EVENTS: usize = 100;
/// Incidents scoring below this are not recorded at all: a few weak
/// departures from routine that every busy principal shows.
pub const RECORD_SCORE: f32 = 25.0;
/// The highest score without a corroborated high-impact action: `medium`.
const MEDIUM_CAP: f32 = 69.0;
/// The score at which departures from routine alone (no sign of intent,
/// no high-impact action) alert: most of them are change nobody labelled.
pub const DRIFT_ALERT: f32 = 65.0;
/// The alert score for pointed evidence on a principal already suspected:
/// an intruder who comes back is not new to us.
pub const SUSPECT_ALERT: f32 = 35.0;
/// A sign of compromise this strong decides the category whatever else the incident shows.
const COMPROMISE: f32 = 30.0;
/// How long an attack alert keeps its principal suspected, unless resolved sooner.
const SUSPECT_FOR: i64 = 14 * DAY;
/// Deviations weaker than this merge, per detector and behaviour, into one
/// line that counts them (stronger ones merge per feature too).
const WEAK: f32 = 20.0;
/// What each repetition adds to a merged line, and at most.
const REPEAT: f32 = 2.0;
const REPEAT_CAP: f32 = 10.0;

#[derive(Clone, Serialize, Deserialize)]
struct Scored {
    evidence: Evidence,
    lean: u8,
    score: f32,
    impact: bool,
    behaviour: Behaviour,
    /// Deviations merged into this line, the strongest of them, and a few of their items.
    count: u32,
    top: f32,
    items: Vec<String>,
    /// ATT&CK techniques this line points to.
    techniques: Vec<String>,
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
    techniques: BTreeSet<String>,
    /// Whether the subject was young (little history) when it began.
    young: bool,
    raised_at: Option<i64>,
    /// When it first mattered as an alert.
    alerted_at: Option<i64>,
    /// Held back by the daily alert budget: recorded, not alerting.
    held: bool,
    /// Began while its principal was suspected (an attack alert on it not
    /// yet resolved): pointed evidence alerts from [`SUSPECT_ALERT`].
    #[serde(default)]
    suspected: bool,
    /// What was last handed out, to hand out again only on change.
    emitted: Option<(Category, Severity, bool, usize, u32, i64)>,
    dirty: bool,
}

/// The verdict on an incident.
struct Verdict {
    category: Category,
    score: f32,
    confidence: f64,
    explanation: String,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Incidents {
    open: FxHashMap<String, Vec<Incident>>,
    /// Closed incidents whose final state has not been handed out yet.
    closing: Vec<Incident>,
    emitted: usize,
    /// Per principal: the day of its latest alert and the behaviours the
    /// day's alerts showed.
    alerted: FxHashMap<String, (i64, u16)>,
    /// Principals with an unresolved attack alert, until when.
    #[serde(default)]
    suspects: FxHashMap<String, i64>,
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

fn behaviour_bit(b: Behaviour) -> u16 {
    1 << Behaviour::ALL.iter().position(|x| *x == b).unwrap_or(0)
}

/// The plural noun a detector's merged lines count.
fn noun(detector: &str) -> &'static str {
    match detector {
        "novelty" => "first-time actions",
        "context" => "first sightings",
        "sigma" => "Sigma rule matches",
        "privilege_change" => "privilege changes",
        "trust_edge" => "trust changes",
        "workflow" => "new workflow steps",
        _ => "departures from routine",
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
            techniques: BTreeSet::new(),
            young: false,
            raised_at: None,
            alerted_at: None,
            held: false,
            suspected: false,
            emitted: None,
            dirty: false,
        }
    }

    fn add(&mut self, d: Deviation, young: bool) {
        if self.devs.is_empty() {
            self.young = young;
        }
        self.last = self.last.max(d.at);
        for (what, ev) in &d.support {
            if !self.support.iter().any(|(w, _)| w == what) && self.support.len() < 16 {
                self.support.push((what.clone(), ev.clone()));
            }
        }
        self.techniques.extend(d.techniques.iter().cloned());
        let lean = lean_code(d.lean);
        // Repetition merges into one line per detector, behaviour and
        // feature, counted: forty first sightings of runner addresses are one
        // story told forty times, and grow the line only a little. Weak lines
        // merge whatever their feature. High-impact actions are each kept.
        let feature = d.baseline.as_ref().map(|b| b.feature.as_str());
        if !d.impact
            && let Some(same) = self.devs.iter_mut().find(|s| {
                s.evidence.detector == d.detector
                    && s.behaviour == d.behaviour
                    && s.lean == lean
                    && !s.impact
                    && (s.evidence.baseline.as_ref().map(|b| b.feature.as_str()) == feature
                        || s.score < WEAK && d.score < WEAK)
            })
        {
            same.top = same.top.max(d.score);
            same.count += 1;
            same.score = (same.top + REPEAT * (same.count - 1) as f32).min(same.top + REPEAT_CAP);
            if same.evidence.event_ids.len() < 20 {
                same.evidence.event_ids.extend(d.event_ids);
            }
            if let Some(item) = d.item
                && same.items.len() < 3
                && !same.items.contains(&item)
            {
                same.items.push(item);
            }
            self.dirty = true;
            return;
        }
        let scored = Scored {
            evidence: d.to_evidence(),
            lean,
            score: d.score,
            impact: d.impact,
            behaviour: d.behaviour,
            count: 1,
            top: d.score,
            items: d.item.into_iter().collect(),
            techniques: d.techniques,
        };
        if self.devs.len() < MAX_EVIDENCE {
            self.devs.push(scored);
        } else if let Some(weakest) = self.devs.iter_mut().min_by(|a, b| a.score.total_cmp(&b.score))
            && weakest.score < scored.score
        {
            *weakest = scored;
        }
        self.dirty = true;
    }

    /// Grants gathered: the events that made them (an inline policy put is
    /// one grant, though it both writes and attaches a policy).
    fn grants(&self) -> usize {
        let mut events: Vec<&str> = self
            .devs
            .iter()
            .filter(|d| d.lean == 1)
            .flat_map(|d| d.evidence.event_ids.iter().map(|e| e.as_str()))
            .collect();
        events.sort_unstable();
        events.dedup();
        events.len()
    }

    fn behaviours(&self) -> u16 {
        self.devs.iter().filter(|d| d.lean != 0 || d.impact).fold(0, |m, d| m | behaviour_bit(d.behaviour))
    }

    fn verdict(&self) -> Verdict {
        if self.kind == Kind::Drift {
            let grants = self.grants();
            return Verdict {
                category: Category::UnintendedDrift,
                score: (20.0 + 12.0 * grants as f32).min(MEDIUM_CAP),
                confidence: (0.4 + 0.1 * grants as f64).min(0.9),
                explanation: format!(
                    "{grants} grants to {} within weeks, each by someone else, none backed by a change in what it does: access accumulating without a matching need",
                    self.subject
                ),
            };
        }
        let mut scores: Vec<f32> = self.devs.iter().map(|d| d.score).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        // Independent detectors agreeing corroborate each other; context
        // sightings and the account-wide view of a first action are the
        // same novelty seen again, not a voice of their own.
        let voices: BTreeSet<&str> = self
            .devs
            .iter()
            .filter(|d| d.score >= 10.0 && !matches!(d.evidence.detector.as_str(), "context" | "organisation_novelty"))
            .map(|d| d.evidence.detector.as_str())
            .collect();
        let corroboration = (voices.len().saturating_sub(1) as f32 * 4.0).min(16.0);
        let mut score = match scores.split_first() {
            Some((top, rest)) => (top + 0.25 * rest.iter().sum::<f32>() + corroboration).min(100.0),
            None => 0.0,
        };
        let impact: Vec<&Scored> = self.devs.iter().filter(|d| d.impact).collect();
        let corroborated = !impact.is_empty()
            && self.devs.iter().any(|d| {
                d.score >= 10.0
                    && d.evidence.detector != "context"
                    && impact.iter().all(|i| i.evidence.detector != d.evidence.detector || i.behaviour != d.behaviour)
            });
        if !corroborated {
            score = score.min(MEDIUM_CAP);
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
        let strongest = |lean: u8| self.devs.iter().filter(|d| d.lean == lean).map(|d| d.score).fold(0.0f32, f32::max);
        let (mal, trust, workflow, drift) = (strongest(4), strongest(3), strongest(2), strongest(1));
        let detectors: BTreeSet<&str> = self.devs.iter().map(|d| d.evidence.detector.as_str()).collect();
        let mut confidence = (0.45 + 0.1 * detectors.len() as f64 + f64::from(score) / 400.0).min(0.97);
        if self.young {
            confidence *= 0.8;
        }
        // The category of the strongest pointed deviation; attack signs win
        // ties. Signs that the actor itself is not who it should be (its
        // credentials used from elsewhere, guessing, attack techniques) win
        // outright once they are substantial: a trust opened by an intruder
        // is the intruder's act, not an abnormal trust relationship.
        let mut leans = [
            (mal, Category::LikelyMalicious),
            (trust, Category::AbnormalTrustRelationship),
            (workflow, Category::RiskyWorkflowInteraction),
            (drift, Category::UnintendedDrift),
        ];
        leans.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (top, category) = if mal >= COMPROMISE { (mal, Category::LikelyMalicious) } else { leans[0] };
        let pointed = top > 0.0;
        let category = if pointed { category } else { Category::UnintendedDrift };
        let explanation = match category {
            Category::AbnormalTrustRelationship => {
                "a trust relationship that should not exist, or is used for someone it was not granted to"
            }
            Category::RiskyWorkflowInteraction => {
                "an agent workflow combined steps (outside content, secrets, sending out) into something risky"
            }
            Category::UnintendedDrift if pointed => "access changed without a matching need",
            Category::UnintendedDrift => {
                "departures from this identity's own habits with nothing to say they were expected and no sign of an attack: drift in what it does"
            }
            _ => {
                "behaviour consistent with an attack: the strongest signs are attack techniques, not change in routine"
            }
        };
        Verdict { category, score, confidence, explanation: explanation.to_string() }
    }

    /// Whether the incident is worth recording yet.
    fn recorded(&self, v: &Verdict) -> bool {
        match self.kind {
            Kind::Drift => self.grants() >= 2,
            Kind::Adaptation => v.score >= 10.0,
            Kind::Activity => v.score >= RECORD_SCORE,
        }
    }

    /// Whether it alerts (before the daily budget). Departures from routine
    /// with no sign of intent (behavioural drift) need [`DRIFT_ALERT`].
    fn alerting(&self, v: &Verdict, config: &Config) -> bool {
        let pointed = self.devs.iter().any(|d| d.lean != 0 || d.impact);
        let bar = match (pointed, self.suspected) {
            (true, true) => SUSPECT_ALERT,
            (true, false) => config.alert_threshold,
            _ if self.kind == Kind::Drift => config.alert_threshold,
            _ => DRIFT_ALERT,
        };
        v.category.is_alert() && self.recorded(v) && v.score >= bar
    }

    fn finding(&mut self, v: &Verdict, alert: bool) -> Finding {
        let raised = if alert { self.alerted_at.or(self.raised_at) } else { self.raised_at }.unwrap_or(self.last);
        let mut devs: Vec<&Scored> = self.devs.iter().collect();
        devs.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut evidence: Vec<Evidence> = devs.iter().map(|d| d.evidence.clone()).collect();
        // Evidence by behaviour, the behaviour with the strongest sign first.
        let mut order: Vec<Behaviour> = Vec::new();
        for d in &devs {
            if !order.contains(&d.behaviour) {
                order.push(d.behaviour);
            }
        }
        let mut groups: Vec<BehaviourGroup> = Vec::new();
        let mut event_ids: Vec<EventId> = Vec::new();
        let mut weak_ids: Vec<EventId> = Vec::new();
        for b in order {
            let members: Vec<&&Scored> = devs.iter().filter(|d| d.behaviour == b).collect();
            let mut ids: Vec<EventId> = Vec::new();
            let mut weak: Vec<EventId> = Vec::new();
            for d in &members {
                let is_strong = d.top >= WEAK || d.impact || d.lean != 0;
                for id in &d.evidence.event_ids {
                    if ids.contains(id) || weak.contains(id) {
                        continue;
                    }
                    if is_strong && ids.len() < STRONG_EVENTS {
                        ids.push(id.clone());
                    } else if !is_strong && weak.len() < WEAK_EVENTS {
                        weak.push(id.clone());
                    }
                }
            }
            // The finding cites what deviates strongly; weak departures
            // (a busy hour, a new workflow step) only when nothing else does.
            for id in &ids {
                if event_ids.len() < MAX_EVENTS && !event_ids.contains(id) {
                    event_ids.push(id.clone());
                }
            }
            weak_ids.extend(weak.iter().cloned());
            ids.extend(weak);
            let mut techniques: Vec<String> = Vec::new();
            for t in members.iter().flat_map(|d| d.techniques.iter()) {
                if !techniques.contains(t) {
                    techniques.push(t.clone());
                }
            }
            groups.push(BehaviourGroup {
                behaviour: b,
                tactic: b.tactic().map(str::to_string),
                techniques,
                summary: clause(&members),
                event_ids: ids,
            });
        }
        if event_ids.is_empty() {
            for id in weak_ids {
                if event_ids.len() < WEAK_EVENTS && !event_ids.contains(&id) {
                    event_ids.push(id);
                }
            }
        }
        for (what, ev) in &self.support {
            let ids: Vec<EventId> = ev.iter().filter(|e| !e.contains(' ')).map(|e| EventId::from(e.as_str())).collect();
            if self.kind == Kind::Adaptation {
                for id in &ids {
                    if event_ids.len() < MAX_EVENTS && !event_ids.contains(id) {
                        event_ids.push(id.clone());
                    }
                }
            }
            evidence.push(Evidence {
                detector: "adaptation".into(),
                detail: what.clone(),
                behaviour: None,
                at: Timestamp::from_unix_nanos(self.start),
                event_ids: ids,
                baseline: None,
                rule: None,
                path: Vec::new(),
            });
        }
        let severity = if v.category == Category::ExpectedAdaptation { Severity::Low } else { severity(v.score) };
        let advice = match v.category {
            Category::LikelyMalicious => {
                "This looks like an attack: confirm with the owner, and contain the credentials if it was not them."
            }
            Category::AbnormalTrustRelationship => {
                "A way to act that the trust model should not grant was opened or used: check who approved it."
            }
            Category::RiskyWorkflowInteraction => {
                "A workflow combined access it holds into something risky: review the task and its inputs."
            }
            Category::UnintendedDrift => "Nothing shows this was expected: check whether it is needed.",
            Category::ExpectedAdaptation => "Recorded as expected change; no action needed.",
        };
        let clauses: Vec<&str> = groups.iter().map(|g| g.summary.as_str()).collect();
        let summary = format!("{} {}. {}", self.subject, joined(&clauses, 3), advice);
        Finding {
            id: self.id.clone(),
            category: v.category,
            severity,
            confidence: (v.confidence * 100.0).round() / 100.0,
            score: (v.score * 10.0).round() / 10.0,
            principal: self.subject.clone(),
            first_seen: Timestamp::from_unix_nanos(self.start),
            last_seen: Timestamp::from_unix_nanos(self.last),
            raised_at: Timestamp::from_unix_nanos(raised),
            event_ids,
            techniques: self.techniques.iter().cloned().collect(),
            summary,
            status: FindingStatus::Open,
            alert,
            behaviours: groups,
            explanation: if self.held {
                format!(
                    "{}; a further incident on a day this principal already alerted for the same kinds of behaviour, so recorded without alerting again",
                    v.explanation
                )
            } else {
                v.explanation.clone()
            },
            evidence,
            history: Vec::new(),
        }
    }
}

/// One behaviour's evidence as a clause: repetition counted, a few
/// examples named.
fn clause(members: &[&&Scored]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for d in members {
        if d.count > 1 {
            let examples: Vec<&str> = d.items.iter().map(String::as_str).collect();
            parts.push(match examples.as_slice() {
                [] => format!("{} {}", d.count, noun(&d.evidence.detector)),
                [one] => format!("{} {}, among them {one}", d.count, noun(&d.evidence.detector)),
                [a, b, ..] => format!("{} {}, among them {a} and {b}", d.count, noun(&d.evidence.detector)),
            });
        } else {
            parts.push(d.evidence.detail.clone());
        }
    }
    joined(&parts.iter().map(String::as_str).collect::<Vec<_>>(), 2)
}

/// `a`, `a and b`, `a, b and c`; past `keep`, how many more.
fn joined(items: &[&str], keep: usize) -> String {
    let shown: Vec<&str> = items.iter().take(keep).copied().collect();
    let more = items.len().saturating_sub(keep);
    let mut out = match shown.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] if more == 0 => format!("{} and {last}", init.join(", ")),
        all => all.join(", "),
    };
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

impl Incidents {
    /// Files a deviation: grants to an identity go to its drift incident;
    /// unusual-but-neutral behaviour with positive evidence that it is
    /// expected goes to its adaptation incident; the rest to its activity
    /// incident. An alert never absorbs expected change, nor the reverse.
    pub fn add(&mut self, d: Deviation, young: bool, _identity: &IdentityIndex, config: &Config) {
        let kind = match d.lean {
            Lean::Drift => Kind::Drift,
            Lean::Neutral if !d.support.is_empty() => Kind::Adaptation,
            _ => Kind::Activity,
        };
        let window = kind.window(config);
        let subject = d.subject.clone();
        let list = self.open.entry(subject.clone()).or_default();
        let at = d.at;
        let suspected = self.suspects.get(&subject).is_some_and(|until| at <= *until);
        let i = match list.iter().position(|i| i.kind == kind && at - i.last <= window && at >= i.start - window) {
            Some(i) => i,
            None => {
                let mut new = Incident::new(&d, kind);
                new.suspected = suspected;
                list.push(new);
                list.len() - 1
            }
        };
        let i = &mut list[i];
        i.add(d, young);
        let v = i.verdict();
        if !i.recorded(&v) {
            return;
        }
        i.raised_at.get_or_insert(at);
        if !i.alerting(&v, config) {
            return;
        }
        // The daily budget: a further alert the same day only for a kind
        // of behaviour the day's alerts did not show.
        let day = at.div_euclid(DAY);
        let shown = i.behaviours();
        let (d0, mask) = self.alerted.get(&subject).copied().unwrap_or((i64::MIN, 0));
        let today = if d0 == day { mask } else { 0 };
        let already = i.alerted_at.is_some() && !i.held;
        if !already && today != 0 && shown & !today == 0 {
            i.held = true;
            return;
        }
        i.held = false;
        if i.alerted_at.is_none() {
            i.alerted_at = Some(at);
        }
        if matches!(v.category, Category::LikelyMalicious | Category::AbnormalTrustRelationship) {
            self.suspects.insert(subject.clone(), at + SUSPECT_FOR);
        }
        self.alerted.insert(subject, (day, today | shown));
    }

    /// Whether `principal` has an unresolved attack alert at `t`.
    pub fn suspected(&self, principal: &str, t: i64) -> bool {
        self.suspects.get(principal).is_some_and(|until| t <= *until)
    }

    /// A finding's status changed outside: a principal whose attack alert
    /// was resolved or suppressed is no longer suspected.
    pub fn status_changed(&mut self, f: &Finding) {
        if matches!(f.status, FindingStatus::Resolved | FindingStatus::Suppressed) {
            self.suspects.remove(&f.principal);
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
        self.alerted.retain(|_, (day, _)| now.div_euclid(DAY) - *day <= 1);
        self.suspects.retain(|_, until| now <= *until);
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
            if !i.recorded(&v) {
                return;
            }
            let alert = i.alerting(&v, config) && !i.held && i.alerted_at.is_some();
            let sev = if v.category == Category::ExpectedAdaptation { Severity::Low } else { severity(v.score) };
            let merged: u32 = i.devs.iter().map(|d| d.count).sum();
            // The last event is part of what was said: a finding whose
            // incident went on must say until when.
            let state = (v.category, sev, alert, i.devs.len(), merged, i.last);
            if i.emitted == Some(state) {
                return;
            }
            if i.emitted.is_none() {
                *emitted += 1;
            }
            out.push(i.finding(&v, alert));
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
