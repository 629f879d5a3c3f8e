//! Watched folders: telemetry files that appear in a folder (a CloudTrail
//! bucket synced locally, rotated audit logs) are ingested once each, when
//! complete; inventory files are imported as they appear or change. A file
//! is complete when its size and modification time held still across two
//! looks; once its events are committed it is recorded in
//! `<data>/watched.json`, so a restart resumes where the last run stopped.
//! A file that grows or is rewritten is read again: the store keeps what it
//! already had once (event ids), so nothing is stored twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tenet_model::Timestamp;
use tenet_pipeline::ingest::{BATCH, Rejection};
use tenet_pipeline::trust::InventoryFile;
use tenet_server::intake::Answer;
use tenet_sources::input::{self, InputFile, InputLimits, Recognised};
use tokio::sync::oneshot;

use crate::live::{Inlet, Work};

/// How often the folders are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    Telemetry,
    Inventory,
}

/// A file as last seen: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    len: u64,
    modified_ns: i64,
}

/// Files done, by path, as persisted.
#[derive(Default, Serialize, Deserialize)]
struct Done {
    files: BTreeMap<PathBuf, Seen>,
}

/// The watcher thread; stops when `stop` is set.
pub struct Watcher {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    pub fn start(
        folders: Vec<(PathBuf, Holds)>,
        state: PathBuf,
        inlet: Inlet,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Watcher> {
        let thread = std::thread::Builder::new()
            .name("tenet-watch".into())
            .spawn(move || watch(&folders, &state, &inlet, &stop))?;
        Ok(Watcher { thread: Some(thread) })
    }

    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn seen(path: &Path) -> Option<Seen> {
    let m = std::fs::metadata(path).ok()?;
    let modified_ns = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos() as i64;
    Some(Seen { len: m.len(), modified_ns })
}

fn load(state: &Path) -> Done {
    match std::fs::read(state) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, path = %state.display(), "watched-file record unreadable; reading every file again (nothing is stored twice)");
            Done::default()
        }),
        Err(_) => Done::default(),
    }
}

fn save(state: &Path, done: &Done) {
    let tmp = state.with_extension("json.tmp");
    let written = serde_json::to_vec(done)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, state));
    if let Err(e) = written {
        tracing::warn!(error = %e, path = %state.display(), "watched-file record not saved; a restart reads those files again");
    }
}

fn watch(folders: &[(PathBuf, Holds)], state: &Path, inlet: &Inlet, stop: &AtomicBool) {
    let mut done = load(state);
    // What each candidate looked like last time: complete once unchanged.
    let mut last: BTreeMap<PathBuf, Seen> = BTreeMap::new();
    while !stop.load(Ordering::Acquire) {
        for (folder, holds) in folders {
            let mut files: Vec<PathBuf> = walkdir::WalkDir::new(folder)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
                .collect();
            files.sort();
            for path in files {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Some(now) = seen(&path) else { continue };
                if done.files.get(&path) == Some(&now) {
                    continue;
                }
                if last.insert(path.clone(), now) != Some(now) {
                    continue; // still being written, or new: look again
                }
                let read = match holds {
                    Holds::Telemetry => ingest_file(&path, inlet),
                    Holds::Inventory => import_file(&path, inlet),
                };
                match read {
                    Ok(()) => {
                        last.remove(&path);
                        done.files.insert(path, now);
                        save(state, &done);
                    }
                    // Refused for now (the pipeline stopping, the store failing): next look.
                    Err(why) => tracing::warn!(path = %path.display(), %why, "watched file not read yet"),
                }
            }
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

fn wait(answer: oneshot::Receiver<Answer>) -> Result<(), String> {
    match answer.blocking_recv() {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(refusal)) => Err(format!("{refusal:?}")),
        Err(_) => Err("the pipeline stopped".into()),
    }
}

/// Reads one telemetry file (gzip, NDJSON windows and all, as `tenet
/// ingest` does) and queues its events a batch at a time, each waiting for
/// its commit. A file that is not telemetry is recorded and left alone.
fn ingest_file(path: &Path, inlet: &Inlet) -> Result<(), String> {
    let file = InputFile { path: path.to_path_buf(), explicit: false };
    let origin = path.display().to_string();
    let reading = match input::recognise(&file, None, &InputLimits::default()) {
        Ok(Recognised::Telemetry(r)) => r,
        Ok(Recognised::NotTelemetry { .. }) => {
            tracing::info!(path = %origin, "watched file is not telemetry; skipped");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(path = %origin, error = %e, "watched file unreadable; skipped until it changes");
            return Ok(());
        }
    };
    let format = reading.format().name();
    let (mut events, mut rejections) = (Vec::new(), Vec::new());
    let mut failed: Option<String> = None;
    let mut flush = |events: &mut Vec<tenet_model::Event>, rejections: &mut Vec<Rejection>| -> bool {
        let (reply, answer) = oneshot::channel();
        let work = Work::Events(crate::live::Delivered {
            origin: origin.clone(),
            format,
            events: std::mem::take(events),
            rejections: std::mem::take(rejections),
            spans: None,
            reply: Some(reply),
        });
        let r = inlet.submit_waiting(work).map_err(|e| format!("{e:?}")).and_then(|()| wait(answer));
        match r {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    };
    let stopped = reading.read(
        &mut |r| {
            match r {
                Ok(e) => events.push(e),
                Err(err) => rejections.push(Rejection::of(&origin, err)),
            }
            events.len() < BATCH || flush(&mut events, &mut rejections)
        },
        &mut |_| {},
    );
    // (After a failed batch the rest was not read: nothing is left to send.)
    if !(events.is_empty() && rejections.is_empty()) {
        flush(&mut events, &mut rejections);
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Err(e) = stopped {
        tracing::warn!(path = %origin, error = %e, "watched file read in part");
    }
    Ok(())
}

/// Imports one inventory file as collected when it was last written.
fn import_file(path: &Path, inlet: &Inlet) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let at = seen(path).map_or_else(Timestamp::now, |s| Timestamp::from_unix_nanos(s.modified_ns));
    let (reply, answer) = oneshot::channel();
    let files = vec![InventoryFile { name: path.display().to_string(), data, explicit: false }];
    inlet.submit_waiting(Work::Inventory { files, at, reply: Some(reply) }).map_err(|e| format!("{e:?}"))?;
    match answer.blocking_recv() {
        Ok(Ok(_)) => Ok(()),
        // Not inventory at all: recorded, not retried until it changes.
        Ok(Err(tenet_server::intake::Refusal::Invalid { message, .. })) => {
            tracing::info!(path = %path.display(), %message, "watched file is not inventory; skipped");
            Ok(())
        }
        Ok(Err(r)) => Err(format!("{r:?}")),
        Err(_) => Err("the pipeline stopped".into()),
    }
}
