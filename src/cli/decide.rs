//! `tenet serve`, `tenet check`, `tenet policy validate|test` and
//! `tenet audit verify`: the decision point as a service and on the command
//! line, with the same engine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tenet_policy::authzen::{self, Evaluations};
use tenet_policy::{NoTrust, PolicyBundle, TrustSource};
use tenet_server::policy_dir;
use tenet_service::{LiveTrust, TrustSnapshot};

use super::Outcome;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where to listen. Without API keys only a loopback address is accepted.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The policy directory (`*.cedar`, optional `*.cedarschema` and
    /// `entities.json`); default `<data dir>/policies`. Reloaded on change.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// A YAML (or JSON) file with `addr`, `policies`, `policy_poll_ms`,
    /// `workers`, `tls_cert`, `tls_key`, `watch`, `inventory`, `rules` and `limits`
    /// (every bound the server keeps); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitFlags,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A folder whose telemetry files are ingested as they appear, each
    /// once, when complete (repeatable); a restart resumes.
    #[arg(long, value_name = "DIR")]
    watch: Vec<PathBuf>,
    /// A folder whose inventory files (IAM, SCIM, RBAC, agent registry) are
    /// imported as they appear or change, as `tenet import` would.
    #[arg(long, value_name = "DIR")]
    inventory: Option<PathBuf>,
    /// Sigma rules matched as events are analysed.
    #[arg(long, env = "TENET_SIGMA_RULES", value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Join a cluster: NATS JetStream (`nats://HOST:PORT`) carries the
    /// events between nodes; needs `--store postgres://…` and `--node-id`.
    #[arg(long, env = "TENET_BUS", value_name = "URL", requires = "node_id")]
    bus: Option<String>,
    /// This node's name in the cluster (unique among its live nodes).
    #[arg(long, env = "TENET_NODE_ID", value_name = "NAME", requires = "bus")]
    node_id: Option<String>,
    /// The cluster's partition count, fixed when it is created (every node
    /// must give the same).
    #[arg(long, env = "TENET_PARTITIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    partitions: u32,
    /// A cluster node's answers are marked stale (`tenet-stale-seconds`)
    /// once it has not been able to follow the other nodes for this long.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    stale_after_ms: u64,
}

/// Flags for the most-tuned limits (the rest are in the config's `limits`).
#[derive(clap::Args)]
struct LimitFlags {
    /// Request body bytes read at most, as sent (default 1 MiB).
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Evaluations in one batch at most (default 1,000).
    #[arg(long)]
    max_batch_items: Option<usize>,
    /// Open connections at most, below the open-file limit (default 1,024).
    #[arg(long)]
    max_connections: Option<usize>,
    /// From a request's first byte to its last header (default 10,000 ms).
    #[arg(long)]
    header_timeout_ms: Option<u64>,
    /// To receive a whole request body (default 30,000 ms).
    #[arg(long)]
    body_timeout_ms: Option<u64>,
    /// A connection with no request in progress is closed after (default 60,000 ms).
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Decision-log records waiting to be written at most (default 65,536).
    #[arg(long)]
    decision_log_queue: Option<usize>,
}

impl LimitFlags {
    fn apply(&self, l: &mut tenet_server::Limits) {
        let set = |slot: &mut usize, v: Option<usize>| *slot = v.unwrap_or(*slot);
        set(&mut l.max_body_bytes, self.max_body_bytes);
        set(&mut l.max_batch_items, self.max_batch_items);
        set(&mut l.max_connections, self.max_connections);
        set(&mut l.decision_log_queue, self.decision_log_queue);
        l.header_timeout_ms = self.header_timeout_ms.unwrap_or(l.header_timeout_ms);
        l.body_timeout_ms = self.body_timeout_ms.unwrap_or(l.body_timeout_ms);
        l.idle_timeout_ms = self.idle_timeout_ms.unwrap_or(l.idle_timeout_ms);
    }
}

pub fn serve(place: &super::Place, args: ServeArgs) -> Result<Outcome> {
    let mut config = match &args.config {
        None => tenet_service::ServeConfig::default(),
        Some(path) => tenet_service::ServeConfig::read(path)?,
    };
    config.addr = args.addr.or(config.addr);
    config.policies = args.policies.or(config.policies);
    config.tls_cert = args.tls_cert.or(config.tls_cert);
    config.tls_key = args.tls_key.or(config.tls_key);
    let mut limits = config.limits.clone().unwrap_or_default();
    args.limits.apply(&mut limits);
    config.limits = Some(limits);
    config.watch.extend(args.watch);
    config.inventory = args.inventory.or(config.inventory);
    config.rules = args.rules.or(config.rules);
    let rules = super::findings::load_rules(config.rules.as_deref(), false)?;
    let cluster = match (args.bus, args.node_id) {
        (Some(bus), Some(node)) => Some(tenet_service::cluster::ClusterOptions {
            bus,
            node,
            partitions: args.partitions,
            stale_after: std::time::Duration::from_millis(args.stale_after_ms),
        }),
        _ => None,
    };
    let running = tenet_service::start(tenet_service::Options {
        data_dir: place.dir.clone(),
        store: place.store.clone(),
        config,
        rules,
        cluster,
    })?;
    let s = &running.started;
    if let Some(nofile) = s.nofile_capped {
        tracing::warn!(nofile, "connections capped below the open-file limit (raise `ulimit -n` for more)");
    }
    {
        // The server outlives its terminal: a closed stdout is no reason to stop.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stdout().lock(),
            "tenet serve: listening on {}://{} (policies {}, version {}, {} policies)",
            s.scheme,
            s.addr,
            s.policies.display(),
            s.policy_version,
            s.policy_count
        );
    }
    running.wait();
    running.stop()?;
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The subject, as TYPE:ID (e.g. `user:alice@example.com`).
    #[arg(long)]
    principal: String,
    /// The action name.
    #[arg(long)]
    action: String,
    /// The resource, as TYPE:ID.
    #[arg(long)]
    resource: String,
    /// The request context, a JSON object.
    #[arg(long)]
    context: Option<String>,
    /// The policy directory; default `<data dir>/policies`.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Say which policies decided, the signals used, and why.
    #[arg(long)]
    explain: bool,
    /// AuthZEN response JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `TYPE:ID`, the type possibly namespaced (`Tenet::Agent:agt-42`).
fn split_entity(s: &str, flag: &str) -> Result<(String, String)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' {
            if bytes.get(i + 1) == Some(&b':') {
                i += 2;
                continue;
            }
            let (t, id) = (&s[..i], &s[i + 1..]);
            if t.is_empty() || id.is_empty() {
                break;
            }
            return Ok((t.to_string(), id.to_string()));
        }
        i += 1;
    }
    bail!("--{flag} {s:?}: expected TYPE:ID, e.g. user:alice@example.com")
}

/// Trust signals from the data directory's store when there is one.
fn local_trust(place: &super::Place) -> Result<Arc<dyn TrustSource>> {
    if matches!(&place.store, tenet_store::StoreAt::Embedded(dir) if !dir.join("tenet.db").exists()) {
        return Ok(Arc::new(NoTrust));
    }
    let store = place.open()?;
    Ok(LiveTrust::new(TrustSnapshot::read(&*store)?))
}

pub fn check(place: &super::Place, args: CheckArgs) -> Result<Outcome> {
    let dir = args.policies.clone().unwrap_or_else(|| place.dir.join("policies"));
    let bundle = policy_dir::load(&dir).map_err(|e| anyhow!("{e}"))?;
    let (st, sid) = split_entity(&args.principal, "principal")?;
    let (rt, rid) = split_entity(&args.resource, "resource")?;
    let context: Value = match &args.context {
        None => json!({}),
        Some(c) => serde_json::from_str(c).with_context(|| "--context: not valid JSON")?,
    };
    let body = json!({
        "subject": {"type": st, "id": sid},
        "action": {"name": args.action},
        "resource": {"type": rt, "id": rid},
        "context": context,
    });
    let e = authzen::parse_evaluation(&body).map_err(|e| anyhow!("{e}"))?;
    let trust = local_trust(place)?;
    let d = bundle.decide(&e, &*trust).map_err(|e| anyhow!("{e}"))?;
    if args.json {
        let mut out = json!({"decision": d.allowed});
        if args.explain {
            out["context"] = json!({
                "policies": d.policies, "errors": d.errors, "signals": d.signals.to_json(),
                "reason": d.reason(), "policy_version": bundle.version(),
            });
        }
        outln!("{out}");
    } else {
        outln!("{}", if d.allowed { "permit" } else { "deny" });
        if args.explain {
            outln!("reason: {}", d.reason());
            if !d.policies.is_empty() {
                outln!("policies: {}", d.policies.join(", "));
            }
            for err in &d.errors {
                outln!("error: {err}");
            }
            outln!("signals: {}", d.signals.to_json());
            outln!("policy version: {}", bundle.version());
        }
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Parse and validate a policy directory (against its schema, if any).
    Validate { dir: PathBuf },
    /// Decide every case of CASES.json and compare with its expected decision.
    Test { dir: PathBuf, cases: PathBuf },
    /// Every policy version the server activated: when, by whom, and what changed.
    Versions {
        /// Show each version's diff.
        #[arg(long)]
        diff: bool,
    },
}

pub fn policy(place: &super::Place, command: PolicyCommand) -> Result<Outcome> {
    match command {
        PolicyCommand::Versions { diff } => {
            let at = place.store.decision_log();
            if let tenet_store::TablesAt::File(path) = &at
                && !path.exists()
            {
                bail!("no decision log at {}: `tenet serve` records policy versions there", path.display());
            }
            for v in tenet_store::decisions::policy_versions(&at)? {
                outln!("{} {} by {}", v.at, v.version, v.author);
                if diff {
                    out!("{}", v.diff);
                }
            }
            Ok(Outcome::Ok)
        }
        PolicyCommand::Validate { dir } => {
            let b = policy_dir::load(&dir).map_err(|e| anyhow!("{e}"))?;
            outln!(
                "valid: {} policies, {}, {} entities; version {}",
                b.policy_count(),
                if b.has_schema() { "validated against the schema" } else { "no schema (not type-checked)" },
                b.entity_count(),
                b.version()
            );
            for w in b.warnings() {
                outln!("warning: {w}");
            }
            Ok(Outcome::Ok)
        }
        PolicyCommand::Test { dir, cases } => policy_test(&dir, &cases),
    }
}

/// One expected decision, from either an AuthZEN interop decisions file
/// (`{"evaluation": [...], "evaluations": [...]}`) or a plain array of
/// `{"name"?, "request", "expected"}`.
struct Case {
    name: String,
    request: Value,
    expected: Vec<bool>,
    /// Fixed trust signals (the `tenet` record as JSON); none available when absent.
    signals: Option<tenet_policy::TrustSignals>,
}

fn cases_of(doc: &Value) -> Result<Vec<Case>> {
    let one = |i: usize, c: &Value, key: &str| -> Result<Case> {
        let request = c.get("request").cloned().ok_or_else(|| anyhow!("{key}[{i}]: no `request`"))?;
        let expected = match c.get("expected") {
            Some(Value::Bool(b)) => vec![*b],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.get("decision").and_then(Value::as_bool).or(x.as_bool()))
                .collect::<Option<Vec<bool>>>()
                .ok_or_else(|| anyhow!("{key}[{i}].expected: decisions must be booleans or {{\"decision\": bool}}"))?,
            Some(Value::Object(o)) => vec![
                o.get("decision")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| anyhow!("{key}[{i}].expected.decision: a boolean"))?,
            ],
            _ => bail!("{key}[{i}]: `expected` must be a boolean or a list of decisions"),
        };
        let name = c.get("name").and_then(Value::as_str).map_or_else(|| format!("{key}[{i}]"), str::to_string);
        let signals = match c.get("signals") {
            None | Some(Value::Null) => None,
            Some(s) => Some(tenet_policy::TrustSignals::from_json(s).map_err(|e| anyhow!("{key}[{i}].signals.{e}"))?),
        };
        Ok(Case { name, request, expected, signals })
    };
    let mut out = Vec::new();
    match doc {
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                out.push(one(i, c, "cases")?);
            }
        }
        Value::Object(o) => {
            for key in ["evaluation", "evaluations"] {
                for (i, c) in o.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                    out.push(one(i, c, key)?);
                }
            }
        }
        _ => bail!("expected an array of cases or an object with `evaluation`/`evaluations`"),
    }
    Ok(out)
}

fn policy_test(dir: &Path, cases_path: &Path) -> Result<Outcome> {
    let bundle: PolicyBundle = policy_dir::load(dir).map_err(|e| anyhow!("{e}"))?;
    let text = std::fs::read_to_string(cases_path).with_context(|| format!("reading {}", cases_path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", cases_path.display()))?;
    let cases = cases_of(&doc).with_context(|| cases_path.display().to_string())?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for c in &cases {
        let signals = c.signals.clone().unwrap_or_default();
        let decide = |e: &authzen::Evaluation| bundle.decide_with(e, &NoTrust, signals.clone());
        let got: Result<Vec<bool>, String> = match authzen::parse_evaluations(&c.request) {
            Err(e) => Err(e.to_string()),
            Ok(Evaluations::Single(e)) => decide(&e).map(|d| vec![d.allowed]).map_err(|e| e.to_string()),
            Ok(Evaluations::Batch(b)) => Ok(b
                .items
                .iter()
                .map(|item| item.as_ref().ok().and_then(|e| decide(e).ok()).is_some_and(|d| d.allowed))
                .collect()),
        };
        match got {
            Ok(g) if g == c.expected => passed += 1,
            Ok(g) => {
                failed += 1;
                outln!("FAIL {}: expected {:?}, got {:?}: {}", c.name, c.expected, g, c.request);
            }
            Err(e) => {
                failed += 1;
                outln!("FAIL {}: {e}", c.name);
            }
        }
    }
    outln!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} of {} case(s) decided otherwise than expected", cases.len());
    }
    Ok(Outcome::Ok)
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check the decision log's hash chain; name the first altered, removed or moved record.
    Verify,
}

pub fn audit(place: &super::Place, command: AuditCommand) -> Result<Outcome> {
    match command {
        AuditCommand::Verify => {
            let at = place.store.decision_log();
            match tenet_store::decisions::verify(&at).with_context(|| format!("verifying the decision log in {at}"))? {
                tenet_store::decisions::Verification::Intact { records, head } => {
                    outln!("intact: {records} decision record(s), head {head}");
                    Ok(Outcome::Ok)
                }
                tenet_store::decisions::Verification::Broken { seq, request_id, problem } => {
                    bail!(
                        "decision log broken at record {seq} (request id {}): {problem}",
                        request_id.as_deref().unwrap_or("none")
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_entity;

    #[test]
    fn entity_flags_split_at_the_first_single_colon() {
        assert_eq!(split_entity("user:alice@x.com", "p").unwrap(), ("user".into(), "alice@x.com".into()));
        assert_eq!(split_entity("Tenet::Agent:agt:42", "p").unwrap(), ("Tenet::Agent".into(), "agt:42".into()));
        assert!(split_entity("alice", "p").is_err());
    }
}

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Create an API key; its token is printed once, alone on the last line.
    Create {
        name: String,
        /// Comma-separated: decide, ingest, read, admin, ssf.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// Every key: name, scopes, created, revoked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its token stops working within a second.
    Revoke { name: String },
}

pub fn key(place: &super::Place, command: KeyCommand) -> Result<Outcome> {
    use tenet_store::keys::KeyStore;
    std::fs::create_dir_all(&place.dir).with_context(|| format!("creating {}", place.dir.display()))?;
    let mut keys = KeyStore::open(&place.store.keys())?;
    let now = tenet_model::Timestamp::now().to_string();
    match command {
        KeyCommand::Create { name, scopes } => {
            let (k, token) = keys.create(&name, &scopes, &now)?;
            outln!("created API key {} with scope(s) {}; the token is shown only now:", k.name, k.scopes.join(","));
            outln!("{token}");
        }
        KeyCommand::List { json } => {
            for k in keys.list()? {
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({"name": k.name, "scopes": k.scopes, "created": k.created, "revoked": k.revoked})
                    );
                } else {
                    let state = k.revoked.as_ref().map_or_else(|| "active".to_string(), |r| format!("revoked {r}"));
                    outln!("{:<20} {:<28} created {}  {state}", k.name, k.scopes.join(","), k.created);
                }
            }
        }
        KeyCommand::Revoke { name } => {
            keys.revoke(&name, &now)?;
            outln!("revoked API key {name}");
        }
    }
    Ok(Outcome::Ok)
}
