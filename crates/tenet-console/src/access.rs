//! Who may see and change what in the console.
//!
//! A server that needs no keys (loopback, none created) is open: anyone
//! who can reach it reads and acts. Otherwise a person signs in with an
//! API key: `read` to see, `admin` to act. The session is a random id in
//! a cookie that scripts cannot read (`HttpOnly`) and browsers never send
//! from another site (`SameSite=Strict`); the key itself is never stored
//! in the browser, and a revoked key ends its sessions at once. Every
//! form that changes state carries the session's own random token, which
//! another site cannot read, and is refused without it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use tenet_server::auth::Keys;

use crate::Console;
use crate::page::Page;

const COOKIE: &str = "tenet_console";
/// A session ends this long after sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest go first beyond.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    /// The hash of the key signed in with: re-checked on every request.
    key_hash: String,
    csrf: String,
    expires: Instant,
}

/// The person looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The key's name (`anonymous` on an open server).
    pub name: String,
    /// May change state (scope `admin`).
    pub admin: bool,
    /// The token state-changing forms must carry.
    pub csrf: String,
}

pub struct Access {
    keys: Keys,
    sessions: Mutex<HashMap<String, Session>>,
    /// The forms' token while the server is open (no sessions then); empty
    /// if the system had no randomness to make one (forms are then refused).
    open_csrf: String,
}

/// 128 random bits as hex; `None` without an operating-system random source
/// (then no session or form token is made, and nothing is changed).
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Access {
    pub fn new(keys: Keys) -> Access {
        let open_csrf = random_hex().unwrap_or_else(|| {
            tracing::error!("no random source: the console refuses every change");
            String::new()
        });
        Access { keys, sessions: Mutex::new(HashMap::new()), open_csrf }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a key is needed to see anything.
    pub fn required(&self) -> bool {
        self.keys.required()
    }

    /// Who is looking, or `None` when they must sign in first.
    pub fn viewer(&self, headers: &HeaderMap) -> Option<Viewer> {
        if !self.keys.required() {
            return Some(Viewer { name: "anonymous".into(), admin: true, csrf: self.open_csrf.clone() });
        }
        let sid = cookie_value(headers, COOKIE)?;
        let mut sessions = self.lock();
        let session = sessions.get(sid)?;
        let holder = self.keys.holder_of_hash(&session.key_hash);
        match holder {
            Some((name, scopes)) if session.expires > Instant::now() && scopes.iter().any(|s| s == "read") => {
                Some(Viewer { name, admin: scopes.iter().any(|s| s == "admin"), csrf: session.csrf.clone() })
            }
            // Expired, or its key revoked or stripped of `read`: the session ends.
            _ => {
                sessions.remove(sid);
                None
            }
        }
    }

    /// A session for the holder of `token`, if it may read: its cookie.
    fn open_session(&self, token: &str) -> Result<HeaderValue, &'static str> {
        let key_hash = tenet_store::keys::token_hash(token.trim());
        match self.keys.holder_of_hash(&key_hash) {
            None => return Err("That key is unknown or revoked."),
            Some((_, scopes)) if !scopes.iter().any(|s| s == "read") => {
                return Err("That key lacks the read scope the console needs.");
            }
            Some(_) => {}
        }
        let (Some(sid), Some(csrf)) = (random_hex(), random_hex()) else {
            return Err("No session can be made: the system has no random source.");
        };
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(sid.clone(), Session { key_hash, csrf, expires: now + LIFETIME });
        let cookie = format!("{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", LIFETIME.as_secs());
        HeaderValue::from_str(&cookie).map_err(|_| "could not make the session cookie")
    }

    fn close_session(&self, headers: &HeaderMap) {
        if let Some(sid) = cookie_value(headers, COOKIE) {
            self.lock().remove(sid);
        }
    }
}

/// A form's token checked against the viewer's, and the right to act:
/// `Err` says why not (a 403).
pub(crate) fn check_form(viewer: &Viewer, form: &[(String, String)]) -> Result<(), &'static str> {
    check_token(viewer, form)?;
    if !viewer.admin {
        return Err("Changing anything needs a key with the admin scope.");
    }
    Ok(())
}

/// Whether a form came from this console's page for this session (its
/// token), for forms that change nothing and so need no `admin`.
pub(crate) fn check_token(viewer: &Viewer, form: &[(String, String)]) -> Result<(), &'static str> {
    let sent = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    if viewer.csrf.is_empty() || sent != Some(viewer.csrf.as_str()) {
        return Err("This form is out of date or did not come from this console. Reload the page and try again.");
    }
    Ok(())
}

/// Where to go after signing in: a path on this site only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

pub(crate) fn sign_in_redirect(path: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

pub(crate) async fn sign_in_page(State(c): State<Console>, axum::extract::Query(q): crate::Params) -> Response {
    let next = safe_next(q.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str()));
    sign_in_form(&c, &next, None, StatusCode::OK)
}

fn sign_in_form(c: &Console, next: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            @if !c.access.required() {
                p { "This console is open: it listens on loopback only and no API key exists. " a href="/" { "Go to the overview" } "." }
            }
            p { "Paste an API key with the " code { "read" } " scope (" code { "tenet key create NAME --scopes read,admin" } "). "
                "The key is checked and forgotten; the browser keeps only a session cookie." }
            @if let Some(p) = problem { p.problem role="alert" { (p) } }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "API key" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = Page { title: "Sign in", current: "", viewer: None, body }.render();
    *resp.status_mut() = status;
    resp
}

pub(crate) async fn sign_in(State(c): State<Console>, body: String) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let next = safe_next(field("next"));
    match c.access.open_session(field("token").unwrap_or("")) {
        Ok(cookie) => {
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Err(why) => sign_in_form(&c, &next, Some(why), StatusCode::UNAUTHORIZED),
    }
}

pub(crate) async fn sign_out(State(c): State<Console>, headers: HeaderMap, body: String) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if let Some(v) = c.access.viewer(&headers)
        && !v.csrf.is_empty()
        && form.iter().any(|(k, val)| k == "csrf" && *val == v.csrf)
    {
        c.access.close_session(&headers);
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tenet_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/findings?status=open")), "/findings?status=open");
        for bad in ["https://evil.example/", "//evil.example/", "/\\evil.example", "findings"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_change_needs_the_viewers_own_form_token_and_the_admin_scope() {
        let form = |t: &str| vec![("csrf".to_string(), t.to_string()), ("status".into(), "resolved".into())];
        let admin = Viewer { name: "ops".into(), admin: true, csrf: "abc".into() };
        assert!(check_form(&admin, &form("abc")).is_ok());
        assert!(check_form(&admin, &form("abd")).is_err(), "another token");
        assert!(check_form(&admin, &[]).is_err(), "no token");
        let reader = Viewer { admin: false, ..admin.clone() };
        assert!(check_form(&reader, &form("abc")).is_err(), "read only");
        let tokenless = Viewer { csrf: String::new(), ..admin };
        assert!(check_form(&tokenless, &form("")).is_err(), "no token could be made: nothing passes");
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; tenet_console=abc; b=2"));
        assert_eq!(cookie_value(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&h, "missing"), None);
    }
}
