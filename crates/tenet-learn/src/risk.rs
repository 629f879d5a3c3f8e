//! Trust signals: each principal's current risk, from its open findings,
//! kept as a history the decision point reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tenet_model::{Category, Finding, FindingStatus, RiskLevel, RiskPoint, Severity, Timestamp};

/// How much one finding weighs: its severity, scaled by confidence, less
/// once someone has acknowledged it; nothing once resolved or suppressed.
fn weight(f: &Finding) -> f64 {
    if !f.is_alert() || matches!(f.status, FindingStatus::Resolved | FindingStatus::Suppressed) {
        return 0.0;
    }
    let base: f64 = match f.severity {
        Severity::Low => 0.15,
        Severity::Medium => 0.35,
        Severity::High => 0.6,
        Severity::Critical => 0.85,
    };
    // Severity is the harm seen so far; risk is how far to trust the
    // principal now. Credentials likely in other hands are not to be
    // trusted before the harm shows.
    let base = if f.category == Category::LikelyMalicious { base.max(0.6) } else { base };
    let ack = if f.status == FindingStatus::Acknowledged { 0.8 } else { 1.0 };
    base * f.confidence.clamp(0.0, 1.0) * ack
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Risk {
    /// Principal → finding id → weight.
    open: BTreeMap<String, BTreeMap<String, f64>>,
    last: BTreeMap<String, u8>,
    changed: BTreeMap<String, ()>,
}

impl Risk {
    pub fn update(&mut self, f: &Finding) {
        let w = weight(f);
        let entry = self.open.entry(f.principal.clone()).or_default();
        if w > 0.0 {
            entry.insert(f.id.clone(), w);
        } else {
            entry.remove(&f.id);
        }
        self.changed.insert(f.principal.clone(), ());
    }

    /// Combined like independent probabilities: several findings raise the
    /// score, none can push it past 100.
    pub fn score(&self, principal: &str) -> u8 {
        let keep: f64 = self.open.get(principal).map_or(1.0, |m| m.values().map(|w| 1.0 - w).product());
        ((1.0 - keep) * 100.0).round().clamp(0.0, 100.0) as u8
    }

    pub fn take_changed(&mut self, now: i64) -> Vec<RiskPoint> {
        let mut out = Vec::new();
        for principal in std::mem::take(&mut self.changed).into_keys() {
            let score = self.score(&principal);
            if self.last.get(&principal) == Some(&score) {
                continue;
            }
            self.last.insert(principal.clone(), score);
            let findings = self.open.get(&principal).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            out.push(RiskPoint {
                principal,
                at: Timestamp::from_unix_nanos(now),
                score,
                level: RiskLevel::of(score),
                findings,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::Category;

    fn finding(id: &str, severity: Severity, status: FindingStatus, category: Category) -> Finding {
        Finding {
            id: id.into(),
            category,
            severity,
            confidence: 1.0,
            score: 60.0,
            principal: "p".into(),
            first_seen: Timestamp::from_unix_seconds(0),
            last_seen: Timestamp::from_unix_seconds(0),
            raised_at: Timestamp::from_unix_seconds(0),
            event_ids: vec![],
            techniques: vec![],
            summary: String::new(),
            status,
            alert: true,
            behaviours: vec![],
            explanation: String::new(),
            evidence: vec![],
            history: vec![],
        }
    }

    #[test]
    fn risk_rises_with_findings_and_falls_when_they_close() {
        let mut r = Risk::default();
        r.update(&finding("a", Severity::High, FindingStatus::Open, Category::LikelyMalicious));
        assert_eq!(r.score("p"), 60);
        r.update(&finding("b", Severity::Medium, FindingStatus::Open, Category::UnintendedDrift));
        assert_eq!(r.score("p"), 74);
        assert_eq!(RiskLevel::of(r.score("p")), RiskLevel::High);
        let points = r.take_changed(5);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].findings, vec!["a".to_string(), "b".to_string()]);
        r.update(&finding("a", Severity::High, FindingStatus::Resolved, Category::LikelyMalicious));
        assert_eq!(r.score("p"), 35);
        r.update(&finding("c", Severity::Critical, FindingStatus::Open, Category::ExpectedAdaptation));
        assert_eq!(r.score("p"), 35, "adaptation is not risk");
    }

    #[test]
    fn a_likely_compromise_is_high_risk_before_any_harm_shows() {
        let mut r = Risk::default();
        r.update(&finding("a", Severity::Medium, FindingStatus::Open, Category::LikelyMalicious));
        assert_eq!(RiskLevel::of(r.score("p")), RiskLevel::High);
        let mut drift = Risk::default();
        drift.update(&finding("b", Severity::Medium, FindingStatus::Open, Category::UnintendedDrift));
        assert_eq!(RiskLevel::of(drift.score("p")), RiskLevel::Medium);
    }
}
