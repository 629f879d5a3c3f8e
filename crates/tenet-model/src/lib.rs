//! Tenet's core vocabulary: the normalised event and the principals in it.
//!
//! This crate is pure: no I/O, no JSON of sources. Adapters in
//! `tenet-sources` parse at the edge into these types; every later stage
//! (store, graph, baselines, decisions) reads only these types.

pub mod category;
pub mod event;
pub mod failure;
pub mod finding;
pub mod ocsf;
pub mod policy;
pub mod principal;
pub mod signal;
pub mod time;
pub mod trust;

pub use category::Category;
pub use event::{
    Action, Event, EventId, IssuedCredential, Outcome, RawRecord, Resource, Session, Source, SourceContext, Status,
    TraceLink,
};
pub use failure::FailureKind;
pub use finding::{
    BaselineStat, Behaviour, BehaviourGroup, Evidence, Finding, FindingStatus, RuleMatch, Severity, StatusChange,
};
pub use ocsf::{ActivityId, ClassUid};
pub use policy::{Condition, Effect, Matcher, PolicyDocument, PrincipalMatcher, RbacRule, Statement};
pub use principal::{Principal, PrincipalKind};
pub use signal::{
    DeclaredChanges, NoticeChange, ObservedUse, PrincipalVerdict, RiskLevel, RiskPoint, TrustNotice, TrustUpdate,
    UpstreamSignal, Verdict,
};
pub use time::{TimeParseError, Timestamp};
pub use trust::{Fact, NodeKind, Snapshot, TrustChange};
