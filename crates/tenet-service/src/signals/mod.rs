//! Act: the Shared Signals transmitter. Receivers manage their streams
//! through the SSF endpoints ([`tenet_server::ssf`]); trust changes become
//! CAEP/RISC events, signed once into the outbox (the store's Shared Signals
//! state: `ssf.db`, or PostgreSQL's tables), and leave by
//! push ([`delivery`]) or poll.

pub mod delivery;
pub mod events;
pub mod keys;
pub mod sessions;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tenet_server::ssf::{Answer, Fault, Transmitter};
use tenet_ssf::{
    Audience, Issuing, POLL, PUSH, PollRequest, SecurityEvent, SetClaims, StatusRequest, StreamConfig, StreamStatus,
    Subject, SubjectRequest, VerifyRequest,
};
use tenet_store::NoticeReader;
use tenet_store::ssf::{NewSet, SsfStore, SsfStoreError, Stream, subject_key};

use crate::ServiceError;
use keys::{KeyRing, KeysAt};

/// Session uses queued between the decision point and the registry.
pub const SESSION_QUEUE: usize = 65_536;

/// The transmitter's settings (`ssf:` in the configuration file).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsConfig {
    /// The public base URL receivers reach Tenet at: the metadata's
    /// `issuer` and every SET's `iss`. Default: the address served.
    pub issuer: Option<String>,
    /// Seconds a receiver must wait between verification requests (default 15).
    pub min_verification_interval: Option<u64>,
    /// The longest an RFC 8936 long poll waits for SETs, in seconds (default 30).
    pub long_poll: Option<u64>,
    /// Transmitters Tenet takes SETs from on `POST /ssf/receive`.
    #[serde(default)]
    pub upstream: Vec<upstream::UpstreamConfig>,
    /// Plain JSON webhooks with an HMAC signature, for consumers that do not speak SSF.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Identity providers by the prefix of the aliases they give (`okta`)
    /// → their issuer: a principal with such an alias is sent as `iss_sub`.
    #[serde(default)]
    pub subject_issuers: std::collections::BTreeMap<String, String>,
}

/// A webhook (`ssf.webhooks` in the configuration).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name, unique among webhooks.
    pub name: String,
    pub url: String,
    /// The HMAC key, inline or in a file (16 characters or more).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Event type URIs to send; every type Tenet sends when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Wakes whoever waits for the outbox or the streams to change: delivery
/// threads (a condition variable) and long polls (a watch channel).
#[derive(Debug)]
pub struct Wake {
    generation: Mutex<u64>,
    changed: Condvar,
    tx: tokio::sync::watch::Sender<u64>,
}

impl Default for Wake {
    fn default() -> Self {
        Wake { generation: Mutex::new(0), changed: Condvar::new(), tx: tokio::sync::watch::channel(0).0 }
    }
}

impl Wake {
    pub fn bump(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
        let _ = self.tx.send(*g);
    }

    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the generation moves past `seen`, or `timeout`.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self.changed.wait_timeout_while(g, timeout, |g| *g == seen).unwrap_or_else(|p| p.into_inner());
        *g
    }
}

/// The transmitter: streams, keys and the outbox.
/// Each stream with the subjects its receiver removed: whom SETs go to.
type Targets = Arc<Vec<(Stream, Vec<tenet_ssf::Subject>)>>;

pub struct Signals {
    /// Whether this process signs and pushes SETs: always a single
    /// service; in a cluster, the one node holding the transmitter's lock.
    transmitting: std::sync::atomic::AtomicBool,
    store: Mutex<SsfStore>,
    /// [`Targets`] as of a store generation: re-read only when a stream changed.
    targets: Mutex<Option<(u64, Targets)>>,
    /// The durable log of trust notices, read after the outbox's cursor.
    notices: Mutex<Box<dyn NoticeReader>>,
    keys: RwLock<KeyRing>,
    /// Whether the last read of the keys failed.
    keys_failing: std::sync::atomic::AtomicBool,
    keys_at: KeysAt,
    issuer: OnceLock<String>,
    config: SignalsConfig,
    pub wake: Arc<Wake>,
    closing: tokio::sync::watch::Receiver<bool>,
    /// The live sessions decisions were made in, re-evaluated when trust changes.
    pub sessions: Arc<sessions::Sessions>,
    decisions: Arc<tenet_server::access::DecisionPoint>,
    trust: Arc<crate::trust::LiveTrust>,
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// 128 random bits, hex: stream ids and `jti`s.
fn random_id() -> Result<String, Fault> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Fault::Unavailable(format!("no random source: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn store_fault(e: SsfStoreError) -> Fault {
    match e {
        SsfStoreError::Exists(owner) => Fault::Exists(owner),
        SsfStoreError::NoSuchStream(id) => Fault::NoStream(id),
        e => {
            tracing::error!(error = %e, "the Shared Signals store failed");
            Fault::Unavailable(format!("the Shared Signals store failed: {e}"))
        }
    }
}

impl Signals {
    /// Opens the Shared Signals state and the trust notice log in `store`,
    /// and the signing keys (generating the first) in `data_dir`.
    pub fn open(
        data_dir: &Path,
        store_at: &tenet_store::StoreAt,
        config: SignalsConfig,
        decisions: Arc<tenet_server::access::DecisionPoint>,
        trust: Arc<crate::trust::LiveTrust>,
        sessions: Arc<sessions::Sessions>,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Arc<Signals>, ServiceError> {
        let ssf_at = store_at.ssf();
        let store = SsfStore::open(&ssf_at)
            .map_err(ServiceError::store(format!("opening the Shared Signals state in {ssf_at}")))?;
        let keys_at = KeysAt::of(data_dir, store_at);
        let keys = KeyRing::open(&keys_at).map_err(|e| ServiceError::Refused(format!("SET signing key: {e}")))?;
        let notices =
            store_at.notices().map_err(ServiceError::store(format!("reading the trust notice log in {store_at}")))?;
        let mut store = store;
        configure_webhooks(&mut store, &config.webhooks, &*notices)?;
        Ok(Arc::new(Signals {
            transmitting: std::sync::atomic::AtomicBool::new(true),
            store: Mutex::new(store),
            targets: Mutex::new(None),
            notices: Mutex::new(notices),
            keys: RwLock::new(keys),
            keys_failing: std::sync::atomic::AtomicBool::new(false),
            keys_at,
            issuer: OnceLock::new(),
            config,
            wake: Arc::default(),
            closing,
            sessions,
            decisions,
            trust,
        }))
    }

    /// Fixes the issuer once the server's address is known: the configured
    /// one, else `scheme://addr`. Streams created under another issuer (a
    /// different port) are brought to this one: every SET's `iss` must be
    /// the metadata's.
    pub fn set_issuer(&self, scheme: &str, addr: std::net::SocketAddr) {
        let issuer = self
            .config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let _ = self.issuer.set(issuer.clone());
        let mut store = self.lock();
        let Ok(streams) = store.streams() else { return };
        for s in streams {
            if s.config.iss != issuer {
                let mut c = s.config.clone();
                c.iss = issuer.clone();
                c.poll_url = format!("{issuer}/ssf/poll/{}", c.stream_id);
                if let tenet_ssf::Delivery::Poll { endpoint_url } = &mut c.delivery {
                    *endpoint_url = c.poll_url.clone();
                }
                if let Err(e) = store.update(&c) {
                    tracing::error!(error = %e, stream = %c.stream_id, "could not move the stream to the new issuer");
                }
            }
        }
    }

    /// The alias prefix of the identity provider whose issuer is `iss`
    /// (`ssf.subject_issuers`): its `iss_sub` subjects are `<prefix>:<sub>` here.
    pub fn prefix_of(&self, iss: &str) -> Option<&str> {
        self.config.subject_issuers.iter().find(|(_, i)| i.as_str() == iss).map(|(p, _)| p.as_str())
    }

    pub fn issuer(&self) -> &str {
        self.issuer.get().map_or("http://127.0.0.1", String::as_str)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SsfStore> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn min_verification_interval(&self) -> u64 {
        self.config.min_verification_interval.unwrap_or(15)
    }

    /// Re-reads the signing keys when `tenet ssf rotate-key` changed them.
    pub fn refresh_keys(&self) {
        let changed = self.keys.read().unwrap_or_else(|p| p.into_inner()).reread_if_changed(&self.keys_at);
        // Said once when reading starts failing (a store outage would say
        // it every second), and once when it works again.
        let failing = matches!(changed, Some(Err(_)));
        let was_failing = self.keys_failing.swap(failing, std::sync::atomic::Ordering::AcqRel);
        match changed {
            Some(Ok(ring)) => {
                tracing::info!(active = ring.active.kid(), "SET signing keys re-read");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = ring;
            }
            Some(Err(e)) if !was_failing => {
                tracing::error!(error = %e, "SET signing keys unreadable; signing with the last ones read")
            }
            _ if was_failing && !failing => tracing::info!("SET signing keys readable again"),
            _ => {}
        }
    }

    /// The receiver's stream `id`: another receiver's is unknown (404).
    fn owned(&self, store: &SsfStore, receiver: &str, id: &str) -> Answer<Stream> {
        match store.stream(id).map_err(store_fault)? {
            Some(s) if s.owner == receiver => Ok(s),
            _ => Err(Fault::NoStream(id.to_string())),
        }
    }

    /// One signed SET for `stream`, ready for the outbox.
    pub fn sign(
        &self,
        stream: &StreamConfig,
        subject: Subject,
        event: SecurityEvent,
        txn: Option<String>,
    ) -> Answer<NewSet> {
        let claims = SetClaims {
            iss: self.issuer().to_string(),
            aud: Audience::One(stream.aud.clone()),
            iat: now_secs() as i64,
            jti: random_id()?,
            txn,
            sub_id: subject.clone(),
            event,
        };
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let set = keys.active.sign(&claims).map_err(|e| Fault::Unavailable(e.to_string()))?;
        Ok(NewSet { stream_id: stream.stream_id.clone(), jti: claims.jti, subject: subject_key(&subject), set })
    }

    /// Turns trust notices into SETs for every stream that delivers their
    /// events, existed before them and has not removed their subject, and
    /// puts them in the outbox with the log's cursor moved past the last
    /// notice, in one transaction. Returns how many SETs were queued.
    pub fn transmit(&self, notices: &[tenet_model::TrustNotice]) -> Answer<usize> {
        let Some(last) = notices.last().map(|n| n.seq) else { return Ok(0) };
        // Sessions first: re-deciding is the slow part, and needs no lock.
        let snapshot = self.trust.current();
        let aliases = |p: &str| snapshot.aliases_of(p);
        let naming = events::Naming { issuers: &self.config.subject_issuers, aliases: &aliases };
        let mut per_notice = Vec::with_capacity(notices.len());
        for n in notices {
            let mut events = Vec::new();
            let fallen = if events::revokes_every_session(n) {
                self.sessions.revoke_all(&n.principal)
            } else {
                self.sessions.reevaluate(&n.principal, &self.decisions, events::severe(n))
            };
            for (session, principal, verdict) in fallen {
                events.push(events::for_session(n, &principal, &session, verdict, &naming));
            }
            events.extend(events::for_notice(n, &naming));
            per_notice.push(events);
        }
        let targets = self.targets()?;
        // Signed without the store's lock (RSA is the costly part): the
        // management API and polls are not held up. A stream deleted or
        // disabled meanwhile is re-checked when the SETs enter the outbox.
        let mut sets = Vec::new();
        for (n, events) in notices.iter().zip(per_notice) {
            if events.is_empty() {
                continue;
            }
            let txn = format!("tenet-notice-{}", n.seq);
            for (s, excluded) in targets.iter() {
                if s.status == StreamStatus::Disabled || s.since_notice >= n.seq {
                    continue;
                }
                for (subject, event) in &events {
                    if s.config.delivers(&event.uri()) && !excluded.iter().any(|x| subject.matches(x)) {
                        sets.push(self.sign(&s.config, subject.clone(), event.clone(), Some(txn.clone()))?);
                    }
                }
            }
        }
        let queued = self.lock().enqueue(&sets, Some(last as i64), now_secs()).map_err(store_fault)?;
        if queued > 0 {
            self.wake.bump();
        }
        Ok(queued)
    }

    /// The streams and their removed subjects, read again only when a
    /// stream changed since the last read.
    fn targets(&self) -> Answer<Targets> {
        let store = self.lock();
        let mut cached = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((generation, targets)) = &*cached
            && *generation == store.generation()
        {
            return Ok(targets.clone());
        }
        let streams = store.streams().map_err(store_fault)?;
        let mut targets = Vec::with_capacity(streams.len());
        for s in streams {
            let excluded = store.excluded(&s.config.stream_id).map_err(store_fault)?;
            targets.push((s, excluded));
        }
        let targets = Arc::new(targets);
        *cached = Some((store.generation(), targets.clone()));
        Ok(targets)
    }

    /// Turns every notice the log holds past the outbox's cursor into SETs.
    /// Whether this process signs and pushes SETs now.
    pub fn transmitting(&self) -> bool {
        self.transmitting.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes this process the transmitter, or stops it being one (a
    /// cluster node that gained or lost the transmitter's lock).
    pub fn set_transmitting(&self, on: bool) {
        if self.transmitting.swap(on, std::sync::atomic::Ordering::AcqRel) != on {
            tracing::info!(transmitting = on, "Shared Signals transmitter");
            self.wake.bump();
        }
    }

    pub fn catch_up(&self) -> Answer<usize> {
        if !self.transmitting() {
            return Ok(0);
        }
        let mut queued = 0;
        loop {
            let cursor = self.lock().cursor().map_err(store_fault)?;
            let batch = self
                .notices
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .notices_after(cursor.max(0) as u64, 500)
                .map_err(|e| Fault::Unavailable(format!("reading the trust notice log: {e}")))?;
            if batch.is_empty() {
                return Ok(queued);
            }
            queued += self.transmit(&batch)?;
        }
    }

    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut SsfStore) -> T) -> T {
        f(&mut self.lock())
    }

    fn status_json(s: &Stream) -> Value {
        let mut v = json!({"stream_id": s.config.stream_id, "status": s.status.as_str()});
        if let Some(r) = &s.reason {
            v["reason"] = r.clone().into();
        }
        v
    }
}

impl Transmitter for Signals {
    fn metadata(&self) -> Value {
        let iss = self.issuer();
        json!({
            "spec_version": "1_0",
            "issuer": iss,
            "jwks_uri": format!("{iss}/ssf/jwks.json"),
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": format!("{iss}/ssf/stream"),
            "status_endpoint": format!("{iss}/ssf/status"),
            "add_subject_endpoint": format!("{iss}/ssf/subjects:add"),
            "remove_subject_endpoint": format!("{iss}/ssf/subjects:remove"),
            "verification_endpoint": format!("{iss}/ssf/verify"),
            // The CAEP interoperability profile's URN; the token is a
            // `tenet key create --scopes ssf` key sent as a bearer token.
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
            "default_subjects": "ALL",
        })
    }

    fn jwks(&self) -> Value {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).jwks()
    }

    fn create(&self, receiver: &str, body: &Value) -> Answer<Value> {
        let mut store = self.lock();
        if !store.streams_of(receiver).map_err(store_fault)?.is_empty() {
            return Err(Fault::Exists(receiver.to_string()));
        }
        let stream_id = random_id()?;
        let iss = self.issuer().to_string();
        let config = StreamConfig::create(
            body,
            Issuing {
                poll_url: format!("{iss}/ssf/poll/{stream_id}"),
                stream_id,
                aud: format!("urn:tenet:ssf:receiver:{receiver}"),
                iss,
                events_supported: tenet_ssf::supported_event_types(),
                min_verification_interval: self.min_verification_interval(),
            },
        )?;
        // A new stream hears of trust changes from now on, not of the past.
        let since = self
            .notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_notice()
            .map_err(|e| Fault::Unavailable(format!("reading the trust notice log: {e}")))?;
        store.create(receiver, &config, since).map_err(store_fault)?;
        drop(store);
        self.wake.bump();
        tracing::info!(%receiver, stream = %config.stream_id, method = config.delivery.method(), "SSF stream created");
        Ok(config.to_json())
    }

    fn read(&self, receiver: &str, stream_id: Option<&str>) -> Answer<Value> {
        let store = self.lock();
        match stream_id {
            Some(id) => Ok(self.owned(&store, receiver, id)?.config.to_json()),
            None => Ok(Value::Array(
                store.streams_of(receiver).map_err(store_fault)?.iter().map(|s| s.config.to_json()).collect(),
            )),
        }
    }

    fn update(&self, receiver: &str, body: &Value, replace: bool) -> Answer<Value> {
        let id = StreamConfig::stream_id_of(body)?;
        let mut store = self.lock();
        let current = self.owned(&store, receiver, &id)?;
        let next = if replace { current.config.replace(body)? } else { current.config.patch(body)? };
        store.update(&next).map_err(store_fault)?;
        drop(store);
        self.wake.bump();
        Ok(next.to_json())
    }

    fn delete(&self, receiver: &str, stream_id: &str) -> Answer<()> {
        let mut store = self.lock();
        self.owned(&store, receiver, stream_id)?;
        store.delete(stream_id).map_err(store_fault)?;
        drop(store);
        self.wake.bump();
        Ok(())
    }

    fn status(&self, receiver: &str, stream_id: &str) -> Answer<Value> {
        let store = self.lock();
        Ok(Signals::status_json(&self.owned(&store, receiver, stream_id)?))
    }

    fn set_status(&self, receiver: &str, request: StatusRequest) -> Answer<Value> {
        let mut store = self.lock();
        self.owned(&store, receiver, &request.stream_id)?;
        store.set_status(&request.stream_id, request.status, request.reason.as_deref()).map_err(store_fault)?;
        let s = self.owned(&store, receiver, &request.stream_id)?;
        drop(store);
        self.wake.bump();
        tracing::info!(%receiver, stream = %request.stream_id, status = request.status.as_str(), "SSF stream status set");
        Ok(Signals::status_json(&s))
    }

    fn add_subject(&self, receiver: &str, request: SubjectRequest) -> Answer<()> {
        let mut store = self.lock();
        self.owned(&store, receiver, &request.stream_id)?;
        store.include(&request.stream_id, &request.subject).map_err(store_fault)
    }

    fn remove_subject(&self, receiver: &str, request: SubjectRequest) -> Answer<()> {
        let mut store = self.lock();
        self.owned(&store, receiver, &request.stream_id)?;
        store.exclude(&request.stream_id, &request.subject).map_err(store_fault)
    }

    fn verify(&self, receiver: &str, request: VerifyRequest) -> Answer<()> {
        let mut store = self.lock();
        let s = self.owned(&store, receiver, &request.stream_id)?;
        let now = now_secs();
        let interval = s.config.min_verification_interval as f64;
        if let Some(last) = s.last_verification
            && now - last < interval
        {
            return Err(Fault::TooSoon { retry_after: (interval - (now - last)).ceil().max(1.0) as u64 });
        }
        store.set_last_verification(&request.stream_id, now).map_err(store_fault)?;
        // SSF 1.0 §8.1.4.1: about the stream itself, whatever it delivers.
        let set = self.sign(
            &s.config,
            Subject::Opaque { id: s.config.stream_id.clone() },
            SecurityEvent::Verification { state: request.state },
            None,
        )?;
        store.enqueue(&[set], None, now).map_err(store_fault)?;
        drop(store);
        self.wake.bump();
        Ok(())
    }

    fn poll(
        self: Arc<Self>,
        receiver: &str,
        stream_id: &str,
        request: PollRequest,
    ) -> Pin<Box<dyn std::future::Future<Output = Answer<Value>> + Send>> {
        let this = self;
        let (receiver, stream_id) = (receiver.to_string(), stream_id.to_string());
        Box::pin(async move {
            let long_poll = Duration::from_secs(this.config.long_poll.unwrap_or(30));
            let deadline = tokio::time::Instant::now() + long_poll;
            let mut changes = this.wake.tx.subscribe();
            let mut closing = this.closing.clone();
            let mut first = true;
            loop {
                let t = this.clone();
                let (r, s, req) = (receiver.clone(), stream_id.clone(), request.clone());
                let answer = tokio::task::spawn_blocking(move || t.poll_once(&r, &s, &req, first))
                    .await
                    .map_err(|e| Fault::Unavailable(format!("the transmitter failed: {e}")))??;
                first = false;
                let empty = answer["sets"].as_object().is_none_or(|m| m.is_empty());
                if !empty || request.return_immediately || request.max_events == Some(0) || *closing.borrow() {
                    return Ok(answer);
                }
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = closing.changed() => {}
                    () = tokio::time::sleep_until(deadline) => return Ok(answer),
                }
            }
        })
    }
}

impl Signals {
    /// One pass of a poll: acknowledgements and errors first (once), then
    /// what is pending, oldest first.
    fn poll_once(&self, receiver: &str, stream_id: &str, request: &PollRequest, first: bool) -> Answer<Value> {
        let mut store = self.lock();
        let s = self.owned(&store, receiver, stream_id)?;
        if first {
            if !request.ack.is_empty() {
                store.delivered(stream_id, &request.ack).map_err(store_fault)?;
            }
            if !request.set_errs.is_empty() {
                let refusals: Vec<(String, String)> = request
                    .set_errs
                    .iter()
                    .map(|(jti, e)| (jti.clone(), format!("{}: {}", e.err, e.description)))
                    .collect();
                store.refused(stream_id, &refusals).map_err(store_fault)?;
            }
        }
        let max = request.max_events.map_or(1000, |m| m.min(1000) as usize);
        // A paused stream holds; only an enabled one is polled.
        let pending = if max == 0 || s.status != StreamStatus::Enabled || s.config.delivery.method() != POLL {
            Vec::new()
        } else {
            store.pending(stream_id, max + 1).map_err(store_fault)?
        };
        let more = pending.len() > max;
        let sets: serde_json::Map<String, Value> =
            pending.into_iter().take(max).map(|o| (o.jti, Value::String(o.set))).collect();
        Ok(json!({"sets": sets, "moreAvailable": more}))
    }
}

/// Keeps the outbox current with the durable notice log: what the log
/// holds past the cursor at start (a crash or a stop left it), then each
/// time the pipeline announces a change, until the channel closes.
pub fn follow(
    signals: Arc<Signals>,
    mut changes: tokio::sync::broadcast::Receiver<Arc<tenet_model::TrustNotice>>,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tenet-ssf-events".into())
        .spawn(move || {
            loop {
                if let Err(e) = signals.catch_up() {
                    tracing::error!(error = ?e, "trust changes not turned into SETs; trying again at the next change");
                }
                // Only a wake-up: what to send is read from the log.
                match changes.blocking_recv() {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        if let Err(e) = signals.catch_up() {
                            tracing::error!(error = ?e, "the last trust changes are turned into SETs at the next start");
                        }
                        return;
                    }
                }
            }
        })
        .ok()
}

/// Each configured webhook as a stream of its own (owner `webhook:<name>`,
/// which no API key can be), created or brought up to date.
fn configure_webhooks(
    store: &mut SsfStore,
    webhooks: &[WebhookConfig],
    notices: &dyn NoticeReader,
) -> Result<(), ServiceError> {
    let refused = |name: &str, why: String| ServiceError::Refused(format!("ssf.webhooks {name:?}: {why}"));
    for w in webhooks {
        let secret = match (&w.secret, &w.secret_file) {
            (Some(s), None) => s.trim().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| refused(&w.name, format!("secret_file {}: {e}", path.display())))?
                .trim()
                .to_string(),
            _ => return Err(refused(&w.name, "give exactly one of secret and secret_file".into())),
        };
        let owner = format!("webhook:{}", w.name);
        let existing = store.streams_of(&owner).map_err(|e| refused(&w.name, e.to_string()))?.pop();
        let stream_id = match &existing {
            Some(s) => s.config.stream_id.clone(),
            None => random_id().map_err(|e| refused(&w.name, format!("{e:?}")))?,
        };
        let config = StreamConfig::webhook(
            Issuing {
                poll_url: String::new(),
                stream_id,
                iss: String::new(),
                aud: format!("urn:tenet:webhook:{}", w.name),
                events_supported: tenet_ssf::supported_event_types(),
                min_verification_interval: 0,
            },
            &w.events,
            &w.url,
            &secret,
        )
        .map_err(|e| refused(&w.name, e.to_string()))?;
        let stored = match existing {
            Some(_) => store.update(&config),
            None => {
                let since = notices.last_notice().map_err(|e| refused(&w.name, e.to_string()))?;
                store.create(&owner, &config, since)
            }
        };
        stored.map_err(|e| refused(&w.name, e.to_string()))?;
    }
    Ok(())
}

/// Where the signing keys live in a data directory (on the embedded store).
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ssf")
}
