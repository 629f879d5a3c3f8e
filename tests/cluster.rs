//! Three Tenet nodes on loopback sharing a private PostgreSQL and a
//! private NATS JetStream (both from the machine's binaries; skipped
//! loudly where they are missing, a failure under
//! `TENET_REQUIRE_EXTERNAL=1`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::console;
use common::on_store as tenet;

/// `tenet serve` as node `name` of the cluster on `store` and `bus`.
fn node(data: &Path, store: &str, bus: &str, name: &str) -> common::Server {
    node_of(data, store, bus, name, "6")
}

/// [`node`] of a cluster of `partitions` partitions.
fn node_of(data: &Path, store: &str, bus: &str, name: &str, partitions: &str) -> common::Server {
    let mut cmd = common::tenet(data);
    cmd.env("TENET_STORE", store)
        .args(["serve", "--addr", "127.0.0.1:0", "--bus", bus, "--node-id", name, "--partitions", partitions])
        .arg("--policies")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"));
    common::Server::spawn(cmd)
}

fn status(data: &Path, store: &str, bus: &str) -> Value {
    serde_json::from_str(&tenet(data, Some(store), &["cluster", "status", "--bus", bus, "--json"])).unwrap()
}

/// Polls `status` until `done` holds of it, for at most `limit`; the status then.
fn until(data: &Path, store: &str, bus: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let s = status(data, store, bus);
        if done(&s) {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn owners(s: &Value) -> Vec<Option<String>> {
    s["partitions"].as_array().unwrap().iter().map(|p| p["owner"].as_str().map(str::to_string)).collect()
}

fn alive(s: &Value) -> Vec<String> {
    let nodes = s["nodes"].as_array().unwrap();
    nodes.iter().filter(|n| n["alive"] == true).map(|n| n["node"].as_str().unwrap().to_string()).collect()
}

/// The simulated enterprise's telemetry files.
fn telemetry(dir: &Path) -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "5", "--days", "4", "--humans", "10", "--agents", "2", "--scenario", "all"])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "simulate: {}", String::from_utf8_lossy(&out.stderr));
    let files = tenet_testkit::bodies::telemetry_files(dir);
    assert!(files.len() > 10, "{} telemetry files", files.len());
    files
}

use tenet_testkit::bodies::{read, time_ordered as time_ordered_bodies};

/// The same time-ordered bodies to a three-node cluster of `partitions`
/// partitions (intake on a node that does not own partition 0, whose owner
/// is SIGKILLed halfway) and to one embedded service; every finding of
/// each, by id, once all is analysed and written.
fn findings_with_an_owner_killed_mid_flow(test: &str, partitions: &str) -> Option<(Vec<Value>, Vec<Value>)> {
    let pg = tenet_testkit::postgres::server(test)?;
    let nats = tenet_testkit::nats::Server::start(test)?;
    let (store, bus) = (pg.fresh_database(), nats.url());
    let dir = tempfile::tempdir().unwrap();
    let bodies = time_ordered_bodies(&telemetry(&dir.path().join("sim")), 200);
    let datas: Vec<PathBuf> = ["a", "b", "c", "embedded"].iter().map(|n| dir.path().join(n)).collect();
    let mut nodes: Vec<Option<common::Server>> =
        ["a", "b", "c"].iter().zip(&datas).map(|(n, d)| Some(node_of(d, &store, &bus, n, partitions))).collect();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies");
    let embedded = common::Server::start(&datas[3], &["--policies", policies.to_str().unwrap()]);
    let cli = dir.path().join("cli");
    let owned = |s: &Value| owners(s).iter().all(Option::is_some);
    let first = until(&cli, &store, &bus, Duration::from_secs(20), owned).unwrap();
    let first = owners(&first)[0].clone().unwrap();
    let index = |n: &str| ["a", "b", "c"].iter().position(|x| *x == n).unwrap();
    let intake = ["a", "b", "c"].iter().position(|n| *n != first).unwrap();
    for (i, body) in bodies.iter().enumerate() {
        if i == bodies.len() / 2 {
            nodes[index(&first)].take().unwrap().kill();
        }
        let answer = nodes[intake].as_ref().unwrap().post("/api/v1/events", Some("application/json"), None, body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = embedded.post("/api/v1/events", Some("application/json"), None, body);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let drained = until(&cli, &store, &bus, Duration::from_secs(60), |s| {
        !alive(s).contains(&first)
            && s["partitions"].as_array().unwrap().iter().all(|p| p["lag"] == 0 && !p["owner"].is_null())
    });
    assert!(drained.is_some(), "the others own every partition and have read it all: {}", status(&cli, &store, &bus));
    // Stopped, so the last findings are written.
    drop(nodes);
    embedded.stop();
    let findings = |data: &Path, store: Option<&str>| -> Vec<Value> {
        let mut v: Vec<Value> = tenet(data, store, &["findings", "--all", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        v
    };
    Some((findings(&cli, Some(&store)), findings(&datas[3], None)))
}

#[test]
fn a_partitions_owner_killed_mid_flow_leaves_the_same_findings_as_one_embedded_service() {
    // One partition: the whole analysis is owned by one node at a time, and
    // moves when it dies.
    let test = "a_partitions_owner_killed_mid_flow_leaves_the_same_findings_as_one_embedded_service";
    let Some((in_cluster, alone)) = findings_with_an_owner_killed_mid_flow(test, "1") else { return };
    assert!(alone.len() > 10, "{} findings", alone.len());
    assert_eq!(in_cluster.len(), alone.len());
    for (a, b) in in_cluster.iter().zip(&alone) {
        if a != b {
            for (k, v) in a.as_object().unwrap() {
                if b[k] != *v {
                    eprintln!("{} {k}: in the cluster {v}\n  alone {}", a["id"], b[k]);
                }
            }
        }
    }
    for (a, b) in in_cluster.iter().zip(&alone) {
        assert_eq!(a, b, "the same finding, field for field");
    }
}

#[test]
fn six_partitions_analysed_by_three_nodes_raise_the_alerts_one_embedded_service_raises() {
    // Each partition's learner sees its principals' events; peer groups,
    // trust changes and credential chains cross partitions through the
    // trust stream and the store. What they record beside alerts may
    // differ a little; the alerts may not.
    let test = "six_partitions_analysed_by_three_nodes_raise_the_alerts_one_embedded_service_raises";
    let Some((in_cluster, alone)) = findings_with_an_owner_killed_mid_flow(test, "6") else { return };
    let alerts = |found: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = found
            .iter()
            .filter(|f| f["alert"] == true)
            .map(|f| format!("{} {} {}", f["principal"], f["category"], f["severity"]))
            .collect();
        v.sort();
        v
    };
    eprintln!("findings: {} in the cluster, {} alone", in_cluster.len(), alone.len());
    assert!(!alerts(&alone).is_empty());
    assert_eq!(alerts(&in_cluster), alerts(&alone), "the same alerts, on the same principals, as severe");
    let (c, a) = (in_cluster.len() as f64, alone.len() as f64);
    assert!((c - a).abs() <= 0.15 * a, "about as many findings recorded: {c} against {a}");
}

#[test]
fn a_killed_nodes_partitions_move_to_the_others_and_every_acknowledged_event_is_stored_once() {
    let test = "a_killed_nodes_partitions_move_to_the_others_and_every_acknowledged_event_is_stored_once";
    let Some(pg) = tenet_testkit::postgres::server(test) else { return };
    let Some(nats) = tenet_testkit::nats::Server::start(test) else { return };
    let (store, bus) = (pg.fresh_database(), nats.url());
    let dir = tempfile::tempdir().unwrap();
    let files = telemetry(&dir.path().join("sim"));
    let datas: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.path().join(n)).collect();
    let a = node(&datas[0], &store, &bus, "a");
    let mut b = Some(node(&datas[1], &store, &bus, "b"));
    let c = node(&datas[2], &store, &bus, "c");
    let cli = dir.path().join("cli");
    // The first node takes every partition; each node that joins takes
    // its share from those beyond the others' shares.
    let share = |s: &Value, n: &str| owners(s).iter().filter(|o| o.as_deref() == Some(n)).count();
    let spread = until(&cli, &store, &bus, Duration::from_secs(20), |s| {
        alive(s).len() == 3 && ["a", "b", "c"].iter().all(|n| share(s, n) == 2)
    });
    assert!(spread.is_some(), "three nodes own two partitions each: {}", status(&cli, &store, &bus));

    // Intake on node a, while node b is killed halfway through; the
    // partitions' moves are watched while the second half flows.
    let post = |files: &[PathBuf]| -> u64 {
        let mut acknowledged = 0;
        for f in files {
            let answer = a.post("/api/v1/events", Some("application/json"), None, &read(f));
            assert_eq!(answer.status, 200, "{}: {}", f.display(), answer.body);
            let summary: Value = serde_json::from_str(&answer.body).unwrap();
            acknowledged += summary["stored"].as_u64().unwrap() + summary["duplicates"].as_u64().unwrap();
        }
        acknowledged
    };
    let (first, second) = files.split_at(files.len() / 2);
    let mut acknowledged = post(first);
    // SIGKILL: no chance to hand anything over.
    b.take().unwrap().kill();
    let killed = Instant::now();
    let moved = std::thread::scope(|scope| {
        let flowing = scope.spawn(|| post(second));
        let moved = until(&cli, &store, &bus, Duration::from_secs(30), |s| {
            !alive(s).contains(&"b".to_string()) && owners(s).iter().all(|o| matches!(o.as_deref(), Some("a" | "c")))
        });
        let failover = killed.elapsed();
        acknowledged += flowing.join().unwrap();
        let moved = moved.expect("the killed node's partitions move to the others");
        eprintln!("failover: the killed node's partitions owned again {failover:?} after the kill");
        assert!(failover < Duration::from_secs(10), "within 10 s: {failover:?}");
        moved
    });
    for n in ["a", "c"] {
        assert_eq!(owners(&moved).iter().filter(|o| o.as_deref() == Some(n)).count(), 3, "{moved}");
    }
    let drained = until(&cli, &store, &bus, Duration::from_secs(60), |s| {
        s["partitions"].as_array().unwrap().iter().all(|p| p["lag"] == 0)
    });
    assert!(drained.is_some(), "every partition's events are read and acknowledged");

    // Every acknowledged event is stored, once; the same as one ingest of
    // the same files by a single process (on PostgreSQL too, to compare
    // what the store counts of them).
    let embedded = dir.path().join("embedded");
    let reference = pg.fresh_database();
    let args: Vec<&str> = std::iter::once("ingest").chain(files.iter().map(|f| f.to_str().unwrap())).collect();
    tenet(&embedded, Some(&reference), &args);
    let ids = |data: &Path, store: Option<&str>| -> Vec<String> {
        let mut ids: Vec<String> = tenet(data, store, &["events", "--json"])
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                // Each with who acted, as linked to who issued its credential.
                let chain: Vec<&str> =
                    v["chain"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str()).collect();
                format!(
                    "{}@{} by {} via {}",
                    v["id"].as_str().unwrap(),
                    v["time"].as_str().unwrap(),
                    v["actor"]["id"],
                    chain.join(",")
                )
            })
            .collect();
        ids.sort();
        ids
    };
    let in_cluster = ids(&cli, Some(&store));
    let mut distinct: Vec<&str> = in_cluster.iter().map(|l| l.split(' ').next().unwrap()).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), in_cluster.len(), "no event stored twice");
    assert!(
        in_cluster == ids(&embedded, Some(&reference)),
        "every event stored, and linked to its credential's issuer, as one ingest does"
    );
    assert!(acknowledged as usize >= in_cluster.len(), "{acknowledged} acknowledged, {} stored", in_cluster.len());

    // What the events show in use is counted once each too, as the nodes
    // stored them (what `tenet unused` and `reach` read), not at a restart.
    let used = |url: &str| {
        let db = url.rsplit('/').next().unwrap();
        pg.psql_on(
            db,
            "SELECT p.name, a.name, coalesce(r.name, ''), u.first, u.last, u.count FROM observed_use u
             JOIN names p ON p.id = u.principal JOIN names a ON a.id = u.action LEFT JOIN names r ON r.id = u.resource
             ORDER BY 1, 2, 3",
        )
        .unwrap()
    };
    let theirs = used(&store);
    // The single process counts when the graph is first read.
    tenet(&embedded, Some(&reference), &["unused", "--days", "1", "--json"]);
    let ours = used(&reference);
    assert!(ours.lines().count() > 100, "the reference counted use: {ours}");
    let only = |a: &str, b: &str| -> Vec<String> {
        let b: std::collections::BTreeSet<&str> = b.lines().collect();
        a.lines().filter(|l| !b.contains(l)).take(8).map(str::to_string).collect()
    };
    assert!(
        theirs == ours,
        "the cluster counted the same use as one ingest: {} against {} rows; only the cluster's: {:#?}; only the ingest's: {:#?}",
        theirs.lines().count(),
        ours.lines().count(),
        only(&theirs, &ours),
        only(&ours, &theirs)
    );
    // Reading the graph from the command line (which first counts what
    // was not yet) finds nothing left to count.
    tenet(&cli, Some(&store), &["unused", "--days", "1", "--json"]);
    assert!(used(&store) == ours, "counted once, whoever reads the graph");
    drop((a, c));
}

/// An explained decision for `principal` reading a document, from `node`.
fn decide(node: &common::Server, principal: &str, token: Option<&str>) -> common::Answer {
    let (t, id) = principal.split_once(':').unwrap();
    let body = serde_json::json!({
        "subject": {"type": t, "id": id},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "q3-forecast"}
    });
    node.call("POST", "/access/v1/evaluation?explain=true", token, Some(&body))
}

/// Whether `node` decides knowing that `arn` read an S3 object before.
fn read_before(node: &common::Server, arn: &str) -> bool {
    let body = serde_json::json!({
        "subject": {"type": "aws", "id": arn},
        "action": {"name": "s3:GetObject"},
        "resource": {"type": "AWS::S3::Object", "id": "arn:aws:s3:::cluster-test/report.csv"}
    });
    let d = node.call("POST", "/access/v1/evaluation?explain=true", None, Some(&body));
    assert_eq!(d.status, 200, "{}", d.body);
    let d: Value = serde_json::from_str(&d.body).unwrap();
    d["context"]["signals"]["novelty"]["principal_before"] == true
}

/// One CloudTrail record: `arn`, never seen before, reads an S3 object now.
fn newcomer_reads(arn: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::to_string(&serde_json::json!({"Records": [{
        "eventVersion": "1.08",
        "eventTime": now,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.1.20",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333", "userName": "cluster-newcomer", "principalId": "AIDACLUSTERNEWCOMER"},
        "requestParameters": {"bucketName": "cluster-test", "key": "report.csv"},
        "eventID": "5d1f6f0e-cluster-newcomer-1",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    }]}))
    .unwrap()
}

fn revision(a: &common::Answer) -> i64 {
    a.headers.iter().find(|(n, _)| n == "tenet-revision").map(|(_, v)| v.parse().unwrap()).expect("a revision")
}

/// Polls `node`'s decision for `principal` until its risk is `score`; how long that took.
fn risk_seen(node: &common::Server, principal: &str, score: &Value, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let d = decide(node, principal, None);
        assert_eq!(d.status, 200, "{}", d.body);
        let v: Value = serde_json::from_str(&d.body).unwrap();
        if v["context"]["signals"]["risk"]["score"] == *score {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn what_one_node_takes_in_and_decides_reaches_every_nodes_decisions_and_a_key_revoked_on_one_is_refused_by_all() {
    let test =
        "what_one_node_takes_in_and_decides_reaches_every_nodes_decisions_and_a_key_revoked_on_one_is_refused_by_all";
    let Some(pg) = tenet_testkit::postgres::server(test) else { return };
    let Some(nats) = tenet_testkit::nats::Server::start(test) else { return };
    let (store, bus) = (pg.fresh_database(), nats.url());
    let dir = tempfile::tempdir().unwrap();
    let bodies = time_ordered_bodies(&telemetry(&dir.path().join("sim")), 200);
    let nodes: Vec<common::Server> =
        ["a", "b", "c"].iter().map(|n| node(&dir.path().join(n), &store, &bus, n)).collect();
    let cli = dir.path().join("cli");
    until(&cli, &store, &bus, Duration::from_secs(20), |s| owners(s).iter().all(Option::is_some)).unwrap();
    let before = revision(&decide(&nodes[2], "user:nobody", None));

    // Intake on a; the partitions' owners analyse; c decides with the risk
    // they found, whoever found it.
    for body in &bodies {
        let answer = nodes[0].post("/api/v1/events", Some("application/json"), None, body);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let drained = until(&cli, &store, &bus, Duration::from_secs(60), |s| {
        s["partitions"].as_array().unwrap().iter().all(|p| p["lag"] == 0)
    });
    assert!(drained.is_some(), "every partition read");
    let risk: Vec<Value> =
        tenet(&cli, Some(&store), &["risk", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let top = risk.iter().max_by_key(|r| r["score"].as_u64().unwrap()).expect("risk was found");
    assert!(top["score"].as_u64().unwrap() > 0, "{top}");
    let principal = top["principal"].as_str().unwrap();
    for n in &nodes {
        let took = risk_seen(n, principal, &top["score"], Duration::from_secs(10));
        assert!(took.is_some(), "{} decides with the risk stored for {principal}", n.base());
    }
    // What the owners' learners know (novelty, authentication) reaches
    // every node too, as they save it.
    for n in &nodes {
        let knows = eventually(Duration::from_secs(30), || {
            let d: Value = serde_json::from_str(&decide(n, principal, None).body).unwrap();
            d["context"]["signals"]["novelty"]["available"] == true
        });
        assert!(knows, "{} knows what analysis learned of {principal}", n.base());
    }
    // What one event teaches its partition's owner reaches every node's
    // decisions within a second of the owner's own.
    let newcomer = "arn:aws:iam::111122223333:user/cluster-newcomer";
    assert!(nodes.iter().all(|n| !read_before(n, newcomer)), "nobody knows the newcomer yet");
    let answer = nodes[0].post("/api/v1/events", Some("application/json"), None, &newcomer_reads(newcomer));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let start = Instant::now();
    let mut learned: Vec<Option<Duration>> = vec![None; nodes.len()];
    while learned.iter().any(Option::is_none) && start.elapsed() < Duration::from_secs(20) {
        for (i, n) in nodes.iter().enumerate() {
            if learned[i].is_none() && read_before(n, newcomer) {
                learned[i] = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("a newcomer's first read known by the nodes after {learned:?} (from intake on a)");
    let learned: Vec<Duration> = learned.into_iter().map(|l| l.expect("every node learns of the read")).collect();
    let spread = *learned.iter().max().unwrap() - *learned.iter().min().unwrap();
    assert!(spread < Duration::from_secs(1), "known everywhere within 1 s of the first node: {learned:?}");

    // The console works on any node: the same findings, evidence and
    // principals; a person's decision on a finding, taken in one node's
    // console, is a trust change every node's console shows.
    let open: Vec<Value> = tenet(&cli, Some(&store), &["findings", "--json", "--status", "open"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finding = open.iter().find(|f| f["alert"] == true).or(open.first()).expect("an open finding");
    let (id, who) = (finding["id"].as_str().unwrap(), finding["principal"].as_str().unwrap());
    let encoded: String = form_urlencoded::byte_serialize(who.as_bytes()).collect();
    for n in &nodes {
        let overview = console::get(n, "/", None);
        assert!(overview.status == 200 && overview.body.contains("Trust posture"), "{}: {}", n.base(), overview.body);
        let list = console::get(n, "/findings?status=open", None);
        assert!(list.body.contains(&format!("/findings/{id}")), "{} lists {id}", n.base());
        let page = console::get(n, &format!("/findings/{id}"), None);
        assert!(page.status == 200 && page.body.contains("Evidence by behaviour"), "{}: {}", n.base(), page.body);
        let card = console::get(n, &format!("/principals/{encoded}"), None);
        assert!(card.status == 200 && card.body.contains(who), "{} shows {who}: {}", n.base(), card.body);
    }
    let page = console::get(&nodes[2], &format!("/findings/{id}"), None);
    let form = [("status", "acknowledged"), ("reason", "seen on c"), ("csrf", &console::csrf_of(&page.body))];
    let done = console::post_form(&nodes[2], &format!("/findings/{id}/status"), None, &form);
    assert_eq!(done.status, 303, "{}", done.body);
    let stored: Value = serde_json::from_str(&tenet(&cli, Some(&store), &["finding", id, "--json"])).unwrap();
    assert_eq!(stored["status"], "acknowledged");
    let said = format!("finding {id} became acknowledged");
    for n in &nodes {
        let shown = eventually(Duration::from_secs(10), || console::get(n, "/signals", None).body.contains(&said));
        assert!(shown, "{}'s console lists the decision made on c", n.base());
        let page = console::get(n, &format!("/findings/{id}"), None);
        assert!(page.body.contains("seen on c"), "{} shows the decision's reason", n.base());
    }

    let after = revision(&decide(&nodes[2], principal, None));
    assert!(after > before, "decisions report the revision they used: {before} then {after}");

    // A verdict recorded on b reaches a's and c's decisions.
    let calm = risk.iter().find(|r| r["score"] == 0 && r["principal"].as_str().unwrap().starts_with("user:"));
    let calm = calm.map_or("user:leo.vargas@acme.example", |r| r["principal"].as_str().unwrap());
    let recorded = nodes[1].call(
        "POST",
        &format!("/api/v1/principals/{calm}/compromise"),
        None,
        Some(&serde_json::json!({"reason": "cluster test"})),
    );
    assert_eq!(recorded.status, 200, "{}", recorded.body);
    for n in [&nodes[0], &nodes[2]] {
        // Milliseconds when the machine is free (see the benchmark); the
        // bound leaves room for the other cluster tests running beside.
        let took = risk_seen(n, calm, &serde_json::json!(100), Duration::from_secs(10));
        let took = took.unwrap_or_else(|| {
            let (theirs, b) = (decide(n, calm, None), decide(&nodes[1], calm, None));
            panic!(
                "{} sees the verdict made on b; it decides with {} at revision {}, b with {} at revision {}",
                n.base(),
                serde_json::from_str::<Value>(&theirs.body).unwrap()["context"]["signals"]["risk"],
                revision(&theirs),
                serde_json::from_str::<Value>(&b.body).unwrap()["context"]["signals"]["risk"],
                revision(&b)
            )
        });
        eprintln!("a verdict on b reached {}'s decisions after {took:?}", n.base());
    }

    // A key created anywhere is needed everywhere; revoked, refused everywhere.
    let created = tenet(&cli, Some(&store), &["key", "create", "ops", "--scopes", "decide,read"]);
    let token = created.lines().last().unwrap().trim().to_string();
    let refused_everywhere = |token: Option<&str>, limit: Duration| {
        let start = Instant::now();
        while start.elapsed() < limit {
            if nodes.iter().all(|n| decide(n, "user:nobody", token).status == 401) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    };
    assert!(refused_everywhere(None, Duration::from_secs(5)).is_some(), "with a key, no node decides without one");
    assert!(nodes.iter().all(|n| decide(n, "user:nobody", Some(&token)).status == 200));
    tenet(&cli, Some(&store), &["key", "revoke", "ops"]);
    let took =
        refused_everywhere(Some(&token), Duration::from_secs(5)).expect("the revoked key is refused by every node");
    eprintln!("a revoked key refused by every node after {took:?}");

    // Every node logged its decisions in the one chain, which verifies.
    drop(nodes);
    let verified = tenet(&cli, Some(&store), &["audit", "verify"]);
    assert!(verified.starts_with("intact: "), "{verified}");
}

/// Polls `f` every 100 ms until it holds, for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn stale(a: &common::Answer) -> bool {
    a.headers.iter().any(|(n, _)| n == "tenet-stale-seconds")
}

#[test]
fn nats_and_postgresql_restarts_refuse_intake_with_retry_after_mark_decisions_stale_and_are_recovered_from() {
    let test =
        "nats_and_postgresql_restarts_refuse_intake_with_retry_after_mark_decisions_stale_and_are_recovered_from";
    let Some(pg) = tenet_testkit::postgres::Server::start(test) else { return };
    let Some(nats) = tenet_testkit::nats::Server::start(test) else { return };
    let (store, bus) = (pg.fresh_database(), nats.url());
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let mut cmd = common::tenet(&dir.path().join(name));
        cmd.env("TENET_STORE", &store)
            .args(["serve", "--addr", "127.0.0.1:0", "--bus", &bus, "--node-id", name, "--partitions", "4"])
            .args(["--stale-after-ms", "1000", "--policies"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"));
        common::Server::spawn(cmd)
    };
    let (a, b) = (start("a"), start("b"));
    let cli = dir.path().join("cli");
    let stratus = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../shared/data/cloudtrail/stratus-red-team/{name}.json"));
        std::fs::read_to_string(path).unwrap()
    };
    let send =
        |node: &common::Server, name: &str| node.post("/api/v1/events", Some("application/json"), None, &stratus(name));
    let mut stored = 0;
    let first = send(&a, "aws.persistence.iam-create-admin-user");
    assert_eq!(first.status, 200, "{}", first.body);
    stored += first.json()["stored"].as_u64().unwrap();
    assert!(!stale(&decide(&b, "user:alice", None)));

    for (engine, down, up) in [
        ("NATS", Box::new(|| nats.stop()) as Box<dyn Fn()>, Box::new(|| nats.start_again()) as Box<dyn Fn()>),
        ("PostgreSQL", Box::new(|| pg.stop()), Box::new(|| pg.start_again())),
    ] {
        down();
        let refused = |node: &common::Server| {
            let r = send(node, "aws.defense-evasion.cloudtrail-stop");
            r.status == 503 && r.headers.iter().any(|(k, _)| k == "retry-after")
        };
        assert!(
            eventually(Duration::from_secs(10), || refused(&a) && refused(&b)),
            "{engine} down: intake refused, 503 with Retry-After"
        );
        let decided = decide(&b, "user:alice", None);
        assert_eq!(decided.status, 200, "{engine} down: decisions served from live state: {}", decided.body);
        if engine == "NATS" {
            // Nothing of the others' changes can come: after the configured age, said so.
            assert!(eventually(Duration::from_secs(5), || stale(&decide(&a, "user:alice", None))), "marked stale");
        }
        up();
        let mut last = None;
        assert!(
            eventually(Duration::from_secs(20), || {
                let r = send(&a, "aws.defense-evasion.cloudtrail-stop");
                let ok = r.status == 200;
                last = Some(r);
                ok
            }),
            "{engine} back: intake recovered by itself: {:?}",
            last.map(|r| r.body)
        );
        stored += last.unwrap().json()["stored"].as_u64().unwrap();
        assert!(
            eventually(Duration::from_secs(5), || !stale(&decide(&b, "user:alice", None))),
            "{engine} back: fresh again"
        );
    }
    // Every event acknowledged is stored once the partitions are read.
    let done = until(&cli, &store, &bus, Duration::from_secs(30), |s| {
        s["partitions"].as_array().unwrap().iter().all(|p| p["lag"] == 0 && !p["owner"].is_null())
    });
    assert!(done.is_some(), "every partition owned and read: {}", status(&cli, &store, &bus));
    let events = tenet(&cli, Some(&store), &["events", "--json"]).lines().count() as u64;
    assert_eq!(events, stored, "every acknowledged event stored, none twice");
    drop((a, b));
}

#[test]
fn one_node_transmits_each_trust_change_once_as_a_set_whichever_node_made_it_and_another_takes_over_with_the_same_key()
{
    let test = "one_node_transmits_each_trust_change_once_as_a_set_whichever_node_made_it_and_another_takes_over_with_the_same_key";
    if !common::ssf::pyjwt() {
        return;
    }
    let Some(pg) = tenet_testkit::postgres::server(test) else { return };
    let Some(nats) = tenet_testkit::nats::Server::start(test) else { return };
    let (store, bus) = (pg.fresh_database(), nats.url());
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("cli");
    let issuer = "https://tenet.cluster.example";
    let config = dir.path().join("serve.yaml");
    std::fs::write(&config, format!("ssf:\n  issuer: {issuer}\n  min_verification_interval: 1\n")).unwrap();
    let created = tenet(&cli, Some(&store), &["key", "create", "ops", "--scopes", "ssf,admin,ingest,read,decide"]);
    let token = created.lines().last().unwrap().trim().to_string();
    let start = |name: &str| {
        let mut cmd = common::tenet(&dir.path().join(name));
        cmd.env("TENET_STORE", &store)
            .args(["serve", "--addr", "127.0.0.1:0", "--bus", &bus, "--node-id", name, "--partitions", "2"])
            .arg("--config")
            .arg(&config)
            .arg("--policies")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies"));
        common::Server::spawn(cmd)
    };
    let mut nodes = [Some(start("a")), Some(start("b"))];
    let ready = until(&cli, &store, &bus, Duration::from_secs(20), |s| {
        !s["transmitter"].is_null() && owners(s).iter().all(Option::is_some)
    })
    .expect("a transmitter and every partition owned");
    let (transmitter, other) = if ready["transmitter"] == "a" { (0, 1) } else { (1, 0) };
    let other_name = if other == 0 { "a" } else { "b" };
    let (on_transmitter, other) = (nodes[transmitter].as_ref().unwrap(), nodes[other].as_ref().unwrap());
    let people = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 3,
        "Resources": [
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "ana@example.com",
             "active": true, "emails": [{"value": "ana@example.com", "primary": true}]},
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u2", "userName": "bo@example.com",
             "active": true, "emails": [{"value": "bo@example.com", "primary": true}]},
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u3", "userName": "cy@example.com",
             "active": true, "emails": [{"value": "cy@example.com", "primary": true}]}]});
    let imported = other.call("POST", "/api/v1/inventory?at=2026-01-01T00:00:00Z", Some(&token), Some(&people));
    assert_eq!(imported.status, 200, "{}", imported.body);
    // A receiver's stream, created on the node that does not transmit.
    let port = tenet_testkit::free_port();
    let create = serde_json::json!({"events_requested": ["https://schemas.openid.net/secevent/caep/event-type/risk-level-change"],
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": format!("http://127.0.0.1:{port}/")}});
    let stream = other.call("POST", "/ssf/stream", Some(&token), Some(&create));
    assert_eq!(stream.status, 201, "{}", stream.body);
    let aud = stream.json()["aud"].as_str().unwrap().to_string();
    // It verifies with the keys the node that does not transmit publishes:
    // every node signs with the store's keys.
    let rx = common::ssf::Receiver::start_with(
        port,
        &format!("{}/ssf/jwks.json", other.base()),
        issuer,
        &aud,
        &dir.path().join("rx.jsonl"),
        None,
    );
    // One change on each node.
    let compromise = |node: &common::Server, who: &str| {
        let known = eventually(Duration::from_secs(5), || {
            let c = node.call(
                "POST",
                &format!("/api/v1/principals/user:{who}/compromise"),
                Some(&token),
                Some(&serde_json::json!({"reason": "cluster test"})),
            );
            c.status == 200
        });
        assert!(known, "{who}'s compromise recorded on {}", node.base());
    };
    compromise(on_transmitter, "ana@example.com");
    compromise(other, "bo@example.com");
    let risk = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
    for who in ["ana@example.com", "bo@example.com"] {
        let got = rx.wait_for(Duration::from_secs(10), |l| l["type"] == risk && l.to_string().contains(who));
        assert!(got.is_some(), "a SET for {who}'s change: {:?}", rx.lines());
    }
    // Nothing more comes: each change was signed and sent once, by one node.
    std::thread::sleep(Duration::from_secs(2));
    let sets: Vec<Value> = rx.lines().into_iter().filter(|l| l["type"] == risk).collect();
    assert_eq!(sets.len(), 2, "one SET per change: {sets:?}");

    // A commit whose update never reached the trust stream (its node died
    // between the two): dora's risk, in the store only.
    let db = store.rsplit('/').next().unwrap();
    pg.psql_on(
        db,
        "INSERT INTO risk(principal, at, doc) SELECT 'user:dora@example.com', at,
           replace(doc, 'ana@example.com', 'dora@example.com') FROM risk
           WHERE principal = 'user:ana@example.com' ORDER BY seq DESC LIMIT 1",
    )
    .unwrap();
    let risk_of_dora = |node: &common::Server| {
        let d = decide(node, "user:dora@example.com", Some(&token));
        assert_eq!(d.status, 200, "{}", d.body);
        serde_json::from_str::<Value>(&d.body).unwrap()["context"]["signals"]["risk"]["score"].clone()
    };
    let survivor = nodes[1 - transmitter].as_ref().unwrap();
    assert_ne!(risk_of_dora(survivor), 100, "the stream never said it");

    // The transmitter dies; the other node transmits from then on, signing
    // with the same key, which the receiver already knows; and reads risk
    // again from the store, which has what the dead node may not have said.
    nodes[transmitter].take().unwrap().kill();
    let other = nodes.iter().flatten().next().unwrap();
    until(&cli, &store, &bus, Duration::from_secs(20), |s| s["transmitter"] == other_name)
        .expect("the surviving node transmits");
    assert!(
        eventually(Duration::from_secs(5), || risk_of_dora(other) == 100),
        "after a node's death, decisions read risk as stored"
    );
    compromise(other, "cy@example.com");
    let got = rx.wait_for(Duration::from_secs(10), |l| l["type"] == risk && l.to_string().contains("cy@example.com"));
    assert!(got.is_some(), "a SET for cy's change from the new transmitter: {:?}", rx.lines());
    std::thread::sleep(Duration::from_secs(2));
    let sets: Vec<Value> = rx.lines().into_iter().filter(|l| l["type"] == risk).collect();
    assert_eq!(sets.len(), 3, "one SET per change across the failover: {sets:?}");
    let jtis: std::collections::BTreeSet<&str> = sets.iter().map(|l| l["jti"].as_str().unwrap_or_default()).collect();
    assert_eq!(jtis.len(), 3, "three distinct jti: {sets:?}");
}
