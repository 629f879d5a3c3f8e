//! The trust-graph questions: `who-can`, `reach`, `chain`, `drift`, `unused`.

use std::io::Write;

use anyhow::{Result, bail};
use tenet_graph::{Hop, TrustGraph};
use tenet_model::{EventId, Timestamp};
use tenet_store::EventQuery;

use super::{Outcome, parse_time};

fn load(place: &super::Place) -> Result<(Box<dyn tenet_store::EventStore>, TrustGraph)> {
    let mut store = place.open()?;
    // A running service keeps observed use current itself (within a
    // second): a query beside it only reads.
    let graph = if place.service_running().is_some() {
        let reader = store.reader()?;
        tenet_pipeline::trust::load_graph(&*reader)?
    } else {
        tenet_pipeline::trust::refresh_and_load(&mut *store)?
    };
    Ok((store, graph))
}

fn at(t: Option<Timestamp>) -> i64 {
    t.unwrap_or_else(Timestamp::now).unix_nanos()
}

fn print_path(out: &mut impl Write, path: &[Hop]) -> std::io::Result<()> {
    for h in path {
        writeln!(
            out,
            "      {} →[{}{}] {}  ({})",
            h.from,
            h.edge(),
            if h.conditional { ", conditional" } else { "" },
            h.to,
            h.reason()
        )?;
    }
    Ok(())
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

pub fn who_can(place: &super::Place, args: WhoCanArgs) -> Result<Outcome> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (_store, graph) = load(place)?;
    let view = graph.view(at(args.at));
    let answer = view.who_can(&args.action, &args.resource);
    if args.json {
        serde_json::to_writer(&mut out, &answer)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    if answer.is_empty() {
        writeln!(out, "nobody can {} on {}", args.action, args.resource)?;
    }
    for p in &answer {
        writeln!(out, "{} ({}){}", p.principal, p.kind, if p.conditional { " — conditional" } else { "" })?;
        for (i, path) in p.paths.iter().enumerate() {
            writeln!(out, "    path {}:", i + 1)?;
            print_path(&mut out, path)?;
        }
    }
    out.flush()?;
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

pub fn reach(place: &super::Place, args: ReachArgs) -> Result<Outcome> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (store, graph) = load(place)?;
    let view = graph.view(at(args.at));
    let (canonical, aliases) = super::principal_in(&*store, &graph, &args.principal)?;
    let Some(reach) = aliases.iter().find_map(|a| view.reach(a)) else {
        bail!("{canonical} ({}) is not in the trust graph", args.principal)
    };
    if args.json {
        serde_json::to_writer(&mut out, &reach)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    writeln!(out, "{} ({})", reach.principal, reach.kind)?;
    let total: usize = reach.identities.iter().map(|r| r.grants.len()).sum();
    writeln!(out, "  acts as {} identities, holding {total} grants", reach.identities.len())?;
    for r in &reach.identities {
        writeln!(out, "\n  {} ({}): {} grants", r.identity, r.kind, r.grants.len())?;
        print_path(&mut out, &r.via)?;
        if let Some(b) = r.boundary {
            writeln!(out, "    within the permissions boundary {b}")?;
        }
        for d in &r.denies {
            writeln!(out, "    except: {d}")?;
        }
        for g in &r.grants {
            writeln!(
                out,
                "    {} on {}{}  — {}{}",
                g.actions(),
                g.resources(),
                if g.conditional() { " (conditional)" } else { "" },
                g.source(),
                g.group.map(|gr| format!(" via group {gr}")).unwrap_or_default()
            )?;
        }
    }
    out.flush()?;
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

pub fn chain(place: &super::Place, args: ChainArgs) -> Result<Outcome> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let store = place.open()?;
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
        serde_json::to_writer(&mut out, &links)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    for l in &links {
        writeln!(out, "{} {} {}", l.time, l.action, l.event)?;
        let parts: Vec<String> =
            l.chain.iter().map(|p| format!("{} ({})", p.name.as_deref().unwrap_or(&p.id), p.kind)).collect();
        writeln!(out, "    {}", parts.join(" → acting for → "))?;
    }
    out.flush()?;
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

pub fn drift(place: &super::Place, args: DriftArgs) -> Result<Outcome> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (_store, graph) = load(place)?;
    let drift = graph.drift(args.since.unix_nanos(), at(args.until));
    if args.json {
        serde_json::to_writer(&mut out, &drift)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    writeln!(out, "changes between {} and {}: {}", drift.since, drift.until, drift.changes.len())?;
    for c in &drift.changes {
        writeln!(out, "  {} {:<8} {:<12} {} → {}  ({})", c.at, c.change, c.edge, c.from, c.to, c.provenance)?;
    }
    writeln!(out, "\nnewly emerged access, widest first: {}", drift.emerged.len())?;
    for e in &drift.emerged {
        match &e.grant {
            Some(g) => writeln!(
                out,
                "  [{}] {} ({}) can now {} on {} — {} held by {}",
                e.score,
                e.principal,
                e.kind,
                g.actions(),
                g.resources(),
                g.source(),
                e.identity
            )?,
            None => writeln!(out, "  [{}] {} ({}) can now act as {}", e.score, e.principal, e.kind, e.identity)?,
        }
        print_path(&mut out, &e.via)?;
    }
    out.flush()?;
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

pub fn unused(place: &super::Place, args: UnusedArgs) -> Result<Outcome> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (_store, graph) = load(place)?;
    let view = graph.view(at(args.at));
    let unused = view.unused(i64::from(args.days) * 86_400 * 1_000_000_000);
    if args.json {
        serde_json::to_writer(&mut out, &unused)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(Outcome::Ok);
    }
    for u in &unused {
        match u.scope {
            "principal" => writeln!(
                out,
                "{} ({}): no use in {} days (last used {})",
                u.principal,
                u.kind,
                args.days,
                u.last_used.as_deref().unwrap_or("never")
            )?,
            _ => writeln!(
                out,
                "{} ({}): {} unused (last {}) — {}",
                u.principal,
                u.kind,
                u.permission.as_deref().unwrap_or(""),
                u.last_used.as_deref().unwrap_or("never"),
                u.source.as_deref().unwrap_or("")
            )?,
        }
    }
    writeln!(out, "{} unused", unused.len())?;
    out.flush()?;
    Ok(Outcome::Ok)
}
