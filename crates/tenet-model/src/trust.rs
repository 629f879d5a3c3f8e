//! Facts about trust: who is what, who belongs where, which policies apply,
//! who may assume what, which agent acts for whom. Inventory importers and
//! event adapters produce them; the trust graph keeps their history.

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyDocument, RbacRule};
use crate::principal::PrincipalKind;
use crate::time::Timestamp;

/// What a node of the trust graph is: an actor, of the one kind of actor
/// every part of Tenet uses ([`PrincipalKind`]), or something actors hold,
/// belong to or act through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A person, workload, agent, role or account (and the cloud's own
    /// services, the anonymous and the unknown, when events name them).
    Actor(PrincipalKind),
    Group,
    /// A session of a role (`arn:aws:sts::123456789012:assumed-role/ops/alice`):
    /// the role acting, for a while. A hop in answers, not a principal.
    Session,
    /// A managed or inline policy, or a Kubernetes (Cluster)Role.
    Policy,
    /// An MCP tool an agent can call.
    Tool,
    Resource,
}

impl NodeKind {
    pub const HUMAN: NodeKind = NodeKind::Actor(PrincipalKind::Human);
    /// A workload or service account (IAM user used by a machine, k8s service account).
    pub const WORKLOAD: NodeKind = NodeKind::Actor(PrincipalKind::Workload);
    pub const AGENT: NodeKind = NodeKind::Actor(PrincipalKind::Agent);
    pub const ROLE: NodeKind = NodeKind::Actor(PrincipalKind::Role);
    /// A whole account or tenant as a principal (`arn:aws:iam::123456789012:root`).
    pub const ACCOUNT: NodeKind = NodeKind::Actor(PrincipalKind::Account);

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Actor(k) => k.as_str(),
            NodeKind::Group => "group",
            NodeKind::Session => "session",
            NodeKind::Policy => "policy",
            NodeKind::Tool => "tool",
            NodeKind::Resource => "resource",
        }
    }

    /// The kind named `s` (as [`NodeKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<NodeKind> {
        Some(match s {
            "group" => NodeKind::Group,
            "session" => NodeKind::Session,
            "policy" => NodeKind::Policy,
            "tool" => NodeKind::Tool,
            "resource" => NodeKind::Resource,
            other => NodeKind::Actor(PrincipalKind::ALL.into_iter().find(|k| k.as_str() == other)?),
        })
    }

    /// The actor kind, for a node that is an actor.
    pub fn actor(self) -> Option<PrincipalKind> {
        match self {
            NodeKind::Actor(k) => Some(k),
            _ => None,
        }
    }

    /// Whether nodes of this kind can act (are principals in answers).
    pub fn is_principal(self) -> bool {
        matches!(self, NodeKind::HUMAN | NodeKind::WORKLOAD | NodeKind::AGENT | NodeKind::ROLE | NodeKind::ACCOUNT)
    }
}

impl From<PrincipalKind> for NodeKind {
    fn from(k: PrincipalKind) -> Self {
        NodeKind::Actor(k)
    }
}

// Stored snapshots and answers name kinds as plain strings, as before actors
// had a kind of their own: `"human"`, `"group"`.
impl Serialize for NodeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NodeKind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown node kind {s:?}")))
    }
}

/// One fact. Ids are the same canonical principal and resource ids events
/// use (ARNs, `k8s:…`, `agent:…`, `okta:…`, `user:…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// A node exists.
    Node {
        id: String,
        kind: NodeKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// `member` belongs to `group` (IAM group, identity-provider group, Kubernetes group).
    Member { member: String, group: String },
    /// A policy's document. `policy` is a managed policy's ARN, or
    /// `<holder>#inline/<name>` for an inline policy.
    Policy { policy: String, document: PolicyDocument },
    /// `holder` (user, group or role) has `policy` attached.
    Attached { holder: String, policy: String },
    /// `holder`'s permissions are bounded by `policy`.
    Boundary { holder: String, policy: String },
    /// `role` may be assumed by whoever its trust policy names.
    Trust { role: String, document: PolicyDocument },
    /// A Kubernetes Role (`namespace` set) or ClusterRole: its rules, labels
    /// and, for aggregated ClusterRoles, the label selectors it gathers.
    RbacRole {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        rules: Vec<RbacRule>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        aggregate: Vec<Vec<(String, String)>>,
    },
    /// `subject` bound to `role`; `namespace` for a RoleBinding, none for a
    /// ClusterRoleBinding.
    RbacBinding {
        subject: String,
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// `agent` acts on behalf of `person`, within `scope`, until `expires`.
    ActsFor {
        agent: String,
        person: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scope: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<Timestamp>,
    },
    /// `owner` owns `agent`.
    Owns { owner: String, agent: String },
    /// `agent` can call `tool`, which acts as `identity` (its server's role
    /// or service account).
    Tool { agent: String, tool: String, identity: String },
    /// Two ids for the same real-world identity (an IdP user, their SCIM
    /// record, their federated cloud identity).
    SameAs { a: String, b: String },
}

impl Fact {
    /// The identity of the fact for history: two facts with the same key
    /// are versions of one edge (a changed policy document, a re-bound role).
    pub fn key(&self) -> String {
        match self {
            Fact::Node { id, .. } => format!("node|{id}"),
            Fact::Member { member, group } => format!("member|{member}|{group}"),
            Fact::Policy { policy, .. } => format!("policy|{policy}"),
            Fact::Attached { holder, policy } => format!("attached|{holder}|{policy}"),
            Fact::Boundary { holder, .. } => format!("boundary|{holder}"),
            Fact::Trust { role, .. } => format!("trust|{role}"),
            Fact::RbacRole { role, .. } => format!("rbac-role|{role}"),
            Fact::RbacBinding { subject, role, namespace } => {
                format!("rbac-binding|{subject}|{role}|{}", namespace.as_deref().unwrap_or("*"))
            }
            Fact::ActsFor { agent, person, .. } => format!("acts-for|{agent}|{person}"),
            Fact::Owns { owner, agent } => format!("owns|{owner}|{agent}"),
            Fact::Tool { agent, tool, .. } => format!("tool|{agent}|{tool}"),
            Fact::SameAs { a, b } => format!("same-as|{a}|{b}"),
        }
    }
}

/// A change to trust an event records, at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TrustChange {
    /// The fact holds from now on (replacing any other version of it).
    Assert { fact: Fact },
    /// The fact with this key no longer holds.
    Retract { key: String },
    /// The fact was seen to hold (a request's authentication context, a
    /// delegation in use): evidence that it holds, not a change to it. It
    /// never replaces what is declared, is not reported as drift, and no
    /// inventory snapshot retracts it (inventories do not speak of it).
    Observe { fact: Fact },
}

/// An inventory as collected at one time: what a source said was true then.
/// Everything in `scopes` that is not among `facts` was not true then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The inventory's format (`aws-iam`, `scim`, `k8s-rbac`, `agent-registry`).
    pub source: String,
    /// What the snapshot is complete for: fact keys it owns (e.g. `aws:123456789012`).
    pub scope: String,
    pub collected_at: Timestamp,
    pub facts: Vec<Fact>,
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
