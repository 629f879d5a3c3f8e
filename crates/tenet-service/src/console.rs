//! The console's view of the running system ([`tenet_console::Site`]):
//! reads through read-only connections to the store, the live trust graph
//! for who exists, and a person's decision on a finding written as the
//! CLI writes it (its trust changes queued with it), which the pipeline
//! then picks up like any other process's.

use std::path::PathBuf;
use std::sync::Arc;

use tenet_model::{Finding, FindingStatus, TrustNotice};
use tenet_store::{StoreAt, StoreReader};

use crate::trust::LiveTrust;

pub struct ConsoleSite {
    /// The durable store: events, findings, notices, the decision log,
    /// Shared Signals state.
    pub store: StoreAt,
    pub trust: Arc<LiveTrust>,
    pub changes: tokio::sync::broadcast::Sender<Arc<TrustNotice>>,
    pub graph: tenet_graph::SharedGraph,
    /// The decision point, to decide a logged request again and show its policies.
    pub pdp: Arc<tenet_server::access::DecisionPoint>,
    /// The policy directory it reads.
    pub policies: PathBuf,
    pub coverage: crate::coverage::SharedCoverage,
}

impl ConsoleSite {
    fn decision_log(&self) -> tenet_store::TablesAt {
        self.store.decision_log()
    }
}

fn log_error(e: tenet_store::StoreError) -> String {
    format!("the decision log cannot be read: {e}")
}

impl tenet_console::Site for ConsoleSite {
    fn reader(&self) -> Result<Box<dyn StoreReader>, String> {
        self.store.reader().map_err(|e| format!("the store cannot be read: {e}"))
    }

    fn principals(&self) -> Vec<tenet_console::Principal> {
        self.trust.current().principals()
    }

    fn principal(&self, id: &str) -> Option<tenet_console::PrincipalCard> {
        self.trust.current().card(id)
    }

    fn set_finding_status(&self, id: &str, to: FindingStatus, reason: &str, by: &str) -> Result<Finding, String> {
        let mut store = self.store.writer().map_err(|e| format!("the store cannot be opened: {e}"))?;
        let reason = format!("{reason} (by {by}, in the console)");
        tenet_pipeline::analyse::set_status(&mut *store, id, to, Some(&reason), &Default::default())
            .map_err(|e| e.to_string())
    }

    fn streams(&self) -> Result<Vec<tenet_console::StreamView>, String> {
        let at = self.store.ssf();
        if let tenet_store::TablesAt::File(path) = &at
            && !path.exists()
        {
            return Ok(Vec::new());
        }
        let fail = |e: &dyn std::fmt::Display| format!("the Shared Signals store cannot be read: {e}");
        let store = tenet_store::ssf::SsfStore::open(&at).map_err(|e| fail(&e))?;
        let mut out = Vec::new();
        for s in store.streams().map_err(|e| fail(&e))? {
            let c = &s.config;
            let pending = store.pending_count(&c.stream_id).map_err(|e| fail(&e))?;
            let delivery = if c.delivery.method() == tenet_ssf::PUSH {
                format!("push to {}", c.delivery.endpoint_url())
            } else {
                "polled".to_string()
            };
            out.push(tenet_console::StreamView {
                receiver: s.owner.clone(),
                stream_id: c.stream_id.clone(),
                status: s.status.as_str().to_string(),
                delivery,
                events: c.events_delivered.iter().map(|e| e.rsplit('/').next().unwrap_or(e).to_string()).collect(),
                delivered: s.delivered,
                failed: s.failed,
                pending,
                last_error: s.last_error.clone(),
            });
        }
        Ok(out)
    }

    fn recent_changes(&self, skip: usize, limit: usize) -> Result<(Vec<TrustNotice>, usize), String> {
        let fail = |e: tenet_store::StoreError| format!("the trust notice log cannot be read: {e}");
        let log = self.store.notices().map_err(fail)?;
        // Notices are numbered from 1 without gaps: the newest is `last`.
        let last = log.last_notice().map_err(fail)?;
        let end = last.saturating_sub(skip as u64);
        let start = end.saturating_sub(limit as u64);
        let mut recent = log.notices_after(start, (end - start) as usize).map_err(fail)?;
        recent.reverse();
        Ok((recent, last as usize))
    }

    fn decisions(
        &self,
        search: &tenet_store::decisions::DecisionSearch,
    ) -> Result<(Vec<tenet_store::decisions::DecisionRow>, usize), String> {
        tenet_store::decisions::search(&self.decision_log(), search).map_err(log_error)
    }

    fn decision(&self, seq: i64) -> Result<Option<tenet_store::decisions::DecisionRow>, String> {
        tenet_store::decisions::decision(&self.decision_log(), seq).map_err(log_error)
    }

    fn evaluate_again(&self, request: &str) -> Result<tenet_console::Redecided, String> {
        let body: serde_json::Value =
            serde_json::from_str(request).map_err(|e| format!("the logged request is not JSON: {e}"))?;
        let evaluation = tenet_policy::authzen::parse_evaluation(&body).map_err(|e| e.to_string())?;
        let version = self.pdp.bundle().version().to_string();
        let d = self.pdp.reevaluate(&evaluation).map_err(|e| e.to_string())?;
        Ok(tenet_console::Redecided {
            allowed: d.allowed,
            reason: d.reason(),
            policies: d.policies.clone(),
            errors: d.errors.clone(),
            signals: serde_json::to_value(&d.signals).unwrap_or(serde_json::Value::Null),
            policy_version: version,
        })
    }

    fn policies(&self) -> Result<tenet_console::ActivePolicies, String> {
        let bundle = self.pdp.bundle();
        let on_disk =
            tenet_server::policy_dir::load(&self.policies).map(|b| b.version().to_string()).map_err(|e| e.to_string());
        Ok(tenet_console::ActivePolicies {
            version: bundle.version().to_string(),
            directory: self.policies.display().to_string(),
            files: bundle.files().iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            policies: bundle
                .policy_ids()
                .into_iter()
                .map(|id| {
                    let file = bundle.origin_of(&id).unwrap_or("").to_string();
                    (id, file)
                })
                .collect(),
            warnings: bundle.warnings().to_vec(),
            on_disk,
        })
    }

    fn policy_versions(&self) -> Result<Vec<tenet_store::decisions::PolicyVersion>, String> {
        tenet_store::decisions::policy_versions(&self.decision_log()).map_err(log_error)
    }

    fn sources(&self) -> Vec<tenet_console::SourceView> {
        let coverage = self.coverage.lock().unwrap_or_else(|p| p.into_inner());
        coverage.report(tenet_model::Timestamp::now())
    }

    fn graph(&self) -> tenet_graph::SharedGraph {
        self.graph.clone()
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<TrustNotice>> {
        self.changes.subscribe()
    }
}
