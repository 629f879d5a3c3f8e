//! One way to name a principal: whatever alias a person types (an ARN,
//! `user:alice@example.com`, an email or Okta login, `agent:…`, or a short
//! name such as an IAM user's name when it is unique) resolves to the
//! principal's canonical reference and every alias Tenet knows it by
//! (identities the inventory declares the same: an IdP user and the person
//! its SCIM record names). An unknown name is unknown, never an empty
//! answer; an ambiguous one lists its candidates.

use tenet_graph::TrustGraph;
use tenet_store::{Result, StoreReader};

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// One principal: its canonical reference and every alias (canonical first).
    Known {
        canonical: String,
        aliases: Vec<String>,
    },
    Unknown,
    /// Several principals answer to the name: their canonical references.
    Ambiguous(Vec<String>),
}

/// Whether `id` is what `name` may mean (see [`tenet_store::EventReader::principals_named`]).
fn answers_to(id: &str, name: &str) -> bool {
    let (id, name) = (id.to_lowercase(), name.to_lowercase());
    id == name
        || id.strip_prefix("user:") == Some(&name)
        || id.strip_prefix("agent:") == Some(&name)
        || id.strip_suffix(&name).is_some_and(|rest| rest.ends_with('/') || rest.ends_with(':'))
}

/// How strongly a candidate claims a name: the id itself, then a person's
/// or agent's Tenet form, then a durable cloud identity (IAM user or role),
/// then anything else (a role session named like its person).
fn rank(id: &str, name: &str) -> u8 {
    if id.eq_ignore_ascii_case(name) {
        0
    } else if id.starts_with("user:") || id.starts_with("agent:") {
        1
    } else if id.contains(":user/") || id.contains(":role/") {
        2
    } else {
        3
    }
}

/// The canonical member of an alias set: a person's `user:` form, an
/// agent's `agent:` form, else the first by name.
fn canonical(mut aliases: Vec<String>) -> (String, Vec<String>) {
    aliases.sort();
    aliases.dedup();
    let pick = aliases
        .iter()
        .position(|a| a.starts_with("user:"))
        .or_else(|| aliases.iter().position(|a| a.starts_with("agent:")))
        .unwrap_or(0);
    let c = aliases.remove(pick);
    aliases.insert(0, c.clone());
    (c, aliases)
}

/// The canonical reference of `id` in `view`: its `user:` or `agent:`
/// alias when the inventory declares one, else `id` itself (as written:
/// an ARN keeps its path).
pub fn canonical_in(view: &tenet_graph::View<'_>, id: &str) -> String {
    match view.id(id).map(|n| view.aliases(n)) {
        Some(aliases) if aliases.len() > 1 => {
            canonical(aliases.into_iter().map(|a| view.name(a).to_string()).collect()).0
        }
        _ => id.to_string(),
    }
}

/// Resolves `name` against the principals events name and the trust graph.
pub fn resolve(reader: &dyn StoreReader, graph: &TrustGraph, name: &str) -> Result<Resolved> {
    let name = name.trim();
    let mut candidates: Vec<String> = reader.principals_named(name)?;
    // A subject findings or risk name exactly (the learner's own subjects).
    let findings =
        tenet_store::FindingQuery { principal: Some(name.to_string()), include_quiet: true, ..Default::default() };
    if !reader.findings(&findings)?.is_empty() || !reader.risk(Some(name))?.is_empty() {
        candidates.push(name.to_string());
    }
    let view = graph.current();
    for id in view.present_nodes() {
        if view.kind(id).is_principal() && answers_to(view.name(id), name) {
            candidates.push(view.name(id).to_string());
        }
    }
    let Some(best) = candidates.iter().map(|c| rank(c, name)).min() else { return Ok(Resolved::Unknown) };
    candidates.retain(|c| rank(c, name) == best);
    let mut classes: Vec<(String, Vec<String>)> = Vec::new();
    for c in candidates {
        if classes.iter().any(|(_, aliases)| aliases.contains(&c)) {
            continue;
        }
        let aliases: Vec<String> = match view.id(&c) {
            Some(id) => view.aliases(id).into_iter().map(|a| view.name(a).to_string()).collect(),
            None => vec![c.clone()],
        };
        let mut aliases = aliases;
        if !aliases.contains(&c) {
            aliases.push(c);
        }
        classes.push(canonical(aliases));
    }
    classes.sort();
    classes.dedup_by(|a, b| a.0 == b.0);
    Ok(match classes.len() {
        0 => Resolved::Unknown,
        1 => {
            let (canonical, aliases) = classes.remove(0);
            Resolved::Known { canonical, aliases }
        }
        _ => Resolved::Ambiguous(classes.into_iter().map(|(c, _)| c).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_name_answers_for_the_ids_ending_in_it_and_nothing_else() {
        assert!(answers_to("arn:aws:iam::1:user/bert-jan", "bert-jan"));
        assert!(answers_to("user:alice@example.com", "Alice@Example.com"));
        assert!(answers_to("agent:agt-42", "agt-42"));
        assert!(!answers_to("arn:aws:iam::1:user/xbert-jan", "bert-jan"));
        assert!(!answers_to("user:alice@example.com", "alice"));
    }

    #[test]
    fn a_person_is_named_by_their_user_form_and_a_durable_identity_outranks_a_session() {
        let (c, aliases) = canonical(vec!["okta:00u1".into(), "user:alice@example.com".into()]);
        assert_eq!(c, "user:alice@example.com");
        assert_eq!(aliases, vec!["user:alice@example.com".to_string(), "okta:00u1".to_string()]);
        assert!(
            rank("arn:aws:iam::1:user/bert-jan", "bert-jan")
                < rank("arn:aws:sts::1:assumed-role/dev/bert-jan", "bert-jan")
        );
    }
}
