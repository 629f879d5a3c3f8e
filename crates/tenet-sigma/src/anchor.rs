//! Which records a rule could possibly match, decided on the raw bytes
//! before any JSON is parsed.
//!
//! Parsing each record into a JSON tree for the engine costs more than the
//! adapter's whole parse, and most records match no rule. A rule's
//! *anchors* are literal strings of which at least one must occur in any
//! record it matches: a selection `eventName: StopLogging` cannot match a
//! record that does not contain `StopLogging`. Anchors are derived only
//! where that holds for certain (exact, contains, startswith, endswith
//! string values of positively required selections, ASCII without JSON
//! escapes, compared case-insensitively as Sigma does); a rule for which
//! nothing is certain has no anchors and is always evaluated. So the
//! prefilter never drops a match: it only skips records no rule can take.

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SelectorPattern, SigmaRule, SigmaValue, StringPart,
};

/// Anchors shorter than this would hit nearly every record.
const MIN_ANCHOR: usize = 3;

/// At least one of these strings occurs in every record the rule matches;
/// `None` when no such set can be derived.
pub fn anchors(rule: &SigmaRule) -> Option<Vec<String>> {
    let d = &rule.detection;
    let mut best: Option<Vec<String>> = None;
    // Several conditions are alternatives (any may match): all must be anchored.
    for c in &d.conditions {
        let set = condition(c, &d.named)?;
        best.get_or_insert_with(Vec::new).extend(set);
    }
    best.filter(|b| !b.is_empty())
}

fn condition(c: &ConditionExpr, named: &HashMap<String, Detection>) -> Option<Vec<String>> {
    match c {
        ConditionExpr::Identifier(id) => detection(named.get(id)?),
        // One required part suffices: take the most selective.
        ConditionExpr::And(parts) => smallest(parts.iter().filter_map(|p| condition(p, named))),
        ConditionExpr::Or(parts) => union(parts.iter().map(|p| condition(p, named))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Selector { quantifier, pattern } => {
            let members: Vec<&Detection> = named
                .iter()
                .filter(|(name, _)| match pattern {
                    SelectorPattern::Them => !name.starts_with('_'),
                    SelectorPattern::Pattern(p) => glob(p, name),
                })
                .map(|(_, d)| d)
                .collect();
            if members.is_empty() {
                return None;
            }
            match quantifier {
                Quantifier::All => smallest(members.into_iter().filter_map(detection)),
                // "1 of" or "N of": any member might be among those matching.
                Quantifier::Any | Quantifier::Count(_) => union(members.into_iter().map(detection)),
            }
        }
    }
}

/// Fields naming what happened (`eventName`, Okta's `eventType`) are far
/// more selective than where it happened (`eventSource`): any one required
/// field is a valid anchor, so the operation is preferred when present.
const SELECTIVE: [&str; 2] = ["eventName", "eventType"];

fn detection(d: &Detection) -> Option<Vec<String>> {
    match d {
        Detection::AllOf(items) => {
            let selective = items.iter().filter(|i| i.field.name.as_deref().is_some_and(|n| SELECTIVE.contains(&n)));
            smallest(selective.filter_map(item)).or_else(|| smallest(items.iter().filter_map(item)))
        }
        Detection::AnyOf(alternatives) => union(alternatives.iter().map(detection)),
        Detection::Keywords(values) => union(values.iter().map(|v| value(v).map(|a| vec![a]))),
        Detection::And(parts) => smallest(parts.iter().filter_map(detection)),
        _ => None,
    }
}

fn item(i: &DetectionItem) -> Option<Vec<String>> {
    let literal = |m: &Modifier| {
        matches!(m, Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::All | Modifier::Cased)
    };
    if i.field.modifiers == [Modifier::Re] {
        return union(i.values.iter().map(|v| match v {
            SigmaValue::String(s) => regex_literal(&s.original).map(|a| vec![a]),
            _ => None,
        }));
    }
    if i.values.is_empty() || !i.field.modifiers.iter().all(literal) {
        return None;
    }
    if i.field.has_modifier(Modifier::All) {
        // Every value must match: any one of them is required.
        return smallest(i.values.iter().filter_map(|v| value(v).map(|a| vec![a])));
    }
    union(i.values.iter().map(|v| value(v).map(|a| vec![a])))
}

/// The longest literal run every match of a simple regular expression
/// contains: only literals, `.`, and `+`/`*` after them are understood;
/// anything else (classes, groups, alternation, escapes) gives none.
fn regex_literal(re: &str) -> Option<String> {
    let mut runs = vec![String::new()];
    for c in re.chars() {
        match c {
            '.' => runs.push(String::new()),
            // The character before is required once; what follows may repeat it.
            '+' => runs.push(String::new()),
            // The character before is optional.
            '*' => {
                runs.last_mut()?.pop();
                runs.push(String::new());
            }
            '|' | '(' | ')' | '[' | ']' | '{' | '}' | '?' | '^' | '$' | '\\' => return None,
            c => runs.last_mut()?.push(c),
        }
    }
    let run = runs.into_iter().max_by_key(String::len)?;
    safe(&run).then_some(run)
}

fn safe(run: &str) -> bool {
    // In the raw record the value is JSON-encoded: only characters that
    // encode as themselves are safe to look for.
    run.len() >= MIN_ANCHOR && run.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// The longest literal run of a string value, when it is a safe anchor;
/// an integer's digits (a status code appears as written).
fn value(v: &SigmaValue) -> Option<String> {
    if let SigmaValue::Integer(i) = v {
        let digits = i.to_string();
        return (digits.len() >= MIN_ANCHOR).then_some(digits);
    }
    let SigmaValue::String(s) = v else { return None };
    let run = s
        .parts
        .iter()
        .filter_map(|p| match p {
            StringPart::Plain(t) => Some(t.as_str()),
            StringPart::Special(_) => None,
        })
        .max_by_key(|t| t.len())?;
    safe(run).then(|| run.to_string())
}

fn smallest(sets: impl Iterator<Item = Vec<String>>) -> Option<Vec<String>> {
    sets.min_by_key(|s| s.len())
}

fn union(sets: impl Iterator<Item = Option<Vec<String>>>) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for s in sets {
        out.extend(s?);
    }
    (!out.is_empty()).then_some(out)
}

/// Sigma selector patterns: `*` matches any run.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() && name.starts_with(head) && {
                let rest = &name[head.len()..];
                (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> SigmaRule {
        rsigma_parser::parse_sigma_yaml(yaml).unwrap().rules.remove(0)
    }

    const HEAD: &str = "title: t\nlogsource:\n  product: aws\n  service: cloudtrail\n";

    #[test]
    fn a_required_event_name_anchors_the_rule() {
        let r = rule(&format!(
            "{HEAD}detection:\n  selection:\n    eventSource: cloudtrail.amazonaws.com\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: selection\n"
        ));
        let a = anchors(&r).unwrap();
        // Either required field would do; the operation is the selective one.
        assert_eq!(a, vec!["StopLogging".to_string(), "DeleteTrail".to_string()]);
    }

    #[test]
    fn alternatives_are_anchored_only_when_every_branch_is() {
        let both = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: StopLogging\n  b:\n    eventName: DeleteTrail\n  condition: a or b\n"
        ));
        let mut a = anchors(&both).unwrap();
        a.sort();
        assert_eq!(a, vec!["DeleteTrail".to_string(), "StopLogging".to_string()]);
        let one = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: StopLogging\n  b:\n    errorCode|re: '.*'\n  condition: a or b\n"
        ));
        assert_eq!(anchors(&one), None);
    }

    #[test]
    fn negation_regex_and_short_values_give_no_anchor() {
        let not = rule(&format!("{HEAD}detection:\n  f:\n    eventName: GetObject\n  condition: not f\n"));
        assert_eq!(anchors(&not), None);
        let short = rule(&format!("{HEAD}detection:\n  s:\n    eventName: Ab\n  condition: s\n"));
        assert_eq!(anchors(&short), None);
        let escaped = rule(&format!("{HEAD}detection:\n  s:\n    eventName: 'a\"b\"c'\n  condition: s\n"));
        assert_eq!(anchors(&escaped), None);
    }

    #[test]
    fn wildcards_keep_their_longest_literal_run_and_selectors_expand() {
        let r = rule(&format!(
            "{HEAD}detection:\n  selection_a:\n    eventName: 'Put*Policy'\n  selection_b:\n    userAgent|contains: 'stratus'\n  condition: 1 of selection_*\n"
        ));
        let mut a = anchors(&r).unwrap();
        a.sort();
        assert_eq!(a, vec!["Policy".to_string(), "stratus".to_string()]);
        assert!(glob("selection_*", "selection_b") && !glob("selection_*", "filter"));
    }

    #[test]
    fn simple_regexes_and_status_codes_anchor_complex_regexes_do_not() {
        assert_eq!(regex_literal(".+:assumed-role/aws:.+").as_deref(), Some(":assumed-role/aws:"));
        assert_eq!(regex_literal("abcd*ef").as_deref(), Some("abc"), "d is optional");
        assert_eq!(regex_literal("(a|b)cdef"), None);
        assert_eq!(regex_literal("\\d+secret"), None);
        let r = rule(&format!(
            "{HEAD}detection:\n  s:\n    responseStatus.code:\n      - 401\n      - 403\n  condition: s\n"
        ));
        let mut a = anchors(&r).unwrap();
        a.sort();
        assert_eq!(a, vec!["401".to_string(), "403".to_string()]);
    }
}
