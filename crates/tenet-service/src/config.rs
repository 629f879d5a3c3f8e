//! What a running Tenet is told: the configuration file (`--config`, YAML
//! or JSON) with the command line's flags laid over it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tenet_server::Limits;

use crate::ServiceError;

/// Where `tenet serve` listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7400";

/// The configuration file. Every field is optional; flags override it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub addr: Option<SocketAddr>,
    /// The policy directory; default `<data dir>/policies`.
    pub policies: Option<PathBuf>,
    pub policy_poll_ms: Option<u64>,
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Every bound the server keeps; what is left out keeps its default.
    pub limits: Option<Limits>,
    /// Folders whose telemetry files are ingested as they appear.
    #[serde(default)]
    pub watch: Vec<PathBuf>,
    /// A folder whose inventory files are imported as they appear or change.
    pub inventory: Option<PathBuf>,
    /// Sigma rules matched as events are analysed.
    pub rules: Option<PathBuf>,
    /// The Shared Signals transmitter.
    #[serde(default)]
    pub ssf: crate::signals::SignalsConfig,
}

impl ServeConfig {
    /// Reads a configuration file; unknown keys are refused by name.
    pub fn read(path: &Path) -> Result<Self, ServiceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServiceError::Config { path: path.to_path_buf(), reason: e.to_string() })?;
        serde_yaml_ng::from_str(&text).map_err(|e| ServiceError::Config {
            path: path.to_path_buf(),
            reason: format!("not a valid serve configuration: {e}"),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.unwrap_or_else(|| DEFAULT_ADDR.parse().expect("valid default address"))
    }
}
