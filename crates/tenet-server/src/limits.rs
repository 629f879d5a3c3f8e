//! Every bound the HTTP server keeps, in one place: request size before and
//! after decompression, items per batch and per search page, JSON nesting,
//! header size, the header/body/idle timeouts, connections, and the
//! decision log's queue. The serve configuration's `limits:` section is
//! this struct (same keys), and the PDP metadata advertises it as
//! `tenet_limits`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bytes a queued decision-log record is charged beyond its request: the
/// decision, its reasons and signals, the queue's own bookkeeping.
pub const RECORD_OVERHEAD: usize = 512;

/// File descriptors kept back from connections for everything else the
/// process opens (the stores and their journals, policy files, the key
/// file, the runtime's own).
pub const RESERVED_FDS: usize = 64;

/// serde_json refuses nesting deeper than this by itself.
const JSON_DEPTH_CEILING: usize = 128;
/// hyper's smallest read buffer.
const HEADER_BYTES_FLOOR: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The most bytes of request body read, as sent (compressed or not).
    pub max_body_bytes: usize,
    /// The most JSON one request may amount to: a body after gzip is
    /// undone, and a batch once each item takes its top-level defaults.
    pub max_decompressed_bytes: usize,
    /// A gzip body may expand at most this many times its sent size.
    pub max_decompression_ratio: usize,
    /// Evaluations in one `/access/v1/evaluations` request.
    pub max_batch_items: usize,
    /// Results in one search page (a larger or absent `page.limit` is
    /// served in pages of this size, with a `next_token`).
    pub max_search_page: usize,
    /// Nesting of objects and arrays in a request body.
    pub max_json_depth: usize,
    /// The request line and headers together.
    pub max_header_bytes: usize,
    /// From a request's first byte to the end of its headers.
    pub header_timeout_ms: u64,
    /// To receive a whole request body.
    pub body_timeout_ms: u64,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout_ms: u64,
    /// Open connections; capped below the process's file-descriptor limit.
    pub max_connections: usize,
    /// Decision-log records queued for the writer at most.
    pub decision_log_queue: usize,
    /// And the bytes they may hold (requests kept for the log).
    pub decision_log_queue_bytes: usize,
    /// A telemetry or inventory body (`/v1/traces`, `/api/v1/events`, the
    /// hooks, `/api/v1/inventory`), as sent and once decompressed.
    pub max_ingest_bytes: usize,
    /// Telemetry bodies accepted and waiting to be stored, at most; beyond,
    /// senders are answered 429 with `Retry-After`.
    pub ingest_queue: usize,
    /// And the bytes they may hold.
    pub ingest_queue_bytes: usize,
}

impl Default for Limits {
    /// Sized for a 2-core, 24 GiB host with the queue and every connection full.
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 8 << 20,
            max_decompression_ratio: 100,
            max_batch_items: 1000,
            max_search_page: 1000,
            max_json_depth: 64,
            max_header_bytes: 64 << 10,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            decision_log_queue: 65_536,
            decision_log_queue_bytes: 256 << 20,
            max_ingest_bytes: 20 << 20,
            ingest_queue: 64,
            ingest_queue_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("limits.{0} must be greater than 0")]
    Zero(&'static str),
    #[error("limits.max_json_depth is {0}; at most {JSON_DEPTH_CEILING}")]
    Depth(usize),
    #[error("limits.max_header_bytes is {0}; at least {HEADER_BYTES_FLOOR}")]
    HeaderBytes(usize),
    #[error("limits.max_decompressed_bytes ({0}) must be at least limits.max_body_bytes ({1})")]
    Decompressed(usize, usize),
    #[error(
        "limits.decision_log_queue ({queue}) must hold a whole batch (limits.max_batch_items {batch}), or that batch could never be decided"
    )]
    QueueRecords { queue: usize, batch: usize },
    #[error(
        "limits.decision_log_queue_bytes ({queue}) must hold the largest request ({need} bytes: max_decompressed_bytes and {RECORD_OVERHEAD} per batch item)"
    )]
    QueueBytes { queue: usize, need: usize },
    #[error(
        "limits.ingest_queue_bytes ({queue}) must hold the largest telemetry body (limits.max_ingest_bytes {body})"
    )]
    IngestQueueBytes { queue: usize, body: usize },
}

impl Limits {
    /// Refuses a set of limits under which some valid request could never be served.
    pub fn validate(&self) -> Result<(), LimitsError> {
        for (name, v) in [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_decompressed_bytes", self.max_decompressed_bytes as u64),
            ("max_decompression_ratio", self.max_decompression_ratio as u64),
            ("max_batch_items", self.max_batch_items as u64),
            ("max_search_page", self.max_search_page as u64),
            ("max_json_depth", self.max_json_depth as u64),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("decision_log_queue", self.decision_log_queue as u64),
            ("decision_log_queue_bytes", self.decision_log_queue_bytes as u64),
            ("max_ingest_bytes", self.max_ingest_bytes as u64),
            ("ingest_queue", self.ingest_queue as u64),
            ("ingest_queue_bytes", self.ingest_queue_bytes as u64),
        ] {
            if v == 0 {
                return Err(LimitsError::Zero(name));
            }
        }
        if self.max_json_depth > JSON_DEPTH_CEILING {
            return Err(LimitsError::Depth(self.max_json_depth));
        }
        if self.max_header_bytes < HEADER_BYTES_FLOOR {
            return Err(LimitsError::HeaderBytes(self.max_header_bytes));
        }
        if self.max_decompressed_bytes < self.max_body_bytes {
            return Err(LimitsError::Decompressed(self.max_decompressed_bytes, self.max_body_bytes));
        }
        if self.ingest_queue_bytes < self.max_ingest_bytes {
            return Err(LimitsError::IngestQueueBytes { queue: self.ingest_queue_bytes, body: self.max_ingest_bytes });
        }
        if self.decision_log_queue < self.max_batch_items {
            return Err(LimitsError::QueueRecords { queue: self.decision_log_queue, batch: self.max_batch_items });
        }
        let need = self.max_decompressed_bytes.saturating_add(self.max_batch_items.saturating_mul(RECORD_OVERHEAD));
        if self.decision_log_queue_bytes < need {
            return Err(LimitsError::QueueBytes { queue: self.decision_log_queue_bytes, need });
        }
        Ok(())
    }

    /// These limits with `max_connections` lowered below the process's
    /// open-file limit (keeping [`RESERVED_FDS`] back), so a full house of
    /// connections never starves the stores, or the listener refusing one
    /// more, of descriptors; and the descriptor limit when it did lower them.
    pub fn fitted_to_process(mut self) -> (Self, Option<u64>) {
        match open_file_limit() {
            Some(nofile) => {
                let room = usize::try_from(nofile).unwrap_or(usize::MAX).saturating_sub(RESERVED_FDS).max(1);
                if room < self.max_connections {
                    self.max_connections = room;
                    return (self, Some(nofile));
                }
                (self, None)
            }
            None => (self, None),
        }
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// The soft `RLIMIT_NOFILE`, if the platform has one.
#[cfg(unix)]
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through a valid, exclusive pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    // `rlim_t` is u64 here, not on every unix.
    #[allow(clippy::unnecessary_cast)]
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
pub fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_a_valid_set_and_impossible_sets_are_refused_by_name() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits { body_timeout_ms: 0, ..Limits::default() };
        assert_eq!(zero.validate(), Err(LimitsError::Zero("body_timeout_ms")));
        let batch_beyond_queue = Limits { decision_log_queue: 10, ..Limits::default() };
        assert!(matches!(batch_beyond_queue.validate(), Err(LimitsError::QueueRecords { .. })));
        let too_deep = Limits { max_json_depth: 500, ..Limits::default() };
        assert_eq!(too_deep.validate(), Err(LimitsError::Depth(500)));
    }

    #[test]
    fn a_config_section_names_only_what_it_changes_and_unknown_keys_are_refused() {
        let l: Limits = serde_json::from_str(r#"{"max_batch_items": 10, "header_timeout_ms": 500}"#).unwrap();
        assert_eq!(
            (l.max_batch_items, l.header_timeout(), l.max_body_bytes),
            (10, Duration::from_millis(500), 1 << 20)
        );
        assert!(serde_json::from_str::<Limits>(r#"{"max_batch": 10}"#).is_err());
    }

    #[test]
    fn connections_stay_below_the_open_file_limit() {
        let (fitted, _) = Limits { max_connections: usize::MAX, ..Limits::default() }.fitted_to_process();
        if let Some(nofile) = open_file_limit() {
            assert!((fitted.max_connections as u64) < nofile.max(2));
        }
    }
}
