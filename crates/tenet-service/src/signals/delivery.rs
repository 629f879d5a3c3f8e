//! Push delivery (RFC 8935): one thread per enabled push stream sends its
//! outbox in order, so events about a subject arrive in the order they
//! happened. A SET leaves the outbox only when the receiver accepted it
//! (202) or refused it for good (400 with an RFC 8935 error); anything
//! else is retried with exponential backoff and full jitter, capped so a
//! receiver back after a long outage is caught up within seconds. A paused
//! stream's thread stops and its SETs wait; a disabled one's were dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tenet_ssf::{Delivery, PushOutcome, StreamStatus};

use super::Signals;

/// First retry after at most this; doubling up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// The most a receiver's `Retry-After` makes a stream wait.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// SETs read from the outbox at a time.
const BATCH: usize = 64;

/// The push delivery threads.
pub struct Deliveries {
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
}

impl Deliveries {
    pub fn start(signals: Arc<Signals>) -> Deliveries {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let supervisor = std::thread::Builder::new()
            .name("tenet-ssf-push".into())
            .spawn(move || supervise(&signals, &s))
            .map_err(|e| tracing::error!(error = %e, "could not start Shared Signals delivery"))
            .ok();
        Deliveries { stop, supervisor }
    }

    /// Stops delivering; SETs not yet accepted stay in the outbox for the next start.
    pub fn stop(mut self, signals: &Signals) {
        self.stop.store(true, Ordering::Release);
        signals.wake.bump();
        if let Some(h) = self.supervisor.take() {
            let _ = h.join();
        }
    }
}

/// Starts a thread for each enabled push stream that has none.
fn supervise(signals: &Arc<Signals>, stop: &Arc<AtomicBool>) {
    let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut seen = u64::MAX;
    while !stop.load(Ordering::Acquire) {
        signals.refresh_keys();
        workers.retain(|_, h| !h.is_finished());
        // Another cluster node transmits: its workers push the outbox.
        let streams = if signals.transmitting() { signals.with_store(|s| s.streams()) } else { Ok(Vec::new()) };
        match streams {
            Ok(streams) => {
                for s in streams {
                    let push = matches!(s.config.delivery, Delivery::Push { .. } | Delivery::Webhook { .. });
                    if push && s.status == StreamStatus::Enabled && !workers.contains_key(&s.config.stream_id) {
                        let (signals, stop, id) = (signals.clone(), stop.clone(), s.config.stream_id.clone());
                        let spawned = std::thread::Builder::new()
                            .name(format!("tenet-ssf-{}", &id[..id.len().min(8)]))
                            .spawn(move || deliver(&signals, &stop, &id));
                        match spawned {
                            Ok(h) => {
                                workers.insert(s.config.stream_id.clone(), h);
                            }
                            Err(e) => tracing::error!(error = %e, "could not start a delivery thread"),
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading SSF streams"),
        }
        seen = signals.wake.wait(seen, Duration::from_secs(1));
    }
    signals.wake.bump();
    for (_, h) in workers {
        let _ = h.join();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(10)))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// One push: the SET as the body, RFC 8935's headers, the stream's
/// configured authorization (and none where none was configured).
fn push(agent: &ureq::Agent, url: &str, authorization: Option<&str>, set: &str) -> (PushOutcome, Option<Duration>) {
    let mut req =
        agent.post(url).header("Content-Type", "application/secevent+jwt").header("Accept", "application/json");
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    match req.send(set) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP));
            let body = resp.body_mut().with_config().limit(64 * 1024).read_to_vec().unwrap_or_default();
            (PushOutcome::of(status, &body), retry_after)
        }
        Err(e) => (PushOutcome::Retry(e.to_string()), None),
    }
}

/// The JSON a webhook receives for a SET: its claims, flattened.
pub fn webhook_body(set: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let payload = set.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let (kind, event) = claims["events"].as_object()?.iter().next()?;
    Some(serde_json::json!({
        "id": claims["jti"], "issuer": claims["iss"], "issued_at": claims["iat"], "txn": claims["txn"],
        "type": kind, "subject": claims["sub_id"], "event": event,
    }))
}

/// `X-Tenet-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
/// so a consumer can check both who sent it and that it is fresh.
pub fn webhook_signature(secret: &str, at: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{at}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={at},v1={hex}")
}

/// One webhook delivery: 2xx taken; a 4xx other than 408 and 429 refused
/// for good; anything else retried.
fn webhook(agent: &ureq::Agent, url: &str, secret: &str, set: &str) -> (PushOutcome, Option<Duration>) {
    let Some(body) = webhook_body(set).map(|b| b.to_string()) else {
        return (
            PushOutcome::Rejected(tenet_ssf::SetError { err: "unreadable".into(), description: "not a SET".into() }),
            None,
        );
    };
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sent = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Tenet-Signature", &webhook_signature(secret, at, &body))
        .send(&body);
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let outcome = match status {
                200..=299 => PushOutcome::Accepted,
                408 | 429 => PushOutcome::Retry(format!("HTTP {status}")),
                400..=499 => PushOutcome::Rejected(tenet_ssf::SetError {
                    err: format!("http_{status}"),
                    description: "the webhook refused it".into(),
                }),
                _ => PushOutcome::Retry(format!("HTTP {status}")),
            };
            (outcome, None)
        }
        Err(e) => (PushOutcome::Retry(e.to_string()), None),
    }
}

/// Full jitter: uniformly between zero and the doubled base, capped.
fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << failures.min(16)).min(BACKOFF_CAP);
    let mut r = [0u8; 4];
    let fraction = match getrandom::fill(&mut r) {
        Ok(()) => f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(fraction).max(Duration::from_millis(10))
}

/// Sleeps `d`, or less when stopping.
fn pause(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Acquire) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sends one stream's outbox in order until the stream is no longer an
/// enabled push stream, or the service stops.
fn deliver(signals: &Signals, stop: &AtomicBool, stream_id: &str) {
    let agent = agent();
    let mut failures = 0u32;
    while !stop.load(Ordering::Acquire) && signals.transmitting() {
        let generation = signals.wake.generation();
        let read = signals.with_store(|s| {
            Ok::<_, tenet_store::ssf::SsfStoreError>((s.stream(stream_id)?, s.pending(stream_id, BATCH)?))
        });
        let (stream, pending) = match read {
            Ok((Some(stream), pending)) => (stream, pending),
            Ok((None, _)) => return,
            Err(e) => {
                tracing::error!(error = %e, stream = stream_id, "reading the outbox");
                pause(stop, Duration::from_secs(1));
                continue;
            }
        };
        let endpoint_url = match &stream.config.delivery {
            Delivery::Push { endpoint_url, .. } | Delivery::Webhook { endpoint_url, .. } => endpoint_url,
            Delivery::Poll { .. } => return,
        };
        if stream.status != StreamStatus::Enabled {
            return;
        }
        if pending.is_empty() {
            signals.wake.wait(generation, Duration::from_secs(1));
            continue;
        }
        // Accepted SETs leave the outbox together, once per batch: a crash
        // in between sends them again, and receivers deduplicate by jti.
        let mut accepted: Vec<String> = Vec::new();
        for out in pending {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let (outcome, retry_after) = match &stream.config.delivery {
                Delivery::Push { endpoint_url, authorization_header } => {
                    push(&agent, endpoint_url, authorization_header.as_deref(), &out.set)
                }
                Delivery::Webhook { endpoint_url, secret } => webhook(&agent, endpoint_url, secret, &out.set),
                Delivery::Poll { .. } => return,
            };
            match &outcome {
                PushOutcome::Accepted => {
                    failures = 0;
                    accepted.push(out.jti.clone());
                }
                PushOutcome::Rejected(e) => {
                    tracing::warn!(stream = stream_id, jti = %out.jti, err = %e.err, description = %e.description,
                        "the receiver refused a SET; it will not be sent again");
                    failures = 0;
                    let recorded = signals.with_store(|s| {
                        s.refused(stream_id, &[(out.jti.clone(), format!("{}: {}", e.err, e.description))]).map(|_| ())
                    });
                    if let Err(e) = recorded {
                        tracing::error!(error = %e, stream = stream_id, "recording a refusal");
                    }
                }
                PushOutcome::Retry(why) => {
                    if failures.is_multiple_of(20) {
                        tracing::warn!(stream = stream_id, url = %endpoint_url, error = %why, attempts = out.attempts + 1,
                            "push delivery failed; retrying with backoff");
                    }
                    flush(signals, stream_id, &mut accepted);
                    if let Err(e) = signals.with_store(|s| s.attempted(out.seq, why)) {
                        tracing::error!(error = %e, "recording a delivery attempt");
                    }
                    failures = failures.saturating_add(1);
                    pause(stop, retry_after.unwrap_or_else(|| backoff(failures - 1)));
                    // Read the stream again: it may have been paused or changed meanwhile.
                    break;
                }
            }
            // Streams changed (status, configuration): read them again before sending more.
            if signals.wake.generation() != generation && stream_changed(signals, stream_id, &stream) {
                break;
            }
        }
        flush(signals, stream_id, &mut accepted);
    }
}

fn flush(signals: &Signals, stream_id: &str, accepted: &mut Vec<String>) {
    if accepted.is_empty() {
        return;
    }
    if let Err(e) = signals.with_store(|s| s.delivered(stream_id, accepted)) {
        tracing::error!(error = %e, stream = stream_id, "recording deliveries; they will be sent again");
    }
    accepted.clear();
}

fn stream_changed(signals: &Signals, stream_id: &str, was: &tenet_store::ssf::Stream) -> bool {
    signals
        .with_store(|s| s.stream(stream_id))
        .ok()
        .flatten()
        .is_none_or(|now| now.status != was.status || now.config != was.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature a consumer recomputes: the expected value is Python's
    /// `hmac.new(b"Jefe", b"0.what do ya want for nothing?", hashlib.sha256).hexdigest()`.
    #[test]
    fn the_webhook_signature_is_hmac_sha256_over_time_and_body() {
        assert_eq!(
            webhook_signature("Jefe", 0, "what do ya want for nothing?"),
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }

    #[test]
    fn backoff_grows_with_failures_and_never_passes_the_cap() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(d <= BACKOFF_CAP, "{failures}: {d:?}");
            let ceiling = BACKOFF_BASE.saturating_mul(1 << failures.min(16)).min(BACKOFF_CAP);
            assert!(d <= ceiling.max(Duration::from_millis(10)));
        }
        let mean = |f| (0..200).map(|_| backoff(f).as_secs_f64()).sum::<f64>() / 200.0;
        assert!(mean(0) < 0.1 && mean(8) > 1.0, "jittered, and larger after more failures");
    }
}
