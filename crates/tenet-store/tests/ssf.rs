//! Shared Signals state on both backends: `ssf.db`, and the tables of a
//! PostgreSQL store (a private server; skipped loudly where PostgreSQL is
//! not installed, a failure under `TENET_REQUIRE_EXTERNAL=1`).

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$test(tenet_store::TablesAt::File(dir.path().join("ssf.db")))
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    let name = concat!("postgres::", stringify!($test));
                    let Some(server) = tenet_testkit::postgres::server(name) else { return };
                    super::$test(tenet_store::TablesAt::Postgres(server.fresh_database()))
                }
            )*
        }
    };
}

on_both_backends!(
    the_generation_moves_with_what_decides_a_streams_sets_and_not_with_delivery,
    one_stream_per_receiver_kept_whole_across_a_reopen,
    the_outbox_keeps_sets_in_order_until_delivered_or_refused_and_moves_the_cursor_with_them,
    a_disabled_stream_drops_what_it_held_and_takes_nothing_new,
    removed_subjects_are_excluded_until_added_again_and_deleting_a_stream_forgets_everything,
);
use serde_json::json;
use tenet_ssf::Issuing;

use tenet_ssf::{StreamConfig, StreamStatus, Subject};
use tenet_store::TablesAt;
use tenet_store::ssf::{NewSet, SsfStore, SsfStoreError};

fn config(id: &str) -> StreamConfig {
    StreamConfig::create(
        &json!({"delivery": {"method": tenet_ssf::PUSH, "endpoint_url": "https://rx.example/e", "authorization_header": "Bearer s"}}),
        Issuing {
            stream_id: id.into(),
            iss: "https://tenet.example".into(),
            aud: "urn:tenet:ssf:receiver:rx".into(),
            events_supported: vec![],
            min_verification_interval: 10,
            poll_url: format!("https://tenet.example/ssf/poll/{id}"),
        },
    )
    .unwrap()
}

fn set(stream: &str, jti: &str) -> NewSet {
    NewSet { stream_id: stream.into(), jti: jti.into(), subject: "{}".into(), set: format!("signed-{jti}") }
}

fn the_generation_moves_with_what_decides_a_streams_sets_and_not_with_delivery(at: TablesAt) {
    let mut store = SsfStore::open(&at).unwrap();
    let mut seen = vec![store.generation()];
    let mut moved = |store: &SsfStore| {
        let moved = store.generation() != *seen.last().unwrap();
        seen.push(store.generation());
        moved
    };
    store.create("rx", &config("s1"), 0).unwrap();
    assert!(moved(&store), "created");
    store.enqueue(&[set("s1", "j1")], Some(1), 1.0).unwrap();
    store.delivered("s1", &["j1".to_string()]).unwrap();
    store.set_last_verification("s1", 2.0).unwrap();
    assert!(!moved(&store), "delivery and verification change no targeting");
    store.set_status("s1", StreamStatus::Paused, None).unwrap();
    assert!(moved(&store), "status");
    let subject = tenet_ssf::Subject::Opaque { id: "user:a".into() };
    store.exclude("s1", &subject).unwrap();
    assert!(moved(&store), "subject removed");
    store.include("s1", &subject).unwrap();
    assert!(moved(&store), "subject added");
    store.update(&config("s1")).unwrap();
    assert!(moved(&store), "configuration");
    store.delete("s1").unwrap();
    assert!(moved(&store), "deleted");
}

fn one_stream_per_receiver_kept_whole_across_a_reopen(at: TablesAt) {
    let mut store = SsfStore::open(&at).unwrap();
    store.create("rx", &config("s1"), 0).unwrap();
    assert!(matches!(store.create("rx", &config("s2"), 0), Err(SsfStoreError::Exists(_))));
    store.set_status("s1", StreamStatus::Paused, Some("maintenance")).unwrap();
    drop(store);
    let store = SsfStore::open(&at).unwrap();
    let s = store.stream("s1").unwrap().unwrap();
    assert_eq!((s.owner.as_str(), s.status, s.reason.as_deref()), ("rx", StreamStatus::Paused, Some("maintenance")));
    assert_eq!(s.config, config("s1"), "the push secret included");
    assert_eq!(store.streams_of("someone-else").unwrap(), vec![]);
}

fn the_outbox_keeps_sets_in_order_until_delivered_or_refused_and_moves_the_cursor_with_them(at: TablesAt) {
    let mut store = SsfStore::open(&at).unwrap();
    store.create("rx", &config("s1"), 0).unwrap();
    store.enqueue(&[set("s1", "a"), set("s1", "b"), set("gone", "x")], Some(7), 1.0).unwrap();
    assert_eq!(store.cursor().unwrap(), 7);
    assert_eq!(store.enqueue(&[set("s1", "a")], Some(5), 2.0).unwrap(), 0, "a jti enters once");
    assert_eq!(store.cursor().unwrap(), 7, "the cursor never moves back");
    let p = store.pending("s1", 10).unwrap();
    assert_eq!(p.iter().map(|o| o.jti.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    store.attempted(p[0].seq, "HTTP 503").unwrap();
    assert_eq!(store.pending("s1", 1).unwrap()[0].attempts, 1);
    assert_eq!(store.delivered("s1", &["a".into()]).unwrap(), 1);
    assert_eq!(store.refused("s1", &[("b".into(), "invalid_audience".into())]).unwrap(), 1);
    let s = store.stream("s1").unwrap().unwrap();
    assert_eq!((s.delivered, s.failed, s.last_error.as_deref()), (1, 1, Some("invalid_audience")));
    assert_eq!(store.pending_count("s1").unwrap(), 0);
}

fn a_disabled_stream_drops_what_it_held_and_takes_nothing_new(at: TablesAt) {
    let mut store = SsfStore::open(&at).unwrap();
    store.create("rx", &config("s1"), 0).unwrap();
    store.set_status("s1", StreamStatus::Paused, None).unwrap();
    store.enqueue(&[set("s1", "held")], None, 1.0).unwrap();
    assert_eq!(store.pending_count("s1").unwrap(), 1, "paused: held");
    store.set_status("s1", StreamStatus::Disabled, None).unwrap();
    assert_eq!(store.pending_count("s1").unwrap(), 0);
    store.enqueue(&[set("s1", "later")], None, 2.0).unwrap();
    assert_eq!(store.pending_count("s1").unwrap(), 0);
}

fn removed_subjects_are_excluded_until_added_again_and_deleting_a_stream_forgets_everything(at: TablesAt) {
    let mut store = SsfStore::open(&at).unwrap();
    store.create("rx", &config("s1"), 0).unwrap();
    let alice = Subject::Email { email: "alice@example.com".into() };
    store.exclude("s1", &alice).unwrap();
    store.exclude("s1", &alice).unwrap();
    assert_eq!(store.excluded("s1").unwrap(), vec![alice.clone()]);
    store.include("s1", &alice).unwrap();
    assert!(store.excluded("s1").unwrap().is_empty());
    store.exclude("s1", &alice).unwrap();
    store.enqueue(&[set("s1", "a")], None, 1.0).unwrap();
    store.delete("s1").unwrap();
    assert!(store.stream("s1").unwrap().is_none());
    assert!(store.excluded("s1").unwrap().is_empty() && store.pending_count("s1").unwrap() == 0);
    assert!(matches!(store.delete("s1"), Err(SsfStoreError::NoSuchStream(_))));
    store.create("rx", &config("s3"), 0).unwrap();
}
