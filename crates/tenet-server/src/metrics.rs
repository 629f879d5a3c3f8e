//! Prometheus metrics for the decision point, served at `/metrics` in the
//! OpenMetrics text format: decisions by endpoint and outcome, decision
//! latency, the active policy version, policy reloads and their failures,
//! requests shed because the decision log's queue was full.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

pub struct Metrics {
    registry: Registry,
    /// The single-evaluation endpoint's handles, resolved once: the hot path
    /// does not hash labels.
    evaluation_permit: Counter,
    evaluation_deny: Counter,
    evaluation_latency: Histogram,
    decisions: Family<DecisionLabels, Counter>,
    latency: Family<EndpointLabel, Histogram>,
    policy: Family<VersionLabel, Gauge>,
    reloads: Counter,
    reload_failures: Counter,
    shed: Counter,
    current: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// The decision point's metrics, and whatever `more` registers beside
    /// them (the running system's ingest and analysis metrics), all served
    /// at `/metrics`.
    pub fn with(more: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::with_prefix("tenet");
        more(&mut registry);
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Access decisions by endpoint and outcome (permit, deny, error)",
            decisions.clone(),
        );
        // 5 µs to ~80 ms: in-process decisions are microseconds, searches longer.
        let latency = Family::<EndpointLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_005, 2.0, 15))
        });
        registry.register("decision_seconds", "Time to decide, per endpoint, excluding HTTP", latency.clone());
        let policy = Family::<VersionLabel, Gauge>::default();
        registry.register("policy_version", "The active policy set (1 for the version in force)", policy.clone());
        let reloads = Counter::default();
        registry.register("policy_reloads", "Policy sets made active after the first", reloads.clone());
        let reload_failures = Counter::default();
        registry.register(
            "policy_reload_failures",
            "Policy changes refused (the last good set kept serving)",
            reload_failures.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "shed",
            "Requests refused undecided (429) because the decision log's queue was full",
            shed.clone(),
        );
        let evaluation_permit =
            decisions.get_or_create(&DecisionLabels { endpoint: "evaluation", outcome: "permit" }).clone();
        let evaluation_deny =
            decisions.get_or_create(&DecisionLabels { endpoint: "evaluation", outcome: "deny" }).clone();
        let evaluation_latency = latency.get_or_create(&EndpointLabel { endpoint: "evaluation" }).clone();
        Metrics {
            registry,
            evaluation_permit,
            evaluation_deny,
            evaluation_latency,
            decisions,
            latency,
            policy,
            reloads,
            reload_failures,
            shed,
            current: Mutex::new(None),
        }
    }

    pub fn decided(&self, endpoint: &'static str, outcome: &'static str, took: Duration) {
        match (endpoint, outcome) {
            ("evaluation", "permit") => {
                self.evaluation_permit.inc();
                self.evaluation_latency.observe(took.as_secs_f64());
                return;
            }
            ("evaluation", "deny") => {
                self.evaluation_deny.inc();
                self.evaluation_latency.observe(took.as_secs_f64());
                return;
            }
            _ => {}
        }
        self.decisions.get_or_create(&DecisionLabels { endpoint, outcome }).inc();
        self.latency.get_or_create(&EndpointLabel { endpoint }).observe(took.as_secs_f64());
    }

    pub fn searched(&self, endpoint: &'static str, took: Duration) {
        self.latency.get_or_create(&EndpointLabel { endpoint }).observe(took.as_secs_f64());
    }

    pub fn policy_loaded(&self, version: &str) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = current.replace(version.to_string()) {
            self.policy.get_or_create(&VersionLabel { version: old }).set(0);
            self.reloads.inc();
        }
        self.policy.get_or_create(&VersionLabel { version: version.to_string() }).set(1);
    }

    pub fn shed(&self) {
        self.shed.inc();
    }

    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
