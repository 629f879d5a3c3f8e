//! What only the PostgreSQL backend has to show: versioned migrations, a
//! database shared by writers that start together, and a server restart
//! survived. Against a private server from the machine's binaries; skipped
//! loudly where PostgreSQL is not installed, a failure under
//! `TENET_REQUIRE_EXTERNAL=1`.

use tenet_model::{Action, Event, Principal, PrincipalKind, Source, Timestamp};
use tenet_store::ssf::SigningKeyTable;
use tenet_store::{EventReader, EventStore, PostgresStore, PreparedBatch, StoreError, postgres_schema_version};
use tenet_testkit::postgres::{Server, server};

fn event(id: &str, secs: i64) -> Event {
    Event::api_call(
        id,
        Timestamp::from_unix_seconds(secs),
        Principal::new("alice", PrincipalKind::Human),
        Action::new("s3", "GetObject"),
        Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
    )
}

#[test]
fn migrations_are_applied_on_start_and_recorded_with_their_version() {
    let Some(pg) = server("migrations_are_applied_on_start_and_recorded_with_their_version") else { return };
    let url = pg.fresh_database();
    assert_eq!(postgres_schema_version(&url).unwrap(), 0, "a database Tenet never ran on");
    drop(PostgresStore::connect(&url).unwrap());
    let version = postgres_schema_version(&url).unwrap();
    assert!(version >= 1);
    // Starting again applies nothing twice.
    drop(PostgresStore::connect(&url).unwrap());
    let db = url.rsplit('/').next().unwrap();
    let rows = pg.psql_on(db, "SELECT count(*), max(version) FROM tenet_schema").unwrap();
    assert_eq!(rows.trim(), format!("{version}|{version}"));
}

#[test]
fn a_node_refuses_a_schema_newer_than_it_knows() {
    let Some(pg) = server("a_node_refuses_a_schema_newer_than_it_knows") else { return };
    let url = pg.fresh_database();
    drop(PostgresStore::connect(&url).unwrap());
    let db = url.rsplit('/').next().unwrap();
    pg.psql_on(db, "INSERT INTO tenet_schema(version, description) VALUES (9999, 'from a newer Tenet')").unwrap();
    match PostgresStore::connect(&url) {
        Err(StoreError::SchemaTooNew { found, supported, .. }) => assert_eq!((found, supported < 9999), (9999, true)),
        Err(other) => panic!("refused, but not for its schema: {other}"),
        Ok(_) => panic!("a node ran against a schema newer than it knows"),
    }
}

#[test]
fn nodes_starting_together_migrate_once_and_share_what_they_write() {
    let Some(pg) = server("nodes_starting_together_migrate_once_and_share_what_they_write") else { return };
    let url = pg.fresh_database();
    let nodes: Vec<PostgresStore> = std::thread::scope(|s| {
        let started: Vec<_> = (0..4).map(|_| s.spawn(|| PostgresStore::connect(&url).unwrap())).collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each writes its own events, at the same instants, concurrently.
    std::thread::scope(|s| {
        for (n, mut node) in nodes.into_iter().enumerate() {
            s.spawn(move || {
                let batch = (0..500).map(|i| event(&format!("n{n}-{i}"), i)).collect();
                node.append(PreparedBatch::new(batch)).unwrap();
                node.commit().unwrap();
            });
        }
    });
    let reader = PostgresStore::connect(&url).unwrap();
    assert_eq!(reader.count().unwrap(), 2000);
    assert_eq!(reader.pending_analysis().unwrap().len(), 2000, "every sequence number distinct");
}

#[test]
fn a_writer_carries_on_after_the_server_restarts() {
    let Some(pg) = Server::start("a_writer_carries_on_after_the_server_restarts") else { return };
    let url = pg.fresh_database();
    let mut store = PostgresStore::connect(&url).unwrap();
    let reader = store.reader().unwrap();
    store.append(PreparedBatch::new(vec![event("before", 1)])).unwrap();
    store.commit().unwrap();
    pg.stop();
    let refused = store.append(PreparedBatch::new(vec![event("while down", 2)]));
    assert!(refused.is_err(), "nothing is acknowledged while the server is down");
    assert!(reader.count().is_err());
    pg.start_again();
    store.append(PreparedBatch::new(vec![event("after", 3)])).unwrap();
    store.commit().unwrap();
    let mut ids: Vec<String> =
        reader.query(&Default::default()).unwrap().into_iter().map(|e| e.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["after", "before"], "the refused append left nothing behind");
}

#[test]
fn nodes_logging_decisions_at_once_keep_one_verifiable_chain() {
    use tenet_store::TablesAt;
    use tenet_store::decisions::{DecisionLogWriter, LoggedDecision, Verification, verify};
    let Some(pg) = server("nodes_logging_decisions_at_once_keep_one_verifiable_chain") else { return };
    let at = TablesAt::Postgres(pg.fresh_database());
    std::thread::scope(|s| {
        for node in 0..4 {
            let at = at.clone();
            s.spawn(move || {
                let mut log = DecisionLogWriter::open(&at).unwrap();
                for batch in 0..25 {
                    let records: Vec<LoggedDecision> = (0..10)
                        .map(|i| LoggedDecision {
                            at: "2026-12-07T10:00:00Z".into(),
                            request_id: Some(format!("node{node}-{batch}-{i}")),
                            request: "{}".into(),
                            decision: i % 2 == 0,
                            policy_version: "v".into(),
                            reasons: "{}".into(),
                        })
                        .collect();
                    log.append(&records).unwrap();
                }
            });
        }
    });
    assert!(matches!(verify(&at).unwrap(), Verification::Intact { records: 1000, .. }));
}

#[test]
fn text_is_ordered_byte_by_byte_as_embedded_whatever_the_databases_locale() {
    use tenet_store::{FindingQuery, FindingReader};
    let Some(pg) = server("text_is_ordered_byte_by_byte_as_embedded_whatever_the_databases_locale") else { return };
    // A database whose own collation sorts "a" before "B" (ICU, English).
    let name = format!("icu{}", std::process::id());
    pg.psql(&format!("CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' TEMPLATE template0"))
        .unwrap();
    let mut store = PostgresStore::connect(&pg.url(&name)).unwrap();
    let point = |p: &str| {
        serde_json::from_value::<tenet_model::RiskPoint>(serde_json::json!({
            "principal": p, "at": Timestamp::from_unix_seconds(1), "score": 10, "level": "low", "findings": []
        }))
        .unwrap()
    };
    store.put_risk(&[point("user:b"), point("user:B"), point("user:a")]).unwrap();
    let finding = |id: &str| {
        let mut f: tenet_model::Finding = serde_json::from_value(serde_json::json!({
            "id": id, "category": "unintended_drift", "severity": "low", "confidence": 1.0, "score": 10.0,
            "principal": "user:a", "first_seen": Timestamp::from_unix_seconds(1),
            "last_seen": Timestamp::from_unix_seconds(1), "raised_at": Timestamp::from_unix_seconds(1),
            "event_ids": [], "techniques": [], "summary": "", "status": "open", "alert": true
        }))
        .unwrap();
        f.id = id.to_string();
        f
    };
    store.put_findings(&[finding("f-b"), finding("F-c"), finding("f-a")]).unwrap();
    store.commit().unwrap();
    let risk: Vec<String> = store.risk(None).unwrap().into_iter().map(|p| p.principal).collect();
    assert_eq!(risk, ["user:B", "user:a", "user:b"], "SQLite's order");
    let ids: Vec<String> = store.findings(&FindingQuery::default()).unwrap().into_iter().map(|f| f.id).collect();
    assert_eq!(ids, ["F-c", "f-a", "f-b"]);
}

#[test]
fn each_partition_keeps_its_own_events_pending_and_its_own_learner_state() {
    let Some(pg) = server("each_partition_keeps_its_own_events_pending_and_its_own_learner_state") else { return };
    let url = pg.fresh_database();
    let mut store = PostgresStore::connect(&url).unwrap();
    store.set_partition(Some(0)).unwrap();
    store.append(PreparedBatch::keeping(vec![event("late", 20), event("early", 10)]).0).unwrap();
    store.commit().unwrap();
    store.set_partition(Some(1)).unwrap();
    store.append(PreparedBatch::keeping(vec![event("other", 5)]).0).unwrap();
    store
        .put_analysis_state(&tenet_store::AnalysisState { events_seq: 99, snapshot_id: 0, learner: b"p1".to_vec() })
        .unwrap();
    store.commit().unwrap();
    store.set_partition(Some(0)).unwrap();
    let pending = store.pending_analysis().unwrap();
    // In the order stored (each batch in time order), not the other partition's.
    assert_eq!(pending.iter().map(|p| p.time).collect::<Vec<_>>(), [10_000_000_000, 20_000_000_000]);
    assert_eq!(store.analysis_state().unwrap(), None, "partition 1's state is its own");
    store.set_partition(Some(1)).unwrap();
    assert_eq!(store.analysis_state().unwrap().unwrap().learner, b"p1");
    assert!(store.pending_analysis().unwrap().is_empty(), "analysed through its watermark");
    store.set_partition(None).unwrap();
    assert_eq!(store.pending_analysis().unwrap().len(), 3, "the whole store, as a single service reads it");
}

#[test]
fn writers_sharing_the_notice_log_number_their_notices_without_gaps_or_repeats() {
    let Some(pg) = server("writers_sharing_the_notice_log_number_their_notices_without_gaps_or_repeats") else {
        return;
    };
    let url = pg.fresh_database();
    drop(PostgresStore::connect(&url).unwrap());
    std::thread::scope(|s| {
        for w in 0..4 {
            let url = url.clone();
            s.spawn(move || {
                let mut store = PostgresStore::connect(&url).unwrap();
                for i in 0..25 {
                    let mut notices = vec![tenet_model::TrustNotice {
                        seq: 0,
                        at: Timestamp::from_unix_seconds(i),
                        principal: format!("writer-{w}"),
                        change: tenet_model::NoticeChange::FindingStatus {
                            finding: format!("f-{w}-{i}"),
                            status: tenet_model::FindingStatus::Resolved,
                        },
                    }];
                    store.number_notices(&mut notices).unwrap();
                    store.put_notices(&notices).unwrap();
                    store.commit().unwrap();
                }
            });
        }
    });
    let log = tenet_store::StoreAt::Postgres(url).notices().unwrap();
    let seqs: Vec<u64> = log.notices_after(0, 1000).unwrap().iter().map(|n| n.seq).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
}

#[test]
fn nodes_take_their_share_of_partitions_and_a_dead_nodes_partitions_are_free_at_once() {
    use tenet_store::cluster::{Membership, status};
    let Some(pg) = server("nodes_take_their_share_of_partitions_and_a_dead_nodes_partitions_are_free_at_once") else {
        return;
    };
    let url = pg.fresh_database();
    let mut a = Membership::join(&url, "a", "http://a", 4).unwrap();
    assert_eq!(a.rebalance().unwrap().gained.len(), 4, "alone, a node owns every partition");
    let mut b = Membership::join(&url, "b", "http://b", 4).unwrap();
    assert!(
        matches!(Membership::join(&url, "b", "http://b2", 4), Err(StoreError::Cluster(_))),
        "one live node per name"
    );
    assert!(matches!(Membership::join(&url, "c", "http://c", 8), Err(StoreError::Cluster(_))), "the count is fixed");
    assert_eq!(b.rebalance().unwrap().gained, Vec::<u32>::new(), "nothing is free yet");
    let surplus = a.rebalance().unwrap().surplus;
    assert_eq!(surplus.len(), 2, "two nodes: a hands two back");
    for p in surplus {
        a.release(p).unwrap();
    }
    assert_eq!(b.rebalance().unwrap().gained.len(), 2);
    let s = status(&url).unwrap().unwrap();
    assert_eq!(s.owners.iter().filter(|o| o.as_deref() == Some("a")).count(), 2, "{s:?}");
    assert_eq!(s.owners.iter().filter(|o| o.as_deref() == Some("b")).count(), 2, "{s:?}");
    // b's session ends (its process dies): the server frees its locks.
    drop(b);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while a.owned().len() < 4 && std::time::Instant::now() < until {
        a.rebalance().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(a.owned().len(), 4, "the dead node's partitions are taken");
    let s = status(&url).unwrap().unwrap();
    assert!(s.nodes.iter().any(|n| n.node == "b" && !n.alive && n.partitions.is_empty()), "{s:?}");
}

#[test]
fn the_signing_keys_are_written_once_rotated_and_retired_for_every_node() {
    let Some(pg) = server("the_signing_keys_are_written_once_rotated_and_retired_for_every_node") else { return };
    let url = pg.fresh_database();
    let (a, b) = (SigningKeyTable::open(&url).unwrap(), SigningKeyTable::open(&url).unwrap());
    assert!(a.read().unwrap().is_none(), "no key before the first node writes one");
    let first = a.write_first(b"key one").unwrap();
    // A second node starting at the same moment keeps the first one's key.
    let same = b.write_first(b"key two").unwrap();
    assert_eq!((first.active.as_slice(), same.active.as_slice()), (&b"key one"[..], &b"key one"[..]));
    assert!(same.previous.is_none());

    b.rotate(b"key three").unwrap();
    let rotated = a.read().unwrap().unwrap();
    assert_eq!(rotated.active, b"key three");
    assert_eq!(rotated.previous.as_deref(), Some(&b"key one"[..]), "the replaced key stays published");
    a.rotate(b"key four").unwrap();
    assert_eq!(b.read().unwrap().unwrap().previous.as_deref(), Some(&b"key three"[..]), "one previous key at most");

    assert_eq!(b.retire().unwrap().as_deref(), Some(&b"key three"[..]));
    assert_eq!(a.retire().unwrap(), None, "retired once");
    let after = a.read().unwrap().unwrap();
    assert_eq!((after.active.as_slice(), after.previous), (&b"key four"[..], None));
}

#[test]
fn two_writers_completing_the_same_chain_from_the_same_read_add_it_once() {
    let Some(pg) = server("two_writers_completing_the_same_chain_from_the_same_read_add_it_once") else { return };
    let url = pg.fresh_database();
    let (mut a, mut b) = (PostgresStore::connect(&url).unwrap(), PostgresStore::connect(&url).unwrap());
    a.append(PreparedBatch::new(vec![event("e1", 1)])).unwrap();
    a.commit().unwrap();
    let read = b.get(&tenet_model::EventId::from("e1"), None).unwrap().unwrap();
    let mut completed = read.clone();
    completed.chain.push(Principal::new("bob", PrincipalKind::Human));
    // Both read it naming one principal; the first to store the chain adds
    // it, the second finds it stored and adds nothing.
    assert_eq!(a.relink(&completed, 1).unwrap(), 1);
    a.commit().unwrap();
    assert_eq!(b.relink(&completed, 1).unwrap(), 2, "already completed by the other writer");
    b.commit().unwrap();
    let stored = a.get(&tenet_model::EventId::from("e1"), None).unwrap().unwrap();
    assert_eq!(stored.chain.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["bob"]);
}
