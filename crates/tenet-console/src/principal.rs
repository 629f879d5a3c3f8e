//! A principal's page: who it is (kind, names, groups, whom it acts for
//! and which agents act for it), its risk over time, its findings and what
//! it did lately.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tenet_store::{EventQuery, FindingQuery};

use crate::page;
use crate::{Console, Id, Site};

/// Findings and events shown; the findings list has the rest.
const SHOWN: usize = 25;

pub(crate) async fn page(State(c): State<Console>, headers: HeaderMap, Path(id): Id) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return crate::access::sign_in_redirect(&format!("/principals/{}", page::encode(&id)));
    };
    let missing = format!("Tenet knows no principal {id}.");
    page::built(c.site.clone(), &viewer, "", &missing, move |site: &dyn Site| build(site, &id)).await
}

fn build(site: &dyn Site, id: &str) -> Result<Option<(String, Markup)>, String> {
    let card = site.principal(id);
    let canonical = card.as_ref().map_or(id, |c| c.principal.id.as_str()).to_string();
    let reader = site.reader()?;
    let history = reader.risk_history(&canonical).map_err(|e| format!("reading risk: {e}"))?;
    let query = FindingQuery { principal: Some(canonical.clone()), ..FindingQuery::default() };
    let mut findings = reader.findings(&query).map_err(|e| format!("reading findings: {e}"))?;
    if card.is_none() && history.is_empty() && findings.is_empty() {
        return Ok(None);
    }
    findings.reverse();
    let events = reader
        .query(&EventQuery { principal: Some(canonical.clone()), limit: Some(SHOWN), ..EventQuery::default() })
        .map_err(|e| format!("reading events: {e}"))?;
    let display = card.as_ref().map_or_else(|| page::display_name(&canonical), |c| c.principal.display.clone());
    let now = history.last();
    let chart = (history.len() >= 2).then(|| {
        let days: Vec<String> = history.iter().map(|p| page::when(p.at)[5..16].to_string()).collect();
        let scores = history.iter().map(|p| u32::from(p.score)).collect();
        crate::chart::lines(&days, &[("risk score".into(), scores)], crate::chart::Join::Steps, 880, 200)
    });
    let body = html! {
        h1 { (display) }
        dl.facts {
            dt { "Reference" } dd { code { (canonical) } " · " a href=(format!("/graph?focus={}", page::encode(&canonical))) { "explore what it can reach" } }
            @if let Some(c) = &card {
                dt { "Kind" } dd { (c.principal.kind.as_str()) }
                @if !c.aliases.is_empty() { dt { "Also known as" } dd { @for a in &c.aliases { code { (a) } " " } } }
                @if !c.groups.is_empty() { dt { "Groups" } dd { (c.groups.join(", ")) } }
                @if !c.acts_for.is_empty() { dt { "Acts for" } dd { @for p in &c.acts_for { (page::principal(p, None)) " " } } }
                @if !c.agents.is_empty() { dt { "Agents acting for it" } dd { @for a in &c.agents { (page::principal(a, None)) " " } } }
            }
            dt { "Risk now" }
            dd {
                @match now {
                    Some(p) => span class=(format!("risk-{}", p.level.as_str())) { (p.level.as_str()) " (" (p.score) ")" },
                    None => "none recorded",
                }
            }
        }
        section.card aria-labelledby="risk" {
            h2 #risk { "Risk over time" }
            @match chart {
                None => p { "Not enough history for a chart yet." },
                Some(Ok(svg)) => div.chart role="img" aria-label=(format!("Risk score over time, now {}", now.map_or(0, |p| p.score))) { (page::svg(svg)) },
                Some(Err(e)) => p.problem { "The chart could not be drawn: " (e) },
            }
        }
        section.card aria-labelledby="findings" {
            h2 #findings { "Findings" }
            @if findings.is_empty() {
                p { "None." }
            } @else {
                table.findings {
                    thead { tr { th scope="col" { "Raised" } th scope="col" { "Category" } th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Summary" } } }
                    tbody {
                        @for f in findings.iter().take(SHOWN) {
                            tr {
                                td { a href=(format!("/findings/{}", f.id)) { (page::when(f.raised_at)) } }
                                td { (f.category.as_str().replace('_', " ")) }
                                td class=(format!("sev-{}", f.severity.as_str())) { (f.severity.as_str()) }
                                td { (f.status.as_str()) }
                                td.summary { (f.summary.chars().take(200).collect::<String>()) }
                            }
                        }
                    }
                }
                @if findings.len() > SHOWN {
                    p { a href=(format!("/findings?principal={}", page::encode(&canonical))) { "All " (findings.len()) " findings" } }
                }
            }
        }
        section.card aria-labelledby="events" {
            h2 #events { "Latest activity" }
            @if events.is_empty() {
                p { "No event stored." }
            } @else {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Resource" } th scope="col" { "As" } } }
                    tbody {
                        @for e in events.iter().rev() {
                            tr {
                                td { (page::when(e.time)) }
                                td { code { (e.action.service) ":" (e.action.operation) } }
                                td { @if let Some(r) = e.resources.first() { code { (r.id) } } }
                                td { (page::principal(&e.actor.id, None)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Some((display, body)))
}
