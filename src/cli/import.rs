//! `tenet import`: inventory snapshots into the store, where the trust
//! graph's history is built from them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tenet_model::{Snapshot, Timestamp};
use tenet_sources::input;
use tenet_sources::inventory::{self, ImportOptions};
use tenet_store::{EventStore, SqliteStore};

use super::{Outcome, parse_time};

#[derive(clap::Args)]
pub struct Args {
    /// Inventory files or directories: `aws iam get-account-authorization-details`
    /// output, SCIM 2.0 users/groups, Kubernetes RBAC (JSON or YAML), an agent registry.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// When the inventory was collected (RFC 3339); default now. History
    /// opens and closes here.
    #[arg(long, value_parser = parse_time)]
    at: Option<Timestamp>,
    /// The identity provider SCIM ids belong to (ids become `<idp>:<id>`).
    #[arg(long, default_value = "okta")]
    idp: String,
    /// The cluster Kubernetes RBAC objects belong to.
    #[arg(long, default_value = "k8s")]
    cluster: String,
    #[arg(long)]
    json: bool,
}

#[derive(Default, Serialize)]
struct Report {
    files: u64,
    snapshots: u64,
    facts: u64,
    /// Facts that start holding at the snapshot's time (new or changed).
    opened: u64,
    /// Facts the snapshots' scopes no longer list.
    closed: u64,
    unchanged_snapshots: u64,
    rejected: Vec<Rejection>,
    skipped_files: Vec<String>,
}

#[derive(Serialize)]
struct Rejection {
    path: String,
    location: String,
    reason: String,
}

pub fn run(data_dir: &Path, args: Args) -> Result<Outcome> {
    let collected_at = args.at.unwrap_or_else(Timestamp::now);
    let options = ImportOptions { idp: args.idp.clone(), cluster: args.cluster.clone() };
    let mut report = Report::default();
    let mut snapshots: Vec<(Snapshot, String)> = Vec::new();
    for file in input::expand(&args.paths)? {
        let path = file.display();
        let data = match input::load(&file) {
            Ok(d) => d,
            Err(e) => {
                report.rejected.push(Rejection { path, location: "file".into(), reason: e.to_string() });
                continue;
            }
        };
        report.files += 1;
        let Some(format) = inventory::detect(&data) else {
            if file.explicit {
                report.rejected.push(Rejection {
                    path,
                    location: "file".into(),
                    reason: "not a recognised inventory format (aws-iam, scim, k8s-rbac, agent-registry)".into(),
                });
            } else {
                report.skipped_files.push(path);
            }
            continue;
        };
        match inventory::import(format, &data, collected_at, &options) {
            Ok(imported) => {
                for s in imported.skipped {
                    let entry = s.entry.map(|e| format!(" ({e})")).unwrap_or_default();
                    report.rejected.push(Rejection {
                        path: path.clone(),
                        location: format!("{}{entry}", s.location),
                        reason: s.reason,
                    });
                }
                snapshots.extend(imported.snapshots.into_iter().map(|s| (s, path.clone())));
            }
            Err(e) => report.rejected.push(Rejection {
                path,
                location: e.location().map_or("file".to_string(), |l| l.to_string()),
                reason: e.to_string(),
            }),
        }
    }
    // Files of one scope collected together are one snapshot (SCIM users and
    // groups, say): applied one by one, each would retract the other.
    let provenance: std::collections::BTreeMap<(String, String), Vec<String>> =
        snapshots.iter().fold(Default::default(), |mut m, (s, p)| {
            m.entry((s.source.clone(), s.scope.clone())).or_default().push(p.clone());
            m
        });
    let merged = inventory::merge(snapshots.into_iter().map(|(s, _)| s));
    let mut store = SqliteStore::open_dir(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let mut graph = tenet_pipeline::trust::load_graph(&*store.reader()?)?;
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
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "imported {} snapshot(s) with {} facts from {} file(s), collected {collected_at}: {} opened, {} closed{}",
            report.snapshots,
            report.facts,
            report.files,
            report.opened,
            report.closed,
            if report.unchanged_snapshots > 0 {
                format!(", {} already imported", report.unchanged_snapshots)
            } else {
                String::new()
            }
        );
        if !report.skipped_files.is_empty() {
            println!("skipped {} file(s) that are not inventory", report.skipped_files.len());
        }
        for r in &report.rejected {
            println!("  rejected {}: {}: {}", r.path, r.location, r.reason);
        }
    }
    Ok(if report.rejected.is_empty() { Outcome::Ok } else { Outcome::Partial })
}
