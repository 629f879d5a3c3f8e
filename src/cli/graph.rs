//! The trust-graph questions: `who-can`, `reach`, `chain`, `drift`, `unused`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tenet_graph::{Hop, TrustGraph};
use tenet_model::{EventId, Timestamp};
use tenet_store::{EventQuery, EventReader, SqliteStore};

use super::{Outcome, parse_time};

fn load(data_dir: &Path) -> Result<(SqliteStore, TrustGraph)> {
    let mut store = SqliteStore::open_dir(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let graph = tenet_pipeline::trust::refresh_and_load(&mut store)?;
    Ok((store, graph))
}

fn at(t: Option<Timestamp>) -> i64 {
    t.unwrap_or_else(Timestamp::now).unix_nanos()
}

fn print_path(path: &[Hop]) {
    for h in path {
        println!(
            "      {} →[{}{}] {}  ({})",
            h.from,
            h.edge,
            if h.conditional { ", conditional" } else { "" },
            h.to,
            h.reason
        );
    }
}

#[derive(clap::Args)]
pub struct WhoCanArgs {
    /// `service:Operation` (IAM) or `k8s:<verb>` (Kubernetes RBAC).
    action: String,
    /// An ARN, or a Kubernetes resource id `k8s:<group>/<resource>/<namespace>/<name>`.
    resource: String,
    /// As of this time (RFC 3339, or `7d` back from now); default now.
    #[arg(long, value_parser = parse_time)]
    at: Option<Timestamp>,
    #[arg(long)]
    json: bool,
}

pub fn who_can(data_dir: &Path, args: WhoCanArgs) -> Result<Outcome> {
    let (_store, graph) = load(data_dir)?;
    let view = graph.view(at(args.at));
    let answer = view.who_can(&args.action, &args.resource);
    if args.json {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(Outcome::Ok);
    }
    if answer.is_empty() {
        println!("nobody can {} on {}", args.action, args.resource);
    }
    for p in &answer {
        println!("{} ({}){}", p.principal, p.kind, if p.conditional { " — conditional" } else { "" });
        for (i, path) in p.paths.iter().enumerate() {
            println!("    path {}:", i + 1);
            print_path(path);
        }
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct ReachArgs {
    /// A principal id (ARN, `agent:…`, `user:…`, `k8s:…`).
    principal: String,
    #[arg(long, value_parser = parse_time)]
    at: Option<Timestamp>,
    #[arg(long)]
    json: bool,
}

pub fn reach(data_dir: &Path, args: ReachArgs) -> Result<Outcome> {
    let (_store, graph) = load(data_dir)?;
    let view = graph.view(at(args.at));
    let Some(reach) = view.reach(&args.principal) else { bail!("{} is not in the trust graph", args.principal) };
    if args.json {
        println!("{}", serde_json::to_string(&reach)?);
        return Ok(Outcome::Ok);
    }
    println!("{} ({})", reach.principal, reach.kind);
    if !reach.identities.is_empty() {
        println!("  acts as:");
        for (identity, path) in &reach.identities {
            println!("    {identity}");
            print_path(path);
        }
    }
    println!("  grants ({}):", reach.grants.len());
    for g in &reach.grants {
        println!(
            "    {} {} on {}{}  — {} [{}]",
            g.effect,
            g.actions,
            g.resources,
            if g.conditional { " (conditional)" } else { "" },
            g.source,
            g.identity
        );
        for e in &g.except {
            println!("        except: {e}");
        }
        if let Some(b) = &g.boundary {
            println!("        within boundary {b}");
        }
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct ChainArgs {
    /// An event id, or a trace id (every span of the trace).
    id: String,
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct ChainLink {
    event: String,
    time: String,
    action: String,
    chain: Vec<ChainPrincipal>,
}

#[derive(serde::Serialize)]
struct ChainPrincipal {
    id: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

pub fn chain(data_dir: &Path, args: ChainArgs) -> Result<Outcome> {
    let store = SqliteStore::open_dir(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let mut events = store.get(&EventId::from(args.id.as_str()), None)?.into_iter().collect::<Vec<_>>();
    if events.is_empty() && args.id.len() == 32 && args.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        // A trace id: every span of the trace, by its event ids' prefix.
        let prefix = format!("{}-", args.id.to_ascii_lowercase());
        events = store.query(&EventQuery { source: Some("otlp".into()), ..Default::default() })?;
        events.retain(|e| e.id.as_str().starts_with(&prefix));
    }
    if events.is_empty() {
        bail!("no event or trace with id {}", args.id);
    }
    let links: Vec<ChainLink> = events
        .iter()
        .map(|e| ChainLink {
            event: e.id.to_string(),
            time: e.time.to_string(),
            action: e.action.qualified(),
            chain: e
                .principals()
                .map(|p| ChainPrincipal { id: p.id.clone(), kind: p.kind.as_str().into(), name: p.name.clone() })
                .collect(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string(&links)?);
        return Ok(Outcome::Ok);
    }
    for l in &links {
        println!("{} {} {}", l.time, l.action, l.event);
        let parts: Vec<String> =
            l.chain.iter().map(|p| format!("{} ({})", p.name.as_deref().unwrap_or(&p.id), p.kind)).collect();
        println!("    {}", parts.join(" → acting for → "));
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct DriftArgs {
    #[arg(long, value_parser = parse_time)]
    since: Timestamp,
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,
    #[arg(long)]
    json: bool,
}

pub fn drift(data_dir: &Path, args: DriftArgs) -> Result<Outcome> {
    let (_store, graph) = load(data_dir)?;
    let drift = graph.drift(args.since.unix_nanos(), at(args.until));
    if args.json {
        println!("{}", serde_json::to_string(&drift)?);
        return Ok(Outcome::Ok);
    }
    println!("changes between {} and {}: {}", drift.since, drift.until, drift.changes.len());
    for c in &drift.changes {
        println!("  {} {:<8} {:<12} {} → {}  ({})", c.at, c.change, c.edge, c.from, c.to, c.provenance);
    }
    println!("\nnewly emerged access, widest first: {}", drift.emerged.len());
    for e in &drift.emerged {
        let g = &e.grant;
        println!(
            "  [{}] {} ({}) can now {} on {} — {}",
            e.score, e.principal, e.kind, g.actions, g.resources, g.source
        );
        print_path(&g.via);
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct UnusedArgs {
    /// Unused in the last N days.
    #[arg(long)]
    days: u32,
    /// As of this time; default now.
    #[arg(long, value_parser = parse_time)]
    at: Option<Timestamp>,
    #[arg(long)]
    json: bool,
}

pub fn unused(data_dir: &Path, args: UnusedArgs) -> Result<Outcome> {
    let (_store, graph) = load(data_dir)?;
    let view = graph.view(at(args.at));
    let unused = view.unused(i64::from(args.days) * 86_400 * 1_000_000_000);
    if args.json {
        println!("{}", serde_json::to_string(&unused)?);
        return Ok(Outcome::Ok);
    }
    for u in &unused {
        match u.scope {
            "principal" => println!(
                "{} ({}): no use in {} days (last used {})",
                u.principal,
                u.kind,
                args.days,
                u.last_used.as_deref().unwrap_or("never")
            ),
            _ => println!(
                "{} ({}): {} unused (last {}) — {}",
                u.principal,
                u.kind,
                u.permission.as_deref().unwrap_or(""),
                u.last_used.as_deref().unwrap_or("never"),
                u.source.as_deref().unwrap_or("")
            ),
        }
    }
    println!("{} unused", unused.len());
    Ok(Outcome::Ok)
}
