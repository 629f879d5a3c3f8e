//! A private NATS server with JetStream, from the machine's own binary
//! (Debian's `nats-server`), its data in a folder of its own, on a free
//! loopback port; stopped when dropped, and (like the PostgreSQL servers)
//! never outliving the test process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Server {
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl Server {
    /// A JetStream server of the caller's own. `None`, with the test
    /// reported skipped, where `nats-server` is not installed.
    pub fn start(test: &str) -> Option<Server> {
        if crate::on_path("nats-server").is_none() {
            crate::skip(test, "nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let dir = crate::postgres::scratch_dir("tenet-test-nats");
        let server = Server { dir, port: crate::free_port(), child: Mutex::new(None) };
        server.launch();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM: a clean shutdown) and waits for it.
    pub fn stop(&self) {
        crate::postgres::stop_child(&self.child, libc::SIGTERM);
    }

    /// Starts the stopped server again: same port, same JetStream data.
    pub fn start_again(&self) {
        self.launch();
    }

    fn launch(&self) {
        let log = self.dir.join("server.log");
        // A restart appends to the same log: only what this start writes counts.
        let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut cmd = Command::new("nats-server");
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.join("jetstream"))
            .args(["-l"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::postgres::orphan_proof(&mut cmd, None);
        let child = crate::postgres::keeper(&mut cmd).expect("nats-server starts");
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.get(from..).is_some_and(|run| run.contains("Server is ready")) {
                return;
            }
            let exited =
                self.child.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("nats-server exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "nats-server not ready in 30 s: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
