//! Shared Signals: `tenet serve` as an SSF 1.0 transmitter. Receivers
//! authenticate with `ssf`-scoped keys, manage one stream each as the
//! specification says, and receive SETs that an independent JOSE
//! implementation (PyJWT, `tests/ssf/receiver.py`) verifies through the
//! JWKS and checks against RFC 8417, SSF 1.0 and the CAEP profile.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::ssf::{Receiver, pyjwt};
use common::{Server, key, run};
use serde_json::{Value, json};
use tenet_testkit::free_port;

const PUSH: &str = "urn:ietf:rfc:8935";
const POLL: &str = "urn:ietf:rfc:8936";
const RISK: &str = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
const REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// A service whose receivers may verify every second.
fn serve(data: &Path) -> Server {
    let config = data.join("serve.yaml");
    std::fs::write(&config, "ssf:\n  min_verification_interval: 1\n").unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    Server::start(data, &["--config", config.to_str().unwrap(), "--policies", policies.to_str().unwrap()])
}

fn state_of(l: &Value) -> Option<&str> {
    l["claims"]["events"][VERIFICATION]["state"].as_str()
}

#[test]
fn receivers_manage_their_own_stream_as_ssf_1_0_says() {
    let data = tempfile::tempdir().unwrap();
    let rx = key(data.path(), "idp", "ssf");
    let other = key(data.path(), "gateway", "ssf");
    let reader = key(data.path(), "console", "read");
    let server = serve(data.path());

    // Discovery is open: receivers read it before they hold a key.
    let meta = server.get("/.well-known/ssf-configuration");
    assert_eq!(meta.status, 200);
    let m = meta.json();
    assert_eq!(m["issuer"], server.base());
    assert_eq!(m["spec_version"], "1_0");
    for field in [
        "jwks_uri",
        "configuration_endpoint",
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ] {
        assert!(m[field].as_str().unwrap().starts_with(server.base()), "{field}: {m}");
    }
    assert_eq!(m["delivery_methods_supported"], json!([PUSH, POLL]));
    assert_eq!(m["authorization_schemes"], json!([{"spec_urn": "urn:ietf:rfc:6749"}]));
    assert_eq!(m["default_subjects"], "ALL");
    let jwks = server.get("/ssf/jwks.json").json();
    let k = &jwks["keys"][0];
    assert_eq!((k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str()), (Some("RSA"), Some("RS256"), Some("sig")));
    assert!(k["n"].as_str().unwrap().len() >= 342, "at least 2048 bits: {k}");

    // Authentication: RFC 6750 challenges, no tokens in URLs.
    let none = server.call("GET", "/ssf/stream", None, None);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").unwrap().starts_with("Bearer"));
    let bad = server.call("GET", "/ssf/stream", Some("tnt_not-a-key"), None);
    assert_eq!(bad.status, 401);
    assert!(bad.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));
    let scope = server.call("GET", "/ssf/stream", Some(&reader), None);
    assert_eq!(scope.status, 403);
    assert!(scope.header("www-authenticate").unwrap().contains("error=\"insufficient_scope\""));
    let query = server.call("GET", &format!("/ssf/stream?access_token={rx}"), None, None);
    assert_eq!(query.status, 400, "{}", query.body);
    assert!(query.header("www-authenticate").unwrap().contains("error=\"invalid_request\""));
    let query_too = server.call("GET", &format!("/ssf/stream?access_token={rx}"), Some(&rx), None);
    assert_eq!(query_too.status, 400, "refused even beside a valid header");

    // Create: 201, the secret kept but never shown, delivered = supported ∩ requested.
    let create = json!({"events_requested": [RISK, REVOKED, "urn:example:not-an-event"],
        "delivery": {"method": PUSH, "endpoint_url": "https://receiver.example/ssf", "authorization_header": "Bearer receiver-secret"},
        "description": "the IdP"});
    let created = server.call("POST", "/ssf/stream", Some(&rx), Some(&create));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let s = created.json();
    let id = s["stream_id"].as_str().unwrap().to_string();
    assert!(!created.body.contains("receiver-secret"));
    assert_eq!(s["events_delivered"], json!([RISK, REVOKED]));
    assert_eq!(s["iss"], server.base());
    assert_eq!(s["delivery"], json!({"method": PUSH, "endpoint_url": "https://receiver.example/ssf"}));
    assert!(s["events_supported"].as_array().unwrap().len() >= 8, "{s}");
    let again = server.call("POST", "/ssf/stream", Some(&rx), Some(&json!({})));
    assert_eq!(again.status, 409, "one stream per receiver: {}", again.body);

    // Read: by id, or every stream of this receiver; never another's.
    let read = server.call("GET", &format!("/ssf/stream?stream_id={id}"), Some(&rx), None);
    assert_eq!((read.status, read.json()), (200, s.clone()));
    assert!(!read.body.contains("receiver-secret"));
    assert_eq!(server.call("GET", "/ssf/stream", Some(&rx), None).json(), json!([s]));
    assert_eq!(server.call("GET", "/ssf/stream", Some(&other), None).json(), json!([]));
    let theirs = format!("/ssf/stream?stream_id={id}");
    let unknown = "/ssf/stream?stream_id=no-such-stream";
    for (who, path) in [(&other, theirs.as_str()), (&rx, unknown)] {
        let q = path.split_once('?').unwrap().1;
        let sid = q.trim_start_matches("stream_id=");
        assert_eq!(server.call("GET", path, Some(who), None).status, 404);
        assert_eq!(server.call("DELETE", path, Some(who), None).status, 404);
        assert_eq!(server.call("GET", &format!("/ssf/status?{q}"), Some(who), None).status, 404);
        for method in ["PATCH", "PUT"] {
            let a = server.call(method, "/ssf/stream", Some(who), Some(&json!({"stream_id": sid})));
            assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
        }
        let status = json!({"stream_id": sid, "status": "paused"});
        assert_eq!(server.call("POST", "/ssf/status", Some(who), Some(&status)).status, 404);
        let subject = json!({"stream_id": sid, "subject": {"format": "email", "email": "a@example.com"}});
        assert_eq!(server.call("POST", "/ssf/subjects:add", Some(who), Some(&subject)).status, 404);
        assert_eq!(server.call("POST", "/ssf/subjects:remove", Some(who), Some(&subject)).status, 404);
        assert_eq!(server.call("POST", "/ssf/verify", Some(who), Some(&json!({"stream_id": sid}))).status, 404);
        assert_eq!(server.call("POST", &format!("/ssf/poll/{sid}"), Some(who), Some(&json!({}))).status, 404);
    }

    // PATCH keeps what it omits; PUT removes it.
    let patched =
        server.call("PATCH", "/ssf/stream", Some(&rx), Some(&json!({"stream_id": id, "description": "Okta"})));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        (patched.json()["description"].clone(), patched.json()["events_delivered"].clone()),
        (json!("Okta"), json!([RISK, REVOKED]))
    );
    let put = server.call(
        "PUT",
        "/ssf/stream",
        Some(&rx),
        Some(&json!({"stream_id": id, "events_requested": [RISK],
            "delivery": {"method": PUSH, "endpoint_url": "https://receiver.example/ssf"}})),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let p = put.json();
    assert!(p.get("description").is_none(), "omitted, removed: {p}");
    assert_eq!(p["events_delivered"], json!([RISK]));

    // Bad configuration: 400 naming the property.
    for (body, field) in [
        (json!({"stream_id": id, "delivery": {"method": "urn:example:fax"}}), "delivery.method"),
        (json!({"stream_id": id, "delivery": {"method": PUSH}}), "delivery.endpoint_url"),
        (json!({"stream_id": id, "events_requested": "all"}), "events_requested"),
        (json!({"stream_id": id, "aud": "someone-else"}), "aud"),
        (json!({"stream_id": id, "colour": "red"}), "colour"),
    ] {
        let a = server.call("PATCH", "/ssf/stream", Some(&rx), Some(&body));
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert_eq!(a.json()["error"]["field"], field, "{}", a.body);
        assert!(!a.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    let no_id = server.call("PATCH", "/ssf/stream", Some(&rx), Some(&json!({"description": "x"})));
    assert_eq!((no_id.status, no_id.json()["error"]["field"].clone()), (400, json!("stream_id")));
    let dup = server.raw(
        "POST",
        "/ssf/status",
        &[("authorization", &format!("Bearer {rx}")), ("content-type", "application/json")],
        format!(r#"{{"stream_id":"{id}","status":"paused","status":"enabled"}}"#).as_bytes(),
    );
    assert_eq!(dup.status, 400, "a duplicate key: {}", dup.body);
    let bad_status = server.call("POST", "/ssf/status", Some(&rx), Some(&json!({"stream_id": id, "status": "off"})));
    assert_eq!(bad_status.status, 400);

    // Status and subjects.
    let st = server.call("GET", &format!("/ssf/status?stream_id={id}"), Some(&rx), None);
    assert_eq!(st.json(), json!({"stream_id": id, "status": "enabled"}));
    let paused = server.call(
        "POST",
        "/ssf/status",
        Some(&rx),
        Some(&json!({"stream_id": id, "status": "paused", "reason": "maintenance"})),
    );
    assert_eq!(paused.json(), json!({"stream_id": id, "status": "paused", "reason": "maintenance"}));
    let subject = json!({"stream_id": id, "subject": {"format": "email", "email": "alice@example.com"}});
    assert_eq!(server.call("POST", "/ssf/subjects:remove", Some(&rx), Some(&subject)).status, 204);
    assert_eq!(server.call("POST", "/ssf/subjects:add", Some(&rx), Some(&subject)).status, 200);
    let odd = json!({"stream_id": id, "subject": {"format": "phone_number", "phone_number": "+12065550100"}});
    assert_eq!(server.call("POST", "/ssf/subjects:add", Some(&rx), Some(&odd)).status, 400);

    // Delete: 204, then gone.
    let deleted = server.call("DELETE", &format!("/ssf/stream?stream_id={id}"), Some(&rx), None);
    assert_eq!((deleted.status, deleted.body.as_str()), (204, ""));
    assert_eq!(server.call("GET", &format!("/ssf/stream?stream_id={id}"), Some(&rx), None).status, 404);
    assert_eq!(server.call("POST", "/ssf/stream", Some(&rx), Some(&json!({}))).status, 201, "free to create again");
}

/// Verification SETs reach a receiver built on PyJWT, signed, with the
/// state echoed and the configured authorization; the minimum interval is
/// honoured; a paused stream holds and a disabled one drops.
#[test]
fn verification_reaches_an_independent_receiver_and_paused_streams_hold_while_disabled_ones_drop() {
    if !pyjwt() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let token = key(data.path(), "idp", "ssf");
    let server = serve(data.path());
    let port = free_port();
    let create = json!({"events_requested": [RISK, REVOKED],
        "delivery": {"method": PUSH, "endpoint_url": format!("http://127.0.0.1:{port}/events"), "authorization_header": "Bearer rx-secret"}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&create)).json();
    let id = s["stream_id"].as_str().unwrap().to_string();
    let rx = Receiver::start(
        port,
        &server,
        s["aud"].as_str().unwrap(),
        &data.path().join("rx.jsonl"),
        Some("Bearer rx-secret"),
    );

    let verify =
        |state: &str| server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": state})));
    let asked = Instant::now();
    let v = verify("first");
    assert_eq!((v.status, v.body.as_str()), (204, ""), "{}", v.body);
    let got =
        rx.wait_for(Duration::from_secs(5), |l| state_of(l) == Some("first")).expect("the verification SET arrives");
    let took = asked.elapsed();
    assert_eq!(got["claims"]["sub_id"], json!({"format": "opaque", "id": id}), "about the stream itself");
    assert_eq!(got["claims"]["aud"], s["aud"]);
    assert_eq!(got["auth"], "Bearer rx-secret", "the configured authorization header, as configured");
    assert!(took < Duration::from_secs(1), "verification delivered in {took:?}");
    let soon = verify("too-soon");
    assert_eq!(soon.status, 429, "{}", soon.body);
    assert!(soon.header("retry-after").is_some());

    let status = |st: &str| {
        let a = server.call("POST", "/ssf/status", Some(&token), Some(&json!({"stream_id": id, "status": st})));
        assert_eq!(a.status, 200, "{}", a.body);
    };
    std::thread::sleep(Duration::from_millis(1100));
    status("paused");
    assert_eq!(verify("held").status, 204);
    assert!(
        rx.wait_for(Duration::from_millis(1500), |l| state_of(l) == Some("held")).is_none(),
        "paused: nothing sent"
    );
    status("enabled");
    assert!(
        rx.wait_for(Duration::from_secs(5), |l| state_of(l) == Some("held")).is_some(),
        "enabled again: the held SET goes"
    );

    std::thread::sleep(Duration::from_millis(1100));
    status("paused");
    assert_eq!(verify("dropped").status, 204);
    status("disabled");
    status("enabled");
    assert!(
        rx.wait_for(Duration::from_millis(1500), |l| state_of(l) == Some("dropped")).is_none(),
        "disabled: dropped"
    );

    let lines = rx.lines();
    assert!(lines.iter().all(|l| l["dup"] == json!(false)), "each SET once: {lines:?}");
}

/// RFC 8936: a poll stream's SETs are answered keyed by jti until
/// acknowledged; `maxEvents: 0` only acknowledges; the poll URL is the
/// stream's own and needs its receiver's key.
#[test]
fn a_polled_stream_answers_sets_by_jti_until_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let token = key(data.path(), "gateway", "ssf");
    let stranger = key(data.path(), "stranger", "ssf");
    let server = serve(data.path());
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&json!({"events_requested": [RISK]}))).json();
    let id = s["stream_id"].as_str().unwrap().to_string();
    let url = s["delivery"]["endpoint_url"].as_str().unwrap().to_string();
    assert_eq!(s["delivery"]["method"], POLL, "no delivery given: polled");
    let path = url.strip_prefix(server.base()).expect("the poll URL is this server's").to_string();
    assert!(path.contains(&id), "each stream has its own poll URL: {path}");

    let poll = |body: Value| server.call("POST", &path, Some(&token), Some(&body));
    let empty = poll(json!({"returnImmediately": true}));
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.json()["sets"], json!({}));
    assert_eq!(server.call("POST", &path, None, Some(&json!({}))).status, 401, "the poll URL needs a key");
    assert_eq!(
        server.call("POST", &path, Some(&stranger), Some(&json!({}))).status,
        404,
        "and the stream's own receiver"
    );

    for state in ["a", "b"] {
        assert_eq!(
            server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": state}))).status,
            204
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    let first = poll(json!({"returnImmediately": true, "maxEvents": 1})).json();
    let sets = first["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(first["moreAvailable"], json!(true));
    let (jti, set) = sets.iter().next().unwrap();
    assert_eq!(set.as_str().unwrap().split('.').count(), 3, "a compact JWS");
    let again = poll(json!({"returnImmediately": true})).json();
    assert!(again["sets"].get(jti).is_some(), "not acknowledged: sent again");
    assert_eq!(again["sets"].as_object().unwrap().len(), 2);
    let ack_only = poll(json!({"maxEvents": 0, "ack": [jti]})).json();
    assert_eq!(ack_only["sets"], json!({}), "maxEvents 0: acknowledge only");
    let rest = poll(json!({"returnImmediately": true})).json();
    let left: Vec<&String> = rest["sets"].as_object().unwrap().keys().collect();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], jti);
    let other = left[0].clone();
    let errs = poll(json!({"returnImmediately": true, "setErrs": {other: {"err": "invalid_state", "description": "unexpected state"}}})).json();
    assert_eq!(errs["sets"], json!({}), "a SET the receiver refused is not sent again");

    // A long poll returns as soon as a SET is there.
    let started = Instant::now();
    let waiter = {
        let (base, token, path) = (server.base().to_string(), token.clone(), path.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let mut resp = agent
                .post(format!("{base}{path}"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .send("{}")
                .unwrap();
            (serde_json::from_str::<Value>(&resp.body_mut().read_to_string().unwrap()).unwrap(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": "c"}))).status,
        204
    );
    let (answer, took) = waiter.join().unwrap();
    assert_eq!(answer["sets"].as_object().unwrap().len(), 1, "{answer}");
    assert!(took < Duration::from_secs(5), "the long poll answered after {took:?}");
}

/// Keys rotate under a running service: both are published during the
/// rotation, new SETs are signed with the new key and still verify at an
/// independent receiver, and retiring the old key unpublishes it.
#[test]
fn a_key_rotation_under_a_running_service_publishes_both_keys_and_signs_with_the_new_one() {
    if !pyjwt() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let token = key(data.path(), "idp", "ssf");
    let server = serve(data.path());
    let before = server.get("/ssf/jwks.json").json()["keys"][0]["kid"].as_str().unwrap().to_string();
    let port = free_port();
    let create = json!({"delivery": {"method": PUSH, "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&create)).json();
    let id = s["stream_id"].as_str().unwrap().to_string();
    let rx = Receiver::start(port, &server, s["aud"].as_str().unwrap(), &data.path().join("rx.jsonl"), None);

    let rotated = run(data.path(), &["ssf", "rotate-key"]);
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let start = Instant::now();
    let kids = loop {
        let kids: Vec<String> = server.get("/ssf/jwks.json").json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        if kids.len() == 2 || start.elapsed() > Duration::from_secs(5) {
            break kids;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(kids.len(), 2, "both keys published during the rotation: {kids:?}");
    assert_eq!(kids[1], before, "the previous key second");
    let new = kids[0].clone();

    let v =
        server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": "after-rotation"})));
    assert_eq!(v.status, 204);
    let got = rx
        .wait_for(Duration::from_secs(5), |l| state_of(l) == Some("after-rotation"))
        .expect("a SET signed with the new key verifies at the receiver");
    assert_eq!(got["kid"], new.as_str(), "signed with the new key");
    let polled = server.call("GET", "/ssf/stream", Some(&token), None);
    assert_eq!(polled.status, 200);
    let retired = run(data.path(), &["ssf", "retire-key"]);
    assert!(String::from_utf8_lossy(&retired.stdout).contains(&before));
    let start = Instant::now();
    while server.get("/ssf/jwks.json").json()["keys"].as_array().unwrap().len() != 1 {
        assert!(start.elapsed() < Duration::from_secs(5), "the retired key is unpublished");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get("/ssf/jwks.json").json()["keys"][0]["kid"], new.as_str());
    let listed = common::json_lines(data.path(), &["ssf", "streams", "--json"]);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["receiver"].as_str(), listed[0]["status"].as_str()), (Some("idp"), Some("enabled")));
    assert!(listed[0]["delivered"].as_u64().unwrap() >= 1, "{}", listed[0]);
}

/// A receiver down for a minute loses nothing: the SETs wait in the
/// outbox, retried with backoff, and arrive once each, in order, soon after
/// it returns.
#[test]
fn a_receiver_down_for_a_minute_gets_everything_in_order_once_it_returns() {
    if !pyjwt() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let token = key(data.path(), "idp", "ssf");
    let server = serve(data.path());
    let port = free_port();
    let create = json!({"delivery": {"method": PUSH, "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&token), Some(&create)).json();
    let id = s["stream_id"].as_str().unwrap().to_string();
    let aud = s["aud"].as_str().unwrap().to_string();
    let log = data.path().join("rx.jsonl");

    let down = Instant::now();
    let states: Vec<String> = (0..4).map(|i| format!("while-down-{i}")).collect();
    for st in &states {
        let v = server.call("POST", "/ssf/verify", Some(&token), Some(&json!({"stream_id": id, "state": st})));
        assert_eq!(v.status, 204, "{}", v.body);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let pending = common::json_lines(data.path(), &["ssf", "streams", "--json"]);
    assert_eq!(pending[0]["pending"].as_u64(), Some(4), "waiting in the outbox: {}", pending[0]);
    assert!(pending[0]["last_error"].as_str().is_some(), "the failed attempts are visible: {}", pending[0]);
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down.elapsed()));

    let back = Instant::now();
    let rx = Receiver::start(port, &server, &aud, &log, None);
    let last =
        rx.wait_for(Duration::from_secs(15), |l| state_of(l) == Some("while-down-3")).expect("delivered once back");
    let caught_up = last["received"].as_f64().unwrap();
    let lines = rx.lines();
    let got: Vec<&str> = lines.iter().filter_map(state_of).collect();
    assert_eq!(got, states.iter().map(String::as_str).collect::<Vec<_>>(), "each once, in order");
    assert!(lines.iter().all(|l| l["dup"] == json!(false)));
    eprintln!(
        "receiver back after {:.0} s down: caught up {:.2} s after it returned",
        (back - down).as_secs_f64(),
        caught_up
            - (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
                - back.elapsed().as_secs_f64())
    );
}

/// Receiving too: SETs an upstream transmitter signs (PyJWT here) are
/// verified against its JWKS, stored as telemetry once per jti, and the
/// trust changes they report reach Tenet's own receivers; a session the
/// identity provider established is revoked downstream when the account is
/// disabled upstream. Forged, foreign and misaddressed SETs get RFC 8935
/// errors.
#[test]
fn upstream_sets_are_verified_and_enter_as_telemetry_and_trust_changes() {
    use std::io::Write;
    if !pyjwt() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let jwks = data.path().join("idp-jwks.json");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let caep = "https://schemas.openid.net/secevent/caep/event-type/";
    let risc = "https://schemas.openid.net/secevent/risc/event-type/";
    let alice = json!({"format": "email", "email": "alice@example.com"});
    let set = |jti: &str, iss: &str, aud: &str, sub: Value, event: &str, body: Value| json!({"iss": iss, "aud": aud, "iat": now, "jti": jti, "sub_id": sub, "events": {event: body}});
    let idp = "https://idp.example";
    let us = "https://tenet.test";
    let session = json!({"format": "complex", "user": alice, "session": {"format": "opaque", "id": "idp-s1"}});
    let mut claims = vec![
        set("e1", idp, us, session.clone(), &format!("{caep}session-established"), json!({"event_timestamp": now})),
        set(
            "c1",
            idp,
            us,
            alice.clone(),
            &format!("{caep}credential-change"),
            json!({"credential_type": "password", "change_type": "update", "event_timestamp": now,
                   "reason_admin": {"en": "password reset by the help desk"}}),
        ),
        set(
            "d1",
            idp,
            us,
            alice.clone(),
            &format!("{caep}device-compliance-change"),
            json!({"previous_status": "compliant", "current_status": "not-compliant", "event_timestamp": now}),
        ),
        set(
            "a1",
            idp,
            us,
            alice.clone(),
            &format!("{caep}assurance-level-change"),
            json!({"namespace": "NIST-AAL", "current_level": "nist-aal1", "previous_level": "nist-aal2", "event_timestamp": now}),
        ),
        set("x1", idp, us, alice.clone(), &format!("{risc}account-disabled"), json!({})),
        set("f1", "https://evil.example", us, alice.clone(), &format!("{risc}account-disabled"), json!({})),
        set("f2", idp, "https://someone-else.example", alice.clone(), &format!("{risc}account-disabled"), json!({})),
    ];
    let mut forged = set("f3", idp, us, alice.clone(), &format!("{risc}account-disabled"), json!({}));
    forged["_key"] = json!("other");
    claims.push(forged);
    // A second transmitter whose keys Tenet fetches by URL.
    let idp2 = "https://idp2.example";
    let presented = json!({"format": "complex", "user": alice, "session": {"format": "opaque", "id": "idp2-s9"}});
    claims.push(set("p1", idp2, us, presented, &format!("{caep}session-presented"), json!({"event_timestamp": now})));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ssf/upstream.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(&jwks)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for c in &claims {
            writeln!(stdin, "{c}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let tokens: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(tokens.len(), claims.len());

    let idp_key = key(data.path(), "idp-push", "ingest");
    let rx_key = key(data.path(), "gateway", "ssf");
    let config = data.path().join("serve.yaml");
    let jwks_port = free_port();
    // And a plain JSON webhook for a consumer that does not speak SSF.
    let hook_port = free_port();
    let hook_log = data.path().join("hook.jsonl");
    let secret = "a-webhook-secret-of-some-length";
    std::fs::write(
        &config,
        format!(
            "ssf:\n  issuer: {us}\n  upstream:\n    - issuer: {idp}\n      jwks_file: {}\n    - issuer: {idp2}\n      jwks_url: http://127.0.0.1:{jwks_port}/idp-jwks.json\n  webhooks:\n    - name: siem\n      url: http://127.0.0.1:{hook_port}/hook\n      secret: {secret}\n      events: [\"{caep}credential-change\"]\n",
            jwks.display()
        ),
    )
    .unwrap();
    let mut jwks_server = std::process::Command::new("python3")
        .args(["-m", "http.server", &jwks_port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut hook = {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ssf/webhook.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(hook_port.to_string())
            .arg(secret)
            .arg(&hook_log)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        child
    };
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let server =
        Server::start(data.path(), &["--config", config.to_str().unwrap(), "--policies", policies.to_str().unwrap()]);
    let port = free_port();
    let downstream = json!({"events_requested": [format!("{caep}credential-change"), format!("{caep}device-compliance-change"),
            format!("{caep}assurance-level-change"), format!("{caep}session-revoked")],
        "delivery": {"method": PUSH, "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&rx_key), Some(&downstream)).json();
    // Tenet's issuer is the configured one; its keys are on the server it runs as.
    let jwks_url = format!("{}/ssf/jwks.json", server.base());
    let rx = Receiver::start_with(port, &jwks_url, us, s["aud"].as_str().unwrap(), &data.path().join("rx.jsonl"), None);

    let push = |token: &str, content_type: &str| {
        server.raw(
            "POST",
            "/ssf/receive",
            &[("authorization", &format!("Bearer {idp_key}")), ("content-type", content_type)],
            token.as_bytes(),
        )
    };
    for (i, t) in tokens.iter().take(5).enumerate() {
        let a = push(t, "application/secevent+jwt");
        assert_eq!(a.status, 202, "SET {i}: {}", a.body);
    }
    let by_url = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            push(&tokens[8], "application/secevent+jwt")
        })
        .find(|a| a.status != 503)
        .expect("the JWKS server answers");
    assert_eq!(by_url.status, 202, "verified with keys fetched by URL: {}", by_url.body);
    let _ = jwks_server.kill();
    let _ = jwks_server.wait();
    let again = push(&tokens[1], "application/secevent+jwt");
    assert_eq!(again.status, 202, "a retry is accepted");
    for (t, err) in [(&tokens[5], "invalid_issuer"), (&tokens[6], "invalid_audience"), (&tokens[7], "invalid_key")] {
        let a = push(t, "application/secevent+jwt");
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(a.json()["err"], err, "{}", a.body);
    }
    assert_eq!(push(&tokens[1], "application/json").json()["err"], "invalid_request");
    let unauthenticated =
        server.raw("POST", "/ssf/receive", &[("content-type", "application/secevent+jwt")], tokens[1].as_bytes());
    assert_eq!(unauthenticated.status, 401);

    for kind in ["credential-change", "device-compliance-change", "assurance-level-change"] {
        let uri = format!("{caep}{kind}");
        let got = rx
            .wait_for(Duration::from_secs(5), |l| l["type"] == uri.as_str())
            .unwrap_or_else(|| panic!("{kind} relayed"));
        assert_eq!(got["claims"]["sub_id"], json!({"format": "email", "email": "alice@example.com"}));
        assert!(got["claims"]["events"][&uri]["reason_admin"]["en"].as_str().unwrap().contains(idp));
    }
    let cred = rx.lines().into_iter().find(|l| l["type"] == format!("{caep}credential-change").as_str()).unwrap();
    let ev = &cred["claims"]["events"][format!("{caep}credential-change")];
    assert_eq!((ev["credential_type"].as_str(), ev["change_type"].as_str()), (Some("password"), Some("update")));
    assert!(ev["reason_admin"]["en"].as_str().unwrap().contains("help desk"), "{ev}");
    let revoked = rx
        .wait_for(Duration::from_secs(5), |l| l["type"] == format!("{caep}session-revoked").as_str())
        .expect("the session the IdP established is revoked once the account is disabled");
    assert_eq!(revoked["claims"]["sub_id"]["session"], json!({"format": "opaque", "id": "idp-s1"}));
    let relayed = rx.lines().iter().filter(|l| l["type"] == format!("{caep}credential-change").as_str()).count();
    assert_eq!(relayed, 1, "the retried SET changed nothing twice");

    let events = common::json_lines(data.path(), &["events", "--json", "--limit", "100"]);
    let ssf: Vec<&Value> = events.iter().filter(|e| e["source"]["format"] == "ssf").collect();
    assert_eq!(ssf.len(), 6, "each SET stored once as telemetry: {ssf:?}");

    // The webhook got the credential change as plain JSON, its signature verified by Python's hmac.
    let start = Instant::now();
    let hooked = loop {
        let lines: Vec<Value> = std::fs::read_to_string(&hook_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if !lines.is_empty() || start.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = hook.kill();
    let _ = hook.wait();
    assert_eq!(hooked.len(), 1, "only the event type it asked for: {hooked:?}");
    assert_eq!(hooked[0]["verified"], json!(true), "{hooked:?}");
    assert_eq!(hooked[0]["type"], "application/json");
    let body = &hooked[0]["body"];
    assert_eq!(body["type"], format!("{caep}credential-change").as_str());
    assert_eq!(body["subject"], json!({"format": "email", "email": "alice@example.com"}));
    assert_eq!(body["event"]["credential_type"], "password");
    assert_eq!(body["issuer"], us);
}

/// Sessions outlive the service: a person's session, learned from an
/// AuthZEN request, is still known after the service is killed (SIGKILL)
/// and started again, and an administrator's compromise after the restart
/// revokes it at the receiver.
#[test]
fn a_session_from_before_a_crash_is_revoked_by_a_trust_change_after_the_restart() {
    if !pyjwt() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (idp, pep, ops, hr) = (
        key(data.path(), "idp", "ssf"),
        key(data.path(), "pep", "decide"),
        key(data.path(), "ops", "admin"),
        key(data.path(), "hr", "ingest"),
    );
    let server = serve(data.path());
    let scim = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1,
        "Resources": [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
            "userName": "dana@example.com", "active": true, "emails": [{"value": "dana@example.com", "primary": true}]}]});
    let imported = server.call("POST", "/api/v1/inventory?at=2026-01-01T00:00:00Z", Some(&hr), Some(&scim));
    assert_eq!(imported.status, 200, "{}", imported.body);
    let port = free_port();
    let create = json!({"events_requested": [REVOKED],
        "delivery": {"method": PUSH, "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let s = server.call("POST", "/ssf/stream", Some(&idp), Some(&create));
    assert_eq!(s.status, 201, "{}", s.body);
    let aud = s.json()["aud"].as_str().unwrap().to_string();
    let request = json!({"subject": {"type": "user", "id": "dana@example.com"}, "action": {"name": "read"},
        "resource": {"type": "document", "id": "handbook"}, "context": {"session_id": "before-the-crash"}});
    let d = server.call("POST", "/access/v1/evaluation", Some(&pep), Some(&request));
    assert_eq!(d.json()["decision"], json!(true), "{}", d.body);
    // Sessions are written behind the decisions, a quarter second at most.
    std::thread::sleep(Duration::from_millis(600));
    server.kill();

    let server = serve(data.path());
    let rx = Receiver::start(port, &server, &aud, &data.path().join("rx.jsonl"), None);
    let c = server.call(
        "POST",
        "/api/v1/principals/user:dana@example.com/compromise",
        Some(&ops),
        Some(&json!({"reason": "token theft"})),
    );
    assert_eq!(c.status, 200, "{}", c.body);
    let got = rx
        .wait_for(Duration::from_secs(5), |l| l["type"] == REVOKED)
        .expect("session-revoked for the session the service learned before it was killed");
    assert_eq!(got["claims"]["sub_id"]["session"], json!({"format": "opaque", "id": "before-the-crash"}));
}
