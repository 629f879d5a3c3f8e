//! Ingest throughput on the shared CloudTrail corpus, replicated with fresh
//! event ids to at least 1,000,000 events, in three modes measured in the
//! same run on the same bytes:
//!
//! 1. raw `serde_json` parse of each delivery file into `serde_json::Value`;
//! 2. parse + normalise (the CloudTrail adapter, events out);
//! 3. parse + normalise + store (the real `tenet_pipeline::ingest` from files
//!    into a fresh SQLite store, credential linking included).
//!
//! `cargo bench -p tenet-pipeline --bench ingest [-- EVENTS]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use tenet_sources::formats::cloudtrail::CloudTrail;
use tenet_sources::{Format, input};
use tenet_store::{EventReader, SqliteStore};

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

/// Writes `target` events as compact S3-style delivery files; returns the
/// files and their total size.
fn replicate(records: &[Value], target: usize, dir: &Path) -> (Vec<PathBuf>, u64) {
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
        if std::env::var_os("TIMESHIFT").is_some() {
            let t = chrono::DateTime::from_timestamp(1_767_225_600 + (i / 1000) as i64, 0).unwrap();
            r["eventTime"] = Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
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
    peak_mib: f64,
}

fn main() {
    let target: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let work = tempfile::tempdir().expect("temp dir");
    let records = corpus();
    eprintln!("corpus: {} CloudTrail records; replicating to {target}", records.len());
    let (files, bytes) = replicate(&records, target, work.path());
    drop(records);
    let data: Vec<bytes::Bytes> = files.iter().map(|f| bytes::Bytes::from(std::fs::read(f).unwrap())).collect();
    let mb = bytes as f64 / 1e6;
    eprintln!("{} files, {:.1} MB", files.len(), mb);

    let mut phases = Vec::new();
    // For profiling the store phase alone: `PROFILE_STORE=1`.
    let only_store = std::env::var_os("PROFILE_STORE").is_some();

    if !only_store {
        reset_peak();
        let t = Instant::now();
        let mut n = 0u64;
        for d in &data {
            let v: Value = serde_json::from_slice(d).expect("valid JSON");
            n += v["Records"].as_array().map_or(0, |a| a.len() as u64);
        }
        phases.push(Phase {
            name: "raw serde_json parse",
            events: n,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: peak_mib(),
        });

        reset_peak();
        let t = Instant::now();
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
        phases.push(Phase {
            name: "parse + normalise",
            events: n,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: peak_mib(),
        });
    }
    if std::env::var_os("PREPARE").is_some() {
        // The reader thread's whole share of the store phase, without the store.
        reset_peak();
        let t = Instant::now();
        let mut n = 0u64;
        for d in &data {
            let mut events = Vec::new();
            CloudTrail.read(d, &mut |r| events.extend(r.ok()));
            n += events.len() as u64;
            std::hint::black_box(tenet_store::PreparedBatch::new(events));
        }
        phases.push(Phase {
            name: "parse + normalise + encode",
            events: n,
            secs: t.elapsed().as_secs_f64(),
            peak_mib: peak_mib(),
        });
    }
    drop(data);

    reset_peak();
    let store_dir = work.path().join("store");
    let mut store = SqliteStore::open_dir(&store_dir).expect("store opens");
    let t = Instant::now();
    let report = tenet_pipeline::ingest(&files, &mut store, Default::default(), &mut ()).expect("ingest runs");
    let secs = t.elapsed().as_secs_f64();
    eprintln!("writer busy {:.2}s of {secs:.2}s", report.store_seconds);
    assert_eq!(report.rejected, 0);
    assert_eq!(report.stored as usize, target);
    assert_eq!(store.count().unwrap() as usize, target);
    phases.push(Phase { name: "parse + normalise + store", events: report.stored, secs, peak_mib: peak_mib() });
    let db_bytes: u64 =
        std::fs::read_dir(&store_dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();

    let base = if only_store { 1.0 } else { phases[0].events as f64 / phases[0].secs };
    println!("ingest benchmark: {target} CloudTrail events, {mb:.1} MB of JSON in {} delivery files", files.len());
    println!("{:<28} {:>12} {:>10} {:>10} {:>14}", "mode", "events/s", "MB/s", "vs raw", "peak RSS MiB");
    for p in &phases {
        let eps = p.events as f64 / p.secs;
        println!("{:<28} {:>12.0} {:>10.1} {:>10.2} {:>14.0}", p.name, eps, mb / p.secs, eps / base, p.peak_mib);
    }
    println!("store on disk: {:.1} MB ({:.0} bytes/event)", db_bytes as f64 / 1e6, db_bytes as f64 / target as f64);
}
