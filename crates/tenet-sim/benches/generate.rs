//! Generator throughput, each stage measured in the same run on the same
//! simulated enterprise:
//!
//! 1. records: the simulation's typed records, hour by hour;
//! 2. + render: the records rendered to their formats' JSON, in memory;
//! 3. + gzip: as `tenet simulate` packages them (CloudTrail gzipped);
//! 4. + write: the whole `tenet simulate` to a temporary directory.
//!
//! Then a long run written to disk (`--long`, default 90 days, 5,000 people,
//! 500 agents), sampling the process's resident memory as it goes.
//!
//! `cargo bench -p tenet-sim --bench generate [-- --days D --humans N --agents M --long]`

use std::time::Instant;

use tenet_sim::{Config, ScenarioKind, Simulation, output};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(default)
}

fn events_of(h: &tenet_sim::world::Hour) -> u64 {
    h.records
        .iter()
        .map(|r| match r {
            tenet_sim::record::Record::Trace(t) => t.spans.len() as u64,
            _ => 1,
        })
        .sum()
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = Config {
        seed: 3,
        days: arg("--days", 14) as u32,
        humans: arg("--humans", 1000) as usize,
        agents: arg("--agents", 100) as usize,
        scenarios: ScenarioKind::ALL.to_vec(),
        ..Config::default()
    };
    println!(
        "generator benchmark: {} days, {} people, {} agents, all scenarios, {threads} threads",
        config.days, config.humans, config.agents
    );
    let sim = Simulation::new(config.clone());
    let hours = sim.hours();
    let par = |f: &(dyn Fn(u32) -> u64 + Sync)| -> u64 {
        let next = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0;
                        loop {
                            let h = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if h >= hours {
                                return n;
                            }
                            n += f(h);
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        })
    };
    let mut rows = Vec::new();
    let t = Instant::now();
    let n = par(&|h| events_of(&sim.hour(h)));
    rows.push(("records", n, t.elapsed().as_secs_f64(), 0u64));
    let t = Instant::now();
    let mut bytes = std::sync::atomic::AtomicU64::new(0);
    let n = par(&|h| {
        let r = output::render_hour(&sim, h, tenet_sim::HOUR, false);
        bytes.fetch_add(r.chunks.iter().map(|c| c.bytes.len() as u64).sum(), std::sync::atomic::Ordering::Relaxed);
        r.chunks.iter().map(|c| c.events).sum()
    });
    rows.push(("+ render JSON", n, t.elapsed().as_secs_f64(), *bytes.get_mut()));
    let t = Instant::now();
    let mut gz = std::sync::atomic::AtomicU64::new(0);
    let n = par(&|h| {
        let r = output::render_hour(&sim, h, tenet_sim::HOUR, true);
        gz.fetch_add(r.chunks.iter().map(|c| c.bytes.len() as u64).sum(), std::sync::atomic::Ordering::Relaxed);
        r.chunks.iter().map(|c| c.events).sum()
    });
    rows.push(("+ gzip (as written)", n, t.elapsed().as_secs_f64(), *gz.get_mut()));
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let w = output::write_dir(&sim, dir.path(), threads, |_, _| {}).unwrap();
    rows.push(("+ write to disk", w.events, t.elapsed().as_secs_f64(), w.bytes));
    drop(dir);
    println!("{:<22} {:>12} {:>10} {:>12} {:>10}", "stage", "events", "seconds", "events/s", "MB");
    for (name, n, secs, b) in &rows {
        println!("{name:<22} {n:>12} {secs:>10.2} {:>12.0} {:>10.1}", *n as f64 / secs, *b as f64 / 1e6);
    }

    if std::env::args().any(|a| a == "--long") {
        let long = Config {
            days: arg("--long-days", 90) as u32,
            humans: arg("--long-humans", 5000) as usize,
            agents: arg("--long-agents", 500) as usize,
            ..config
        };
        println!("\nlong run: {} days, {} people, {} agents, written to disk", long.days, long.humans, long.agents);
        let sim = Simulation::new(long);
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let mut samples = Vec::new();
        let w = output::write_dir(&sim, dir.path(), threads, |h, w| {
            if h % 24 == 23 {
                samples.push((h / 24 + 1, w.events, rss_mib()));
            }
        })
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{} events, {:.1} GB, {secs:.0}s, {:.0} events/s",
            w.events,
            w.bytes as f64 / 1e9,
            w.events as f64 / secs
        );
        println!("{:>5} {:>14} {:>10}", "day", "events", "RSS MiB");
        let step = (samples.len() / 10).max(1);
        for (day, events, rss) in samples.iter().step_by(step).chain(samples.last()) {
            println!("{day:>5} {events:>14} {rss:>10.1}");
        }
    }
}
