//! Scoring findings against ground truth.
//!
//! A scenario is touched by a finding whose evidence shares an event with
//! the scenario's labels. Its category is judged on those findings: the
//! alerting finding raised first if there is one (what an analyst sees
//! first), else the first finding. An attack counts as raised when an
//! alerting finding touches it with an evidence precision (the share of
//! the finding's evidence events that belong to the scenario) of at least
//! [`MIN_EVIDENCE_PRECISION`]. Expected-adaptation scenarios succeed when
//! they raise no alert.
//!
//! False alerts are alerting findings whose evidence touches no labelled
//! event, counted per 10,000 benign events and per 1,000 principal-days
//! (a principal active on a day), the two rates the targets are set in.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tenet_model::{Category, Finding, Timestamp};

use crate::record::Label;

/// An attack is raised only by an alert at least this specific to it.
pub const MIN_EVIDENCE_PRECISION: f64 = 0.5;
/// The targets a world is held to.
pub const MAX_FALSE_ALERTS_PER_1000_PRINCIPAL_DAYS: f64 = 2.0;
pub const MAX_FALSE_ALERTS_PER_10K_BENIGN: f64 = 0.3;
pub const MIN_CATEGORY_ACCURACY: f64 = 0.8;

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub expected: String,
    /// Whether the scenario is an incident (anything but `expected_adaptation`).
    pub attack: bool,
    pub labelled_events: usize,
    /// Labelled events found in the store (the rest were never ingested).
    pub stored_events: usize,
    /// Some finding's evidence touches the scenario.
    pub detected: bool,
    /// For an incident: an alerting finding touches it with evidence
    /// precision of at least [`MIN_EVIDENCE_PRECISION`].
    pub raised: bool,
    /// The category judged (see the module docs), or `none`.
    pub given: String,
    pub category_correct: bool,
    /// Findings whose evidence touches the scenario.
    pub findings: Vec<String>,
    /// Of those, findings that alert (for an adaptation: alerts it is the
    /// main subject of, not an attack's alert that also touches it).
    pub alerts: usize,
    /// The best evidence precision among the alerts touching the scenario.
    pub evidence_precision: Option<f64>,
    pub first_event: Option<Timestamp>,
    pub detected_at: Option<Timestamp>,
    pub time_to_detect_seconds: Option<f64>,
}

/// How much activity the data set holds: the denominators of the rates.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Exposure {
    pub events: u64,
    pub principals: u64,
    pub principal_days: u64,
    pub days: u64,
}

/// Each target, its measured value and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub false_alerts_per_1000_principal_days: bool,
    pub false_alerts_per_10k_benign: bool,
    /// Incidents raised (see [`ScenarioResult::raised`]) of all incidents.
    pub attacks_raised: (usize, usize),
    pub every_attack_raised: bool,
    /// Incidents given their expected category, of all incidents.
    pub attacks_categorised: (usize, usize),
    pub category_accuracy: f64,
    pub category_accuracy_met: bool,
    /// Adaptations that raised no alert, of all adaptations.
    pub adaptations_quiet: (usize, usize),
    pub every_adaptation_quiet: bool,
    pub all_met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub scenarios: Vec<ScenarioResult>,
    /// expected category → given category → scenarios.
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
    pub findings: usize,
    /// Findings that alert.
    pub alerting_findings: usize,
    pub events: u64,
    pub benign_events: u64,
    pub principals: u64,
    pub principal_days: u64,
    pub days: u64,
    /// Alerting findings whose evidence touches no labelled event.
    pub false_findings: usize,
    pub false_findings_per_10k_benign: f64,
    pub false_alerts_per_1000_principal_days: f64,
    /// Alerting findings per day of data, and by the day they were raised.
    pub alerts_per_day: f64,
    pub alerts_by_day: BTreeMap<String, u64>,
    /// Mean evidence precision of the alerts that touch a labelled incident.
    pub mean_evidence_precision: Option<f64>,
    pub targets: Targets,
}

/// The share of `f`'s evidence events that are in `ids`.
fn precision(f: &Finding, ids: &HashSet<&str>) -> f64 {
    let all: HashSet<&str> = f.event_ids.iter().map(|e| e.as_str()).collect();
    if all.is_empty() {
        return 0.0;
    }
    all.iter().filter(|e| ids.contains(*e)).count() as f64 / all.len() as f64
}

fn per(n: usize, scale: f64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 * scale / of as f64 }
}

pub fn evaluate(
    labels: &[Label],
    findings: &[Finding],
    times: &HashMap<String, Timestamp>,
    exposure: Exposure,
) -> EvalReport {
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
    let mut precisions = Vec::new();
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
        let best = alerts.iter().map(|f| precision(f, &ids)).max_by(f64::total_cmp);
        if !adaptation {
            precisions.extend(alerts.iter().map(|f| precision(f, &ids)));
        }
        let raised = !adaptation && best.is_some_and(|p| p >= MIN_EVIDENCE_PRECISION);
        let category_correct = given == expected && (!adaptation || alerts.is_empty());
        *confusion.entry(expected.clone()).or_default().entry(given.clone()).or_default() += 1;
        results.push(ScenarioResult {
            scenario: scenario.to_string(),
            expected,
            attack: !adaptation,
            labelled_events: ids.len(),
            stored_events: ids.iter().filter(|id| times.contains_key(**id)).count(),
            detected: !hits.is_empty(),
            raised,
            given,
            category_correct,
            findings: hits.iter().map(|f| f.id.clone()).collect(),
            alerts: alerts.len(),
            evidence_precision: best,
            first_event,
            detected_at,
            time_to_detect_seconds: ttd,
        });
    }
    let stored_labelled = labelled.iter().filter(|id| times.contains_key(**id)).count() as u64;
    let benign_events = exposure.events.saturating_sub(stored_labelled);
    let alerting: Vec<&Finding> = findings.iter().filter(|f| f.is_alert()).collect();
    let false_findings = alerting.iter().filter(|f| !f.event_ids.iter().any(|e| labelled.contains(e.as_str()))).count();
    let mut alerts_by_day: BTreeMap<String, u64> = BTreeMap::new();
    for f in &alerting {
        let day = f.raised_at.to_string().chars().take(10).collect::<String>();
        *alerts_by_day.entry(day).or_default() += 1;
    }
    let false_per_10k = per(false_findings, 10_000.0, benign_events);
    let false_per_pd = per(false_findings, 1_000.0, exposure.principal_days);
    let count = |attack: bool, ok: &dyn Fn(&ScenarioResult) -> bool| {
        let all: Vec<&ScenarioResult> = results.iter().filter(|s| s.attack == attack).collect();
        (all.iter().filter(|s| ok(s)).count(), all.len())
    };
    let attacks_raised = count(true, &|s| s.raised);
    let attacks_categorised = count(true, &|s| s.category_correct);
    let adaptations_quiet = count(false, &|s| s.alerts == 0);
    let category_accuracy =
        if attacks_categorised.1 == 0 { 1.0 } else { attacks_categorised.0 as f64 / attacks_categorised.1 as f64 };
    let mut targets = Targets {
        false_alerts_per_1000_principal_days: false_per_pd <= MAX_FALSE_ALERTS_PER_1000_PRINCIPAL_DAYS,
        false_alerts_per_10k_benign: false_per_10k <= MAX_FALSE_ALERTS_PER_10K_BENIGN,
        attacks_raised,
        every_attack_raised: attacks_raised.0 == attacks_raised.1,
        attacks_categorised,
        category_accuracy,
        category_accuracy_met: category_accuracy >= MIN_CATEGORY_ACCURACY,
        adaptations_quiet,
        every_adaptation_quiet: adaptations_quiet.0 == adaptations_quiet.1,
        all_met: false,
    };
    targets.all_met = targets.false_alerts_per_1000_principal_days
        && targets.false_alerts_per_10k_benign
        && targets.every_attack_raised
        && targets.category_accuracy_met
        && targets.every_adaptation_quiet;
    EvalReport {
        scenarios: results,
        confusion,
        findings: findings.len(),
        alerting_findings: alerting.len(),
        events: exposure.events,
        benign_events,
        principals: exposure.principals,
        principal_days: exposure.principal_days,
        days: exposure.days,
        false_findings,
        false_findings_per_10k_benign: false_per_10k,
        false_alerts_per_1000_principal_days: false_per_pd,
        alerts_per_day: per(alerting.len(), 1.0, exposure.days),
        alerts_by_day,
        mean_evidence_precision: (!precisions.is_empty())
            .then(|| precisions.iter().sum::<f64>() / precisions.len() as f64),
        targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{EventId, FindingStatus, Severity};

    fn events(n: u64) -> Exposure {
        Exposure { events: n, principals: 10, principal_days: 100, days: 10 }
    }

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
            score: 60.0,
            principal: "p".into(),
            first_seen: Timestamp::from_unix_seconds(raised),
            last_seen: Timestamp::from_unix_seconds(raised),
            raised_at: Timestamp::from_unix_seconds(raised),
            event_ids: events.iter().map(|e| EventId::from(*e)).collect(),
            techniques: vec![],
            summary: String::new(),
            status: FindingStatus::Open,
            alert: true,
            behaviours: vec![],
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
            behaviour: None,
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
        let r = evaluate(&labels, &[attack.clone(), adapted.clone()], &times, events(100));
        let rollout = r.scenarios.iter().find(|s| s.scenario == "agent-tool-rollout").unwrap();
        assert_eq!(
            (rollout.alerts, rollout.given.as_str(), rollout.category_correct),
            (0, "expected_adaptation", true)
        );
        let injection = r.scenarios.iter().find(|s| s.scenario == "agent-prompt-injection").unwrap();
        assert!(injection.category_correct);
        // An alert whose strongest evidence is the rollout's counts against it.
        attack.evidence.reverse();
        let r = evaluate(&labels, &[attack, adapted], &times, events(100));
        let rollout = r.scenarios.iter().find(|s| s.scenario == "agent-tool-rollout").unwrap();
        assert_eq!((rollout.alerts, rollout.category_correct), (1, false));
    }

    #[test]
    fn no_findings_means_nothing_detected_and_no_false_findings() {
        let labels = vec![label("a", "credential-theft", Category::LikelyMalicious)];
        let times = HashMap::from([("a".to_string(), Timestamp::from_unix_seconds(10))]);
        let r = evaluate(&labels, &[], &times, events(10_001));
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
        let r = evaluate(&labels, &findings, &times, events(20_003));
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
        let r = evaluate(&labels, &findings, &times, events(100));
        assert!(!r.scenarios[0].category_correct);
        assert_eq!(r.scenarios[0].given, "abnormal_trust_relationship");
    }

    #[test]
    fn an_attack_is_raised_only_by_an_alert_whose_evidence_is_mostly_its_own() {
        let labels =
            vec![label("t1", "attack", Category::LikelyMalicious), label("t2", "attack", Category::LikelyMalicious)];
        let times = HashMap::from([("t1".to_string(), Timestamp::from_unix_seconds(10))]);
        // One technique event among three of the attacker's set-up: a third.
        let vague = finding("f1", Category::LikelyMalicious, &["t1", "s1", "s2"], 20);
        let r = evaluate(&labels, std::slice::from_ref(&vague), &times, events(1_000));
        let s = &r.scenarios[0];
        assert!(s.detected && !s.raised);
        assert!((s.evidence_precision.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!(!r.targets.every_attack_raised);
        let specific = finding("f2", Category::LikelyMalicious, &["t1", "t2", "s1"], 30);
        let r = evaluate(&labels, &[vague, specific], &times, events(1_000));
        assert!(r.scenarios[0].raised);
        assert_eq!(r.targets.attacks_raised, (1, 1));
        assert!((r.mean_evidence_precision.unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn false_alerts_are_rated_per_principal_day_and_counted_per_day() {
        let labels = vec![label("a", "attack", Category::LikelyMalicious)];
        let times = HashMap::from([("a".to_string(), Timestamp::from_unix_seconds(0))]);
        let day = 86_400;
        let findings = vec![
            finding("f1", Category::LikelyMalicious, &["x"], 10),
            finding("f2", Category::UnintendedDrift, &["y"], day + 10),
            finding("f3", Category::ExpectedAdaptation, &["z"], day + 20),
        ];
        let exposure = Exposure { events: 10_001, principals: 50, principal_days: 500, days: 10 };
        let r = evaluate(&labels, &findings, &times, exposure);
        assert_eq!((r.false_findings, r.alerting_findings), (2, 2));
        assert!((r.false_alerts_per_1000_principal_days - 4.0).abs() < 1e-9);
        assert!((r.alerts_per_day - 0.2).abs() < 1e-9);
        assert_eq!(r.alerts_by_day.values().copied().collect::<Vec<_>>(), vec![1, 1]);
        assert!(!r.targets.false_alerts_per_1000_principal_days && !r.targets.all_met);
        assert!(r.targets.every_adaptation_quiet, "no adaptation is labelled, so none is alerted");
    }
}
