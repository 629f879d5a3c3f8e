//! What every importer shares: reading the file's frame with locations,
//! walking one entry's JSON value with field paths, and collecting facts and
//! skipped entries.
//!
//! A file's frame (its top-level object and lists) is parsed into raw slices
//! of the input, so every entry knows its line; each entry is then parsed on
//! its own and walked with the path of every field it reads, so a problem is
//! reported as "line 120, record 3, at RoleDetailList[3].Tags[0].Value".

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tenet_model::Fact;

use super::{InventoryError, Skipped};
use crate::framing::{Location, line_of};

/// A problem inside one entry: the path of the field and what is wrong.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub path: String,
    pub reason: String,
}

pub(super) type Res<T> = Result<T, Problem>;

pub(super) fn problem<T>(path: impl Into<String>, reason: impl Into<String>) -> Res<T> {
    Err(Problem { path: path.into(), reason: reason.into() })
}

/// The input as text: UTF-8, without a byte-order mark.
pub(super) fn text<'a>(data: &'a [u8], format: &'static str) -> Result<&'a str, InventoryError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    std::str::from_utf8(data).map_err(|e| InventoryError::Malformed {
        format,
        location: Location::line(line_of(data, e.valid_up_to())),
        reason: format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
    })
}

/// Line numbers of offsets visited in increasing order, in linear time.
pub(super) struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines { text, pos: 0, line: 1 }
    }

    /// The 1-based line of byte `offset`.
    pub fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += memchr::memchr_iter(b'\n', &self.text.as_bytes()[self.pos..offset]).count();
        self.pos = offset;
        self.line
    }

    /// The line of `part`, a slice of the text.
    pub fn of(&mut self, part: &str) -> usize {
        self.at(offset_in(self.text, part))
    }
}

/// Where `part` (a slice of `text`) starts in it.
pub(super) fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len())
}

/// A serde_json error met while parsing `part` (a slice of `text`), placed
/// in the whole text.
pub(super) fn json_error(format: &'static str, text: &str, part: &str, e: &serde_json::Error) -> InventoryError {
    let base = offset_in(text, part);
    let base_line = line_of(text.as_bytes(), base);
    let line = base_line + e.line().saturating_sub(1);
    let column = if e.line() <= 1 {
        let line_start = text.as_bytes()[..base].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        base - line_start + e.column()
    } else {
        e.column()
    };
    let message = message(e);
    let location = Location::line(line);
    match e.classify() {
        serde_json::error::Category::Data => {
            InventoryError::Invalid { format, location, reason: format!("{message} (column {column})") }
        }
        serde_json::error::Category::Eof => InventoryError::Malformed {
            format,
            location,
            reason: "truncated JSON: the input ends inside a value".to_string(),
        },
        _ => InventoryError::Malformed { format, location, reason: format!("{message} (column {column})") },
    }
}

/// A serde_json error's message without its position (which is relative
/// to the slice parsed; callers place it in the file).
pub(super) fn message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())) {
        Some(m) => m.to_string(),
        None => full,
    }
}

/// The first non-blank byte of `s`, and its offset.
fn first_byte(s: &str) -> Option<(usize, u8)> {
    s.bytes().enumerate().find(|(_, b)| !b.is_ascii_whitespace())
}

/// The members of the document, which must be one JSON object (`expected`
/// says what it should be, for the error when it is not).
pub(super) fn top_object<'a>(
    format: &'static str,
    text: &'a str,
    expected: &str,
) -> Result<BTreeMap<String, &'a RawValue>, InventoryError> {
    match first_byte(text) {
        Some((_, b'{')) => {}
        Some((at, b)) => {
            let found = match b {
                b'[' => "an array".to_string(),
                b if b.is_ascii_graphic() => format!("`{}`", b as char),
                b => format!("byte 0x{b:02x}"),
            };
            return Err(InventoryError::Invalid {
                format,
                location: Location::line(line_of(text.as_bytes(), at)),
                reason: format!("expected {expected}, found {found}"),
            });
        }
        None => {
            return Err(InventoryError::Invalid {
                format,
                location: Location::line(1),
                reason: format!("the file is empty; expected {expected}"),
            });
        }
    }
    serde_json::from_str(text).map_err(|e| json_error(format, text, text, &e))
}

/// The elements of the array `raw` (member `key` of the document); absent
/// or `null` is empty.
pub(super) fn raw_list<'a>(
    format: &'static str,
    text: &'a str,
    key: &str,
    raw: Option<&'a RawValue>,
) -> Result<Vec<&'a RawValue>, InventoryError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    match first_byte(raw.get()) {
        Some((_, b'[')) => serde_json::from_str(raw.get()).map_err(|e| json_error(format, text, raw.get(), &e)),
        Some((_, b'n')) if raw.get().trim() == "null" => Ok(Vec::new()),
        _ => {
            let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            Err(InventoryError::Invalid {
                format,
                location: Location::line(line_of(text.as_bytes(), offset_in(text, raw.get()))).with_path(key),
                reason: format!("{key} is {}, expected an array", describe(&v)),
            })
        }
    }
}

/// One entry of a list (or the document itself), parsed, with where it is.
pub(super) struct Entry {
    pub line: usize,
    pub index: Option<usize>,
    /// The entry's own path (`RoleDetailList[3]`; empty for the document).
    pub path: String,
    pub value: Value,
}

/// Parses each raw element of list `key` into an [`Entry`]. An element the
/// parser refuses (nesting past its limit) is skipped and reported.
pub(super) fn entries(lines: &mut Lines<'_>, key: &str, raws: &[&RawValue], skipped: &mut Vec<Skipped>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let line = lines.of(raw.get());
        let path = format!("{key}[{i}]");
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => out.push(Entry { line, index: Some(i), path, value }),
            Err(e) => skipped.push(Skipped {
                location: Location { line: line + e.line().saturating_sub(1), index: Some(i), path: Some(path) },
                entry: None,
                reason: message(&e),
            }),
        }
    }
    out
}

impl Entry {
    /// A problem with this entry, as a skipped entry.
    pub fn skipped(&self, entry: Option<String>, p: Problem) -> Skipped {
        Skipped {
            location: Location {
                line: self.line,
                index: self.index,
                path: if p.path.is_empty() { None } else { Some(p.path) },
            },
            entry,
            reason: p.reason,
        }
    }
}

/// Facts in first-seen order, without duplicates.
#[derive(Default)]
pub(super) struct Facts {
    list: Vec<Fact>,
    seen: HashSet<Fact>,
}

impl Facts {
    pub fn push(&mut self, fact: Fact) {
        if !self.seen.contains(&fact) {
            self.seen.insert(fact.clone());
            self.list.push(fact);
        }
    }

    pub fn extend(&mut self, facts: impl IntoIterator<Item = Fact>) {
        for f in facts {
            self.push(f);
        }
    }

    pub fn into_vec(self) -> Vec<Fact> {
        self.list
    }
}

// ----- walking a value -----

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

pub(super) fn at(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub(super) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn object<'v>(v: &'v Value, path: &str) -> Res<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => problem(path, format!("expected an object, found {}", describe(other))),
    }
}

/// A member, `null` counting as absent.
pub(super) fn field<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

pub(super) fn opt_str<'v>(m: &'v Map<String, Value>, path: &str, key: &str) -> Res<Option<&'v str>> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => problem(join(path, key), format!("expected a string, found {}", describe(other))),
    }
}

/// A string member that must be there and not be empty.
pub(super) fn req_str<'v>(m: &'v Map<String, Value>, path: &str, key: &str) -> Res<&'v str> {
    match opt_str(m, path, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => problem(join(path, key), "is empty"),
        None => problem(join(path, key), "is missing"),
    }
}

pub(super) fn opt_object<'v>(m: &'v Map<String, Value>, path: &str, key: &str) -> Res<Option<&'v Map<String, Value>>> {
    match field(m, key) {
        None => Ok(None),
        Some(v) => object(v, &join(path, key)).map(Some),
    }
}

/// An array member; absent or `null` is empty.
pub(super) fn opt_array<'v>(m: &'v Map<String, Value>, path: &str, key: &str) -> Res<&'v [Value]> {
    match field(m, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => problem(join(path, key), format!("expected an array, found {}", describe(other))),
    }
}

/// An array of strings; absent or `null` is empty.
pub(super) fn str_list(m: &Map<String, Value>, path: &str, key: &str) -> Res<Vec<String>> {
    let p = join(path, key);
    opt_array(m, path, key)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => problem(at(&p, i), format!("expected a string, found {}", describe(other))),
        })
        .collect()
}

/// An object of string values, sorted by key (Kubernetes labels).
pub(super) fn string_map(m: &Map<String, Value>, path: &str, key: &str) -> Res<Vec<(String, String)>> {
    let Some(obj) = opt_object(m, path, key)? else { return Ok(Vec::new()) };
    let p = join(path, key);
    let mut out: Vec<(String, String)> = obj
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => problem(join(&p, k), format!("expected a string, found {}", describe(other))),
        })
        .collect::<Res<_>>()?;
    out.sort();
    Ok(out)
}
