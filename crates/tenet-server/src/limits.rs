//! Every bound the HTTP server keeps on what a request may make it hold or
//! do, in one place: request size before and after decompression, items
//! per batch and per search page, JSON nesting, the decision log's queue.
//! The serve configuration's
//! `limits:` section is this struct (same keys), and the PDP metadata
//! advertises it as `tenet_limits`.

use serde::{Deserialize, Serialize};

/// Bytes a queued decision-log record is charged beyond its request: the
/// decision, its reasons and signals, the queue's own bookkeeping.
pub const RECORD_OVERHEAD: usize = 512;

/// serde_json refuses nesting deeper than this by itself.
const JSON_DEPTH_CEILING: usize = 128;

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
    /// Decision-log records queued for the writer at most.
    pub decision_log_queue: usize,
    /// And the bytes they may hold (requests kept for the log).
    pub decision_log_queue_bytes: usize,
}

impl Default for Limits {
    /// Sized for a 2-core, 24 GiB host with the queue full.
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 8 << 20,
            max_decompression_ratio: 100,
            max_batch_items: 1000,
            max_search_page: 1000,
            max_json_depth: 64,
            decision_log_queue: 65_536,
            decision_log_queue_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("limits.{0} must be greater than 0")]
    Zero(&'static str),
    #[error("limits.max_json_depth is {0}; at most {JSON_DEPTH_CEILING}")]
    Depth(usize),
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
            ("decision_log_queue", self.decision_log_queue as u64),
            ("decision_log_queue_bytes", self.decision_log_queue_bytes as u64),
        ] {
            if v == 0 {
                return Err(LimitsError::Zero(name));
            }
        }
        if self.max_json_depth > JSON_DEPTH_CEILING {
            return Err(LimitsError::Depth(self.max_json_depth));
        }
        if self.max_decompressed_bytes < self.max_body_bytes {
            return Err(LimitsError::Decompressed(self.max_decompressed_bytes, self.max_body_bytes));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_a_valid_set_and_impossible_sets_are_refused_by_name() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits { max_batch_items: 0, ..Limits::default() };
        assert_eq!(zero.validate(), Err(LimitsError::Zero("max_batch_items")));
        let batch_beyond_queue = Limits { decision_log_queue: 10, ..Limits::default() };
        assert!(matches!(batch_beyond_queue.validate(), Err(LimitsError::QueueRecords { .. })));
        let too_deep = Limits { max_json_depth: 500, ..Limits::default() };
        assert_eq!(too_deep.validate(), Err(LimitsError::Depth(500)));
    }

    #[test]
    fn a_config_section_names_only_what_it_changes_and_unknown_keys_are_refused() {
        let l: Limits = serde_json::from_str(r#"{"max_batch_items": 10, "max_json_depth": 16}"#).unwrap();
        assert_eq!((l.max_batch_items, l.max_json_depth, l.max_body_bytes), (10, 16, 1 << 20));
        assert!(serde_json::from_str::<Limits>(r#"{"max_batch": 10}"#).is_err());
    }
}
