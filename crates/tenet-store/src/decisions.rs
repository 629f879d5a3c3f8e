//! The decision log: every access decision, in a hash chain, in its own
//! SQLite file beside the event store (`decisions.db`), so deciding never
//! waits on the event writer; or, for nodes sharing PostgreSQL, in its
//! tables there: one chain for the whole cluster, each batch appended
//! under an advisory lock so the nodes' batches follow one another.
//!
//! Each record's hash covers its sequence number, its content and the
//! previous record's hash: altering a record breaks its own hash, removing
//! or reordering breaks the chain at the next one. (Truncating the newest
//! records leaves a shorter valid chain; an external anchor of the head
//! hash would catch that and is not kept here.)

use std::path::Path;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError, TablesAt};

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

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn chain_hash(prev: &str, seq: i64, d: &LoggedDecision) -> String {
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

/// The log's writer: the only one for a file; one per node on PostgreSQL.
pub struct DecisionLogWriter {
    to: Writer,
}

enum Writer {
    File(FileWriter),
    Postgres(crate::postgres::Tables),
}

impl DecisionLogWriter {
    pub fn open(at: &TablesAt) -> Result<Self> {
        Ok(DecisionLogWriter {
            to: match at {
                TablesAt::File(path) => Writer::File(FileWriter::open(path)?),
                TablesAt::Postgres(url) => Writer::Postgres(crate::postgres::Tables::connect(url)?),
            },
        })
    }

    /// Appends `records` in one transaction (one disk write for the batch).
    pub fn append(&mut self, records: &[LoggedDecision]) -> Result<()> {
        match &mut self.to {
            Writer::File(w) => w.append(records),
            Writer::Postgres(t) => t.append(records),
        }
    }

    /// Records a policy version that became active: when, by whom, what changed.
    pub fn policy_version(&mut self, version: &str, at: &str, author: &str, diff: &str, files: &str) -> Result<()> {
        match &mut self.to {
            Writer::File(w) => w.policy_version(version, at, author, diff, files),
            Writer::Postgres(t) => t.policy_version(version, at, author, diff, files),
        }
    }
}

/// The SQLite log's single writer.
struct FileWriter {
    conn: Connection,
    head: (i64, String),
}

impl FileWriter {
    fn open(path: &Path) -> Result<Self> {
        let conn = open_log(path)?;
        let head = conn
            .query_row("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
                e => Err(e),
            })?;
        Ok(FileWriter { conn, head })
    }

    fn append(&mut self, records: &[LoggedDecision]) -> Result<()> {
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

    fn policy_version(&mut self, version: &str, at: &str, author: &str, diff: &str, files: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO policy_versions(version, at, author, diff, files) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![version, at, author, diff, files],
        )?;
        Ok(())
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

/// Every policy version recorded, oldest first.
pub fn policy_versions(at: &TablesAt) -> Result<Vec<PolicyVersion>> {
    let path = match at {
        TablesAt::File(path) => path,
        TablesAt::Postgres(url) => return crate::postgres::Tables::connect(url)?.policy_versions(),
    };
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
pub fn search(at: &TablesAt, search: &DecisionSearch) -> Result<(Vec<DecisionRow>, usize)> {
    let path = match at {
        TablesAt::File(path) => path,
        TablesAt::Postgres(url) => return crate::postgres::Tables::connect(url)?.search(search),
    };
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
pub fn decision(at: &TablesAt, seq: i64) -> Result<Option<DecisionRow>> {
    let path = match at {
        TablesAt::File(path) => path,
        TablesAt::Postgres(url) => return crate::postgres::Tables::connect(url)?.decision(seq),
    };
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
pub fn verify(at: &TablesAt) -> Result<Verification> {
    let path = match at {
        TablesAt::File(path) => path,
        TablesAt::Postgres(url) => return crate::postgres::Tables::connect(url)?.verify(),
    };
    if !path.exists() {
        return Err(StoreError::DataDir {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no decision log here"),
        });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS}, prev_hash, hash FROM decisions ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut chain = ChainCheck::default();
    while let Some(r) = rows.next()? {
        if let Some(broken) = chain.next(row(r)?, r.get(7)?, r.get(8)?) {
            return Ok(broken);
        }
    }
    Ok(chain.intact())
}

/// Walking the chain record by record, from the start.
pub(crate) struct ChainCheck {
    expect_seq: i64,
    prev: String,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck { expect_seq: 1, prev: GENESIS.to_string() }
    }
}

impl ChainCheck {
    /// The next record as stored; `Some` names what is wrong with it.
    pub(crate) fn next(&mut self, r: DecisionRow, stored_prev: String, stored_hash: String) -> Option<Verification> {
        let DecisionRow { seq, record: d } = r;
        let expect_seq = self.expect_seq;
        let broken = |problem: String| Some(Verification::Broken { seq, request_id: d.request_id.clone(), problem });
        if seq != expect_seq {
            return broken(format!("expected record {expect_seq} here: record(s) {expect_seq}..{} removed", seq - 1));
        }
        if stored_prev != self.prev {
            return broken("does not follow the record before it (removed, inserted or reordered records)".into());
        }
        if chain_hash(&self.prev, seq, &d) != stored_hash {
            return broken("its content does not match its hash (altered)".into());
        }
        self.prev = stored_hash;
        self.expect_seq += 1;
        None
    }

    pub(crate) fn intact(self) -> Verification {
        Verification::Intact { records: self.expect_seq - 1, head: self.prev }
    }
}
