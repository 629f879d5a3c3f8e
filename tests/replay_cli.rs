//! `tenet simulate --replay`: real attack telemetry inside simulated
//! activity, through the binary, then ingested.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{eval_labels, ingest_simulated, labels};
use serde_json::Value;

fn stratus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cloudtrail/stratus-red-team")
}

fn tenet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenet"))
}

fn simulate(out: &Path, replay: &str) -> std::process::Output {
    tenet()
        .args(["simulate", "--seed", "3", "--days", "8", "--humans", "20", "--agents", "4", "--threads", "2"])
        .args(["--replay", replay, "--out"])
        .arg(out)
        .output()
        .expect("tenet runs")
}

#[test]
fn replayed_detonations_ingest_without_rejection_and_every_label_is_stored() {
    let out = tempfile::tempdir().unwrap();
    let replay = format!("{}@7", stratus().display());
    let o = simulate(out.path(), &replay);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("stratus:aws.persistence.iam-create-admin-user"), "{stdout}");

    let replayed: Vec<Value> =
        labels(out.path()).into_iter().filter(|l| l["scenario"].as_str().unwrap().starts_with("stratus:")).collect();
    assert_eq!(replayed.len(), 310);
    let scenarios: HashSet<&str> = replayed.iter().map(|l| l["scenario"].as_str().unwrap()).collect();
    assert_eq!(scenarios.len(), 35);

    let manifest: Value = serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["replays"].as_array().unwrap().len(), 35);

    let data = tempfile::tempdir().unwrap();
    let s = ingest_simulated(data.path(), out.path());
    assert_eq!(manifest["written"]["events"], s["stored"], "the manifest counts the replays too");

    // Every replayed event is in the store, at its simulated time.
    let r = eval_labels(data.path(), out.path());
    let stratus: Vec<&Value> = r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["scenario"].as_str().unwrap().starts_with("stratus:"))
        .collect();
    assert_eq!(stratus.len(), 35);
    for sc in stratus {
        assert_eq!(sc["expected"], "likely_malicious");
        assert_eq!(sc["stored_events"], sc["labelled_events"], "{sc}");
        let first = sc["first_event"].as_str().unwrap();
        assert!(first.starts_with("2026-10-12T"), "day 7 of a run from 2026-10-05: {sc}");
    }
}

#[test]
fn replays_are_byte_identical_run_to_run_and_bad_input_is_named() {
    let file = stratus().join("aws.persistence.iam-create-admin-user.json");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        let o = simulate(dir.path(), file.to_str().unwrap());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for name in ["labels.jsonl", "manifest.json", "README.md"] {
        assert_eq!(std::fs::read(a.path().join(name)).unwrap(), std::fs::read(b.path().join(name)).unwrap(), "{name}");
    }
    let replay_files = |root: &Path| {
        let mut found = Vec::new();
        let mut stack = vec![root.join("cloudtrail")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains("_replay_") {
                    found.push((p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
                }
            }
        }
        found
    };
    let (fa, fb) = (replay_files(a.path()), replay_files(b.path()));
    assert_eq!(fa.len(), 1);
    assert_eq!(fa, fb);
    // The default day is the last (day 7 of 8), at 13:00.
    assert!(
        fa[0].0.to_string_lossy().contains("_CloudTrail_ap-isob-central-3r_20261012T1300Z_replay_"),
        "{:?}",
        fa[0].0
    );

    // A file that is not CloudTrail fails before anything is generated.
    let bad = tempfile::tempdir().unwrap();
    let junk = bad.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let out = bad.path().join("out");
    let o = simulate(&out, junk.to_str().unwrap());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("junk.json: not CloudTrail"), "{err}");
    assert!(!out.join("labels.jsonl").exists());

    // A day past the end is refused with the argument named.
    let o = simulate(&out, &format!("{}@8", file.display()));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("past the simulation's last day"));

    // Bad records are left out, named, and the run exits 2.
    let mixed = bad.path().join("mixed.json");
    std::fs::write(
        &mixed,
        r#"[{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventTime":"2024-08-01T13:33:28Z","recipientAccountId":"111122223333"},
            {"eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}]"#,
    )
    .unwrap();
    let o = simulate(&out, mixed.to_str().unwrap());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mixed.json: [1]: eventTime: missing"));
    assert_eq!(labels(&out).iter().filter(|l| l["scenario"] == "stratus:mixed").count(), 1);
}

/// Invictus IR's recorded attack hour (55 CloudTrail delivery files): one
/// recording, only Stratus Red Team's own records labelled.
#[test]
fn a_recorded_attack_hour_replays_whole_and_ingests_without_rejection() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cloudtrail/invictus-ir");
    let out = tempfile::tempdir().unwrap();
    let o = tenet()
        .args(["simulate", "--seed", "3", "--days", "2", "--humans", "60", "--agents", "4", "--threads", "2"])
        .args(["--replay", &format!("{}@1", dir.display()), "--out"])
        .arg(out.path())
        .output()
        .expect("tenet runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("replay:invictus-ir") && stdout.contains("(210 labelled events of 2900)"), "{stdout}");

    let replayed: Vec<Value> =
        labels(out.path()).into_iter().filter(|l| l["scenario"] == "replay:invictus-ir").collect();
    assert_eq!(replayed.len(), 210);
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let entry = &manifest["replays"][0];
    assert_eq!((entry["records"].as_u64(), entry["labelled"].as_u64()), (Some(2900), Some(210)));
    assert_eq!(entry["label_agent"], "stratus-red-team_");
    assert_eq!(entry["attacker"]["recorded"], "arn:aws:iam::123837392027:user/bert-jan");
    assert_eq!(entry["others"][0]["recorded"], "arn:aws:iam::123837392027:user/benjamin");
    assert!(entry["others"][0]["simulated"].is_string(), "{entry}");

    let data = tempfile::tempdir().unwrap();
    let s = ingest_simulated(data.path(), out.path());
    assert_eq!(manifest["written"]["events"], s["stored"], "all 2,900 replayed records are stored");

    let r = eval_labels(data.path(), out.path());
    let sc = r["scenarios"].as_array().unwrap().iter().find(|s| s["scenario"] == "replay:invictus-ir").unwrap();
    assert_eq!(sc["expected"], "likely_malicious");
    assert_eq!((sc["stored_events"].as_u64(), sc["labelled_events"].as_u64()), (Some(210), Some(210)), "{sc}");
    assert!(sc["first_event"].as_str().unwrap().starts_with("2026-10-06T"), "day 1: {sc}");
}
