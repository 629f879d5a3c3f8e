//! What normal looks like, per principal, per peer group and per workflow,
//! learned one event at a time. Every structure is bounded; weights decay so
//! a sustained legitimate change becomes the new normal.

use serde::{Deserialize, Serialize};

use crate::sketch::{Churn, DAY, Decayed, Habits, HourOfWeek, Novelty, Rate, TopK, key, total_variation};

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
    /// The wider network an address is in (/16, /32 for IPv6): a workload
    /// that hops between /24s of its cloud's space stays within a few.
    pub const NETWORK_WIDE: u8 = 11;
    /// An action on a target refused before: the same denial again is
    /// habit (a plan that always probes what it does not manage).
    pub const DENIED: u8 = 12;
    /// A secret read: which secrets a principal reads is among the most
    /// stable things about it.
    pub const SECRET: u8 = 13;
    /// Who assumes a role (kept in the role's baseline), the family of that
    /// identity (a repository's workflows, one account's roles) and its
    /// organisation (an account, a repository owner, an email domain).
    pub const ASSUMER: u8 = 14;
    pub const ASSUMER_FAMILY: u8 = 15;
    pub const ASSUMER_ORG: u8 = 16;
    /// An identity its inventory never listed, once reported.
    pub const UNKNOWN: u8 = 17;

    /// The churn slot of a feature, for those whose churn is estimated.
    pub fn churn_slot(f: u8) -> Option<usize> {
        Some(match f {
            ACTION => 0,
            NETWORK => 1,
            NETWORK_WIDE => 2,
            USER_AGENT => 3,
            REGION => 4,
            RESOURCE => 5,
            COUNTERPART => 6,
            SECRET => 7,
            ASSUMER => 8,
            _ => return None,
        })
    }

    pub fn name(f: u8) -> &'static str {
        match f {
            ACTION => "action",
            SERVICE => "service",
            RESOURCE_TYPE => "resource type",
            RESOURCE => "resource",
            NETWORK => "source network",
            NETWORK_WIDE => "wider source network",
            DENIED => "refused action",
            SECRET => "secret",
            ASSUMER => "assuming identity",
            ASSUMER_FAMILY => "family of assuming identities",
            ASSUMER_ORG => "organisation of assuming identities",
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
    /// How readily each feature shows new values.
    pub churn: Churn,
    /// Deviations that recur, by day.
    pub habits: Habits,
    /// The kinds of sensitive action it ever took (a [`crate::actions::Traits`] mask).
    pub kinds: u16,
    /// The latest improbable new network and user agent, and since when:
    /// for a day they stay unfamiliar however many calls come from them.
    pub fresh_network: (u32, i64),
    pub fresh_agent: (u32, i64),
    /// A network a pointed deviation came from, and until when its events
    /// are not counted as churn.
    pub suspicious_network: (u32, i64),
}

impl PrincipalBaseline {
    pub fn new(t: i64) -> Self {
        PrincipalBaseline {
            events: 0,
            first_seen: t,
            last_seen: t,
            seen: Novelty::default(),
            actions_long: TopK::new(20, LONG),
            actions_short: TopK::new(12, SHORT),
            networks: TopK::new(6, LONG),
            user_agents: TopK::new(6, LONG),
            hours: HourOfWeek::default(),
            rate: Rate::default(),
            ok: Decayed::default(),
            failed: Decayed::default(),
            shift_checked: t,
            shift_alarmed: 0,
            churn: Churn::default(),
            habits: Habits::default(),
            kinds: 0,
            fresh_network: (0, 0),
            fresh_agent: (0, 0),
            suspicious_network: (0, 0),
        }
    }

    /// Whether `k` is the fresh value of a slot (first seen, improbably, within the day).
    pub fn is_fresh(slot: (u32, i64), k: u64, t: i64) -> bool {
        slot.0 == k as u32 && t - slot.1 < DAY
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
            + self.habits.heap_bytes()
    }

    /// Bytes this baseline takes, inline and on the heap.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.heap_bytes()
    }
}

/// What a peer group (a group, a role, an agent type, the workloads one
/// service runs) does together: a principal's first use of something its
/// peers already do is less surprising, and a young principal's churn is
/// judged by its peers' until it has its own.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PeerBaseline {
    pub events: u64,
    pub seen: Novelty,
    /// Members seen, approximately (for "the peer group does the same").
    pub members: u32,
    /// How readily members see values new to them, per feature.
    pub churn: Churn,
    /// Values members took up recently: (value key, when, member key).
    /// Several members adopting the same new thing at once is a rollout.
    pub adoptions: Vec<(u64, i64, u64)>,
}

/// Recent adoptions a peer group remembers.
const ADOPTIONS_KEPT: usize = 32;

impl PeerBaseline {
    /// Notes that `member` used `value` for the first time at `t`.
    pub fn adopted(&mut self, value: u64, t: i64, member: u64) {
        if self.adoptions.len() >= ADOPTIONS_KEPT {
            self.adoptions.remove(0);
        }
        self.adoptions.push((value, t, member));
    }

    /// How many other members took `value` up within `window` before `t`,
    /// in the baselines of one peer group that `parts` are (its members may
    /// be learned by several learners).
    pub fn adopters<'a>(
        parts: impl Iterator<Item = &'a PeerBaseline>,
        value: u64,
        t: i64,
        window: i64,
        member: u64,
    ) -> usize {
        let mut who: Vec<u64> = parts
            .flat_map(|p| p.adoptions.iter())
            .filter(|(v, at, m)| *v == value && *m != member && *at <= t && t - at <= window)
            .map(|(_, _, m)| *m)
            .collect();
        who.sort_unstable();
        who.dedup();
        who.len()
    }
}

/// An agent workflow's transitions between operations (tool calls), by the
/// agent type: which step follows which, decayed.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct WorkflowBaseline {
    pub traces: u64,
    pub seen: Novelty,
}
