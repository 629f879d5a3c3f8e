//! `tenet demo`: the running service (`tenet serve`'s) with the simulated
//! enterprise as its input (`tenet_service::simulated`), and a one-screen
//! summary of what it has seen.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tenet_model::Timestamp;
use tenet_sim::{Config, ScenarioKind, Simulation};
use tenet_store::SqliteStore;

use super::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Where the HTTP server listens.
    #[arg(long, default_value = "127.0.0.1:7400")]
    addr: SocketAddr,
    /// Simulated seconds per real second once the backfill is done.
    #[arg(long, default_value_t = 600.0)]
    speed: f64,
    /// Simulated hours fed at once before going live.
    #[arg(long, default_value_t = 48)]
    backfill_hours: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 5)]
    days: u32,
    #[arg(long, default_value_t = 40)]
    humans: usize,
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// Scenarios to inject (repeatable, or `all`); default: a representative few.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Stop when the simulated period has been fed, instead of serving until Ctrl-C.
    #[arg(long)]
    exit_when_done: bool,
    /// Sigma rules directory; default `../shared/data/sigma` when it exists.
    #[arg(long, env = "TENET_SIGMA_RULES")]
    rules: Option<PathBuf>,
    /// The policy directory decisions use; default `examples/policies`
    /// when it exists, else `<data dir>/policies`.
    #[arg(long)]
    policies: Option<PathBuf>,
}

pub fn run(data_dir: Option<PathBuf>, args: Args) -> Result<Outcome> {
    let (dir, temp) = match data_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new().prefix("tenet-demo-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let scenarios = if args.scenarios.is_empty() {
        vec![
            ScenarioKind::CredentialTheft,
            ScenarioKind::AgentPromptInjection,
            ScenarioKind::ConfusedDeputy,
            ScenarioKind::TeamReorg,
            ScenarioKind::AgentToolRollout,
        ]
    } else {
        super::simulate::scenarios(&args.scenarios)?
    };
    let sim = Arc::new(Simulation::new(Config {
        seed: args.seed,
        days: args.days.max(1),
        humans: args.humans.max(1),
        agents: args.agents,
        scenarios,
        ..Config::default()
    }));
    let rules_dir = args.rules.clone().or_else(|| {
        let shared = PathBuf::from("../shared/data/sigma");
        shared.is_dir().then_some(shared)
    });
    let rules = super::findings::load_rules(rules_dir.as_deref(), false)?;
    let policies = args.policies.clone().unwrap_or_else(|| {
        let shipped = PathBuf::from("examples/policies");
        if shipped.is_dir() { shipped } else { dir.join("policies") }
    });
    std::fs::create_dir_all(&policies).with_context(|| format!("creating {}", policies.display()))?;
    let config = tenet_service::ServeConfig {
        addr: Some(args.addr),
        policies: Some(policies),
        workers: Some(1),
        ..Default::default()
    };
    let running = tenet_service::start(tenet_service::Options {
        data_dir: dir.clone(),
        store: tenet_store::StoreAt::Embedded(dir.clone()),
        config,
        rules,
        cluster: None,
    })?;
    let board = running.status.clone();
    let url = format!("http://{}", running.started.addr);
    // Findings are read for the screen on a connection of the demo's own.
    let findings = SqliteStore::open_dir(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let feed = {
        let (sim, stop, done, inlet) = (sim.clone(), stop.clone(), done.clone(), running.inlet.clone());
        let pace = tenet_service::simulated::Pace { speed: args.speed, backfill_hours: args.backfill_hours };
        std::thread::Builder::new().name("tenet-demo-feed".into()).spawn(move || {
            let fed = tenet_service::simulated::feed(&sim, &inlet, &stop, pace);
            done.store(true, Ordering::Release);
            fed
        })?
    };

    let interactive = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0;
    let mut last_line = Instant::now() - Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if running.stop_requested() {
            stop.store(true, Ordering::Release);
        }
        let stopping = stop.load(Ordering::Acquire);
        let done = done.load(Ordering::Acquire);
        let status = board.snapshot();
        let dt = last.0.elapsed().as_secs_f64();
        if dt >= 1.0 {
            let inst = status.events.saturating_sub(last.1) as f64 / dt;
            rate = if rate == 0.0 { inst } else { 0.5 * rate + 0.5 * inst };
            last = (Instant::now(), status.events);
        }
        // Counted in the store: reading every finding four times a second
        // grows with the findings.
        let by_category = tenet_store::FindingReader::findings_by_category(&findings).unwrap_or_default();
        board.update(|s| {
            s.events_per_second = rate;
            s.findings_by_category = by_category.clone();
        });
        let summary = summarise(&status, rate, &by_category);
        if interactive {
            out!(
                "\x1b[H\x1b[2J{}",
                screen(&url, &dir, temp.is_some(), &summary, &sim, started.elapsed(), done, stopping)
            );
            let _ = std::io::stdout().flush();
        } else if last_line.elapsed() >= Duration::from_secs(5) || stopping || (done && args.exit_when_done) {
            outln!("{}", line(&url, &summary));
            last_line = Instant::now();
        }
        if stopping || (done && args.exit_when_done) {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    let fed = feed.join().map_err(|_| anyhow!("the feed thread panicked"))?;
    // Stopping the service stores and analyses what the feed queued.
    if let Err(e) = running.stop() {
        eprintln!("server: {e}");
    }
    let status = board.snapshot();
    outln!(
        "stopped cleanly: {} events ingested and committed{}{}; data {}",
        status.events,
        if status.rejected > 0 { format!(", {} rejected", status.rejected) } else { String::new() },
        if fed.refused > 0 { format!(", {} deliveries refused", fed.refused) } else { String::new() },
        if temp.is_some() {
            "was in a temporary directory, now removed".to_string()
        } else {
            format!("kept in {}", dir.display())
        }
    );
    drop(temp);
    Ok(Outcome::Ok)
}

struct Summary {
    snapshots: u64,
    events: u64,
    rejected: u64,
    rate: f64,
    clock: Option<Timestamp>,
    kinds: Vec<(String, u64)>,
    findings: Vec<(String, u64)>,
}

fn summarise(s: &tenet_server::Status, rate: f64, findings: &std::collections::BTreeMap<String, u64>) -> Summary {
    Summary {
        snapshots: s.inventory_snapshots,
        events: s.events,
        rejected: s.rejected,
        rate,
        clock: s.clock.as_deref().and_then(|c| Timestamp::parse_rfc3339(c).ok()),
        kinds: s.principals_by_kind.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        findings: tenet_model::Category::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), findings.get(c.as_str()).copied().unwrap_or(0)))
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn screen(
    url: &str,
    dir: &std::path::Path,
    temp: bool,
    s: &Summary,
    sim: &Simulation,
    up: Duration,
    done: bool,
    stopping: bool,
) -> String {
    let mut out = String::new();
    let state = if stopping {
        "stopping…"
    } else if done {
        "simulation complete — serving until Ctrl-C"
    } else {
        "live — Ctrl-C to stop"
    };
    out.push_str(&format!("Tenet demo  {state}\n\n"));
    out.push_str(&format!("  console & API   {url}   (status: {url}/api/status)\n"));
    out.push_str(&format!("  data            {}{}\n", dir.display(), if temp { " (temporary)" } else { "" }));
    out.push_str(&format!(
        "  simulated       {} people, {} agents, {} days from {}; clock {}\n",
        sim.config.humans,
        sim.org.agents.len(),
        sim.config.days,
        sim.config.start,
        s.clock.map_or("-".to_string(), |c| c.to_string())
    ));
    out.push_str(&format!("  running for     {:.0}s\n\n", up.as_secs_f64()));
    out.push_str(&format!(
        "  events          {:>10}   {:>8.0} events/s{}\n\n",
        s.events,
        s.rate,
        if s.rejected > 0 { format!("   {} rejected", s.rejected) } else { String::new() }
    ));
    out.push_str(&format!(
        "  inventory       {:>10}   snapshots imported (IAM, SCIM, RBAC, agent registry)\n\n",
        s.snapshots
    ));
    out.push_str("  principals by kind\n");
    for (k, n) in &s.kinds {
        out.push_str(&format!("    {k:<16} {n:>6}\n"));
    }
    out.push_str("\n  findings by category\n");
    for (c, n) in &s.findings {
        out.push_str(&format!("    {c:<28} {n:>6}\n"));
    }
    out.push_str("\n  scenarios injected\n");
    for p in &sim.plans {
        out.push_str(&format!("    {:<24} at {}\n", p.kind.name(), Timestamp::from_unix_seconds(sim.abs(p.at))));
    }
    out
}

fn line(url: &str, s: &Summary) -> String {
    let kinds: Vec<String> = s.kinds.iter().map(|(k, n)| format!("{k}={n}")).collect();
    let findings: Vec<String> = s.findings.iter().filter(|(_, n)| *n > 0).map(|(c, n)| format!("{c}={n}")).collect();
    format!(
        "[{}] events={} snapshots={} rate={:.0}/s principals[{}] findings[{}] {url}",
        s.clock.map_or("-".to_string(), |c| c.to_string()),
        s.events,
        s.snapshots,
        s.rate,
        kinds.join(" "),
        findings.join(" ")
    )
}
