//! Source coverage: each telemetry source (a format and the system that
//! emits it) with its last event, its volume and how far it lags behind
//! the newest event of any source. Missing visibility is itself a risk, so
//! a source that went quiet or thin is flagged, with why.
//!
//! Counted from the store once at start (one pass), then kept current by
//! the pipeline thread as it stores each delivery; read by the console.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tenet_console::{SourceState, SourceView};
use tenet_model::{Event, Timestamp};
use tenet_store::SourceVolume;

const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;
/// Hourly counts are kept this far back from a source's last event.
const KEPT: i64 = 8 * DAY;
/// A source is silent when, for over an hour, it sent nothing where the
/// same hours of the days before held at least this many events; or when
/// it delivered nothing for [`IDLE`] by the wall clock.
const EXPECTED_EVENTS: f64 = 3.0;
const IDLE: i64 = 6 * HOUR;
/// A source is thin when its last day holds less than this share of its usual day.
const THIN: f64 = 0.25;
/// A day's volume below this is too small to call thin.
const MEASURABLE_DAY: f64 = 24.0;

#[derive(Default)]
struct Tally {
    total: u64,
    first: i64,
    last: i64,
    /// Hour index (nanoseconds / HOUR) → events in it.
    hourly: BTreeMap<i64, u64>,
    /// When it last delivered, by the wall clock (none since start: unknown).
    delivered: Option<Timestamp>,
}

/// Every source's tally.
#[derive(Default)]
pub struct Coverage {
    /// Format → emitting system → tally (looked up without allocating).
    sources: BTreeMap<String, BTreeMap<String, Tally>>,
}

pub type SharedCoverage = Arc<Mutex<Coverage>>;

impl Coverage {
    /// Coverage as the store holds it (see [`tenet_store::EventReader::source_volumes`]).
    pub fn from_store(volumes: Vec<SourceVolume>) -> Self {
        let mut c = Coverage::default();
        for v in volumes {
            let hourly = v.hourly.iter().map(|(h, n)| (h.unix_nanos().div_euclid(HOUR), *n)).collect();
            let t = Tally {
                total: v.total,
                first: v.first.unix_nanos(),
                last: v.last.unix_nanos(),
                hourly,
                delivered: None,
            };
            c.sources.entry(v.format).or_default().insert(v.system, t);
        }
        c
    }

    /// Events just stored, delivered at `now` (wall clock).
    pub fn observe<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>, now: Timestamp) {
        self.count(events.into_iter().map(|e| (e.source.format.as_str(), e.source.system.as_str(), e.time)), now);
    }

    /// Events by (format, system, time), delivered at `now`.
    fn count<'a>(&mut self, events: impl IntoIterator<Item = (&'a str, &'a str, Timestamp)>, now: Timestamp) {
        for (format, system, time) in events {
            let t = time.unix_nanos();
            let systems = match self.sources.get_mut(format) {
                Some(s) => s,
                None => self.sources.entry(format.to_string()).or_default(),
            };
            let tally = match systems.get_mut(system) {
                Some(t) => t,
                None => {
                    systems.entry(system.to_string()).or_insert_with(|| Tally { first: t, last: t, ..Tally::default() })
                }
            };
            tally.total += 1;
            tally.first = tally.first.min(t);
            tally.last = tally.last.max(t);
            *tally.hourly.entry(t.div_euclid(HOUR)).or_default() += 1;
            tally.delivered = Some(now);
        }
        for tally in self.sources.values_mut().flat_map(|s| s.values_mut()) {
            let oldest = (tally.last - KEPT).div_euclid(HOUR);
            while tally.hourly.first_key_value().is_some_and(|(h, _)| *h < oldest) {
                tally.hourly.pop_first();
            }
        }
    }

    /// Each source as the console shows it, judged against the newest
    /// event of any source (the observed clock) and the wall clock `now`.
    pub fn report(&self, now: Timestamp) -> Vec<SourceView> {
        let Some(clock) = self.sources.values().flat_map(|s| s.values()).map(|t| t.last).max() else {
            return Vec::new();
        };
        let mut out: Vec<SourceView> = self
            .sources
            .iter()
            .flat_map(|(format, systems)| systems.iter().map(move |(system, t)| (format, system, t)))
            .map(|(format, system, t)| {
                // Windows in whole hours: `from..to` hour indices.
                let in_hours = |from: i64, to: i64| -> u64 {
                    if from >= to {
                        return 0;
                    }
                    t.hourly.range(from..to).map(|(_, n)| n).sum()
                };
                let (now_h, last_h, first_h) = (clock.div_euclid(HOUR), t.last.div_euclid(HOUR), t.first.div_euclid(HOUR));
                // The last day: the 24 hours up to and with the newest one.
                let day_h = now_h - 23;
                let last_day = in_hours(day_h, now_h + 1);
                // Whole days of history before the last one (at most six).
                let days_before = ((day_h - first_h) / 24).clamp(0, 6);
                let daily_average =
                    (days_before > 0).then(|| in_hours(day_h - days_before * 24, day_h) as f64 / days_before as f64);
                let behind = clock - t.last;
                // What the same hours held on the days before: sources follow
                // the working day, so a quiet night is not a silent source.
                let expected = if days_before > 0 {
                    (1..=days_before).map(|d| in_hours(last_h + 1 - d * 24, now_h + 1 - d * 24)).sum::<u64>() as f64
                        / days_before as f64
                } else {
                    let week = in_hours(now_h - 7 * 24, now_h + 1).max(1);
                    let span = (clock - t.first.max(clock - 7 * DAY)).max(HOUR);
                    behind as f64 / (span as f64 / week as f64)
                };
                let idle = t.delivered.map(|d| now.unix_nanos() - d.unix_nanos());
                let (state, why) = if behind > HOUR && expected >= EXPECTED_EVENTS {
                    (
                        SourceState::Silent,
                        format!(
                            "no event for {} before the newest of any source, where the same hours usually hold {expected:.0}",
                            span_words(behind)
                        ),
                    )
                } else if idle.is_some_and(|i| i > IDLE) {
                    (
                        SourceState::Silent,
                        format!("nothing delivered for {}", span_words(idle.unwrap_or_default())),
                    )
                } else if let Some(avg) = daily_average.filter(|a| *a >= MEASURABLE_DAY && (last_day as f64) < THIN * a)
                {
                    (
                        SourceState::Degraded,
                        format!("{last_day} events in the last day against {avg:.0} on a usual day"),
                    )
                } else {
                    (SourceState::Healthy, String::new())
                };
                SourceView {
                    source: format!("{format} · {system}"),
                    last_event: Timestamp::from_unix_nanos(t.last),
                    behind_seconds: behind / 1_000_000_000,
                    delivered: t.delivered,
                    last_day,
                    daily_average,
                    total: t.total,
                    state,
                    why,
                }
            })
            .collect();
        // The ones needing attention first.
        out.sort_by(|a, b| a.state.cmp(&b.state).then_with(|| a.source.cmp(&b.source)));
        out
    }
}

/// `3 h 20 min`, `2 days 4 h`, `45 s`.
fn span_words(nanos: i64) -> String {
    let s = nanos / 1_000_000_000;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(format: &str, system: &str, hours: impl Iterator<Item = (i64, u64)>) -> SourceVolume {
        let hourly: Vec<(Timestamp, u64)> = hours.map(|(h, n)| (Timestamp::from_unix_nanos(h * HOUR), n)).collect();
        SourceVolume {
            format: format.into(),
            system: system.into(),
            total: hourly.iter().map(|(_, n)| n).sum(),
            first: hourly.first().unwrap().0,
            last: Timestamp::from_unix_nanos(hourly.last().unwrap().0.unix_nanos() + HOUR - 1),
            hourly,
        }
    }

    const START: i64 = 490_000; // an hour index

    #[test]
    fn a_steady_source_is_healthy_a_stopped_one_silent_a_thinned_one_degraded() {
        let week = 7 * 24;
        let steady = volume("cloudtrail", "aws", (START..START + week).map(|h| (h, 100)));
        // Stopped two days before the others' newest event.
        let stopped = volume("okta", "okta", (START..START + week - 48).map(|h| (h, 10)));
        // The last day at a tenth of its usual volume.
        let thinned = volume(
            "k8s-audit",
            "kubernetes",
            (START..START + week).map(|h| (h, if h >= START + week - 24 { 5 } else { 50 })),
        );
        let c = Coverage::from_store(vec![steady, stopped, thinned]);
        let report = c.report(Timestamp::now());
        let state = |name: &str| report.iter().find(|s| s.source.starts_with(name)).unwrap();
        assert_eq!(state("cloudtrail").state, SourceState::Healthy);
        assert_eq!(state("cloudtrail").last_day, 2400);
        assert_eq!(state("cloudtrail").daily_average, Some(2400.0));
        let okta = state("okta");
        assert_eq!(okta.state, SourceState::Silent, "{}", okta.why);
        assert_eq!(okta.behind_seconds, 48 * 3600);
        assert!(okta.why.contains("2 days") && okta.why.contains("usually hold 400"), "{}", okta.why);
        let k8s = state("k8s-audit");
        assert_eq!(k8s.state, SourceState::Degraded, "{}", k8s.why);
        assert!(k8s.why.contains("120 events in the last day against 1200"), "{}", k8s.why);
        assert_eq!(report[0].state, SourceState::Silent, "the ones needing attention first");
    }

    #[test]
    fn a_source_quiet_at_night_as_every_night_is_not_silent() {
        // Busy from 08:00 to 18:00 each day; the others run round the clock.
        let office =
            volume("okta", "okta", (START..START + 7 * 24).filter(|h| (8..18).contains(&(h % 24))).map(|h| (h, 20)));
        let busy = volume("cloudtrail", "aws", (START..START + 7 * 24).map(|h| (h, 100)));
        let report = Coverage::from_store(vec![office, busy]).report(Timestamp::now());
        assert!(report.iter().all(|s| s.state == SourceState::Healthy), "{:?}", report);
    }

    #[test]
    fn a_sparse_source_is_not_silent_within_its_usual_gaps() {
        // One event a day; the newest event of any source is twelve hours later.
        let sparse = volume("okta", "okta", (0..7).map(|d| (START + d * 24, 1)));
        let busy = volume("cloudtrail", "aws", (START..START + 6 * 24 + 12).map(|h| (h, 100)));
        let report = Coverage::from_store(vec![sparse, busy]).report(Timestamp::now());
        assert!(report.iter().all(|s| s.state == SourceState::Healthy), "{:?}", report);
    }

    #[test]
    fn events_delivered_live_are_counted_and_stamped() {
        let mut c = Coverage::default();
        let at = Timestamp::from_unix_nanos(START * HOUR);
        let now = Timestamp::now();
        c.count([("otlp", "code-agent", at), ("otlp", "code-agent", at)], now);
        let r = c.report(now);
        assert_eq!((r[0].total, r[0].last_day, r[0].delivered), (2, 2, Some(now)));
        assert_eq!(r[0].source, "otlp · code-agent");
    }
}
