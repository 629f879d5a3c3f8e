//! The adapter contract, content sniffing, and the one registry of formats.

use bytes::Bytes;
use serde_json::{Map, Value};
use tenet_model::Event;

use crate::framing::{self, Record, RecordError};
use crate::{formats, json};

/// One telemetry format: how to recognise it and how to read it.
///
/// Adding a format is one module under `formats/` implementing this trait
/// and one line in [`FORMATS`].
pub trait Format: Send + Sync {
    /// The name `--format` takes and events record as their source format.
    fn name(&self) -> &'static str;

    /// Whether a sample of the input is this format.
    fn detect(&self, sample: &Sample) -> bool;

    /// Members of a top-level object that hold this format's records
    /// (`Records` for CloudTrail delivery files, `items` for a Kubernetes
    /// EventList).
    fn wrappers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads `records`, framed out of `data` (their bytes are slices of it),
    /// emitting an event or a located error for each. Never panics on any
    /// input; a bad record never stops the rest. Events' raw records are
    /// slices of `data`, not copies.
    fn read_records(&self, data: &Bytes, records: &[Record<'_>], emit: &mut dyn FnMut(Result<Event, RecordError>));

    /// Reads every record in `data`: frames it, reports what could not be
    /// framed, reads the rest.
    fn read(&self, data: &Bytes, emit: &mut dyn FnMut(Result<Event, RecordError>)) {
        let framed = framing::frame(data, self.wrappers());
        for e in framed.errors {
            emit(Err(e));
        }
        self.read_records(data, &framed.records, emit);
    }

    /// Whether each record can be read without the others, so that a long
    /// line-delimited input may be read a window of lines at a time. Not so
    /// when a record's meaning comes from others in the same input.
    fn windowed(&self) -> bool {
        true
    }
}

/// Every format Tenet reads, in detection order (most specific first).
pub static FORMATS: &[&dyn Format] = &[
    &formats::cloudtrail::CloudTrail,
    &formats::otlp::Otlp,
    &formats::k8s_audit::K8sAudit,
    &formats::okta::Okta,
    &formats::ocsf::Ocsf,
];

pub fn by_name(name: &str) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|f| f.name() == name)
}

pub fn names() -> Vec<&'static str> {
    FORMATS.iter().map(|f| f.name()).collect()
}

/// What detection looks at: the top-level keys and the first few records
/// that parse, taken from a bounded prefix of the input.
pub struct Sample {
    pub top_keys: Vec<String>,
    pub records: Vec<Map<String, Value>>,
}

/// Wrapper members any format may put its records under; sampling looks
/// inside them so detection sees records, not envelopes.
const SAMPLE_WRAPPERS: &[&str] = &["Records", "items"];
const SAMPLE_PREFIX: usize = 256 * 1024;
const SAMPLE_RECORDS: usize = 8;

impl Sample {
    pub fn of(data: &[u8]) -> Sample {
        let prefix = &data[..data.len().min(SAMPLE_PREFIX)];
        let framed = framing::frame(prefix, SAMPLE_WRAPPERS);
        let records = framed
            .records
            .iter()
            .filter_map(|r| serde_json::from_slice::<Map<String, Value>>(r.bytes).ok())
            .take(SAMPLE_RECORDS)
            .collect();
        Sample { top_keys: framed.top_keys, records }
    }

    pub fn has_top_key(&self, key: &str) -> bool {
        self.top_keys.iter().any(|k| k == key)
    }

    /// True when any sampled record satisfies `pred`.
    pub fn any_record(&self, pred: impl Fn(&Map<String, Value>) -> bool) -> bool {
        self.records.iter().any(pred)
    }
}

/// The format of `data`, by content: what an envelope names (`Records`,
/// `resourceSpans`), else a vote of the first eight records
/// some format recognises, each judged alone; records no format recognises
/// (garbage, NUL padding, a cut line) or over the size limit are passed
/// over, not allowed to decide. The first 256 KiB usually
/// settle it; only when they hold no recognisable record is the whole input
/// looked through, so a huge or broken leading record cannot hide the good
/// ones after it. `None` only when no record at all is recognisable.
pub fn detect(data: &[u8]) -> Option<&'static dyn Format> {
    let prefix = &data[..data.len().min(SAMPLE_PREFIX)];
    vote(prefix).or_else(|| if prefix.len() < data.len() { vote(data) } else { None })
}

fn vote(data: &[u8]) -> Option<&'static dyn Format> {
    let framed = framing::frame(data, SAMPLE_WRAPPERS);
    let envelope = Sample { top_keys: framed.top_keys, records: Vec::new() };
    if let Some(f) = FORMATS.iter().copied().find(|f| f.detect(&envelope)) {
        return Some(f);
    }
    let mut votes = vec![0usize; FORMATS.len()];
    let mut counted = 0;
    for r in &framed.records {
        if r.bytes.len() > json::MAX_RECORD_BYTES {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Map<String, Value>>(r.bytes) else { continue };
        let one = Sample { top_keys: Vec::new(), records: vec![record] };
        if let Some(i) = FORMATS.iter().position(|f| f.detect(&one)) {
            votes[i] += 1;
            counted += 1;
            if counted == SAMPLE_RECORDS {
                break;
            }
        }
    }
    // Most votes; a tie goes to the more specific format (earlier in FORMATS).
    let best = votes.iter().copied().max().filter(|&v| v > 0)?;
    votes.iter().position(|&v| v == best).map(|i| FORMATS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(id: &str, user_agent: &str) -> String {
        format!(
            r#"{{"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"{id}","userAgent":"{user_agent}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}}}"#
        )
    }

    fn okta(id: &str) -> String {
        format!(
            r#"{{"uuid":"{id}","published":"2026-01-01T00:00:00Z","eventType":"user.session.start","actor":{{"id":"1","type":"User"}}}}"#
        )
    }

    fn name(data: &[u8]) -> Option<&'static str> {
        detect(data).map(|f| f.name())
    }

    #[test]
    fn a_first_record_larger_than_the_sample_does_not_hide_the_format() {
        let huge = ct("a", &"x".repeat(270_000));
        let ndjson = format!("{huge}\n{}\n{}\n", ct("b", "aws-cli"), ct("c", "aws-cli"));
        assert_eq!(name(ndjson.as_bytes()), Some("cloudtrail"));
        let pretty_array = format!("[\n  {huge},\n  {}\n]\n", ct("b", "aws-cli"));
        assert_eq!(name(pretty_array.as_bytes()), Some("cloudtrail"));
    }

    #[test]
    fn a_record_over_the_size_limit_is_passed_over_not_parsed() {
        let data = format!("{}\n{}\n{}\n", ct("a", &"x".repeat(json::MAX_RECORD_BYTES + 1)), okta("b"), okta("c"));
        assert_eq!(name(data.as_bytes()), Some("okta"));
    }

    #[test]
    fn garbage_lines_in_front_of_records_do_not_hide_the_format() {
        let mut data = vec![0u8; 4096];
        data.extend_from_slice(b"\n\0\0\0\n{\"eventTime\":\"2024-\n");
        data.extend_from_slice(format!("{}\n{}\n", ct("a", "aws-cli"), ct("b", "aws-cli")).as_bytes());
        assert_eq!(name(&data), Some("cloudtrail"));
    }

    #[test]
    fn garbage_past_the_sample_does_not_hide_the_records_after_it() {
        let mut data = Vec::new();
        for _ in 0..40_000 {
            data.extend_from_slice(b"\0\0\0\0\0\0\0\0\0\n");
        }
        data.extend_from_slice(format!("{}\n{}\n", okta("a"), okta("b")).as_bytes());
        assert!(data.len() > SAMPLE_PREFIX);
        assert_eq!(name(&data), Some("okta"));
    }

    #[test]
    fn input_with_no_recognisable_record_is_not_detected() {
        assert_eq!(name(b"\0\0\0\n{\"a\":1}\n{\"b\":2}\n"), None);
        assert_eq!(name(b"id\tname\n1\tx\n"), None);
        assert_eq!(name(b""), None);
    }

    #[test]
    fn the_records_most_of_a_file_is_made_of_decide_its_format() {
        let mostly_okta = format!("{}\n{}\n{}\n{}\n", ct("a", "x"), okta("b"), okta("c"), okta("d"));
        assert_eq!(name(mostly_okta.as_bytes()), Some("okta"));
        // A tie goes to the more specific format, first in FORMATS.
        let tie = format!("{}\n{}\n", okta("b"), ct("a", "x"));
        assert_eq!(name(tie.as_bytes()), Some("cloudtrail"));
    }
}
