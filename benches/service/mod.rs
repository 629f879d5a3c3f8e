//! What the service benches share: a `tenet serve` of the release binary
//! on a fresh data directory with the given Cedar policies, and an HTTP
//! client that reads error statuses as answers.

use std::io::{BufRead, BufReader};

/// A running `tenet serve`; stopped (SIGTERM) when dropped.
#[allow(dead_code)]
pub struct Service {
    child: std::process::Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// Starts the service on a free loopback port with `policies` (Cedar text)
/// in a fresh data directory.
#[allow(dead_code)]
pub fn start(policies: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir_all(&policy_dir).unwrap();
    std::fs::write(policy_dir.join("p.cedar"), policies).unwrap();
    spawn(&dir.path().join("data"), &policy_dir, dir)
}

/// Starts the service on an existing data directory with a policy directory.
#[allow(dead_code)]
pub fn start_on(data: &std::path::Path, policies: &std::path::Path) -> Service {
    spawn(data, policies, tempfile::tempdir().unwrap())
}

fn spawn(data: &std::path::Path, policies: &std::path::Path, dir: tempfile::TempDir) -> Service {
    // `TENET_BENCH_BIN`: another build to compare with, in the same run's conditions.
    let bin = std::env::var_os("TENET_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tenet").into());
    let mut child = std::process::Command::new(bin)
        .args(["--data-dir", data.to_str().unwrap(), "serve", "--addr", "127.0.0.1:0"])
        .args(["--policies", policies.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.split_whitespace().find(|w| w.starts_with("http://")).expect("listening").to_string();
    Service { child, base, _dir: dir }
}

/// A client that answers 4xx/5xx as statuses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}
