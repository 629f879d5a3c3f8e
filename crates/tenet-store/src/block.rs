//! Compressed blocks of events: the unit events are written and read in.
//!
//! Normalised events (JSON) and raw records are stored a block of up to
//! [`BLOCK_EVENTS`] at a time, each kind compressed together with zstd.
//! Telemetry repeats itself heavily across records, so a block compresses
//! several times better than records one by one, and the database writes a
//! fraction of the bytes; queries read events in time order, so neighbours
//! share blocks and one decompression serves many results.

use tenet_model::{Event, RawRecord, TrustChange};

use crate::{Result, StoreError};

/// Events per block: small enough that fetching one event decompresses well
/// under a millisecond, large enough to compress well.
pub const BLOCK_EVENTS: usize = 256;

/// One of zstd's fast levels: ingest is CPU-bound and disk is not scarce.
/// On the ingest bench, -3 against 1 costs the reading thread a fifth less
/// time per event for about a sixth more bytes on disk.
const LEVEL: i32 = -3;

/// Events encoded and compressed, ready for the writer.
pub struct PreparedBatch {
    /// What the writer needs of each event; the events themselves are
    /// dropped where they were prepared, not on the writer's thread.
    pub(crate) keys: Keys,
    pub(crate) blocks: Vec<EncodedBlock>,
    /// Why an event could not be encoded, if one could not: the writer
    /// refuses the whole batch with it rather than store a hole.
    pub(crate) failed: Option<String>,
}

/// A string in [`Keys::arena`].
pub(crate) type Span = (u32, u32);

/// One event's key, indexed columns and references, as spans of an arena:
/// one allocation for a whole batch instead of dozens per event.
pub(crate) struct EventKeys {
    pub time: i64,
    pub id: Span,
    pub format: Span,
    pub system: Span,
    pub actor: Span,
    /// `service:operation`.
    pub action: Span,
    pub credential: Option<Span>,
    pub issued: Option<Span>,
    /// Indexes into [`Keys::refs`]: principals (actor and chain), then resources.
    pub principals: std::ops::Range<u32>,
    pub resources: std::ops::Range<u32>,
}

#[derive(Default)]
pub(crate) struct Keys {
    pub arena: String,
    pub refs: Vec<Span>,
    pub events: Vec<EventKeys>,
    /// Declared trust changes (asserts, retracts) as JSON, by index into `events`.
    pub declared: Vec<(usize, Vec<u8>)>,
    /// Observed facts, once per batch by fact key: (key, fact JSON, first
    /// time, last time, index into `events` of the first).
    pub observed: Vec<(String, Vec<u8>, i64, i64, usize)>,
    observed_index: rustc_hash::FxHashMap<String, usize>,
}

impl Keys {
    pub fn str(&self, span: Span) -> &str {
        &self.arena[span.0 as usize..span.1 as usize]
    }

    fn put(&mut self, parts: &[&str]) -> Span {
        let start = self.arena.len() as u32;
        for p in parts {
            self.arena.push_str(p);
        }
        (start, self.arena.len() as u32)
    }

    pub fn push(&mut self, e: &Event) {
        let id = self.put(&[e.id.as_str()]);
        let format = self.put(&[&e.source.format]);
        let system = self.put(&[&e.source.system]);
        let actor = self.put(&[&e.actor.id]);
        let action = self.put(&[&e.action.service, ":", &e.action.operation]);
        let credential = e.session.as_ref().and_then(|s| s.credential_id.as_deref()).map(|c| self.put(&[c]));
        let issued = e.issued.as_ref().map(|i| self.put(&[&i.credential_id]));
        let p0 = self.refs.len() as u32;
        for p in e.principals() {
            let span = self.put(&[&p.id]);
            self.refs.push(span);
        }
        // Declared trust changes are kept apart (and their events tagged) so
        // the trust graph is rebuilt without reading every event; what an
        // event only observes is kept once per fact, not once per request.
        let index = self.events.len();
        let time = e.time.unix_nanos();
        let declared: Vec<&TrustChange> =
            e.changes.iter().filter(|c| !matches!(c, TrustChange::Observe { .. })).collect();
        if !declared.is_empty() {
            let span = self.put(&[crate::TRUST_TAG]);
            self.refs.push(span);
            self.declared.push((index, serde_json::to_vec(&declared).unwrap_or_default()));
        }
        for c in &e.changes {
            let TrustChange::Observe { fact } = c else { continue };
            let key = fact.key();
            match self.observed_index.get(&key) {
                Some(&i) => {
                    let o = &mut self.observed[i];
                    if time < o.2 {
                        o.2 = time;
                        o.4 = index;
                    }
                    o.3 = o.3.max(time);
                }
                None => {
                    self.observed_index.insert(key.clone(), self.observed.len());
                    self.observed.push((key, serde_json::to_vec(fact).unwrap_or_default(), time, time, index));
                }
            }
        }
        let r0 = self.refs.len() as u32;
        for r in &e.resources {
            let span = self.put(&[&r.id]);
            self.refs.push(span);
        }
        let end = self.refs.len() as u32;
        self.events.push(EventKeys {
            time: e.time.unix_nanos(),
            id,
            format,
            system,
            actor,
            action,
            credential,
            issued,
            principals: p0..r0,
            resources: r0..end,
        });
    }
}

/// A block's events, each as its normalised JSON followed by its raw
/// record: a doc sits next to the raw it came from, so the compressor
/// finds their shared strings (ARNs, ids, agents) within a few hundred bytes.
pub(crate) struct EncodedBlock {
    pub data: Vec<u8>,
}

impl PreparedBatch {
    /// Encodes and compresses `events`. CPU work only: call it off the
    /// writer's thread.
    pub fn new(mut events: Vec<Event>) -> Self {
        Self::prepare(&mut events, true)
    }

    /// As [`Self::new`], handing the events back (raw records included) in
    /// the batch's order, the order [`crate::Appended::fresh`] counts in.
    pub fn keeping(mut events: Vec<Event>) -> (Self, Vec<Event>) {
        let batch = Self::prepare(&mut events, false);
        (batch, events)
    }

    fn prepare(events: &mut [Event], take_raw: bool) -> Self {
        // Time order within the batch: the store's indexes are time-ordered,
        // so sorted inserts walk them in order instead of jumping about, and
        // blocks hold neighbours in time, as queries read them.
        events.sort_by_key(|e| e.time);
        let mut keys = Keys::default();
        for e in events.iter() {
            keys.push(e);
        }
        let mut blocks = Vec::with_capacity(events.len().div_ceil(BLOCK_EVENTS));
        let mut buf = Vec::new();
        let mut failed = None;
        // One compression context for the whole batch: creating one per
        // block costs as much as compressing a small block.
        let mut zstd = match zstd::bulk::Compressor::new(LEVEL) {
            Ok(z) => Some(z),
            Err(err) => {
                failed = Some(format!("zstd: {err}"));
                None
            }
        };
        for chunk in events.chunks_mut(BLOCK_EVENTS) {
            buf.clear();
            for e in chunk.iter_mut() {
                let raw = if take_raw { std::mem::take(&mut e.raw) } else { e.raw.clone() };
                match write_doc(&mut buf, e) {
                    Ok(()) => push_entry(&mut buf, raw.as_bytes()),
                    Err(err) => {
                        failed.get_or_insert_with(|| format!("event {} does not encode: {err}", e.id));
                    }
                }
            }
            match zstd.as_mut().map(|z| compress(z, &buf)) {
                Some(Ok(data)) => blocks.push(EncodedBlock { data }),
                Some(Err(err)) => {
                    failed.get_or_insert_with(|| format!("zstd: {err}"));
                }
                None => {}
            }
        }
        PreparedBatch { keys, blocks, failed }
    }

    pub fn len(&self) -> usize {
        self.keys.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.events.is_empty()
    }
}

/// Appends `e` as a length-prefixed JSON entry, serialised in place; on
/// failure the buffer is as it was.
fn write_doc(buf: &mut Vec<u8>, e: &Event) -> serde_json::Result<()> {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(err) = serde_json::to_writer(&mut *buf, e) {
        buf.truncate(at);
        return Err(err);
    }
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn push_entry(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// `bytes`' length, then `bytes` compressed, written straight after it.
fn compress(ctx: &mut zstd::bulk::Compressor<'static>, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4 + zstd::zstd_safe::compress_bound(bytes.len()));
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    let mut body = std::io::Cursor::new(&mut out);
    body.set_position(4);
    ctx.compress_to_buffer(bytes, &mut body)?;
    Ok(out)
}

/// A decompressed block: entries addressed by slot.
pub(crate) struct Decoded {
    bytes: Vec<u8>,
    offsets: Vec<(usize, usize)>,
}

impl Decoded {
    pub fn open(blob: &[u8], block: i64) -> Result<Decoded> {
        let corrupt = |reason: String| StoreError::Corrupt { id: format!("block {block}"), reason };
        let (len, body) = blob.split_at_checked(4).ok_or_else(|| corrupt("block shorter than its header".into()))?;
        let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let bytes = zstd::bulk::decompress(body, len).map_err(|e| corrupt(e.to_string()))?;
        let mut offsets = Vec::new();
        let mut i = 0;
        while i + 4 <= bytes.len() {
            let n = u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or_default()) as usize;
            if i + 4 + n > bytes.len() {
                return Err(corrupt("entry runs past the end of the block".into()));
            }
            offsets.push((i + 4, i + 4 + n));
            i += 4 + n;
        }
        Ok(Decoded { bytes, offsets })
    }

    /// The normalised event in `slot`.
    pub fn doc(&self, slot: usize) -> Option<&[u8]> {
        self.entry(2 * slot)
    }

    /// The raw record in `slot`.
    pub fn raw(&self, slot: usize) -> Option<&[u8]> {
        self.entry(2 * slot + 1)
    }

    fn entry(&self, i: usize) -> Option<&[u8]> {
        self.offsets.get(i).map(|&(a, b)| &self.bytes[a..b])
    }
}

pub(crate) fn decode_event(id: &str, doc: &[u8], raw: Option<&[u8]>) -> Result<Event> {
    let mut e: Event = serde_json::from_slice(doc)
        .map_err(|err| StoreError::Corrupt { id: id.to_string(), reason: err.to_string() })?;
    if let Some(raw) = raw {
        e.raw = RawRecord::from(raw);
    }
    Ok(e)
}

/// Compresses a standalone blob (an inventory snapshot's facts).
pub(crate) fn compress_blob(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::Compressor::new(LEVEL)
        .and_then(|mut z| compress(&mut z, bytes))
        .map_err(|e| StoreError::Encode(format!("zstd: {e}")))
}

/// Decompresses a blob written by [`compress_blob`].
pub(crate) fn decompress(blob: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let (len, body) = blob.split_at_checked(4).ok_or("blob shorter than its header")?;
    let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
    zstd::bulk::decompress(body, len).map_err(|e| e.to_string())
}

/// A 64-bit FNV-1a hash.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// An event id's FNV-1a hash: the unique index holds this, not the text,
/// so its entries are a third the size. Collisions are resolved on insert
/// by comparing the stored id, so uniqueness stays exact.
pub(crate) fn id_hash(id: &str) -> i64 {
    fnv(id.as_bytes()) as i64
}

/// A reference key: principals and resources share the `names` table and
/// are told apart by the low bit.
pub(crate) fn principal_ref(name: i64) -> i64 {
    name * 2
}

pub(crate) fn resource_ref(name: i64) -> i64 {
    name * 2 + 1
}

/// The reference rows `(ref, time, seq)` of one stored event, each once,
/// appended to `out`; `id_of` gives a name's interned id.
pub(crate) fn event_refs(
    seq: i64,
    keys: &Keys,
    e: &EventKeys,
    mut id_of: impl FnMut(&str) -> Result<i64>,
    out: &mut Vec<(i64, i64, i64)>,
) -> Result<()> {
    let start = out.len();
    for i in e.principals.clone() {
        out.push((principal_ref(id_of(keys.str(keys.refs[i as usize]))?), e.time, seq));
    }
    for i in e.resources.clone() {
        out.push((resource_ref(id_of(keys.str(keys.refs[i as usize]))?), e.time, seq));
    }
    let mine = &mut out[start..];
    mine.sort_unstable();
    let mut w = 0;
    for i in 0..mine.len() {
        if w == 0 || mine[i] != mine[w - 1] {
            mine[w] = mine[i];
            w += 1;
        }
    }
    out.truncate(start + w);
    Ok(())
}

/// Where a stored event sits, and the actor and chain it was relinked to
/// (as JSON) if it was: one row of either backend's event table.
pub(crate) struct StoredRow {
    pub id: String,
    pub block: i64,
    pub slot: usize,
    pub relinked: Option<(String, String)>,
}

/// The event `r` names, from its block (already fetched and opened).
pub(crate) fn event_at(r: &StoredRow, block: Option<&Decoded>, with_raw: bool) -> Result<Event> {
    let corrupt =
        || StoreError::Corrupt { id: r.id.clone(), reason: format!("missing slot {} of block {}", r.slot, r.block) };
    let block = block.ok_or_else(corrupt)?;
    let doc = block.doc(r.slot).ok_or_else(corrupt)?;
    let raw = if with_raw { Some(block.raw(r.slot).ok_or_else(corrupt)?) } else { None };
    let mut e = decode_event(&r.id, doc, raw)?;
    if let Some((actor, chain)) = &r.relinked {
        let bad = |err: serde_json::Error| StoreError::Corrupt { id: r.id.clone(), reason: err.to_string() };
        e.actor = serde_json::from_str::<tenet_model::Principal>(actor).map_err(bad)?;
        e.chain = serde_json::from_str::<Vec<tenet_model::Principal>>(chain).map_err(bad)?;
    }
    Ok(e)
}
