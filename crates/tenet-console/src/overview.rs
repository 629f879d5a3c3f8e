//! The overview: trust posture now. Principals by kind and risk, the
//! riskiest ones, alerts by category over time and what is still open.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tenet_model::{Category, FindingStatus, PrincipalKind, RiskLevel};
use tenet_store::FindingQuery;

use crate::page;
use crate::{Console, Site};

const KINDS: [(PrincipalKind, &str); 3] =
    [(PrincipalKind::Human, "People"), (PrincipalKind::Workload, "Workloads"), (PrincipalKind::Agent, "Agents")];
const LEVELS: [RiskLevel; 4] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High, RiskLevel::Critical];
/// Days the chart spans, back from the newest alert.
const CHART_DAYS: i64 = 14;

pub(crate) async fn page(State(c): State<Console>, headers: HeaderMap) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/") };
    let cache = c.drift.clone();
    let wrap = move |site: &dyn Site| build(site, &cache).map(|body| Some(("Overview".to_string(), body)));
    page::built(c.site.clone(), &viewer, "/", "", wrap).await
}

/// Drift is recomputed at most this often (it walks the reach of every
/// principal a change touched).
const DRIFT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The last drift computed, with the graph revision and when.
pub(crate) type DriftCache =
    std::sync::Mutex<Option<(u64, std::time::Instant, Vec<(&'static str, crate::explorer::DriftWindow)>)>>;

fn drift(site: &dyn Site, cache: &DriftCache) -> Vec<(&'static str, crate::explorer::DriftWindow)> {
    let shared = site.graph();
    let graph = shared.read();
    let revision = graph.revision();
    let mut cached = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((r, at, windows)) = &*cached
        && (*r == revision || at.elapsed() < DRIFT_EVERY)
    {
        return windows.clone();
    }
    let windows = crate::explorer::drift_windows(&graph);
    *cached = Some((revision, std::time::Instant::now(), windows.clone()));
    windows
}

/// `0 s`, `12 min`, `3 h`, `2 days`.
fn behind(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn build(site: &dyn Site, cache: &DriftCache) -> Result<Markup, String> {
    let drift = drift(site, cache);
    let sources = site.sources();
    let reader = site.reader()?;
    let principals = site.principals();
    let risk = reader.risk(None).map_err(|e| format!("reading risk: {e}"))?;
    let findings = reader.findings(&FindingQuery::default()).map_err(|e| format!("reading findings: {e}"))?;
    let risk_of: HashMap<&str, (u8, RiskLevel)> =
        risk.iter().map(|p| (p.principal.as_str(), (p.score, p.level))).collect();
    let display: HashMap<&str, &str> = principals.iter().map(|p| (p.id.as_str(), p.display.as_str())).collect();

    // Principals by kind and risk level.
    let mut grid: HashMap<(usize, usize), usize> = HashMap::new();
    for p in &principals {
        let level = risk_of.get(p.id.as_str()).map_or(RiskLevel::Low, |r| r.1);
        if let (Some(k), Some(l)) =
            (KINDS.iter().position(|(k, _)| *k == p.kind), LEVELS.iter().position(|l| *l == level))
        {
            *grid.entry((k, l)).or_default() += 1;
        }
    }
    // The riskiest principals, by score.
    let mut riskiest: Vec<&tenet_model::RiskPoint> = risk.iter().filter(|p| p.score > 0).collect();
    riskiest.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.principal.cmp(&b.principal)));
    riskiest.truncate(10);

    // Alerts raised per day and category, over the last days of data.
    let alerts: Vec<&tenet_model::Finding> = findings.iter().filter(|f| f.alert && f.category.is_alert()).collect();
    let day = |t: tenet_model::Timestamp| t.unix_nanos().div_euclid(86_400 * 1_000_000_000);
    let last = alerts.iter().map(|f| day(f.raised_at)).max();
    let chart = last.map(|last| {
        let first = last - (CHART_DAYS - 1);
        let days: Vec<String> = (first..=last)
            .map(|d| page::when(tenet_model::Timestamp::from_unix_nanos(d * 86_400 * 1_000_000_000))[5..10].to_string())
            .collect();
        let series: Vec<(String, Vec<u32>)> = Category::ALL
            .iter()
            .filter(|c| c.is_alert())
            .map(|c| {
                let mut counts = vec![0u32; days.len()];
                for f in alerts.iter().filter(|f| f.category == *c) {
                    let d = day(f.raised_at);
                    if d >= first {
                        counts[(d - first) as usize] += 1;
                    }
                }
                (c.as_str().replace('_', " "), counts)
            })
            .collect();
        (days, series)
    });
    let open: Vec<(Category, usize)> = Category::ALL
        .iter()
        .filter(|c| c.is_alert())
        .map(|c| (*c, alerts.iter().filter(|f| f.category == *c && f.status == FindingStatus::Open).count()))
        .collect();

    Ok(html! {
        h1 { "Trust posture" }
        p.live #live aria-live="polite" data-changes="/console/changes" { "Live: updates as trust changes." }
        div.grid {
            section.card aria-labelledby="by-kind" {
                h2 #by-kind { "Principals by kind and risk" }
                table {
                    thead { tr { th scope="col" { "Kind" } @for l in LEVELS { th.num scope="col" { (l.as_str()) } } } }
                    tbody {
                        @for (k, (_, name)) in KINDS.iter().enumerate() {
                            tr {
                                th scope="row" { (name) }
                                @for (i, l) in LEVELS.iter().enumerate() {
                                    @let n = grid.get(&(k, i)).copied().unwrap_or(0);
                                    td.num class=(format!("risk-{}", l.as_str())) { (n) }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="open" {
                h2 #open { "Open alerts" }
                ul.counts {
                    @for (c, n) in &open {
                        li {
                            a href=(format!("/findings?category={}&status=open", c.as_str())) { (c.as_str().replace('_', " ")) }
                            span.num { (n) }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="over-time" {
            h2 #over-time { "Alerts raised per day, by category" }
            @match &chart {
                None => p { "No alert raised yet." },
                Some((days, series)) => {
                    @match crate::chart::lines(days, series, crate::chart::Join::Line, 880, 240) {
                        Ok(svg) => figure {
                            div.chart role="img" aria-label="Alerts raised per day by category; the table below gives the numbers" { (page::svg(svg)) }
                            figcaption {
                                ul.legend {
                                    @for (i, (name, values)) in series.iter().enumerate() {
                                        li { span.swatch style=(format!("background:{}", crate::chart::colour(i))) {} (name) " (" (values.iter().sum::<u32>()) ")" }
                                    }
                                }
                            }
                        },
                        Err(e) => p.problem { "The chart could not be drawn: " (e) },
                    }
                }
            }
        }
        section.card aria-labelledby="drift" {
            h2 #drift { "Drift: how trust moved" }
            @if drift.is_empty() { p { "The trust graph is empty: no inventory or events yet." } } @else {
                div.grid {
                    @for (name, w) in &drift {
                        div {
                            h3 { (name) }
                            ul.counts {
                                li { "New indirect paths" span.num { (w.emerged) } }
                                li { "Grants and other facts added" span.num { (w.added) } }
                                li { "Facts removed" span.num { (w.removed) } }
                                li { "Policies edited" span.num { (w.changed) } }
                            }
                            @if !w.widest.is_empty() {
                                p.muted { "Widest new access:" }
                                ol.widest {
                                    @for (who, what, how) in &w.widest {
                                        li { a href=(crate::explorer::compare_url(who, w)) title=(how) { (page::display_name(who)) } ": " (what) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="sources" {
            h2 #sources { "Source coverage" }
            @if sources.is_empty() { p { "No telemetry received yet." } } @else {
                @let flagged = sources.iter().filter(|s| s.state != crate::SourceState::Healthy).count();
                @if flagged > 0 { p.problem role="status" { (flagged) " source(s) need attention: missing visibility is itself a risk." } }
                table.sources {
                    thead { tr { th scope="col" { "Source" } th scope="col" { "State" } th scope="col" { "Last event" } th.num scope="col" { "Behind the newest" }
                        th.num scope="col" { "Last day" } th.num scope="col" { "Usual day" } th.num scope="col" { "All" } th scope="col" { "Last delivered" } } }
                    tbody {
                        @for s in &sources {
                            tr class=(format!("source-{}", s.state.as_str())) {
                                th scope="row" { (s.source) }
                                td { span class=(format!("state-{}", s.state.as_str())) { (s.state.as_str()) } @if !s.why.is_empty() { br; small { (s.why) } } }
                                td { (page::when(s.last_event)) }
                                td.num { (behind(s.behind_seconds)) }
                                td.num { (s.last_day) }
                                td.num { @match s.daily_average { Some(a) => (format!("{a:.0}")), None => "—" } }
                                td.num { (s.total) }
                                td { @match s.delivered { Some(t) => (page::when(t)), None => "not since start" } }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="riskiest" {
            h2 #riskiest { "Riskiest principals" }
            @if riskiest.is_empty() {
                p { "No principal carries risk." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Principal" } th.num scope="col" { "Score" } th scope="col" { "Level" } th.num scope="col" { "Open alerts" } } }
                    tbody {
                        @for p in &riskiest {
                            tr {
                                td { (page::principal(&p.principal, display.get(p.principal.as_str()).copied())) }
                                td.num { (p.score) }
                                td class=(format!("risk-{}", p.level.as_str())) { (p.level.as_str()) }
                                td.num { (p.findings.len()) }
                            }
                        }
                    }
                }
            }
        }
    })
}
