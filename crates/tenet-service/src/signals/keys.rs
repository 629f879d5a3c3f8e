//! The keys SETs are signed with, kept in the data directory
//! (`ssf/signing-key.pk8`, mode 0600): generated on first start, rotated
//! by `tenet ssf rotate-key`. During a rotation the previous key
//! (`ssf/previous-signing-key.pk8`) stays published in the JWKS, so a
//! receiver verifying a SET signed just before still finds its key;
//! `tenet ssf retire-key` stops publishing it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tenet_ssf::SigningKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {why}")]
    Key { path: PathBuf, why: tenet_ssf::KeyError },
}

/// The active signing key and, during a rotation, the previous one.
#[derive(Debug)]
pub struct KeyRing {
    pub active: SigningKey,
    pub previous: Option<SigningKey>,
    /// When each file (active, previous) was last changed, or that it is
    /// absent: a rotation or retirement by another process changes it.
    pub written: (Option<SystemTime>, Option<SystemTime>),
}

fn active_path(dir: &Path) -> PathBuf {
    dir.join("signing-key.pk8")
}

fn previous_path(dir: &Path) -> PathBuf {
    dir.join("previous-signing-key.pk8")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.to_path_buf(), source }
}

/// Writes `der` to `path` readable by the owner only, atomically.
fn write_private(path: &Path, der: &[u8]) -> Result<(), KeyFileError> {
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

fn read_key(path: &Path) -> Result<Option<SigningKey>, KeyFileError> {
    match std::fs::read(path) {
        Ok(der) => SigningKey::from_pkcs8_thumbprinted(&der)
            .map(Some)
            .map_err(|why| KeyFileError::Key { path: path.to_path_buf(), why }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KeyFileError::Io { path: path.to_path_buf(), source: e }),
    }
}

fn generated() -> Result<Vec<u8>, KeyFileError> {
    tenet_ssf::generate().map_err(|why| KeyFileError::Key { path: PathBuf::from("(new key)"), why })
}

fn modified(dir: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(active_path(dir)), m(previous_path(dir)))
}

impl KeyRing {
    /// The keys in `dir`, generating the first one when there is none.
    /// An unreadable or weak key file is an error, never replaced.
    pub fn open(dir: &Path) -> Result<KeyRing, KeyFileError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = active_path(dir);
        let active = match read_key(&path)? {
            Some(k) => k,
            None => {
                write_private(&path, &generated()?)?;
                tracing::info!(path = %path.display(), "generated the SET signing key");
                read_key(&path)?.ok_or_else(|| KeyFileError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("written but not found"),
                })?
            }
        };
        Ok(KeyRing { active, previous: read_key(&previous_path(dir))?, written: modified(dir) })
    }

    /// The keys again if another process rotated them since they were read.
    pub fn reread_if_changed(&self, dir: &Path) -> Option<Result<KeyRing, KeyFileError>> {
        (modified(dir) != self.written).then(|| KeyRing::open(dir))
    }

    /// A new active key; the one it replaces stays published until retired.
    /// Returns the new key's id.
    pub fn rotate(dir: &Path) -> Result<String, KeyFileError> {
        let current = KeyRing::open(dir)?;
        let der = generated()?;
        let old = std::fs::read(active_path(dir)).map_err(io(dir))?;
        write_private(&previous_path(dir), &old)?;
        write_private(&active_path(dir), &der)?;
        let next = KeyRing::open(dir)?;
        tracing::info!(previous = current.active.kid(), active = next.active.kid(), "rotated the SET signing key");
        Ok(next.active.kid().to_string())
    }

    /// Stops publishing the previous key. Returns its id, if there was one.
    pub fn retire(dir: &Path) -> Result<Option<String>, KeyFileError> {
        let previous = read_key(&previous_path(dir))?;
        if previous.is_some() {
            std::fs::remove_file(previous_path(dir)).map_err(io(dir))?;
        }
        Ok(previous.map(|k| k.kid().to_string()))
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
        let first = KeyRing::open(dir.path()).unwrap();
        let again = KeyRing::open(dir.path()).unwrap();
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
        let before = KeyRing::open(dir.path()).unwrap();
        let new_kid = KeyRing::rotate(dir.path()).unwrap();
        let during = KeyRing::open(dir.path()).unwrap();
        assert_eq!(during.active.kid(), new_kid);
        let kids: Vec<String> =
            during.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect();
        assert_eq!(kids, vec![new_kid.clone(), before.active.kid().to_string()]);
        assert_eq!(KeyRing::retire(dir.path()).unwrap().as_deref(), Some(before.active.kid()));
        assert_eq!(KeyRing::open(dir.path()).unwrap().jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_unreadable_key_is_an_error_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(active_path(dir.path()), b"not a key").unwrap();
        let e = KeyRing::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("signing-key.pk8"), "{e}");
        assert_eq!(std::fs::read(active_path(dir.path())).unwrap(), b"not a key");
    }
}
