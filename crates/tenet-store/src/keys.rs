//! API keys for callers of the server: stored hashed (SHA-256 of a random
//! 256-bit token; the token itself is shown once, at creation), with scopes,
//! revocable, in `keys.db` in the data directory.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// The scopes a key may hold.
pub const SCOPES: &[&str] = &["decide", "ingest", "admin", "ssf"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub revoked: Option<String>,
    /// SHA-256 of the token, hex.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key named {0:?} exists already (revoke it first)")]
    Exists(String),
    #[error("no active key named {0:?}")]
    NoSuchKey(String),
    #[error("unknown scope {0:?}: scopes are decide, ingest, admin, ssf")]
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
            CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active ON api_keys(name) WHERE revoked IS NULL;",
        )?;
        Ok(KeyStore { conn })
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
        let inserted = self.conn.execute(
            "INSERT INTO api_keys(name, scopes, created, hash) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![key.name, key.scopes.join(","), key.created, key.hash],
        )?;
        if inserted == 0 {
            return Err(KeyError::Exists(name.into()));
        }
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
}
