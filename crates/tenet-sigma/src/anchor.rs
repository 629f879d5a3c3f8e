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
//!
//! An exact value of the field the normalised event keeps as its operation
//! (CloudTrail `eventName`, Okta `eventType`) is checked against the
//! operation instead of searched for in the text: a set lookup, not a scan.

use std::collections::HashMap;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SelectorPattern, SigmaRule, SigmaValue, StringPart,
};

/// Anchors shorter than this would hit nearly every record.
const MIN_ANCHOR: usize = 3;

/// A necessary sign of a match: the record's operation is this value
/// (compared lowercase), or this text occurs in the raw record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Anchor {
    Operation(String),
    Text(String),
}

/// At least one of these holds for every record the rule matches; `None`
/// when no such set can be derived. `operation` names the field the
/// normalised event keeps as its operation, for this rule's logsource.
pub fn anchors(rule: &SigmaRule, operation: Option<&str>) -> Option<Vec<Anchor>> {
    let d = &rule.detection;
    let mut best: Option<Vec<Anchor>> = None;
    // Several conditions are alternatives (any may match): all must be anchored.
    for c in &d.conditions {
        let set = condition(c, &d.named, operation)?;
        best.get_or_insert_with(Vec::new).extend(set);
    }
    best.filter(|b| !b.is_empty())
}

fn condition(c: &ConditionExpr, named: &HashMap<String, Detection>, op: Option<&str>) -> Option<Vec<Anchor>> {
    match c {
        ConditionExpr::Identifier(id) => detection(named.get(id)?, op),
        // One required part suffices: take the most selective.
        ConditionExpr::And(parts) => smallest(parts.iter().filter_map(|p| condition(p, named, op))),
        ConditionExpr::Or(parts) => union(parts.iter().map(|p| condition(p, named, op))),
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
                Quantifier::All => smallest(members.into_iter().filter_map(|d| detection(d, op))),
                // "1 of" or "N of": any member might be among those matching.
                Quantifier::Any | Quantifier::Count(_) => union(members.into_iter().map(|d| detection(d, op))),
            }
        }
    }
}

fn detection(d: &Detection, op: Option<&str>) -> Option<Vec<Anchor>> {
    match d {
        // Any one required field is a valid anchor; the operation is the
        // cheapest to check and the most selective, so it wins when present.
        Detection::AllOf(items) => {
            let on_operation = items.iter().filter(|i| op.is_some() && i.field.name.as_deref() == op);
            smallest(on_operation.filter_map(|i| item(i, op)))
                .or_else(|| smallest(items.iter().filter_map(|i| item(i, op))))
        }
        Detection::AnyOf(alternatives) => union(alternatives.iter().map(|d| detection(d, op))),
        Detection::Keywords(values) => union(values.iter().map(|v| value(v).map(|a| vec![Anchor::Text(a)]))),
        Detection::And(parts) => smallest(parts.iter().filter_map(|d| detection(d, op))),
        _ => None,
    }
}

fn item(i: &DetectionItem, op: Option<&str>) -> Option<Vec<Anchor>> {
    let literal = |m: &Modifier| {
        matches!(m, Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith | Modifier::All | Modifier::Cased)
    };
    let text = |v: &SigmaValue| value(v).map(|a| vec![Anchor::Text(a)]);
    if i.field.modifiers == [Modifier::Re] {
        return union(i.values.iter().map(|v| match v {
            SigmaValue::String(s) => regex_literal(&s.original).map(|a| vec![Anchor::Text(a)]),
            _ => None,
        }));
    }
    if i.values.is_empty() || !i.field.modifiers.iter().all(literal) {
        return None;
    }
    // Equality with plain values on the operation field: the values are the
    // operations it can match, whole.
    if op.is_some() && i.field.name.as_deref() == op && i.field.modifiers.is_empty() {
        let exact: Option<Vec<Anchor>> = i
            .values
            .iter()
            .map(|v| match v {
                SigmaValue::String(s) => {
                    s.as_plain().filter(|p| !p.is_empty()).map(|p| Anchor::Operation(p.to_ascii_lowercase()))
                }
                _ => None,
            })
            .collect();
        if exact.is_some() {
            return exact;
        }
    }
    if i.field.has_modifier(Modifier::All) {
        // Every value must match: any one of them is required.
        return smallest(i.values.iter().filter_map(text));
    }
    union(i.values.iter().map(text))
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

fn smallest(sets: impl Iterator<Item = Vec<Anchor>>) -> Option<Vec<Anchor>> {
    sets.min_by_key(|s| s.len())
}

fn union(sets: impl Iterator<Item = Option<Vec<Anchor>>>) -> Option<Vec<Anchor>> {
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
    const OP: Option<&str> = Some("eventName");

    fn sorted(mut a: Vec<Anchor>) -> Vec<Anchor> {
        a.sort();
        a
    }
    fn text(s: &str) -> Anchor {
        Anchor::Text(s.into())
    }
    fn op(s: &str) -> Anchor {
        Anchor::Operation(s.into())
    }

    #[test]
    fn an_exact_event_name_anchors_the_rule_on_the_operation() {
        let r = rule(&format!(
            "{HEAD}detection:\n  selection:\n    eventSource: cloudtrail.amazonaws.com\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: selection\n"
        ));
        assert_eq!(sorted(anchors(&r, OP).unwrap()), vec![op("deletetrail"), op("stoplogging")]);
        // Without an operation field (another logsource) the text is searched.
        assert_eq!(anchors(&r, None).unwrap(), vec![text("cloudtrail.amazonaws.com")]);
        // A wildcard or modifier on the operation makes it text again.
        let r = rule(&format!("{HEAD}detection:\n  s:\n    eventName|startswith: Delete\n  condition: s\n"));
        assert_eq!(anchors(&r, OP).unwrap(), vec![text("Delete")]);
    }

    #[test]
    fn alternatives_are_anchored_only_when_every_branch_is() {
        let both = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: StopLogging\n  b:\n    userAgent|contains: stratus\n  condition: a or b\n"
        ));
        assert_eq!(sorted(anchors(&both, OP).unwrap()), vec![op("stoplogging"), text("stratus")]);
        let one = rule(&format!(
            "{HEAD}detection:\n  a:\n    eventName: StopLogging\n  b:\n    errorCode|re: '.*'\n  condition: a or b\n"
        ));
        assert_eq!(anchors(&one, OP), None);
    }

    #[test]
    fn negation_regex_and_short_values_give_no_anchor() {
        let not = rule(&format!("{HEAD}detection:\n  f:\n    eventName: GetObject\n  condition: not f\n"));
        assert_eq!(anchors(&not, OP), None);
        let short = rule(&format!("{HEAD}detection:\n  s:\n    userAgent: Ab\n  condition: s\n"));
        assert_eq!(anchors(&short, OP), None);
        let escaped = rule(&format!("{HEAD}detection:\n  s:\n    userAgent: 'a\"b\"c'\n  condition: s\n"));
        assert_eq!(anchors(&escaped, OP), None);
    }

    #[test]
    fn wildcards_keep_their_longest_literal_run_and_selectors_expand() {
        let r = rule(&format!(
            "{HEAD}detection:\n  selection_a:\n    eventName: 'Put*Policy'\n  selection_b:\n    userAgent|contains: 'stratus'\n  condition: 1 of selection_*\n"
        ));
        assert_eq!(sorted(anchors(&r, OP).unwrap()), vec![text("Policy"), text("stratus")]);
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
        assert_eq!(sorted(anchors(&r, OP).unwrap()), vec![text("401"), text("403")]);
    }
}
