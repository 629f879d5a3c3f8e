//! Ingest throughput on the shared CloudTrail corpus, replicated with fresh
//! event ids to at least 1,000,000 events. Every mode runs in the same
//! process on the same bytes, so ratios hold on a noisy machine:
//!
//! 1. raw `serde_json` parse of each delivery file into `serde_json::Value`
//!    (the baseline);
//! 2. parse + normalise (the CloudTrail adapter, events out);
//! 3. parse + normalise + encode: the reading thread's whole share of an
//!    ingest (adds credential linking's bookkeeping-free path, JSON encoding
//!    and zstd compression), without the store;
//! 4. parse + normalise + store: the real `tenet_pipeline::ingest` from files
//!    into a fresh SQLite store, with the corpus's own timestamps repeated in
//!    every copy (inserts land all over the time-ordered indexes);
//! 5. the same with each copy moved onto a continuous clock (1,000 events per
//!    second), as a live account's delivery files arrive;
//! 6. the full pipeline on those files: parse, normalise, store (with the
//!    trust changes the graph is built from), then analysis: baselines,
//!    every detector, and every shared Sigma rule whose logsource is
//!    CloudTrail, into findings and risk (`tenet ingest --rules`);
//! 7. re-ingest: modes 4 and 5's files ingested again into their stores,
//!    every event a duplicate (a retried delivery, a restart after a crash),
//!    next to the first ingest's time.
//!
//! `cargo bench -p tenet-pipeline --bench ingest [-- EVENTS]`
//! (`PROFILE_STORE=1` runs only mode 4, `PROFILE_FULL=1` only mode 6, for
//! profiling).
//!
//! `cargo bench -p tenet-pipeline --bench ingest -- --postgres [EVENTS]`
//! runs store and full pipeline on the same files (default 200,000 events,
//! on a continuous clock) into the embedded store and into PostgreSQL: a
//! private server started from the machine's binaries, on the same cores,
//! with fsync off as in the tests (so the ratio is the protocol's and the
//! server's CPU, not a disk's).
//!
//! `cargo bench -p tenet-pipeline --bench ingest -- --reingest [EVENTS]`
//! runs only first ingest against re-ingest, on EVENTS (default 100,000)
//! stamped with whole seconds at 25,000 events a second, as CloudTrail
//! stamps them: duplicate detection must not cost more per event the more
//! events share a second.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tenet_sources::formats::cloudtrail::CloudTrail;
use tenet_sources::{Format, input};
use tenet_store::{EventReader, SqliteStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS_PER_FILE: usize = 1000;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail")
}

/// Every CloudTrail record in the shared corpus, as parsed JSON.
fn corpus() -> Vec<Value> {
    let files = input::expand(&[shared()]).expect("shared corpus present");
    let mut records = Vec::new();
    for f in files {
        let data = input::load(&f).expect("readable");
        if CloudTrail.detect(&tenet_sources::Sample::of(&data)) {
            let framed = tenet_sources::framing::frame(&data, &["Records"]);
            records.extend(framed.records.iter().filter_map(|r| serde_json::from_slice::<Value>(r.bytes).ok()));
        }
    }
    records
}

/// Whose times the replicated events carry.
#[derive(Clone, Copy)]
enum Clock {
    /// The corpus's own: every copy repeats them.
    AsIs,
    /// One clock, 1,000 events a second, millisecond stamps.
    Stream,
    /// One clock, this many events a second, whole-second stamps (as
    /// CloudTrail writes `eventTime`): every event of a second shares its time.
    Dense(usize),
}

/// Writes `target` events as compact S3-style delivery files under `dir`,
/// with times from `clock`.
fn replicate(records: &[Value], target: usize, dir: &Path, clock: Clock) -> (Vec<PathBuf>, u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut batch: Vec<Value> = Vec::with_capacity(RECORDS_PER_FILE);
    let mut flush = |batch: &mut Vec<Value>, files: &mut Vec<PathBuf>| {
        let path = dir.join(format!("{:06}.json", files.len()));
        let body = serde_json::to_vec(&serde_json::json!({ "Records": batch })).unwrap();
        total += body.len() as u64;
        std::fs::write(&path, body).unwrap();
        files.push(path);
        batch.clear();
    };
    for i in 0..target {
        let copy = i / records.len();
        let mut r = records[i % records.len()].clone();
        // A fresh, UUID-shaped id per copy: same length as the real ones.
        let orig = r["eventID"].as_str().unwrap_or("00000000-0000-0000-0000-000000000000").to_string();
        let fresh = format!("{}{:012x}", &orig[..orig.len().min(24)], (copy as u64) << 16 | (i % records.len()) as u64);
        r["eventID"] = Value::String(fresh);
        let stamp = match clock {
            Clock::AsIs => None,
            Clock::Stream => Some((
                chrono::DateTime::from_timestamp(1_767_225_600 + (i / 1000) as i64, ((i % 1000) * 1_000_000) as u32),
                chrono::SecondsFormat::Millis,
            )),
            Clock::Dense(per_sec) => Some((
                chrono::DateTime::from_timestamp(1_767_225_600 + (i / per_sec.max(1)) as i64, 0),
                chrono::SecondsFormat::Secs,
            )),
        };
        if let Some((t, format)) = stamp {
            r["eventTime"] = Value::String(t.unwrap().to_rfc3339_opts(format, true));
            if let Some(o) = r.as_object_mut() {
                o.remove("@timestamp");
            }
        }
        batch.push(r);
        if batch.len() == RECORDS_PER_FILE {
            flush(&mut batch, &mut files);
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut files);
    }
    (files, total)
}

/// Flushes what earlier phases and the set-up wrote (a gigabyte of
/// replicated delivery files, the previous phase's store) so its write-back
/// does not hold up the timed phase's own fsyncs: each phase pays for its
/// own I/O only.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Resets the kernel's peak-RSS mark for this process so each phase reports its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Phase {
    name: &'static str,
    events: u64,
    secs: f64,
    /// CPU time of the whole process (all threads, user and system).
    cpu_secs: f64,
    peak_mib: f64,
    note: String,
}

/// This process's CPU time so far, from `/proc/self/stat` (clock ticks of
/// 1/100 s): on a shared machine another tenant changes CPU time per event
/// far less than wall time (only through shared caches and cores).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at `)`.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn timed(name: &'static str, f: impl FnOnce() -> (u64, String)) -> Phase {
    settle();
    reset_peak();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let (events, note) = f();
    Phase { name, events, secs: t.elapsed().as_secs_f64(), cpu_secs: cpu_seconds() - cpu, peak_mib: peak_mib(), note }
}

/// Ingests `files` again into the store `store_phase` filled from them:
/// every event is a duplicate.
fn reingest_phase(name: &'static str, files: &[PathBuf], dir: &Path, target: usize) -> Phase {
    timed(name, || {
        let mut store = SqliteStore::open_dir(dir).expect("store opens");
        let report = tenet_pipeline::ingest(files, &mut store, Default::default(), &mut ()).expect("ingest runs");
        assert_eq!((report.stored, report.duplicates as usize), (0, target), "every event is a duplicate");
        assert_eq!(store.count().unwrap() as usize, target);
        (report.duplicates, format!("writer busy {:.1}s", report.store_seconds))
    })
}

/// One line per phase: time, rate, CPU per event (this process), note.
fn print_phases(phases: &[&Phase]) {
    for p in phases {
        println!(
            "{:<26} {:>7.2} s {:>10.0} events/s {:>8.2} CPU µs/ev  {}",
            p.name,
            p.secs,
            p.events as f64 / p.secs,
            p.cpu_secs * 1e6 / p.events as f64,
            p.note
        );
    }
}

/// First ingest against re-ingest of the same dense files, alone.
fn reingest_only(target: usize) {
    const PER_SEC: usize = 25_000;
    let work = tempfile::tempdir().expect("temp dir");
    let (files, _) = replicate(&corpus(), target, &work.path().join("dense"), Clock::Dense(PER_SEC));
    let store = work.path().join("store-dense");
    let first = store_phase("first ingest", &files, &store, target);
    let again = reingest_phase("re-ingest", &files, &store, target);
    println!(
        "re-ingest benchmark: {target} CloudTrail events, {PER_SEC} a second ({} seconds, whole-second stamps)",
        target.div_ceil(PER_SEC)
    );
    print_phases(&[&first, &again]);
    println!(
        "re-ingest / first ingest: {:.2} (wall), {:.2} (CPU)",
        again.secs / first.secs,
        again.cpu_secs / first.cpu_secs
    );
}

/// The baseline: each delivery file read and parsed into `serde_json::Value`.
fn raw_parse(files: &[PathBuf]) -> Phase {
    let data: Vec<Bytes> = files.iter().map(|f| Bytes::from(std::fs::read(f).unwrap())).collect();
    timed("raw serde_json parse", || {
        let mut n = 0u64;
        for d in &data {
            let v: Value = serde_json::from_slice(d).expect("valid JSON");
            n += v["Records"].as_array().map_or(0, |a| a.len() as u64);
        }
        (n, String::new())
    })
}

/// Embedded against PostgreSQL, on the same files in one run.
fn postgres_against_embedded(target: usize) {
    let server = tenet_testkit::postgres::Server::start("ingest bench --postgres")
        .expect("PostgreSQL's server binaries (apt-get install postgresql)");
    let url = server.fresh_database();
    let work = tempfile::tempdir().expect("temp dir");
    let (files, _) = replicate(&corpus(), target, &work.path().join("stream"), Clock::Stream);
    let embedded = store_phase("embedded: store", &files, &work.path().join("store"), target);
    let on_pg = timed("postgres: store", || {
        let mut store = tenet_store::PostgresStore::connect(&url).expect("PostgreSQL store opens");
        let report = tenet_pipeline::ingest(&files, &mut store, Default::default(), &mut ()).expect("ingest runs");
        assert_eq!(report.stored as usize, target);
        assert_eq!(store.count().unwrap() as usize, target);
        (report.stored, format!("writer busy {:.1}s", report.store_seconds))
    });
    let full_embedded = full_pipeline(&files, &work.path().join("store-full"), target);
    let full_url = server.fresh_database();
    let full_pg = full_pipeline_on(&files, &mut tenet_store::PostgresStore::connect(&full_url).expect("opens"), target);
    println!("embedded against PostgreSQL: {target} CloudTrail events on a continuous clock");
    print_phases(&[&embedded, &on_pg, &full_embedded, &full_pg]);
    println!(
        "PostgreSQL / embedded throughput: store {:.2}, full pipeline {:.2}",
        embedded.secs / on_pg.secs,
        full_embedded.secs / full_pg.secs
    );
}

fn store_phase(name: &'static str, files: &[PathBuf], dir: &Path, target: usize) -> Phase {
    timed(name, || {
        let mut store = SqliteStore::open_dir(dir).expect("store opens");
        let report = tenet_pipeline::ingest(files, &mut store, Default::default(), &mut ()).expect("ingest runs");
        assert_eq!(report.rejected, 0);
        assert_eq!(report.stored as usize, target);
        assert_eq!(store.count().unwrap() as usize, target);
        drop(store);
        let bytes: u64 = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
        let note = format!(
            "writer busy {:.1}s; {:.0} bytes/event on disk",
            report.store_seconds,
            bytes as f64 / target as f64
        );
        (report.stored, note)
    })
}

/// Ingest then analyse, as `tenet ingest --rules ../shared/data/sigma` does.
fn full_pipeline(files: &[PathBuf], dir: &Path, target: usize) -> Phase {
    full_pipeline_on(files, &mut SqliteStore::open_dir(dir).expect("store opens"), target)
}

fn full_pipeline_on(files: &[PathBuf], store: &mut dyn tenet_store::EventStore, target: usize) -> Phase {
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma");
    let (rules, loaded) = tenet_sigma::RuleSet::load_dir(&rules_dir).expect("shared Sigma rules load");
    let cloudtrail_rules = loaded.loaded.get("aws/cloudtrail").copied().unwrap_or(0);
    timed("full: + analyse + Sigma", || {
        let (report, a) = tenet_pipeline::analyse::ingest_and_analyse(
            files,
            store,
            Default::default(),
            &mut (),
            &rules,
            &Default::default(),
        )
        .expect("ingest and analysis run");
        assert_eq!(report.stored as usize, target);
        assert_eq!(a.events as usize, target, "every event analysed");
        let (checked, parsed) = rules.prefilter_counts();
        let note = format!(
            "ingest analysed as stored, {:.1}s in all; {cloudtrail_rules} CloudTrail Sigma rules, \
             {parsed} of {checked} records past the prefilter, {} matches; {} principals, {} B per principal \
             baseline; {} findings",
            a.seconds, a.sigma_matches, a.learner.principals, a.learner.bytes_per_principal, a.learner.findings
        );
        (a.events, note)
    })
}

fn main() {
    let count: Option<usize> = std::env::args().skip(1).find_map(|a| a.parse().ok());
    if std::env::args().any(|a| a == "--postgres") {
        postgres_against_embedded(count.unwrap_or(200_000));
        return;
    }
    if std::env::args().any(|a| a == "--reingest") {
        reingest_only(count.unwrap_or(100_000));
        return;
    }
    let target = count.unwrap_or(1_000_000);
    let only_store = std::env::var_os("PROFILE_STORE").is_some();
    if std::env::var_os("PROFILE_FULL").is_some() {
        // Only the full pipeline, for profiling.
        let work = tempfile::tempdir().expect("temp dir");
        let (files, _) = replicate(&corpus(), target, &work.path().join("stream"), Clock::Stream);
        let raw = raw_parse(&files);
        let p = full_pipeline(&files, &work.path().join("store-full"), target);
        let cpu = p.cpu_secs * 1e6 / p.events as f64;
        let (eps, raw_eps) = (p.events as f64 / p.secs, raw.events as f64 / raw.secs);
        println!(
            "{}: {eps:.0} events/s ({:.2}× raw parse at {raw_eps:.0}), {cpu:.2} CPU µs/event; {}",
            p.name,
            eps / raw_eps,
            p.note
        );
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let records = corpus();
    eprintln!("corpus: {} CloudTrail records; replicating to {target}", records.len());
    let (files, bytes) = replicate(&records, target, &work.path().join("as-is"), Clock::AsIs);
    let mb = bytes as f64 / 1e6;
    let mut phases = Vec::new();

    if !only_store {
        let data: Vec<Bytes> = files.iter().map(|f| Bytes::from(std::fs::read(f).unwrap())).collect();
        phases.push(raw_parse(&files));
        phases.push(timed("parse + normalise", || {
            let (mut n, mut bad) = (0u64, 0u64);
            for d in &data {
                CloudTrail.read(d, &mut |r| match r {
                    Ok(e) => {
                        n += 1;
                        std::hint::black_box(e);
                    }
                    Err(_) => bad += 1,
                });
            }
            assert_eq!(bad, 0, "the replicated corpus reads without rejection");
            (n, String::new())
        }));
        phases.push(timed("parse + normalise + encode", || {
            let mut n = 0u64;
            for d in &data {
                let mut events = Vec::new();
                CloudTrail.read(d, &mut |r| events.extend(r.ok()));
                n += events.len() as u64;
                std::hint::black_box(tenet_store::PreparedBatch::new(events));
            }
            (n, "the reading thread's share of a store run".to_string())
        }));
    }
    phases.push(store_phase("parse + normalise + store", &files, &work.path().join("store-as-is"), target));
    if !only_store {
        phases.push(reingest_phase("  …, again: all duplicates", &files, &work.path().join("store-as-is"), target));
        let (stream_files, _) = replicate(&records, target, &work.path().join("stream"), Clock::Stream);
        phases.push(store_phase("  …, copies on one clock", &stream_files, &work.path().join("store-stream"), target));
        phases.push(reingest_phase(
            "  …, again: all duplicates",
            &stream_files,
            &work.path().join("store-stream"),
            target,
        ));
        phases.push(full_pipeline(&stream_files, &work.path().join("store-full"), target));
    }

    let base = phases[0].events as f64 / phases[0].secs;
    println!("ingest benchmark: {target} CloudTrail events, {mb:.1} MB of JSON in {} delivery files", files.len());
    println!("{:<28} {:>10} {:>8} {:>8} {:>9} {:>10}", "mode", "events/s", "MB/s", "vs raw", "peak MiB", "CPU µs/ev");
    for p in &phases {
        let eps = p.events as f64 / p.secs;
        println!(
            "{:<28} {:>10.0} {:>8.1} {:>8.2} {:>9.0} {:>10.2}  {}",
            p.name,
            eps,
            mb / p.secs,
            eps / base,
            p.peak_mib,
            p.cpu_secs * 1e6 / p.events as f64,
            p.note
        );
    }
}
