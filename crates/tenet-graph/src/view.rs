//! The graph as of one instant, indexed for traversal.

use std::sync::Arc;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use tenet_model::{Effect, Matcher, NodeKind, PolicyDocument, RbacRule, Statement};

use crate::query::Becomers;

use crate::graph::{EdgeKind, OPEN, Payload, TrustGraph};
use crate::intern::{Id, NONE};

/// Where a statement lives: a policy and the statement's index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StmtRef {
    pub policy: Id,
    pub index: u16,
}

/// Who a trust policy lets in, indexed by what names them.
#[derive(Default)]
pub(crate) struct TrustIndex {
    /// Exact principal ARN → roles.
    pub by_arn: FxHashMap<String, Vec<(Id, bool)>>,
    /// Account id (from `arn:aws:iam::X:root` or a bare id) → roles.
    pub by_account: FxHashMap<String, Vec<(Id, bool)>>,
    /// Service principal → roles.
    pub by_service: FxHashMap<String, Vec<(Id, bool)>>,
    /// Federated provider → roles.
    pub by_federated: FxHashMap<String, Vec<(Id, bool)>>,
    /// Roles anyone may assume.
    pub anyone: Vec<(Id, bool)>,
}

/// A snapshot of the trust graph at `at`, with the indexes queries need.
pub struct View<'g> {
    pub graph: &'g TrustGraph,
    pub at: i64,
    pub(crate) member_of: FxHashMap<Id, Vec<Id>>,
    pub(crate) members: FxHashMap<Id, Vec<Id>>,
    pub(crate) attached: FxHashMap<Id, Vec<Id>>,
    pub(crate) holders: FxHashMap<Id, Vec<Id>>,
    pub(crate) documents: FxHashMap<Id, &'g PolicyDocument>,
    pub(crate) boundary: FxHashMap<Id, Id>,
    pub(crate) trust: FxHashMap<Id, &'g PolicyDocument>,
    pub(crate) trust_index: TrustIndex,
    pub(crate) rbac_roles: FxHashMap<Id, RbacRoleRef<'g>>,
    pub(crate) bindings_by_role: FxHashMap<Id, Vec<(Id, Id)>>,
    pub(crate) bindings_by_subject: FxHashMap<Id, Vec<(Id, Id)>>,
    pub(crate) acts_for: FxHashMap<Id, Vec<Id>>,
    pub(crate) served_by: FxHashMap<Id, Vec<Id>>,
    pub(crate) owns: FxHashMap<Id, Vec<Id>>,
    pub(crate) owned_by: FxHashMap<Id, Vec<Id>>,
    pub(crate) tools: FxHashMap<Id, Vec<(Id, Id)>>,
    pub(crate) tool_users: FxHashMap<Id, Vec<(Id, Id)>>,
    pub(crate) same_as: FxHashMap<Id, Vec<Id>>,
    /// Names the inventory gives nodes (a SCIM group's displayName).
    display: FxHashMap<Id, &'g str>,
    /// Allow statements by the service prefix of their actions (`s3`, `*`
    /// for wildcards and `NotAction`): who-can looks only where it matters.
    pub(crate) allow_index: FxHashMap<String, Vec<StmtRef>>,
    /// The deny statements of each policy that has any.
    pub(crate) policy_denies: FxHashMap<Id, Vec<&'g Statement>>,
    /// Nodes present at `at` (declared or named by a present edge).
    pub(crate) present: Vec<bool>,
    /// Observed role assumptions: role → principals seen assuming it by `at`.
    pub(crate) assumed_by: FxHashMap<Id, Vec<Id>>,
    /// The same, by principal: principal → roles it was seen assuming.
    pub(crate) assumes: FxHashMap<Id, Vec<Id>>,
    /// Derived answers, computed on first use: a view never changes, so
    /// what was worked out once holds for every later query on it.
    pub(crate) memo: Memo<'g>,
}

/// A group's members (not themselves groups), each with the chain of
/// groups from its immediate one up to the group.
pub(crate) type Members = Vec<(Id, Arc<[Id]>)>;

#[derive(Default)]
pub(crate) struct Memo<'g> {
    /// Deny statements that apply to an identity (its own and its groups').
    pub denies: Mutex<FxHashMap<Id, Arc<Vec<&'g Statement>>>>,
    /// The answer shared by every identity without denies.
    pub no_denies: Arc<Vec<&'g Statement>>,
    /// Identities, by account, holding an allow that admits `sts:AssumeRole`.
    pub assumers: std::sync::OnceLock<FxHashMap<&'g str, Vec<(Id, StmtRef)>>>,
    /// Who can become a node, with paths.
    pub becomes: Mutex<FxHashMap<Id, Arc<Becomers>>>,
    /// Tree nodes held in `becomes`, to bound it.
    pub becomes_nodes: std::sync::atomic::AtomicUsize,
    pub members: Mutex<FxHashMap<Id, Arc<Members>>>,
    /// Who may assume each role, one step each.
    pub assumers_of: Mutex<FxHashMap<Id, Arc<Vec<crate::query::Step>>>>,
}

#[derive(Clone, Copy)]
pub(crate) struct RbacRoleRef<'g> {
    pub namespace: Option<&'g str>,
    pub rules: &'g [RbacRule],
    pub labels: &'g [(String, String)],
    pub aggregate: &'g [Vec<(String, String)>],
}

fn push<K: std::hash::Hash + Eq, V>(m: &mut FxHashMap<K, Vec<V>>, k: K, v: V) {
    m.entry(k).or_default().push(v);
}

/// The service prefix of an action pattern, or `*` when it could be any.
fn service_of(pattern: &str) -> String {
    match pattern.split_once(':') {
        Some((svc, _)) if !svc.contains('*') && !svc.contains('?') => svc.to_ascii_lowercase(),
        _ => "*".to_string(),
    }
}

impl TrustGraph {
    /// The graph as it stood at `t` (nanoseconds since the epoch).
    pub fn view(&self, t: i64) -> View<'_> {
        self.view_known(t, t)
    }

    /// The graph as it stood at `t`, with what was observed by `known`
    /// (≥ `t`) taken to have held already: how drift compares two times
    /// without mistaking a first sighting for a change.
    pub fn view_known(&self, t: i64, known: i64) -> View<'_> {
        let mut v = View {
            graph: self,
            at: t,
            member_of: FxHashMap::default(),
            members: FxHashMap::default(),
            attached: FxHashMap::default(),
            holders: FxHashMap::default(),
            documents: FxHashMap::default(),
            boundary: FxHashMap::default(),
            trust: FxHashMap::default(),
            trust_index: TrustIndex::default(),
            rbac_roles: FxHashMap::default(),
            bindings_by_role: FxHashMap::default(),
            bindings_by_subject: FxHashMap::default(),
            acts_for: FxHashMap::default(),
            served_by: FxHashMap::default(),
            owns: FxHashMap::default(),
            owned_by: FxHashMap::default(),
            tools: FxHashMap::default(),
            tool_users: FxHashMap::default(),
            same_as: FxHashMap::default(),
            display: FxHashMap::default(),
            allow_index: FxHashMap::default(),
            policy_denies: FxHashMap::default(),
            present: vec![false; self.ids.len()],
            assumed_by: FxHashMap::default(),
            assumes: FxHashMap::default(),
            memo: Memo::default(),
        };
        for edge in &self.edges {
            let Some(version) = edge.at_known(t, known) else { continue };
            let k = edge.key;
            let payload = self.payload(version.payload);
            for id in [k.a, k.b] {
                if id != NONE && (id as usize) < v.present.len() {
                    v.present[id as usize] = true;
                }
            }
            match k.kind {
                EdgeKind::Node => {
                    if let Payload::Node { name: Some(n), .. } = payload {
                        v.display.insert(k.a, n.as_str());
                    }
                }
                EdgeKind::Member => {
                    push(&mut v.member_of, k.a, k.b);
                    push(&mut v.members, k.b, k.a);
                }
                EdgeKind::Attached => {
                    push(&mut v.attached, k.a, k.b);
                    push(&mut v.holders, k.b, k.a);
                }
                EdgeKind::Policy => {
                    if let Payload::Document(d) = payload {
                        v.documents.insert(k.a, d);
                    }
                }
                EdgeKind::Boundary => {
                    if let Payload::Ref(p) = payload {
                        v.boundary.insert(k.a, *p);
                    }
                }
                EdgeKind::Trust => {
                    if let Payload::Document(d) = payload {
                        v.trust.insert(k.a, d);
                    }
                }
                EdgeKind::RbacRole => {
                    if let Payload::Rbac { namespace, rules, labels, aggregate } = payload {
                        v.rbac_roles
                            .insert(k.a, RbacRoleRef { namespace: namespace.as_deref(), rules, labels, aggregate });
                    }
                }
                EdgeKind::RbacBinding => {
                    push(&mut v.bindings_by_role, k.b, (k.a, k.c));
                    push(&mut v.bindings_by_subject, k.a, (k.b, k.c));
                }
                EdgeKind::ActsFor => {
                    let expired =
                        matches!(payload, Payload::Delegation { expires: Some(e), .. } if e.unix_nanos() <= t);
                    if !expired {
                        push(&mut v.acts_for, k.a, k.b);
                        push(&mut v.served_by, k.b, k.a);
                    }
                }
                EdgeKind::Owns => {
                    push(&mut v.owns, k.a, k.b);
                    push(&mut v.owned_by, k.b, k.a);
                }
                EdgeKind::Tool => {
                    if let Payload::Ref(identity) = payload {
                        push(&mut v.tools, k.a, (k.b, *identity));
                        push(&mut v.tool_users, *identity, (k.a, k.b));
                    }
                }
                EdgeKind::SameAs => {
                    push(&mut v.same_as, k.a, k.b);
                    push(&mut v.same_as, k.b, k.a);
                }
            }
        }
        // Statements are indexed once the documents are known.
        let docs: Vec<(Id, &PolicyDocument)> = v.documents.iter().map(|(k, d)| (*k, *d)).collect();
        for (policy, doc) in docs {
            if !v.holders.contains_key(&policy) {
                continue;
            }
            for (i, s) in doc.statements.iter().enumerate() {
                if s.effect != Effect::Allow {
                    push(&mut v.policy_denies, policy, s);
                    continue;
                }
                let r = StmtRef { policy, index: i as u16 };
                match &s.actions {
                    Matcher::Only(ps) => {
                        let mut services: Vec<String> = ps.iter().map(|p| service_of(p)).collect();
                        services.sort();
                        services.dedup();
                        for svc in services {
                            push(&mut v.allow_index, svc, r);
                        }
                    }
                    Matcher::Any | Matcher::Not(_) => push(&mut v.allow_index, "*".to_string(), r),
                }
            }
        }
        let trusts: Vec<(Id, &PolicyDocument)> = v.trust.iter().map(|(k, d)| (*k, *d)).collect();
        for (role, doc) in trusts {
            for s in &doc.statements {
                if s.effect != Effect::Allow
                    || !s.actions.admits("sts:AssumeRole", true)
                        && !s.actions.admits("sts:AssumeRoleWithSAML", true)
                        && !s.actions.admits("sts:AssumeRoleWithWebIdentity", true)
                {
                    continue;
                }
                let Some(p) = &s.principals else { continue };
                if p.not {
                    continue;
                }
                let conditional = !s.conditions.is_empty();
                let entry = (role, conditional);
                if p.anyone {
                    v.trust_index.anyone.push(entry);
                }
                for a in &p.aws {
                    if a == "*" {
                        v.trust_index.anyone.push(entry);
                    } else if let Some(acct) = account_root(a) {
                        push(&mut v.trust_index.by_account, acct.to_string(), entry);
                    } else {
                        push(&mut v.trust_index.by_arn, crate::graph::canonical(a).into_owned(), entry);
                    }
                }
                for svc in &p.service {
                    push(&mut v.trust_index.by_service, svc.clone(), entry);
                }
                for f in &p.federated {
                    push(&mut v.trust_index.by_federated, f.clone(), entry);
                }
            }
        }
        for (role, principal, first) in &self.observed_assumptions {
            // Seen assuming it by `known`: evidence it could, whenever it began.
            if *first <= known {
                push(&mut v.assumed_by, *role, *principal);
                push(&mut v.assumes, *principal, *role);
            }
        }
        for list in v.assumed_by.values_mut().chain(v.assumes.values_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        v
    }

    /// The graph as it stands now (its latest state).
    pub fn current(&self) -> View<'_> {
        self.view(OPEN - 1)
    }
}

/// The account an `AWS` principal entry grants as a whole: `123456789012`
/// or `arn:aws:iam::123456789012:root`.
pub(crate) fn account_root(entry: &str) -> Option<&str> {
    if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit()) {
        return Some(entry);
    }
    entry.strip_prefix("arn:aws:iam::")?.strip_suffix(":root")
}

impl<'g> View<'g> {
    pub fn id(&self, name: &str) -> Option<Id> {
        self.graph.id(name)
    }

    pub fn name(&self, id: Id) -> &'g str {
        self.graph.name(id)
    }

    pub fn kind(&self, id: Id) -> NodeKind {
        self.graph.node_kind(id)
    }

    pub fn is_present(&self, id: Id) -> bool {
        self.present.get(id as usize).copied().unwrap_or(false)
    }

    pub(crate) fn statement(&self, r: StmtRef) -> Option<&'g Statement> {
        self.documents.get(&r.policy).and_then(|d| d.statements.get(r.index as usize))
    }

    /// The people (or principals) `agent` is declared to act for.
    pub fn acts_for(&self, agent: Id) -> &[Id] {
        self.acts_for.get(&agent).map_or(&[], Vec::as_slice)
    }

    /// Who owns `id` (an agent's or workload's owners).
    pub fn owners_of(&self, id: Id) -> &[Id] {
        self.owned_by.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The roles `id` was seen assuming by the view's time.
    pub fn assumed_roles(&self, id: Id) -> &[Id] {
        self.assumes.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every node present at the view's time.
    pub fn present_nodes(&self) -> impl Iterator<Item = Id> + '_ {
        self.present.iter().enumerate().filter(|(_, p)| **p).map(|(i, _)| i as Id)
    }

    /// The name the inventory gives `id` (a group's display name), if any.
    pub fn display_name(&self, id: Id) -> Option<&'g str> {
        self.display.get(&id).copied()
    }

    /// `id` and every identity declared the same as it (an IdP user and
    /// the SCIM record of the same person), transitively.
    pub fn aliases(&self, id: Id) -> Vec<Id> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() && out.len() < 64 {
            for &o in self.same_as.get(&out[i]).into_iter().flatten() {
                if !out.contains(&o) {
                    out.push(o);
                }
            }
            i += 1;
        }
        out
    }

    /// Every group `identity` belongs to, directly or through nested groups.
    pub fn groups_of(&self, identity: Id) -> Vec<Id> {
        let mut out: Vec<Id> = Vec::new();
        let mut stack: Vec<Id> = self.member_of.get(&identity).cloned().unwrap_or_default();
        while let Some(g) = stack.pop() {
            if out.contains(&g) || g == identity || out.len() > 1024 {
                continue;
            }
            out.push(g);
            stack.extend(self.member_of.get(&g).into_iter().flatten().copied());
        }
        out
    }

    /// Every member of `group` that is not itself a group, through nesting,
    /// with the groups from its immediate one up to `group`.
    pub(crate) fn members_of(&self, group: Id) -> Arc<Members> {
        if let Some(m) = self.memo.members.lock().unwrap_or_else(|p| p.into_inner()).get(&group) {
            return m.clone();
        }
        let mut out = Vec::new();
        let mut seen: rustc_hash::FxHashSet<Id> = rustc_hash::FxHashSet::default();
        let mut stack: Vec<(Id, Arc<[Id]>)> = vec![(group, Arc::from(&[group][..]))];
        while let Some((g, up)) = stack.pop() {
            for &m in self.members.get(&g).into_iter().flatten() {
                if !seen.insert(m) || up.len() > 32 {
                    continue;
                }
                if self.kind(m) == NodeKind::Group {
                    let chain: Arc<[Id]> = std::iter::once(m).chain(up.iter().copied()).collect();
                    stack.push((m, chain));
                } else {
                    out.push((m, up.clone()));
                }
            }
        }
        let out = Arc::new(out);
        self.memo.members.lock().unwrap_or_else(|p| p.into_inner()).insert(group, out.clone());
        out
    }

    /// Every policy whose statements apply to `identity`: its own and its
    /// groups' (with the group it comes through).
    pub(crate) fn policies_of(&self, identity: Id) -> Vec<(Id, Option<Id>)> {
        let mut out: Vec<(Id, Option<Id>)> =
            self.attached.get(&identity).into_iter().flatten().map(|p| (*p, None)).collect();
        for g in self.groups_of(identity) {
            out.extend(self.attached.get(&g).into_iter().flatten().map(|p| (*p, Some(g))));
        }
        out
    }
}
