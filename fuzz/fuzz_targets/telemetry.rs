//! Telemetry: content detection, framing, and every format's parse and
//! normalise, on the same bytes.
//!
//! What the product promises (ARCHITECTURE.md, "Bad input never costs good
//! input"): no adapter panics on any bytes; every record comes out either
//! as a normalised event or as a `RecordError` with its location, so
//! records in == normalised + rejected; an event's raw record is a slice
//! of the input; and a normalised event survives the store's encoding
//! (JSON) unchanged.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tenet_model::Event;
use tenet_sources::framing::{self, Framed};
use tenet_sources::{FORMATS, Format, RecordError, Sample, format};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let lines = framing::line_of(data, data.len());

    check_detection(data);

    for &f in FORMATS {
        check(f, &bytes, lines);
    }
});

/// Detection's contract (`format::detect`): an envelope that a format names
/// decides; otherwise the records vote, each judged alone, so the winner
/// recognises at least one record, and nothing is detected only when no
/// format recognises any record. (Inputs here are shorter than the sampled
/// prefix and than the record size limit, so the whole input is the sample.)
fn check_detection(data: &[u8]) {
    let detected = format::detect(data).map(|f| f.name());
    let framed = framing::frame(data, &["Records", "items"]);
    let envelope = Sample { top_keys: framed.top_keys.clone(), records: Vec::new() };
    if let Some(f) = FORMATS.iter().find(|f| f.detect(&envelope)) {
        assert_eq!(detected, Some(f.name()), "an envelope naming {} decides detection", f.name());
        return;
    }
    let records: Vec<Sample> = framed
        .records
        .iter()
        .filter_map(|r| serde_json::from_slice(r.bytes).ok())
        .map(|record| Sample { top_keys: Vec::new(), records: vec![record] })
        .collect();
    let recognises = |name: &str| {
        let f = FORMATS.iter().find(|f| f.name() == name).expect("a registered format");
        records.iter().any(|one| f.detect(one))
    };
    match detected {
        Some(name) => assert!(recognises(name), "{name} detected though it recognises no record alone"),
        None => {
            for f in FORMATS {
                assert!(!recognises(f.name()), "nothing detected though {} recognises a record", f.name());
            }
        }
    }
}

fn check(f: &dyn Format, data: &Bytes, lines: usize) {
    let (mut events, mut errors) = (Vec::<Event>::new(), Vec::<RecordError>::new());
    f.read(data, &mut |r| match r {
        Ok(e) => events.push(e),
        Err(e) => errors.push(e),
    });

    for e in &errors {
        assert!(!e.reason.is_empty(), "{}: a rejection without a reason at {}", f.name(), e.location);
        assert!(
            (1..=lines).contains(&e.location.line),
            "{}: rejection at line {} of a {lines}-line input: {}",
            f.name(),
            e.location.line,
            e.reason
        );
    }
    for e in &events {
        check_event(f, e, data);
    }

    // Records in == normalised + rejected. The four one-record-per-document
    // formats frame with the wrapper members their `read` names; an OTLP
    // document holds many spans, so there each framed document must come
    // out as at least one event or rejection unless it holds no span at all.
    let out = events.len() + errors.len();
    match wrappers(f.name()) {
        Some(keys) => {
            let framed = framing::frame(data, keys);
            let records = framed.records.len() + framed.errors.len();
            assert_eq!(
                out,
                records,
                "{}: {records} records in, {} normalised + {} rejected out",
                f.name(),
                events.len(),
                errors.len()
            );
        }
        None => {
            let framed = framing::frame(data, &[]);
            let least = framed.errors.len() + otlp_documents_with_spans(&framed);
            assert!(
                out >= least,
                "{}: {least} documents with spans (or broken) in, only {} normalised + {} rejected out",
                f.name(),
                events.len(),
                errors.len()
            );
        }
    }
}

/// The wrapper members each one-record-per-document format frames with
/// (see each format's `read`); `None` for OTLP, whose documents hold spans.
fn wrappers(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "cloudtrail" => Some(&["Records"]),
        "k8s-audit" => Some(&["items"]),
        "okta" | "ocsf" => Some(&[]),
        "otlp" => None,
        other => panic!("a format the harness does not know: {other}; add it to `wrappers`"),
    }
}

/// Framed OTLP documents that must yield something: every one that is not a
/// well-formed request, and every request naming at least one span.
fn otlp_documents_with_spans(framed: &Framed<'_>) -> usize {
    use serde_json::Value;
    let has_span = |doc: &Value| {
        let Some(rs) = doc.get("resourceSpans").and_then(Value::as_array) else { return true };
        rs.iter().any(|r| {
            let Some(r) = r.as_object() else { return true };
            ["scopeSpans", "instrumentationLibrarySpans"].iter().any(|k| match r.get(*k) {
                None | Some(Value::Null) => false,
                Some(Value::Array(scopes)) => scopes.iter().any(|s| match s.get("spans") {
                    None | Some(Value::Null) => !s.is_object(),
                    Some(Value::Array(spans)) => !spans.is_empty(),
                    Some(_) => true,
                }),
                Some(_) => true,
            })
        })
    };
    framed
        .records
        .iter()
        .filter(|r| serde_json::from_slice::<Value>(r.bytes).map_or(true, |doc| has_span(&doc)))
        .count()
}

fn check_event(f: &dyn Format, e: &Event, data: &Bytes) {
    assert_eq!(e.source.format, f.name(), "an event names the format that read it");
    assert!(!e.id.as_str().is_empty(), "{}: an event without an id", f.name());
    // The raw record is a slice of the input, not a copy (zero-copy promise).
    let raw = e.raw.as_bytes();
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
    assert!(
        raw.is_empty() || (raw.as_ptr() as usize >= start && raw.as_ptr() as usize + raw.len() <= end),
        "{}: the raw record is not a slice of the input",
        f.name()
    );
    // Stored as the store stores it (tenet-store's block encoding is the
    // event's JSON beside its raw record) and read back the same.
    let doc = serde_json::to_vec(e).expect("a normalised event serialises");
    let mut back: Event = serde_json::from_slice(&doc).unwrap_or_else(|err| {
        panic!("{}: a stored event does not read back: {err}\n{}", f.name(), String::from_utf8_lossy(&doc))
    });
    back.raw = e.raw.clone();
    assert_eq!(&back, e, "{}: a stored event reads back different", f.name());
    // OCSF export takes any normalised event.
    let _ = tenet_sources::to_ocsf(e);
}
