//! Replaying the Stratus Red Team detonations (real CloudTrail, shared
//! read-only under `../shared`) into a small simulated enterprise.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tenet_model::Timestamp;
use tenet_sim::replay::{self, Detonation, Replay, ReplayError, Replayed, Spec};
use tenet_sim::{Config, DAY, HOUR, Simulation};

fn stratus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail/stratus-red-team")
}

fn stratus_files() -> Vec<PathBuf> {
    let files = replay::files(&stratus_dir()).expect("the Stratus detonations are readable");
    assert_eq!(files.len(), 35, "{files:?}");
    files
}

fn sim() -> Simulation {
    Simulation::new(Config { seed: 3, days: 8, humans: 20, agents: 4, ..Config::default() })
}

fn original(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => o.remove("Records").and_then(|r| r.as_array().cloned()).unwrap(),
        _ => panic!("{}", path.display()),
    }
}

fn unix(v: &Value) -> i64 {
    Timestamp::parse_rfc3339(v.as_str().unwrap()).unwrap().unix_seconds()
}

/// Every Stratus detonation on day 7, as `--replay DIR@7` places them.
fn replay_all(sim: &Simulation) -> Vec<Replayed> {
    replay::plan(sim, &[Spec { path: stratus_dir(), day: Some(7) }]).expect("every detonation replays")
}

/// Every simulated IAM user's name, ARN and access key, in people order.
fn keyed_users(sim: &Simulation) -> Vec<(String, String, String)> {
    sim.org
        .people
        .iter()
        .filter_map(|p| p.iam_user.as_ref())
        .map(|u| {
            let arn = format!("arn:aws:iam::{}:user/{}", sim.org.account(u.account).id, u.name);
            (u.name.clone(), arn, u.access_key.clone())
        })
        .collect()
}

/// The simulated user a replay's attacker became.
fn attacker_user(sim: &Simulation, r: &Replayed) -> (String, String, String) {
    let (_, simulated) = r.attacker.clone().expect("an IAM-user attacker");
    keyed_users(sim).into_iter().find(|(_, arn, _)| *arn == simulated).expect("the attacker is a simulated user")
}

fn text(r: &Replayed) -> String {
    r.records.iter().map(|r| r.record.to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_detonation_lands_on_its_day_in_its_original_order_and_spacing() {
    let sim = sim();
    let replayed = replay_all(&sim);
    assert_eq!(replayed.len(), 35);
    let day = (sim.abs(7 * DAY), sim.abs(8 * DAY));
    let mut previous_end = i64::MIN;
    for (r, path) in replayed.iter().zip(stratus_files()) {
        let orig = original(&path);
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        assert_eq!(r.records.len(), orig.len(), "{}", path.display());
        let first = orig.iter().map(|o| unix(&o["eventTime"])).min().unwrap();
        let delta = sim.abs(r.at) - first;
        for (i, (rec, o)) in r.records.iter().zip(&orig).enumerate() {
            assert_eq!(rec.index, i, "original order");
            let t = &rec.record["eventTime"];
            // Same layout as recorded: `YYYY-MM-DDTHH:MM:SSZ`.
            let s = t.as_str().unwrap();
            assert!(s.len() == 20 && s.ends_with('Z') && &s[10..11] == "T", "{s}");
            assert_eq!(unix(t) - unix(&o["eventTime"]), delta, "spacing kept: {}", path.display());
            assert_eq!(rec.time, unix(t));
            assert!((day.0..day.1).contains(&rec.time), "{} lands on day 7: {s}", path.display());
            // The session's age relative to the call is kept too.
            let created = &o["userIdentity"]["sessionContext"]["attributes"]["creationDate"];
            if created.is_string() {
                let now = &rec.record["userIdentity"]["sessionContext"]["attributes"]["creationDate"];
                assert_eq!(unix(now) - unix(created), delta, "{}", path.display());
            }
        }
        assert_eq!(r.records.iter().map(|r| r.time).min(), Some(sim.abs(r.at)));
        // Staggered: no two detonations overlap, each in office hours.
        assert!(sim.abs(r.at) > previous_end, "{} overlaps the one before", path.display());
        previous_end = r.records.iter().map(|r| r.time).max().unwrap();
        let hour = (r.at - 7 * DAY) / HOUR;
        assert!((7..19).contains(&hour), "{} at hour {hour}", path.display());
    }
}

#[test]
fn response_dates_move_with_the_records() {
    let sim = sim();
    let file = stratus_dir().join("aws.persistence.sts-federation-token.json");
    let r = replay::replay(&sim, &std::fs::read(&file).unwrap(), &Replay::new(&file, 7 * DAY + 13 * HOUR)).unwrap();
    // Recorded 2024-11-30T08:43:17Z with credentials expiring
    // "Nov 30, 2024, 8:43:17 PM"; the simulation starts 2026-10-05, so day 7
    // 13:00 is 2026-10-12T13:00:00Z and the expiry twelve hours later.
    assert_eq!(r.records[0].record["eventTime"], "2026-10-12T13:00:00Z");
    assert_eq!(r.records[0].record["responseElements"]["credentials"]["expiration"], "Oct 13, 2026, 1:00:00 AM");
    let file = stratus_dir().join("aws.persistence.rolesanywhere-create-trust-anchor.json");
    let r = replay::replay(&sim, &std::fs::read(&file).unwrap(), &Replay::new(&file, 7 * DAY + 13 * HOUR)).unwrap();
    let anchor = r.records.iter().find_map(|r| r.record["responseElements"]["trustAnchor"]["createdAt"].as_str());
    assert_eq!(anchor, Some("2026-10-12T13:00:00.482702201Z"));
}

#[test]
fn no_trace_of_the_original_account_is_left() {
    let sim = sim();
    for (r, path) in replay_all(&sim).iter().zip(stratus_files()) {
        let old = original(&path)[0]["recipientAccountId"].as_str().unwrap().to_string();
        assert_eq!(r.original_account.as_deref(), Some(old.as_str()));
        let all = text(r);
        assert!(!all.contains(&old), "{} still mentions {old}", path.display());
        for rec in &r.records {
            assert_eq!(rec.record["recipientAccountId"], r.account.as_str());
            assert_eq!(rec.record["userIdentity"]["accountId"], r.account.as_str());
        }
        assert!(sim.org.accounts.iter().any(|a| a.id == r.account));
    }
}

#[test]
fn the_attacking_iam_user_becomes_a_simulated_persons_user() {
    let sim = sim();
    let keyed = keyed_users(&sim);
    // The principal id the simulation's own IAM inventory gives the user.
    let inventory: Vec<Value> = tenet_sim::inventory::snapshot(&sim, 0)
        .into_iter()
        .filter(|(f, _)| f.starts_with("aws-iam-"))
        .map(|(_, b)| serde_json::from_slice(&b).unwrap())
        .collect();
    let not_iam_user =
        ["aws.impact.bedrock-invoke-model", "aws.lateral-movement.ec2-serial-console-send-ssh-public-key"];
    for (r, path) in replay_all(&sim).iter().zip(stratus_files()) {
        let stem = replay::stem(&path);
        let all = text(r);
        assert!(!all.contains("christophe"), "{stem}");
        if not_iam_user.contains(&stem.as_str()) {
            // Only role sessions act: they keep their names, in the new account.
            assert_eq!(r.attacker, None, "{stem}");
            assert!(keyed.iter().all(|(_, arn, _)| !all.contains(arn.as_str())), "{stem}");
            continue;
        }
        let (recorded, _) = r.attacker.clone().expect(&stem);
        let (name, arn, key) = attacker_user(&sim, r);
        let user_id = find_user_id(&inventory, &name).expect("the user is in the IAM inventory");
        assert!(!all.contains(&recorded), "{stem}");
        let recorded_name = recorded.rsplit('/').next().unwrap();
        assert!(!all.contains(recorded_name), "{stem}: {recorded_name}");
        let orig = original(&path);
        for (rec, o) in r.records.iter().zip(&orig) {
            let (was, now) = (&o["userIdentity"], &rec.record["userIdentity"]);
            if was["arn"] == recorded.as_str() {
                assert_eq!(now["arn"], arn.as_str());
                assert_eq!(now["userName"], name.as_str());
                assert_eq!(now["principalId"], user_id.as_str());
                if was["accessKeyId"].is_string() {
                    assert_eq!(now["accessKeyId"], key.as_str());
                }
            } else if was["type"] == "AssumedRole" {
                // Same role and session name, new account.
                let keep = |a: &str| a.split_once(":assumed-role/").map(|(_, r)| r.to_string());
                assert_eq!(keep(now["arn"].as_str().unwrap()), keep(was["arn"].as_str().unwrap()), "{stem}");
            }
        }
    }
}

fn find_user_id(v: &[Value], name: &str) -> Option<String> {
    fn walk(v: &Value, name: &str) -> Option<String> {
        match v {
            Value::Object(m) if m.get("UserName").and_then(Value::as_str) == Some(name) => {
                m.get("UserId").and_then(Value::as_str).map(str::to_string)
            }
            Value::Object(m) => m.values().find_map(|v| walk(v, name)),
            Value::Array(a) => a.iter().find_map(|v| walk(v, name)),
            _ => None,
        }
    }
    v.iter().find_map(|v| walk(v, name))
}

#[test]
fn the_special_detonations_keep_their_own_principals() {
    let sim = sim();
    let all = replay_all(&sim);
    let get = |stem: &str| all.iter().find(|r| replay::stem(&r.path) == stem).unwrap();
    // sts-federation-token: the IAM user that calls GetFederationToken is
    // the attacker; the federated user it creates keeps its name and now
    // acts for the simulated user.
    let fed = get("aws.persistence.sts-federation-token");
    let (_, arn, _) = attacker_user(&sim, fed);
    let acct = &fed.account;
    let session = &fed.records[1].record["userIdentity"];
    assert_eq!(session["arn"], format!("arn:aws:sts::{acct}:federated-user/stratus_red_team"));
    assert_eq!(session["principalId"], format!("{acct}:stratus_red_team"));
    assert_eq!(session["sessionContext"]["sessionIssuer"]["arn"], arn.as_str());
    assert_eq!(fed.labels[1].principal, format!("arn:aws:sts::{acct}:federated-user/stratus_red_team"));
    assert_eq!(fed.labels[0].principal, arn);
    // console-login-without-mfa: the user logging in is the attacker's way in.
    let login = get("aws.initial-access.console-login-without-mfa");
    let (_, arn, _) = attacker_user(&sim, login);
    assert_eq!(login.records[0].record["userIdentity"]["arn"], arn.as_str());
    assert!(login.records[0].record["userIdentity"].get("accessKeyId").is_none());
    // Bedrock: a role session, unchanged but for its account.
    let bedrock = get("aws.impact.bedrock-invoke-model");
    let acct = &bedrock.account;
    assert!(bedrock.labels.iter().all(|l| l.principal == format!("arn:aws:sts::{acct}:assumed-role/test-role/cli")));
    // Accounts outside the detonation (where a snapshot is shared) stay.
    let share = get("aws.exfiltration.ec2-share-ebs-snapshot");
    assert!(text(share).contains("098797384747"));
    // Signature fields stay as recorded.
    let orig = original(&share.path);
    assert_eq!(share.records[0].record["sourceIPAddress"], orig[0]["sourceIPAddress"]);
    assert_eq!(share.records[0].record["userAgent"], orig[0]["userAgent"]);
    assert_eq!(share.records[0].record["awsRegion"], orig[0]["awsRegion"]);
}

#[test]
fn every_record_is_labelled_with_its_detonation() {
    let sim = sim();
    for r in replay_all(&sim) {
        let stem = replay::stem(&r.path);
        let arn = r.attacker.clone().map(|(_, simulated)| simulated).unwrap_or_default();
        assert_eq!(r.scenario, format!("stratus:{stem}"));
        assert_eq!(r.labels.len(), r.records.len());
        for (l, rec) in r.labels.iter().zip(&r.records) {
            assert_eq!(l.scenario, r.scenario);
            assert_eq!(l.category, "likely_malicious");
            assert_eq!(l.event_id, rec.record["eventID"].as_str().unwrap());
            let acting = rec.record["userIdentity"]["arn"].as_str().unwrap();
            assert_eq!(l.principal, acting);
            if rec.record["userIdentity"]["type"] == "IAMUser" {
                assert_eq!(l.principal, arn);
            }
        }
    }
}

#[test]
fn event_ids_are_new_and_never_collide() {
    let sim = sim();
    let all = replay_all(&sim);
    let mut ids = HashSet::new();
    let mut originals = HashSet::new();
    for path in stratus_files() {
        originals.extend(original(&path).iter().map(|o| o["eventID"].as_str().unwrap().to_string()));
    }
    for r in &all {
        for l in &r.labels {
            assert!(ids.insert(l.event_id.clone()), "duplicate {}", l.event_id);
            assert!(!originals.contains(&l.event_id));
            let parts: Vec<usize> = l.event_id.split('-').map(str::len).collect();
            assert_eq!(parts, [8, 4, 4, 4, 12], "UUID-shaped: {}", l.event_id);
        }
    }
    assert_eq!(ids.len(), 310);
    // The same file twice, at two times: two sets of events.
    let file = stratus_dir().join("aws.persistence.iam-create-admin-user.json");
    let bytes = std::fs::read(&file).unwrap();
    let a = replay::replay(&sim, &bytes, &Replay::new(&file, 3 * DAY)).unwrap();
    let b = replay::replay(&sim, &bytes, &Replay::new(&file, 3 * DAY + 60)).unwrap();
    let a_ids: HashSet<_> = a.labels.iter().map(|l| &l.event_id).collect();
    assert!(b.labels.iter().all(|l| !a_ids.contains(&l.event_id)));
    // `--replay DIR@3 --replay DIR@3`: staggered, so distinct as well.
    let twice =
        replay::plan(&sim, &[Spec { path: file.clone(), day: Some(3) }, Spec { path: file, day: Some(3) }]).unwrap();
    assert_ne!(twice[0].at, twice[1].at);
    assert_ne!(twice[0].labels[0].event_id, twice[1].labels[0].event_id);
}

#[test]
fn replays_are_deterministic() {
    let (s1, s2) = (sim(), sim());
    let (a, b) = (replay_all(&s1), replay_all(&s2));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.labels, y.labels);
        assert_eq!(text(x), text(y));
        let (cx, cy) = (replay::chunks(&s1, x), replay::chunks(&s2, y));
        assert_eq!(cx.len(), cy.len());
        for (p, q) in cx.iter().zip(&cy) {
            assert_eq!((&p.path, &p.bytes), (&q.path, &q.bytes));
        }
    }
}

#[test]
fn delivery_files_use_the_simulators_layout() {
    let sim = sim();
    let all = replay_all(&sim);
    let r = all.iter().find(|r| replay::stem(&r.path) == "aws.persistence.iam-create-admin-user").unwrap();
    let chunks = replay::chunks(&sim, r);
    assert_eq!(chunks.len(), 1);
    let c = &chunks[0];
    let day = Timestamp::from_unix_seconds(sim.abs(r.at)).to_chrono();
    let acct = &r.account;
    assert_eq!(
        c.path,
        format!(
            "cloudtrail/AWSLogs/{acct}/CloudTrail/ap-isob-central-3r/{}/{acct}_CloudTrail_ap-isob-central-3r_{}Z_replay_aws.persistence.iam-create-admin-user.json.gz",
            day.format("%Y/%m/%d"),
            day.format("%Y%m%dT%H%M")
        )
    );
    assert_eq!((c.format, c.events), ("cloudtrail", 3));
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&c.bytes[..]).read_to_end(&mut json).unwrap();
    let v: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["Records"].as_array().unwrap().len(), 3);

    // Written next to a simulation's output: files, labels appended,
    // manifest updated.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("labels.jsonl"),
        "{\"event_id\":\"x\",\"scenario\":\"s\",\"category\":\"c\",\"principal\":\"p\"}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("manifest.json"), "{\"seed\":3}").unwrap();
    let mut written = tenet_sim::output::Written::default();
    replay::write(dir.path(), &sim, &all, &mut written).unwrap();
    assert_eq!((written.events, written.labels), (310, 310));
    assert_eq!(written.scenarios.len(), 35);
    assert!(dir.path().join(&c.path).is_file());
    let labels = std::fs::read_to_string(dir.path().join("labels.jsonl")).unwrap();
    assert_eq!(labels.lines().count(), 311);
    assert!(labels.starts_with("{\"event_id\":\"x\""));
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["replays"].as_array().unwrap().len(), 35);
    assert_eq!(manifest["written"]["events"], 310);
}

#[test]
fn bad_input_is_reported_with_file_record_and_field() {
    let sim = sim();
    let path = Path::new("bad.json");
    let target = Replay::new(path, DAY);
    let err = |bytes: &[u8]| replay::replay(&sim, bytes, &target).unwrap_err().to_string();
    assert!(err(b"{not json").starts_with("bad.json: not JSON: "), "{}", err(b"{not json"));
    assert!(err(b"42").contains("bad.json: not CloudTrail"));
    assert!(err(b"{\"records\": []}").contains("not CloudTrail"));
    assert!(err(b"{\"Records\": {}}").contains("not CloudTrail"));
    assert_eq!(err(b"[]"), "bad.json: no replayable record (of 0)");
    assert_eq!(
        err(br#"{"Records":[{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}]}"#),
        "bad.json: Records[0]: eventTime: missing"
    );
    assert_eq!(
        err(br#"[{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":1722519208}]"#),
        "bad.json: [0]: eventTime: not a string"
    );
    assert_eq!(
        err(br#"[{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"yesterday"}]"#),
        "bad.json: [0]: eventTime: `yesterday` is not an RFC 3339 time"
    );
    assert_eq!(
        err(br#"[{"eventName":"GetObject","eventTime":"2024-08-01T13:33:28Z"}]"#),
        "bad.json: [0]: eventSource: missing"
    );
    assert_eq!(err(b"[1]"), "bad.json: [0]: (record): not a JSON object");

    // Good records are kept, bad ones listed.
    let mixed = br#"{"Records":[
        {"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2024-08-01T13:33:28Z","eventID":"a",
         "recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","userName":"bob","accountId":"111122223333"}},
        {"eventSource":"s3.amazonaws.com","eventName":"GetObject"},
        "junk",
        {"eventSource":"s3.amazonaws.com","eventName":"PutObject","eventTime":"2024-08-01T13:33:30Z","recipientAccountId":"111122223333"}
    ]}"#;
    let r = replay::replay(&sim, mixed, &target).unwrap();
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.records[1].time - r.records[0].time, 2);
    let skipped: Vec<String> = r.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        ["bad.json: Records[1]: eventTime: missing", "bad.json: Records[2]: (record): not a JSON object"]
    );
    assert!(!text(&r).contains("111122223333"));
    assert!(!text(&r).contains("user/bob\""));
    // No eventID: still a stable, unique one.
    assert_ne!(r.labels[0].event_id, r.labels[1].event_id);

    // Gzipped input, as CloudTrail delivers it, reads the same.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, mixed).unwrap();
    let r2 = replay::replay(&sim, &gz.finish().unwrap(), &target).unwrap();
    assert_eq!(r.labels, r2.labels);
    assert!(matches!(replay::replay(&sim, &[0x1f, 0x8b, 0, 1], &target), Err(ReplayError::Read { .. })));

    // A file that cannot be opened is named.
    let missing = Detonation::read(Path::new("/nonexistent/x.json")).unwrap_err().to_string();
    assert!(missing.starts_with("/nonexistent/x.json: cannot read: "), "{missing}");
}

#[test]
fn impossible_targets_are_refused() {
    let sim = sim();
    let file = stratus_dir().join("aws.execution.ssm-send-command.json");
    let d = Detonation::read(&file).unwrap();
    assert!(d.duration() > 60);
    let at = |t: i64| d.replay(&sim, &Replay::new(&file, t));
    assert!(at(-1).is_err());
    assert!(at(i64::MIN).is_err() && at(i64::MAX).is_err());
    let end = 8 * DAY;
    let msg = at(end - 10).unwrap_err().to_string();
    assert!(msg.contains("outside the simulation"), "{msg}");
    assert!(at(end - d.duration() - 1).is_ok());
    // A person without an IAM user cannot play the attacker.
    let plain = sim.org.people.iter().position(|p| p.iam_user.is_none()).unwrap();
    let msg = d.replay(&sim, &Replay { person: Some(plain), ..Replay::new(&file, DAY) }).unwrap_err().to_string();
    assert!(msg.contains("has no IAM user"), "{msg}");
    let msg = d.replay(&sim, &Replay { person: Some(999), ..Replay::new(&file, DAY) }).unwrap_err().to_string();
    assert!(msg.contains("no person 999"), "{msg}");
    // Another keyed person can be chosen instead of the first.
    let keyed: Vec<usize> = (0..sim.org.people.len()).filter(|&i| sim.org.people[i].iam_user.is_some()).collect();
    if let Some(&second) = keyed.get(1) {
        let r = d.replay(&sim, &Replay { person: Some(second), ..Replay::new(&file, DAY) }).unwrap();
        let name = &sim.org.people[second].iam_user.as_ref().unwrap().name;
        assert!(r.attacker.unwrap().1.ends_with(&format!(":user/{name}")));
    }
    // No one to play an IAM user attacker at all.
    let tiny = Simulation::new(Config { seed: 3, days: 2, humans: 1, agents: 0, ..Config::default() });
    if tiny.org.people.iter().all(|p| p.iam_user.is_none()) {
        let msg = d.replay(&tiny, &Replay::new(&file, DAY)).unwrap_err().to_string();
        assert!(msg.contains("no simulated person has one"), "{msg}");
        // A detonation by role sessions only needs no IAM user.
        let bedrock = stratus_dir().join("aws.impact.bedrock-invoke-model.json");
        assert!(Detonation::read(&bedrock).unwrap().replay(&tiny, &Replay::new(&bedrock, DAY)).is_ok());
    }
}

#[test]
fn schedules_fit_in_the_day_or_are_refused() {
    let sim = sim();
    assert_eq!(replay::schedule(&sim, 7, &[30]).unwrap(), [7 * DAY + 13 * HOUR]);
    let many = replay::schedule(&sim, 2, &[10; 35]).unwrap();
    assert!(many.windows(2).all(|w| w[1] - w[0] == replay::GAP));
    assert!(many[0] >= 2 * DAY && many[34] < 3 * DAY);
    // A long detonation pushes the next one back.
    let long = replay::schedule(&sim, 2, &[3 * HOUR, 10]).unwrap();
    assert!(long[1] - long[0] > 3 * HOUR);
    assert!(replay::schedule(&sim, 8, &[10]).unwrap_err().contains("past the simulation's last day"));
    assert!(replay::schedule(&sim, 2, &[10; 80]).unwrap_err().contains("more than a day"));
    assert_eq!(replay::schedule(&sim, 2, &[]).unwrap(), Vec::<i64>::new());
    // Through `plan`, a day past the end names the argument.
    let err = replay::plan(&sim, &[Spec { path: stratus_dir(), day: Some(8) }]).unwrap_err().to_string();
    assert!(err.starts_with("--replay ") && err.contains("past the simulation's last day"), "{err}");
    // The default day is the last.
    let file = stratus_dir().join("aws.defense-evasion.cloudtrail-stop.json");
    let r = replay::plan(&sim, &[Spec { path: file, day: None }]).unwrap();
    assert_eq!(r[0].at, 7 * DAY + 13 * HOUR);
}

#[test]
fn a_directory_replays_each_file_once_in_name_order() {
    let sim = sim();
    let all = replay_all(&sim);
    let stems: Vec<String> = all.iter().map(|r| replay::stem(&r.path)).collect();
    let mut sorted = stems.clone();
    sorted.sort();
    assert_eq!(stems, sorted);
    let per_scenario: HashMap<&str, usize> = all.iter().map(|r| (r.scenario.as_str(), r.labels.len())).collect();
    assert_eq!(per_scenario.len(), 35);
    assert_eq!(per_scenario["stratus:aws.execution.ssm-send-command"], 56);
    assert!(matches!(replay::files(Path::new(env!("CARGO_MANIFEST_DIR"))), Err(ReplayError::Read { .. })));
}

/// Nothing in a file can make replay panic: every Stratus record with its
/// values swapped, one at a time, for awkward ones (dates at the ends of
/// the calendar, the attacker's name, non-ASCII, wrong types), and raw
/// bytes cut short.
#[test]
fn awkward_values_never_panic() {
    let sim = sim();
    let nasty = [
        Value::Null,
        Value::from(""),
        Value::from("0000-01-01T00:00:00Z"),
        Value::from("9999-12-31T23:59:59Z"),
        Value::from("2024-08-01T13:33:28.1234567890Z"),
        Value::from("2024-08-01T13:33:28+99:99"),
        Value::from("Dec 31, 9999 11:59:59 PM"),
        Value::from("Jan 1, 0000, 12:00:00 AM"),
        Value::from("christophe"),
        Value::from("c"),
        Value::from("é😀 arn:aws:iam::229654561268:user/christophe😀"),
        Value::from(229_654_561_268u64),
        Value::from(-1),
        Value::from(1e300),
        serde_json::json!([[[{"a": []}]]]),
        serde_json::json!({"229654561268": "christophe"}),
    ];
    let mut r = fastrand::Rng::with_seed(7);
    for path in stratus_files().into_iter().filter(|p| std::fs::metadata(p).unwrap().len() < 10_000) {
        let orig = original(&path);
        for _ in 0..40 {
            let mut records = orig.clone();
            let i = r.usize(..records.len());
            mutate(&mut records[i], &nasty[r.usize(..nasty.len())], &mut r);
            let bytes = serde_json::to_vec(&records).unwrap();
            let at = [0, DAY, 7 * DAY + 23 * HOUR, 8 * DAY - 1][r.usize(..4)];
            let _ = replay::replay(&sim, &bytes, &Replay::new(&path, at));
            let cut = r.usize(..bytes.len());
            let _ = replay::replay(&sim, &bytes[..cut], &Replay::new(&path, at));
        }
    }
}

/// Replaces one leaf (or key) somewhere under `v` with `with`.
fn mutate(v: &mut Value, with: &Value, r: &mut fastrand::Rng) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(r.usize(..m.len())).unwrap().clone();
            if r.u8(..10) == 0 {
                let inner = m.remove(&key).unwrap();
                m.insert(with.as_str().unwrap_or("229654561268").to_string(), inner);
            } else if r.bool() {
                mutate(m.get_mut(&key).unwrap(), with, r);
            } else {
                m.insert(key, with.clone());
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = r.usize(..a.len());
            mutate(&mut a[i], with, r);
        }
        leaf => *leaf = with.clone(),
    }
}

#[test]
fn detonations_on_one_day_are_played_by_different_people_while_there_are_enough() {
    let sim = sim();
    let keyed = keyed_users(&sim);
    assert!(keyed.len() >= 2, "seed 3 has several keyed people");
    let attackers: Vec<String> = replay_all(&sim).iter().filter_map(|r| r.attacker.clone().map(|(_, a)| a)).collect();
    // In order, cycling: any run of `keyed.len()` consecutive attackers is all different people.
    for w in attackers.windows(keyed.len()) {
        let distinct: HashSet<&String> = w.iter().collect();
        assert_eq!(distinct.len(), keyed.len(), "{w:?}");
    }
    assert_eq!(attackers[0], keyed[0].1, "the first detonation goes to the first keyed person");
}
