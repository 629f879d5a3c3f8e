//! `tenet import`: inventory snapshots into the store, where the trust
//! graph's history is built from them.

use std::path::PathBuf;

use anyhow::Result;
use tenet_model::Timestamp;
use tenet_pipeline::trust::{ImportRejection, InventoryFile, import_inventory};
use tenet_sources::input;
use tenet_sources::inventory::ImportOptions;

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

pub fn run(place: &super::Place, args: Args) -> Result<Outcome> {
    let collected_at = args.at.unwrap_or_else(Timestamp::now);
    let options = ImportOptions { idp: args.idp.clone(), cluster: args.cluster.clone() };
    let mut unreadable = Vec::new();
    let mut files = Vec::new();
    for file in input::expand(&args.paths)? {
        let name = file.display();
        match input::load(&file) {
            Ok(data) => files.push(InventoryFile { name, data: data.to_vec(), explicit: file.explicit }),
            Err(e) => unreadable.push(ImportRejection { path: name, location: "file".into(), reason: e.to_string() }),
        }
    }
    let mut store = place.open()?;
    let mut report = import_inventory(&mut *store, files, collected_at, &options)?;
    report.rejected.splice(0..0, unreadable);
    super::shown((|| {
        if args.json {
            outln!("{}", serde_json::to_string(&report)?);
        } else {
            outln!(
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
                outln!("skipped {} file(s) that are not inventory", report.skipped_files.len());
            }
            for r in &report.rejected {
                outln!("  rejected {}: {}: {}", r.path, r.location, r.reason);
            }
        }
        Ok(())
    })())?;
    Ok(if report.rejected.is_empty() { Outcome::Ok } else { Outcome::Partial })
}
