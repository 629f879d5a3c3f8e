//! Scoring findings against ground truth.
//!
//! A scenario is detected when a finding's evidence shares an event with
//! the scenario's labels. Its category is judged on those findings: the
//! alerting finding raised first if there is one (what an analyst sees
//! first), else the first finding. Expected-adaptation scenarios succeed
//! when they are detected as `expected_adaptation` and raise no alert.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tenet_model::{Category, Finding, Timestamp};

use crate::record::Label;

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub expected: String,
    pub labelled_events: usize,
    /// Labelled events found in the store (the rest were never ingested).
    pub stored_events: usize,
    pub detected: bool,
    /// The category judged (see the module docs), or `none`.
    pub given: String,
    pub category_correct: bool,
    /// Findings whose evidence touches the scenario.
    pub findings: Vec<String>,
    /// Of those, findings that alert (any category but expected_adaptation).
    pub alerts: usize,
    pub first_event: Option<Timestamp>,
    pub detected_at: Option<Timestamp>,
    pub time_to_detect_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub scenarios: Vec<ScenarioResult>,
    /// expected category → given category → scenarios.
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
    pub findings: usize,
    pub events: u64,
    pub benign_events: u64,
    /// Alerting findings whose evidence touches no labelled event.
    pub false_findings: usize,
    pub false_findings_per_10k_benign: f64,
}

pub fn evaluate(labels: &[Label], findings: &[Finding], times: &HashMap<String, Timestamp>, events: u64) -> EvalReport {
    let mut by_scenario: BTreeMap<&str, Vec<&Label>> = BTreeMap::new();
    for l in labels {
        by_scenario.entry(l.scenario.as_str()).or_default().push(l);
    }
    let labelled: HashSet<&str> = labels.iter().map(|l| l.event_id.as_str()).collect();
    // The scenario a finding is about: the one labelling its strongest
    // evidence (evidence comes strongest first), else most of its events.
    // An attack's alert that also touches events of a legitimate change on
    // the same principal is the attack's, not an alert the change raised.
    let scenario_of: HashMap<&str, &str> = labels.iter().map(|l| (l.event_id.as_str(), l.scenario.as_str())).collect();
    let plurality = |ids: &mut dyn Iterator<Item = &str>| -> Option<&str> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in ids {
            if let Some(s) = scenario_of.get(e) {
                *counts.entry(s).or_default() += 1;
            }
        }
        counts.into_iter().max_by_key(|(s, n)| (*n, std::cmp::Reverse(*s))).map(|(s, _)| s)
    };
    let primary = |f: &Finding| -> Option<&str> {
        f.evidence
            .iter()
            .find_map(|ev| plurality(&mut ev.event_ids.iter().map(|e| e.as_str())))
            .or_else(|| plurality(&mut f.event_ids.iter().map(|e| e.as_str())))
    };
    let mut results = Vec::new();
    let mut confusion: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (scenario, ls) in by_scenario {
        let ids: HashSet<&str> = ls.iter().map(|l| l.event_id.as_str()).collect();
        let expected = ls[0].category.clone();
        let mut hits: Vec<&Finding> =
            findings.iter().filter(|f| f.event_ids.iter().any(|e| ids.contains(e.as_str()))).collect();
        hits.sort_by_key(|f| (f.raised_at, f.id.clone()));
        let adaptation = expected == Category::ExpectedAdaptation.as_str();
        let alerts: Vec<&&Finding> =
            hits.iter().filter(|f| f.is_alert() && (!adaptation || primary(f) == Some(scenario))).collect();
        let judged = if adaptation {
            alerts.first().copied().or(hits.iter().find(|f| !f.is_alert())).or(hits.first())
        } else {
            alerts.first().copied().or(hits.first())
        };
        let given = judged.map_or("none".to_string(), |f| f.category.as_str().to_string());
        let first_event = ids.iter().filter_map(|id| times.get(*id)).min().copied();
        // Time to the finding the scenario is judged by (its first alert, else its first finding).
        let detected_at = judged.map(|f| f.raised_at);
        let ttd = match (first_event, detected_at) {
            (Some(a), Some(b)) => Some((b.unix_nanos() - a.unix_nanos()) as f64 / 1e9),
            _ => None,
        };
        let category_correct = given == expected && (!adaptation || alerts.is_empty());
        *confusion.entry(expected.clone()).or_default().entry(given.clone()).or_default() += 1;
        results.push(ScenarioResult {
            scenario: scenario.to_string(),
            expected,
            labelled_events: ids.len(),
            stored_events: ids.iter().filter(|id| times.contains_key(**id)).count(),
            detected: !hits.is_empty(),
            given,
            category_correct,
            findings: hits.iter().map(|f| f.id.clone()).collect(),
            alerts: alerts.len(),
            first_event,
            detected_at,
            time_to_detect_seconds: ttd,
        });
    }
    let stored_labelled = labelled.iter().filter(|id| times.contains_key(**id)).count() as u64;
    let benign_events = events.saturating_sub(stored_labelled);
    let false_findings =
        findings.iter().filter(|f| f.is_alert() && !f.event_ids.iter().any(|e| labelled.contains(e.as_str()))).count();
    EvalReport {
        scenarios: results,
        confusion,
        findings: findings.len(),
        events,
        benign_events,
        false_findings,
        false_findings_per_10k_benign: if benign_events == 0 {
            0.0
        } else {
            false_findings as f64 * 10_000.0 / benign_events as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{EventId, FindingStatus, Severity};

    fn label(id: &str, scenario: &str, category: Category) -> Label {
        Label {
            event_id: id.into(),
            scenario: scenario.into(),
            category: category.as_str().into(),
            principal: "p".into(),
        }
    }

    fn finding(id: &str, category: Category, events: &[&str], raised: i64) -> Finding {
        Finding {
            id: id.into(),
            category,
            severity: Severity::High,
            confidence: 0.9,
            principal: "p".into(),
            first_seen: Timestamp::from_unix_seconds(raised),
            last_seen: Timestamp::from_unix_seconds(raised),
            raised_at: Timestamp::from_unix_seconds(raised),
            event_ids: events.iter().map(|e| EventId::from(*e)).collect(),
            techniques: vec![],
            summary: String::new(),
            status: FindingStatus::Open,
            explanation: String::new(),
            evidence: vec![],
            history: vec![],
        }
    }

    #[test]
    fn an_attack_alert_touching_a_legitimate_change_is_not_counted_against_the_change() {
        let labels = vec![
            label("x1", "agent-prompt-injection", Category::RiskyWorkflowInteraction),
            label("r1", "agent-tool-rollout", Category::ExpectedAdaptation),
            label("r2", "agent-tool-rollout", Category::ExpectedAdaptation),
            label("r3", "agent-tool-rollout", Category::ExpectedAdaptation),
        ];
        let times: HashMap<String, Timestamp> =
            ["x1", "r1", "r2", "r3"].iter().map(|e| (e.to_string(), Timestamp::from_unix_seconds(5))).collect();
        let evidence = |events: &[&str]| tenet_model::Evidence {
            detector: "sequence".into(),
            detail: String::new(),
            at: Timestamp::from_unix_seconds(5),
            event_ids: events.iter().map(|e| EventId::from(*e)).collect(),
            baseline: None,
            rule: None,
            path: vec![],
        };
        // Strongest evidence is the injection; most events are the rollout's.
        let mut attack = finding("f1", Category::RiskyWorkflowInteraction, &["r1", "r2", "r3", "x1"], 6);
        attack.evidence = vec![evidence(&["x1"]), evidence(&["r1", "r2", "r3"])];
        let adapted = finding("f2", Category::ExpectedAdaptation, &["r1", "r2"], 7);
        let r = evaluate(&labels, &[attack.clone(), adapted.clone()], &times, 100);
        let rollout = r.scenarios.iter().find(|s| s.scenario == "agent-tool-rollout").unwrap();
        assert_eq!(
            (rollout.alerts, rollout.given.as_str(), rollout.category_correct),
            (0, "expected_adaptation", true)
        );
        let injection = r.scenarios.iter().find(|s| s.scenario == "agent-prompt-injection").unwrap();
        assert!(injection.category_correct);
        // An alert whose strongest evidence is the rollout's counts against it.
        attack.evidence.reverse();
        let r = evaluate(&labels, &[attack, adapted], &times, 100);
        let rollout = r.scenarios.iter().find(|s| s.scenario == "agent-tool-rollout").unwrap();
        assert_eq!((rollout.alerts, rollout.category_correct), (1, false));
    }

    #[test]
    fn no_findings_means_nothing_detected_and_no_false_findings() {
        let labels = vec![label("a", "credential-theft", Category::LikelyMalicious)];
        let times = HashMap::from([("a".to_string(), Timestamp::from_unix_seconds(10))]);
        let r = evaluate(&labels, &[], &times, 10_001);
        assert!(!r.scenarios[0].detected);
        assert_eq!(r.scenarios[0].given, "none");
        assert_eq!(r.benign_events, 10_000);
        assert_eq!(r.false_findings, 0);
        assert_eq!(r.confusion["likely_malicious"]["none"], 1);
    }

    #[test]
    fn detection_category_time_and_false_findings_are_scored() {
        let labels = vec![
            label("a", "credential-theft", Category::LikelyMalicious),
            label("b", "credential-theft", Category::LikelyMalicious),
            label("c", "team-reorg", Category::ExpectedAdaptation),
        ];
        let times = HashMap::from([
            ("a".to_string(), Timestamp::from_unix_seconds(100)),
            ("b".to_string(), Timestamp::from_unix_seconds(160)),
            ("c".to_string(), Timestamp::from_unix_seconds(500)),
        ]);
        let findings = vec![
            finding("f1", Category::LikelyMalicious, &["b"], 190),
            finding("f2", Category::ExpectedAdaptation, &["c"], 600),
            finding("f3", Category::UnintendedDrift, &["x"], 700),
        ];
        let r = evaluate(&labels, &findings, &times, 20_003);
        let theft = &r.scenarios[0];
        assert!(theft.detected && theft.category_correct);
        assert_eq!(theft.time_to_detect_seconds, Some(90.0));
        let reorg = &r.scenarios[1];
        assert!(reorg.category_correct);
        assert_eq!(reorg.alerts, 0);
        assert_eq!(r.false_findings, 1);
        assert!((r.false_findings_per_10k_benign - 0.5).abs() < 1e-9);
    }

    #[test]
    fn an_alert_on_an_adaptation_scenario_is_not_correct() {
        let labels = vec![label("c", "agent-tool-rollout", Category::ExpectedAdaptation)];
        let times = HashMap::new();
        let findings = vec![finding("f", Category::AbnormalTrustRelationship, &["c"], 1)];
        let r = evaluate(&labels, &findings, &times, 100);
        assert!(!r.scenarios[0].category_correct);
        assert_eq!(r.scenarios[0].given, "abnormal_trust_relationship");
    }
}
