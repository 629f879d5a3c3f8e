//! A principal's page: who it is (kind, names, groups, whom it acts for
//! and which agents act for it), its risk over time, its baseline against
//! its recent day, a timeline of its events and findings, its blast radius
//! and the delegation chains it is part of.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tenet_store::{EventQuery, FindingQuery};

use crate::page::{self, PER_PAGE};
use crate::{Console, Id, Site};

/// Findings and events shown; the findings list has the rest.
const SHOWN: usize = 25;
/// Events read for the timeline and the observed delegation chains.
const RECENT_EVENTS: usize = 200;
/// The recent window compared with the baseline before it.
const RECENT: i64 = 86_400;
const BASELINE_DAYS: i64 = 14;
/// Rows of each top list, identities and chains shown.
const TOP: usize = 8;

pub(crate) async fn page(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Id,
    params: crate::Params,
) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else {
        return crate::access::sign_in_redirect(&format!("/principals/{}", page::encode(&id)));
    };
    let missing = format!("Tenet knows no principal {id}.");
    let pg = page::page_number(&params.0);
    page::built(c.site.clone(), &viewer, "", &missing, move |site: &dyn Site| build(site, &id, pg)).await
}

fn build(site: &dyn Site, id: &str, pg: usize) -> Result<Option<(String, Markup)>, String> {
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
    // The timeline's page `pg` needs the newest pg × PER_PAGE events.
    let read = RECENT_EVENTS.max(pg * PER_PAGE + 1);
    let events = reader
        .query(&EventQuery { principal: Some(canonical.clone()), limit: Some(read), ..EventQuery::default() })
        .map_err(|e| format!("reading events: {e}"))?;
    let profile = match events.last() {
        Some(newest) => {
            let until = newest.time.saturating_add_seconds(1);
            let split = until.saturating_add_seconds(-RECENT);
            let since = split.saturating_add_seconds(-BASELINE_DAYS * 86_400);
            let read = |a, b| reader.activity(&canonical, a, b).map_err(|e| format!("reading activity: {e}"));
            Some(Profile::of(&read(since, split)?, &read(split, until)?))
        }
        None => None,
    };
    let reach = reach_summary(site, &canonical);
    let chains = observed_chains(&events, &canonical);
    let timeline = timeline(&events, &findings);
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
            @if !reach.owners.is_empty() { dt { "Owner" } dd { @for o in &reach.owners { (page::principal(o, None)) " " } } }
            @if !reach.owns.is_empty() { dt { "Owns" } dd { @for o in &reach.owns { (page::principal(o, None)) " " } } }
            @if !reach.roles.is_empty() { dt { "Roles" } dd { @for r in reach.roles.iter().take(TOP) { (page::principal(r, None)) " " } @if reach.roles.len() > TOP { "and " (reach.roles.len() - TOP) " more" } } }
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
                (crate::findings::table(&findings.iter().take(SHOWN).collect::<Vec<_>>(), false))
                @if findings.len() > SHOWN {
                    p { a href=(format!("/findings?principal={}", page::encode(&canonical))) { "All " (findings.len()) " findings" } }
                }
            }
        }
        section.card aria-labelledby="baseline" {
            h2 #baseline { "Baseline against its last day" }
            @match &profile {
                None => p { "No event stored." },
                Some(p) => (p.render()),
            }
        }
        section.card aria-labelledby="reach" {
            h2 #reach { "Blast radius" }
            (reach.render(&canonical))
        }
        section.card aria-labelledby="chains" {
            h2 #chains { "Delegation chains" }
            @if reach.chains.is_empty() && chains.is_empty() { p { "It is part of no delegation: no agent acts for it, it acts for no one." } }
            @if !reach.chains.is_empty() {
                h3 { "Declared (inventory and agent registry)" }
                ul.chains { @for c in reach.chains.iter().take(TOP) { li { (c) } } }
            }
            @if !chains.is_empty() {
                h3 { "Seen in its latest events" }
                table {
                    thead { tr { th scope="col" { "Chain (who acted for whom)" } th.num scope="col" { "Events" } } }
                    tbody { @for (chain, n) in chains.iter().take(TOP) { tr { td { @for (i, p) in chain.iter().enumerate() { @if i > 0 { " → " } (page::principal(p, None)) } } td.num { (n) } } } }
                }
            }
        }
        section.card aria-labelledby="timeline" {
            h2 #timeline { "Timeline: events and findings" }
            @let more = timeline.len() > pg * PER_PAGE;
            @if timeline.is_empty() {
                p { "No event stored." }
            } @else {
                table.timeline {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Detail" } } }
                    tbody {
                        @for entry in timeline.iter().skip((pg - 1) * PER_PAGE).take(PER_PAGE) {
                            @match entry {
                                Entry::Event(e) => tr {
                                    td { (page::when(e.time)) }
                                    td { code { (e.action.service) ":" (e.action.operation) } }
                                    td {
                                        @if let Some(r) = e.resources.first() { code { (r.id) } " " }
                                        @if e.actor.id != canonical { "as " (page::principal(&e.actor.id, None)) }
                                    }
                                },
                                Entry::Finding(f) => tr.finding {
                                    td { (page::when(f.raised_at)) }
                                    td { a href=(format!("/findings/{}", f.id)) { (f.category.as_str().replace('_', " ")) } " " span class=(format!("sev-{}", f.severity.as_str())) { "(" (f.severity.as_str()) ")" } }
                                    td {
                                        (f.summary.chars().take(200).collect::<String>())
                                        @for d in f.evidence.iter().take(3) { br; small.baseline { "deviation: " (d.detector) " — " (d.detail.chars().take(160).collect::<String>()) } }
                                    }
                                },
                            }
                        }
                    }
                }
                (page::pager_more(&format!("/principals/{}", page::encode(&canonical)), &[], pg, more, "#timeline"))
            }
        }
    };
    Ok(Some((display, body)))
}

/// Activity in the baseline window and in the recent one.
struct Profile {
    /// (action, baseline count, recent count), most frequent first.
    actions: Vec<(String, u64, u64)>,
    services: Vec<(String, u64, u64)>,
    /// Per hour of the day (UTC): (baseline, recent).
    hours: [(u64, u64); 24],
    base: u64,
    recent: u64,
}

impl Profile {
    fn of(base: &[(String, u8, u64)], recent: &[(String, u8, u64)]) -> Profile {
        use std::collections::HashMap;
        let mut actions: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut services: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut hours = [(0u64, 0u64); 24];
        for (rows, recent) in [(base, false), (recent, true)] {
            for (action, hour, n) in rows {
                let slot = |c: &mut (u64, u64)| if recent { c.1 += n } else { c.0 += n };
                slot(actions.entry(action).or_default());
                slot(services.entry(action.split(':').next().unwrap_or(action)).or_default());
                slot(&mut hours[usize::from(*hour) % 24]);
            }
        }
        let ranked = |m: HashMap<&str, (u64, u64)>| {
            let mut v: Vec<(String, u64, u64)> = m.into_iter().map(|(k, (b, r))| (k.to_string(), b, r)).collect();
            v.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
            v
        };
        let (base, recent) = hours.iter().fold((0, 0), |(b, r), h| (b + h.0, r + h.1));
        Profile { actions: ranked(actions), services: ranked(services), hours, base, recent }
    }

    /// What the recent day did that the baseline never did, first.
    fn render(&self) -> Markup {
        let share =
            |n: u64, of: u64| if of == 0 { "—".to_string() } else { format!("{:.0}%", 100.0 * n as f64 / of as f64) };
        let new_first = |v: &[(String, u64, u64)]| -> Vec<(String, u64, u64)> {
            let mut v = v.to_vec();
            v.sort_by_key(|(_, b, r)| !(*b == 0 && *r > 0));
            v
        };
        let list = |title: &str, rows: &[(String, u64, u64)]| {
            html! {
                div {
                    h3 { (title) }
                    table {
                        thead { tr { th scope="col" { "" } th.num scope="col" { "Baseline" } th.num scope="col" { "Last day" } } }
                        tbody {
                            @for (name, b, r) in new_first(rows).iter().take(TOP) {
                                tr class=[(*b == 0 && *r > 0).then_some("new")] {
                                    td { code { (name) } @if *b == 0 && *r > 0 { " " span.badge.new { "new" } } }
                                    td.num { (share(*b, self.base)) }
                                    td.num { (share(*r, self.recent)) }
                                }
                            }
                        }
                    }
                }
            }
        };
        let peak = self.hours.iter().map(|h| h.0.max(1) as f64 / self.base.max(1) as f64).fold(0.0, f64::max);
        html! {
            p { (self.base) " events in the " (BASELINE_DAYS) " days before its last day; " (self.recent) " in its last day. Shares of each." }
            div.grid.three {
                (list("Top actions", &self.actions))
                (list("Top services", &self.services))
                div {
                    h3 { "Hours (UTC)" }
                    table.hours {
                        thead { tr { th scope="col" { "Hour" } th scope="col" { "Baseline" } th.num scope="col" { "Last day" } } }
                        tbody {
                            @for (h, (b, r)) in self.hours.iter().enumerate() {
                                @if *b > 0 || *r > 0 {
                                    tr class=[(*b == 0 && *r > 0).then_some("new")] {
                                        th scope="row" { (format!("{h:02}:00")) }
                                        td { span.bar style=(format!("width:{:.0}%", 100.0 * (*b as f64 / self.base.max(1) as f64) / peak.max(f64::MIN_POSITIVE))) {} }
                                        td.num { (r) @if *b == 0 && *r > 0 { " " span.badge.new { "never before" } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the graph says the principal can reach, now.
#[derive(Default)]
struct ReachSummary {
    identities: Vec<(String, String)>,
    grants: usize,
    wildcard_grants: usize,
    /// Declared delegation paths, in words.
    chains: Vec<String>,
    known: bool,
    /// Who owns it (an agent's or a workload's owners), what it owns.
    owners: Vec<String>,
    owns: Vec<String>,
    /// Roles it can assume or was seen assuming.
    roles: Vec<String>,
}

fn reach_summary(site: &dyn Site, canonical: &str) -> ReachSummary {
    let shared = site.graph();
    let graph = shared.read();
    let view = graph.current();
    let Some(reach) = view.reach(canonical) else { return ReachSummary::default() };
    let mut out = ReachSummary { known: true, ..ReachSummary::default() };
    if let Some(id) = view.id(canonical) {
        let mine = view.aliases(id);
        let names = |ids: &mut dyn Iterator<Item = tenet_graph::intern::Id>| -> Vec<String> {
            let mut v: Vec<String> = ids.map(|i| view.name(i).to_string()).collect();
            v.sort();
            v.dedup();
            v
        };
        out.owners = names(&mut mine.iter().flat_map(|a| view.owners_of(*a).iter().copied()));
        out.owns = names(&mut view.present_nodes().filter(|n| view.owners_of(*n).iter().any(|o| mine.contains(o))));
        let mut roles: Vec<String> = names(&mut mine.iter().flat_map(|a| view.assumed_roles(*a).iter().copied()));
        roles.extend(
            reach.identities.iter().filter(|r| r.kind == tenet_model::NodeKind::ROLE).map(|r| r.identity.to_string()),
        );
        roles.sort();
        roles.dedup();
        out.roles = roles;
    }
    for (_, g) in reach.grants() {
        out.grants += 1;
        if g.actions().contains('*') && g.resources() == "*" {
            out.wildcard_grants += 1;
        }
    }
    for r in reach.identities.iter().skip(1) {
        let how = r.via.iter().map(|h| h.reason().to_string()).collect::<Vec<_>>().join("; then ");
        out.identities.push((r.identity.to_string(), how));
        if r.via.iter().any(|h| matches!(h.edge(), "delegation" | "tool")) {
            let mut words = page::display_name(canonical);
            for h in &r.via {
                words.push_str(&format!(" → {} ({})", page::display_name(h.to), h.edge()));
            }
            out.chains.push(words);
        }
    }
    out
}

impl ReachSummary {
    fn render(&self, canonical: &str) -> Markup {
        let explore = format!("/graph?focus={}", page::encode(canonical));
        html! {
            @if !self.known { p { "The trust graph does not know it (no inventory names it)." } } @else {
                p { "It can act as " strong { (self.identities.len()) } " other identities and holds " strong { (self.grants) } " grants within reach"
                    @if self.wildcard_grants > 0 { ", " strong.problem { (self.wildcard_grants) } " of them on every resource with wildcard actions" } ". "
                    a href=(explore) { "Explore it in the trust graph" } "." }
                @if !self.identities.is_empty() {
                    table {
                        thead { tr { th scope="col" { "Can act as" } th scope="col" { "How" } } }
                        tbody { @for (id, how) in self.identities.iter().take(TOP) { tr { td { (page::principal(id, None)) } td { (how) } } } }
                    }
                    @if self.identities.len() > TOP { p { a href=(format!("/graph?focus={}", page::encode(canonical))) { "All " (self.identities.len()) " in the trust graph" } } }
                }
            }
        }
    }
}

/// The distinct chains (agent for person, role session of a person) in
/// the events that name the principal, with how many events each.
fn observed_chains(events: &[tenet_model::Event], canonical: &str) -> Vec<(Vec<String>, usize)> {
    let mut counts: std::collections::BTreeMap<Vec<String>, usize> = Default::default();
    for e in events.iter().filter(|e| e.chain.len() > 1) {
        let chain: Vec<String> = e.chain.iter().map(|p| p.id.clone()).collect();
        if chain.iter().any(|p| p == canonical) || e.actor.id == canonical {
            *counts.entry(chain).or_default() += 1;
        }
    }
    let mut v: Vec<(Vec<String>, usize)> = counts.into_iter().collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.1));
    v
}

enum Entry<'a> {
    Event(&'a tenet_model::Event),
    Finding(&'a tenet_model::Finding),
}

/// Events and findings, newest first.
fn timeline<'a>(events: &'a [tenet_model::Event], findings: &'a [tenet_model::Finding]) -> Vec<Entry<'a>> {
    let mut all: Vec<(tenet_model::Timestamp, Entry<'a>)> = events.iter().map(|e| (e.time, Entry::Event(e))).collect();
    all.extend(findings.iter().map(|f| (f.raised_at, Entry::Finding(f))));
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    all.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_counts_shares_and_marks_what_the_last_day_did_first() {
        let base = vec![("s3:GetObject".to_string(), 9u8, 90u64), ("s3:ListBucket".to_string(), 10, 10)];
        let recent = vec![("s3:GetObject".to_string(), 9u8, 5u64), ("iam:CreateUser".to_string(), 3, 1)];
        let p = Profile::of(&base, &recent);
        assert_eq!((p.base, p.recent), (100, 6));
        assert_eq!(p.actions[0], ("s3:GetObject".to_string(), 90, 5));
        assert_eq!(p.services[0], ("s3".to_string(), 100, 5));
        assert_eq!(p.hours[3], (0, 1));
        let html = p.render().into_string();
        assert!(html.contains("iam:CreateUser</code> <span class=\"badge new\">new</span>"), "{html}");
        assert!(html.contains("never before"), "an hour never seen before is marked");
    }
}
