//! The Shared Signals receiver the tests run: `tests/ssf/receiver.py`,
//! built on PyJWT, an independent JOSE implementation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the receiver needs of a server: its base URL (issuer and JWKS).
pub trait Base {
    fn base_url(&self) -> &str;
}

impl Base for super::Server {
    fn base_url(&self) -> &str {
        self.base()
    }
}

impl Base for super::Address {
    fn base_url(&self) -> &str {
        &self.0
    }
}

/// Whether Python with PyJWT is here; when not, the test says so loudly
/// and is skipped, unless CI requires it.
pub fn pyjwt() -> bool {
    let here = Command::new("python3").args(["-c", "import jwt, cryptography"]).status().is_ok_and(|s| s.success());
    if !here {
        assert!(
            !tenet_testkit::external_required(),
            "TENET_REQUIRE_EXTERNAL=1 but python3 with pyjwt[crypto] is missing (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3 with pyjwt[crypto] is not installed; `pip install 'pyjwt[crypto]'` runs this test");
    }
    here
}

/// The Python receiver, listening on `port`, logging to `log`.
pub struct Receiver {
    child: Child,
    log: PathBuf,
}

impl Receiver {
    pub fn start(port: u16, server: &impl Base, aud: &str, log: &Path, authorization: Option<&str>) -> Receiver {
        let base = server.base_url();
        Receiver::start_with(port, &format!("{base}/ssf/jwks.json"), base, aud, log, authorization)
    }

    /// As [`Receiver::start`], with the JWKS URL and the issuer given apart
    /// (a transmitter whose configured issuer is not the URL it serves on).
    pub fn start_with(
        port: u16,
        jwks_url: &str,
        issuer: &str,
        aud: &str,
        log: &Path,
        authorization: Option<&str>,
    ) -> Receiver {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ssf/receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(port.to_string()).arg(jwks_url).arg(issuer).arg(aud).arg(log);
        if let Some(a) = authorization {
            cmd.arg(a);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the receiver started");
        Receiver { child, log: log.to_path_buf() }
    }

    pub fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits up to `within` for a received SET `matching`.
    pub fn wait_for(&self, within: Duration, matching: impl Fn(&Value) -> bool) -> Option<Value> {
        let start = Instant::now();
        while start.elapsed() < within {
            let lines = self.lines();
            if let Some(bad) = lines.iter().find(|l| l.get("rejected").is_some()) {
                panic!("the receiver rejected a SET: {bad}");
            }
            if let Some(l) = lines.into_iter().find(|l| l.get("jti").is_some() && matching(l)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
