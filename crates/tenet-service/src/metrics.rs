//! The running system's own metrics, registered beside the decision
//! point's and served at `/metrics`: events ingested per source format and
//! outcome, the ingest queue's depth and its refusals, analysis lag (event
//! time to analysed), the age of the live trust state, trust changes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tenet_model::Timestamp;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    format: String,
    outcome: &'static str,
}

pub struct ServiceMetrics {
    ingested: Family<IngestLabels, Counter>,
    queue_depth: Gauge,
    refused_busy: Counter,
    lag: Histogram,
    state_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    trust_changes: Counter,
    published: std::sync::Mutex<Instant>,
    depth: AtomicI64,
}

impl ServiceMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let ingested = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_events",
            "Telemetry events by source format and outcome (stored, duplicate, rejected)",
            ingested.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("ingest_queue_depth", "Deliveries accepted and waiting to be stored", queue_depth.clone());
        let refused_busy = Counter::default();
        registry.register(
            "ingest_refused_busy",
            "Deliveries answered 429 because the ingest queue was full",
            refused_busy.clone(),
        );
        // 1 ms to ~9 h: live sources are sub-second, delivered files minutes late.
        let lag = Histogram::new(exponential_buckets(0.001, 4.0, 13));
        registry.register("analysis_lag_seconds", "From an event's time to its analysis", lag.clone());
        let state_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "live_state_age_seconds",
            "Since the decision point's trust state was last published",
            state_age.clone(),
        );
        let trust_changes = Counter::default();
        registry.register("trust_changes", "Trust changes announced on the change stream", trust_changes.clone());
        ServiceMetrics {
            ingested,
            queue_depth,
            refused_busy,
            lag,
            state_age,
            trust_changes,
            published: std::sync::Mutex::new(Instant::now()),
            depth: AtomicI64::new(0),
        }
    }

    pub fn ingested(&self, format: &str, stored: u64, duplicates: u64, rejected: u64) {
        for (outcome, n) in [("stored", stored), ("duplicate", duplicates), ("rejected", rejected)] {
            if n > 0 {
                self.ingested.get_or_create(&IngestLabels { format: format.to_string(), outcome }).inc_by(n);
            }
        }
    }

    pub fn queued(&self, delta: i64) {
        let d = self.depth.fetch_add(delta, Ordering::AcqRel) + delta;
        self.queue_depth.set(d.max(0));
    }

    pub fn rejected_busy(&self) {
        self.refused_busy.inc();
    }

    pub fn analysed(&self, event_time: Timestamp) {
        let lag = (Timestamp::now().unix_nanos() - event_time.unix_nanos()).max(0) as f64 / 1e9;
        self.lag.observe(lag);
    }

    pub fn trust_change(&self) {
        self.trust_changes.inc();
    }

    /// The trust state was just published.
    pub fn state_published(&self) {
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.state_age.set(0.0);
    }

    /// Brings the age gauge up to date (the pipeline calls this as it polls).
    pub fn tick(&self) {
        let age = self.published.lock().unwrap_or_else(|p| p.into_inner()).elapsed().as_secs_f64();
        self.state_age.set(age);
    }
}
