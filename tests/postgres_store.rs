//! The pipeline on PostgreSQL: every command given `--store
//! postgres://…` (or `TENET_STORE`) keeps its state there, and the same
//! input gives the same events, findings and risk as on the embedded store.
//! Against a private server from the machine's binaries; skipped loudly
//! where PostgreSQL is not installed, a failure under
//! `TENET_REQUIRE_EXTERNAL=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}

use common::on_store as tenet;

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// What a store answers about the enterprise, in a comparable form.
fn answers(data: &Path, store: Option<&str>) -> (usize, Vec<Value>, Vec<Value>) {
    let events = tenet(data, store, &["events", "--json"]).lines().count();
    let mut findings = lines(&tenet(data, store, &["findings", "--all", "--json"]));
    findings.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut risk = lines(&tenet(data, store, &["risk", "--json"]));
    risk.sort_by(|a, b| a["principal"].as_str().cmp(&b["principal"].as_str()));
    (events, findings, risk)
}

#[test]
fn the_same_input_gives_the_same_events_findings_and_risk_on_postgres_as_embedded() {
    let Some(pg) = tenet_testkit::postgres::server(
        "the_same_input_gives_the_same_events_findings_and_risk_on_postgres_as_embedded",
    ) else {
        return;
    };
    let url = pg.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let detonation =
        shared("data/cloudtrail/stratus-red-team/aws.credential-access.secretsmanager-batch-retrieve-secrets.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "11", "--days", "6", "--humans", "14", "--agents", "3", "--scenario", "all"])
        .arg("--replay")
        .arg(format!("{}@4", detonation.display()))
        .arg("--out")
        .arg(&sim)
        .output()
        .unwrap();
    assert!(out.status.success(), "simulate: {}", String::from_utf8_lossy(&out.stderr));
    let rules = shared("data/sigma");
    let (embedded, on_pg) = (dir.path().join("embedded"), dir.path().join("node"));
    for (data, store) in [(&embedded, None), (&on_pg, Some(url.as_str()))] {
        let mut days: Vec<PathBuf> =
            std::fs::read_dir(sim.join("inventory")).unwrap().map(|e| e.unwrap().path()).collect();
        days.sort();
        for day in days {
            let at = format!("{}T00:00:00Z", day.file_name().unwrap().to_string_lossy());
            tenet(data, store, &["import", day.to_str().unwrap(), "--at", &at]);
        }
        tenet(data, store, &["ingest", sim.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    }
    assert!(!on_pg.join("tenet.db").exists(), "nothing of the store is kept in the data directory");
    let (events, findings, risk) = answers(&embedded, None);
    assert!(events > 1000 && !findings.is_empty() && !risk.is_empty(), "{events} events, {} findings", findings.len());
    let (pg_events, pg_findings, pg_risk) = answers(&on_pg, Some(&url));
    assert_eq!(pg_events, events);
    assert_eq!(pg_findings.len(), findings.len());
    for (a, b) in findings.iter().zip(&pg_findings) {
        assert_eq!(a, b, "the same finding, field for field");
    }
    assert_eq!(pg_risk, risk);
    // The graph reads the same trust facts back.
    let principal = findings[0]["principal"].as_str().unwrap();
    assert_eq!(
        tenet(&on_pg, Some(&url), &["reach", principal, "--json"]),
        tenet(&embedded, None, &["reach", principal, "--json"])
    );
}

#[test]
fn a_service_on_postgres_stores_what_it_acknowledges_where_the_cli_reads_it() {
    let Some(pg) =
        tenet_testkit::postgres::server("a_service_on_postgres_stores_what_it_acknowledges_where_the_cli_reads_it")
    else {
        return;
    };
    let url = pg.fresh_database();
    let data = tempfile::tempdir().unwrap();
    let file =
        std::fs::read_to_string(shared("data/cloudtrail/stratus-red-team/aws.persistence.iam-create-admin-user.json"))
            .unwrap();
    let mut cmd = common::tenet(data.path());
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    cmd.env("TENET_STORE", &url).args(["serve", "--addr", "127.0.0.1:0", "--policies"]).arg(policies);
    let server = common::Server::spawn(cmd);
    // A second service on the same store is refused: one learner per store.
    let other = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .arg("--data-dir")
        .arg(other.path())
        .env("TENET_STORE", &url)
        .args(["serve", "--addr", "127.0.0.1:0", "--policies"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("another Tenet service (or a cluster's nodes) is running on the store"), "{why}");
    // So is a batch analysis beside it, from any machine.
    let batch = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .arg("--data-dir")
        .arg(other.path())
        .env("TENET_STORE", &url)
        .arg("analyse")
        .output()
        .unwrap();
    assert!(!batch.status.success());
    let why = String::from_utf8_lossy(&batch.stderr);
    assert!(why.contains("a running Tenet service on the store"), "{why}");
    let answer = server.post("/api/v1/events", Some("application/json"), None, &file).json();
    let stored = answer["stored"].as_u64().unwrap();
    assert!(stored > 0, "{answer}");
    // Decisions are logged in PostgreSQL's chain.
    let ask = serde_json::json!({
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "roadmap"}
    });
    for _ in 0..3 {
        assert_eq!(server.post_json("/access/v1/evaluation", &ask).status, 200);
    }
    assert_eq!(server.stop().code(), Some(0));
    let verified = tenet(data.path(), Some(&url), &["audit", "verify"]);
    assert!(verified.starts_with("intact: 3 decision record(s)"), "{verified}");
    assert!(!data.path().join("decisions.db").exists());
    let listed = tenet(data.path(), Some(&url), &["events", "--json"]).lines().count() as u64;
    assert_eq!(listed, stored, "every acknowledged event is in PostgreSQL");
    assert!(!data.path().join("tenet.db").exists());
    // The embedded store of the same data directory knows nothing of them.
    assert_eq!(tenet(data.path(), None, &["events", "--json"]).lines().count(), 0);
}

/// `tenet serve` on the store at `url`, its receivers verifying every second.
fn serve_on(data: &Path, url: &str) -> common::Server {
    let config = data.join("serve.yaml");
    std::fs::write(&config, "ssf:\n  min_verification_interval: 1\n").unwrap();
    let mut cmd = common::tenet(data);
    cmd.env("TENET_STORE", url)
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--policies")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"));
    common::Server::spawn(cmd)
}

#[test]
fn shared_signals_streams_and_their_outbox_live_in_postgres_across_a_restart() {
    use serde_json::json;
    let Some(pg) =
        tenet_testkit::postgres::server("shared_signals_streams_and_their_outbox_live_in_postgres_across_a_restart")
    else {
        return;
    };
    let url = pg.fresh_database();
    let data = tempfile::tempdir().unwrap();
    let created = tenet(data.path(), Some(&url), &["key", "create", "rx", "--scopes", "ssf"]);
    let token = created.lines().last().unwrap().trim().to_string();
    assert!(!data.path().join("keys.db").exists(), "the key is kept in PostgreSQL");
    let verification = "https://schemas.openid.net/secevent/ssf/event-type/verification";

    let server = serve_on(data.path(), &url);
    let stream = server.call("POST", "/ssf/stream", Some(&token), Some(&json!({"events_requested": [verification]})));
    assert_eq!(stream.status, 201, "{}", stream.body);
    let stream = stream.json();
    let id = stream["stream_id"].as_str().unwrap().to_string();
    let poll_path =
        stream["delivery"]["endpoint_url"].as_str().unwrap().strip_prefix(server.base()).unwrap().to_string();
    for state in ["a", "b"] {
        let asked = server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": state})));
        assert_eq!(asked.status, 204, "{}", asked.body);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let first = server.call("POST", &poll_path, Some(&token), Some(&json!({"returnImmediately": true}))).json();
    let jtis: Vec<String> = first["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(jtis.len(), 2, "{first}");
    let acked = server.call("POST", &poll_path, Some(&token), Some(&json!({"maxEvents": 0, "ack": [jtis[0]]})));
    assert_eq!(acked.status, 200);
    assert_eq!(server.stop().code(), Some(0));
    assert!(!data.path().join("ssf.db").exists(), "the stream and its outbox are kept in PostgreSQL");

    // Restarted: the stream is there, the unacknowledged SET is sent again
    // under its jti, the acknowledged one never.
    let server = serve_on(data.path(), &url);
    let again = server.call("POST", &poll_path, Some(&token), Some(&json!({"returnImmediately": true}))).json();
    let left: Vec<&String> = again["sets"].as_object().unwrap().keys().collect();
    assert_eq!(left, [&jtis[1]], "{again}");
    let listed = tenet(data.path(), Some(&url), &["ssf", "streams", "--json"]);
    assert!(listed.contains(&id), "{listed}");
    drop(server);
}

#[test]
fn a_postgresql_restart_refuses_intake_with_retry_after_keeps_deciding_and_recovers_by_itself() {
    use serde_json::json;
    let Some(pg) = tenet_testkit::postgres::Server::start(
        "a_postgresql_restart_refuses_intake_with_retry_after_keeps_deciding_and_recovers_by_itself",
    ) else {
        return;
    };
    let url = pg.fresh_database();
    let data = tempfile::tempdir().unwrap();
    let token = tenet(data.path(), Some(&url), &["key", "create", "pep", "--scopes", "ingest,decide"]);
    let token = token.lines().last().unwrap().trim().to_string();
    let server = serve_on(data.path(), &url);
    let stratus =
        |name: &str| std::fs::read_to_string(shared(&format!("data/cloudtrail/stratus-red-team/{name}.json"))).unwrap();
    let events = |body: &str| {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        server.call("POST", "/api/v1/events", Some(&token), Some(&body))
    };
    let ask = json!({
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "roadmap"}
    });
    let first = events(&stratus("aws.persistence.iam-create-admin-user"));
    assert_eq!(first.status, 200, "{}", first.body);

    pg.stop();
    let refused = events(&stratus("aws.defense-evasion.cloudtrail-stop"));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.iter().any(|(k, _)| k == "retry-after"), "{:?}", refused.headers);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let decided = server.call("POST", "/access/v1/evaluation", Some(&token), Some(&ask));
    assert_eq!(decided.status, 200, "decisions are served from live state while PostgreSQL is down: {}", decided.body);

    pg.start_again();
    let retried = events(&stratus("aws.defense-evasion.cloudtrail-stop"));
    assert_eq!(retried.status, 200, "recovered by itself: {}", retried.body);
    let stored = first.json()["stored"].as_u64().unwrap() + retried.json()["stored"].as_u64().unwrap();
    assert_eq!(server.stop().code(), Some(0));
    assert_eq!(tenet(data.path(), Some(&url), &["events", "--json"]).lines().count() as u64, stored);
    let verified = tenet(data.path(), Some(&url), &["audit", "verify"]);
    assert!(verified.starts_with("intact: 1 decision record(s)"), "the decision made meanwhile is logged: {verified}");
}

/// The key id a `tenet ssf` message names (`… key <kid> …`).
fn kid_in(message: &str) -> String {
    let words: Vec<&str> = message.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "key").unwrap_or_else(|| panic!("no key named: {message}"));
    words[at + 1].to_string()
}

#[test]
fn the_signing_key_a_data_directory_had_moves_into_the_store_and_is_rotated_there() {
    let Some(pg) = tenet_testkit::postgres::server(
        "the_signing_key_a_data_directory_had_moves_into_the_store_and_is_rotated_there",
    ) else {
        return;
    };
    let url = pg.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // Embedded: a key, rotated: the file holds the active one.
    tenet(data, None, &["ssf", "rotate-key"]);
    let on_file = kid_in(&tenet(data, None, &["ssf", "rotate-key"]));
    // On PostgreSQL, the first use takes the file's active key as the
    // store's (its receivers know it), and rotates from there.
    let stored = kid_in(&tenet(data, Some(&url), &["ssf", "rotate-key"]));
    assert_ne!(stored, on_file);
    let retired = tenet(data, Some(&url), &["ssf", "retire-key"]);
    assert_eq!(kid_in(&retired), on_file, "the file's key was the store's active one: {retired}");
    // The file is left as it was, for the embedded store.
    assert!(data.join("ssf/signing-key.pk8").exists());
}
