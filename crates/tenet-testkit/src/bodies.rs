//! Telemetry as collectors send it, from a simulated enterprise
//! (`tenet simulate --out DIR`): its CloudTrail, Okta and Kubernetes audit
//! records as HTTP bodies, in time order, for tests and benchmarks that
//! feed a running service the same deliveries in the same order.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The simulated enterprise's event files (CloudTrail, Okta, Kubernetes
/// audit; not OTLP, which has an intake of its own), sorted by path.
pub fn telemetry_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = ["cloudtrail", "okta", "k8s-audit"].iter().map(|s| dir.join(s)).collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// A telemetry file's text (CloudTrail's are gzipped, as S3 holds them).
pub fn read(f: &Path) -> String {
    let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    if f.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        text
    } else {
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()))
    }
}

/// The files' records as bodies of at most `per_body` records, in time
/// order: each body holds records of one file kind only, as a collector
/// would send them, and every record comes after those of earlier bodies
/// (ties keep file order).
pub fn time_ordered(files: &[PathBuf], per_body: usize) -> Vec<String> {
    let mut records: Vec<(String, usize, Value)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let text = read(f);
        let values: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(mut o)) if o.contains_key("Records") => match o.remove("Records") {
                Some(Value::Array(r)) => r,
                _ => Vec::new(),
            },
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
                .collect(),
        };
        for v in values {
            let time = ["eventTime", "published", "requestReceivedTimestamp"]
                .iter()
                .find_map(|k| v[*k].as_str())
                .unwrap_or_else(|| panic!("no time in a record of {}", f.display()))
                .to_string();
            records.push((time, i, v));
        }
    }
    records.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut bodies = Vec::new();
    let mut body: Vec<String> = Vec::new();
    let mut kind = None;
    for (_, f, v) in &records {
        let this = files[*f].extension();
        if !body.is_empty() && (body.len() == per_body || kind != this) {
            bodies.push(body.join("\n"));
            body.clear();
        }
        kind = this;
        body.push(v.to_string());
    }
    if !body.is_empty() {
        bodies.push(body.join("\n"));
    }
    bodies
}
