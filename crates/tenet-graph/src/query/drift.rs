//! `drift`: what changed in a window, and the indirect access that newly
//! emerged from it, ranked by what it opens up.

use rustc_hash::FxHashSet;
use serde::Serialize;
use tenet_model::NodeKind;

use super::{Grant, Hop};
use crate::graph::{Payload, TrustGraph};
use crate::intern::{Id, NONE};

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `added`, `removed` or `changed` (new content, e.g. a policy document edited).
    pub change: &'static str,
    pub edge: &'static str,
    pub from: String,
    pub to: String,
    pub at: String,
    pub provenance: String,
}

/// Access that exists at the end of the window, through a path, and did
/// not at its start.
#[derive(Debug, Clone, Serialize)]
pub struct Emerged<'g> {
    pub principal: &'g str,
    pub kind: NodeKind,
    /// The identity whose grant it is.
    pub identity: &'g str,
    /// How the principal reaches that identity (empty when the grant is its
    /// own, through a group).
    pub via: Vec<Hop<'g>>,
    /// The grant newly within reach; none when what emerged is the ability
    /// to act as `identity` itself (whatever it holds is listed apart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant<'g>>,
    /// How much the new access opens up: admin wildcards first.
    pub score: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift<'g> {
    pub since: String,
    pub until: String,
    pub changes: Vec<Change>,
    pub emerged: Vec<Emerged<'g>>,
}

/// How much a grant opens up, for ranking.
fn breadth(g: &Grant<'_>) -> u32 {
    let a = g.actions();
    let mut score = if a == "*" || a.contains("anything but") {
        100
    } else if a.contains("iam:*") || a.contains("sts:*") || a.contains("k8s:*") || a.contains("*:*") {
        90
    } else if a.contains(":*") {
        60
    } else if ["Put", "Create", "Delete", "Attach", "Update", "Pass", "k8s:create", "k8s:patch", "k8s:update"]
        .iter()
        .any(|w| a.contains(w))
    {
        40
    } else {
        20
    };
    if g.resources() == "*" {
        score += 20;
    }
    if g.conditional() {
        score /= 2;
    }
    score
}

/// How much newly acting as another identity opens up: more when it
/// crosses an account boundary.
fn identity_breadth(principal: &str, identity: &str) -> u32 {
    match (super::account_of(principal), super::account_of(identity)) {
        (Some(a), Some(b)) if a != b => 80,
        _ => 50,
    }
}

/// What identifies a grant across two views.
fn grant_key(identity: &str, g: &Grant<'_>) -> String {
    format!("{identity}|{}|{}|{}", g.source(), g.actions(), g.resources())
}

impl TrustGraph {
    /// What changed between `since` and `until` (nanoseconds), and the
    /// indirect access that newly emerged, ranked by what it opens up.
    pub fn drift(&self, since: i64, until: i64) -> Drift<'_> {
        let mut changes = Vec::new();
        let mut touched: FxHashSet<Id> = FxHashSet::default();
        for (i, e) in self.edges().iter().enumerate() {
            let versions: Vec<_> = e.versions().copied().collect();
            let to_of = |v: &crate::graph::Version| {
                if e.key.b == NONE {
                    match self.payload(v.payload) {
                        Payload::Ref(r) => self.name(*r).to_string(),
                        _ => String::new(),
                    }
                } else {
                    self.name(e.key.b).to_string()
                }
            };
            let within = |t: i64| t > since && t <= until;
            for (k, v) in versions.iter().enumerate() {
                // A version that ends where the next begins is one change of content.
                let replaced = versions.get(k + 1).is_some_and(|n| n.from == v.to);
                let previous = versions[..k].last().filter(|p| p.to == v.from);
                let opened = if let Some(p) = previous {
                    // Same content declared where it was observed (an
                    // inventory listing what a request already showed) is
                    // the same fact, no longer only evidence: no change.
                    (p.payload != v.payload).then_some("changed")
                } else if v.observed() {
                    None // A first sighting is not a change.
                } else {
                    Some("added")
                };
                let mut record = |change: &'static str, t: i64, provenance: String| {
                    changes.push(Change {
                        change,
                        edge: e.key.kind.as_str(),
                        from: self.name(e.key.a).to_string(),
                        to: to_of(v),
                        at: tenet_model::Timestamp::from_unix_nanos(t).to_string(),
                        provenance,
                    });
                    touched.insert(e.key.a);
                    if e.key.b != NONE {
                        touched.insert(e.key.b);
                    }
                };
                if let Some(change) = opened
                    && within(v.from)
                {
                    record(change, v.from, self.provenance(v.provenance).to_string());
                }
                if !replaced && v.to != crate::graph::OPEN && within(v.to) {
                    let by = self.closed_by(i as u32, v.to).unwrap_or("").to_string();
                    record("removed", v.to, by);
                }
            }
        }
        changes.sort_by(|a, b| a.at.cmp(&b.at).then(a.edge.cmp(b.edge)));
        let (before, after) = (self.view_known(since, until), self.view(until));
        // Principals whose reach could have changed: those that can act as
        // something a change touched, or hold it through a group or policy.
        let mut affected: FxHashSet<Id> = FxHashSet::default();
        for &t in &touched {
            for view in [&before, &after] {
                affected.extend(view.who_becomes(t).nodes.iter().map(|n| n.id));
                let mut holders: Vec<Id> = view.holders.get(&t).cloned().unwrap_or_default();
                holders.extend(view.members_of(t).iter().map(|(m, _)| *m));
                for h in holders {
                    let mut members = vec![h];
                    members.extend(view.members_of(h).iter().map(|(m, _)| *m));
                    for m in members {
                        affected.extend(view.who_becomes(m).nodes.iter().map(|n| n.id));
                    }
                }
            }
        }
        let mut affected: Vec<Id> = affected.into_iter().filter(|&p| self.node_kind(p).is_principal()).collect();
        affected.sort_unstable();
        let mut emerged = Vec::new();
        for p in affected {
            let name = self.name(p);
            let old_reach = before.reach(name);
            let old: FxHashSet<String> =
                old_reach.iter().flat_map(|r| r.grants()).map(|(i, g)| grant_key(i.identity, g)).collect();
            let old_identities: FxHashSet<&str> =
                old_reach.iter().flat_map(|r| r.identities.iter()).map(|i| i.identity).collect();
            let Some(new) = after.reach(name) else { continue };
            for reached in &new.identities {
                if !reached.via.is_empty() && !old_identities.contains(reached.identity) {
                    emerged.push(Emerged {
                        principal: new.principal,
                        kind: new.kind,
                        identity: reached.identity,
                        via: reached.via.clone(),
                        grant: None,
                        score: identity_breadth(new.principal, reached.identity),
                    });
                }
                for g in &reached.grants {
                    // Only indirect access: a new grant of the principal's own is already a change above.
                    if reached.via.is_empty() && g.group.is_none() {
                        continue;
                    }
                    if !old.contains(&grant_key(reached.identity, g)) {
                        emerged.push(Emerged {
                            principal: new.principal,
                            kind: new.kind,
                            identity: reached.identity,
                            via: reached.via.clone(),
                            grant: Some(*g),
                            score: breadth(g),
                        });
                    }
                }
            }
        }
        emerged.sort_by(|a, b| {
            b.score.cmp(&a.score).then(a.via.len().cmp(&b.via.len())).then(a.principal.cmp(b.principal))
        });
        Drift {
            since: tenet_model::Timestamp::from_unix_nanos(since).to_string(),
            until: tenet_model::Timestamp::from_unix_nanos(until).to_string(),
            changes,
            emerged,
        }
    }
}
