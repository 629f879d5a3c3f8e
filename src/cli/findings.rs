//! `tenet findings`, `tenet finding`, `tenet risk` and `tenet analyse`: what
//! the learn stage concluded, its lifecycle, and the trust signals from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tenet_model::{Category, Finding, FindingStatus};
use tenet_pipeline::analyse::AnalyseReport;
use tenet_sigma::RuleSet;
use tenet_store::{EventStore, FindingQuery};

use super::Outcome;

fn open(place: &super::Place) -> Result<Box<dyn EventStore>> {
    place.open()
}

/// Loads Sigma rules from `dir`, saying on stderr what loaded and what did not.
pub fn load_rules(dir: Option<&Path>, quiet: bool) -> Result<RuleSet> {
    let Some(dir) = dir else { return Ok(RuleSet::empty()) };
    let (rules, report) =
        RuleSet::load_dir(dir).with_context(|| format!("loading Sigma rules from {}", dir.display()))?;
    if !quiet {
        let by: Vec<String> = report.loaded.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "Sigma: {} rule(s) loaded from {} file(s) ({}); {} for logsources Tenet does not read",
            report.total(),
            report.files,
            by.join(", "),
            report.not_applicable
        );
        for (file, reason) in &report.rejected {
            eprintln!("Sigma: skipped {file}: {reason}");
        }
    }
    Ok(rules)
}

pub fn print_analysis(r: &AnalyseReport) -> std::io::Result<()> {
    let by: Vec<String> = r.findings.iter().map(|(k, v)| format!("{k} {v}")).collect();
    outln!(
        "analysed {} event(s) and {} snapshot(s) in {:.2}s: {} Sigma match(es), {} finding(s) raised or updated{}",
        r.events,
        r.snapshots,
        r.seconds,
        r.sigma_matches,
        r.findings.values().sum::<u64>(),
        if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) }
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct AnalyseArgs {
    /// Sigma rules directory (read recursively).
    #[arg(long, env = "TENET_SIGMA_RULES")]
    rules: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn analyse(place: &super::Place, args: AnalyseArgs) -> Result<Outcome> {
    if let Some(who) = place.service_running() {
        anyhow::bail!(
            "{who}: send telemetry to it (POST /api/v1/events, /v1/traces, or a --watch folder), or stop it first; it analyses what it receives"
        );
    }
    let rules = load_rules(args.rules.as_deref(), args.json)?;
    let mut store = open(place)?;
    let report = tenet_pipeline::analyse::analyse(&mut *store, &rules, &Default::default())?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        print_analysis(&report)?;
    }
    Ok(Outcome::Ok)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Ocsf,
}

#[derive(clap::Args)]
pub struct FindingsArgs {
    #[arg(long, value_parser = parse_category)]
    category: Option<Category>,
    #[arg(long)]
    principal: Option<String>,
    #[arg(long, value_parser = parse_status)]
    status: Option<FindingStatus>,
    /// Also incidents recorded below the alert score (by default: alerts and
    /// recorded adaptations).
    #[arg(long)]
    all: bool,
    /// JSON lines (same as `--format json`).
    #[arg(long)]
    json: bool,
    /// `text`, `json` (JSON lines) or `ocsf` (OCSF Detection Finding JSON lines).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

fn parse_category(s: &str) -> Result<Category, String> {
    s.parse().map_err(|e: tenet_model::category::UnknownCategory| e.to_string())
}

fn parse_status(s: &str) -> Result<FindingStatus, String> {
    s.parse().map_err(|e: tenet_model::finding::UnknownStatus| e.to_string())
}

pub fn findings(place: &super::Place, args: FindingsArgs) -> Result<Outcome> {
    let store = open(place)?;
    let reader = store.reader()?;
    let query = FindingQuery { category: args.category, principal: None, status: args.status, include_quiet: args.all };
    let names = super::CanonicalNames::load(&*store)?;
    let found = match &args.principal {
        None => reader.findings(&query)?,
        Some(name) => {
            let (_, aliases) = super::principal_in(&*store, names.graph(), name)?;
            let mut found = Vec::new();
            for a in aliases {
                found.extend(reader.findings(&FindingQuery { principal: Some(a), ..query.clone() })?);
            }
            found.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
            found.dedup_by(|a, b| a.id == b.id);
            found
        }
    };
    let format = args.format.unwrap_or(if args.json { Format::Json } else { Format::Text });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let view = names.graph().current();
    for f in &found {
        // Under the principal's canonical reference; `seen_as` keeps the id
        // the learner recorded it under.
        let (f, seen_as) = names.finding(&view, f);
        let f = &f;
        match format {
            Format::Json => {
                let mut v = serde_json::to_value(f)?;
                if let (Some(seen), Some(o)) = (seen_as, v.as_object_mut()) {
                    o.insert("seen_as".into(), seen.into());
                }
                serde_json::to_writer(&mut out, &v)?;
                writeln!(out)?;
            }
            Format::Ocsf => {
                serde_json::to_writer(&mut out, &tenet_sources::formats::ocsf::finding_to_ocsf(f))?;
                writeln!(out)?;
            }
            Format::Text => writeln!(
                out,
                "{}  {:<27} {:<8} {:>4.2}  {:<12} {}\n    {}",
                f.id,
                f.category.as_str(),
                if f.alert || !f.category.is_alert() { f.severity.as_str() } else { "recorded" },
                f.confidence,
                f.status.as_str(),
                f.principal,
                f.summary
            )?,
        }
    }
    if matches!(format, Format::Text) {
        let alerts = found.iter().filter(|f| f.is_alert()).count();
        writeln!(out, "{} finding(s), {alerts} alerting", found.len())?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

#[derive(clap::Args)]
pub struct FindingArgs {
    id: String,
    /// Acknowledge: someone is on it.
    #[arg(long, group = "change")]
    ack: bool,
    #[arg(long, group = "change")]
    resolve: bool,
    /// Suppress (needs `--reason`): not a problem, and why.
    #[arg(long, group = "change")]
    suppress: bool,
    /// Reopen a resolved or suppressed finding.
    #[arg(long, group = "change")]
    reopen: bool,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn finding(place: &super::Place, args: FindingArgs) -> Result<Outcome> {
    let mut store = open(place)?;
    let to = match (args.ack, args.resolve, args.suppress, args.reopen) {
        (true, ..) => Some(FindingStatus::Acknowledged),
        (_, true, ..) => Some(FindingStatus::Resolved),
        (_, _, true, _) => Some(FindingStatus::Suppressed),
        (.., true) => Some(FindingStatus::Open),
        _ => None,
    };
    if to == Some(FindingStatus::Suppressed) && args.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        bail!("--suppress needs --reason: say why this is not a problem");
    }
    let f = match to {
        Some(to) => {
            tenet_pipeline::analyse::set_status(&mut *store, &args.id, to, args.reason.as_deref(), &Default::default())?
        }
        None => match store.reader()?.finding(&args.id)? {
            Some(f) => f,
            None => bail!("no finding with id {}", args.id),
        },
    };
    if args.json {
        outln!("{}", serde_json::to_string(&f)?);
    } else {
        print_finding(&f)?;
    }
    Ok(Outcome::Ok)
}

fn print_finding(f: &Finding) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}  {}  {}  confidence {:.2}  {}", f.id, f.category, f.severity.as_str(), f.confidence, f.status)?;
    writeln!(out, "principal   {}", f.principal)?;
    writeln!(out, "seen        {} → {} (raised {})", f.first_seen, f.last_seen, f.raised_at)?;
    if !f.techniques.is_empty() {
        writeln!(out, "techniques  {}", f.techniques.join(", "))?;
    }
    if !f.alert && f.category.is_alert() {
        writeln!(out, "alert       no: recorded below the alert score")?;
    }
    writeln!(out, "\n{}\n", f.summary)?;
    writeln!(out, "why this category: {}\n", f.explanation)?;
    if !f.behaviours.is_empty() {
        writeln!(out, "behaviours:")?;
        for b in &f.behaviours {
            let ids: Vec<&str> = b.event_ids.iter().take(3).map(|i| i.as_str()).collect();
            writeln!(
                out,
                "  {}{}{}: {}\n      events ({}): {}{}",
                b.behaviour.label(),
                b.tactic.as_deref().map(|t| format!(" ({t})")).unwrap_or_default(),
                if b.techniques.is_empty() { String::new() } else { format!(" [{}]", b.techniques.join(", ")) },
                b.summary,
                b.event_ids.len(),
                ids.join(", "),
                if b.event_ids.len() > 3 { ", …" } else { "" }
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "evidence:")?;
    for e in &f.evidence {
        writeln!(out, "  [{}] {} — {}", e.detector, e.at, e.detail)?;
        if let Some(b) = &e.baseline {
            writeln!(
                out,
                "      baseline ({}): {} = {}; expected: {} (learned from {} events)",
                b.scope, b.feature, b.observed, b.expected, b.history
            )?;
        }
        if let Some(r) = &e.rule {
            writeln!(out, "      Sigma rule {} \"{}\" ({}) {}", r.id, r.title, r.level, r.file)?;
        }
        for p in &e.path {
            writeln!(out, "      path: {p}")?;
        }
        if !e.event_ids.is_empty() {
            let ids: Vec<&str> = e.event_ids.iter().take(5).map(|i| i.as_str()).collect();
            writeln!(
                out,
                "      events: {}{}",
                ids.join(", "),
                if e.event_ids.len() > 5 { format!(" … ({} in all)", e.event_ids.len()) } else { String::new() }
            )?;
        }
    }
    writeln!(
        out,
        "\nevents ({}): {}",
        f.event_ids.len(),
        f.event_ids.iter().take(10).map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
    )?;
    if !f.history.is_empty() {
        writeln!(out, "\nhistory:")?;
        for h in &f.history {
            writeln!(
                out,
                "  {} {} → {}{}",
                h.at,
                h.from,
                h.to,
                h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Args)]
pub struct RiskArgs {
    /// One principal (all when omitted).
    principal: Option<String>,
    /// Its score over time rather than the latest.
    #[arg(long, requires = "principal")]
    history: bool,
    #[arg(long)]
    json: bool,
}

pub fn risk(place: &super::Place, args: RiskArgs) -> Result<Outcome> {
    let store = open(place)?;
    let reader = store.reader()?;
    let names = super::CanonicalNames::load(&*store)?;
    let aliases = match &args.principal {
        Some(name) => Some(super::principal_in(&*store, names.graph(), name)?.1),
        None => None,
    };
    let view = names.graph().current();
    let mut points = Vec::new();
    match (&aliases, args.history) {
        (Some(aliases), history) => {
            for a in aliases {
                points.extend(if history { reader.risk_history(a)? } else { reader.risk(Some(a))? });
            }
            points.sort_by(|a, b| (a.at, &a.principal).cmp(&(b.at, &b.principal)));
        }
        (None, false) => points = reader.risk(None)?,
        (None, true) => bail!("--history needs a principal"),
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in &points {
        // Under the principal's canonical reference, as findings are.
        let p = &tenet_model::RiskPoint {
            principal: tenet_pipeline::principals::canonical_in(&view, &p.principal),
            ..p.clone()
        };
        if args.json {
            serde_json::to_writer(&mut out, p)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:>3} {:<8} {}  {}  ({} open finding(s))",
                p.score,
                p.level.as_str(),
                p.at,
                p.principal,
                p.findings.len()
            )?;
        }
    }
    out.flush()?;
    Ok(Outcome::Ok)
}
