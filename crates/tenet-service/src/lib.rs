//! The running Tenet: the one composition root. It owns the runtime, the
//! configuration, the live state and shutdown; `tenet serve` and `tenet
//! demo` both start a [`Running`] service and only print what it reports.
//!
//! Data flows one way through it: inputs (HTTP, watched folders, the
//! simulator) → the pipeline's stages → the live trust state and the
//! store → the decision point and the other HTTP consumers. Lower crates
//! never call up into this one.

pub mod cluster;
pub mod config;
pub mod console;
pub mod coverage;
pub mod intake;
pub mod live;
pub mod metrics;
pub mod owner;
pub mod signals;
pub mod simulated;
pub mod trust;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenet_policy::TrustSource;
use tenet_server::access::DecisionPoint;
use tenet_server::decision_log::{DecisionLog, PolicyHistory};
use tenet_server::metrics::Metrics;
use tenet_server::{AppState, StatusBoard, policy_dir};

pub use config::ServeConfig;
pub use trust::{LiveTrust, TrustSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Limits(#[from] tenet_server::limits::LimitsError),
    #[error(transparent)]
    Policies(#[from] tenet_server::policy_dir::PolicyDirError),
    #[error("{what}: {source}")]
    Store { what: String, source: tenet_store::StoreError },
    #[error("reading trust signals: {0}")]
    Trust(#[from] tenet_pipeline::analyse::AnalyseError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

impl ServiceError {
    fn store(what: impl Into<String>) -> impl FnOnce(tenet_store::StoreError) -> ServiceError {
        let what = what.into();
        move |source| ServiceError::Store { what, source }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
        let what = what.into();
        move |source| ServiceError::Io { what, source }
    }
}

/// What to run: a data directory, its configuration, and the Sigma rules
/// analysis matches (empty for none).
pub struct Options {
    /// What stays on this node: its claim, the default policy folder,
    /// watched-folder progress, live sessions, the SET signing keys.
    pub data_dir: PathBuf,
    /// The durable store: embedded in the data directory, or PostgreSQL.
    pub store: tenet_store::StoreAt,
    pub config: ServeConfig,
    pub rules: tenet_sigma::RuleSet,
    /// Set to run as one node of a cluster (`--bus`, `--node-id`).
    pub cluster: Option<cluster::ClusterOptions>,
}

/// What a started service reports about itself.
#[derive(Debug, Clone)]
pub struct Started {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    pub policies: PathBuf,
    pub policy_version: String,
    pub policy_count: usize,
    /// Limits that had to be lowered to fit the process (the open-file limit).
    pub nofile_capped: Option<u64>,
}

/// A service that is listening. Dropping it without [`Running::stop`]
/// still shuts it down, without waiting for the decision log.
pub struct Running {
    pub started: Started,
    pub status: Arc<StatusBoard>,
    pub decisions: Arc<DecisionPoint>,
    /// Where in-process inputs (the simulator, watched folders) enter.
    pub inlet: live::Inlet,
    /// Every trust change, as it is announced.
    pub changes: tokio::sync::broadcast::Sender<Arc<tenet_model::TrustNotice>>,
    pipeline: Option<live::LivePipeline>,
    /// The Shared Signals transmitter, its push threads and the thread
    /// turning trust changes into SETs.
    pub signals: Arc<signals::Signals>,
    deliveries: Option<signals::delivery::Deliveries>,
    following: Option<std::thread::JoinHandle<()>>,
    watcher: Option<watch::Watcher>,
    /// This process's claim on the data directory, held until it stops.
    claim: Option<owner::Claim>,
    /// This process's hold on a shared store (PostgreSQL), held until it stops.
    store_claim: Option<tenet_store::ServiceClaim>,
    /// On a cluster node, the loop owning partitions and reading them.
    node: Option<cluster::Node>,
    /// Set to stop the watcher.
    watching: Arc<std::sync::atomic::AtomicBool>,
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    shutdown: Arc<tokio::sync::Notify>,
    /// Set when stopping begins: long-lived responses (change streams) end.
    closing: tokio::sync::watch::Sender<bool>,
    requested: Arc<Requested>,
}

/// Whether someone asked the service to stop: a signal or a [`Stopper`].
#[derive(Default)]
struct Requested {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Requested {
    fn set(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Release);
        // A stored permit: a `wait` that starts later still returns.
        self.notify.notify_one();
    }
}

/// Opens the data directory, loads the policies and starts listening.
pub fn start(options: Options) -> Result<Running, ServiceError> {
    let Options { data_dir, store: store_at, config, rules, cluster: joining } = options;
    let addr = config.addr();
    let mut limits = config.limits.clone().unwrap_or_default();
    limits.validate()?;
    let nofile_capped;
    (limits, nofile_capped) = limits.fitted_to_process();
    let limits = Arc::new(limits);
    std::fs::create_dir_all(&data_dir).map_err(ServiceError::io(format!("creating {}", data_dir.display())))?;

    // Beyond loopback a key is always required, whatever the key file says.
    let keys_at = store_at.keys();
    let beyond_loopback = !addr.ip().is_loopback();
    let keys = tenet_server::auth::Keys::load(&keys_at, beyond_loopback)
        .map_err(ServiceError::store(format!("reading the API keys in {keys_at}")))?;
    let no_active_key = tenet_store::keys::KeyStore::snapshot(&keys_at)
        .map_err(ServiceError::store(format!("reading the API keys in {keys_at}")))?
        .is_none_or(|s| s.active.is_empty());
    if beyond_loopback && no_active_key {
        return Err(ServiceError::Refused(format!(
            "refusing to listen on {addr}: no active API key (`tenet key create`), so only a loopback address (127.0.0.1, ::1) is allowed"
        )));
    }
    let policies = config.policies.clone().unwrap_or_else(|| data_dir.join("policies"));
    let bundle = policy_dir::load(&policies)?;
    // One live service per data directory: a second would keep a second learner.
    let claim = owner::claim(&data_dir, &addr.to_string()).map_err(ServiceError::Refused)?;
    // On a shared store, one service analyses; a second would keep a
    // second learner writing the same findings.
    let cluster_url = match (&joining, &store_at) {
        (None, _) => None,
        (Some(_), tenet_store::StoreAt::Postgres(url)) => Some(url.clone()),
        (Some(_), tenet_store::StoreAt::Embedded(_)) => {
            return Err(ServiceError::Refused(
                "a cluster node needs a shared store: --store postgres://USER@HOST:PORT/DB".into(),
            ));
        }
    };
    let store_claim = match &store_at {
        // Cluster nodes share the store, each analysing the partitions it owns.
        tenet_store::StoreAt::Postgres(url) if joining.is_some() => Some(
            tenet_store::claim_service_shared(url)
                .map_err(ServiceError::store(format!("claiming the store at {store_at}")))?
                .ok_or_else(|| {
                    ServiceError::Refused(format!(
                        "a single Tenet service (not a cluster node) is running on the store at {store_at}"
                    ))
                })?,
        ),
        tenet_store::StoreAt::Postgres(url) => Some(
            tenet_store::claim_service(url)
                .map_err(ServiceError::store(format!("claiming the store at {store_at}")))?
                .ok_or_else(|| {
                    ServiceError::Refused(format!(
                        "another Tenet service (or a cluster's nodes) is running on the store at {store_at}; \
                         one service analyses a store, or nodes joined as a cluster (--bus, --node-id)"
                    ))
                })?,
        ),
        tenet_store::StoreAt::Embedded(_) => None,
    };

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.workers.or_else(|| std::env::var("TENET_WORKERS").ok()?.parse().ok()) {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.enable_all().build().map_err(ServiceError::io("starting the runtime"))?;
    // A cluster node: where it stands in the other nodes' changes is read
    // before its live state is loaded from the store, so that following
    // them from there misses nothing.
    let joined = match (&joining, &cluster_url) {
        (Some(c), Some(url)) => {
            let bus = runtime
                .block_on(tenet_bus::Bus::connect(&c.bus, c.partitions))
                .map_err(|e| ServiceError::Refused(format!("joining the cluster's event stream: {e}")))?;
            let after = runtime
                .block_on(bus.trust_position())
                .map_err(|e| ServiceError::Refused(format!("reading the cluster's trust stream: {e}")))?;
            let revision = tenet_store::cluster::revision(url)
                .map_err(ServiceError::store(format!("reading the revision of the store at {store_at}")))?;
            let state = Arc::new(cluster::NodeState::new(revision, c.stale_after));
            let link = cluster::publish_updates(bus.clone(), runtime.handle(), c.node.clone(), state.clone());
            Some((bus, after, state, link))
        }
        _ => None,
    };
    let (joined, link) = match joined {
        Some((bus, after, state, link)) => (Some((bus, after, state)), Some(link)),
        None => (None, None),
    };

    let store = store_at.writer().map_err(ServiceError::store(format!("opening the store at {store_at}")))?;
    let trust = LiveTrust::new(TrustSnapshot::default());
    let mut service_metrics = None;
    let metrics = Arc::new(Metrics::with(|r| service_metrics = Some(Arc::new(metrics::ServiceMetrics::register(r)))));
    let service_metrics = service_metrics.expect("registered above");
    let status = Arc::new(StatusBoard::default());
    let (changes, _) = tokio::sync::broadcast::channel(live::CHANGES_BUFFER);
    let graph = tenet_graph::SharedGraph::default();
    let coverage = coverage::SharedCoverage::default();
    // The one writer: the pipeline thread owns the store from here on.
    let pipeline = live::LivePipeline::start(
        store,
        Arc::new(rules),
        tenet_learn::Config::default(),
        live::Outlets {
            trust: trust.clone(),
            changes: changes.clone(),
            status: status.clone(),
            metrics: service_metrics.clone(),
            graph: graph.clone(),
            coverage: coverage.clone(),
        },
        limits.ingest_queue,
        limits.ingest_queue_bytes,
        link,
    )?;
    // On a cluster node, events taken in here go to the event stream, and
    // the other nodes' changes come into the pipeline.
    let inlet = match (&joining, &joined) {
        (Some(c), Some((bus, after, state))) => {
            cluster::follow_updates(
                bus.clone(),
                runtime.handle(),
                *after,
                c.node.clone(),
                pipeline.inlet.clone(),
                state.clone(),
            );
            let publisher = Arc::new(cluster::Publisher::new(
                bus.clone(),
                runtime.handle().clone(),
                state.clone(),
                store_at.clone(),
            ));
            pipeline.inlet.clone().publishing_to(publisher)
        }
        _ => pipeline.inlet.clone(),
    };

    let log_at = store_at.decision_log();
    let history = PolicyHistory::new(&log_at);
    let last = tenet_store::decisions::policy_versions(&log_at)
        .map_err(ServiceError::store(format!("reading the policy versions in {log_at}")))?
        .pop();
    if last.as_ref().map(|v| v.version.as_str()) != Some(bundle.version()) {
        history.record(&bundle, &bundle.diff_from(None), "file");
    }
    let policy_version = bundle.version().to_string();
    let policy_count = bundle.policy_count();
    let log = DecisionLog::open(&log_at, limits.decision_log_queue, limits.decision_log_queue_bytes)
        .map_err(ServiceError::store(format!("opening the decision log in {log_at}")))?;
    let (session_uses, session_rx) = crossbeam_channel::bounded(signals::SESSION_QUEUE);
    let pdp = Arc::new(
        DecisionPoint::new(bundle, trust.clone() as Arc<dyn TrustSource>, metrics)
            .with_log(log, history)
            .with_sessions(session_uses),
    );
    let sessions_path = data_dir.join("sessions.db");
    let session_store = tenet_store::sessions::SessionStore::open(&sessions_path)
        .map_err(ServiceError::store(format!("opening {}", sessions_path.display())))?;
    let sessions = Arc::new(
        signals::sessions::Sessions::restore(&session_store)
            .map_err(ServiceError::store(format!("reading the live sessions in {}", sessions_path.display())))?,
    );
    signals::sessions::follow(session_rx, sessions.clone(), trust.clone(), session_store);
    policy_dir::watch(pdp.clone(), policies.clone(), Duration::from_millis(config.policy_poll_ms.unwrap_or(1000)));

    let mut folders: Vec<(PathBuf, watch::Holds)> =
        config.watch.iter().map(|d| (d.clone(), watch::Holds::Telemetry)).collect();
    folders.extend(config.inventory.iter().map(|d| (d.clone(), watch::Holds::Inventory)));
    for (dir, _) in &folders {
        if !dir.is_dir() {
            return Err(ServiceError::Refused(format!("cannot watch {}: not a directory", dir.display())));
        }
    }
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = if folders.is_empty() {
        None
    } else {
        Some(
            watch::Watcher::start(folders, data_dir.join("watched.json"), inlet.clone(), watching.clone())
                .map_err(ServiceError::io("starting the folder watcher"))?,
        )
    };
    let intake = Arc::new(intake::HttpIntake { inlet: inlet.clone() });
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let signals = signals::Signals::open(
        &data_dir,
        &store_at,
        config.ssf.clone(),
        pdp.clone(),
        trust.clone(),
        sessions,
        closing_rx.clone(),
    )?;
    // A cluster node transmits only once it holds the transmitter's lock.
    if joining.is_some() {
        signals.set_transmitting(false);
    }
    let app = tenet_server::with_decisions(
        tenet_server::router(AppState { status: status.clone() }),
        pdp.clone(),
        keys.clone(),
        limits.clone(),
    )
    .merge(tenet_server::access::admin_router(pdp.clone(), policies.clone(), keys.clone()))
    .merge(tenet_server::ssf::router(signals.clone(), keys.clone(), limits.clone()))
    .merge(tenet_server::principals::router(intake.clone(), keys.clone(), limits.clone()))
    .merge(tenet_server::ssf::receiver_router(
        Arc::new(signals::upstream::Upstream::new(
            config.ssf.upstream.clone(),
            inlet.clone(),
            signals.clone(),
            trust.clone(),
        )),
        keys.clone(),
        limits.clone(),
    ))
    .merge(tenet_server::intake::router(intake, changes.clone(), closing_rx, keys.clone(), limits.clone()))
    .merge(tenet_console::router(
        Arc::new(console::ConsoleSite {
            store: store_at.clone(),
            trust: trust.clone(),
            changes: changes.clone(),
            graph,
            pdp: pdp.clone(),
            policies: policies.clone(),
            coverage,
        }),
        keys,
    ));
    let app = match &joined {
        Some((_, _, state)) => tenet_server::with_freshness(app, state.clone()),
        None => app,
    };

    let tls = match (config.tls_cert.clone(), config.tls_key.clone()) {
        (Some(cert), Some(key)) => Some(tenet_server::Tls { cert, key }),
        (None, None) => None,
        _ => return Err(ServiceError::Refused("TLS needs both a certificate (tls_cert) and its key (tls_key)".into())),
    };
    if tls.is_none() && beyond_loopback {
        tracing::warn!(%addr, "serving plain HTTP beyond loopback: API keys travel in clear; configure --tls-cert/--tls-key");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let server = {
        let shutdown = shutdown.clone();
        let stop = async move { shutdown.notified().await };
        let bound = move |a: SocketAddr| {
            let _ = bound_tx.send(a);
        };
        let limits = limits.clone();
        runtime.spawn(async move {
            match &tls {
                Some(t) => tenet_server::serve_tls(addr, app, limits, t, bound, stop).await,
                None => tenet_server::serve(addr, app, limits, bound, stop).await,
            }
        })
    };
    let bound = match bound_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => {
            // The server task ended without binding: say why.
            let why = match runtime.block_on(server) {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(())) => "the listener stopped before it was bound".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(ServiceError::Io { what: format!("listening on {addr}"), source: std::io::Error::other(why) });
        }
    };
    signals.set_issuer(scheme, bound);
    let node = match (joining, cluster_url, joined) {
        (Some(c), Some(url), Some((bus, _, state))) => {
            let membership =
                tenet_store::cluster::Membership::join(&url, &c.node, &format!("{scheme}://{bound}"), c.partitions)
                    .map_err(|e| ServiceError::Refused(format!("joining the cluster on {store_at}: {e}")))?;
            tracing::info!(node = %c.node, partitions = c.partitions, "joined the cluster");
            Some(
                cluster::Node::start(
                    membership,
                    bus,
                    runtime.handle().clone(),
                    pipeline.inlet.clone(),
                    state,
                    signals.clone(),
                )
                .map_err(ServiceError::io("starting the cluster thread"))?,
            )
        }
        _ => None,
    };
    let deliveries = signals::delivery::Deliveries::start(signals.clone());
    let following = signals::follow(signals.clone(), changes.subscribe());
    status.set_ready();
    tracing::info!(%bound, "listening");
    let requested = Arc::new(Requested::default());
    {
        let requested = requested.clone();
        runtime.spawn(async move {
            shutdown_signal().await;
            requested.set();
        });
    }
    Ok(Running {
        started: Started { addr: bound, scheme, policies, policy_version, policy_count, nofile_capped },
        status,
        decisions: pdp,
        inlet,
        changes,
        pipeline: Some(pipeline),
        node,
        signals,
        deliveries: Some(deliveries),
        following,
        watcher,
        claim: Some(claim),
        store_claim,
        watching,
        runtime: Some(runtime),
        server: Some(server),
        shutdown,
        closing,
        requested,
    })
}

impl Running {
    /// Blocks until SIGINT or SIGTERM, or a [`Stopper`] asks.
    pub fn wait(&self) {
        if let Some(rt) = &self.runtime {
            let requested = self.requested.clone();
            rt.block_on(async move { requested.notify.notified().await });
        }
    }

    /// Whether a signal or a [`Stopper`] asked the service to stop.
    pub fn stop_requested(&self) -> bool {
        self.requested.flag.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A handle another thread stops the service with (a finished feed).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.requested.clone())
    }

    /// Stops listening, lets requests in flight finish, and writes every
    /// decision already answered before returning.
    pub fn stop(mut self) -> Result<(), ServiceError> {
        // Partitions given up, their learners saved: the other nodes take
        // them at once. (Its readers run on the runtime, stopped below.)
        if let Some(n) = self.node.take() {
            n.stop();
        }
        let _ = self.closing.send(true);
        self.shutdown.notify_one();
        let result = match (self.runtime.take(), self.server.take()) {
            (Some(rt), Some(server)) => {
                let r = rt.block_on(server);
                rt.shutdown_timeout(Duration::from_secs(5));
                match r {
                    Ok(r) => r.map_err(ServiceError::io(format!("serving on {}", self.started.addr))),
                    Err(e) => Err(ServiceError::Io {
                        what: format!("serving on {}", self.started.addr),
                        source: std::io::Error::other(e.to_string()),
                    }),
                }
            }
            _ => Ok(()),
        };
        // No request is in flight any more, and the watcher finishes the
        // file it is on: then store and analyse what was queued, save the
        // learner.
        self.watching.store(true, std::sync::atomic::Ordering::Release);
        if let Some(w) = self.watcher.take() {
            w.join();
        }
        if let Some(p) = self.pipeline.take() {
            p.stop();
        }
        // The pipeline's last notices are announced; the channel closes
        // with the last sender, and the follower ends once it has turned
        // them into SETs. A sender kept elsewhere (a caller's clone) would
        // keep it waiting: it gets 2 s.
        drop(self.changes);
        if let Some(f) = self.following.take() {
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while !f.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(d) = self.deliveries.take() {
            d.stop(&self.signals);
        }
        if let Some(log) = &self.decisions.log {
            log.close();
        }
        drop(self.claim.take());
        drop(self.store_claim.take());
        result
    }
}

/// Asks a [`Running`] service to stop (from a signal handler or a feed).
#[derive(Clone)]
pub struct Stopper(Arc<Requested>);

impl Stopper {
    pub fn stop(&self) {
        self.0.set();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
