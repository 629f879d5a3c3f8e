//! Tenet's observe stage: telemetry in the formats enterprises already
//! produce, parsed at the edge into `tenet_model::Event`.
//!
//! - [`framing`] splits any JSON container into records without trusting it;
//! - [`format`] defines the adapter contract and the one registry of formats;
//! - [`formats`] holds one module per format;
//! - [`input`] reads files, directories, gzip and stdin.
//!
//! Nothing here touches the store or knows about later stages.

pub mod delivery;
pub mod format;
pub mod formats;
pub mod framing;
pub mod input;
pub mod inventory;
pub mod json;

pub use format::{FORMATS, Format, Sample};
pub use formats::ocsf::to_ocsf;
pub use framing::{Location, RecordError};
pub use input::{InputError, InputFile};

/// Reads `data` with `format`, collecting events and errors. For callers that
/// want everything at once (tests, small inputs); the pipeline streams.
pub fn read_all(format: &dyn Format, data: &[u8]) -> (Vec<tenet_model::Event>, Vec<RecordError>) {
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    format.read(&bytes::Bytes::copy_from_slice(data), &mut |r| match r {
        Ok(e) => events.push(e),
        Err(e) => errors.push(e),
    });
    (events, errors)
}
