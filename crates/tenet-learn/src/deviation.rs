//! A deviation: one thing a detector saw, scored, with what shows it.

use tenet_model::{BaselineStat, Behaviour, EventId, Evidence, RuleMatch, Timestamp};

/// Which way a deviation points when the incident is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lean {
    /// Unusual, but says nothing of intent by itself (novelty, rate, shift).
    Neutral,
    /// Accumulating grants nobody uses.
    Drift,
    /// A workflow combining steps into something risky.
    Workflow,
    /// A trust relationship that should not exist or is misused.
    Trust,
    /// Behaviour consistent with an attack.
    Malicious,
}

#[derive(Debug, Clone)]
pub struct Deviation {
    pub detector: &'static str,
    /// Whom the finding is about (the subject, or the target of a grant).
    pub subject: String,
    pub at: i64,
    pub event_ids: Vec<EventId>,
    /// 0–100: how unusual or how severe by itself.
    pub score: f32,
    pub lean: Lean,
    /// What it shows the principal doing.
    pub behaviour: Behaviour,
    /// A high-impact action: credentials minted for another identity,
    /// logging or detection disabled, trust opened to outsiders, data
    /// shared out, a secret read followed by sending out. Only these make
    /// an incident high or critical.
    pub impact: bool,
    /// The value it is about (an action, a network), for grouping
    /// repetition in summaries ("12 first-time actions, among them …").
    pub item: Option<String>,
    pub detail: String,
    pub baseline: Option<BaselineStat>,
    pub rule: Option<RuleMatch>,
    pub path: Vec<String>,
    pub techniques: Vec<String>,
    /// Positive evidence that this is expected (an authorised change before
    /// it, the peer group doing the same), with the event or inventory that
    /// shows it.
    pub support: Vec<(String, Option<String>)>,
}

impl Deviation {
    pub fn new(detector: &'static str, subject: &str, at: i64, event: &EventId, score: f32, lean: Lean) -> Self {
        let behaviour = match lean {
            Lean::Drift => Behaviour::AccessDrift,
            _ => Behaviour::UnusualActivity,
        };
        Deviation {
            detector,
            subject: subject.to_string(),
            at,
            event_ids: vec![event.clone()],
            score,
            lean,
            behaviour,
            impact: false,
            item: None,
            detail: String::new(),
            baseline: None,
            rule: None,
            path: Vec::new(),
            techniques: Vec::new(),
            support: Vec::new(),
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    pub fn behaviour(mut self, b: Behaviour) -> Self {
        self.behaviour = b;
        self
    }

    /// Marks it a high-impact action (see [`Deviation::impact`]).
    pub fn high_impact(mut self) -> Self {
        self.impact = true;
        self
    }

    pub fn item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }

    pub fn baseline(mut self, scope: &str, feature: &str, observed: &str, expected: String, history: u64) -> Self {
        self.baseline = Some(BaselineStat {
            scope: scope.to_string(),
            feature: feature.to_string(),
            observed: observed.to_string(),
            expected,
            history,
        });
        self
    }

    pub fn techniques(mut self, t: &[&str]) -> Self {
        self.techniques.extend(t.iter().map(|s| s.to_string()));
        self
    }

    pub fn to_evidence(&self) -> Evidence {
        Evidence {
            detector: self.detector.to_string(),
            detail: self.detail.clone(),
            behaviour: Some(self.behaviour),
            at: Timestamp::from_unix_nanos(self.at),
            event_ids: self.event_ids.clone(),
            baseline: self.baseline.clone(),
            rule: self.rule.clone(),
            path: self.path.clone(),
        }
    }
}
