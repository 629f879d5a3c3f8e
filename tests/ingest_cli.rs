//! `tenet ingest` and `tenet events` against the real shared telemetry,
//! through the binary, as a user runs them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn tenet(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tenet"));
    c.arg("--data-dir").arg(data_dir);
    c
}

fn ingest(data_dir: &Path, paths: &[PathBuf]) -> (Value, i32) {
    let out = tenet(data_dir).arg("ingest").arg("--json").args(paths).output().expect("tenet runs");
    (summary(&out), out.status.code().unwrap_or(-1))
}

fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("summary is not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

fn events(data_dir: &Path, filters: &[&str]) -> Vec<Value> {
    let out = tenet(data_dir).arg("events").arg("--json").args(filters).output().expect("tenet runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn invictus_hour_ingests_2900_events_without_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("cloudtrail/invictus-ir")]);
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected"), n(&s, "duplicates")), (2900, 2900, 0, 0));
    assert_eq!(s["formats"]["cloudtrail"]["stored"], 2900);
    assert_eq!(n(&s, "files"), 55);
}

#[test]
fn stratus_detonations_ingest_310_events_without_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("cloudtrail/stratus-red-team")]);
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected")), (310, 310, 0));
}

#[test]
fn otrf_elk_export_ingests_103_events() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("cloudtrail/otrf")]);
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected")), (103, 103, 0));
}

#[test]
fn whole_cloudtrail_folder_skips_its_index_files() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("cloudtrail")]);
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "stored"), n(&s, "rejected"), n(&s, "skipped")), (3313, 0, 2));
}

#[test]
fn falco_audit_traces_ingest_with_the_non_event_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("k8s-audit/falco")]);
    assert_eq!(code, 0, "{s}");
    // 51 audit events; two are the same request (same auditID and stage)
    // recorded in two trace files; `fal_01_003.json` is `{"kind": 0}`, which
    // Falco itself reports as "data not recognized as a k8s audit event".
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "duplicates"), n(&s, "rejected")), (51, 49, 2, 0));
    assert_eq!(n(&s, "skipped"), 1);
    assert!(s["skipped_files"][0].as_str().unwrap().ends_with("fal_01_003.json"));
}

#[test]
fn otlp_example_trace_ingests_one_span() {
    let dir = tempfile::tempdir().unwrap();
    let (s, code) = ingest(dir.path(), &[shared("otlp/trace.json")]);
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored")), (1, 1));
}

#[test]
fn ingesting_the_corpus_twice_stores_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = [shared("cloudtrail"), shared("k8s-audit/falco"), shared("otlp/trace.json")];
    let (first, _) = ingest(dir.path(), &corpus);
    assert_eq!(n(&first, "stored"), 3313 + 49 + 1);
    let (second, code) = ingest(dir.path(), &corpus);
    assert_eq!(code, 0);
    assert_eq!(n(&second, "stored"), 0);
    assert_eq!(n(&second, "duplicates"), n(&first, "read"));
    assert_eq!(events(dir.path(), &[]).len() as u64, 3313 + 49 + 1);
}

#[test]
fn assumed_role_session_resolves_to_role_and_the_user_who_assumed_it() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), &[shared("cloudtrail/stratus-red-team/aws.credential-access.ec2-get-password-data.json")]);
    let all = events(dir.path(), &["--action", "ec2:GetPasswordData"]);
    let e = all.iter().find(|e| e["id"] == "52242c8d-7ef7-4165-90cd-621ebe835388").expect("event stored");
    assert_eq!(
        e["actor"]["id"],
        "arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000"
    );
    let chain: Vec<&str> = e["chain"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        chain,
        vec![
            "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role",
            "arn:aws:iam::457448411975:user/christophe"
        ]
    );
    assert_eq!(e["actor"]["kind"], "human");
    // The user's own history includes what the session did on their behalf.
    let by_user = events(dir.path(), &["--principal", "arn:aws:iam::457448411975:user/christophe"]);
    assert!(by_user.iter().any(|x| x["id"] == e["id"]));
}

#[test]
fn issuer_arriving_after_its_sessions_still_completes_their_chains() {
    let dir = tempfile::tempdir().unwrap();
    let file = shared("cloudtrail/stratus-red-team/aws.credential-access.ec2-get-password-data.json");
    let records: Vec<Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let (issuers, uses): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| r["eventName"] == "AssumeRole");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("1-uses.json"), tmp.path().join("2-issuers.json"));
    std::fs::write(&a, serde_json::to_vec(&uses).unwrap()).unwrap();
    std::fs::write(&b, serde_json::to_vec(&issuers).unwrap()).unwrap();
    ingest(dir.path(), &[a]);
    let (s, _) = ingest(dir.path(), &[b]);
    assert!(n(&s, "relinked") > 0, "{s}");
    let e = events(dir.path(), &["--action", "GetPasswordData"]);
    assert!(e.iter().all(|e| {
        e["chain"].as_array().unwrap().iter().any(|p| p["id"] == "arn:aws:iam::457448411975:user/christophe")
    }));
}

/// alice assumes `ops` (minting ASIA1); that session assumes `admin`
/// (minting ASIA2); the `admin` session reads an object. Each record names
/// only the role behind its own session.
fn role_chain() -> [Value; 3] {
    let user = serde_json::json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice",
        "accountId": "111122223333", "accessKeyId": "AKIA1"});
    let session = |role: &str, name: &str, key: &str| {
        serde_json::json!({"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/{name}"),
            "principalId": format!("AROA:{name}"), "accountId": "111122223333", "accessKeyId": key,
            "sessionContext": {"attributes": {"creationDate": "2024-08-01T11:30:00Z", "mfaAuthenticated": "false"},
                "sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::111122223333:role/{role}"), "userName": role,
                    "accountId": "111122223333"}}})
    };
    let assume = |id: &str, minute: u32, who: Value, key: &str, role: &str, name: &str| {
        serde_json::json!({"eventVersion": "1.08", "eventTime": format!("2024-08-01T11:{minute:02}:00Z"),
            "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1", "eventID": id,
            "userIdentity": who,
            "responseElements": {"credentials": {"accessKeyId": key, "expiration": "Aug 1, 2024, 12:30:00 PM"},
                "assumedRoleUser": {"arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/{name}")}}})
    };
    [
        assume("e1", 30, user, "ASIA1", "ops", "s1"),
        assume("e2", 31, session("ops", "s1", "ASIA1"), "ASIA2", "admin", "s2"),
        serde_json::json!({"eventVersion": "1.08", "eventTime": "2024-08-01T11:32:00Z", "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "awsRegion": "us-east-1", "eventID": "e3",
            "userIdentity": session("admin", "s2", "ASIA2")}),
    ]
}

#[test]
fn a_role_chained_session_reaches_its_person_whichever_runs_and_batches_its_events_arrive_in() {
    let tmp = tempfile::tempdir().unwrap();
    let records = role_chain();
    let file = |name: &str, which: &[usize]| {
        let path = tmp.path().join(name);
        let body = serde_json::json!({"Records": which.iter().map(|&i| records[i].clone()).collect::<Vec<_>>()});
        std::fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
        path
    };
    let all = file("all.json", &[0, 1, 2]);
    let one: Vec<PathBuf> = (0..3).map(|i| file(&format!("{i}.json"), &[i])).collect();
    // Each arrangement is a list of runs, each run a list of files (a file is a batch).
    let arrangements: Vec<(&str, Vec<Vec<PathBuf>>)> = vec![
        ("one batch", vec![vec![all.clone()]]),
        ("three batches of one run", vec![one.clone()]),
        ("three runs in order", one.iter().map(|f| vec![f.clone()]).collect()),
        ("three runs, issuers last", one.iter().rev().map(|f| vec![f.clone()]).collect()),
        ("the first issuer last", vec![vec![one[1].clone()], vec![one[2].clone()], vec![one[0].clone()]]),
    ];
    for (name, runs) in arrangements {
        let dir = tempfile::tempdir().unwrap();
        for run in &runs {
            let out = tenet(dir.path()).args(["ingest", "--no-analyse", "--json"]).args(run).output().unwrap();
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let read = events(dir.path(), &["--action", "s3:GetObject"]);
        let chain: Vec<&str> = read[0]["chain"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(
            chain,
            vec![
                "arn:aws:iam::111122223333:role/admin",
                "arn:aws:sts::111122223333:assumed-role/ops/s1",
                "arn:aws:iam::111122223333:role/ops",
                "arn:aws:iam::111122223333:user/alice"
            ],
            "{name}"
        );
        assert_eq!(read[0]["actor"]["kind"], "human", "{name}");
        let by_alice = events(dir.path(), &["--principal", "arn:aws:iam::111122223333:user/alice"]);
        assert_eq!(by_alice.len(), 3, "{name}: everything done for alice, through any chain");
    }
}

#[test]
fn malformed_records_are_named_and_the_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let good = |id: &str| {
        format!(
            r#"{{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"{id}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}}}"#
        )
    };
    let path = tmp.path().join("mixed.ndjson");
    let body = format!(
        "{}\n{}\n{{\"eventTime\":7,\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"X\"}}\n{}\n{{\"eventTime\":\"2024-01-01T00:00:00Z\",\n",
        good("g1"),
        good("g2"),
        good("g3")
    );
    std::fs::write(&path, body).unwrap();
    let (s, code) = ingest(dir.path(), std::slice::from_ref(&path));
    assert_eq!(code, 2, "some records rejected: exit 2");
    assert_eq!((n(&s, "stored"), n(&s, "rejected")), (3, 2));
    let rej = s["rejections"].as_array().unwrap();
    assert_eq!(rej[0]["path"], path.display().to_string());
    assert_eq!(rej[0]["location"], "record 2, line 3, at eventTime");
    assert!(rej[0]["reason"].as_str().unwrap().contains("invalid type"));
    assert!(rej[1]["location"].as_str().unwrap().contains("line 5"));
    assert_eq!(events(dir.path(), &[]).len(), 3);
}

/// Every record of the Stratus detonations, compact, in file order.
fn stratus_records() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(shared("cloudtrail/stratus-red-team"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        match serde_json::from_slice::<Value>(&std::fs::read(f).unwrap()).unwrap() {
            Value::Array(records) => out.extend(records),
            mut wrapper => out.extend(wrapper["Records"].as_array_mut().map(std::mem::take).unwrap_or_default()),
        }
    }
    out
}

#[test]
fn a_line_cut_off_inside_a_string_costs_only_its_record() {
    // An array written one record per line, one line cut in the middle of
    // its user agent (a partial write): the cut string must not run on into
    // the lines after it.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let records = stratus_records();
    let cut = records.len() / 2;
    let lines: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let line = serde_json::to_string(r).unwrap();
            if i == cut {
                let at = line.find(r#""userAgent":""#).unwrap() + 20;
                line[..at].to_string()
            } else if i + 1 < records.len() {
                format!("{line},")
            } else {
                line
            }
        })
        .collect();
    let path = tmp.path().join("partial-write.json");
    std::fs::write(&path, format!("[\n{}\n]\n", lines.join("\n"))).unwrap();
    let (s, code) = ingest(dir.path(), std::slice::from_ref(&path));
    assert_eq!(code, 2, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected")), (310, 309, 1), "{s}");
    let rej = &s["rejections"][0];
    assert_eq!(rej["location"], format!("record {cut}, line {}", cut + 2));
    assert!(rej["reason"].as_str().unwrap().contains("cut off"), "{rej}");
}

#[test]
fn a_first_record_larger_than_the_detection_sample_is_stored_with_the_rest() {
    // The first record alone is over 256 KiB (a 270 KB user agent): it must
    // neither hide the format nor be lost.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut records = stratus_records();
    records[0]["userAgent"] = Value::String(format!("aws-cli/2.17 {}", "x".repeat(270_000)));
    let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    let path = tmp.path().join("export.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (s, code) = ingest(dir.path(), std::slice::from_ref(&path));
    assert_eq!(code, 0, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected")), (310, 310, 0), "{s}");
}

#[test]
fn garbage_lines_in_front_of_records_are_each_rejected_and_the_records_stored() {
    // NUL padding left by a crash, then a cut line, then the records.
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut body = vec![0u8; 4096];
    body.extend_from_slice(b"\n");
    body.extend(vec![0u8; 4096]);
    body.extend_from_slice(
        b"\n{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:us\n",
    );
    for r in stratus_records() {
        body.extend_from_slice(serde_json::to_string(&r).unwrap().as_bytes());
        body.push(b'\n');
    }
    let path = tmp.path().join("after-crash.ndjson");
    std::fs::write(&path, body).unwrap();
    let (s, code) = ingest(dir.path(), std::slice::from_ref(&path));
    assert_eq!(code, 2, "{s}");
    assert_eq!((n(&s, "read"), n(&s, "stored"), n(&s, "rejected")), (313, 310, 3), "{s}");
    let locations: Vec<&str> =
        s["rejections"].as_array().unwrap().iter().map(|r| r["location"].as_str().unwrap()).collect();
    assert_eq!(locations[..2], ["record 0, line 1", "record 1, line 2"]);
    assert!(locations[2].starts_with("record 2, line 3"), "{locations:?}");
    assert!(s["rejections"].as_array().unwrap().iter().all(|r| r["path"] == path.display().to_string()));
}

#[test]
fn empty_and_unrecognised_files_named_explicitly_are_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let (s, code) = ingest(dir.path(), &[empty.clone(), shared("cloudtrail/stratus-red-team-INDEX.tsv")]);
    assert_eq!(code, 2);
    assert_eq!(n(&s, "rejected"), 2);
    assert_eq!(n(&s, "skipped"), 0);
    assert!(s["rejections"][0]["reason"].as_str().unwrap().contains("empty"));
    assert!(s["rejections"][1]["reason"].as_str().unwrap().contains("not a recognised telemetry format"));
}

#[test]
fn gzip_and_stdin_inputs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read(shared("cloudtrail/stratus-red-team/aws.defense-evasion.cloudtrail-stop.json")).unwrap();
    let gz = tmp.path().join("delivery.json.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&src).unwrap();
    enc.finish().unwrap();
    let (s, code) = ingest(dir.path(), &[gz]);
    assert_eq!(code, 0, "{s}");
    let stored = n(&s, "stored");
    assert!(stored > 0);

    let other = tempfile::tempdir().unwrap();
    let mut child = tenet(other.path())
        .args(["ingest", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&src).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(n(&summary(&out), "stored"), stored);
}

fn gzip_file(path: &Path, data: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap();
}

#[test]
fn a_decompression_bomb_is_refused_and_the_files_beside_it_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // 64 MiB of blanks: ~64 KiB compressed, a thousandfold expansion.
    gzip_file(&tmp.path().join("2-bomb.json.gz"), &vec![b' '; 64 << 20]);
    let delivery =
        std::fs::read(shared("cloudtrail/stratus-red-team/aws.defense-evasion.cloudtrail-stop.json")).unwrap();
    gzip_file(&tmp.path().join("1-delivery.json.gz"), &delivery);
    std::fs::copy(
        shared("cloudtrail/stratus-red-team/aws.credential-access.ec2-get-password-data.json"),
        tmp.path().join("3-plain.json"),
    )
    .unwrap();
    let (s, code) = ingest(dir.path(), &[tmp.path().to_path_buf()]);
    assert_eq!(code, 2, "{s}");
    let rejections = s["rejections"].as_array().unwrap();
    assert_eq!(rejections.len(), 1, "{s}");
    assert_eq!(rejections[0]["location"], "file");
    let reason = rejections[0]["reason"].as_str().unwrap();
    assert!(reason.contains("2-bomb.json.gz") && reason.contains("100:1") && reason.contains("bomb"), "{reason}");
    assert!(n(&s, "stored") > 0);
    assert_eq!(n(&s, "stored") + 1, n(&s, "read"), "every record of the other two files stored: {s}");

    // The ratio is configuration: allowed to expand, the blanks are simply not telemetry.
    let other = tempfile::tempdir().unwrap();
    let out = tenet(other.path())
        .args(["ingest", "--json", "--no-analyse", "--max-expansion-ratio", "100000"])
        .arg(tmp.path().join("2-bomb.json.gz"))
        .output()
        .unwrap();
    let s = summary(&out);
    assert!(s["rejections"][0]["reason"].as_str().unwrap().contains("empty"), "{s}");
}

#[test]
fn a_gzip_over_the_decompressed_limit_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let delivery = std::fs::read(shared(
        "cloudtrail/invictus-ir/218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json",
    ))
    .unwrap();
    assert!(delivery.len() > 256 << 10);
    let gz = tmp.path().join("delivery.json.gz");
    gzip_file(&gz, &delivery);
    let out = tenet(dir.path())
        .args(["ingest", "--json", "--no-analyse", "--max-decompressed-bytes", "256KiB"])
        .arg(&gz)
        .arg(shared("cloudtrail/stratus-red-team/aws.defense-evasion.cloudtrail-stop.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let s = summary(&out);
    let reason = s["rejections"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("delivery.json.gz") && reason.contains("256 KiB"), "{reason}");
    assert_eq!(n(&s, "rejected"), 1, "{s}");
    assert!(n(&s, "stored") > 0, "the file beside it is stored: {s}");
}

#[test]
fn forced_format_overrides_detection() {
    let dir = tempfile::tempdir().unwrap();
    let out = tenet(dir.path())
        .args(["ingest", "--json", "--format", "okta"])
        .arg(shared("otlp/trace.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(n(&summary(&out), "rejected"), 1);
}

#[test]
fn event_filters_select_by_source_time_resource_and_action() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), &[shared("cloudtrail/invictus-ir"), shared("k8s-audit/falco")]);
    let k8s = events(dir.path(), &["--source", "kubernetes"]);
    assert_eq!(k8s.len(), 49);
    assert!(k8s.iter().all(|e| e["source"]["format"] == "k8s-audit"));
    let window =
        events(dir.path(), &["--source", "aws", "--since", "2023-07-10T12:00:00Z", "--until", "2023-07-10T12:09:59Z"]);
    assert!(!window.is_empty());
    assert!(window.iter().all(|e| e["time"].as_str().unwrap() >= "2023-07-10T12:00:00Z"
        && e["time"].as_str().unwrap() <= "2023-07-10T12:09:59Z"));
    let limited = events(dir.path(), &["--source", "aws", "--limit", "5"]);
    assert_eq!(limited.len(), 5);
    let secrets = events(dir.path(), &["--action", "secretsmanager:GetSecretValue"]);
    assert!(!secrets.is_empty());
    let resource = secrets[0]["resources"][0]["id"].as_str().unwrap().to_string();
    let touched = events(dir.path(), &["--resource", &resource]);
    assert!(touched.iter().any(|e| e["id"] == secrets[0]["id"]));
    for e in &touched {
        for key in ["id", "time", "actor", "chain", "action", "resources", "outcome", "source"] {
            assert!(e.get(key).is_some(), "{key} missing from {e}");
        }
    }
}

/// What a store holds, read with SQLite itself: whether its pages are
/// sound, each stored `(time, id)` with how often, and how many events
/// analysis has yet to see.
struct Held {
    integrity: String,
    keys: Vec<(i64, String)>,
    pending: i64,
}

fn held(data_dir: &Path) -> Held {
    let db = rusqlite::Connection::open(data_dir.join("tenet.db")).expect("the store opens");
    let integrity = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let mut stmt = db.prepare("SELECT time, id FROM events ORDER BY time, id").unwrap();
    let keys = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap();
    let pending = db
        .query_row(
            "SELECT count(*) FROM events WHERE seq > coalesce((SELECT events_seq FROM analysis WHERE id = 1), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    Held { integrity, keys, pending }
}

/// Every stored event as `tenet events --json` prints it, by id; fails if
/// an id is printed twice.
fn events_by_id(data_dir: &Path) -> std::collections::BTreeMap<String, Value> {
    let all = events(data_dir, &[]);
    let n = all.len();
    let by_id: std::collections::BTreeMap<String, Value> =
        all.into_iter().map(|e| (e["id"].as_str().expect("an id").to_string(), e)).collect();
    assert_eq!(by_id.len(), n, "an event id is stored twice");
    by_id
}

/// Checks that `crashed`, after an uninterrupted ingest, holds what the
/// clean ingest stored: the same `(time, id)` set, each once, all analysed.
fn assert_converged(crashed: &Path, clean: &Held, summary: &Value) {
    let got = held(crashed);
    assert_eq!(got.integrity, "ok");
    assert_eq!(got.keys, clean.keys, "the stored (time, id) sets differ: {summary}");
    assert_eq!(got.pending, 0, "events left unanalysed");
    assert_eq!(n(summary, "stored") + n(summary, "duplicates"), clean.keys.len() as u64, "{summary}");
}

#[test]
fn ingest_killed_at_random_points_leaves_a_working_store_and_a_rerun_converges_to_one_clean_ingest() {
    const KILLS: usize = 20;
    let work = tempfile::tempdir().unwrap();
    let sim = work.path().join("sim");
    // About 19,000 events over 136 files, in four formats, with sessions
    // whose issuers arrive late (relinked after storage).
    let out = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "5", "--days", "1", "--humans", "10", "--agents", "2", "--out"])
        .arg(&sim)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The reference: one uninterrupted ingest (with analysis) into a fresh store.
    let clean = work.path().join("clean");
    let started = std::time::Instant::now();
    let (reference, code) = ingest(&clean, std::slice::from_ref(&sim));
    let whole = started.elapsed();
    assert_eq!(code, 0, "{reference}");
    let want = held(&clean);
    assert_eq!(want.keys.len() as u64, n(&reference, "stored"));
    assert!(want.keys.len() > 10_000, "{reference}");

    // The same ingest into other stores, killed (SIGKILL) at seeded random
    // points, again and again: reading, storing, committing, relinking,
    // analysing. A run the kill comes too late for is the re-run that must
    // converge; the next run starts a fresh store, so kills keep landing
    // on real work rather than on re-reading a finished store.
    let mut rng = fastrand::Rng::with_seed(13);
    let (mut kills, mut runs, mut stores) = (0, 0, 1);
    let mut crashed = work.path().join("crashed-1");
    while kills < KILLS {
        runs += 1;
        assert!(runs <= 3 * KILLS, "{kills} of {runs} runs were killed before they finished");
        let delay = whole.mul_f64(0.02 + 0.5 * rng.f64());
        let mut child = tenet(&crashed)
            .args(["ingest", "--json"])
            .arg(&sim)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            // Whatever the kill interrupted, the store opens and answers,
            // its pages are sound, and no event is in it twice.
            if crashed.join("tenet.db").exists() {
                assert!(events(&crashed, &["--limit", "5"]).len() <= 5);
                let h = held(&crashed);
                assert_eq!(h.integrity, "ok", "after kill {kills}");
                let mut keys = h.keys.clone();
                keys.dedup();
                assert_eq!(keys.len(), h.keys.len(), "an event stored twice after kill {kills}");
            }
        } else {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "run {runs} failed on its own");
            assert_converged(&crashed, &want, &summary(&out));
            stores += 1;
            crashed = work.path().join(format!("crashed-{stores}"));
        }
    }

    // Ingesting once more completes the last store: every event of the
    // clean ingest, each once, as the clean ingest stored it.
    let (last, code) = ingest(&crashed, std::slice::from_ref(&sim));
    assert_eq!(code, 0, "{last}");
    assert_converged(&crashed, &want, &last);
    let (got, want) = (events_by_id(&crashed), events_by_id(&clean));
    let differ: Vec<&String> = want.iter().filter(|(id, e)| got.get(*id) != Some(e)).map(|(id, _)| id).collect();
    assert!(differ.is_empty(), "{} events differ from the clean ingest's, first {:?}", differ.len(), differ.first());
    assert_eq!(got.len(), want.len());
    // Analysis, all-or-nothing per run, reached what the clean run concluded.
    for what in [&["findings", "--all", "--json"][..], &["risk", "--json"]] {
        let sorted = |dir: &Path| {
            let mut lines: Vec<String> = ok_lines(dir, what);
            lines.sort();
            lines
        };
        assert_eq!(sorted(&crashed), sorted(&clean), "{what:?} differ");
    }
}

fn ok_lines(data_dir: &Path, args: &[&str]) -> Vec<String> {
    let out = tenet(data_dir).args(args).output().expect("tenet runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Runs `args` with standard output a pipe nobody reads any more (as
/// `tenet … | head` leaves it once `head` has its lines).
fn into_closed_pipe(data_dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    tenet(data_dir).args(args).stdout(writer).stderr(Stdio::piped()).output().expect("tenet runs")
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_and_keeps_the_work_done() {
    let dir = tempfile::tempdir().unwrap();
    let stratus = shared("cloudtrail/stratus-red-team");
    let stratus = stratus.to_str().unwrap();
    for args in [
        &["ingest", stratus][..],
        &["ingest", "--json", stratus],
        &["events", "--json"],
        &["analyse"],
        &["findings", "--all"],
        &["risk"],
        &["unused", "--days", "30"],
    ] {
        let out = into_closed_pipe(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "tenet {args:?} panicked on a closed pipe: {stderr}");
        assert_eq!(out.status.code(), Some(0), "tenet {args:?}: {stderr}");
    }
    // What the first ingest stored is there; the second found it all stored.
    assert!(!events(dir.path(), &[]).is_empty(), "ingest into a closed pipe still stores its events");
    // Bad input left out still says so in the exit status (2), output or not.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not telemetry\n").unwrap();
    for json in [&[][..], &["--json"]] {
        let mut args = vec!["ingest"];
        args.extend_from_slice(json);
        args.extend([stratus, notes.to_str().unwrap()]);
        let out = into_closed_pipe(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "tenet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A principal is named the same way everywhere, by any alias: its ARN, or
/// its short name when that is unique. A name nothing carries is an error
/// (exit 1) rather than an empty list, and a name several principals carry
/// lists them.
#[test]
fn a_principal_is_found_by_any_alias_and_an_unknown_or_ambiguous_name_says_so() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), &[shared("cloudtrail/stratus-red-team")]);
    let role = "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role";
    let by_arn = events(dir.path(), &["--principal", role]);
    assert!(!by_arn.is_empty());
    let by_short = events(dir.path(), &["--principal", "stratus-red-team-ec2-get-password-data-role"]);
    assert_eq!(by_short, by_arn, "the short name finds what the ARN finds");

    let unknown = tenet(dir.path()).args(["events", "--principal", "bert-jan"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(1), "unknown is an error, not an empty answer");
    let why = String::from_utf8_lossy(&unknown.stderr);
    assert!(why.contains("unknown principal \"bert-jan\""), "{why}");

    // The detonations ran as a `christophe` IAM user in many accounts.
    let ambiguous = tenet(dir.path()).args(["findings", "--principal", "christophe"]).output().unwrap();
    assert_eq!(ambiguous.status.code(), Some(1));
    let why = String::from_utf8_lossy(&ambiguous.stderr);
    assert!(
        why.contains("names more than one principal")
            && why.contains("arn:aws:iam::056392974792:user/christophe")
            && why.contains("arn:aws:iam::017622104382:user/christophe"),
        "the candidates: {why}"
    );
}
