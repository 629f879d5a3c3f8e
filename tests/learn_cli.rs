//! The learn stage through the binary: baselines, detectors, Sigma rules,
//! classification, findings with their lifecycle, and risk, on a simulated
//! enterprise with every labelled scenario and every Stratus Red Team
//! detonation (real CloudTrail) replayed into its background.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;

use common::{json, json_lines, ok, run};
use serde_json::{Value, json as j};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}

const STRATUS: &str = "data/cloudtrail/stratus-red-team";
/// Detonations per simulated day; each on a day gets its own keyed person.
const PER_DAY: usize = 7;
const FIRST_ATTACK_DAY: usize = 7;

/// Twelve simulated days with every scenario, the 35 detonations replayed
/// from day 7 on, the inventory imported day by day, all ingested with the
/// shared Sigma rules and analysed: built once for every test here.
struct Analysed {
    dir: tempfile::TempDir,
    labels: Vec<Value>,
    eval: Value,
}

impl Analysed {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A private copy of the store, for tests that change findings.
    ///
    /// Databases are copied through SQLite (`VACUUM INTO`), not as files:
    /// other tests' CLI processes read the shared store meanwhile, and a
    /// file copy taken while one of them checkpoints its WAL can pair a
    /// database file with the wrong log.
    fn copy(&self) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(self.data()).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("-wal") || name.ends_with("-shm") || e.path().is_dir() {
                continue;
            }
            if name.ends_with(".db") {
                let conn = rusqlite::Connection::open_with_flags(e.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
                conn.execute("VACUUM INTO ?1", [to.path().join(&name).to_str().unwrap()]).unwrap();
            } else {
                std::fs::copy(e.path(), to.path().join(&name)).unwrap();
            }
        }
        to
    }

    fn scenario(&self, name: &str) -> &Value {
        let all = self.eval["scenarios"].as_array().unwrap();
        all.iter().find(|s| s["scenario"] == name).unwrap_or_else(|| panic!("no scenario {name} in the evaluation"))
    }
}

fn analysed() -> &'static Analysed {
    static A: OnceLock<Analysed> = OnceLock::new();
    A.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sim = dir.path().join("sim");
        let data = dir.path().join("data");
        let mut files: Vec<PathBuf> = std::fs::read_dir(shared(STRATUS))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 35, "the shared Stratus Red Team detonations");
        let mut args: Vec<String> =
            ["simulate", "--seed", "7", "--days", "12", "--humans", "60", "--agents", "8", "--scenario", "all"]
                .map(String::from)
                .to_vec();
        for (i, f) in files.iter().enumerate() {
            args.push("--replay".into());
            args.push(format!("{}@{}", f.display(), FIRST_ATTACK_DAY + i / PER_DAY));
        }
        args.push("--out".into());
        args.push(sim.display().to_string());
        let o = Command::new(env!("CARGO_BIN_EXE_tenet")).args(&args).output().unwrap();
        assert!(o.status.success(), "simulate: {}", String::from_utf8_lossy(&o.stderr));
        let mut days: Vec<PathBuf> =
            std::fs::read_dir(sim.join("inventory")).unwrap().map(|e| e.unwrap().path()).collect();
        days.sort();
        for day in days {
            let at = format!("{}T00:00:00Z", day.file_name().unwrap().to_string_lossy());
            ok(&data, &["import", day.to_str().unwrap(), "--at", &at]);
        }
        let rules = shared("data/sigma");
        ok(&data, &["ingest", sim.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
        let labels = std::fs::read_to_string(sim.join("labels.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let eval = json(&data, &["eval", "--labels", sim.join("labels.jsonl").to_str().unwrap(), "--json"]);
        Analysed { dir, labels, eval }
    })
}

/// A role session's role: `arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R`.
fn role_of_session(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":assumed-role/")?;
    let account = head.rsplit(':').next()?;
    let role = rest.split('/').next()?;
    Some(format!("arn:aws:iam::{account}:role/{role}"))
}

#[test]
fn every_stratus_detonation_raises_a_finding_on_its_attacker_that_is_not_adaptation() {
    let a = analysed();
    // The attacker: the labelled principal and who it acts as (a role
    // session's role), from the actor chains of its first records.
    let mut by_scenario: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut looked_up: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &a.labels {
        let s = l["scenario"].as_str().unwrap();
        if s.starts_with("stratus:") {
            let p = l["principal"].as_str().unwrap();
            let who = by_scenario.entry(s).or_default();
            who.insert(p.to_string());
            who.extend(role_of_session(p));
            // A role session named by an email is that person's (the learner
            // attributes it to `user:<email>`).
            if let Some(name) = p.rsplit('/').next().filter(|n| n.contains('@') && p.contains(":assumed-role/")) {
                who.insert(format!("user:{name}"));
            }
            let n = looked_up.entry(s).or_default();
            if *n < 3 {
                *n += 1;
                let chain = json(&a.data(), &["chain", l["event_id"].as_str().unwrap(), "--json"]);
                for hop in chain[0]["chain"].as_array().unwrap() {
                    who.insert(hop["id"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(by_scenario.len(), 35, "every detonation is labelled");
    let mut missed = Vec::new();
    for (scenario, attackers) in &by_scenario {
        let s = a.scenario(scenario);
        let on_attacker: Vec<Value> = s["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| json(&a.data(), &["finding", id.as_str().unwrap(), "--json"]))
            .filter(|f| f["category"] != "expected_adaptation")
            .filter(|f| attackers.contains(f["principal"].as_str().unwrap()))
            .collect();
        if on_attacker.is_empty() {
            missed.push(format!("{scenario} (attackers {attackers:?}; evaluation {s})"));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of 35 detonations raised nothing on their attacker:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

/// Every incident is raised; its category is right for at least 80% of
/// them (issue 12's target: a role chain to admin read as an abnormal trust
/// relationship is still raised); legitimate change never alerts.
#[test]
fn simulated_scenarios_are_raised_mostly_with_their_category_and_adaptations_raise_no_alert() {
    let a = analysed();
    let (mut incidents, mut right, mut wrong) = (0, 0, Vec::new());
    for name in [
        "credential-theft",
        "agent-prompt-injection",
        "confused-deputy",
        "role-chain-escalation",
        "permission-creep",
        "dormant-reactivation",
        "logging-tampered",
        "team-reorg",
        "agent-tool-rollout",
    ] {
        let s = a.scenario(name);
        if s["expected"] == "expected_adaptation" {
            assert_eq!(s["alerts"], 0, "{name} is legitimate change: recorded, never alerted: {s}");
            assert_eq!(s["given"], s["expected"], "{name}: {s}");
            continue;
        }
        incidents += 1;
        assert_eq!(s["raised"], true, "{name}: raised by an alert with precise evidence: {s}");
        if s["category_correct"] == true {
            right += 1;
        } else {
            wrong.push(format!("{name}: {} for {}", s["given"], s["expected"]));
        }
    }
    assert!(right * 5 >= incidents * 4, "{right} of {incidents} with the right category; wrong: {wrong:?}");
}

#[test]
fn benign_background_raises_at_most_one_alert_per_ten_thousand_events() {
    let a = analysed();
    let benign = a.eval["benign_events"].as_u64().unwrap();
    assert!(benign > 50_000, "enough background to measure: {benign}");
    let rate = a.eval["false_findings_per_10k_benign"].as_f64().unwrap();
    assert!(rate <= 1.0, "{rate} alerting findings per 10,000 benign events ({} in all)", a.eval["false_findings"]);
}

#[test]
fn findings_are_json_lines_with_the_contract_fields() {
    let a = analysed();
    let all = json_lines(&a.data(), &["findings", "--json"]);
    assert!(all.len() >= 40, "{} findings", all.len());
    let categories = [
        "expected_adaptation",
        "unintended_drift",
        "risky_workflow_interaction",
        "abnormal_trust_relationship",
        "likely_malicious",
    ];
    let mut ids = BTreeSet::new();
    for f in &all {
        assert!(f["id"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(ids.insert(f["id"].as_str().unwrap().to_string()), "deduplicated: {f}");
        assert!(categories.contains(&f["category"].as_str().unwrap()), "{f}");
        assert!(["low", "medium", "high", "critical"].contains(&f["severity"].as_str().unwrap()), "{f}");
        let c = f["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c), "{f}");
        assert!(f["principal"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        let (first, last) = (f["first_seen"].as_str().unwrap(), f["last_seen"].as_str().unwrap());
        assert!(first.ends_with('Z') && last.ends_with('Z') && first <= last, "{f}");
        assert!(!f["event_ids"].as_array().unwrap().is_empty(), "evidence events: {f}");
        assert!(f["techniques"].is_array(), "{f}");
        assert!(f["summary"].as_str().is_some_and(|s| s.len() > 40), "{f}");
        assert_eq!(f["status"], "open", "{f}");
    }
    // Malicious findings carry ATT&CK techniques.
    let malicious: Vec<&Value> = all.iter().filter(|f| f["category"] == "likely_malicious").collect();
    assert!(malicious.len() >= 20, "{}", malicious.len());
    assert!(
        malicious.iter().all(|f| f["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with('T')))
    );
    assert!(malicious.iter().filter(|f| !f["techniques"].as_array().unwrap().is_empty()).count() * 2 > malicious.len());

    // Filters select, and only select.
    let only = json_lines(&a.data(), &["findings", "--category", "likely_malicious", "--json"]);
    assert_eq!(only.len(), malicious.len());
    let p = malicious[0]["principal"].as_str().unwrap();
    let mine = json_lines(&a.data(), &["findings", "--principal", p, "--json"]);
    assert!(!mine.is_empty() && mine.iter().all(|f| f["principal"] == p));
    assert_eq!(json_lines(&a.data(), &["findings", "--status", "open", "--json"]).len(), all.len());
    assert!(json_lines(&a.data(), &["findings", "--status", "resolved", "--json"]).is_empty());
    let bad = run(&a.data(), &["findings", "--category", "evil"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("likely_malicious"), "names the valid categories");
}

#[test]
fn findings_as_ocsf_are_detection_findings_with_the_category_in_types() {
    let a = analysed();
    let plain = json_lines(&a.data(), &["findings", "--json"]);
    let ocsf = json_lines(&a.data(), &["findings", "--format", "ocsf"]);
    assert_eq!(ocsf.len(), plain.len());
    for (o, f) in ocsf.iter().zip(&plain) {
        assert_eq!(o["class_uid"], 2004, "{o}");
        assert_eq!(o["category_uid"], 2, "{o}");
        assert_eq!(o["finding_info"]["uid"], f["id"], "{o}");
        let types: Vec<&str> =
            o["finding_info"]["types"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(types.contains(&f["category"].as_str().unwrap()), "{o}");
        assert!(o["metadata"]["version"].is_string() && o["time"].is_number(), "{o}");
    }
}

#[test]
fn one_finding_shows_its_evidence_and_why_it_has_its_category() {
    let a = analysed();
    let s = a.scenario("credential-theft");
    let id = s["findings"][0].as_str().unwrap();
    let text = ok(&a.data(), &["finding", id]);
    assert!(text.contains("why this category:"), "{text}");
    assert!(text.contains("evidence:"), "{text}");
    assert!(text.contains("baseline ("), "the baseline statistic deviated from: {text}");
    let f = json(&a.data(), &["finding", id, "--json"]);
    let evidence = f["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| !e["event_ids"].as_array().unwrap().is_empty()), "{f}");
    assert!(evidence.iter().any(|e| e["baseline"].is_object()), "{f}");
    // Sigma rules matched are evidence too, named by id and file.
    let with_rules: usize = json_lines(&a.data(), &["findings", "--json"])
        .iter()
        .filter(|f| f["evidence"].as_array().unwrap().iter().any(|e| e["rule"]["id"].is_string()))
        .count();
    assert!(with_rules > 0, "some finding cites a Sigma rule");
    let missing = run(&a.data(), &["finding", "f-0000000000000000"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("f-0000000000000000"));
}

#[test]
fn a_findings_lifecycle_is_recorded_with_reasons_and_survives_restart_and_reanalysis() {
    let a = analysed();
    let store = a.copy();
    let data = store.path();
    let alerts: Vec<String> = json_lines(data, &["findings", "--category", "likely_malicious", "--json"])
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let (first, second) = (&alerts[0], &alerts[1]);

    let acked = json(data, &["finding", first, "--ack", "--reason", "on it", "--json"]);
    assert_eq!(acked["status"], "acknowledged");
    let resolved = json(data, &["finding", first, "--resolve", "--reason", "key rotated, sessions revoked", "--json"]);
    assert_eq!(resolved["status"], "resolved");
    let history = resolved["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{resolved}");
    assert_eq!((history[0]["from"].as_str(), history[0]["to"].as_str()), (Some("open"), Some("acknowledged")));
    assert_eq!(history[1]["reason"], "key rotated, sessions revoked");
    assert!(history[1]["at"].as_str().unwrap() >= history[0]["at"].as_str().unwrap());

    // Suppression needs a reason; a change to the same status is refused.
    let no_reason = run(data, &["finding", second, "--suppress"]);
    assert!(!no_reason.status.success());
    assert!(String::from_utf8_lossy(&no_reason.stderr).contains("--reason"));
    json(data, &["finding", second, "--suppress", "--reason", "red-team exercise", "--json"]);
    let again = run(data, &["finding", second, "--suppress", "--reason", "twice"]);
    assert!(!again.status.success(), "suppressing a suppressed finding is refused");

    // Every command is a fresh process: the changes are in the store. New
    // analysis (of events already analysed, and of new ones) keeps them.
    ok(data, &["analyse"]);
    let more = shared("data/cloudtrail/stratus-red-team/aws.discovery.ec2-download-user-data.json");
    let report = json(data, &["ingest", more.to_str().unwrap(), "--json"]);
    assert!(report["analysis"]["events"].as_u64().unwrap() > 0, "new events were analysed: {report}");
    let after = json(data, &["finding", first, "--json"]);
    assert_eq!(after["status"], "resolved");
    assert_eq!(after["history"].as_array().unwrap().len(), 2);
    assert_eq!(json(data, &["finding", second, "--json"])["status"], "suppressed");
    let resolved_list = json_lines(data, &["findings", "--status", "resolved", "--json"]);
    assert_eq!(resolved_list.len(), 1);
    assert_eq!(resolved_list[0]["id"], first.as_str());
    let reopened = json(data, &["finding", first, "--reopen", "--reason", "seen again", "--json"]);
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["history"].as_array().unwrap().len(), 3);
}

#[test]
fn every_principal_has_a_risk_score_and_attackers_score_high_with_history() {
    let a = analysed();
    let risk = json_lines(&a.data(), &["risk", "--json"]);
    assert!(risk.len() >= 20, "{}", risk.len());
    for r in &risk {
        let score = r["score"].as_u64().unwrap();
        assert!(score <= 100, "{r}");
        assert!(["low", "medium", "high", "critical"].contains(&r["level"].as_str().unwrap()), "{r}");
    }
    let theft = a.scenario("credential-theft");
    let f = json(&a.data(), &["finding", theft["findings"][0].as_str().unwrap(), "--json"]);
    let p = f["principal"].as_str().unwrap();
    let mine = risk.iter().find(|r| r["principal"] == p).unwrap_or_else(|| panic!("no risk for {p}"));
    assert!(["high", "critical"].contains(&mine["level"].as_str().unwrap()), "{mine}");
    assert!(mine["findings"].as_array().unwrap().iter().any(|id| *id == f["id"]), "{mine}");
    let history = json_lines(&a.data(), &["risk", p, "--history", "--json"]);
    assert!(!history.is_empty());
    let times: Vec<&str> = history.iter().map(|h| h["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");
}

#[test]
fn baselines_take_at_most_two_kib_per_principal() {
    let a = analysed();
    let report = json(&a.data(), &["analyse", "--json"]);
    let learner = &report["learner"];
    assert!(learner["principals"].as_u64().unwrap() >= 60, "{learner}");
    let bytes = learner["bytes_per_principal"].as_u64().unwrap();
    assert!(bytes <= 2048, "{bytes} bytes per principal baseline");
}

/// Every CloudTrail record of the simulated enterprise, in time order, in
/// one delivery file: the shape a live account's feed has.
fn ordered_cloudtrail(sim: &Path, to: &Path) -> usize {
    let mut records: Vec<Value> = Vec::new();
    let mut dirs = vec![sim.join("cloudtrail")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
                    &mut text,
                )
                .unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                records.extend(v["Records"].as_array().unwrap().iter().cloned());
            }
        }
    }
    records.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
    // A few simulated session keys are still used seconds before the call
    // that issues them (ECS task sessions, a mid-day team change); a live
    // feed cannot do that, so those calls are left out.
    let mut issued = std::collections::HashSet::new();
    records.retain(|r| {
        if let Some(k) = r["responseElements"]["credentials"]["accessKeyId"].as_str() {
            issued.insert(k.to_string());
        }
        match r["userIdentity"]["accessKeyId"].as_str() {
            Some(k) if k.starts_with("ASIA") => issued.contains(k),
            _ => true,
        }
    });
    std::fs::write(to, serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap()).unwrap();
    records.len()
}

#[test]
fn events_in_order_are_analysed_as_stored_with_the_same_result_as_reading_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let o = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "9", "--days", "6", "--humans", "24", "--agents", "4", "--scenario", "all"])
        .arg("--out")
        .arg(&sim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = dir.path().join("ordered.json");
    let n = ordered_cloudtrail(&sim, &file);
    assert!(n > 10_000, "{n} records");
    let rules = shared("data/sigma");
    let (streamed, read_back) = (dir.path().join("streamed"), dir.path().join("read-back"));
    let report = json(&streamed, &["ingest", file.to_str().unwrap(), "--rules", rules.to_str().unwrap(), "--json"]);
    assert_eq!(report["analysis"]["streamed"], true, "analysed as stored: {report}");
    assert_eq!(report["analysis"]["events"].as_u64(), Some(n as u64));
    json(&read_back, &["ingest", file.to_str().unwrap(), "--no-analyse", "--json"]);
    let again = json(&read_back, &["analyse", "--rules", rules.to_str().unwrap(), "--json"]);
    assert_eq!(again["streamed"], false);
    // Same findings, same evidence, same risk, whichever way.
    let strip = |fs: Vec<Value>| -> Vec<Value> {
        let mut fs: Vec<Value> = fs
            .into_iter()
            .map(|mut f| {
                f.as_object_mut().unwrap().remove("history");
                f
            })
            .collect();
        fs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        fs
    };
    let a = strip(json_lines(&streamed, &["findings", "--json"]));
    let b = strip(json_lines(&read_back, &["findings", "--json"]));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(ok(&streamed, &["risk", "--json"]), ok(&read_back, &["risk", "--json"]));
    // Ingesting the same file again stores nothing and learns nothing twice.
    let twice = json(&streamed, &["ingest", file.to_str().unwrap(), "--rules", rules.to_str().unwrap(), "--json"]);
    assert_eq!(twice["analysis"]["events"], 0, "{twice}");

    // The second half of the days first, then the first: beyond the reorder
    // window, so the events are analysed from the store, in time order.
    let text = std::fs::read_to_string(&file).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let records = v["Records"].as_array().unwrap();
    let (early, late) = records.split_at(records.len() / 2);
    let swapped = dir.path().join("swapped.json");
    let late_first: Vec<&Value> = late.iter().chain(early).collect();
    std::fs::write(&swapped, serde_json::to_vec(&serde_json::json!({ "Records": late_first })).unwrap()).unwrap();
    let out_of_order = dir.path().join("out-of-order");
    let report =
        json(&out_of_order, &["ingest", swapped.to_str().unwrap(), "--rules", rules.to_str().unwrap(), "--json"]);
    assert_eq!(report["analysis"]["streamed"], false, "{report}");
    assert_eq!(report["analysis"]["events"].as_u64(), Some(n as u64));
    assert_eq!(strip(json_lines(&out_of_order, &["findings", "--json"])), b, "same findings whatever the input order");
}

/// The decision point decides with what the learn stage concluded: a
/// principal it rates critical is stopped by the shipped adaptive example
/// policy, an agent's delegation and novelty come from the graph and the
/// baselines, over HTTP as on the command line.
#[test]
fn decisions_read_the_learn_stage_live_signals() {
    let a = analysed();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let risk = json_lines(&a.data(), &["risk", "--json"]);
    let critical = risk
        .iter()
        .filter(|r| r["score"].as_u64().unwrap() >= 75)
        .map(|r| r["principal"].as_str().unwrap())
        .find(|p| p.starts_with("user:") || p.starts_with("agent:") || p.starts_with("arn:"))
        .expect("the attacks leave a critical principal");
    let score = risk.iter().find(|r| r["principal"] == critical).unwrap()["score"].clone();
    let check = |principal: &str| {
        json(
            &a.data(),
            &[
                "check",
                "--policies",
                examples.to_str().unwrap(),
                "--principal",
                principal,
                "--action",
                "read",
                "--resource",
                "document:q3-forecast",
                "--json",
                "--explain",
            ],
        )
    };
    let d = check(critical);
    assert_eq!(d["decision"], j!(false), "{d}");
    let by: Vec<&str> = d["context"]["policies"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(by.contains(&"stop-critical-principals"), "{d}");
    assert_eq!(d["context"]["signals"]["risk"]["score"], score, "{d}");
    assert!(d["context"]["signals"]["findings"]["open"].as_u64().unwrap() >= 1, "{d}");

    // A calm agent: acting for its person (from the inventory's delegation), known to its baselines.
    let calm_agent = risk
        .iter()
        .find(|r| r["principal"].as_str().unwrap().starts_with("agent:") && r["score"].as_u64().unwrap() < 25)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .expect("a calm agent");
    let d = check(&calm_agent);
    let s = &d["context"]["signals"];
    assert_eq!(s["delegation"]["depth"], j!(1), "{d}");
    assert_eq!(s["delegation"]["via_agent"].as_str(), Some(calm_agent.as_str()), "{d}");
    assert!(s["delegation"]["origin"].as_str().unwrap().starts_with("user:"), "{d}");
    assert_eq!(s["novelty"]["available"], j!(true), "{d}");
    assert_eq!(s["novelty"]["principal_before"], j!(false), "an agent never read a document here: {d}");

    // The server reads the same signals.
    let copy = a.copy();
    let server = common::Server::start(copy.path(), &["--policies", examples.to_str().unwrap()]);
    let (t, id) = critical.split_once(':').unwrap();
    let got = server
        .post_json(
            "/access/v1/evaluation?explain=true",
            &j!({"subject": {"type": t, "id": id}, "action": {"name": "read"}, "resource": {"type": "document", "id": "q3-forecast"}}),
        )
        .json();
    assert_eq!(got["decision"], j!(false), "{got}");
    assert_eq!(got["context"]["signals"]["risk"]["score"], score, "{got}");
}

/// In a running service a person's decision about a finding reaches the
/// decision point at once: resolving a critical principal's open alerts
/// (`tenet finding … --resolve`, another process on the same data
/// directory) turns the next decision from deny to permit within a second,
/// and each change goes out on `GET /api/v1/changes` as it happens.
#[test]
fn resolving_findings_beside_a_running_service_changes_the_next_decision_within_a_second() {
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let risk = json_lines(copy.path(), &["risk", "--json"]);
    let critical = risk
        .iter()
        .filter(|r| r["score"].as_u64().unwrap() >= 75)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .find(|p| p.starts_with("user:"))
        .expect("the attacks leave a critical person");
    let listed = json_lines(copy.path(), &["findings", "--json", "--principal", &critical, "--status", "open"]);
    let open: Vec<String> = listed.iter().map(|f| f["id"].as_str().unwrap().to_string()).collect();
    let alerts = listed.iter().filter(|f| f["alert"] == j!(true)).count();
    assert!(alerts > 0);
    let server = common::Server::start(copy.path(), &["--policies", examples.to_str().unwrap()]);
    let (t, id) = critical.split_once(':').unwrap();
    let request = j!({"subject": {"type": t, "id": id}, "action": {"name": "read"}, "resource": {"type": "document", "id": "q3-forecast"}});
    assert_eq!(server.post_json("/access/v1/evaluation", &request).json()["decision"], j!(false));

    let rx = server.changes();

    for f in &open {
        ok(copy.path(), &["finding", f, "--resolve", "--reason", "contained"]);
    }
    let resolved = std::time::Instant::now();
    let mut took = None;
    while resolved.elapsed() < std::time::Duration::from_secs(10) {
        if server.post_json("/access/v1/evaluation", &request).json()["decision"] == j!(true) {
            took = Some(resolved.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let took = took.expect("the decision changed once the findings were resolved");
    assert!(took < std::time::Duration::from_secs(1), "visible to decisions after {took:?}");

    let mut notices = Vec::new();
    while let Ok(n) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
        notices.push(n);
    }
    let statuses: Vec<&Value> = notices.iter().filter(|n| n["change"] == "finding_status").collect();
    assert_eq!(statuses.len(), alerts, "one notice per resolved alert (quiet findings change no trust): {notices:?}");
    assert!(statuses.iter().all(|n| n["principal"] == critical.as_str() && n["status"] == "resolved"), "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|n| n["change"] == "risk_level" && n["principal"] == critical.as_str() && n["from"] == "critical"),
        "the risk level it left: {notices:?}"
    );
    let seqs: Vec<u64> = notices.iter().map(|n| n["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
}

/// Act: the same change reaches a Shared Signals receiver. A receiver
/// built on PyJWT holds a push stream; resolving a critical person's
/// alerts lowers their risk, and the receiver gets a signed
/// `risk-level-change` about that person within a second of the change.
#[test]
fn a_risk_level_change_reaches_a_shared_signals_receiver_within_a_second() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let risk = json_lines(copy.path(), &["risk", "--json"]);
    let critical = risk
        .iter()
        .filter(|r| r["score"].as_u64().unwrap() >= 75)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .find(|p| p.starts_with("user:"))
        .expect("the attacks leave a critical person");
    let open: Vec<String> =
        json_lines(copy.path(), &["findings", "--json", "--principal", &critical, "--status", "open"])
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
    let token = common::key(copy.path(), "idp", "ssf");
    let server = common::Server::start(copy.path(), &["--policies", examples.to_str().unwrap()]);
    let port = free_port();
    let stream = j!({"events_requested": ["https://schemas.openid.net/secevent/caep/event-type/risk-level-change"],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&stream));
    assert_eq!(s.status, 201, "{}", s.body);
    let rx = Receiver::start(port, &server, s.json()["aud"].as_str().unwrap(), &copy.path().join("rx.jsonl"), None);

    for f in &open {
        ok(copy.path(), &["finding", f, "--resolve", "--reason", "contained"]);
    }
    let resolved = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let risk_change = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    let got = rx
        .wait_for(std::time::Duration::from_secs(10), |l| {
            l["type"] == risk_change && l["claims"]["events"][risk_change]["previous_level"] == "HIGH"
        })
        .expect("a risk-level-change from HIGH reached the receiver");
    let ev = &got["claims"]["events"][risk_change];
    let sub = &got["claims"]["sub_id"];
    let named = sub["email"].as_str().or(sub["id"].as_str()).unwrap();
    assert!(critical.ends_with(named), "about {critical}: {sub}");
    assert_ne!(ev["current_level"], "HIGH", "{ev}");
    assert!(ev["reason_admin"]["en"].as_str().unwrap().contains("fell"), "{ev}");
    let took = got["received"].as_f64().unwrap() - resolved;
    assert!(took < 1.0, "received {took:.3} s after the last resolution");
}

/// A person's decision made while the service is down (killed, here) is
/// not lost: `tenet finding --resolve` queues its trust changes in the
/// transaction of the change, and the service announces them when it
/// starts, once: the receiver gets the critical person's risk-level-change,
/// and a second restart says nothing again.
#[test]
fn findings_resolved_while_the_service_is_down_are_announced_once_when_it_starts() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let critical = json_lines(copy.path(), &["risk", "--json"])
        .iter()
        .filter(|r| r["score"].as_u64().unwrap() >= 75)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .find(|p| p.starts_with("user:"))
        .expect("the attacks leave a critical person");
    let open = json_lines(copy.path(), &["findings", "--json", "--principal", &critical, "--status", "open"]);
    let token = common::key(copy.path(), "idp", "ssf");
    let policies = ["--policies", examples.to_str().unwrap()];
    let server = common::Server::start(copy.path(), &policies);
    let port = free_port();
    let risk_change = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    let stream = j!({"events_requested": [risk_change],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&stream));
    assert_eq!(s.status, 201, "{}", s.body);
    let aud = s.json()["aud"].as_str().unwrap().to_string();
    server.kill();

    for f in &open {
        ok(copy.path(), &["finding", f["id"].as_str().unwrap(), "--resolve", "--reason", "contained"]);
    }
    let from_high =
        |l: &Value| l["type"] == risk_change && l["claims"]["events"][risk_change]["previous_level"] == "HIGH";
    let server = common::Server::start(copy.path(), &policies);
    let rx = Receiver::start(port, &server, &aud, &copy.path().join("rx.jsonl"), None);
    let got = rx
        .wait_for(std::time::Duration::from_secs(10), from_high)
        .expect("the risk the person left, announced when the service started");
    let sub = &got["claims"]["sub_id"];
    assert!(critical.ends_with(sub["email"].as_str().or(sub["id"].as_str()).unwrap()), "{sub}");
    server.kill();
    let server = common::Server::start(copy.path(), &policies);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(server);
    // One announcement: one SET (one `jti`). The service is killed right
    // after the receiver took it, possibly before the delivery was recorded:
    // then the same SET is sent again after the restart, which receivers
    // recognise by its `jti` (RFC 8417 §2.2); a new one would be a second
    // announcement.
    let lines = rx.lines();
    let sets: std::collections::HashSet<&str> =
        lines.iter().filter(|l| from_high(l)).filter_map(|l| l["jti"].as_str()).collect();
    assert_eq!(sets.len(), 1, "announced once: {lines:?}");
}

/// Exactly once across a crash: trust changes turned into SETs while the
/// receiver is down wait in the outbox; the service is killed with
/// SIGKILL; after a restart the receiver gets each of them once (by
/// `jti`), and nothing the crash interrupted is lost or doubled.
#[test]
fn sets_undelivered_when_the_service_is_killed_arrive_exactly_once_after_a_restart() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let risk = json_lines(copy.path(), &["risk", "--json"]);
    let critical: Vec<String> = risk
        .iter()
        .filter(|r| r["score"].as_u64().unwrap() >= 50)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .collect();
    assert!(critical.len() >= 2, "several risky principals: {risk:?}");
    let token = common::key(copy.path(), "idp", "ssf");
    // One address for both runs: the issuer, and so every SET's iss, stays the same.
    let addr = format!("127.0.0.1:{}", free_port());
    let serve = || {
        let mut cmd = common::tenet(copy.path());
        cmd.args(["serve", "--addr", &addr, "--policies", examples.to_str().unwrap()]);
        common::Server::spawn(cmd)
    };
    let server = serve();
    let port = free_port();
    let stream = j!({"events_requested": ["https://schemas.openid.net/secevent/caep/event-type/risk-level-change"],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&stream)).json();
    let aud = s["aud"].as_str().unwrap().to_string();

    // The receiver is down: every risk change waits in the outbox.
    for p in &critical {
        for f in json_lines(copy.path(), &["findings", "--json", "--principal", p, "--status", "open"]) {
            ok(copy.path(), &["finding", f["id"].as_str().unwrap(), "--resolve", "--reason", "contained"]);
        }
    }
    // Until the outbox stops growing: every change announced is in it.
    let start = std::time::Instant::now();
    let mut last = (0, std::time::Instant::now());
    let waiting = loop {
        let streams = json_lines(copy.path(), &["ssf", "streams", "--json"]);
        let n = streams[0]["pending"].as_u64().unwrap();
        if n != last.0 {
            last = (n, std::time::Instant::now());
        } else if n as usize >= critical.len() && last.1.elapsed() > std::time::Duration::from_secs(1) {
            break n;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the outbox holds {n}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(waiting as usize >= critical.len(), "one risk change per principal at least, waiting: {waiting}");
    server.kill();

    let rx = Receiver::start(
        port,
        &common::Server::placeholder(&format!("http://{addr}")),
        &aud,
        &copy.path().join("rx.jsonl"),
        None,
    );
    let restarted = serve();
    let start = std::time::Instant::now();
    while rx.lines().len() < waiting as usize && start.elapsed() < std::time::Duration::from_secs(15) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let lines = rx.lines();
    assert!(lines.iter().all(|l| l.get("rejected").is_none()), "{lines:?}");
    let jtis: BTreeSet<&str> = lines.iter().map(|l| l["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), waiting as usize, "every SET that was waiting arrived: {lines:?}");
    assert!(lines.iter().all(|l| l["dup"] == j!(false)), "and each once: {lines:?}");
    let about: BTreeSet<String> = lines
        .iter()
        .map(|l| {
            let s = &l["claims"]["sub_id"];
            s["email"].as_str().or(s["id"].as_str()).unwrap().to_string()
        })
        .collect();
    assert!(critical.iter().all(|p| about.iter().any(|a| p.ends_with(a.as_str()))), "{about:?} vs {critical:?}");
    let streams = json_lines(copy.path(), &["ssf", "streams", "--json"]);
    assert_eq!(streams[0]["pending"], j!(0), "{}", streams[0]);
    drop(restarted);
}

/// Administrators act too: confirming a person compromised (the admin
/// API) revokes their live session at a Shared Signals receiver within a
/// second, with RISC account-disabled and credential-compromise;
/// dismissing the risk (the CLI, beside the running service) lowers it
/// again at once; both are in the audit log of verdicts with who and why.
#[test]
fn an_administrators_compromise_revokes_the_persons_live_session_within_a_second() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let calm = json_lines(copy.path(), &["risk", "--json"])
        .iter()
        .find(|r| r["principal"].as_str().unwrap().starts_with("user:") && r["score"].as_u64().unwrap() < 25)
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .expect("a calm person");
    let key = |name: &str, scopes: &str| common::key(copy.path(), name, scopes);
    let (idp, pep, ops) = (key("idp", "ssf"), key("pep", "decide"), key("ops", "admin"));
    let server = common::Server::start(copy.path(), &["--policies", examples.to_str().unwrap()]);
    let port = free_port();
    let caep = "https://schemas.openid.net/secevent/caep/event-type/";
    let risc = "https://schemas.openid.net/secevent/risc/event-type/";
    let stream = j!({"events_requested": [format!("{caep}session-revoked"), format!("{caep}risk-level-change"),
            format!("{risc}account-disabled"), format!("{risc}credential-compromise")],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&idp), Some(&stream));
    assert_eq!(s.status, 201, "{}", s.body);
    let rx = Receiver::start(port, &server, s.json()["aud"].as_str().unwrap(), &copy.path().join("rx.jsonl"), None);

    let (t, id) = calm.split_once(':').unwrap();
    let request = j!({"subject": {"type": t, "id": id}, "action": {"name": "read"},
        "resource": {"type": "document", "id": "q3-forecast"}, "context": {"session_id": "sess-42"}});
    let decide = || server.call("POST", "/access/v1/evaluation", Some(&pep), Some(&request)).json()["decision"].clone();
    assert_eq!(decide(), j!(true), "a calm person reads");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // The admin API: scope admin, a reason, a principal Tenet knows.
    let path = format!("/api/v1/principals/{calm}/compromise");
    assert_eq!(server.call("POST", &path, Some(&pep), Some(&j!({"reason": "x"}))).status, 403);
    let no_reason = server.call("POST", &path, Some(&ops), Some(&j!({})));
    assert_eq!((no_reason.status, no_reason.json()["error"]["field"].clone()), (400, j!("reason")));
    let unknown =
        server.call("POST", "/api/v1/principals/user:nobody-here/compromise", Some(&ops), Some(&j!({"reason": "x"})));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let asked = now();
    let compromised = server.call("POST", &path, Some(&ops), Some(&j!({"reason": "phished, confirmed by the SOC"})));
    assert_eq!(compromised.status, 200, "{}", compromised.body);
    assert_eq!(compromised.json()["principal"], calm.as_str());
    let revoked = rx
        .wait_for(std::time::Duration::from_secs(5), |l| l["type"].as_str() == Some(&format!("{caep}session-revoked")))
        .expect("session-revoked reached the receiver");
    let sub = &revoked["claims"]["sub_id"];
    assert_eq!(sub["format"], "complex", "{sub}");
    assert_eq!(sub["session"], j!({"format": "opaque", "id": "sess-42"}), "{sub}");
    let user = sub["user"]["email"].as_str().or(sub["user"]["id"].as_str()).unwrap();
    assert!(calm.ends_with(user), "the session's person: {sub}");
    let ev = &revoked["claims"]["events"][format!("{caep}session-revoked")];
    assert_eq!(ev["initiating_entity"], "admin");
    assert!(ev["reason_admin"]["en"].as_str().unwrap().contains("phished"), "{ev}");
    let took = revoked["received"].as_f64().unwrap() - asked;
    eprintln!("compromise (API) → session-revoked at the receiver: {took:.3} s");
    assert!(took < 1.0, "session-revoked {took:.3} s after the compromise was asked");
    for kind in [format!("{risc}account-disabled"), format!("{risc}credential-compromise")] {
        assert!(rx.wait_for(std::time::Duration::from_secs(2), |l| l["type"] == kind.as_str()).is_some(), "{kind}");
    }
    let disabled = rx.lines().into_iter().find(|l| l["type"] == format!("{risc}account-disabled").as_str()).unwrap();
    assert_eq!(disabled["claims"]["events"][format!("{risc}account-disabled")]["reason"], "hijacking");
    assert!(
        rx.wait_for(std::time::Duration::from_secs(2), |l| {
            l["claims"]["events"][format!("{caep}risk-level-change")]["current_level"] == "HIGH"
        })
        .is_some(),
        "risk-level-change to HIGH"
    );
    assert_eq!(decide(), j!(false), "compromised: denied");

    let out = common::run(copy.path(), &["principal", "dismiss", &calm, "--reason", "false alarm after review"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied by"), "the service applied it");
    assert!(
        rx.wait_for(std::time::Duration::from_secs(2), |l| {
            let e = &l["claims"]["events"][format!("{caep}risk-level-change")];
            e["previous_level"] == "HIGH" && e["current_level"] == "LOW"
        })
        .is_some(),
        "risk-level-change back to LOW"
    );
    assert_eq!(decide(), j!(true), "dismissed: allowed again");
    let log = json_lines(copy.path(), &["principal", "verdicts", "--json"]);
    let got: Vec<(&str, &str)> =
        log.iter().map(|v| (v["verdict"].as_str().unwrap(), v["by"].as_str().unwrap())).collect();
    assert_eq!(got.len(), 2, "{log:?}");
    assert_eq!(got[0], ("compromised", "ops"), "the API key's name: {log:?}");
    assert_eq!(got[1].0, "dismissed");
    assert!(got[1].1 == "cli" || got[1].1.ends_with("(cli)"), "the CLI, as its user: {log:?}");
    assert!(rx.lines().iter().all(|l| l["dup"] == j!(false)));
}

/// Re-evaluation: a person reading in a live session; a likely-malicious
/// finding about them opens (re-opened here, the one the learner raised
/// on the Stratus detonations replayed as them) and their risk turns
/// critical; their session's request, decided again, is now denied, and
/// the receiver gets `session-revoked` for that session within a second.
#[test]
fn a_likely_malicious_finding_revokes_the_persons_live_session_within_a_second() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let malicious =
        json_lines(copy.path(), &["findings", "--json", "--category", "likely_malicious", "--status", "open"]);
    let person = malicious
        .iter()
        .filter(|f| f["alert"] == j!(true))
        .map(|f| f["principal"].as_str().unwrap().to_string())
        .find(|p| p.starts_with("user:"))
        .expect("a person with an open likely-malicious alert");
    // Before the service starts: their alerts resolved, so they read again.
    let open = json_lines(copy.path(), &["findings", "--json", "--principal", &person, "--status", "open"]);
    for f in &open {
        ok(copy.path(), &["finding", f["id"].as_str().unwrap(), "--resolve", "--reason", "looked benign"]);
    }
    let key = |name: &str, scopes: &str| common::key(copy.path(), name, scopes);
    let (idp, pep) = (key("idp", "ssf"), key("pep", "decide"));
    let server = common::Server::start(copy.path(), &["--policies", examples.to_str().unwrap()]);
    let port = free_port();
    let revoked_uri = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    let stream = j!({"events_requested": [revoked_uri],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&idp), Some(&stream)).json();
    let rx = Receiver::start(port, &server, s["aud"].as_str().unwrap(), &copy.path().join("rx.jsonl"), None);
    let (t, id) = person.split_once(':').unwrap();
    let request = j!({"subject": {"type": t, "id": id}, "action": {"name": "read"},
        "resource": {"type": "document", "id": "q3-forecast"}, "context": {"session_id": "s-malicious-1"}});
    let decide = || server.call("POST", "/access/v1/evaluation", Some(&pep), Some(&request)).json()["decision"].clone();
    assert_eq!(decide(), j!(true), "resolved: reads");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let reopened = now();
    for f in open.iter().filter(|f| f["category"] == "likely_malicious") {
        ok(copy.path(), &["finding", f["id"].as_str().unwrap(), "--reopen", "--reason", "the SOC disagrees"]);
    }
    let got = rx
        .wait_for(std::time::Duration::from_secs(5), |l| l["type"] == revoked_uri)
        .expect("session-revoked for the person's session");
    assert_eq!(got["claims"]["sub_id"]["session"], j!({"format": "opaque", "id": "s-malicious-1"}));
    let ev = &got["claims"]["events"][revoked_uri];
    assert_eq!(ev["initiating_entity"], "policy");
    assert!(ev["reason_admin"]["en"].as_str().unwrap().contains("likely-malicious"), "{ev}");
    let took = got["received"].as_f64().unwrap() - reopened;
    eprintln!("likely-malicious finding → session-revoked at the receiver: {took:.3} s (CLI process start included)");
    assert!(took < 1.0, "{took:.3} s");
    assert_eq!(decide(), j!(false), "and the next request is denied");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let revocations = rx.lines().iter().filter(|l| l["type"] == revoked_uri).count();
    assert_eq!(revocations, 1, "one revocation for one session, however many changes followed");
}

/// Stratus Red Team detonations (real CloudTrail) re-enacted as `email`'s
/// single sign-on session (`role_arn`'s, in its account): what an attacker
/// holding that session would leave. Records follow one another a second
/// apart from `from`; every id is fresh.
fn hijacked_session(techniques: &[&str], role_arn: &str, email: &str, from: chrono::DateTime<chrono::Utc>) -> Value {
    let account = role_arn.split(':').nth(4).unwrap();
    let role = role_arn.rsplit('/').next().unwrap();
    let mut records = Vec::new();
    for t in techniques {
        let text = std::fs::read_to_string(shared(STRATUS).join(format!("{t}.json"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let list = v.get("Records").unwrap_or(&v).as_array().unwrap().clone();
        for r in list {
            let theirs = r["recipientAccountId"].as_str().unwrap().to_string();
            let mut r: Value =
                serde_json::from_str(&serde_json::to_string(&r).unwrap().replace(&theirs, account)).unwrap();
            let at = from + chrono::TimeDelta::seconds(records.len() as i64);
            r["eventTime"] = j!(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            r["eventID"] = j!(format!("hijack-{:04}-{}", records.len(), r["eventID"].as_str().unwrap()));
            r["userIdentity"] = j!({
                "type": "AssumedRole",
                "principalId": format!("AROAHIJACKED0000000:{email}"),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{email}"),
                "accountId": account,
                "accessKeyId": "ASIAHIJACKEDSESSION0",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAHIJACKED0000000", "arn": role_arn,
                        "accountId": account, "userName": role},
                    "attributes": {"creationDate": from.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "mfaAuthenticated": "false"}
                }
            });
            records.push(r);
        }
    }
    j!({ "Records": records })
}

/// An agent acting for a person with no open alert, that person, and the
/// single sign-on role they sign in to AWS through (from the events stored
/// about them): `(agent, person, role ARN)`.
fn agent_and_its_sso_person(data: &Path, examples: &Path) -> (String, String, String) {
    let risk = json_lines(data, &["risk", "--json"]);
    risk.iter()
        .map(|r| r["principal"].as_str().unwrap())
        .filter(|p| p.starts_with("agent:"))
        .find_map(|agent| {
            let d = json(
                data,
                &[
                    "check",
                    "--policies",
                    examples.to_str().unwrap(),
                    "--principal",
                    agent,
                    "--action",
                    "read",
                    "--resource",
                    "document:x",
                    "--json",
                    "--explain",
                ],
            );
            let person = d["context"]["signals"]["delegation"]["origin"].as_str()?.to_string();
            let email = person.strip_prefix("user:")?;
            let open = json_lines(data, &["findings", "--json", "--principal", &person, "--status", "open"]);
            if open.iter().any(|f| f["alert"] == j!(true)) {
                return None;
            }
            let events = json_lines(
                data,
                &["events", "--json", "--principal", &person, "--source", "cloudtrail", "--limit", "500"],
            );
            let role = events.iter().find_map(|e| {
                let id = e["actor"]["id"].as_str()?;
                let (head, rest) = id.split_once(":assumed-role/")?;
                let (role, session) = rest.split_once('/')?;
                (role.starts_with("AWSReservedSSO_") && session == email)
                    .then(|| format!("arn:aws:iam::{}:role/{role}", head.rsplit(':').next().unwrap()))
            })?;
            Some((agent.to_string(), person, role))
        })
        .expect("an agent acting for a person who signs in to AWS through single sign-on")
}

/// When the newest stored event happened.
fn newest_event(data: &Path) -> chrono::DateTime<chrono::Utc> {
    json_lines(data, &["events", "--json", "--limit", "1"])[0]["time"].as_str().unwrap().parse().unwrap()
}

/// The issue's own case: an agent acts for a person, in two live sessions
/// an agent gateway holds (one only writing the person's document, one
/// reading and writing). The person's single sign-on session is hijacked
/// (real Stratus Red Team CloudTrail, re-enacted as that session and sent
/// to the running service's events API); the service's own analysis
/// raises a likely-malicious finding on the person, the person's risk
/// rises, and with it the agent's delegated writes stop (the shipped
/// example policy). Within a second of that trust change the receiver
/// gets `session-revoked` for the write-only session and
/// `token-claims-change` (naming the write) for the other, which still reads.
#[test]
fn an_agents_person_raising_a_likely_malicious_finding_revokes_the_agents_session_within_a_second() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let rules = shared("data/sigma");
    let (agent, person, role) = agent_and_its_sso_person(copy.path(), &examples);
    let newest = newest_event(copy.path());

    let key = |name: &str, scopes: &str| common::key(copy.path(), name, scopes);
    let (idp, gateway, trail, soc) =
        (key("idp", "ssf"), key("agent-gateway", "decide"), key("trail", "ingest"), key("soc", "read"));
    let server = common::Server::start(
        copy.path(),
        &["--policies", examples.to_str().unwrap(), "--rules", rules.to_str().unwrap()],
    );
    let port = free_port();
    let caep = "https://schemas.openid.net/secevent/caep/event-type/";
    let (revoked_uri, claims_uri) = (format!("{caep}session-revoked"), format!("{caep}token-claims-change"));
    let stream = j!({"events_requested": [&revoked_uri, &claims_uri],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&idp), Some(&stream));
    assert_eq!(s.status, 201, "{}", s.body);
    let rx = Receiver::start(port, &server, s.json()["aud"].as_str().unwrap(), &copy.path().join("rx.jsonl"), None);

    // The gateway's sessions: the agent (its owner named, as gateways do)
    // on the person's document.
    let (ptype, pid) = person.split_once(':').unwrap();
    let (atype, aid) = agent.split_once(':').unwrap();
    let owner = j!({"__entity": {"type": ptype, "id": pid}});
    let decide = |action: &str, session: &str| {
        let request = j!({"subject": {"type": atype, "id": aid, "properties": {"owner": owner}},
            "action": {"name": action},
            "resource": {"type": "document", "id": "roadmap", "properties": {"owner": owner}},
            "context": {"session_id": session}});
        let d = server.call("POST", "/access/v1/evaluation", Some(&gateway), Some(&request));
        assert_eq!(d.status, 200, "{}", d.body);
        d.json()["decision"].clone()
    };
    assert_eq!(decide("write", "gw-write-only"), j!(true), "the agent writes its person's document");
    assert_eq!(decide("read", "gw-read-write"), j!(true));
    assert_eq!(decide("write", "gw-read-write"), j!(true));
    std::thread::sleep(std::time::Duration::from_millis(300));

    let changes = server.changes_as(Some(&soc));
    let attack = hijacked_session(
        &[
            "aws.defense-evasion.cloudtrail-stop",
            "aws.persistence.iam-create-admin-user",
            "aws.credential-access.secretsmanager-batch-retrieve-secrets",
        ],
        &role,
        pid,
        newest + chrono::TimeDelta::minutes(10),
    );
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let sent_at = now();
    let sent = server.call("POST", "/api/v1/events", Some(&trail), Some(&attack));
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.json()["stored"].as_u64(), Some(attack["Records"].as_array().unwrap().len() as u64));
    eprintln!("agent {agent} acts for {person}, who signs in as {role}");
    let (mut opened, mut seen) = (None, Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while opened.is_none() && std::time::Instant::now() < deadline {
        if let Ok(n) = changes.recv_timeout(std::time::Duration::from_millis(100))
            && seen.len() < 50
            && {
                seen.push(n.clone());
                true
            }
            && n["change"] == "finding_opened"
            && n["principal"] == person.as_str()
        {
            assert_eq!(n["category"], "likely_malicious", "{n}");
            opened = Some((now(), n));
        }
    }
    let (opened_at, notice) =
        opened.unwrap_or_else(|| panic!("no finding raised on the person; trust changes seen: {seen:?}"));
    let finding = json(copy.path(), &["finding", notice["finding"].as_str().unwrap(), "--json"]);
    assert_eq!(finding["category"], "likely_malicious", "{finding}");

    let revoked = rx
        .wait_for(std::time::Duration::from_secs(5), |l| l["type"] == revoked_uri.as_str())
        .expect("session-revoked for the agent's write-only session");
    let sub = &revoked["claims"]["sub_id"];
    assert_eq!(sub["format"], "complex", "{sub}");
    assert_eq!(sub["session"], j!({"format": "opaque", "id": "gw-write-only"}), "{sub}");
    let ev = &revoked["claims"]["events"][&revoked_uri];
    assert_eq!(ev["initiating_entity"], "policy", "{ev}");
    let took = revoked["received"].as_f64().unwrap() - opened_at;
    eprintln!(
        "person's likely-malicious finding → agent session-revoked at the receiver: {took:.3} s \
         ({:.3} s after the attack's records were sent, the service's analysis included)",
        revoked["received"].as_f64().unwrap() - sent_at
    );
    assert!(took < 1.0, "{took:.3} s after the finding was announced");

    let lowered = rx
        .wait_for(std::time::Duration::from_secs(2), |l| l["type"] == claims_uri.as_str())
        .expect("token-claims-change for the session that still reads");
    assert_eq!(lowered["claims"]["sub_id"]["session"], j!({"format": "opaque", "id": "gw-read-write"}));
    let claims = &lowered["claims"]["events"][&claims_uri]["claims"];
    assert_eq!(claims["tenet_denied_requests"], j!(["write document:roadmap"]), "{lowered}");
    let took = lowered["received"].as_f64().unwrap() - opened_at;
    eprintln!("… and token-claims-change for the session that still reads: {took:.3} s");
    assert!(took < 1.0, "{took:.3} s");

    assert_eq!(decide("read", "gw-read-write"), j!(true), "the agent still reads");
    assert_eq!(decide("write", "gw-read-write"), j!(false), "but writes no more for a person at risk");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = rx.lines();
    assert_eq!(got.iter().filter(|l| l["type"] == revoked_uri.as_str()).count(), 1, "one revocation: {got:?}");
}

/// Events committed but never analysed (the service died between storing
/// a delivery and analysing it; `ingest --no-analyse` leaves the store the
/// same way) are analysed when the service starts, and the trust changes
/// that catch-up finds are announced like any other: the receiver gets
/// RISC `credential-compromise` for the person whose hijacked session the
/// events show, and their risk-level-change.
#[test]
fn trust_changes_found_by_the_start_up_catch_up_reach_the_receiver() {
    use common::ssf::{Receiver, pyjwt};
    use tenet_testkit::free_port;
    if !pyjwt() {
        return;
    }
    let a = analysed();
    let copy = a.copy();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let rules = shared("data/sigma");
    let (_, person, role) = agent_and_its_sso_person(copy.path(), &examples);
    let token = common::key(copy.path(), "idp", "ssf");
    let serve = ["--policies", examples.to_str().unwrap(), "--rules", rules.to_str().unwrap()];
    let server = common::Server::start(copy.path(), &serve);
    let port = free_port();
    let risc = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";
    let risk_change = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    let stream = j!({"events_requested": [risc, risk_change],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&stream));
    assert_eq!(s.status, 201, "{}", s.body);
    let aud = s.json()["aud"].as_str().unwrap().to_string();
    server.kill();

    let attack = hijacked_session(
        &["aws.defense-evasion.cloudtrail-stop", "aws.persistence.iam-create-admin-user"],
        &role,
        person.strip_prefix("user:").unwrap(),
        newest_event(copy.path()) + chrono::TimeDelta::minutes(10),
    );
    let file = copy.path().join("hijack.json");
    std::fs::write(&file, attack.to_string()).unwrap();
    ok(copy.path(), &["ingest", file.to_str().unwrap(), "--no-analyse"]);
    let before = json_lines(copy.path(), &["findings", "--json", "--principal", &person, "--status", "open"]);
    assert!(before.iter().all(|f| f["alert"] != j!(true)), "stored, not analysed: nothing raised yet");

    let server = common::Server::start(copy.path(), &serve);
    let rx = Receiver::start(port, &server, &aud, &copy.path().join("rx.jsonl"), None);
    let named = |l: &Value| {
        let sub = &l["claims"]["sub_id"];
        sub["email"].as_str().or(sub["id"].as_str()).is_some_and(|n| person.ends_with(n))
    };
    let compromise = rx
        .wait_for(std::time::Duration::from_secs(30), |l| l["type"] == risc && named(l))
        .expect("credential-compromise for the person, from the catch-up's finding");
    let ev = &compromise["claims"]["events"][risc];
    let raised = json_lines(copy.path(), &["findings", "--json", "--principal", &person, "--status", "open"]);
    let finding = raised
        .iter()
        .find(|f| f["category"] == "likely_malicious" && f["alert"] == j!(true))
        .expect("the catch-up raised a likely-malicious alert");
    let why = ev["reason_admin"]["en"].as_str().unwrap();
    assert!(why.contains(finding["id"].as_str().unwrap()) && why.contains("attack"), "{ev}");
    assert!(
        rx.wait_for(std::time::Duration::from_secs(5), |l| l["type"] == risk_change && named(l)).is_some(),
        "and the risk level it crossed"
    );
    drop(server);
}
