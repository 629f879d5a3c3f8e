//! `tenet ingest`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tenet_pipeline::{IngestObserver, IngestOptions, IngestReport};
use tenet_sources::format;
use tenet_sources::input::InputLimits;

use super::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Files, directories (read recursively) or `-` for stdin; gzip is detected.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Read every input as this format instead of detecting it.
    #[arg(long, value_parser = format_names())]
    format: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Sigma rules directory (read recursively) for the analysis that follows.
    #[arg(long, env = "TENET_SIGMA_RULES")]
    rules: Option<PathBuf>,
    /// Store only; leave analysis (baselines, detectors, findings) for later.
    #[arg(long)]
    no_analyse: bool,
    /// The most one compressed input may decompress to (bytes, or with KiB,
    /// MiB, GiB); what lies beyond is refused.
    #[arg(long, value_parser = parse_size, default_value_t = InputLimits::default().max_decompressed_bytes)]
    max_decompressed_bytes: u64,
    /// The most one compressed input may expand, decompressed bytes per
    /// compressed byte, once past 1 MiB; beyond it is refused as a likely
    /// decompression bomb.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = InputLimits::default().max_expansion_ratio)]
    max_expansion_ratio: u64,
    /// The most of one uncompressed document held in memory whole (bytes,
    /// or with KiB, MiB, GiB); line-delimited input is read in windows.
    #[arg(long, value_parser = parse_size, default_value_t = InputLimits::default().max_input_bytes)]
    max_input_bytes: u64,
}

/// `1073741824`, `1GiB`, `512MiB`, `64KiB` (`G`, `M`, `K` alike): binary units.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let n: u64 =
        number.parse().map_err(|_| format!("`{s}` is not a size: a number, optionally with KiB, MiB or GiB"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => return Err(format!("unknown unit `{other}`: use KiB, MiB or GiB")),
    };
    match n.checked_mul(1 << shift) {
        Some(0) => Err("a limit of 0 would refuse every input".to_string()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

#[derive(serde::Serialize)]
struct Summary<'a> {
    #[serde(flatten)]
    ingest: &'a IngestReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<&'a tenet_pipeline::analyse::AnalyseReport>,
}

fn format_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(format::names())
}

pub fn run(place: &super::Place, args: Args) -> Result<Outcome> {
    if let Some(who) = place.service_running() {
        anyhow::bail!(
            "{who}: send telemetry to it (POST /api/v1/events, /v1/traces, or a --watch folder), or stop it first; it analyses what it receives"
        );
    }
    let forced = match &args.format {
        Some(name) => match format::by_name(name) {
            Some(f) => Some(f),
            None => bail!("unknown format {name}"),
        },
        None => None,
    };
    let rules =
        if args.no_analyse { None } else { Some(super::findings::load_rules(args.rules.as_deref(), args.json)?) };
    let mut store = place.open()?;
    let mut progress = Progress::new();
    let limits = InputLimits {
        max_decompressed_bytes: args.max_decompressed_bytes,
        max_expansion_ratio: args.max_expansion_ratio,
        max_input_bytes: args.max_input_bytes,
        ..InputLimits::default()
    };
    let options = IngestOptions { format: forced, limits };
    let (report, analysis) = match &rules {
        Some(rules) => {
            let (report, analysis) = tenet_pipeline::analyse::ingest_and_analyse(
                &args.paths,
                &mut *store,
                options,
                &mut progress,
                rules,
                &Default::default(),
            )?;
            (report, Some(analysis))
        }
        None => (tenet_pipeline::ingest(&args.paths, &mut *store, options, &mut progress)?, None),
    };
    progress.finish();
    let elapsed = progress.elapsed();
    super::shown((|| {
        if args.json {
            outln!("{}", serde_json::to_string(&Summary { ingest: &report, analysis: analysis.as_ref() })?);
        } else {
            print_summary(&report, elapsed)?;
            if let Some(a) = &analysis {
                super::findings::print_analysis(a)?;
            }
        }
        Ok(())
    })())?;
    Ok(if report.rejected > 0 { Outcome::Partial } else { Outcome::Ok })
}

fn print_summary(r: &IngestReport, elapsed: Duration) -> std::io::Result<()> {
    outln!("{:<12} {:>10} {:>10} {:>10} {:>10}", "format", "read", "stored", "duplicates", "rejected");
    for (name, c) in &r.formats {
        outln!("{:<12} {:>10} {:>10} {:>10} {:>10}", name, c.read, c.stored, c.duplicates, c.rejected);
    }
    outln!("{:<12} {:>10} {:>10} {:>10} {:>10}", "total", r.read, r.stored, r.duplicates, r.rejected);
    let secs = elapsed.as_secs_f64().max(1e-9);
    outln!("{} file(s) in {:.2}s ({:.0} events/s)", r.files, secs, r.read as f64 / secs);
    if r.skipped > 0 {
        const SHOWN: usize = 8;
        outln!("skipped {} file(s) that are not telemetry:", r.skipped);
        for p in r.skipped_files.iter().take(SHOWN) {
            outln!("  {p}");
        }
        if r.skipped_files.len() > SHOWN {
            outln!("  … and {} more (--json lists them all)", r.skipped_files.len() - SHOWN);
        }
    }
    if r.relinked > 0 {
        outln!("completed {} actor chain(s) once their credential's issuer arrived", r.relinked);
    }
    if !r.rejections.is_empty() {
        outln!("rejected:");
        for x in &r.rejections {
            outln!("  {}: {}: {}", x.path, x.location, x.reason);
        }
    }
    Ok(())
}

/// A progress bar that appears only when ingestion takes more than a moment.
struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: bool,
}

const SHOW_AFTER: Duration = Duration::from_millis(400);

impl Progress {
    fn new() -> Self {
        Progress { bar: None, start: Instant::now(), shown: false }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl IngestObserver for Progress {
    fn started(&mut self, total_bytes: u64) {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
        {
            bar.set_style(style);
        }
        self.bar = Some(bar);
        self.start = Instant::now();
    }

    fn progressed(&mut self, events: u64, bytes: u64) {
        let Some(bar) = &self.bar else { return };
        let elapsed = self.start.elapsed();
        if !self.shown && elapsed > SHOW_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        bar.set_position(bytes);
        bar.set_message(format!("{events} events, {:.0} events/s", events as f64 / elapsed.as_secs_f64().max(1e-9)));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
