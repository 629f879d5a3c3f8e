//! Principals: every identity that can act, and what kind of actor it is.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of actor a principal is. The kind drives peer grouping and
/// policy later on, so sources set it from evidence, and say `Unknown`
/// rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person.
    Human,
    /// A service, workload, service account or machine credential.
    Workload,
    /// An AI agent acting through tools.
    Agent,
    /// A cloud provider's own service acting in the account (e.g. `rds.amazonaws.com`).
    CloudService,
    /// A role: an identity without long-term credentials that others assume.
    Role,
    /// A whole account or tenant acting as a principal (cross-account access).
    Account,
    /// Explicitly unauthenticated (`system:anonymous`, AWS `Anonymous`).
    Anonymous,
    /// The source does not say who or what acted.
    Unknown,
}

impl PrincipalKind {
    pub const ALL: [PrincipalKind; 8] = [
        PrincipalKind::Human,
        PrincipalKind::Workload,
        PrincipalKind::Agent,
        PrincipalKind::CloudService,
        PrincipalKind::Role,
        PrincipalKind::Account,
        PrincipalKind::Anonymous,
        PrincipalKind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Human => "human",
            PrincipalKind::Workload => "workload",
            PrincipalKind::Agent => "agent",
            PrincipalKind::CloudService => "cloud_service",
            PrincipalKind::Role => "role",
            PrincipalKind::Account => "account",
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identity that acted or on whose behalf something acted.
///
/// `id` is canonical and unique across sources: an ARN for AWS identities,
/// otherwise `<namespace>:<native id>` (`okta:`, `k8s:`, `agent:`, `user:` …)
/// so that two systems' "admin" never merge by accident. Linking the same
/// person across systems is the trust graph's job, not the parser's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub kind: PrincipalKind,
    /// A human-readable name (user name, e-mail, agent name) when the source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account or tenant the principal belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl Principal {
    pub fn new(id: impl Into<String>, kind: PrincipalKind) -> Self {
        Principal { id: id.into(), kind, name: None, account: None }
    }

    pub fn unknown() -> Self {
        Principal::new("unknown", PrincipalKind::Unknown)
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn with_name_opt(mut self, name: Option<impl Into<String>>) -> Self {
        self.name = name.map(Into::into);
        self
    }

    pub fn with_account(mut self, account: Option<impl Into<String>>) -> Self {
        self.account = account.map(Into::into);
        self
    }
}
