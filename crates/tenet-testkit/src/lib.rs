//! Real servers for Tenet's tests, each private to one test process.
//!
//! A test that needs NATS JetStream starts a [`nats::Server`] of its own.
//! A test that needs PostgreSQL asks for [`postgres::server`]: a server
//! from the machine's own binaries (Debian's `postgresql`), in a data
//! folder of its own under the target directory, on a free loopback port.
//! Where the binaries are missing the test says loudly that it was skipped
//! and why, and passes, unless `TENET_REQUIRE_EXTERNAL=1` (as `.ci/run`
//! sets it), where it fails.

pub mod bodies;
pub mod nats;
pub mod postgres;

/// Whether the suite must have its external components (CI).
pub fn external_required() -> bool {
    std::env::var("TENET_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// Reports a test skipped for lack of `what`, or fails it when external
/// components are required.
pub fn skip(test: &str, what: &str) {
    assert!(!external_required(), "TENET_REQUIRE_EXTERNAL=1 but {what}");
    eprintln!("SKIPPED {test}: {what} (TENET_REQUIRE_EXTERNAL=1 makes this a failure)");
}

/// A program on the `PATH`.
pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(name)).find(|p| p.is_file())
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}
