//! `unused`: granted but unused access, in the spirit of IAM Access
//! Analyzer's unused-access findings: principals with no use in a window,
//! and the granted actions that principals in use did not use.

use rustc_hash::FxHashMap;
use serde::Serialize;
use tenet_model::{Effect, Matcher, NodeKind};

use super::Label;
use crate::intern::Id;
use crate::view::View;

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
            if !present || !matches!(kind, NodeKind::HUMAN | NodeKind::WORKLOAD | NodeKind::ROLE | NodeKind::AGENT) {
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
                                        source: Some(format!("{} of {}", Label(Some(s), si as u16), self.name(policy))),
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
