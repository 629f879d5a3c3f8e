//! SCIM 2.0 (RFC 7643/7644): a `ListResponse` of Users and/or Groups, or
//! one User or Group resource.
//!
//! A person is `user:<userName>` (the id the traces and the federated
//! identities carry), the same as `<idp>:<id>` (the id the identity
//! provider's own log uses), as `user:<email>` for each other email, and as
//! the names Tenet's adapters give them downstream: `aws:samluser/<userName>`,
//! `aws:source-identity/<userName>` and `k8s:<userName>`. A group is
//! `<idp>:<id>`; membership is between `<idp>:` ids. Inactive users are gone
//! and contribute nothing.

use serde_json::{Map, Value};
use tenet_model::{Fact, NodeKind, Snapshot, Timestamp};

use super::walk::{
    Entry, Facts, Lines, Res, at, describe, entries, field, join, json_error, object, opt_array, opt_object, opt_str,
    problem, raw_list, req_str, top_object,
};
use super::{Imported, InventoryError, Skipped};
use crate::framing::Location;

const NAME: &str = "scim";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Whether a schema URN is SCIM's (URNs compare case-insensitively).
pub(super) fn is_scim_urn(urn: &str) -> bool {
    urn.get(..21).is_some_and(|p| p.eq_ignore_ascii_case("urn:ietf:params:scim:"))
}

fn schemas(v: &Value) -> Vec<&str> {
    match v.get("schemas") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

fn names(schemas: &[&str], urn: &str) -> bool {
    schemas.iter().any(|s| s.eq_ignore_ascii_case(urn))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resource {
    User,
    Group,
}

fn resource_type(v: &Value) -> Option<Resource> {
    let s = schemas(v);
    if names(&s, USER) {
        return Some(Resource::User);
    }
    if names(&s, GROUP) {
        return Some(Resource::Group);
    }
    match v.get("meta").and_then(|m| m.get("resourceType")).and_then(Value::as_str) {
        Some("User") => Some(Resource::User),
        Some("Group") => Some(Resource::Group),
        _ => None,
    }
}

pub(super) fn import(text: &str, collected_at: Timestamp, idp: &str) -> Result<Imported, InventoryError> {
    let expected = "a SCIM ListResponse, User or Group (an object with schemas)";
    let top = top_object(NAME, text, expected)?;
    let top_schemas: Value = match top.get("schemas") {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| json_error(NAME, text, raw.get(), &e))?,
        None => Value::Null,
    };
    let top_schemas = serde_json::json!({ "schemas": top_schemas });
    let top_schemas = schemas(&top_schemas);
    let mut lines = Lines::new(text);
    let mut skipped = Vec::new();
    let mut facts = Facts::default();
    let scope;

    if names(&top_schemas, LIST) {
        let raws = raw_list(NAME, text, "Resources", top.get("Resources").copied())?;
        let number = |key: &str| top.get(key).and_then(|r| r.get().trim().parse::<u64>().ok());
        let incomplete = |key: &str, reason: String| InventoryError::Incomplete {
            format: NAME,
            location: top
                .get(key)
                .map_or(Location::line(1), |raw| Location::line(Lines::new(text).of(raw.get())))
                .with_path(key),
            reason,
        };
        if let Some(start) = number("startIndex")
            && start > 1
        {
            return Err(incomplete(
                "startIndex",
                format!("this page starts at result {start}; import a response holding every resource from 1"),
            ));
        }
        if let Some(total) = number("totalResults")
            && total > raws.len() as u64
        {
            return Err(incomplete(
                "totalResults",
                format!(
                    "totalResults is {total} but the response holds {}; fetch every page into one response",
                    raws.len()
                ),
            ));
        }
        for e in entries(&mut lines, "Resources", &raws, &mut skipped) {
            resource(&e, idp, &mut facts, &mut skipped);
        }
        scope = format!("idp:{idp}");
    } else if names(&top_schemas, USER) || names(&top_schemas, GROUP) {
        // One resource: a snapshot complete for that resource only, so that
        // importing it does not retract the rest of the directory.
        let value: Value = serde_json::from_str(text).map_err(|e| json_error(NAME, text, text, &e))?;
        let line = lines.at(text.len() - text.trim_start().len());
        let id = value.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let kind = if names(&top_schemas, USER) { "Users" } else { "Groups" };
        resource(&Entry { line, index: None, path: String::new(), value }, idp, &mut facts, &mut skipped);
        scope = format!("idp:{idp}/{kind}/{id}");
    } else {
        let location = match top.get("schemas") {
            Some(raw) => Location::line(lines.of(raw.get())).with_path("schemas"),
            None => Location::line(1),
        };
        return Err(InventoryError::Invalid {
            format: NAME,
            location,
            reason: format!("schemas names no SCIM ListResponse, User or Group ({LIST}, {USER}, {GROUP})"),
        });
    }
    let snapshot = Snapshot { source: NAME.to_string(), scope, collected_at, facts: facts.into_vec() };
    Ok(Imported { snapshots: vec![snapshot], skipped })
}

fn entry_name(v: &Value) -> Option<String> {
    ["userName", "displayName", "id"].iter().find_map(|k| v.get(*k).and_then(Value::as_str)).map(str::to_string)
}

fn resource(e: &Entry, idp: &str, facts: &mut Facts, skipped: &mut Vec<Skipped>) {
    let result = match resource_type(&e.value) {
        Some(Resource::User) => user(&e.value, &e.path, idp),
        Some(Resource::Group) => group(&e.value, &e.path, idp),
        None => problem(
            join(&e.path, "schemas"),
            format!("not a User or Group resource (schemas {:?}); skipped", schemas(&e.value)),
        ),
    };
    match result {
        Ok(f) => facts.extend(f),
        Err(p) => skipped.push(e.skipped(entry_name(&e.value), p)),
    }
}

fn user(v: &Value, path: &str, idp: &str) -> Res<Vec<Fact>> {
    let m = object(v, path)?;
    let id = req_str(m, path, "id")?;
    let user_name = req_str(m, path, "userName")?;
    if !active(m, path)? {
        return Ok(Vec::new());
    }
    let formatted = match opt_object(m, path, "name")? {
        Some(n) => opt_str(n, &join(path, "name"), "formatted")?,
        None => None,
    };
    let display = opt_str(m, path, "displayName")?.or(formatted).unwrap_or(user_name);
    let person = format!("user:{user_name}");
    // Oriented as the adapters orient them: the other id, then `user:`.
    let same = |a: String| Fact::SameAs { a, b: person.clone() };
    let mut facts = vec![
        Fact::Node { id: person.clone(), kind: NodeKind::HUMAN, name: Some(display.to_string()) },
        same(format!("{idp}:{id}")),
    ];
    let ep = join(path, "emails");
    for (i, email) in opt_array(m, path, "emails")?.iter().enumerate() {
        let ip = at(&ep, i);
        if let Some(address) = opt_str(object(email, &ip)?, &ip, "value")?
            && !address.eq_ignore_ascii_case(user_name)
        {
            facts.push(same(format!("user:{address}")));
        }
    }
    for alias in ["aws:samluser/", "aws:source-identity/", "k8s:"] {
        facts.push(same(format!("{alias}{user_name}")));
    }
    let gp = join(path, "groups");
    for (i, g) in opt_array(m, path, "groups")?.iter().enumerate() {
        let ip = at(&gp, i);
        let group = req_str(object(g, &ip)?, &ip, "value")?;
        facts.push(Fact::Member { member: format!("{idp}:{id}"), group: format!("{idp}:{group}") });
    }
    Ok(facts)
}

/// `active`, true when absent; some providers send it as text.
fn active(m: &Map<String, Value>, path: &str) -> Res<bool> {
    match field(m, "active") {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => problem(join(path, "active"), format!("expected a boolean, found {}", describe(other))),
    }
}

fn group(v: &Value, path: &str, idp: &str) -> Res<Vec<Fact>> {
    let m = object(v, path)?;
    let id = req_str(m, path, "id")?;
    let group = format!("{idp}:{id}");
    let name = opt_str(m, path, "displayName")?.map(str::to_string);
    let mut facts = vec![Fact::Node { id: group.clone(), kind: NodeKind::Group, name }];
    let mp = join(path, "members");
    for (i, member) in opt_array(m, path, "members")?.iter().enumerate() {
        let ip = at(&mp, i);
        let value = req_str(object(member, &ip)?, &ip, "value")?;
        facts.push(Fact::Member { member: format!("{idp}:{value}"), group: group.clone() });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_compare_case_insensitively() {
        assert!(is_scim_urn("urn:ietf:params:scim:schemas:core:2.0:User"));
        assert!(is_scim_urn("URN:IETF:PARAMS:SCIM:api:messages:2.0:ListResponse"));
        assert!(!is_scim_urn("urn:ietf:params:sci"));
        assert!(names(&["urn:ietf:params:scim:schemas:core:2.0:user"], USER));
    }
}
