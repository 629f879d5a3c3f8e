//! Access policies as typed values: IAM policy documents (identity, trust
//! and boundary policies alike) and Kubernetes RBAC rules. Parsed at the
//! edge (inventory importers, event adapters); evaluated by the graph.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action`/`NotAction`, `Resource`/`NotResource`: a list of patterns that
/// must match, or must not; or absent (matches everything).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    Any,
    Only(Vec<String>),
    Not(Vec<String>),
}

/// `Principal`/`NotPrincipal` of a trust or resource policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrincipalMatcher {
    /// `NotPrincipal`.
    pub not: bool,
    /// `"Principal": "*"` or `{"AWS": "*"}`.
    pub anyone: bool,
    /// `AWS` ARNs or account ids.
    pub aws: Vec<String>,
    /// `Service` names (`lambda.amazonaws.com`).
    pub service: Vec<String>,
    /// `Federated` providers (SAML, OIDC ARNs, `accounts.google.com`).
    pub federated: Vec<String>,
}

/// A condition kept as written: Tenet does not pretend to evaluate request
/// context it does not have; a conditional grant is reported as conditional.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Statement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Matcher,
    pub resources: Matcher,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principals: Option<PrincipalMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// One rule of a Kubernetes Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RbacRule {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
    #[serde(default)]
    pub non_resource_urls: Vec<String>,
}

/// Whether `value` matches an IAM-style pattern: `*` any run, `?` any one
/// character; case-insensitive when `ignore_case` (actions are, ARNs are not).
pub fn glob_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let eq = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    // Iterative matching with one backtrack point: linear for IAM's patterns.
    let (mut pi, mut vi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

impl Matcher {
    /// Whether the matcher admits `value`.
    pub fn admits(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Only(ps) => ps.iter().any(|p| glob_match(p, value, ignore_case)),
            Matcher::Not(ps) => !ps.iter().any(|p| glob_match(p, value, ignore_case)),
        }
    }
}

impl Statement {
    /// Whether the statement applies to `action` on `resource` (ignoring
    /// conditions, which the caller reports).
    pub fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.admits(action, true) && self.resources.admits(resource, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_iam_rules() {
        assert!(glob_match("s3:Get*", "s3:GetObject", true));
        assert!(glob_match("S3:get*", "s3:GetObject", true));
        assert!(!glob_match("s3:Get*", "s3:PutObject", true));
        assert!(glob_match("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", false));
        assert!(!glob_match("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", false));
        assert!(glob_match("*", "", false));
        assert!(glob_match("iam:?etRole", "iam:GetRole", true));
        assert!(glob_match("a*b*c", "aXXbYYc", false));
        assert!(!glob_match("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn not_action_admits_everything_else() {
        let m = Matcher::Not(vec!["iam:*".into(), "organizations:*".into()]);
        assert!(m.admits("s3:GetObject", true));
        assert!(!m.admits("iam:CreateUser", true));
    }
}
