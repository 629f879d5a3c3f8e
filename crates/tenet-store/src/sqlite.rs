//! The embedded backend: one SQLite file in WAL mode.
//!
//! Layout: `events` holds each event once (unique stable id), its indexed
//! columns, the normalised event as JSON and the raw record; `event_refs` is
//! a covering index from every principal and resource an event names to the
//! event, so "everything alice did, through any chain" and "everything that
//! touched this bucket" are range scans.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, ToSql, params};
use tenet_model::{Event, EventId, RawRecord};

use crate::{Appended, EventQuery, EventStore, Result, StoreError};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    time       INTEGER NOT NULL,
    format     TEXT NOT NULL,
    system     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    credential TEXT,
    issued     TEXT,
    doc        BLOB NOT NULL,
    raw        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_credential ON events(credential) WHERE credential IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_issued ON events(issued) WHERE issued IS NOT NULL;
CREATE TABLE IF NOT EXISTS event_refs (
    ref  TEXT NOT NULL,
    time INTEGER NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (ref, time, seq)
) WITHOUT ROWID;
";

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::DataDir { path: data_dir.display().to_string(), source: e })?;
        Self::open(&data_dir.join("tenet.db"))
    }

    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: durable against process crashes, and a
        // checkpoint per commit is not paid on the ingest path.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -262_144i64)?;
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(SqliteStore { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn decode(id: &str, doc: &[u8], raw: Option<Vec<u8>>) -> Result<Event> {
        let mut e: Event =
            serde_json::from_slice(doc).map_err(|source| StoreError::Corrupt { id: id.to_string(), source })?;
        if let Some(raw) = raw {
            e.raw = RawRecord::from(raw);
        }
        Ok(e)
    }

    fn load_where(&self, clause: &str, param: &str) -> Result<Vec<Event>> {
        let sql = format!("SELECT id, doc, raw FROM events WHERE {clause} ORDER BY time, seq");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([param], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?)))?;
        rows.map(|row| {
            let (id, doc, raw) = row?;
            Self::decode(&id, &doc, Some(raw))
        })
        .collect()
    }

    fn insert_refs(tx: &Connection, seq: i64, e: &Event) -> Result<()> {
        let mut refs = tx.prepare_cached("INSERT OR IGNORE INTO event_refs(ref, time, seq) VALUES (?1, ?2, ?3)")?;
        let t = e.time.unix_nanos();
        let mut key = String::with_capacity(96);
        for p in e.principals() {
            key.clear();
            key.push_str("p:");
            key.push_str(&p.id);
            refs.execute(params![key, t, seq])?;
        }
        for r in &e.resources {
            key.clear();
            key.push_str("r:");
            key.push_str(&r.id);
            refs.execute(params![key, t, seq])?;
        }
        Ok(())
    }
}

fn encode(e: &Event) -> Vec<u8> {
    // Serialising a plain struct of strings, numbers and enums cannot fail.
    serde_json::to_vec(e).unwrap_or_default()
}

impl EventStore for SqliteStore {
    fn append(&mut self, events: &[Event]) -> Result<Appended> {
        let tx = self.conn.transaction()?;
        let mut out = Appended::default();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events(id, time, format, system, actor, action, credential, issued, doc, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(id) DO NOTHING",
            )?;
            let mut action = String::with_capacity(64);
            for e in events {
                action.clear();
                action.push_str(&e.action.service);
                action.push(':');
                action.push_str(&e.action.operation);
                let changed = insert.execute(params![
                    e.id.as_str(),
                    e.time.unix_nanos(),
                    e.source.format,
                    e.source.system,
                    e.actor.id,
                    action,
                    e.session.as_ref().and_then(|s| s.credential_id.as_deref()),
                    e.issued.as_ref().map(|i| i.credential_id.as_str()),
                    encode(e),
                    e.raw.as_bytes(),
                ])?;
                if changed == 0 {
                    out.duplicates += 1;
                    continue;
                }
                out.stored += 1;
                Self::insert_refs(&tx, tx.last_insert_rowid(), e)?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn query(&self, q: &EventQuery) -> Result<Vec<Event>> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        // Drive from the narrowest index available: a principal or resource
        // reference range, else the time index.
        let (from, time_col) = match (&q.principal, &q.resource) {
            (Some(p), _) => {
                args.push(Box::new(format!("p:{p}")));
                conds.push(format!("x.ref = ?{}", args.len()));
                if let Some(r) = &q.resource {
                    args.push(Box::new(format!("r:{r}")));
                    conds.push(format!(
                        "EXISTS (SELECT 1 FROM event_refs y WHERE y.ref = ?{} AND y.seq = e.seq)",
                        args.len()
                    ));
                }
                ("event_refs x JOIN events e ON e.seq = x.seq", "x.time")
            }
            (None, Some(r)) => {
                args.push(Box::new(format!("r:{r}")));
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
            args.push(Box::new(a.clone()));
            let n = args.len();
            conds.push(format!("(e.action = ?{n} OR substr(e.action, instr(e.action, ':') + 1) = ?{n})"));
        }
        if let Some(s) = &q.source {
            args.push(Box::new(s.clone()));
            let n = args.len();
            conds.push(format!("(e.format = ?{n} OR e.system = ?{n})"));
        }
        let where_clause = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let raw_col = if q.with_raw { "e.raw" } else { "NULL" };
        // With a limit, the newest events are the interesting ones; they are
        // still returned oldest first.
        let sql = match q.limit {
            Some(n) => format!(
                "SELECT * FROM (SELECT e.id, e.doc, {raw_col}, {time_col} AS t, e.seq AS s FROM {from} {where_clause}
                 ORDER BY t DESC, s DESC LIMIT {n}) ORDER BY t, s"
            ),
            None => format!("SELECT e.id, e.doc, {raw_col} FROM {from} {where_clause} ORDER BY {time_col}, e.seq"),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))
        })?;
        rows.map(|row| {
            let (id, doc, raw) = row?;
            Self::decode(&id, &doc, raw)
        })
        .collect()
    }

    fn get(&self, id: &EventId) -> Result<Option<Event>> {
        let mut stmt = self.conn.prepare_cached("SELECT doc, raw FROM events WHERE id = ?1")?;
        let row =
            stmt.query_row([id.as_str()], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))).optional()?;
        row.map(|(doc, raw)| Self::decode(id.as_str(), &doc, Some(raw))).transpose()
    }

    fn issuer_of(&self, credential_id: &str) -> Result<Option<Event>> {
        Ok(self.load_where("issued = ?1", credential_id)?.into_iter().next())
    }

    fn using_credential(&self, credential_id: &str) -> Result<Vec<Event>> {
        self.load_where("credential = ?1", credential_id)
    }

    fn relink(&mut self, event: &Event) -> Result<()> {
        let id = event.id.as_str();
        let tx = self.conn.transaction()?;
        {
            let row = tx
                .query_row("SELECT seq, doc FROM events WHERE id = ?1", [id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()?;
            if let Some((seq, doc)) = row {
                let mut e = Self::decode(id, &doc, None)?;
                e.actor = event.actor.clone();
                e.chain = event.chain.clone();
                tx.execute("UPDATE events SET doc = ?1 WHERE seq = ?2", params![encode(&e), seq])?;
                Self::insert_refs(&tx, seq, &e)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }
}
