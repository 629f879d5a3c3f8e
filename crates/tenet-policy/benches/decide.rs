//! One decision in process: Tenet's full path (AuthZEN request → Cedar
//! entities gathered and merged → `tenet` trust record in the context →
//! Cedar → explanation) against Cedar's own `Authorizer::is_authorized` on
//! the same policies and entities with the request prebuilt, in the same
//! run. The 40 requests of the AuthZEN todo interop suite, round-robin.
//!
//! `cargo bench -p tenet-policy --bench decide [-- ROUNDS]`

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Entities, Entity, EntityUid, Request, RestrictedExpression};
use serde_json::Value;
use tenet_policy::authzen::{self, Action, Entity as AzEntity, Evaluation};
use tenet_policy::signals::{Assurance, Delegation, Novelty, OpenFindings, Risk};
use tenet_policy::{KnownEntity, PolicyBundle, SourceFile, TrustSignals, TrustSource};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every signal available, looked up per subject as the store-backed source does.
struct FullTrust {
    by_subject: HashMap<String, TrustSignals>,
}

impl TrustSource for FullTrust {
    fn signals(&self, subject: &AzEntity, _: &Action, _: &AzEntity) -> TrustSignals {
        let key = format!("{}:{}", subject.kind, subject.id);
        self.by_subject.get(&key).cloned().unwrap_or_default()
    }
    fn entity(&self, _: &str, _: &str) -> Option<KnownEntity> {
        None
    }
    fn candidates(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

fn full_signals(id: &str) -> TrustSignals {
    TrustSignals {
        risk: Some(Risk { score: 12, level: "low".into() }),
        delegation: Some(Delegation {
            depth: 1,
            chain: vec![format!("agent:{id}"), "user:rick@the-citadel.com".into()],
            origin: Some("user:rick@the-citadel.com".into()),
            via_agent: Some(format!("agent:{id}")),
            origin_risk: Some(5),
        }),
        novelty: Some(Novelty { principal_before: true, peer_group_before: true }),
        findings: Some(OpenFindings { open: 0, max_severity: "none".into() }),
        assurance: Some(Assurance {
            method: "okta:user.authentication.auth_via_mfa".into(),
            mfa: true,
            at: "2026-11-27T08:00:00Z".into(),
        }),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("tests/authzen/todo");
    let files = std::fs::read_dir(&dir)
        .expect("todo policies")
        .map(|e| e.unwrap().path())
        .map(|p| SourceFile {
            name: p.file_name().unwrap().to_string_lossy().into(),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect();
    let bundle = PolicyBundle::load(files).expect("todo policies load");
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("../shared/specs/authzen/todo/decisions-authorization-api-1_0-01.json"))
            .unwrap(),
    )
    .unwrap();
    let cases: Vec<(Evaluation, bool, Vec<u8>)> = doc["evaluation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                authzen::parse_evaluation(&c["request"]).unwrap(),
                c["expected"].as_bool().unwrap(),
                serde_json::to_vec(&c["request"]).unwrap(),
            )
        })
        .collect();
    let trust = FullTrust {
        by_subject: cases
            .iter()
            .map(|(e, _, _)| (format!("{}:{}", e.subject.kind, e.subject.id), full_signals(&e.subject.id)))
            .collect(),
    };

    // Cedar alone: the same policy set; the request, its context (the same
    // trust record) and its entities (the directory's plus the request's
    // resource with its properties) built before timing.
    let (policies, base) = bundle.cedar_parts();
    let raw: Vec<(Request, Entities)> = cases
        .iter()
        .map(|(e, _, _)| {
            let uid = |t: &str, id: &str| tenet_policy::values::uid(t, id, "").unwrap();
            let (p, a, r) = (
                uid(&e.subject.kind, &e.subject.id),
                uid("Action", &e.action.name),
                uid(&e.resource.kind, &e.resource.id),
            );
            let attrs: HashMap<String, RestrictedExpression> = e
                .resource
                .properties
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), tenet_policy::values::to_cedar(v, "").ok()??)))
                .collect();
            let resource = Entity::new(r.clone(), attrs, Default::default()).unwrap();
            let mut all: Vec<Entity> = base.iter().filter(|x| x.uid() != r).cloned().collect();
            all.push(resource);
            let entities = Entities::from_entities(all, None).unwrap();
            let ctx = Context::from_pairs([("tenet".to_string(), full_signals(&e.subject.id).to_cedar())]).unwrap();
            (Request::new(p, a, r, ctx, None).unwrap(), entities)
        })
        .collect();
    let _: Option<EntityUid> = None;

    // Both paths agree with the suite before anything is timed.
    for ((e, want, _), (req, ents)) in cases.iter().zip(&raw) {
        let ours = bundle.decide(e, &trust).unwrap().allowed;
        let cedar = Authorizer::new().is_authorized(req, policies, ents).decision() == cedar_policy::Decision::Allow;
        assert_eq!((ours, cedar), (*want, *want), "{e:?}");
    }

    let authorizer = Authorizer::new();
    let mut t_raw = Vec::with_capacity(rounds * cases.len());
    let mut t_ours = Vec::with_capacity(rounds * cases.len());
    let mut t_json = Vec::with_capacity(rounds * cases.len());
    // Interleaved, so drift in the machine's load hits all three alike.
    for _ in 0..rounds {
        for (i, (e, _, body)) in cases.iter().enumerate() {
            let s = Instant::now();
            std::hint::black_box(authorizer.is_authorized(&raw[i].0, policies, &raw[i].1));
            t_raw.push(s.elapsed().as_nanos() as u64);
            let s = Instant::now();
            std::hint::black_box(bundle.decide(e, &trust).unwrap());
            t_ours.push(s.elapsed().as_nanos() as u64);
            let s = Instant::now();
            let v: Value = serde_json::from_slice(body).unwrap();
            let e = authzen::parse_evaluation(&v).unwrap();
            std::hint::black_box(bundle.decide(&e, &trust).unwrap());
            t_json.push(s.elapsed().as_nanos() as u64);
        }
    }
    for t in [&mut t_raw, &mut t_ours, &mut t_json] {
        t.sort_unstable();
    }
    let row = |name: &str, t: &[u64]| {
        let mean = t.iter().sum::<u64>() as f64 / t.len() as f64;
        println!(
            "{name:<44} {:>9.2} {:>9.2} {:>9.2} {:>8.2}",
            percentile(t, 0.5) as f64 / 1e3,
            percentile(t, 0.99) as f64 / 1e3,
            mean / 1e3,
            percentile(t, 0.5) as f64 / percentile(&t_raw, 0.5) as f64
        );
    };
    println!(
        "{} decisions per path, todo interop suite ({} requests), {} policies",
        t_raw.len(),
        cases.len(),
        bundle.policy_count()
    );
    println!("{:<44} {:>9} {:>9} {:>9} {:>8}", "path", "p50 µs", "p99 µs", "mean µs", "vs raw");
    row("Cedar is_authorized, request prebuilt (raw)", &t_raw);
    row("Tenet decide, full trust context", &t_ours);
    row("Tenet parse JSON + decide", &t_json);
}
