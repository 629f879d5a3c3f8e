//! Instants on one clock: nanoseconds since the Unix epoch, UTC.
//!
//! Sources disagree on precision (CloudTrail seconds, Kubernetes microseconds,
//! OTLP nanoseconds); one integer keeps ordering and storage trivial while
//! losing nothing any of them carries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC with nanosecond precision. Serialises as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an RFC 3339 time (expected e.g. 2026-11-27T10:00:00Z)")]
pub struct TimeParseError {
    input: String,
}

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    pub const fn from_unix_seconds(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    pub fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Parses RFC 3339 / ISO 8601 with an offset (`Z` or `±hh:mm`); a missing
    /// offset is read as UTC, as Kubernetes and several exports write it.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeParseError> {
        if let Some(t) = parse_fast_utc(s.as_bytes()) {
            return Ok(t);
        }
        let err = || TimeParseError { input: truncate_for_error(s) };
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Self::from_chrono(dt.with_timezone(&Utc)).ok_or_else(err);
        }
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .and_then(|n| Self::from_chrono(Utc.from_utc_datetime(&n)))
            .ok_or_else(err)
    }

    pub fn from_chrono(dt: DateTime<Utc>) -> Option<Self> {
        dt.timestamp_nanos_opt().map(Timestamp)
    }

    pub fn to_chrono(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    pub fn now() -> Self {
        Self::from_chrono(Utc::now()).unwrap_or(Timestamp::MAX)
    }

    pub fn saturating_add_seconds(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1_000_000_000)))
    }
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.fraction]Z` without chrono's
/// general parser: ingest calls this once per event.
fn parse_fast_utc(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, min, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let frac_end = b.len() - 1;
    let mut nanos = 0i64;
    if frac_end > 19 {
        if b[19] != b'.' || frac_end == 20 {
            return None;
        }
        let frac = &b[20..frac_end];
        if frac.len() > 9 {
            return None;
        }
        nanos = digits(20..frac_end)? * 10i64.pow(9 - frac.len() as u32);
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec;
    Some(Timestamp(secs.checked_mul(1_000_000_000)?.checked_add(nanos)?))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn truncate_for_error(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if self.0 % 1_000_000_000 == 0 {
            SecondsFormat::Secs
        } else if self.0 % 1_000_000 == 0 {
            SecondsFormat::Millis
        } else if self.0 % 1_000 == 0 {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Nanos
        };
        f.write_str(&self.to_chrono().to_rfc3339_opts(format, true))
    }
}

impl FromStr for Timestamp {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_chrono_on_every_precision() {
        for s in [
            "2024-08-01T13:29:57Z",
            "2018-10-26T13:42:46.764713Z",
            "2020-09-14T00:44:23.000Z",
            "2000-02-29T23:59:59.123456789Z",
            "1969-12-31T23:59:59Z",
        ] {
            let fast = parse_fast_utc(s.as_bytes()).expect(s);
            let slow = Timestamp::from_chrono(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)).unwrap();
            assert_eq!(fast, slow, "{s}");
        }
    }

    #[test]
    fn offsets_and_missing_zone_are_accepted() {
        let a = Timestamp::parse_rfc3339("2024-08-01T15:29:57+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2024-08-01T13:29:57Z").unwrap();
        let c = Timestamp::parse_rfc3339("2024-08-01T13:29:57").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
    }

    #[test]
    fn impossible_dates_are_errors_not_wraparounds() {
        for s in ["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "yesterday", ""] {
            assert!(Timestamp::parse_rfc3339(s).is_err(), "{s}");
        }
    }

    #[test]
    fn display_keeps_only_the_precision_present() {
        assert_eq!(Timestamp::parse_rfc3339("2024-08-01T13:29:57Z").unwrap().to_string(), "2024-08-01T13:29:57Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2018-10-26T13:42:46.764713Z").unwrap().to_string(),
            "2018-10-26T13:42:46.764713Z"
        );
    }
}
