//! Running the `tenet` binary from integration tests: one set of helpers
//! for every test file (each uses some of them).
#![allow(dead_code)]

pub mod console;
pub mod ssf;

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

/// `tenet --data-dir DATA` on `store` (the data directory's embedded store
/// when `None`): its standard output, which must be a success.
pub fn on_store(data: &Path, store: Option<&str>, args: &[&str]) -> String {
    let mut cmd = tenet(data);
    if let Some(url) = store {
        cmd.env("TENET_STORE", url);
    }
    let out = cmd.args(args).output().expect("tenet runs");
    assert!(out.status.success(), "{args:?} on {store:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A new API key with `scopes` (comma-separated): its token.
pub fn key(data_dir: &Path, name: &str, scopes: &str) -> String {
    let out = run(data_dir, &["key", "create", name, "--scopes", scopes]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_string()
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

/// One HTTP answer: status, `X-Request-ID` if any, headers, body.
pub struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The error shape every error takes: `{"error": {status, code, message, where, field}}`
    /// as JSON, with this status; returns the inner object.
    pub fn error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"), "{status}: {}", self.body);
        let v = self.json();
        let e = v["error"].clone();
        let keys: std::collections::BTreeSet<&str> =
            e.as_object().unwrap_or_else(|| panic!("no error object: {v}")).keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "field", "message", "status", "where"].into_iter().collect(), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "only `error` at the top: {v}");
        assert_eq!(e["status"], status, "{v}");
        assert!(!e["message"].as_str().unwrap().is_empty() && !e["code"].as_str().unwrap().is_empty(), "{v}");
        e
    }
}

/// An HTTP/1.1 response read from a raw connection to its end.
pub fn read_answer(stream: &mut std::net::TcpStream) -> Answer {
    use std::io::Read;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_answer(&raw).unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

/// The first response in `raw` (status line, headers, a sized or chunked body).
pub fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        out
    } else {
        let len = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok());
        rest[..len.unwrap_or(rest.len()).min(rest.len())].to_vec()
    };
    let request_id = headers.iter().find(|(n, _)| n == "x-request-id").map(|(_, v)| v.clone());
    Some(Answer { status, request_id, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

impl Server {
    /// `tenet serve` on a free loopback port with `extra` arguments.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = tenet(data_dir);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(extra);
        Self::spawn(cmd)
    }

    /// `tenet serve` as `cmd` runs it (arguments, environment, a wrapper).
    pub fn spawn(mut cmd: Command) -> Server {
        use std::io::BufRead;
        let mut child = cmd
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

    /// Any method, with an optional bearer token and JSON body.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let resp = match (method, body) {
            ("GET" | "DELETE", _) => {
                let mut req = if method == "GET" { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.call()
            }
            (_, body) => {
                let mut req = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    m => panic!("method {m}"),
                };
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.header("content-type", "application/json").send(body.map(Value::to_string).unwrap_or_default())
            }
        };
        Self::answer(resp.expect("the server answers"))
    }

    /// What a test knows of a server that is not running now: its base URL.
    pub fn placeholder(base: &str) -> Address {
        Address(base.to_string())
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Answer {
        Self::answer(self.agent.get(format!("{}{path}", self.base)).call().expect("the server answers"))
    }

    fn answer(resp: ureq::http::Response<ureq::Body>) -> Answer {
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.into_body().read_to_string().expect("a readable body");
        Answer { status, request_id, headers, body }
    }

    /// `host:port` of a plain-HTTP server.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// A raw TCP connection to the server.
    pub fn connect(&self) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(self.addr()).expect("the server accepts");
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        s
    }

    /// One request exactly as given (`Connection: close` and the body's
    /// length added), answered on a connection of its own.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        use std::io::Write;
        let mut s = self.connect();
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n", self.addr());
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer (and close) before reading all of a body it refuses.
        let _ = s.write_all(body);
        read_answer(&mut s)
    }

    /// A reader of `GET /api/v1/changes`: each trust change's JSON data, as
    /// the server sends it. Returns once the stream is open.
    pub fn changes(&self) -> std::sync::mpsc::Receiver<Value> {
        self.changes_as(None)
    }

    /// [`Server::changes`] with a key (scope `read`), for a server that has keys.
    pub fn changes_as(&self, token: Option<&str>) -> std::sync::mpsc::Receiver<Value> {
        use std::io::{BufRead, Write};
        let mut stream = self.connect();
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            stream,
            "GET /api/v1/changes HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\n{auth}\r\n",
            self.addr()
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data:")
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        // The subscription is made when the request is handled.
        std::thread::sleep(std::time::Duration::from_millis(200));
        rx
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's peak resident memory so far (Linux `VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
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

/// A server's base URL, running or not.
pub struct Address(pub String);

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

/// `tenet ingest --json` of everything `tenet simulate` wrote to `dir`:
/// the summary, after asserting that all of it was stored (exit 0, nothing
/// rejected, nothing a duplicate).
pub fn ingest_simulated(data_dir: &Path, dir: &Path) -> Value {
    let o = tenet(data_dir).args(["ingest", "--json"]).arg(dir).output().expect("tenet runs");
    let s: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("the ingest summary is not JSON ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(o.status.code(), Some(0), "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
    assert_eq!(s["duplicates"], 0, "{s}");
    s
}

/// `tenet eval --json` of the store against the labels `tenet simulate` wrote to `dir`.
pub fn eval_labels(data_dir: &Path, dir: &Path) -> Value {
    let labels = dir.join("labels.jsonl");
    json(data_dir, &["eval", "--json", "--labels", labels.to_str().expect("a UTF-8 path")])
}
