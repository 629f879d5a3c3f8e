//! Questions the graph answers: who can, how far can, what changed, what
//! goes unused. All are asked of a [`View`], i.e. as of a time.
//!
//! Policy semantics: a principal may perform an action on a resource when a
//! statement of an identity it can act as allows it, no deny statement of
//! that identity (or its groups) covers it, and the identity's permissions
//! boundary, if any, allows it too. Conditions are never evaluated (the
//! request context is unknown): a conditional allow makes the path
//! conditional; a conditional deny makes it conditional too, never silently
//! allowed or denied. A principal is conditional only when all its paths are.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use tenet_model::{Effect, Matcher, NodeKind, Statement};

use crate::graph::{Payload, TrustGraph};
use crate::intern::{Id, NONE};
use crate::view::{RbacRoleRef, StmtRef, View, account_root};

/// Paths are searched this deep: role chains longer than this do not exist
/// in practice and cycles must end.
const MAX_DEPTH: usize = 8;
/// Paths kept per principal in an answer.
const MAX_PATHS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub from: String,
    pub to: String,
    /// membership, assumption, grant, binding, delegation, tool, same-as …
    pub edge: String,
    pub reason: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conditional: bool,
}

/// One answer of `who-can`.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub principal: String,
    pub kind: String,
    pub paths: Vec<Vec<Hop>>,
    pub conditional: bool,
}

/// A shared step, as cached between queries on one view.
pub(crate) type StepRef = Step;

#[derive(Clone)]
pub(crate) struct Step {
    from: Id,
    to: Id,
    edge: &'static str,
    reason: String,
    conditional: bool,
}

fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Any => "*".into(),
        Matcher::Only(v) => v.join(","),
        Matcher::Not(v) => format!("anything but {}", v.join(",")),
    }
}

fn stmt_label(s: &Statement, index: u16) -> String {
    s.sid.clone().unwrap_or_else(|| format!("#{index}"))
}

impl<'g> View<'g> {
    fn hop(&self, s: &Step) -> Hop {
        Hop {
            from: self.name(s.from).to_string(),
            to: self.name(s.to).to_string(),
            edge: s.edge.to_string(),
            reason: s.reason.clone(),
            conditional: s.conditional,
        }
    }

    fn is_principal(&self, id: Id) -> bool {
        self.kind(id).is_principal()
    }

    /// Whether `identity`'s own and group policies deny the request
    /// (`Some(true)` unconditionally, `Some(false)` only under conditions),
    /// and whether its boundary lets it through.
    fn restrictions(&self, identity: Id, action: &str, resource: &str) -> Restriction {
        let mut r = Restriction::default();
        for s in self.denies_of(identity).iter() {
            if s.covers(action, resource) {
                if s.conditions.is_empty() {
                    r.denied = true;
                } else {
                    r.conditional = true;
                }
            }
        }
        if let Some(b) = self.boundary.get(&identity) {
            let allows = self.documents.get(b).map_or(Vec::new(), |d| {
                d.statements
                    .iter()
                    .filter(|s| s.effect == Effect::Allow && s.covers(action, resource))
                    .collect::<Vec<_>>()
            });
            let denies = self.documents.get(b).is_some_and(|d| {
                d.statements
                    .iter()
                    .any(|s| s.effect == Effect::Deny && s.covers(action, resource) && s.conditions.is_empty())
            });
            if allows.is_empty() || denies {
                r.denied = true;
            } else if allows.iter().all(|s| !s.conditions.is_empty()) {
                r.conditional = true;
            }
            r.boundary = Some(*b);
        }
        r
    }

    /// The deny statements of an identity's own and group policies.
    fn denies_of(&self, identity: Id) -> std::rc::Rc<Vec<&'g Statement>> {
        if let Some(d) = self.memo.denies.borrow().get(&identity) {
            return d.clone();
        }
        let mut out = Vec::new();
        for (policy, _) in self.policies_of(identity) {
            if let Some(doc) = self.documents.get(&policy) {
                out.extend(doc.statements.iter().filter(|s| s.effect == Effect::Deny));
            }
        }
        let out = std::rc::Rc::new(out);
        self.memo.denies.borrow_mut().insert(identity, out.clone());
        out
    }

    /// Every principal that can act as `target`, with the shortest path from
    /// it to `target` (the target itself, with no hops, if it is a principal).
    fn who_becomes(&self, target: Id) -> std::rc::Rc<Vec<(Id, Vec<Step>)>> {
        if let Some(w) = self.memo.becomes.borrow().get(&target) {
            return w.clone();
        }
        let out = std::rc::Rc::new(self.who_becomes_uncached(target));
        self.memo.becomes.borrow_mut().insert(target, out.clone());
        out
    }

    fn who_becomes_uncached(&self, target: Id) -> Vec<(Id, Vec<Step>)> {
        let mut best: FxHashMap<Id, Vec<Step>> = FxHashMap::default();
        best.insert(target, Vec::new());
        let mut queue = VecDeque::from([target]);
        while let Some(x) = queue.pop_front() {
            let path = best[&x].clone();
            if path.len() >= MAX_DEPTH {
                continue;
            }
            for step in self.predecessors(x) {
                if best.contains_key(&step.from) {
                    continue;
                }
                let mut p = Vec::with_capacity(path.len() + 1);
                p.push(step.clone());
                p.extend(path.iter().cloned());
                best.insert(step.from, p);
                queue.push_back(step.from);
            }
        }
        best.into_iter().filter(|(id, _)| self.is_principal(*id)).collect()
    }

    /// The ways to become `x`: assuming it, running its tool, being served
    /// by an agent that acts for it, being the same identity.
    fn predecessors(&self, x: Id) -> Vec<Step> {
        let mut out = Vec::new();
        let name = self.name(x);
        if self.kind(x) == NodeKind::Role {
            if let Some(doc) = self.trust.get(&x) {
                for s in &doc.statements {
                    if s.effect != Effect::Allow {
                        continue;
                    }
                    let Some(p) = &s.principals else { continue };
                    if p.not {
                        continue;
                    }
                    let conditional = !s.conditions.is_empty();
                    for entry in &p.aws {
                        if let Some(acct) = account_root(entry) {
                            let root = format!("arn:aws:iam::{acct}:root");
                            if let Some(r) = self.id(&root) {
                                out.push(Step {
                                    from: r,
                                    to: x,
                                    edge: "assumption",
                                    reason: format!("trust policy of {name} trusts account {acct}"),
                                    conditional,
                                });
                            }
                            // Principals of that account whose own policies allow the assumption.
                            for (who, why, c) in self.allowed_to_assume(x, &acct) {
                                let reason = format!("trust policy of {name} trusts account {acct}; {why}");
                                out.push(Step {
                                    from: who,
                                    to: x,
                                    edge: "assumption",
                                    reason,
                                    conditional: conditional || c,
                                });
                            }
                        } else if let Some(who) = self.id(entry) {
                            out.push(Step {
                                from: who,
                                to: x,
                                edge: "assumption",
                                reason: format!("trust policy of {name} names {entry}"),
                                conditional,
                            });
                        }
                    }
                    for svc in &p.service {
                        if let Some(who) = self.id(&format!("aws:service/{svc}")) {
                            out.push(Step {
                                from: who,
                                to: x,
                                edge: "assumption",
                                reason: format!("trust policy of {name} trusts service {svc}"),
                                conditional,
                            });
                        }
                    }
                    for fed in &p.federated {
                        if let Some(who) = self.id(fed) {
                            out.push(Step {
                                from: who,
                                to: x,
                                edge: "assumption",
                                reason: format!("trust policy of {name} trusts {fed}"),
                                conditional,
                            });
                        }
                    }
                }
            }
            for &who in self.assumed_by.get(&x).into_iter().flatten() {
                out.push(Step {
                    from: who,
                    to: x,
                    edge: "assumption",
                    reason: format!("observed assuming {name}"),
                    conditional: false,
                });
            }
        }
        for &(agent, tool) in self.tool_users.get(&x).into_iter().flatten() {
            out.push(Step {
                from: agent,
                to: x,
                edge: "tool",
                reason: format!("tool {} runs as {name}", self.name(tool)),
                conditional: false,
            });
        }
        for &agent in self.served_by.get(&x).into_iter().flatten() {
            out.push(Step {
                from: agent,
                to: x,
                edge: "delegation",
                reason: format!("{} acts for {name}", self.name(agent)),
                conditional: false,
            });
        }
        for &alias in self.same_as.get(&x).into_iter().flatten() {
            out.push(Step {
                from: alias,
                to: x,
                edge: "same-as",
                reason: "the same identity".into(),
                conditional: false,
            });
        }
        out
    }

    /// Identities, by account, holding an allow statement that admits
    /// `sts:AssumeRole` on something.
    fn assumers(&self) -> &FxHashMap<String, Vec<(Id, StmtRef)>> {
        self.memo.assumers.get_or_init(|| {
            let mut out: FxHashMap<String, Vec<(Id, StmtRef)>> = FxHashMap::default();
            for r in self.candidates("sts:AssumeRole") {
                let Some(s) = self.statement(r) else { continue };
                if !s.actions.admits("sts:AssumeRole", true) {
                    continue;
                }
                for &holder in self.holders.get(&r.policy).into_iter().flatten() {
                    let identities: Vec<Id> = if self.kind(holder) == NodeKind::Group {
                        self.members_of(holder).into_iter().map(|(m, _)| m).collect()
                    } else {
                        vec![holder]
                    };
                    for i in identities {
                        if let Some(acct) = self.name(i).strip_prefix("arn:aws:").and_then(|x| x.split(':').nth(2)) {
                            out.entry(acct.to_string()).or_default().push((i, r));
                        }
                    }
                }
            }
            out
        })
    }

    /// Identities of `account` whose policies allow `sts:AssumeRole` on `role`.
    fn allowed_to_assume(&self, role: Id, account: &str) -> Vec<(Id, String, bool)> {
        let arn = self.name(role);
        let mut out: Vec<(Id, String, bool)> = Vec::new();
        for &(i, r) in self.assumers().get(account).into_iter().flatten() {
            let Some(s) = self.statement(r) else { continue };
            if !s.covers("sts:AssumeRole", arn) || out.iter().any(|(o, _, _)| *o == i) {
                continue;
            }
            if !self.restrictions(i, "sts:AssumeRole", arn).denied {
                let why = format!(
                    "{} may assume {arn}: statement {} of {}",
                    self.name(i),
                    stmt_label(s, r.index),
                    self.name(r.policy)
                );
                out.push((i, why, !s.conditions.is_empty()));
            }
        }
        out
    }

    /// Allow statements that could cover `action`, by its service.
    fn candidates(&self, action: &str) -> Vec<StmtRef> {
        let svc = action.split_once(':').map_or("*".to_string(), |(s, _)| s.to_ascii_lowercase());
        let mut out: Vec<StmtRef> = self.allow_index.get(&svc).into_iter().flatten().copied().collect();
        if svc != "*" {
            out.extend(self.allow_index.get("*").into_iter().flatten().copied());
        }
        out
    }

    /// Every principal able to perform `action` on `resource`, with paths.
    /// `k8s:<verb>` actions on `k8s:<group>/<resource>/<namespace>/<name>`
    /// resources are answered from RBAC; everything else from IAM.
    pub fn who_can(&self, action: &str, resource: &str) -> Vec<Principal> {
        let mut found: BTreeMap<Id, Vec<(Vec<Step>, bool)>> = BTreeMap::new();
        let grants = match action.strip_prefix("k8s:") {
            Some(verb) => self.rbac_grants(verb, resource),
            None => self.iam_grants(action, resource),
        };
        for (identity, tail, conditional) in grants {
            for (principal, head) in self.who_becomes(identity).iter() {
                let principal = *principal;
                let mut path = head.clone();
                path.extend(tail.iter().cloned());
                let cond = conditional || path.iter().any(|s| s.conditional);
                let entry = found.entry(principal).or_default();
                if entry.len() < MAX_PATHS {
                    entry.push((path, cond));
                }
            }
        }
        let mut out: Vec<Principal> = found
            .into_iter()
            .map(|(id, paths)| {
                let conditional = paths.iter().all(|(_, c)| *c);
                let mut paths: Vec<Vec<Hop>> =
                    paths.into_iter().map(|(p, _)| p.iter().map(|s| self.hop(s)).collect()).collect();
                paths.sort_by_key(|p| p.len());
                paths.dedup();
                Principal {
                    principal: self.name(id).to_string(),
                    kind: self.kind(id).as_str().to_string(),
                    paths,
                    conditional,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.conditional, a.paths.first().map_or(0, |p| p.len()), &a.principal).cmp(&(
                b.conditional,
                b.paths.first().map_or(0, |p| p.len()),
                &b.principal,
            ))
        });
        out
    }

    /// Identities granted `action` on `resource` by IAM, each with the hops
    /// from it to the granting statement and whether that grant is conditional.
    fn iam_grants(&self, action: &str, resource: &str) -> Vec<(Id, Vec<Step>, bool)> {
        let mut out = Vec::new();
        for r in self.candidates(action) {
            let Some(s) = self.statement(r) else { continue };
            if !s.covers(action, resource) {
                continue;
            }
            let grant_reason = format!(
                "statement {} of {}: Allow {} on {}{}",
                stmt_label(s, r.index),
                self.name(r.policy),
                describe(&s.actions),
                describe(&s.resources),
                if s.conditions.is_empty() { String::new() } else { " when its conditions hold".to_string() }
            );
            for &holder in self.holders.get(&r.policy).into_iter().flatten() {
                let via_group = self.kind(holder) == NodeKind::Group;
                let identities: Vec<(Id, Vec<Id>)> =
                    if via_group { self.members_of(holder) } else { vec![(holder, vec![])] };
                for (identity, groups) in identities {
                    let restriction = self.restrictions(identity, action, resource);
                    if restriction.denied {
                        continue;
                    }
                    let mut tail = Vec::new();
                    let mut from = identity;
                    for g in groups {
                        tail.push(Step {
                            from,
                            to: g,
                            edge: "membership",
                            reason: format!("member of {}", self.name(g)),
                            conditional: false,
                        });
                        from = g;
                    }
                    tail.push(Step {
                        from,
                        to: r.policy,
                        edge: "grant",
                        reason: grant_reason.clone(),
                        conditional: !s.conditions.is_empty(),
                    });
                    if let Some(b) = restriction.boundary {
                        tail.push(Step {
                            from: identity,
                            to: b,
                            edge: "boundary",
                            reason: format!("within the permissions boundary {}", self.name(b)),
                            conditional: restriction.conditional,
                        });
                    }
                    out.push((identity, tail, !s.conditions.is_empty() || restriction.conditional));
                }
            }
        }
        out
    }

    /// The rules of an RBAC role, its own and those it aggregates.
    fn rbac_rules(&self, role: Id) -> Vec<&'g tenet_model::RbacRule> {
        let Some(r) = self.rbac_roles.get(&role) else { return Vec::new() };
        let mut rules: Vec<&tenet_model::RbacRule> = r.rules.iter().collect();
        if !r.aggregate.is_empty() {
            for (other, o) in &self.rbac_roles {
                if *other != role && r.aggregate.iter().any(|sel| selects(sel, o)) {
                    rules.extend(o.rules.iter());
                }
            }
        }
        rules
    }

    /// Identities granted `verb` on a Kubernetes resource id by RBAC.
    fn rbac_grants(&self, verb: &str, resource: &str) -> Vec<(Id, Vec<Step>, bool)> {
        let Some((group, kind, ns, name)) = parse_k8s(resource) else { return Vec::new() };
        let mut out = Vec::new();
        for (&role, r) in &self.rbac_roles {
            let Some(rule) = self.rbac_rules(role).into_iter().find(|rule| rule_covers(rule, verb, group, kind, name))
            else {
                continue;
            };
            for &(subject, binding_ns) in self.bindings_by_role.get(&role).into_iter().flatten() {
                let binding_ns = (binding_ns != NONE).then(|| self.name(binding_ns));
                // A RoleBinding grants in its namespace; a ClusterRoleBinding everywhere.
                if let Some(bns) = binding_ns
                    && Some(bns) != ns
                {
                    continue;
                }
                if r.namespace.is_some() && r.namespace != ns {
                    continue;
                }
                let reason = format!(
                    "rule of {}: {} {} in {}",
                    self.name(role),
                    rule.verbs.join(","),
                    rule.resources.join(","),
                    if rule.api_groups.is_empty() { "core".to_string() } else { rule.api_groups.join(",") }
                );
                let bind = Step {
                    from: subject,
                    to: role,
                    edge: "binding",
                    reason: match binding_ns {
                        Some(n) => format!("RoleBinding in namespace {n}"),
                        None => "ClusterRoleBinding".into(),
                    },
                    conditional: false,
                };
                let grant = Step { from: role, to: role, edge: "grant", reason, conditional: false };
                if self.kind(subject) == NodeKind::Group {
                    for (m, groups) in self.members_of(subject) {
                        let mut tail = Vec::new();
                        let mut from = m;
                        for g in groups {
                            tail.push(Step {
                                from,
                                to: g,
                                edge: "membership",
                                reason: format!("member of {}", self.name(g)),
                                conditional: false,
                            });
                            from = g;
                        }
                        tail.push(bind.clone());
                        tail.push(grant.clone());
                        out.push((m, tail, false));
                    }
                } else {
                    out.push((subject, vec![bind, grant], false));
                }
            }
        }
        out
    }
}

#[derive(Default)]
struct Restriction {
    denied: bool,
    conditional: bool,
    boundary: Option<Id>,
}

fn selects(selector: &[(String, String)], role: &RbacRoleRef<'_>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| role.labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

/// `k8s:<group>/<resource>/<namespace>/<name>` → its parts (`core` is the empty group).
fn parse_k8s(id: &str) -> Option<(&str, &str, Option<&str>, Option<&str>)> {
    let rest = id.strip_prefix("k8s:")?;
    let mut parts = rest.splitn(4, '/');
    let group = parts.next()?;
    let resource = parts.next()?;
    let ns = parts.next().filter(|s| !s.is_empty());
    let name = parts.next().filter(|s| !s.is_empty());
    Some((if group == "core" { "" } else { group }, resource, ns, name))
}

fn rule_covers(rule: &tenet_model::RbacRule, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
    let any = |v: &[String], x: &str| v.iter().any(|s| s == "*" || s == x);
    let groups_ok = rule.api_groups.iter().any(|g| g == "*" || g == group);
    let resource_ok = rule
        .resources
        .iter()
        .any(|r| r == "*" || r == resource || r.split('/').next() == Some(resource) && !r.contains('/'));
    let name_ok = rule.resource_names.is_empty() || name.is_some_and(|n| rule.resource_names.iter().any(|r| r == n));
    any(&rule.verbs, verb) && groups_ok && resource_ok && name_ok
}

// ----- reach -----

/// One grant a principal can exercise, and how it gets there.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// The identity whose policy grants it (the principal itself, a role it
    /// assumes, an agent's tool identity, a person an agent acts for).
    pub identity: String,
    pub via: Vec<Hop>,
    pub source: String,
    pub effect: &'static str,
    pub actions: String,
    pub resources: String,
    pub conditional: bool,
    /// Deny statements of the identity that carve pieces out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    pub principal: String,
    pub kind: String,
    /// Identities the principal can act as, each with its path.
    pub identities: Vec<(String, Vec<Hop>)>,
    pub grants: Vec<Grant>,
}

impl<'g> View<'g> {
    /// The ways `x` can go on to act as someone or something else.
    fn successors(&self, x: Id) -> Vec<Step> {
        let mut out = Vec::new();
        let name = self.name(x);
        for &alias in self.same_as.get(&x).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: alias,
                edge: "same-as",
                reason: "the same identity".into(),
                conditional: false,
            });
        }
        // Roles whose trust names x, or x's account when x may assume them.
        for &(role, c) in self.trust_index.by_arn.get(name).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: role,
                edge: "assumption",
                reason: format!("trust policy of {} names {name}", self.name(role)),
                conditional: c,
            });
        }
        if let Some(acct) = name.strip_prefix("arn:aws:").and_then(|r| r.split(':').nth(2)).filter(|a| !a.is_empty()) {
            for &(role, c) in self.trust_index.by_account.get(acct).into_iter().flatten() {
                let arn = self.name(role);
                if name.ends_with(":root") {
                    out.push(Step {
                        from: x,
                        to: role,
                        edge: "assumption",
                        reason: format!("trust policy of {arn} trusts account {acct}"),
                        conditional: c,
                    });
                    continue;
                }
                let allowed = self.policies_of(x).into_iter().any(|(p, _)| {
                    self.documents.get(&p).is_some_and(|d| {
                        d.statements.iter().any(|s| s.effect == Effect::Allow && s.covers("sts:AssumeRole", arn))
                    })
                });
                if allowed && !self.restrictions(x, "sts:AssumeRole", arn).denied {
                    out.push(Step {
                        from: x,
                        to: role,
                        edge: "assumption",
                        reason: format!("trust policy of {arn} trusts account {acct}; {name} may assume it"),
                        conditional: c,
                    });
                }
            }
        }
        if let Some(svc) = name.strip_prefix("aws:service/") {
            for &(role, c) in self.trust_index.by_service.get(svc).into_iter().flatten() {
                out.push(Step {
                    from: x,
                    to: role,
                    edge: "assumption",
                    reason: format!("trust policy of {} trusts service {svc}", self.name(role)),
                    conditional: c,
                });
            }
        }
        for (role, who) in &self.assumed_by {
            if who.binary_search(&x).is_ok() {
                out.push(Step {
                    from: x,
                    to: *role,
                    edge: "assumption",
                    reason: format!("observed assuming {}", self.name(*role)),
                    conditional: false,
                });
            }
        }
        // Agents it owns or that act for it, and through them what they reach.
        for &agent in self.owns.get(&x).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: agent,
                edge: "ownership",
                reason: format!("{name} owns {}", self.name(agent)),
                conditional: false,
            });
        }
        for &agent in self.served_by.get(&x).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: agent,
                edge: "delegation",
                reason: format!("{} acts for {name}", self.name(agent)),
                conditional: false,
            });
        }
        for &(tool, identity) in self.tools.get(&x).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: identity,
                edge: "tool",
                reason: format!("tool {} runs as {}", self.name(tool), self.name(identity)),
                conditional: false,
            });
        }
        for &person in self.acts_for.get(&x).into_iter().flatten() {
            out.push(Step {
                from: x,
                to: person,
                edge: "delegation",
                reason: format!("{name} also acts for {}", self.name(person)),
                conditional: false,
            });
        }
        out
    }

    /// Everything `principal` can act as, with the shortest path to each.
    fn acts_as(&self, principal: Id) -> Vec<(Id, Vec<Step>)> {
        let mut best: FxHashMap<Id, Vec<Step>> = FxHashMap::default();
        best.insert(principal, Vec::new());
        let mut order = vec![principal];
        let mut queue = VecDeque::from([principal]);
        while let Some(x) = queue.pop_front() {
            let path = best[&x].clone();
            if path.len() >= MAX_DEPTH {
                continue;
            }
            for step in self.successors(x) {
                if best.contains_key(&step.to) {
                    continue;
                }
                let mut p = path.clone();
                p.push(step.clone());
                best.insert(step.to, p);
                order.push(step.to);
                queue.push_back(step.to);
            }
        }
        order.into_iter().map(|id| (id, best.remove(&id).unwrap_or_default())).collect()
    }

    /// The blast radius of `principal`: every identity it can act as and
    /// every grant those identities hold.
    pub fn reach(&self, principal: &str) -> Option<Reach> {
        let id = self.id(principal)?;
        let mut identities = Vec::new();
        let mut grants = Vec::new();
        for (identity, path) in self.acts_as(id) {
            let hops: Vec<Hop> = path.iter().map(|s| self.hop(s)).collect();
            if identity != id {
                identities.push((self.name(identity).to_string(), hops.clone()));
            }
            grants.extend(self.grants_of(identity, &hops));
        }
        Some(Reach { principal: principal.to_string(), kind: self.kind(id).as_str().to_string(), identities, grants })
    }

    /// The grants an identity holds directly (IAM and RBAC).
    pub(crate) fn grants_of(&self, identity: Id, via: &[Hop]) -> Vec<Grant> {
        let mut out = Vec::new();
        let name = self.name(identity);
        let denies: Vec<String> = self
            .policies_of(identity)
            .into_iter()
            .filter_map(|(p, _)| self.documents.get(&p).map(|d| (p, d)))
            .flat_map(|(p, d)| {
                d.statements.iter().enumerate().filter(|(_, s)| s.effect == Effect::Deny).map(move |(i, s)| {
                    format!(
                        "{} {} on {} ({} of {})",
                        if s.conditions.is_empty() { "deny" } else { "conditional deny" },
                        describe(&s.actions),
                        describe(&s.resources),
                        stmt_label(s, i as u16),
                        self.name(p)
                    )
                })
            })
            .collect();
        let boundary = self.boundary.get(&identity).map(|b| self.name(*b).to_string());
        for (policy, group) in self.policies_of(identity) {
            let Some(doc) = self.documents.get(&policy) else { continue };
            for (i, s) in doc.statements.iter().enumerate() {
                if s.effect != Effect::Allow {
                    continue;
                }
                let mut via = via.to_vec();
                if let Some(g) = group {
                    via.push(Hop {
                        from: name.to_string(),
                        to: self.name(g).to_string(),
                        edge: "membership".into(),
                        reason: format!("member of {}", self.name(g)),
                        conditional: false,
                    });
                }
                out.push(Grant {
                    identity: name.to_string(),
                    via,
                    source: format!("{} of {}", stmt_label(s, i as u16), self.name(policy)),
                    effect: "Allow",
                    actions: describe(&s.actions),
                    resources: describe(&s.resources),
                    conditional: !s.conditions.is_empty(),
                    except: denies.clone(),
                    boundary: boundary.clone(),
                });
            }
        }
        let mut subjects = vec![identity];
        subjects.extend(self.groups_of(identity));
        for subject in subjects {
            for &(role, ns) in self.bindings_by_subject.get(&subject).into_iter().flatten() {
                for rule in self.rbac_rules(role) {
                    out.push(Grant {
                        identity: name.to_string(),
                        via: via.to_vec(),
                        source: format!(
                            "{} via {}{}",
                            self.name(role),
                            if subject == identity { String::new() } else { format!("group {}, ", self.name(subject)) },
                            if ns == NONE {
                                "ClusterRoleBinding".to_string()
                            } else {
                                format!("RoleBinding in {}", self.name(ns))
                            }
                        ),
                        effect: "Allow",
                        actions: rule.verbs.iter().map(|v| format!("k8s:{v}")).collect::<Vec<_>>().join(","),
                        resources: format!(
                            "{}{}",
                            rule.resources.join(","),
                            if rule.resource_names.is_empty() {
                                String::new()
                            } else {
                                format!(" named {}", rule.resource_names.join(","))
                            }
                        ),
                        conditional: false,
                        except: vec![],
                        boundary: None,
                    });
                }
            }
        }
        out
    }
}

// ----- drift -----

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `added` or `removed`.
    pub change: &'static str,
    pub edge: String,
    pub from: String,
    pub to: String,
    pub at: String,
    pub provenance: String,
}

/// A path to a grant that exists at the end of the window and did not at its start.
#[derive(Debug, Clone, Serialize)]
pub struct Emerged {
    pub principal: String,
    pub kind: String,
    pub grant: Grant,
    /// How much the new access opens up: admin wildcards first.
    pub score: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub since: String,
    pub until: String,
    pub changes: Vec<Change>,
    pub emerged: Vec<Emerged>,
}

fn breadth(g: &Grant) -> u32 {
    let a = &g.actions;
    let mut score = if a == "*" || a.contains("anything but") {
        100
    } else if a.contains("iam:*") || a.contains("sts:*") || a.contains("k8s:*") || a.contains("*:*") {
        90
    } else if a.contains(":*") {
        60
    } else if a.contains("Put")
        || a.contains("Create")
        || a.contains("Delete")
        || a.contains("Attach")
        || a.contains("Update")
        || a.contains("k8s:create")
    {
        40
    } else {
        20
    };
    if g.resources == "*" {
        score += 20;
    }
    if g.conditional {
        score /= 2;
    }
    score
}

impl TrustGraph {
    /// What changed between `since` and `until` (nanoseconds), and the
    /// indirect access that newly emerged, ranked by what it opens up.
    pub fn drift(&self, since: i64, until: i64) -> Drift {
        let mut changes = Vec::new();
        let mut touched: FxHashSet<Id> = FxHashSet::default();
        for e in self.edges() {
            for v in e.versions() {
                let to = if e.key.b == NONE {
                    match self.payload(v.payload) {
                        Payload::Ref(r) => self.name(*r).to_string(),
                        _ => String::new(),
                    }
                } else {
                    self.name(e.key.b).to_string()
                };
                for (change, t) in [("added", v.from), ("removed", v.to)] {
                    if t > since && t <= until {
                        changes.push(Change {
                            change,
                            edge: e.key.kind.as_str().to_string(),
                            from: self.name(e.key.a).to_string(),
                            to: to.clone(),
                            at: tenet_model::Timestamp::from_unix_nanos(t).to_string(),
                            provenance: self.provenance(v.provenance).to_string(),
                        });
                        touched.insert(e.key.a);
                        if e.key.b != NONE {
                            touched.insert(e.key.b);
                        }
                    }
                }
            }
        }
        changes.sort_by(|a, b| a.at.cmp(&b.at).then(a.edge.cmp(&b.edge)));
        let (before, after) = (self.view(since), self.view(until));
        // Principals whose reach could have changed: those that can act as
        // something a change touched.
        let mut affected: FxHashSet<Id> = FxHashSet::default();
        for &t in &touched {
            for view in [&before, &after] {
                for (p, _) in view.who_becomes(t).iter() {
                    affected.insert(*p);
                }
            }
            if self.node_kind(t).is_principal() {
                affected.insert(t);
            }
            // A changed policy or group reaches its holders and members.
            for &h in after.holders.get(&t).into_iter().flatten().chain(after.members.get(&t).into_iter().flatten()) {
                for (p, _) in after.who_becomes(h).iter() {
                    affected.insert(*p);
                }
            }
        }
        let mut emerged = Vec::new();
        let key = |g: &Grant| format!("{}|{}|{}|{}", g.identity, g.source, g.actions, g.resources);
        let mut affected: Vec<Id> = affected.into_iter().collect();
        affected.sort_unstable();
        for p in affected {
            let name = self.name(p);
            let old: FxHashSet<String> =
                before.reach(name).map(|r| r.grants.iter().map(key).collect()).unwrap_or_default();
            let Some(new) = after.reach(name) else { continue };
            for g in new.grants {
                if !old.contains(&key(&g)) && !g.via.is_empty() {
                    emerged.push(Emerged {
                        principal: name.to_string(),
                        kind: self.node_kind(p).as_str().to_string(),
                        score: breadth(&g),
                        grant: g,
                    });
                }
            }
        }
        emerged.sort_by(|a, b| {
            b.score.cmp(&a.score).then(a.grant.via.len().cmp(&b.grant.via.len())).then(a.principal.cmp(&b.principal))
        });
        Drift {
            since: tenet_model::Timestamp::from_unix_nanos(since).to_string(),
            until: tenet_model::Timestamp::from_unix_nanos(until).to_string(),
            changes,
            emerged,
        }
    }
}

// ----- unused -----

#[derive(Debug, Clone, Serialize)]
pub struct Unused {
    pub principal: String,
    pub kind: String,
    /// `principal` (nothing used at all) or `permission`.
    pub scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub last_used: Option<String>,
}

impl<'g> View<'g> {
    /// Granted but unused access as of the view's time: principals with no
    /// use in `window` nanoseconds, and, for those in use, the granted
    /// actions they did not use.
    pub fn unused(&self, window: i64) -> Vec<Unused> {
        let since = self.at.saturating_sub(window);
        let mut last: FxHashMap<Id, i64> = FxHashMap::default();
        let mut used_actions: FxHashMap<Id, Vec<(Id, i64)>> = FxHashMap::default();
        for u in self.graph.uses() {
            if u.first > self.at {
                continue;
            }
            let l = u.last.min(self.at);
            let e = last.entry(u.principal).or_insert(l);
            *e = (*e).max(l);
            used_actions.entry(u.principal).or_default().push((u.action, l));
        }
        let ts = |t: i64| tenet_model::Timestamp::from_unix_nanos(t).to_string();
        let mut out = Vec::new();
        for (i, present) in self.present.iter().enumerate() {
            let id = i as Id;
            let kind = self.kind(id);
            if !present || !matches!(kind, NodeKind::Human | NodeKind::Workload | NodeKind::Role | NodeKind::Agent) {
                continue;
            }
            // Only principals that hold access are reported.
            let has_grants = !self.policies_of(id).is_empty()
                || self.bindings_by_subject.contains_key(&id)
                || self.tools.contains_key(&id);
            if !has_grants {
                continue;
            }
            let name = self.name(id).to_string();
            match last.get(&id) {
                Some(&l) if l >= since => {
                    let used = used_actions.get(&id).cloned().unwrap_or_default();
                    for (policy, _) in self.policies_of(id) {
                        let Some(doc) = self.documents.get(&policy) else { continue };
                        for (si, s) in doc.statements.iter().enumerate() {
                            if s.effect != Effect::Allow {
                                continue;
                            }
                            let Matcher::Only(patterns) = &s.actions else { continue };
                            for p in patterns {
                                let last_use = used
                                    .iter()
                                    .filter(|(a, _)| tenet_model::policy::glob_match(p, self.name(*a), true))
                                    .map(|(_, t)| *t)
                                    .max();
                                if last_use.is_none_or(|t| t < since) {
                                    out.push(Unused {
                                        principal: name.clone(),
                                        kind: kind.as_str().into(),
                                        scope: "permission",
                                        permission: Some(p.clone()),
                                        source: Some(format!("{} of {}", stmt_label(s, si as u16), self.name(policy))),
                                        last_used: last_use.map(ts),
                                    });
                                }
                            }
                        }
                    }
                }
                other => out.push(Unused {
                    principal: name,
                    kind: kind.as_str().into(),
                    scope: "principal",
                    permission: None,
                    source: None,
                    last_used: other.map(|t| ts(*t)),
                }),
            }
        }
        out.sort_by(|a, b| {
            (a.scope != "principal", &a.principal, &a.permission).cmp(&(
                b.scope != "principal",
                &b.principal,
                &b.permission,
            ))
        });
        out
    }
}
