//! Policies: the Cedar policies decisions are made with now, whether the
//! directory they come from still validates, and every version activated,
//! with what changed (a line diff per file).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tenet_store::decisions::PolicyVersion;

use crate::page::{self, PER_PAGE};
use crate::{Console, Params, Site};

/// The active policy set as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivePolicies {
    pub version: String,
    /// The directory the service reads them from (and watches).
    pub directory: String,
    /// File name → its text.
    pub files: Vec<(String, String)>,
    /// Policy id → the file it is in.
    pub policies: Vec<(String, String)>,
    pub warnings: Vec<String>,
    /// The directory as it is now on disk: the version it would make, or
    /// why it does not validate.
    pub on_disk: Result<String, String>,
}

pub(crate) async fn page(State(c): State<Console>, headers: HeaderMap, params: Params) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/policies") };
    let pg = page::page_number(&params.0);
    let build = move |site: &dyn Site| {
        let active = site.policies()?;
        let mut history = site.policy_versions()?;
        history.reverse();
        Ok(Some(("Policies".to_string(), body(&active, &history, &params.0, pg))))
    };
    page::built(c.site.clone(), &viewer, "/policies", "", build).await
}

fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}

fn body(active: &ActivePolicies, history: &[PolicyVersion], params: &[(String, String)], pg: usize) -> Markup {
    html! {
        h1 { "Policies" }
        section.card aria-labelledby="status" {
            h2 #status { "Validation" }
            p { "Decisions are made with version " code { (short(&active.version)) } ": "
                (active.policies.len()) " policies in " (active.files.len()) " file(s) from " code { (active.directory) } "." }
            @match &active.on_disk {
                Ok(v) if *v == active.version => p.ok { "✓ The directory validates (Cedar syntax and, where a schema is given, types) and is the active version." },
                Ok(v) => p.problem { "The directory has changed: version " code { (short(v)) } " validates and becomes active within a second." },
                Err(why) => p.problem role="alert" { "✗ The directory does not validate: " (why) ". The service keeps deciding with the active version until it does." },
            }
            @if !active.warnings.is_empty() {
                ul.warnings { @for w in &active.warnings { li { (w) } } }
            }
        }
        section.card aria-labelledby="current" {
            h2 #current { "Current policies" }
            ul.policy-ids {
                @for (id, file) in &active.policies {
                    li #(format!("policy-{}", page::encode(id))) { code { (id) } " in " a href=(format!("#file-{}", page::encode(file))) { (file) } }
                }
            }
            @for (name, text) in &active.files {
                details.file #(format!("file-{}", page::encode(name))) open {
                    summary { code { (name) } }
                    pre { code { (text) } }
                }
            }
        }
        section.card aria-labelledby="history" {
            h2 #history { "Version history" }
            @if history.is_empty() { p { "No version recorded yet." } } @else {
                @for v in history.iter().skip((pg - 1) * PER_PAGE).take(PER_PAGE) {
                    article.version {
                        h3 { code { (short(&v.version)) } " · " (v.at.get(..19).unwrap_or(&v.at).replace('T', " ")) " · by " (v.author)
                            @if v.version == active.version { " · " strong { "active" } } }
                        @if v.diff.is_empty() { p { "No change to the files." } } @else {
                            details {
                                summary { "What changed (" (v.diff.lines().filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---")).count()) " lines)" }
                                (diff(&v.diff))
                            }
                        }
                    }
                }
                (page::pager("/policies", params, pg, history.len()))
            }
        }
    }
}

/// A unified diff with its added and removed lines marked.
fn diff(text: &str) -> Markup {
    html! {
        pre.diff {
            @for line in text.lines() {
                @if line.starts_with("+++") || line.starts_with("---") { span.file { (line) } "\n" }
                @else if line.starts_with('+') { ins { (line) } "\n" }
                @else if line.starts_with('-') { del { (line) } "\n" }
                @else { (line) "\n" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_added_and_removed_lines_and_escapes_policy_text() {
        let html = diff("--- a.cedar\n+++ a.cedar\n-permit(<x>);\n+forbid(principal, action, resource);\n unchanged")
            .into_string();
        assert!(html.contains("<del>-permit(&lt;x&gt;);</del>"), "{html}");
        assert!(html.contains("<ins>+forbid(principal, action, resource);</ins>"));
        assert!(html.contains("<span class=\"file\">--- a.cedar</span>"));
    }
}
