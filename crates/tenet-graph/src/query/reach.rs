//! `reach`: a principal's blast radius — every identity it can come to act
//! as (roles it can assume, agents it owns or that act for it, their tools'
//! identities) and every grant each of those holds.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use tenet_model::{Effect, NodeKind, RbacRule, Statement};

use super::{Hop, Label, MAX_DEPTH, Step, Via, describe, describe_rule};
use crate::intern::{Id, NONE};
use crate::view::View;

#[derive(Debug, Clone, Serialize)]
pub struct Reach<'g> {
    pub principal: &'g str,
    pub kind: NodeKind,
    /// The principal itself first, then every identity it can act as,
    /// nearest first, each with the path there and what it holds.
    pub identities: Vec<Reached<'g>>,
}

impl Reach<'_> {
    /// Every grant within reach, with the identity that holds it.
    pub fn grants(&self) -> impl Iterator<Item = (&Reached<'_>, &Grant<'_>)> {
        self.identities.iter().flat_map(|r| r.grants.iter().map(move |g| (r, g)))
    }
}

/// An identity within reach.
#[derive(Debug, Clone, Serialize)]
pub struct Reached<'g> {
    pub identity: &'g str,
    pub kind: NodeKind,
    /// How the principal comes to act as it (empty for the principal itself).
    pub via: Vec<Hop<'g>>,
    /// Its permissions boundary: every grant below is intersected with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<&'g str>,
    /// Deny statements of its policies, which carve pieces out of its grants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denies: Vec<Deny<'g>>,
    pub grants: Vec<Grant<'g>>,
}

/// A deny statement that applies to an identity.
#[derive(Debug, Clone, Copy)]
pub struct Deny<'g> {
    pub policy: &'g str,
    pub statement: &'g Statement,
    pub index: u16,
}

impl std::fmt::Display for Deny<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.statement;
        write!(
            f,
            "{} {} on {} ({} of {})",
            if s.conditions.is_empty() { "deny" } else { "conditional deny" },
            describe(&s.actions),
            describe(&s.resources),
            Label(Some(s), self.index),
            self.policy
        )
    }
}

impl Serialize for Deny<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a grant comes from.
#[derive(Debug, Clone, Copy)]
pub enum Access<'g> {
    Iam { policy: &'g str, statement: &'g Statement, index: u16 },
    Rbac { role: &'g str, rule: &'g RbacRule, namespace: Option<&'g str> },
}

/// One grant an identity holds, directly or through a group.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'g> {
    /// The group it is held through, if not held directly.
    pub group: Option<&'g str>,
    pub access: Access<'g>,
}

impl Grant<'_> {
    /// The statement or rule, named: `#0 of arn:…:policy/x`, `k8s:clusterrole/view via ClusterRoleBinding`.
    pub fn source(&self) -> String {
        match self.access {
            Access::Iam { policy, statement, index } => format!("{} of {policy}", Label(Some(statement), index)),
            Access::Rbac { role, namespace: Some(ns), .. } => format!("{role} via RoleBinding in {ns}"),
            Access::Rbac { role, namespace: None, .. } => format!("{role} via ClusterRoleBinding"),
        }
    }

    pub fn actions(&self) -> String {
        match self.access {
            Access::Iam { statement, .. } => describe(&statement.actions),
            Access::Rbac { rule, .. } => describe_rule(rule).0,
        }
    }

    pub fn resources(&self) -> String {
        match self.access {
            Access::Iam { statement, .. } => describe(&statement.resources),
            Access::Rbac { rule, .. } => describe_rule(rule).1,
        }
    }

    pub fn conditional(&self) -> bool {
        matches!(self.access, Access::Iam { statement, .. } if !statement.conditions.is_empty())
    }
}

impl Serialize for Grant<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Grant", 6)?;
        if let Some(g) = self.group {
            st.serialize_field("group", g)?;
        }
        st.serialize_field("source", &self.source())?;
        st.serialize_field("effect", "Allow")?;
        st.serialize_field("actions", &self.actions())?;
        st.serialize_field("resources", &self.resources())?;
        st.serialize_field("conditional", &self.conditional())?;
        st.end()
    }
}

/// The role a session ARN is of: `arn:aws:sts::1:assumed-role/ops/alice` → `arn:aws:iam::1:role/ops`.
fn session_role(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:sts::")?;
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let role = rest.split('/').next()?;
    Some(format!("arn:aws:iam::{account}:role/{role}"))
}

/// Everything one principal can act as: a breadth-first tree from it.
struct ActsAs {
    /// Node, the step that reached it and the index of the node it came from.
    nodes: Vec<(Id, Option<(Step, u32)>)>,
}

impl ActsAs {
    /// The steps from the root to node `i`.
    fn path(&self, mut i: usize) -> Vec<Step> {
        let mut out = Vec::new();
        while let Some((step, parent)) = self.nodes[i].1 {
            out.push(step);
            i = parent as usize;
        }
        out.reverse();
        out
    }
}

impl<'g> View<'g> {
    /// The blast radius of `principal`: every identity it can act as and
    /// every grant those identities hold. `None` when it is not in the graph.
    pub fn reach(&self, principal: &str) -> Option<Reach<'g>> {
        let id = self.id(principal)?;
        let tree = self.acts_as(id);
        let identities = (0..tree.nodes.len())
            .filter(|&i| i == 0 || self.is_principal(tree.nodes[i].0))
            .map(|i| {
                let identity = tree.nodes[i].0;
                let via = tree.path(i).iter().map(|s| self.hop(s)).collect();
                self.reached(identity, via)
            })
            .collect();
        Some(Reach { principal: self.name(id), kind: self.kind(id), identities })
    }

    fn acts_as(&self, principal: Id) -> ActsAs {
        let mut nodes: Vec<(Id, Option<(Step, u32)>)> = vec![(principal, None)];
        let mut depth: Vec<u8> = vec![0];
        let mut seen: rustc_hash::FxHashSet<Id> = rustc_hash::FxHashSet::default();
        seen.insert(principal);
        let mut steps = Vec::new();
        let mut i = 0;
        while i < nodes.len() {
            if depth[i] < MAX_DEPTH {
                steps.clear();
                self.successors(nodes[i].0, &mut steps);
                for &step in &steps {
                    if seen.insert(step.to) {
                        nodes.push((step.to, Some((step, i as u32))));
                        depth.push(depth[i] + 1);
                    }
                }
            }
            i += 1;
        }
        ActsAs { nodes }
    }

    /// The ways `x` can go on to act as someone or something else.
    fn successors(&self, x: Id, out: &mut Vec<Step>) {
        let name = self.name(x);
        for &alias in self.same_as.get(&x).into_iter().flatten() {
            out.push(Step::new(x, alias, Via::SameAs));
        }
        if let Some(role) = session_role(name).and_then(|r| self.id(&r)) {
            out.push(Step::new(x, role, Via::SessionOf));
        }
        // Roles whose trust names x (across accounts only if x's own
        // policies allow the assumption), or x's account when they do.
        let account = super::account_of(name);
        for &(role, c) in self.trust_index.by_arn.get(name).into_iter().flatten() {
            if account == super::account_of(self.name(role)) {
                out.push(Step::new(x, role, Via::TrustNames).conditional(c));
            } else if let Some((r, c2)) = self.may_assume(x, role) {
                out.push(Step::new(x, role, Via::NamedMayAssume(r)).conditional(c || c2));
            }
        }
        if let Some(acct) = account {
            let roles = self.trust_index.by_account.get(acct);
            if name.ends_with(":root") {
                for &(role, c) in roles.into_iter().flatten() {
                    out.push(Step::new(x, role, Via::TrustAccount).conditional(c));
                }
            } else if roles.is_some() {
                // x's own allows that could admit an assumption, found once.
                let allows = self.assume_allows(x);
                for &(role, c) in roles.into_iter().flatten() {
                    let arn = self.name(role);
                    let Some((r, s)) = allows.iter().find(|(_, s)| s.resources.admits(arn, false)) else { continue };
                    let restriction = self.restrictions(x, "sts:AssumeRole", arn);
                    if !restriction.denied {
                        let conditional = c || !s.conditions.is_empty() || restriction.conditional;
                        out.push(Step::new(x, role, Via::MayAssume(*r)).conditional(conditional));
                    }
                }
            }
        }
        if let Some(svc) = name.strip_prefix("aws:service/") {
            for &(role, c) in self.trust_index.by_service.get(svc).into_iter().flatten() {
                out.push(Step::new(x, role, Via::TrustService).conditional(c));
            }
        }
        for &(role, c) in self.trust_index.by_federated.get(name).into_iter().flatten() {
            out.push(Step::new(x, role, Via::TrustFederated).conditional(c));
        }
        for &role in self.assumes.get(&x).into_iter().flatten() {
            out.push(Step::new(x, role, Via::Observed));
        }
        // Agents it owns or that act for it, and through them what they reach.
        for &agent in self.owns.get(&x).into_iter().flatten() {
            out.push(Step::new(x, agent, Via::Owns));
        }
        for &agent in self.served_by.get(&x).into_iter().flatten() {
            out.push(Step::new(x, agent, Via::ServedBy));
        }
        for &(tool, identity) in self.tools.get(&x).into_iter().flatten() {
            out.push(Step::new(x, identity, Via::Tool(tool)));
        }
        // An agent acting for several people holds the union of their access.
        for &person in self.acts_for.get(&x).into_iter().flatten() {
            out.push(Step::new(x, person, Via::ActsFor));
        }
    }

    /// What one identity holds: its IAM allows (own and groups'), its
    /// denies and boundary, and its RBAC bindings (own and groups').
    fn reached(&self, identity: Id, via: Vec<Hop<'g>>) -> Reached<'g> {
        let mut grants = Vec::new();
        let mut denies = Vec::new();
        for (policy, group) in self.policies_of(identity) {
            let Some(doc) = self.documents.get(&policy) else { continue };
            let policy_name = self.name(policy);
            for (i, s) in doc.statements.iter().enumerate() {
                let index = i as u16;
                match s.effect {
                    Effect::Deny => denies.push(Deny { policy: policy_name, statement: s, index }),
                    Effect::Allow => grants.push(Grant {
                        group: group.map(|g| self.name(g)),
                        access: Access::Iam { policy: policy_name, statement: s, index },
                    }),
                }
            }
        }
        let mut subjects = vec![identity];
        subjects.extend(self.groups_of(identity));
        for subject in subjects {
            for &(role, ns) in self.bindings_by_subject.get(&subject).into_iter().flatten() {
                let namespace = (ns != NONE).then(|| self.name(ns));
                for rule in self.rbac_rules(role) {
                    grants.push(Grant {
                        group: (subject != identity).then(|| self.name(subject)),
                        access: Access::Rbac { role: self.name(role), rule, namespace },
                    });
                }
            }
        }
        Reached {
            identity: self.name(identity),
            kind: self.kind(identity),
            via,
            boundary: self.boundary.get(&identity).map(|b| self.name(*b)),
            denies,
            grants,
        }
    }
}
