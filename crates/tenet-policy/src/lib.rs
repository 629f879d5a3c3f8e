//! Tenet's decision stage. An OpenID AuthZEN 1.0 request, parsed into typed
//! values ([`authzen`]), is decided by Cedar policies ([`PolicyBundle`])
//! with what Tenet knows about the subject at that moment in the context
//! ([`signals`]), and explained.
//!
//! Pure: no I/O. The caller reads policy files, serves HTTP, writes the
//! decision log, and supplies trust signals through [`TrustSource`].
//!
//! Mapping AuthZEN to Cedar: an entity's `type` is the Cedar entity type
//! name and its `id` the entity id; `action.name` is `Action::"<name>"`;
//! `properties` become attributes (the action's, of that request's `Action`
//! entity); the request `context` is the Cedar context, with Tenet's own
//! `tenet` record added (a caller's `tenet` key is replaced). Entity data
//! comes from the trust graph, then the policy directory's `entities.json`,
//! then the request's `properties`, each overriding the one before.

pub mod authzen;
mod bundle;
mod engine;
pub mod signals;
pub mod values;

pub use bundle::{BundleError, PolicyBundle, SourceFile};
pub use engine::{DecideError, Decision, SearchPage};
pub use signals::{KnownEntity, NoTrust, TrustSignals, TrustSource};
