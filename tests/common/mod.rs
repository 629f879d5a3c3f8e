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

/// A running `tenet serve`, stopped (SIGTERM, as an operator would) on drop.
pub struct Server {
    child: std::process::Child,
    pub base: String,
    agent: ureq::Agent,
}

/// One HTTP answer: status, `X-Request-ID` if any, body.
pub struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Server {
    /// `tenet serve` on a free loopback port with `extra` arguments.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = tenet(data_dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("tenet serve starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a first line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no listening address in {line:?}"))
            .to_string();
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Server { child, base, agent }
    }

    /// Calls go through `agent` (one trusting a test certificate, say).
    pub fn with_agent(mut self, agent: ureq::Agent) -> Server {
        self.agent = agent;
        self
    }

    pub fn post(&self, path: &str, content_type: Option<&str>, request_id: Option<&str>, body: &str) -> Answer {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let resp = req.send(body).expect("the server answers");
        Self::answer(resp)
    }

    /// POST a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, Some("application/json"), None, &body.to_string())
    }

    pub fn get(&self, path: &str) -> Answer {
        Self::answer(self.agent.get(format!("{}{path}", self.base)).call().expect("the server answers"))
    }

    fn answer(resp: ureq::http::Response<ureq::Body>) -> Answer {
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.into_body().read_to_string().expect("a readable body");
        Answer { status, request_id, body }
    }

    /// Stops the server as an operator would, and waits for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..200 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let _ = self.child.kill();
        self.child.wait().expect("the server exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// The shared AuthZEN specs and interop suites.
pub fn authzen_specs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/authzen")
}

/// This project's policies for an interop suite.
pub fn authzen_policies(suite: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authzen").join(suite)
}
