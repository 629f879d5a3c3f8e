//! What normal looks like, per principal, per peer group and per workflow,
//! learned one event at a time. Every structure is bounded; weights decay so
//! a sustained legitimate change becomes the new normal.

use serde::{Deserialize, Serialize};

use crate::sketch::{DAY, Decayed, HourOfWeek, Novelty, Rate, TopK, key, total_variation};

/// Feature namespaces in the novelty filters.
pub mod feature {
    pub const ACTION: u8 = 1;
    pub const SERVICE: u8 = 2;
    pub const RESOURCE_TYPE: u8 = 3;
    pub const RESOURCE: u8 = 4;
    pub const NETWORK: u8 = 5;
    pub const USER_AGENT: u8 = 6;
    pub const COUNTERPART: u8 = 7;
    pub const REGION: u8 = 8;
    /// An action on a resource type, together: what the decision point asks.
    pub const ACTION_ON_TYPE: u8 = 9;
    pub const RULE: u8 = 10;

    pub fn name(f: u8) -> &'static str {
        match f {
            ACTION => "action",
            SERVICE => "service",
            RESOURCE_TYPE => "resource type",
            RESOURCE => "resource",
            NETWORK => "source network",
            USER_AGENT => "user agent",
            COUNTERPART => "counterpart",
            REGION => "region",
            ACTION_ON_TYPE => "action on resource type",
            RULE => "Sigma rule",
            _ => "feature",
        }
    }
}

/// Half-lives: the long view of habits, and the recent view a shift is
/// measured against.
const LONG: i64 = 14 * DAY;
const SHORT: i64 = DAY;

/// One principal's behaviour.
#[derive(Clone, Serialize, Deserialize)]
pub struct PrincipalBaseline {
    pub events: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Every categorical feature value seen (actions, services, resources,
    /// networks, user agents, counterparts, regions), namespaced.
    pub seen: Novelty,
    pub actions_long: TopK,
    pub actions_short: TopK,
    pub networks: TopK,
    pub user_agents: TopK,
    pub hours: HourOfWeek,
    pub rate: Rate,
    pub ok: Decayed,
    pub failed: Decayed,
    /// When the short-against-long shift was last checked and alarmed.
    pub shift_checked: i64,
    pub shift_alarmed: i64,
}

impl PrincipalBaseline {
    pub fn new(t: i64) -> Self {
        PrincipalBaseline {
            events: 0,
            first_seen: t,
            last_seen: t,
            seen: Novelty::default(),
            actions_long: TopK::new(24, LONG),
            actions_short: TopK::new(12, SHORT),
            networks: TopK::new(6, LONG),
            user_agents: TopK::new(6, LONG),
            hours: HourOfWeek::default(),
            rate: Rate::default(),
            ok: Decayed::default(),
            failed: Decayed::default(),
            shift_checked: t,
            shift_alarmed: 0,
        }
    }

    /// The short-window action mix against the long one (0 same, 1 disjoint),
    /// once there is enough of both to compare.
    pub fn shift(&self, t: i64) -> Option<f32> {
        (self.actions_short.total(t) >= 30.0 && self.actions_long.total(t) >= 200.0)
            .then(|| total_variation(&self.actions_short.distribution(t), &self.actions_long.distribution(t)))
    }

    pub fn failure_ratio(&self, t: i64) -> f32 {
        let (ok, bad) = (self.ok.value_at(t, LONG), self.failed.value_at(t, LONG));
        bad / (ok + bad).max(1.0)
    }

    pub fn observe_outcome(&mut self, t: i64, failed: bool) {
        if failed {
            self.failed.add(t, 1.0, LONG);
        } else {
            self.ok.add(t, 1.0, LONG);
        }
    }

    pub fn observe_action(&mut self, t: i64, action: &str) {
        let k = key(feature::ACTION, action);
        self.actions_long.add(k, t);
        self.actions_short.add(k, t);
    }

    pub fn heap_bytes(&self) -> usize {
        self.seen.heap_bytes()
            + self.actions_long.heap_bytes()
            + self.actions_short.heap_bytes()
            + self.networks.heap_bytes()
            + self.user_agents.heap_bytes()
            + self.hours.heap_bytes()
    }

    /// Bytes this baseline takes, inline and on the heap.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.heap_bytes()
    }
}

/// What a peer group (a group, a role, an agent type) does together: a
/// principal's first use of something its peers already do is less surprising.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PeerBaseline {
    pub events: u64,
    pub seen: Novelty,
    /// Members seen, approximately (for "the peer group does the same").
    pub members: u32,
}

/// An agent workflow's transitions between operations (tool calls), by the
/// agent type: which step follows which, decayed.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct WorkflowBaseline {
    pub traces: u64,
    pub seen: Novelty,
}
