//! Reading a policy directory (`*.cedar`, an optional `*.cedarschema`, an
//! optional `entities.json`) and keeping the decision point on its latest
//! valid content: a change that does not load is refused with Cedar's
//! diagnostics while the last good set keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tenet_policy::{BundleError, PolicyBundle, SourceFile};

use crate::access::DecisionPoint;

#[derive(Debug, thiserror::Error)]
pub enum PolicyDirError {
    #[error("cannot read policy directory {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("policy directory {path}: {source}")]
    Invalid { path: String, source: BundleError },
}

/// The directory's policy files, by file name, in name order.
pub fn read_files(dir: &Path) -> Result<Vec<SourceFile>, PolicyDirError> {
    let read_err = |e: std::io::Error| PolicyDirError::Read { path: dir.display().to_string(), source: e };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        let wanted = name.ends_with(".cedar") || name.ends_with(".cedarschema") || name == "entities.json";
        if !wanted || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PolicyDirError::Read { path: path.display().to_string(), source: e })?;
        files.push(SourceFile { name, text });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

pub fn load(dir: &Path) -> Result<PolicyBundle, PolicyDirError> {
    PolicyBundle::load(read_files(dir)?)
        .map_err(|e| PolicyDirError::Invalid { path: dir.display().to_string(), source: e })
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Activated { version: String, previous: String },
}

/// Loads `dir` and, if it differs from the active set, makes it active and
/// records the version (time, `author`, diff) in the decision log's history.
pub fn reload(pdp: &DecisionPoint, dir: &Path, author: &str) -> Result<Reload, PolicyDirError> {
    let bundle = match load(dir) {
        Ok(b) => b,
        Err(e) => {
            pdp.metrics.reload_failed();
            tracing::error!(error = %e, "policy change refused; the last good set keeps serving");
            return Err(e);
        }
    };
    let current = pdp.bundle();
    if bundle.version() == current.version() {
        return Ok(Reload::Unchanged);
    }
    let diff = bundle.diff_from(Some(&current));
    let version = bundle.version().to_string();
    if let Some(history) = &pdp.history {
        history.record(&bundle, &diff, author);
    }
    pdp.replace(bundle);
    tracing::info!(version = %version, previous = %current.version(), author, "policy set activated");
    Ok(Reload::Activated { version, previous: current.version().to_string() })
}

/// Polls `dir` for changes every `every` until the process ends: a poll
/// is one directory listing and a few small reads, and sees edits that
/// file-event APIs miss (editors replacing files, network mounts).
pub fn watch(pdp: Arc<DecisionPoint>, dir: PathBuf, every: Duration) {
    let _ = std::thread::Builder::new().name("tenet-policy-watch".into()).spawn(move || {
        let mut last = fingerprint(&dir);
        loop {
            std::thread::sleep(every);
            let now = fingerprint(&dir);
            if now != last {
                last = now;
                let _ = reload(&pdp, &dir, "file");
            }
        }
    });
}

/// Names, sizes and modification times of the files that make a policy set.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_str()?.to_string();
            let m = e.metadata().ok()?;
            Some((name, m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
