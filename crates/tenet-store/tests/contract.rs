//! The store contract, run unchanged against both backends: each test
//! below is one function of a [`Store`], instantiated once on the embedded
//! SQLite store and once on PostgreSQL (a private server from the machine's
//! binaries; skipped loudly where PostgreSQL is not installed, a failure
//! under `TENET_REQUIRE_EXTERNAL=1`).

use std::collections::HashSet;

use tenet_model::{Action, Event, EventId, Principal, PrincipalKind, RawRecord, Resource, Source, Timestamp};
use tenet_store::{
    Appended, EventQuery, EventStore, FindingQuery, NoticeReader, PostgresReader, PostgresStore, PreparedBatch,
    SqliteStore, UseTally,
};

/// Where a test's store lives.
enum Store {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Store {
    fn sqlite() -> Store {
        Store::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Option<Store> {
        Some(Store::Postgres(tenet_testkit::postgres::server(test)?.fresh_database()))
    }

    /// A writer on the store; a second one is another process's.
    fn writer(&self) -> Box<dyn EventStore> {
        match self {
            Store::Sqlite(dir) => Box::new(SqliteStore::open_dir(dir.path()).unwrap()),
            Store::Postgres(url) => Box::new(PostgresStore::connect(url).unwrap()),
        }
    }

    /// The notice log as the transmitter reads it.
    fn notices(&self) -> Box<dyn NoticeReader> {
        match self {
            Store::Sqlite(dir) => Box::new(tenet_store::NoticeLog::open_dir(dir.path()).unwrap()),
            Store::Postgres(url) => Box::new(PostgresReader::connect(url).unwrap()),
        }
    }
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $test() { super::$test(super::Store::sqlite()) } )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    if let Some(store) = super::Store::postgres(concat!("postgres::", stringify!($test))) {
                        super::$test(store)
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    queued_notices_are_kept_or_lost_with_their_transaction_until_cleared,
    trust_notices_are_kept_or_lost_with_their_transaction_and_read_back_in_order,
    declared_changes_are_kept_per_event_and_observations_once_per_fact,
    use_tallied_live_and_refreshed_from_the_log_counts_each_event_once,
    findings_are_counted_by_category_as_the_default_listing_shows_them,
    findings_keep_a_persons_decision_when_analysis_raises_them_again,
    a_principals_activity_is_counted_by_action_and_hour_within_a_window,
    append_is_idempotent_and_keeps_raw_records,
    duplicates_within_one_batch_are_stored_once,
    events_of_one_instant_are_numbered_in_the_order_they_arrived,
    relink_changes_what_queries_return_and_index_the_new_principals,
    limit_returns_the_newest_oldest_first,
    queries_filter_by_action_resource_source_and_time,
    credentials_lead_to_their_issuer_and_their_users,
    snapshots_are_kept_once_per_scope_time_and_content,
    analysis_state_and_risk_read_back_as_written,
    verdicts_and_relayed_sets_are_recorded_once,
    a_writer_sees_commits_by_others_but_not_its_own,
    principals_are_found_by_the_names_people_type,
);

fn event(id: &str, secs: i64, actor: &str) -> Event {
    Event {
        resources: vec![Resource::new("AWS::S3::Bucket", "arn:aws:s3:::b")],
        raw: RawRecord::from(format!("{{\"id\":\"{id}\"}}").into_bytes()),
        ..Event::api_call(
            id,
            Timestamp::from_unix_seconds(secs),
            Principal::new(actor, PrincipalKind::Human),
            Action::new("s3", "GetObject"),
            Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
        )
    }
}

fn member(user: &str) -> tenet_model::Fact {
    tenet_model::Fact::Member { member: user.into(), group: "k8s:group/devs".into() }
}

fn notice(seq: u64) -> tenet_model::TrustNotice {
    tenet_model::TrustNotice {
        seq,
        at: Timestamp::from_unix_seconds(1_700_000_000 + seq as i64),
        principal: "user:alice".into(),
        change: tenet_model::NoticeChange::RiskLevel {
            from: tenet_model::RiskLevel::Low,
            to: tenet_model::RiskLevel::High,
            score: 60,
        },
    }
}

fn finding(id: &str, category: tenet_model::Category, alert: bool) -> tenet_model::Finding {
    tenet_model::Finding {
        id: id.into(),
        category,
        severity: tenet_model::Severity::Medium,
        confidence: 1.0,
        score: 50.0,
        principal: "user:a".into(),
        first_seen: Timestamp::from_unix_seconds(1),
        last_seen: Timestamp::from_unix_seconds(2),
        raised_at: Timestamp::from_unix_seconds(2),
        event_ids: vec![],
        techniques: vec![],
        summary: String::new(),
        status: tenet_model::FindingStatus::Open,
        alert,
        behaviours: vec![],
        explanation: String::new(),
        evidence: vec![],
        history: vec![],
    }
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn queued_notices_are_kept_or_lost_with_their_transaction_until_cleared(at: Store) {
    use tenet_model::{FindingStatus, NoticeChange};
    let mut store = at.writer();
    let resolved = NoticeChange::FindingStatus { finding: "f-1".into(), status: FindingStatus::Resolved };
    let t = Timestamp::from_unix_nanos(1_000);
    store.queue_notices(&[(t, "user:a".into(), resolved.clone())]).unwrap();
    store.rollback();
    assert!(store.pending_notices().unwrap().is_empty(), "rolled back with its transaction");
    store.queue_notices(&[(t, "user:a".into(), resolved.clone())]).unwrap();
    store.commit().unwrap();
    let reopened = at.writer();
    let pending = reopened.pending_notices().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].1, pending[0].2.as_str(), &pending[0].3), (t, "user:a", &resolved));
    store.clear_pending_notices(&[pending[0].0]).unwrap();
    store.commit().unwrap();
    assert!(reopened.pending_notices().unwrap().is_empty(), "cleared once numbered");
}

fn trust_notices_are_kept_or_lost_with_their_transaction_and_read_back_in_order(at: Store) {
    let mut store = at.writer();
    store.put_notices(&[notice(1), notice(2)]).unwrap();
    store.commit().unwrap();
    store.put_notices(&[notice(3)]).unwrap();
    store.rollback();
    assert_eq!(store.last_notice().unwrap(), 2, "a rolled-back transaction takes its notices with it");
    store.put_notices(&[notice(3)]).unwrap();
    store.commit().unwrap();
    let log = at.notices();
    assert_eq!(log.notices_after(0, 10).unwrap(), vec![notice(1), notice(2), notice(3)]);
    assert_eq!(log.notices_after(1, 1).unwrap(), vec![notice(2)]);
    assert_eq!(log.last_notice().unwrap(), 3);
}

fn declared_changes_are_kept_per_event_and_observations_once_per_fact(at: Store) {
    use tenet_model::TrustChange;
    let mut s = at.writer();
    // Every request observes alice in devs; one event also declares a change.
    let mut batch: Vec<Event> = (0..300)
        .map(|i| {
            let mut e = event(&format!("r{i}"), 1000 + i, "alice");
            e.changes = vec![TrustChange::Observe { fact: member("k8s:alice") }];
            e
        })
        .collect();
    batch[10].changes.push(TrustChange::Retract { key: member("k8s:bob").key() });
    s.append(PreparedBatch::new(batch.clone())).unwrap();
    // A later batch sees it again, and an earlier sighting arrives late.
    let mut late = event("early", 500, "alice");
    late.changes = vec![TrustChange::Observe { fact: member("k8s:alice") }];
    s.append(PreparedBatch::new(vec![late, batch[20].clone()])).unwrap();
    s.commit().unwrap();
    let declared = s.trust_changes().unwrap();
    assert_eq!(declared.len(), 1);
    assert_eq!(declared[0].event, "r10");
    assert_eq!(declared[0].changes, vec![TrustChange::Retract { key: member("k8s:bob").key() }]);
    let seen = s.observations().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].fact, member("k8s:alice"));
    assert_eq!((seen[0].first, seen[0].last), (Timestamp::from_unix_seconds(500), Timestamp::from_unix_seconds(1299)));
    assert_eq!(seen[0].event, "early", "the first sighting names its event");
    // Only the declaring event is tagged as changing trust.
    let tagged = s.query(&EventQuery { principal: Some(tenet_store::TRUST_TAG.into()), ..Default::default() }).unwrap();
    assert_eq!(ids(&tagged), vec!["r10"]);
}

/// A live writer tallies use as it stores; a CLI refresh may run in
/// between. Whichever order, each event counts exactly once.
fn use_tallied_live_and_refreshed_from_the_log_counts_each_event_once(at: Store) {
    let count = |s: &dyn EventStore| s.observed_use().unwrap().iter().map(|u| u.count).sum::<u64>();
    let mut s = at.writer();
    let mut tally = UseTally::after(s.use_watermark().unwrap());
    let store = |s: &mut dyn EventStore, tally: &mut UseTally, from: i64, n: i64| {
        let batch: Vec<Event> = (from..from + n).map(|i| event(&format!("e{i}"), i, "alice")).collect();
        let appended = s.append(PreparedBatch::new(batch.clone())).unwrap();
        s.commit().unwrap();
        for (i, seq) in appended.fresh {
            tally.add(&batch[i as usize], seq);
        }
    };
    store(&mut *s, &mut tally, 0, 10);
    s.record_use(&tally).unwrap();
    assert_eq!(count(&*s), 10);
    // Another process refreshes after 5 more, before the writer records them.
    let mut tally = UseTally::after(tally.through());
    store(&mut *s, &mut tally, 10, 5);
    at.writer().refresh_use().unwrap();
    store(&mut *s, &mut tally, 15, 3);
    s.record_use(&tally).unwrap();
    assert_eq!(count(&*s), 18, "the refresh's 5 and the last 3, not the 5 again");
    // A refresh that already counted everything the tally holds.
    let mut tally = UseTally::after(tally.through());
    store(&mut *s, &mut tally, 18, 2);
    at.writer().refresh_use().unwrap();
    s.record_use(&tally).unwrap();
    assert_eq!(count(&*s), 20);
    let u = &s.observed_use().unwrap()[0];
    assert_eq!(
        (u.principal.as_str(), u.action.as_str(), u.resource.as_deref()),
        ("alice", "s3:GetObject", Some("arn:aws:s3:::b"))
    );
    assert_eq!((u.first, u.last), (Timestamp::from_unix_seconds(0), Timestamp::from_unix_seconds(19)));
    // A denied attempt is not use.
    let mut denied = event("denied", 30, "mallory");
    denied.outcome = tenet_model::Outcome { status: tenet_model::Status::Failure, ..denied.outcome };
    let mut tally = UseTally::after(tally.through());
    let appended = s.append(PreparedBatch::new(vec![denied.clone()])).unwrap();
    s.commit().unwrap();
    tally.add(&denied, appended.fresh[0].1);
    s.record_use(&tally).unwrap();
    assert_eq!(count(&*s), 20);
    assert_eq!(s.use_watermark().unwrap(), appended.fresh[0].1, "yet counted through");
}

fn findings_are_counted_by_category_as_the_default_listing_shows_them(at: Store) {
    use tenet_model::Category;
    let mut s = at.writer();
    s.put_findings(&[
        finding("f1", Category::LikelyMalicious, true),
        finding("f2", Category::LikelyMalicious, false), // quiet: below the alert score
        finding("f3", Category::UnintendedDrift, true),
        finding("f4", Category::ExpectedAdaptation, false), // adaptation is never an alert, always listed
    ])
    .unwrap();
    s.commit().unwrap();
    let mut listed = std::collections::BTreeMap::new();
    for f in s.findings(&FindingQuery::default()).unwrap() {
        *listed.entry(f.category.as_str().to_string()).or_insert(0u64) += 1;
    }
    assert_eq!(s.findings_by_category().unwrap(), listed);
    assert_eq!(listed.get("likely_malicious"), Some(&1));
    let quiet = s.findings(&FindingQuery { include_quiet: true, ..Default::default() }).unwrap();
    assert_eq!(quiet.len(), 4);
}

fn findings_keep_a_persons_decision_when_analysis_raises_them_again(at: Store) {
    use tenet_model::{Category, FindingStatus};
    let mut s = at.writer();
    s.put_findings(&[finding("f1", Category::LikelyMalicious, true)]).unwrap();
    let t = Timestamp::from_unix_seconds(10);
    let acked = s.set_finding_status("f1", FindingStatus::Acknowledged, Some("on it"), t).unwrap();
    assert_eq!(acked.history.len(), 1);
    assert!(matches!(
        s.set_finding_status("f1", FindingStatus::Acknowledged, None, t),
        Err(tenet_store::StoreError::SameStatus { .. })
    ));
    assert!(matches!(
        s.set_finding_status("nope", FindingStatus::Resolved, None, t),
        Err(tenet_store::StoreError::NoSuchFinding(_))
    ));
    let mut again = finding("f1", Category::LikelyMalicious, true);
    again.score = 90.0;
    let stored = s.put_findings(&[again]).unwrap();
    s.commit().unwrap();
    assert_eq!(stored[0].status, FindingStatus::Acknowledged, "analysis never undoes a person's decision");
    let read = s.reader().unwrap().finding("f1").unwrap().unwrap();
    assert_eq!((read.status, read.score, read.history.len()), (FindingStatus::Acknowledged, 90.0, 1));
    let by_status = s.findings(&FindingQuery { status: Some(FindingStatus::Acknowledged), ..Default::default() });
    assert_eq!(by_status.unwrap().len(), 1);
    assert!(s.findings(&FindingQuery { principal: Some("user:b".into()), ..Default::default() }).unwrap().is_empty());
}

fn a_principals_activity_is_counted_by_action_and_hour_within_a_window(at: Store) {
    let mut s = at.writer();
    // alice at 09:00 and 09:30 on day 0 and 10:00 on day 1; bob once.
    let day = 86_400;
    let mut batch = vec![
        event("a1", 9 * 3600, "alice"),
        event("a2", 9 * 3600 + 1800, "alice"),
        event("a3", day + 10 * 3600, "alice"),
    ];
    batch[1].action = Action::new("s3", "PutObject");
    batch.push(event("b1", 9 * 3600, "bob"));
    s.append(PreparedBatch::new(batch)).unwrap();
    s.commit().unwrap();
    let t = Timestamp::from_unix_seconds;
    let mut all = s.activity("alice", t(0), t(2 * day)).unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("s3:GetObject".to_string(), 9, 1),
            ("s3:GetObject".to_string(), 10, 1),
            ("s3:PutObject".to_string(), 9, 1)
        ]
    );
    assert_eq!(s.activity("alice", t(day), t(2 * day)).unwrap(), vec![("s3:GetObject".to_string(), 10, 1)]);
    assert!(s.activity("nobody", t(0), t(2 * day)).unwrap().is_empty());
    // Events by id among a principal's, within a window (bounds included).
    let wanted: HashSet<String> = ["a2", "a3", "b1"].iter().map(|s| s.to_string()).collect();
    let found = s.events_among("alice", t(9 * 3600 + 1800), t(day + 10 * 3600), &wanted).unwrap();
    assert_eq!(ids(&found), vec!["a2", "a3"], "bob's is not alice's");
    assert!(s.events_among("alice", t(0), t(9 * 3600), &wanted).unwrap().is_empty());
    // Each source's volume, with hourly counts from the time asked.
    let v = s.source_volumes(t(day)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].format.as_str(), v[0].system.as_str(), v[0].total), ("cloudtrail", "aws", 4));
    assert_eq!((v[0].first, v[0].last), (t(9 * 3600), t(day + 10 * 3600)));
    assert_eq!(v[0].hourly, vec![(t(day + 10 * 3600), 1)]);
    assert_eq!(s.time_range().unwrap(), Some((t(9 * 3600), t(day + 10 * 3600))));
    let times = s.event_times(&wanted).unwrap();
    assert_eq!((times.len(), times.get("b1")), (3, Some(&t(9 * 3600))));
}

fn append_is_idempotent_and_keeps_raw_records(at: Store) {
    let mut s = at.writer();
    let batch: Vec<Event> = (0..600).map(|i| event(&format!("e{i}"), i, "alice")).collect();
    let first = s.append(PreparedBatch::new(batch.clone())).unwrap();
    assert_eq!((first.stored, first.duplicates, first.fresh.len()), (600, 0, 600));
    s.commit().unwrap();
    assert_eq!(
        s.append(PreparedBatch::new(batch.clone())).unwrap(),
        Appended { stored: 0, duplicates: 600, fresh: vec![] }
    );
    assert_eq!(s.count().unwrap(), 600);
    let e = s.get(&EventId::from("e300"), None).unwrap().unwrap();
    assert_eq!(e.raw.as_bytes(), br#"{"id":"e300"}"#);
    let e = s.get(&EventId::from("e599"), Some(Timestamp::from_unix_seconds(599))).unwrap().unwrap();
    assert_eq!(e.id.as_str(), "e599");
    assert!(s.get(&EventId::from("e599"), Some(Timestamp::from_unix_seconds(1))).unwrap().is_none());
    let refs: Vec<&Event> = vec![&batch[0], &batch[599]];
    assert_eq!(s.contains(&refs).unwrap(), vec![true, true]);
    assert_eq!(s.contains(&[&event("never", 5, "alice")]).unwrap(), vec![false]);
    let by_seq = s.events_by_seq(&[first.fresh[5].1, first.fresh[2].1]).unwrap();
    assert_eq!(ids(&by_seq), vec!["e5", "e2"], "in the order asked");
    assert_eq!(s.pending_analysis().unwrap().len(), 600, "nothing analysed yet");
}

fn duplicates_within_one_batch_are_stored_once(at: Store) {
    let mut s = at.writer();
    let out = s.append(PreparedBatch::new(vec![event("a", 1, "x"), event("a", 1, "x"), event("b", 1, "x")])).unwrap();
    s.commit().unwrap();
    assert_eq!((out.stored, out.duplicates), (2, 1));
    assert_eq!(s.count().unwrap(), 2);
}

/// Analysis reads pending events by (time, sequence number): events of
/// one instant must be analysed in arrival order on every backend, or the
/// same input would learn differently.
fn events_of_one_instant_are_numbered_in_the_order_they_arrived(at: Store) {
    let mut s = at.writer();
    let batch: Vec<Event> = ["m", "c", "x", "a", "b"].iter().map(|id| event(id, 7, "alice")).collect();
    s.append(PreparedBatch::new(batch)).unwrap();
    s.commit().unwrap();
    let seqs: Vec<i64> = s.pending_analysis().unwrap().iter().map(|p| p.seq).collect();
    assert_eq!(ids(&s.events_by_seq(&seqs).unwrap()), ["m", "c", "x", "a", "b"]);
}

fn relink_changes_what_queries_return_and_index_the_new_principals(at: Store) {
    let mut s = at.writer();
    s.append(PreparedBatch::new(vec![event("a", 1, "session")])).unwrap();
    let mut e = s.get(&EventId::from("a"), None).unwrap().unwrap();
    e.chain.push(Principal::new("bob", PrincipalKind::Human));
    assert_eq!(s.relink(&e, 1).unwrap(), 1, "it named one principal before");
    s.commit().unwrap();
    let again = s.get(&EventId::from("a"), None).unwrap().unwrap();
    assert_eq!(s.relink(&again, again.principals().count()).unwrap(), 2, "as read, nothing to add");
    let by_bob = s.query(&EventQuery { principal: Some("bob".into()), ..Default::default() }).unwrap();
    assert_eq!(by_bob.len(), 1);
    assert_eq!(by_bob[0].chain[0].id, "bob");
    let reader = s.reader().unwrap();
    assert_eq!(reader.get(&EventId::from("a"), None).unwrap().unwrap().chain.len(), 1);
}

fn limit_returns_the_newest_oldest_first(at: Store) {
    let mut s = at.writer();
    s.append(PreparedBatch::new((0..10).map(|i| event(&format!("e{i}"), i, "a")).collect())).unwrap();
    let got = s.query(&EventQuery { limit: Some(3), ..Default::default() }).unwrap();
    assert_eq!(ids(&got), vec!["e7", "e8", "e9"]);
    let by_a = s.query(&EventQuery { principal: Some("a".into()), limit: Some(2), ..Default::default() }).unwrap();
    assert_eq!(ids(&by_a), vec!["e8", "e9"]);
}

fn queries_filter_by_action_resource_source_and_time(at: Store) {
    let mut s = at.writer();
    let mut put = event("put", 20, "alice");
    put.action = Action::new("s3", "PutObject");
    let mut other = event("other", 30, "bob");
    other.resources = vec![Resource::new("AWS::S3::Bucket", "arn:aws:s3:::c")];
    other.source = Source { format: "ocsf".into(), system: "okta".into(), tenant: None };
    s.append(PreparedBatch::new(vec![event("get", 10, "alice"), put, other])).unwrap();
    s.commit().unwrap();
    let q = |q: EventQuery| ids(&s.query(&q).unwrap()).into_iter().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(q(EventQuery { action: Some("s3:PutObject".into()), ..Default::default() }), ["put"]);
    assert_eq!(q(EventQuery { action: Some("GetObject".into()), ..Default::default() }), ["get", "other"]);
    assert_eq!(q(EventQuery { resource: Some("arn:aws:s3:::c".into()), ..Default::default() }), ["other"]);
    assert_eq!(
        q(EventQuery {
            principal: Some("alice".into()),
            resource: Some("arn:aws:s3:::b".into()),
            ..Default::default()
        }),
        ["get", "put"]
    );
    assert_eq!(q(EventQuery { source: Some("okta".into()), ..Default::default() }), ["other"]);
    assert_eq!(q(EventQuery { source: Some("cloudtrail".into()), ..Default::default() }), ["get", "put"]);
    assert!(q(EventQuery { source: Some("never".into()), ..Default::default() }).is_empty());
    let t = Timestamp::from_unix_seconds;
    assert_eq!(q(EventQuery { since: Some(t(15)), until: Some(t(25)), ..Default::default() }), ["put"]);
    assert_eq!(q(EventQuery { principal: Some("alice".into()), since: Some(t(15)), ..Default::default() }), ["put"]);
}

fn credentials_lead_to_their_issuer_and_their_users(at: Store) {
    let mut s = at.writer();
    let mut assume = event("assume", 10, "alice");
    assume.issued = Some(tenet_model::IssuedCredential {
        credential_id: "ASIA1".into(),
        to: Principal::new("role-session", PrincipalKind::Workload),
        expires: None,
    });
    let mut used = event("used", 20, "role-session");
    used.session = Some(tenet_model::Session { credential_id: Some("ASIA1".into()), ..Default::default() });
    s.append(PreparedBatch::new(vec![assume, used])).unwrap();
    s.commit().unwrap();
    assert_eq!(s.issuer_of("ASIA1").unwrap().map(|e| e.id.to_string()), Some("assume".into()));
    assert_eq!(ids(&s.using_credential("ASIA1").unwrap()), vec!["used"]);
    assert!(s.issuer_of("ASIA-unknown").unwrap().is_none());
}

fn snapshots_are_kept_once_per_scope_time_and_content(at: Store) {
    let mut s = at.writer();
    let snap = tenet_model::Snapshot {
        source: "scim".into(),
        scope: "okta:acme".into(),
        collected_at: Timestamp::from_unix_seconds(100),
        facts: vec![member("alice")],
    };
    assert!(s.put_snapshot(&snap, "file a.json").unwrap());
    assert!(!s.put_snapshot(&snap, "file a.json again").unwrap(), "the same snapshot is stored once");
    let later = tenet_model::Snapshot { collected_at: Timestamp::from_unix_seconds(200), ..snap.clone() };
    assert!(s.put_snapshot(&later, "file b.json").unwrap());
    s.commit().unwrap();
    let stored = s.reader().unwrap().snapshots().unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored[0].id < stored[1].id);
    assert_eq!(
        (stored[0].snapshot.facts.clone(), stored[0].provenance.as_str()),
        (vec![member("alice")], "file a.json")
    );
}

fn analysis_state_and_risk_read_back_as_written(at: Store) {
    use tenet_store::AnalysisState;
    let mut s = at.writer();
    assert_eq!(s.analysis_state().unwrap(), None);
    s.append(PreparedBatch::new((0..4).map(|i| event(&format!("e{i}"), i, "a")).collect())).unwrap();
    let pending = s.pending_analysis().unwrap();
    let state = AnalysisState { events_seq: pending[1].seq, snapshot_id: 3, learner: b"baseline".repeat(100) };
    s.put_analysis_state(&state).unwrap();
    s.commit().unwrap();
    assert_eq!(s.analysis_state().unwrap(), Some(state));
    assert_eq!(s.pending_analysis().unwrap(), pending[2..].to_vec(), "what is left after the watermark");
    let point = |p: &str, secs: i64, score: u32| {
        serde_json::from_value::<tenet_model::RiskPoint>(serde_json::json!({
            "principal": p, "at": Timestamp::from_unix_seconds(secs), "score": score, "level": "low", "findings": []
        }))
        .unwrap()
    };
    s.put_risk(&[point("alice", 1, 10), point("bob", 1, 5), point("alice", 2, 30)]).unwrap();
    s.commit().unwrap();
    let latest = s.risk(None).unwrap();
    assert_eq!(latest.iter().map(|p| (p.principal.as_str(), p.score)).collect::<Vec<_>>(), [("alice", 30), ("bob", 5)]);
    assert_eq!(s.risk(Some("alice")).unwrap().len(), 1);
    assert_eq!(s.risk_history("alice").unwrap().iter().map(|p| p.score).collect::<Vec<_>>(), [10, 30]);
}

fn verdicts_and_relayed_sets_are_recorded_once(at: Store) {
    use tenet_model::{PrincipalVerdict, Verdict};
    let mut s = at.writer();
    let v = PrincipalVerdict {
        seq: 0,
        at: Timestamp::from_unix_seconds(5),
        principal: "user:alice".into(),
        verdict: Verdict::parse("compromised").unwrap(),
        reason: "phished".into(),
        by: "admin-key".into(),
    };
    let first = s.put_verdict(&v, false).unwrap();
    let second = s.put_verdict(&v, true).unwrap();
    s.commit().unwrap();
    assert!(second > first);
    assert_eq!(s.verdicts(true).unwrap().iter().map(|v| v.seq).collect::<Vec<_>>(), [first]);
    s.verdict_applied(first).unwrap();
    s.commit().unwrap();
    assert!(s.verdicts(true).unwrap().is_empty());
    assert_eq!(s.verdicts(false).unwrap().len(), 2);
    assert!(s.first_time("issuer jti-1").unwrap());
    assert!(!s.first_time("issuer jti-1").unwrap(), "a retried SET changes trust once");
    s.rollback();
    assert!(s.first_time("issuer jti-1").unwrap(), "unless the first was rolled back");
}

fn a_writer_sees_commits_by_others_but_not_its_own(at: Store) {
    let mut mine = at.writer();
    let before = mine.others_commits().unwrap();
    mine.append(PreparedBatch::new(vec![event("m", 1, "a")])).unwrap();
    mine.commit().unwrap();
    assert_eq!(mine.others_commits().unwrap(), before, "its own commit");
    let mut other = at.writer();
    other
        .queue_notices(&[(
            Timestamp::from_unix_seconds(1),
            "user:a".into(),
            tenet_model::NoticeChange::FindingStatus {
                finding: "f".into(),
                status: tenet_model::FindingStatus::Resolved,
            },
        )])
        .unwrap();
    other.commit().unwrap();
    assert_ne!(mine.others_commits().unwrap(), before, "another's commit");
}

fn principals_are_found_by_the_names_people_type(at: Store) {
    let mut s = at.writer();
    s.append(PreparedBatch::new(vec![
        event("1", 1, "arn:aws:iam::123:user/Alice"),
        event("2", 2, "user:bob@example.com"),
        event("3", 3, "agent:Summariser_1"),
    ]))
    .unwrap();
    s.commit().unwrap();
    assert_eq!(s.principals_named("alice").unwrap(), ["arn:aws:iam::123:user/Alice"]);
    assert_eq!(s.principals_named("bob@example.com").unwrap(), ["user:bob@example.com"]);
    assert_eq!(s.principals_named("summariser_1").unwrap(), ["agent:Summariser_1"]);
    assert!(s.principals_named("summariser%").unwrap().is_empty(), "wildcards are literal");
    assert!(s.principals_named("arn:aws:s3:::b").unwrap().is_empty(), "a resource is not a principal");
}
