//! `tenet events`.

use std::io::Write;

use anyhow::Result;
use tenet_model::{Event, Status, Timestamp};
use tenet_store::EventQuery;

use super::{Outcome, parse_time};

#[derive(clap::Args)]
pub struct Args {
    /// Only events by this principal, directly or through its chain: any
    /// alias (ARN, `user:<email>`, email, `agent:<id>`, a unique short name).
    #[arg(long)]
    principal: Option<String>,
    /// Only this action: `service:operation` or an operation name.
    #[arg(long)]
    action: Option<String>,
    /// Only events naming this resource id.
    #[arg(long)]
    resource: Option<String>,
    /// From this time (RFC 3339, or `7d`, `12h` back from now).
    #[arg(long, value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Up to this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<Timestamp>,
    /// Only this source format (`cloudtrail`) or system (`aws`).
    #[arg(long)]
    source: Option<String>,
    /// At most this many events: the newest, shown oldest first.
    #[arg(long)]
    limit: Option<usize>,
    /// JSON lines of normalised events.
    #[arg(long)]
    json: bool,
}

pub fn run(place: &super::Place, args: Args) -> Result<Outcome> {
    let store = place.open()?;
    let query = EventQuery {
        principal: None,
        action: args.action,
        resource: args.resource,
        since: args.since,
        until: args.until,
        source: args.source,
        limit: args.limit,
        with_raw: false,
    };
    let events = match &args.principal {
        None => store.query(&query)?,
        // Events name a principal by whichever alias their source uses.
        Some(name) => {
            let (_, aliases) = super::principal(&*store, name)?;
            let mut events = Vec::new();
            for a in aliases {
                events.extend(store.query(&EventQuery { principal: Some(a), ..query.clone() })?);
            }
            events.sort_by(|a, b| (a.time, &a.id.0).cmp(&(b.time, &b.id.0)));
            events.dedup_by(|a, b| a.time == b.time && a.id == b.id);
            if let Some(limit) = query.limit {
                events.truncate(limit);
            }
            events
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        for e in &events {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
    } else {
        print_table(&mut out, &events)?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

fn print_table(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:<10} {:<40} {:<36} {:<8} RESOURCE",
        "TIME", "SOURCE", "ACTOR (→ ON BEHALF OF)", "ACTION", "OUTCOME"
    )?;
    for e in events {
        let who = std::iter::once(&e.actor)
            .chain(e.chain.iter())
            .map(|p| p.name.as_deref().unwrap_or(&p.id))
            .collect::<Vec<_>>()
            .join(" → ");
        let outcome = match e.outcome.status {
            Status::Failure => {
                format!("fail{}", e.outcome.code.as_deref().map(|c| format!(":{c}")).unwrap_or_default())
            }
            s => s.as_str().to_string(),
        };
        let resource = e.resources.first().map(|r| r.id.as_str()).unwrap_or("");
        writeln!(
            out,
            "{:<24} {:<10} {:<40} {:<36} {:<8} {}",
            e.time.to_string(),
            e.source.format,
            who,
            e.action.qualified(),
            outcome,
            resource
        )?;
    }
    writeln!(out, "{} event(s)", events.len())
}
