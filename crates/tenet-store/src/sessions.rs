//! Live sessions, in `sessions.db` in the data directory: the sessions
//! enforcement points hold, each with its most recent decisions, so that a
//! restarted service can still revoke a session established before it.
//!
//! Written behind the decisions (a batch every quarter second, never on a
//! decision's path): a crash loses at most the last batch, and a session
//! lost that way comes back with its next request. Its own file, so that
//! these writes never wait on the Shared Signals outbox's.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::Result;

/// One session as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub id: String,
    pub principal: String,
    /// For an agent, the person it acts for.
    pub origin: Option<String>,
    /// Its recent decisions, as JSON (the owner of the sessions says what).
    pub recent: String,
    /// The order of last use: larger is more recent.
    pub last_used: u64,
    pub revoked: bool,
}

pub struct SessionStore {
    conn: Connection,
}

impl SessionStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS sessions (
                id        TEXT PRIMARY KEY,
                principal TEXT NOT NULL,
                origin    TEXT,
                recent    TEXT NOT NULL,
                last_used INTEGER NOT NULL,
                revoked   INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS sessions_by_use ON sessions(last_used);",
        )?;
        Ok(SessionStore { conn })
    }

    /// Writes `changed` sessions and removes `gone` ones, in one transaction.
    pub fn save(&mut self, changed: &[StoredSession], gone: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO sessions(id, principal, origin, recent, last_used, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET principal = excluded.principal, origin = excluded.origin,
                   recent = excluded.recent, last_used = excluded.last_used, revoked = excluded.revoked",
            )?;
            for s in changed {
                let used = i64::try_from(s.last_used).unwrap_or(i64::MAX);
                put.execute(params![s.id, s.principal, s.origin, s.recent, used, s.revoked])?;
            }
            let mut delete = tx.prepare_cached("DELETE FROM sessions WHERE id = ?1")?;
            for id in gone {
                delete.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The `limit` most recently used sessions, least recent first.
    pub fn load(&self, limit: usize) -> Result<Vec<StoredSession>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, principal, origin, recent, last_used, revoked FROM
               (SELECT * FROM sessions ORDER BY last_used DESC LIMIT ?1) ORDER BY last_used",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(StoredSession {
                id: r.get(0)?,
                principal: r.get(1)?,
                origin: r.get(2)?,
                recent: r.get(3)?,
                last_used: r.get::<_, i64>(4)?.max(0) as u64,
                revoked: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, used: u64) -> StoredSession {
        StoredSession {
            id: id.into(),
            principal: "user:alice@example.com".into(),
            origin: None,
            recent: "[]".into(),
            last_used: used,
            revoked: false,
        }
    }

    #[test]
    fn sessions_survive_reopening_updated_in_place_and_removed_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let mut store = SessionStore::open(&path).unwrap();
        store.save(&[session("a", 1), session("b", 2), session("c", 3)], &[]).unwrap();
        let mut a = session("a", 4);
        a.revoked = true;
        a.origin = Some("user:bob@example.com".into());
        store.save(&[a.clone()], &["b".to_string()]).unwrap();
        drop(store);
        let store = SessionStore::open(&path).unwrap();
        assert_eq!(store.load(10).unwrap(), vec![session("c", 3), a.clone()], "least recent first");
        assert_eq!(store.load(1).unwrap(), vec![a], "the most recent within the limit");
    }
}
