//! `tenet eval`.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tenet_sim::Label;
use tenet_sim::eval::{EvalReport, evaluate};
use tenet_store::{EventReader, FindingQuery, FindingReader, SqliteStore};

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

pub fn run(data_dir: &Path, args: Args) -> Result<Outcome> {
    let labels = read_labels(&args.labels)?;
    let store = SqliteStore::open_dir(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let findings = store.findings(&FindingQuery::default())?;
    let ids: HashSet<String> = labels.iter().map(|l| l.event_id.clone()).collect();
    let times = store.event_times(&ids)?;
    let report = evaluate(&labels, &findings, &times, store.count()?);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report);
    }
    Ok(Outcome::Ok)
}

fn print(r: &EvalReport) {
    println!(
        "{:<24} {:<28} {:>8} {:>9} {:<28} {:>7} {:>10}",
        "scenario", "expected", "labelled", "detected", "given", "alerts", "ttd"
    );
    for s in &r.scenarios {
        // Adaptations are recorded, not detected: a time to detect would mean nothing.
        let ttd = match s.time_to_detect_seconds {
            Some(t) if s.expected != "expected_adaptation" => format!("{t:.0}s"),
            _ => "-".to_string(),
        };
        println!(
            "{:<24} {:<28} {:>8} {:>9} {:<28} {:>7} {:>10}{}",
            s.scenario,
            s.expected,
            s.labelled_events,
            if s.detected { "yes" } else { "no" },
            s.given,
            s.alerts,
            ttd,
            if s.stored_events < s.labelled_events {
                format!("  ({} labelled events not in the store)", s.labelled_events - s.stored_events)
            } else {
                String::new()
            }
        );
    }
    println!("\nconfusion (expected → given):");
    for (expected, given) in &r.confusion {
        let cells: Vec<String> = given.iter().map(|(g, n)| format!("{g}: {n}")).collect();
        println!("  {expected:<28} {}", cells.join(", "));
    }
    println!(
        "\nfindings: {}; events: {} ({} benign); false findings: {} ({:.2} per 10,000 benign events)",
        r.findings, r.events, r.benign_events, r.false_findings, r.false_findings_per_10k_benign
    );
}
