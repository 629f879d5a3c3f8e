//! `tenet demo`: the simulated enterprise streamed live through the real
//! pipeline, the HTTP server listening, a one-screen summary.
//!
//! The simulator renders each minute of simulated time into the formats the
//! adapters read (CloudTrail, OTLP, Okta, Kubernetes audit); the feed
//! releases a minute once the accelerated clock passes it, and every byte
//! goes through format detection, the adapters and the ingest pipeline like
//! any other input. The first `--backfill-hours` are fed at once so the
//! live part starts with history behind it.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use tenet_model::{PrincipalKind, Timestamp};
use tenet_pipeline::Ingestor;
use tenet_server::StatusBoard;
use tenet_sim::{Config, ScenarioKind, Simulation};
use tenet_store::{FindingQuery, SqliteStore};

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

/// What the feed has seen, for the summary.
#[derive(Default)]
struct Seen {
    events: u64,
    rejected: u64,
    principals: HashMap<String, PrincipalKind>,
    formats: HashMap<&'static str, u64>,
    clock: Option<Timestamp>,
    done: bool,
    snapshots: u64,
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
    let mut store = SqliteStore::open_dir(&dir).with_context(|| format!("opening {}", dir.display()))?;
    let findings = tenet_store::EventStore::reader(&store)?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));

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
    let running = tenet_service::start(tenet_service::Options { data_dir: dir.clone(), config })?;
    let board = running.status.clone();
    let addr = running.started.addr;
    let url = format!("http://{addr}");

    let feed = {
        let (sim, stop, seen, board) = (sim.clone(), stop.clone(), seen.clone(), board.clone());
        let (speed, backfill) = (args.speed.max(1.0), args.backfill_hours);
        std::thread::Builder::new().name("tenet-demo-feed".into()).spawn(move || -> Result<()> {
            let result = feed(&sim, &mut store, &rules, &stop, &seen, &board, speed, backfill);
            if let Ok(mut s) = seen.lock() {
                s.done = true;
            }
            result
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
        let (events, done) = seen.lock().map(|s| (s.events, s.done)).unwrap_or((0, true));
        let dt = last.0.elapsed().as_secs_f64();
        if dt >= 1.0 {
            let inst = (events - last.1) as f64 / dt;
            rate = if rate == 0.0 { inst } else { 0.5 * rate + 0.5 * inst };
            last = (Instant::now(), events);
        }
        let findings = findings.findings(&FindingQuery::default()).unwrap_or_default();
        let mut by_category = std::collections::BTreeMap::new();
        for f in &findings {
            *by_category.entry(f.category.as_str().to_string()).or_insert(0u64) += 1;
        }
        let summary = summarise(&seen, rate, &by_category);
        board.update(|s| {
            s.events_per_second = rate;
            s.findings_by_category = by_category.clone();
        });
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
    if let Err(e) = running.stop() {
        eprintln!("server: {e}");
    }
    fed?;
    let (events, rejected) = seen.lock().map(|s| (s.events, s.rejected)).unwrap_or_default();
    outln!(
        "stopped cleanly: {events} events ingested and committed{}; data {}",
        if rejected > 0 { format!(", {rejected} rejected") } else { String::new() },
        if temp.is_some() {
            "was in a temporary directory, now removed".to_string()
        } else {
            format!("kept in {}", dir.display())
        }
    );
    drop(temp);
    Ok(Outcome::Ok)
}

/// Feeds the simulation through the adapters and the pipeline, paced by
/// the accelerated clock. Every batch is committed before it is counted.
#[allow(clippy::too_many_arguments)]
fn feed(
    sim: &Simulation,
    store: &mut SqliteStore,
    rules: &tenet_sigma::RuleSet,
    stop: &AtomicBool,
    seen: &std::sync::Mutex<Seen>,
    board: &StatusBoard,
    speed: f64,
    backfill_hours: u32,
) -> Result<()> {
    let mut ingestor = Ingestor::new(store);
    let live_from = sim.abs(i64::from(backfill_hours.min(sim.hours())) * tenet_sim::HOUR);
    let mut live_start: Option<Instant> = None;
    // The inventory as the simulated collectors take it: imported when the
    // clock reaches each collection, like a nightly `tenet import --at`.
    let mut collections = tenet_sim::inventory::snapshot_times(sim).into_iter().peekable();
    for h in 0..sim.hours() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        while let Some(t) = collections.next_if(|&t| t < i64::from(h + 1) * tenet_sim::HOUR) {
            let files = tenet_sim::inventory::snapshot(sim, t).into_iter().map(|(name, data)| {
                tenet_pipeline::trust::InventoryFile { name: format!("simulated {name}"), data, explicit: true }
            });
            let at = Timestamp::from_unix_seconds(sim.abs(t));
            let report = tenet_pipeline::trust::import_inventory(ingestor.store(), files, at, &Default::default())?;
            if !report.rejected.is_empty() {
                tracing::warn!(rejected = ?report.rejected, "simulated inventory had rejected entries");
            }
            let snapshots = {
                let mut s = seen.lock().map_err(|_| anyhow!("status lock poisoned"))?;
                s.snapshots += report.snapshots;
                s.snapshots
            };
            board.update(|st| {
                st.inventory_snapshots = snapshots;
                st.trust_facts_opened += report.opened;
                st.trust_facts_closed += report.closed;
            });
        }
        let mut hour = tenet_sim::output::render_hour(sim, h, 60, false);
        hour.chunks.sort_by_key(|c| c.until);
        for chunk in hour.chunks {
            if chunk.until > live_from {
                let started = *live_start.get_or_insert_with(|| {
                    board.set_ready();
                    Instant::now()
                });
                // Wait for the accelerated clock to pass the chunk's end.
                loop {
                    if stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    let clock = live_from as f64 + started.elapsed().as_secs_f64() * speed;
                    if clock >= chunk.until as f64 {
                        break;
                    }
                    let wait = ((chunk.until as f64 - clock) / speed).min(0.2);
                    std::thread::sleep(Duration::from_secs_f64(wait.max(0.001)));
                }
            }
            let Some(format) = tenet_sources::format::by_name(chunk.format) else { continue };
            let (mut events, mut rejected) = (Vec::new(), 0u64);
            format.read(&Bytes::from(chunk.bytes), &mut |r| match r {
                Ok(e) => events.push(e),
                Err(_) => rejected += 1,
            });
            // Who acted, not every short-lived session or tool call: the
            // actor when it acts for nobody, else whom it acts for.
            let principals: Vec<(String, PrincipalKind)> = events
                .iter()
                .flat_map(|e| if e.chain.is_empty() { std::slice::from_ref(&e.actor) } else { &e.chain[..] })
                .map(|p| (p.id.clone(), p.kind))
                .collect();
            let newest = events.iter().map(|e| e.time).max();
            let n = events.len() as u64;
            ingestor.accept(events)?;
            let mut s = seen.lock().map_err(|_| anyhow!("status lock poisoned"))?;
            s.events += n;
            s.rejected += rejected;
            *s.formats.entry(chunk.format).or_default() += n;
            s.principals.extend(principals);
            s.clock = s.clock.max(newest);
            let (events, rejected, clock) = (s.events, s.rejected, s.clock);
            let mut kinds = std::collections::BTreeMap::new();
            for k in s.principals.values() {
                *kinds.entry(k.as_str().to_string()).or_insert(0u64) += 1;
            }
            let formats: std::collections::BTreeMap<String, u64> =
                s.formats.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            drop(s);
            board.update(|st| {
                st.events = events;
                st.rejected = rejected;
                st.clock = clock.map(|c| c.to_string());
                st.principals_by_kind = kinds;
                st.formats = formats;
            });
        }
        // Each simulated hour is analysed as it completes, so findings
        // appear while the feed runs. A failed analysis is reported, and
        // the feed goes on: what is stored stays pending for the next run.
        if let Err(e) = tenet_pipeline::analyse::analyse(ingestor.store(), rules, &Default::default()) {
            tracing::warn!(error = %e, hour = h, "analysis failed; events stay pending");
        }
    }
    board.set_ready();
    Ok(())
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

fn summarise(seen: &std::sync::Mutex<Seen>, rate: f64, findings: &std::collections::BTreeMap<String, u64>) -> Summary {
    let s = match seen.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    let mut kinds: HashMap<&'static str, u64> = HashMap::new();
    for k in s.principals.values() {
        *kinds.entry(k.as_str()).or_default() += 1;
    }
    let mut kinds: Vec<(String, u64)> = kinds.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    kinds.sort();
    Summary {
        snapshots: s.snapshots,
        events: s.events,
        rejected: s.rejected,
        rate,
        clock: s.clock,
        kinds,
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
