//! `tenet import`, `who-can`, `reach`, `chain`, `drift` and `unused`
//! through the binary, on a simulated enterprise's inventory and telemetry
//! and on the shared real telemetry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;

use common::{json, run};
use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// A small simulated enterprise, written once for every test here.
struct Sim {
    _dir: tempfile::TempDir,
    out: PathBuf,
    days: Vec<String>,
}

fn sim() -> &'static Sim {
    static SIM: OnceLock<Sim> = OnceLock::new();
    SIM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sim");
        let o = Command::new(env!("CARGO_BIN_EXE_tenet"))
            .args(["simulate", "--seed", "11", "--days", "6", "--humans", "24", "--agents", "8", "--scenario", "all"])
            .arg("--out")
            .arg(&out)
            .output()
            .expect("tenet runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut days: Vec<String> = std::fs::read_dir(out.join("inventory"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        days.sort();
        Sim { _dir: dir, out, days }
    })
}

fn import_day(data: &Path, day: &str) -> Value {
    let dir = sim().out.join("inventory").join(day);
    let at = format!("{day}T00:00:00Z");
    json(data, &["import", dir.to_str().unwrap(), "--at", &at, "--json"])
}

/// A store holding every inventory snapshot and all the telemetry.
fn full_store() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    for day in &sim().days {
        import_day(data.path(), day);
    }
    let o = run(data.path(), &["ingest", sim().out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    data
}

/// The AWS account ids of the simulated accounts, by name.
fn account(name: &str) -> String {
    let path = sim().out.join("inventory").join(&sim().days[0]).join(format!("aws-iam-{name}.json"));
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let arn = doc["RoleDetailList"][0]["Arn"].as_str().unwrap();
    arn.split(':').nth(4).unwrap().to_string()
}

fn end_of_sim() -> String {
    let last = sim().days.last().unwrap();
    // Six days from the first: a little after the last snapshot is enough.
    format!("{last}T23:59:59Z")
}

#[test]
fn importing_each_night_opens_history_once_and_never_churns() {
    let data = tempfile::tempdir().unwrap();
    let days = &sim().days;
    assert!(days.len() >= 3, "the simulation changes its inventory: {days:?}");
    let first = import_day(data.path(), &days[0]);
    assert_eq!(first["rejected"], Value::Array(vec![]), "{first}");
    let facts = first["facts"].as_u64().unwrap();
    assert!(facts > 200, "{first}");
    assert!(first["opened"].as_u64().unwrap() > facts * 9 / 10, "{first}");
    assert_eq!(first["closed"], 0);
    // The same night imported again: nothing happens.
    let again = import_day(data.path(), &days[0]);
    assert_eq!((again["opened"].as_u64(), again["closed"].as_u64()), (Some(0), Some(0)), "{again}");
    assert_eq!(again["unchanged_snapshots"], again["snapshots"]);
    // Later nights change a little of it, and only that is opened or closed.
    let mut changed = 0;
    for day in &days[1..] {
        let r = import_day(data.path(), day);
        let (opened, closed) = (r["opened"].as_u64().unwrap(), r["closed"].as_u64().unwrap());
        assert!(opened + closed < facts / 10, "{day}: {r}");
        changed += opened + closed;
    }
    assert!(changed > 0, "the scenarios change the inventory");
    // History: the drift between the first and last night is exactly what
    // the imports opened and closed after the first (content changes count once).
    let drift =
        json(data.path(), &["drift", "--since", &format!("{}T00:00:00Z", days[0]), "--until", &end_of_sim(), "--json"]);
    let changes = drift["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(changes.len() as u64 <= changed, "{} changes, {changed} opened or closed", changes.len());
    for c in changes {
        assert!(["added", "removed", "changed"].contains(&c["change"].as_str().unwrap()), "{c}");
        assert!(c["provenance"].as_str().unwrap().contains("inventory"), "{c}");
    }
}

#[test]
fn bad_inventory_is_named_and_the_rest_imported() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = sim().out.join("inventory").join(&sim().days[0]).join("scim-users.json");
    std::fs::copy(&good, dir.path().join("scim-users.json")).unwrap();
    std::fs::write(
        dir.path().join("broken-iam.json"),
        br#"{"UserDetailList": [{"UserName": 7}], "RoleDetailList": []}"#,
    )
    .unwrap();
    let out = run(data.path(), &["import", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2), "partial success: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["facts"].as_u64().unwrap() > 24, "the good file's users are in: {report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert!(
        rejected.iter().any(|r| r["path"].as_str().unwrap().ends_with("broken-iam.json")
            && r["location"].as_str().unwrap().contains("UserDetailList")),
        "{report}"
    );
}

#[test]
fn who_can_answers_with_paths_in_the_contract_shape() {
    let data = full_store();
    let prod = account("acme-prod");
    let at = end_of_sim();
    // Whoever can read a secret in production: agents through their tools'
    // role (conditional: the tool role's trust has a condition), roles, people.
    let resource = format!("arn:aws:secretsmanager:eu-west-1:{prod}:secret:payments/db-AbCdEf");
    let answer = json(data.path(), &["who-can", "secretsmanager:GetSecretValue", &resource, "--at", &at, "--json"]);
    let principals = answer.as_array().expect("an array");
    assert!(!principals.is_empty());
    let kinds = ["human", "workload", "agent", "role", "account"];
    for p in principals {
        let kind = p["kind"].as_str().unwrap();
        assert!(kinds.contains(&kind), "groups, policies and sessions are hops, not principals: {p}");
        let paths = p["paths"].as_array().unwrap();
        assert!(!paths.is_empty(), "{p}");
        for path in paths {
            let hops = path.as_array().unwrap();
            assert_eq!(hops[0]["from"], p["principal"], "a path starts at its principal: {p}");
            for pair in hops.windows(2) {
                // Each hop starts where the previous ended, except a boundary, which qualifies its identity.
                if pair[1]["edge"] != "boundary" {
                    assert_eq!(pair[0]["to"], pair[1]["from"], "{path}");
                }
            }
            for h in hops {
                for field in ["from", "to", "edge", "reason"] {
                    assert!(h[field].as_str().is_some_and(|s| !s.is_empty()), "{field} in {h}");
                }
            }
        }
        // Conditional exactly when every path has a conditional hop (unconditional paths come first).
        let path_conditional = |path: &Value| path.as_array().unwrap().iter().any(|h| h["conditional"] == true);
        let conditional = p["conditional"].as_bool().unwrap();
        if conditional {
            assert!(paths.iter().all(path_conditional), "{p}");
        } else {
            assert!(!path_conditional(&paths[0]), "{p}");
        }
    }
    let agent = principals.iter().find(|p| p["kind"] == "agent").expect("agents reach it");
    let tool_path = agent["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_array().unwrap())
        .find(|p| p[0]["edge"] == "tool")
        .unwrap_or_else(|| panic!("through a tool: {agent}"));
    assert_eq!(tool_path.last().unwrap()["edge"], "grant");
    assert!(
        tool_path.iter().any(|h| h["conditional"] == true),
        "the tool role's trust is conditional on the source identity: {agent}"
    );
    // People reach it too: through the agents they use or the roles they were seen assuming.
    assert!(principals.iter().any(|p| p["kind"] == "human"), "{answer}");
    // Human-readable by default.
    let text = run(data.path(), &["who-can", "secretsmanager:GetSecretValue", &resource, "--at", &at]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("path 1:") && text.contains("→[grant]"), "{text}");
}

#[test]
fn reach_shows_what_an_agent_can_act_as_and_hold() {
    let data = full_store();
    let at = end_of_sim();
    let registry: Value = serde_json::from_slice(
        &std::fs::read(sim().out.join("inventory").join(sim().days.last().unwrap()).join("agents.json")).unwrap(),
    )
    .unwrap();
    let agent = format!("agent:{}", registry["agents"][0]["id"].as_str().unwrap());
    let reach = json(data.path(), &["reach", &agent, "--at", &at, "--json"]);
    assert_eq!(reach["principal"], agent.as_str());
    assert_eq!(reach["kind"], "agent");
    let identities = reach["identities"].as_array().unwrap();
    assert_eq!(identities[0]["identity"], agent.as_str(), "itself first");
    assert!(identities[0]["via"].as_array().unwrap().is_empty());
    // It acts for people, and through its tools as their identities.
    assert!(identities.iter().any(|i| i["via"][0]["edge"] == "delegation"), "{reach}");
    assert!(identities.iter().any(|i| i["via"][0]["edge"] == "tool"), "{reach}");
    let grants: usize = identities.iter().map(|i| i["grants"].as_array().unwrap().len()).sum();
    assert!(grants > 0, "{reach}");
    for i in identities {
        for g in i["grants"].as_array().unwrap() {
            for field in ["source", "effect", "actions", "resources"] {
                assert!(g[field].is_string(), "{field} in {g}");
            }
            assert!(g["conditional"].is_boolean());
        }
    }
    let missing = run(data.path(), &["reach", "agent:nobody"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unknown principal \"agent:nobody\""));
}

#[test]
fn chain_follows_a_session_to_its_role_and_a_trace_to_its_person() {
    let data = full_store();
    // A CloudTrail call by a session of the MCP tool role, which carries the person as its source identity.
    let events = run(data.path(), &["events", "--source", "cloudtrail", "--json", "--limit", "100000"]);
    assert!(events.status.success());
    let event = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| {
            e["actor"]["id"].as_str().is_some_and(|a| a.contains(":assumed-role/mcp-aws-tools/"))
                && e["chain"].as_array().is_some_and(|c| c.len() >= 2)
        })
        .expect("a tool call through the MCP role");
    let chain = json(data.path(), &["chain", event["id"].as_str().unwrap(), "--json"]);
    let links = chain[0]["chain"].as_array().unwrap();
    let ids: Vec<&str> = links.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids[0].contains(":assumed-role/mcp-aws-tools/"), "the session first: {chain}");
    assert!(ids[1].ends_with(":role/mcp-aws-tools"), "then the role it is a session of: {chain}");
    assert_eq!(links[1]["kind"], "role");
    assert!(
        links.iter().any(|p| p["kind"] == "human" && p["id"].as_str().unwrap().starts_with("aws:source-identity/")),
        "and the person whose access it is: {chain}"
    );
    // A trace: every span, each with agent and person.
    let spans = run(data.path(), &["events", "--source", "otlp", "--json", "--limit", "200"]);
    let trace = String::from_utf8_lossy(&spans.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find_map(|e| e["trace"]["trace_id"].as_str().map(str::to_string))
        .expect("traced spans");
    let chain = json(data.path(), &["chain", &trace, "--json"]);
    let links = chain.as_array().unwrap();
    assert!(links.len() > 1, "every span of the trace");
    assert!(links.iter().all(|l| l["event"].as_str().unwrap().starts_with(&trace)));
    assert!(links.iter().any(|l| {
        let kinds: Vec<&str> = l["chain"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
        kinds.contains(&"agent") && kinds.last() == Some(&"human")
    }));
    let missing = run(data.path(), &["chain", "no-such-event"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn drift_ranks_the_access_that_emerged() {
    let data = full_store();
    let since = format!("{}T00:00:00Z", sim().days[0]);
    let drift = json(data.path(), &["drift", "--since", &since, "--until", &end_of_sim(), "--json"]);
    let emerged = drift["emerged"].as_array().unwrap();
    assert!(!emerged.is_empty(), "the scenarios widen access: {}", drift["changes"]);
    let scores: Vec<u64> = emerged.iter().map(|e| e["score"].as_u64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked: {scores:?}");
    for e in emerged {
        assert!(e["principal"].is_string() && e["identity"].is_string(), "{e}");
        assert!(!e["via"].as_array().unwrap().is_empty() || e["grant"]["group"].is_string(), "indirect: {e}");
    }
    // Nothing observed counts as a change: not its first sighting, nor an
    // inventory declaring it later (a new hire's Okta id and email, seen in
    // Okta the day before SCIM lists them). The aliases SCIM declares for a
    // new hire without their having been seen are additions.
    let changes = drift["changes"].as_array().unwrap();
    let joined =
        |c: &Value| c["edge"] == "node" && c["change"] == "added" && c["from"].as_str().unwrap().starts_with("user:");
    assert!(changes.iter().any(joined), "a person joins mid-run: {drift}");
    for c in changes.iter().filter(|c| c["edge"] == "same-as") {
        assert_eq!(c["change"], "added", "{c}");
        assert!(c["provenance"].as_str().unwrap().contains(" inventory "), "declared, not observed: {c}");
        assert!(!c["from"].as_str().unwrap().starts_with("okta:"), "observed in Okta before SCIM listed it: {c}");
    }
}

#[test]
fn unused_lists_idle_principals_and_permissions() {
    let data = full_store();
    let unused = json(data.path(), &["unused", "--days", "2", "--at", &end_of_sim(), "--json"]);
    let entries = unused.as_array().unwrap();
    assert!(!entries.is_empty());
    for u in entries {
        assert!(["principal", "permission"].contains(&u["scope"].as_str().unwrap()), "{u}");
        assert!(u["last_used"].is_null() || u["last_used"].is_string());
        if u["scope"] == "permission" {
            assert!(u["permission"].is_string() && u["source"].is_string(), "{u}");
        }
    }
    // An idle principal's last use, if any, is before the window.
    let at = tenet_model::Timestamp::parse_rfc3339(&end_of_sim()).unwrap();
    let window_start = at.saturating_add_seconds(-2 * 86_400);
    let mut with_last_use = 0;
    for u in entries.iter().filter(|u| u["scope"] == "principal") {
        if let Some(last) = u["last_used"].as_str() {
            assert!(tenet_model::Timestamp::parse_rfc3339(last).unwrap() < window_start, "{u}");
            with_last_use += 1;
        }
    }
    assert!(with_last_use > 0, "some went idle after being used: {unused}");
}

#[test]
fn shared_cloudtrail_and_falco_traces_build_a_graph() {
    for (set, probe) in [
        ("cloudtrail/stratus-red-team", "193672423079"),
        ("cloudtrail/invictus-ir", ""),
        ("k8s-audit/falco", "k8s:clusterrole/cluster-admin"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = run(data.path(), &["ingest", shared(set).to_str().unwrap()]);
        assert!(out.status.success(), "{set}: {}", String::from_utf8_lossy(&out.stderr));
        let drift = json(data.path(), &["drift", "--since", "2000-01-01T00:00:00Z", "--json"]);
        assert!(!drift["changes"].as_array().unwrap().is_empty(), "{set} records trust changes");
        if !probe.is_empty() {
            assert!(drift.to_string().contains(probe), "{set}: {probe} in {drift}");
        }
    }
    // The Stratus backdoor: an outside account can now act as the role.
    let data = tempfile::tempdir().unwrap();
    let file = shared("cloudtrail/stratus-red-team/aws.persistence.iam-backdoor-role.json");
    assert!(run(data.path(), &["ingest", file.to_str().unwrap()]).status.success());
    let drift = json(data.path(), &["drift", "--since", "2000-01-01T00:00:00Z", "--json"]);
    let top = &drift["emerged"][0];
    assert_eq!(top["principal"], "arn:aws:iam::193672423079:root", "{drift}");
    assert!(top["identity"].as_str().unwrap().contains(":role/stratus-red-team-backdoor"));
}
