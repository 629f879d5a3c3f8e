//! Issue 12's targets, checked in CI on a short run of two worlds: an
//! enterprise from `../shared/tools/enterprise-devset/` (designed without
//! Tenet's simulator, in real formats, with labels) and the simulator's own,
//! seven days each. The full 21-day figures per world, tuned and held out,
//! are in the README; these keep them from regressing.
//!
//! Targets: at most 2 false alerts per 1,000 principal-days and 0.3 per
//! 10,000 benign events; every attack raised by an alert whose evidence is
//! at least half its own; the category right for at least 80% of attacks;
//! every adaptation quiet.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{json, ok};
use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}

/// Every target of the evaluation, each with the figures behind it.
fn assert_targets(world: &str, eval: &Value) {
    let t = &eval["targets"];
    let per_pd = eval["false_alerts_per_1000_principal_days"].as_f64().unwrap();
    let per_10k = eval["false_findings_per_10k_benign"].as_f64().unwrap();
    assert!(eval["benign_events"].as_u64().unwrap() > 10_000, "{world}: enough background to measure");
    assert!(per_pd <= 2.0, "{world}: {per_pd:.2} false alerts per 1,000 principal-days ({})", eval["false_findings"]);
    assert!(per_10k <= 0.3, "{world}: {per_10k:.2} false alerts per 10,000 benign events");
    let pair = |k: &str| (t[k][0].as_u64().unwrap(), t[k][1].as_u64().unwrap());
    let (raised, attacks) = pair("attacks_raised");
    assert!(attacks >= 3, "{world}: attacks to find: {attacks}");
    let missed: Vec<String> = eval["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["attack"] == true && s["raised"] != true)
        .map(|s| format!("{} (precision {}, given {})", s["scenario"], s["evidence_precision"], s["given"]))
        .collect();
    assert_eq!(raised, attacks, "{world}: attacks not raised by an alert with precise evidence: {missed:?}");
    let (right, _) = pair("attacks_categorised");
    assert!(right * 5 >= attacks * 4, "{world}: {right} of {attacks} attacks given the right category");
    let (quiet, adaptations) = pair("adaptations_quiet");
    assert!(adaptations >= 1, "{world}: adaptations to leave quiet: {adaptations}");
    let loud: Vec<&Value> = eval["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["expected"] == "expected_adaptation" && s["alerts"] != 0)
        .collect();
    assert_eq!(quiet, adaptations, "{world}: adaptations alerted: {loud:?}");
    assert_eq!(t["all_met"], true, "{world}: {t}");
}

/// Python runs the dev-set generator; CI installs it (`.ci/run`), elsewhere
/// its absence skips loudly.
fn python() -> Option<&'static str> {
    let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some("python3");
    }
    assert!(
        std::env::var_os("TENET_REQUIRE_EXTERNAL").is_none(),
        "python3 is required (TENET_REQUIRE_EXTERNAL is set) to generate the dev-set enterprise"
    );
    eprintln!("SKIPPED: python3 is not installed: the dev-set enterprise cannot be generated");
    None
}

#[test]
fn a_devset_enterprise_over_seven_days_meets_the_detection_targets() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let data = dir.path().join("data");
    let o = Command::new(python)
        .arg(shared("tools/enterprise-devset/gen.py"))
        .arg(&world)
        .args(["--seed", "5", "--days", "7", "--profile", "platform"])
        .output()
        .unwrap();
    assert!(o.status.success(), "gen.py: {}", String::from_utf8_lossy(&o.stderr));
    // Each inventory snapshot is imported as of when it was collected.
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(world.join("manifest.json")).unwrap()).unwrap();
    let snapshots = manifest["inventory_snapshots"].as_array().unwrap();
    assert!(!snapshots.is_empty());
    for s in snapshots {
        let day = world.join("inventory").join(s["date"].as_str().unwrap());
        ok(&data, &["import", day.to_str().unwrap(), "--at", s["collected_at"].as_str().unwrap()]);
    }
    let telemetry = ["cloudtrail", "okta", "otlp"].map(|d| world.join(d).display().to_string());
    let ingested = json(&data, &["ingest", &telemetry[0], &telemetry[1], &telemetry[2], "--json"]);
    assert_eq!(ingested["rejected"].as_u64().unwrap_or(0), 0, "{ingested}");
    let labels = world.join("labels.jsonl");
    let eval = json(&data, &["eval", "--labels", labels.to_str().unwrap(), "--json"]);
    assert_targets("dev-set platform, seed 5, 7 days", &eval);
}

#[test]
fn a_simulated_enterprise_over_seven_days_meets_the_detection_targets() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let data = dir.path().join("data");
    ok(
        &data,
        &[
            "simulate",
            "--seed",
            "11",
            "--days",
            "7",
            "--humans",
            "40",
            "--agents",
            "8",
            // Every scenario but dormant-reactivation: an account quiet
            // for weeks cannot happen in seven days (the 21-day worlds
            // have it).
            "--scenario",
            "credential-theft",
            "--scenario",
            "agent-prompt-injection",
            "--scenario",
            "confused-deputy",
            "--scenario",
            "role-chain-escalation",
            "--scenario",
            "permission-creep",
            "--scenario",
            "logging-tampered",
            "--scenario",
            "team-reorg",
            "--scenario",
            "agent-tool-rollout",
            "--scenario",
            "business-travel",
            "--scenario",
            "new-device",
            "--scenario",
            "new-hire",
            "--scenario",
            "new-deployment",
            "--out",
            sim.to_str().unwrap(),
        ],
    );
    let mut days: Vec<PathBuf> = std::fs::read_dir(sim.join("inventory")).unwrap().map(|e| e.unwrap().path()).collect();
    days.sort();
    for day in days {
        let at = format!("{}T00:00:00Z", day.file_name().unwrap().to_string_lossy());
        ok(&data, &["import", day.to_str().unwrap(), "--at", &at]);
    }
    ok(&data, &["ingest", sim.to_str().unwrap()]);
    let labels = sim.join("labels.jsonl");
    let eval = json(&data, &["eval", "--labels", labels.to_str().unwrap(), "--json"]);
    assert_targets("simulator, seed 11, 7 days", &eval);
}
