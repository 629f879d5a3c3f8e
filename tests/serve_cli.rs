//! `tenet serve` as an operator runs it: policy hot reload that refuses a
//! bad change and keeps serving, the admin reload endpoint, the hash-chained
//! decision log surviving a clean shutdown, explanations, metrics; and the
//! decision point on the command line (`check`, `policy`, `audit`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, authzen_policies, run, tenet};
use serde_json::{Value, json};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn alice_reads(server: &Server) -> bool {
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let got = server.post_json("/access/v1/evaluation", &body);
    assert_eq!(got.status, 200, "{}", got.body);
    got.json()["decision"].as_bool().unwrap()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within 10 s");
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").body;
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn policy_changes_reload_live_and_a_bad_change_never_replaces_the_good_set() {
    let data = tempfile::tempdir().unwrap();
    let policies = data.path().join("policies");
    copy_dir(&authzen_policies("certification"), &policies);
    let config = data.path().join("serve.yaml");
    std::fs::write(&config, format!("policies: {}\npolicy_poll_ms: 50\n", policies.display())).unwrap();
    let server = Server::start(data.path(), &["--config", config.to_str().unwrap()]);
    assert!(alice_reads(&server));

    // A new file forbidding it is picked up without a restart.
    std::fs::write(
        policies.join("lockdown.cedar"),
        "@id(\"lockdown\") forbid(principal == user::\"alice\", action, resource);\n",
    )
    .unwrap();
    eventually("the forbid takes effect", || !alice_reads(&server));

    // A syntax error is refused: the last good set keeps deciding, the failure is counted.
    std::fs::write(policies.join("broken.cedar"), "permit(principal,\n  action resource);\n").unwrap();
    eventually("the refusal is counted", || metric(&server, "tenet_policy_reload_failures") >= 1.0);
    assert!(!alice_reads(&server), "still the last good set");
    let refused = server.post("/admin/policies/reload", None, None, "");
    assert_eq!(refused.status, 422, "{}", refused.body);
    let err = refused.json()["error"].as_str().unwrap().to_string();
    assert!(err.contains("broken.cedar:2:"), "diagnostics name file and line: {err}");

    // Fixed and reloaded through the admin endpoint, by a named author.
    std::fs::remove_file(policies.join("broken.cedar")).unwrap();
    std::fs::remove_file(policies.join("lockdown.cedar")).unwrap();
    let ok = server.post("/admin/policies/reload", None, None, "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(alice_reads(&server));
    drop(server);

    // Every version was kept with its time, author and diff.
    let versions = run(data.path(), &["policy", "versions", "--diff"]);
    let text = String::from_utf8(versions.stdout).unwrap();
    assert!(versions.status.success(), "{text}");
    assert!(text.matches(" by ").count() >= 3, "initial, lockdown, restored: {text}");
    assert!(text.contains("+@id(\"lockdown\") forbid"), "{text}");
}

#[test]
fn the_decision_log_keeps_every_answered_decision_and_shows_tampering() {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies("certification");
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    let body = json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}}).to_string();
    for i in 0..50 {
        let got = server.post("/access/v1/evaluation", Some("application/json"), Some(&format!("req-{i}")), &body);
        assert_eq!(got.status, 200);
    }
    let batch = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {"resource": {"type": "record", "id": "record-2"}}]});
    assert_eq!(
        server.post("/access/v1/evaluations", Some("application/json"), Some("batch-1"), &batch.to_string()).status,
        200
    );
    // Stopped right after answering: a clean shutdown loses none of them.
    assert!(server.stop().success());
    let out = run(data.path(), &["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("intact: 52 decision record(s)"), "{text}");

    // What was logged is what was decided, with the request and the reasons.
    let db = rusqlite::Connection::open(data.path().join("decisions.db")).unwrap();
    let (decision, reasons, request): (bool, String, String) = db
        .query_row("SELECT decision, reasons, request FROM decisions WHERE request_id = 'req-7'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert!(!decision);
    assert!(reasons.contains("default deny"), "{reasons}");
    assert!(request.contains("\"bob\""), "{request}");
    let batch_items: i64 =
        db.query_row("SELECT count(*) FROM decisions WHERE request_id LIKE 'batch-1#%'", [], |r| r.get(0)).unwrap();
    assert_eq!(batch_items, 2, "a batch's items are logged under the caller's id");

    // Altering one record is found, and named by sequence number and request id.
    db.execute("UPDATE decisions SET decision = 1 WHERE request_id = 'req-7'", []).unwrap();
    let out = run(data.path(), &["audit", "verify"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(err.contains("record 8") && err.contains("req-7") && err.contains("altered"), "{err}");
    db.execute("UPDATE decisions SET decision = 0 WHERE request_id = 'req-7'", []).unwrap();
    // So is a removed one.
    db.execute("DELETE FROM decisions WHERE request_id = 'req-20'", []).unwrap();
    let err = String::from_utf8_lossy(&run(data.path(), &["audit", "verify"]).stderr).to_string();
    assert!(err.contains("record 22") && err.contains("removed"), "{err}");
}

#[test]
fn explanations_are_opt_in_and_metrics_count_decisions() {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies("certification");
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let plain = server.post_json("/access/v1/evaluation", &body);
    assert_eq!(plain.body, r#"{"decision":true}"#, "exactly the decision without the flag");
    let explained = server.post_json("/access/v1/evaluation?explain=true", &body).json();
    let ctx = &explained["context"];
    assert_eq!(explained["decision"], json!(true));
    assert!(!ctx["policies"].as_array().unwrap().is_empty(), "{ctx}");
    assert!(ctx["reason"].as_str().unwrap().contains("Permitted by"), "{ctx}");
    assert_eq!(ctx["signals"]["risk"], json!({"available": false}), "nothing known of alice: said, not invented");
    assert!(ctx["policy_version"].is_string());
    let denied = server.post_json("/access/v1/evaluation?explain=true", &json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}})).json();
    assert!(denied["context"]["reason"].as_str().unwrap().contains("Denied"), "{denied}");
    assert!(metric(&server, "tenet_decisions_total{endpoint=\"evaluation\",outcome=\"permit\"}") >= 2.0);
    assert!(metric(&server, "tenet_decisions_total{endpoint=\"evaluation\",outcome=\"deny\"}") >= 1.0);
    assert!(metric(&server, "tenet_decision_seconds_count") >= 3.0);
    assert!(server.get("/metrics").body.contains("tenet_policy_version{version="));
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/readyz").status, 200);
}

#[test]
fn without_api_keys_only_loopback_is_served() {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies("certification");
    let out = tenet(data.path())
        .args(["serve", "--addr", "0.0.0.0:0", "--policies", policies.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a loopback address"));
}

#[test]
fn check_decides_locally_with_the_same_engine() {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies("certification");
    let p = policies.to_str().unwrap();
    let check = |args: &[&str]| {
        let mut all = vec!["check", "--policies", p];
        all.extend_from_slice(args);
        let out = run(data.path(), &all);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        check(&["--principal", "user:alice", "--action", "read", "--resource", "record:record-1"]).trim(),
        "permit"
    );
    assert_eq!(
        check(&["--principal", "user:bob", "--action", "write", "--resource", "record:record-1"]).trim(),
        "deny"
    );
    let json: Value = serde_json::from_str(&check(&[
        "--principal",
        "user:alice",
        "--action",
        "read",
        "--resource",
        "record:record-1",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json, json!({"decision": true}));
    let explained: Value = serde_json::from_str(&check(&[
        "--principal",
        "user:alice",
        "--action",
        "delete",
        "--resource",
        "record:record-1",
        "--json",
        "--explain",
    ]))
    .unwrap();
    assert_eq!(explained["decision"], json!(false));
    assert!(explained["context"]["reason"].is_string());
    let text = check(&["--principal", "user:alice", "--action", "read", "--resource", "record:record-1", "--explain"]);
    assert!(text.contains("reason:") && text.contains("signals:"), "{text}");
    let bad = run(
        data.path(),
        &["check", "--policies", p, "--principal", "alice", "--action", "read", "--resource", "record:1"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected TYPE:ID"));
}

#[test]
fn policy_validate_names_the_broken_line_and_policy_test_runs_expected_decisions() {
    let data = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let ok = run(data.path(), &["policy", "validate", examples.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success() && text.contains("validated against the schema"),
        "{text} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The shipped adaptive examples decide as their cases say, signals included.
    let tested = run(
        data.path(),
        &["policy", "test", examples.to_str().unwrap(), examples.join("cases.json").to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&tested.stdout).to_string();
    assert!(tested.status.success(), "{text}");
    assert!(text.contains("15 passed, 0 failed"), "{text}");
    // The interop decisions file is a test-case file too.
    let todo = authzen_policies("todo");
    let cases = common::authzen_specs().join("todo/decisions-authorization-api-1_0-02.json");
    let tested = run(data.path(), &["policy", "test", todo.to_str().unwrap(), cases.to_str().unwrap()]);
    assert!(tested.status.success(), "{}", String::from_utf8_lossy(&tested.stdout));
    assert!(String::from_utf8_lossy(&tested.stdout).contains("43 passed, 0 failed"));

    // A policy breaking the schema, and a syntax error, each named with Cedar's words.
    let dir = data.path().join("bad");
    copy_dir(&examples, &dir);
    std::fs::write(
        dir.join("extra.cedar"),
        "permit(principal, action == Action::\"read\", resource) when { resource.colour == \"red\" };\n",
    )
    .unwrap();
    let out = run(data.path(), &["policy", "validate", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("extra.cedar") && err.contains("fails validation"), "{err}");
    std::fs::write(dir.join("extra.cedar"), "permit(principal, action, resource)\nwhen { true \n").unwrap();
    let err =
        String::from_utf8_lossy(&run(data.path(), &["policy", "validate", dir.to_str().unwrap()]).stderr).to_string();
    assert!(err.contains("extra.cedar:"), "{err}");
    // A wrong expectation fails the run and says which case.
    let wrong = data.path().join("wrong.json");
    std::fs::write(&wrong, r#"[{"name": "alice may delete", "request": {"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "delete"}, "resource": {"type": "secret", "id": "prod-db-password"}}, "expected": true}]"#).unwrap();
    let out = run(data.path(), &["policy", "test", examples.to_str().unwrap(), wrong.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL alice may delete"));
}

#[test]
fn api_keys_gate_each_endpoint_by_scope_and_revocation_takes_effect() {
    let data = tempfile::tempdir().unwrap();
    let created = run(data.path(), &["key", "create", "gateway", "--scopes", "decide"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("tnt_"), "the token alone on the last line: {stdout}");
    let admin_out =
        String::from_utf8(run(data.path(), &["key", "create", "ops", "--scopes", "admin,decide"]).stdout).unwrap();
    let admin = admin_out.lines().last().unwrap().trim().to_string();
    let keys_db = std::fs::read(data.path().join("keys.db")).unwrap();
    assert!(!keys_db.windows(token.len()).any(|w| w == token.as_bytes()), "stored hashed");
    let bad_scope = run(data.path(), &["key", "create", "x", "--scopes", "root"]);
    assert!(!bad_scope.status.success() && String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));

    let policies = authzen_policies("certification");
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}).to_string();
    let call = |path: &str, bearer: Option<&str>| {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut req = agent.post(format!("{}{path}", server.base)).header("content-type", "application/json");
        if let Some(t) = bearer {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let resp = req.send(body.as_str()).unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().read_to_string().unwrap())
    };
    let (status, reason) = call("/access/v1/evaluation", None);
    assert_eq!(status, 401, "{reason}");
    let message =
        |body: &str| serde_json::from_str::<Value>(body).unwrap()["error"]["message"].as_str().unwrap().to_string();
    assert!(message(&reason).contains("API key"), "{reason}");
    assert_eq!(call("/access/v1/evaluation", Some("tnt_wrong")).0, 401);
    assert_eq!(call("/access/v1/evaluation", Some(&token)), (200, r#"{"decision":true}"#.to_string()));
    let (status, reason) = call("/admin/policies/reload", Some(&token));
    assert_eq!(status, 403, "{reason}");
    assert!(message(&reason).contains("lacks scope \"admin\""), "{reason}");
    assert_eq!(call("/admin/policies/reload", Some(&admin)).0, 200);
    assert_eq!(server.get("/healthz").status, 200, "health stays open");

    let list = String::from_utf8(run(data.path(), &["key", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(run(data.path(), &["key", "revoke", "gateway"]).status.success());
    eventually("the revoked key stops working", || call("/access/v1/evaluation", Some(&token)).0 == 401);
    assert_eq!(call("/access/v1/evaluation", Some(&admin)).0, 200, "other keys keep working");
    assert!(String::from_utf8(run(data.path(), &["key", "list"]).stdout).unwrap().contains("revoked"));
}

#[test]
fn with_a_certificate_the_server_speaks_only_tls() {
    let data = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let policies = authzen_policies("certification");
    let trusting: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    ureq::tls::Certificate::from_der(cert.cert.der()).to_owned(),
                ])))
                .build(),
        )
        .build()
        .into();
    let server = Server::start(
        data.path(),
        &[
            "--policies",
            policies.to_str().unwrap(),
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    )
    .with_agent(trusting);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    assert!(alice_reads(&server));
    // Plain HTTP to the TLS port gets no answer.
    let plain = server.base.replace("https://", "http://");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    assert!(agent.get(format!("{plain}/healthz")).call().is_err());
    // A key without its certificate is refused before listening.
    let out = tenet(data.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-key", key_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

// ----- issue 13: fail closed, stay bounded, lose nothing -----

fn alice_read() -> String {
    json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}).to_string()
}

/// A POST of `body` as JSON with `bearer`, if any.
fn post_as(server: &Server, path: &str, bearer: Option<&str>, body: &str) -> common::Answer {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    server.raw("POST", path, &headers, body.as_bytes())
}

/// `tenet serve` with the certification policies and a config file whose
/// `limits:` section is `limits` (YAML lines, indented by the caller).
fn serve_with_limits(data: &Path, limits: &str) -> Server {
    let policies = authzen_policies("certification");
    let config = data.join("serve.yaml");
    std::fs::write(&config, format!("policies: {}\nlimits:\n{limits}", policies.display())).unwrap();
    Server::start(data, &["--config", config.to_str().unwrap()])
}

#[test]
fn revoking_every_key_never_opens_the_server_not_even_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let token = common::key(data.path(), "k", "decide");
    let policies = authzen_policies("certification");
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    assert_eq!(post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read()).status, 200);
    assert!(run(data.path(), &["key", "revoke", "k"]).status.success());
    eventually("the revocation is read", || {
        post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read()).status == 401
    });
    let anonymous = post_as(&server, "/access/v1/evaluation", None, &alice_read());
    let e = anonymous.error(401);
    assert_eq!(e["where"], "header:authorization");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer realm=\"tenet\""), "no token: the realm alone");
    let revoked = post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read());
    revoked.error(401);
    assert!(revoked.header("www-authenticate").unwrap().contains("error=\"invalid_token\""), "RFC 6750");
    drop(server);

    // The marker outlives the process: a restart with no active key is still closed.
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    post_as(&server, "/access/v1/evaluation", None, &alice_read()).error(401);
    post_as(&server, "/access/v1/evaluations", None, &alice_read()).error(401);
    let search = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    post_as(&server, "/access/v1/search/subject", None, &search.to_string()).error(401);
    server.raw("GET", "/.well-known/authzen-configuration", &[], b"").error(401);
    server.raw("POST", "/admin/policies/reload", &[], b"").error(401);
    // A new key opens the door to its holder only.
    let fresh = common::key(data.path(), "k2", "decide");
    eventually("the new key is read", || {
        post_as(&server, "/access/v1/evaluation", Some(&fresh), &alice_read()).status == 200
    });
    post_as(&server, "/access/v1/evaluation", None, &alice_read()).error(401);
}

#[test]
fn an_unreadable_key_file_refuses_every_request_until_it_reads_again() {
    let data = tempfile::tempdir().unwrap();
    let token = common::key(data.path(), "gateway", "decide");
    let server = Server::start(data.path(), &["--policies", authzen_policies("certification").to_str().unwrap()]);
    assert_eq!(post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read()).status, 200);
    let keys_db = data.path().join("keys.db");
    let good = std::fs::read(&keys_db).unwrap();
    std::fs::write(&keys_db, vec![b'x'; good.len()]).unwrap();
    eventually("the broken file is read", || {
        post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read()).status == 503
    });
    let refused = post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read());
    let e = refused.error(503);
    assert_eq!((e["code"].as_str(), e["where"].as_str()), (Some("keys_unavailable"), Some("server")));
    assert_eq!(refused.header("retry-after"), Some("1"));
    post_as(&server, "/access/v1/evaluation", None, &alice_read()).error(503);
    // Gone altogether is no better than broken: the process once saw keys.
    std::fs::remove_file(&keys_db).unwrap();
    eventually("the missing file is read as no keys, yet keys stay required", || {
        post_as(&server, "/access/v1/evaluation", None, &alice_read()).status == 401
    });
    post_as(&server, "/access/v1/evaluation", None, &alice_read()).error(401);
    std::fs::write(&keys_db, &good).unwrap();
    eventually("the file reads again", || {
        post_as(&server, "/access/v1/evaluation", Some(&token), &alice_read()).status == 200
    });
}

#[test]
fn every_error_is_one_json_shape_on_every_endpoint() {
    let data = tempfile::tempdir().unwrap();
    let token = common::key(data.path(), "gateway", "decide");
    let bearer = format!("Bearer {token}");
    let server = serve_with_limits(data.path(), "  max_body_bytes: 10000\n");
    let json_as = |extra: &[(&'static str, &'static str)]| {
        let mut h = vec![("content-type", "application/json"), ("authorization", bearer.as_str())];
        h.extend_from_slice(extra);
        h
    };
    let ok = alice_read();
    // 400: malformed, wrong content type, a missing field (named), on each endpoint.
    for path in ["/access/v1/evaluation", "/access/v1/evaluations", "/access/v1/search/subject"] {
        let e = server.raw("POST", path, &json_as(&[]), b"{\"subject\": ").error(400);
        assert_eq!((e["code"].as_str(), e["where"].as_str()), (Some("malformed_json"), Some("body")), "{path}");
        let e = server
            .raw("POST", path, &[("content-type", "text/plain"), ("authorization", &bearer)], ok.as_bytes())
            .error(400);
        assert_eq!(e["where"], "header:content-type", "{path}");
    }
    let missing = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": 1}, "resource": {"type": "record", "id": "r"}});
    let e = server.raw("POST", "/access/v1/evaluation", &json_as(&[]), missing.to_string().as_bytes()).error(400);
    assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("invalid_request"), Some("action.name")));
    // 401 and 403.
    server.raw("POST", "/access/v1/evaluation", &[("content-type", "application/json")], ok.as_bytes()).error(401);
    let e = server.raw("POST", "/admin/policies/reload", &[("authorization", &bearer)], b"").error(403);
    assert_eq!(e["code"], "insufficient_scope");
    // 404 and 405, inside and outside the key-protected routes.
    let e = server.raw("GET", "/no/such/thing", &[], b"").error(404);
    assert_eq!(e["where"], "path");
    let e = server.raw("GET", "/access/v1/evaluation", &[("authorization", &bearer)], b"").error(405);
    assert_eq!(e["where"], "method");
    server.raw("POST", "/healthz", &[], b"").error(405);
    // 413 (declared, then chunked), 415.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(20_000));
    let e = server.raw("POST", "/access/v1/evaluation", &json_as(&[]), big.as_bytes()).error(413);
    assert_eq!(e["where"], "header:content-length");
    let e =
        server.raw("POST", "/access/v1/evaluation", &json_as(&[("content-encoding", "br")]), ok.as_bytes()).error(415);
    assert_eq!(e["where"], "header:content-encoding");
    // The request id is echoed on errors too.
    let refused = server.raw("GET", "/nope", &[("x-request-id", "r-404")], b"");
    assert_eq!(refused.request_id.as_deref(), Some("r-404"));
}

#[test]
fn requests_beyond_the_limits_are_refused_undecided_and_the_limits_are_advertised() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_with_limits(
        data.path(),
        "  max_body_bytes: 400000\n  max_decompressed_bytes: 1000000\n  max_json_depth: 16\n  max_search_page: 1\n",
    );
    let decided = |s: &Server| metric(s, "tenet_decisions_total{endpoint=\"evaluations\"");
    // The issue's repro: 300 KB, 100,000 items.
    let items = vec!["{}"; 100_000].join(",");
    let flood = format!(
        r#"{{"subject": {{"type": "user", "id": "alice"}}, "action": {{"name": "read"}}, "resource": {{"type": "record", "id": "record-1"}}, "evaluations": [{items}]}}"#
    );
    assert!(flood.len() < 400_000);
    let e = server
        .raw("POST", "/access/v1/evaluations", &[("content-type", "application/json")], flood.as_bytes())
        .error(413);
    assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("payload_too_large"), Some("evaluations")));
    assert!(e["message"].as_str().unwrap().contains("100000 evaluations"), "{e}");
    assert_eq!(decided(&server), 0.0, "nothing of it was decided");
    // At the bound, decided whole.
    let thousand = flood.replace(&format!("[{items}]"), &format!("[{}]", vec!["{}"; 1000].join(",")));
    let got =
        server.raw("POST", "/access/v1/evaluations", &[("content-type", "application/json")], thousand.as_bytes());
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["evaluations"].as_array().unwrap().len(), 1000);
    // Defaults copied into every item count too: 1,000 items of a 2 KB context is 2 MB.
    let wide = thousand.replacen('{', &format!("{{\"context\": {{\"pad\": \"{}\"}}, ", "x".repeat(2000)), 1);
    let e = server
        .raw("POST", "/access/v1/evaluations", &[("content-type", "application/json")], wide.as_bytes())
        .error(413);
    assert!(e["message"].as_str().unwrap().contains("defaults"), "{e}");

    // Too large as sent, in chunks (no length to refuse by): cut off while reading.
    let mut s = server.connect();
    use std::io::Write;
    write!(s, "POST /access/v1/evaluation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").unwrap();
    for _ in 0..50 {
        let chunk = " ".repeat(10_000);
        if write!(s, "{:x}\r\n{chunk}\r\n", chunk.len()).is_err() {
            break;
        }
    }
    let _ = write!(s, "0\r\n\r\n");
    let e = common::read_answer(&mut s).error(413);
    assert_eq!(e["where"], "body");

    // gzip is undone within bounds; a bomb is refused; other codings are 415.
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let zipped = gz(alice_read().as_bytes());
    let got = server.raw(
        "POST",
        "/access/v1/evaluation",
        &[("content-type", "application/json"), ("content-encoding", "gzip")],
        &zipped,
    );
    assert_eq!((got.status, got.body.as_str()), (200, r#"{"decision":true}"#));
    let bomb = gz(format!(r#"{{"context": {{"pad": "{}"}}}}"#, " ".repeat(5_000_000)).as_bytes());
    assert!(bomb.len() < 400_000);
    let e = server
        .raw(
            "POST",
            "/access/v1/evaluation",
            &[("content-type", "application/json"), ("content-encoding", "gzip")],
            &bomb,
        )
        .error(413);
    assert!(e["message"].as_str().unwrap().contains("inflates"), "{e}");
    server
        .raw(
            "POST",
            "/access/v1/evaluation",
            &[("content-type", "application/json"), ("content-encoding", "deflate")],
            alice_read().as_bytes(),
        )
        .error(415);

    // Nesting beyond the bound: 400, with the place.
    let deep = format!(r#"{{"context": {{"a": {}1{}}}}}"#, "[".repeat(20), "]".repeat(20));
    let e = server
        .raw("POST", "/access/v1/evaluation", &[("content-type", "application/json")], deep.as_bytes())
        .error(400);
    assert_eq!(e["code"], "too_deep");
    assert!(e["field"].as_str().unwrap().starts_with("context.a[0]"), "{e}");

    // Search pages never exceed the bound, and walking them finds everything.
    let search = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 100}});
    let mut found = Vec::new();
    let mut body = search.clone();
    for _ in 0..10 {
        let page = server.post_json("/access/v1/search/subject", &body).json();
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 1, "{page}");
        found.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        let next = page["page"]["next_token"].as_str().unwrap().to_string();
        if next.is_empty() {
            break;
        }
        body["page"] = json!({"limit": 100, "token": next});
    }
    assert_eq!(found, ["alice", "bob"]);

    // The metadata keeps its spec fields and says what the limits are.
    let m = server.get("/.well-known/authzen-configuration").json();
    assert!(m["access_evaluations_endpoint"].as_str().unwrap().ends_with("/access/v1/evaluations"));
    let l = &m["tenet_limits"];
    assert_eq!((l["max_body_bytes"].as_u64(), l["max_batch_items"].as_u64()), (Some(400_000), Some(1000)));
    assert_eq!((l["max_json_depth"].as_u64(), l["max_search_page"].as_u64()), (Some(16), Some(1)));
    assert_eq!(l["content_encodings"], json!(["gzip", "identity"]));
    assert!(l["header_timeout_ms"].is_u64() && l["max_connections"].is_u64(), "{l}");
}

#[test]
fn an_oversized_declared_body_is_refused_before_100_continue() {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().unwrap();
    let server = serve_with_limits(data.path(), "  max_body_bytes: 1048576\n");
    let mut s = server.connect();
    write!(
        s,
        "POST /access/v1/evaluation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: 10737418240\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 413", "refused at once, never `100 Continue`");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let mut whole = first.to_vec();
    whole.extend(rest);
    let e = common::parse_answer(&whole).unwrap().error(413);
    assert_eq!(e["where"], "header:content-length");
}

#[test]
fn duplicate_keys_are_refused_naming_the_key_and_its_path_on_every_endpoint() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--policies", authzen_policies("certification").to_str().unwrap()]);
    let dup = |path: &str, body: &str, field: &str| {
        let e = server.raw("POST", path, &[("content-type", "application/json")], body.as_bytes()).error(400);
        assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("duplicate_key"), Some(field)), "{path} {body}");
        assert!(e["message"].as_str().unwrap().contains("duplicate key"), "{e}");
    };
    let tail = r#""action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}"#;
    // Last-one-wins would have decided for "root".
    dup(
        "/access/v1/evaluation",
        &format!(r#"{{"subject": {{"type": "user", "id": "alice", "id": "root"}}, {tail}}}"#),
        "subject.id",
    );
    dup(
        "/access/v1/evaluation",
        &format!(
            r#"{{"subject": {{"type": "user", "id": "bob"}}, "subject": {{"type": "user", "id": "alice"}}, {tail}}}"#
        ),
        "subject",
    );
    dup(
        "/access/v1/evaluation",
        &format!(r#"{{"subject": {{"type": "user", "id": "alice", "\u0069d": "root"}}, {tail}}}"#),
        "subject.id",
    );
    dup(
        "/access/v1/evaluations",
        &format!(
            r#"{{"subject": {{"type": "user", "id": "alice"}}, {tail}, "evaluations": [{{}}, {{"resource": {{"type": "record", "id": "a", "id": "b"}}}}]}}"#
        ),
        "evaluations[1].resource.id",
    );
    dup(
        "/access/v1/search/subject",
        &format!(r#"{{"subject": {{"type": "user"}}, {tail}, "page": {{"limit": 1, "limit": 2}}}}"#),
        "page.limit",
    );
    dup(
        "/access/v1/evaluation",
        &format!(r#"{{"subject": {{"type": "user", "id": "alice"}}, {tail}, "context": {{"ip": "a", "ip": "b"}}}}"#),
        "context.ip",
    );
    assert_eq!(metric(&server, "tenet_decisions_total"), 0.0, "none of them was decided");
}

#[test]
fn a_full_decision_log_queue_refuses_undecided_and_never_loses_an_answered_decision() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_with_limits(data.path(), "  decision_log_queue: 2000\n  max_batch_items: 1000\n");
    let batch = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "evaluations": vec![json!({"resource": {"type": "record", "id": "record-1"}}); 1000]})
    .to_string();
    let send =
        |body: &str, path: &str| server.raw("POST", path, &[("content-type", "application/json")], body.as_bytes());
    // Another writer holds the log: nothing the server queues can be written.
    let db = rusqlite::Connection::open(data.path().join("decisions.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut answered = 0;
    for _ in 0..2 {
        let got = send(&batch, "/access/v1/evaluations");
        assert_eq!(got.status, 200, "{}", got.body);
        answered += got.json()["evaluations"].as_array().unwrap().len();
    }
    // The queue is full: refused before deciding, with when to come back.
    let refused = send(&batch, "/access/v1/evaluations");
    let e = refused.error(429);
    assert_eq!((e["code"].as_str(), e["where"].as_str()), (Some("overloaded"), Some("server")));
    assert_eq!(refused.header("retry-after"), Some("1"));
    send(&alice_read(), "/access/v1/evaluation").error(429);
    assert!(metric(&server, "tenet_shed_total") >= 2.0);
    assert_eq!(metric(&server, "tenet_decisions_total"), 2000.0, "the refused requests were not decided");
    // The log writable again: the queue drains and deciding resumes.
    db.execute_batch("COMMIT").unwrap();
    eventually("the queue drains", || {
        let got = send(&batch, "/access/v1/evaluations");
        if got.status == 200 {
            answered += 1000;
        }
        got.status == 200
    });
    assert!(server.stop().success());
    let logged: i64 = db.query_row("SELECT count(*) FROM decisions", [], |r| r.get(0)).unwrap();
    assert_eq!(logged as usize, answered, "every answered decision, and only those, is in the log");
    let verified = run(data.path(), &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&verified.stdout).contains(&format!("intact: {answered} decision record(s)")));
}

/// Whether the peer closed `s` within `within` (end of stream or reset).
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return start.elapsed() <= within,
        }
    }
}

#[test]
fn unfinished_headers_trickled_bodies_and_idle_connections_are_closed_on_their_own_timeouts() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let server =
        serve_with_limits(data.path(), "  header_timeout_ms: 1000\n  body_timeout_ms: 1000\n  idle_timeout_ms: 5000\n");
    // Partial headers: closed within 5x the header timeout.
    let mut partial = server.connect();
    write!(partial, "POST /access/v1/evaluation HTTP/1.1\r\nhost: x\r\n").unwrap();
    assert!(closed_within(&mut partial, Duration::from_secs(5)), "partial headers left open");
    // Nothing sent at all: a silent connection owes its first headers, not idle.
    let mut silent = server.connect();
    assert!(closed_within(&mut silent, Duration::from_secs(5)), "a silent connection left open");
    // A trickled body: 408 in the error shape, then closed.
    let mut trickle = server.connect();
    write!(trickle, "POST /access/v1/evaluation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if trickle.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = common::read_answer(&mut trickle);
    assert_eq!(answer.error(408)["where"], "body");
    // Idle is not headers: a kept-alive connection outlives the header
    // timeout between requests, then closes on the idle one.
    let mut kept = server.connect();
    let request = format!(
        "POST /access/v1/evaluation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        alice_read().len(),
        alice_read()
    );
    kept.write_all(request.as_bytes()).unwrap();
    let first = read_one(&mut kept);
    assert_eq!(first.status, 200, "{}", first.body);
    std::thread::sleep(Duration::from_millis(1500));
    kept.write_all(request.as_bytes()).unwrap();
    assert_eq!(read_one(&mut kept).status, 200, "still open past the header timeout");
    assert!(closed_within(&mut kept, Duration::from_secs(25)), "idle keep-alive left open");
    assert_eq!(server.get("/healthz").status, 200);
}

/// One response off a kept-alive connection (its length is known).
fn read_one(s: &mut std::net::TcpStream) -> common::Answer {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(a) = common::parse_answer(&raw) {
            let len = a.header("content-length").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
            if a.body.len() >= len {
                return a;
            }
        }
        let n = s.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn connections_beyond_the_cap_are_refused_cleanly_and_the_server_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_with_limits(data.path(), "  max_connections: 8\n");
    let idle: Vec<_> = (0..30).map(|_| server.connect()).collect();
    // Every slot is held by a silent connection: a newcomer is told so at once.
    let started = Instant::now();
    let got = server.raw("GET", "/healthz", &[], b"");
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = got.error(503);
    assert_eq!(e["code"], "too_many_connections");
    assert_eq!(got.header("retry-after"), Some("1"));
    drop(idle);
    eventually("slots come back when the idle connections go", || {
        server.raw("GET", "/healthz", &[], b"").status == 200
    });
}

#[test]
fn the_connection_cap_stays_below_the_open_file_limit_and_the_server_outlives_a_flood() {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies("certification");
    // The server under a 256-descriptor limit, asked for the default 1,024 connections.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tenet"))
        .args(["--data-dir", data.path().to_str().unwrap(), "serve", "--addr", "127.0.0.1:0"])
        .args(["--policies", policies.to_str().unwrap()]);
    let server = Server::spawn(cmd);
    let cap =
        server.get("/.well-known/authzen-configuration").json()["tenet_limits"]["max_connections"].as_u64().unwrap();
    assert!(cap < 256, "capped below the descriptor limit: {cap}");
    let flood: Vec<_> = (0..400).filter_map(|_| std::net::TcpStream::connect(server.addr()).ok()).collect();
    let got = server.raw("GET", "/healthz", &[], b"");
    assert!(got.status == 200 || got.status == 503, "served or refused cleanly: {} {}", got.status, got.body);
    drop(flood);
    eventually("serving again once the flood is gone", || server.raw("GET", "/healthz", &[], b"").status == 200);
    assert!(alice_reads(&server));
}
