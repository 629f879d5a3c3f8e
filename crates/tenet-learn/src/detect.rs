//! The detectors. Each looks at one event against what was learned before
//! it, and reports [`Deviation`]s; the baselines learn from the event only
//! after every detector has seen it.
//!
//! What keeps them quiet on routine that merely looks unusual:
//! - a first-seen value is scored by how improbable it is under the
//!   principal's own churn for that feature (its peers' while it is young),
//!   so a workload that gets a new address at every cold start is not news
//!   and a person who always works from two places is;
//! - context a cloud service supplies when it acts for the principal (its
//!   address, its agent string) is the service's, not the principal's;
//! - only an authorization refusal is a denial, and refusals of the same
//!   call on the same target, repeated, are a retry or a habit, not guessing;
//! - deviations that recur on most days (a nightly burst, a daily plan)
//!   become habit and stop being reported.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tenet_model::{Behaviour, Event, EventId, Fact, FailureKind, PrincipalKind, TrustChange};

use crate::Learner;
use crate::actions::{self, Traits};
use crate::baseline::{PeerBaseline, PrincipalBaseline, feature};
use crate::deviation::{Deviation, Lean};
use crate::identity::{ANNOUNCEMENT_WINDOW, CHANGE_WINDOW, Subject, networks_of, session_tool_call};
use crate::sketch::{Churn, DAY, HOUR, key, key2, surprise};

const MINUTE: i64 = 60_000_000_000;
/// Pseudo-observations of the peers' churn a principal's own is shrunk
/// towards: a young principal is judged by its peers.
const PRIOR_WEIGHT: f32 = 20.0;
/// The churn assumed where neither the principal nor any peer has enough history.
const DEFAULT_CHURN: f32 = 0.05;
/// Observations before a peer group's churn is a prior worth using.
const PEER_MIN_OBS: f32 = 50.0;
/// A feature whose own churn is above this stops filling the principal's
/// novelty filter: its values carry no news and would push out those that do.
const SATURATED: f32 = 0.3;
/// Earlier days (of the last fifteen) a deviation must have recurred on to be habit.
const HABIT_DAYS: u32 = 2;
/// The surprise from which a new place or tool is unfamiliar (see
/// [`crate::sketch::surprise`]: 0.4 is new values arriving about one time in 30).
const FRESH: f32 = 0.4;
/// The summed surprise of a new place and a new tool appearing together at
/// which their joint chance is below one in 400: rates r₁r₂ ≤ 0.0025, that
/// is s₁ + s₂ ≥ ln(80)/ln(100) − ln(5)/ln(100) ≈ 0.6 on [`crate::sketch::surprise`]'s scale.
const JOINT: f32 = 0.6;
/// Peers adopting the same new thing within this window make a rollout.
const ADOPTION_WINDOW: i64 = 7 * DAY;

/// Short-lived detector memory: recent secret reads, logging switched off,
/// refusals, agent traces and tool calls awaiting their other half.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct State {
    secret_reads: FxHashMap<String, (i64, String)>,
    logging_off: FxHashMap<String, (i64, String, String)>,
    logging_off_reported: FxHashMap<String, i64>,
    refusals: FxHashMap<String, Refusals>,
    traces: FxHashMap<String, Trace>,
    tool_calls: FxHashMap<String, ToolCall>,
    aws_calls: FxHashMap<String, ToolCall>,
    /// Accounts seen acting or logging, with how often: a trust policy that
    /// lets in an account never seen is letting in an outsider.
    accounts: FxHashMap<String, u64>,
    /// Every action taken in each account: "the first time anyone here".
    #[serde(default)]
    account_actions: FxHashMap<String, AccountActions>,
    /// Roles whose trust was changed lately: role → (when, event, by whom).
    #[serde(default)]
    trust_changed: FxHashMap<String, (i64, String, String)>,
    /// Organisations (accounts, repository owners, email domains) whose
    /// identities have assumed a role here.
    #[serde(default)]
    assumer_orgs: rustc_hash::FxHashSet<u64>,
    /// Recent access-changing tool calls by agents: (when, the person the
    /// workflow started from, the agent that person asked, the agents on
    /// the way, the event).
    #[serde(default)]
    privileged_calls: Vec<(i64, String, String, usize, String)>,
    /// Recent grants and memberships: (when, holder, what, the event).
    #[serde(default)]
    recent_grants: Vec<(i64, String, String, String)>,
    /// Identities seen acting that their account's inventory did not list,
    /// awaiting an inventory collected after the use.
    #[serde(default)]
    pending_unknown: Vec<PendingUnknown>,
}

#[derive(Clone, Serialize, Deserialize)]
struct PendingUnknown {
    subject: String,
    arn: String,
    event: String,
    at: i64,
}

/// A role's trust changed this recently makes its first use by a new identity a story.
const TRUST_CHANGE_WINDOW: i64 = 14 * DAY;
/// An agent's access-changing call and the grant it made arrive within this of each other.
const BRIDGE_WINDOW: i64 = 5 * MINUTE;

/// Distinct actions are bounded by the cloud's API surface (thousands),
/// so an exact set is affordable per account.
#[derive(Clone, Default, Serialize, Deserialize)]
struct AccountActions {
    first_seen: i64,
    events: u64,
    actions: rustc_hash::FxHashSet<u64>,
}

impl AccountActions {
    /// Too young an account history says nothing about what is new to it.
    fn mature(&self, t: i64) -> bool {
        self.events >= 1000 && t - self.first_seen >= 3 * DAY
    }
}

/// Authorization refusals within a quarter of an hour: each distinct call
/// and target once (a retry of the same call is not a second guess).
#[derive(Clone, Default, Serialize, Deserialize)]
struct Refusals {
    first: i64,
    /// Calls made in the window, refused or not.
    calls: u32,
    /// (call-and-target key, action, event id).
    refused: Vec<(u64, String, String)>,
    reported: bool,
}

impl Refusals {
    fn distinct_actions(&self) -> usize {
        let mut a: Vec<&str> = self.refused.iter().map(|(_, a, _)| a.as_str()).collect();
        a.sort_unstable();
        a.dedup();
        a.len()
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Trace {
    at: i64,
    last_tool: Option<String>,
    inbound: Option<String>,
    secret: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct ToolCall {
    at: i64,
    agent: String,
    person: String,
    event: String,
}

impl State {
    pub fn prune(&mut self, now: i64) {
        self.secret_reads.retain(|_, (t, _)| now - *t < DAY);
        self.logging_off.retain(|_, (t, _, _)| now - *t < DAY);
        self.logging_off_reported.retain(|_, t| now - *t < DAY);
        self.refusals.retain(|_, f| now - f.first < HOUR);
        self.traces.retain(|_, tr| now - tr.at < HOUR);
        self.tool_calls.retain(|_, c| now - c.at < HOUR);
        self.aws_calls.retain(|_, c| now - c.at < HOUR);
        self.trust_changed.retain(|_, (t, _, _)| now - *t < TRUST_CHANGE_WINDOW);
        // An account never inventoried again after a week says nothing.
        self.pending_unknown.retain(|p| now - p.at < 7 * DAY);
    }
}

/// Decayed uses after which a source network or user agent counts as habit.
const SETTLED: f32 = 3.0;

/// A user agent without its versions: `aws-cli/2.9.0 Python/3.9.11` →
/// `aws-cli Python`. Upgrades are not news; a different tool is.
fn ua_family(ua: &str) -> String {
    let mut out = String::new();
    for token in ua.split_whitespace().take(4) {
        let name = token.split('/').next().unwrap_or(token).trim_matches(|c: char| c == '(' || c == ')' || c == ';');
        // A run id stamped on the tool's name (`tool_6bf00313-712c-…`) is not
        // the tool: every run would look like new software.
        let name = name
            .match_indices(['_', '-'])
            .map(|(i, _)| i)
            .find(|&i| looks_like_id(&name[i + 1..]))
            .map_or(name, |i| &name[..i]);
        if name.is_empty() || name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
    }
    out
}

/// Hex digits and dashes, eight or more: a UUID or run id, not a name.
fn looks_like_id(s: &str) -> bool {
    s.len() >= 8
        && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && s.bytes().filter(u8::is_ascii_digit).count() >= 2
}

/// Whether the request was made by a cloud service for the principal (a
/// named origin instead of an address, `AWS Internal`, a service's own
/// agent string): its address and agent are the service's.
fn on_behalf(e: &Event) -> bool {
    e.context.ip.is_none() && e.context.host.is_some()
        || e.context.user_agent.as_deref().is_some_and(|u| {
            u == "AWS Internal" || u.ends_with(".amazonaws.com") && !u.contains(' ') || u.starts_with("[S3Console")
        })
}

/// Private address space: RFC 1918, carrier-grade NAT, IPv6 unique local.
fn private_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || o[0] == 100 && (64..128).contains(&o[1])
        }
        std::net::IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    }
}

/// What several detectors and the learning step read off one event,
/// worked out once.
struct Facts {
    network: Option<String>,
    network_wide: Option<String>,
    /// The address is in private space (a VPC, an office LAN): its wider
    /// network is one place, whichever subnet the call came from.
    private: bool,
    /// The user agent's family; empty when it has no named tool.
    ua_family: Option<String>,
    account: Option<String>,
    /// Peer groups by membership: groups, a person's role, an agent's
    /// registry group, the service that runs a workload.
    peers: Vec<String>,
    /// Everyone of the subject's kind: a prior for churn, nothing more.
    kind_peer: &'static str,
    failure: Option<FailureKind>,
}

impl Facts {
    fn of(e: &Event, peers: Vec<String>, kind: PrincipalKind) -> Facts {
        let own_context = !on_behalf(e);
        let (network, network_wide) = match e.context.ip.filter(|_| own_context) {
            Some(ip) => {
                let (n, w) = networks_of(ip);
                (Some(n), Some(w))
            }
            None => (None, None),
        };
        Facts {
            network,
            network_wide,
            private: e.context.ip.filter(|_| own_context).is_some_and(private_address),
            ua_family: e.context.user_agent.as_deref().filter(|_| own_context).map(ua_family),
            account: account_of(e),
            peers,
            kind_peer: match kind {
                PrincipalKind::Human => "kind:person",
                PrincipalKind::Agent => "kind:agent",
                PrincipalKind::Workload => "kind:workload",
                _ => "kind:other",
            },
            failure: e.outcome.failure_kind(),
        }
    }

    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    fn denied(&self) -> bool {
        self.failure == Some(FailureKind::Denied)
    }

    /// The user agent's family, when it names a tool.
    fn ua(&self) -> Option<&str> {
        self.ua_family.as_deref().filter(|u| !u.is_empty())
    }
}

/// One feature value of an event, and whether the principal never saw it.
struct Feature<'a> {
    f: u8,
    value: &'a str,
    key: u64,
    new: bool,
}

/// `map[key]`, made by `make` if absent: the key is copied only then
/// (`entry` would take an owned key on every call, per event).
fn slot<'m, V>(map: &'m mut FxHashMap<String, V>, key: &str, make: impl FnOnce() -> V) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), make());
    }
    map.get_mut(key).expect("present: inserted above when absent")
}

fn account_of(e: &Event) -> Option<String> {
    e.source.tenant.clone().or_else(|| e.actor.account.clone())
}

/// Whether a policy attachment grants administrator access.
fn is_admin_policy(policy: &str) -> bool {
    policy.ends_with("/AdministratorAccess") || policy.ends_with(":policy/AdministratorAccess")
}

/// A Sigma rule's level as a score. Sigma's own notes say many rules fire
/// on routine administration: a match is corroboration, never an alert by
/// itself, so even `critical` stays below the alert score alone.
fn level_score(level: &str) -> f32 {
    match level {
        "critical" => 40.0,
        "high" => 32.0,
        "medium" => 22.0,
        "low" => 12.0,
        _ => 6.0,
    }
}

/// Positive evidence that new behaviour of `subject` is expected: an
/// authorised change shortly before, an MCP server announcing new tools.
fn support(l: &Learner, subject: &Subject, e: &Event, t: i64) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut ids = vec![subject.id.as_str()];
    if let Some(p) = &subject.person {
        ids.push(p);
    }
    for id in ids {
        for c in l.identity.changes_before(id, t, CHANGE_WINDOW) {
            out.push((format!("{id} was {} shortly before", c.what), c.evidence.clone()));
        }
    }
    if subject.kind == PrincipalKind::Agent {
        for server in l.identity.agent_servers(&subject.id, e) {
            for (_, ev) in l.identity.announcements_before(&server, t, ANNOUNCEMENT_WINDOW) {
                out.push((
                    format!("{server}, a tool server it uses, announced a changed tool list shortly before"),
                    ev.clone(),
                ));
            }
        }
    }
    out
}

/// In its first two days, or seen fewer than five times.
pub(crate) fn is_young(pb: &PrincipalBaseline, t: i64) -> bool {
    pb.events < 5 || t - pb.first_seen < 2 * DAY
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// One event as the learner saw it: who, what was new, and how it reads.
struct Observed<'a> {
    event: &'a Event,
    subject: &'a Subject,
    facts: &'a Facts,
    features: &'a [Feature<'a>],
    traits: Traits,
    action: &'a str,
}

impl Learner {
    /// The peer groups of a subject: its groups (except the cluster-wide
    /// `system:` ones, which everyone is in), the role a person acts
    /// through, and the service or identity provider a workload runs under.
    fn peer_keys(&self, s: &Subject, e: &Event) -> Vec<String> {
        let mut out: Vec<String> = self
            .identity
            .groups_of(&s.id)
            .into_iter()
            .filter(|g| !g.contains("group/system:"))
            .map(str::to_string)
            .collect();
        match s.kind {
            PrincipalKind::Human => {
                if let Some(r) = &s.role {
                    out.push(format!("role:{r}"));
                }
            }
            PrincipalKind::Workload => {
                if let Some(o) = e.chain.last().filter(|o| o.id != s.id && o.kind != PrincipalKind::Human) {
                    out.push(format!("via:{}", o.id));
                }
                // The same role deployed in several accounts is one function.
                if let Some((_, name)) = s.id.split_once(":role/") {
                    out.push(format!("role-name:{}", name.rsplit('/').next().unwrap_or(name)));
                }
            }
            _ => {}
        }
        out
    }

    pub(crate) fn detect(&mut self, e: &Event, sigma: &[crate::SigmaMatch]) -> Vec<Deviation> {
        let subject = self.identity.subject(e);
        if let Some(touched) = self.touched.as_mut() {
            touched.principals.insert(subject.id.clone());
        }
        let traits = actions::traits(e, &self.config.internal_domains);
        let action = e.action.qualified();
        let facts = Facts::of(e, self.peer_keys(&subject, e), subject.kind);
        if let Some(a) = &facts.account {
            *self.detect.accounts.entry(a.clone()).or_default() += 1;
        }
        let features = self.features(e, &subject, &facts, traits, &action);
        let mut out = Vec::new();

        self.novelty(e, &subject, &facts, &features, traits, &action, &mut out);
        self.trust_edges(e, &subject, facts.failed(), &mut out);
        self.assumers(e, &subject, &facts, &mut out);
        self.bridges(e, &subject, traits, &facts, &mut out);
        self.privilege(e, &subject, traits, facts.failed(), &mut out);
        self.sequences(e, &subject, traits, facts.failed(), facts.account.as_deref(), &mut out);
        self.refusals(e, &subject, &facts, traits, &action, &mut out);
        self.workflow(e, &subject, traits, &facts, &mut out);
        self.delegation(e, &subject, &mut out);
        self.sigma(e, &subject, &facts.peers, sigma, &mut out);
        self.habit(&subject, e, &mut out);
        // An intruder's session does not teach how often new places and
        // tools appear: the events of a pointed deviation, and the rest of
        // that hour from the same network, are learned but not counted as
        // churn (else each visit would make the next one less surprising).
        let t = e.time.unix_nanos();
        let pointed =
            out.iter().any(|d| d.subject == subject.id && (d.lean != Lean::Neutral && d.score >= 30.0 || d.impact));
        let net = facts.network.as_deref().map_or(0, |n| key(feature::NETWORK, n) as u32);
        if pointed
            && net != 0
            && let Some(pb) = self.principals.get_mut(&subject.id)
        {
            pb.suspicious_network = (net, t + HOUR);
        }
        let uncounted = pointed
            || self
                .principals
                .get(&subject.id)
                .is_some_and(|p| p.suspicious_network.0 == net && net != 0 && t <= p.suspicious_network.1);
        let seen =
            Observed { event: e, subject: &subject, facts: &facts, features: &features, traits, action: &action };
        self.learn(seen, uncounted);
        self.learn_rules(&subject, &facts.peers, sigma);
        out
    }

    /// An inventory arrived: identities seen acting before it was collected
    /// that it does not list, in an account it covers, and that no event
    /// created, should not exist.
    pub(crate) fn confirm_unknown(&mut self, snap: &tenet_model::Snapshot) -> Vec<Deviation> {
        let collected = snap.collected_at.unix_nanos();
        let mut out = Vec::new();
        let pending = std::mem::take(&mut self.detect.pending_unknown);
        for p in pending {
            let account = p.arn.split(':').nth(4).unwrap_or("");
            let covers = snap.source == "aws-iam" && snap.scope == format!("aws:{account}");
            if !covers || p.at > collected {
                self.detect.pending_unknown.push(p);
                continue;
            }
            if self.identity.unknown_iam(&p.arn) != Some(true) {
                continue;
            }
            if let Some(pb) = self.principals.get_mut(&p.subject) {
                pb.seen.insert(key(feature::UNKNOWN, &p.arn));
            }
            out.push(
                Deviation::new("unknown_identity", &p.subject, p.at, &EventId::from(p.event.as_str()), 50.0, Lean::Malicious)
                    .behaviour(Behaviour::InitialAccess)
                    .item(p.arn.clone())
                    .detail(format!(
                        "acted as {}, which the inventory of its account, collected after, does not list and nobody was seen creating",
                        p.arn
                    ))
                    .techniques(&["T1078.004"]),
            );
        }
        out
    }

    /// The event's feature values whose novelty is judged, each with
    /// whether the principal never saw it.
    fn features<'a>(
        &self,
        e: &'a Event,
        subject: &Subject,
        facts: &'a Facts,
        traits: Traits,
        action: &'a str,
    ) -> Vec<Feature<'a>> {
        let pb = self.principals.get(&subject.id);
        let mut out = Vec::with_capacity(8);
        let mut push = |f: u8, value: &'a str| {
            let k = key(f, value);
            out.push(Feature { f, value, key: k, new: !pb.is_some_and(|p| p.seen.contains(k)) });
        };
        push(feature::ACTION, action);
        if let Some(n) = &facts.network {
            push(feature::NETWORK, n);
        }
        if let Some(n) = &facts.network_wide {
            push(feature::NETWORK_WIDE, n);
        }
        if let Some(u) = facts.ua() {
            push(feature::USER_AGENT, u);
        }
        if let Some(r) = &e.context.region {
            push(feature::REGION, r);
        }
        for r in e.resources.iter().take(3) {
            push(feature::RESOURCE, &r.id);
        }
        if e.action.service == "sts"
            && !facts.failed()
            && let Some(role) = e.resources.iter().find(|r| r.kind == "AWS::IAM::Role")
        {
            push(feature::COUNTERPART, &role.id);
        }
        if traits.has(Traits::SECRET_READ)
            && !facts.failed()
            && let Some(r) = e.resources.first()
        {
            push(feature::SECRET, &r.id);
        }
        out
    }

    /// The probability that `subject`'s next value of feature `f` is new:
    /// its own churn, shrunk towards its peers' (the most churning peer
    /// group with enough history, else everyone of its kind).
    fn churn_rate(&self, pb: &PrincipalBaseline, facts: &Facts, f: u8) -> f32 {
        let Some(slot) = feature::churn_slot(f) else { return DEFAULT_CHURN };
        let peer_rate = |p: &str| Churn::pooled_rate(self.peer_parts(p).map(|pb| &pb.churn), slot, PEER_MIN_OBS);
        let prior = facts
            .peers
            .iter()
            .filter_map(|p| peer_rate(p))
            .fold(None, |m: Option<f32>, r| Some(m.map_or(r, |m| m.max(r))))
            .or_else(|| peer_rate(facts.kind_peer))
            .unwrap_or(DEFAULT_CHURN);
        pb.churn.rate(slot, prior, PRIOR_WEIGHT)
    }

    /// First use of something by the principal (and by its peer groups),
    /// weighed by how improbable a new value is for it, by what the action
    /// is and by the context it came from; plus rate, shift, unusual hour
    /// and dormancy from the same baseline.
    #[allow(clippy::too_many_arguments)]
    fn novelty(
        &mut self,
        e: &Event,
        subject: &Subject,
        facts: &Facts,
        features: &[Feature<'_>],
        traits: Traits,
        action: &str,
        out: &mut Vec<Deviation>,
    ) {
        let t = e.time.unix_nanos();
        let failed = facts.failed();
        let peers = &facts.peers;
        let support = support(self, subject, e, t);
        let warmup = self.config.warmup_events;
        let organisation_new = facts.account.as_ref().and_then(|a| {
            let h = self.detect.account_actions.get(a)?;
            (h.mature(t) && !h.actions.contains(&key(feature::ACTION, action))).then(|| a.clone())
        });
        // A principal never seen is judged like one with little history:
        // against its peers and its account, at low confidence.
        slot(&mut self.principals, &subject.id, || PrincipalBaseline::new(t));
        let pb = self.principals.get(&subject.id).expect("present: made above when absent");
        let history = pb.events;
        // Young: in its first days, or barely seen. Everything is a first
        // then; a quiet principal weeks old is low-volume, not young.
        let young = is_young(pb, t);
        let confidence = if young { (history as f32 / warmup.max(1) as f32).clamp(0.3, 1.0) } else { 1.0 };
        let warm = history >= 5;
        // Habits need time as well as events before a departure from them means much.
        let settled = warm && t - pb.first_seen >= DAY;
        let days = ((t - pb.first_seen) / DAY).max(0);
        let expected = |what: &str| format!("{what} in {history} events over {days} days");
        let rates: Vec<f32> = features.iter().map(|x| self.churn_rate(pb, facts, x.f)).collect();
        let improbable = |f: u8| {
            features
                .iter()
                .zip(&rates)
                .filter(|(x, _)| x.f == f && x.new)
                .map(|(_, r)| surprise(*r))
                .fold(0.0, f32::max)
        };
        // A new /24 inside a known /16 is a workload hopping within its
        // cloud's space; inside a known private /16, within its own network.
        let wide_known = features.iter().any(|x| x.f == feature::NETWORK_WIDE && !x.new);
        let net_surprise = if wide_known && facts.private {
            0.0
        } else if wide_known {
            improbable(feature::NETWORK) * 0.5
        } else {
            improbable(feature::NETWORK).max(improbable(feature::NETWORK_WIDE))
        };
        let ua_surprise = improbable(feature::USER_AGENT);

        // Dormant: a principal with a history, silent for two weeks, back.
        let quiet = t - pb.last_seen;
        let usual_gap = (pb.last_seen - pb.first_seen) / (history.max(1) as i64);
        // Back from a usual place is someone back from leave; back from
        // somewhere new is what account takeovers look like.
        let from_new_place = net_surprise >= 0.5 || ua_surprise >= 0.5;
        if history >= 3 && quiet >= 7 * DAY && quiet > 10 * usual_gap {
            let (score, lean, behaviour) = if from_new_place {
                (45.0, Lean::Malicious, Behaviour::InitialAccess)
            } else {
                (15.0, Lean::Neutral, Behaviour::UnusualActivity)
            };
            let mut d = Deviation::new("dormant", &subject.id, t, &e.id, score, lean)
                .behaviour(behaviour)
                .detail(format!(
                    "active again after {} quiet days{}",
                    quiet / DAY,
                    if from_new_place { ", from somewhere new" } else { ", from its usual places" }
                ))
                .baseline(
                    "principal",
                    "last activity",
                    &format!("{} days ago", quiet / DAY),
                    expected("active"),
                    history,
                )
                .techniques(&["T1078"]);
            if !from_new_place {
                d.support = support.iter().map(|(w, ev)| (w.clone(), Some(ev.clone()))).collect();
            }
            out.push(d);
        }
        let network = facts.network.as_deref();
        let ua = facts.ua();
        // A network or tool seen only a couple of times is not yet part of
        // the habit: an intruder's second call from new infrastructure is
        // as unfamiliar as its first.
        let unsettled = |f: u8, v: &str, top: &crate::sketch::TopK| {
            let k = key(f, v);
            !pb.seen.contains(k) || top.weight(k, t) < SETTLED
        };
        // Context first seen improbably within the day stays unfamiliar
        // however many calls come from it: an intruder's tenth call from
        // new infrastructure is as unfamiliar as its first.
        let net_key = network.map(|n| key(feature::NETWORK, n));
        let ua_key = ua.map(|u| key(feature::USER_AGENT, u));
        let new_of = |f: u8| features.iter().any(|x| x.f == f && x.new);
        let net_fresh = net_key.is_some_and(|k| {
            new_of(feature::NETWORK) && net_surprise >= FRESH || PrincipalBaseline::is_fresh(pb.fresh_network, k, t)
        });
        let ua_fresh = ua_key.is_some_and(|k| {
            new_of(feature::USER_AGENT) && ua_surprise >= FRESH || PrincipalBaseline::is_fresh(pb.fresh_agent, k, t)
        });
        // The person signed in here with a second factor today: a new place
        // or tool after that is theirs.
        let verified = facts.network_wide.as_deref().is_some_and(|wide| {
            let person = subject.person.as_deref().unwrap_or(&subject.id);
            self.identity.verified_network(person, t) == Some(wide)
        });
        let (net_fresh, ua_fresh) = (net_fresh && !verified, ua_fresh && !verified);
        let context_novel = net_fresh
            || ua_fresh
            || network.is_some_and(|n| unsettled(feature::NETWORK, n, &pb.networks)) && net_surprise > 0.3
            || ua.is_some_and(|u| unsettled(feature::USER_AGENT, u, &pb.user_agents)) && ua_surprise > 0.3;
        let context_known = !context_novel
            && network.is_some_and(|n| !unsettled(feature::NETWORK, n, &pb.networks))
            && !ua.is_some_and(|u| unsettled(feature::USER_AGENT, u, &pb.user_agents));

        let has_secret = features.iter().any(|x| x.f == feature::SECRET);
        let mut reported = 0;
        for (x, rate) in features.iter().zip(&rates) {
            if !x.new
                || x.f == feature::NETWORK_WIDE
                || x.f == feature::COUNTERPART
                || x.f == feature::RESOURCE && has_secret
            {
                continue;
            }
            let f = x.f;
            let value = x.value;
            let mut weight = if f == feature::NETWORK { net_surprise } else { surprise(*rate) };
            let sensitive_action = f == feature::ACTION && traits.sensitive() && !failed;
            let base = match f {
                feature::ACTION if sensitive_action => 35.0,
                feature::ACTION => 8.0,
                feature::NETWORK => 20.0,
                feature::USER_AGENT => 12.0,
                feature::REGION => 10.0,
                feature::SECRET => 20.0,
                feature::RESOURCE if traits.has(Traits::SECRET_READ) || traits.has(Traits::DATA_READ) => 6.0,
                _ => 3.0,
            };
            // A sensitive first action stands on its own: how often the
            // principal tries new things does not excuse it, only softens it.
            // Automation doing a kind of thing it never did (its first secret
            // read, its first change of access) changed code or changed hands.
            let new_kind = sensitive_action
                && subject.kind != PrincipalKind::Human
                && settled
                && traits.sensitive_bits() & !pb.kinds != 0;
            if sensitive_action {
                weight = weight.max(if new_kind { 0.8 } else { 0.5 });
            }
            let mut score = base * weight;
            if matches!(f, feature::ACTION | feature::RESOURCE) {
                if context_novel {
                    score *= 1.5;
                } else if context_known {
                    score *= 0.5;
                }
            }
            let k = x.key;
            let peer_has: Vec<&str> = peers.iter().filter(|p| self.peer_knows(p, k)).map(String::as_str).collect();
            let member = key(99, &subject.id);
            let adopters: usize = peers
                .iter()
                .map(|p| PeerBaseline::adopters(self.peer_parts(p), k, t, ADOPTION_WINDOW, member))
                .max()
                .unwrap_or(0);
            let mut d = Deviation::new(
                if f == feature::ACTION { "novelty" } else { "context" },
                &subject.id,
                t,
                &e.id,
                score,
                Lean::Neutral,
            )
            .item(if f == feature::ACTION { value.to_string() } else { format!("{} {value}", feature::name(f)) })
            .detail(if new_kind {
                format!("first action {value}, the first of its kind it ever took")
            } else {
                format!("first {} {value}", feature::name(f))
            })
            .baseline(
                "principal",
                feature::name(f),
                value,
                format!("{}; new values come {:.1}% of the time", expected("never seen"), rate * 100.0),
                history,
            );
            if f == feature::ACTION {
                d.techniques = actions::techniques(e, traits).into_iter().map(str::to_string).collect();
                d.behaviour = behaviour_of(traits);
            } else if f == feature::SECRET {
                d.behaviour = Behaviour::CredentialAccess;
                d.techniques = vec!["T1555.006".into()];
            }
            if !peer_has.is_empty() {
                d.score *= 0.25;
                d.detail.push_str(&format!(" (its peer group {} does the same)", peer_has[0]));
                if context_known || young {
                    d.support.push((format!("peer group {} already does {value}", peer_has[0]), None));
                }
            } else if !peers.is_empty() && f == feature::ACTION {
                d.detail.push_str(" (new to its peer groups too)");
            }
            if adopters >= 2 && !traits.sensitive() {
                d.support.push((format!("{adopters} of its peers took up {value} in the last days too"), None));
            }
            // A change authorises new routine, not a first secret read or
            // outbound transfer: those stand on their own evidence.
            if !context_novel && !traits.sensitive() {
                d.support.extend(support.iter().map(|(w, ev)| (w.clone(), Some(ev.clone()))));
            }
            // Nobody in the account ever did it: the account's long history
            // gives a confidence a new principal's cannot.
            if f == feature::ACTION
                && let Some(a) = &organisation_new
                && !failed
            {
                d.score *= 1.25;
                d.detail.push_str(&format!(", the first time anyone in account {a} does it"));
            }
            if young {
                d.score *= confidence;
            }
            // Not news at all: learned, not reported.
            if d.score < 1.0 && d.support.is_empty() {
                continue;
            }
            reported += 1;
            out.push(d);
            if reported >= 6 {
                break;
            }
        }
        // Someone with habits, suddenly on new infrastructure with a new
        // tool: how a stolen credential looks from the inside. Both must
        // be improbable for this principal: a workload that always hops
        // addresses, or a person on a new laptop at the usual desk, is not
        // it. Automation runs the same software wherever it runs: software
        // it never ran, from any new place, is the credential in other hands.
        let sensitive_new = traits.sensitive() && !failed && new_of(feature::ACTION);
        let automation = subject.kind != PrincipalKind::Human;
        // Software it never ran says something only once it has run some:
        // a function's first real invocation after its role was checked is
        // its first software, not a stranger's.
        let established_agent = pb.user_agents.total(t) >= 20.0;
        // Software its kind of workload runs (a redeploy on another SDK)
        // is not a stranger's tool.
        let ua_among_peers = ua_key.is_some_and(|k| peers.iter().any(|p| self.peer_knows(p, k)));
        // Said once, when the place or tool first appears (or for a sensitive
        // first), not on each of the calls that follow from it.
        let appeared = net_key.is_some_and(|k| new_of(feature::NETWORK) && pb.fresh_network.0 != k as u32)
            || ua_key.is_some_and(|k| new_of(feature::USER_AGENT) && pb.fresh_agent.0 != k as u32);
        // Both new at once when that should happen less than one time in
        // 400 (their rates multiplied): a thin history makes each alone only
        // mildly surprising, the two together rarely.
        let together = !verified
            && new_of(feature::NETWORK)
            && new_of(feature::USER_AGENT)
            && net_surprise > 0.0
            && ua_surprise > 0.0
            && net_surprise + ua_surprise >= JOINT;
        // Under suspicion (an attack alert on it not yet resolved), any new
        // place is the intruder's until shown otherwise.
        // (Not for a principal that hops networks as a matter of course.)
        // Nor is the owner's own tool from the owner's wider network: an
        // intruder rarely has both.
        // (Its own: a habit of weight, not what the intruder used yesterday.)
        let owners_own = wide_known
            && ua_key.is_some_and(|k| {
                let w = pb.user_agents.weight(k, t);
                w >= 20.0 && w >= 0.25 * pb.user_agents.total(t)
            });
        let suspected = self.incidents.suspected(&subject.id, t)
            && new_of(feature::NETWORK)
            && net_surprise >= 0.2
            && !verified
            && !owners_own;
        let unfamiliar = net_fresh && ua_fresh
            || together
            || suspected
            || net_fresh && net_surprise >= 0.7 && sensitive_new
            || automation
                && established_agent
                && !ua_among_peers
                && ua_fresh
                && ua_surprise >= 0.7
                && (net_fresh || new_of(feature::NETWORK));
        if settled && unfamiliar && (appeared || sensitive_new) && support.is_empty() {
            out.push(
                Deviation::new(
                    "unfamiliar_access",
                    &subject.id,
                    t,
                    &e.id,
                    // Suspicion alone (a new place, no new tool) does not
                    // alert by itself even under suspicion's lower bar.
                    match (sensitive_new, suspected && !(net_fresh && ua_fresh) && !together) {
                        (true, _) => 45.0,
                        (false, true) => 30.0,
                        (false, false) => 35.0,
                    },
                    Lean::Malicious,
                )
                .behaviour(Behaviour::InitialAccess)
                .item(network.unwrap_or("?"))
                .detail(format!(
                    "{action}{} from a network it never used ({}){}{}",
                    if sensitive_new { ", never done before," } else { "" },
                    network.unwrap_or("?"),
                    if ua_fresh {
                        format!(" with a tool it never used ({})", ua.unwrap_or("?"))
                    } else {
                        String::new()
                    },
                    if suspected { ", while an attack alert on it is unresolved" } else { "" }
                ))
                .baseline(
                    "principal",
                    "source network and user agent",
                    network.unwrap_or(""),
                    expected("other networks and tools"),
                    history,
                )
                .techniques(&["T1078"]),
            );
        }
        let pb = slot(&mut self.principals, &subject.id, || PrincipalBaseline::new(t));
        // An identity the inventory of its account never listed and nobody
        // was seen creating: credentials for something that should not
        // exist. Said only once an inventory collected after the use still
        // does not list it (see [`Learner::confirm_unknown`]).
        let iam = e
            .chain
            .iter()
            .find(|p| p.kind == PrincipalKind::Role)
            .map(|p| p.id.clone())
            .or_else(|| e.actor.id.contains(":user/").then(|| e.actor.id.clone()));
        if !failed
            && let Some(arn) = iam
            && self.identity.unknown_iam(&arn) == Some(true)
            && !pb.seen.contains(key(feature::UNKNOWN, &arn))
            && !self.detect.pending_unknown.iter().any(|p| p.arn == arn && p.subject == subject.id)
        {
            if self.detect.pending_unknown.len() >= 256 {
                self.detect.pending_unknown.remove(0);
            }
            self.detect.pending_unknown.push(PendingUnknown {
                subject: subject.id.clone(),
                arn,
                event: e.id.to_string(),
                at: t,
            });
        }
        // An identity that only ever used keys, signing in to the console
        // for the first time, without a second factor.
        if e.action.service == "signin"
            && e.action.operation == "ConsoleLogin"
            && !failed
            && e.session.as_ref().and_then(|s| s.mfa) == Some(false)
            && (e.actor.id.contains(":user/") || e.actor.id.ends_with(":root"))
            // Two uses of keys a day apart already say "programmatic".
            && history >= 2
            && t - pb.first_seen >= DAY
            && new_of(feature::ACTION)
        {
            out.push(
                Deviation::new("unfamiliar_access", &subject.id, t, &e.id, 35.0, Lean::Malicious)
                    .behaviour(Behaviour::InitialAccess)
                    .item("console sign-in without MFA")
                    .detail(
                        "signed in to the console for the first time, without a second factor, after using only keys",
                    )
                    .baseline("principal", "action", action, expected("programmatic access only"), history)
                    .techniques(&["T1078.004"]),
            );
        }
        // The latest improbable new place and tool: for a day they stay
        // unfamiliar however many calls come from them.
        if let Some(k) =
            net_key.filter(|k| new_of(feature::NETWORK) && net_surprise >= FRESH && pb.fresh_network.0 != *k as u32)
        {
            pb.fresh_network = (k as u32, t);
        }
        if let Some(k) =
            ua_key.filter(|k| new_of(feature::USER_AGENT) && ua_surprise >= FRESH && pb.fresh_agent.0 != *k as u32)
        {
            pb.fresh_agent = (k as u32, t);
        }
        if let Some(alarm) = pb.rate.add(t) {
            out.push(
                Deviation::new("rate", &subject.id, t, &e.id, 25.0, Lean::Neutral)
                    .detail(format!("{} events this hour against a usual {:.1}", alarm.count, alarm.mean))
                    .baseline(
                        "principal",
                        "events per hour",
                        &alarm.count.to_string(),
                        format!("mean {:.1}, sd {:.1}", alarm.mean, alarm.sd),
                        history,
                    ),
            );
        }
        if t - pb.shift_checked >= HOUR {
            pb.shift_checked = t;
            if let Some(tv) = pb.shift(t)
                && tv > 0.7
                && t - pb.shift_alarmed > DAY
            {
                pb.shift_alarmed = t;
                out.push(
                    Deviation::new("shift", &subject.id, t, &e.id, 15.0, Lean::Neutral)
                        .detail(format!("the last day's mix of actions differs from the usual one (distance {tv:.2})"))
                        .baseline(
                            "principal",
                            "action mix",
                            &format!("total variation {tv:.2}"),
                            "below 0.7".into(),
                            history,
                        ),
                );
            }
        }
        if !young && pb.hours.total() >= 200 && pb.hours.share_near(t) < 0.002 {
            out.push(
                Deviation::new("hour", &subject.id, t, &e.id, 8.0, Lean::Neutral)
                    .detail("active at an hour of the week it almost never is")
                    .baseline(
                        "principal",
                        "hour of week",
                        &format!("bucket {}", crate::sketch::HourOfWeek::bucket(t)),
                        "under 0.2% of activity near this hour".into(),
                        history,
                    ),
            );
        }
    }

    /// Deviations that recur on most days are habit: a nightly job's
    /// burst, a daily plan's mix, the on-call hour. Those with a pointed
    /// lean or a high-impact action are never habituated; first sightings
    /// cannot recur by definition.
    fn habit(&mut self, subject: &Subject, e: &Event, out: &mut Vec<Deviation>) {
        let day = day_of(e.time.unix_nanos());
        let Some(pb) = self.principals.get_mut(&subject.id) else { return };
        out.retain(|d| {
            let recurring = matches!(d.detector, "rate" | "shift" | "hour" | "refusals" | "workflow" | "dormant")
                && (d.lean == Lean::Neutral || d.detector == "refusals")
                && !d.impact
                && d.subject == subject.id;
            if !recurring {
                return true;
            }
            let sig = key2(98, d.detector, d.item.as_deref().unwrap_or(""));
            pb.habits.note(sig, day) < HABIT_DAYS
        });
    }

    /// Sigma matches, weighed by the rule's level and by habit: many rules
    /// (their own false-positive notes say so) fire on routine work, and a
    /// rule that always fires for this principal, or for its peers, is part
    /// of their normal; the first time it fires for them is what counts.
    fn sigma(
        &self,
        e: &Event,
        subject: &Subject,
        peers: &[String],
        sigma: &[crate::SigmaMatch],
        out: &mut Vec<Deviation>,
    ) {
        let t = e.time.unix_nanos();
        let pb = self.principals.get(&subject.id);
        let history = pb.map_or(0, |p| p.events);
        for m in sigma {
            let k = key(feature::RULE, &m.rule.id);
            let own = pb.is_some_and(|p| p.seen.contains(k));
            let peer = peers.iter().any(|p| self.peer_knows(p, k));
            let mut score = level_score(&m.rule.level);
            let habit = if own {
                // Routine for this principal: part of its normal, not a deviation.
                continue;
            } else if peer {
                score *= 0.4;
                "it fires routinely for its peers"
            } else {
                "first time for this principal and its peers"
            };
            if history < self.config.warmup_events {
                score *= 0.6;
            }
            let mut d = Deviation::new("sigma", &subject.id, t, &e.id, score, Lean::Malicious)
                .behaviour(m.behaviours.first().copied().unwrap_or(Behaviour::UnusualActivity))
                .item(m.rule.title.clone())
                .detail(format!("matched Sigma rule \"{}\" ({}; {habit})", m.rule.title, m.rule.level))
                .baseline("principal", "Sigma rule", &m.rule.title, habit.to_string(), history);
            d.rule = Some(m.rule.clone());
            d.techniques = m.techniques.clone();
            out.push(d);
        }
    }

    fn learn_rules(&mut self, subject: &Subject, peers: &[String], sigma: &[crate::SigmaMatch]) {
        for m in sigma {
            let k = key(feature::RULE, &m.rule.id);
            if let Some(pb) = self.principals.get_mut(&subject.id) {
                pb.seen.insert(k);
            }
            for p in peers {
                if let Some(peer) = self.peers.get_mut(p) {
                    peer.seen.insert(k);
                }
            }
        }
    }

    /// Changes to who may assume or act for whom.
    fn trust_edges(&mut self, e: &Event, subject: &Subject, failed: bool, out: &mut Vec<Deviation>) {
        let t = e.time.unix_nanos();
        let creating = e.action.operation.starts_with("Create");
        for c in &e.changes {
            match c {
                TrustChange::Assert { fact: Fact::Trust { role, document } } => {
                    let role_account = role.split(':').nth(4).unwrap_or("");
                    let mut outsiders: Vec<String> = Vec::new();
                    let mut anyone = false;
                    let mut pattern: Option<String> = None;
                    for s in document.statements.iter().filter(|s| s.effect == tenet_model::Effect::Allow) {
                        let Some(p) = s.principals.as_ref().filter(|p| !p.not) else { continue };
                        anyone |= p.anyone;
                        for a in &p.aws {
                            if a == "*" {
                                anyone = true;
                                continue;
                            }
                            let acct = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
                                a.as_str()
                            } else {
                                a.split(':').nth(4).unwrap_or("")
                            };
                            if acct != role_account
                                && !acct.is_empty()
                                && !self.detect.accounts.contains_key(acct)
                                && !outsiders.iter().any(|o| o == acct)
                            {
                                outsiders.push(acct.to_string());
                            }
                        }
                        // A federated principal with no condition on who (any
                        // repository's workflow, any token of the provider).
                        if !p.federated.is_empty() && wide_open(s) {
                            anyone = true;
                        }
                        // Whoever matches a pattern: every role named alike, say.
                        if pattern.is_none() {
                            pattern = p.aws.iter().find(|a| a.contains('*') && *a != "*").cloned().or_else(|| {
                                s.conditions
                                    .iter()
                                    .filter(|c| c.key.to_ascii_lowercase().ends_with("principalarn"))
                                    .flat_map(|c| c.values.iter())
                                    .find(|v| v.contains('*'))
                                    .cloned()
                            });
                        }
                    }
                    if !creating && !failed {
                        let canonical = self.identity.canonical(role).to_string();
                        self.detect.trust_changed.insert(canonical, (t, e.id.to_string(), subject.id.clone()));
                    }
                    let (score, detail, impact) = if !outsiders.is_empty() {
                        (70.0, format!("let account(s) never seen here ({}) assume {role}", outsiders.join(", ")), true)
                    } else if anyone {
                        (
                            60.0,
                            format!(
                                "let anyone with a token of its identity provider, or anyone at all, assume {role}"
                            ),
                            true,
                        )
                    } else if let Some(p) = &pattern {
                        (45.0, format!("let every identity matching {p} assume {role}"), false)
                    } else if creating {
                        // A role created with its trust: the creation's story, not a change.
                        continue;
                    } else {
                        (30.0, format!("changed who may assume {role}"), false)
                    };
                    let mut d = Deviation::new("trust_edge", &subject.id, t, &e.id, score, Lean::Trust)
                        .behaviour(Behaviour::Persistence)
                        .item(role.clone())
                        .detail(detail)
                        .techniques(&["T1098", "T1199"]);
                    d.impact = impact;
                    d.path = outsiders.iter().map(|a| format!("arn:aws:iam::{a}:root →[assumption] {role}")).collect();
                    out.push(d);
                }
                TrustChange::Observe { fact: Fact::ActsFor { agent, person, .. } } => {
                    let person = self.identity.canonical(person).to_string();
                    if let Some(declared) = self.identity.acts_for(agent)
                        && !declared.is_empty()
                        && !declared.contains(&person)
                    {
                        let mut d = Deviation::new("trust_edge", agent, t, &e.id, 45.0, Lean::Trust)
                            .behaviour(Behaviour::PrivilegeEscalation)
                            .item(person.clone())
                            .detail(format!("{agent} acted for {person}, whom its registration does not list"));
                        d.path = vec![format!("{agent} →[delegation] {person}")];
                        out.push(d);
                    }
                }
                _ => {}
            }
        }
        // A role assumed by this subject for the first time. A cloud service
        // assumes whatever role it is given: the role's side tells that story.
        if !failed
            && e.actor.kind != PrincipalKind::CloudService
            && e.action.service == "sts"
            && e.action.operation.starts_with("AssumeRole")
            && let Some(role) = e.resources.iter().find(|r| r.kind == "AWS::IAM::Role")
            && let Some(pb) = self.principals.get(&subject.id)
            && pb.events >= 5
            && !pb.seen.contains(key(feature::COUNTERPART, &role.id))
            // A day of history at least: on its first day everything an identity does is a first.
            && t - pb.first_seen >= DAY
        {
            let cross = account_of(e).is_some_and(|a| role.id.split(':').nth(4).is_some_and(|r| r != a));
            let support: Vec<(String, Option<String>)> =
                support(self, subject, e, t).into_iter().map(|(w, ev)| (w, Some(ev))).collect();
            let known_place = !on_behalf(e)
                && e.context.ip.is_some_and(|ip| pb.seen.contains(key(feature::NETWORK, &networks_of(ip).0)));
            // Its peers assume the role too: a colleague's routine, newly shared.
            let peers = self.peer_keys(subject, e);
            let peer_has = peers.iter().any(|p| self.peer_knows(p, key(feature::COUNTERPART, &role.id)));
            // A new role after a change that grants it, from a usual place, is
            // part of that change; otherwise it is a new trust path in use.
            let expected = (!support.is_empty() || peer_has) && known_place;
            let lean = if expected { Lean::Neutral } else { Lean::Trust };
            // From somewhere new with nothing authorising it: a new path in use by someone new.
            let score = match (cross, support.is_empty() && !known_place) {
                (_, _) if expected => 10.0,
                (true, true) => 45.0,
                (false, true) | (true, false) => 35.0,
                (false, false) => 25.0,
            };
            let mut d = Deviation::new("trust_edge", &subject.id, t, &e.id, score, lean)
                .behaviour(Behaviour::LateralMovement)
                .item(role.id.clone())
                .detail(format!(
                    "assumed {} for the first time{}",
                    role.id,
                    if cross { ", across accounts" } else { "" }
                ))
                .techniques(&["T1078.004"]);
            d.path = vec![format!("{} →[assumption] {}", subject.id, role.id)];
            d.support = support;
            if peer_has && expected {
                d.support.push((format!("its peers assume {} too", role.id), None));
            }
            out.push(d);
        }
    }

    /// Privilege changes: credentials made for another identity, admin
    /// granted, users created (likely malicious); grants piling up on an
    /// existing identity (drift, counted on the identity that receives them).
    fn privilege(&mut self, e: &Event, subject: &Subject, traits: Traits, failed: bool, out: &mut Vec<Deviation>) {
        if failed || !traits.has(Traits::PRIVILEGE) && !traits.has(Traits::CREDENTIAL) {
            return;
        }
        let t = e.time.unix_nanos();
        let own: Vec<&str> = e.principals().map(|p| p.id.as_str()).collect();
        let target_user = e.resources.iter().find(|r| r.kind == "AWS::IAM::User").map(|r| r.id.as_str());
        let op = e.action.operation.as_str();
        if traits.has(Traits::CREDENTIAL)
            && e.action.service == "iam"
            && let Some(u) = target_user
            && !own.contains(&u)
        {
            out.push(
                Deviation::new("privilege_change", &subject.id, t, &e.id, 60.0, Lean::Malicious)
                    .behaviour(Behaviour::Persistence)
                    .high_impact()
                    .item(op)
                    .detail(format!("created credentials ({op}) for another identity, {u}"))
                    .techniques(&["T1098.001"]),
            );
        }
        if e.action.service == "sts" && op == "GetFederationToken" {
            out.push(
                Deviation::new("privilege_change", &subject.id, t, &e.id, 60.0, Lean::Malicious)
                    .behaviour(Behaviour::Persistence)
                    .high_impact()
                    .item(op)
                    .detail("minted credentials for a federated identity of its own making (GetFederationToken)")
                    .techniques(&["T1550.001", "T1098.001"]),
            );
        }
        if op == "CreateUser" {
            out.push(
                Deviation::new("privilege_change", &subject.id, t, &e.id, 35.0, Lean::Malicious)
                    .behaviour(Behaviour::Persistence)
                    .item(op)
                    .detail(format!("created a user{}", target_user.map(|u| format!(" {u}")).unwrap_or_default()))
                    .techniques(&["T1136.003"]),
            );
        }
        for c in &e.changes {
            let TrustChange::Assert { fact } = c else { continue };
            let (holder, what, admin) = match fact {
                Fact::Attached { holder, policy } => (holder.clone(), policy.clone(), is_admin_policy(policy)),
                Fact::Policy { policy, document } => {
                    let Some(holder) = policy.split_once("#inline/").map(|(h, _)| h) else { continue };
                    let admin = document.statements.iter().any(|s| {
                        s.effect == tenet_model::Effect::Allow
                            && matches!(&s.actions, tenet_model::Matcher::Any)
                            && matches!(&s.resources, tenet_model::Matcher::Any)
                            || matches!(&s.actions, tenet_model::Matcher::Only(a) if a.iter().any(|x| x == "*"))
                    });
                    (holder.to_string(), policy.clone(), admin)
                }
                _ => continue,
            };
            out.extend(self.grant(e, subject, &holder, &what, admin, &own));
        }
    }

    fn grant(
        &self,
        e: &Event,
        subject: &Subject,
        holder: &str,
        what: &str,
        admin: bool,
        own: &[&str],
    ) -> Vec<Deviation> {
        let t = e.time.unix_nanos();
        let holder = self.identity.canonical(holder);
        let to_self = own.contains(&holder) || own.iter().any(|o| self.identity.canonical(o) == holder);
        if admin {
            return vec![
                Deviation::new("privilege_change", &subject.id, t, &e.id, 60.0, Lean::Malicious)
                    .behaviour(Behaviour::PrivilegeEscalation)
                    .item(what)
                    .detail(format!("granted administrator access ({what}) to {holder}"))
                    .techniques(&["T1098"]),
            ];
        }
        if to_self {
            return vec![
                Deviation::new("privilege_change", &subject.id, t, &e.id, 50.0, Lean::Malicious)
                    .behaviour(Behaviour::PrivilegeEscalation)
                    .item(what)
                    .detail(format!("granted itself {what}"))
                    .techniques(&["T1098"]),
            ];
        }
        // A grant to someone else: drift on the receiving identity, unless
        // it is a new identity created in the same breath (that is the
        // creation's story, already told).
        if self.identity.changes_before(holder, t, DAY).iter().any(|c| c.what.starts_with("created")) {
            return Vec::new();
        }
        let mut d = Deviation::new("privilege_change", holder, t, &e.id, 30.0, Lean::Drift)
            .item(what)
            .detail(format!("{} granted {holder} {what}", subject.id))
            .techniques(&["T1098"]);
        d.path = vec![format!("{holder} →[grant] {what}")];
        vec![d]
    }

    /// Sequences: a secret read followed by sending out, creating
    /// credentials or sharing; logging switched off, then data read.
    fn sequences(
        &mut self,
        e: &Event,
        subject: &Subject,
        traits: Traits,
        failed: bool,
        account: Option<&str>,
        out: &mut Vec<Deviation>,
    ) {
        if failed {
            return;
        }
        let t = e.time.unix_nanos();
        let agent = subject.kind == PrincipalKind::Agent;
        if (traits.has(Traits::OUTBOUND) || traits.has(Traits::CREDENTIAL) || traits.has(Traits::SHARING))
            && let Some((at, read)) = self.detect.secret_reads.get(&subject.id)
            && t - at <= HOUR
        {
            let what = if traits.has(Traits::OUTBOUND) {
                "sent data outside"
            } else if traits.has(Traits::SHARING) {
                "shared data outside"
            } else {
                "created credentials"
            };
            // Sending out after reading a secret is exfiltration, whoever
            // does it; an agent minting credentials after one is a
            // workflow gone wrong.
            let egress = traits.has(Traits::OUTBOUND) || traits.has(Traits::SHARING);
            let mut d = Deviation::new(
                "sequence",
                &subject.id,
                t,
                &e.id,
                if egress { 85.0 } else { 70.0 },
                if egress || !agent { Lean::Malicious } else { Lean::Workflow },
            )
            .behaviour(if egress { Behaviour::Exfiltration } else { Behaviour::CredentialAccess })
            .item(e.action.qualified())
            .detail(format!("read a secret, then {what} within {} minutes", (t - at) / MINUTE))
            .techniques(&["T1555", "T1567"]);
            d.impact = egress;
            d.event_ids.insert(0, EventId::from(read.as_str()));
            out.push(d);
        }
        if traits.has(Traits::SECRET_READ) {
            self.detect.secret_reads.insert(subject.id.clone(), (t, e.id.to_string()));
        }
        if traits.has(Traits::SHARING) {
            out.push(
                Deviation::new("sharing", &subject.id, t, &e.id, 55.0, Lean::Malicious)
                    .behaviour(Behaviour::Exfiltration)
                    .high_impact()
                    .item(e.action.qualified())
                    .detail(format!("shared a snapshot, image or data outside ({})", e.action.qualified()))
                    .techniques(&["T1537"]),
            );
        }
        let Some(account) = account else { return };
        if traits.has(Traits::LOGGING_OFF) {
            out.push(
                Deviation::new("logging_off", &subject.id, t, &e.id, 65.0, Lean::Malicious)
                    .behaviour(Behaviour::DefenseEvasion)
                    .high_impact()
                    .item(e.action.qualified())
                    .detail(format!("turned logging or monitoring down ({})", e.action.qualified()))
                    .techniques(&["T1562.008"]),
            );
            self.detect.logging_off.insert(account.to_string(), (t, e.id.to_string(), subject.id.clone()));
        } else if traits.has(Traits::DATA_READ)
            && let Some((at, off, who)) = self.detect.logging_off.get(account)
            && t - at <= 3 * HOUR
            && *who == subject.id
            && self.detect.logging_off_reported.get(&subject.id).is_none_or(|r| r < at)
        {
            self.detect.logging_off_reported.insert(subject.id.clone(), t);
            let mut d = Deviation::new("sequence", &subject.id, t, &e.id, 60.0, Lean::Malicious)
                .behaviour(Behaviour::Collection)
                .detail("read data shortly after turning logging down")
                .techniques(&["T1562.008", "T1530"]);
            d.event_ids.insert(0, EventId::from(off.as_str()));
            out.push(d);
        }
    }

    /// Authorization refusals spread across varied calls or targets within
    /// minutes: guessing what a credential can do. A refusal seen before
    /// (the same call on the same target) is habit; the same refused call
    /// repeated is a retry; a rate limit, a timeout or a tool's own error
    /// is not a refusal at all. A sensitive call that succeeds after the
    /// guessing is what the guessing found.
    fn refusals(
        &mut self,
        e: &Event,
        subject: &Subject,
        facts: &Facts,
        traits: Traits,
        action: &str,
        out: &mut Vec<Deviation>,
    ) {
        let t = e.time.unix_nanos();
        if !facts.denied() && !self.detect.refusals.contains_key(&subject.id) {
            return;
        }
        // A tool that reads widely (a plan refreshing hundreds of resources)
        // meets a few walls; guessing is mostly walls.
        const GUESSING_SHARE: f32 = 0.2;
        // One tool call is several spans (the agent's, the MCP client's, the
        // server's): one call, whatever the span.
        let tool_call = matches!(e.action.service.as_str(), "gen_ai.tool" | "mcp");
        let action = if tool_call { e.action.operation.as_str() } else { action };
        let target = if tool_call { "" } else { e.resources.first().map_or("", |r| r.id.as_str()) };
        let call = key2(feature::DENIED, action, target);
        let known = self.principals.get(&subject.id).is_some_and(|p| p.seen.contains(call));
        let f = slot(&mut self.detect.refusals, &subject.id, Refusals::default);
        if t - f.first > 15 * MINUTE {
            *f = Refusals { first: t, ..Default::default() };
        }
        f.calls = f.calls.saturating_add(1);
        if facts.denied() {
            if known || f.refused.iter().any(|(k, _, _)| *k == call) {
                return;
            }
            if f.refused.len() < 12 {
                f.refused.push((call, action.to_string(), e.id.to_string()));
            }
            let (n, actions) = (f.refused.len(), f.distinct_actions());
            let share = n as f32 / f.calls.max(1) as f32;
            if !f.reported && (actions >= 3 || n >= 5) && share >= GUESSING_SHARE {
                f.reported = true;
                let mut listed: Vec<&str> = f.refused.iter().map(|(_, a, _)| a.as_str()).collect();
                listed.dedup();
                let mut d = Deviation::new(
                    "refusals",
                    &subject.id,
                    t,
                    &e.id,
                    (25.0 + 4.0 * (n as f32 - 3.0)).min(40.0),
                    Lean::Malicious,
                )
                .behaviour(Behaviour::Discovery)
                .detail(format!(
                    "refused {n} different calls within minutes ({}{})",
                    listed.iter().take(4).copied().collect::<Vec<_>>().join(", "),
                    if listed.len() > 4 { ", …" } else { "" }
                ))
                .techniques(&["T1087.004", "T1580"]);
                d.event_ids = f.refused.iter().map(|(_, _, id)| EventId::from(id.as_str())).collect();
                out.push(d);
            }
        } else if !facts.failed() && f.reported && traits.sensitive() && f.refused.iter().any(|(_, a, _)| a != action) {
            let mut d = Deviation::new("refusals", &subject.id, t, &e.id, 35.0, Lean::Malicious)
                .behaviour(Behaviour::PrivilegeEscalation)
                .item(action)
                .detail(format!("{action} succeeded after {} other calls were refused", f.refused.len()))
                .techniques(&["T1078"]);
            d.event_ids.extend(f.refused.iter().map(|(_, _, id)| EventId::from(id.as_str())));
            f.reported = false;
            f.refused.clear();
            out.push(d);
        }
    }

    /// Agent workflows: transitions between tool calls against what the
    /// agent's type usually does, and the risky ones (outside content then
    /// a secret; a secret then sending out).
    fn workflow(&mut self, e: &Event, subject: &Subject, traits: Traits, facts: &Facts, out: &mut Vec<Deviation>) {
        let (Some(trace), true) = (&e.trace, subject.kind == PrincipalKind::Agent) else { return };
        if facts.failed() {
            return;
        }
        let t = e.time.unix_nanos();
        let svc = e.action.service.as_str();
        if svc != "gen_ai.tool" && svc != "mcp" {
            return;
        }
        let peer =
            facts.peers.iter().find(|g| g.contains("agents:group/")).cloned().unwrap_or_else(|| subject.id.clone());
        let tr = self.detect.traces.entry(trace.trace_id.clone()).or_default();
        tr.at = t;
        if traits.has(Traits::SECRET_READ)
            && let Some(inbound) = tr.inbound.clone()
        {
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 45.0, Lean::Workflow)
                .behaviour(Behaviour::CredentialAccess)
                .item(e.action.operation.clone())
                .detail(format!("read a secret ({}) after taking in outside content", e.action.operation))
                .techniques(&["T1555"]);
            d.event_ids.insert(0, EventId::from(inbound.as_str()));
            out.push(d);
        }
        if (traits.has(Traits::OUTBOUND) || traits.has(Traits::INBOUND))
            && let Some(secret) = tr.secret.clone()
        {
            // Reaching outside after reading a secret in the same task: a
            // URL can carry the secret out as well as a POST.
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 80.0, Lean::Malicious)
                .behaviour(Behaviour::Exfiltration)
                .high_impact()
                .item(e.action.operation.clone())
                .detail(format!("reached outside ({}) after reading a secret in the same task", e.action.operation))
                .techniques(&["T1567"]);
            d.event_ids.insert(0, EventId::from(secret.as_str()));
            out.push(d);
        }
        if traits.has(Traits::INBOUND) {
            tr.inbound = Some(e.id.to_string());
        }
        if traits.has(Traits::SECRET_READ) {
            tr.secret = Some(e.id.to_string());
        }
        if svc != "gen_ai.tool" {
            return;
        }
        let from = tr.last_tool.replace(e.action.operation.clone()).unwrap_or_else(|| "start".into());
        let transition = format!("{from} → {}", e.action.operation);
        let k = key(9, &transition);
        let wf = self.workflows.entry(peer.clone()).or_default();
        let (novel, steps) = (wf.traces >= 20 && !wf.seen.contains(k), wf.traces);
        wf.seen.insert(k);
        wf.traces += 1;
        if novel {
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 6.0, Lean::Neutral)
                .item(transition.clone())
                .detail(format!("a step its workflow never took: {transition}"))
                .baseline(
                    &format!("workflow {peer}"),
                    "tool transition",
                    &transition,
                    format!("never seen in {steps} steps"),
                    steps,
                );
            d.support = support(self, subject, e, t).into_iter().map(|(w, ev)| (w, Some(ev))).collect();
            out.push(d);
        }
    }

    /// An agent's AWS session carries one person's access while its trace
    /// says it worked for another: the confused deputy.
    fn delegation(&mut self, e: &Event, subject: &Subject, out: &mut Vec<Deviation>) {
        let t = e.time.unix_nanos();
        let (call, this) = if e.action.service == "gen_ai.tool" && subject.kind == PrincipalKind::Agent {
            let Some(call) = e.session.as_ref().and_then(|s| s.id.clone()) else { return };
            let Some(person) = subject.person.clone() else { return };
            (call, ToolCall { at: t, agent: subject.id.clone(), person, event: e.id.to_string() })
        } else if let Some(call) = session_tool_call(&e.actor.id) {
            let Some(person) = e
                .chain
                .iter()
                .find(|p| p.kind == PrincipalKind::Human)
                .map(|p| self.identity.canonical(&p.id).to_string())
            else {
                return;
            };
            (call.to_string(), ToolCall { at: t, agent: subject.id.clone(), person, event: e.id.to_string() })
        } else {
            return;
        };
        let is_trace = e.action.service == "gen_ai.tool";
        let other = if is_trace { self.detect.aws_calls.get(&call) } else { self.detect.tool_calls.get(&call) };
        if let Some(other) = other.cloned() {
            let (asked_for, access_of) =
                if is_trace { (&this.person, &other.person) } else { (&other.person, &this.person) };
            if asked_for != access_of {
                let mut d = Deviation::new("delegation", &this.agent, t, &e.id, 80.0, Lean::Trust)
                    .behaviour(Behaviour::PrivilegeEscalation)
                    .item(access_of.clone())
                    .detail(format!("{} worked for {asked_for} with {access_of}'s access", this.agent))
                    .techniques(&["T1078", "T1134"]);
                d.event_ids.insert(0, EventId::from(other.event.as_str()));
                d.path = vec![
                    format!("{} →[delegation] {asked_for}", this.agent),
                    format!("{} →[session] {access_of}'s source identity", this.agent),
                ];
                out.push(d);
            }
        }
        if is_trace {
            self.detect.tool_calls.insert(call, this);
        } else {
            self.detect.aws_calls.insert(call, this);
        }
    }

    /// Who assumes a role, seen from the role: a new identity taking it up
    /// soon after its trust was changed is the change in use; one from an
    /// organisation never seen here is an outsider let in; a known
    /// workflow assuming it from a context it never used (a pull request
    /// reaching a deploy role) is a workflow reaching further than it did.
    fn assumers(&mut self, e: &Event, subject: &Subject, facts: &Facts, out: &mut Vec<Deviation>) {
        if facts.failed() || e.action.service != "sts" || !e.action.operation.starts_with("AssumeRole") {
            return;
        }
        let Some(role) = e.resources.iter().find(|r| r.kind == "AWS::IAM::Role") else { return };
        // A cloud service assumes what it is configured to; an identity
        // assuming a role it is itself does not widen anything.
        if e.actor.kind == PrincipalKind::CloudService || subject.id == role.id {
            return;
        }
        let t = e.time.unix_nanos();
        let role_id = self.identity.canonical(&role.id).to_string();
        let assumer = subject.id.as_str();
        let (family, org) = (family_of(assumer), org_of(assumer));
        let org_key = key(feature::ASSUMER_ORG, org);
        let org_known = self.detect.assumer_orgs.contains(&org_key);
        let mature =
            facts.account.as_ref().and_then(|a| self.detect.account_actions.get(a)).is_some_and(|h| h.mature(t));
        let created_lately =
            self.identity.changes_before(&role_id, t, CHANGE_WINDOW).iter().any(|c| c.what.starts_with("created"));
        let changed = self.detect.trust_changed.get(&role_id).filter(|(_, _, by)| by != assumer).cloned();
        // A brand-new identity of a known organisation taking up a role just
        // after its trust changed is most likely what the change was for.
        let assumer_young = self.principals.get(assumer).is_none_or(|p| t - p.first_seen < DAY);
        let rb = slot(&mut self.principals, &role_id, || PrincipalBaseline::new(t));
        let exact = key(feature::ASSUMER, assumer);
        let fam = key(feature::ASSUMER_FAMILY, family);
        let (new_exact, new_family) = (!rb.seen.contains(exact), !rb.seen.contains(fam));
        let assumptions = rb.churn.observations(8);
        // Who assumes a role is known after a few days of use, or sooner
        // when the same identities have already assumed it again and again.
        let age = t - rb.first_seen;
        let settled = assumptions >= 2.0 && (age >= 3 * DAY || age >= DAY && assumptions >= 4.0);
        // Roles are assumed by few identities: a small prior, lightly held.
        let rate = rb.churn.rate(8, 0.02, 10.0);
        rb.churn.observe(t, 8, new_exact);
        rb.seen.insert(exact);
        rb.seen.insert(fam);
        self.detect.assumer_orgs.insert(org_key);
        if !new_exact || created_lately {
            return;
        }
        let automation = !matches!(subject.kind, PrincipalKind::Human);
        let (score, lean, detail, mut ids) = if let Some((at, change, by)) =
            changed.filter(|_| !(assumer_young && org_known))
        {
            (
                55.0,
                Lean::Trust,
                format!(
                    "{assumer} assumed {role_id} for the first time, {} days after {by} changed who may assume it",
                    (t - at) / DAY
                ),
                vec![EventId::from(change.as_str())],
            )
        } else if !org_known && mature {
            (50.0, Lean::Trust, format!("{assumer}, from {org}, never seen here before, assumed {role_id}"), Vec::new())
        } else if settled && surprise(rate) >= 0.25 && automation && !new_family {
            (
                45.0,
                Lean::Workflow,
                format!("{assumer}, a context of {family} that never used it, assumed {role_id}"),
                Vec::new(),
            )
        } else if settled && surprise(rate) >= 0.5 {
            (25.0, Lean::Trust, format!("{assumer} assumed {role_id}, which it never used"), Vec::new())
        } else {
            return;
        };
        ids.push(e.id.clone());
        let mut d = Deviation::new("assumer", &role_id, t, &e.id, score, lean)
            .behaviour(Behaviour::LateralMovement)
            .item(assumer)
            .detail(detail)
            .baseline(
                "role",
                "assuming identity",
                assumer,
                format!("{assumptions:.0} recent assumptions by others"),
                assumptions as u64,
            )
            .techniques(&["T1078.004", "T1550"]);
        d.event_ids = ids;
        d.path = vec![format!("{assumer} →[assumption] {role_id}")];
        out.push(d);
    }

    /// A person gaining access through agents acting for them: an agent's
    /// access-changing call in a workflow that person started, and a grant
    /// or membership to that same person within minutes. Nobody but the
    /// beneficiary asked for it.
    fn bridges(&mut self, e: &Event, subject: &Subject, traits: Traits, facts: &Facts, out: &mut Vec<Deviation>) {
        if facts.failed() {
            return;
        }
        let t = e.time.unix_nanos();
        self.detect.privileged_calls.retain(|c| t - c.0 <= BRIDGE_WINDOW);
        self.detect.recent_grants.retain(|g| t - g.0 <= BRIDGE_WINDOW);
        let mut found: Vec<(String, String, usize, String, String, String)> = Vec::new();
        if subject.kind == PrincipalKind::Agent
            && traits.has(Traits::PRIVILEGE)
            && matches!(e.action.service.as_str(), "gen_ai.tool" | "mcp")
            && let Some(person) = e.chain.iter().rev().find(|p| p.kind == PrincipalKind::Human)
        {
            let person = self.identity.canonical(&person.id).to_string();
            let agents: Vec<&str> =
                e.principals().filter(|p| p.kind == PrincipalKind::Agent).map(|p| p.id.as_str()).collect();
            let entry = agents.last().copied().unwrap_or(subject.id.as_str()).to_string();
            for g in self.detect.recent_grants.iter().filter(|g| g.1 == person) {
                found.push((person.clone(), entry.clone(), agents.len(), e.id.to_string(), g.3.clone(), g.2.clone()));
            }
            if self.detect.privileged_calls.len() < 64 {
                self.detect.privileged_calls.push((t, person, entry, agents.len(), e.id.to_string()));
            }
        }
        for c in &e.changes {
            let TrustChange::Assert { fact } = c else { continue };
            let (holder, what) = match fact {
                Fact::Member { member, group } => (member, format!("membership of {group}")),
                Fact::Attached { holder, policy } => (holder, policy.clone()),
                _ => continue,
            };
            let holder = self.identity.canonical(holder).to_string();
            for call in self.detect.privileged_calls.iter().filter(|c| c.1 == holder) {
                found.push((holder.clone(), call.2.clone(), call.3, call.4.clone(), e.id.to_string(), what.clone()));
            }
            if self.detect.recent_grants.len() < 64 {
                self.detect.recent_grants.push((t, holder, what, e.id.to_string()));
            }
        }
        for (person, entry, hops, call, grant, what) in found {
            // A workflow that grants this access routinely, or access the
            // person's peers already hold, is self-service, not a bridge.
            let routine = key2(feature::DENIED + 100, &entry, &what);
            let habitual = self.principals.get(&entry).is_some_and(|p| p.seen.contains(routine));
            if let Some(p) = self.principals.get_mut(&entry) {
                p.seen.insert(routine);
            }
            let group = what.strip_prefix("membership of ").unwrap_or(&what);
            if habitual || self.identity.peers_hold(&person, group) {
                continue;
            }
            // Handed from agent to agent before the grant: nobody designed
            // that path for this access.
            let score = if hops > 1 { 60.0 } else { 30.0 };
            let mut d = Deviation::new("delegation", &entry, t, &e.id, score, Lean::Workflow)
                .behaviour(Behaviour::PrivilegeEscalation)
                .item(what.clone())
                .detail(format!(
                    "{person} was granted {what} by a workflow {person} started through {entry}{}: access gained through agents acting for the one who gains it, approved by nobody else",
                    if hops > 1 { format!(" and {} more agent(s)", hops - 1) } else { String::new() }
                ))
                .techniques(&["T1098", "T1078"]);
            d.event_ids = vec![EventId::from(call.as_str()), EventId::from(grant.as_str())];
            d.path = vec![format!("{person} →[delegation] {entry}"), format!("{entry} →[grant] {what} → {person}")];
            out.push(d);
        }
    }

    /// Learns the event into the subject's baseline and its peers'.
    /// `uncounted`: learned, but not counted as the principal's churn.
    fn learn(&mut self, seen: Observed<'_>, uncounted: bool) {
        let Observed { event: e, subject, facts, features, traits, action } = seen;
        let t = e.time.unix_nanos();
        if subject.kind == PrincipalKind::Agent {
            self.identity.note_agent_servers(&subject.id, e);
        }
        let mut keys = vec![key(feature::SERVICE, &e.action.service)];
        for r in e.resources.iter().take(3) {
            keys.push(key(feature::RESOURCE_TYPE, &r.kind));
            keys.push(action_on_type(action, &r.kind));
        }
        if facts.denied() {
            let target = e.resources.first().map_or("", |r| r.id.as_str());
            keys.push(key2(feature::DENIED, action, target));
        }
        if let Some(r) = e.chain.iter().find(|p| p.kind == PrincipalKind::Role) {
            keys.push(key(feature::UNKNOWN, &r.id));
        } else if e.actor.id.contains(":user/") {
            keys.push(key(feature::UNKNOWN, &e.actor.id));
        }
        if let Some(a) = &facts.account {
            let h = slot(&mut self.detect.account_actions, a, || AccountActions {
                first_seen: t,
                ..AccountActions::default()
            });
            h.events += 1;
            h.actions.insert(key(feature::ACTION, action));
        }
        let member = key(99, &subject.id);
        let pb = slot(&mut self.principals, &subject.id, || PrincipalBaseline::new(t));
        pb.events += 1;
        pb.last_seen = pb.last_seen.max(t);
        let mut counted = [true; 16];
        for (i, x) in features.iter().enumerate() {
            let slot = feature::churn_slot(x.f);
            if let Some(s) = slot {
                counted[i.min(15)] = !(uncounted && (1..=4).contains(&s)) && pb.churn.switched(t, s, x.key);
                if counted[i.min(15)] {
                    pb.churn.observe(t, s, x.new);
                }
            }
            // A feature that churns carries no news: its values would only
            // push out of the filter those that do.
            let saturated = slot.and_then(|s| pb.churn.own_rate(s, 50.0)).is_some_and(|r| r > SATURATED);
            // A failed call's target is not something the principal uses.
            // What it keeps using is refreshed into the current generation,
            // or churn elsewhere would age its habits out of the filter.
            if !((x.new && saturated) || (facts.failed() && x.f == feature::RESOURCE)) {
                pb.seen.insert(x.key);
            }
        }
        for &k in &keys {
            pb.seen.insert(k);
        }
        if !facts.failed() {
            pb.observe_action(t, action);
            pb.kinds |= traits.sensitive_bits();
        }
        // An intruder's session does not make its place and tool the
        // owner's habits.
        if let Some(n) = facts.network.as_ref().filter(|_| !uncounted) {
            pb.networks.add(key(feature::NETWORK, n), t);
        }
        if let Some(u) = facts.ua().filter(|_| !uncounted) {
            pb.user_agents.add(key(feature::USER_AGENT, u), t);
        }
        pb.hours.add(t);
        pb.observe_outcome(t, facts.failed());
        let kind_peer = facts.kind_peer;
        for p in facts.peers.iter().map(String::as_str).chain(std::iter::once(kind_peer)) {
            if let Some(touched) = self.touched.as_mut() {
                touched.peers.insert(p.to_string());
            }
            let peer = slot(&mut self.peers, p, Default::default);
            peer.events += 1;
            if peer.seen.insert(member) {
                peer.members += 1;
            }
            for (i, x) in features.iter().enumerate() {
                if let Some(s) = feature::churn_slot(x.f)
                    && counted[i.min(15)]
                {
                    peer.churn.observe(t, s, x.new);
                }
                // The kind peer is a prior for churn only: everyone of a kind
                // doing something says nothing about one of them doing it.
                if p != kind_peer {
                    peer.seen.insert(x.key);
                    if x.new && x.f == feature::ACTION {
                        peer.adopted(x.key, t, member);
                    }
                }
            }
            if p != kind_peer {
                for &k in &keys {
                    peer.seen.insert(k);
                }
            }
        }
    }
}

/// Wide open federated trust: a statement for a federated principal whose
/// conditions do not pin the subject (no `sub`, or a pattern matching any).
fn wide_open(s: &tenet_model::Statement) -> bool {
    let pins: Vec<&tenet_model::Condition> =
        s.conditions.iter().filter(|c| c.key.ends_with(":sub") || c.key.ends_with(":subject")).collect();
    pins.is_empty()
        || pins.iter().all(|c| {
            c.values.iter().any(|v| {
                let v = v.trim();
                v == "*" || v == "repo:*" || v.starts_with("repo:*") || v.starts_with("system:serviceaccount:*")
            })
        })
}

/// The family an identity belongs to: a repository's workflows
/// (`repo:o/r:pull_request` → `repo:o/r`), a namespace's service accounts
/// (`system:serviceaccount:ns:sa` → `system:serviceaccount:ns`); else itself.
fn family_of(id: &str) -> &str {
    let cut = |start: usize, colons: usize| -> &str {
        let rest = &id[start..];
        match rest.match_indices(':').nth(colons) {
            Some((i, _)) => &id[..start + i],
            None => id,
        }
    };
    if let Some(i) = id.find("repo:") {
        cut(i, 1)
    } else if let Some(i) = id.find("system:serviceaccount:") {
        cut(i, 2)
    } else {
        id
    }
}

/// The organisation an identity belongs to: a repository's owner, the
/// cluster's service accounts, an ARN's account, an email's domain, a
/// cloud's own services; else the identity itself.
fn org_of(id: &str) -> &str {
    if let Some(i) = id.find("repo:") {
        let rest = &id[i..];
        return rest.split_once('/').map_or(rest, |(o, _)| o);
    }
    if id.contains("system:serviceaccount:") {
        return "system:serviceaccount";
    }
    if id.starts_with("arn:") {
        return id.split(':').nth(4).filter(|a| !a.is_empty()).unwrap_or(id);
    }
    if id.starts_with("aws:service/") {
        return "aws";
    }
    if let Some((_, domain)) = id.rsplit_once('@') {
        return domain;
    }
    id
}

/// What a first action shows the principal doing, by what the action is.
fn behaviour_of(t: Traits) -> Behaviour {
    if t.has(Traits::LOGGING_OFF) {
        Behaviour::DefenseEvasion
    } else if t.has(Traits::SHARING) || t.has(Traits::OUTBOUND) {
        Behaviour::Exfiltration
    } else if t.has(Traits::SECRET_READ) {
        Behaviour::CredentialAccess
    } else if t.has(Traits::CREDENTIAL) || t.has(Traits::TRUST) {
        Behaviour::Persistence
    } else if t.has(Traits::PRIVILEGE) {
        Behaviour::PrivilegeEscalation
    } else if t.has(Traits::EXECUTION) {
        Behaviour::Execution
    } else if t.has(Traits::DISCOVERY) {
        Behaviour::Discovery
    } else if t.has(Traits::DATA_READ) {
        Behaviour::Collection
    } else {
        Behaviour::UnusualActivity
    }
}

/// The novelty key of an action on a resource type.
pub(crate) fn action_on_type(action: &str, kind: &str) -> u64 {
    crate::sketch::key2(feature::ACTION_ON_TYPE, action, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_lose_their_versions() {
        assert_eq!(
            ua_family("aws-cli/2.9.0 Python/3.9.11 Linux/5.4.0 exe/x86_64.ubuntu.20"),
            "aws-cli Python Linux exe"
        );
        assert_eq!(ua_family("aws-cli/2.15.1 Python/3.11.6 Linux/6.1 exe/x86_64"), "aws-cli Python Linux exe");
        assert_eq!(ua_family("Boto3/1.34.0 md/Botocore#1.34.0"), "Boto3 md");
        assert_eq!(ua_family("stratus-red-team_6bf00313-712c-4fd2-9bdd-88f48a4b1282"), "stratus-red-team");
        assert_eq!(ua_family("okta-aws-cli/2.5.1 (windows; amd64)"), "okta-aws-cli windows amd64");
    }
}
