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
