//! Running the `tenet` binary from integration tests: one set of helpers
//! for every test file (each uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `tenet --data-dir DATA_DIR`, ready for arguments.
pub fn tenet(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tenet"));
    c.arg("--data-dir").arg(data_dir);
    c
}

pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    tenet(data_dir).args(args).output().expect("tenet runs")
}

/// Standard output of a run that must succeed.
pub fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = run(data_dir, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The one JSON document a successful run prints.
pub fn json(data_dir: &Path, args: &[&str]) -> Value {
    let text = ok(data_dir, args);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {text}"))
}

/// The JSON lines a successful run prints.
pub fn json_lines(data_dir: &Path, args: &[&str]) -> Vec<Value> {
    ok(data_dir, args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: not a JSON line ({e}): {l}")))
        .collect()
}

/// The ground truth `tenet simulate` wrote to `dir`.
pub fn labels(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("label is JSON"))
        .collect()
}
