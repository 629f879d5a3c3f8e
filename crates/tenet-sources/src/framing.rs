//! Splitting a buffer into JSON records without trusting it.
//!
//! Telemetry arrives as a top-level array, an object wrapping an array
//! (`{"Records": [...]}`), newline-delimited JSON, concatenated documents, or
//! one document. A parser that reads the whole buffer as one JSON value loses
//! every record when one is broken; this scanner finds record boundaries by
//! counting brackets outside strings (iteratively, so nesting depth cannot
//! overflow the stack) and leaves validation to the typed per-record parse.
//! Where a broken record unbalances the brackets, the scanner resynchronises
//! on the next line indented like the record's own first line. A raw newline
//! inside a string is never valid JSON, so a string cut off by the end of its
//! line ends its record there: a truncated line cannot swallow the lines after
//! it, while newlines between tokens (pretty-printed documents) are ordinary
//! whitespace.

use std::fmt;

use memchr::{memchr, memchr3};
use serde::Serialize;

/// Where a record or a problem sits in its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line in the input.
    pub line: usize,
    /// 0-based index of the record within its array or stream, when there is one.
    pub index: Option<usize>,
    /// A path inside the record (`resourceSpans[0].scopeSpans[1].spans[3]`, `userIdentity.type`).
    pub path: Option<String>,
}

impl Location {
    pub fn line(line: usize) -> Self {
        Location { line, index: None, path: None }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = Some(match self.path.take() {
            Some(outer) if !path.is_empty() => format!("{outer}.{path}"),
            Some(outer) => outer,
            None => path,
        });
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.index {
            write!(f, "record {i}, ")?;
        }
        write!(f, "line {}", self.line)?;
        if let Some(p) = &self.path {
            write!(f, ", at {p}")?;
        }
        Ok(())
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A problem with one record (or with the framing around records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub location: Location,
    pub reason: String,
}

impl RecordError {
    pub fn new(location: Location, reason: impl Into<String>) -> Self {
        RecordError { location, reason: reason.into() }
    }
}

/// One record's bytes and where they start.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub bytes: &'a [u8],
    /// Byte offset of the record in the whole input.
    pub offset: usize,
    /// Index within its array or stream; `None` for a lone document.
    pub index: Option<usize>,
    /// The deepest bracket nesting, when the scanner already measured it
    /// (so the parser need not scan the record again to enforce its limit).
    pub max_depth: Option<usize>,
}

/// Line numbers are computed only when needed (errors), never per record.
pub fn line_of(data: &[u8], offset: usize) -> usize {
    let end = offset.min(data.len());
    memchr::memchr_iter(b'\n', &data[..end]).count() + 1
}

impl Record<'_> {
    pub fn location(&self, data: &[u8]) -> Location {
        Location { line: line_of(data, self.offset), index: self.index, path: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanError {
    /// The input ended inside the value.
    Truncated,
    /// A byte that cannot start or continue a value here.
    Unexpected(usize),
    /// A string still open at the end of its line (the newline's position):
    /// the line was cut off.
    CutString(usize),
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// Index just past the closing quote of the string opening at `start`.
/// JSON strings cannot hold a raw newline (escaped or not), so one ends the
/// string as cut off rather than letting it run into the next line.
fn string_end(b: &[u8], start: usize) -> Result<usize, ScanError> {
    let mut i = start + 1;
    loop {
        match memchr3(b'"', b'\\', b'\n', &b[i.min(b.len())..]) {
            None => return Err(ScanError::Truncated),
            Some(k) => match b[i + k] {
                b'"' => return Ok(i + k + 1),
                b'\n' => return Err(ScanError::CutString(i + k)),
                _ if b.get(i + k + 1) == Some(&b'\n') => return Err(ScanError::CutString(i + k + 1)),
                _ => i += k + 2,
            },
        }
    }
}

/// Index just past the JSON value starting at `start`. Brackets must match
/// (a `]` closing a `{` is where a broken record ends); everything else is
/// left for the real parser to report.
fn value_end(b: &[u8], start: usize) -> Result<usize, ScanError> {
    value_extent(b, start).map(|(end, _)| end)
}

/// [`value_end`] and the value's deepest nesting.
fn value_extent(b: &[u8], start: usize) -> Result<(usize, usize), ScanError> {
    // Open brackets, innermost last; a small inline stack covers real data,
    // the heap only pathological nesting.
    let mut inline = [0u8; 64];
    let mut spill: Vec<u8> = Vec::new();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i)?;
                if depth == 0 {
                    return Ok((i, deepest));
                }
                continue;
            }
            c @ (b'{' | b'[') => {
                if depth < inline.len() {
                    inline[depth] = c;
                } else {
                    spill.push(c);
                }
                depth += 1;
                deepest = deepest.max(depth);
            }
            c @ (b'}' | b']') => {
                if depth == 0 {
                    return Err(ScanError::Unexpected(i));
                }
                depth -= 1;
                let open = if depth < inline.len() { inline[depth] } else { spill.pop().unwrap_or(0) };
                if (open == b'{') != (c == b'}') {
                    return Err(ScanError::Unexpected(i));
                }
                if depth == 0 {
                    return Ok((i + 1, deepest));
                }
            }
            _ if depth == 0 => {
                let mut j = i;
                while j < b.len() && !matches!(b[j], b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t') {
                    j += 1;
                }
                // A delimiter where a value should start is no value at all;
                // returning an empty one would let callers loop in place.
                return if j > i { Ok((j, 0)) } else { Err(ScanError::Unexpected(i)) };
            }
            _ => {}
        }
        i += 1;
    }
    Err(ScanError::Truncated)
}

/// The next place after `start` where a sibling record plausibly begins: a
/// line indented exactly like the record's first line and opening an object.
fn resync_point(b: &[u8], start: usize) -> Option<usize> {
    resync_point_from(b, start, start + 1)
}

/// The blanks in front of `start` on its line; `None` when something else
/// shares the line (`[{...`).
fn indent_of(b: &[u8], start: usize) -> Option<&[u8]> {
    let line_start = b[..start].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
    let indent = &b[line_start..start];
    indent.iter().all(|c| matches!(c, b' ' | b'\t')).then_some(indent)
}

/// [`resync_point`], looking only at lines after `from`.
fn resync_point_from(b: &[u8], start: usize, from: usize) -> Option<usize> {
    let indent = indent_of(b, start)?;
    let mut i = from;
    while let Some(k) = memchr(b'\n', &b[i.min(b.len())..]) {
        let ls = i + k + 1;
        let candidate = ls + indent.len();
        if b.len() > candidate && &b[ls..candidate] == indent && b[candidate] == b'{' {
            return Some(candidate);
        }
        i = ls;
    }
    None
}

/// Where reading resumes after the record starting at `start` failed with
/// `e`. A string cut by a newline puts the next record on a later line:
/// the first one indented like this record, or, when the record shares its
/// line with what came before (`[{...`), the first line opening an object.
fn resume_after(b: &[u8], start: usize, e: ScanError) -> Option<usize> {
    match e {
        ScanError::CutString(nl) if indent_of(b, start).is_some() => resync_point_from(b, start, nl),
        ScanError::CutString(nl) => next_object_line(b, nl),
        _ => resync_point(b, start),
    }
}

/// The first line after the newline at `nl` whose first non-blank byte opens an object.
fn next_object_line(b: &[u8], nl: usize) -> Option<usize> {
    let mut pos = nl + 1;
    while pos < b.len() {
        let s = pos + b[pos..].iter().position(|c| !matches!(c, b' ' | b'\t' | b'\r')).unwrap_or(b.len() - pos);
        match b.get(s) {
            Some(b'{') => return Some(s),
            Some(b'\n') => pos = s + 1,
            Some(_) => pos = s + memchr(b'\n', &b[s..])? + 1,
            None => return None,
        }
    }
    None
}

/// The records of an input, in order, with a `RecordError` wherever a record
/// could not even be delimited.
pub struct Framed<'a> {
    pub records: Vec<Record<'a>>,
    pub errors: Vec<RecordError>,
    /// Top-level object keys, when the input is one object (wrapper or record).
    pub top_keys: Vec<String>,
    /// Whether the input was read as one record per line (NDJSON), so that
    /// any run of whole lines of it frames the same way.
    pub lines: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Frames `data` into records. `wrapper_keys` name the members of a
/// top-level object that hold the records (`Records` for CloudTrail
/// delivery files, `items` for a Kubernetes EventList); an object without
/// such a member is itself one record.
pub fn frame<'a>(data: &'a [u8], wrapper_keys: &[&str]) -> Framed<'a> {
    let mut out = Framed { records: Vec::new(), errors: Vec::new(), top_keys: Vec::new(), lines: false };
    let start = if data.starts_with(BOM) { BOM.len() } else { 0 };
    let i = skip_ws(data, start);
    if i >= data.len() {
        out.errors.push(RecordError::new(Location::line(1), "empty input: no JSON records"));
        return out;
    }
    match data[i] {
        b'[' => {
            // A line that happens to start with `[` in front of NDJSON is not
            // an array: when the next line is a whole record and the input is
            // not one well-formed array, read lines.
            let nl = memchr(b'\n', &data[i..]).map(|k| i + k);
            let whole_array = || value_end(data, i).is_ok_and(|e| skip_ws(data, e) == data.len());
            if nl.is_some_and(|nl| looks_like_json_lines(data, nl) || json_lines_resume_after(data, nl))
                && !whole_array()
            {
                split_lines(data, i, &mut out)
            } else {
                split_array(data, i, true, &mut out)
            }
        }
        b'{' => frame_object_or_stream(data, i, wrapper_keys, &mut out),
        // Bad lines in front of NDJSON (a partial line, NUL padding) cost
        // those lines only.
        _ if memchr(b'\n', &data[i..])
            .is_some_and(|k| looks_like_json_lines(data, i + k) || json_lines_resume_after(data, i + k)) =>
        {
            split_lines(data, i, &mut out)
        }
        c => out.errors.push(RecordError::new(
            Location::line(line_of(data, i)),
            format!("not JSON: expected `{{` or `[` but found {}", describe_byte(c)),
        )),
    }
    out
}

fn describe_byte(c: u8) -> String {
    if c.is_ascii_graphic() { format!("`{}`", c as char) } else { format!("byte 0x{c:02x}") }
}

fn frame_object_or_stream<'a>(data: &'a [u8], start: usize, wrapper_keys: &[&str], out: &mut Framed<'a>) {
    // A wrapper object is split member by member so that a truncated
    // delivery file still yields the records before the cut.
    if let Some(array_start) = wrapper_array(data, start, wrapper_keys, &mut out.top_keys) {
        split_array(data, array_start, false, out);
        return;
    }
    match value_extent(data, start) {
        Ok((end, depth)) => {
            let next = skip_ws(data, end);
            if next >= data.len() {
                out.records.push(Record {
                    bytes: &data[start..end],
                    offset: start,
                    index: None,
                    max_depth: Some(depth),
                });
            } else if memchr(b'\n', &data[start..end]).is_none() {
                split_lines(data, start, out);
            } else {
                split_stream(data, start, out);
            }
        }
        Err(e) => {
            // A truncated or broken first document: if more lines follow it is
            // NDJSON with a bad first line; otherwise one broken document.
            let first_line_end = memchr(b'\n', &data[start..]).map(|k| start + k);
            match first_line_end {
                Some(nl)
                    if skip_ws(data, nl) < data.len()
                        && (looks_like_json_lines(data, nl) || json_lines_resume_after(data, nl)) =>
                {
                    split_lines(data, start, out)
                }
                // Concatenated documents after a broken first one.
                _ if resume_after(data, start, e).is_some() => split_stream(data, start, out),
                _ => out.errors.push(scan_error(data, start, None, e)),
            }
        }
    }
}

/// Whether the line after `nl` is itself a complete object: the signature of NDJSON.
fn looks_like_json_lines(data: &[u8], nl: usize) -> bool {
    let s = skip_ws(data, nl);
    if s >= data.len() || data[s] != b'{' {
        return false;
    }
    let line_end = memchr(b'\n', &data[s..]).map_or(data.len(), |k| s + k);
    matches!(value_end(&data[..line_end], s), Ok(e) if skip_ws(&data[..line_end], e) == line_end)
}

/// Whether, somewhere after `nl`, two lines in a row (blank lines aside) are
/// each a complete object: NDJSON resuming after lines that are not records.
/// One such line alone is not enough: a README quoting an example record is
/// not telemetry, and no valid pretty-printed document has two comma-less
/// one-line objects in a row.
fn json_lines_resume_after(data: &[u8], nl: usize) -> bool {
    let mut previous = false;
    let mut pos = nl + 1;
    while pos < data.len() {
        let end = memchr(b'\n', &data[pos..]).map_or(data.len(), |k| pos + k);
        let line = &data[pos..end];
        let s = skip_ws(line, 0);
        if s < line.len() {
            let record = line[s] == b'{' && matches!(value_end(line, s), Ok(e) if skip_ws(line, e) == line.len());
            if record && previous {
                return true;
            }
            previous = record;
        }
        pos = end + 1;
    }
    false
}

/// Walks a top-level object's members; returns the position of the `[` of the
/// first wrapper member, recording the keys seen.
fn wrapper_array(data: &[u8], start: usize, wrapper_keys: &[&str], keys: &mut Vec<String>) -> Option<usize> {
    let mut i = skip_ws(data, start + 1);
    loop {
        if i >= data.len() || data[i] != b'"' {
            return None;
        }
        let key_end = string_end(data, i).ok()?;
        let key: String = serde_json::from_slice(&data[i..key_end]).ok()?;
        i = skip_ws(data, key_end);
        if data.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(data, i + 1);
        let is_wrapper = wrapper_keys.contains(&key.as_str()) && data.get(i) == Some(&b'[');
        keys.push(key);
        if is_wrapper {
            return Some(i);
        }
        i = skip_ws(data, value_end(data, i).ok()?);
        match data.get(i) {
            Some(b',') => i = skip_ws(data, i + 1),
            _ => return None,
        }
    }
}

fn scan_error(data: &[u8], at: usize, index: Option<usize>, e: ScanError) -> RecordError {
    match e {
        ScanError::Truncated => RecordError::new(
            Location { line: line_of(data, at), index, path: None },
            "truncated JSON: the input ends inside this record",
        ),
        ScanError::Unexpected(pos) => RecordError::new(
            Location { line: line_of(data, pos), index, path: None },
            format!("malformed JSON: unexpected {}", describe_byte(data[pos])),
        ),
        ScanError::CutString(nl) => RecordError::new(
            Location { line: line_of(data, nl), index, path: None },
            "truncated JSON: a string runs into the end of the line (the record is cut off there)",
        ),
    }
}

/// `top_level`: whether the array is the whole document (then anything after
/// it is an error) or a member of a wrapper object (then the object goes on).
fn split_array<'a>(data: &'a [u8], open: usize, top_level: bool, out: &mut Framed<'a>) {
    let mut i = skip_ws(data, open + 1);
    let mut index = 0usize;
    loop {
        if i >= data.len() {
            out.errors.push(RecordError::new(
                Location { line: line_of(data, data.len()), index: Some(index), path: None },
                "truncated JSON: the array is not closed",
            ));
            return;
        }
        if data[i] == b']' {
            if top_level {
                trailing(data, i + 1, out);
            }
            return;
        }
        let (end, depth, ok) = match value_extent(data, i) {
            Ok((end, depth)) => (end, Some(depth), true),
            Err(e) => match resume_after(data, i, e) {
                Some(next) => {
                    out.errors.push(scan_error(data, i, Some(index), e));
                    (next, None, false)
                }
                None => {
                    out.errors.push(scan_error(data, i, Some(index), e));
                    return;
                }
            },
        };
        if ok {
            let after = skip_ws(data, end);
            let delimited = matches!(data.get(after), Some(b',' | b']') | None);
            if delimited {
                out.records.push(Record { bytes: &data[i..end], offset: i, index: Some(index), max_depth: depth });
                i = after;
            } else {
                // Garbage between records, such as a missing comma: reject this
                // element whole and resume at the next record-shaped line.
                let resume = resync_point(data, i);
                let cut = resume.unwrap_or(data.len());
                out.records.push(Record { bytes: &data[i..cut], offset: i, index: Some(index), max_depth: None });
                match resume {
                    Some(next) => {
                        i = next;
                        index += 1;
                        continue;
                    }
                    None => return,
                }
            }
            match data.get(i) {
                Some(b',') => i = skip_ws(data, i + 1),
                Some(b']') => {
                    if top_level {
                        trailing(data, i + 1, out);
                    }
                    return;
                }
                _ => {}
            }
        } else {
            i = end;
        }
        index += 1;
    }
}

fn trailing(data: &[u8], from: usize, out: &mut Framed<'_>) {
    let j = skip_ws(data, from);
    if j < data.len() {
        out.errors.push(RecordError::new(
            Location::line(line_of(data, j)),
            "unexpected data after the end of the JSON document",
        ));
    }
}

/// Frames whole lines of a line-delimited input, one record per non-blank
/// line, numbering records from `first_index`: for reading a long NDJSON
/// input a window of lines at a time.
pub fn frame_lines(data: &[u8], first_index: usize) -> Framed<'_> {
    let mut out = Framed { records: Vec::new(), errors: Vec::new(), top_keys: Vec::new(), lines: true };
    let start = if data.starts_with(BOM) { BOM.len() } else { 0 };
    split_lines_from(data, start, first_index, &mut out);
    out
}

fn split_lines<'a>(data: &'a [u8], start: usize, out: &mut Framed<'a>) {
    split_lines_from(data, start, 0, out)
}

fn split_lines_from<'a>(data: &'a [u8], start: usize, first_index: usize, out: &mut Framed<'a>) {
    out.lines = true;
    let mut pos = start;
    let mut index = first_index;
    while pos < data.len() {
        let end = memchr(b'\n', &data[pos..]).map_or(data.len(), |k| pos + k);
        let line = &data[pos..end];
        let s = skip_ws(line, 0);
        if s < line.len() {
            let trimmed_end = line.iter().rposition(|c| !matches!(c, b' ' | b'\r' | b'\t')).map_or(0, |p| p + 1);
            out.records.push(Record {
                bytes: &line[s..trimmed_end],
                offset: pos + s,
                index: Some(index),
                max_depth: None,
            });
            index += 1;
        }
        pos = end + 1;
    }
}

fn split_stream<'a>(data: &'a [u8], start: usize, out: &mut Framed<'a>) {
    let mut i = start;
    let mut index = 0usize;
    while i < data.len() {
        match value_extent(data, i) {
            Ok((end, depth)) => {
                out.records.push(Record {
                    bytes: &data[i..end],
                    offset: i,
                    index: Some(index),
                    max_depth: Some(depth),
                });
                i = skip_ws(data, end);
            }
            Err(e) => {
                out.errors.push(scan_error(data, i, Some(index), e));
                match resume_after(data, i, e) {
                    Some(next) if next > i => i = next,
                    _ => return,
                }
            }
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(f: &Framed<'a>) -> Vec<&'a str> {
        f.records.iter().map(|r| std::str::from_utf8(r.bytes).unwrap()).collect()
    }

    #[test]
    fn wrapper_array_yields_each_record() {
        let f = frame(br#"{"Records": [{"a":1}, {"b":"x]"}]}"#, &["Records"]);
        assert_eq!(texts(&f), vec![r#"{"a":1}"#, r#"{"b":"x]"}"#]);
        assert!(f.errors.is_empty());
        assert_eq!(f.top_keys, vec!["Records"]);
    }

    #[test]
    fn truncated_wrapper_keeps_records_before_the_cut() {
        let f = frame(b"{\"Records\": [{\"a\":1},\n {\"b\":2},\n {\"c\":", &["Records"]);
        assert_eq!(texts(&f), vec![r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(f.errors.len(), 1);
        assert_eq!(f.errors[0].location.index, Some(2));
        assert_eq!(f.errors[0].location.line, 3);
    }

    #[test]
    fn ndjson_is_split_by_line_and_a_bad_line_stays_alone() {
        let f = frame(b"{\"a\":1}\n{\"b\":\n{\"c\":3}\n\n", &[]);
        assert_eq!(texts(&f), vec![r#"{"a":1}"#, r#"{"b":"#, r#"{"c":3}"#]);
    }

    #[test]
    fn ndjson_with_a_broken_first_line_is_still_ndjson() {
        let f = frame(b"{\"a\":\n{\"b\":2}\n{\"c\":3}\n", &[]);
        assert_eq!(texts(&f), vec![r#"{"a":"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn unbalanced_record_in_pretty_array_resyncs_on_indentation() {
        let data = b"[\n  {\"a\": {\"x\": 1},\n  {\"b\": 2},\n  {\"c\": 3}\n]\n";
        let f = frame(data, &[]);
        // The unclosed record swallows nothing but itself.
        assert_eq!(texts(&f), vec![r#"{"b": 2}"#, r#"{"c": 3}"#]);
        assert_eq!(f.errors.len(), 1);
        assert_eq!(f.errors[0].location.index, Some(0));
    }

    #[test]
    fn a_string_cut_at_the_end_of_its_line_costs_only_its_record_in_an_array_of_lines() {
        // Unbounded, the cut string would pair with the next line's quotes
        // and close at `"}"`, swallowing `c` and `d` into one broken record.
        let f = frame(b"[\n{\"a\":1},\n{\"b\":\"cu\n{\"c\":\"}\"},\n{\"d\":4}\n]\n", &[]);
        assert_eq!(texts(&f), vec![r#"{"a":1}"#, r#"{"c":"}"}"#, r#"{"d":4}"#]);
        assert_eq!(f.errors.len(), 1);
        assert_eq!((f.errors[0].location.index, f.errors[0].location.line), (Some(1), 3));
        assert!(f.errors[0].reason.contains("cut off"), "{}", f.errors[0].reason);
    }

    #[test]
    fn a_string_cut_at_the_end_of_its_line_costs_only_its_record_in_a_stream() {
        let f = frame(b"{\n  \"a\": 1\n}\n{\"b\":\"cu\n{\"c\":\"}\"}\n{\"d\":4}\n", &[]);
        assert_eq!(texts(&f), vec!["{\n  \"a\": 1\n}", r#"{"c":"}"}"#, r#"{"d":4}"#]);
        assert_eq!(f.errors.len(), 1);
        assert_eq!((f.errors[0].location.index, f.errors[0].location.line), (Some(1), 4));
    }

    #[test]
    fn a_cut_first_document_does_not_cost_the_documents_after_it() {
        let f = frame(b"{\"a\":\"cu\n{\"b\":\"cu\n{\"c\":3}\n{\n  \"d\": 4\n}\n", &[]);
        assert_eq!(texts(&f), vec![r#"{"c":3}"#, "{\n  \"d\": 4\n}"]);
        assert_eq!(f.errors.len(), 2);
    }

    #[test]
    fn pretty_printed_wrapper_with_a_cut_string_resumes_at_the_next_record() {
        // Newlines between tokens are whitespace; only the one inside `"cu` ends a record.
        let data = b"{\"Records\": [\n  {\n    \"a\": \"x\"\n  },\n  {\n    \"b\": \"cu\n  },\n  {\n    \"c\": [\n      3\n    ]\n  }\n]}\n";
        let f = frame(data, &["Records"]);
        assert_eq!(texts(&f), vec!["{\n    \"a\": \"x\"\n  }", "{\n    \"c\": [\n      3\n    ]\n  }"]);
        assert_eq!(f.errors.len(), 1);
        assert_eq!((f.errors[0].location.index, f.errors[0].location.line), (Some(1), 6));
    }

    #[test]
    fn an_escaped_newline_is_still_a_cut_string() {
        let f = frame(b"[\n{\"a\":\"x\\\n{\"b\":\"}\"}\n]", &[]);
        assert_eq!(texts(&f), vec![r#"{"b":"}"}"#]);
        assert_eq!(f.errors.len(), 1);
    }

    #[test]
    fn lines_that_are_not_records_in_front_of_ndjson_cost_only_themselves() {
        for garbage in [&b"\0\0\0\0\n\0\0\0\n"[..], b"{\"a\":\"cu\n{\"b\":\n", b"[{\n[\n", b"# export\n\n  \x01\x02\n"]
        {
            let mut data = garbage.to_vec();
            data.extend_from_slice(b"{\"c\":3}\n{\"d\":4}\n");
            let f = frame(&data, &[]);
            let lines = garbage.iter().filter(|&&c| c == b'\n').count();
            let good = texts(&f).into_iter().filter(|t| t.starts_with("{\"c\"") || t.starts_with("{\"d\"")).count();
            assert_eq!(good, 2, "after {:?}", String::from_utf8_lossy(garbage));
            // Each bad line is a record of its own (rejected when parsed), not lost silently.
            assert!(f.records.len() + f.errors.len() >= lines, "after {:?}", String::from_utf8_lossy(garbage));
            assert_eq!(f.records.last().map(|r| r.index), Some(Some(f.records.len() - 1)));
        }
    }

    #[test]
    fn one_example_record_in_a_text_file_does_not_make_it_ndjson() {
        let f = frame(b"# Notes\nA record looks like:\n{\"eventName\":\"GetObject\"}\nThat is all.\n", &[]);
        assert!(f.records.is_empty());
        assert!(f.errors[0].reason.contains("not JSON"), "{}", f.errors[0].reason);
    }

    #[test]
    fn deep_nesting_is_scanned_without_recursion() {
        let mut data = vec![b'['; 100_000];
        data.extend(vec![b']'; 100_000]);
        let f = frame(&data, &[]);
        assert_eq!(f.records.len(), 1);
    }

    #[test]
    fn empty_and_non_json_inputs_are_named() {
        assert!(frame(b"  \n", &[]).errors[0].reason.contains("empty"));
        assert!(frame(b"# README", &[]).errors[0].reason.contains("not JSON"));
    }

    #[test]
    fn a_stray_delimiter_between_documents_ends_framing_instead_of_looping() {
        for data in [&b"{}\n,"[..], b"{\n}\n]", b"{\n}\n}{"] {
            // One good document, and the stray byte accounted for once
            // (as a framing error, or as a record the parser will reject).
            let f = frame(data, &[]);
            assert_eq!(f.records.len() + f.errors.len(), 2, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn pretty_single_element_array_is_an_array_not_lines() {
        let f = frame(b"[\n  {\"a\": 1}\n]\n", &[]);
        assert_eq!(texts(&f), vec![r#"{"a": 1}"#]);
        assert!(f.errors.is_empty());
    }

    #[test]
    fn single_document_is_one_record() {
        let f = frame(b"\xEF\xBB\xBF{\n \"kind\": \"Event\"\n}\n", &["items"]);
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.records[0].index, None);
    }

    #[test]
    fn pretty_printed_concatenated_documents_are_split() {
        let f = frame(b"{\n \"a\": 1\n}\n{\n \"b\": 2\n}\n", &[]);
        assert_eq!(f.records.len(), 2);
    }
}
