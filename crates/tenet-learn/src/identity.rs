//! Who an event is about, and who its peers are: the part of the trust
//! graph the learner needs on every event, kept as a small index over the
//! same facts (aliases, memberships, delegations, recent authorised
//! changes) rather than querying the full graph per event.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use tenet_model::{Event, Fact, NodeKind, PrincipalKind, TrustChange};

use crate::sketch::DAY;

/// What an event is attributed to: the identity whose behaviour it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Canonical id: `user:<email>` for a person wherever they act, an
    /// agent id, a role ARN for a workload's sessions, an IAM user ARN.
    pub id: String,
    /// The one kind of actor, as the learner judges the subject: a role's
    /// sessions and the cloud's own services act as workloads; other kinds
    /// as the event names them.
    pub kind: PrincipalKind,
    /// The person behind it, when there is one and it is not the subject.
    pub person: Option<String>,
    /// The role the event was made through (a session's issuer).
    pub role: Option<String>,
}

/// An authorised change that touched an identity: evidence that new
/// behaviour after it may be expected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorisedChange {
    pub at: i64,
    pub what: String,
    /// The event that made it, or the inventory that showed it.
    pub evidence: String,
    pub is_event: bool,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct IdentityIndex {
    /// Alias → canonical id (people: `user:<email>`).
    alias: FxHashMap<String, String>,
    /// Canonical member → groups (canonical ids as given).
    groups: FxHashMap<String, FxHashSet<String>>,
    /// Agent → the people it is declared to act for.
    delegations: FxHashMap<String, FxHashSet<String>>,
    /// Recent authorised changes by canonical identity (bounded per identity).
    changes: FxHashMap<String, Vec<AuthorisedChange>>,
    /// MCP servers' tool announcements: server host → (time, event id).
    tool_announcements: FxHashMap<String, Vec<(i64, String)>>,
    /// The MCP servers each agent has been seen calling (first host label).
    agent_servers: FxHashMap<String, FxHashSet<String>>,
    /// Grants and tools held (by fact key): re-asserting one is not a change.
    held: FxHashSet<String>,
    /// Inventory scopes seen: the first snapshot of a scope is the starting
    /// point, not a change.
    scopes: FxHashSet<String>,
    /// Each identity's latest authentication that said whether MFA was used.
    #[serde(default)]
    authentications: FxHashMap<String, Authentication>,
    /// The principals of the event being applied: a change an identity
    /// makes to itself authorises nothing.
    #[serde(skip)]
    acting: Vec<String>,
    /// Each person's latest sign-in verified with a second factor at their
    /// identity provider: the network it came from, and when.
    #[serde(default)]
    verified: FxHashMap<String, (String, i64)>,
}

/// How long an MFA-verified sign-in vouches for the network it came from.
pub const VERIFIED_FOR: i64 = 12 * crate::sketch::HOUR;

/// The network an address belongs to: /24 for IPv4, /48 for IPv6; and the
/// wider one: /16, /32.
pub fn networks_of(ip: std::net::IpAddr) -> (String, String) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            (format!("{}.{}.{}.0/24", o[0], o[1], o[2]), format!("{}.{}.0.0/16", o[0], o[1]))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            (format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]), format!("{:x}:{:x}::/32", s[0], s[1]))
        }
    }
}

/// How an identity last authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// Event time, nanoseconds.
    pub at: i64,
    pub mfa: bool,
    /// The event's action (`signin:ConsoleLogin`, `okta:user.authentication.auth_via_mfa`…).
    pub via: String,
}

const CHANGES_KEPT: usize = 8;

fn is_person_id(id: &str) -> bool {
    id.starts_with("user:")
}

impl IdentityIndex {
    /// The canonical form of an id (itself when no alias is known).
    pub fn canonical<'a>(&'a self, id: &'a str) -> &'a str {
        self.alias.get(id).map_or(id, String::as_str)
    }

    /// The aliases (alias, canonical id) of the canonical ids `wanted` picks.
    pub fn aliases_of(&self, wanted: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.alias.iter().filter(|(_, c)| wanted(c)).map(|(a, c)| (a.clone(), c.clone())).collect()
    }

    fn link(&mut self, a: &str, b: &str) {
        // Prefer the person form as canonical; otherwise the first seen.
        let (ca, cb) = (self.canonical(a).to_string(), self.canonical(b).to_string());
        if ca == cb {
            return;
        }
        let (keep, drop) = if is_person_id(&cb) && !is_person_id(&ca) { (cb, ca) } else { (ca, cb) };
        for v in self.alias.values_mut() {
            if *v == drop {
                *v = keep.clone();
            }
        }
        self.alias.insert(drop.clone(), keep.clone());
        self.alias.insert(a.to_string(), keep.clone());
        self.alias.insert(b.to_string(), keep.clone());
        self.alias.remove(&keep);
        // What the dropped form belonged to, the canonical form belongs to.
        if let Some(gs) = self.groups.remove(&drop) {
            self.groups.entry(keep.clone()).or_default().extend(gs);
        }
    }

    /// The groups a canonical identity belongs to.
    pub fn groups_of(&self, id: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self.groups.get(id).into_iter().flatten().map(String::as_str).collect();
        out.sort_unstable();
        out
    }

    /// Whether an IAM role or user ARN is one the inventory of its account
    /// never listed and no event was seen creating: `None` when its account
    /// is not inventoried (nothing can be said).
    pub fn unknown_iam(&self, arn: &str) -> Option<bool> {
        let account = arn.split(':').nth(4).filter(|a| !a.is_empty())?;
        if !(arn.contains(":role/") || arn.contains(":user/")) {
            return None;
        }
        if !self.scopes.contains(&format!("aws-iam|aws:{account}")) {
            return None;
        }
        let known = |id: &str| self.held.contains(&format!("node|{id}"));
        Some(!known(arn) && !known(self.canonical(arn)) && pathless_role(arn).is_none_or(|p| !known(&p)))
    }

    /// Whether `id`'s closest peers hold `group`: in one of its tight
    /// groups (a team, not an interest list or an everyone group: at most a
    /// quarter of the organisation, or its smallest group of three or more),
    /// at least a quarter of the other members are in `group`.
    pub fn peers_hold(&self, id: &str, group: &str) -> bool {
        let Some(mine) = self.groups.get(id) else { return false };
        let everyone = self.groups.len();
        let members = |g: &str| -> Vec<&String> {
            self.groups.iter().filter(|(m, gs)| m.as_str() != id && gs.contains(g)).map(|(m, _)| m).collect()
        };
        let sized: Vec<(&String, Vec<&String>)> = mine
            .iter()
            .filter(|g| g.as_str() != group)
            .map(|g| (g, members(g)))
            .filter(|(_, m)| m.len() >= 2)
            .collect();
        let smallest = sized.iter().map(|(_, m)| m.len()).min().unwrap_or(0);
        sized.iter().filter(|(_, m)| m.len() <= smallest.max(everyone / 4)).any(|(_, m)| {
            let holding = m.iter().filter(|p| self.groups.get(p.as_str()).is_some_and(|gs| gs.contains(group))).count();
            holding * 4 >= m.len()
        })
    }

    pub fn acts_for(&self, agent: &str) -> Option<&FxHashSet<String>> {
        self.delegations.get(agent)
    }

    /// Authorised changes to `id` made within `window` before `t`.
    pub fn changes_before(&self, id: &str, t: i64, window: i64) -> Vec<&AuthorisedChange> {
        self.changes.get(id).into_iter().flatten().filter(|c| c.at <= t && t - c.at <= window).collect()
    }

    /// Remembers which MCP servers an agent calls, from its calls' endpoints.
    pub fn note_agent_servers(&mut self, agent: &str, e: &Event) {
        for r in e.resources.iter().filter(|r| r.kind == "endpoint") {
            let name = server_name(&r.id);
            if !self.agent_servers.get(agent).is_some_and(|s| s.contains(&name)) {
                self.agent_servers.entry(agent.to_string()).or_default().insert(name);
            }
        }
    }

    /// The servers an agent calls (as far as seen) and those this event reaches.
    pub fn agent_servers(&self, agent: &str, e: &Event) -> Vec<String> {
        let mut out: Vec<String> = self.agent_servers.get(agent).into_iter().flatten().cloned().collect();
        for r in e.resources.iter().filter(|r| r.kind == "endpoint") {
            let n = server_name(&r.id);
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    /// Tool announcements by `server` within `window` before `t`.
    pub fn announcements_before(&self, server: &str, t: i64, window: i64) -> Vec<&(i64, String)> {
        self.tool_announcements
            .get(server)
            .into_iter()
            .flatten()
            .filter(|(at, _)| *at <= t && t - at <= window)
            .collect()
    }

    fn record_change(&mut self, id: &str, change: AuthorisedChange) {
        let id = self.canonical(id).to_string();
        if self.acting.contains(&id) {
            return;
        }
        let list = self.changes.entry(id).or_default();
        list.push(change);
        if list.len() > CHANGES_KEPT {
            list.remove(0);
        }
    }

    /// Applies a fact that holds from `t` (from an inventory or an event);
    /// `evidence` names where it came from. Declared memberships and grants
    /// are remembered as authorised changes of the identity they touch.
    pub fn assert(&mut self, fact: &Fact, t: i64, evidence: &str, is_event: bool, declared: bool) {
        match fact {
            Fact::SameAs { a, b } => self.link(a, b),
            // A role's ARN carries its path; calls that name it by name
            // alone (`AttachRolePolicy`) give none: both are the role.
            Fact::Node { id, kind: NodeKind::ROLE, .. }
                if pathless_role(id).is_some_and(|p| self.canonical(&p) != id) =>
            {
                if let Some(p) = pathless_role(id) {
                    self.link(id, &p);
                }
                self.assert(fact, t, evidence, is_event, declared);
            }
            // A new identity (a role, a function's role, an agent, a hire)
            // appearing where identities are made: its first days are expected.
            Fact::Node { id, kind, .. }
                if kind.is_principal() && *kind != NodeKind::ACCOUNT && self.held.insert(fact.key()) && declared =>
            {
                let what = format!("created as a new {}", kind.as_str());
                self.record_change(id, AuthorisedChange { at: t, what, evidence: evidence.into(), is_event });
            }
            Fact::Member { member, group } => {
                let m = self.canonical(member).to_string();
                let new = self.groups.entry(m.clone()).or_default().insert(group.clone());
                if new && declared {
                    let what = format!("added to {group}");
                    self.record_change(&m, AuthorisedChange { at: t, what, evidence: evidence.into(), is_event });
                }
            }
            Fact::ActsFor { agent, person, .. } => {
                let p = self.canonical(person).to_string();
                self.delegations.entry(agent.clone()).or_default().insert(p);
            }
            Fact::Attached { holder, policy } if self.held.insert(fact.key()) && declared => {
                let what = format!("granted {policy}");
                self.record_change(holder, AuthorisedChange { at: t, what, evidence: evidence.into(), is_event });
            }
            Fact::Tool { agent, tool, .. } if self.held.insert(fact.key()) && declared => {
                let what = format!("given tool {tool}");
                self.record_change(agent, AuthorisedChange { at: t, what, evidence: evidence.into(), is_event });
            }
            _ => {}
        }
    }

    /// Applies an inventory snapshot. Its first one per scope is where
    /// knowledge starts: what it lists was not changed then, only learned.
    pub fn apply_snapshot(&mut self, snap: &tenet_model::Snapshot, provenance: &str) {
        let t = snap.collected_at.unix_nanos();
        let changes = !self.scopes.insert(format!("{}|{}", snap.source, snap.scope));
        for fact in &snap.facts {
            self.assert(fact, t, provenance, false, changes);
        }
    }

    pub fn retract_key(&mut self, key: &str) {
        self.held.remove(key);
        let mut parts = key.split('|');
        if parts.next() == Some("member")
            && let (Some(member), Some(group)) = (parts.next(), parts.next())
        {
            let m = self.canonical(member).to_string();
            if let Some(gs) = self.groups.get_mut(&m) {
                gs.remove(group);
            }
        }
    }

    /// Keeps `id`'s latest authentication; most cloud events restate their
    /// session's, so an unchanged one costs no allocation.
    fn note_authentication(&mut self, id: &str, t: i64, mfa: bool, e: &Event) {
        let who: &str = self.alias.get(id).map_or(id, String::as_str);
        match self.authentications.get_mut(who) {
            Some(a) if a.at <= t => {
                a.at = t;
                a.mfa = mfa;
                let same = a.via.len() == e.action.service.len() + 1 + e.action.operation.len()
                    && a.via.starts_with(e.action.service.as_str())
                    && a.via.ends_with(e.action.operation.as_str());
                if !same {
                    a.via = e.action.qualified();
                }
            }
            Some(_) => {}
            None => {
                let via = e.action.qualified();
                self.authentications.insert(who.to_string(), Authentication { at: t, mfa, via });
            }
        }
    }
    /// The wider network (/16, /32 for IPv6) `id` last signed in from with
    /// a second factor at its identity provider, if within [`VERIFIED_FOR`]
    /// before `t`.
    pub fn verified_network(&self, id: &str, t: i64) -> Option<&str> {
        self.verified
            .get(self.canonical(id))
            .filter(|(_, at)| *at <= t && t - at <= VERIFIED_FOR)
            .map(|(n, _)| n.as_str())
    }

    /// The latest authentication known for `id` (or its canonical identity).
    pub fn authentication(&self, id: &str) -> Option<&Authentication> {
        self.authentications.get(self.canonical(id))
    }

    /// Applies an event's trust changes.
    pub fn apply_event(&mut self, e: &Event) {
        let t = e.time.unix_nanos();
        if let Some(mfa) = e.session.as_ref().and_then(|s| s.mfa) {
            // The session's authentication is its actor's, and the person's behind it.
            for p in e.principals().filter(|p| std::ptr::eq(*p, &e.actor) || p.kind == PrincipalKind::Human) {
                self.note_authentication(&p.id, t, mfa, e);
            }
            // A second factor at the identity provider (not a session's
            // claim restated on each call, which a stolen session repeats).
            let at_idp = e.source.format == "okta" || e.action.service == "signin";
            if mfa
                && at_idp
                && e.outcome.status == tenet_model::Status::Success
                && let Some(ip) = e.context.ip
            {
                let who = self.canonical(&e.actor.id).to_string();
                // Its wider network: the hotel or office hands out
                // addresses across subnets within the hour.
                self.verified.insert(who, (networks_of(ip).1, t));
            }
        }
        self.apply_changes(e.principals().map(|p| p.id.as_str()), t, e.id.as_str(), &e.changes);
        // An MCP server announcing a changed tool list: the registration
        // that makes new tool use expected.
        if e.action.operation == "notifications/tools/list_changed" {
            let server = e
                .resources
                .iter()
                .find(|r| r.kind == "endpoint")
                .map(|r| server_name(&r.id))
                .or_else(|| e.actor.name.as_deref().map(server_name))
                .unwrap_or_else(|| server_name(&e.actor.id));
            let list = self.tool_announcements.entry(server).or_default();
            list.push((t, e.id.to_string()));
            if list.len() > CHANGES_KEPT {
                list.remove(0);
            }
        }
    }

    /// The trust changes an event made at `t`, by its principals `by`.
    pub fn apply_changes<'a>(
        &mut self,
        by: impl Iterator<Item = &'a str>,
        t: i64,
        event: &str,
        changes: &[TrustChange],
    ) {
        if changes.is_empty() {
            return;
        }
        self.acting = by.map(|p| self.canonical(p).to_string()).collect();
        for c in changes {
            match c {
                TrustChange::Assert { fact } => self.assert(fact, t, event, true, true),
                TrustChange::Observe { fact } => self.assert(fact, t, event, true, false),
                TrustChange::Retract { key } => self.retract_key(key),
            }
        }
        self.acting.clear();
    }

    /// Forgets authorised changes older than `horizon` before `now`, so the
    /// index stays bounded over a long run.
    pub fn prune(&mut self, now: i64, horizon: i64) {
        self.changes.retain(|_, v| {
            v.retain(|c| now - c.at <= horizon);
            !v.is_empty()
        });
        self.tool_announcements.retain(|_, v| {
            v.retain(|(at, _)| now - at <= horizon);
            !v.is_empty()
        });
    }

    /// Who an event is about. Tool calls are their agent's acts; a session
    /// named after an agent's tool call (`agt-….call_…`) is that agent; a
    /// session with a person behind it is that person; other sessions are
    /// their role.
    pub fn subject(&self, e: &Event) -> Subject {
        let person = e
            .principals()
            .filter(|p| p.kind == PrincipalKind::Human && !p.id.contains(":assumed-role/"))
            .map(|p| self.canonical(&p.id).to_string())
            .last()
            .or_else(|| self.session_person(e));
        let role = e.chain.iter().find(|p| p.kind == PrincipalKind::Role).map(|p| p.id.clone());
        if let Some(agent) = e.principals().find(|p| p.kind == PrincipalKind::Agent) {
            return Subject { id: agent.id.clone(), kind: PrincipalKind::Agent, person, role };
        }
        if e.actor.id.contains(":assumed-role/")
            && let Some(agent) = agent_session(&e.actor.id)
        {
            return Subject { id: agent, kind: PrincipalKind::Agent, person, role };
        }
        // A session minted by automation for a person (a tool server
        // assuming a delegate role with the person as source identity) is the
        // automation acting for them: its places and tools are its own.
        let minted_by_automation = e.chain.last().is_some_and(|o| {
            matches!(o.kind, PrincipalKind::Role | PrincipalKind::Workload | PrincipalKind::CloudService)
                && e.chain.iter().any(|p| p.kind == PrincipalKind::Human)
        });
        if minted_by_automation
            && e.actor.id.contains(":assumed-role/")
            && let Some(r) = &role
        {
            return Subject { id: r.clone(), kind: PrincipalKind::Workload, person, role: role.clone() };
        }
        if let Some(p) = person.clone() {
            let actor = self.canonical(&e.actor.id);
            if actor == p || e.actor.id.contains(":assumed-role/") || e.actor.kind == PrincipalKind::Human {
                return Subject { id: p, kind: PrincipalKind::Human, person: None, role };
            }
        }
        if e.actor.id.contains(":assumed-role/")
            && let Some(r) = &role
        {
            return Subject { id: r.clone(), kind: PrincipalKind::Workload, person, role: role.clone() };
        }
        let kind = match e.actor.kind {
            PrincipalKind::Workload | PrincipalKind::Role | PrincipalKind::CloudService => PrincipalKind::Workload,
            k => k,
        };
        Subject { id: self.canonical(&e.actor.id).to_string(), kind, person, role }
    }
}

/// `arn:aws:iam::1:role/service-role/x` → `arn:aws:iam::1:role/x`; `None`
/// for a role without a path, or anything else.
fn pathless_role(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":role/")?;
    let (_, name) = rest.rsplit_once('/')?;
    Some(format!("{head}:role/{name}"))
}

impl IdentityIndex {
    /// The person a role session is named after, when nothing else in the
    /// chain says who it is: federated sign-in names the session with the
    /// person's email, and the console's own calls use credentials the
    /// sign-in's chain does not reach.
    fn session_person(&self, e: &Event) -> Option<String> {
        let session = e.actor.id.split_once(":assumed-role/")?.1.rsplit('/').next()?;
        let only_role = e.chain.iter().all(|p| p.kind == PrincipalKind::Role);
        (only_role && session.contains('@') && !session.starts_with('@'))
            .then(|| self.canonical(&format!("user:{session}")).to_string())
    }
}

/// The principal an event is about, as a learner that knows nothing yet
/// names it: a role's sessions are the role, an SSO session the person it
/// is named for, an agent's tool calls the agent. A cluster partitions its
/// events by it, so one partition's learner sees all of a principal it can
/// tell from the event alone (aliases that only inventory or other events
/// reveal still spread a person over several partitions).
pub fn partition_principal(e: &Event) -> String {
    partition_subject(e).id
}

/// See [`partition_principal`]: the subject, with the one thing a learner
/// that knows nothing learns from the event itself, the identities it says
/// are one (a SAML user and the person it names).
pub fn partition_subject(e: &Event) -> Subject {
    let mut index = IdentityIndex::default();
    for c in &e.changes {
        if let TrustChange::Assert { fact: Fact::SameAs { a, b } }
        | TrustChange::Observe { fact: Fact::SameAs { a, b } } = c
        {
            index.link(a, b);
        }
    }
    index.subject(e)
}

/// A server's short name: `aws-mcp.tools.acme.internal` and `service:aws-mcp` → `aws-mcp`.
fn server_name(s: &str) -> String {
    let s = s.strip_prefix("service:").unwrap_or(s);
    s.split(['.', ':', '/']).next().unwrap_or(s).to_string()
}

/// `arn:aws:sts::1:assumed-role/mcp-aws-tools/agt-1a2b.call_x` → `agent:agt-1a2b`.
fn agent_session(arn: &str) -> Option<String> {
    let session = arn.rsplit('/').next()?;
    let (agent, call) = session.split_once('.')?;
    (agent.starts_with("agt-") && call.starts_with("call")).then(|| format!("agent:{agent}"))
}

/// The tool call id an agent's AWS session carries in its name, if any.
pub fn session_tool_call(arn: &str) -> Option<&str> {
    let session = arn.rsplit('/').next()?;
    let (agent, call) = session.split_once('.')?;
    agent.starts_with("agt-").then_some(call)
}

/// Authorised changes are evidence for this long.
pub const CHANGE_WINDOW: i64 = 3 * DAY;
/// A fleet adopts an announced tool over days: announcements count for a week.
pub const ANNOUNCEMENT_WINDOW: i64 = 7 * DAY;
