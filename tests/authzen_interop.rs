//! The decision point against the public AuthZEN 1.0 interop suites and the
//! certification scenario, over HTTP, against the real `tenet serve`.
//! Responses are compared as the public harness compares them: evaluation
//! and batch bodies byte for byte, search results sorted, then byte for byte.

mod common;

use common::{Server, authzen_policies, authzen_specs};
use serde_json::{Value, json};

fn load(rel: &str) -> Value {
    let path = authzen_specs().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn serve(suite: &str) -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().unwrap();
    let policies = authzen_policies(suite);
    let server = Server::start(data.path(), &["--policies", policies.to_str().unwrap()]);
    (data, server)
}

/// Every `evaluation` case as a single request, every `evaluations` case as a batch.
fn decisions_suite(server: &Server, doc: &Value) -> (usize, Vec<String>) {
    let (mut n, mut failures) = (0, Vec::new());
    for case in doc["evaluation"].as_array().into_iter().flatten() {
        n += 1;
        let got = server.post_json("/access/v1/evaluation", &case["request"]);
        let want = json!({"decision": case["expected"]}).to_string();
        if got.status != 200 || got.body != want {
            failures.push(format!("{} -> {} {} (want {want})", case["request"], got.status, got.body));
        }
    }
    for case in doc["evaluations"].as_array().into_iter().flatten() {
        n += 1;
        let got = server.post_json("/access/v1/evaluations", &case["request"]);
        let want = json!({"evaluations": case["expected"]}).to_string();
        if got.status != 200 || got.body != want {
            failures.push(format!("{} -> {} {} (want {want})", case["request"], got.status, got.body));
        }
    }
    (n, failures)
}

fn sorted(results: &Value) -> String {
    let mut items: Vec<String> = results.as_array().expect("results array").iter().map(Value::to_string).collect();
    items.sort();
    format!("[{}]", items.join(","))
}

fn search_suite(server: &Server, endpoint: &str, cases: &Value) -> (usize, Vec<String>) {
    let (mut n, mut failures) = (0, Vec::new());
    for case in cases.as_array().expect("cases") {
        n += 1;
        let got = server.post_json(endpoint, &case["request"]);
        let ok = got.status == 200 && sorted(&got.json()["results"]) == sorted(&case["expected"]["results"]);
        if !ok {
            failures.push(format!("{} -> {} {} (want {})", case["request"], got.status, got.body, case["expected"]));
        }
    }
    (n, failures)
}

fn assert_all(suite: &str, (n, failures): (usize, Vec<String>), at_least: usize) {
    assert!(n >= at_least, "{suite}: only {n} cases ran");
    assert!(failures.is_empty(), "{suite}: {} of {n} cases differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn todo_suites_decide_exactly_as_expected() {
    let (_d, server) = serve("todo");
    assert_all("todo 01", decisions_suite(&server, &load("todo/decisions-authorization-api-1_0-01.json")), 40);
    assert_all("todo 02", decisions_suite(&server, &load("todo/decisions-authorization-api-1_0-02.json")), 43);
}

#[test]
fn api_gateway_suite_decides_exactly_as_expected() {
    let (_d, server) = serve("api-gateway");
    assert_all("api-gateway", decisions_suite(&server, &load("api-gateway/decisions.json")), 25);
}

#[test]
fn search_suites_return_exactly_the_expected_entities() {
    let (_d, server) = serve("search");
    assert_all(
        "subject search",
        search_suite(&server, "/access/v1/search/subject", &load("search/subject/results.json")["evaluation"]),
        60,
    );
    assert_all(
        "resource search",
        search_suite(&server, "/access/v1/search/resource", &load("search/resource/results.json")["evaluation"]),
        18,
    );
    assert_all(
        "action search",
        search_suite(&server, "/access/v1/search/action", &load("search/action/results.json")["evaluation"]),
        120,
    );
}

#[test]
fn idp_suite_returns_exactly_the_expected_records() {
    let (_d, server) = serve("idp");
    assert_all("idp", search_suite(&server, "/access/v1/search/resource", &load("idp/results.json")["search"]), 6);
}

// ----- the certification scenario (certification-authorization-api-1_0-scenario.md) -----

fn eval(s: &str, a: &str, r: &str) -> Value {
    json!({"subject": {"type": "user", "id": s}, "action": {"name": a}, "resource": {"type": "record", "id": r}})
}

fn decision(server: &Server, body: &Value) -> bool {
    let got = server.post_json("/access/v1/evaluation", body);
    assert_eq!(got.status, 200, "{body} -> {}", got.body);
    got.json()["decision"].as_bool().expect("a boolean decision")
}

#[test]
fn certification_fixture_decisions_hold_with_and_without_context_and_properties() {
    let (_d, server) = serve("certification");
    // Rules 1–4: identifiers only; the context never changes them; repeated, the same.
    for (s, a, r, want) in [
        ("alice", "read", "record-1", true),
        ("alice", "write", "record-1", true),
        ("bob", "read", "record-1", true),
        ("bob", "write", "record-1", false),
    ] {
        for _ in 0..3 {
            assert_eq!(decision(&server, &eval(s, a, r)), want, "{s} {a} {r}");
        }
        let mut with_context = eval(s, a, r);
        with_context["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "10.0.0.1"});
        assert_eq!(decision(&server, &with_context), want, "{s} {a} {r} with context");
    }
    // Rules 5–8: properties decide.
    let archived = json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let mut r5 = eval("alice", "write", "x");
    r5["resource"] = archived.clone();
    assert!(!decision(&server, &r5), "rule 5");
    let mut r6 = eval("carol", "write", "x");
    r6["subject"]["properties"] = json!({"role": "admin"});
    r6["resource"] = archived;
    assert!(decision(&server, &r6), "rule 6");
    let mut r7 = eval("alice", "delete", "record-1");
    r7["action"]["properties"] = json!({"soft": true});
    assert!(decision(&server, &r7), "rule 7");
    r7["action"]["properties"] = json!({"soft": false});
    assert!(!decision(&server, &r7), "rule 8");
    // Unknown fields anywhere are ignored.
    let mut unknown = eval("alice", "read", "record-1");
    unknown["future_field"] = json!({"x": 1});
    unknown["subject"]["_note"] = json!("ignored");
    assert!(decision(&server, &unknown));
}

#[test]
fn certification_error_cases_are_400_with_the_field_named() {
    let (_d, server) = serve("certification");
    let bad = [
        json!({"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}}),
        json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
        json!({"subject": "alice", "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": 123}, "resource": {"type": "record", "id": "record-1"}}),
        json!({"subject": {"type": "not a cedar type", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}),
    ];
    for body in &bad {
        for endpoint in ["/access/v1/evaluation", "/access/v1/evaluations"] {
            let got = server.post_json(endpoint, body);
            assert_eq!(got.status, 400, "{endpoint} {body} -> {}", got.body);
            assert!(!got.body.is_empty(), "a 400 says why");
        }
    }
    let named = server.post_json("/access/v1/evaluation", &bad[9]);
    assert!(named.body.contains("action.name"), "{}", named.body);
    let typed = server.post_json("/access/v1/evaluation", &bad[10]);
    assert!(typed.body.contains("not a valid Cedar entity type name"), "{}", typed.body);
    let ok = eval("alice", "read", "record-1").to_string();
    assert_eq!(server.post("/access/v1/evaluation", Some("text/plain"), None, &ok).status, 400, "content type");
    assert_eq!(server.post("/access/v1/evaluation", None, None, &ok).status, 400, "no content type");
    assert_eq!(
        server.post("/access/v1/evaluation", Some("application/json"), None, "{\"subject\": ").status,
        400,
        "malformed"
    );
    assert_eq!(server.post("/access/v1/evaluation", Some("application/json"), None, "").status, 400, "empty body");
    assert_eq!(server.post("/access/v1/evaluation", Some("application/json; charset=utf-8"), None, &ok).status, 200);
}

#[test]
fn request_ids_are_echoed_and_never_required() {
    let (_d, server) = serve("certification");
    let body = eval("alice", "read", "record-1").to_string();
    let with = server.post("/access/v1/evaluation", Some("application/json"), Some("bfe9eb29-ab87"), &body);
    assert_eq!((with.status, with.request_id.as_deref()), (200, Some("bfe9eb29-ab87")));
    let refused = server.post("/access/v1/evaluation", Some("text/plain"), Some("r-400"), &body);
    assert_eq!((refused.status, refused.request_id.as_deref()), (400, Some("r-400")), "echoed on errors too");
    let without = server.post("/access/v1/evaluation", Some("application/json"), None, &body);
    assert_eq!(without.status, 200);
}

#[test]
fn batches_take_defaults_whole_and_fail_items_not_the_batch() {
    let (_d, server) = serve("certification");
    let b = |body: Value| {
        let got = server.post_json("/access/v1/evaluations", &body);
        assert_eq!(got.status, 200, "{body} -> {}", got.body);
        got.json()
    };
    // Top-level defaults, whole-object override (c-3-2-7).
    let r = b(json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}},
        "evaluations": [{}, {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]
    }));
    assert_eq!(r, json!({"evaluations": [{"decision": true}, {"decision": false}]}));
    // A broken item is `decision: false` with a reason; its neighbours are decided (c-3-4-1).
    let r = b(json!({
        "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "options": {"evaluations_semantic": "execute_all"},
        "evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {}, {"resource": {"type": "record", "id": "record-1"}}]
    }));
    let items = r["evaluations"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (items[0]["decision"].as_bool(), items[1]["decision"].as_bool(), items[2]["decision"].as_bool()),
        (Some(true), Some(false), Some(true))
    );
    assert!(items[1]["context"]["error"]["message"].as_str().unwrap().contains("evaluations[1].resource"), "{r}");
    // No or an empty evaluations array: a single evaluation's answer (c-3-4-2, c-3-4-3).
    assert_eq!(b(eval("alice", "read", "record-1")), json!({"decision": true}));
    let mut empty = eval("alice", "read", "record-1");
    empty["evaluations"] = json!([]);
    assert_eq!(b(empty), json!({"decision": true}));
    // Short-circuit semantics stop at the first deny / permit.
    let three = |semantic: &str| {
        json!({
            "subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
            "options": {"evaluations_semantic": semantic},
            "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "write"}}, {"action": {"name": "read"}}]
        })
    };
    assert_eq!(b(three("execute_all"))["evaluations"].as_array().unwrap().len(), 3);
    assert_eq!(b(three("deny_on_first_deny")), json!({"evaluations": [{"decision": true}, {"decision": false}]}));
    assert_eq!(b(three("permit_on_first_permit")), json!({"evaluations": [{"decision": true}]}));
    let bad = server.post_json("/access/v1/evaluations", &three("sometimes"));
    assert_eq!(bad.status, 400, "an unknown semantic is a whole-payload error");
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r.get("id").or(r.get("name")).and_then(Value::as_str).unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn certification_searches_find_the_fixture_and_page_through_it() {
    let (_d, server) = serve("certification");
    let search = |target: &str, body: Value| {
        let got = server.post_json(&format!("/access/v1/search/{target}"), &body);
        assert_eq!(got.status, 200, "{target} {body} -> {}", got.body);
        got.json()
    };
    let s1 = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    let s1_ids = ids(&search("subject", s1.clone()));
    assert!(s1_ids.contains(&"alice".into()) && s1_ids.contains(&"bob".into()), "S1 {s1_ids:?}");
    let mut with_id = s1.clone();
    with_id["subject"]["id"] = json!("alice");
    with_id["context"] = json!({"time": "now"});
    assert_eq!(ids(&search("subject", with_id)), s1_ids, "a subject id in a subject search is ignored");
    assert!(ids(&search("resource", json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}}))).contains(&"record-1".into()), "S2");
    let s3 = ids(&search(
        "action",
        json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}),
    ));
    assert!(s3.contains(&"read".into()) && s3.contains(&"write".into()), "S3 {s3:?}");
    assert!(ids(&search("subject", json!({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}))).contains(&"bob".into()), "S4");
    assert!(ids(&search("resource", json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "action": {"name": "write"}, "resource": {"type": "record"}}))).contains(&"record-2".into()), "S5");
    assert!(ids(&search("action", json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}))).contains(&"write".into()), "S6");
    // Empty results, not errors, for an unknown id or type.
    assert_eq!(
        ids(&search(
            "subject",
            json!({"subject": {"type": "spaceship"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}})
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&search(
            "resource",
            json!({"subject": {"type": "user", "id": "nobody"}, "action": {"name": "read"}, "resource": {"type": "record"}})
        )),
        Vec::<String>::new()
    );
    // Paging one result at a time walks the whole set, then says it ended.
    let mut paged = Vec::new();
    let mut body = s1.clone();
    body["page"] = json!({"limit": 1});
    for _ in 0..10 {
        let page = search("subject", body.clone());
        paged.extend(ids(&page));
        let next = page["page"]["next_token"].as_str().expect("next_token is a string").to_string();
        if next.is_empty() {
            break;
        }
        body["page"] = json!({"limit": 1, "token": next});
    }
    assert_eq!(paged, s1_ids);
    // A token used with a different query is refused.
    let first = search(
        "subject",
        json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 1}}),
    );
    let token = first["page"]["next_token"].as_str().unwrap();
    let misuse = server.post_json("/access/v1/search/subject", &json!({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 1, "token": token}}));
    assert_eq!(misuse.status, 400, "{}", misuse.body);
    // Search error handling (c-4-7).
    for (target, body) in [
        ("subject", json!({"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}})),
        ("resource", json!({"action": {"name": "read"}, "resource": {"type": "record"}})),
        ("action", json!({"subject": {"type": "user", "id": "alice"}})),
        ("subject", json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}})),
        ("resource", json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}})),
        ("action", json!({"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}})),
    ] {
        let got = server.post_json(&format!("/access/v1/search/{target}"), &body);
        assert_eq!(got.status, 400, "{target} {body} -> {}", got.body);
    }
}

#[test]
fn metadata_names_every_endpoint_on_the_base_url() {
    let (_d, server) = serve("certification");
    let got = server.get("/.well-known/authzen-configuration");
    assert_eq!(got.status, 200);
    let m = got.json();
    assert_eq!(m["policy_decision_point"].as_str(), Some(server.base.as_str()));
    for (key, path) in [
        ("access_evaluation_endpoint", "/access/v1/evaluation"),
        ("access_evaluations_endpoint", "/access/v1/evaluations"),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ] {
        assert_eq!(m[key].as_str(), Some(format!("{}{path}", server.base).as_str()), "{key}");
    }
}
