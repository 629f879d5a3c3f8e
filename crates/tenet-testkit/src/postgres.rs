//! A private PostgreSQL server from the machine's own binaries.
//!
//! Every server process is started by one keeper thread that lives as
//! long as the test process, with a parent-death signal: a test process
//! that ends, however it ends, takes its servers with it. (A signal tied to
//! the test's own thread would fire when that one test finished.) As root,
//! the server runs as the `postgres` user, as PostgreSQL requires.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running PostgreSQL server on loopback; stopped when dropped.
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    owner: Option<(libc::uid_t, libc::gid_t)>,
    child: Mutex<Option<Child>>,
}

/// The server this test process shares between its tests (each test takes
/// a database of its own with [`Server::fresh_database`]). `None`, with the
/// test reported skipped, where PostgreSQL is not installed.
pub fn server(test: &str) -> Option<&'static Server> {
    static SHARED: OnceLock<Option<Server>> = OnceLock::new();
    SHARED.get_or_init(|| Server::start(test)).as_ref()
}

impl Server {
    /// A server of the caller's own (to restart or stop at will). `None`,
    /// with the test reported skipped, where PostgreSQL is not installed.
    pub fn start(test: &str) -> Option<Server> {
        let bin = match bindir() {
            Some(b) => b,
            None => {
                crate::skip(
                    test,
                    "PostgreSQL's server binaries (initdb, postgres) are not installed (apt-get install postgresql)",
                );
                return None;
            }
        };
        let owner = if unsafe { libc::geteuid() } == 0 {
            match user("postgres") {
                Some(o) => Some(o),
                None => {
                    crate::skip(test, "running as root and there is no `postgres` user to run the server as");
                    return None;
                }
            }
        } else {
            None
        };
        let dir = scratch_dir("tenet-test-postgres");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("the server's folder given to postgres");
        }
        let server = Server { bin, dir, port: crate::free_port(), owner, child: Mutex::new(None) };
        let log = std::fs::File::create(server.dir.join("initdb.log")).expect("initdb log");
        let status = keeper(
            server
                .command("initdb")
                .args(["-D", "data", "-U", "tenet", "-A", "trust", "-E", "UTF8", "--no-sync"])
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        )
        .and_then(|mut c| c.wait())
        .expect("initdb runs");
        assert!(status.success(), "initdb failed: {}", server.log_tail("initdb.log"));
        server.launch();
        Some(server)
    }

    /// `postgres://tenet@127.0.0.1:PORT/DB`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://tenet@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database on this server; its URL.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("creating a database: {e}"));
        self.url(&name)
    }

    /// Runs SQL with `psql` on the `postgres` database; its output.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_on("postgres", sql)
    }

    /// Runs SQL with `psql` on `database`; its output.
    pub fn psql_on(&self, database: &str, sql: &str) -> Result<String, String> {
        let psql =
            [self.bin.join("psql"), PathBuf::from("psql")].into_iter().find(|p| p.is_file() || p == Path::new("psql"));
        let out = Command::new(psql.unwrap_or_else(|| PathBuf::from("psql")))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "tenet", "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Stops the server (a fast shutdown: sessions are cut, as by an
    /// operator's restart) and waits for it to be gone.
    pub fn stop(&self) {
        stop_child(&self.child, libc::SIGINT);
    }

    /// Starts the stopped server again, same data, same port.
    pub fn start_again(&self) {
        self.launch();
    }

    fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("server log");
        let child = keeper(
            self.command("postgres")
                .args(["-D", "data", "-p", &self.port.to_string(), "-k", "."])
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        )
        .expect("postgres starts");
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.psql("SELECT 1").is_ok() {
                return;
            }
            let exited =
                self.child.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("postgres exited ({status}): {}", self.log_tail("server.log"));
            }
            assert!(Instant::now() < deadline, "postgres not ready in 60 s: {}", self.log_tail("server.log"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        orphan_proof(&mut cmd, self.owner);
        cmd
    }

    fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Signals the server in `child` and waits for it to exit (killing it
/// after 20 s).
pub(crate) fn stop_child(child: &Mutex<Option<Child>>, signal: libc::c_int) {
    let Some(mut child) = child.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    // SAFETY: a signal to a child this process spawned and has not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Makes `cmd` die with the test process (a parent-death signal, for a
/// child of the keeper thread), as `owner` when given.
pub(crate) fn orphan_proof(cmd: &mut Command, owner: Option<(libc::uid_t, libc::gid_t)>) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = owner
                && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After the user change, which would clear it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Spawns `cmd` from the keeper thread (see the module's comment).
pub(crate) fn keeper(cmd: &mut Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("test-server-keeper".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Every sender gone: the process is ending; stay until it does.
                loop {
                    std::thread::park();
                }
            })
            .expect("keeper thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    let owned = std::mem::replace(cmd, Command::new("true"));
    sender.lock().unwrap_or_else(|p| p.into_inner()).send((owned, reply)).map_err(std::io::Error::other)?;
    answer.recv().map_err(std::io::Error::other)?
}

/// Where PostgreSQL's server binaries are: `TENET_PG_BINDIR`, else the
/// newest `/usr/lib/postgresql/N/bin` (Debian's layout).
fn bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TENET_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn user(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam's result is read at once, before any other call could reuse it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// A new folder for one server, in the system's temporary folder under
/// `kind`; folders left by test processes that are gone are removed first.
pub(crate) fn scratch_dir(kind: &str) -> PathBuf {
    let root = std::env::temp_dir().join(kind);
    let _ = std::fs::create_dir_all(&root);
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let pid = e.file_name().to_str().and_then(|n| n.split('-').next()?.parse::<libc::pid_t>().ok());
            // SAFETY: kill with signal 0 only asks whether the process exists.
            let gone = pid.is_some_and(|p| {
                (unsafe { libc::kill(p, 0) }) != 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
            });
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root.join(format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).expect("a folder for the test server");
    dir
}
