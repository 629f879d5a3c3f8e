//! What Tenet knows about a request at the moment of the decision, as the
//! `tenet` record of the Cedar context (NIST SP 800-207 §3.3.1: contextual,
//! history-aware; criteria plus a score).
//!
//! Every signal says whether it is `available`; an unavailable signal
//! carries no value rather than an invented one (its other attributes are
//! absent, so policies test `has` before using them; the shipped schema
//! declares them optional).

use cedar_policy::RestrictedExpression;
use serde::Serialize;

use crate::authzen::{Action, Entity};

/// The live trust signals behind one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TrustSignals {
    pub risk: Option<Risk>,
    pub delegation: Option<Delegation>,
    pub novelty: Option<Novelty>,
    pub findings: Option<OpenFindings>,
    pub assurance: Option<Assurance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Risk {
    /// 0–100.
    pub score: u8,
    /// `low|medium|high|critical`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Delegation {
    /// Hops from the acting principal to the person it acts for (0: acting for itself).
    pub depth: u32,
    /// Principal ids, acting principal first.
    pub chain: Vec<String>,
    /// The person at the end of the chain, when there is one.
    pub origin: Option<String>,
    /// The agent in the chain, when one is.
    pub via_agent: Option<String>,
    /// The origin person's risk score, when known: what an adaptive rule on
    /// agent-delegated actions looks at.
    pub origin_risk: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Novelty {
    /// Has this principal done this action on this resource type before?
    pub principal_before: bool,
    /// Has its peer group?
    pub peer_group_before: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OpenFindings {
    pub open: u32,
    /// `none|low|medium|high|critical`.
    pub max_severity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Assurance {
    /// How the latest authentication was made (e.g. `password`, `mfa`, `sso`, `key`).
    pub method: String,
    pub mfa: bool,
    /// RFC 3339 time of that authentication.
    pub at: String,
}

/// A principal or resource as the trust graph knows it: attributes, and
/// groups, roles or owners as Cedar parents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownEntity {
    pub attrs: Vec<(String, Attr)>,
    /// `(type, id)` of each parent.
    pub parents: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Long(i64),
    Bool(bool),
    Strs(Vec<String>),
    /// A reference to another entity, `(type, id)`.
    Entity(String, String),
}

impl Attr {
    pub(crate) fn to_cedar(&self) -> RestrictedExpression {
        match self {
            Attr::Str(s) => RestrictedExpression::new_string(s.clone()),
            Attr::Long(n) => RestrictedExpression::new_long(*n),
            Attr::Bool(b) => RestrictedExpression::new_bool(*b),
            Attr::Strs(v) => RestrictedExpression::new_set(v.iter().cloned().map(RestrictedExpression::new_string)),
            Attr::Entity(t, id) => match crate::values::uid(t, id, "") {
                Ok(uid) => RestrictedExpression::new_entity_uid(uid),
                // Not a Cedar name: kept as the Tenet id it is.
                Err(_) => RestrictedExpression::new_string(format!("{t}:{id}")),
            },
        }
    }
}

/// Where the decision point learns what Tenet knows. The server implements
/// it over the store, graph and learner; [`NoTrust`] knows nothing.
pub trait TrustSource: Send + Sync {
    /// The signals for `subject` doing `action` on `resource`, now.
    fn signals(&self, subject: &Entity, action: &Action, resource: &Entity) -> TrustSignals;
    /// The entity as the trust graph knows it, if it does.
    fn entity(&self, kind: &str, id: &str) -> Option<KnownEntity>;
    /// Ids of every known entity of `kind` (search candidates).
    fn candidates(&self, kind: &str) -> Vec<String>;
}

/// A decision point with no trust data: every signal unavailable.
pub struct NoTrust;

impl TrustSource for NoTrust {
    fn signals(&self, _: &Entity, _: &Action, _: &Entity) -> TrustSignals {
        TrustSignals::default()
    }
    fn entity(&self, _: &str, _: &str) -> Option<KnownEntity> {
        None
    }
    fn candidates(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

fn record(fields: Vec<(&str, RestrictedExpression)>) -> RestrictedExpression {
    // Keys are distinct literals: a record of them always builds.
    RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_string(), v))).expect("distinct record keys")
}

fn available(yes: bool) -> (&'static str, RestrictedExpression) {
    ("available", RestrictedExpression::new_bool(yes))
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_string())
}

impl TrustSignals {
    /// The `tenet` record of the Cedar context.
    pub fn to_cedar(&self) -> RestrictedExpression {
        let risk = match &self.risk {
            Some(r) => record(vec![
                available(true),
                ("score", RestrictedExpression::new_long(r.score.into())),
                ("level", s(&r.level)),
            ]),
            None => record(vec![available(false)]),
        };
        let delegation = match &self.delegation {
            Some(d) => {
                let mut f = vec![
                    available(true),
                    ("depth", RestrictedExpression::new_long(d.depth.into())),
                    ("chain", RestrictedExpression::new_set(d.chain.iter().map(|c| s(c)))),
                    ("delegated", RestrictedExpression::new_bool(d.depth > 0)),
                ];
                if let Some(o) = &d.origin {
                    f.push(("origin", s(o)));
                }
                if let Some(a) = &d.via_agent {
                    f.push(("via_agent", s(a)));
                }
                if let Some(r) = d.origin_risk {
                    f.push(("origin_risk", RestrictedExpression::new_long(r.into())));
                }
                record(f)
            }
            None => record(vec![available(false)]),
        };
        let novelty = match &self.novelty {
            Some(n) => record(vec![
                available(true),
                ("principal_before", RestrictedExpression::new_bool(n.principal_before)),
                ("peer_group_before", RestrictedExpression::new_bool(n.peer_group_before)),
            ]),
            None => record(vec![available(false)]),
        };
        let findings = match &self.findings {
            Some(f) => record(vec![
                available(true),
                ("open", RestrictedExpression::new_long(f.open.into())),
                ("max_severity", s(&f.max_severity)),
            ]),
            None => record(vec![available(false)]),
        };
        let assurance = match &self.assurance {
            Some(a) => record(vec![
                available(true),
                ("method", s(&a.method)),
                ("mfa", RestrictedExpression::new_bool(a.mfa)),
                ("at", s(&a.at)),
            ]),
            None => record(vec![available(false)]),
        };
        record(vec![
            ("risk", risk),
            ("delegation", delegation),
            ("novelty", novelty),
            ("findings", findings),
            ("assurance", assurance),
        ])
    }

    /// The same record as JSON, for explanations and the decision log.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let unavailable = || json!({"available": false});
        json!({
            "risk": self.risk.as_ref().map_or_else(unavailable, |r| json!({"available": true, "score": r.score, "level": r.level})),
            "delegation": self.delegation.as_ref().map_or_else(unavailable, |d| {
                let mut v = json!({"available": true, "depth": d.depth, "chain": d.chain, "delegated": d.depth > 0});
                if let Some(o) = &d.origin { v["origin"] = json!(o); }
                if let Some(a) = &d.via_agent { v["via_agent"] = json!(a); }
                if let Some(r) = d.origin_risk { v["origin_risk"] = json!(r); }
                v
            }),
            "novelty": self.novelty.as_ref().map_or_else(unavailable, |n| json!({"available": true, "principal_before": n.principal_before, "peer_group_before": n.peer_group_before})),
            "findings": self.findings.as_ref().map_or_else(unavailable, |f| json!({"available": true, "open": f.open, "max_severity": f.max_severity})),
            "assurance": self.assurance.as_ref().map_or_else(unavailable, |a| json!({"available": true, "method": a.method, "mfa": a.mfa, "at": a.at})),
        })
    }
}

impl TrustSignals {
    /// Signals from the JSON [`Self::to_json`] writes: how `tenet policy
    /// test` cases fix the signals an adaptive rule sees. A section absent
    /// or `"available": false` is unavailable.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        let section = |name: &str| -> Option<&serde_json::Map<String, Value>> {
            v.get(name)?.as_object().filter(|o| o.get("available").and_then(Value::as_bool).unwrap_or(true))
        };
        let text = |o: &serde_json::Map<String, Value>, s: &str, k: &str| -> Result<String, String> {
            o.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("{s}.{k}: a string is required"))
        };
        let num = |o: &serde_json::Map<String, Value>, s: &str, k: &str| -> Result<u64, String> {
            o.get(k).and_then(Value::as_u64).ok_or_else(|| format!("{s}.{k}: a non-negative integer is required"))
        };
        let flag = |o: &serde_json::Map<String, Value>, s: &str, k: &str| -> Result<bool, String> {
            o.get(k).and_then(Value::as_bool).ok_or_else(|| format!("{s}.{k}: a boolean is required"))
        };
        let mut out = TrustSignals::default();
        if let Some(o) = section("risk") {
            let score = num(o, "risk", "score")?.min(100) as u8;
            let level = o.get("level").and_then(Value::as_str).map_or_else(
                || {
                    match score {
                        75.. => "critical",
                        50.. => "high",
                        25.. => "medium",
                        _ => "low",
                    }
                    .to_string()
                },
                str::to_string,
            );
            out.risk = Some(Risk { score, level });
        }
        if let Some(o) = section("delegation") {
            let chain: Vec<String> = o
                .get("chain")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            out.delegation = Some(Delegation {
                depth: num(o, "delegation", "depth")? as u32,
                chain,
                origin: o.get("origin").and_then(Value::as_str).map(str::to_string),
                via_agent: o.get("via_agent").and_then(Value::as_str).map(str::to_string),
                origin_risk: o.get("origin_risk").and_then(Value::as_u64).map(|r| r.min(100) as u8),
            });
        }
        if let Some(o) = section("novelty") {
            out.novelty = Some(Novelty {
                principal_before: flag(o, "novelty", "principal_before")?,
                peer_group_before: flag(o, "novelty", "peer_group_before")?,
            });
        }
        if let Some(o) = section("findings") {
            out.findings = Some(OpenFindings {
                open: num(o, "findings", "open")? as u32,
                max_severity: text(o, "findings", "max_severity")?,
            });
        }
        if let Some(o) = section("assurance") {
            out.assurance = Some(Assurance {
                method: text(o, "assurance", "method")?,
                mfa: flag(o, "assurance", "mfa")?,
                at: text(o, "assurance", "at")?,
            });
        }
        Ok(out)
    }
}
