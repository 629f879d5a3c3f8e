//! Ingesting inputs into the store: read and normalise on one thread, link
//! and store on another, so both cores work; every record is counted as
//! stored, duplicate or rejected, and every rejection is named.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use serde::Serialize;
use tenet_model::Event;
use tenet_sources::input::{self, InputError, InputFile, InputLimits, Recognised};
use tenet_sources::{FORMATS, Format};
use tenet_store::{Appended, EventStore, PreparedBatch, StoreError, StoreReader};

use crate::link::{self, CredentialLinker, Fresh};

/// Events are handed to the store in batches of this size, small enough
/// to keep memory flat on large inputs.
pub const BATCH: usize = 16384;

/// The writer commits after this many events or [`COMMIT_INTERVAL`],
/// whichever comes first: the per-commit cost (index pages rewritten to the
/// log) is paid once for many batches.
pub const COMMIT_EVENTS: u64 = 262_144;
pub const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the reader thread failed: {0}")]
    Reader(String),
}

/// One record (or file) that could not be ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub path: String,
    /// `record 3, line 40, at userIdentity.type`, or `file` for whole-file problems.
    pub location: String,
    pub reason: String,
}

impl Rejection {
    /// A record of input `path` that could not be read, where and why.
    pub fn of(path: &str, err: tenet_sources::RecordError) -> Self {
        Rejection { path: path.to_string(), location: err.location.to_string(), reason: err.reason }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.read += o.read;
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.rejected += o.rejected;
    }
}

/// The outcome of an ingest run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Files in a directory walk that are not telemetry (READMEs, licences, indexes).
    pub skipped: u64,
    pub files: u64,
    /// Chains completed after the fact, when a credential's issuer arrived late.
    pub relinked: u64,
    /// Wall-clock seconds the writer spent storing (the rest it waited on the reader).
    pub store_seconds: f64,
    pub formats: BTreeMap<String, Counts>,
    pub rejections: Vec<Rejection>,
    pub skipped_files: Vec<String>,
}

impl IngestReport {
    fn counts_mut(&mut self, format: &str) -> &mut Counts {
        self.formats.entry(format.to_string()).or_default()
    }

    fn finish(&mut self) {
        let mut total = Counts::default();
        for c in self.formats.values() {
            total.add(c);
        }
        // File-level rejections (unreadable, unrecognised) belong to no format.
        let file_level = self.rejections.iter().filter(|r| r.location == "file").count() as u64;
        self.read = total.read + file_level;
        self.rejected = total.rejected + file_level;
        self.stored = total.stored;
        self.duplicates = total.duplicates;
    }
}

/// Progress as the run goes: called on the storing thread.
pub trait IngestObserver {
    fn started(&mut self, _total_bytes: u64) {}
    fn progressed(&mut self, _events: u64, _bytes: u64) {}
}

impl IngestObserver for () {}

#[derive(Clone, Copy, Default)]
pub struct IngestOptions {
    /// Read every input as this format instead of detecting it.
    pub format: Option<&'static dyn Format>,
    /// What one input may cost to read (decompressed size, expansion ratio,
    /// what is held whole).
    pub limits: InputLimits,
}

/// Events on their way to the store, and what the reader learnt about
/// them: batches as read (`B` = [`ReadBatch`]) from the reading thread to
/// the encoding one, encoded (`B` = [`EncodedBatch`]) from there to the
/// writer.
enum Message<B> {
    File {
        bytes: u64,
    },
    Batch(B),
    Rejected {
        format: Option<&'static str>,
        rejection: Rejection,
    },
    Skipped {
        path: String,
    },
    /// The reader could not go on (its store connection failed).
    Failed(StoreError),
}

impl<B> Message<B> {
    fn map_batch<C>(self, f: impl FnOnce(B) -> C) -> Message<C> {
        match self {
            Message::File { bytes } => Message::File { bytes },
            Message::Batch(b) => Message::Batch(f(b)),
            Message::Rejected { format, rejection } => Message::Rejected { format, rejection },
            Message::Skipped { path } => Message::Skipped { path },
            Message::Failed(e) => Message::Failed(e),
        }
    }
}

/// A batch as read: normalised and linked, not yet encoded.
struct ReadBatch {
    format: &'static str,
    events: Vec<Event>,
    /// Events read that were stored before this run began: counted,
    /// never encoded nor sent (see [`drop_stored`]).
    known: u64,
    fresh: Vec<Fresh>,
}

/// A batch encoded for the store.
struct EncodedBatch {
    format: &'static str,
    batch: PreparedBatch,
    known: u64,
    fresh: Vec<Fresh>,
    /// The batch's events, in its order, when someone follows new events.
    events: Option<Vec<Event>>,
}

impl ReadBatch {
    fn encode(self, keep: bool) -> EncodedBatch {
        let ReadBatch { format, events, known, fresh } = self;
        let (batch, events) = if keep {
            let (batch, events) = PreparedBatch::keeping(events);
            (batch, Some(events))
        } else {
            (PreparedBatch::new(events), None)
        };
        EncodedBatch { format, batch, known, fresh, events }
    }
}

/// The storing half of the pipeline for producers on one thread (the demo's
/// live feed, the HTTP ingest endpoint): link, prepare, store.
pub struct Ingestor<'s> {
    store: &'s mut dyn EventStore,
    linker: CredentialLinker,
    relinked: u64,
}

impl<'s> Ingestor<'s> {
    pub fn new(store: &'s mut dyn EventStore) -> Self {
        Ingestor { store, linker: CredentialLinker::default(), relinked: 0 }
    }

    /// Links and stores one batch.
    pub fn accept(&mut self, mut events: Vec<Event>) -> Result<Appended, StoreError> {
        let fresh = self.linker.link_batch(&*self.store, &mut events)?;
        let appended = self.store.append(PreparedBatch::new(events))?;
        self.relinked += link::relink_stored(self.store, &fresh)?.len() as u64;
        self.store.commit()?;
        Ok(appended)
    }

    pub fn relinked(&self) -> u64 {
        self.relinked
    }

    /// The store, for what goes in beside events (inventory snapshots).
    pub fn store(&mut self) -> &mut dyn EventStore {
        self.store
    }
}

/// Ingests `paths` (files, directories, `-` for stdin) into `store`.
pub fn ingest(
    paths: &[PathBuf],
    store: &mut dyn EventStore,
    options: IngestOptions,
    observer: &mut dyn IngestObserver,
) -> Result<IngestReport, IngestError> {
    ingest_following(paths, store, options, observer, None)
}

/// Receives each batch's events as stored, with which of them were new:
/// (position in the batch, sequence number), in order; returns false to
/// stop receiving. Duplicates are in the batch too: skip them.
pub type Follower<'f> = &'f mut dyn FnMut(Vec<Event>, Vec<(u32, i64)>) -> bool;

/// As [`ingest`], handing every newly stored event (never a duplicate) to
/// `follower` once it is appended: analysis can run beside ingestion
/// instead of reading everything back afterwards.
pub fn ingest_following(
    paths: &[PathBuf],
    store: &mut dyn EventStore,
    options: IngestOptions,
    observer: &mut dyn IngestObserver,
    mut follower: Option<Follower<'_>>,
) -> Result<IngestReport, IngestError> {
    let keep = follower.is_some();
    let files = input::expand(paths)?;
    let total_bytes: u64 =
        files.iter().filter(|f| !f.is_stdin()).filter_map(|f| std::fs::metadata(&f.path).ok()).map(|m| m.len()).sum();
    observer.started(total_bytes);

    let mut report = IngestReport { files: files.len() as u64, ..Default::default() };
    let lookup = store.reader()?;
    let (read_tx, read_rx) = mpsc::sync_channel::<Message<ReadBatch>>(2);
    let (tx, rx) = mpsc::sync_channel::<Message<EncodedBatch>>(2);

    thread::scope(|scope| -> Result<(), IngestError> {
        // Reading, normalising and linking on one thread; encoding and
        // compressing on a second; writing on this one. Reading is the
        // longest stage: with encoding on a thread of its own, three busy
        // stages keep two cores busy where two stages left one idle while
        // the other waited.
        let reader = thread::Builder::new()
            .name("tenet-read".into())
            .spawn_scoped(scope, move || read_files(&files, options, lookup, &read_tx))
            .map_err(|e| IngestError::Reader(e.to_string()))?;
        let encoder = thread::Builder::new()
            .name("tenet-encode".into())
            .spawn_scoped(scope, move || {
                for msg in read_rx {
                    if tx.send(msg.map_batch(|b| b.encode(keep))).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| IngestError::Reader(e.to_string()))?;
        let (mut events_done, mut bytes_done) = (0u64, 0u64);
        let (mut uncommitted, mut last_commit) = (0u64, std::time::Instant::now());
        for msg in rx {
            match msg {
                Message::File { bytes } => {
                    bytes_done += bytes;
                    observer.progressed(events_done, bytes_done);
                }
                Message::Batch(EncodedBatch { format, batch, known, fresh, events }) => {
                    let n = batch.len() as u64 + known;
                    let busy = std::time::Instant::now();
                    let appended = if batch.is_empty() { Appended::default() } else { store.append(batch)? };
                    if let (Some(f), Some(events)) = (follower.as_mut(), events) {
                        let mut fresh = appended.fresh.clone();
                        fresh.sort_unstable();
                        if !fresh.is_empty() && !f(events, fresh) {
                            follower = None;
                        }
                    }
                    report.relinked += link::relink_stored(store, &fresh)?.len() as u64;
                    uncommitted += n;
                    if uncommitted >= COMMIT_EVENTS || last_commit.elapsed() >= COMMIT_INTERVAL {
                        store.commit()?;
                        (uncommitted, last_commit) = (0, std::time::Instant::now());
                    }
                    report.store_seconds += busy.elapsed().as_secs_f64();
                    let c = report.counts_mut(format);
                    c.read += n;
                    c.stored += appended.stored;
                    c.duplicates += appended.duplicates + known;
                    events_done += n;
                    observer.progressed(events_done, bytes_done);
                }
                Message::Rejected { format, rejection } => {
                    if let Some(f) = format {
                        let c = report.counts_mut(f);
                        c.read += 1;
                        c.rejected += 1;
                    }
                    report.rejections.push(rejection);
                }
                Message::Skipped { path } => {
                    report.skipped += 1;
                    report.skipped_files.push(path);
                }
                Message::Failed(e) => return Err(e.into()),
            }
        }
        reader.join().map_err(|p| IngestError::Reader(panic_message(&p)))?;
        encoder.join().map_err(|p| IngestError::Reader(panic_message(&p)))?;
        let busy = std::time::Instant::now();
        store.commit()?;
        report.store_seconds += busy.elapsed().as_secs_f64();
        Ok(())
    })?;
    report.finish();
    Ok(report)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}

fn file_rejection<B>(path: String, reason: String) -> Message<B> {
    Message::Rejected { format: None, rejection: Rejection { path, location: "file".to_string(), reason } }
}

/// Removes from `events` those stored before the run began (`newest` is
/// the newest time stored then) and returns how many, with the fresh
/// issuances the remaining events made. Re-reading what is stored (a
/// restart after a crash, a retried delivery) then costs parsing and an
/// index probe per event, not encoding and a writer's round: re-ingest
/// costs less than ingest. A removed event's issuance needs no relinking:
/// the sessions stored before it were relinked in the transaction that
/// stored it, and those stored after it were linked as they were stored.
fn drop_stored(
    lookup: &dyn StoreReader,
    newest: Option<tenet_model::Timestamp>,
    events: &mut Vec<Event>,
    fresh: Vec<Fresh>,
) -> Result<(Vec<Fresh>, u64), StoreError> {
    let Some(newest) = newest else { return Ok((fresh, 0)) };
    let candidates: Vec<&Event> = events.iter().filter(|e| e.time <= newest).collect();
    if candidates.is_empty() {
        return Ok((fresh, 0));
    }
    let mut stored = lookup.contains(&candidates)?.into_iter();
    let before = events.len();
    // `stored` answers the candidates in order; `||` consults it only for them.
    events.retain(|e| e.time > newest || !stored.next().unwrap_or(false));
    let known = (before - events.len()) as u64;
    if known == 0 {
        return Ok((fresh, 0));
    }
    let issued: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e.issued.as_ref()).map(|i| i.credential_id.as_str()).collect();
    Ok((fresh.into_iter().filter(|(cred, _)| issued.contains(cred.as_str())).collect(), known))
}

/// The reading half: runs on its own thread, stops early only if the
/// storing half has gone away.
fn read_files(
    files: &[InputFile],
    options: IngestOptions,
    lookup: Box<dyn StoreReader>,
    tx: &mpsc::SyncSender<Message<ReadBatch>>,
) {
    let mut linker = CredentialLinker::default();
    // Only an event no newer than the newest stored when the run began can
    // have been stored by an earlier run; a newer one is new, or a
    // duplicate from this run, which the writer finds.
    let newest = match lookup.time_range() {
        Ok(range) => range.map(|(_, newest)| newest),
        Err(e) => {
            let _ = tx.send(Message::Failed(e));
            return;
        }
    };
    // Links and sends a batch; false when the run must stop.
    let mut ship = |format: &'static str, mut events: Vec<Event>| -> bool {
        let linked = linker.link_batch(&*lookup, &mut events);
        let msg = match linked.and_then(|fresh| drop_stored(&*lookup, newest, &mut events, fresh)) {
            Ok((fresh, known)) => Message::Batch(ReadBatch { format, events, known, fresh }),
            Err(e) => Message::Failed(e),
        };
        let failed = matches!(msg, Message::Failed(_));
        tx.send(msg).is_ok() && !failed
    };
    for file in files {
        let path = file.display();
        let reading = match input::recognise(file, options.format, &options.limits) {
            Ok(Recognised::Telemetry(reading)) => reading,
            Ok(Recognised::NotTelemetry { empty }) => {
                let msg = if !file.explicit {
                    Message::Skipped { path }
                } else if empty {
                    file_rejection(path, "empty input: no records".to_string())
                } else {
                    let tried: Vec<_> = FORMATS.iter().map(|f| f.name()).collect();
                    file_rejection(
                        path,
                        format!(
                            "not a recognised telemetry format (tried {}; use --format to force one)",
                            tried.join(", ")
                        ),
                    )
                };
                if tx.send(msg).is_err() {
                    return;
                }
                continue;
            }
            Err(e) => {
                if tx.send(file_rejection(path, e.to_string())).is_err() {
                    return;
                }
                continue;
            }
        };
        let name = reading.format().name();
        let mut batch = Vec::with_capacity(BATCH.min(1024));
        let mut go_on = true;
        let stopped = reading.read(
            &mut |r| {
                match r {
                    Ok(e) => {
                        batch.push(e);
                        if batch.len() >= BATCH {
                            go_on = ship(name, std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                        }
                    }
                    Err(err) => {
                        let rejection = Rejection::of(&path, err);
                        go_on = tx.send(Message::Rejected { format: Some(name), rejection }).is_ok();
                    }
                }
                go_on
            },
            &mut |bytes| {
                let _ = tx.send(Message::File { bytes });
            },
        );
        if !go_on || (!batch.is_empty() && !ship(name, batch)) {
            return;
        }
        // The records before the stop are in; the rest of the file is refused.
        if let Err(e) = stopped
            && tx.send(file_rejection(path, e.to_string())).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{Action, IssuedCredential, Principal, PrincipalKind, RawRecord, Source, Timestamp};
    use tenet_store::SqliteStore;

    fn event(id: &str, secs: i64) -> Event {
        Event {
            raw: RawRecord::from(format!("{{\"id\":\"{id}\"}}").into_bytes()),
            ..Event::api_call(
                id,
                Timestamp::from_unix_seconds(secs),
                Principal::new("arn:aws:iam::1:user/alice", PrincipalKind::Human),
                Action::new("sts", "AssumeRole"),
                Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
            )
        }
    }

    fn issuing(id: &str, secs: i64, credential: &str) -> Event {
        let mut e = event(id, secs);
        e.issued = Some(IssuedCredential {
            credential_id: credential.into(),
            to: Principal::new("arn:aws:sts::1:assumed-role/r/s", PrincipalKind::Unknown),
            expires: None,
        });
        e
    }

    #[test]
    fn events_stored_before_the_run_are_dropped_before_encoding_and_counted_with_their_issuances() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open_dir(dir.path()).unwrap();
        store.append(PreparedBatch::new(vec![event("old", 100), issuing("old-issuer", 100, "K1")])).unwrap();
        store.commit().unwrap();
        let lookup = store.reader().unwrap();
        let newest = lookup.time_range().unwrap().map(|(_, hi)| hi);
        let mut batch = vec![
            event("old", 100),
            issuing("old-issuer", 100, "K1"),
            issuing("new-issuer", 100, "K2"),
            event("later", 200),
        ];
        let fresh = CredentialLinker::default().link_batch(&*lookup, &mut batch).unwrap();
        assert_eq!(fresh.len(), 2);
        let (fresh, known) = drop_stored(&*lookup, newest, &mut batch, fresh).unwrap();
        assert_eq!(known, 2);
        assert_eq!(batch.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["new-issuer", "later"]);
        // The stored issuer's sessions were completed when it was stored.
        assert_eq!(fresh.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), vec!["K2"]);
    }

    #[test]
    fn an_empty_store_is_not_probed_and_nothing_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let lookup = store.reader().unwrap();
        let mut batch = vec![event("a", 1), event("a", 1)];
        let (_, known) =
            drop_stored(&*lookup, lookup.time_range().unwrap().map(|(_, hi)| hi), &mut batch, vec![]).unwrap();
        // Duplicates within the run are the writer's to find.
        assert_eq!((known, batch.len()), (0, 2));
    }
}
