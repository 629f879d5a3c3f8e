//! `tenet principal`: administrators' verdicts. Confirming a principal
//! compromised keeps its risk critical (and revokes its live sessions)
//! until its risk is dismissed; both are recorded in the audit log of
//! verdicts with who decided and why. Beside a running service the service
//! applies the verdict within a quarter of a second; otherwise this
//! command applies it itself.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Subcommand;
use tenet_model::{PrincipalVerdict, RiskLevel, Timestamp, TrustNotice, Verdict};
use tenet_store::EventStore;

use super::Outcome;

#[derive(Subcommand)]
pub enum PrincipalCommand {
    /// Confirm a principal compromised: critical risk, sessions revoked,
    /// RISC account-disabled and credential-compromise sent.
    Compromise {
        /// Any reference Tenet accepts (user:alice, an email, an ARN, agent:…).
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Dismiss a principal's risk: low again until new findings raise it.
    Dismiss {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// The audit log of verdicts, oldest first.
    Verdicts {
        #[arg(long)]
        json: bool,
    },
}

fn who_am_i() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map_or_else(|_| "cli".to_string(), |u| format!("{u} (cli)"))
}

pub fn run(place: &super::Place, command: PrincipalCommand) -> Result<Outcome> {
    let (name, verdict, reason) = match command {
        PrincipalCommand::Compromise { id, reason } => (id, Verdict::Compromised, reason),
        PrincipalCommand::Dismiss { id, reason } => (id, Verdict::Dismissed, reason),
        PrincipalCommand::Verdicts { json } => return list(place, json),
    };
    let reason = reason.trim().to_string();
    if reason.is_empty() {
        bail!("--reason is empty: say why, the audit log keeps it");
    }
    let mut store = place.open()?;
    let names = super::CanonicalNames::load(&*store)?;
    let (canonical, aliases) = super::principal_in(&*store, names.graph(), &name)?;
    let v = PrincipalVerdict {
        seq: 0,
        at: Timestamp::now(),
        principal: canonical.clone(),
        verdict,
        reason,
        by: who_am_i(),
    };
    if let Some(service) = place.service_running() {
        let seq = store.put_verdict(&v, false)?;
        store.commit()?;
        // The service applies it at its next look at other processes' commits.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if !store.verdicts(true)?.iter().any(|p| p.seq == seq) {
                outln!("{canonical}: {} (verdict {seq}), applied by {service}", verdict.as_str());
                return Ok(Outcome::Ok);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "verdict {seq} on {canonical} is recorded, but {service} has not applied it within 5 s; it will when it can"
        )
    }
    let seq = apply(&mut *store, &v, &aliases)?;
    outln!("{canonical}: {} (verdict {seq})", verdict.as_str());
    Ok(Outcome::Ok)
}

/// With no service running: the verdict, the risk it sets on every alias
/// that has one and its notices, in one transaction (as the service does).
fn apply(store: &mut dyn EventStore, v: &PrincipalVerdict, aliases: &[String]) -> Result<i64> {
    let reader = store.reader()?;
    let mut before = RiskLevel::Low;
    let mut points = Vec::new();
    for a in aliases {
        let last = reader.risk(Some(a))?.pop();
        if let Some(p) = &last {
            before = before.max(p.level);
        }
        if a == &v.principal || last.is_some() {
            points.push(v.verdict.risk(a, v.at));
        }
    }
    drop(reader);
    let seq = store.put_verdict(v, true)?;
    store.put_risk(&points)?;
    let mut next = store.last_notice()? + 1;
    let mut notices = vec![TrustNotice {
        seq: next,
        at: v.at,
        principal: v.principal.clone(),
        change: v.verdict.notice(&v.reason, &v.by),
    }];
    let after = v.verdict.risk(&v.principal, v.at);
    if after.level != before {
        next += 1;
        notices.push(TrustNotice {
            seq: next,
            at: v.at,
            principal: v.principal.clone(),
            change: tenet_model::NoticeChange::RiskLevel { from: before, to: after.level, score: after.score },
        });
    }
    store.put_notices(&notices)?;
    store.commit()?;
    Ok(seq)
}

fn list(place: &super::Place, json: bool) -> Result<Outcome> {
    let store = place.open()?;
    for v in store.verdicts(false)? {
        if json {
            outln!("{}", serde_json::to_string(&v)?);
        } else {
            outln!("{:>4}  {}  {:<12} {}  by {}: {}", v.seq, v.at, v.verdict.as_str(), v.principal, v.by, v.reason);
        }
    }
    Ok(Outcome::Ok)
}
