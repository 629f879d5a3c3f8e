//! Running as one node of a cluster: PostgreSQL holds the state, NATS
//! JetStream carries the events.
//!
//! - Intake on any node publishes its events, normalised, to the event
//!   stream, partitioned by actor ([`Publisher`]); the sender is answered
//!   once JetStream has acknowledged every one.
//! - Each partition is owned by one node at a time, by a PostgreSQL
//!   advisory lock ([`tenet_store::cluster::Membership`]). The ownership
//!   loop ([`Node`]) takes partitions up to this node's share, hands back
//!   those beyond it when nodes join, and starts a reader per owned
//!   partition.
//! - A partition's reader hands each batch to the pipeline thread
//!   (`Work::Partition`), which stores it idempotently in that partition,
//!   commits, and analyses it with the partition's learner; only then is
//!   the batch acknowledged to JetStream. A crash before that means the
//!   batch is delivered again (to whoever owns the partition then) and
//!   stored once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tenet_bus::Bus;
use tenet_model::Event;
use tenet_pipeline::ingest::{Counts, IngestReport, Rejection};
use tenet_server::intake::{Accepted, Refusal};
use tenet_store::cluster::Membership;
use tokio::sync::oneshot;

use crate::live::{Delivered, Inlet, Work};

/// How a node joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// NATS, `nats://HOST:PORT`.
    pub bus: String,
    /// This node's name, unique among the cluster's live nodes.
    pub node: String,
    /// The partition count, fixed when the cluster is created.
    pub partitions: u32,
    /// Decisions are marked stale once the node has not been able to
    /// follow the others' changes for this long.
    pub stale_after: Duration,
}

/// Trust updates waiting to go out at most (a NATS outage longer than
/// this many commits loses the oldest for the other nodes until they
/// restart: they load the state from the store).
const UPDATES_QUEUED: usize = 65_536;

/// How current a node's live state is: the store revision it has
/// reached, and when it last knew it was following the others.
pub struct NodeState {
    /// Whether the store answered the node's last look at its partitions.
    store_reachable: AtomicBool,
    revision: std::sync::atomic::AtomicI64,
    /// Milliseconds since the Unix epoch.
    following_since: std::sync::atomic::AtomicI64,
    stale_after: Duration,
}

fn now_ms() -> i64 {
    tenet_model::Timestamp::now().unix_nanos() / 1_000_000
}

impl NodeState {
    pub fn new(revision: i64, stale_after: Duration) -> NodeState {
        NodeState {
            store_reachable: AtomicBool::new(true),
            revision: std::sync::atomic::AtomicI64::new(revision),
            following_since: std::sync::atomic::AtomicI64::new(now_ms()),
            stale_after,
        }
    }

    /// The store revision the live state includes.
    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Whether the store answered the node's last look at its partitions.
    pub fn store_reachable(&self) -> bool {
        self.store_reachable.load(Ordering::Acquire)
    }

    fn set_store_reachable(&self, reachable: bool) {
        self.store_reachable.store(reachable, Ordering::Release);
    }

    /// The live state includes the commit at `revision` (and, commits
    /// arriving in order, every one before it).
    pub fn reached(&self, revision: i64) {
        self.revision.fetch_max(revision, Ordering::AcqRel);
    }

    /// The node is following the others' changes now.
    pub fn following(&self) {
        self.following_since.store(now_ms(), Ordering::Release);
    }

    /// How long the node has not been able to follow the others, once that
    /// is longer than the configured age: its decisions are stale.
    pub fn stale_for(&self) -> Option<Duration> {
        let behind = Duration::from_millis((now_ms() - self.following_since.load(Ordering::Acquire)).max(0) as u64);
        (behind > self.stale_after).then_some(behind)
    }
}

impl tenet_server::Freshness for NodeState {
    fn revision(&self) -> Option<i64> {
        Some(NodeState::revision(self))
    }

    fn stale_for(&self) -> Option<Duration> {
        NodeState::stale_for(self)
    }
}

/// What a node publishes on the trust stream after each commit: the
/// trust changes, and what the learners of the partitions it committed
/// learned, so the other nodes decide with it (see
/// [`tenet_learn::KnowledgeIndex`]).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct NodeUpdate {
    #[serde(flatten)]
    pub trust: tenet_model::TrustUpdate,
    /// Partition → what its learner learned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<(u32, tenet_learn::Learned)>,
    /// Credentials whose issuance the commit stored: the other nodes
    /// complete the chains of events they stored using them meanwhile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued: Vec<String>,
}

impl NodeUpdate {
    pub fn is_empty(&self) -> bool {
        self.trust.is_empty() && self.learned.iter().all(|(_, l)| l.is_empty()) && self.issued.is_empty()
    }
}

/// A pipeline's way out to the other nodes.
pub struct ClusterLink {
    pub node: String,
    pub state: Arc<NodeState>,
    updates: tokio::sync::mpsc::Sender<NodeUpdate>,
}

impl ClusterLink {
    /// Queues one commit's update for the trust stream, in commit order.
    pub fn send(&self, update: NodeUpdate) {
        self.state.reached(update.trust.revision);
        if let Err(e) = self.updates.try_send(update) {
            tracing::error!(error = %e, "a trust update could not be queued for the other nodes");
        }
    }
}

/// Starts publishing what this node commits to the trust stream, in order
/// (a publish that fails is tried again, the rest waiting behind it).
pub fn publish_updates(bus: Bus, handle: &tokio::runtime::Handle, node: String, state: Arc<NodeState>) -> ClusterLink {
    let (updates, mut rx) = tokio::sync::mpsc::channel::<NodeUpdate>(UPDATES_QUEUED);
    handle.spawn(async move {
        while let Some(update) = rx.recv().await {
            let mut failing = false;
            loop {
                match bus.publish_update(&update).await {
                    Ok(_) => break,
                    Err(e) => {
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(error = %e, revision = update.trust.revision, "a trust update is not published yet; trying again");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    });
    ClusterLink { node, state, updates }
}

/// Follows the other nodes' trust updates from place `after` in the trust
/// stream, handing each to this node's pipeline; and keeps `state` saying
/// whether the node is following.
pub fn follow_updates(
    bus: Bus,
    handle: &tokio::runtime::Handle,
    after: u64,
    node: String,
    inlet: Inlet,
    state: Arc<NodeState>,
) {
    {
        let (bus, state) = (bus.clone(), state.clone());
        handle.spawn(async move {
            loop {
                if bus.connected() {
                    state.following();
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    handle.spawn(async move {
        let mut after = after;
        loop {
            let mut feed = match bus.follow_trust::<NodeUpdate>(after).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "the other nodes' trust changes cannot be followed yet; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(next) = feed.next().await {
                match next {
                    Ok((seq, update)) => {
                        after = after.max(seq);
                        if update.trust.node == node {
                            continue;
                        }
                        let inlet = inlet.clone();
                        let queued = tokio::task::spawn_blocking(move || {
                            inlet.submit_partition_work(Work::Remote(Box::new(update)))
                        })
                        .await;
                        if !matches!(queued, Ok(Ok(()))) {
                            return;
                        }
                    }
                    Err(tenet_bus::BusError::Malformed { stream_seq, reason }) => {
                        after = after.max(stream_seq);
                        tracing::error!(stream_seq, %reason, "a trust update this build cannot read is skipped");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "following the other nodes' trust changes; resuming");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// The durable readers' name: `tenet-p<partition>`, one per partition,
/// shared by whichever node owns it, so its place in the stream survives a
/// change of owner.
pub const READER: &str = "tenet";
/// How long a delivered batch may stay unacknowledged before JetStream
/// delivers it again: bounds how long a dead owner's batch waits.
pub const ACK_WAIT: Duration = Duration::from_secs(5);
/// Events read per batch.
const BATCH: usize = 512;
/// How long a read waits for the first event (and so how soon a reader
/// notices it must stop).
const READ_WAIT: Duration = Duration::from_millis(500);
/// How often ownership is looked at.
const TICK: Duration = Duration::from_millis(500);
/// How often a node says it is alive (for `tenet cluster status`).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Publishes in flight at once from this node.
const IN_FLIGHT: usize = 64;

/// Publishes the events intake takes in to the event stream.
pub struct Publisher {
    bus: Bus,
    handle: tokio::runtime::Handle,
    slots: Arc<tokio::sync::Semaphore>,
    state: Arc<NodeState>,
    routes: Arc<CredentialRoutes>,
}

impl Publisher {
    pub fn new(
        bus: Bus,
        handle: tokio::runtime::Handle,
        state: Arc<NodeState>,
        store: tenet_store::StoreAt,
    ) -> Publisher {
        let routes = Arc::new(CredentialRoutes::new(store));
        Publisher { bus, handle, slots: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)), state, routes }
    }

    /// Refuses intake while an engine is down: NATS (nothing would be
    /// durable), or the store (nothing taken in now would be stored and
    /// analysed until it is back; the sender keeps it and tries again).
    fn refuse_while_down(&self) -> Result<(), Refusal> {
        if !self.bus.connected() {
            return Err(Refusal::Unavailable {
                message: "the event stream (NATS) cannot be reached".into(),
                retry_after: 5,
            });
        }
        if !self.state.store_reachable() {
            return Err(Refusal::Unavailable {
                message: "the store (PostgreSQL) cannot be reached".into(),
                retry_after: 5,
            });
        }
        Ok(())
    }

    /// Publishes a delivery's events, or refuses at once when this node has
    /// too many publishes in flight (429).
    pub fn try_publish(&self, delivered: Delivered) -> Result<(), Refusal> {
        self.refuse_while_down()?;
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| Refusal::Busy { retry_after: 1 })?;
        self.spawn(slot, delivered);
        Ok(())
    }

    /// Publishes a delivery's events, waiting for a free slot: for trusted
    /// in-process inputs (watched folders, the simulator).
    pub fn publish_waiting(&self, delivered: Delivered) -> Result<(), Refusal> {
        self.refuse_while_down()?;
        let slots = self.slots.clone();
        let slot = self
            .handle
            .block_on(slots.acquire_owned())
            .map_err(|_| Refusal::Unavailable { message: "the publisher has stopped".into(), retry_after: 5 })?;
        self.spawn(slot, delivered);
        Ok(())
    }

    fn spawn(&self, slot: tokio::sync::OwnedSemaphorePermit, delivered: Delivered) {
        let (bus, routes) = (self.bus.clone(), self.routes.clone());
        self.handle.spawn(async move {
            let Delivered { origin, format, events, rejections, spans, reply } = delivered;
            let started = Instant::now();
            // Who each event is about may take a look in the store.
            let (events, principals) = match tokio::task::spawn_blocking(move || {
                let principals = routes.principals(&events);
                (events, principals)
            })
            .await
            {
                Ok(routed) => routed,
                Err(e) => {
                    tracing::error!(error = %e, "events could not be routed to their partitions");
                    return;
                }
            };
            let published = bus.publish_events(&events, &principals).await;
            drop(slot);
            let answer = match published {
                Ok(duplicates) => Ok(accepted(format, events.len() as u64, duplicates, rejections, spans, started)),
                Err(e) => {
                    tracing::warn!(error = %e, %origin, "a delivery could not be published to the event stream");
                    Err(Refusal::Unavailable {
                        message: format!("the event stream cannot take events now: {e}"),
                        retry_after: 5,
                    })
                }
            };
            if let Some(r) = reply {
                let _ = r.send(answer);
            }
        });
    }
}

/// Which principal each event is about, for its partition, as far as
/// intake can tell: a session's events go with the person (or agent) its
/// credential was issued to, as the issuing event does, so the one learner
/// that sees the issuance sees the session's events after it and knows who
/// acted (as a single service, which sees everything in order, does).
/// Other events go by [`tenet_learn::identity::partition_principal`]: a
/// role's sessions with the role, whatever their session names.
struct CredentialRoutes {
    store: tenet_store::StoreAt,
    /// Credential → the principal its sessions go with, or when its
    /// issuance was last looked for in the store and not found.
    known: std::sync::Mutex<std::collections::HashMap<String, Route>>,
}

#[derive(Clone)]
enum Route {
    To(String),
    /// Looked up again after [`UNKNOWN_FOR`]: the issuance may be stored
    /// since (an access key's never is).
    Unknown(Instant),
}

/// Credentials remembered; beyond this the memory starts again (sessions
/// live hours; a credential forgotten is looked up in the store).
const ROUTES_KEPT: usize = 200_000;
/// How long a credential whose issuance the store did not hold goes by
/// its session's own principal before it is looked up again.
const UNKNOWN_FOR: Duration = Duration::from_secs(30);

impl CredentialRoutes {
    fn new(store: tenet_store::StoreAt) -> Self {
        CredentialRoutes { store, known: Default::default() }
    }

    /// The principal each of a delivery's events is about, in order.
    fn principals(&self, events: &[Event]) -> Vec<String> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() > ROUTES_KEPT {
            known.clear();
        }
        // Credentials this delivery's events present that no route names
        // and it does not mint itself: the store may hold their issuance
        // (taken in earlier, or on another node).
        let minted: std::collections::HashSet<&str> =
            events.iter().filter_map(|e| e.issued.as_ref().map(|i| i.credential_id.as_str())).collect();
        let mut unknown: Vec<&str> = events
            .iter()
            .filter_map(|e| e.session.as_ref()?.credential_id.as_deref())
            .filter(|c| !minted.contains(c))
            .filter(|c| match known.get(*c) {
                None => true,
                Some(Route::To(_)) => false,
                Some(Route::Unknown(at)) => at.elapsed() >= UNKNOWN_FOR,
            })
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty()
            && let Ok(reader) = self.store.reader()
        {
            for cred in unknown {
                let issuer = reader.issuer_of(cred).ok().flatten();
                let route = issuer.and_then(|issuer| Self::route(&issuer, &known));
                known.insert(cred.to_string(), route.map_or(Route::Unknown(Instant::now()), Route::To));
            }
        }
        events
            .iter()
            .map(|e| {
                let Some(issued) = &e.issued else {
                    return Self::routed(e, &known).unwrap_or_else(|| tenet_learn::identity::partition_principal(e));
                };
                match Self::route(e, &known) {
                    Some(route) => {
                        known.insert(issued.credential_id.clone(), Route::To(route.clone()));
                        route
                    }
                    // Automation (a cloud service, a CI identity) taking up a
                    // role goes with the role, whose sessions follow it: its
                    // learner then knows every way the role is taken up.
                    None => e
                        .resources
                        .iter()
                        .find(|r| r.kind == "AWS::IAM::Role")
                        .map(|r| r.id.clone())
                        .unwrap_or_else(|| tenet_learn::identity::partition_principal(e)),
                }
            })
            .collect()
    }

    /// The principal the credential `e` presents was routed to.
    fn routed(e: &Event, known: &std::collections::HashMap<String, Route>) -> Option<String> {
        match known.get(e.session.as_ref()?.credential_id.as_deref()?)? {
            Route::To(p) => Some(p.clone()),
            Route::Unknown(_) => None,
        }
    }

    /// Where the sessions of the credential `issuing` minted go: with the
    /// person or agent it was minted for or by (one learner for all they
    /// do); `None` for automation minting a role's sessions, which go with
    /// the role (one partition for every workload a service runs would
    /// hold most of a cloud's events).
    fn route(issuing: &Event, known: &std::collections::HashMap<String, Route>) -> Option<String> {
        if let Some(route) = Self::routed(issuing, known) {
            return Some(route);
        }
        let subject = tenet_learn::identity::partition_subject(issuing);
        matches!(subject.kind, tenet_model::PrincipalKind::Human | tenet_model::PrincipalKind::Agent)
            .then_some(subject.id)
    }
}

/// What a sender is told once its events are durable on the stream: the
/// ingest summary, `stored` counting those the stream took as new.
fn accepted(
    format: &'static str,
    read: u64,
    duplicates: u64,
    rejections: Vec<Rejection>,
    spans: Option<usize>,
    started: Instant,
) -> Accepted {
    let rejected = rejections.len() as u64;
    if let Some(spans) = spans {
        let rejected_spans = spans.saturating_sub(read as usize) as i64;
        let message = match rejections.first() {
            Some(r) if rejected_spans > 0 => {
                format!("{rejected_spans} span(s) not used; first: {}: {}", r.location, r.reason)
            }
            _ => String::new(),
        };
        return Accepted::Otlp { rejected_spans, message };
    }
    let counts = Counts { read: read + rejected, stored: read - duplicates, duplicates, rejected };
    let report = IngestReport {
        read: counts.read,
        stored: counts.stored,
        duplicates,
        rejected,
        files: 1,
        store_seconds: started.elapsed().as_secs_f64(),
        formats: BTreeMap::from([(format.to_string(), counts)]),
        rejections,
        ..Default::default()
    };
    Accepted::Summary(serde_json::to_value(&report).unwrap_or_default())
}

/// A running partition reader.
struct Reader {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// The ownership loop of a running node.
pub struct Node {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Starts taking partitions for `membership`'s node: each owned one is
    /// loaded into the pipeline behind `inlet`, then read from `bus`.
    /// `state`: how current the node's live state is, for its heartbeat.
    pub fn start(
        membership: Membership,
        bus: Bus,
        handle: tokio::runtime::Handle,
        inlet: Inlet,
        state: Arc<NodeState>,
        signals: Arc<crate::signals::Signals>,
    ) -> std::io::Result<Node> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("tenet-cluster".into()).spawn(move || {
                Ownership { membership, bus, handle, inlet, state, signals, readers: BTreeMap::new() }.run(&stop)
            })?
        };
        Ok(Node { stop, thread: Some(thread) })
    }

    /// Stops every reader and gives every partition up (its learner saved
    /// by the pipeline), so the other nodes take them at once.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the cluster thread panicked");
        }
    }
}

struct Ownership {
    membership: Membership,
    bus: Bus,
    handle: tokio::runtime::Handle,
    inlet: Inlet,
    state: Arc<NodeState>,
    signals: Arc<crate::signals::Signals>,
    readers: BTreeMap<u32, Reader>,
}

impl Ownership {
    fn run(&mut self, stop: &AtomicBool) {
        let mut beat = Instant::now() - HEARTBEAT;
        let mut failing = false;
        let mut alive = 0;
        while !stop.load(Ordering::Acquire) {
            let looked = self.membership.rebalance();
            self.state.set_store_reachable(looked.is_ok() && self.membership.connected());
            match looked {
                Ok(r) => {
                    if failing {
                        failing = false;
                        tracing::info!("the cluster's ownership can be read again");
                    }
                    for p in r.lost {
                        tracing::warn!(part = p, "partition lost with the node's database session");
                        self.hand_back(p);
                    }
                    for p in r.gained {
                        self.take(p);
                    }
                    for p in r.surplus {
                        self.hand_back(p);
                        if let Err(e) = self.membership.release(p) {
                            tracing::warn!(error = %e, part = p, "partition not released");
                        }
                    }
                    // A node died: what it committed last may never have
                    // reached the trust stream. Risk and open findings are
                    // read again from the store, which has it.
                    if r.alive < alive {
                        tracing::info!(
                            alive = r.alive,
                            "a node left; live risk and findings read again from the store"
                        );
                        let _ = self.inlet.submit_partition_work(Work::Resync);
                    }
                    alive = r.alive;
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "the cluster's ownership cannot be read; trying again");
                }
                Err(_) => {}
            }
            // One node signs and pushes SETs; another takes over when it dies.
            let transmitting = self.membership.hold_transmitter().unwrap_or(false);
            if transmitting && !self.signals.transmitting() {
                self.signals.set_transmitting(true);
                if let Err(e) = self.signals.catch_up() {
                    tracing::warn!(error = ?e, "trust changes not yet turned into SETs; at the next change");
                }
            } else if !transmitting {
                self.signals.set_transmitting(false);
            }
            if beat.elapsed() >= HEARTBEAT {
                beat = Instant::now();
                let _ = self.membership.heartbeat(self.state.revision());
            }
            std::thread::sleep(TICK);
        }
        let owned: Vec<u32> = self.readers.keys().copied().collect();
        for p in owned {
            self.hand_back(p);
            let _ = self.membership.release(p);
        }
        self.signals.set_transmitting(false);
        self.membership.release_transmitter();
    }

    /// Loads partition `p` into the pipeline, then starts its reader.
    fn take(&mut self, p: u32) {
        let (reply, loaded) = oneshot::channel();
        let loaded = self
            .inlet
            .submit_partition_work(Work::Own { part: p, reply })
            .map_err(|e| format!("{e:?}"))
            .and_then(|()| loaded.blocking_recv().map_err(|_| "the pipeline stopped".to_string())?);
        if let Err(e) = loaded {
            tracing::error!(error = %e, part = p, "partition not taken");
            let _ = self.membership.release(p);
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let task = self.handle.spawn(read(self.bus.clone(), p, self.inlet.clone(), stop.clone()));
        self.readers.insert(p, Reader { stop, task });
    }

    /// Stops partition `p`'s reader (its batch in flight finished) and
    /// has the pipeline save and drop its learner.
    fn hand_back(&mut self, p: u32) {
        if let Some(r) = self.readers.remove(&p) {
            r.stop.store(true, Ordering::Release);
            let _ = self.handle.block_on(r.task);
        }
        let (reply, done) = oneshot::channel();
        if self.inlet.submit_partition_work(Work::Release { part: p, reply }).is_ok() {
            let _ = done.blocking_recv();
        }
    }
}

/// A delivery's events held back until its last one in this partition
/// arrives, at most this many (a larger one is analysed in parts).
const HELD_EVENTS: usize = 16_384;

/// Reads partition `p` until told to stop: each batch stored and analysed
/// by the pipeline, delivery by delivery, then acknowledged. A delivery
/// whose last event has not come yet waits for the next batch (its events
/// unacknowledged), so it is analysed whole, as a single service would.
async fn read(bus: Bus, p: u32, inlet: Inlet, stop: Arc<AtomicBool>) {
    let mut feed = None;
    let mut failing = false;
    let mut held: Vec<tenet_bus::Delivery> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let f = match &feed {
            Some(f) => f,
            None => match bus.take_over(p, READER, ACK_WAIT).await {
                Ok(f) => feed.insert(f),
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, part = p, "the partition's reader cannot start; trying again");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let batch = match f.fetch(BATCH, READ_WAIT).await {
            Ok(b) => b,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, part = p, "the event stream cannot be read; trying again");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if std::mem::replace(&mut failing, false) {
            tracing::info!(part = p, "the event stream is read again");
        }
        let fetched = !batch.is_empty();
        for d in batch {
            // A redelivery of one held already (the ack wait passed).
            if held.iter().any(|h| h.stream_seq == d.stream_seq) {
                continue;
            }
            held.push(d);
        }
        // Whole deliveries go now; an unfinished last one waits, unless
        // nothing more came (its end is lost: a publisher died midway) or
        // it is too large to hold.
        let complete = held.iter().rposition(|d| d.ends_delivery).map_or(0, |i| i + 1);
        let take = if !fetched || held.len() >= HELD_EVENTS { held.len() } else { complete };
        if take == 0 {
            continue;
        }
        let batch: Vec<tenet_bus::Delivery> = held.drain(..take).collect();
        let mut runs: Vec<Vec<Event>> = Vec::new();
        let mut usable = Vec::with_capacity(batch.len());
        let mut run_of = None;
        for d in batch {
            match d.event() {
                Ok(e) => {
                    if run_of.as_deref() != Some(d.delivery.as_str()) || runs.is_empty() {
                        runs.push(Vec::new());
                    }
                    run_of = (!d.ends_delivery).then(|| d.delivery.clone());
                    if let Some(run) = runs.last_mut() {
                        run.push(e);
                    }
                    usable.push(d);
                }
                Err(e) => {
                    // Never readable by this build: delivered again it would
                    // hold the partition up forever.
                    tracing::error!(error = %e, part = p, "an unreadable message on the event stream is dropped");
                    let _ = d.reject().await;
                }
            }
        }
        let (reply, stored) = oneshot::channel();
        let submitted = {
            let inlet = inlet.clone();
            tokio::task::spawn_blocking(move || inlet.submit_partition_work(Work::Partition { part: p, runs, reply }))
                .await
        };
        if !matches!(submitted, Ok(Ok(()))) {
            return;
        }
        match stored.await {
            Ok(Ok(())) => {
                for d in &usable {
                    let _ = d.ack_sent().await;
                }
            }
            Ok(Err(e)) => {
                // Not acknowledged: delivered again after the ack wait.
                tracing::warn!(error = %e, part = p, events = usable.len(), "a batch was not stored; it comes again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use tenet_model::{
        Action, Event, IssuedCredential, Principal, PrincipalKind, Resource, Session, Source, Timestamp,
    };

    use super::CredentialRoutes;

    fn call(id: &str, actor: &str, kind: PrincipalKind, operation: &str, presents: Option<&str>) -> Event {
        Event {
            session: presents.map(|c| Session { credential_id: Some(c.into()), ..Default::default() }),
            ..Event::api_call(
                id,
                Timestamp::from_unix_seconds(1),
                Principal::new(actor, kind),
                Action::new("sts", operation),
                Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
            )
        }
    }

    /// `actor` takes up `role`, minting `credential` for its session.
    fn assume(id: &str, actor: &str, kind: PrincipalKind, role: &str, credential: &str) -> Event {
        let mut e = call(id, actor, kind, "AssumeRole", None);
        let session = format!("arn:aws:sts::1:assumed-role/{}/s-{id}", role.rsplit('/').next().unwrap());
        e.issued = Some(IssuedCredential {
            credential_id: credential.into(),
            to: Principal::new(session, PrincipalKind::Unknown),
            expires: None,
        });
        e.resources.push(Resource::new("AWS::IAM::Role", role));
        e
    }

    fn session_call(id: &str, role: &str, credential: &str) -> Event {
        let actor = format!("arn:aws:sts::1:assumed-role/{role}/s-{id}");
        let mut e = call(id, &actor, PrincipalKind::Role, "GetCallerIdentity", Some(credential));
        e.chain.push(Principal::new(format!("arn:aws:iam::1:role/{role}"), PrincipalKind::Role));
        e
    }

    #[test]
    fn a_sessions_events_go_with_the_person_its_credential_was_issued_to_and_automations_with_the_role() {
        let dir = tempfile::tempdir().unwrap();
        let routes = CredentialRoutes::new(tenet_store::StoreAt::Embedded(dir.path().into()));
        let alice = "arn:aws:iam::1:user/alice";
        let lambda = "lambda.amazonaws.com";
        let first = [
            assume("1", alice, PrincipalKind::Human, "arn:aws:iam::1:role/admin", "K1"),
            session_call("2", "admin", "K1"),
            assume("3", lambda, PrincipalKind::CloudService, "arn:aws:iam::1:role/orders", "K2"),
            session_call("4", "orders", "K2"),
            session_call("5", "admin", "K-never-issued"),
        ];
        assert_eq!(
            routes.principals(&first),
            [alice, alice, "arn:aws:iam::1:role/orders", "arn:aws:iam::1:role/orders", "arn:aws:iam::1:role/admin"]
        );
        // A later delivery: the session of a credential minted earlier, and
        // a role chained from it, still go with the person.
        let later = [
            session_call("6", "admin", "K1"),
            {
                let mut chained = assume(
                    "7",
                    "arn:aws:sts::1:assumed-role/admin/s-2",
                    PrincipalKind::Role,
                    "arn:aws:iam::1:role/audit",
                    "K3",
                );
                chained.session = Some(Session { credential_id: Some("K1".into()), ..Default::default() });
                chained
            },
            session_call("8", "audit", "K3"),
        ];
        assert_eq!(routes.principals(&later), [alice, alice, alice]);
    }
}
