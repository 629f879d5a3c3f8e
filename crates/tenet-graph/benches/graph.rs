//! The trust graph at enterprise scale: a generated inventory of 100,000
//! principals, 10,000 roles and about 1,000,000 edges. Measures build time,
//! memory per edge (with history: each later nightly snapshot, `--nights`,
//! changes 1% of the memberships), and `who-can` / `reach` latency (p50, p99)
//! on the current view, beside a baseline measured in the same run (one scan
//! over every edge).
//!
//! `cargo bench -p tenet-graph --bench graph [-- --principals N --roles M --queries Q --nights K]`

use std::time::Instant;

use fastrand::Rng;
use tenet_graph::{OPEN, TrustGraph};
use tenet_model::{
    Condition, Effect, Fact, Matcher, NodeKind, PolicyDocument, PrincipalMatcher, Snapshot, Statement, Timestamp,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

const SERVICES: &[&str] = &[
    "s3",
    "dynamodb",
    "ec2",
    "lambda",
    "sqs",
    "sns",
    "kms",
    "secretsmanager",
    "ssm",
    "logs",
    "cloudwatch",
    "athena",
    "glue",
    "ecs",
    "eks",
    "rds",
    "iam",
    "sts",
    "cloudtrail",
    "config",
];
const VERBS: &[&str] = &["Get", "Put", "List", "Describe", "Delete", "Create", "Update"];
const NOUNS: &[&str] =
    &["Object", "Item", "Instances", "Function", "Queue", "Key", "Secret", "Parameter", "LogEvents", "Table"];

fn account(i: usize) -> String {
    format!("{:012}", 100_000_000_000u64 + (i % 20) as u64)
}

fn resource(r: &mut Rng, svc: &str) -> String {
    format!("arn:aws:{svc}:us-east-1:{}:thing/team-{}/{}", account(r.usize(..20)), r.usize(..300), r.usize(..50))
}

fn statement(r: &mut Rng) -> Statement {
    let svc = SERVICES[r.usize(..SERVICES.len())];
    // Mostly specific grants; a few service-wide, very few power-user shaped.
    let actions = match r.usize(..200) {
        0 => Matcher::Not(vec!["iam:*".into()]),
        1..=4 => Matcher::Only(vec![format!("{svc}:*")]),
        _ => Matcher::Only(
            (0..r.usize(1..4))
                .map(|_| format!("{svc}:{}{}", VERBS[r.usize(..VERBS.len())], NOUNS[r.usize(..NOUNS.len())]))
                .collect(),
        ),
    };
    let resources = if r.usize(..20) == 0 {
        Matcher::Any
    } else {
        Matcher::Only(vec![format!(
            "arn:aws:{svc}:us-east-1:{}:thing/team-{}/*",
            account(r.usize(..20)),
            r.usize(..300)
        )])
    };
    let conditions = if r.usize(..10) == 0 {
        vec![Condition {
            operator: "Bool".into(),
            key: "aws:MultiFactorAuthPresent".into(),
            values: vec!["true".into()],
        }]
    } else {
        vec![]
    };
    Statement {
        sid: None,
        effect: if r.usize(..25) == 0 { Effect::Deny } else { Effect::Allow },
        actions,
        resources,
        principals: None,
        conditions,
    }
}

fn generate(seed: u64, principals: usize, roles: usize) -> Vec<Fact> {
    let mut r = Rng::with_seed(seed);
    let mut facts = Vec::new();
    let users: Vec<String> = (0..principals).map(|i| format!("arn:aws:iam::{}:user/u{i}", account(i))).collect();
    let role_ids: Vec<String> = (0..roles).map(|i| format!("arn:aws:iam::{}:role/r{i}", account(i))).collect();
    let groups: Vec<String> = (0..principals / 50).map(|i| format!("arn:aws:iam::{}:group/g{i}", account(i))).collect();
    let policies: Vec<String> =
        (0..principals / 20).map(|i| format!("arn:aws:iam::{}:policy/p{i}", account(i))).collect();
    let agents: Vec<String> = (0..principals / 20).map(|i| format!("agent:agt-{i}")).collect();
    for u in &users {
        facts.push(Fact::Node { id: u.clone(), kind: NodeKind::HUMAN, name: None });
    }
    for (i, p) in role_ids.iter().enumerate() {
        facts.push(Fact::Node { id: p.clone(), kind: NodeKind::ROLE, name: None });
        let trusted: Vec<String> = (0..r.usize(1..8))
            .map(|_| match r.usize(..6) {
                0 => account(r.usize(..20)),
                1 => role_ids[r.usize(..roles)].clone(),
                _ => users[r.usize(..principals)].clone(),
            })
            .collect();
        facts.push(Fact::Trust {
            role: p.clone(),
            document: PolicyDocument {
                statements: vec![Statement {
                    sid: None,
                    effect: Effect::Allow,
                    actions: Matcher::Only(vec!["sts:AssumeRole".into()]),
                    resources: Matcher::Any,
                    principals: Some(PrincipalMatcher {
                        not: false,
                        anyone: false,
                        aws: trusted,
                        service: vec![],
                        federated: vec![],
                    }),
                    conditions: vec![],
                }],
            },
        });
        for _ in 0..r.usize(2..6) {
            facts.push(Fact::Attached { holder: p.clone(), policy: policies[r.usize(..policies.len())].clone() });
        }
        if i % 7 == 0 {
            let inline = format!("{p}#inline/extra");
            facts.push(Fact::Policy {
                policy: inline.clone(),
                document: PolicyDocument { statements: vec![statement(&mut r)] },
            });
            facts.push(Fact::Attached { holder: p.clone(), policy: inline });
        }
    }
    for g in &groups {
        facts.push(Fact::Node { id: g.clone(), kind: NodeKind::Group, name: None });
        for _ in 0..r.usize(1..4) {
            facts.push(Fact::Attached { holder: g.clone(), policy: policies[r.usize(..policies.len())].clone() });
        }
    }
    for p in &policies {
        facts.push(Fact::Node { id: p.clone(), kind: NodeKind::Policy, name: None });
        facts.push(Fact::Policy {
            policy: p.clone(),
            document: PolicyDocument { statements: (0..r.usize(1..5)).map(|_| statement(&mut r)).collect() },
        });
    }
    for u in &users {
        for _ in 0..r.usize(4..13) {
            facts.push(Fact::Member { member: u.clone(), group: groups[r.usize(..groups.len())].clone() });
        }
        if r.usize(..10) == 0 {
            facts.push(Fact::Attached { holder: u.clone(), policy: policies[r.usize(..policies.len())].clone() });
        }
    }
    for a in &agents {
        facts.push(Fact::Node { id: a.clone(), kind: NodeKind::AGENT, name: None });
        for _ in 0..r.usize(1..4) {
            facts.push(Fact::ActsFor {
                agent: a.clone(),
                person: users[r.usize(..principals)].clone(),
                scope: vec![],
                expires: None,
            });
        }
        facts.push(Fact::Owns { owner: users[r.usize(..principals)].clone(), agent: a.clone() });
        facts.push(Fact::Tool {
            agent: a.clone(),
            tool: format!("tool:aws-mcp/t{}", r.usize(..50)),
            identity: role_ids[r.usize(..roles)].clone(),
        });
    }
    facts
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let principals = arg("--principals", 100_000);
    let roles = arg("--roles", 10_000);
    let queries = arg("--queries", 2_000);
    let nights = arg("--nights", 1);
    let facts = generate(7, principals, roles);
    let t0 = Timestamp::from_unix_seconds(1_790_000_000);
    let snap = Snapshot { source: "bench".into(), scope: "aws:all".into(), collected_at: t0, facts };

    // Each night after: 1% of memberships changed (history), the rest
    // re-asserted unchanged. The next night's inventory is edited in place.
    let mut r = Rng::with_seed(9);
    let mut next = snap.clone();
    let n = next.facts.len();

    let before = rss_bytes();
    let t = Instant::now();
    let mut graph = TrustGraph::new();
    graph.apply_snapshot(&snap, "inventory day 0");
    let build = t.elapsed().as_secs_f64();
    let (mut reimport, mut effect) = (0.0, tenet_graph::SnapshotEffect::default());
    for night in 1..=nights {
        next.collected_at = t0.saturating_add_seconds(86_400 * night as i64);
        for _ in 0..n / 100 {
            let i = r.usize(..n);
            if let Fact::Member { group, .. } = &mut next.facts[i] {
                *group = format!("arn:aws:iam::{}:group/g{}", account(r.usize(..20)), r.usize(..principals / 50));
            }
        }
        let t = Instant::now();
        let e = graph.apply_snapshot(&next, &format!("inventory day {night}"));
        reimport += t.elapsed().as_secs_f64();
        effect.opened += e.opened;
        effect.closed += e.closed;
    }
    reimport /= nights.max(1) as f64;
    let after = rss_bytes();

    let t = Instant::now();
    let view = graph.current();
    let view_build = t.elapsed().as_secs_f64();
    let after_view = rss_bytes();

    // The baseline, measured in this run: one pass over every edge asking
    // whether it holds now, the least any whole-graph answer could cost.
    let mut scans: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let n = graph.edges().iter().filter(|e| e.at(OPEN - 1).is_some()).count();
            std::hint::black_box(n);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    scans.sort_by(f64::total_cmp);
    let scan = scans[scans.len() / 2];
    let edges = graph.edge_count();
    let versions = graph.version_count();
    println!(
        "trust graph benchmark: {principals} principals, {roles} roles, {edges} edges ({versions} versions after {nights} nightly snapshot(s) changing 1% each: {} opened, {} closed)",
        effect.opened, effect.closed
    );
    println!("build from inventory: {build:.2}s ({:.0} edges/s)", edges as f64 / build);
    println!("each later snapshot (1% changed): {reimport:.2}s");
    println!(
        "memory: graph {:.1} MB RSS = {:.0} bytes/edge (with history); heap estimate {:.0} bytes/edge",
        (after - before) as f64 / 1e6,
        (after - before) as f64 / edges as f64,
        graph.heap_bytes() as f64 / edges as f64
    );
    println!("view as of now: {view_build:.2}s, {:.1} MB more", (after_view - after) as f64 / 1e6);

    // The same questions three times on one view: first as it fills its
    // memory of who-becomes walks, then once it holds them (as a server
    // keeping the current view answers), then that again with every reason
    // rendered to JSON as `--json` prints it.
    let who_can_pass = |json: bool| {
        let mut q = Rng::with_seed(11);
        let mut times = Vec::with_capacity(queries);
        let (mut answers, mut bytes, mut paths, mut hops) = (0usize, 0usize, 0usize, 0usize);
        for _ in 0..queries {
            let svc = SERVICES[q.usize(..SERVICES.len())];
            let action = format!("{svc}:{}{}", VERBS[q.usize(..VERBS.len())], NOUNS[q.usize(..NOUNS.len())]);
            let res = resource(&mut q, svc);
            let t = Instant::now();
            let a = view.who_can(&action, &res);
            if json {
                bytes += serde_json::to_vec(&a).expect("serialises").len();
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
            answers += a.len();
            paths += a.iter().map(|p| p.paths.len()).sum::<usize>();
            hops += a.iter().flat_map(|p| &p.paths).map(Vec::len).sum::<usize>();
        }
        times.sort_by(f64::total_cmp);
        (times, answers, bytes, paths, hops)
    };
    let (who, answers, _, paths, hops) = who_can_pass(false);
    let (who_warm, ..) = who_can_pass(false);
    let (who_json, _, bytes, ..) = who_can_pass(true);
    let mut q = Rng::with_seed(12);
    let mut reach = Vec::with_capacity(queries);
    let mut grants = 0usize;
    for _ in 0..queries {
        let p = match q.usize(..10) {
            0 => format!("arn:aws:iam::{}:role/r{}", account(0), q.usize(..roles / 20) * 20),
            1 => format!("agent:agt-{}", q.usize(..principals / 20)),
            _ => format!("arn:aws:iam::{}:user/u{}", account(0), q.usize(..principals / 20) * 20),
        };
        let t = Instant::now();
        let a = view.reach(&p);
        reach.push(t.elapsed().as_secs_f64() * 1e3);
        grants += a.map_or(0, |r| r.grants().count());
    }
    reach.sort_by(f64::total_cmp);
    println!(
        "who-can, 1st pass:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({queries} queries; per answer {:.0} principals, {:.0} paths, {:.0} hops)",
        percentile(&who, 0.5),
        percentile(&who, 0.99),
        who.last().unwrap_or(&0.0),
        answers as f64 / queries as f64,
        paths as f64 / queries as f64,
        hops as f64 / queries as f64
    );
    println!(
        "who-can, 2nd pass:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&who_warm, 0.5),
        percentile(&who_warm, 0.99),
        who_warm.last().unwrap_or(&0.0)
    );
    println!(
        "who-can, 2nd + JSON: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.0} KB per answer)",
        percentile(&who_json, 0.5),
        percentile(&who_json, 0.99),
        who_json.last().unwrap_or(&0.0),
        bytes as f64 / queries as f64 / 1e3
    );
    println!(
        "baseline: one scan over every edge {scan:.2} ms; who-can p99 = {:.2} scans (1st pass), reach p99 = {:.2} scans",
        percentile(&who, 0.99) / scan,
        percentile(&reach, 0.99) / scan
    );
    println!(
        "reach:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({queries} queries, {:.0} grants per answer)",
        percentile(&reach, 0.5),
        percentile(&reach, 0.99),
        reach.last().unwrap_or(&0.0),
        grants as f64 / queries as f64
    );
}
