//! Tenet as a cluster (PostgreSQL + NATS JetStream, private servers from
//! the machine's binaries, on loopback) against the embedded service, on
//! the same input, in one run, on the same machine: the release binary's
//! `tenet serve` processes, the load generator in this process.
//!
//! 1. Throughput: a simulated enterprise's CloudTrail, Okta and Kubernetes
//!    audit records, as time-ordered bodies of 200 records, posted by 4
//!    clients; events/s from the first post until every event is stored and
//!    analysed (embedded: the service's analysed count; cluster: every
//!    partition's reader has acknowledged everything, which it does after
//!    commit and analysis). Embedded, a one-node cluster, a three-node
//!    cluster (bodies spread over the nodes).
//! 2. Decision latency p50/p99 (client-side, HTTP included, sequential, one
//!    keep-alive connection) on an idle node after the ingest.
//! 3. Change to decision across nodes: a verdict recorded on node a, the
//!    same decision asked on node c every millisecond until its risk flips.
//! 4. Failover: node c killed (SIGKILL); time until every partition it
//!    owned is owned by another node, and until an event published to one
//!    of them after the kill is stored.
//!
//! `cargo bench --bench cluster` (`CLUSTER_HUMANS`, `CLUSTER_DAYS` size the
//! enterprise; `CLUSTER_PARTITIONS`, default 12).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod service;

const CLIENTS: usize = 4;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bin() -> std::ffi::OsString {
    std::env::var_os("TENET_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tenet").into())
}

/// A `tenet serve` process; killed (SIGKILL) or stopped (SIGTERM) on drop.
struct Node {
    child: std::process::Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, store: Option<&str>, cluster: Option<(&str, &str, u32)>) -> Node {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--policies"]).arg(&policies);
    if let Some((bus, name, partitions)) = cluster {
        cmd.args(["--bus", bus, "--node-id", name, "--partitions", &partitions.to_string()]);
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening").to_string();
    Node { child, base }
}

fn tenet(data: &Path, store: Option<&str>, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Posts every body, spread over `nodes`, from `CLIENTS` threads; the events
/// the answers say were taken in as new.
fn post_all(nodes: &[String], bodies: &[String]) -> u64 {
    let next = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let next = next.clone();
                s.spawn(move || {
                    let agent = service::agent();
                    let mut stored = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return stored };
                        let url = format!("{}/api/v1/events", nodes[i % nodes.len()]);
                        loop {
                            let resp = agent.post(&url).header("content-type", "application/json").send(body).unwrap();
                            let status = resp.status().as_u16();
                            let text = resp.into_body().read_to_string().unwrap();
                            if status == 200 {
                                stored += serde_json::from_str::<Value>(&text).unwrap()["stored"].as_u64().unwrap();
                                break;
                            }
                            assert!(status == 429 || status == 503, "{status}: {text}");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn get_json(base: &str, path: &str) -> Value {
    let text = service::agent().get(format!("{base}{path}")).call().unwrap().into_body().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap()
}

fn decide(agent: &ureq::Agent, base: &str, principal: &str) -> (Value, Duration) {
    let (t, id) = principal.split_once(':').unwrap();
    let body = json!({"subject": {"type": t, "id": id}, "action": {"name": "read"},
        "resource": {"type": "document", "id": "q3-forecast"}});
    let started = Instant::now();
    let resp = agent
        .post(format!("{base}/access/v1/evaluation?explain=true"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    let text = resp.into_body().read_to_string().unwrap();
    (serde_json::from_str(&text).unwrap(), started.elapsed())
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Decision latency p50/p99 over `n` sequential decisions for `principal`.
fn decisions(base: &str, principal: &str, n: usize) -> (Duration, Duration) {
    let agent = service::agent();
    let mut lat: Vec<Duration> = (0..n).map(|_| decide(&agent, base, principal).1).collect();
    (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99))
}

/// Waits until every partition's reader has acknowledged everything published.
fn drained(bus: &str, partitions: u32) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let bus = tenet_bus::Bus::connect(bus, partitions).await.unwrap();
        loop {
            let mut behind = 0;
            for p in 0..partitions {
                behind += bus.lag(p, "tenet").await.unwrap().unwrap_or(u64::MAX / 4);
            }
            if behind == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

fn owners(url: &str) -> Vec<Option<String>> {
    tenet_store::cluster::status(url).unwrap().map(|s| s.owners).unwrap_or_default()
}

struct Run {
    events: u64,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

fn top_risk(data: &Path, store: Option<&str>) -> String {
    let risk: Vec<Value> =
        tenet(data, store, &["risk", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let top = risk.iter().max_by_key(|r| r["score"].as_u64().unwrap_or(0)).expect("risk");
    top["principal"].as_str().unwrap().to_string()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(pg) = tenet_testkit::postgres::Server::start("cluster bench") else { return };
    let partitions = env_or("CLUSTER_PARTITIONS", 12);
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let (humans, days) = (env_or("CLUSTER_HUMANS", 30), env_or("CLUSTER_DAYS", 6));
    let out = std::process::Command::new(bin())
        .args(["simulate", "--seed", "7", "--scenario", "all", "--agents", "4"])
        .args(["--humans", &humans.to_string(), "--days", &days.to_string(), "--out"])
        .arg(&sim)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bodies = tenet_testkit::bodies::time_ordered(&tenet_testkit::bodies::telemetry_files(&sim), 200);
    let records: usize = bodies.iter().map(|b| b.lines().count()).sum();
    println!(
        "cluster benchmark: {records} records ({humans} people, {days} days) in {} bodies, {CLIENTS} clients, {partitions} partitions",
        bodies.len()
    );

    // Embedded.
    let embedded = {
        let data = dir.path().join("embedded");
        let node = serve(&data, None, None);
        let started = Instant::now();
        let stored = post_all(std::slice::from_ref(&node.base), &bodies);
        while get_json(&node.base, "/api/status")["events"].as_u64().unwrap() < stored {
            std::thread::sleep(Duration::from_millis(20));
        }
        let seconds = started.elapsed().as_secs_f64();
        drop(node);
        let principal = top_risk(&data, None);
        let node = serve(&data, None, None);
        let (p50, p99) = decisions(&node.base, &principal, 2000);
        Run { events: stored, seconds, p50, p99 }
    };

    // Clusters of one and three nodes, each on a fresh database and NATS.
    let mut cluster_runs = Vec::new();
    let mut last = None;
    for n in [1usize, 3] {
        let nats = tenet_testkit::nats::Server::start("cluster bench").expect("nats-server");
        let (store, bus) = (pg.fresh_database(), nats.url());
        let names = ["a", "b", "c"];
        let nodes: Vec<Node> = names[..n]
            .iter()
            .map(|name| serve(&dir.path().join(format!("{n}-{name}")), Some(&store), Some((&bus, name, partitions))))
            .collect();
        let share = (partitions as usize).div_ceil(n);
        while !{
            let o = owners(&store);
            o.len() == partitions as usize
                && names[..n].iter().all(|name| o.iter().filter(|x| x.as_deref() == Some(*name)).count() >= share - 1)
                && o.iter().all(Option::is_some)
        } {
            std::thread::sleep(Duration::from_millis(50));
        }
        let bases: Vec<String> = nodes.iter().map(|x| x.base.clone()).collect();
        let started = Instant::now();
        let stored = post_all(&bases, &bodies);
        drained(&bus, partitions);
        let seconds = started.elapsed().as_secs_f64();
        let principal = top_risk(&dir.path().join("cli"), Some(&store));
        let (p50, p99) = decisions(&bases[n - 1], &principal, 2000);
        cluster_runs.push((n, Run { events: stored, seconds, p50, p99 }));
        last = Some((nodes, nats, store, bus, principal));
    }

    println!(
        "\n{:<22} {:>10} {:>12} {:>8} {:>12} {:>12}",
        "", "events", "events/s", "ratio", "decide p50", "decide p99"
    );
    let rate = |r: &Run| r.events as f64 / r.seconds;
    let row = |label: &str, r: &Run| {
        println!(
            "{label:<22} {:>10} {:>12.0} {:>8.2} {:>9.3} ms {:>9.3} ms",
            r.events,
            rate(r),
            rate(r) / rate(&embedded),
            ms(r.p50),
            ms(r.p99)
        );
    };
    row("embedded", &embedded);
    for (n, r) in &cluster_runs {
        row(&format!("cluster, {n} node{}", if *n == 1 { "" } else { "s" }), r);
    }

    // Change to decision across nodes, then failover, on the three-node cluster.
    let (mut nodes, _nats, store, bus, _) = last.expect("the three-node run");
    let agent = service::agent();
    let risk: Vec<Value> = tenet(&dir.path().join("cli"), Some(&store), &["risk", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calm = risk
        .iter()
        .filter(|r| r["principal"].as_str().unwrap().starts_with("user:"))
        .min_by_key(|r| r["score"].as_u64().unwrap())
        .map(|r| r["principal"].as_str().unwrap().to_string())
        .expect("a person with risk recorded");
    let calm = calm.as_str();
    let mut visible = Vec::new();
    for i in 0..20 {
        let verdict = if i % 2 == 0 { "compromise" } else { "dismiss" };
        let want = i % 2 == 0;
        let started = Instant::now();
        let resp = agent
            .post(format!("{}/api/v1/principals/{calm}/{verdict}", nodes[0].base))
            .header("content-type", "application/json")
            .send(json!({"reason": "bench"}).to_string())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", resp.into_body().read_to_string().unwrap());
        loop {
            let (d, _) = decide(&agent, &nodes[2].base, calm);
            if (d["context"]["signals"]["risk"]["score"] == json!(100)) == want {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        visible.push(started.elapsed());
    }
    let (v50, v99) = (percentile(&mut visible, 0.5), percentile(&mut visible, 0.99));
    println!(
        "\nchange to decision across nodes (verdict on a, decision on c, HTTP included): p50 {:.1} ms, p99 {:.1} ms ({} changes)",
        ms(v50),
        ms(v99),
        visible.len()
    );

    if partitions < 3 {
        println!("failover: not measured (node c owns no partition of {partitions})");
        return;
    }
    let theirs: Vec<u32> =
        owners(&store).iter().enumerate().filter(|(_, o)| o.as_deref() == Some("c")).map(|(p, _)| p as u32).collect();
    let victim = nodes.pop().unwrap();
    let pid = victim.child.id();
    let killed = Instant::now();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    drop(victim);
    while owners(&store)
        .iter()
        .enumerate()
        .any(|(p, o)| theirs.contains(&(p as u32)) && o.as_deref().is_none_or(|o| o == "c"))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let owned = killed.elapsed();
    // An event for one of the moved partitions, published after the kill.
    let principal = (0..)
        .map(|i| format!("arn:aws:iam::111122223333:user/failover-{i}"))
        .find(|p| theirs.contains(&tenet_bus::partition_of(p, partitions)))
        .unwrap();
    let record = json!({"eventVersion": "1.09", "eventTime": "2026-12-01T00:00:00Z", "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.9",
        "eventID": "failover-bench-1", "userIdentity": {"type": "IAMUser", "arn": principal,
        "accountId": "111122223333", "userName": principal.rsplit('/').next().unwrap()}});
    let resp = agent
        .post(format!("{}/api/v1/events", nodes[0].base))
        .header("content-type", "application/json")
        .send(record.to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    drained(&bus, partitions);
    let stored = killed.elapsed();
    println!(
        "failover (SIGKILL of node c, owning {} of {partitions} partitions): owned again after {:.0} ms; an event published to one after the kill stored after {:.0} ms",
        theirs.len(),
        ms(owned),
        ms(stored)
    );
}
