//! Building the trust graph from what the store holds: inventory snapshots
//! and trust-changing events, applied in time order, plus observed use.

use std::collections::BTreeMap;

use tenet_graph::TrustGraph;
use tenet_model::{Snapshot, Timestamp};
use tenet_sources::inventory::{self, ImportOptions};
use tenet_store::{EventStore, Result, StoreReader};

/// Everything stored that the graph is built from, in time order.
enum Evidence {
    Snapshot(tenet_store::StoredSnapshot),
    Changes(tenet_store::StoredChanges),
    Observation(tenet_store::Observation),
}

impl Evidence {
    fn time(&self) -> Timestamp {
        match self {
            Evidence::Snapshot(s) => s.snapshot.collected_at,
            Evidence::Changes(c) => c.time,
            Evidence::Observation(o) => o.first,
        }
    }
}

/// The trust graph as the store's evidence builds it.
pub fn load_graph(reader: &dyn StoreReader) -> Result<TrustGraph> {
    let mut evidence: Vec<Evidence> = reader.snapshots()?.into_iter().map(Evidence::Snapshot).collect();
    evidence.extend(reader.trust_changes()?.into_iter().map(Evidence::Changes));
    evidence.extend(reader.observations()?.into_iter().map(Evidence::Observation));
    // Stable: at equal times, snapshots (listed first) go before events.
    evidence.sort_by_key(Evidence::time);
    let mut graph = TrustGraph::new();
    for item in evidence {
        match item {
            Evidence::Snapshot(s) => {
                graph.apply_snapshot(&s.snapshot, &s.provenance);
            }
            Evidence::Changes(c) => graph.apply_changes(&c.changes, c.time, &c.event),
            Evidence::Observation(o) => graph.observe_fact(&o.fact, o.first, &o.event),
        }
    }
    for u in reader.observed_use()? {
        graph.observe(&u.principal, &u.action, u.resource.as_deref(), u.first, u.last, u.count);
    }
    Ok(graph)
}

/// Brings observed use up to date, then builds the graph.
pub fn refresh_and_load(store: &mut dyn EventStore) -> Result<TrustGraph> {
    store.refresh_use()?;
    let reader = store.reader()?;
    load_graph(&*reader)
}

/// One inventory file's content, named for errors and provenance.
pub struct InventoryFile {
    pub name: String,
    pub data: Vec<u8>,
    /// Named on the command line (rather than found in a directory): a file
    /// that is not inventory is then an error, not skipped.
    pub explicit: bool,
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub files: u64,
    pub snapshots: u64,
    pub facts: u64,
    /// Facts that start holding at the snapshot's time (new or changed).
    pub opened: u64,
    /// Facts the snapshots' scopes no longer list.
    pub closed: u64,
    /// Snapshots stored before, byte for byte: importing again changes nothing.
    pub unchanged_snapshots: u64,
    pub rejected: Vec<ImportRejection>,
    pub skipped_files: Vec<String>,
}

/// Something not imported, and where it was.
#[derive(Debug, serde::Serialize)]
pub struct ImportRejection {
    pub path: String,
    pub location: String,
    pub reason: String,
}

/// Imports inventory files collected at `collected_at` into the store:
/// detects each file's format, imports it (bad entries are reported, the
/// rest kept), merges what one collection wrote as several files, and
/// stores each snapshot once. Counts what each opened and closed in the
/// trust graph's history.
pub fn import_inventory(
    store: &mut dyn EventStore,
    files: impl IntoIterator<Item = InventoryFile>,
    collected_at: Timestamp,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut snapshots: Vec<(Snapshot, String)> = Vec::new();
    for file in files {
        report.files += 1;
        let Some(format) = inventory::detect(&file.data) else {
            if file.explicit {
                report.rejected.push(ImportRejection {
                    path: file.name,
                    location: "file".into(),
                    reason: "not a recognised inventory format (aws-iam, scim, k8s-rbac, agent-registry)".into(),
                });
            } else {
                report.skipped_files.push(file.name);
            }
            continue;
        };
        match inventory::import(format, &file.data, collected_at, options) {
            Ok(imported) => {
                for s in imported.skipped {
                    let entry = s.entry.map(|e| format!(" ({e})")).unwrap_or_default();
                    report.rejected.push(ImportRejection {
                        path: file.name.clone(),
                        location: format!("{}{entry}", s.location),
                        reason: s.reason,
                    });
                }
                snapshots.extend(imported.snapshots.into_iter().map(|s| (s, file.name.clone())));
            }
            Err(e) => report.rejected.push(ImportRejection {
                path: file.name,
                location: e.location().map_or("file".to_string(), |l| l.to_string()),
                reason: e.to_string(),
            }),
        }
    }
    // Files of one scope collected together are one snapshot (SCIM users and
    // groups, say): applied one by one, each would retract the other.
    let mut provenance: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (s, name) in &snapshots {
        provenance.entry((s.source.clone(), s.scope.clone())).or_default().push(name.clone());
    }
    let merged = inventory::merge(snapshots.into_iter().map(|(s, _)| s));
    let mut graph = load_graph(&*store.reader()?)?;
    for snap in &merged {
        let files =
            provenance.get(&(snap.source.clone(), snap.scope.clone())).map(|v| v.join(", ")).unwrap_or_default();
        let prov = format!("{} inventory {} collected {} ({files})", snap.source, snap.scope, snap.collected_at);
        report.snapshots += 1;
        report.facts += snap.facts.len() as u64;
        if store.put_snapshot(snap, &prov)? {
            let effect = graph.apply_snapshot(snap, &prov);
            report.opened += effect.opened;
            report.closed += effect.closed;
        } else {
            report.unchanged_snapshots += 1;
        }
    }
    store.commit()?;
    Ok(report)
}
