//! Questions the graph answers: who can, how far can, what changed, what
//! goes unused. All but drift are asked of a [`View`], i.e. as of a time.
//!
//! Policy semantics: a principal may perform an action on a resource when a
//! statement of an identity it can act as allows it, no deny statement of
//! that identity (or its groups) covers it, and the identity's permissions
//! boundary, if any, allows it too. Conditions are never evaluated (the
//! request context is unknown): a conditional allow makes the path
//! conditional; a conditional deny makes it conditional too, never silently
//! allowed or denied. A principal is conditional only when all its paths are.
//!
//! Traversal works on compact [`Step`]s (ids and indices); the words of an
//! answer ([`Reason`]) are rendered only when it is printed, so an answer of
//! thousands of principals costs no string building until it is shown.

mod drift;
mod policy;
mod reach;
mod unused;
mod who_can;

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use tenet_model::{Matcher, RbacRule, Statement};

use crate::intern::{Id, NONE};
use crate::view::{StmtRef, View};

pub use drift::{Change, Drift, Emerged};
pub use reach::{Access, Deny, Grant, Reach, Reached};
pub use unused::Unused;
pub(crate) use who_can::Becomers;
pub use who_can::Principal;

/// Paths are searched this deep: role chains longer than this do not exist
/// in practice and cycles must end.
const MAX_DEPTH: u8 = 8;
/// Paths kept per principal in an answer (the shortest, unconditional first).
const MAX_PATHS: usize = 8;

/// How one node leads to the next, in ids: what a hop is before it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// `from` is a member of the group `to`.
    Member,
    /// `from` (an identity or group) holds the policy `to`, whose statement
    /// at this index grants.
    Grant(u16),
    /// `from`'s permissions boundary is the policy `to`.
    Boundary,
    /// The trust policy of role `to` names `from`.
    TrustNames,
    /// The trust policy of role `to` trusts the account `from` (its root).
    TrustAccount,
    /// The trust policy of role `to` trusts `from`'s account, and this
    /// statement of `from`'s lets it assume `to`.
    MayAssume(StmtRef),
    /// The trust policy of role `to` (in another account) names `from`, and
    /// this statement of `from`'s lets it assume `to`.
    NamedMayAssume(StmtRef),
    /// The trust policy of role `to` trusts the AWS service `from`.
    TrustService,
    /// The trust policy of role `to` trusts the identity provider `from`.
    TrustFederated,
    /// `from` was seen assuming `to`.
    Observed,
    /// Agent `from` has a tool (this id) that runs as `to`.
    Tool(Id),
    /// Agent `from` acts for person `to`.
    ActsFor,
    /// Agent `to` acts for person `from` (the delegation, walked from the person).
    ServedBy,
    /// `from` owns the agent `to`.
    Owns,
    /// `from` and `to` are the same identity under two names.
    SameAs,
    /// `from` is a session of the role `to`.
    SessionOf,
    /// `from` is bound to RBAC role `to` (in this namespace, or `NONE` for a ClusterRoleBinding).
    Binding(Id),
    /// RBAC role `from` (= `to`) grants by its rule at this index (aggregated rules included).
    Rule(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub from: Id,
    pub to: Id,
    pub via: Via,
    pub conditional: bool,
}

impl Step {
    pub(crate) fn new(from: Id, to: Id, via: Via) -> Self {
        Step { from, to, via, conditional: false }
    }

    pub(crate) fn conditional(mut self, c: bool) -> Self {
        self.conditional = c;
        self
    }
}

/// One hop of a path as shown: `from` reaches `to` by an edge, for a
/// reason. Compact (the words are rendered on display, from `from`, `to`
/// and the statement or rule behind the hop) because answers hold many.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'g> {
    pub from: &'g str,
    pub to: &'g str,
    pub conditional: bool,
    detail: Detail<'g>,
}

/// What a hop needs beyond its ends to say why it holds.
#[derive(Debug, Clone, Copy)]
enum Detail<'g> {
    Member,
    Grant { statement: Option<&'g Statement>, index: u16 },
    Boundary,
    TrustNames,
    TrustAccount,
    MayAssume { policy: &'g str, statement: Option<&'g Statement>, index: u16 },
    NamedMayAssume { policy: &'g str, statement: Option<&'g Statement>, index: u16 },
    TrustService,
    TrustFederated,
    Observed,
    Tool { tool: &'g str },
    ActsFor,
    ServedBy,
    Owns,
    SameAs,
    SessionOf,
    Binding { namespace: Option<&'g str> },
    Rule { rule: Option<&'g RbacRule> },
}

impl<'g> Hop<'g> {
    /// membership, assumption, grant, boundary, binding, delegation, tool, ownership, same-as
    pub fn edge(&self) -> &'static str {
        match self.detail {
            Detail::Member => "membership",
            Detail::Grant { .. } | Detail::Rule { .. } => "grant",
            Detail::Boundary => "boundary",
            Detail::TrustNames
            | Detail::TrustAccount
            | Detail::MayAssume { .. }
            | Detail::NamedMayAssume { .. }
            | Detail::TrustService
            | Detail::TrustFederated
            | Detail::Observed => "assumption",
            Detail::Tool { .. } => "tool",
            Detail::ActsFor | Detail::ServedBy => "delegation",
            Detail::Owns => "ownership",
            Detail::SameAs => "same-as",
            Detail::SessionOf => "session",
            Detail::Binding { .. } => "binding",
        }
    }

    /// Why the hop holds, in the words of the policy or inventory behind it.
    pub fn reason(&self) -> Reason<'_, 'g> {
        Reason(self)
    }
}

/// A hop's reason, rendered by `Display`.
pub struct Reason<'a, 'g>(&'a Hop<'g>);

impl fmt::Display for Reason<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Hop { from, to, detail, .. } = *self.0;
        match detail {
            Detail::Member => write!(f, "member of {to}"),
            Detail::Grant { statement, index } => {
                write!(f, "statement {} of {to}", Label(statement, index))?;
                if let Some(s) = statement {
                    write!(f, ": Allow {} on {}", describe(&s.actions), describe(&s.resources))?;
                    if !s.conditions.is_empty() {
                        f.write_str(" when its conditions hold")?;
                    }
                }
                Ok(())
            }
            Detail::Boundary => write!(f, "within the permissions boundary {to}"),
            Detail::TrustNames => write!(f, "trust policy of {to} names {from}"),
            Detail::TrustAccount => {
                write!(f, "trust policy of {to} trusts account {}", account_of(from).unwrap_or(from))
            }
            Detail::MayAssume { policy, statement, index } => write!(
                f,
                "trust policy of {to} trusts account {}; {from} may assume it: statement {} of {policy}",
                account_of(from).unwrap_or(""),
                Label(statement, index)
            ),
            Detail::NamedMayAssume { policy, statement, index } => write!(
                f,
                "trust policy of {to} names {from}; {from} may assume it: statement {} of {policy}",
                Label(statement, index)
            ),
            Detail::TrustService => {
                write!(f, "trust policy of {to} trusts service {}", from.strip_prefix("aws:service/").unwrap_or(from))
            }
            Detail::TrustFederated => write!(f, "trust policy of {to} trusts {from}"),
            Detail::Observed => write!(f, "observed assuming {to}"),
            Detail::Tool { tool } => write!(f, "tool {tool} runs as {to}"),
            Detail::ActsFor => write!(f, "{from} acts for {to}"),
            Detail::ServedBy => write!(f, "{to} acts for {from}"),
            Detail::Owns => write!(f, "{from} owns {to}"),
            Detail::SameAs => f.write_str("the same identity"),
            Detail::SessionOf => write!(f, "a session of {to}"),
            Detail::Binding { namespace: Some(ns) } => write!(f, "RoleBinding in namespace {ns}"),
            Detail::Binding { namespace: None } => f.write_str("ClusterRoleBinding"),
            Detail::Rule { rule } => {
                write!(f, "rule of {to}")?;
                if let Some(r) = rule {
                    let groups = if r.api_groups.iter().all(|g| g.is_empty()) {
                        "core".to_string()
                    } else {
                        r.api_groups.join(",")
                    };
                    write!(f, ": {} {} in {groups}", r.verbs.join(","), r.resources.join(","))?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Hop<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Hop", 5)?;
        st.serialize_field("from", self.from)?;
        st.serialize_field("to", self.to)?;
        st.serialize_field("edge", self.edge())?;
        st.serialize_field("reason", &self.reason().to_string())?;
        if self.conditional {
            st.serialize_field("conditional", &true)?;
        }
        st.end()
    }
}

pub(crate) struct Label<'a>(pub Option<&'a Statement>, pub u16);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|s| s.sid.as_deref()) {
            Some(sid) => f.write_str(sid),
            None => write!(f, "#{}", self.1),
        }
    }
}

pub(crate) fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Any => "*".into(),
        Matcher::Only(v) => v.join(","),
        Matcher::Not(v) => format!("anything but {}", v.join(",")),
    }
}

pub(crate) fn describe_rule(rule: &RbacRule) -> (String, String) {
    let verbs = rule.verbs.iter().map(|v| format!("k8s:{v}")).collect::<Vec<_>>().join(",");
    let mut resources = rule.resources.join(",");
    if !rule.non_resource_urls.is_empty() {
        if !resources.is_empty() {
            resources.push_str(", ");
        }
        resources.push_str("non-resource URLs ");
        resources.push_str(&rule.non_resource_urls.join(","));
    }
    if !rule.resource_names.is_empty() {
        resources.push_str(" named ");
        resources.push_str(&rule.resource_names.join(","));
    }
    (verbs, resources)
}

/// The account of an ARN (`arn:aws:iam::123456789012:user/x` → `123456789012`).
pub(crate) fn account_of(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:aws:").and_then(|r| r.split(':').nth(2)).filter(|a| !a.is_empty())
}

impl<'g> View<'g> {
    /// A step as shown.
    pub(crate) fn hop(&self, s: &Step) -> Hop<'g> {
        let detail = match s.via {
            Via::Member => Detail::Member,
            Via::Grant(index) => Detail::Grant { statement: self.statement(StmtRef { policy: s.to, index }), index },
            Via::Boundary => Detail::Boundary,
            Via::TrustNames => Detail::TrustNames,
            Via::TrustAccount => Detail::TrustAccount,
            Via::MayAssume(r) => {
                Detail::MayAssume { policy: self.name(r.policy), statement: self.statement(r), index: r.index }
            }
            Via::NamedMayAssume(r) => {
                Detail::NamedMayAssume { policy: self.name(r.policy), statement: self.statement(r), index: r.index }
            }
            Via::TrustService => Detail::TrustService,
            Via::TrustFederated => Detail::TrustFederated,
            Via::Observed => Detail::Observed,
            Via::Tool(tool) => Detail::Tool { tool: self.name(tool) },
            Via::ActsFor => Detail::ActsFor,
            Via::ServedBy => Detail::ServedBy,
            Via::Owns => Detail::Owns,
            Via::SameAs => Detail::SameAs,
            Via::SessionOf => Detail::SessionOf,
            Via::Binding(ns) => Detail::Binding { namespace: (ns != NONE).then(|| self.name(ns)) },
            Via::Rule(i) => Detail::Rule { rule: self.rbac_rules(s.to).get(i as usize).copied() },
        };
        Hop { from: self.name(s.from), to: self.name(s.to), conditional: s.conditional, detail }
    }
}
