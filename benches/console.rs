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
    let pages = [
        ("overview", "/".to_string()),
        ("findings", "/findings".to_string()),
        ("findings, filtered", "/findings?category=likely_malicious&status=open".to_string()),
        ("findings, page 3", "/findings?page=3".to_string()),
        ("finding", format!("/findings/{}", alert["id"].as_str().unwrap())),
        ("principal (riskiest)", format!("/principals/{}", enc(riskiest["principal"].as_str().unwrap()))),
        ("sign-in", "/login".to_string()),
    ];
    let a = agent();
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
}
