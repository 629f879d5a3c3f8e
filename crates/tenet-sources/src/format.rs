//! The adapter contract, content sniffing, and the one registry of formats.

use bytes::Bytes;
use serde_json::{Map, Value};
use tenet_model::Event;

use crate::formats;
use crate::framing::{self, RecordError};

/// One telemetry format: how to recognise it and how to read it.
///
/// Adding a format is one module under `formats/` implementing this trait
/// and one line in [`FORMATS`].
pub trait Format: Send + Sync {
    /// The name `--format` takes and events record as their source format.
    fn name(&self) -> &'static str;

    /// Whether a sample of the input is this format.
    fn detect(&self, sample: &Sample) -> bool;

    /// Reads every record in `data`, emitting an event or a located error
    /// for each. Never panics on any input; a bad record never stops the rest.
    /// Events' raw records are slices of `data`, not copies.
    fn read(&self, data: &Bytes, emit: &mut dyn FnMut(Result<Event, RecordError>));
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

/// The format of `data`, by content.
pub fn detect(data: &[u8]) -> Option<&'static dyn Format> {
    let sample = Sample::of(data);
    FORMATS.iter().copied().find(|f| f.detect(&sample))
}
