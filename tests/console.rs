//! The console through the real binary, over HTTP: pages rendered by the
//! server from a simulated enterprise's analysed store, a finding decided
//! through its form, and who may see and act (issue 16's access rules).
//! Browser-driven checks are in `console_browser.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::console::{csrf_of, get, post_form};
use common::{Server, json, json_lines, key, ok};

/// A small simulated enterprise with a stolen key, ingested and analysed.
fn enterprise() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let o = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "3", "--days", "5", "--humans", "12", "--agents", "2"])
        .args(["--scenario", "credential-theft", "--out", sim.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&dir.path().join("data"), &["ingest", sim.to_str().unwrap()]);
    dir
}

fn serve(data: &Path) -> Server {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    Server::start(data, &["--policies", policies.to_str().unwrap()])
}

fn likely_malicious(data: &Path) -> String {
    let found = json_lines(data, &["findings", "--json", "--category", "likely_malicious", "--status", "open"]);
    found.iter().find(|f| f["alert"] == serde_json::json!(true)).expect("the stolen key raised an alert")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_open_loopback_console_shows_the_posture_and_decides_a_finding_through_its_form() {
    let world = enterprise();
    let data = world.path().join("data");
    let finding = likely_malicious(&data);
    let server = serve(&data);

    let overview = get(&server, "/", None);
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert_eq!(overview.header("content-type"), Some("text/html; charset=utf-8"));
    for part in [
        "Trust posture",
        "People",
        "Agents",
        "likely malicious",
        "<svg",
        "Riskiest principals",
        "Drift: how trust moved",
        "Since yesterday",
        "Since last week",
        "New indirect paths",
        "Source coverage",
        "cloudtrail · aws",
        "okta · okta",
    ] {
        assert!(overview.body.contains(part), "the overview shows {part:?}");
    }
    assert!(overview.body.contains("data-changes=\"/console/changes\""), "the overview follows live changes");
    let css = get(&server, "/assets/console.css", None);
    assert_eq!((css.status, css.header("content-type")), (200, Some("text/css; charset=utf-8")));

    let list = get(&server, "/findings?category=likely_malicious&status=open", None);
    assert!(list.body.contains(&format!("/findings/{finding}")), "the filtered list links the alert");
    assert_eq!(get(&server, "/findings?category=bogus", None).status, 400, "a bad filter is said, not ignored");
    assert_eq!(get(&server, "/findings/f-no-such-thing", None).status, 404);

    let page = get(&server, &format!("/findings/{finding}"), None);
    assert_eq!(page.status, 200);
    let f = json(&data, &["finding", &finding, "--json"]);
    let who = f["principal"].as_str().unwrap();
    let encoded: String = form_urlencoded::byte_serialize(who.as_bytes()).collect();
    assert!(page.body.contains(&format!("/principals/{encoded}")), "the finding links its principal's page");
    let card = get(&server, &format!("/principals/{encoded}"), None);
    assert_eq!(card.status, 200, "{}", card.body);
    for part in [
        "Risk over time",
        "Findings",
        "Baseline against its last day",
        "Top actions",
        "Hours (UTC)",
        "Blast radius",
        "Delegation chains",
        "Timeline",
        who,
    ] {
        assert!(card.body.contains(part), "the principal's page shows {part:?}");
    }
    assert!(card.body.contains(&format!("/findings/{finding}")), "and links its findings");
    assert!(card.body.contains("rel=\"next\""), "its timeline pages back in time");
    let older = get(&server, &format!("/principals/{encoded}?page=2"), None);
    assert!(older.status == 200 && older.body.contains("rel=\"prev\""), "{}", older.body);
    assert_eq!(get(&server, "/principals/user%3Anobody%40nowhere.example", None).status, 404);
    for t in f["techniques"].as_array().unwrap() {
        assert!(page.body.contains(t.as_str().unwrap()), "ATT&CK id {t} on the page");
    }
    assert!(page.body.contains("Evidence by behaviour") && page.body.contains("Deviations from the baseline"));
    assert!(page.body.contains("<table class=\"events\">"), "the evidence events themselves, by behaviour");
    let shown =
        page.body.split("<table class=\"events\">").skip(1).map(|t| t.matches("<tr><td>").count()).sum::<usize>();
    assert!(shown > 0 && !page.body.contains("not among the events"), "each behaviour's events, found: {}", page.body);
    assert!(page.body.contains("In the trust graph") && page.body.contains("Explore what changed around it"));
    let token = csrf_of(&page.body);
    let path = format!("/findings/{finding}/status");
    let forged = post_form(&server, &path, None, &[("status", "acknowledged"), ("reason", "x")]);
    assert_eq!(forged.status, 403, "no form token, no change");
    let wrong = post_form(&server, &path, None, &[("status", "acknowledged"), ("reason", "x"), ("csrf", "0000")]);
    assert_eq!(wrong.status, 403);
    let no_reason = post_form(&server, &path, None, &[("status", "acknowledged"), ("reason", " "), ("csrf", &token)]);
    assert_eq!(no_reason.status, 400, "a decision needs a reason");
    assert_eq!(json(&data, &["finding", &finding, "--json"])["status"], "open", "nothing changed so far");

    let done =
        post_form(&server, &path, None, &[("status", "acknowledged"), ("reason", "looking into it"), ("csrf", &token)]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some(format!("/findings/{finding}").as_str()));
    let after = json(&data, &["finding", &finding, "--json"]);
    assert_eq!(after["status"], "acknowledged");
    let why = after["history"].as_array().unwrap().last().unwrap()["reason"].as_str().unwrap().to_string();
    assert!(why.starts_with("looking into it") && why.contains("console"), "{why}");
    assert!(get(&server, &format!("/findings/{finding}"), None).body.contains("acknowledged"));

    // The decision is a trust change like any other: announced, and listed on the signals page.
    let said = format!("finding {finding} became acknowledged");
    let start = std::time::Instant::now();
    loop {
        let signals = get(&server, "/signals", None);
        assert_eq!(signals.status, 200);
        if signals.body.contains(&said) {
            assert!(signals.body.contains("No receiver has a stream yet"), "no stream was made");
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "the change reached the notice log");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn with_keys_a_person_signs_in_with_a_read_key_and_needs_admin_to_act() {
    let world = enterprise();
    let data = world.path().join("data");
    let finding = likely_malicious(&data);
    let (viewer, ops, pep, idp) = (
        key(&data, "viewer", "read"),
        key(&data, "ops", "read,admin"),
        key(&data, "pep", "decide"),
        key(&data, "idp", "ssf"),
    );
    let server = serve(&data);

    let anonymous = get(&server, "/", None);
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/login?next=%2F")));
    let wrong_scope = post_form(&server, "/login", None, &[("token", &pep), ("next", "/")]);
    assert_eq!(wrong_scope.status, 401);
    assert!(wrong_scope.body.contains("lacks the read scope"), "{}", wrong_scope.body);
    assert_eq!(post_form(&server, "/login", None, &[("token", "not-a-key")]).status, 401);

    let sign_in = |token: &str| {
        let a = post_form(&server, "/login", None, &[("token", token), ("next", "https://evil.example/")]);
        assert_eq!(a.status, 303, "{}", a.body);
        assert_eq!(a.header("location"), Some("/"), "never sent off the site");
        let cookie = a.header("set-cookie").expect("a session cookie").to_string();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains(token), "the key never goes to the browser");
        cookie.split(';').next().unwrap().to_string()
    };
    let reader = sign_in(&viewer);
    let page = get(&server, &format!("/findings/{finding}"), Some(&reader));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("needs a key with the admin scope"), "read only: no decision form");
    let token = csrf_of(&page.body); // the sign-out form's
    let refused = post_form(
        &server,
        &format!("/findings/{finding}/status"),
        Some(&reader),
        &[("status", "resolved"), ("reason", "x"), ("csrf", &token)],
    );
    assert_eq!(refused.status, 403, "read is not admin");

    let admin = sign_in(&ops);
    let page = get(&server, &format!("/findings/{finding}"), Some(&admin));
    let token = csrf_of(&page.body);
    let other_session = post_form(
        &server,
        &format!("/findings/{finding}/status"),
        Some(&admin),
        &[("status", "resolved"), ("reason", "x"), ("csrf", &csrf_of(&get(&server, "/", Some(&reader)).body))],
    );
    assert_eq!(other_session.status, 403, "another session's token does not do");
    let resolved = post_form(
        &server,
        &format!("/findings/{finding}/status"),
        Some(&admin),
        &[("status", "resolved"), ("reason", "contained"), ("csrf", &token)],
    );
    assert_eq!(resolved.status, 303, "{}", resolved.body);
    assert_eq!(json(&data, &["finding", &finding, "--json"])["status"], "resolved");

    // A receiver's stream, as the signals page shows it to a reader.
    let stream = serde_json::json!({"delivery": {"method": "urn:ietf:rfc:8936"}});
    assert_eq!(server.call("POST", "/ssf/stream", Some(&idp), Some(&stream)).status, 201);
    let signals = get(&server, "/signals", Some(&reader));
    assert_eq!(signals.status, 200);
    assert!(signals.body.contains(">idp<") && signals.body.contains("polled"), "{}", signals.body);

    ok(&data, &["key", "revoke", "ops"]);
    let start = std::time::Instant::now();
    while get(&server, "/", Some(&admin)).status == 200 {
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "a revoked key's session ends");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(get(&server, "/", Some(&reader)).status, 200, "other sessions go on");
}

#[test]
fn decisions_are_searched_and_decided_again_policies_show_their_versions_and_the_graph_its_reach() {
    let world = enterprise();
    let data = world.path().join("data");
    let policies = world.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    for f in std::fs::read_dir(&examples).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, policies.join(f.file_name().unwrap())).unwrap();
    }
    let server = Server::start(&data, &["--policies", policies.to_str().unwrap()]);

    // An enforcement point asks; the log keeps every answer.
    let ask = |subject: &str, action: &str| {
        server.post_json(
            "/access/v1/evaluation",
            &serde_json::json!({"subject": {"type": "user", "id": subject}, "action": {"name": action},
                "resource": {"type": "document", "id": "roadmap"}}),
        )
    };
    for who in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        assert_eq!(ask(who, "read").status, 200);
    }
    assert_eq!(ask("ada@example.com", "fly").status, 200);
    let start = std::time::Instant::now();
    let list = loop {
        let list = get(&server, "/decisions", None);
        if list.body.matches("href=\"/decisions/").count() == 4 || start.elapsed().as_secs() > 5 {
            break list;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(list.status, 200);
    assert_eq!(list.body.matches("href=\"/decisions/").count(), 4, "every decision is listed: {}", list.body);
    let found = get(&server, "/decisions?q=bob%40example", None);
    assert_eq!(found.body.matches("href=\"/decisions/").count(), 1, "searched by subject");
    let denied = get(&server, "/decisions?decision=deny", None);
    assert_eq!(denied.body.matches("href=\"/decisions/").count(), 1, "only the denied one: {}", denied.body);
    assert!(denied.body.contains("fly"));
    assert_eq!(get(&server, "/decisions?decision=maybe", None).status, 400);

    let one = get(&server, "/decisions/1", None);
    assert_eq!(one.status, 200);
    for part in ["ada@example.com", "Determining policies", "people-read-documents", "Trust signals", "allowed"] {
        assert!(one.body.contains(part), "the decision page shows {part:?}");
    }
    assert_eq!(get(&server, "/decisions/999", None).status, 404);
    let token = csrf_of(&one.body);
    assert_eq!(post_form(&server, "/decisions/1/evaluate", None, &[]).status, 403, "no form token");
    let again = post_form(&server, "/decisions/1/evaluate", None, &[("csrf", &token)]);
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("id=\"now\"") && again.body.contains("as when it was logged"), "{}", again.body);
    let logged = get(&server, "/decisions", None);
    assert_eq!(logged.body.matches("href=\"/decisions/").count(), 4, "deciding again is not logged");

    // Policies: valid and active; a change becomes a version with its diff;
    // a broken file is said, and the active version kept.
    let page = get(&server, "/policies", None);
    assert!(page.body.contains("The directory validates") && page.body.contains("id=\"policy-people-read-documents\""));
    let cedar = policies.join("adaptive.cedar");
    let mut text = std::fs::read_to_string(&cedar).unwrap();
    text.push_str("\n@id(\"nobody-deletes\")\nforbid (principal, action == Action::\"delete\", resource);\n");
    std::fs::write(&cedar, &text).unwrap();
    let start = std::time::Instant::now();
    loop {
        let page = get(&server, "/policies", None);
        if page.body.contains("<ins>+@id(&quot;nobody-deletes&quot;)</ins>") {
            assert_eq!(page.body.matches("<article class=\"version\">").count(), 2, "two versions");
            break;
        }
        assert!(start.elapsed().as_secs() < 10, "the new version is listed with its diff: {}", page.body);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::fs::write(policies.join("broken.cedar"), "permit (principal,").unwrap();
    let start = std::time::Instant::now();
    loop {
        let page = get(&server, "/policies", None);
        if page.body.contains("does not validate") {
            assert!(page.body.contains("broken.cedar"), "the error names the file: {}", page.body);
            break;
        }
        assert!(start.elapsed().as_secs() < 10, "a broken directory is said");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The trust graph: an agent, the people it acts for and what it reaches, each edge with its reason.
    let agent = json_lines(&data, &["risk", "--json"])
        .iter()
        .filter_map(|r| r["principal"].as_str().map(str::to_string))
        .find(|p| p.starts_with("agent:"))
        .expect("the enterprise has an agent");
    let encoded: String = form_urlencoded::byte_serialize(agent.as_bytes()).collect();
    let graph = get(&server, &format!("/graph?focus={encoded}"), None);
    assert_eq!(graph.status, 200, "{}", graph.body);
    assert!(graph.body.contains("<svg class=\"graph\""), "drawn");
    assert!(graph.body.contains(&format!("data-edge=\"{agent}|delegation|")), "its delegation, drawn: {}", graph.body);
    assert!(graph.body.contains(" acts for "), "with its reason in words");
    assert!(get(&server, "/graph", None).body.contains("Choose a principal"));
    // A resource: the actions seen on it, each a question of who can.
    let read = json_lines(&data, &["events", "--json", "--action", "s3:GetObject", "--limit", "1"]);
    let object = read[0]["resources"][0]["id"].as_str().unwrap().to_string();
    let encoded: String = form_urlencoded::byte_serialize(object.as_bytes()).collect();
    let resource = get(&server, &format!("/graph?focus={encoded}"), None);
    assert!(resource.body.contains("Actions seen on it"), "{}", resource.body);
    assert!(resource.body.contains(&format!("/graph?focus={encoded}&amp;action=s3%3AGetObject")), "{}", resource.body);
    let who = get(&server, &format!("/graph?focus={encoded}&action=s3%3AGetObject"), None);
    assert_eq!(who.status, 200);
    assert!(who.body.contains("who can s3:GetObject on"), "{}", who.body);
}
