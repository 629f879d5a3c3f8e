//! Continuous access evaluation under load, against the release binary
//! (`tenet serve` on loopback; the receiver and the load in this process):
//! from a trust change to the `session-revoked` SET a push receiver
//! accepts, with 10,000 live sessions and trust changes arriving at a
//! steady rate.
//!
//! 1. 10,000 people (a SCIM inventory), each reading a document in its own
//!    session (`context.session_id`): 10,000 live sessions;
//! 2. one push stream asking for `session-revoked`, to a receiver here
//!    that answers 202 and notes when each SET arrived;
//! 3. administrators' compromises (`POST /api/v1/principals/{id}/compromise`)
//!    at `SSF_RATE` per second (default 1,000) from 8 clients, each person
//!    once, in random order; each revokes that person's session.
//!
//! Latency is from the moment the change was asked (the request sent) to
//! the moment the receiver had the SET, per session: p50, p99, max; and
//! the rate of changes achieved. `cargo bench --bench ssf`
//! (`SSF_SESSIONS`, `SSF_RATE`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{Service, agent};

mod service;

const CLIENTS: usize = 8;

fn start() -> Service {
    service::start(
        "@id(\"people-read\")\npermit (principal is user, action == Action::\"read\", resource);\n\
         @id(\"stop-critical\")\nforbid (principal, action, resource) when { context.tenet.risk.available && \
         context.tenet.risk has score && context.tenet.risk.score >= 75 };\n",
    )
}

fn post(a: &ureq::Agent, url: &str, body: &Value) -> (u16, String) {
    let mut r = a.post(url).header("content-type", "application/json").send(body.to_string()).unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

fn person(i: usize) -> String {
    format!("p{i:05}@bench.example")
}

/// A minimal RFC 8935 receiver: keep-alive HTTP/1.1, 202 for every SET,
/// the arrival time noted under the session the SET is about.
fn receiver(arrived: Arc<Mutex<HashMap<String, Instant>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let arrived = arrived.clone();
            std::thread::spawn(move || serve(conn, &arrived));
        }
    });
    port
}

fn serve(conn: TcpStream, arrived: &Mutex<HashMap<String, Instant>>) {
    use base64::Engine;
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        let set = String::from_utf8_lossy(&body);
        if let Some(payload) = set.split('.').nth(1)
            && let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)
            && let Ok(claims) = serde_json::from_slice::<Value>(&bytes)
            && let Some(session) = claims["sub_id"]["session"]["id"].as_str()
        {
            arrived.lock().unwrap().entry(session.to_string()).or_insert(at);
        }
        if out.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

fn percentile(v: &[Duration], q: f64) -> Duration {
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sessions: usize = std::env::var("SSF_SESSIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rate: f64 = std::env::var("SSF_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(1000.0);
    let svc = start();
    let base = svc.base.clone();
    let a = agent();

    // The people, as a SCIM inventory.
    let users: Vec<Value> = (0..sessions)
        .map(|i| {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": format!("u{i}"),
            "userName": person(i), "active": true, "emails": [{"value": person(i), "primary": true}]})
        })
        .collect();
    let scim = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": sessions, "Resources": users});
    let (status, body) = post(&a, &format!("{base}/api/v1/inventory?at=2026-01-01T00:00:00Z"), &scim);
    assert_eq!(status, 200, "{body}");

    // Their sessions: each person reads once, in a session of their own.
    let setup = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let base = &base;
            s.spawn(move || {
                let a = agent();
                for i in (c..sessions).step_by(CLIENTS) {
                    let req = json!({"subject": {"type": "user", "id": person(i)}, "action": {"name": "read"},
                        "resource": {"type": "document", "id": "handbook"}, "context": {"session_id": format!("s{i}")}});
                    let (status, body) = post(&a, &format!("{base}/access/v1/evaluation"), &req);
                    assert!(status == 200 && body.contains("\"decision\":true"), "{status} {body}");
                }
            });
        }
    });
    println!("{sessions} sessions opened in {:.1} s", setup.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_millis(500));

    let arrived = Arc::new(Mutex::new(HashMap::new()));
    let port = receiver(arrived.clone());
    let stream = json!({"events_requested": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let (status, body) = post(&a, &format!("{base}/ssf/stream"), &stream);
    assert_eq!(status, 201, "{body}");

    // Compromises at `rate`, each person once, in random order.
    let mut order: Vec<usize> = (0..sessions).collect();
    fastrand::shuffle(&mut order);
    let order = Arc::new(order);
    let next = Arc::new(AtomicUsize::new(0));
    let asked: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let every = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let (base, order, next, asked) = (&base, &order, &next, &asked);
            s.spawn(move || {
                let a = agent();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= order.len() {
                        return;
                    }
                    let due = started + every.mul_f64(k as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let i = order[k];
                    asked.lock().unwrap().insert(format!("s{i}"), Instant::now());
                    let url = format!("{base}/api/v1/principals/user:{}/compromise", person(i));
                    let (status, body) = post(&a, &url, &json!({"reason": "benchmark"}));
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let sent_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrived.lock().unwrap().len() < sessions && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = asked.lock().unwrap();
    let arrived = arrived.lock().unwrap();
    let mut latencies: Vec<Duration> =
        asked.iter().filter_map(|(s, t)| arrived.get(s).map(|r| r.saturating_duration_since(*t))).collect();
    latencies.sort();
    println!(
        "trust changes asked: {} in {:.2} s ({:.0}/s, target {rate:.0}/s); session-revoked received: {}",
        asked.len(),
        sent_in.as_secs_f64(),
        asked.len() as f64 / sent_in.as_secs_f64(),
        latencies.len()
    );
    if latencies.is_empty() {
        println!("no SET arrived");
        return;
    }
    println!(
        "change → SET accepted by the receiver: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}
