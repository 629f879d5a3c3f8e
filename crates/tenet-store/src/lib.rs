//! Tenet's durable store.
//!
//! [`EventStore`] is the contract every backend meets (one writer, any
//! number of [`EventReader`]s); [`SqliteStore`] is the embedded default (one
//! file, WAL). A PostgreSQL backend implements the same traits; nothing above
//! this crate knows which one it talks to.
//!
//! Events reach the store as a [`PreparedBatch`]: encoding and compression
//! are done by whoever prepares the batch, on any thread, so the single
//! writer spends its time only on the database.

mod block;
pub mod cluster;
pub mod decisions;
pub mod keys;
mod postgres;
pub mod sessions;
mod sqlite;
pub mod ssf;

use std::collections::{HashMap, HashSet};

use tenet_model::{Category, Event, EventId, Finding, FindingStatus, Timestamp};

pub use block::PreparedBatch;
pub use postgres::{
    PostgresReader, PostgresStore, ServiceClaim, claim_service, claim_service_shared,
    schema_version as postgres_schema_version,
};
pub use sqlite::{NoticeLog, SqliteReader, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("the store at {url} cannot be reached: {reason}")]
    Unavailable { url: String, reason: String },
    #[error("stored event {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("cannot open the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the store at {path} has schema version {found}; this build reads up to {supported}")]
    SchemaTooNew { path: String, found: i64, supported: i64 },
    #[error("cannot encode for storage: {0}")]
    Encode(String),
    #[error("no finding with id {0}")]
    NoSuchFinding(String),
    #[error("finding {id} is already {status}")]
    SameStatus { id: String, status: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("cluster: {0}")]
    Cluster(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The pseudo-principal under which events that change trust are indexed:
/// `EventQuery { principal: Some(TRUST_TAG) }` lists them. (Events that only
/// observe, as every Kubernetes request observes its user's groups, are not
/// tagged: their observations are kept once each instead.)
pub const TRUST_TAG: &str = "tag:trust";

/// Observed use: a principal used an action (on a resource) `count` times
/// between `first` and `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub principal: String,
    pub action: String,
    pub resource: Option<String>,
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u64,
}

/// (principal, action, resource).
type UseKey = (String, String, Option<String>);
/// (first, last, count).
type Span = (i64, i64, u64);

/// Observed use gathered from stored events and not yet written: one entry
/// per (principal, action, resource), however many events show it. Covers
/// the events stored after sequence number `after` up to `through`.
#[derive(Debug, Clone, Default)]
pub struct UseTally {
    uses: HashMap<UseKey, Span>,
    after: i64,
    through: i64,
}

impl UseTally {
    /// A tally of the events stored after `after`.
    pub fn after(after: i64) -> Self {
        UseTally { after, through: after, ..Default::default() }
    }

    /// Counts what the event stored as `seq` shows in use.
    pub fn add(&mut self, e: &Event, seq: i64) {
        self.through = self.through.max(seq);
        self.count(e, 0);
    }

    /// Counts what a stored event's chain, completed after it was counted
    /// with `known` principals, adds.
    pub fn add_completed(&mut self, e: &Event, known: usize) {
        self.count(e, known);
    }

    fn count(&mut self, e: &Event, known: usize) {
        let uses = e.uses_beyond(known);
        if uses.is_empty() {
            return;
        }
        let (action, t) = (e.action.qualified(), e.time.unix_nanos());
        for (p, r) in uses {
            let entry = self.uses.entry((p.to_string(), action.clone(), r.map(str::to_string))).or_insert((t, t, 0));
            entry.0 = entry.0.min(t);
            entry.1 = entry.1.max(t);
            entry.2 += 1;
        }
    }

    /// The sequence number the tally starts after.
    pub fn starts_after(&self) -> i64 {
        self.after
    }

    /// The highest sequence number counted.
    pub fn through(&self) -> i64 {
        self.through
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.through == self.after && self.uses.is_empty()
    }

    /// Each (principal, action, resource) with its first and last time and count.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Option<&str>, i64, i64, u64)> {
        self.uses.iter().map(|((p, a, r), &(first, last, n))| (p.as_str(), a.as_str(), r.as_deref(), first, last, n))
    }
}

/// A stored inventory snapshot and where it came from.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    /// Increases with each snapshot stored.
    pub id: i64,
    pub snapshot: tenet_model::Snapshot,
    pub provenance: String,
}

/// What an append did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Events stored for the first time.
    pub stored: u64,
    /// Events already stored (same id, same time): ingestion is idempotent.
    pub duplicates: u64,
    /// The events stored for the first time, as (position in the batch as
    /// prepared, sequence number): what a reader of new events follows.
    pub fresh: Vec<(u32, i64)>,
}

/// A selection of events. Every filter is optional; all given must hold.
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    /// The actor or any principal in its chain (exact principal id).
    pub principal: Option<String>,
    /// `service:operation`, or an operation name alone.
    pub action: Option<String>,
    /// A resource id (exact).
    pub resource: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Source format (`cloudtrail`) or system (`aws`).
    pub source: Option<String>,
    /// At most this many events: the newest, returned oldest first.
    pub limit: Option<usize>,
    /// Load each event's raw record too.
    pub with_raw: bool,
}

/// One telemetry source's events in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceVolume {
    /// The adapter's format (`cloudtrail`).
    pub format: String,
    /// The emitting system (`aws`, a service name).
    pub system: String,
    pub total: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// (start of the hour, events in it), oldest first.
    pub hourly: Vec<(Timestamp, u64)>,
}

/// Reading the event log. Readers may live on other threads than the writer.
pub trait EventReader: Send {
    /// Events matching `query`, oldest first.
    fn query(&self, query: &EventQuery) -> Result<Vec<Event>>;

    /// One event by its stable id, with its raw record. Give `time` when it
    /// is known: the store is ordered by time, and without it the lookup
    /// scans the id index.
    fn get(&self, id: &EventId, time: Option<Timestamp>) -> Result<Option<Event>>;

    /// The event that minted `credential_id` (an STS `AssumeRole` call, say).
    fn issuer_of(&self, credential_id: &str) -> Result<Option<Event>>;

    /// Every stored event whose actor presented `credential_id`.
    fn using_credential(&self, credential_id: &str) -> Result<Vec<Event>>;

    /// Number of stored events.
    fn count(&self) -> Result<u64>;

    /// The times of the earliest and latest stored events; `None` when empty.
    fn time_range(&self) -> Result<Option<(Timestamp, Timestamp)>>;

    /// Each telemetry source's volume (by format and emitting system), with
    /// hourly counts from `hourly_since`: what source coverage starts from.
    fn source_volumes(&self, hourly_since: Timestamp) -> Result<Vec<SourceVolume>>;

    /// What a principal (or any chain it is in) did in `since..until`: each
    /// action (`service:operation`) and hour of the day (UTC) with its count.
    fn activity(&self, principal: &str, since: Timestamp, until: Timestamp) -> Result<Vec<(String, u8, u64)>>;

    /// The events with these ids among those naming `principal` (as actor
    /// or in its chain) from `since` to `until` inclusive, in time order:
    /// a finding's evidence, found through the principal's index rather
    /// than a scan of every event's id.
    fn events_among(
        &self,
        principal: &str,
        since: Timestamp,
        until: Timestamp,
        ids: &HashSet<String>,
    ) -> Result<Vec<Event>>;

    /// The times of those of `ids` that are stored (one pass over the key
    /// index, for checking many ids at once).
    fn event_times(&self, ids: &HashSet<String>) -> Result<HashMap<String, Timestamp>>;

    /// Whether each event is stored, by its identity (time and id): an
    /// index seek or two each, however many events share its time.
    fn contains(&self, events: &[&Event]) -> Result<Vec<bool>>;

    /// Events by sequence number, with their raw records, in the order asked.
    fn events_by_seq(&self, seqs: &[i64]) -> Result<Vec<Event>>;

    /// The principals events name that `name` may mean: that id itself,
    /// `user:<name>` or `agent:<name>`, or an id ending in `/<name>` or
    /// `:<name>` (a short name: an IAM user's or role's name, an agent's
    /// id); letters compared without case. For resolving what a person typed.
    fn principals_named(&self, name: &str) -> Result<Vec<String>>;
}

/// A selection of findings. Every filter is optional; all given must hold.
#[derive(Debug, Default, Clone)]
pub struct FindingQuery {
    pub category: Option<Category>,
    pub principal: Option<String>,
    pub status: Option<FindingStatus>,
    /// Also incidents recorded below the alert score (by default only
    /// alerts and recorded adaptations are listed).
    pub include_quiet: bool,
}

/// Reading findings: what the detection stage concluded.
pub trait FindingReader: Send {
    /// Findings matching `query`, oldest first.
    fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>>;

    /// How many findings of each category (by its name) there are, counted
    /// as `findings` with the default query lists them (quiet ones left out).
    fn findings_by_category(&self) -> Result<std::collections::BTreeMap<String, u64>>;

    /// One finding by id.
    fn finding(&self, id: &str) -> Result<Option<Finding>>;

    /// Each principal's latest risk (all principals when `None`).
    fn risk(&self, principal: Option<&str>) -> Result<Vec<tenet_model::RiskPoint>>;

    /// A principal's risk over time, oldest first.
    fn risk_history(&self, principal: &str) -> Result<Vec<tenet_model::RiskPoint>>;
}

/// Events stored but not yet analysed: their time and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pending {
    pub time: i64,
    pub seq: i64,
}

/// An event's declared trust changes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChanges {
    pub time: Timestamp,
    pub event: String,
    pub changes: Vec<tenet_model::TrustChange>,
}

/// A fact seen to hold, aggregated over every event that showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub fact: tenet_model::Fact,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The event that showed it first.
    pub event: String,
}

/// Reading what the trust graph is built from.
pub trait TrustReader: Send {
    /// Every stored inventory snapshot, oldest first.
    fn snapshots(&self) -> Result<Vec<StoredSnapshot>>;

    /// The newest snapshot's id (0 when none): whether there are new ones,
    /// without reading them.
    fn last_snapshot_id(&self) -> Result<i64> {
        Ok(self.snapshots()?.iter().map(|s| s.id).max().unwrap_or(0))
    }

    /// The trust changes events declared (asserts and retracts: a policy
    /// attached, a binding created), oldest first.
    fn trust_changes(&self) -> Result<Vec<StoredChanges>>;

    /// Every fact requests were seen to hold (authentication context,
    /// delegations in use), once each, with when it was first and last seen.
    fn observations(&self) -> Result<Vec<Observation>>;

    /// Observed use, as last refreshed by [`EventStore::refresh_use`].
    fn observed_use(&self) -> Result<Vec<Use>>;
}

/// Everything a reader of the store can read.
pub trait StoreReader: EventReader + FindingReader + TrustReader {}

impl<T: EventReader + FindingReader + TrustReader> StoreReader for T {}

/// The durable event log's single writer. Appends are idempotent: an event
/// is the same event when its stable id and its time agree.
pub trait EventStore: StoreReader {
    /// A reader over the same store, for another thread.
    fn reader(&self) -> Result<Box<dyn StoreReader>>;

    /// Stores the batch's events not stored before; counts the rest. The
    /// events are durable, and visible to other readers, once [`Self::commit`]
    /// returns: acknowledge nothing before that.
    fn append(&mut self, batch: PreparedBatch) -> Result<Appended>;

    /// Makes everything appended (and relinked) so far durable and visible.
    fn commit(&mut self) -> Result<()>;

    /// Stores an inventory snapshot; false if the same snapshot (scope,
    /// time and content) was stored before.
    fn put_snapshot(&mut self, snapshot: &tenet_model::Snapshot, provenance: &str) -> Result<bool>;

    /// Folds events stored since the last refresh into the observed-use
    /// aggregate. Returns how many events it read.
    fn refresh_use(&mut self) -> Result<u64>;

    /// Writes use a live pipeline tallied from the events it stored, and
    /// commits. When the stored aggregate is not where the tally starts
    /// (another process refreshed it meanwhile), the tally is dropped and
    /// the aggregate refreshed from the event log instead: nothing is
    /// counted twice or missed.
    fn record_use(&mut self, tally: &UseTally) -> Result<()>;

    /// The sequence number through which stored events are counted in observed use.
    fn use_watermark(&self) -> Result<i64>;

    /// Adds the use of events this transaction stored (`tally`) to
    /// observed use, in the transaction, and moves the watermark to at
    /// least its last event: how a cluster's partitions count use, once
    /// each, with the events (their writers' sequence numbers interleave,
    /// so none can own the watermark).
    fn count_stored_use(&mut self, _tally: &UseTally) -> Result<()> {
        Err(StoreError::Unsupported("use counted with its events needs a shared (PostgreSQL) store".into()))
    }

    /// Replaces a stored event's actor and chain with `event`'s: the one
    /// correction the log accepts, made when the credential behind a session
    /// is traced to its issuer after the event was stored. `known` is how
    /// many principals the caller read it naming. Returns how many it named
    /// as stored just before: more than `known` when another writer
    /// completed it meanwhile (a chain only grows; when it already names as
    /// many as `event`, nothing is written), so each writer counts only
    /// what it added.
    fn relink(&mut self, event: &Event, known: usize) -> Result<usize>;

    /// The store's revision as of this writer's last commit: every commit
    /// by any writer on a shared store gets the next, in commit order (0
    /// where the store does not count them: the embedded one, whose single
    /// writer needs no order among writers).
    fn revision(&self) -> i64 {
        0
    }

    /// Narrows this writer to one partition of a cluster's event flow:
    /// events appended are tagged with it, and the analysis calls (events
    /// pending, the saved state) are that partition's. `None`: the whole
    /// store, as a single service analyses it.
    fn set_partition(&mut self, part: Option<u32>) -> Result<()> {
        match part {
            None => Ok(()),
            Some(_) => Err(StoreError::Unsupported("partitioned analysis needs a shared (PostgreSQL) store".into())),
        }
    }

    /// Each partition's saved learner and the watermark it was saved at
    /// (none outside a cluster).
    fn partition_watermarks(&self) -> Result<Vec<(u32, i64)>> {
        Ok(Vec::new())
    }

    /// Events stored after the analysis watermark, in time order; in a
    /// partition, in the order they were stored (the order its owner
    /// analysed them, which a new owner repeats).
    fn pending_analysis(&self) -> Result<Vec<Pending>>;

    /// The analysis state saved last (learner baselines and watermarks).
    fn analysis_state(&self) -> Result<Option<AnalysisState>>;

    /// Saves the analysis state: events up to `state.events_seq` and
    /// snapshots up to `state.snapshot_id` are analysed. Durable on commit.
    fn put_analysis_state(&mut self, state: &AnalysisState) -> Result<()>;

    /// Stores findings raised or changed by analysis. A finding stored
    /// before keeps its status and history: analysis never undoes a person's
    /// decision. Returns the findings as stored.
    fn put_findings(&mut self, findings: &[Finding]) -> Result<Vec<Finding>>;

    /// Changes a finding's status, recording who-knows-why in its history,
    /// in the open transaction (the caller commits).
    fn set_finding_status(
        &mut self,
        id: &str,
        to: tenet_model::FindingStatus,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Result<Finding>;

    /// Appends risk points to the history.
    fn put_risk(&mut self, points: &[tenet_model::RiskPoint]) -> Result<()>;

    /// Trust changes made here, outside the running service (a person's
    /// decision on a finding from the CLI), for the service to number into
    /// the trust notice log and announce: written in the open transaction,
    /// with the change itself, so neither is kept without the other.
    fn queue_notices(&mut self, changes: &[(Timestamp, String, tenet_model::NoticeChange)]) -> Result<()>;

    /// Trust changes queued by [`Self::queue_notices`] and not numbered
    /// yet, oldest first, each with its id.
    fn pending_notices(&self) -> Result<Vec<(i64, Timestamp, String, tenet_model::NoticeChange)>>;

    /// Removes pending notices once numbered into the log, in the open transaction.
    fn clear_pending_notices(&mut self, ids: &[i64]) -> Result<()>;

    /// Appends trust notices to the durable log, in the open transaction:
    /// written with the findings and risk they announce, they are kept or
    /// lost with them. Each notice's `seq` is its position in the log.
    fn put_notices(&mut self, notices: &[tenet_model::TrustNotice]) -> Result<()>;

    /// The last notice in the durable log (0 when none).
    fn last_notice(&self) -> Result<u64>;

    /// Numbers `notices` on from the last in the log, in the open
    /// transaction. Where several writers share the log (cluster nodes),
    /// the log's end is held until commit, so numbers are never given twice.
    fn number_notices(&mut self, notices: &mut [tenet_model::TrustNotice]) -> Result<()> {
        let last = self.last_notice()?;
        for (i, n) in notices.iter_mut().enumerate() {
            n.seq = last + 1 + i as u64;
        }
        Ok(())
    }

    /// Records an administrator's verdict in the audit log, in the open
    /// transaction; `applied`: its risk and notice are written with it.
    /// Returns its position in the log.
    fn put_verdict(&mut self, v: &tenet_model::PrincipalVerdict, applied: bool) -> Result<i64>;

    /// Marks a verdict another process recorded as applied, in the open transaction.
    fn verdict_applied(&mut self, seq: i64) -> Result<()>;

    /// Verdicts, oldest first: every one, or those not applied yet.
    fn verdicts(&self, pending_only: bool) -> Result<Vec<tenet_model::PrincipalVerdict>>;

    /// Marks `key` (a received SET's transmitter and jti) handled, in the
    /// open transaction; false when it already was: a SET retried by its
    /// transmitter changes trust once.
    fn first_time(&mut self, key: &str) -> Result<bool>;

    /// A number that changes whenever another writer (another process: the
    /// CLI beside a running service) commits, and never for this writer's
    /// own commits: how a long-running writer notices changes it did not make.
    fn others_commits(&self) -> Result<i64>;

    /// Drops whatever the open transaction holds (after a failed write a
    /// long-running writer carries on from the last commit).
    fn rollback(&mut self);
}

/// Reading the durable log of trust notices (another thread or process
/// than the writer's: the Shared Signals transmitter, the console).
pub trait NoticeReader: Send {
    /// Up to `limit` notices after `seq`, in order. A notice that no longer
    /// reads (written by another version) is an error naming it.
    fn notices_after(&self, seq: u64, limit: usize) -> Result<Vec<tenet_model::TrustNotice>>;

    /// The last notice in the log (0 when none).
    fn last_notice(&self) -> Result<u64>;
}

/// Where analysis has got to, and its learned state (opaque to the store).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalysisState {
    pub events_seq: i64,
    pub snapshot_id: i64,
    pub learner: Vec<u8>,
}

/// Where one part of the state's tables live (the decision log, API
/// keys, Shared Signals state): a SQLite file of its own beside the
/// embedded store, or the tables of a PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TablesAt {
    File(std::path::PathBuf),
    Postgres(String),
}

impl std::fmt::Display for TablesAt {
    /// The location for messages: a path, or a URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TablesAt::File(p) => write!(f, "{}", p.display()),
            TablesAt::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

/// Where the durable state lives: the embedded SQLite store in a data
/// directory (the default), or a PostgreSQL database shared by nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    Embedded(std::path::PathBuf),
    Postgres(String),
}

impl StoreAt {
    /// The store a command names: `--store` when given (a `postgres://` or
    /// `postgresql://` URL, or a directory), else the data directory.
    pub fn from_args(store: Option<&str>, data_dir: &std::path::Path) -> StoreAt {
        match store {
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                StoreAt::Postgres(s.to_string())
            }
            Some(dir) => StoreAt::Embedded(dir.into()),
            None => StoreAt::Embedded(data_dir.to_path_buf()),
        }
    }

    /// The store's single writer (creating or migrating the store as needed).
    pub fn writer(&self) -> Result<Box<dyn EventStore>> {
        Ok(match self {
            StoreAt::Embedded(dir) => Box::new(SqliteStore::open_dir(dir)?),
            StoreAt::Postgres(url) => Box::new(PostgresStore::connect(url)?),
        })
    }

    /// A reader, for another thread than the writer's.
    pub fn reader(&self) -> Result<Box<dyn StoreReader>> {
        Ok(match self {
            StoreAt::Embedded(dir) => Box::new(SqliteReader::open_dir(dir)?),
            StoreAt::Postgres(url) => Box::new(PostgresReader::connect(url)?),
        })
    }

    /// Where the decision log is: `decisions.db` beside the embedded
    /// store, or the PostgreSQL store's tables.
    pub fn decision_log(&self) -> TablesAt {
        self.tables("decisions.db")
    }

    /// Where the API keys are: `keys.db` beside the embedded store, or the
    /// PostgreSQL store's tables.
    pub fn keys(&self) -> TablesAt {
        self.tables("keys.db")
    }

    /// Where the Shared Signals state is: `ssf.db` beside the embedded
    /// store, or the PostgreSQL store's tables.
    pub fn ssf(&self) -> TablesAt {
        self.tables("ssf.db")
    }

    /// `file` beside the embedded store, or the PostgreSQL store's tables.
    fn tables(&self, file: &str) -> TablesAt {
        match self {
            StoreAt::Embedded(dir) => TablesAt::File(dir.join(file)),
            StoreAt::Postgres(url) => TablesAt::Postgres(url.clone()),
        }
    }

    /// The durable log of trust notices, for reading.
    pub fn notices(&self) -> Result<Box<dyn NoticeReader>> {
        Ok(match self {
            StoreAt::Embedded(dir) => Box::new(NoticeLog::open_dir(dir)?),
            StoreAt::Postgres(url) => Box::new(PostgresReader::connect(url)?),
        })
    }
}

impl std::fmt::Display for StoreAt {
    /// The location for messages: a directory, or a URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAt::Embedded(dir) => write!(f, "{}", dir.display()),
            StoreAt::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}
