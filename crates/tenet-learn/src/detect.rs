//! The detectors. Each looks at one event against what was learned before
//! it, and reports [`Deviation`]s; the baselines learn from the event only
//! after every detector has seen it.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tenet_model::{Event, EventId, Fact, PrincipalKind, Status, TrustChange};

use crate::Learner;
use crate::actions::{self, Traits};
use crate::baseline::{PrincipalBaseline, feature};
use crate::deviation::{Deviation, Lean};
use crate::identity::{ANNOUNCEMENT_WINDOW, CHANGE_WINDOW, Subject, SubjectKind, session_tool_call};
use crate::sketch::{DAY, HOUR, key};

const MINUTE: i64 = 60_000_000_000;

/// Short-lived detector memory: recent secret reads, logging switched off,
/// denials, agent traces and tool calls awaiting their other half.
#[derive(Default, Serialize, Deserialize)]
pub struct State {
    secret_reads: FxHashMap<String, (i64, String)>,
    logging_off: FxHashMap<String, (i64, String, String)>,
    logging_off_reported: FxHashMap<String, i64>,
    failures: FxHashMap<String, Failures>,
    traces: FxHashMap<String, Trace>,
    tool_calls: FxHashMap<String, ToolCall>,
    aws_calls: FxHashMap<String, ToolCall>,
    /// Accounts seen acting or logging, with how often: a trust policy that
    /// lets in an account never seen is letting in an outsider.
    accounts: FxHashMap<String, u64>,
    /// Every action taken in each account: "the first time anyone here".
    #[serde(default)]
    account_actions: FxHashMap<String, AccountActions>,
}

/// Distinct actions are bounded by the cloud's API surface (thousands),
/// so an exact set is affordable per account.
#[derive(Default, Serialize, Deserialize)]
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

#[derive(Default, Serialize, Deserialize)]
struct Failures {
    first: i64,
    count: u32,
    actions: Vec<String>,
    ids: Vec<String>,
    reported: bool,
}

#[derive(Default, Serialize, Deserialize)]
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
        self.failures.retain(|_, f| now - f.first < HOUR);
        self.traces.retain(|_, tr| now - tr.at < HOUR);
        self.tool_calls.retain(|_, c| now - c.at < HOUR);
        self.aws_calls.retain(|_, c| now - c.at < HOUR);
    }
}

/// The network an address belongs to: /24 for IPv4, /48 for IPv6, or the
/// named origin (a service) when there is no address.
/// Decayed uses after which a source network or user agent counts as habit.
const SETTLED: f32 = 3.0;

fn network_of(e: &Event) -> Option<String> {
    match e.context.ip {
        Some(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
        None => e.context.host.clone(),
    }
}

/// A user agent without its versions: `aws-cli/2.9.0 Python/3.9.11` →
/// `aws-cli Python`. Upgrades are not news; a different tool is.
fn ua_family(ua: &str) -> String {
    let mut out = String::new();
    for token in ua.split_whitespace().take(4) {
        let name = token.split('/').next().unwrap_or(token).trim_matches(|c: char| c == '(' || c == ')' || c == ';');
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

/// What several detectors and the learning step read off one event,
/// worked out once.
struct Facts {
    network: Option<String>,
    /// The user agent's family; empty when it has no named tool.
    ua_family: Option<String>,
    account: Option<String>,
    peers: Vec<String>,
    failed: bool,
}

impl Facts {
    fn of(e: &Event, peers: Vec<String>) -> Facts {
        Facts {
            network: network_of(e),
            ua_family: e.context.user_agent.as_deref().map(ua_family),
            account: account_of(e),
            peers,
            failed: e.outcome.status == Status::Failure,
        }
    }

    /// The user agent's family, when it names a tool.
    fn ua(&self) -> Option<&str> {
        self.ua_family.as_deref().filter(|u| !u.is_empty())
    }
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

fn level_score(level: &str) -> f32 {
    match level {
        "critical" => 90.0,
        "high" => 70.0,
        "medium" => 45.0,
        "low" => 25.0,
        _ => 10.0,
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
    if subject.kind == SubjectKind::Agent {
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

impl Learner {
    /// The peer groups of a subject: its groups (except the cluster-wide
    /// `system:` ones, which everyone is in), and the role it acts through.
    fn peer_keys(&self, s: &Subject) -> Vec<String> {
        let mut out: Vec<String> = self
            .identity
            .groups_of(&s.id)
            .into_iter()
            .filter(|g| !g.contains("group/system:"))
            .map(str::to_string)
            .collect();
        if s.kind == SubjectKind::Person
            && let Some(r) = &s.role
        {
            out.push(format!("role:{r}"));
        }
        out
    }

    pub(crate) fn detect(&mut self, e: &Event, sigma: &[crate::SigmaMatch]) -> Vec<Deviation> {
        let subject = self.identity.subject(e);
        let traits = actions::traits(e, &self.config.internal_domains);
        let action = e.action.qualified();
        let facts = Facts::of(e, self.peer_keys(&subject));
        let failed = facts.failed;
        if let Some(a) = &facts.account {
            *self.detect.accounts.entry(a.clone()).or_default() += 1;
        }
        let mut out = Vec::new();

        self.novelty(e, &subject, &facts, traits, &action, &mut out);
        self.trust_edges(e, &subject, failed, &mut out);
        self.privilege(e, &subject, traits, failed, &mut out);
        self.sequences(e, &subject, traits, failed, facts.account.as_deref(), &mut out);
        self.denials(e, &subject, failed, &action, &mut out);
        self.workflow(e, &subject, traits, &mut out);
        self.delegation(e, &subject, &mut out);
        self.sigma(e, &subject, &facts.peers, sigma, &mut out);
        self.learn(e, &subject, &facts, failed, &action);
        self.learn_rules(&subject, &facts.peers, sigma);
        out
    }

    /// First use of something by the principal (and by its peer groups),
    /// weighed by what the action is and the context it came from; plus
    /// rate, shift, unusual hour and dormancy from the same baseline.
    fn novelty(
        &mut self,
        e: &Event,
        subject: &Subject,
        facts: &Facts,
        traits: Traits,
        action: &str,
        out: &mut Vec<Deviation>,
    ) {
        let t = e.time.unix_nanos();
        let failed = facts.failed;
        let peers = &facts.peers;
        let support = support(self, subject, e, t);
        let warmup = self.config.warmup_events;
        let organisation_new = facts.account.as_ref().and_then(|a| {
            let h = self.detect.account_actions.get(a)?;
            (h.mature(t) && !h.actions.contains(&key(feature::ACTION, action))).then(|| a.clone())
        });
        // A principal never seen is judged like one with little history:
        // against its peers and its account, at low confidence, never silently.
        let pb = slot(&mut self.principals, &subject.id, || PrincipalBaseline::new(t));
        let history = pb.events;
        // Little history lowers confidence; it never silences (a principal
        // active a few times a week is exactly where a stolen key hides).
        let confidence = (history as f32 / warmup.max(1) as f32).clamp(0.3, 1.0);
        let warm = history >= 5;
        // Habits need time as well as events before a departure from them means much.
        let settled = warm && t - pb.first_seen >= DAY;
        let days = ((t - pb.first_seen) / DAY).max(0);
        let expected = |what: &str| format!("{what} in {history} events over {days} days");

        // Dormant: a principal with a history, silent for two weeks, back.
        let quiet = t - pb.last_seen;
        let usual_gap = (pb.last_seen - pb.first_seen) / (history.max(1) as i64);
        // Back from a usual place is someone back from leave; back from
        // somewhere new is what account takeovers look like.
        let from_new_place = facts.network.as_ref().is_some_and(|n| !pb.seen.contains(key(feature::NETWORK, n)))
            || facts.ua_family.as_ref().is_some_and(|u| !pb.seen.contains(key(feature::USER_AGENT, u)));
        if history >= 3 && quiet >= 7 * DAY && quiet > 10 * usual_gap {
            let (score, lean) = if from_new_place { (50.0, Lean::Malicious) } else { (15.0, Lean::Neutral) };
            let mut d = Deviation::new("dormant", &subject.id, t, &e.id, score, lean)
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
        if let Some(alarm) = pb.rate.add(t) {
            out.push(
                Deviation::new("rate", &subject.id, t, &e.id, 30.0, Lean::Neutral)
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
                    Deviation::new("shift", &subject.id, t, &e.id, 20.0, Lean::Neutral)
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
        {}
        if warm && history >= warmup && pb.hours.total() >= 200 && pb.hours.share_near(t) < 0.002 {
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
        let network = facts.network.as_deref();
        let ua = facts.ua();
        // A network or tool seen only a couple of times is not yet part of
        // the habit: an intruder's second call from new infrastructure is
        // as unfamiliar as its first.
        let unsettled = |f: u8, v: &str, top: &crate::sketch::TopK| {
            let k = key(f, v);
            !pb.seen.contains(k) || top.weight(k, t) < SETTLED
        };
        let net_new = network.as_ref().map(|n| unsettled(feature::NETWORK, n, &pb.networks));
        let ua_new = ua.as_ref().map(|u| unsettled(feature::USER_AGENT, u, &pb.user_agents));
        let context_novel = net_new == Some(true) || ua_new == Some(true);
        let context_known = net_new == Some(false) && ua_new != Some(true);

        let mut features: Vec<(u8, &str)> = vec![(feature::ACTION, action)];
        if let Some(n) = network {
            features.push((feature::NETWORK, n));
        }
        if let Some(u) = ua {
            features.push((feature::USER_AGENT, u));
        }
        if let Some(r) = &e.context.region {
            features.push((feature::REGION, r));
        }
        for r in e.resources.iter().take(3) {
            features.push((feature::RESOURCE, &r.id));
        }
        let mut novel = 0;
        for (f, value) in features {
            let k = key(f, value);
            if pb.seen.contains(k) {
                continue;
            }
            novel += 1;
            if novel > 6 {
                break;
            }
            let mut score = match f {
                feature::ACTION if traits.sensitive() && !failed => 35.0,
                feature::ACTION => 8.0,
                feature::NETWORK => 20.0,
                feature::USER_AGENT => 12.0,
                feature::REGION => 10.0,
                feature::RESOURCE if traits.has(Traits::SECRET_READ) || traits.has(Traits::DATA_READ) => 6.0,
                _ => 3.0,
            };
            if matches!(f, feature::ACTION | feature::RESOURCE) {
                if context_novel {
                    score *= 1.5;
                } else if context_known {
                    score *= 0.5;
                }
            }
            let peer_has: Vec<&str> = peers
                .iter()
                .filter(|p| self.peers.get(*p).is_some_and(|pb| pb.members >= 2 && pb.seen.contains(k)))
                .map(String::as_str)
                .collect();
            let mut d = Deviation::new(
                if f == feature::ACTION { "novelty" } else { "context" },
                &subject.id,
                t,
                &e.id,
                score,
                Lean::Neutral,
            )
            .detail(format!("first {} {value}", feature::name(f)))
            .baseline("principal", feature::name(f), value, expected("never seen"), history);
            if f == feature::ACTION {
                d.techniques = actions::techniques(e, traits).into_iter().map(str::to_string).collect();
            }
            if !peer_has.is_empty() {
                d.score *= 0.5;
                d.detail.push_str(&format!(" (its peer group {} does the same)", peer_has[0]));
                if context_known {
                    d.support.push((format!("peer group {} already does {value}", peer_has[0]), None));
                }
            } else if !peers.is_empty() && f == feature::ACTION {
                d.detail.push_str(" (new to its peer groups too)");
                d.score *= 1.2;
            }
            // A change authorises new routine, not a first secret read or
            // outbound transfer: those stand on their own evidence.
            if !context_novel && !traits.sensitive() {
                d.support.extend(support.iter().map(|(w, ev)| (w.clone(), Some(ev.clone()))));
            }
            d.score *= confidence;
            out.push(d);
        }
        // Someone with habits, suddenly on new infrastructure with a new
        // tool, doing something sensitive it never did: how a stolen
        // credential looks from the inside.
        let truly_new = |f: u8, v: Option<&str>| v.is_some_and(|v| !pb.seen.contains(key(f, v)));
        if settled
            && traits.sensitive()
            && !failed
            && !pb.seen.contains(key(feature::ACTION, action))
            && truly_new(feature::NETWORK, network)
            && truly_new(feature::USER_AGENT, ua)
        {
            out.push(
                Deviation::new("unfamiliar_access", &subject.id, t, &e.id, 45.0, Lean::Malicious)
                    .detail(format!(
                        "{action}, never done before, from a new network ({}) with a new tool ({})",
                        network.unwrap_or("?"),
                        ua.unwrap_or("?")
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
        // A sensitive action it never took, tried and refused: probing.
        if settled && traits.sensitive() && failed && !pb.seen.contains(key(feature::ACTION, action)) {
            out.push(
                Deviation::new("denied_attempt", &subject.id, t, &e.id, 20.0, Lean::Malicious)
                    .detail(format!("tried {action}, which it never did before, and was refused"))
                    .baseline("principal", "action", action, expected("never attempted"), history),
            );
        }
        // An action nobody in the account has ever taken; the account's
        // long history gives confidence a new principal cannot.
        if let Some(a) = organisation_new {
            out.push(
                Deviation::new(
                    "organisation_novelty",
                    &subject.id,
                    t,
                    &e.id,
                    if failed { 15.0 } else { 25.0 },
                    Lean::Neutral,
                )
                .detail(format!("{action}: the first time anyone in account {a} does it"))
                .baseline("account", "action", action, "never taken in the account".into(), history),
            );
        }
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
            let peer = peers.iter().any(|p| self.peers.get(p).is_some_and(|pb| pb.members >= 2 && pb.seen.contains(k)));
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
        for c in &e.changes {
            match c {
                TrustChange::Assert { fact: Fact::Trust { role, document } } => {
                    let role_account = role.split(':').nth(4).unwrap_or("");
                    let outsiders: Vec<String> = document
                        .statements
                        .iter()
                        .filter_map(|s| s.principals.as_ref())
                        .flat_map(|p| p.aws.iter())
                        .filter_map(|a| {
                            let acct = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
                                a.as_str()
                            } else {
                                a.split(':').nth(4).unwrap_or("")
                            };
                            (acct != role_account && !acct.is_empty() && !self.detect.accounts.contains_key(acct))
                                .then(|| acct.to_string())
                        })
                        .collect();
                    let (score, detail) = if outsiders.is_empty() {
                        (25.0, format!("changed who may assume {role}"))
                    } else {
                        (70.0, format!("let account(s) never seen here ({}) assume {role}", outsiders.join(", ")))
                    };
                    let mut d = Deviation::new("trust_edge", &subject.id, t, &e.id, score, Lean::Trust)
                        .detail(detail)
                        .techniques(&["T1098", "T1199"]);
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
                            .detail(format!("{agent} acted for {person}, whom its registration does not list"));
                        d.path = vec![format!("{agent} →[delegation] {person}")];
                        out.push(d);
                    }
                }
                _ => {}
            }
        }
        // A role assumed by this subject for the first time.
        if !failed
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
            let known_place = network_of(e).is_some_and(|n| pb.seen.contains(key(feature::NETWORK, &n)));
            // A new role after a change that grants it, from a usual place, is
            // part of that change; otherwise it is a new trust path in use.
            let lean = if !support.is_empty() && known_place { Lean::Neutral } else { Lean::Trust };
            // From somewhere new with nothing authorising it: a new path in use by someone new.
            let score = match (cross, support.is_empty() && !known_place) {
                (true, true) => 45.0,
                (false, true) | (true, false) => 35.0,
                (false, false) => 25.0,
            };
            let mut d = Deviation::new("trust_edge", &subject.id, t, &e.id, score, lean)
                .detail(format!(
                    "assumed {} for the first time{}",
                    role.id,
                    if cross { ", across accounts" } else { "" }
                ))
                .techniques(&["T1078.004"]);
            d.path = vec![format!("{} →[assumption] {}", subject.id, role.id)];
            d.support = support;
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
                Deviation::new("privilege_change", &subject.id, t, &e.id, 70.0, Lean::Malicious)
                    .detail(format!("created credentials ({op}) for another identity, {u}"))
                    .techniques(&["T1098.001"]),
            );
        }
        if op == "CreateUser" {
            out.push(
                Deviation::new("privilege_change", &subject.id, t, &e.id, 40.0, Lean::Malicious)
                    .detail(format!("created a user{}", target_user.map(|u| format!(" {u}")).unwrap_or_default()))
                    .techniques(&["T1136.003"]),
            );
        }
        for c in &e.changes {
            let TrustChange::Assert { fact } = c else { continue };
            let (holder, what, admin) = match fact {
                Fact::Attached { holder, policy } => (holder, policy.clone(), is_admin_policy(policy)),
                Fact::Policy { policy, document } => {
                    let Some(holder) = policy.split_once("#inline/").map(|(h, _)| h) else { continue };
                    let admin = document.statements.iter().any(|s| {
                        s.effect == tenet_model::Effect::Allow
                            && matches!(&s.actions, tenet_model::Matcher::Any)
                            && matches!(&s.resources, tenet_model::Matcher::Any)
                            || matches!(&s.actions, tenet_model::Matcher::Only(a) if a.iter().any(|x| x == "*"))
                    });
                    // The inline policy's holder is the part before `#inline/`.
                    let holder_owned = holder.to_string();
                    out.extend(self.grant(e, subject, &holder_owned, policy, admin, &own));
                    continue;
                }
                _ => continue,
            };
            out.extend(self.grant(e, subject, holder, &what, admin, &own));
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
        let to_self = own.contains(&holder);
        if admin {
            return vec![
                Deviation::new("privilege_change", &subject.id, t, &e.id, 70.0, Lean::Malicious)
                    .detail(format!("granted administrator access ({what}) to {holder}"))
                    .techniques(&["T1098"]),
            ];
        }
        if to_self {
            return vec![
                Deviation::new("privilege_change", &subject.id, t, &e.id, 55.0, Lean::Malicious)
                    .detail(format!("granted itself {what}"))
                    .techniques(&["T1098"]),
            ];
        }
        // A grant to someone else: drift on the receiving identity, unless
        // it is a new identity created in the same breath (that is the
        // creation's story, already told).
        let mut d = Deviation::new("privilege_change", holder, t, &e.id, 30.0, Lean::Drift)
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
        let agent = subject.kind == SubjectKind::Agent;
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
            let mut d = Deviation::new(
                "sequence",
                &subject.id,
                t,
                &e.id,
                if agent { 80.0 } else { 85.0 },
                if agent { Lean::Workflow } else { Lean::Malicious },
            )
            .detail(format!("read a secret, then {what} within {} minutes", (t - at) / MINUTE))
            .techniques(&["T1555", "T1567"]);
            d.event_ids.insert(0, EventId::from(read.as_str()));
            out.push(d);
        }
        if traits.has(Traits::SECRET_READ) {
            self.detect.secret_reads.insert(subject.id.clone(), (t, e.id.to_string()));
        }
        if traits.has(Traits::SHARING) {
            out.push(
                Deviation::new("sharing", &subject.id, t, &e.id, 55.0, Lean::Malicious)
                    .detail(format!("shared a snapshot or image ({})", e.action.qualified()))
                    .techniques(&["T1537"]),
            );
        }
        let Some(account) = account else { return };
        if traits.has(Traits::LOGGING_OFF) {
            out.push(
                Deviation::new("logging_off", &subject.id, t, &e.id, 70.0, Lean::Malicious)
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
            let mut d = Deviation::new("sequence", &subject.id, t, &e.id, 85.0, Lean::Malicious)
                .detail("read data shortly after turning logging down")
                .techniques(&["T1562.008", "T1530"]);
            d.event_ids.insert(0, EventId::from(off.as_str()));
            out.push(d);
        }
    }

    /// Repeated denials, and success right after them.
    fn denials(&mut self, e: &Event, subject: &Subject, failed: bool, action: &str, out: &mut Vec<Deviation>) {
        let t = e.time.unix_nanos();
        let f = self.detect.failures.entry(subject.id.clone()).or_default();
        if t - f.first > 15 * MINUTE {
            *f = Failures { first: t, ..Default::default() };
        }
        if failed {
            f.count += 1;
            if f.ids.len() < 10 {
                f.ids.push(e.id.to_string());
                f.actions.push(action.to_string());
            }
            if f.count == 3 && !f.reported {
                f.reported = true;
                let mut d = Deviation::new("failure", &subject.id, t, &e.id, 35.0, Lean::Malicious)
                    .detail(format!("denied {} times within minutes ({})", f.count, f.actions.join(", ")))
                    .techniques(&["T1087.004", "T1580"]);
                d.event_ids = f.ids.iter().map(|i| EventId::from(i.as_str())).collect();
                out.push(d);
            }
        } else if f.count >= 2 && f.actions.iter().any(|a| a == action) {
            let mut d = Deviation::new("failure_then_success", &subject.id, t, &e.id, 45.0, Lean::Malicious)
                .detail(format!("{action} succeeded after {} denials", f.count));
            d.event_ids.extend(f.ids.iter().map(|i| EventId::from(i.as_str())));
            f.count = 0;
            out.push(d);
        }
    }

    /// Agent workflows: transitions between tool calls against what the
    /// agent's type usually does, and the risky ones (outside content then
    /// a secret; a secret then sending out).
    fn workflow(&mut self, e: &Event, subject: &Subject, traits: Traits, out: &mut Vec<Deviation>) {
        let (Some(trace), true) = (&e.trace, subject.kind == SubjectKind::Agent) else { return };
        let t = e.time.unix_nanos();
        let svc = e.action.service.as_str();
        if svc != "gen_ai.tool" && svc != "mcp" {
            return;
        }
        let peer = self
            .peer_keys(subject)
            .into_iter()
            .find(|g| g.contains("agents:group/"))
            .unwrap_or_else(|| subject.id.clone());
        let tr = self.detect.traces.entry(trace.trace_id.clone()).or_default();
        tr.at = t;
        if traits.has(Traits::SECRET_READ)
            && let Some(inbound) = tr.inbound.clone()
        {
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 60.0, Lean::Workflow)
                .detail(format!("read a secret ({}) after taking in outside content", e.action.operation))
                .techniques(&["T1555"]);
            d.event_ids.insert(0, EventId::from(inbound.as_str()));
            out.push(d);
        }
        if traits.has(Traits::OUTBOUND)
            && let Some(secret) = tr.secret.clone()
        {
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 80.0, Lean::Workflow)
                .detail(format!("sent data outside ({}) after reading a secret in the same task", e.action.operation))
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
            let mut d = Deviation::new("workflow", &subject.id, t, &e.id, 10.0, Lean::Neutral)
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
        let (call, this) = if e.action.service == "gen_ai.tool" && subject.kind == SubjectKind::Agent {
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

    /// Learns the event into the subject's baseline and its peers'.
    fn learn(&mut self, e: &Event, subject: &Subject, facts: &Facts, failed: bool, action: &str) {
        let t = e.time.unix_nanos();
        if subject.kind == SubjectKind::Agent {
            self.identity.note_agent_servers(&subject.id, e);
        }
        let network = facts.network.as_deref();
        let ua = facts.ua();
        let mut keys = vec![key(feature::ACTION, action), key(feature::SERVICE, &e.action.service)];
        if let Some(n) = network {
            keys.push(key(feature::NETWORK, n));
        }
        if let Some(u) = ua {
            keys.push(key(feature::USER_AGENT, u));
        }
        if let Some(r) = &e.context.region {
            keys.push(key(feature::REGION, r));
        }
        for r in e.resources.iter().take(3) {
            keys.push(key(feature::RESOURCE, &r.id));
            keys.push(key(feature::RESOURCE_TYPE, &r.kind));
            keys.push(action_on_type(action, &r.kind));
        }
        if e.action.service == "sts"
            && !failed
            && let Some(role) = e.resources.iter().find(|r| r.kind == "AWS::IAM::Role")
        {
            keys.push(key(feature::COUNTERPART, &role.id));
        }
        if let Some(a) = &facts.account {
            let h = slot(&mut self.detect.account_actions, a, || AccountActions {
                first_seen: t,
                ..AccountActions::default()
            });
            h.events += 1;
            h.actions.insert(key(feature::ACTION, action));
        }
        let pb = slot(&mut self.principals, &subject.id, || PrincipalBaseline::new(t));
        pb.events += 1;
        pb.last_seen = pb.last_seen.max(t);
        for &k in &keys {
            pb.seen.insert(k);
        }
        pb.observe_action(t, action);
        if let Some(n) = network {
            pb.networks.add(key(feature::NETWORK, n), t);
        }
        if let Some(u) = ua {
            pb.user_agents.add(key(feature::USER_AGENT, u), t);
        }
        pb.hours.add(t);
        pb.observe_outcome(t, failed);
        let member = key(99, &subject.id);
        for p in &facts.peers {
            let peer = slot(&mut self.peers, p, Default::default);
            peer.events += 1;
            if peer.seen.insert(member) {
                peer.members += 1;
            }
            for &k in &keys {
                peer.seen.insert(k);
            }
        }
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
    }
}
