//! Command-line interface: argument parsing and dispatch. Each command's
//! module turns typed results from the library crates into text or JSON.

/// `println!` for command output: a write error (a reader that closed the
/// pipe early, as `tenet eval | head` does) returns from the enclosing
/// function with `?` instead of panicking; [`run`] ends quietly on a broken
/// pipe. The binary denies `clippy::print_stdout`, so every line goes here.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod cluster;
mod decide;
mod demo;
mod eval;
mod events;
mod findings;
mod graph;
mod import;
mod ingest;
mod principal;
mod signals;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tenet", version, about = "Continuous trust governance for people, workloads and AI agents")]
struct Cli {
    /// Where Tenet keeps its data (default `./tenet-data`; `demo` uses a
    /// temporary directory unless this is given).
    #[arg(long, global = true, env = "TENET_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// Where the durable state lives: a PostgreSQL database
    /// (`postgres://USER@HOST:PORT/DB`) shared by nodes, or a directory;
    /// by default the embedded store in the data directory.
    #[arg(long, global = true, env = "TENET_STORE", value_name = "URL|DIR")]
    store: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read telemetry files, directories or stdin (`-`) into the store.
    Ingest(ingest::Args),
    /// List stored events, filtered.
    Events(events::Args),
    /// Write a simulated enterprise's telemetry, inventory and ground truth.
    Simulate(simulate::Args),
    /// Score the stored findings against ground truth labels.
    Eval(eval::Args),
    /// Stream a simulated enterprise through the pipeline, live, with the server up.
    Demo(demo::Args),
    /// Import inventory (IAM, SCIM, RBAC, agent registry) as of a time.
    Import(import::Args),
    /// Every principal able to perform an action on a resource, with paths.
    WhoCan(graph::WhoCanArgs),
    /// A principal's blast radius: what it can act as and every grant within reach.
    Reach(graph::ReachArgs),
    /// The delegation chain behind an event or trace.
    Chain(graph::ChainArgs),
    /// Trust changes in a window and the indirect access that newly emerged.
    Drift(graph::DriftArgs),
    /// Granted but unused access.
    Unused(graph::UnusedArgs),
    /// Learn from and detect on everything stored since the last analysis.
    Analyse(findings::AnalyseArgs),
    /// Findings, filtered; JSON lines or OCSF Detection Findings.
    Findings(findings::FindingsArgs),
    /// One finding with its evidence; acknowledge, resolve or suppress it.
    Finding(findings::FindingArgs),
    /// Each principal's current risk (trust signal), or its history.
    Risk(findings::RiskArgs),
    /// Run the decision point: AuthZEN over HTTP, Cedar policies, live trust signals.
    Serve(decide::ServeArgs),
    /// Decide one request locally with the same engine as `serve`.
    Check(decide::CheckArgs),
    /// Validate or test a policy directory.
    #[command(subcommand)]
    Policy(decide::PolicyCommand),
    /// Check the decision log.
    #[command(subcommand)]
    Audit(decide::AuditCommand),
    /// API keys for callers of the server (scopes: decide, ingest, read, admin, ssf).
    #[command(subcommand)]
    Key(decide::KeyCommand),
    /// Administrators' verdicts: confirm a principal compromised, or dismiss its risk.
    #[command(subcommand)]
    Principal(principal::PrincipalCommand),
    /// The Shared Signals transmitter: signing keys and receivers' streams.
    #[command(subcommand)]
    Ssf(signals::SsfCommand),
    /// Nodes sharing a PostgreSQL store and a NATS JetStream event flow.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// How a command ended, beyond success: the exit status contract.
pub enum Outcome {
    /// Everything worked: exit 0.
    Ok,
    /// The command ran but some input was bad and left out: exit 2.
    Partial,
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from("./tenet-data"));
    let place = Place { store: tenet_store::StoreAt::from_args(cli.store.as_deref(), &data_dir), dir: data_dir };
    let data_dir = &place;
    let result = match cli.command {
        Command::Ingest(args) => ingest::run(data_dir, args),
        Command::Events(args) => events::run(data_dir, args),
        Command::Simulate(args) => simulate::run(args),
        Command::Eval(args) => eval::run(data_dir, args),
        Command::Demo(args) => demo::run(cli.data_dir.clone(), args),
        Command::Import(args) => import::run(data_dir, args),
        Command::WhoCan(args) => graph::who_can(data_dir, args),
        Command::Reach(args) => graph::reach(data_dir, args),
        Command::Chain(args) => graph::chain(data_dir, args),
        Command::Drift(args) => graph::drift(data_dir, args),
        Command::Unused(args) => graph::unused(data_dir, args),
        Command::Analyse(args) => findings::analyse(data_dir, args),
        Command::Findings(args) => findings::findings(data_dir, args),
        Command::Finding(args) => findings::finding(data_dir, args),
        Command::Risk(args) => findings::risk(data_dir, args),
        Command::Serve(args) => decide::serve(data_dir, args),
        Command::Check(args) => decide::check(data_dir, args),
        Command::Policy(cmd) => decide::policy(data_dir, cmd),
        Command::Audit(cmd) => decide::audit(data_dir, cmd),
        Command::Key(cmd) => decide::key(data_dir, cmd),
        Command::Ssf(cmd) => signals::run(data_dir, cmd),
        Command::Principal(cmd) => principal::run(data_dir, cmd),
        Command::Cluster(cmd) => cluster::run(data_dir, cmd),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(2),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Output written after a command's work is done: a reader that went away
/// (`| head`) costs the rest of the output, not the command's outcome
/// (exit 2 for bad input left out still says so).
pub fn shown(printed: anyhow::Result<()>) -> anyhow::Result<()> {
    match printed {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Where a command finds its state: the store, and the data directory for
/// what stays on this machine (keys, the service's claim, policies).
pub struct Place {
    pub dir: PathBuf,
    pub store: tenet_store::StoreAt,
}

impl Place {
    /// Who runs a live service on this data directory or this store:
    /// batch commands that analyse would keep a second learner beside it.
    pub fn service_running(&self) -> Option<String> {
        if let Some(who) = tenet_service::owner::running(&self.dir) {
            return Some(who);
        }
        match &self.store {
            // The running service holds the store's claim; taking it here
            // (and letting it go at once) says whether one does.
            tenet_store::StoreAt::Postgres(url) => match tenet_store::claim_service(url) {
                Ok(None) => Some(format!("a running Tenet service on the store at {}", self.store)),
                _ => None,
            },
            tenet_store::StoreAt::Embedded(_) => None,
        }
    }

    /// The store's writer (created or migrated as needed).
    pub fn open(&self) -> anyhow::Result<Box<dyn tenet_store::EventStore>> {
        use anyhow::Context;
        self.store.writer().with_context(|| format!("opening the store at {}", self.store))
    }
}

/// The principal a person named on the command line, in Tenet's canonical
/// reference, with every alias it is known by (canonical first). An unknown
/// name is an error (exit 1), not an empty answer; an ambiguous one names
/// its candidates.
pub fn principal(store: &dyn tenet_store::EventStore, name: &str) -> anyhow::Result<(String, Vec<String>)> {
    let reader = store.reader()?;
    let graph = tenet_pipeline::trust::load_graph(&*reader)?;
    principal_in(store, &graph, name)
}

/// Names principals by their canonical reference, as the trust graph
/// knows their aliases (findings and risk are recorded under the id the
/// learner saw: an IdP user id, an ARN).
pub struct CanonicalNames {
    graph: tenet_graph::TrustGraph,
}

impl CanonicalNames {
    pub fn load(store: &dyn tenet_store::EventStore) -> anyhow::Result<Self> {
        let reader = store.reader()?;
        Ok(CanonicalNames { graph: tenet_pipeline::trust::load_graph(&*reader)? })
    }

    pub fn graph(&self) -> &tenet_graph::TrustGraph {
        &self.graph
    }

    /// `f` under its principal's canonical reference, and the id it was
    /// recorded under when that differs.
    pub fn finding(
        &self,
        view: &tenet_graph::View<'_>,
        f: &tenet_model::Finding,
    ) -> (tenet_model::Finding, Option<String>) {
        let canonical = tenet_pipeline::principals::canonical_in(view, &f.principal);
        let seen_as = (canonical != f.principal).then(|| f.principal.clone());
        (tenet_model::Finding { principal: canonical, ..f.clone() }, seen_as)
    }
}

/// [`principal`], for a command that has built the trust graph already.
pub fn principal_in(
    store: &dyn tenet_store::EventStore,
    graph: &tenet_graph::TrustGraph,
    name: &str,
) -> anyhow::Result<(String, Vec<String>)> {
    use tenet_pipeline::principals::{Resolved, resolve};
    let reader = store.reader()?;
    match resolve(&*reader, graph, name)? {
        Resolved::Known { canonical, aliases } => Ok((canonical, aliases)),
        Resolved::Unknown => anyhow::bail!(
            "unknown principal {name:?}: no stored event, finding or inventory names it (try an ARN, user:<email>, an email, agent:<id> or a unique short name)"
        ),
        Resolved::Ambiguous(candidates) => {
            anyhow::bail!("{name:?} names more than one principal; give one of: {}", candidates.join(", "))
        }
    }
}

/// Output piped into `head` and closed early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENET_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Parses `--since`/`--until`/`--at`: RFC 3339, or a duration back from now (`7d`, `12h`, `30m`).
pub fn parse_time(s: &str) -> Result<tenet_model::Timestamp, String> {
    if let Some(secs) = parse_relative(s) {
        return Ok(tenet_model::Timestamp::now().saturating_add_seconds(-secs));
    }
    tenet_model::Timestamp::parse_rfc3339(s).map_err(|e| format!("{e}, or a duration back from now such as 7d or 12h"))
}

fn parse_relative(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use tenet_model::{Category, Fact, Finding, FindingStatus, Severity, Snapshot, Timestamp};
    use tenet_store::{EventStore, SqliteStore};

    /// A finding the learner recorded under an IdP user id is shown under
    /// the person's canonical reference, keeping the id it was seen as; a
    /// principal with no other alias keeps its id as written.
    #[test]
    fn findings_are_named_by_the_canonical_reference_and_keep_the_id_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open_dir(dir.path()).unwrap();
        let t = Timestamp::from_unix_seconds(1_700_000_000);
        let scim = Snapshot {
            source: "scim".into(),
            scope: "okta".into(),
            collected_at: t,
            facts: vec![Fact::SameAs { a: "okta:00u1".into(), b: "user:alice@example.com".into() }],
        };
        store.put_snapshot(&scim, "scim inventory").unwrap();
        store.commit().unwrap();
        let finding = |principal: &str| Finding {
            id: format!("f-{principal}"),
            category: Category::AbnormalTrustRelationship,
            severity: Severity::High,
            confidence: 0.9,
            score: 70.0,
            principal: principal.into(),
            first_seen: t,
            last_seen: t,
            raised_at: t,
            event_ids: Vec::new(),
            techniques: Vec::new(),
            summary: String::new(),
            status: FindingStatus::Open,
            alert: true,
            behaviours: Vec::new(),
            explanation: String::new(),
            evidence: Vec::new(),
            history: Vec::new(),
        };
        let names = super::CanonicalNames::load(&store).unwrap();
        let view = names.graph().current();
        let (shown, seen_as) = names.finding(&view, &finding("okta:00u1"));
        assert_eq!((shown.principal.as_str(), seen_as.as_deref()), ("user:alice@example.com", Some("okta:00u1")));
        let role = "arn:aws:iam::1:role/service-role/ops";
        let (shown, seen_as) = names.finding(&view, &finding(role));
        assert_eq!((shown.principal.as_str(), seen_as), (role, None));
    }
}
