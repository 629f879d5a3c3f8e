//! What decisions ask of the learn stage ([`Knowledge`]), and how it
//! travels to where its learner is not. A cluster node analyses some
//! partitions and decides for all: the owners of the others send what their
//! learners learned ([`Learned`]), which it keeps in a [`KnowledgeIndex`]
//! per partition.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::baseline::PeerBaseline;
use crate::identity::Authentication;
use crate::sketch::Novelty;

/// See [`crate::Learner::knowledge`].
#[derive(Debug, Clone, PartialEq)]
pub struct Knowledge {
    /// The canonical id the principal is known under.
    pub id: String,
    /// Whether any of its activity was learned (else only inventory knows it).
    pub observed: bool,
    pub principal_before: bool,
    pub peer_group_before: bool,
    pub groups: Vec<String>,
    /// The people it is declared to act for (agents).
    pub acts_for: Vec<String>,
    pub authentication: Option<Authentication>,
}

/// A principal as decisions know it.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct KnownPrincipal {
    /// What it was seen doing; `None` when only inventory knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Novelty>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acts_for: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// What a learner learned since it was last asked, as it now stands: every
/// principal an event was about, whole (it replaces what a reader knew of
/// it), the aliases that name it, and its part of every peer group those
/// events taught (or that the principals belong to).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Learned {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<(String, KnownPrincipal)>,
    /// Alias → canonical id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<(String, PeerBaseline)>,
}

impl Learned {
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty() && self.aliases.is_empty() && self.peers.is_empty()
    }
}

/// The knowledge of a learner held elsewhere, kept from what it sends.
#[derive(Clone, Default)]
pub struct KnowledgeIndex {
    principals: FxHashMap<String, KnownPrincipal>,
    aliases: FxHashMap<String, String>,
    peers: FxHashMap<String, PeerBaseline>,
}

impl KnowledgeIndex {
    /// Takes in what a learner sent: what it says of a principal, an alias
    /// or a peer group replaces what was known.
    pub fn absorb(&mut self, learned: Learned) {
        self.principals.extend(learned.principals);
        self.aliases.extend(learned.aliases);
        self.peers.extend(learned.peers);
    }

    pub fn principals(&self) -> usize {
        self.principals.len()
    }

    /// As [`crate::Learner::knowledge`], from what was sent.
    pub fn knowledge(&self, principal: &str, action: &str, resource_type: &str) -> Option<Knowledge> {
        let id = self.aliases.get(principal).map_or(principal, String::as_str);
        let p = self.principals.get(id)?;
        knowledge_of(
            id,
            p.seen.as_ref(),
            p.groups.clone(),
            p.acts_for.clone(),
            p.authentication.clone(),
            |g, k| self.peers.get(g).is_some_and(|p| p.seen.contains(k)),
            action,
            resource_type,
        )
    }
}

/// How knowledge is read, whichever holds it: whether the principal, and
/// any of its peer groups (system groups aside: everyone is in them), did
/// `action` on a `resource_type` before.
#[allow(clippy::too_many_arguments)]
pub(crate) fn knowledge_of(
    id: &str,
    seen: Option<&Novelty>,
    groups: Vec<String>,
    mut acts_for: Vec<String>,
    authentication: Option<Authentication>,
    peer_seen: impl Fn(&str, u64) -> bool,
    action: &str,
    resource_type: &str,
) -> Option<Knowledge> {
    if seen.is_none() && groups.is_empty() && acts_for.is_empty() && authentication.is_none() {
        return None;
    }
    let k = crate::detect::action_on_type(action, resource_type);
    let peer_group_before = groups.iter().filter(|g| is_peer_group(g)).any(|g| peer_seen(g, k));
    acts_for.sort();
    Some(Knowledge {
        id: id.to_string(),
        observed: seen.is_some(),
        principal_before: seen.is_some_and(|s| s.contains(k)),
        peer_group_before,
        groups,
        acts_for,
        authentication,
    })
}

/// Whether a group says something of its members' work (system groups,
/// which everyone is in, do not).
pub(crate) fn is_peer_group(group: &str) -> bool {
    !group.contains("group/system:")
}
