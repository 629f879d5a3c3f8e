//! API keys for callers of the server: stored hashed (SHA-256 of a random
//! 256-bit token; the token itself is shown once, at creation), with scopes,
//! revocable, in `keys.db` in the data directory.
//!
//! Creating the first key also sets an `auth_required` marker that nothing
//! clears: a server that has ever had keys keeps requiring one after every
//! key is revoked, rather than falling back to running open.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// The scopes a key may hold.
pub const SCOPES: &[&str] = &["decide", "ingest", "read", "admin", "ssf"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub revoked: Option<String>,
    /// SHA-256 of the token, hex.
    pub hash: String,
}

/// The keys a server authenticates with, as of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySnapshot {
    /// A key was ever created here: callers need a valid one, whether or
    /// not any is still active.
    pub auth_required: bool,
    pub active: Vec<ApiKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key named {0:?} exists already (revoke it first)")]
    Exists(String),
    #[error("no active key named {0:?}")]
    NoSuchKey(String),
    #[error("unknown scope {0:?}: scopes are decide, ingest, read, admin, ssf")]
    Scope(String),
    #[error("a key needs a name of letters, digits, '-', '_' or '.', and at least one scope")]
    Invalid,
    #[error("no random source: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for KeyError {
    fn from(e: rusqlite::Error) -> Self {
        KeyError::Store(e.into())
    }
}

/// The hash a token is stored and looked up under.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub struct KeyStore {
    conn: Connection,
}

impl KeyStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS api_keys (
                name    TEXT NOT NULL,
                scopes  TEXT NOT NULL,
                created TEXT NOT NULL,
                revoked TEXT,
                hash    TEXT NOT NULL UNIQUE
            );
            CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active ON api_keys(name) WHERE revoked IS NULL;
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        Ok(KeyStore { conn })
    }

    /// What a server needs to authenticate callers, read without writing
    /// (the server never writes `keys.db`): `None` when there is no key
    /// file at all. A file that cannot be read is an error, never "no keys".
    pub fn snapshot(path: &Path) -> Result<Option<KeySnapshot>> {
        if !path.try_exists().map_err(|e| StoreError::DataDir { path: path.display().to_string(), source: e })? {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        let store = KeyStore { conn };
        // One read transaction: the marker and the keys as of one moment.
        store.conn.execute_batch("BEGIN")?;
        let has_meta: bool = store.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )?;
        let marked = has_meta
            && store
                .conn
                .query_row("SELECT value FROM meta WHERE name = 'auth_required'", [], |r| r.get::<_, String>(0))
                .optional()?
                .is_some();
        let all = store.list()?;
        store.conn.execute_batch("COMMIT")?;
        // Rows are never deleted, so any row (even revoked) means keys were
        // configured: files written before the marker existed count too.
        let auth_required = marked || !all.is_empty();
        Ok(Some(KeySnapshot { auth_required, active: all.into_iter().filter(|k| k.revoked.is_none()).collect() }))
    }

    /// Creates a key; returns it and its token (the only time the token exists outside the caller).
    pub fn create(
        &mut self,
        name: &str,
        scopes: &[String],
        now: &str,
    ) -> std::result::Result<(ApiKey, String), KeyError> {
        let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok || scopes.is_empty() {
            return Err(KeyError::Invalid);
        }
        if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(KeyError::Scope(bad.clone()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        let token = format!("tnt_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let mut scopes: Vec<String> = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let key = ApiKey { name: name.into(), scopes, created: now.into(), revoked: None, hash: token_hash(&token) };
        let tx = self.conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO api_keys(name, scopes, created, hash) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![key.name, key.scopes.join(","), key.created, key.hash],
        )?;
        if inserted == 0 {
            return Err(KeyError::Exists(name.into()));
        }
        // With the key, in one transaction: from now on a key is required.
        tx.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('auth_required', ?1)", [&key.created])?;
        tx.commit()?;
        Ok((key, token))
    }

    pub fn revoke(&mut self, name: &str, now: &str) -> std::result::Result<(), KeyError> {
        let n = self
            .conn
            .execute("UPDATE api_keys SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL", params![name, now])?;
        if n == 0 {
            return Err(KeyError::NoSuchKey(name.into()));
        }
        Ok(())
    }

    /// Every key, revoked ones included, oldest first.
    pub fn list(&self) -> Result<Vec<ApiKey>> {
        let mut stmt = self.conn.prepare("SELECT name, scopes, created, revoked, hash FROM api_keys ORDER BY rowid")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ApiKey {
                    name: r.get(0)?,
                    scopes: r.get::<_, String>(1)?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                    created: r.get(2)?,
                    revoked: r.get(3)?,
                    hash: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn active(&self) -> Result<Vec<ApiKey>> {
        Ok(self.list()?.into_iter().filter(|k| k.revoked.is_none()).collect())
    }

    /// The active key a token belongs to.
    pub fn find(&self, token: &str) -> Result<Option<ApiKey>> {
        let hash = token_hash(token);
        Ok(self
            .conn
            .query_row("SELECT name FROM api_keys WHERE hash = ?1 AND revoked IS NULL", [&hash], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|name| self.list().ok()?.into_iter().find(|k| k.name == name && k.revoked.is_none())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_only_as_hashes_and_revocation_ends_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let mut ks = KeyStore::open(&path).unwrap();
        let (key, token) = ks.create("gateway", &["decide".into()], "t0").unwrap();
        assert!(token.starts_with("tnt_") && token.len() == 68);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token is not on disk");
        assert_eq!(ks.find(&token).unwrap().unwrap().name, "gateway");
        assert!(matches!(ks.create("gateway", &["admin".into()], "t1"), Err(KeyError::Exists(_))));
        assert!(matches!(ks.create("x", &["root".into()], "t1"), Err(KeyError::Scope(_))));
        ks.revoke("gateway", "t2").unwrap();
        assert!(ks.find(&token).unwrap().is_none());
        assert_eq!(ks.list().unwrap()[0].revoked.as_deref(), Some("t2"));
        assert_eq!(key.scopes, vec!["decide"]);
        // The name is free again once revoked.
        ks.create("gateway", &["decide".into()], "t3").unwrap();
    }

    #[test]
    fn once_a_key_was_created_auth_stays_required_after_every_key_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        assert_eq!(KeyStore::snapshot(&path).unwrap(), None, "no file: nothing configured, nothing created");
        let mut ks = KeyStore::open(&path).unwrap();
        assert!(!KeyStore::snapshot(&path).unwrap().unwrap().auth_required, "an empty key file requires nothing");
        ks.create("k", &["decide".into()], "t0").unwrap();
        ks.revoke("k", "t1").unwrap();
        let snap = KeyStore::snapshot(&path).unwrap().unwrap();
        assert!(snap.auth_required && snap.active.is_empty(), "{snap:?}");
        // A file written before the marker existed: its rows say keys were configured.
        ks.conn.execute("DROP TABLE meta", []).unwrap();
        assert!(KeyStore::snapshot(&path).unwrap().unwrap().auth_required);
        // A file that is not a key store is an error, never "no keys".
        drop(ks);
        std::fs::write(&path, b"not a database, not at all; just bytes that fill a page header").unwrap();
        assert!(KeyStore::snapshot(&path).is_err());
    }
}
