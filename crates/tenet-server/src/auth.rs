//! Who may call which endpoint: API keys with scopes, sent as
//! `Authorization: Bearer <token>`. The active keys are held in memory by
//! hash and re-read from `keys.db` every second, so a revocation takes
//! effect without a restart. With no key configured the server runs open,
//! and the binary refuses to listen anywhere but loopback.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tenet_store::keys::{KeyStore, token_hash};

use crate::error::{ApiError, Where};

/// A caller that presented a valid key: its name (the author of what it changes).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

#[derive(Default)]
struct Active {
    /// Token hash → (name, scopes).
    by_hash: HashMap<String, (String, Vec<String>)>,
}

/// The keys callers authenticate with.
#[derive(Clone)]
pub struct Keys {
    active: Arc<RwLock<Active>>,
    path: Option<PathBuf>,
}

impl Keys {
    /// No keys: every request allowed (the binary keeps such a server on loopback).
    pub fn open_access() -> Self {
        Keys { active: Arc::default(), path: None }
    }

    /// The keys in `path` (`keys.db`), re-read every second from now on.
    pub fn load(path: &Path) -> Result<Self, tenet_store::StoreError> {
        let keys = Keys { active: Arc::default(), path: Some(path.to_path_buf()) };
        keys.reload()?;
        let k = keys.clone();
        let _ = std::thread::Builder::new().name("tenet-keys".into()).spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                if let Err(e) = k.reload() {
                    tracing::warn!(error = %e, "API keys not re-read; keeping the last read");
                }
            }
        });
        Ok(keys)
    }

    fn reload(&self) -> Result<(), tenet_store::StoreError> {
        let Some(path) = &self.path else { return Ok(()) };
        let by_hash = KeyStore::open(path)?.active()?.into_iter().map(|k| (k.hash, (k.name, k.scopes))).collect();
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Active { by_hash };
        Ok(())
    }

    /// Whether any key is configured (and so required).
    pub fn required(&self) -> bool {
        !self.active.read().unwrap_or_else(|p| p.into_inner()).by_hash.is_empty()
    }

    /// The caller's name if `authorization` carries a key holding `scope`;
    /// else the refusal.
    fn authorise(&self, authorization: Option<&str>, scope: &str) -> Result<Option<Caller>, ApiError> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        if active.by_hash.is_empty() {
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

/// Middleware: refuses requests without a key holding `scope`.
pub async fn require(State((keys, scope)): State<(Keys, &'static str)>, mut req: Request, next: Next) -> Response {
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
