//! `tenet simulate`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use tenet_model::Timestamp;
use tenet_sim::replay::{self, Spec};
use tenet_sim::{Config, ScenarioKind, Shape, Simulation};

use super::{Outcome, parse_time};

#[derive(clap::Args)]
pub struct Args {
    /// The seed: the same arguments always write the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days to simulate.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// The kind of organisation: `enterprise` (many people across
    /// departments, some services and agents) or `cloud-native` (fewer
    /// people, many serverless functions and containers, Terraform all day,
    /// more agents).
    #[arg(long, default_value = "enterprise", value_parser = parse_shape)]
    shape: Shape,
    /// People in the organisation (default: 60 for `enterprise`, 24 for `cloud-native`).
    #[arg(long)]
    humans: Option<usize>,
    /// AI agents (default: 12 for `enterprise`, 16 for `cloud-native`).
    #[arg(long)]
    agents: Option<usize>,
    /// A labelled scenario to inject (repeatable), or `all`.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// The first simulated instant (RFC 3339); default 2026-10-05T00:00:00Z.
    #[arg(long, value_parser = parse_time)]
    start: Option<Timestamp>,
    /// Where to write the telemetry, inventory and labels.
    #[arg(long)]
    out: PathBuf,
    /// Generator threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replay recorded CloudTrail attack telemetry into the simulation,
    /// remapped onto its clock, an account and people's IAM users
    /// (repeatable). PATH is a detonation file (a Stratus Red Team
    /// technique; every record labelled `stratus:<file stem>`), a directory
    /// of them, or a directory of CloudTrail delivery files
    /// (`<account>_CloudTrail_<region>_<time>_<id>.json[.gz]`): one
    /// recording of an attack, replayed as one detonation, `replay:<directory
    /// name>`, with only its attack tool's records labelled (see
    /// --replay-label-agent). DAY counts from 0 and defaults to the last day;
    /// a day's detonations are spread 20 minutes apart around 13:00.
    #[arg(long = "replay", value_name = "PATH[@DAY]", value_parser = parse_replay)]
    replays: Vec<Spec>,
    /// In a replayed recording, the records labelled as the scenario are
    /// those whose userAgent starts with PREFIX (the attack tool's marker);
    /// the rest (the attacker's set-up and clean-up, the account's own
    /// activity) are replayed unlabelled. Empty: label every record.
    /// Detonation files are always labelled whole.
    #[arg(long = "replay-label-agent", value_name = "PREFIX", default_value = replay::DEFAULT_LABEL_AGENT)]
    replay_label_agent: String,
}

fn parse_shape(s: &str) -> Result<Shape, String> {
    s.parse::<Shape>().map_err(|e| e.to_string())
}

fn parse_replay(s: &str) -> Result<Spec, String> {
    s.parse::<Spec>().map_err(|e| e.to_string())
}

pub fn scenarios(names: &[String]) -> Result<Vec<ScenarioKind>> {
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(ScenarioKind::ALL);
        } else {
            out.push(n.parse::<ScenarioKind>()?);
        }
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<Outcome> {
    let mut config = Config {
        seed: args.seed,
        shape: args.shape,
        days: args.days.max(1),
        humans: args.humans.unwrap_or(args.shape.default_humans()).max(1),
        agents: args.agents.unwrap_or(args.shape.default_agents()),
        scenarios: scenarios(&args.scenarios)?,
        ..Config::default()
    };
    if let Some(start) = args.start {
        config.start = start;
    }
    let started = Instant::now();
    let mut sim = Simulation::new(config);
    // Read and placed before the (long) generation: a bad file fails fast.
    let replayed = replay::plan_with(&mut sim, &args.replays, &args.replay_label_agent)?;
    let skipped: usize = replayed.iter().map(|r| r.skipped.len()).sum();
    for e in replayed.iter().flat_map(|r| &r.skipped) {
        eprintln!("warning: left out: {e}");
    }
    for r in replayed.iter().filter(|r| r.labels.is_empty()) {
        let agent = r.label_agent.as_deref().unwrap_or_default();
        eprintln!("warning: {}: no record's userAgent starts with `{agent}`: nothing is labelled", r.scenario);
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let hours = sim.hours();
    let bar = indicatif::ProgressBar::new(u64::from(hours));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} hours {msg}")
    {
        bar.set_style(style);
    }
    let written = tenet_sim::output::write_dir(&sim, &args.out, threads, |h, w| {
        bar.set_position(u64::from(h) + 1);
        bar.set_message(format!("{} events", w.events));
    })
    .with_context(|| format!("writing {}", args.out.display()))?;
    let mut written = written;
    replay::write(&args.out, &sim, &replayed, &mut written)
        .with_context(|| format!("writing replays to {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    outln!(
        "wrote {} events in {} files ({:.1} MB) to {} in {:.1}s ({:.0} events/s)",
        written.events,
        written.files,
        written.bytes as f64 / 1e6,
        args.out.display(),
        secs,
        written.events as f64 / secs.max(1e-9)
    );
    for (format, n) in &written.formats {
        outln!("  {format:<10} {n:>10}");
    }
    if !written.scenarios.is_empty() {
        outln!("labels: {} in {}", written.labels, args.out.join("labels.jsonl").display());
        for p in &sim.plans {
            outln!(
                "  {:<24} {:<28} at {}  ({} labelled events)",
                p.kind.name(),
                p.kind.category().as_str(),
                Timestamp::from_unix_seconds(sim.abs(p.at)),
                written.scenarios.get(p.kind.name()).copied().unwrap_or(0)
            );
        }
        for r in &replayed {
            let who = r.attacker.as_ref().map_or(String::new(), |(_, arn)| format!("  as {arn}"));
            let of = if r.labels.len() == r.records.len() { String::new() } else { format!(" of {}", r.records.len()) };
            outln!(
                "  {:<52} at {}  ({} labelled events{of}){who}",
                r.scenario,
                Timestamp::from_unix_seconds(sim.abs(r.at)),
                r.labels.len()
            );
        }
    }
    if skipped > 0 {
        eprintln!("{skipped} replayed records left out (see the warnings above)");
        return Ok(Outcome::Partial);
    }
    Ok(Outcome::Ok)
}
