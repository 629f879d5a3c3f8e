//! The raw-bytes prefilter never changes what matches: every shared Sigma
//! rule, over every shared record Tenet reads (CloudTrail attacks and an
//! account under attack, Kubernetes audit), matches exactly the same
//! with the prefilter as without it.

use std::path::{Path, PathBuf};

use tenet_model::Event;
use tenet_sigma::RuleSet;
use tenet_sources::input;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared").join(rel)
}

fn events() -> Vec<Event> {
    let files = input::expand(&[shared("data")]).expect("shared data present");
    let mut out = Vec::new();
    for f in files {
        let Ok(data) = input::load(&f) else { continue };
        let Some(format) = tenet_sources::format::detect(&data) else { continue };
        format.read(&bytes::Bytes::from(data), &mut |r| out.extend(r.ok()));
    }
    out
}

#[test]
fn prefiltered_matching_equals_exhaustive_matching_on_all_shared_telemetry() {
    let (mut rules, report) = RuleSet::load_dir(&shared("data/sigma")).expect("rules load");
    assert!(report.total() > 50, "{report:?}");
    let events = events();
    let mut by_format = std::collections::BTreeMap::<String, usize>::new();
    for e in &events {
        *by_format.entry(e.source.format.to_string()).or_default() += 1;
    }
    assert!(by_format.get("cloudtrail").is_some_and(|&n| n > 1000), "{by_format:?}");
    assert!(by_format.get("k8s-audit").is_some_and(|&n| n > 20), "{by_format:?}");

    // Every shared CloudTrail rule has anchors, so records can be skipped.
    assert!(rules.anchored("cloudtrail"), "{:?}", rules.unanchored());
    for (f, title, texts) in rules.scanned() {
        eprintln!("scanned for: {f} {title}: {texts:?}");
    }
    let names = |m: Vec<tenet_learn::SigmaMatch>| m.into_iter().map(|m| m.rule.id).collect::<Vec<_>>();
    let fast: Vec<Vec<String>> = events.iter().map(|e| names(rules.matches(e))).collect();
    rules.set_prefilter(false);
    let slow: Vec<Vec<String>> = events.iter().map(|e| names(rules.matches(e))).collect();
    let matched = slow.iter().filter(|m| !m.is_empty()).count();
    assert!(matched > 100, "the comparison covers real matches: {matched}");
    for ((e, f), s) in events.iter().zip(&fast).zip(&slow) {
        assert_eq!(f, s, "event {} ({})", e.id, e.source.format);
    }
}

/// The simulated enterprise has what the shared data lacks: Okta (whose
/// `eventType` rules are checked against the operation) and many more
/// shapes of CloudTrail and Kubernetes audit.
#[test]
fn prefiltered_matching_equals_exhaustive_matching_on_simulated_telemetry() {
    let (mut rules, _) = RuleSet::load_dir(&shared("data/sigma")).expect("rules load");
    let sim = tenet_sim::Simulation::new(tenet_sim::Config {
        seed: 3,
        days: 2,
        humans: 20,
        agents: 4,
        scenarios: tenet_sim::ScenarioKind::ALL.to_vec(),
        ..Default::default()
    });
    let mut events = Vec::new();
    for h in 0..sim.hours() {
        for c in tenet_sim::output::render_hour(&sim, h, 3600, false).chunks {
            let format = tenet_sources::format::by_name(c.format).expect("a known format");
            format.read(&bytes::Bytes::from(c.bytes), &mut |r| events.extend(r.ok()));
        }
    }
    assert!(events.iter().any(|e| e.source.format == "okta"));
    let names = |m: Vec<tenet_learn::SigmaMatch>| m.into_iter().map(|m| m.rule.id).collect::<Vec<_>>();
    let fast: Vec<Vec<String>> = events.iter().map(|e| names(rules.matches(e))).collect();
    rules.set_prefilter(false);
    let slow: Vec<Vec<String>> = events.iter().map(|e| names(rules.matches(e))).collect();
    // The simulation's Okta traffic (sign-ins, SSO, MFA) matches none of the
    // shared Okta rules, which look for administrative changes: what this
    // shows for Okta is that the operation lookup drops nothing it should
    // keep, not that it keeps a match.
    assert!(slow.iter().filter(|m| !m.is_empty()).count() > 100, "the comparison covers real matches");
    for ((e, f), s) in events.iter().zip(&fast).zip(&slow) {
        assert_eq!(f, s, "event {} ({})", e.id, e.source.format);
    }
}
