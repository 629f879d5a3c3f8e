//! `who-can`: every principal able to perform an action on a resource.
//!
//! Two halves meet: the identities whose own policies (or RBAC bindings)
//! grant the request, each with the hops from it to the granting statement;
//! and, for each such identity, every principal that can come to act as it
//! (assuming it, being its agent, running its tool), found by a
//! breadth-first walk backwards that is remembered for the view's lifetime.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;
use tenet_model::{Effect, NodeKind};

use super::policy::{parse_k8s, rule_covers};
use super::{Hop, MAX_DEPTH, MAX_PATHS, Step, Via};
use crate::intern::{Id, NONE};
use crate::view::{StmtRef, View, account_root};

/// One answer of `who-can`.
#[derive(Debug, Clone, Serialize)]
pub struct Principal<'g> {
    pub principal: &'g str,
    pub kind: NodeKind,
    /// The shortest paths, unconditional ones first, each from the
    /// principal to the statement or rule that grants.
    pub paths: Vec<Vec<Hop<'g>>>,
    /// Whether every path depends on conditions.
    pub conditional: bool,
}

/// A grant to one identity, with the hops from it to the granting statement.
pub(crate) struct GrantPath {
    pub identity: Id,
    pub steps: Vec<Step>,
    pub conditional: bool,
}

/// Everything that can become one node: a breadth-first tree rooted at it.
pub(crate) struct Becomers {
    pub nodes: Vec<Becomer>,
}

#[derive(Clone, Copy)]
pub(crate) struct Becomer {
    pub id: Id,
    /// The step from this node one hop closer to the root, and the index of
    /// the node it reaches (the root has neither).
    pub step: Option<(Step, u32)>,
    /// Whether any step between this node and the root is conditional.
    pub conditional: bool,
    pub depth: u8,
}

impl Becomers {
    /// The steps from node `i` to the root.
    pub(crate) fn path(&self, mut i: usize) -> impl Iterator<Item = Step> + '_ {
        std::iter::from_fn(move || {
            let (step, parent) = self.nodes[i].step?;
            i = parent as usize;
            Some(step)
        })
    }
}

/// Caps what a view remembers of who-becomes walks (in tree nodes, about
/// 40 bytes each): a long-lived view answering many questions must not grow
/// without bound.
const BECOMERS_MEMO_NODES: usize = 4_000_000;

/// A route to a principal: a grant and the tree node the principal is at.
#[derive(Clone, Copy)]
struct Route {
    grant: u32,
    node: u32,
    len: u32,
    conditional: bool,
}

impl Route {
    fn rank(&self) -> (bool, u32) {
        (self.conditional, self.len)
    }
}

impl<'g> View<'g> {
    /// Every principal able to perform `action` on `resource`, with paths.
    /// `k8s:<verb>` actions on `k8s:<group>/<resource>/<namespace>/<name>`
    /// resources are answered from RBAC; everything else from IAM.
    pub fn who_can(&self, action: &str, resource: &str) -> Vec<Principal<'g>> {
        let grants = match action.strip_prefix("k8s:") {
            Some(verb) => self.rbac_grants(verb, resource),
            None => self.iam_grants(action, resource),
        };
        // Every route to every principal, then the best few per principal.
        let mut trees: Vec<Option<Arc<Becomers>>> = Vec::with_capacity(grants.len());
        let mut routes: Vec<(Id, Route)> = Vec::new();
        for (gi, g) in grants.iter().enumerate() {
            let direct = Route { grant: gi as u32, node: 0, len: g.steps.len() as u32, conditional: g.conditional };
            // Most identities cannot be become by anyone else: no walk needed.
            if !self.may_be_become(g.identity) {
                if self.is_principal(g.identity) {
                    routes.push((g.identity, direct));
                }
                trees.push(None);
                continue;
            }
            let tree = self.who_becomes(g.identity);
            for (ni, n) in tree.nodes.iter().enumerate() {
                if self.is_principal(n.id) {
                    let route = Route {
                        node: ni as u32,
                        len: u32::from(n.depth) + direct.len,
                        conditional: g.conditional || n.conditional,
                        ..direct
                    };
                    routes.push((n.id, route));
                }
            }
            trees.push(Some(tree));
        }
        routes.sort_unstable_by_key(|(id, r)| (*id, r.rank(), r.grant, r.node));
        let mut out: Vec<Principal<'g>> = Vec::new();
        for same in routes.chunk_by(|a, b| a.0 == b.0) {
            let id = same[0].0;
            let paths = same
                .iter()
                .take(MAX_PATHS)
                .map(|(_, r)| {
                    let g = &grants[r.grant as usize];
                    let mut hops = Vec::with_capacity(r.len as usize);
                    if let Some(tree) = &trees[r.grant as usize] {
                        hops.extend(tree.path(r.node as usize).map(|s| self.hop(&s)));
                    }
                    hops.extend(g.steps.iter().map(|s| self.hop(s)));
                    hops
                })
                .collect();
            out.push(Principal {
                principal: self.name(id),
                kind: self.kind(id),
                paths,
                // Routes sort unconditional first: the best one decides.
                conditional: same[0].1.conditional,
            });
        }
        out.sort_by(|a, b| {
            (a.conditional, a.paths.first().map_or(0, Vec::len), a.principal).cmp(&(
                b.conditional,
                b.paths.first().map_or(0, Vec::len),
                b.principal,
            ))
        });
        out
    }

    /// Whether anything could lead to acting as `x` (see [`Self::predecessors`]).
    fn may_be_become(&self, x: Id) -> bool {
        (self.kind(x) == NodeKind::ROLE && (self.trust.contains_key(&x) || self.assumed_by.contains_key(&x)))
            || self.tool_users.contains_key(&x)
            || self.served_by.contains_key(&x)
            || self.acts_for.contains_key(&x)
            || self.owned_by.contains_key(&x)
            || self.same_as.contains_key(&x)
    }

    pub(crate) fn is_principal(&self, id: Id) -> bool {
        self.kind(id).is_principal()
    }

    /// Every principal that can act as `target`, with the shortest path
    /// from each (the target itself, with no hops, at the root).
    pub(crate) fn who_becomes(&self, target: Id) -> Arc<Becomers> {
        if let Some(w) = self.memo.becomes.lock().unwrap_or_else(|p| p.into_inner()).get(&target) {
            return w.clone();
        }
        let out = Arc::new(self.who_becomes_uncached(target));
        let size = self.memo.becomes_nodes.load(std::sync::atomic::Ordering::Relaxed) + out.nodes.len();
        let mut memo = self.memo.becomes.lock().unwrap_or_else(|p| p.into_inner());
        if size > BECOMERS_MEMO_NODES {
            memo.clear();
            self.memo.becomes_nodes.store(out.nodes.len(), std::sync::atomic::Ordering::Relaxed);
        } else {
            self.memo.becomes_nodes.store(size, std::sync::atomic::Ordering::Relaxed);
        }
        memo.insert(target, out.clone());
        out
    }

    fn who_becomes_uncached(&self, target: Id) -> Becomers {
        let mut nodes = vec![Becomer { id: target, step: None, conditional: false, depth: 0 }];
        let mut index: FxHashMap<Id, u32> = FxHashMap::default();
        index.insert(target, 0);
        let mut steps = Vec::new();
        let mut i = 0;
        while i < nodes.len() {
            let n = nodes[i];
            if n.depth < MAX_DEPTH {
                steps.clear();
                self.predecessors(n.id, &mut steps);
                for &step in &steps {
                    if index.contains_key(&step.from) {
                        continue;
                    }
                    index.insert(step.from, nodes.len() as u32);
                    nodes.push(Becomer {
                        id: step.from,
                        step: Some((step, i as u32)),
                        conditional: n.conditional || step.conditional,
                        depth: n.depth + 1,
                    });
                }
            }
            i += 1;
        }
        Becomers { nodes }
    }

    /// The ways to become `x`: assuming it, running its tool, being an
    /// agent that acts for it, using or owning it (an agent), being the same
    /// identity. The inverse of what `reach` walks.
    fn predecessors(&self, x: Id, out: &mut Vec<Step>) {
        if self.kind(x) == NodeKind::ROLE {
            out.extend(self.assumers_of(x).iter().copied());
        }
        for &(agent, tool) in self.tool_users.get(&x).into_iter().flatten() {
            out.push(Step::new(agent, x, Via::Tool(tool)));
        }
        for &agent in self.served_by.get(&x).into_iter().flatten() {
            out.push(Step::new(agent, x, Via::ActsFor));
        }
        for &person in self.acts_for.get(&x).into_iter().flatten() {
            out.push(Step::new(person, x, Via::ServedBy));
        }
        for &owner in self.owned_by.get(&x).into_iter().flatten() {
            out.push(Step::new(owner, x, Via::Owns));
        }
        for &alias in self.same_as.get(&x).into_iter().flatten() {
            out.push(Step::new(alias, x, Via::SameAs));
        }
    }

    /// Who may assume `role`, one step each, as its trust policy and the
    /// trusted accounts' own policies say (and as observed). Remembered:
    /// every walk through the role needs it.
    fn assumers_of(&self, role: Id) -> Arc<Vec<Step>> {
        if let Some(s) = self.memo.assumers_of.lock().unwrap_or_else(|p| p.into_inner()).get(&role) {
            return s.clone();
        }
        let mut out = Vec::new();
        if let Some(doc) = self.trust.get(&role) {
            for s in &doc.statements {
                let Some(p) = &s.principals else { continue };
                if s.effect != Effect::Allow || p.not {
                    continue;
                }
                let conditional = !s.conditions.is_empty();
                for entry in &p.aws {
                    if let Some(acct) = account_root(entry) {
                        if let Some(root) = self.root_of(acct) {
                            out.push(Step::new(root, role, Via::TrustAccount).conditional(conditional));
                        }
                        // Identities of that account whose own policies allow the assumption.
                        for (who, stmt, c) in self.allowed_to_assume(role, acct) {
                            out.push(Step::new(who, role, Via::MayAssume(stmt)).conditional(conditional || c));
                        }
                    } else if let Some(who) = self.id(entry) {
                        let same_account = super::account_of(self.name(who)) == super::account_of(self.name(role));
                        if same_account {
                            // Within an account, the trust policy naming it is enough.
                            out.push(Step::new(who, role, Via::TrustNames).conditional(conditional));
                        } else if let Some((stmt, c)) = self.may_assume(who, role) {
                            // Across accounts, its own policies must allow it too.
                            out.push(Step::new(who, role, Via::NamedMayAssume(stmt)).conditional(conditional || c));
                        }
                    }
                }
                for svc in &p.service {
                    if let Some(who) = self.id(&format!("aws:service/{svc}")) {
                        out.push(Step::new(who, role, Via::TrustService).conditional(conditional));
                    }
                }
                for fed in &p.federated {
                    if let Some(who) = self.id(fed) {
                        out.push(Step::new(who, role, Via::TrustFederated).conditional(conditional));
                    }
                }
            }
        }
        for &who in self.assumed_by.get(&role).into_iter().flatten() {
            out.push(Step::new(who, role, Via::Observed));
        }
        let out = Arc::new(out);
        self.memo.assumers_of.lock().unwrap_or_else(|p| p.into_inner()).insert(role, out.clone());
        out
    }

    /// Whether `who`'s own (and group) policies allow it to assume `role`
    /// and nothing denies it: the allowing statement, and whether the
    /// permission is conditional.
    pub(crate) fn may_assume(&self, who: Id, role: Id) -> Option<(StmtRef, bool)> {
        let arn = self.name(role);
        let (r, s) = self.assume_allows(who).iter().copied().find(|(_, s)| s.resources.admits(arn, false))?;
        let restriction = self.restrictions(who, "sts:AssumeRole", arn);
        (!restriction.denied).then_some((r, !s.conditions.is_empty() || restriction.conditional))
    }

    /// An identity's allow statements that admit `sts:AssumeRole` on something.
    pub(crate) fn assume_allows(&self, who: Id) -> Vec<(StmtRef, &'g tenet_model::Statement)> {
        self.policies_of(who)
            .into_iter()
            .filter_map(|(p, _)| self.documents.get(&p).map(|d| (p, *d)))
            .flat_map(|(p, d)| {
                d.statements.iter().enumerate().map(move |(i, s)| (StmtRef { policy: p, index: i as u16 }, s))
            })
            .filter(|(_, s)| s.effect == Effect::Allow && s.actions.admits("sts:AssumeRole", true))
            .collect()
    }

    /// The root principal of an account, when the graph knows it.
    pub(crate) fn root_of(&self, account: &str) -> Option<Id> {
        self.id(&format!("arn:aws:iam::{account}:root"))
    }

    /// Identities, by account, holding an allow statement that admits
    /// `sts:AssumeRole` on something.
    fn assumers(&self) -> &FxHashMap<&'g str, Vec<(Id, StmtRef)>> {
        self.memo.assumers.get_or_init(|| {
            let mut out: FxHashMap<&'g str, Vec<(Id, StmtRef)>> = FxHashMap::default();
            for r in self.candidates("sts:AssumeRole") {
                let Some(s) = self.statement(r) else { continue };
                if !s.actions.admits("sts:AssumeRole", true) {
                    continue;
                }
                for &holder in self.holders.get(&r.policy).into_iter().flatten() {
                    let mut add = |i: Id| {
                        if let Some(acct) = super::account_of(self.name(i)) {
                            out.entry(acct).or_default().push((i, r));
                        }
                    };
                    if self.kind(holder) == NodeKind::Group {
                        self.members_of(holder).iter().for_each(|(m, _)| add(*m));
                    } else {
                        add(holder);
                    }
                }
            }
            out
        })
    }

    /// Identities of `account` whose policies allow `sts:AssumeRole` on
    /// `role` and do not deny it: (identity, allowing statement, conditional).
    fn allowed_to_assume(&self, role: Id, account: &str) -> Vec<(Id, StmtRef, bool)> {
        let arn = self.name(role);
        let mut out: Vec<(Id, StmtRef, bool)> = Vec::new();
        for &(i, r) in self.assumers().get(account).into_iter().flatten() {
            let Some(s) = self.statement(r) else { continue };
            if !s.covers("sts:AssumeRole", arn) || out.iter().any(|(o, _, _)| *o == i) {
                continue;
            }
            let restriction = self.restrictions(i, "sts:AssumeRole", arn);
            if !restriction.denied {
                out.push((i, r, !s.conditions.is_empty() || restriction.conditional));
            }
        }
        out
    }

    /// Allow statements that could cover `action`, by its service.
    pub(crate) fn candidates(&self, action: &str) -> Vec<StmtRef> {
        let svc = action.split_once(':').map_or("*".to_string(), |(s, _)| s.to_ascii_lowercase());
        let mut out: Vec<StmtRef> = self.allow_index.get(&svc).into_iter().flatten().copied().collect();
        if svc != "*" {
            out.extend(self.allow_index.get("*").into_iter().flatten().copied());
        }
        out
    }

    /// The membership steps from `identity` up a chain of groups.
    fn membership(&self, identity: Id, groups: &[Id], tail: &mut Vec<Step>) -> Id {
        let mut from = identity;
        for &g in groups {
            tail.push(Step::new(from, g, Via::Member));
            from = g;
        }
        from
    }

    /// Identities granted `action` on `resource` by IAM, each with the hops
    /// from it to the granting statement and whether that grant is conditional.
    fn iam_grants(&self, action: &str, resource: &str) -> Vec<GrantPath> {
        let mut out = Vec::new();
        for r in self.candidates(action) {
            let Some(s) = self.statement(r) else { continue };
            if !s.covers(action, resource) {
                continue;
            }
            let conditional = !s.conditions.is_empty();
            for &holder in self.holders.get(&r.policy).into_iter().flatten() {
                let direct = [(holder, Arc::from(&[][..]))];
                let members;
                let identities: &[(Id, Arc<[Id]>)] = if self.kind(holder) == NodeKind::Group {
                    members = self.members_of(holder);
                    &members
                } else {
                    &direct
                };
                for (identity, groups) in identities {
                    let restriction = self.restrictions(*identity, action, resource);
                    if restriction.denied {
                        continue;
                    }
                    let mut steps = Vec::with_capacity(groups.len() + 2);
                    let last = self.membership(*identity, groups, &mut steps);
                    steps.push(Step::new(last, r.policy, Via::Grant(r.index)).conditional(conditional));
                    if let Some(b) = restriction.boundary {
                        steps.push(Step::new(*identity, b, Via::Boundary).conditional(restriction.conditional));
                    }
                    out.push(GrantPath {
                        identity: *identity,
                        steps,
                        conditional: conditional || restriction.conditional,
                    });
                }
            }
        }
        out
    }

    /// Identities granted `verb` on a Kubernetes resource id by RBAC.
    fn rbac_grants(&self, verb: &str, resource: &str) -> Vec<GrantPath> {
        let Some((group, kind, ns, name)) = parse_k8s(resource) else { return Vec::new() };
        let mut out = Vec::new();
        let mut roles: Vec<Id> = self.rbac_roles.keys().copied().collect();
        roles.sort_unstable();
        for role in roles {
            let r = self.rbac_roles[&role];
            if r.namespace.is_some() && r.namespace != ns {
                continue;
            }
            let rules = self.rbac_rules(role);
            let Some(rule) = rules.iter().position(|rule| rule_covers(rule, verb, group, kind, name)) else {
                continue;
            };
            for &(subject, binding_ns) in self.bindings_by_role.get(&role).into_iter().flatten() {
                // A RoleBinding grants in its namespace; a ClusterRoleBinding everywhere.
                if binding_ns != NONE && Some(self.name(binding_ns)) != ns {
                    continue;
                }
                let grant = Step::new(role, role, Via::Rule(rule as u16));
                let bind = |from: Id| Step::new(from, role, Via::Binding(binding_ns));
                if self.kind(subject) == NodeKind::Group {
                    for (m, groups) in self.members_of(subject).iter() {
                        let mut steps = Vec::with_capacity(groups.len() + 2);
                        let last = self.membership(*m, groups, &mut steps);
                        steps.push(bind(last));
                        steps.push(grant);
                        out.push(GrantPath { identity: *m, steps, conditional: false });
                    }
                } else {
                    out.push(GrantPath { identity: subject, steps: vec![bind(subject), grant], conditional: false });
                }
            }
        }
        out
    }
}
