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
fn replay_all(sim: &mut Simulation) -> Vec<Replayed> {
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
    let mut sim = sim();
    let replayed = replay_all(&mut sim);
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
    let mut sim = sim();
    for (r, path) in replay_all(&mut sim).iter().zip(stratus_files()) {
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
    let mut sim = sim();
    // Planned first: the replay may issue keys to more people.
    let replayed = replay_all(&mut sim);
    let keyed = keyed_users(&sim);
    // The principal id the simulation's own IAM inventory gives the user.
    let inventory: Vec<Value> = tenet_sim::inventory::snapshot(&sim, 0)
        .into_iter()
        .filter(|(f, _)| f.starts_with("aws-iam-"))
        .map(|(_, b)| serde_json::from_slice(&b).unwrap())
        .collect();
    let not_iam_user =
        ["aws.impact.bedrock-invoke-model", "aws.lateral-movement.ec2-serial-console-send-ssh-public-key"];
    for (r, path) in replayed.iter().zip(stratus_files()) {
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
    let mut sim = sim();
    let all = replay_all(&mut sim);
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
    let mut sim = sim();
    for r in replay_all(&mut sim) {
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
    let mut sim = sim();
    let all = replay_all(&mut sim);
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
    let twice = replay::plan(&mut sim, &[Spec { path: file.clone(), day: Some(3) }, Spec { path: file, day: Some(3) }])
        .unwrap();
    assert_ne!(twice[0].at, twice[1].at);
    assert_ne!(twice[0].labels[0].event_id, twice[1].labels[0].event_id);
}

#[test]
fn replays_are_deterministic() {
    let (mut s1, mut s2) = (sim(), sim());
    let (a, b) = (replay_all(&mut s1), replay_all(&mut s2));
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
    let mut sim = sim();
    let all = replay_all(&mut sim);
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
    let mut sim = sim();
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
    let err = replay::plan(&mut sim, &[Spec { path: stratus_dir(), day: Some(8) }]).unwrap_err().to_string();
    assert!(err.starts_with("--replay ") && err.contains("past the simulation's last day"), "{err}");
    // The default day is the last.
    let file = stratus_dir().join("aws.defense-evasion.cloudtrail-stop.json");
    let r = replay::plan(&mut sim, &[Spec { path: file, day: None }]).unwrap();
    assert_eq!(r[0].at, 7 * DAY + 13 * HOUR);
}

#[test]
fn a_directory_replays_each_file_once_in_name_order() {
    let mut sim = sim();
    let all = replay_all(&mut sim);
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
    let mut sim = sim();
    let attackers: Vec<String> =
        replay_all(&mut sim).iter().filter_map(|r| r.attacker.clone().map(|(_, a)| a)).collect();
    // Keys issued for the replay included; people of labelled scenarios left out.
    let keyed: Vec<_> = keyed_users(&sim).into_iter().filter(|k| attackers.contains(&k.1)).collect();
    assert!(keyed.len() >= 2, "seed 3 has several keyed people");
    // In order, cycling: any run of `keyed.len()` consecutive attackers is all different people.
    for w in attackers.windows(keyed.len()) {
        let distinct: HashSet<&String> = w.iter().collect();
        assert_eq!(distinct.len(), keyed.len(), "{w:?}");
    }
    assert_eq!(attackers[0], keyed[0].1, "the first detonation goes to the first keyed person it may use");
}

// ----- A recording: an attack hour with its set-up and clean-up -----

/// Invictus IR's recorded hour of one AWS account under Stratus Red Team
/// detonations: 55 CloudTrail delivery files, 2,900 records.
fn invictus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail/invictus-ir")
}

/// The recording's records as delivered, in the order replay reads them
/// (files by name, then each file's order).
fn invictus_original() -> Vec<Value> {
    let Ok(replay::Source::Recording(files)) = replay::source(&invictus_dir()) else {
        panic!("invictus-ir is a recording");
    };
    assert_eq!(files.len(), 55);
    files.iter().flat_map(|f| original(f)).collect()
}

fn replay_invictus(sim: &mut Simulation, day: u32) -> Replayed {
    let mut all = replay::plan(sim, &[Spec { path: invictus_dir(), day: Some(day) }]).expect("the recording replays");
    assert_eq!(all.len(), 1, "one recording, one replay");
    all.remove(0)
}

#[test]
fn a_recording_lands_whole_on_its_day_with_its_spacing() {
    let mut sim = sim();
    let orig = invictus_original();
    assert_eq!(orig.len(), 2900);
    let r = replay_invictus(&mut sim, 7);
    assert_eq!(r.scenario, "replay:invictus-ir");
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.records.len(), 2900);
    let first = orig.iter().map(|o| unix(&o["eventTime"])).min().unwrap();
    let last = orig.iter().map(|o| unix(&o["eventTime"])).max().unwrap();
    assert!(last - first > 50 * 60, "about an hour recorded");
    let delta = sim.abs(r.at) - first;
    let day = (sim.abs(7 * DAY), sim.abs(8 * DAY));
    for (rec, o) in r.records.iter().zip(&orig) {
        assert_eq!(rec.record["eventName"], o["eventName"], "file order, then record order");
        assert_eq!(unix(&rec.record["eventTime"]) - unix(&o["eventTime"]), delta, "one shift for every file");
        assert_eq!(rec.time, unix(&rec.record["eventTime"]));
        assert!((day.0..day.1).contains(&rec.time));
        let created = &o["userIdentity"]["sessionContext"]["attributes"]["creationDate"];
        if created.is_string() {
            let now = &rec.record["userIdentity"]["sessionContext"]["attributes"]["creationDate"];
            assert_eq!(unix(now) - unix(created), delta);
        }
    }
    assert_eq!(r.records.iter().map(|r| r.time).min(), Some(sim.abs(r.at)));
    // The hour is centred on 13:00 of its day.
    let (start, end) = (r.at - 7 * DAY, r.records.iter().map(|r| r.time).max().unwrap() - sim.abs(7 * DAY));
    assert!(start < 13 * HOUR && end > 13 * HOUR, "{start}..{end}");
    // Every record is in one delivery file per account and region.
    let chunks = replay::chunks(&sim, &r);
    assert_eq!(chunks.iter().map(|c| c.events).sum::<u64>(), 2900);
    assert!(chunks.iter().all(|c| c.path.ends_with("_replay_invictus-ir.json.gz")), "{:?}", chunks[0].path);
}

#[test]
fn a_recordings_event_ids_are_unique_new_and_stable() {
    let mut sim = sim();
    let originals: HashSet<String> =
        invictus_original().iter().map(|o| o["eventID"].as_str().unwrap().to_string()).collect();
    assert_eq!(originals.len(), 2900);
    let r = replay_invictus(&mut sim, 7);
    let ids: Vec<&str> = r.records.iter().map(|r| r.record["eventID"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 2900);
    assert!(unique.iter().all(|id| !originals.contains(*id)));
    assert!(ids.iter().all(|id| id.split('-').map(str::len).eq([8, 4, 4, 4, 12])));
    // The same arguments give the same ids and bytes; another day, new ids.
    let mut fresh = self::sim();
    let again = replay_invictus(&mut fresh, 7);
    assert_eq!(text(&r), text(&again));
    assert_eq!(r.labels, again.labels);
    let (a, b) = (replay::chunks(&sim, &r), replay::chunks(&fresh, &again));
    assert_eq!(
        a.iter().map(|c| (&c.path, &c.bytes)).collect::<Vec<_>>(),
        b.iter().map(|c| (&c.path, &c.bytes)).collect::<Vec<_>>()
    );
    let other = replay_invictus(&mut sim, 5);
    assert!(other.records.iter().all(|r| !unique.contains(r.record["eventID"].as_str().unwrap())));
}

#[test]
fn a_recordings_iam_users_become_simulated_people() {
    // Sixty people: several keyed people share the attacker's account.
    let mut sim = Simulation::new(Config { seed: 3, days: 8, humans: 60, agents: 4, ..Config::default() });
    let orig = invictus_original();
    let r = replay_invictus(&mut sim, 7);
    let keyed = keyed_users(&sim);
    let all = text(&r);
    // The account and both recorded people are gone.
    assert_eq!(r.original_account.as_deref(), Some("123837392027"));
    assert!(!all.contains("123837392027"));
    assert!(sim.org.accounts.iter().any(|a| a.id == r.account));
    for name in ["bert-jan", "benjamin"] {
        assert!(!all.contains(name), "{name} is still in the replay");
    }
    // bert-jan, the most active, is the attacker; benjamin another person
    // of the same account.
    let (recorded, attacker) = r.attacker.clone().unwrap();
    assert_eq!(recorded, "arn:aws:iam::123837392027:user/bert-jan");
    assert_eq!(r.others.len(), 1, "{:?}", r.others);
    assert_eq!(r.others[0].0, "arn:aws:iam::123837392027:user/benjamin");
    let other = r.others[0].1.clone().expect("a second keyed person in the attacker's account");
    assert_ne!(attacker, other);
    let user = |arn: &str| keyed.iter().find(|(_, a, _)| a == arn).cloned().expect("a simulated IAM user");
    let ((a_name, _, a_key), (o_name, _, o_key)) = (user(&attacker), user(&other));
    let inventory: Vec<Value> = tenet_sim::inventory::snapshot(&sim, 0)
        .into_iter()
        .filter(|(f, _)| f.starts_with("aws-iam-"))
        .map(|(_, b)| serde_json::from_slice(&b).unwrap())
        .collect();
    let orig_keys: HashSet<&str> = orig.iter().filter_map(|o| o["userIdentity"]["accessKeyId"].as_str()).collect();
    let mut temporary = HashSet::new();
    for (rec, o) in r.records.iter().zip(&orig) {
        let (was, now) = (&o["userIdentity"], &rec.record["userIdentity"]);
        let as_whom = match was["userName"].as_str() {
            Some("bert-jan") => Some((&attacker, &a_name, &a_key)),
            Some("benjamin") => Some((&other, &o_name, &o_key)),
            _ => None,
        };
        if let Some((arn, name, key)) = as_whom {
            if was["arn"].is_string() {
                assert_eq!(now["arn"], arn.as_str());
            }
            assert_eq!(now["userName"], name.as_str());
            assert_eq!(now["principalId"], find_user_id(&inventory, name).unwrap().as_str());
            match was["accessKeyId"].as_str() {
                Some(k) if k.starts_with("AKIA") => assert_eq!(now["accessKeyId"], key.as_str()),
                Some(k) if k.starts_with("ASIA") => {
                    // A session's key: a new temporary key, one per recorded key.
                    let new = now["accessKeyId"].as_str().unwrap();
                    assert!(new.starts_with("ASIA") && new.len() == 20 && !orig_keys.contains(new), "{new}");
                    temporary.insert((k.to_string(), new.to_string()));
                }
                _ => {}
            }
        }
    }
    assert!(temporary.len() > 100, "bert-jan's and benjamin's session keys: {}", temporary.len());
    let recorded_sessions: HashSet<&String> = temporary.iter().map(|(k, _)| k).collect();
    let simulated_sessions: HashSet<&String> = temporary.iter().map(|(_, k)| k).collect();
    assert_eq!(recorded_sessions.len(), temporary.len(), "each recorded session key maps to one key");
    assert_eq!(simulated_sessions.len(), temporary.len(), "sessions stay apart");
    // A user the recording creates (Terraform's, for a detonation) keeps its
    // name, in the simulated account.
    let created = format!("arn:aws:iam::{}:user/stratus-red-team-nmfalu-gfjyeaypjt", r.account);
    assert!(r.records.iter().any(|rec| rec.record["userIdentity"]["arn"] == created.as_str()));
}

#[test]
fn only_the_attack_tools_records_are_labelled() {
    let mut sim = sim();
    let r = replay_invictus(&mut sim, 7);
    assert_eq!(r.label_agent.as_deref(), Some("stratus-red-team_"));
    assert_eq!(r.labels.len(), 210);
    let mut labels = r.labels.iter();
    for rec in &r.records {
        let agent = rec.record["userAgent"].as_str().unwrap_or_default();
        assert_eq!(rec.labelled, agent.starts_with("stratus-red-team_"), "{agent}");
        if rec.labelled {
            let l = labels.next().expect("a label per labelled record, in order");
            assert_eq!(l.event_id, rec.record["eventID"].as_str().unwrap());
            assert_eq!((l.scenario.as_str(), l.category.as_str()), ("replay:invictus-ir", "likely_malicious"));
        }
    }
    assert!(labels.next().is_none());
    // The attacker's Terraform set-up and clean-up are replayed, unlabelled.
    let terraform = r
        .records
        .iter()
        .filter(|rec| rec.record["userAgent"].as_str().is_some_and(|a| a.contains("HashiCorp/1.0 Terraform/")));
    let (n, labelled) = terraform.fold((0, 0), |(n, l), rec| (n + 1, l + usize::from(rec.labelled)));
    assert!(n > 1000 && labelled == 0, "{n} Terraform records, {labelled} labelled");
    // The labelled records are the attacker's, the roles its detonations
    // assume and a user one of them creates.
    let (_, attacker) = r.attacker.clone().unwrap();
    let by_attacker = r.labels.iter().filter(|l| l.principal == attacker).count();
    assert_eq!(by_attacker, 162);
    assert!(
        r.labels.iter().all(|l| l.principal == attacker || l.principal.contains("stratus-red-team")),
        "{:?}",
        r.labels
    );
    // Another marker, or none (every record).
    let every = replay::plan_with(&mut sim, &[Spec { path: invictus_dir(), day: Some(7) }], "").unwrap();
    assert_eq!(every[0].labels.len(), 2900);
    let none = replay::plan_with(&mut sim, &[Spec { path: invictus_dir(), day: Some(7) }], "no-such-tool/").unwrap();
    assert!(none[0].labels.is_empty());
    assert_eq!(none[0].records.len(), 2900);
    // Detonation files are labelled whole whatever the marker.
    let file = stratus_dir().join("aws.persistence.iam-create-admin-user.json");
    let whole = replay::plan_with(&mut sim, &[Spec { path: file, day: Some(7) }], "no-such-tool/").unwrap();
    assert_eq!(whole[0].labels.len(), whole[0].records.len());
}

#[test]
fn a_directory_is_a_recording_only_when_cloudtrail_named_every_file() {
    let delivered = |s: &str| replay::is_delivery_file(Path::new(s));
    assert!(delivered("218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json"));
    assert!(delivered("/x/111122223333_CloudTrail_eu-west-3_20240101T0005Z_abc.json.gz"));
    for not in [
        "aws.persistence.iam-create-admin-user.json",
        "218007301253_CloudTrail-Digest_us-east-1_20230710T1145Z.json.gz",
        "21800730125_CloudTrail_us-east-1_20230710T1145Z_x.json",
        "218007301253_CloudTrail_us-east-1_20230710T1145_x.json",
        "218007301253_CloudTrail_us-east-1_20230710T1145Z_.json",
        "218007301253_CloudTrail_us-east-1_20230710T1145Z_x.txt",
        "",
    ] {
        assert!(!delivered(not), "{not}");
    }
    assert!(matches!(replay::source(&invictus_dir()), Ok(replay::Source::Recording(f)) if f.len() == 55));
    assert!(matches!(replay::source(&stratus_dir()), Ok(replay::Source::Detonations(f)) if f.len() == 35));
    let one = invictus_dir().join("218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json");
    assert_eq!(replay::source(&one), Ok(replay::Source::Detonations(vec![one.clone()])));
    // Both kinds in one directory: refused, with an example of each.
    let mixed = tempfile::tempdir().unwrap();
    std::fs::copy(&one, mixed.path().join(one.file_name().unwrap())).unwrap();
    let file = stratus_dir().join("aws.defense-evasion.cloudtrail-stop.json");
    std::fs::copy(&file, mixed.path().join(file.file_name().unwrap())).unwrap();
    let err = replay::plan(&mut sim(), &[Spec { path: mixed.path().into(), day: Some(7) }]).unwrap_err().to_string();
    assert!(err.contains("mixes 1 CloudTrail delivery files") && err.contains("cloudtrail-stop.json"), "{err}");

    // A recording in other framings (an array, gzip, an empty delivery)
    // reads the same; a bad record is named with its own file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let rec = |id: &str, t: &str, ua: &str| {
        serde_json::json!({"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventTime":t,"eventID":id,
            "recipientAccountId":"111122223333","userAgent":ua,
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/eve","userName":"eve","accountId":"111122223333"}})
    };
    let a = dir.join("111122223333_CloudTrail_us-east-1_20240801T1330Z_a.json");
    std::fs::write(
        &a,
        serde_json::to_vec(&[rec("1", "2024-08-01T13:33:28Z", "aws-cli/2"), serde_json::json!("junk")]).unwrap(),
    )
    .unwrap();
    let b = dir.join("111122223333_CloudTrail_us-east-1_20240801T1335Z_b.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let body = serde_json::json!({"Records": [rec("2", "2024-08-01T13:38:28Z", "stratus-red-team_x")]});
    std::io::Write::write_all(&mut gz, &serde_json::to_vec(&body).unwrap()).unwrap();
    std::fs::write(&b, gz.finish().unwrap()).unwrap();
    std::fs::write(dir.join("111122223333_CloudTrail_us-east-1_20240801T1340Z_c.json"), "{\"Records\":[]}").unwrap();
    let r = replay::plan(&mut sim(), &[Spec { path: dir.clone(), day: Some(2) }]).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].records.len(), 2);
    assert_eq!(r[0].records[1].time - r[0].records[0].time, 300);
    assert_eq!((r[0].records[1].file, r[0].records[1].index), (1, 0));
    assert_eq!(r[0].labels.len(), 1);
    let skipped: Vec<String> = r[0].skipped.iter().map(ToString::to_string).collect();
    assert_eq!(skipped, [format!("{}: [1]: (record): not a JSON object", a.display())]);
}

#[test]
fn a_recordings_other_users_keep_their_names_when_no_one_is_left() {
    // Twenty people: the attacker's account has no second keyed person (the
    // other one's user is in another account, where the records are not).
    let mut sim = sim();
    let accounts: Vec<usize> = sim.org.people.iter().filter_map(|p| p.iam_user.as_ref().map(|u| u.account)).collect();
    assert_eq!(accounts.iter().filter(|a| **a == accounts[0]).count(), 1, "{accounts:?}");
    let r = replay_invictus(&mut sim, 1);
    assert!(r.attacker.is_some());
    assert_eq!(r.others, [("arn:aws:iam::123837392027:user/benjamin".to_string(), None)]);
    let all = text(&r);
    assert!(all.contains(&format!("arn:aws:iam::{}:user/benjamin", r.account)));
    assert!(!all.contains("bert-jan") && !all.contains("123837392027"));
}
