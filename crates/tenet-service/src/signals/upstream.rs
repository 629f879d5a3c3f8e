//! Receiving signals too: SETs pushed by upstream transmitters (an
//! identity provider's `session-revoked` or `credential-change`) on
//! `POST /ssf/receive`. Each is verified against its transmitter's JWKS
//! (by URL, fetched and cached, fetched again for a key it does not know;
//! or a file), then enters as telemetry (an event, stored once by `jti`)
//! and, where it changes trust, as a trust notice Tenet relays to its own
//! receivers and re-evaluates sessions on. Session events teach Tenet the
//! sessions enforcement points hold.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tenet_model::{
    Action, Event, NoticeChange, Principal, PrincipalKind, RawRecord, Source, Timestamp, UpstreamSignal,
};
use tenet_server::ssf::{NotTaken, SignalIntake};
use tenet_ssf::{Expect, Received, Refused, Subject};
use tokio::sync::oneshot;

use super::Signals;
use crate::live::{Inlet, Work};
use crate::trust::LiveTrust;

/// A transmitter Tenet takes SETs from (`ssf.upstream` in the configuration).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its `iss`, exactly as its SETs carry it.
    pub issuer: String,
    /// Where its JWKS is published.
    pub jwks_url: Option<String>,
    /// Or a JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// The `aud` its SETs must carry; default: Tenet's issuer.
    pub audience: Option<String>,
}

/// A fetched JWKS is used this long before it is fetched again.
const JWKS_FRESH: Duration = Duration::from_secs(600);
/// An unknown `kid` fetches the JWKS again at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(5);
/// `iat` may be this far ahead of Tenet's clock.
const LEEWAY: i64 = 60;

struct Known {
    config: UpstreamConfig,
    jwks: Mutex<Option<(Value, Instant)>>,
}

/// The receiving side of Shared Signals.
pub struct Upstream {
    known: Vec<Known>,
    inlet: Inlet,
    signals: Arc<Signals>,
    trust: Arc<LiveTrust>,
}

fn refused(err: &'static str, description: impl Into<String>) -> NotTaken {
    NotTaken::Refused(Refused { err, description: description.into() })
}

impl Upstream {
    pub fn new(config: Vec<UpstreamConfig>, inlet: Inlet, signals: Arc<Signals>, trust: Arc<LiveTrust>) -> Upstream {
        let known = config.into_iter().map(|config| Known { config, jwks: Mutex::new(None) }).collect();
        Upstream { known, inlet, signals, trust }
    }

    /// The transmitter's keys: cached, fetched again when stale or when
    /// `kid` is not among them.
    fn jwks(known: &Known, kid: Option<&str>) -> Result<Value, NotTaken> {
        if let Some(path) = &known.config.jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| NotTaken::Unavailable(format!("JWKS file {}: {e}", path.display())))?;
            return serde_json::from_str(&text)
                .map_err(|e| NotTaken::Unavailable(format!("JWKS file {} is not JSON: {e}", path.display())));
        }
        let Some(url) = &known.config.jwks_url else {
            return Err(refused("invalid_key", format!("no JWKS configured for {}", known.config.issuer)));
        };
        let has = |jwks: &Value| {
            kid.is_none_or(|kid| {
                jwks["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["kid"].as_str() == Some(kid)))
            })
        };
        let mut cached = known.jwks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((jwks, at)) = cached.as_ref()
            && (at.elapsed() < JWKS_FRESH && has(jwks) || at.elapsed() < JWKS_REFETCH)
        {
            return Ok(jwks.clone());
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let fetched = agent
            .get(url)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|mut r| {
                if r.status().as_u16() != 200 {
                    return Err(format!("HTTP {}", r.status()));
                }
                r.body_mut().with_config().limit(1 << 20).read_to_string().map_err(|e| e.to_string())
            })
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
        match fetched {
            Ok(jwks) => {
                *cached = Some((jwks.clone(), Instant::now()));
                Ok(jwks)
            }
            // A transmitter whose keys cannot be read now may be readable later.
            Err(e) => match cached.as_ref() {
                Some((jwks, _)) if has(jwks) => Ok(jwks.clone()),
                _ => Err(NotTaken::Unavailable(format!("fetching {url}: {e}"))),
            },
        }
    }

    fn verified(&self, token: &str) -> Result<Received, NotTaken> {
        let iss = tenet_ssf::claimed_issuer(token).map_err(NotTaken::Refused)?;
        let known =
            self.known.iter().find(|k| k.config.issuer == iss).ok_or_else(|| {
                refused("invalid_issuer", format!("{iss:?} is not a transmitter Tenet takes SETs from"))
            })?;
        let kid = tenet_ssf::claimed_kid(token).map_err(NotTaken::Refused)?;
        let jwks = Upstream::jwks(known, kid.as_deref())?;
        let ours = self.signals.issuer().to_string();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let expect = Expect {
            issuer: &known.config.issuer,
            audience: Some(known.config.audience.as_deref().unwrap_or(&ours)),
            now,
            leeway: LEEWAY,
        };
        tenet_ssf::verify(token, &jwks, &expect).map_err(NotTaken::Refused)
    }
}

/// The principal and the session a subject names, as Tenet names them: an
/// `iss_sub` of a configured identity provider as `<prefix>:<sub>`.
fn principal_of(subject: &Subject, signals: &Signals) -> (Option<String>, Option<String>) {
    let simple = |s: &Subject| match s {
        Subject::Email { email } => Some(format!("user:{email}")),
        Subject::IssSub { iss, sub } => Some(match signals.prefix_of(iss) {
            Some(prefix) => format!("{prefix}:{sub}"),
            None => sub.clone(),
        }),
        Subject::Opaque { id } => Some(id.clone()),
        Subject::Complex(_) => None,
    };
    match subject {
        Subject::Complex(c) => (
            c.user.as_deref().and_then(simple),
            c.session.as_deref().and_then(|s| match s {
                Subject::Opaque { id } => Some(id.clone()),
                _ => None,
            }),
        ),
        s => (simple(s), None),
    }
}

/// The trust change a received event reports, if it is one Tenet acts on.
fn signal_of(r: &Received, session: Option<&str>) -> Option<UpstreamSignal> {
    let text = |k: &str| r.text(k).map(str::to_string);
    Some(match r.kind() {
        "credential-change" => UpstreamSignal::CredentialChange {
            credential_type: text("credential_type")?,
            change_type: text("change_type").unwrap_or_else(|| "update".into()),
        },
        "credential-compromise" => UpstreamSignal::CredentialCompromise {
            credential_type: text("credential_type").unwrap_or_else(|| "password".into()),
        },
        "device-compliance-change" => {
            UpstreamSignal::DeviceCompliance { compliant: r.text("current_status")? == "compliant" }
        }
        "assurance-level-change" => UpstreamSignal::AssuranceLevel {
            namespace: text("namespace")?,
            current: text("current_level")?,
            previous: text("previous_level"),
        },
        "account-disabled" => UpstreamSignal::AccountDisabled,
        "session-revoked" => UpstreamSignal::SessionRevoked { session: session.map(str::to_string) },
        _ => return None,
    })
}

impl SignalIntake for Upstream {
    fn receive(
        self: Arc<Self>,
        token: String,
        origin: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotTaken>> + Send>> {
        let (inlet, sessions, trust, signals) =
            (self.inlet.clone(), self.signals.sessions.clone(), self.trust.clone(), self.signals.clone());
        Box::pin(async move {
            // Verifying may fetch the transmitter's keys: off the async workers.
            let (r, token) = tokio::task::spawn_blocking(move || (self.verified(&token), token))
                .await
                .map_err(|e| NotTaken::Unavailable(format!("verification failed: {e}")))?;
            let r = r?;
            let (principal, session) = principal_of(&r.subject, &signals);
            let Some(principal) = principal else {
                return Err(refused(
                    "invalid_request",
                    "sub_id names no principal Tenet can use (email, iss_sub, opaque)",
                ));
            };
            let principal = trust.current().canonical_of(&principal).to_string();
            // Telemetry first: stored once, by the transmitter and jti.
            let mut event = Event::api_call(
                format!("ssf:{}:{}", r.iss, r.jti),
                Timestamp::from_unix_seconds(r.at()),
                Principal::new(principal.clone(), PrincipalKind::Human),
                Action::new("ssf", r.kind()),
                Source { format: "ssf".into(), system: r.iss.clone(), tenant: None },
            );
            event.raw = RawRecord::from(token.into_bytes());
            let (reply, answer) = oneshot::channel();
            let work = Work::Events(crate::live::Delivered {
                origin,
                format: "ssf",
                events: vec![event],
                rejections: Vec::new(),
                spans: None,
                reply: Some(reply),
            });
            let busy = |e: tenet_server::intake::Refusal| NotTaken::Unavailable(format!("{e:?}"));
            inlet.try_submit(work).map_err(busy)?;
            match answer.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(busy(e)),
                Err(_) => return Err(NotTaken::Unavailable("the pipeline stopped".into())),
            }
            match (r.kind(), &session) {
                ("session-established" | "session-presented", Some(s)) => sessions.learn(s, &principal),
                ("session-revoked", Some(s)) => sessions.forget(s),
                _ => {}
            }
            if let Some(signal) = signal_of(&r, session.as_deref()) {
                let change =
                    NoticeChange::Relayed { issuer: r.iss.clone(), signal, reason: r.reason().map(str::to_string) };
                let (reply, answer) = oneshot::channel();
                let at = Timestamp::from_unix_seconds(r.at());
                let key = format!("ssf:{}:{}", r.iss, r.jti);
                inlet.try_submit(Work::Relay { key, principal, at, change, reply }).map_err(busy)?;
                match answer.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(NotTaken::Unavailable(e)),
                    Err(_) => return Err(NotTaken::Unavailable("the pipeline stopped".into())),
                }
            }
            Ok(())
        })
    }
}
