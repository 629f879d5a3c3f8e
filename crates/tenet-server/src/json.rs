//! The check every JSON request body passes before anything reads it: well
//! formed, no object with the same key twice (serde_json would keep the
//! last silently, so a gateway and Tenet could each see a different
//! `subject`), no nesting deeper than the configured depth. One streaming
//! pass; nothing is built but the keys of the object being read.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// What is wrong with a body, and where (a JSON path: `subject.id`,
/// `evaluations[3].resource`, `context["a.b"]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("malformed JSON at line {line} column {column}{}: {message}", at(path))]
    Syntax { line: usize, column: usize, path: String, message: String },
    #[error("duplicate key {key:?} at {path}: every key may appear once in an object")]
    DuplicateKey { path: String, key: String },
    #[error("nesting deeper than {max} levels at {path}")]
    TooDeep { path: String, max: usize },
}

fn at(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!(" (in {path})") }
}

impl JsonError {
    /// The JSON path, empty for the document itself.
    pub fn path(&self) -> &str {
        match self {
            JsonError::Syntax { path, .. } | JsonError::DuplicateKey { path, .. } | JsonError::TooDeep { path, .. } => {
                path
            }
        }
    }
}

/// Checks `bytes` is one JSON document with unique keys in every object and
/// at most `max_depth` levels of objects and arrays.
pub fn check(bytes: &[u8], max_depth: usize) -> Result<(), JsonError> {
    let mut state = State { path: Vec::new(), depth: 0, max_depth, error: None };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Node(&mut state).deserialize(&mut de).and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(state.error.take().unwrap_or_else(|| JsonError::Syntax {
            line: e.line(),
            column: e.column(),
            path: render(&state.path),
            message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
        })),
    }
}

enum Seg<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

struct State<'de> {
    path: Vec<Seg<'de>>,
    depth: usize,
    max_depth: usize,
    /// The typed error behind the custom serde error that unwinds the parse.
    error: Option<JsonError>,
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, e: JsonError) -> E {
        let msg = e.to_string();
        self.error = Some(e);
        E::custom(msg)
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let e = JsonError::TooDeep { path: render(&self.path), max: self.max_depth };
            return Err(self.fail(e));
        }
        Ok(())
    }
}

fn render(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
                out.push(']');
            }
        }
    }
    out
}

/// Keys seen in one object: a short list scanned in place (most objects
/// have a handful of keys), a set beyond that (so 100,000 keys stay linear).
enum Seen<'de> {
    Few(Vec<Cow<'de, str>>),
    Many(HashSet<Cow<'de, str>>),
}

impl<'de> Seen<'de> {
    const FEW: usize = 16;

    /// False when `key` was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            Seen::Few(v) if v.contains(&key) => false,
            Seen::Few(v) if v.len() < Self::FEW => {
                v.push(key);
                true
            }
            Seen::Few(v) => {
                let mut set: HashSet<_> = v.drain(..).collect();
                set.insert(key);
                *self = Seen::Many(set);
                true
            }
            Seen::Many(s) => s.insert(key),
        }
    }
}

struct Node<'s, 'de>(&'s mut State<'de>);

impl<'de> DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        state.enter()?;
        let mut i = 0;
        loop {
            state.path.push(Seg::Index(i));
            let more = seq.next_element_seed(Node(state))?;
            state.path.pop();
            if more.is_none() {
                break;
            }
            i += 1;
        }
        state.depth -= 1;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        state.enter()?;
        let mut seen = Seen::Few(Vec::new());
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !seen.insert(key.clone()) {
                state.path.push(Seg::Key(key.clone()));
                let e = JsonError::DuplicateKey { path: render(&state.path), key: key.into_owned() };
                return Err(state.fail(e));
            }
            state.path.push(Seg::Key(key));
            map.next_value_seed(Node(state))?;
            state.path.pop();
        }
        state.depth -= 1;
        Ok(())
    }
}

/// A key, borrowed from the body unless it had escapes to undo (so `"id"`
/// and `"\u0069d"` are the same key, as they are to every JSON reader).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_named_with_its_path_however_it_is_spelt() {
        assert_eq!(check(br#"{"subject": {"type": "user", "id": "a"}}"#, 64), Ok(()));
        let dup = check(br#"{"subject": {"type": "user", "id": "a", "id": "b"}}"#, 64).unwrap_err();
        assert_eq!(dup, JsonError::DuplicateKey { path: "subject.id".into(), key: "id".into() });
        let escaped = check(br#"{"subject": 1, "\u0073ubject": 2}"#, 64).unwrap_err();
        assert_eq!(escaped.path(), "subject");
        let in_batch = check(br#"{"evaluations": [{}, {"resource": {"id": 1, "id": 2}}]}"#, 64).unwrap_err();
        assert_eq!(in_batch.path(), "evaluations[1].resource.id");
        let odd = check(br#"{"context": {"a.b": 1, "a.b": 2}}"#, 64).unwrap_err();
        assert_eq!(odd.path(), r#"context["a.b"]"#);
    }

    #[test]
    fn wide_objects_are_checked_in_linear_time_and_still_catch_repeats() {
        let mut body = String::from("{");
        for i in 0..100_000 {
            body.push_str(&format!("\"k{i}\":0,"));
        }
        body.push_str("\"k99999\":1}");
        assert_eq!(check(body.as_bytes(), 64).unwrap_err().path(), "k99999");
    }

    #[test]
    fn nesting_is_bounded_and_the_place_is_named() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(check(ok.as_bytes(), 64), Ok(()));
        let deep = format!("{{\"context\": {}{}}}", "[".repeat(64), "]".repeat(64));
        let e = check(deep.as_bytes(), 64).unwrap_err();
        assert!(matches!(e, JsonError::TooDeep { max: 64, .. }), "{e}");
        assert!(e.path().starts_with("context[0][0]"), "{e}");
    }

    #[test]
    fn malformed_bodies_say_line_column_and_place() {
        let e = check(b"{\"subject\": {\"id\": }}", 64).unwrap_err();
        match e {
            JsonError::Syntax { line: 1, path, .. } => assert_eq!(path, "subject.id"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(check(b"{} {}", 64), Err(JsonError::Syntax { .. })), "one document only");
    }
}
