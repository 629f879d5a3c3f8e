//! Shared Signals state, in `ssf.db` in the data directory: each receiver's
//! stream (configuration, status, the subjects it removed) and the outbox
//! of signed SETs not yet delivered, with the cursor of trust notices
//! already turned into SETs.
//!
//! A SET is signed once and kept as signed: every retry, every poll and
//! every restart sends the same bytes with the same `jti`, so receivers can
//! deduplicate. SETs enter the outbox in the same transaction as the
//! cursor that says their cause was handled: after a crash a cause is
//! either wholly in the outbox or handled again, never half. (WAL with
//! `synchronous = NORMAL`: a commit survives the process being killed; an
//! operating-system crash may lose the last ones, which are then handled
//! again from the notice log.)

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use tenet_ssf::{StreamConfig, StreamStatus, Subject};

use crate::{Result, StoreError, TablesAt};

/// A stream and what Tenet keeps beside its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// The API key name of the receiver that created it.
    pub owner: String,
    pub config: StreamConfig,
    pub status: StreamStatus,
    pub reason: Option<String>,
    /// Seconds since the epoch of the last receiver-requested verification.
    pub last_verification: Option<f64>,
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    /// The last trust notice before the stream existed: it hears of later ones only.
    pub since_notice: u64,
}

/// A signed SET waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub seq: i64,
    pub stream_id: String,
    pub jti: String,
    /// The SET's subject as JSON: what ordering and exclusions key on.
    pub subject: String,
    pub set: String,
    /// Seconds since the epoch: when the SET entered the outbox.
    pub queued: f64,
    pub attempts: u32,
}

/// A SET to add to the outbox.
#[derive(Debug, Clone)]
pub struct NewSet {
    pub stream_id: String,
    pub jti: String,
    pub subject: String,
    pub set: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SsfStoreError {
    #[error("receiver {0:?} already has a stream")]
    Exists(String),
    #[error("no stream {0:?}")]
    NoSuchStream(String),
    #[error("stored stream {id:?} is unreadable: {why}")]
    Corrupt { id: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for SsfStoreError {
    fn from(e: rusqlite::Error) -> Self {
        SsfStoreError::Store(e.into())
    }
}

pub(crate) type SsfResult<T> = std::result::Result<T, SsfStoreError>;

/// Held SETs per paused stream: beyond this the oldest are dropped (SSF
/// 1.0 §8.1.2 lets a transmitter drop held events; this bounds the file).
pub const MAX_HELD_PER_STREAM: i64 = 100_000;

/// Shared Signals state: streams, removed subjects, the outbox and its cursor.
pub struct SsfStore {
    tables: Box<dyn SsfTables>,
    /// Bumped by every change to what decides which SETs a stream gets
    /// (its configuration, status, removed subjects): readers that cache
    /// the streams compare it. Only this process changes streams.
    generation: u64,
}

impl SsfStore {
    pub fn open(at: &TablesAt) -> Result<Self> {
        let tables: Box<dyn SsfTables> = match at {
            TablesAt::File(path) => Box::new(FileSsf::open(path)?),
            TablesAt::Postgres(url) => Box::new(crate::postgres::Tables::connect(url)?),
        };
        Ok(SsfStore { tables, generation: 0 })
    }

    /// See the field: changes when any stream's targeting may have.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every stream, oldest first.
    pub fn streams(&self) -> SsfResult<Vec<Stream>> {
        self.tables.streams()
    }

    /// The streams a receiver owns (at most one).
    pub fn streams_of(&self, owner: &str) -> SsfResult<Vec<Stream>> {
        self.tables.streams_of(owner)
    }

    pub fn stream(&self, stream_id: &str) -> SsfResult<Option<Stream>> {
        self.tables.stream(stream_id)
    }

    /// A new stream for `owner`, enabled, hearing of trust notices after
    /// `since_notice`; refused when the owner has one already.
    pub fn create(&mut self, owner: &str, config: &StreamConfig, since_notice: u64) -> SsfResult<()> {
        self.generation += 1;
        self.tables.create(owner, config, since_notice)
    }

    pub fn update(&mut self, config: &StreamConfig) -> SsfResult<()> {
        self.generation += 1;
        self.tables.update(config)
    }

    /// Deletes a stream with its subjects and undelivered SETs.
    pub fn delete(&mut self, stream_id: &str) -> SsfResult<()> {
        self.generation += 1;
        self.tables.delete(stream_id)
    }

    /// Sets a stream's status. Disabling drops what it held: a disabled
    /// stream transmits nothing, later or now.
    pub fn set_status(&mut self, stream_id: &str, status: StreamStatus, reason: Option<&str>) -> SsfResult<()> {
        self.generation += 1;
        self.tables.set_status(stream_id, status, reason)
    }

    pub fn set_last_verification(&mut self, stream_id: &str, at: f64) -> SsfResult<()> {
        self.tables.set_last_verification(stream_id, at)
    }

    /// A receiver removed a subject: no events about it from now on.
    pub fn exclude(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()> {
        self.generation += 1;
        self.tables.exclude(stream_id, subject)
    }

    /// A receiver added a subject: events about it again.
    pub fn include(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()> {
        self.generation += 1;
        self.tables.include(stream_id, subject)
    }

    pub fn excluded(&self, stream_id: &str) -> SsfResult<Vec<Subject>> {
        self.tables.excluded(stream_id)
    }

    /// The last trust notice already turned into SETs.
    pub fn cursor(&self) -> SsfResult<i64> {
        self.tables.cursor()
    }

    /// Adds SETs to the outbox and moves the cursor, in one transaction.
    /// SETs for streams no longer there, or disabled, are not kept; a
    /// paused stream holding more than [`MAX_HELD_PER_STREAM`] loses its
    /// oldest. A `jti` already in the outbox is not added twice.
    pub fn enqueue(&mut self, sets: &[NewSet], cursor: Option<i64>, now: f64) -> SsfResult<usize> {
        self.tables.enqueue(sets, cursor, now)
    }

    /// A stream's undelivered SETs, oldest first.
    pub fn pending(&self, stream_id: &str, limit: usize) -> SsfResult<Vec<Outgoing>> {
        self.tables.pending(stream_id, limit)
    }

    pub fn pending_count(&self, stream_id: &str) -> SsfResult<u64> {
        self.tables.pending_count(stream_id)
    }

    /// The receiver took these SETs (a 202, or a poll's `ack`): gone from
    /// the outbox. Returns how many were there.
    pub fn delivered(&mut self, stream_id: &str, jtis: &[String]) -> SsfResult<usize> {
        self.tables.delivered(stream_id, jtis)
    }

    /// The receiver refused these SETs for good (an RFC 8935 error): gone
    /// from the outbox, counted, the last reason kept.
    pub fn refused(&mut self, stream_id: &str, refusals: &[(String, String)]) -> SsfResult<usize> {
        self.tables.refused(stream_id, refusals)
    }

    /// A delivery attempt failed and will be tried again.
    pub fn attempted(&mut self, seq: i64, why: &str) -> SsfResult<()> {
        self.tables.attempted(seq, why)
    }
}

/// The transmitter's signing keys as stored (PKCS#8 DER).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKeys {
    pub active: Vec<u8>,
    /// The key a rotation replaced, published until retired.
    pub previous: Option<Vec<u8>>,
}

/// The signing keys in a PostgreSQL store, shared by every node of a
/// cluster: SETs are signed by whichever node transmits, and receivers
/// verify them with one JWKS whichever it is. (A single service on the
/// embedded store keeps its keys in files of its data directory.)
pub struct SigningKeyTable {
    tables: crate::postgres::Tables,
}

impl SigningKeyTable {
    pub fn open(url: &str) -> Result<Self> {
        Ok(SigningKeyTable { tables: crate::postgres::Tables::connect(url)? })
    }

    /// The keys, `None` before the first is written.
    pub fn read(&self) -> Result<Option<StoredKeys>> {
        self.tables.signing_keys()
    }

    /// Makes `der` the active key unless there is one already (another
    /// node wrote it first); returns the keys as they then are.
    pub fn write_first(&self, der: &[u8]) -> Result<StoredKeys> {
        self.tables.first_signing_key(der)
    }

    /// Makes `der` the active key; the one it replaces becomes the
    /// previous one (a previous one before it is dropped).
    pub fn rotate(&self, der: &[u8]) -> Result<()> {
        self.tables.rotate_signing_key(der)
    }

    /// Drops the previous key; returns it, if there was one.
    pub fn retire(&self) -> Result<Option<Vec<u8>>> {
        self.tables.retire_signing_key()
    }
}

/// What each backend's tables answer; [`SsfStore`] documents each.
pub(crate) trait SsfTables: Send {
    fn streams(&self) -> SsfResult<Vec<Stream>>;
    fn streams_of(&self, owner: &str) -> SsfResult<Vec<Stream>>;
    fn stream(&self, stream_id: &str) -> SsfResult<Option<Stream>>;
    fn create(&mut self, owner: &str, config: &StreamConfig, since_notice: u64) -> SsfResult<()>;
    fn update(&mut self, config: &StreamConfig) -> SsfResult<()>;
    fn delete(&mut self, stream_id: &str) -> SsfResult<()>;
    fn set_status(&mut self, stream_id: &str, status: StreamStatus, reason: Option<&str>) -> SsfResult<()>;
    fn set_last_verification(&mut self, stream_id: &str, at: f64) -> SsfResult<()>;
    fn exclude(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()>;
    fn include(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()>;
    fn excluded(&self, stream_id: &str) -> SsfResult<Vec<Subject>>;
    fn cursor(&self) -> SsfResult<i64>;
    fn enqueue(&mut self, sets: &[NewSet], cursor: Option<i64>, now: f64) -> SsfResult<usize>;
    fn pending(&self, stream_id: &str, limit: usize) -> SsfResult<Vec<Outgoing>>;
    fn pending_count(&self, stream_id: &str) -> SsfResult<u64>;
    fn delivered(&mut self, stream_id: &str, jtis: &[String]) -> SsfResult<usize>;
    fn refused(&mut self, stream_id: &str, refusals: &[(String, String)]) -> SsfResult<usize>;
    fn attempted(&mut self, seq: i64, why: &str) -> SsfResult<()>;
}

/// The SQLite file's tables.
struct FileSsf {
    conn: Connection,
}

impl FileSsf {
    fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS streams (
                stream_id TEXT PRIMARY KEY,
                owner     TEXT NOT NULL UNIQUE,
                config    TEXT NOT NULL,
                status    TEXT NOT NULL,
                reason    TEXT,
                last_verification REAL,
                delivered INTEGER NOT NULL DEFAULT 0,
                failed    INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                since_notice INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE IF NOT EXISTS excluded (
                stream_id TEXT NOT NULL,
                subject   TEXT NOT NULL,
                PRIMARY KEY (stream_id, subject)
            );
            CREATE TABLE IF NOT EXISTS outbox (
                seq       INTEGER PRIMARY KEY AUTOINCREMENT,
                stream_id TEXT NOT NULL,
                jti       TEXT NOT NULL UNIQUE,
                subject   TEXT NOT NULL,
                set_text  TEXT NOT NULL,
                queued    REAL NOT NULL,
                attempts  INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX IF NOT EXISTS outbox_stream ON outbox(stream_id, seq);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )?;
        Ok(FileSsf { conn })
    }

    fn streams_where(&self, clause: &str, arg: &str) -> SsfResult<Vec<Stream>> {
        let sql = format!(
            "SELECT stream_id, owner, config, status, reason, last_verification, delivered, failed, last_error,
               since_notice
             FROM streams {clause} ORDER BY rowid"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = if clause.is_empty() { stmt.query([])? } else { stmt.query([arg])? };
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let corrupt = |why: String| SsfStoreError::Corrupt { id: id.clone(), why };
            let config: String = r.get(2)?;
            let value: serde_json::Value = serde_json::from_str(&config).map_err(|e| corrupt(e.to_string()))?;
            let config = StreamConfig::from_stored(&value).map_err(|e| corrupt(e.to_string()))?;
            let status: String = r.get(3)?;
            let status = StreamStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?;
            out.push(Stream {
                owner: r.get(1)?,
                config,
                status,
                reason: r.get(4)?,
                last_verification: r.get(5)?,
                delivered: r.get::<_, i64>(6)?.max(0) as u64,
                failed: r.get::<_, i64>(7)?.max(0) as u64,
                last_error: r.get(8)?,
                since_notice: r.get::<_, i64>(9)?.max(0) as u64,
            });
        }
        Ok(out)
    }
}

impl SsfTables for FileSsf {
    fn streams(&self) -> SsfResult<Vec<Stream>> {
        self.streams_where("", "")
    }

    fn streams_of(&self, owner: &str) -> SsfResult<Vec<Stream>> {
        self.streams_where("WHERE owner = ?1", owner)
    }

    fn stream(&self, stream_id: &str) -> SsfResult<Option<Stream>> {
        Ok(self.streams_where("WHERE stream_id = ?1", stream_id)?.pop())
    }

    fn create(&mut self, owner: &str, config: &StreamConfig, since_notice: u64) -> SsfResult<()> {
        let inserted = self.conn.execute(
            "INSERT INTO streams(stream_id, owner, config, status, since_notice) VALUES (?1, ?2, ?3, 'enabled', ?4)
             ON CONFLICT DO NOTHING",
            params![config.stream_id, owner, config.to_stored().to_string(), since_notice as i64],
        )?;
        if inserted == 0 {
            return Err(SsfStoreError::Exists(owner.to_string()));
        }
        Ok(())
    }

    fn update(&mut self, config: &StreamConfig) -> SsfResult<()> {
        let n = self.conn.execute(
            "UPDATE streams SET config = ?2 WHERE stream_id = ?1",
            params![config.stream_id, config.to_stored().to_string()],
        )?;
        if n == 0 {
            return Err(SsfStoreError::NoSuchStream(config.stream_id.clone()));
        }
        Ok(())
    }

    fn delete(&mut self, stream_id: &str) -> SsfResult<()> {
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM streams WHERE stream_id = ?1", [stream_id])?;
        if n == 0 {
            return Err(SsfStoreError::NoSuchStream(stream_id.to_string()));
        }
        tx.execute("DELETE FROM excluded WHERE stream_id = ?1", [stream_id])?;
        tx.execute("DELETE FROM outbox WHERE stream_id = ?1", [stream_id])?;
        tx.commit()?;
        Ok(())
    }

    fn set_status(&mut self, stream_id: &str, status: StreamStatus, reason: Option<&str>) -> SsfResult<()> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE streams SET status = ?2, reason = ?3 WHERE stream_id = ?1",
            params![stream_id, status.as_str(), reason],
        )?;
        if n == 0 {
            return Err(SsfStoreError::NoSuchStream(stream_id.to_string()));
        }
        if status == StreamStatus::Disabled {
            tx.execute("DELETE FROM outbox WHERE stream_id = ?1", [stream_id])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_last_verification(&mut self, stream_id: &str, at: f64) -> SsfResult<()> {
        self.conn.execute("UPDATE streams SET last_verification = ?2 WHERE stream_id = ?1", params![stream_id, at])?;
        Ok(())
    }

    fn exclude(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO excluded(stream_id, subject) VALUES (?1, ?2)",
            params![stream_id, subject_key(subject)],
        )?;
        Ok(())
    }

    fn include(&mut self, stream_id: &str, subject: &Subject) -> SsfResult<()> {
        self.conn.execute(
            "DELETE FROM excluded WHERE stream_id = ?1 AND subject = ?2",
            params![stream_id, subject_key(subject)],
        )?;
        Ok(())
    }

    fn excluded(&self, stream_id: &str) -> SsfResult<Vec<Subject>> {
        let mut stmt = self.conn.prepare("SELECT subject FROM excluded WHERE stream_id = ?1 ORDER BY rowid")?;
        let keys = stmt.query_map([stream_id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(keys.iter().filter_map(|k| serde_json::from_str(k).ok()).collect())
    }

    fn cursor(&self) -> SsfResult<i64> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'notice_cursor'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn enqueue(&mut self, sets: &[NewSet], cursor: Option<i64>, now: f64) -> SsfResult<usize> {
        let tx = self.conn.transaction()?;
        let mut kept = 0;
        {
            let mut status = tx.prepare_cached("SELECT status FROM streams WHERE stream_id = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox(stream_id, jti, subject, set_text, queued) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in sets {
                let st: Option<String> = status.query_row([&s.stream_id], |r| r.get(0)).optional()?;
                match st.as_deref() {
                    None | Some("disabled") => continue,
                    _ => {}
                }
                kept += insert.execute(params![s.stream_id, s.jti, s.subject, s.set, now])?;
            }
            let mut trim = tx.prepare_cached(
                "DELETE FROM outbox WHERE stream_id = ?1 AND seq <= (SELECT seq FROM outbox WHERE stream_id = ?1
                 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )?;
            let mut seen = std::collections::BTreeSet::new();
            for s in sets {
                if seen.insert(&s.stream_id) {
                    trim.execute(params![s.stream_id, MAX_HELD_PER_STREAM])?;
                }
            }
        }
        if let Some(c) = cursor {
            tx.execute(
                "INSERT INTO meta(name, value) VALUES ('notice_cursor', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
                [c],
            )?;
        }
        tx.commit()?;
        Ok(kept)
    }

    fn pending(&self, stream_id: &str, limit: usize) -> SsfResult<Vec<Outgoing>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, stream_id, jti, subject, set_text, queued, attempts FROM outbox
             WHERE stream_id = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![stream_id, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(Outgoing {
                    seq: r.get(0)?,
                    stream_id: r.get(1)?,
                    jti: r.get(2)?,
                    subject: r.get(3)?,
                    set: r.get(4)?,
                    queued: r.get(5)?,
                    attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn pending_count(&self, stream_id: &str) -> SsfResult<u64> {
        let n: i64 =
            self.conn.query_row("SELECT count(*) FROM outbox WHERE stream_id = ?1", [stream_id], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn delivered(&mut self, stream_id: &str, jtis: &[String]) -> SsfResult<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE stream_id = ?1 AND jti = ?2")?;
            for j in jtis {
                n += del.execute(params![stream_id, j])?;
            }
        }
        tx.execute("UPDATE streams SET delivered = delivered + ?2 WHERE stream_id = ?1", params![stream_id, n as i64])?;
        tx.commit()?;
        Ok(n)
    }

    fn refused(&mut self, stream_id: &str, refusals: &[(String, String)]) -> SsfResult<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE stream_id = ?1 AND jti = ?2")?;
            for (jti, _) in refusals {
                n += del.execute(params![stream_id, jti])?;
            }
        }
        if let Some((_, why)) = refusals.last() {
            tx.execute(
                "UPDATE streams SET failed = failed + ?2, last_error = ?3 WHERE stream_id = ?1",
                params![stream_id, n as i64, why],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn attempted(&mut self, seq: i64, why: &str) -> SsfResult<()> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1", [seq])?;
        tx.execute(
            "UPDATE streams SET last_error = ?2 WHERE stream_id = (SELECT stream_id FROM outbox WHERE seq = ?1)",
            params![seq, why],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// The key a subject is stored and compared under: its JSON.
pub fn subject_key(subject: &Subject) -> String {
    serde_json::to_string(subject).unwrap_or_default()
}
