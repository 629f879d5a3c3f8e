//! The decision log's hash chain on both backends: a SQLite file, and the
//! tables of a PostgreSQL store (a private server; skipped loudly where
//! PostgreSQL is not installed, a failure under `TENET_REQUIRE_EXTERNAL=1`).

use tenet_store::TablesAt;
use tenet_store::decisions::{
    DecisionLogWriter, DecisionSearch, LoggedDecision, Verification, decision, search, verify,
};

enum Log {
    File(tempfile::TempDir),
    Postgres(&'static tenet_testkit::postgres::Server, String),
}

impl Log {
    fn at(&self) -> TablesAt {
        match self {
            Log::File(dir) => TablesAt::File(dir.path().join("decisions.db")),
            Log::Postgres(_, url) => TablesAt::Postgres(url.clone()),
        }
    }

    /// Changes the stored log behind the writer's back: `sqlite` or `postgres` SQL.
    fn tamper(&self, sqlite: &str, postgres: &str) {
        match self {
            Log::File(dir) => {
                rusqlite::Connection::open(dir.path().join("decisions.db")).unwrap().execute_batch(sqlite).unwrap()
            }
            Log::Postgres(server, url) => {
                server.psql_on(url.rsplit('/').next().unwrap(), postgres).unwrap();
            }
        }
    }
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $test() { super::$test(super::Log::File(tempfile::tempdir().unwrap())) } )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    let name = concat!("postgres::", stringify!($test));
                    let Some(server) = tenet_testkit::postgres::server(name) else { return };
                    super::$test(super::Log::Postgres(server, server.fresh_database()))
                }
            )*
        }
    };
}

on_both_backends!(
    searching_the_log_pages_newest_first_and_matches_text_literally,
    an_untouched_log_verifies_across_reopening,
    an_altered_record_is_named,
    a_removed_record_is_named_by_the_gap,
    reordered_records_are_named,
    policy_versions_are_kept_in_the_order_they_became_active,
);

fn record(i: usize) -> LoggedDecision {
    LoggedDecision {
        at: format!("2026-11-27T10:00:{:02}Z", i % 60),
        request_id: Some(format!("req-{i}")),
        request: format!("{{\"subject\":{{\"type\":\"user\",\"id\":\"u{i}\"}}}}"),
        decision: i.is_multiple_of(2),
        policy_version: "abc".into(),
        reasons: "{}".into(),
    }
}

/// `n` decisions, written by two writers one after the other: the second
/// continues the chain from the stored head.
fn log_of(log: &Log, n: usize) -> TablesAt {
    let at = log.at();
    let all: Vec<_> = (0..n).map(record).collect();
    DecisionLogWriter::open(&at).unwrap().append(&all[..n / 2]).unwrap();
    DecisionLogWriter::open(&at).unwrap().append(&all[n / 2..]).unwrap();
    at
}

fn searching_the_log_pages_newest_first_and_matches_text_literally(log: Log) {
    let at = log_of(&log, 30);
    let all = DecisionSearch { limit: 10, ..Default::default() };
    let (page, total) = search(&at, &all).unwrap();
    assert_eq!(total, 30);
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), (21..=30).rev().collect::<Vec<i64>>());
    let second = search(&at, &DecisionSearch { offset: 10, ..all.clone() }).unwrap().0;
    assert_eq!(second[0].seq, 20);
    // "u1" is in u1, u10..u19: eleven; the request id matches too.
    let (found, n) = search(&at, &DecisionSearch { text: Some("\"U1\"".into()), ..all.clone() }).unwrap();
    assert_eq!((n, found[0].record.request_id.as_deref()), (1, Some("req-1")));
    assert_eq!(search(&at, &DecisionSearch { text: Some("req-2".into()), ..all.clone() }).unwrap().1, 11);
    // Wildcards in the text are literal.
    assert_eq!(search(&at, &DecisionSearch { text: Some("%".into()), ..all.clone() }).unwrap().1, 0);
    assert_eq!(search(&at, &DecisionSearch { text: Some("req_2".into()), ..all.clone() }).unwrap().1, 0);
    let denied = search(&at, &DecisionSearch { decision: Some(false), ..all.clone() }).unwrap();
    assert!(denied.1 == 15 && denied.0.iter().all(|r| !r.record.decision));
    assert_eq!(decision(&at, 7).unwrap().unwrap().record.request_id.as_deref(), Some("req-6"));
    assert_eq!(decision(&at, 99).unwrap(), None);
    if let Log::File(dir) = &log {
        let none = TablesAt::File(dir.path().join("absent.db"));
        assert_eq!(search(&none, &all).unwrap().1, 0);
        assert!(!dir.path().join("absent.db").exists(), "reading never creates a log");
    }
}

fn an_untouched_log_verifies_across_reopening(log: Log) {
    let at = log_of(&log, 10);
    assert!(matches!(verify(&at).unwrap(), Verification::Intact { records: 10, .. }));
}

fn an_altered_record_is_named(log: Log) {
    let at = log_of(&log, 10);
    log.tamper(
        "UPDATE decisions SET decision = 1 - decision WHERE seq = 4",
        "UPDATE decisions SET decision = NOT decision WHERE seq = 4",
    );
    let Verification::Broken { seq, request_id, problem } = verify(&at).unwrap() else { panic!("not detected") };
    assert_eq!((seq, request_id.as_deref()), (4, Some("req-3")));
    assert!(problem.contains("altered"), "{problem}");
}

fn a_removed_record_is_named_by_the_gap(log: Log) {
    let at = log_of(&log, 10);
    log.tamper("DELETE FROM decisions WHERE seq = 6", "DELETE FROM decisions WHERE seq = 6");
    let Verification::Broken { seq, problem, .. } = verify(&at).unwrap() else { panic!("not detected") };
    assert_eq!(seq, 7);
    assert!(problem.contains("removed"), "{problem}");
}

fn reordered_records_are_named(log: Log) {
    let at = log_of(&log, 10);
    // Swap records 3 and 5 whole (contents and hashes), keeping sequence numbers.
    let swap = "UPDATE decisions SET seq = -3 WHERE seq = 3; UPDATE decisions SET seq = 3 WHERE seq = 5; UPDATE decisions SET seq = 5 WHERE seq = -3;";
    log.tamper(swap, swap);
    let Verification::Broken { seq, .. } = verify(&at).unwrap() else { panic!("not detected") };
    assert_eq!(seq, 3);
}

fn policy_versions_are_kept_in_the_order_they_became_active(log: Log) {
    let at = log.at();
    let mut w = DecisionLogWriter::open(&at).unwrap();
    w.policy_version("v2", "2026-11-27T10:00:00Z", "file", "+ permit", "a.cedar").unwrap();
    w.policy_version("v1", "2026-11-27T11:00:00Z", "alice", "- permit", "a.cedar").unwrap();
    let versions = tenet_store::decisions::policy_versions(&at).unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version.as_str(), v.author.as_str())).collect::<Vec<_>>(),
        [("v2", "file"), ("v1", "alice")]
    );
}
