//! The decision log: every access decision, in a hash chain, in its own
//! SQLite file beside the event store (`decisions.db`), so deciding never
//! waits on the event writer.
//!
//! Each record's hash covers its sequence number, its content and the
//! previous record's hash: altering a record breaks its own hash, removing
//! or reordering breaks the chain at the next one. (Truncating the newest
//! records leaves a shorter valid chain; an external anchor of the head
//! hash would catch that and is not kept here.)

use std::path::Path;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// One decision as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedDecision {
    /// RFC 3339 time of the decision.
    pub at: String,
    /// The caller's `X-Request-ID`, when it sent one.
    pub request_id: Option<String>,
    /// The evaluation as JSON (subject, action, resource, context).
    pub request: String,
    pub decision: bool,
    pub policy_version: String,
    /// Determining policies, errors and the reason, as JSON.
    pub reasons: String,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn chain_hash(prev: &str, seq: i64, d: &LoggedDecision) -> String {
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        &seq.to_le_bytes(),
        d.at.as_bytes(),
        d.request_id.as_deref().unwrap_or("").as_bytes(),
        &[u8::from(d.request_id.is_some())],
        d.request.as_bytes(),
        &[u8::from(d.decision)],
        d.policy_version.as_bytes(),
        d.reasons.as_bytes(),
    ] {
        // Length-prefixed, so no two different records hash the same bytes.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

/// Lower-case hex, written directly: a formatted string per byte would be
/// 32 allocations per logged decision.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decisions (
    seq            INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    request_id     TEXT,
    request        TEXT NOT NULL,
    decision       INTEGER NOT NULL,
    policy_version TEXT NOT NULL,
    reasons        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    version  TEXT NOT NULL,
    at       TEXT NOT NULL,
    author   TEXT NOT NULL,
    diff     TEXT NOT NULL,
    files    TEXT NOT NULL
);
";

/// Opens (creating) the log file for writing.
fn open_log(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // Large pages for an append-only log of ~700-byte records: far fewer
    // page writes and WAL frames than with 4 KiB pages. Only a new file
    // takes it (before WAL mode and the first table).
    conn.pragma_update(None, "page_size", 65_536)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// An INSERT of `rows` decisions.
fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO decisions(seq, at, request_id, request, decision, policy_version, reasons, prev_hash, hash) VALUES {}",
        vec!["(?,?,?,?,?,?,?,?,?)"; rows].join(",")
    )
}

/// Rows per INSERT statement.
const ROWS: usize = 64;

/// The log's single writer.
pub struct DecisionLogWriter {
    conn: Connection,
    head: (i64, String),
}

impl DecisionLogWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_log(path)?;
        let head = conn
            .query_row("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
                e => Err(e),
            })?;
        Ok(DecisionLogWriter { conn, head })
    }

    /// Appends `records` in one transaction (one disk write for the batch).
    pub fn append(&mut self, records: &[LoggedDecision]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let (mut seq, mut prev) = self.head.clone();
        // Hashes first (each needs the one before), then the rows in
        // multi-row statements: one statement per row costs the writer
        // more than the hashing.
        let mut hashes = Vec::with_capacity(records.len());
        for d in records {
            seq += 1;
            let hash = chain_hash(&prev, seq, d);
            hashes.push((seq, std::mem::replace(&mut prev, hash.clone()), hash));
        }
        // Built once per batch, not per chunk.
        let full = insert_sql(ROWS);
        for (rows, chain) in records.chunks(ROWS).zip(hashes.chunks(ROWS)) {
            let mut stmt = if rows.len() == ROWS {
                tx.prepare_cached(&full)?
            } else {
                tx.prepare_cached(&insert_sql(rows.len()))?
            };
            let params: Vec<&dyn rusqlite::ToSql> = rows
                .iter()
                .zip(chain)
                .flat_map(|(d, (seq, prev, hash))| {
                    [
                        seq as &dyn rusqlite::ToSql,
                        &d.at,
                        &d.request_id,
                        &d.request,
                        &d.decision,
                        &d.policy_version,
                        &d.reasons,
                        prev,
                        hash,
                    ]
                })
                .collect();
            stmt.execute(params.as_slice())?;
        }
        tx.commit()?;
        self.head = (seq, prev);
        Ok(())
    }

    /// Records a policy version that became active: when, by whom, what changed.
    pub fn policy_version(&mut self, version: &str, at: &str, author: &str, diff: &str, files: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO policy_versions(version, at, author, diff, files) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![version, at, author, diff, files],
        )?;
        Ok(())
    }

    pub fn len(&self) -> i64 {
        self.head.0
    }

    pub fn is_empty(&self) -> bool {
        self.head.0 == 0
    }
}

/// A policy version as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: String,
    pub at: String,
    pub author: String,
    pub diff: String,
}

pub fn policy_versions(path: &Path) -> Result<Vec<PolicyVersion>> {
    let conn = open_log(path)?;
    let mut stmt = conn.prepare("SELECT version, at, author, diff FROM policy_versions ORDER BY rowid")?;
    let rows = stmt
        .query_map([], |r| Ok(PolicyVersion { version: r.get(0)?, at: r.get(1)?, author: r.get(2)?, diff: r.get(3)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A decision as read back, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub seq: i64,
    pub record: LoggedDecision,
}

/// Which decisions to read: newest first, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct DecisionSearch {
    /// Text the request (subject, action, resource, context) or the
    /// request id contains, case-insensitively for ASCII.
    pub text: Option<String>,
    /// Allowed (`true`) or denied (`false`) only.
    pub decision: Option<bool>,
    pub offset: usize,
    pub limit: usize,
}

/// Matches counted at most: a search over a long log says "more than".
pub const COUNTED: usize = 10_000;

/// Opens the log to read, without creating it: `None` when there is none yet.
fn read_log(path: &Path) -> Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(Some(conn))
}

/// A decision's columns, in the order [`row`] reads them.
const COLUMNS: &str = "seq, at, request_id, request, decision, policy_version, reasons";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        seq: r.get(0)?,
        record: LoggedDecision {
            at: r.get(1)?,
            request_id: r.get(2)?,
            request: r.get(3)?,
            decision: r.get(4)?,
            policy_version: r.get(5)?,
            reasons: r.get(6)?,
        },
    })
}

/// A page of decisions matching `search`, newest first, and how many match
/// (at most [`COUNTED`]).
pub fn search(path: &Path, search: &DecisionSearch) -> Result<(Vec<DecisionRow>, usize)> {
    let Some(conn) = read_log(path)? else { return Ok((Vec::new(), 0)) };
    let mut filter = String::from("1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(t) = search.text.as_deref().filter(|t| !t.is_empty()) {
        let escaped = t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        filter.push_str(" AND (request LIKE ?1 ESCAPE '\\' OR request_id LIKE ?1 ESCAPE '\\')");
        args.push(format!("%{escaped}%").into());
    }
    if let Some(d) = search.decision {
        filter.push_str(&format!(" AND decision = {}", i64::from(d)));
    }
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM (SELECT 1 FROM decisions WHERE {filter} LIMIT {COUNTED})"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {COLUMNS} FROM decisions WHERE {filter} ORDER BY seq DESC LIMIT {} OFFSET {}",
        search.limit, search.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as usize))
}

/// One decision by its place in the log.
pub fn decision(path: &Path, seq: i64) -> Result<Option<DecisionRow>> {
    let Some(conn) = read_log(path)? else { return Ok(None) };
    let found = conn.query_row(&format!("SELECT {COLUMNS} FROM decisions WHERE seq = ?1"), [seq], row);
    match found {
        Ok(r) => Ok(Some(r)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every record is intact and in order.
    Intact { records: i64, head: String },
    /// The first record that does not verify.
    Broken { seq: i64, request_id: Option<String>, problem: String },
}

/// Walks the chain from the start; names the first record that was altered,
/// removed (the one after the gap) or moved.
pub fn verify(path: &Path) -> Result<Verification> {
    if !path.exists() {
        return Err(StoreError::DataDir {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no decision log here"),
        });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS}, prev_hash, hash FROM decisions ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let (mut expect_seq, mut prev) = (1i64, GENESIS.to_string());
    while let Some(r) = rows.next()? {
        let DecisionRow { seq, record: d } = row(r)?;
        let (stored_prev, stored_hash): (String, String) = (r.get(7)?, r.get(8)?);
        let broken = |problem: String| Ok(Verification::Broken { seq, request_id: d.request_id.clone(), problem });
        if seq != expect_seq {
            return broken(format!("expected record {expect_seq} here: record(s) {expect_seq}..{} removed", seq - 1));
        }
        if stored_prev != prev {
            return broken("does not follow the record before it (removed, inserted or reordered records)".into());
        }
        if chain_hash(&prev, seq, &d) != stored_hash {
            return broken("its content does not match its hash (altered)".into());
        }
        prev = stored_hash;
        expect_seq += 1;
    }
    Ok(Verification::Intact { records: expect_seq - 1, head: prev })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn log_of(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.db");
        let mut w = DecisionLogWriter::open(&path).unwrap();
        let all: Vec<_> = (0..n).map(record).collect();
        w.append(&all[..n / 2]).unwrap();
        drop(w);
        // Reopened, the chain continues from the stored head.
        let mut w = DecisionLogWriter::open(&path).unwrap();
        w.append(&all[n / 2..]).unwrap();
        (dir, path)
    }

    fn tamper(path: &Path, sql: &str) {
        Connection::open(path).unwrap().execute_batch(sql).unwrap();
    }

    #[test]
    fn searching_the_log_pages_newest_first_and_matches_text_literally() {
        let (_d, path) = log_of(30);
        let all = DecisionSearch { limit: 10, ..Default::default() };
        let (page, total) = search(&path, &all).unwrap();
        assert_eq!(total, 30);
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), (21..=30).rev().collect::<Vec<i64>>());
        let second = search(&path, &DecisionSearch { offset: 10, ..all.clone() }).unwrap().0;
        assert_eq!(second[0].seq, 20);
        // "u1" is in u1, u10..u19: eleven; the request id matches too.
        let (found, n) = search(&path, &DecisionSearch { text: Some("\"U1\"".into()), ..all.clone() }).unwrap();
        assert_eq!((n, found[0].record.request_id.as_deref()), (1, Some("req-1")));
        assert_eq!(search(&path, &DecisionSearch { text: Some("req-2".into()), ..all.clone() }).unwrap().1, 11);
        // Wildcards in the text are literal.
        assert_eq!(search(&path, &DecisionSearch { text: Some("%".into()), ..all.clone() }).unwrap().1, 0);
        let denied = search(&path, &DecisionSearch { decision: Some(false), ..all.clone() }).unwrap();
        assert!(denied.1 == 15 && denied.0.iter().all(|r| !r.record.decision));
        assert_eq!(decision(&path, 7).unwrap().unwrap().record.request_id.as_deref(), Some("req-6"));
        assert_eq!(decision(&path, 99).unwrap(), None);
        let none = path.with_file_name("absent.db");
        assert_eq!(search(&none, &all).unwrap().1, 0);
        assert!(!none.exists(), "reading never creates a log");
    }

    #[test]
    fn an_untouched_log_verifies_across_reopening() {
        let (_d, path) = log_of(10);
        assert!(matches!(verify(&path).unwrap(), Verification::Intact { records: 10, .. }));
    }

    #[test]
    fn an_altered_record_is_named() {
        let (_d, path) = log_of(10);
        tamper(&path, "UPDATE decisions SET decision = 1 - decision WHERE seq = 4");
        let Verification::Broken { seq, request_id, problem } = verify(&path).unwrap() else { panic!("not detected") };
        assert_eq!((seq, request_id.as_deref()), (4, Some("req-3")));
        assert!(problem.contains("altered"), "{problem}");
    }

    #[test]
    fn a_removed_record_is_named_by_the_gap() {
        let (_d, path) = log_of(10);
        tamper(&path, "DELETE FROM decisions WHERE seq = 6");
        let Verification::Broken { seq, problem, .. } = verify(&path).unwrap() else { panic!("not detected") };
        assert_eq!(seq, 7);
        assert!(problem.contains("removed"), "{problem}");
    }

    #[test]
    fn reordered_records_are_named() {
        let (_d, path) = log_of(10);
        // Swap records 3 and 5 whole (contents and hashes), keeping sequence numbers.
        tamper(
            &path,
            "UPDATE decisions SET seq = -3 WHERE seq = 3; UPDATE decisions SET seq = 3 WHERE seq = 5; UPDATE decisions SET seq = 5 WHERE seq = -3;",
        );
        let Verification::Broken { seq, .. } = verify(&path).unwrap() else { panic!("not detected") };
        assert_eq!(seq, 3);
    }
}
