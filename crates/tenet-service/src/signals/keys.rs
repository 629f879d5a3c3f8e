//! The keys SETs are signed with.
//!
//! - A service on the embedded store keeps them in its data directory
//!   (`ssf/signing-key.pk8`, mode 0600).
//! - On a PostgreSQL store they are in the store (`ssf_signing_keys`), so
//!   every node of a cluster signs with the same key and receivers verify
//!   with one JWKS whichever node transmits. A key file found in the data
//!   directory when the store has none becomes the store's (receivers keep
//!   the key they know).
//!
//! The first key is generated on first start; `tenet ssf rotate-key`
//! rotates. During a rotation the previous key stays published in the
//! JWKS, so a receiver verifying a SET signed just before still finds its
//! key; `tenet ssf retire-key` stops publishing it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tenet_ssf::SigningKey;
use tenet_store::ssf::{SigningKeyTable, StoredKeys};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{at}: {why}")]
    Key { at: String, why: tenet_ssf::KeyError },
    #[error("the signing keys in the store: {0}")]
    Store(#[from] tenet_store::StoreError),
}

/// Where the signing keys live.
#[derive(Debug, Clone)]
pub enum KeysAt {
    /// Files in this folder (`<data dir>/ssf`).
    Dir(PathBuf),
    /// A PostgreSQL store; `dir` is where a key from before may be.
    Store { url: String, dir: PathBuf },
}

impl KeysAt {
    /// Where a service whose data directory is `data_dir`, on `store`, keeps them.
    pub fn of(data_dir: &Path, store: &tenet_store::StoreAt) -> KeysAt {
        let dir = super::key_dir(data_dir);
        match store {
            tenet_store::StoreAt::Postgres(url) => KeysAt::Store { url: url.clone(), dir },
            tenet_store::StoreAt::Embedded(_) => KeysAt::Dir(dir),
        }
    }
}

/// What the keys were read from, to tell when they changed.
#[derive(PartialEq)]
enum Read {
    /// When each file (active, previous) was last changed, or that it is absent.
    Files(Option<SystemTime>, Option<SystemTime>),
    /// The keys as stored.
    Stored(Box<StoredKeys>),
}

impl std::fmt::Debug for Read {
    /// Never the keys themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Read::Files(a, p) => f.debug_tuple("Files").field(a).field(p).finish(),
            Read::Stored(_) => f.write_str("Stored"),
        }
    }
}

/// The active signing key and, during a rotation, the previous one.
#[derive(Debug)]
pub struct KeyRing {
    pub active: SigningKey,
    pub previous: Option<SigningKey>,
    read: Read,
}

fn active_path(dir: &Path) -> PathBuf {
    dir.join("signing-key.pk8")
}

fn previous_path(dir: &Path) -> PathBuf {
    dir.join("previous-signing-key.pk8")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyRingError + '_ {
    move |source| KeyRingError::Io { path: path.to_path_buf(), source }
}

/// Writes `der` to `path` readable by the owner only, atomically.
fn write_private(path: &Path, der: &[u8]) -> Result<(), KeyRingError> {
    use std::io::Write;
    let tmp = path.with_extension("pk8.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(der).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>, KeyRingError> {
    match std::fs::read(path) {
        Ok(der) => Ok(Some(der)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KeyRingError::Io { path: path.to_path_buf(), source: e }),
    }
}

fn parse(der: &[u8], at: impl std::fmt::Display) -> Result<SigningKey, KeyRingError> {
    SigningKey::from_pkcs8_thumbprinted(der).map_err(|why| KeyRingError::Key { at: at.to_string(), why })
}

fn read_key(path: &Path) -> Result<Option<SigningKey>, KeyRingError> {
    read_file(path)?.map(|der| parse(&der, path.display())).transpose()
}

fn generated() -> Result<Vec<u8>, KeyRingError> {
    tenet_ssf::generate().map_err(|why| KeyRingError::Key { at: "(new key)".into(), why })
}

fn modified(dir: &Path) -> Read {
    let m = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Read::Files(m(active_path(dir)), m(previous_path(dir)))
}

impl KeyRing {
    /// The keys at `at`, generating the first one when there is none.
    /// An unreadable or weak key is an error, never replaced.
    pub fn open(at: &KeysAt) -> Result<KeyRing, KeyRingError> {
        match at {
            KeysAt::Dir(dir) => Self::open_dir(dir),
            KeysAt::Store { url, dir } => {
                let table = SigningKeyTable::open(url)?;
                let stored = match table.read()? {
                    Some(k) => k,
                    None => {
                        let path = active_path(dir);
                        let first = match read_file(&path)? {
                            Some(der) => {
                                parse(&der, path.display())?;
                                tracing::info!(path = %path.display(), "the SET signing key moves into the store");
                                der
                            }
                            None => generated()?,
                        };
                        table.write_first(&first)?
                    }
                };
                Self::from_stored(stored)
            }
        }
    }

    fn open_dir(dir: &Path) -> Result<KeyRing, KeyRingError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = active_path(dir);
        let active = match read_key(&path)? {
            Some(k) => k,
            None => {
                write_private(&path, &generated()?)?;
                tracing::info!(path = %path.display(), "generated the SET signing key");
                read_key(&path)?.ok_or_else(|| KeyRingError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("written but not found"),
                })?
            }
        };
        Ok(KeyRing { active, previous: read_key(&previous_path(dir))?, read: modified(dir) })
    }

    fn from_stored(stored: StoredKeys) -> Result<KeyRing, KeyRingError> {
        let active = parse(&stored.active, "the active key in the store")?;
        let previous = stored.previous.as_deref().map(|d| parse(d, "the previous key in the store")).transpose()?;
        Ok(KeyRing { active, previous, read: Read::Stored(Box::new(stored)) })
    }

    /// The keys again if another process (or node) rotated them since they were read.
    pub fn reread_if_changed(&self, at: &KeysAt) -> Option<Result<KeyRing, KeyRingError>> {
        match (at, &self.read) {
            (KeysAt::Store { url, .. }, Read::Stored(was)) => match SigningKeyTable::open(url).and_then(|t| t.read()) {
                Ok(Some(now)) if now != **was => Some(Self::from_stored(now)),
                Ok(_) => None,
                Err(e) => Some(Err(e.into())),
            },
            (KeysAt::Dir(dir), read) => (modified(dir) != *read).then(|| KeyRing::open(at)),
            _ => Some(KeyRing::open(at)),
        }
    }

    /// A new active key; the one it replaces stays published until retired.
    /// Returns the new key's id.
    pub fn rotate(at: &KeysAt) -> Result<String, KeyRingError> {
        let current = KeyRing::open(at)?;
        let der = generated()?;
        match at {
            KeysAt::Dir(dir) => {
                let old = std::fs::read(active_path(dir)).map_err(io(dir))?;
                write_private(&previous_path(dir), &old)?;
                write_private(&active_path(dir), &der)?;
            }
            KeysAt::Store { url, .. } => SigningKeyTable::open(url)?.rotate(&der)?,
        }
        let next = KeyRing::open(at)?;
        tracing::info!(previous = current.active.kid(), active = next.active.kid(), "rotated the SET signing key");
        Ok(next.active.kid().to_string())
    }

    /// Stops publishing the previous key. Returns its id, if there was one.
    pub fn retire(at: &KeysAt) -> Result<Option<String>, KeyRingError> {
        match at {
            KeysAt::Dir(dir) => {
                let previous = read_key(&previous_path(dir))?;
                if previous.is_some() {
                    std::fs::remove_file(previous_path(dir)).map_err(io(dir))?;
                }
                Ok(previous.map(|k| k.kid().to_string()))
            }
            KeysAt::Store { url, .. } => {
                let retired = SigningKeyTable::open(url)?.retire()?;
                Ok(retired.map(|der| parse(&der, "the retired key")).transpose()?.map(|k| k.kid().to_string()))
            }
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        tenet_ssf::jwks(std::iter::once(&self.active).chain(self.previous.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_start_generates_a_private_key_that_later_starts_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap();
        let again = KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap();
        assert_eq!(first.active.kid(), again.active.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(active_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by the owner only");
        }
        assert_eq!(first.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_rotation_publishes_both_keys_until_the_old_one_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let before = KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap();
        let new_kid = KeyRing::rotate(&KeysAt::Dir(dir.path().into())).unwrap();
        let during = KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap();
        assert_eq!(during.active.kid(), new_kid);
        let kids: Vec<String> =
            during.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
        assert_eq!(kids, vec![new_kid.clone(), before.active.kid().to_string()]);
        assert_eq!(KeyRing::retire(&KeysAt::Dir(dir.path().into())).unwrap().as_deref(), Some(before.active.kid()));
        assert_eq!(KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap().jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_unreadable_key_is_an_error_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(active_path(dir.path()), b"not a key").unwrap();
        let e = KeyRing::open(&KeysAt::Dir(dir.path().into())).unwrap_err();
        assert!(e.to_string().contains("signing-key.pk8"), "{e}");
        assert_eq!(std::fs::read(active_path(dir.path())).unwrap(), b"not a key");
    }
}
