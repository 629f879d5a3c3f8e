//! Typed parsing of one record, with errors that name the field.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::framing::{Location, Record, RecordError};

/// No single record in any supported format is legitimately this large
/// (CloudTrail caps events at 256 KB); anything bigger is refused before it
/// is parsed and stored, so one absurd record cannot balloon memory.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// Deserialises a record into `T`. The fast path is plain `serde_json`; only
/// on failure is the record parsed again to find the path of the bad field,
/// so good records pay nothing for good error messages.
pub fn parse<'a, T: Deserialize<'a>>(data: &[u8], record: &Record<'a>) -> Result<T, RecordError> {
    if record.bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::new(
            record.location(data),
            format!(
                "record is {} bytes, over the {} MiB limit for one record",
                record.bytes.len(),
                MAX_RECORD_BYTES >> 20
            ),
        ));
    }
    let too_deep = match record.max_depth {
        Some(d) => d > MAX_DEPTH,
        None => exceeds_depth(record.bytes, MAX_DEPTH),
    };
    if too_deep {
        return Err(RecordError::new(record.location(data), format!("record nests deeper than {MAX_DEPTH} levels")));
    }
    parse_document(data, record)
}

/// serde_json's own recursion limit, applied to the whole record: fields
/// kept as raw JSON would otherwise carry unbounded nesting into storage
/// and whatever parses them later.
pub const MAX_DEPTH: usize = 128;

/// Whether brackets outside strings nest deeper than `limit`. One pass,
/// no recursion, stops at the first excess.
fn exceeds_depth(b: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while let Some(k) = memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
                    if b[i + k] == b'"' {
                        i += k;
                        break;
                    }
                    i += k + 2;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// Like [`parse`] without the size limit: for envelopes such as an OTLP
/// request whose records (spans) are parsed and limited one by one.
pub fn parse_document<'a, T: Deserialize<'a>>(data: &[u8], record: &Record<'a>) -> Result<T, RecordError> {
    // Validating the record's UTF-8 once, in bulk, spares serde_json doing
    // it string by string (a `&str` is parsed without re-validation); a
    // record that is not UTF-8 takes the byte path for its located error.
    let parsed = match std::str::from_utf8(record.bytes) {
        Ok(text) => serde_json::from_str::<T>(text),
        Err(_) => serde_json::from_slice::<T>(record.bytes),
    };
    parsed.map_err(|first| describe::<T>(data, record, first))
}

/// Like [`parse`] for a value nested inside a record (an OTLP span inside a
/// request), located by its own offset. `bounded`: whether the value is a
/// record (size and depth limits apply) or an envelope of records.
pub fn parse_at<'a, T: Deserialize<'a>>(
    data: &[u8],
    bytes: &'a [u8],
    outer: Location,
    path: &str,
    bounded: bool,
) -> Result<T, RecordError> {
    let offset = bytes.as_ptr() as usize - data.as_ptr() as usize;
    let rec = Record { bytes, offset, index: outer.index, max_depth: None };
    let parsed = if bounded { parse::<T>(data, &rec) } else { parse_document::<T>(data, &rec) };
    parsed.map_err(|mut e| {
        let inner = e.location.path.take();
        e.location = Location { line: e.location.line, index: outer.index, path: outer.path };
        e.location = e.location.with_path(path);
        if let Some(inner) = inner {
            e.location = e.location.with_path(inner);
        }
        e
    })
}

fn describe<'a, T: Deserialize<'a>>(data: &[u8], record: &Record<'a>, first: serde_json::Error) -> RecordError {
    let base = record.location(data);
    let line = base.line + first.line().saturating_sub(1);
    let mut de = serde_json::Deserializer::from_slice(record.bytes);
    let path = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => e.path().to_string(),
        Ok(_) => String::from("."),
    };
    let reason = match first.classify() {
        serde_json::error::Category::Eof => "truncated JSON: the record ends early".to_string(),
        serde_json::error::Category::Syntax => format!("malformed JSON: {}", strip_position(&first)),
        serde_json::error::Category::Data => format!("invalid record: {}", strip_position(&first)),
        serde_json::error::Category::Io => format!("read error: {first}"),
    };
    let mut location = Location { line, index: base.index, path: None };
    if path != "." && !path.is_empty() {
        location.path = Some(path);
    }
    RecordError::new(location, reason)
}

/// serde_json appends "at line L column C" relative to the record; the
/// location already carries the absolute line.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A stable id for a record that carries none: SHA-256 of its canonical
/// JSON (keys sorted, whitespace dropped), so re-ingesting a re-formatted
/// copy of the same record is still a duplicate.
pub fn content_id(prefix: &str, bytes: &[u8]) -> String {
    let canonical = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => {
            let mut out = Vec::with_capacity(bytes.len());
            write_canonical(&v, &mut out);
            out
        }
        Err(_) => bytes.to_vec(),
    };
    let digest = Sha256::digest(&canonical);
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push_str("sha256:");
    for b in &digest[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Error for a field that parsed as JSON but means nothing valid.
/// A field that cannot be normalised: its path in the record, and why.
pub type FieldFailure = (&'static str, String);

/// Reads records that are one event each (every format but OTLP): each
/// parsed as `T` and normalised into an event, or rejected with the path of
/// the field at fault.
pub fn read_each<'r, T: Deserialize<'r>>(
    data: &bytes::Bytes,
    records: &[Record<'r>],
    emit: &mut dyn FnMut(Result<tenet_model::Event, RecordError>),
    normalise: impl Fn(&T, tenet_model::RawRecord) -> Result<tenet_model::Event, FieldFailure>,
) {
    for record in records {
        emit(parse::<T>(data, record).and_then(|t| {
            normalise(&t, tenet_model::RawRecord(data.slice_ref(record.bytes)))
                .map_err(|(f, why)| field_error(data, record, f, why))
        }));
    }
}

pub fn field_error(data: &[u8], record: &Record<'_>, field: &str, reason: impl Into<String>) -> RecordError {
    RecordError::new(record.location(data).with_path(field), reason)
}

/// Sorted keys regardless of how `serde_json::Map` is configured elsewhere in
/// the build (feature unification can turn on `preserve_order`).
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}
