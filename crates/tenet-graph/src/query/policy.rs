//! What IAM and Kubernetes RBAC let one identity do: the evaluation rules
//! every query shares (deny wins, boundaries intersect, RBAC verbs,
//! resources, resourceNames, namespaces and aggregation).

use std::sync::Arc;

use tenet_model::{Effect, RbacRule, Statement};

use crate::intern::Id;
use crate::view::{RbacRoleRef, View};

/// What stands between an identity's allow and the request.
#[derive(Default, Clone, Copy)]
pub(crate) struct Restriction {
    /// An unconditional deny, or a boundary that does not allow it.
    pub denied: bool,
    /// A conditional deny, or a boundary that allows it only conditionally.
    pub conditional: bool,
    pub boundary: Option<Id>,
}

impl<'g> View<'g> {
    /// Whether `identity`'s own and group policies deny the request, and
    /// whether its boundary lets it through.
    pub(crate) fn restrictions(&self, identity: Id, action: &str, resource: &str) -> Restriction {
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
        if let Some(&b) = self.boundary.get(&identity) {
            let statements = self.documents.get(&b).map_or(&[][..], |d| &d.statements[..]);
            let covering = || statements.iter().filter(|s| s.covers(action, resource));
            let allowed = covering().any(|s| s.effect == Effect::Allow);
            let denied = covering().any(|s| s.effect == Effect::Deny && s.conditions.is_empty());
            if !allowed || denied {
                r.denied = true;
            } else if covering().filter(|s| s.effect == Effect::Allow).all(|s| !s.conditions.is_empty()) {
                r.conditional = true;
            }
            r.boundary = Some(b);
        }
        r
    }

    /// The deny statements of an identity's own and group policies.
    pub(crate) fn denies_of(&self, identity: Id) -> Arc<Vec<&'g Statement>> {
        if let Some(d) = self.memo.denies.lock().unwrap_or_else(|p| p.into_inner()).get(&identity) {
            return d.clone();
        }
        let mut out = Vec::new();
        let mut add = |holder: Id| {
            for p in self.attached.get(&holder).into_iter().flatten() {
                out.extend(self.policy_denies.get(p).into_iter().flatten().copied());
            }
        };
        add(identity);
        self.groups_of(identity).into_iter().for_each(&mut add);
        let out = if out.is_empty() { self.memo.no_denies.clone() } else { Arc::new(out) };
        self.memo.denies.lock().unwrap_or_else(|p| p.into_inner()).insert(identity, out.clone());
        out
    }

    /// The rules of an RBAC role, its own and those it aggregates (in a
    /// fixed order: a rule's index names it within one view).
    pub(crate) fn rbac_rules(&self, role: Id) -> Vec<&'g RbacRule> {
        let Some(r) = self.rbac_roles.get(&role) else { return Vec::new() };
        let mut rules: Vec<&RbacRule> = r.rules.iter().collect();
        if !r.aggregate.is_empty() {
            let mut others: Vec<(&Id, &RbacRoleRef)> = self.rbac_roles.iter().collect();
            others.sort_unstable_by_key(|(id, _)| **id);
            for (other, o) in others {
                if *other != role && r.aggregate.iter().any(|sel| selects(sel, o)) {
                    rules.extend(o.rules.iter());
                }
            }
        }
        rules
    }
}

/// Whether an aggregation label selector picks a role.
fn selects(selector: &[(String, String)], role: &RbacRoleRef<'_>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| role.labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

/// `k8s:<group>/<resource>/<namespace>/<name>` → its parts (`core` is the empty group).
pub(crate) fn parse_k8s(id: &str) -> Option<(&str, &str, Option<&str>, Option<&str>)> {
    let rest = id.strip_prefix("k8s:")?;
    let mut parts = rest.splitn(4, '/');
    let group = parts.next()?;
    let resource = parts.next()?;
    let ns = parts.next().filter(|s| !s.is_empty());
    let name = parts.next().filter(|s| !s.is_empty());
    Some((if group == "core" { "" } else { group }, resource, ns, name))
}

/// Whether an RBAC rule allows `verb` on a resource of `group`/`resource`, named `name`.
pub(crate) fn rule_covers(rule: &RbacRule, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
    let any = |v: &[String], x: &str| v.iter().any(|s| s == "*" || s == x);
    let groups_ok = rule.api_groups.iter().any(|g| g == "*" || g == group);
    // `pods` covers pods; `pods/log` is a subresource, not the pod itself.
    let resource_ok = rule.resources.iter().any(|r| r == "*" || r == resource);
    let name_ok = rule.resource_names.is_empty() || name.is_some_and(|n| rule.resource_names.iter().any(|r| r == n));
    any(&rule.verbs, verb) && groups_ok && resource_ok && name_ok
}
