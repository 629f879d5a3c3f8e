//! The embedded backend: one SQLite file in WAL mode.
//!
//! Layout:
//! - `events`: one row per event with the columns queries filter on, and
//!   where its normalised form and raw record sit (`block`, `slot`);
//! - `blocks`: compressed normalised events and raw records, a block at a time;
//! - `event_refs`: from every principal and resource an event names to the
//!   event, so "everything alice did, through any chain" and "everything
//!   that touched this bucket" are range scans;
//! - `relinks`: actor chains completed after the event was stored.
//!
//! Uniqueness is on `(time, id)`, not `id` alone: telemetry arrives roughly
//! in time order, so the index grows at its right edge and a batch dirties a
//! handful of pages, where an index on random ids dirties one page per event
//! and ingest slows to the disk's random-write rate. A re-read record has
//! the same time, so idempotency is unchanged. An event is found by its
//! identity only through seeks of that index (`locate`), never by matching
//! time and id, which visits every event of the instant.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, params};
use std::collections::HashSet;

use tenet_model::{Event, EventId, Finding, Timestamp};

use crate::block::{
    Decoded, EventKeys, Keys, StoredRow as Row, event_at, event_refs, fnv, id_hash, principal_ref, resource_ref,
};
use crate::{
    Appended, EventQuery, EventReader, EventStore, FindingQuery, FindingReader, PreparedBatch, Result, StoreError,
    StoreReader, UseTally,
};

/// 2: declared trust changes and observations kept apart from events.
/// 3: analysis state and risk history.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS blocks (
    block INTEGER PRIMARY KEY,
    data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    idh        INTEGER NOT NULL,
    id         TEXT NOT NULL,
    format     INTEGER NOT NULL,
    system     INTEGER NOT NULL,
    actor      INTEGER NOT NULL,
    action     INTEGER NOT NULL,
    credential INTEGER,
    issued     INTEGER,
    block      INTEGER NOT NULL,
    slot       INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_time_id ON events(time, idh);
CREATE INDEX IF NOT EXISTS events_credential ON events(credential) WHERE credential IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_issued ON events(issued) WHERE issued IS NOT NULL;
CREATE TABLE IF NOT EXISTS event_refs (
    ref  INTEGER NOT NULL,
    time INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (ref, time, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    id         TEXT PRIMARY KEY,
    category   TEXT NOT NULL,
    principal  TEXT NOT NULL,
    status     TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_principal ON findings(principal);
CREATE TABLE IF NOT EXISTS snapshots (
    id           INTEGER PRIMARY KEY,
    scope        TEXT NOT NULL,
    source       TEXT NOT NULL,
    collected_at INTEGER NOT NULL,
    digest       INTEGER NOT NULL,
    provenance   TEXT NOT NULL,
    facts        BLOB NOT NULL,
    UNIQUE (scope, collected_at, digest)
);
CREATE TABLE IF NOT EXISTS observed_use (
    principal INTEGER NOT NULL,
    action    INTEGER NOT NULL,
    resource  INTEGER NOT NULL,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (principal, action, resource)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trust_changes (
    seq     INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    event   TEXT NOT NULL,
    changes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS observations (
    key   TEXT PRIMARY KEY,
    fact  BLOB NOT NULL,
    first INTEGER NOT NULL,
    last  INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS analysis (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    events_seq  INTEGER NOT NULL,
    snapshot_id INTEGER NOT NULL,
    learner     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS risk (
    principal TEXT NOT NULL,
    at        INTEGER NOT NULL,
    seq       INTEGER PRIMARY KEY,
    doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS risk_principal ON risk(principal, at);
CREATE TABLE IF NOT EXISTS relinks (
    seq   INTEGER PRIMARY KEY,
    actor TEXT NOT NULL,
    chain TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    principal TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    by_whom   TEXT NOT NULL,
    applied   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS relayed (
    key TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_notices (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    principal TEXT NOT NULL,
    change    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trust_notices (
    seq       INTEGER PRIMARY KEY,
    principal TEXT NOT NULL,
    doc       TEXT NOT NULL
);
";

fn tune(conn: &Connection) -> Result<()> {
    // NORMAL in WAL mode: durable against process crashes; fsync only at
    // checkpoints, which a 64 MiB WAL keeps rare on the ingest path.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -262_144i64)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    next_block: i64,
    /// Interned strings: principal and resource ids, actions, sources,
    /// credentials. Stored as integers, they make rows and index entries
    /// small and comparisons cheap.
    names: FxHashMap<String, i64>,
    /// Whether a write transaction is open: appends accumulate in one until
    /// [`EventStore::commit`], so a large ingest pays per commit, not per batch.
    in_tx: bool,
}

/// A read-only connection to a store, for another thread.
pub struct SqliteReader {
    conn: Connection,
}

impl SqliteReader {
    /// A read-only connection to the store in `data_dir`, which must exist.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            data_dir.join("tenet.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        tune(&conn)?;
        Ok(SqliteReader { conn })
    }
}

impl SqliteStore {
    /// Writes `tally` into observed use and moves the watermark to its end,
    /// in one transaction.
    fn add_use(&mut self, tally: &UseTally) -> Result<()> {
        self.write(|store| {
            for (p, a, r, first, last, count) in tally.entries() {
                let p = intern(&store.conn, &mut store.names, p)?;
                let a = intern(&store.conn, &mut store.names, a)?;
                let r = match r {
                    Some(r) => intern(&store.conn, &mut store.names, r)?,
                    None => -1,
                };
                store.conn.prepare_cached(
                    "INSERT INTO observed_use(principal, action, resource, first, last, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(principal, action, resource) DO UPDATE SET
                       first = min(first, excluded.first), last = max(last, excluded.last), count = count + excluded.count",
                )?
                .execute(params![p, a, r, first, last, count as i64])?;
            }
            store.conn.execute(
                "INSERT INTO meta(key, value) VALUES ('use_watermark', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [tally.through()],
            )?;
            Ok(())
        })?;
        self.commit()
    }

    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::DataDir { path: data_dir.display().to_string(), source: e })?;
        Self::open(&data_dir.join("tenet.db"))
    }

    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        tune(&conn)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        if found == 1 {
            migrate_from_v1(&conn)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let next_block = conn.query_row("SELECT coalesce(max(block), 0) + 1 FROM blocks", [], |r| r.get(0))?;
        let names = {
            let mut stmt = conn.prepare("SELECT name, id FROM names")?;
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<FxHashMap<_, _>>>()?
        };
        Ok(SqliteStore { conn, path: path.to_path_buf(), next_block, names, in_tx: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn begin(&mut self) -> Result<()> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Runs `f` inside the open write transaction; a failure rolls the
    /// whole transaction back, so nothing half-written survives.
    fn write<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => Ok(v),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.in_tx = false;
                self.forget_uncommitted();
                Err(e)
            }
        }
    }

    /// After a rollback, cached names and block numbers may refer to rows
    /// that no longer exist.
    fn forget_uncommitted(&mut self) {
        self.names.clear();
        if let Ok(n) = self.conn.query_row("SELECT coalesce(max(block), 0) + 1 FROM blocks", [], |r| r.get(0)) {
            self.next_block = n;
        }
        if let Ok(names) = self.conn.prepare("SELECT name, id FROM names").and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<FxHashMap<_, _>>>()
        }) {
            self.names = names;
        }
    }
}

/// Interns `name`, inserting it on first sight.
fn intern(conn: &Connection, names: &mut FxHashMap<String, i64>, name: &str) -> Result<i64> {
    if let Some(&id) = names.get(name) {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO names(name) VALUES (?1)")?.execute([name])?;
    let id = conn.last_insert_rowid();
    names.insert(name.to_string(), id);
    Ok(id)
}

/// The interned id of `name`, if it was ever stored.
fn name_id(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(conn.prepare_cached("SELECT id FROM names WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?)
}

/// See [`EventReader::principals_named`]: a pass over the interned names
/// (distinct strings, not events), each candidate kept only if some event
/// names it as a principal (an index seek).
fn principals_named(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(Vec::new());
    }
    let lower = name.to_lowercase();
    let mut stmt = conn.prepare_cached(
        "SELECT id, name FROM names WHERE lower(name) IN (?1, 'user:' || ?1, 'agent:' || ?1) \
         OR lower(name) LIKE '%/' || ?2 ESCAPE '\\' OR lower(name) LIKE '%:' || ?2 ESCAPE '\\'",
    )?;
    let escaped = lower.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let rows: Vec<(i64, String)> = stmt
        .query_map(rusqlite::params![lower, escaped], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut named = conn.prepare_cached("SELECT 1 FROM event_refs WHERE ref = ?1 LIMIT 1")?;
    let mut out = Vec::new();
    for (id, n) in rows {
        if named.exists([principal_ref(id)])? {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// Rows per multi-row INSERT: one statement per chunk, not per row, is
/// most of what makes the writer fast.
const REF_ROWS: usize = 512;

fn insert_refs(tx: &Connection, refs: &[(i64, i64, i64)]) -> Result<()> {
    for chunk in refs.chunks(REF_ROWS) {
        let sql = format!("INSERT OR IGNORE INTO event_refs(ref, time, seq) VALUES {}", placeholders(chunk.len(), 3));
        let mut stmt = tx.prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = chunk.iter().flat_map(|(a, b, c)| [a as &dyn ToSql, b, c]).collect();
        stmt.execute(params.as_slice())?;
    }
    Ok(())
}

fn placeholders(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(","));
    vec![row; rows].join(",")
}

/// The columns of one event row, interned.
struct EventRow<'e> {
    time: i64,
    idh: i64,
    id: &'e str,
    format: i64,
    system: i64,
    actor: i64,
    action: i64,
    credential: Option<i64>,
    issued: Option<i64>,
    slot: i64,
}

/// Inserts a block's events in one statement; returns `(slot, seq)` of
/// those stored (the rest were already there).
fn insert_block_events(
    tx: &Connection,
    names: &mut FxHashMap<String, i64>,
    block: i64,
    keys: &Keys,
    events: &[EventKeys],
) -> Result<Vec<(usize, i64)>> {
    let mut rows = Vec::with_capacity(events.len());
    for (slot, e) in events.iter().enumerate() {
        let id = keys.str(e.id);
        rows.push(EventRow {
            time: e.time,
            idh: id_hash(id),
            id,
            format: intern(tx, names, keys.str(e.format))?,
            system: intern(tx, names, keys.str(e.system))?,
            actor: intern(tx, names, keys.str(e.actor))?,
            action: intern(tx, names, keys.str(e.action))?,
            credential: e.credential.map(|c| intern(tx, names, keys.str(c))).transpose()?,
            issued: e.issued.map(|c| intern(tx, names, keys.str(c))).transpose()?,
            slot: slot as i64,
        });
    }
    let sql = format!(
        "INSERT INTO events(time, idh, id, format, system, actor, action, credential, issued, block, slot) VALUES {}
         ON CONFLICT(time, idh) DO NOTHING RETURNING slot, seq",
        placeholders(rows.len(), 11)
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let params: Vec<&dyn ToSql> = rows
        .iter()
        .flat_map(|r| {
            [
                &r.time as &dyn ToSql,
                &r.idh,
                &r.id,
                &r.format,
                &r.system,
                &r.actor,
                &r.action,
                &r.credential,
                &r.issued,
                &block,
                &r.slot,
            ]
        })
        .collect();
    let mut stored: Vec<(usize, i64)> = stmt
        .query_map(params.as_slice(), |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if stored.len() < rows.len() {
        // Not stored: a duplicate, or (vanishingly rarely) another id with
        // the same hash at the same instant, which is probed past.
        let mut taken = vec![false; rows.len()];
        for &(slot, _) in &stored {
            taken[slot] = true;
        }
        let mut single = tx.prepare_cached(
            "INSERT INTO events(time, idh, id, format, system, actor, action, credential, issued, block, slot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for r in rows.iter().filter(|r| !taken[r.slot as usize]) {
            let Slot::Free(idh) = locate(tx, r.time, r.id)? else { continue };
            single.execute(params![
                r.time,
                idh,
                r.id,
                r.format,
                r.system,
                r.actor,
                r.action,
                r.credential,
                r.issued,
                block,
                r.slot
            ])?;
            stored.push((r.slot as usize, tx.last_insert_rowid()));
        }
        stored.sort_unstable();
    }
    Ok(stored)
}

/// Where an event's identity `(time, id)` sits in the unique `(time, idh)` index.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    /// Stored, with this sequence number.
    Stored(i64),
    /// Not stored; this is the id hash it is stored under.
    Free(i64),
}

/// One step of [`locate`]: a seek of the unique index on both its columns.
const PROBE: &str = "SELECT seq, id FROM events WHERE time = ?1 AND idh = ?2";

/// Finds an event by its identity. An id is stored at its hash, or, when
/// another id at the same instant holds that, at the first free hash after
/// it (nothing is ever deleted, so the run up to it has no gaps): each step
/// is one index seek, however many events share the instant. (Matching
/// `time` and `id` without `idh` visits every event of that instant, and
/// CloudTrail stamps whole seconds: re-ingest was quadratic in events per
/// second.)
fn locate(conn: &Connection, time: i64, id: &str) -> Result<Slot> {
    let mut probe = conn.prepare_cached(PROBE)?;
    let mut idh = id_hash(id);
    loop {
        let here = probe
            .query_row(params![time, idh], |r| {
                Ok((r.get::<_, i64>(0)?, matches!(r.get_ref(1)?, ValueRef::Text(t) if t == id.as_bytes())))
            })
            .optional()?;
        match here {
            Some((seq, true)) => return Ok(Slot::Stored(seq)),
            Some((_, false)) => idh = idh.wrapping_add(1),
            None => return Ok(Slot::Free(idh)),
        }
    }
}

/// The columns `load` expects, in order.
const EVENT_COLUMNS: &str = "e.seq, e.id, e.block, e.slot, r.actor, r.chain";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let actor: Option<String> = r.get(4)?;
    let chain: Option<String> = r.get(5)?;
    Ok(Row { id: r.get(1)?, block: r.get(2)?, slot: r.get::<_, i64>(3)? as usize, relinked: actor.zip(chain) })
}

/// Materialises events from rows, decompressing each block once.
fn load(conn: &Connection, rows: Vec<Row>, with_raw: bool) -> Result<Vec<Event>> {
    let mut blocks: HashMap<i64, Decoded> = HashMap::new();
    let mut fetch = conn.prepare_cached("SELECT data FROM blocks WHERE block = ?1")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = blocks.entry(r.block) {
            let data: Vec<u8> = fetch.query_row([r.block], |x| x.get(0))?;
            slot.insert(Decoded::open(&data, r.block)?);
        }
        out.push(event_at(&r, blocks.get(&r.block), with_raw)?);
    }
    Ok(out)
}

fn load_where(conn: &Connection, clause: &str, args: &[&dyn ToSql], with_raw: bool) -> Result<Vec<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN relinks r ON r.seq = e.seq WHERE {clause} ORDER BY e.time, e.seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load(conn, rows, with_raw)
}

fn query(conn: &Connection, q: &EventQuery) -> Result<Vec<Event>> {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    // A name never stored matches nothing.
    let lookup = |name: &str| name_id(conn, name);
    // Drive from the narrowest index available: a principal or resource
    // reference range, else the time index.
    let principal = match &q.principal {
        Some(p) => match lookup(p)? {
            Some(id) => Some(principal_ref(id)),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let resource = match &q.resource {
        Some(r) => match lookup(r)? {
            Some(id) => Some(resource_ref(id)),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let (from, time_col) = match (principal, resource) {
        (Some(p), r) => {
            args.push(Box::new(p));
            conds.push(format!("x.ref = ?{}", args.len()));
            if let Some(r) = r {
                args.push(Box::new(r));
                conds.push(format!(
                    "EXISTS (SELECT 1 FROM event_refs y WHERE y.ref = ?{} AND y.seq = e.seq)",
                    args.len()
                ));
            }
            ("event_refs x JOIN events e ON e.seq = x.seq", "x.time")
        }
        (None, Some(r)) => {
            args.push(Box::new(r));
            conds.push(format!("x.ref = ?{}", args.len()));
            ("event_refs x JOIN events e ON e.seq = x.seq", "x.time")
        }
        (None, None) => ("events e", "e.time"),
    };
    if let Some(t) = q.since {
        args.push(Box::new(t.unix_nanos()));
        conds.push(format!("{time_col} >= ?{}", args.len()));
    }
    if let Some(t) = q.until {
        args.push(Box::new(t.unix_nanos()));
        conds.push(format!("{time_col} <= ?{}", args.len()));
    }
    if let Some(a) = &q.action {
        // `service:operation` exactly, or any service's `operation`.
        args.push(Box::new(a.clone()));
        let n = args.len();
        conds.push(format!(
            "e.action IN (SELECT id FROM names WHERE name = ?{n} OR (instr(?{n}, ':') = 0 AND substr(name, instr(name, ':') + 1) = ?{n}))"
        ));
    }
    if let Some(s) = &q.source {
        match lookup(s)? {
            Some(id) => {
                args.push(Box::new(id));
                let n = args.len();
                conds.push(format!("(e.format = ?{n} OR e.system = ?{n})"));
            }
            None => return Ok(Vec::new()),
        }
    }
    let where_clause = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let select = format!(
        "SELECT {EVENT_COLUMNS}, {time_col} AS t FROM {from} LEFT JOIN relinks r ON r.seq = e.seq {where_clause}"
    );
    // With a limit the newest events are the interesting ones; they are
    // still returned oldest first.
    let sql = match q.limit {
        Some(n) => format!("SELECT * FROM ({select} ORDER BY t DESC, e.seq DESC LIMIT {n}) ORDER BY t, seq"),
        None => format!("{select} ORDER BY t, e.seq"),
    };
    let mut stmt = conn.prepare(&sql)?;
    let params: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
    let rows = stmt.query_map(params.as_slice(), row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load(conn, rows, q.with_raw)
}

fn get(conn: &Connection, id: &EventId, time: Option<Timestamp>) -> Result<Option<Event>> {
    let events = match time {
        Some(t) => match locate(conn, t.unix_nanos(), id.as_str())? {
            Slot::Stored(seq) => load_where(conn, "e.seq = ?1", &[&seq], true)?,
            Slot::Free(_) => return Ok(None),
        },
        None => load_where(conn, "e.id = ?1", &[&id.as_str()], true)?,
    };
    Ok(events.into_iter().next())
}

fn event_times(conn: &Connection, ids: &HashSet<String>) -> Result<HashMap<String, Timestamp>> {
    let mut out = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, time FROM events")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        if ids.contains(&id) {
            out.insert(id, Timestamp::from_unix_nanos(row.get(1)?));
        }
    }
    Ok(out)
}

/// See [`FindingReader::findings_by_category`]: counted in SQL, reading
/// only each document's `alert` flag (absent means an alert, as when read).
fn findings_by_category(conn: &Connection) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT category, count(*) FROM findings
         WHERE category = ?1 OR coalesce(json_extract(doc, '$.alert'), 1) <> 0 GROUP BY category",
    )?;
    let rows = stmt.query_map([tenet_model::Category::ExpectedAdaptation.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn findings(conn: &Connection, q: &FindingQuery) -> Result<Vec<Finding>> {
    let mut conds = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(c) = q.category {
        args.push(c.as_str().to_string());
        conds.push(format!("category = ?{}", args.len()));
    }
    if let Some(p) = &q.principal {
        args.push(p.clone());
        conds.push(format!("principal = ?{}", args.len()));
    }
    if let Some(s) = q.status {
        args.push(s.as_str().to_string());
        conds.push(format!("status = ?{}", args.len()));
    }
    let where_clause = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let mut stmt = conn.prepare(&format!("SELECT id, doc FROM findings {where_clause} ORDER BY first_seen, id"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, doc) = row?;
        let f: Finding = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt { id, reason: e.to_string() })?;
        // Recorded below the alert score: listed only when asked for.
        if q.include_quiet || f.alert || !f.category.is_alert() {
            out.push(f);
        }
    }
    Ok(out)
}

fn finding(conn: &Connection, id: &str) -> Result<Option<Finding>> {
    let doc: Option<String> =
        conn.query_row("SELECT doc FROM findings WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    doc.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Corrupt { id: id.to_string(), reason: e.to_string() }))
        .transpose()
}

fn risk_rows(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> Result<Vec<tenet_model::RiskPoint>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    rows.map(|doc| {
        let doc = doc?;
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt { id: "risk".into(), reason: e.to_string() })
    })
    .collect()
}

fn snapshots(conn: &Connection) -> Result<Vec<crate::StoredSnapshot>> {
    let mut stmt = conn.prepare(
        "SELECT id, scope, source, collected_at, provenance, facts FROM snapshots ORDER BY collected_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Vec<u8>>(5)?,
        ))
    })?;
    rows.map(|row| {
        let (id, scope, source, at, provenance, blob) = row?;
        let corrupt = |reason: String| StoreError::Corrupt { id: format!("snapshot {id}"), reason };
        let json = crate::block::decompress(&blob).map_err(corrupt)?;
        let facts = serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))?;
        Ok(crate::StoredSnapshot {
            id,
            snapshot: tenet_model::Snapshot { source, scope, collected_at: Timestamp::from_unix_nanos(at), facts },
            provenance,
        })
    })
    .collect()
}

/// Version 1 kept trust changes only inside events (tagged): split them
/// into the tables version 2 reads.
fn migrate_from_v1(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN")?;
    let result = (|| -> Result<()> {
        let tagged = query(conn, &EventQuery { principal: Some(crate::TRUST_TAG.to_string()), ..Default::default() })?;
        for e in &tagged {
            let declared: Vec<&tenet_model::TrustChange> =
                e.changes.iter().filter(|c| !matches!(c, tenet_model::TrustChange::Observe { .. })).collect();
            let time = e.time.unix_nanos();
            if !declared.is_empty() {
                let Slot::Stored(seq) = locate(conn, time, e.id.as_str())? else {
                    return Err(StoreError::Corrupt {
                        id: e.id.to_string(),
                        reason: "listed as changing trust but not in the event index".into(),
                    });
                };
                let json = serde_json::to_vec(&declared).unwrap_or_default();
                conn.execute(
                    "INSERT OR IGNORE INTO trust_changes(seq, time, event, changes) VALUES (?1, ?2, ?3, ?4)",
                    params![seq, time, e.id.as_str(), json],
                )?;
            }
            let mut keys = Keys::default();
            keys.push(e);
            insert_observations(conn, &keys)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Keeps each observed fact once: the earliest sighting (and its event) and the latest.
fn insert_observations(conn: &Connection, keys: &Keys) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO observations(key, fact, first, last, event) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(key) DO UPDATE SET
           event = CASE WHEN excluded.first < first THEN excluded.event ELSE event END,
           fact = CASE WHEN excluded.first < first THEN excluded.fact ELSE fact END,
           first = min(first, excluded.first),
           last = max(last, excluded.last)",
    )?;
    for (key, fact, first, last, index) in &keys.observed {
        stmt.execute(params![key, fact, first, last, keys.str(keys.events[*index].id)])?;
    }
    Ok(())
}

fn trust_changes(conn: &Connection) -> Result<Vec<crate::StoredChanges>> {
    let mut stmt = conn.prepare("SELECT time, event, changes FROM trust_changes ORDER BY time, seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))?;
    rows.map(|row| {
        let (time, event, json) = row?;
        let changes = serde_json::from_slice(&json)
            .map_err(|e| StoreError::Corrupt { id: format!("trust changes of {event}"), reason: e.to_string() })?;
        Ok(crate::StoredChanges { time: Timestamp::from_unix_nanos(time), event, changes })
    })
    .collect()
}

fn observations(conn: &Connection) -> Result<Vec<crate::Observation>> {
    let mut stmt = conn.prepare("SELECT key, fact, first, last, event FROM observations ORDER BY first, key")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get(4)?))
    })?;
    rows.map(|row| {
        let (key, json, first, last, event) = row?;
        let fact = serde_json::from_slice(&json)
            .map_err(|e| StoreError::Corrupt { id: format!("observation {key}"), reason: e.to_string() })?;
        Ok(crate::Observation {
            fact,
            first: Timestamp::from_unix_nanos(first),
            last: Timestamp::from_unix_nanos(last),
            event,
        })
    })
    .collect()
}

fn observed_use(conn: &Connection) -> Result<Vec<crate::Use>> {
    let mut stmt = conn.prepare(
        "SELECT p.name, a.name, r.name, u.first, u.last, u.count FROM observed_use u
         JOIN names p ON p.id = u.principal JOIN names a ON a.id = u.action LEFT JOIN names r ON r.id = u.resource
         ORDER BY p.name, a.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(crate::Use {
            principal: r.get(0)?,
            action: r.get(1)?,
            resource: r.get(2)?,
            first: Timestamp::from_unix_nanos(r.get(3)?),
            last: Timestamp::from_unix_nanos(r.get(4)?),
            count: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
}

fn time_range(conn: &Connection) -> Result<Option<(Timestamp, Timestamp)>> {
    let (lo, hi) = conn.query_row("SELECT min(time), max(time) FROM events", [], |r| {
        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    Ok(lo.zip(hi).map(|(lo, hi)| (Timestamp::from_unix_nanos(lo), Timestamp::from_unix_nanos(hi))))
}

/// Each source's events: how many, the first and last times, and hourly
/// counts from `hourly_since` on (one pass over the table).
fn source_volumes(conn: &Connection, hourly_since: Timestamp) -> Result<Vec<crate::SourceVolume>> {
    const HOUR: i64 = 3_600_000_000_000;
    let mut by_source: std::collections::BTreeMap<(String, String), crate::SourceVolume> = Default::default();
    let mut stmt = conn.prepare(
        "SELECT f.name, s.name, count(*), min(e.time), max(e.time) FROM events e
         JOIN names f ON f.id = e.format JOIN names s ON s.id = e.system GROUP BY e.format, e.system",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (format, system, total, first, last) = row?;
        let v = crate::SourceVolume {
            format: format.clone(),
            system: system.clone(),
            total: total as u64,
            first: Timestamp::from_unix_nanos(first),
            last: Timestamp::from_unix_nanos(last),
            hourly: Vec::new(),
        };
        by_source.insert((format, system), v);
    }
    let mut stmt = conn.prepare(
        "SELECT f.name, s.name, e.time / ?1, count(*) FROM events e
         JOIN names f ON f.id = e.format JOIN names s ON s.id = e.system
         WHERE e.time >= ?2 GROUP BY e.format, e.system, e.time / ?1",
    )?;
    let rows = stmt.query_map(params![HOUR, hourly_since.unix_nanos()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (format, system, hour, n) = row?;
        if let Some(v) = by_source.get_mut(&(format, system)) {
            v.hourly.push((Timestamp::from_unix_nanos(hour * HOUR), n as u64));
        }
    }
    Ok(by_source.into_values().collect())
}

/// See [`EventReader::events_among`]: the principal's index read for the
/// window (sequence numbers and ids only), then the matches loaded.
fn seqs_among(
    conn: &Connection,
    principal: &str,
    since: Timestamp,
    until: Timestamp,
    ids: &HashSet<String>,
) -> Result<Vec<i64>> {
    let Some(id) = name_id(conn, principal)? else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.id FROM event_refs x JOIN events e ON e.seq = x.seq
         WHERE x.ref = ?1 AND x.time >= ?2 AND x.time <= ?3 ORDER BY x.time",
    )?;
    let mut rows = stmt.query(params![principal_ref(id), since.unix_nanos(), until.unix_nanos()])?;
    let mut seqs = Vec::new();
    while let Some(r) = rows.next()? {
        let event: String = r.get(1)?;
        if ids.contains(&event) {
            seqs.push(r.get(0)?);
        }
    }
    Ok(seqs)
}

/// See [`EventReader::activity`]: through the principal's index of events.
fn activity(conn: &Connection, principal: &str, since: Timestamp, until: Timestamp) -> Result<Vec<(String, u8, u64)>> {
    const HOUR: i64 = 3_600_000_000_000;
    let Some(id) = name_id(conn, principal)? else { return Ok(Vec::new()) };
    let id = principal_ref(id);
    let mut stmt = conn.prepare_cached(
        "SELECT n.name, (x.time / ?4) % 24, count(*) FROM event_refs x JOIN events e ON e.seq = x.seq
         JOIN names n ON n.id = e.action WHERE x.ref = ?1 AND x.time >= ?2 AND x.time < ?3
         GROUP BY e.action, (x.time / ?4) % 24",
    )?;
    let rows = stmt.query_map(params![id, since.unix_nanos(), until.unix_nanos(), HOUR], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.rem_euclid(24) as u8, r.get::<_, i64>(2)? as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

macro_rules! reader_impl {
    ($t:ty) => {
        impl EventReader for $t {
            fn query(&self, q: &EventQuery) -> Result<Vec<Event>> {
                query(&self.conn, q)
            }

            fn principals_named(&self, name: &str) -> Result<Vec<String>> {
                principals_named(&self.conn, name)
            }

            fn events_by_seq(&self, seqs: &[i64]) -> Result<Vec<Event>> {
                // Fetched in chunks by `IN`, then put back in the order asked.
                let mut found: HashMap<i64, Row> = HashMap::with_capacity(seqs.len());
                for chunk in seqs.chunks(500) {
                    let list = chunk.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
                    let mut stmt = self.conn.prepare(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN relinks r ON r.seq = e.seq WHERE e.seq IN ({list})"
                    ))?;
                    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, row(r)?)))?;
                    for r in rows {
                        let (seq, row) = r?;
                        found.insert(seq, row);
                    }
                }
                let rows = seqs.iter().filter_map(|s| found.remove(s)).collect();
                load(&self.conn, rows, true)
            }

            fn get(&self, id: &EventId, time: Option<Timestamp>) -> Result<Option<Event>> {
                get(&self.conn, id, time)
            }

            fn issuer_of(&self, credential_id: &str) -> Result<Option<Event>> {
                let Some(c) = name_id(&self.conn, credential_id)? else { return Ok(None) };
                Ok(load_where(&self.conn, "e.issued = ?1", &[&c], false)?.into_iter().next())
            }

            fn using_credential(&self, credential_id: &str) -> Result<Vec<Event>> {
                let Some(c) = name_id(&self.conn, credential_id)? else { return Ok(Vec::new()) };
                load_where(&self.conn, "e.credential = ?1", &[&c], false)
            }

            fn count(&self) -> Result<u64> {
                count(&self.conn)
            }

            fn time_range(&self) -> Result<Option<(Timestamp, Timestamp)>> {
                time_range(&self.conn)
            }

            fn source_volumes(&self, hourly_since: Timestamp) -> Result<Vec<crate::SourceVolume>> {
                source_volumes(&self.conn, hourly_since)
            }

            fn activity(&self, principal: &str, since: Timestamp, until: Timestamp) -> Result<Vec<(String, u8, u64)>> {
                activity(&self.conn, principal, since, until)
            }

            fn events_among(
                &self,
                principal: &str,
                since: Timestamp,
                until: Timestamp,
                ids: &HashSet<String>,
            ) -> Result<Vec<Event>> {
                let seqs = seqs_among(&self.conn, principal, since, until, ids)?;
                self.events_by_seq(&seqs)
            }

            fn event_times(&self, ids: &HashSet<String>) -> Result<HashMap<String, Timestamp>> {
                event_times(&self.conn, ids)
            }

            fn contains(&self, events: &[&Event]) -> Result<Vec<bool>> {
                events
                    .iter()
                    .map(|e| Ok(matches!(locate(&self.conn, e.time.unix_nanos(), e.id.as_str())?, Slot::Stored(_))))
                    .collect()
            }
        }

        impl FindingReader for $t {
            fn findings(&self, q: &FindingQuery) -> Result<Vec<Finding>> {
                findings(&self.conn, q)
            }

            fn findings_by_category(&self) -> Result<std::collections::BTreeMap<String, u64>> {
                findings_by_category(&self.conn)
            }

            fn finding(&self, id: &str) -> Result<Option<Finding>> {
                finding(&self.conn, id)
            }

            fn risk(&self, principal: Option<&str>) -> Result<Vec<tenet_model::RiskPoint>> {
                // The latest point per principal.
                let latest =
                    "SELECT doc FROM risk r WHERE seq = (SELECT max(seq) FROM risk x WHERE x.principal = r.principal)";
                match principal {
                    Some(p) => risk_rows(&self.conn, &format!("{latest} AND principal = ?1"), &[&p]),
                    None => risk_rows(&self.conn, &format!("{latest} ORDER BY principal"), &[]),
                }
            }

            fn risk_history(&self, principal: &str) -> Result<Vec<tenet_model::RiskPoint>> {
                risk_rows(&self.conn, "SELECT doc FROM risk WHERE principal = ?1 ORDER BY at, seq", &[&principal])
            }
        }

        impl crate::TrustReader for $t {
            fn snapshots(&self) -> Result<Vec<crate::StoredSnapshot>> {
                snapshots(&self.conn)
            }

            fn trust_changes(&self) -> Result<Vec<crate::StoredChanges>> {
                trust_changes(&self.conn)
            }

            fn observations(&self) -> Result<Vec<crate::Observation>> {
                observations(&self.conn)
            }

            fn observed_use(&self) -> Result<Vec<crate::Use>> {
                observed_use(&self.conn)
            }
        }
    };
}

reader_impl!(SqliteStore);
reader_impl!(SqliteReader);

impl EventStore for SqliteStore {
    fn reader(&self) -> Result<Box<dyn StoreReader>> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        tune(&conn)?;
        Ok(Box::new(SqliteReader { conn }))
    }

    fn append(&mut self, batch: PreparedBatch) -> Result<Appended> {
        if let Some(why) = batch.failed {
            return Err(StoreError::Encode(why));
        }
        self.write(|store| {
            let mut out = Appended::default();
            let per_block = crate::block::BLOCK_EVENTS;
            let keys = &batch.keys;
            let mut refs = Vec::with_capacity(keys.refs.len());
            for (chunk, (events, block)) in keys.events.chunks(per_block).zip(&batch.blocks).enumerate() {
                let block_id = store.next_block;
                let stored = insert_block_events(&store.conn, &mut store.names, block_id, keys, events)?;
                out.stored += stored.len() as u64;
                out.duplicates += (events.len() - stored.len()) as u64;
                if stored.is_empty() {
                    // A block whose events were all duplicates is not kept.
                    continue;
                }
                for &(slot, seq) in &stored {
                    event_refs(seq, keys, &events[slot], |n| intern(&store.conn, &mut store.names, n), &mut refs)?;
                    let index = chunk * per_block + slot;
                    out.fresh.push((index as u32, seq));
                    if let Ok(d) = keys.declared.binary_search_by_key(&index, |(i, _)| *i) {
                        let e = &events[slot];
                        store
                            .conn
                            .prepare_cached(
                                "INSERT INTO trust_changes(seq, time, event, changes) VALUES (?1, ?2, ?3, ?4)",
                            )?
                            .execute(params![seq, e.time, keys.str(e.id), keys.declared[d].1])?;
                    }
                }
                store
                    .conn
                    .prepare_cached("INSERT INTO blocks(block, data) VALUES (?1, ?2)")?
                    .execute(params![block_id, block.data])?;
                store.next_block += 1;
            }
            // In key order, the reference index is walked once, not jumped about.
            refs.sort_unstable();
            insert_refs(&store.conn, &refs)?;
            insert_observations(&store.conn, keys)?;
            Ok(out)
        })
    }

    fn commit(&mut self) -> Result<()> {
        if !self.in_tx {
            return Ok(());
        }
        self.in_tx = false;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.forget_uncommitted();
            return Err(e.into());
        }
        Ok(())
    }

    fn put_snapshot(&mut self, snap: &tenet_model::Snapshot, provenance: &str) -> Result<bool> {
        let json = serde_json::to_vec(&snap.facts)
            .map_err(|e| StoreError::Encode(format!("snapshot {} of {}: {e}", snap.collected_at, snap.scope)))?;
        let digest = fnv(&json) as i64;
        let blob = crate::block::compress_blob(&json)?;
        self.write(|store| {
            let n = store.conn.execute(
                "INSERT INTO snapshots(scope, source, collected_at, digest, provenance, facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(scope, collected_at, digest) DO NOTHING",
                params![snap.scope, snap.source, snap.collected_at.unix_nanos(), digest, provenance, blob],
            )?;
            Ok(n == 1)
        })
    }

    fn refresh_use(&mut self) -> Result<u64> {
        // A bounded slice at a time: the events since the watermark can be
        // the whole store.
        const SLICE: i64 = 16_384;
        let mut n = 0;
        loop {
            let watermark = self.use_watermark()?;
            let rows = {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS}, e.seq FROM events e LEFT JOIN relinks r ON r.seq = e.seq
                     WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
                ))?;
                stmt.query_map([watermark, SLICE], |r| {
                    let seq: i64 = r.get(6)?;
                    Ok((row(r)?, seq))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
            };
            let Some(&(_, top)) = rows.last() else { return Ok(n) };
            let full = rows.len() as i64 == SLICE;
            let events = load(&self.conn, rows.into_iter().map(|(r, _)| r).collect(), false)?;
            n += events.len() as u64;
            let mut tally = UseTally::after(watermark);
            for e in &events {
                tally.add(e, top);
            }
            self.add_use(&tally)?;
            if !full {
                return Ok(n);
            }
        }
    }

    fn use_watermark(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'use_watermark'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn record_use(&mut self, tally: &UseTally) -> Result<()> {
        let watermark = self.use_watermark()?;
        if watermark == tally.starts_after() {
            self.add_use(tally)
        } else if watermark < tally.through() {
            self.refresh_use().map(|_| ())
        } else {
            Ok(())
        }
    }

    fn pending_analysis(&self) -> Result<Vec<crate::Pending>> {
        let watermark: i64 = self
            .conn
            .query_row("SELECT events_seq FROM analysis WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mut stmt = self.conn.prepare("SELECT time, seq FROM events WHERE seq > ?1")?;
        let mut out = stmt
            .query_map([watermark], |r| Ok(crate::Pending { time: r.get(0)?, seq: r.get(1)? }))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.sort_unstable();
        Ok(out)
    }

    fn analysis_state(&self) -> Result<Option<crate::AnalysisState>> {
        let row: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .query_row("SELECT events_seq, snapshot_id, learner FROM analysis WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(events_seq, snapshot_id, blob)| {
            let learner = crate::block::decompress(&blob)
                .map_err(|reason| StoreError::Corrupt { id: "analysis state".into(), reason })?;
            Ok(crate::AnalysisState { events_seq, snapshot_id, learner })
        })
        .transpose()
    }

    fn put_analysis_state(&mut self, state: &crate::AnalysisState) -> Result<()> {
        let blob = crate::block::compress_blob(&state.learner)?;
        self.write(|store| {
            store.conn.execute(
                "INSERT INTO analysis(id, events_seq, snapshot_id, learner) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET events_seq = excluded.events_seq,
                   snapshot_id = excluded.snapshot_id, learner = excluded.learner",
                params![state.events_seq, state.snapshot_id, blob],
            )?;
            Ok(())
        })
    }

    fn put_findings(&mut self, findings: &[Finding]) -> Result<Vec<Finding>> {
        self.write(|store| {
            let mut stored = Vec::with_capacity(findings.len());
            for f in findings {
                let mut f = f.clone();
                if let Some(old) = finding(&store.conn, &f.id)? {
                    f.status = old.status;
                    f.history = old.history;
                }
                let doc = serde_json::to_string(&f).unwrap_or_default();
                store.conn.prepare_cached(
                    "INSERT INTO findings(id, category, principal, status, first_seen, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(id) DO UPDATE SET category = excluded.category, principal = excluded.principal,
                       status = excluded.status, first_seen = excluded.first_seen, doc = excluded.doc",
                )?
                .execute(params![
                    f.id,
                    f.category.as_str(),
                    f.principal,
                    f.status.as_str(),
                    f.first_seen.unix_nanos(),
                    doc
                ])?;
                stored.push(f);
            }
            Ok(stored)
        })
    }

    fn set_finding_status(
        &mut self,
        id: &str,
        to: tenet_model::FindingStatus,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<Finding> {
        // Checked before writing: a refused change must not roll back
        // anything else in the transaction.
        let mut f = finding(&self.conn, id)?.ok_or_else(|| StoreError::NoSuchFinding(id.to_string()))?;
        if f.status == to {
            return Err(StoreError::SameStatus { id: id.to_string(), status: to.as_str().to_string() });
        }
        let updated = self.write(|store| {
            f.history.push(tenet_model::StatusChange { at, from: f.status, to, reason: reason.map(str::to_string) });
            f.status = to;
            let doc = serde_json::to_string(&f).unwrap_or_default();
            store.conn.execute(
                "UPDATE findings SET status = ?2, doc = ?3 WHERE id = ?1",
                params![f.id, f.status.as_str(), doc],
            )?;
            Ok(f)
        })?;
        Ok(updated)
    }

    fn queue_notices(&mut self, changes: &[(Timestamp, String, tenet_model::NoticeChange)]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write(|store| {
            let mut insert =
                store.conn.prepare_cached("INSERT INTO pending_notices(at, principal, change) VALUES (?1, ?2, ?3)")?;
            for (at, principal, change) in changes {
                let text = serde_json::to_string(change).map_err(|e| StoreError::Encode(e.to_string()))?;
                insert.execute(params![at.unix_nanos(), principal, text])?;
            }
            Ok(())
        })
    }

    fn put_risk(&mut self, points: &[tenet_model::RiskPoint]) -> Result<()> {
        self.write(|store| {
            for p in points {
                let doc = serde_json::to_string(p).unwrap_or_default();
                store
                    .conn
                    .prepare_cached("INSERT INTO risk(principal, at, doc) VALUES (?1, ?2, ?3)")?
                    .execute(params![p.principal, p.at.unix_nanos(), doc])?;
            }
            Ok(())
        })
    }

    fn others_commits(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn rollback(&mut self) {
        if self.in_tx {
            self.in_tx = false;
            let _ = self.conn.execute_batch("ROLLBACK");
            self.forget_uncommitted();
        }
    }

    fn put_notices(&mut self, notices: &[tenet_model::TrustNotice]) -> Result<()> {
        if notices.is_empty() {
            return Ok(());
        }
        self.write(|store| {
            let mut insert =
                store.conn.prepare_cached("INSERT INTO trust_notices(seq, principal, doc) VALUES (?1, ?2, ?3)")?;
            for n in notices {
                let seq = i64::try_from(n.seq).map_err(|_| StoreError::Corrupt {
                    id: format!("trust notice {}", n.seq),
                    reason: "seq beyond i64".into(),
                })?;
                insert.execute(params![seq, n.principal, serde_json::to_string(n).unwrap_or_default()])?;
            }
            Ok(())
        })
    }

    fn pending_notices(&self) -> Result<Vec<(i64, tenet_model::Timestamp, String, tenet_model::NoticeChange)>> {
        let mut stmt = self.conn.prepare_cached("SELECT id, at, principal, change FROM pending_notices ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, at, principal, change)| {
                let change = serde_json::from_str(&change).map_err(|e| StoreError::Corrupt {
                    id: format!("pending trust notice {id}"),
                    reason: e.to_string(),
                })?;
                Ok((id, tenet_model::Timestamp::from_unix_nanos(at), principal, change))
            })
            .collect()
    }

    fn clear_pending_notices(&mut self, ids: &[i64]) -> Result<()> {
        self.write(|store| {
            let mut delete = store.conn.prepare_cached("DELETE FROM pending_notices WHERE id = ?1")?;
            for id in ids {
                delete.execute([id])?;
            }
            Ok(())
        })
    }

    fn put_verdict(&mut self, v: &tenet_model::PrincipalVerdict, applied: bool) -> Result<i64> {
        self.write(|store| {
            store.conn.execute(
                "INSERT INTO verdicts(at, principal, verdict, reason, by_whom, applied) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![v.at.unix_nanos(), v.principal, v.verdict.as_str(), v.reason, v.by, applied],
            )?;
            Ok(store.conn.last_insert_rowid())
        })
    }

    fn verdict_applied(&mut self, seq: i64) -> Result<()> {
        self.write(|store| {
            store.conn.execute("UPDATE verdicts SET applied = 1 WHERE seq = ?1", [seq])?;
            Ok(())
        })
    }

    fn verdicts(&self, pending_only: bool) -> Result<Vec<tenet_model::PrincipalVerdict>> {
        let sql = if pending_only {
            "SELECT seq, at, principal, verdict, reason, by_whom FROM verdicts WHERE applied = 0 ORDER BY seq"
        } else {
            "SELECT seq, at, principal, verdict, reason, by_whom FROM verdicts ORDER BY seq"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, at, principal, verdict, reason, by)| {
                let verdict = tenet_model::Verdict::parse(&verdict).ok_or_else(|| StoreError::Corrupt {
                    id: format!("verdict {seq}"),
                    reason: format!("unknown verdict {verdict:?}"),
                })?;
                Ok(tenet_model::PrincipalVerdict {
                    seq,
                    at: Timestamp::from_unix_nanos(at),
                    principal,
                    verdict,
                    reason,
                    by,
                })
            })
            .collect()
    }

    fn first_time(&mut self, key: &str) -> Result<bool> {
        self.write(|store| Ok(store.conn.execute("INSERT OR IGNORE INTO relayed(key) VALUES (?1)", [key])? == 1))
    }

    fn last_notice(&self) -> Result<u64> {
        last_notice(&self.conn)
    }

    fn relink(&mut self, event: &Event, known: usize) -> Result<usize> {
        // One writer: what the caller read is what is stored.
        self.write(|store| {
            if known >= event.principals().count() {
                return Ok(known);
            }
            if let Slot::Stored(seq) = locate(&store.conn, event.time.unix_nanos(), event.id.as_str())? {
                let actor = serde_json::to_string(&event.actor).unwrap_or_default();
                let chain = serde_json::to_string(&event.chain).unwrap_or_default();
                store.conn.execute(
                    "INSERT INTO relinks(seq, actor, chain) VALUES (?1, ?2, ?3)
                     ON CONFLICT(seq) DO UPDATE SET actor = excluded.actor, chain = excluded.chain",
                    params![seq, actor, chain],
                )?;
                let mut keys = Keys::default();
                keys.push(event);
                let mut refs = Vec::new();
                event_refs(seq, &keys, &keys.events[0], |n| intern(&store.conn, &mut store.names, n), &mut refs)?;
                insert_refs(&store.conn, &refs)?;
            }
            Ok(known)
        })
    }
}

impl Drop for SqliteStore {
    /// A store dropped with appends pending commits them rather than losing
    /// them silently; callers that need to know commit explicitly.
    fn drop(&mut self) {
        if let Err(e) = self.commit() {
            tracing::error!("events appended but not committed were lost: {e}");
        }
    }
}

/// The durable log of trust notices, read by another thread or process
/// than the writer's (the Shared Signals transmitter).
pub struct NoticeLog {
    conn: Connection,
}

impl NoticeLog {
    /// A read-only view of the log in `data_dir`'s store.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            data_dir.join("tenet.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(NoticeLog { conn })
    }
}

impl crate::NoticeReader for NoticeLog {
    fn notices_after(&self, seq: u64, limit: usize) -> Result<Vec<tenet_model::TrustNotice>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, doc FROM trust_notices WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt
            .query_map(
                params![i64::try_from(seq).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, doc)| {
                serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Corrupt { id: format!("trust notice {seq}"), reason: e.to_string() })
            })
            .collect()
    }

    fn last_notice(&self) -> Result<u64> {
        last_notice(&self.conn)
    }
}

fn last_notice(conn: &Connection) -> Result<u64> {
    let seq: Option<i64> = conn.query_row("SELECT max(seq) FROM trust_notices", [], |r| r.get(0))?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{Action, Principal, PrincipalKind, RawRecord, Resource, Source};

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

    #[test]
    fn a_version_1_store_is_migrated_without_losing_trust_changes() {
        use crate::TrustReader;
        use tenet_model::TrustChange;
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SqliteStore::open_dir(dir.path()).unwrap();
            let mut e = event("e1", 100, "alice");
            e.changes = vec![
                TrustChange::Retract { key: member("k8s:bob").key() },
                TrustChange::Observe { fact: member("k8s:alice") },
            ];
            s.append(PreparedBatch::new(vec![e])).unwrap();
            s.commit().unwrap();
            // As version 1 left it: changes only inside the tagged event.
            s.conn
                .execute_batch("DELETE FROM trust_changes; DELETE FROM observations; PRAGMA user_version = 1;")
                .unwrap();
        }
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        assert_eq!(s.trust_changes().unwrap().len(), 1);
        assert_eq!(s.observations().unwrap().len(), 1);
        let version: i64 = s.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn blocks_of_only_duplicates_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open_dir(dir.path()).unwrap();
        s.append(PreparedBatch::new(vec![event("a", 1, "x")])).unwrap();
        s.append(PreparedBatch::new(vec![event("a", 1, "x")])).unwrap();
        let blocks: i64 = s.conn.query_row("SELECT count(*) FROM blocks", [], |r| r.get(0)).unwrap();
        assert_eq!(blocks, 1);
    }

    #[test]
    fn distinct_ids_colliding_on_hash_and_time_are_both_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open_dir(dir.path()).unwrap();
        s.append(PreparedBatch::new(vec![event("a", 1, "x")])).unwrap();
        // Force a collision: another id already holding b's hash at the same time.
        s.conn
            .execute(
                "INSERT INTO events(time, idh, id, format, system, actor, action, block, slot)
                 SELECT time, ?1, 'holder', format, system, actor, action, block, slot FROM events WHERE id = 'a'",
                [id_hash("b")],
            )
            .unwrap();
        let out = s.append(PreparedBatch::new(vec![event("b", 1, "x")])).unwrap();
        assert_eq!((out.stored, out.duplicates), (1, 0));
        assert!(s.get(&EventId::from("b"), Some(Timestamp::from_unix_seconds(1))).unwrap().is_some());
        // Both are found again where they were put: re-ingest stores neither.
        let again = s.append(PreparedBatch::new(vec![event("a", 1, "x"), event("b", 1, "x")])).unwrap();
        assert_eq!((again.stored, again.duplicates), (0, 2));
        let mut b = s.get(&EventId::from("b"), Some(Timestamp::from_unix_seconds(1))).unwrap().unwrap();
        b.chain.push(Principal::new("carol", PrincipalKind::Human));
        s.relink(&b, 1).unwrap();
        let by_carol = s.query(&EventQuery { principal: Some("carol".into()), ..Default::default() }).unwrap();
        assert_eq!(by_carol.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(s.count().unwrap(), 3);
    }

    #[test]
    fn the_duplicate_probe_seeks_the_unique_index_on_time_and_id_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {PROBE}"))
            .unwrap()
            .query_map(params![0, 0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan, vec!["SEARCH events USING INDEX events_time_id (time=? AND idh=?)".to_string()]);
    }

    /// Virtual-machine steps the identity probe took while `batch` was
    /// appended a second time (every event a duplicate).
    fn probe_steps_on_reappend(batch: &[Event]) -> (Appended, i32) {
        use rusqlite::StatementStatus::VmStep;
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open_dir(dir.path()).unwrap();
        s.append(PreparedBatch::new(batch.to_vec())).unwrap();
        s.commit().unwrap();
        let before = s.conn.prepare_cached(PROBE).unwrap().get_status(VmStep);
        let again = s.append(PreparedBatch::new(batch.to_vec())).unwrap();
        (again, s.conn.prepare_cached(PROBE).unwrap().get_status(VmStep) - before)
    }

    #[test]
    fn a_duplicate_costs_the_same_probe_whether_thousands_of_events_share_its_second_or_none_do() {
        const N: usize = 3000;
        let dense: Vec<Event> = (0..N).map(|i| event(&format!("d{i}"), 1_700_000_000, "alice")).collect();
        let sparse: Vec<Event> = (0..N).map(|i| event(&format!("d{i}"), 1_700_000_000 + i as i64, "alice")).collect();
        let (dense_out, dense_steps) = probe_steps_on_reappend(&dense);
        let (sparse_out, sparse_steps) = probe_steps_on_reappend(&sparse);
        assert_eq!((dense_out.stored, dense_out.duplicates), (0, N as u64));
        assert_eq!((sparse_out.stored, sparse_out.duplicates), (0, N as u64));
        // One index seek per duplicate: the same few steps per event however
        // dense, where a scan of the second would take thousands.
        assert!(sparse_steps > 0, "the probe ran");
        assert_eq!(dense_steps, sparse_steps, "dense {dense_steps} vs sparse {sparse_steps} steps");
        assert!(dense_steps as usize <= 32 * N, "{dense_steps} steps for {N} duplicates");
    }
}
