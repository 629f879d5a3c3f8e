//! Who may call which endpoint: API keys with scopes, sent as
//! `Authorization: Bearer <token>`. The keys are held in memory by hash and
//! re-read from `keys.db` every second, so a revocation takes effect
//! without a restart.
//!
//! Whether a key is required never depends on how many keys are active: it
//! is required once a key was ever created (`keys.db` keeps that marker
//! through every revocation, and this process never forgets having seen
//! it), and always when the server listens beyond loopback. Only a
//! loopback server whose data directory never had a key runs open. When
//! the key file cannot be read, every protected request is refused (503)
//! until it can be: the server fails closed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tenet_store::TablesAt;
use tenet_store::keys::{KeyStore, token_hash};

use crate::error::{ApiError, Where};

/// A caller that presented a valid key: its name (the author of what it changes).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Who changes are recorded as: the key's name, or `anonymous` for a
/// request without one (only an open loopback server takes those).
pub fn name_of(caller: Option<&Caller>) -> &str {
    caller.map_or("anonymous", |c| c.0.as_str())
}

#[derive(Default)]
struct Active {
    /// A valid key is needed (keys were configured, or the server is not on loopback).
    required: bool,
    /// Token hash → (name, scopes).
    by_hash: HashMap<String, (String, Vec<String>)>,
    /// Why the key file could not be read last time: every request is refused meanwhile.
    unreadable: Option<String>,
    /// The keys were read at least once (what a database outage keeps serving).
    read_once: bool,
}

/// The keys callers authenticate with.
#[derive(Clone)]
pub struct Keys {
    active: Arc<RwLock<Active>>,
    at: Option<TablesAt>,
}

/// How often the keys are read again.
const RELOAD_EVERY: Duration = Duration::from_millis(250);

impl Keys {
    /// No keys: every request allowed (the binary keeps such a server on loopback).
    pub fn open_access() -> Self {
        Keys { active: Arc::default(), at: None }
    }

    /// The keys at `at` (`keys.db`, or a PostgreSQL store's tables shared
    /// by nodes), re-read four times a second from now on: a revocation
    /// made anywhere holds on every node within a second, whenever in the
    /// interval it was made. `always_required`: a
    /// key is needed whatever the store says (a server listening beyond
    /// loopback).
    pub fn load(at: &TablesAt, always_required: bool) -> Result<Self, tenet_store::StoreError> {
        let active = Active { required: always_required, ..Active::default() };
        let keys = Keys { active: Arc::new(RwLock::new(active)), at: Some(at.clone()) };
        keys.reload()?;
        let k = keys.clone();
        let _ = std::thread::Builder::new().name("tenet-keys".into()).spawn(move || {
            let mut unreachable = false;
            loop {
                std::thread::sleep(RELOAD_EVERY);
                let was_readable = k.active.read().unwrap_or_else(|p| p.into_inner()).unreadable.is_none();
                let result = k.reload();
                let refusing = k.active.read().unwrap_or_else(|p| p.into_inner()).unreadable.is_some();
                match result {
                    // Said once per change, not at every reading.
                    Err(e) if was_readable && refusing => {
                        tracing::error!(error = %e, "API keys unreadable: refusing every protected request until they can be read")
                    }
                    Err(e) if !refusing && !unreachable => {
                        unreachable = true;
                        tracing::warn!(error = %e, "the key store cannot be reached: serving the keys as last read")
                    }
                    Ok(()) if !was_readable || unreachable => {
                        unreachable = false;
                        tracing::warn!("API keys readable again")
                    }
                    _ => {}
                }
            }
        });
        Ok(keys)
    }

    fn reload(&self) -> Result<(), tenet_store::StoreError> {
        let Some(at) = &self.at else { return Ok(()) };
        let snapshot = KeyStore::snapshot(at);
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        match snapshot {
            Ok(snap) => {
                let (marked, keys) = snap.map_or((false, Vec::new()), |s| (s.auth_required, s.active));
                // Once required, required for the life of the process, even
                // if the file is replaced by one that says otherwise.
                active.required |= marked;
                active.by_hash = keys.into_iter().map(|k| (k.hash, (k.name, k.scopes))).collect();
                active.unreadable = None;
                active.read_once = true;
                Ok(())
            }
            // A database that cannot be reached (a PostgreSQL restart) is
            // not a key store that went bad: the keys as last read keep
            // serving, since no revocation can be written while it is down
            // (one committed in the second before is the window).
            Err(e @ (tenet_store::StoreError::Unavailable { .. } | tenet_store::StoreError::Postgres(_)))
                if active.read_once && matches!(at, TablesAt::Postgres(_)) =>
            {
                Err(e)
            }
            Err(e) => {
                active.by_hash.clear();
                active.unreadable = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The name and scopes of the active key whose token hashes to `hash`;
    /// `None` for an unknown or revoked key, or while the keys are unreadable.
    pub fn holder_of_hash(&self, hash: &str) -> Option<(String, Vec<String>)> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        if active.unreadable.is_some() {
            return None;
        }
        active.by_hash.get(hash).cloned()
    }

    /// Whether callers need a valid key (also while the key file is unreadable).
    pub fn required(&self) -> bool {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        active.required || active.unreadable.is_some()
    }

    /// The caller's name if `authorization` carries a key holding `scope`;
    /// else the refusal.
    fn authorise(&self, authorization: Option<&str>, scope: &str) -> Result<Option<Caller>, ApiError> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &active.unreadable {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_unavailable",
                Where::Server,
                format!("the API keys cannot be read ({why}); no request is served until they can"),
            )
            .retry_after(1));
        }
        if !active.required {
            return Ok(None);
        }
        let Some(value) = authorization else {
            return Err(unauthorized(
                format!("an API key with scope {scope:?} is required (Authorization: Bearer <token>)"),
                false,
            ));
        };
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(unauthorized("the Authorization header must be `Bearer <token>`".into(), false));
        };
        match active.by_hash.get(&token_hash(token)) {
            None => Err(unauthorized("unknown or revoked API key".into(), true)),
            Some((name, scopes)) if !scopes.iter().any(|s| s == scope) => {
                let challenge = format!("Bearer realm=\"tenet\", error=\"insufficient_scope\", scope=\"{scope}\"");
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    Where::Header("authorization"),
                    format!("API key {name:?} lacks scope {scope:?} (it has {})", scopes.join(", ")),
                )
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer realm=\"tenet\"")),
                ))
            }
            Some((name, _)) => Ok(Some(Caller(name.clone()))),
        }
    }
}

/// 401 with the RFC 6750 challenge: the realm alone when no bearer token
/// came, `error="invalid_token"` when one came and is not valid.
fn unauthorized(message: String, invalid_token: bool) -> ApiError {
    let (code, challenge) = if invalid_token {
        (
            "invalid_token",
            HeaderValue::from_static(
                "Bearer realm=\"tenet\", error=\"invalid_token\", error_description=\"unknown or revoked API key\"",
            ),
        )
    } else {
        ("unauthorized", HeaderValue::from_static("Bearer realm=\"tenet\""))
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, Where::Header("authorization"), message)
        .header(header::WWW_AUTHENTICATE, challenge)
}

/// RFC 6750 §2.3's query parameter: URLs end up in logs, histories and
/// `Referer` headers, so a token there is refused even when valid.
fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"))
}

fn query_token_refused() -> ApiError {
    ApiError::bad_request(
        "invalid_request",
        Where::Path,
        "a token in the URL query (access_token) is refused: send it as Authorization: Bearer <token>",
    )
    .header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"tenet\", error=\"invalid_request\", error_description=\"tokens are accepted in the Authorization header only\"",
        ),
    )
}

/// Middleware: refuses requests without a key holding `scope`.
pub async fn require(State((keys, scope)): State<(Keys, &'static str)>, mut req: Request, next: Next) -> Response {
    if token_in_query(req.uri().query()) {
        return query_token_refused().into_response();
    }
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match keys.authorise(auth, scope) {
        Ok(caller) => {
            if let Some(c) = caller {
                req.extensions_mut().insert(c);
            }
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}
