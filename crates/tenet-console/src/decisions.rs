//! Decisions: the decision log, searchable, and a page per decision with
//! the request, the policies that determined it, the trust signals it was
//! made with and the reason; "evaluate again now" asks the decision point
//! the same question with today's policies and signals (not logged: no
//! enforcement point asked, nothing is granted).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use tenet_store::decisions::{COUNTED, DecisionRow, DecisionSearch};

use crate::access::Viewer;
use crate::page::{self, PER_PAGE};
use crate::{Console, Params, Site};

/// A decision made again now by the decision point.
#[derive(Debug, Clone, PartialEq)]
pub struct Redecided {
    pub allowed: bool,
    pub reason: String,
    pub policies: Vec<String>,
    pub errors: Vec<String>,
    /// The trust signals it was decided with, as the log keeps them.
    pub signals: Value,
    pub policy_version: String,
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, v)| k == key && !v.trim().is_empty()).map(|(_, v)| v.trim())
}

pub(crate) async fn list(State(c): State<Console>, headers: HeaderMap, Query(params): Params) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/decisions") };
    let decision = match param(&params, "decision") {
        None => None,
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some(other) => {
            return page::refusal(StatusCode::BAD_REQUEST, &format!("decision: {other:?} is neither allow nor deny"));
        }
    };
    let pg = page::page_number(&params);
    let search = DecisionSearch {
        text: param(&params, "q").map(str::to_string),
        decision,
        offset: (pg - 1) * PER_PAGE,
        limit: PER_PAGE,
    };
    let build = move |site: &dyn Site| {
        let (rows, total) = site.decisions(&search)?;
        Ok(Some(("Decisions".to_string(), list_body(&params, &search, &rows, total, pg))))
    };
    page::built(c.site.clone(), &viewer, "/decisions", "", build).await
}

/// Who asked for what, from a logged request.
struct Asked {
    subject: String,
    action: String,
    resource: String,
    context: Option<Value>,
}

fn asked(request: &str) -> Asked {
    let v: Value = serde_json::from_str(request).unwrap_or(Value::Null);
    let entity = |e: &Value| match (e["type"].as_str(), e["id"].as_str()) {
        (Some(t), Some(i)) => format!("{t}:{i}"),
        _ => "?".to_string(),
    };
    Asked {
        subject: entity(&v["subject"]),
        action: v["action"]["name"].as_str().unwrap_or("?").to_string(),
        resource: entity(&v["resource"]),
        context: v.get("context").filter(|c| c.as_object().is_some_and(|o| !o.is_empty())).cloned(),
    }
}

fn verdict(allowed: bool) -> Markup {
    if allowed {
        html! { span.allow { "allowed" } }
    } else {
        html! { span.deny { "denied" } }
    }
}

fn list_body(
    params: &[(String, String)],
    search: &DecisionSearch,
    rows: &[DecisionRow],
    total: usize,
    pg: usize,
) -> Markup {
    let chosen = |v: &str| param(params, "decision") == Some(v);
    html! {
        h1 { "Decisions" }
        form.filters method="get" action="/decisions" role="search" {
            label { "Search requests " input type="search" name="q" value=[search.text.as_deref()] placeholder="a subject, action, resource or request id" size="40"; }
            label { "Decision "
                select name="decision" {
                    option value="" { "any" }
                    option value="allow" selected[chosen("allow")] { "allowed" }
                    option value="deny" selected[chosen("deny")] { "denied" }
                }
            }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p { @if search.text.is_some() || search.decision.is_some() { "No decision matches." } @else {
                "No decision logged yet. Enforcement points ask at " code { "POST /access/v1/evaluation" } " (AuthZEN 1.0)." } }
        } @else {
            table.decisions {
                thead { tr { th scope="col" { "When" } th scope="col" { "Subject" } th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "Decision" } th scope="col" { "Policies" } } }
                tbody {
                    @for r in rows {
                        @let a = asked(&r.record.request);
                        tr {
                            td { a href=(format!("/decisions/{}", r.seq)) { (r.record.at.get(..19).unwrap_or(&r.record.at).replace('T', " ")) } }
                            td { (page::principal(&a.subject, None)) }
                            td { code { (a.action) } }
                            td { code { (a.resource) } }
                            td { (verdict(r.record.decision)) }
                            td { (policies_of(&r.record.reasons).join(", ")) }
                        }
                    }
                }
            }
            (page::pager("/decisions", params, pg, total))
            @if total >= COUNTED { p.muted { "Counting stopped at " (COUNTED) " matches; narrow the search to see fewer." } }
        }
    }
}

fn policies_of(reasons: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(reasons).unwrap_or(Value::Null);
    v["policies"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect()
}

pub(crate) async fn one(State(c): State<Console>, headers: HeaderMap, Path(seq): Path<String>) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return crate::access::sign_in_redirect(&format!("/decisions/{}", page::encode(&seq)));
    };
    show(c, viewer, seq, false).await
}

/// "Evaluate again now": a POST (with the form's token), since it asks the
/// decision point a question; it changes nothing, so `read` is enough.
pub(crate) async fn evaluate(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(seq): Path<String>,
    body: String,
) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return page::refusal(StatusCode::UNAUTHORIZED, "Sign in first.");
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if let Err(why) = crate::access::check_token(&viewer, &form) {
        return page::refusal(StatusCode::FORBIDDEN, why);
    }
    show(c, viewer, seq, true).await
}

async fn show(c: Console, viewer: Viewer, seq: String, again: bool) -> Response {
    let Ok(n) = seq.parse::<i64>() else {
        return page::refusal(StatusCode::NOT_FOUND, &format!("{seq:?} is not a decision's number."));
    };
    let missing = format!("The decision log has no decision {n}.");
    let csrf = viewer.csrf.clone();
    page::built(c.site.clone(), &viewer, "/decisions", &missing, move |site: &dyn Site| {
        let Some(row) = site.decision(n)? else { return Ok(None) };
        let now = again.then(|| site.evaluate_again(&row.record.request));
        Ok(Some((format!("Decision {n}"), one_body(&row, now, &csrf))))
    })
    .await
}

fn one_body(row: &DecisionRow, now: Option<Result<Redecided, String>>, csrf: &str) -> Markup {
    let r = &row.record;
    let a = asked(&r.request);
    let reasons: Value = serde_json::from_str(&r.reasons).unwrap_or(Value::Null);
    let list = |k: &str| -> Vec<String> {
        reasons[k].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect()
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let request: Value = serde_json::from_str(&r.request).unwrap_or_else(|_| Value::String(r.request.clone()));
    html! {
        p.crumbs { a href="/decisions" { "Decisions" } " › " (row.seq) }
        h1 { (a.subject) " · " (a.action) " · " (a.resource) ": " (verdict(r.decision)) }
        dl.facts {
            dt { "When" } dd { (r.at) }
            dt { "Subject" } dd { (page::principal(&a.subject, None)) }
            dt { "Action" } dd { code { (a.action) } }
            dt { "Resource" } dd { code { (a.resource) } }
            dt { "Decision" } dd { (verdict(r.decision)) }
            dt { "Why" } dd { (reasons["reason"].as_str().unwrap_or("no reason was logged")) }
            dt { "Determining policies" } dd { @if list("policies").is_empty() { "none (nothing permitted it: denied by default)" } @else {
                @for p in list("policies") { a href=(format!("/policies#policy-{}", page::encode(&p))) { code { (p) } } " " } } }
            @if !list("errors").is_empty() { dt { "Policies that failed" } dd.problem { (list("errors").join("; ")) } }
            dt { "Policy version" } dd { a href="/policies#history" { code { (r.policy_version.get(..12).unwrap_or(&r.policy_version)) } } }
            @if let Some(id) = &r.request_id { dt { "Request id" } dd { code { (id) } } }
        }
        section.card aria-labelledby="signals" {
            h2 #signals { "Trust signals it was decided with" }
            (signals_table(&reasons["signals"]))
        }
        section.card aria-labelledby="request" {
            h2 #request { "The request" }
            @if let Some(ctx) = &a.context { p { "With context: " code { (ctx.to_string()) } } }
            pre.json { code { (pretty(&request)) } }
        }
        section.card aria-labelledby="again" {
            h2 #again { "Would it still be allowed?" }
            form method="post" action=(format!("/decisions/{}/evaluate", row.seq)) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Evaluate again now" }
                " with the current policies and trust signals (not logged; nothing is granted)."
            }
            @match now {
                None => {},
                Some(Err(why)) => p.problem role="alert" { "It could not be decided again: " (why) },
                Some(Ok(d)) => {
                    div #now role="status" {
                        p { "Now: " strong { (verdict(d.allowed)) }
                            @if d.allowed != r.decision { " — " strong.problem { "changed since it was logged" } } @else { " — as when it was logged" } }
                        dl.facts {
                            dt { "Why" } dd { (d.reason) }
                            dt { "Determining policies" } dd { @if d.policies.is_empty() { "none" } @else { (d.policies.join(", ")) } }
                            @if !d.errors.is_empty() { dt { "Policies that failed" } dd.problem { (d.errors.join("; ")) } }
                            dt { "Policy version" } dd { code { (d.policy_version.get(..12).unwrap_or(&d.policy_version)) } }
                        }
                        (signals_table(&d.signals))
                    }
                }
            }
        }
    }
}

/// The signals as a table of names and values (`null`: none were available).
fn signals_table(signals: &Value) -> Markup {
    let Some(map) = signals.as_object().filter(|m| !m.is_empty()) else {
        return html! { p { "No trust signal was available for this subject." } };
    };
    html! {
        table.signals {
            thead { tr { th scope="col" { "Signal" } th scope="col" { "Value" } } }
            tbody {
                @for (k, v) in map {
                    tr { th scope="row" { (k.replace('_', " ")) } td { (signal_value(v)) } }
                }
            }
        }
    }
}

/// A signal's value in words: `level: critical, score: 82`.
fn signal_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), signal_value(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a.iter().map(signal_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_request_is_read_as_who_asked_for_what() {
        let a = asked(
            r#"{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"document","id":"plan"},"context":{"ip":"10.0.0.1"}}"#,
        );
        assert_eq!(
            (a.subject.as_str(), a.action.as_str(), a.resource.as_str()),
            ("user:alice", "read", "document:plan")
        );
        assert!(a.context.is_some());
        let broken = asked("not json");
        assert_eq!(broken.subject, "?");
    }

    #[test]
    fn signals_are_said_in_words() {
        let v: Value =
            serde_json::from_str(r#"{"level":"critical","score":82,"findings":["a","b"],"novel":null}"#).unwrap();
        assert_eq!(signal_value(&v), "level: critical, score: 82, findings: a, b, novel: none");
    }

    #[test]
    fn the_determining_policies_are_read_from_the_logged_reasons() {
        assert_eq!(policies_of(r#"{"policies":["p1","p2"],"errors":[]}"#), vec!["p1", "p2"]);
        assert!(policies_of("{}").is_empty());
    }
}
