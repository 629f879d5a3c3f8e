//! AuthZEN values (JSON) as Cedar values, built directly as restricted
//! expressions: no Cedar-JSON document is written and re-parsed per request.

use cedar_policy::{EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::Value;
use std::str::FromStr;

/// A value Cedar cannot hold, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValueError {
    pub path: String,
    pub message: String,
}

/// An AuthZEN `type` as a Cedar entity type name; a type that is not a
/// valid Cedar name is refused with the reason.
///
/// Parsing a name runs Cedar's parser; a request names a handful of types
/// over and over, so parsed names are kept per thread.
pub fn type_name(kind: &str, path: &str) -> Result<EntityTypeName, ValueError> {
    thread_local! {
        static PARSED: std::cell::RefCell<rustc_hash::FxHashMap<String, EntityTypeName>> = Default::default();
    }
    if let Some(t) = PARSED.with(|p| p.borrow().get(kind).cloned()) {
        return Ok(t);
    }
    let t = EntityTypeName::from_str(kind).map_err(|e| ValueError {
        path: path.to_string(),
        message: format!("{kind:?} is not a valid Cedar entity type name ({e})"),
    })?;
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        // Bounded: type names come from requests.
        if p.len() >= 4096 {
            p.clear();
        }
        p.insert(kind.to_string(), t.clone());
    });
    Ok(t)
}

pub fn uid(kind: &str, id: &str, path: &str) -> Result<EntityUid, ValueError> {
    Ok(EntityUid::from_type_name_and_id(type_name(kind, path)?, EntityId::new(id)))
}

/// [`to_cedar`] for the field `parent.key`, the path spelt out only where
/// it may be needed (scalars, the usual case, cannot fail).
pub fn field_to_cedar(v: &Value, parent: &str, key: &str) -> Result<Option<RestrictedExpression>, ValueError> {
    let infallible = matches!(v, Value::Null | Value::Bool(_) | Value::String(_)) || v.is_i64();
    if infallible { to_cedar(v, "") } else { to_cedar(v, &format!("{parent}.{key}")) }
}

/// JSON as Cedar: strings, booleans, integers (Long), arrays (Set), objects
/// (Record), `{"__entity": {"type", "id"}}` (an entity reference); a
/// fractional number becomes a `decimal` when Cedar's four places hold it
/// exactly. `null` has no Cedar counterpart: `Ok(None)`, and a record drops the key.
pub fn to_cedar(v: &Value, path: &str) -> Result<Option<RestrictedExpression>, ValueError> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                RestrictedExpression::new_long(i)
            } else if let Some(d) = n.as_f64().and_then(decimal) {
                RestrictedExpression::new_decimal(d)
            } else {
                return Err(ValueError {
                    path: path.to_string(),
                    message: format!("{n} fits neither a Cedar Long nor a decimal (four places)"),
                });
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(x) = to_cedar(item, &format!("{path}[{i}]"))? {
                    out.push(x);
                }
            }
            RestrictedExpression::new_set(out)
        }
        Value::Object(map) => {
            if let Some(Value::Object(e)) = map.get("__entity")
                && map.len() == 1
            {
                let (Some(Value::String(t)), Some(Value::String(id))) = (e.get("type"), e.get("id")) else {
                    return Err(ValueError {
                        path: format!("{path}.__entity"),
                        message: "an entity reference needs string `type` and `id`".into(),
                    });
                };
                return Ok(Some(RestrictedExpression::new_entity_uid(uid(t, id, &format!("{path}.__entity"))?)));
            }
            let mut fields = Vec::with_capacity(map.len());
            for (k, x) in map {
                if let Some(x) = to_cedar(x, &format!("{path}.{k}"))? {
                    fields.push((k.clone(), x));
                }
            }
            RestrictedExpression::new_record(fields)
                .map_err(|e| ValueError { path: path.into(), message: e.to_string() })?
        }
    }))
}

fn decimal(f: f64) -> Option<String> {
    let scaled = (f * 10_000.0).round();
    if !f.is_finite() || (scaled / 10_000.0 - f).abs() > f64::EPSILON * f.abs().max(1.0) || scaled.abs() > 9.2e18 {
        return None;
    }
    let s = scaled as i64;
    Some(format!("{}{}.{:04}", if s < 0 { "-" } else { "" }, (s / 10_000).abs(), (s % 10_000).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_become_decimals_and_invalid_type_names_are_refused() {
        assert_eq!(decimal(1.5).as_deref(), Some("1.5000"));
        assert_eq!(decimal(-0.25).as_deref(), Some("-0.2500"));
        assert_eq!(decimal(0.123456), None);
        assert!(type_name("user", "subject.type").is_ok());
        assert!(type_name("Tenet::Agent", "subject.type").is_ok());
        let e = type_name("not a type", "subject.type").unwrap_err();
        assert_eq!(e.path, "subject.type");
        assert!(e.message.contains("not a valid Cedar entity type name"), "{}", e.message);
    }
}
