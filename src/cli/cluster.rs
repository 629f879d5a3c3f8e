//! `tenet cluster status`: the nodes on a shared store, each partition's
//! owner, how far each partition's reader lags behind the event stream,
//! and the revision each node has reached.

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Outcome;

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Nodes (alive or not), partitions and their owners, lag per
    /// partition, each node's revision.
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// NATS (`nats://HOST:PORT`), to report each partition's lag.
    #[arg(long, env = "TENET_BUS", value_name = "URL")]
    bus: Option<String>,
    /// One JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(place: &super::Place, cmd: ClusterCommand) -> Result<Outcome> {
    let ClusterCommand::Status(args) = cmd;
    let tenet_store::StoreAt::Postgres(url) = &place.store else {
        bail!("a cluster lives on a shared store: give --store postgres://USER@HOST:PORT/DB");
    };
    let Some(status) =
        tenet_store::cluster::status(url).with_context(|| format!("reading the cluster on {}", place.store))?
    else {
        bail!("no node has joined a cluster on the store at {}", place.store);
    };
    let lag: Option<Vec<Option<u64>>> = match &args.bus {
        None => None,
        Some(bus) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            Some(runtime.block_on(async {
                let bus = tenet_bus::Bus::observe(bus, status.partitions).await?;
                let mut lags = Vec::with_capacity(status.partitions as usize);
                for p in 0..status.partitions {
                    lags.push(bus.lag(p, tenet_service::cluster::READER).await?);
                }
                Ok::<_, tenet_bus::BusError>(lags)
            })?)
        }
    };
    if args.json {
        let partitions: Vec<_> = status
            .owners
            .iter()
            .enumerate()
            .map(|(p, owner)| {
                json!({
                    "partition": p,
                    "owner": owner,
                    "lag": lag.as_ref().and_then(|l| l[p]),
                })
            })
            .collect();
        let doc = json!({
            "partitions": partitions,
            "partition_count": status.partitions,
            "nodes": status.nodes,
            "transmitter": status.transmitter,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Outcome::Ok);
    }
    outln!(
        "{} partitions; Shared Signals transmitter: {}",
        status.partitions,
        status.transmitter.as_deref().unwrap_or("(none)")
    );
    outln!("{:<20} {:<6} {:<28} {:>10} {:>11}  partitions", "node", "alive", "address", "revision", "seen (s)");
    let now = tenet_model::Timestamp::now();
    for n in &status.nodes {
        let seen = (now.unix_nanos() - n.seen.unix_nanos()) as f64 / 1e9;
        let owned: Vec<String> = n.partitions.iter().map(u32::to_string).collect();
        outln!(
            "{:<20} {:<6} {:<28} {:>10} {:>11.1}  {}",
            n.node,
            if n.alive { "yes" } else { "no" },
            n.address,
            n.revision,
            seen,
            owned.join(",")
        );
    }
    outln!("{:<10} {:<20} {:>8}", "partition", "owner", "lag");
    for (p, owner) in status.owners.iter().enumerate() {
        let lag = match lag.as_ref().map(|l| l[p]) {
            None => "-".to_string(),
            Some(None) => "unread".to_string(),
            Some(Some(n)) => n.to_string(),
        };
        outln!("{:<10} {:<20} {:>8}", p, owner.as_deref().unwrap_or("(none)"), lag);
    }
    Ok(Outcome::Ok)
}
