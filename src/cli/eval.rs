//! `tenet eval`.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tenet_sim::Label;
use tenet_sim::eval::{EvalReport, Exposure, evaluate};
use tenet_store::FindingQuery;

use super::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Ground truth: `labels.jsonl` as `tenet simulate` writes it.
    #[arg(long)]
    labels: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut labels = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Label>(&line) {
            Ok(l) => labels.push(l),
            Err(e) => bail!("{}: line {}: not a label: {e}", path.display(), i + 1),
        }
    }
    Ok(labels)
}

pub fn run(place: &super::Place, args: Args) -> Result<Outcome> {
    let labels = read_labels(&args.labels)?;
    let store = place.open()?;
    let findings = store.findings(&FindingQuery::default())?;
    let ids: HashSet<String> = labels.iter().map(|l| l.event_id.clone()).collect();
    let times = store.event_times(&ids)?;
    let activity = tenet_pipeline::activity::activity(&*store)?;
    let exposure = Exposure {
        events: store.count()?,
        principals: activity.principals,
        principal_days: activity.principal_days,
        days: activity.days,
    };
    let report = evaluate(&labels, &findings, &times, exposure);
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report)?;
    }
    Ok(Outcome::Ok)
}

fn print(r: &EvalReport) -> std::io::Result<()> {
    outln!(
        "{:<34} {:<28} {:>8} {:>6} {:<28} {:>6} {:>9} {:>10}",
        "scenario",
        "expected",
        "labelled",
        "raised",
        "given",
        "alerts",
        "precision",
        "ttd"
    );
    for s in &r.scenarios {
        // Adaptations are recorded, not detected: a time to detect would mean nothing.
        let ttd = match s.time_to_detect_seconds {
            Some(t) if s.attack => format!("{t:.0}s"),
            _ => "-".to_string(),
        };
        let raised = match (s.attack, s.raised, s.detected) {
            (false, _, _) => "-",
            (true, true, _) => "yes",
            (true, false, true) => "vague",
            (true, false, false) => "no",
        };
        outln!(
            "{:<34} {:<28} {:>8} {:>6} {:<28} {:>6} {:>9} {:>10}{}",
            s.scenario,
            s.expected,
            s.labelled_events,
            raised,
            s.given,
            s.alerts,
            s.evidence_precision.map_or("-".to_string(), |p| format!("{:.0}%", p * 100.0)),
            ttd,
            if s.stored_events < s.labelled_events {
                format!("  ({} labelled events not in the store)", s.labelled_events - s.stored_events)
            } else {
                String::new()
            }
        );
    }
    outln!("\nconfusion (expected → given):");
    for (expected, given) in &r.confusion {
        let cells: Vec<String> = given.iter().map(|(g, n)| format!("{g}: {n}")).collect();
        outln!("  {expected:<28} {}", cells.join(", "));
    }
    outln!(
        "\nfindings: {} ({} alerting); events: {} ({} benign); principals: {}; principal-days: {}; days: {}",
        r.findings,
        r.alerting_findings,
        r.events,
        r.benign_events,
        r.principals,
        r.principal_days,
        r.days
    );
    outln!(
        "false alerts: {} ({:.2} per 1,000 principal-days, {:.2} per 10,000 benign events); alerts per day: {:.2}",
        r.false_findings,
        r.false_alerts_per_1000_principal_days,
        r.false_findings_per_10k_benign,
        r.alerts_per_day
    );
    if let Some(p) = r.mean_evidence_precision {
        outln!("mean evidence precision of alerts on incidents: {:.0}%", p * 100.0);
    }
    let t = &r.targets;
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    outln!("\ntargets:");
    outln!(
        "  false alerts ≤ 2 per 1,000 principal-days: {}; ≤ 0.3 per 10,000 benign events: {}",
        mark(t.false_alerts_per_1000_principal_days),
        mark(t.false_alerts_per_10k_benign)
    );
    outln!(
        "  incidents raised with evidence precision ≥ 50%: {} of {} ({})",
        t.attacks_raised.0,
        t.attacks_raised.1,
        mark(t.every_attack_raised)
    );
    outln!(
        "  incidents given the right category: {} of {} ({:.0}%, {})",
        t.attacks_categorised.0,
        t.attacks_categorised.1,
        t.category_accuracy * 100.0,
        mark(t.category_accuracy_met)
    );
    outln!(
        "  adaptations quiet: {} of {} ({})",
        t.adaptations_quiet.0,
        t.adaptations_quiet.1,
        mark(t.every_adaptation_quiet)
    );
    Ok(())
}
