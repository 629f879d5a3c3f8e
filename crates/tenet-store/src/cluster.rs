//! A cluster's nodes and who owns which partition of the event flow, kept
//! by PostgreSQL itself: each node holds a session-level advisory lock on
//! its name, and one on each partition it owns, all on one connection of
//! its own. When a node dies its connection closes and the server drops
//! every lock it held, so its partitions are free for the others at once;
//! nothing here votes, elects or times out on its own.
//!
//! `cluster_nodes` only remembers what a node said of itself (address,
//! start, the revision it has reached) for `tenet cluster status`; whether
//! a node is alive, and what it owns, is read from `pg_locks`.

use std::collections::BTreeSet;
use std::sync::Arc;

use deadpool_postgres::ClientWrapper;
use tenet_model::Timestamp;

use crate::postgres::{Db, block_on};
use crate::{Result, StoreError};

/// The first key of a node's lock (the second is a hash of its name).
const NODE_LOCKS: i32 = i32::from_be_bytes(*b"tenN");
/// The first key of a partition's lock (the second is the partition).
const PARTITION_LOCKS: i32 = i32::from_be_bytes(*b"tenP");

/// A lock key as `pg_locks` shows it (an unsigned oid).
fn lock_class(key: i32) -> i64 {
    i64::from(key as u32)
}

/// The Shared Signals transmitter's lock: one node signs and pushes SETs.
const TRANSMITTER_LOCK: i64 = i64::from_be_bytes(*b"tenetSET");

/// The second key of a node's lock.
fn node_key(node: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in node.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// This node's place in the cluster: its session and the locks on it.
pub struct Membership {
    db: Arc<Db>,
    session: Option<ClientWrapper>,
    /// Whether this node holds the transmitter's lock.
    transmitter: bool,
    node: String,
    address: String,
    partitions: u32,
    owned: BTreeSet<u32>,
}

/// What a rebalancing step changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rebalanced {
    /// Partitions this node now owns and did not.
    pub gained: Vec<u32>,
    /// Partitions this node owns beyond its share: the caller hands each
    /// over (stops reading it, saves its analysis) and then releases it.
    pub surplus: Vec<u32>,
    /// Partitions this node owned and no longer does: its session ended
    /// (a database restart) and the locks with it. Stop at once.
    pub lost: Vec<u32>,
    /// The live nodes, this one included.
    pub alive: u32,
}

impl Membership {
    /// Joins the cluster on the store at `url` as `node`, reachable at
    /// `address`, with `partitions` partitions. The first node to join
    /// fixes the count; a node configured otherwise is refused, and so is a
    /// second live node of the same name.
    pub fn join(url: &str, node: &str, address: &str, partitions: u32) -> Result<Membership> {
        let db = Db::connect(url)?;
        block_on(db.migrate())??;
        let mut m = Membership {
            db,
            session: None,
            transmitter: false,
            node: node.to_string(),
            address: address.to_string(),
            partitions,
            owned: BTreeSet::new(),
        };
        m.connect()?;
        Ok(m)
    }

    fn connect(&mut self) -> Result<()> {
        let (node, address, partitions) = (self.node.clone(), self.address.clone(), self.partitions);
        let shown = self.db.shown.clone();
        let session = block_on(async {
            let c = deadpool_postgres::Object::take(self.db.get().await?);
            c.execute(
                "INSERT INTO cluster(key, value) VALUES ('partitions', $1) ON CONFLICT (key) DO NOTHING",
                &[&i64::from(partitions)],
            )
            .await?;
            let fixed: i64 =
                c.query_one("SELECT value FROM cluster WHERE key = 'partitions'", &[]).await?.try_get(0)?;
            if fixed != i64::from(partitions) {
                return Err(StoreError::Cluster(format!(
                    "the cluster on {shown} has {fixed} partitions; this node is configured for {partitions} (the count is fixed when the cluster is created)"
                )));
            }
            let held: bool = c
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&NODE_LOCKS, &node_key(&node)])
                .await?
                .try_get(0)?;
            if !held {
                return Err(StoreError::Cluster(format!("a node named {node:?} is already running on {shown}")));
            }
            let now = Timestamp::now().unix_nanos();
            c.execute(
                "INSERT INTO cluster_nodes(node, address, pid, started, seen) VALUES ($1, $2, pg_backend_pid(), $3, $3)
                 ON CONFLICT (node) DO UPDATE SET address = excluded.address, pid = excluded.pid,
                   started = excluded.started, seen = excluded.seen",
                &[&node, &address, &now],
            )
            .await?;
            Ok(c)
        })??;
        self.session = Some(session);
        Ok(())
    }

    /// The partitions this node owns.
    pub fn owned(&self) -> &BTreeSet<u32> {
        &self.owned
    }

    /// Whether this node's session (and every lock on it) is held.
    pub fn connected(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.is_closed())
    }

    fn session(&self) -> Result<&ClientWrapper> {
        self.session.as_ref().filter(|s| !s.is_closed()).ok_or_else(|| StoreError::Unavailable {
            url: self.db.shown.clone(),
            reason: "the node's session ended".into(),
        })
    }

    /// Takes free partitions up to this node's share of them (the count
    /// over the nodes alive, rounded up) and says which it holds beyond
    /// it. A node whose session ended loses everything, says so, and
    /// joins again.
    pub fn rebalance(&mut self) -> Result<Rebalanced> {
        let mut out = Rebalanced::default();
        if !self.connected() {
            out.lost = std::mem::take(&mut self.owned).into_iter().collect();
            self.session = None;
            self.transmitter = false;
            if let Err(e) = self.connect() {
                // Reported now; the partitions lost are the caller's to stop either way.
                if out.lost.is_empty() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "the cluster session ended and cannot be opened again yet");
                return Ok(out);
            }
        }
        let (partitions, start) = (self.partitions, node_key(&self.node) as u32 % self.partitions.max(1));
        let owned = self.owned.clone();
        let gained = block_on(async {
            let c = self.session()?;
            let alive: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
                       AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[&lock_class(NODE_LOCKS)],
                )
                .await?
                .try_get(0)?;
            let share = partitions.div_ceil(alive.max(1) as u32);
            let mut gained = Vec::new();
            let mut have = owned.len() as u32;
            for p in (0..partitions).map(|i| (start + i) % partitions) {
                if have >= share {
                    break;
                }
                if owned.contains(&p) {
                    continue;
                }
                let took: bool = c
                    .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&PARTITION_LOCKS, &(p as i32)])
                    .await?
                    .try_get(0)?;
                if took {
                    gained.push(p);
                    have += 1;
                }
            }
            let surplus: Vec<u32> =
                owned.iter().rev().take(owned.len().saturating_sub(share as usize)).copied().collect();
            Ok::<_, StoreError>((gained, surplus, alive.max(0) as u32))
        })??;
        self.owned.extend(&gained.0);
        out.gained = gained.0;
        out.surplus = gained.1;
        out.alive = gained.2;
        Ok(out)
    }

    /// Whether this node is the cluster's Shared Signals transmitter: it
    /// holds the lock, or takes it now that no live node does.
    pub fn hold_transmitter(&mut self) -> Result<bool> {
        if self.transmitter && self.connected() {
            return Ok(true);
        }
        let held = block_on(async {
            let c = self.session()?;
            Ok::<bool, StoreError>(
                c.query_one("SELECT pg_try_advisory_lock($1)", &[&TRANSMITTER_LOCK]).await?.try_get(0)?,
            )
        })??;
        self.transmitter = held;
        Ok(held)
    }

    /// Gives the transmitter's lock up (the node is stopping).
    pub fn release_transmitter(&mut self) {
        if std::mem::take(&mut self.transmitter) {
            let _ = block_on(async {
                if let Ok(c) = self.session() {
                    let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&TRANSMITTER_LOCK]).await;
                }
            });
        }
    }

    /// Gives up partition `p` (after handing it over).
    pub fn release(&mut self, p: u32) -> Result<()> {
        if !self.owned.remove(&p) {
            return Ok(());
        }
        block_on(async {
            let c = self.session()?;
            c.execute("SELECT pg_advisory_unlock($1, $2)", &[&PARTITION_LOCKS, &(p as i32)]).await?;
            Ok::<_, StoreError>(())
        })?
    }

    /// Records that this node is alive and the revision it has reached.
    pub fn heartbeat(&self, revision: i64) -> Result<()> {
        let now = Timestamp::now().unix_nanos();
        block_on(async {
            let c = self.session()?;
            c.execute(
                "UPDATE cluster_nodes SET seen = $2, revision = $3 WHERE node = $1",
                &[&self.node, &now, &revision],
            )
            .await?;
            Ok::<_, StoreError>(())
        })?
    }
}

/// A node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub address: String,
    /// Whether it holds its lock: its process is running and connected.
    pub alive: bool,
    pub started: Timestamp,
    pub seen: Timestamp,
    pub revision: i64,
    pub partitions: Vec<u32>,
}

/// The cluster on a store: its nodes and each partition's owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    pub partitions: u32,
    pub nodes: Vec<NodeStatus>,
    /// Each partition's owner (`None`: no node owns it now).
    pub owners: Vec<Option<String>>,
    /// The node that signs and pushes Shared Signals SETs now.
    pub transmitter: Option<String>,
}

/// Reads the cluster on the store at `url` (`Ok(None)`: no node ever joined).
pub fn status(url: &str) -> Result<Option<ClusterStatus>> {
    let db = Db::connect(url)?;
    block_on(db.migrate())??;
    block_on(async {
        let c = db.get().await?;
        let Some(row) = c.query_opt("SELECT value FROM cluster WHERE key = 'partitions'", &[]).await? else {
            return Ok(None);
        };
        let partitions = row.try_get::<_, i64>(0)? as u32;
        let locks = c
            .query(
                "SELECT l.pid, l.classid::bigint, l.objid::bigint FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
                   AND l.classid::bigint IN ($1, $2)
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&lock_class(NODE_LOCKS), &lock_class(PARTITION_LOCKS)],
            )
            .await?;
        let rows =
            c.query("SELECT node, address, pid, started, seen, revision FROM cluster_nodes ORDER BY node", &[]).await?;
        // A one-key advisory lock shows its high half as classid, its low as objid.
        let transmitter_pid: Option<i32> = c
            .query_opt(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
                   AND classid::bigint = $1 AND objid::bigint = $2
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&((TRANSMITTER_LOCK >> 32) & 0xffff_ffff), &(TRANSMITTER_LOCK & 0xffff_ffff)],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let mut transmitter = None;
        let mut nodes = Vec::new();
        let mut owners = vec![None; partitions as usize];
        for r in rows {
            let node: String = r.try_get(0)?;
            let pid: i32 = r.try_get(2)?;
            let held = |class: i32, obj: i32| {
                locks.iter().any(|l| {
                    l.get::<_, i32>(0) == pid
                        && l.get::<_, i64>(1) == lock_class(class)
                        && l.get::<_, i64>(2) == lock_class(obj)
                })
            };
            let alive = held(NODE_LOCKS, node_key(&node));
            if alive && transmitter_pid == Some(pid) {
                transmitter = Some(node.clone());
            }
            let mut owned = Vec::new();
            if alive {
                for p in 0..partitions {
                    if held(PARTITION_LOCKS, p as i32) {
                        owned.push(p);
                        owners[p as usize] = Some(node.clone());
                    }
                }
            }
            nodes.push(NodeStatus {
                node,
                address: r.try_get(1)?,
                alive,
                started: Timestamp::from_unix_nanos(r.try_get(3)?),
                seen: Timestamp::from_unix_nanos(r.try_get(4)?),
                revision: r.try_get(5)?,
                partitions: owned,
            });
        }
        Ok(Some(ClusterStatus { partitions, nodes, owners, transmitter }))
    })?
}

/// The revision of the store at `url`: how many commits it has had.
pub fn revision(url: &str) -> Result<i64> {
    let db = Db::connect(url)?;
    block_on(db.migrate())??;
    block_on(async {
        let c = db.get().await?;
        Ok(c.query_one("SELECT value FROM meta WHERE key = 'revision'", &[]).await?.try_get(0)?)
    })?
}
