//! Signals: the Shared Signals streams Tenet transmits on, their receivers
//! and delivery state, and the latest trust changes they were told of.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use crate::page;
use crate::{Console, Site};

pub(crate) async fn page(State(c): State<Console>, headers: HeaderMap, params: crate::Params) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/signals") };
    let wrap = move |site: &dyn Site| build(site, &params.0).map(|body| Some(("Signals".to_string(), body)));
    page::built(c.site.clone(), &viewer, "/signals", "", wrap).await
}

fn build(site: &dyn Site, params: &[(String, String)]) -> Result<Markup, String> {
    let pg = page::page_number(params);
    let streams = site.streams()?;
    let (recent, total) = site.recent_changes((pg - 1) * page::PER_PAGE, page::PER_PAGE)?;
    Ok(html! {
        h1 { "Shared Signals" }
        p.live #live aria-live="polite" data-changes="/console/changes" { "Live: updates as trust changes." }
        section.card aria-labelledby="streams" {
            h2 #streams { "Streams" }
            @if streams.is_empty() {
                p { "No receiver has a stream yet. A receiver creates one with an API key holding the "
                    code { "ssf" } " scope: " code { "POST /ssf/stream" } " (see " code { "/.well-known/ssf-configuration" } ")." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Receiver" } th scope="col" { "Status" } th scope="col" { "Delivery" }
                        th scope="col" { "Events" } th.num scope="col" { "Delivered" } th.num scope="col" { "Failed" }
                        th.num scope="col" { "Waiting" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for s in &streams {
                            tr {
                                td { (s.receiver) br; code.small { (s.stream_id) } }
                                td { (s.status) }
                                td { (s.delivery) }
                                td { (s.events.join(", ")) }
                                td.num { (s.delivered) }
                                td.num { (s.failed) }
                                td.num class=(if s.pending > 0 { "risk-high" } else { "" }) { (s.pending) }
                                td { (s.last_error.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="recent" {
            h2 #recent { "Latest trust changes" }
            @if recent.is_empty() {
                p { "None announced yet." }
            } @else {
                table {
                    thead { tr { th.num scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Principal" } th scope="col" { "What changed" } } }
                    tbody {
                        @for n in &recent {
                            tr {
                                td.num { (n.seq) }
                                td { (page::when(n.at)) }
                                td { (page::principal(&n.principal, None)) }
                                td { (n.change.describe()) }
                            }
                        }
                    }
                }
                (page::pager("/signals", params, pg, total))
            }
        }
    })
}
