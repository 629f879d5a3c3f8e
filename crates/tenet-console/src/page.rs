//! The frame every page shares: navigation, the signed-in person, a skip
//! link for keyboards, and helpers for what many pages show (principals by
//! name with their reference a click away, pages of long lists).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::access::Viewer;

/// Rows per page of any list.
pub const PER_PAGE: usize = 50;

const SECTIONS: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/graph", "Trust graph"),
    ("/findings", "Findings"),
    ("/decisions", "Decisions"),
    ("/policies", "Policies"),
    ("/signals", "Signals"),
];

pub struct Page<'a> {
    pub title: &'a str,
    /// The navigation entry to mark current (its path).
    pub current: &'a str,
    pub viewer: Option<&'a Viewer>,
    pub body: Markup,
}

impl Page<'_> {
    pub fn render(self) -> Response {
        let html = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Tenet" }
                    link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                    link rel="stylesheet" href="/assets/console.css";
                    script src="/assets/console.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "Tenet" }
                        nav aria-label="Sections" {
                            ul {
                                @for (path, name) in SECTIONS {
                                    li {
                                        @if path == self.current {
                                            a href=(path) aria-current="page" { (name) }
                                        } @else {
                                            a href=(path) { (name) }
                                        }
                                    }
                                }
                            }
                        }
                        @if let Some(v) = self.viewer {
                            div.who {
                                span { (v.name) @if !v.admin { " (read only)" } }
                                @if v.name != "anonymous" {
                                    form method="post" action="/logout" {
                                        input type="hidden" name="csrf" value=(v.csrf);
                                        button.link type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                    main #main tabindex="-1" { (self.body) }
                }
            }
        };
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html.into_string())
            .into_response()
    }
}

/// A page whose body `build` makes from the site off the async workers
/// (it reads the store): rendered for `viewer`, or the refusal saying why
/// it could not be (`Ok(None)`: not found, said as `missing`).
pub async fn built(
    site: std::sync::Arc<dyn crate::Site>,
    viewer: &Viewer,
    current: &str,
    missing: &str,
    build: impl FnOnce(&dyn crate::Site) -> Result<Option<(String, Markup)>, String> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || build(&*site)).await {
        Ok(Ok(Some((title, body)))) => Page { title: &title, current, viewer: Some(viewer), body }.render(),
        Ok(Ok(None)) => refusal(StatusCode::NOT_FOUND, missing),
        Ok(Err(why)) => refusal(StatusCode::SERVICE_UNAVAILABLE, &why),
        Err(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A page saying why something was refused or not found.
pub fn refusal(status: StatusCode, why: &str) -> Response {
    let body = html! { section.card.narrow { h1 { (status.canonical_reason().unwrap_or("Refused")) } p role="alert" { (why) } p { a href="/" { "Back to the overview" } } } };
    let mut resp =
        Page { title: status.canonical_reason().unwrap_or("Refused"), current: "", viewer: None, body }.render();
    *resp.status_mut() = status;
    resp
}

/// What people call a principal when nothing better is known: an email
/// for a person, an agent's id, an IAM user's or role's name with its kind
/// and account.
pub fn display_name(id: &str) -> String {
    if let Some(rest) = id.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (_, service, _, account, resource) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next());
        if let Some(resource) = resource {
            let (kind, path) = resource.split_once('/').unwrap_or(("", resource));
            let name = path.rsplit('/').next().unwrap_or(path);
            let account = account.filter(|a| !a.is_empty()).map(|a| format!(" in {a}")).unwrap_or_default();
            return format!("{name} ({} {kind}{account})", service.unwrap_or("aws"));
        }
    }
    id.split_once(':').map_or(id, |(_, rest)| rest).to_string()
}

/// A principal by the name people use, linking to its page, with its
/// canonical reference in the link's title.
pub fn principal(id: &str, display: Option<&str>) -> Markup {
    let fallback;
    let shown = match display {
        Some(d) => d,
        None => {
            fallback = display_name(id);
            fallback.as_str()
        }
    };
    let href = format!("/principals/{}", encode(id));
    html! { a.principal href=(href) title=(id) { (shown) } }
}

pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `?page=N` (1-based) from a list's parameters.
pub fn page_number(params: &[(String, String)]) -> usize {
    params.iter().find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok()).filter(|&n| n >= 1).unwrap_or(1)
}

/// The URL of page `n` of a list, keeping its other parameters.
fn page_link(base: &str, params: &[(String, String)], n: usize, anchor: &str) -> String {
    let mut q: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "page").cloned().collect();
    q.push(("page".into(), n.to_string()));
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(q).finish();
    format!("{base}?{query}{anchor}")
}

/// Links to the previous and next pages of a list of `total` rows, keeping
/// the other parameters.
pub fn pager(base: &str, params: &[(String, String)], page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(PER_PAGE).max(1);
    let link = |n: usize| page_link(base, params, n, "");
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Previous" } }
            span { "Page " (page.min(pages)) " of " (pages) " · " (total) " in all" }
            @if page < pages { a href=(link(page + 1)) rel="next" { "Next →" } }
        }
    }
}

/// Links to the previous and next pages of a list whose length is not
/// counted (read newest first until a page is full).
pub fn pager_more(base: &str, params: &[(String, String)], page: usize, more: bool, anchor: &str) -> Markup {
    let link = |n: usize| page_link(base, params, n, anchor);
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Newer" } }
            span { "Page " (page) }
            @if more { a href=(link(page + 1)) rel="next" { "Older →" } }
        }
    }
}

/// An event time as people read it: `2026-10-09 19:20 UTC`.
pub fn when(t: tenet_model::Timestamp) -> String {
    let s = t.to_string();
    match (s.get(..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

/// Inline SVG drawn by this server (never user text).
pub fn svg(markup: String) -> Markup {
    PreEscaped(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_named_as_people_call_them() {
        assert_eq!(display_name("user:alice@example.com"), "alice@example.com");
        assert_eq!(display_name("agent:agt-42"), "agt-42");
        assert_eq!(display_name("arn:aws:iam::111122223333:user/alice"), "alice (iam user in 111122223333)");
        assert_eq!(display_name("arn:aws:iam::111122223333:role/ops/deploy"), "deploy (iam role in 111122223333)");
        assert_eq!(display_name("plain"), "plain");
    }
}
