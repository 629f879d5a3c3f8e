//! The event flow between Tenet nodes, on NATS JetStream.
//!
//! Any node that takes events in publishes them, normalised, to one
//! JetStream stream, on `tenet.events.<partition>`: the partition is a hash
//! of the principal, out of a fixed count chosen when the stream is created
//! (and kept in its description, so a node configured otherwise is refused
//! rather than scatter a principal's events). A publish returns once
//! JetStream has acknowledged it, so a client is answered only for what is
//! durable. Each publish carries a message id (`Nats-Msg-Id`): a client's
//! retry within the stream's duplicate window is stored once.
//!
//! A partition is read through a durable pull consumer with exactly one
//! `filter_subject`: nats-server 2.9 (Debian's) ignores multi-subject
//! filters, and says nothing. A delivery is acknowledged by its reader
//! only after what it led to is committed; one not acknowledged in time
//! is delivered again, so a crash loses nothing (and the store's
//! idempotent append counts a redelivery once).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use bytes::Bytes;
use futures_util::StreamExt;

/// The stream every node publishes events to.
pub const EVENTS_STREAM: &str = "TENET_EVENTS";

/// The header naming the delivery (one HTTP body, one watched file) an
/// event came in.
const DELIVERY: &str = "Tenet-Delivery";
/// The header on a delivery's last event in its partition.
const DELIVERY_END: &str = "Tenet-Delivery-End";

/// How long a retried publish with the same message id is recognised.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("NATS at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error(
        "the event stream was created with {found} partitions; this node is configured for {configured} (the count is fixed when the stream is created)"
    )]
    Partitions { found: u32, configured: u32 },
    #[error("partition {partition} is outside 0..{count}")]
    NoSuchPartition { partition: u32, count: u32 },
    #[error("message {stream_seq} is not an event this build reads: {reason}")]
    Malformed { stream_seq: u64, reason: String },
}

fn failed<E: std::fmt::Display>(e: E) -> BusError {
    BusError::JetStream(e.to_string())
}

/// The partition a principal's events go to, out of `count`: FNV-1a of
/// its reference, so every node agrees without asking.
pub fn partition_of(principal: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in principal.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(count.max(1))) as u32
}

/// The subject a partition's events are published on.
pub fn subject(partition: u32) -> String {
    format!("tenet.events.{partition}")
}

fn description(partitions: u32) -> String {
    format!("Tenet normalised events, {partitions} partitions")
}

fn partitions_in(description: Option<&str>) -> Option<u32> {
    description?.strip_prefix("Tenet normalised events, ")?.strip_suffix(" partitions")?.parse().ok()
}

/// The stream partition owners publish their trust changes to, and every
/// node follows.
pub const TRUST_STREAM: &str = "TENET_TRUST";
const TRUST_SUBJECT: &str = "tenet.trust";
/// How long trust updates are kept: a node that starts loads the state
/// from the store and follows only what comes after.
const TRUST_KEPT: Duration = Duration::from_secs(24 * 3600);

/// A node's connection to the event stream.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    trust: jetstream::stream::Stream,
    partitions: u32,
}

impl Bus {
    /// Connects to NATS at `url` and opens the event stream, creating it
    /// with `partitions` partitions if it does not exist yet.
    pub async fn connect(url: &str, partitions: u32) -> Result<Bus, BusError> {
        Self::open_streams(url, partitions, true).await
    }

    /// Connects to NATS at `url` and opens the streams a cluster made,
    /// creating nothing (to look, as `tenet cluster status` does).
    pub async fn observe(url: &str, partitions: u32) -> Result<Bus, BusError> {
        Self::open_streams(url, partitions, false).await
    }

    async fn open_streams(url: &str, partitions: u32, create: bool) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("tenet")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Unreachable { url: url.to_string(), reason: e.to_string() })?;
        let js = jetstream::new(client.clone());
        let trust = jetstream::stream::Config {
            name: TRUST_STREAM.to_string(),
            description: Some("Tenet trust changes, in commit order".into()),
            subjects: vec![TRUST_SUBJECT.to_string()],
            storage: StorageType::File,
            max_age: TRUST_KEPT,
            ..Default::default()
        };
        let events = jetstream::stream::Config {
            name: EVENTS_STREAM.to_string(),
            description: Some(description(partitions)),
            subjects: vec!["tenet.events.*".to_string()],
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        let (trust, stream) = if create {
            (
                js.get_or_create_stream(trust).await.map_err(failed)?,
                js.get_or_create_stream(events).await.map_err(failed)?,
            )
        } else {
            let absent = |name: &'static str| {
                move |e| BusError::JetStream(format!("no stream {name} on this server (no node has joined?): {e}"))
            };
            (
                js.get_stream(TRUST_STREAM).await.map_err(absent(TRUST_STREAM))?,
                js.get_stream(EVENTS_STREAM).await.map_err(absent(EVENTS_STREAM))?,
            )
        };
        let found = partitions_in(stream.cached_info().config.description.as_deref());
        match found {
            Some(found) if found == partitions => Ok(Bus { client, js, stream, trust, partitions }),
            Some(found) => Err(BusError::Partitions { found, configured: partitions }),
            None => Err(BusError::JetStream(format!(
                "stream {EVENTS_STREAM} exists but was not created by Tenet (description {:?})",
                stream.cached_info().config.description
            ))),
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Whether the connection to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes one commit's trust changes and waits for JetStream's
    /// acknowledgement; returns its place in the trust stream.
    pub async fn publish_update(&self, update: &impl serde::Serialize) -> Result<u64, BusError> {
        let payload = serde_json::to_vec(update).map_err(failed)?;
        let ack = self.js.publish(TRUST_SUBJECT, payload.into()).await.map_err(failed)?;
        Ok(ack.await.map_err(failed)?.sequence)
    }

    /// The last place in the trust stream (0 when empty): a node reads it
    /// before loading the state from the store, then follows from there.
    pub async fn trust_position(&self) -> Result<u64, BusError> {
        let mut trust = self.trust.clone();
        Ok(trust.info().await.map_err(failed)?.state.last_sequence)
    }

    /// The trust updates after place `after`, in order, for as long as the
    /// returned feed is read (an ordered consumer: a gap or a reconnection
    /// resumes where it stopped).
    pub async fn follow_trust<U>(&self, after: u64) -> Result<TrustFeed<U>, BusError> {
        let consumer = self
            .trust
            .create_consumer(pull::OrderedConfig {
                filter_subject: TRUST_SUBJECT.to_string(),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        Ok(TrustFeed { messages: consumer.messages().await.map_err(failed)?, update: std::marker::PhantomData })
    }

    /// Publishes every event to its partition (by its actor), all at once,
    /// and waits for JetStream to acknowledge each. Returns how many were
    /// duplicates of earlier publishes. An error means some may not be
    /// stored: the client is told to send again, and what was stored
    /// already is recognised as duplicate.
    ///
    /// The events of one call are one delivery: each carries its id
    /// (`Tenet-Delivery`), and the last of them in each partition says so
    /// (`Tenet-Delivery-End`), so a partition's reader analyses a
    /// delivery's events together, as a single service analyses a body.
    /// Each goes to the partition of the principal it is about, in
    /// `principals` (one per event).
    pub async fn publish_events(&self, events: &[tenet_model::Event], principals: &[String]) -> Result<u64, BusError> {
        if principals.len() != events.len() {
            return Err(BusError::JetStream(format!(
                "{} events but {} principals to partition them by",
                events.len(),
                principals.len()
            )));
        }
        let delivery = nuid::next().to_string();
        let parts: Vec<u32> = principals.iter().map(|p| partition_of(p, self.partitions)).collect();
        let mut last = std::collections::HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            last.insert(*p, i);
        }
        let mut acks = Vec::with_capacity(events.len());
        for (i, (e, p)) in events.iter().zip(&parts).enumerate() {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", message_id(e).as_str());
            headers.insert(DELIVERY, delivery.as_str());
            if last.get(p) == Some(&i) {
                headers.insert(DELIVERY_END, "1");
            }
            acks.push(self.js.publish_with_headers(subject(*p), headers, encode(e)).await.map_err(failed)?);
        }
        let mut duplicates = 0;
        for ack in acks {
            duplicates += u64::from(ack.await.map_err(failed)?.duplicate);
        }
        Ok(duplicates)
    }

    /// Events published to a partition and not yet acknowledged by the
    /// durable reader `name` (waiting, and delivered but unacknowledged).
    pub async fn lag(&self, partition: u32, name: &str) -> Result<Option<u64>, BusError> {
        let durable = format!("{name}-p{partition}");
        match self.stream.consumer_info(&durable).await {
            Ok(info) => Ok(Some(info.num_pending + info.num_ack_pending as u64)),
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// Publishes one event's bytes to its partition and waits for
    /// JetStream's acknowledgement. `id` makes a retry idempotent: the
    /// second publish within the window is acknowledged as a duplicate and
    /// stored once. Returns whether it was a duplicate.
    pub async fn publish(&self, partition: u32, id: &str, payload: Bytes) -> Result<bool, BusError> {
        if partition >= self.partitions {
            return Err(BusError::NoSuchPartition { partition, count: self.partitions });
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let ack = self.js.publish_with_headers(subject(partition), headers, payload).await.map_err(failed)?;
        let ack = ack.await.map_err(failed)?;
        Ok(ack.duplicate)
    }

    /// The durable reader `name` of one partition, for a node that has just
    /// become its owner. Events its previous owner was given and did not
    /// acknowledge (it died) would come again only after the ack wait, and
    /// after the events that followed them; instead the reader is started
    /// again from the first unacknowledged event, so the new owner reads
    /// the partition in the order it was published, at once. (Events after
    /// that which had been acknowledged come again too: the store counts
    /// them once.)
    pub async fn take_over(&self, partition: u32, name: &str, ack_wait: Duration) -> Result<PartitionFeed, BusError> {
        let durable = format!("{name}-p{partition}");
        match self.stream.consumer_info(&durable).await {
            Ok(info) if info.num_ack_pending > 0 => {
                let from = info.ack_floor.stream_sequence + 1;
                tracing::info!(
                    partition,
                    from,
                    unacknowledged = info.num_ack_pending,
                    "reading the partition again from its first unacknowledged event"
                );
                self.stream.delete_consumer(&durable).await.map_err(failed)?;
                self.open(
                    partition,
                    &durable,
                    ack_wait,
                    jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
                )
                .await
            }
            Ok(_) => self.partition(partition, name, ack_wait).await,
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                self.partition(partition, name, ack_wait).await
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// The durable reader `name` of one partition (created on first use).
    /// `ack_wait`: how long a delivery may stay unacknowledged before it is
    /// delivered again.
    pub async fn partition(&self, partition: u32, name: &str, ack_wait: Duration) -> Result<PartitionFeed, BusError> {
        if partition >= self.partitions {
            return Err(BusError::NoSuchPartition { partition, count: self.partitions });
        }
        let durable = format!("{name}-p{partition}");
        self.open(partition, &durable, ack_wait, jetstream::consumer::DeliverPolicy::All).await
    }

    async fn open(
        &self,
        partition: u32,
        durable: &str,
        ack_wait: Duration,
        deliver_policy: jetstream::consumer::DeliverPolicy,
    ) -> Result<PartitionFeed, BusError> {
        let filter = subject(partition);
        let consumer = self
            .stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_string()),
                    filter_subject: filter.clone(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait,
                    deliver_policy,
                    ..Default::default()
                },
            )
            .await
            .map_err(failed)?;
        // A server that dropped the filter would hand this reader every
        // partition's events: refuse rather than analyse them twice.
        let kept = &consumer.cached_info().config.filter_subject;
        if *kept != filter {
            return Err(BusError::JetStream(format!(
                "consumer {durable} reads {kept:?}, not {filter:?}: the server did not keep its filter"
            )));
        }
        Ok(PartitionFeed { consumer, partition })
    }
}

/// Trust updates as committed, in order. `U` is what the nodes publish
/// (a [`tenet_model::TrustUpdate`], with whatever the service adds to it).
pub struct TrustFeed<U> {
    messages: pull::Ordered,
    update: std::marker::PhantomData<fn() -> U>,
}

impl<U: serde::de::DeserializeOwned> TrustFeed<U> {
    /// The next update with its place in the stream; `None` when the feed ended.
    pub async fn next(&mut self) -> Option<Result<(u64, U), BusError>> {
        let message = match self.messages.next().await? {
            Ok(m) => m,
            Err(e) => return Some(Err(failed(e))),
        };
        let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        Some(
            serde_json::from_slice(&message.payload)
                .map(|u| (seq, u))
                .map_err(|e| BusError::Malformed { stream_seq: seq, reason: e.to_string() }),
        )
    }
}

/// One partition's events, for the node that owns it.
pub struct PartitionFeed {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    partition: u32,
}

/// An event as delivered: acknowledge it once what it led to is committed.
pub struct Delivery {
    pub payload: Bytes,
    /// The delivery it came in (empty when published without one).
    pub delivery: String,
    /// Whether it is its delivery's last event in this partition.
    pub ends_delivery: bool,
    /// Its place in the stream (increases with each event published).
    pub stream_seq: u64,
    /// How many times it has been delivered (1 the first time).
    pub delivered: i64,
    message: jetstream::Message,
}

impl Delivery {
    /// Tells JetStream this event is done with, waiting for its answer.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message.double_ack().await.map_err(failed)
    }

    /// Tells JetStream this event is done with, without waiting: an
    /// acknowledgement lost on the way means one more delivery, which the
    /// store's idempotent append counts once.
    pub async fn ack_sent(&self) -> Result<(), BusError> {
        self.message.ack().await.map_err(failed)
    }

    /// Tells JetStream never to deliver this message again (it cannot be read).
    pub async fn reject(&self) -> Result<(), BusError> {
        self.message.ack_with(jetstream::AckKind::Term).await.map_err(failed)
    }

    /// The event this delivery carries.
    pub fn event(&self) -> Result<tenet_model::Event, BusError> {
        decode(&self.payload).map_err(|reason| BusError::Malformed { stream_seq: self.stream_seq, reason })
    }
}

/// An event as published: its JSON form, then the source record exactly as
/// read (which the JSON form leaves out), after a 4-byte length of the JSON.
pub fn encode(event: &tenet_model::Event) -> Bytes {
    let json = serde_json::to_vec(event).unwrap_or_default();
    let raw = event.raw.as_bytes();
    let mut out = Vec::with_capacity(4 + json.len() + raw.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(raw);
    Bytes::from(out)
}

/// The event [`encode`] wrote.
pub fn decode(payload: &Bytes) -> Result<tenet_model::Event, String> {
    let len = payload.get(..4).ok_or("shorter than its header")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let json = payload.get(4..4 + len).ok_or("shorter than its header says")?;
    let mut event: tenet_model::Event = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    event.raw = tenet_model::RawRecord(payload.slice(4 + len..));
    Ok(event)
}

/// The id a published event carries (`Nats-Msg-Id`): the store's identity
/// of an event, its id at its time.
pub fn message_id(event: &tenet_model::Event) -> String {
    format!("{}@{}", event.id.0, event.time.unix_nanos())
}

impl PartitionFeed {
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Up to `max` events, waiting at most `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self.consumer.fetch().max_messages(max).expires(wait).messages().await.map_err(failed)?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(failed)?;
            let info = message.info().map_err(failed)?;
            let (stream_seq, delivered) = (info.stream_sequence, info.delivered);
            let header =
                |name: &str| message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
            let delivery = header(DELIVERY).unwrap_or_default();
            // Without a delivery, each event stands alone.
            let ends_delivery = delivery.is_empty() || header(DELIVERY_END).is_some();
            out.push(Delivery {
                payload: message.payload.clone(),
                delivery,
                ends_delivery,
                stream_seq,
                delivered,
                message,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_always_lands_in_the_same_partition_and_partitions_spread() {
        assert_eq!(partition_of("user:alice@example.com", 16), partition_of("user:alice@example.com", 16));
        let used: std::collections::BTreeSet<u32> = (0..1000).map(|i| partition_of(&format!("user:{i}"), 16)).collect();
        assert_eq!(used.len(), 16);
        assert_eq!(partitions_in(Some(&description(12))), Some(12));
        assert_eq!(partitions_in(Some("someone else's stream")), None);
    }
}
