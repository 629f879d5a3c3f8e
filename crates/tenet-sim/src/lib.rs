//! A deterministic simulated enterprise where people, workloads and AI
//! agents act across AWS, an identity provider, Kubernetes and agent tool
//! calls, whose behaviour evolves legitimately over time, with labelled
//! incidents injected on demand.
//!
//! It writes the formats Tenet's adapters read (CloudTrail delivery files,
//! OTLP/JSON traces with the GenAI and MCP conventions, Okta System Log,
//! Kubernetes audit) and the matching inventory; never a private format.
//!
//! - [`org`]: the enterprise, built from the seed and its [`Shape`];
//! - [`world`]: what happens each hour (each hour its own random stream);
//! - [`workload`]: functions, tasks and pods whose sessions and addresses
//!   churn, and their deploys;
//! - [`iac`]: Terraform plans and applies;
//! - [`cloud`]: AWS services acting on their own and on callers' behalf;
//! - [`console`]: console sign-ins and the console's background calls;
//! - [`scenario`]: labelled incidents and changes ([`change`]: the
//!   legitimate ones that come with new people, places, devices and
//!   deployments);
//! - [`render`]: records to their formats' JSON;
//! - [`inventory`]: IAM, SCIM, RBAC and agent-registry snapshots;
//! - [`output`]: packaging into files (or chunks for a live feed).

pub mod change;
pub mod cloud;
pub mod console;
pub mod eval;
pub mod iac;
pub mod inventory;
pub mod org;
pub mod output;
pub mod record;
pub mod render;
pub mod replay;
pub mod rng;
pub mod scenario;
pub mod workload;
pub mod world;

use tenet_model::Timestamp;

pub use org::Shape;
pub use record::Label;
pub use scenario::Kind as ScenarioKind;
pub use world::Simulation;

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;

/// What to simulate. The same configuration always produces the same bytes.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// What kind of organisation: its people, workloads and habits.
    pub shape: Shape,
    pub days: u32,
    pub humans: usize,
    pub agents: usize,
    pub scenarios: Vec<ScenarioKind>,
    /// The first instant simulated (a Monday, 00:00 UTC, by default).
    pub start: Timestamp,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            shape: Shape::Enterprise,
            days: 14,
            humans: 60,
            agents: 12,
            scenarios: Vec::new(),
            start: Timestamp::from_unix_seconds(1_791_158_400), // 2026-10-05T00:00:00Z
        }
    }
}
