//! `tenet simulate`, `tenet eval` and `tenet demo`, through the binary.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::{eval_labels, ingest_simulated, labels};
use serde_json::Value;

fn tenet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenet"))
}

const SIM: &[&str] =
    &["simulate", "--seed", "11", "--days", "3", "--humans", "24", "--agents", "8", "--scenario", "all"];

fn simulate(out: &Path) {
    let o = tenet().args(SIM).arg("--out").arg(out).output().expect("tenet runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_arguments_write_byte_identical_output() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    simulate(a.path());
    simulate(b.path());
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert!(ta.len() > 50, "expected many files, got {}", ta.len());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(bytes == &tb[path], "{} differs between runs", path.display());
    }
    let other = tempfile::tempdir().unwrap();
    let o = tenet()
        .args([
            "simulate",
            "--seed",
            "12",
            "--days",
            "3",
            "--humans",
            "24",
            "--agents",
            "8",
            "--scenario",
            "all",
            "--out",
        ])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_ne!(
        tree(other.path()).get(Path::new("labels.jsonl")),
        ta.get(Path::new("labels.jsonl")),
        "a different seed is a different enterprise"
    );
}

#[test]
fn everything_written_ingests_without_rejection_and_every_label_is_a_stored_event() {
    let out = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    simulate(out.path());
    let s = ingest_simulated(data.path(), out.path());
    for format in ["cloudtrail", "otlp", "okta", "k8s-audit"] {
        assert!(s["formats"][format]["stored"].as_u64().unwrap_or(0) > 100, "{format} missing: {s}");
    }
    // Only the non-telemetry files are skipped: README, manifest, labels, inventory.
    for skipped in s["skipped_files"].as_array().unwrap() {
        let p = skipped.as_str().unwrap();
        assert!(
            p.ends_with("README.md")
                || p.ends_with("manifest.json")
                || p.ends_with("labels.jsonl")
                || p.contains("/inventory/"),
            "{p}"
        );
    }

    let labels = labels(out.path());
    let scenarios: HashSet<&str> = labels.iter().map(|l| l["scenario"].as_str().unwrap()).collect();
    assert_eq!(scenarios.len(), 13, "every scenario labels at least one event: {scenarios:?}");
    let expected: BTreeMap<&str, &str> = [
        ("credential-theft", "likely_malicious"),
        ("agent-prompt-injection", "likely_malicious"),
        ("confused-deputy", "abnormal_trust_relationship"),
        ("role-chain-escalation", "likely_malicious"),
        ("permission-creep", "unintended_drift"),
        ("dormant-reactivation", "likely_malicious"),
        ("logging-tampered", "likely_malicious"),
        ("team-reorg", "expected_adaptation"),
        ("agent-tool-rollout", "expected_adaptation"),
        ("business-travel", "expected_adaptation"),
        ("new-device", "expected_adaptation"),
        ("new-hire", "expected_adaptation"),
        ("new-deployment", "expected_adaptation"),
    ]
    .into();
    for l in &labels {
        assert_eq!(l["category"].as_str(), expected.get(l["scenario"].as_str().unwrap()).copied(), "{l}");
        assert!(!l["principal"].as_str().unwrap().is_empty());
    }

    // Eval, with no findings yet: nothing detected, honestly; every
    // labelled event is found in the store.
    let r = eval_labels(data.path(), out.path());
    assert_eq!(r["scenarios"].as_array().unwrap().len(), 13);
    for sc in r["scenarios"].as_array().unwrap() {
        assert_eq!(sc["stored_events"], sc["labelled_events"], "labelled events missing from the store: {sc}");
    }
    let unique: HashSet<&str> = labels.iter().map(|l| l["event_id"].as_str().unwrap()).collect();
    assert_eq!(r["benign_events"].as_u64().unwrap(), s["stored"].as_u64().unwrap() - unique.len() as u64);
    // What the analysis makes of them is tests/learn_cli.rs's subject.
}

#[test]
fn each_shape_is_its_own_organisation_written_byte_for_byte_and_ingested_whole() {
    let args = |shape: &str| -> Vec<String> {
        ["simulate", "--seed", "11", "--days", "2", "--shape", shape, "--scenario", "all"].map(String::from).to_vec()
    };
    let run = |shape: &str, out: &Path| {
        let o = tenet().args(args(shape)).arg("--out").arg(out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b, e) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run("cloud-native", a.path());
    run("cloud-native", b.path());
    run("enterprise", e.path());
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(bytes == &tb[path], "{} differs between runs", path.display());
    }
    let manifest =
        |dir: &Path| -> Value { serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap() };
    let (cloud, enterprise) = (manifest(a.path()), manifest(e.path()));
    assert_eq!(cloud["shape"], "cloud-native");
    assert_eq!(enterprise["shape"], "enterprise");
    // Fewer people, more agents, and (per person) far more machine activity.
    assert!(cloud["humans"].as_u64() < enterprise["humans"].as_u64());
    assert!(cloud["agents"].as_u64() > enterprise["agents"].as_u64());
    let per_person =
        |m: &Value| m["written"]["formats"]["cloudtrail"].as_f64().unwrap() / m["humans"].as_f64().unwrap();
    assert!(per_person(&cloud) > 2.0 * per_person(&enterprise));
    let bad = tenet().args(args("startup")).arg("--out").arg(e.path().join("x")).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cloud-native"), "names the shapes");

    let data = tempfile::tempdir().unwrap();
    let o = tenet()
        .arg("--data-dir")
        .arg(data.path())
        .args(["ingest", "--no-analyse", "--json"])
        .arg(a.path())
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&o.stdout).expect("ingest summary");
    assert_eq!(o.status.code(), Some(0), "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
}

#[test]
fn demo_streams_through_the_pipeline_and_stops_when_done() {
    let data = tempfile::tempdir().unwrap();
    let o = tenet()
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "demo",
            "--addr",
            "127.0.0.1:0",
            "--speed",
            "1000000",
            "--days",
            "1",
            "--humans",
            "12",
            "--agents",
            "4",
            "--backfill-hours",
            "6",
            "--exit-when-done",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("http://127.0.0.1:"), "{stdout}");
    let committed: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stopped cleanly: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("final summary");
    assert!(committed > 1000);
    let ev = tenet().arg("--data-dir").arg(data.path()).args(["events", "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ev.stdout).lines().count() as u64, committed);
    // The feed was analysed as it ran: nothing is left pending.
    let a = tenet().arg("--data-dir").arg(data.path()).args(["analyse", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(report["events"], 0, "every fed event was already analysed: {report}");
    assert_eq!(report["learner"]["events"].as_u64(), Some(committed), "{report}");
}

#[test]
fn demo_interrupted_with_ctrl_c_keeps_everything_it_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let child = tenet()
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "demo",
            "--addr",
            "127.0.0.1:0",
            "--speed",
            "60",
            "--days",
            "2",
            "--humans",
            "12",
            "--agents",
            "4",
            "--backfill-hours",
            "3",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it run live for a moment, then press Ctrl-C.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    let committed: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stopped cleanly: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("final summary");
    assert!(committed > 0);
    let ev = tenet().arg("--data-dir").arg(data.path()).args(["events", "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ev.stdout).lines().count() as u64, committed, "acknowledged events lost");
}
