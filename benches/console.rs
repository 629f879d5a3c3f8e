//! Console page timings: each page of the console asked repeatedly of a
//! release `tenet serve` over an analysed simulated enterprise; the time
//! from sending the request to having the whole page (loopback, so server
//! time plus well under a millisecond).
//!
//! `cargo bench --bench console` uses the demo's enterprise (40 people, 8
//! agents, 5 days, the shared Sigma rules); `CONSOLE_PEOPLE=1000
//! CONSOLE_AGENTS=100 CONSOLE_DAYS=14` the larger one. Targets
//! (issue 16): under 100 ms on the demo data, under 300 ms on the larger.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use service::agent;

mod service;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn tenet(data: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tenet")).arg("--data-dir").arg(data).args(args).output().unwrap();
    assert!(o.status.success(), "tenet {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A day before the newest event, in seconds (the explorer's `since`).
fn day_before(data: &Path) -> i64 {
    let newest = tenet(data, &["events", "--json", "--limit", "1"]);
    let e: serde_json::Value = serde_json::from_str(newest.lines().next().unwrap()).unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    t.timestamp() - 86_400
}

fn main() {
    let (people, agents, days) =
        (env_or("CONSOLE_PEOPLE", "40"), env_or("CONSOLE_AGENTS", "8"), env_or("CONSOLE_DAYS", "5"));
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let data = dir.path().join("data");
    let built = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args([
            "simulate",
            "--seed",
            "42",
            "--days",
            &days,
            "--humans",
            &people,
            "--agents",
            &agents,
            "--scenario",
            "all",
        ])
        .arg("--out")
        .arg(&sim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/sigma");
    tenet(&data, &["ingest", sim.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    let first_line = |out: String| out.lines().next().map(str::to_string);
    let alert = tenet(&data, &["findings", "--json", "--category", "likely_malicious"]);
    let alert: serde_json::Value = serde_json::from_str(&first_line(alert).expect("an alert")).unwrap();
    let risk = tenet(&data, &["risk", "--json"]);
    let riskiest = risk
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .max_by_key(|r| r["score"].as_u64().unwrap())
        .unwrap();
    println!(
        "enterprise: {people} people, {agents} agents, {days} days, simulated and analysed in {:.0} s",
        built.elapsed().as_secs_f64()
    );

    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let svc = service::start_on(&data, &policies);
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let a = agent();
    // An enforcement point's decisions, for the decision log's pages.
    let subjects: Vec<String> = risk
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["principal"].as_str().map(str::to_string))
        .take(200)
        .collect();
    for i in 0..2_000 {
        let (kind, id) = subjects[i % subjects.len()].split_once(':').unwrap_or(("user", "x"));
        let ask = serde_json::json!({"subject": {"type": kind, "id": id}, "action": {"name": if i % 3 == 0 { "write" } else { "read" }},
            "resource": {"type": "document", "id": format!("doc-{}", i % 50)}});
        let r = a
            .post(&format!("{}/access/v1/evaluation", svc.base))
            .header("content-type", "application/json")
            .send(ask.to_string());
        assert_eq!(r.unwrap().status().as_u16(), 200);
    }
    let object = tenet(&data, &["events", "--json", "--action", "s3:GetObject", "--limit", "1"]);
    let object: serde_json::Value = serde_json::from_str(&first_line(object).expect("an object read")).unwrap();
    let object = object["resources"][0]["id"].as_str().unwrap().to_string();
    let agent_id = subjects.iter().find(|s| s.starts_with("agent:")).cloned().unwrap_or_default();
    let riskiest_id = riskiest["principal"].as_str().unwrap().to_string();
    // The overview computes drift at most every 30 s: the first request pays for it.
    let cold = Instant::now();
    let r = a.get(&format!("{}/", svc.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    println!("overview, drift computed: {:.1} ms (then cached for 30 s)", cold.elapsed().as_secs_f64() * 1000.0);
    let pages = [
        ("overview", "/".to_string()),
        ("findings", "/findings".to_string()),
        ("findings, filtered", "/findings?category=likely_malicious&status=open".to_string()),
        ("findings, page 3", "/findings?page=3".to_string()),
        ("finding", format!("/findings/{}", alert["id"].as_str().unwrap())),
        ("principal (riskiest)", format!("/principals/{}", enc(riskiest["principal"].as_str().unwrap()))),
        ("principal (an agent)", format!("/principals/{}", enc(&agent_id))),
        ("graph (riskiest)", format!("/graph?focus={}", enc(&riskiest_id))),
        ("graph (agent, vs a day)", format!("/graph?focus={}&since={}", enc(&agent_id), day_before(&data))),
        ("graph (who can read)", format!("/graph?focus={}&action=s3%3AGetObject", enc(&object))),
        ("decisions", "/decisions".to_string()),
        ("decisions, searched", "/decisions?q=doc-7&decision=deny".to_string()),
        ("decision", "/decisions/1000".to_string()),
        ("policies", "/policies".to_string()),
        ("signals", "/signals".to_string()),
        ("sign-in", "/login".to_string()),
    ];
    const ROUNDS: usize = 30;
    println!("{:<24} {:>9} {:>9} {:>9} {:>8}", "page", "p50 ms", "p99 ms", "max ms", "KiB");
    for (name, path) in &pages {
        let url = format!("{}{path}", svc.base);
        let mut times = Vec::with_capacity(ROUNDS);
        let mut size = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let mut r = a.get(&url).call().unwrap();
            assert_eq!(r.status().as_u16(), 200, "{url}");
            size = r.body_mut().read_to_string().unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        let q = |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<24} {:>9.1} {:>9.1} {:>9.1} {:>8.0}",
            ms(q(0.5)),
            ms(q(0.99)),
            ms(*times.last().unwrap()),
            size as f64 / 1024.0
        );
    }
    // "Evaluate again now": a form post with the page's token.
    let page = a.get(&format!("{}/decisions/1000", svc.base)).call().unwrap().body_mut().read_to_string().unwrap();
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + "name=\"csrf\" value=\"".len();
    let token = page[at..].split('"').next().unwrap().to_string();
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = a
            .post(&format!("{}/decisions/1000/evaluate", svc.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("csrf={token}"))
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<24} {:>9.1} {:>9.1} {:>9.1}",
        "decision, evaluated again",
        ms(times[ROUNDS / 2]),
        ms(times[(ROUNDS * 99 / 100).min(ROUNDS - 1)]),
        ms(*times.last().unwrap())
    );
}
