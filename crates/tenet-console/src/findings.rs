//! Findings: a filterable list, and a page per finding with what a person
//! needs to decide: the summary in plain words, the evidence grouped by
//! behaviour, the baseline deviations, the ATT&CK ids, and the decision
//! itself (acknowledge, resolve, suppress, with a reason).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use tenet_model::{Category, Finding, FindingStatus};
use tenet_store::FindingQuery;

use crate::page::{self, PER_PAGE, Page};
use crate::{Console, Id, Params};

/// Events shown per behaviour; the rest are listed by id.
const EVENTS_SHOWN: usize = 10;

const STATUSES: [FindingStatus; 4] =
    [FindingStatus::Open, FindingStatus::Acknowledged, FindingStatus::Resolved, FindingStatus::Suppressed];

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
}

pub(crate) async fn list(State(c): State<Console>, headers: HeaderMap, Query(params): Params) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/findings") };
    let category = match param(&params, "category").map(str::parse::<Category>) {
        Some(Err(e)) => return page::refusal(StatusCode::BAD_REQUEST, &e.to_string()),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let status = match param(&params, "status").map(str::parse::<FindingStatus>) {
        Some(Err(e)) => return page::refusal(StatusCode::BAD_REQUEST, &e.to_string()),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let principal = param(&params, "principal").map(str::to_string);
    let query = FindingQuery { category, principal: principal.clone(), status, include_quiet: false };
    let site = c.site.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Finding>, String> {
        let reader = site.reader()?;
        reader.findings(&query).map_err(|e| format!("reading findings: {e}"))
    })
    .await;
    let mut found = match found {
        Ok(Ok(f)) => f,
        Ok(Err(why)) => return page::refusal(StatusCode::SERVICE_UNAVAILABLE, &why),
        Err(e) => return page::refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    found.reverse();
    let total = found.len();
    let n = page::page_number(&params);
    let shown: Vec<&Finding> = found.iter().skip((n - 1) * PER_PAGE).take(PER_PAGE).collect();
    let body = html! {
        h1 { "Findings" }
        form.filters method="get" action="/findings" {
            label { "Category "
                select name="category" {
                    option value="" { "any" }
                    @for c in Category::ALL {
                        option value=(c.as_str()) selected[category == Some(c)] { (c.as_str().replace('_', " ")) }
                    }
                }
            }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) } }
                }
            }
            label { "Principal "
                input type="text" name="principal" value=(principal.as_deref().unwrap_or("")) placeholder="user:alice@example.com, an ARN…";
            }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            p { "No finding matches." }
        } @else {
            (table(&shown, true))
        }
        (page::pager("/findings", &params, n, total))
    };
    Page { title: "Findings", current: "/findings", viewer: Some(&viewer), body }.render()
}

/// Findings as a table, newest first as given; `principal`: with a column
/// naming whose each is (not on a principal's own page).
pub(crate) fn table(findings: &[&Finding], principal: bool) -> maud::Markup {
    html! {
        table.findings {
            thead { tr {
                th scope="col" { "Raised" } @if principal { th scope="col" { "Principal" } } th scope="col" { "Category" }
                th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Summary" }
            } }
            tbody {
                @for f in findings {
                    tr {
                        td { a href=(format!("/findings/{}", f.id)) { (page::when(f.raised_at)) } }
                        @if principal { td { (page::principal(&f.principal, None)) } }
                        td { (f.category.as_str().replace('_', " ")) }
                        td class=(format!("sev-{}", f.severity.as_str())) { (f.severity.as_str()) }
                        td { (f.status.as_str()) }
                        td.summary { a href=(format!("/findings/{}", f.id)) { (first_sentence(&f.summary)) } }
                    }
                }
            }
        }
    }
}

fn first_sentence(s: &str) -> &str {
    let end = s.find(". ").map_or(s.len(), |i| i + 1);
    s.get(..end.min(240)).unwrap_or(s)
}

pub(crate) async fn one(State(c): State<Console>, headers: HeaderMap, Path(id): Id) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return crate::access::sign_in_redirect(&format!("/findings/{}", page::encode(&id)));
    };
    let site = c.site.clone();
    let wanted = id.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Option<(Finding, Vec<tenet_model::Event>)>, String> {
        let reader = site.reader()?;
        let Some(f) = reader.finding(&wanted).map_err(|e| format!("reading the finding: {e}"))? else {
            return Ok(None);
        };
        // The first events of each behaviour, to show (by time: the store is ordered by it).
        let ids: std::collections::HashSet<String> = f
            .behaviours
            .iter()
            .flat_map(|b| b.event_ids.iter().take(EVENTS_SHOWN))
            .map(|e| e.as_str().to_string())
            .collect();
        // Under every name the principal goes by: its events may name an alias.
        let mut names = vec![f.principal.clone()];
        names.extend(site.principal(&f.principal).map(|c| c.aliases).unwrap_or_default());
        let mut events: Vec<tenet_model::Event> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            let found = reader
                .events_among(name, f.first_seen, f.last_seen, &ids)
                .map_err(|e| format!("reading the evidence: {e}"))?;
            events.extend(found.into_iter().filter(|e| seen.insert(e.id.clone())));
        }
        Ok(Some((f, events)))
    })
    .await;
    let (f, events) = match found {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return page::refusal(StatusCode::NOT_FOUND, &format!("No finding {id}.")),
        Ok(Err(why)) => return page::refusal(StatusCode::SERVICE_UNAVAILABLE, &why),
        Err(e) => return page::refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let by_id: std::collections::HashMap<&str, &tenet_model::Event> =
        events.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut paths: Vec<&String> = f.evidence.iter().flat_map(|e| e.path.iter()).collect();
    paths.sort();
    paths.dedup();
    let around = format!(
        "/graph?focus={}&at={}&since={}",
        page::encode(&f.principal),
        f.last_seen.unix_seconds(),
        f.first_seen.unix_seconds() - 86_400
    );
    let body = html! {
        p.crumbs { a href="/findings" { "Findings" } " › " (f.id) }
        h1 { (f.category.as_str().replace('_', " ")) " · " span class=(format!("sev-{}", f.severity.as_str())) { (f.severity.as_str()) } }
        dl.facts {
            dt { "Principal" } dd { (page::principal(&f.principal, None)) " " code { (f.principal) } }
            dt { "Status" } dd #status { (f.status.as_str()) }
            dt { "Seen" } dd { (page::when(f.first_seen)) " → " (page::when(f.last_seen)) }
            dt { "Confidence" } dd { (format!("{:.0}%", f.confidence * 100.0)) }
            @if !f.techniques.is_empty() { dt { "ATT&CK" } dd { @for t in &f.techniques { code.tech { (t) } " " } } }
        }
        section.card aria-labelledby="summary" {
            h2 #summary { "What happened" }
            p.summary { (f.summary) }
            @if !f.explanation.is_empty() { p { strong { "Why this category: " } (f.explanation) } }
        }
        @if !f.behaviours.is_empty() {
            section.card aria-labelledby="behaviours" {
                h2 #behaviours { "Evidence by behaviour" }
                @for b in &f.behaviours {
                    article.behaviour {
                        h3 { (b.behaviour.label()) @if let Some(t) = &b.tactic { " " code { (t) } } }
                        p { (b.summary) }
                        @if !b.techniques.is_empty() { p { @for t in &b.techniques { code.tech { (t) } " " } } }
                        table.events {
                            thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "By" } } }
                            tbody {
                                @for id in b.event_ids.iter().take(EVENTS_SHOWN) {
                                    @if let Some(e) = by_id.get(id.as_str()) {
                                        tr {
                                            td { (page::when(e.time)) }
                                            td { code { (e.action.service) ":" (e.action.operation) } }
                                            td { @if let Some(r) = e.resources.first() { code { (r.id) } } }
                                            td { (page::principal(&e.actor.id, None)) }
                                        }
                                    } @else {
                                        tr { td colspan="4" { code { (id.as_str()) } " (not among the events that name this principal in the finding's window: attributed to it through another identity, such as its tool's role session)" } }
                                    }
                                }
                            }
                        }
                        @if b.event_ids.len() > EVENTS_SHOWN {
                            details { summary { "All " (b.event_ids.len()) " event ids" } ul.ids { @for e in &b.event_ids { li { code { (e.as_str()) } } } } }
                        }
                    }
                }
            }
        }
        @if !f.evidence.is_empty() {
            section.card aria-labelledby="deviations" {
                h2 #deviations { "Deviations from the baseline" }
                ul.evidence {
                    @for e in &f.evidence {
                        li {
                            span.detector { (e.detector) } " " (page::when(e.at)) " — " (e.detail)
                            @if let Some(b) = &e.baseline {
                                div.baseline { "baseline (" (b.scope) "): " (b.feature) " = " (b.observed) "; expected " (b.expected) " (learned from " (b.history) " events)" }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="path" {
            h2 #path { "In the trust graph" }
            @if paths.is_empty() { p { "No trust-graph path is part of its evidence." } } @else {
                ul.paths { @for p in &paths { li { code { (p) } } } }
            }
            p { a href=(around) { "Explore what changed around it" } " (the principal's reach as of the finding, compared with the day before it began)." }
        }
        section.card aria-labelledby="decide" {
            h2 #decide { "Decide" }
            @if viewer.admin {
                form.decide method="post" action=(format!("/findings/{}/status", f.id)) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="reason" { "Reason (kept in the finding's history)" }
                    input #reason type="text" name="reason" required maxlength="2048";
                    div.actions {
                        @for (s, label) in [(FindingStatus::Acknowledged, "Acknowledge"), (FindingStatus::Resolved, "Resolve"), (FindingStatus::Suppressed, "Suppress"), (FindingStatus::Open, "Reopen")] {
                            @if s != f.status { button type="submit" name="status" value=(s.as_str()) { (label) } }
                        }
                    }
                }
            } @else {
                p { "Deciding needs a key with the admin scope." }
            }
            @if !f.history.is_empty() {
                h3 { "History" }
                ol.history {
                    @for h in &f.history { li { (page::when(h.at)) ": " (h.from.as_str()) " → " (h.to.as_str()) @if let Some(r) = &h.reason { " — " (r) } } }
                }
            }
        }
    };
    Page { title: &format!("Finding {}", f.id), current: "/findings", viewer: Some(&viewer), body }.render()
}

pub(crate) async fn set_status(State(c): State<Console>, headers: HeaderMap, Path(id): Id, body: String) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return page::refusal(StatusCode::UNAUTHORIZED, "Sign in first.");
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if let Err(why) = crate::access::check_form(&viewer, &form) {
        return page::refusal(StatusCode::FORBIDDEN, why);
    }
    let to = match param(&form, "status").map(str::parse::<FindingStatus>) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return page::refusal(StatusCode::BAD_REQUEST, &e.to_string()),
        None => return page::refusal(StatusCode::BAD_REQUEST, "Choose what to do with the finding."),
    };
    let reason = param(&form, "reason").map(str::trim).unwrap_or("").to_string();
    if reason.is_empty() || reason.len() > 2048 {
        return page::refusal(
            StatusCode::BAD_REQUEST,
            "Give a reason (at most 2048 bytes): it is kept in the finding's history.",
        );
    }
    let site = c.site.clone();
    let target = id.clone();
    let by = viewer.name.clone();
    let done = tokio::task::spawn_blocking(move || site.set_finding_status(&target, to, &reason, &by)).await;
    match done {
        Ok(Ok(_)) => Redirect::to(&format!("/findings/{}", page::encode(&id))).into_response(),
        Ok(Err(why)) => page::refusal(StatusCode::CONFLICT, &why),
        Err(e) => page::refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
