//! Packaging: an hour's records into the files a real deployment produces,
//! and the whole run into a directory (in parallel, deterministically).
//!
//! Layout of `--out DIR`:
//!
//! ```text
//! cloudtrail/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHH05Z_<id>.json.gz
//! otlp/YYYY/MM/DD/traces-HH.jsonl        one ExportTraceServiceRequest per line, one trace each
//! okta/YYYY/MM/DD/system-log-HH.json     a System Log page: a JSON array of events
//! k8s-audit/<cluster>/YYYY/MM/DD/audit-HH.log   the API server's log backend: one Event per line
//! inventory/<YYYY-MM-DD>/...             IAM, SCIM, RBAC and agent-registry snapshots
//! labels.jsonl                           ground truth, one JSON object per labelled event
//! manifest.json, README.md
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use tenet_model::Timestamp;

use crate::record::{Label, Record};
use crate::world::Simulation;
use crate::{HOUR, inventory, render, rng};

/// One file's worth of telemetry.
pub struct Chunk {
    /// Path relative to the output directory.
    pub path: String,
    /// The adapter format it is written in.
    pub format: &'static str,
    pub bytes: Vec<u8>,
    pub events: u64,
    /// When the chunk's last event happened (Unix seconds): a live feed
    /// releases the chunk once its clock passes this.
    pub until: i64,
}

/// An hour, rendered.
pub struct RenderedHour {
    pub hour: u32,
    pub chunks: Vec<Chunk>,
    pub labels: Vec<Label>,
}

fn date_path(secs: i64) -> (String, String) {
    let dt = Timestamp::from_unix_seconds(secs).to_chrono();
    (dt.format("%Y/%m/%d").to_string(), dt.format("%H").to_string())
}

fn event_time(r: &Record) -> i64 {
    match r {
        Record::Trail(t) => t.time * 1_000_000_000,
        Record::Okta(o) => o.time_ms * 1_000_000,
        Record::Audit(a) => a.time_us * 1000,
        Record::Trace(t) => t.start_ns(),
    }
}

/// Splits an hour into windows of `window` seconds (3600 for files; less
/// for a live feed) and renders each into its formats' chunks.
pub fn render_hour(sim: &Simulation, h: u32, window: i64, gzip: bool) -> RenderedHour {
    let mut hour = sim.hour(h);
    hour.records.sort_by_key(event_time);
    let start = sim.abs(i64::from(h) * HOUR);
    let window = window.clamp(1, HOUR);
    let windows = (HOUR + window - 1) / window;
    // Every record of the hour goes somewhere: a sequence that began in this
    // hour and spills past its end stays with its beginning, in the last window.
    let mut buckets: Vec<Vec<&Record>> = vec![Vec::new(); windows as usize];
    for r in &hour.records {
        let offset = event_time(r) / 1_000_000_000 - start;
        buckets[(offset / window).clamp(0, windows - 1) as usize].push(r);
    }
    let mut chunks = Vec::new();
    for (w, records) in buckets.iter().enumerate() {
        let w = w as i64;
        let until = records.last().map_or(start + (w + 1) * window - 1, |r| {
            (event_time(r) / 1_000_000_000).max(start + (w + 1) * window - 1)
        });
        render_window(sim, h, w, until, records, window == HOUR, gzip, &mut chunks);
    }
    RenderedHour { hour: h, chunks, labels: hour.labels }
}

#[allow(clippy::too_many_arguments)]
fn render_window(
    sim: &Simulation,
    h: u32,
    w: i64,
    until: i64,
    records: &[&Record],
    hourly: bool,
    gzip: bool,
    out: &mut Vec<Chunk>,
) {
    let org = &sim.org;
    let (day, hh) = date_path(sim.abs(i64::from(h) * HOUR));
    let part = if hourly { String::new() } else { format!("-{w:02}") };
    // CloudTrail: one delivery file per account and region.
    let mut trails: BTreeMap<(usize, &str), (Vec<u8>, u64)> = BTreeMap::new();
    let (mut okta, mut audit, mut traces) = ((Vec::new(), 0u64), (Vec::new(), 0u64), (Vec::new(), 0u64));
    for r in records {
        match r {
            Record::Trail(t) => {
                let (buf, n) = trails.entry((t.account, t.region)).or_insert_with(|| (b"{\"Records\":[".to_vec(), 0));
                if *n > 0 {
                    buf.push(b',');
                }
                render::write_trail(buf, org, t);
                *n += 1;
            }
            Record::Okta(o) => {
                okta.0.push(if okta.1 == 0 { b'[' } else { b',' });
                render::write_okta(&mut okta.0, o);
                okta.1 += 1;
            }
            Record::Audit(a) => {
                render::write_audit(&mut audit.0, a);
                audit.0.push(b'\n');
                audit.1 += 1;
            }
            Record::Trace(t) => {
                render::write_trace(&mut traces.0, t);
                traces.0.push(b'\n');
                traces.1 += t.spans.len() as u64;
            }
        }
    }
    for ((account, region), (mut json, n)) in trails {
        json.extend_from_slice(b"]}");
        let acct = &org.account(account).id;
        let stamp = Timestamp::from_unix_seconds(sim.abs(i64::from(h) * HOUR + w * 300))
            .to_chrono()
            .format("%Y%m%dT%H%M")
            .to_string();
        let id = rng::base62(
            &mut rng::rng(sim.config.seed, "delivery", &[u64::from(h), w as u64, account as u64, region.len() as u64]),
            16,
        );
        let (bytes, ext) = if gzip { (gz(&json), ".json.gz") } else { (json, ".json") };
        out.push(Chunk {
            path: format!(
                "cloudtrail/AWSLogs/{acct}/CloudTrail/{region}/{day}/{acct}_CloudTrail_{region}_{stamp}Z_{id}{ext}"
            ),
            format: "cloudtrail",
            bytes,
            events: n,
            until,
        });
    }
    if traces.1 > 0 {
        out.push(Chunk {
            path: format!("otlp/{day}/traces-{hh}{part}.jsonl"),
            format: "otlp",
            bytes: traces.0,
            events: traces.1,
            until,
        });
    }
    if okta.1 > 0 {
        okta.0.push(b']');
        out.push(Chunk {
            path: format!("okta/{day}/system-log-{hh}{part}.json"),
            format: "okta",
            bytes: okta.0,
            events: okta.1,
            until,
        });
    }
    if audit.1 > 0 {
        out.push(Chunk {
            path: format!("k8s-audit/{}/{day}/audit-{hh}{part}.log", org.cluster),
            format: "k8s-audit",
            bytes: audit.0,
            events: audit.1,
            until,
        });
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    // The default gzip header has no timestamp or name: output stays reproducible.
    let mut e = GzEncoder::new(Vec::with_capacity(bytes.len() / 6), Compression::fast());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// Counts of what a run wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Written {
    pub events: u64,
    pub files: u64,
    pub bytes: u64,
    pub labels: u64,
    pub formats: BTreeMap<&'static str, u64>,
    pub scenarios: BTreeMap<String, u64>,
}

/// Writes the whole simulation under `dir`, generating hours on `threads`
/// threads and writing them in order. `progress` sees each hour as written.
pub fn write_dir(
    sim: &Simulation,
    dir: &Path,
    threads: usize,
    mut progress: impl FnMut(u32, &Written),
) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut written = Written::default();
    let mut labels = io::BufWriter::new(std::fs::File::create(dir.join("labels.jsonl"))?);
    let next = AtomicU32::new(0);
    let hours = sim.hours();
    let threads = threads.max(1);
    let (tx, rx) = mpsc::sync_channel::<RenderedHour>(threads * 2);
    let mut failure: Option<io::Error> = None;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let h = next.fetch_add(1, Ordering::Relaxed);
                    if h >= hours || tx.send(render_hour(sim, h, HOUR, true)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Hours arrive out of order; files and labels are written in order.
        let mut pending: BTreeMap<u32, RenderedHour> = BTreeMap::new();
        let mut expect = 0u32;
        for rendered in rx {
            pending.insert(rendered.hour, rendered);
            while let Some(hour) = pending.remove(&expect) {
                if failure.is_none()
                    && let Err(e) = write_hour(dir, &hour, &mut labels, &mut written)
                {
                    failure = Some(e);
                }
                progress(expect, &written);
                expect += 1;
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    labels.flush()?;
    for t in inventory::snapshot_times(sim) {
        let day = Timestamp::from_unix_seconds(sim.abs(t)).to_chrono().format("%Y-%m-%d").to_string();
        let sub = dir.join("inventory").join(day);
        std::fs::create_dir_all(&sub)?;
        for (name, bytes) in inventory::snapshot(sim, t) {
            std::fs::write(sub.join(name), bytes)?;
        }
    }
    std::fs::write(dir.join("README.md"), readme(sim))?;
    let manifest = serde_json::json!({
        "generator": "tenet simulate",
        "seed": sim.config.seed,
        "shape": sim.config.shape.name(),
        "days": sim.config.days,
        "humans": sim.config.humans,
        "agents": sim.config.agents,
        "start": sim.config.start.to_string(),
        "scenarios": sim.plans.iter().map(|p| serde_json::json!({
            "name": p.kind.name(),
            "category": p.kind.category().as_str(),
            "at": Timestamp::from_unix_seconds(sim.abs(p.at)).to_string(),
        })).collect::<Vec<_>>(),
        "written": &written,
    });
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap_or_default())?;
    Ok(written)
}

/// Writes one chunk under `dir` and counts it.
pub(crate) fn write_chunk(dir: &Path, c: &Chunk, written: &mut Written) -> io::Result<()> {
    let path = dir.join(&c.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, &c.bytes)?;
    written.files += 1;
    written.bytes += c.bytes.len() as u64;
    written.events += c.events;
    *written.formats.entry(c.format).or_default() += c.events;
    Ok(())
}

fn write_hour(dir: &Path, hour: &RenderedHour, labels: &mut impl Write, written: &mut Written) -> io::Result<()> {
    for c in &hour.chunks {
        write_chunk(dir, c, written)?;
    }
    for l in &hour.labels {
        serde_json::to_writer(&mut *labels, l)?;
        labels.write_all(b"\n")?;
        written.labels += 1;
        *written.scenarios.entry(l.scenario.clone()).or_default() += 1;
    }
    Ok(())
}

fn readme(sim: &Simulation) -> String {
    format!(
        "# Simulated telemetry (tenet simulate)\n\n\
         Seed {seed}, a{n} {shape} organisation, {days} days from {start}, {humans} people, {agents} agents.\n\
         Regenerate byte for byte with `tenet simulate --seed {seed} --shape {shape} --days {days} --humans {humans} --agents {agents}{scen} --out DIR`.\n\n\
         ## Layout\n\n\
         - `cloudtrail/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`: CloudTrail S3 delivery files, one per account, region and hour.\n\
         - `otlp/YYYY/MM/DD/traces-HH.jsonl`: OTLP/JSON `ExportTraceServiceRequest`s, one trace per line, with the OpenTelemetry GenAI (`invoke_agent`, `execute_tool`, `chat`) and MCP (`tools/call`) conventions; `enduser.id` names the person an agent serves.\n\
         - `okta/YYYY/MM/DD/system-log-HH.json`: Okta System Log pages.\n\
         - `k8s-audit/<cluster>/YYYY/MM/DD/audit-HH.log`: Kubernetes `audit.k8s.io/v1` events, one per line.\n\
         - `inventory/<YYYY-MM-DD>/`: the inventory as collected at 00:00 UTC that day (see below).\n\
         - `labels.jsonl`: ground truth: `{{\"event_id\", \"scenario\", \"category\", \"principal\"}}` per labelled event, ids as Tenet's adapters assign them.\n\
         - `manifest.json`: parameters, scenario times, counts.\n\n\
         Agent tool calls that reach AWS go through the `aws-mcp` server, which assumes `mcp-aws-tools` per call with \
         `RoleSessionName` `<agent id>.<tool call id>` and `SourceIdentity` the person whose access is used.\n\n{inventory}",
        seed = sim.config.seed,
        shape = sim.config.shape.name(),
        n = if sim.config.shape == crate::Shape::Enterprise { "n" } else { "" },
        days = sim.config.days,
        start = sim.config.start,
        humans = sim.config.humans,
        agents = sim.config.agents,
        scen = sim.plans.iter().map(|p| format!(" --scenario {}", p.kind.name())).collect::<String>(),
        inventory = inventory::describe(),
    )
}
