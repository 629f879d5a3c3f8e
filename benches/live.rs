//! The running service under load, over HTTP, against the release binary
//! (`tenet serve` on loopback, the load generator in this process, both on
//! the same machine):
//!
//! 1. sustained OTLP/HTTP protobuf ingest: agent traces (an `invoke_agent`
//!    span and its `execute_tool` spans, stamped as sent) posted by 4
//!    clients at rising rates, 8 s each; for each rate the achieved events/s
//!    and the analysis lag (event time to analysed, the service's own
//!    `tenet_analysis_lag_seconds` histogram, this step's observations
//!    only). The sustained rate is the highest at which p99 lag stays under
//!    1 s and the clients keep up;
//! 2. decision latency (client-side, HTTP included, one keep-alive
//!    connection) p50/p99 while ingesting at half that rate, and with no
//!    ingest as the baseline;
//! 3. trust change to decision-visible: an IAM snapshot that removes a
//!    person from the group a policy permits (`POST /api/v1/inventory`), then
//!    the same decision asked every millisecond until it flips; 40 changes,
//!    alternating removal and return, while ingesting 1,000 events/s.
//!
//! `cargo bench --bench live` (`LIVE_RATES=1000,4000` to choose the rates,
//! `LIVE_SECONDS` per step).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use service::{Service, agent};

mod service;

const CLIENTS: usize = 4;
/// Spans per export (one agent run: the agent span and its tool calls).
const SPANS: usize = 100;

fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One export: an agent run for a person, `SPANS - 1` tool calls, stamped now.
fn export(client: usize, n: u64) -> Vec<u8> {
    let t = now_ns();
    let trace_id: Vec<u8> = [(client as u64).to_be_bytes(), n.to_be_bytes()].concat();
    let agent = format!("agt-{}", n % 20);
    let root = Span {
        trace_id: trace_id.clone(),
        span_id: 1u64.to_be_bytes().to_vec(),
        name: "invoke_agent support".into(),
        start_time_unix_nano: t,
        end_time_unix_nano: t,
        attributes: vec![
            attr("gen_ai.operation.name", "invoke_agent"),
            attr("gen_ai.agent.id", &agent),
            attr("gen_ai.agent.name", "support"),
            attr("enduser.id", &format!("user{}@example.com", n % 50)),
        ],
        ..Default::default()
    };
    let mut spans = vec![root];
    for i in 1..SPANS as u64 {
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: 1u64.to_be_bytes().to_vec(),
            name: "execute_tool".into(),
            start_time_unix_nano: t + i,
            end_time_unix_nano: t + i,
            attributes: vec![
                attr("gen_ai.operation.name", "execute_tool"),
                attr("gen_ai.tool.name", ["search_tickets", "read_customer", "update_ticket"][(i % 3) as usize]),
                attr("gen_ai.tool.call.id", &format!("{client}-{n}-{i}")),
            ],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![attr("service.name", "support")], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn iam(with_group: bool) -> Value {
    json!({
        "UserDetailList": [{"UserName": "alice", "UserId": "AIDAALICE", "Path": "/",
            "Arn": "arn:aws:iam::111122223333:user/alice", "GroupList": if with_group { json!(["admins"]) } else { json!([]) },
            "AttachedManagedPolicies": [], "UserPolicyList": []}],
        "GroupDetailList": [{"GroupName": "admins", "GroupId": "AGPAADMINS", "Path": "/",
            "Arn": "arn:aws:iam::111122223333:group/admins", "AttachedManagedPolicies": [], "GroupPolicyList": []}],
        "RoleDetailList": [], "Policies": []
    })
}

fn start() -> Service {
    service::start(
        "@id(\"admins-read\")\npermit (principal in group::\"admins\", action == Action::\"read\", resource);\n",
    )
}

/// Posts exports from `CLIENTS` threads at `rate` events/s until `stop`;
/// returns the events acknowledged.
fn ingest(base: &str, rate: f64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let base = base.to_string();
    std::thread::spawn(move || {
        let acked = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for c in 0..CLIENTS {
                let (base, stop, acked) = (&base, &stop, &acked);
                s.spawn(move || {
                    let a = agent();
                    let every = Duration::from_secs_f64(SPANS as f64 * CLIENTS as f64 / rate);
                    let started = Instant::now();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let due = started + every.mul_f64(n as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let body = export(c, n);
                        let r = a
                            .post(format!("{base}/v1/traces"))
                            .header("content-type", "application/x-protobuf")
                            .send(&body[..]);
                        if matches!(r, Ok(ref r) if r.status() == 200) {
                            acked.fetch_add(SPANS as u64, Ordering::Relaxed);
                        }
                        n += 1;
                    }
                });
            }
        });
        acked.load(Ordering::Relaxed)
    })
}

/// The lag histogram's cumulative buckets (upper bound → count).
fn lag_buckets(base: &str) -> Vec<(f64, u64)> {
    let text = agent().get(format!("{base}/metrics")).call().unwrap().into_body().read_to_string().unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("tenet_analysis_lag_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The smallest bucket bound holding quantile `q` of the observations between two scrapes.
fn quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, u64)> =
        after.iter().map(|(le, c)| (*le, c - before.iter().find(|(l, _)| l == le).map_or(0, |(_, b)| *b))).collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    delta.iter().find(|(_, c)| *c as f64 >= q * total as f64).map(|(le, _)| *le)
}

fn post_json(a: &ureq::Agent, url: &str, body: &Value) -> ureq::http::Response<ureq::Body> {
    a.post(url).header("content-type", "application/json").send(body.to_string()).unwrap()
}

fn decide(a: &ureq::Agent, base: &str) -> (bool, Duration) {
    let body = json!({"subject": {"type": "user", "id": "arn:aws:iam::111122223333:user/alice"},
        "action": {"name": "read"}, "resource": {"type": "document", "id": "d"}});
    let t = Instant::now();
    let text = post_json(a, &format!("{base}/access/v1/evaluation"), &body).into_body().read_to_string().unwrap();
    let r: Value = serde_json::from_str(&text).unwrap();
    (r["decision"] == json!(true), t.elapsed())
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("LIVE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let rates: Vec<f64> = std::env::var("LIVE_RATES")
        .ok()
        .map(|s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000.0, 2000.0, 4000.0, 8000.0, 12000.0, 16000.0, 24000.0]);
    let svc = start();
    let base = svc.base.clone();
    let a = agent();
    let posted = post_json(&a, &format!("{base}/api/v1/inventory?at=2026-01-01T00:00:00Z"), &iam(true));
    assert_eq!(posted.status(), 200);

    println!(
        "live service benchmark: OTLP/HTTP protobuf, {CLIENTS} clients, {SPANS} spans per export, {seconds} s per step"
    );
    println!("{:>10} {:>12} {:>10} {:>10}", "target/s", "achieved/s", "lag p50", "lag p99");
    let mut sustained = 0.0f64;
    for &rate in &rates {
        let before = lag_buckets(&base);
        let stop = Arc::new(AtomicBool::new(false));
        let t = Instant::now();
        let h = ingest(&base, rate, stop.clone());
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        let acked = h.join().unwrap();
        let achieved = acked as f64 / t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        let after = lag_buckets(&base);
        let (p50, p99) = (quantile(&before, &after, 0.5), quantile(&before, &after, 0.99));
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |s| format!("≤{:.3}s", s));
        println!("{rate:>10.0} {achieved:>12.0} {:>10} {:>10}", fmt(p50), fmt(p99));
        if p99.is_some_and(|p| p <= 1.0) && achieved >= 0.9 * rate {
            sustained = sustained.max(achieved);
        } else {
            break;
        }
    }
    println!("sustained (p99 analysis lag ≤ 1 s, clients keeping up): {sustained:.0} events/s");

    // Decisions: idle, then while ingesting at half the sustained rate.
    let measure = |label: &str, n: usize| {
        let mut lat: Vec<Duration> = (0..n).map(|_| decide(&a, &base).1).collect();
        let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
        println!(
            "decisions {label}: p50 {:.3} ms, p99 {:.3} ms ({n} sequential, HTTP included)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    };
    measure("idle", 4000);
    let half = (sustained / 2.0).max(500.0);
    let stop = Arc::new(AtomicBool::new(false));
    let h = ingest(&base, half, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    measure(&format!("while ingesting {half:.0} events/s"), 4000);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();

    // Trust change → decision-visible, while ingesting 1,000 events/s.
    let stop = Arc::new(AtomicBool::new(false));
    let h = ingest(&base, 1000.0, stop.clone());
    let mut visible = Vec::new();
    for i in 0..40 {
        let with = i % 2 == 1;
        let t = Instant::now();
        let at = format!("2026-01-01T00:{:02}:{:02}Z", (i + 1) / 60, (i + 1) % 60);
        let r = post_json(&a, &format!("{base}/api/v1/inventory?at={at}"), &iam(with));
        assert_eq!(r.status(), 200);
        loop {
            if decide(&a, &base).0 == with {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "the change never became visible");
            std::thread::sleep(Duration::from_millis(1));
        }
        visible.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let (p50, p99) = (percentile(&mut visible, 0.5), percentile(&mut visible, 0.99));
    println!(
        "trust change → decision-visible (inventory POST sent → decision flipped), while ingesting 1000 events/s: p50 {:.1} ms, p99 {:.1} ms (40 changes)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
