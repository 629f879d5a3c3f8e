//! Telemetry pushed to Tenet rather than read from files: a body as an
//! HTTP sender delivers it (a collector's OTLP/HTTP export, protobuf or
//! JSON; an Okta Event Hook; any framing of the file formats), read into
//! events through the same adapters, so the formats stay named here only.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tenet_model::Event;

use crate::format::{self, Format};
use crate::formats::{okta::Okta, otlp};
use crate::framing::RecordError;

/// How a body was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// Records of one format in any framing `tenet ingest` reads; the
    /// format named, or detected.
    Records { format: Option<&'a str> },
    /// An OTLP/HTTP trace export.
    OtlpTraces { protobuf: bool },
    /// An Okta Event Hook delivery (`data.events`).
    OktaEventHook,
}

/// What reading a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The format its records were read as.
    pub format: &'static str,
    /// For an OTLP export, the spans it held (each becomes an event or a
    /// rejection).
    pub spans: Option<usize>,
}

/// Why a delivery could not be read at all (nothing in it is usable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// A short machine-readable reason (`unknown_format`, `unrecognised`,
    /// `invalid_otlp`, `invalid_hook`).
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> DeliveryError {
    DeliveryError { code, message: message.into() }
}

/// Reads `body` as delivered, emitting an event or a located error per
/// record, as [`Format::read`] does.
pub fn read(
    delivery: Delivery<'_>,
    body: &Bytes,
    emit: &mut dyn FnMut(Result<Event, RecordError>),
) -> Result<Delivered, DeliveryError> {
    match delivery {
        Delivery::Records { format } => {
            let f: &'static dyn Format = match format {
                Some(name) => format::by_name(name).ok_or_else(|| {
                    refuse(
                        "unknown_format",
                        format!("format {name:?} is not one Tenet reads ({})", format::names().join(", ")),
                    )
                })?,
                None => crate::input::choose(body, None).ok_or_else(|| {
                    refuse(
                        "unrecognised",
                        format!(
                            "not a recognised telemetry format (tried {}; name one to force it)",
                            format::names().join(", ")
                        ),
                    )
                })?,
            };
            f.read(body, emit);
            Ok(Delivered { format: f.name(), spans: None })
        }
        Delivery::OtlpTraces { protobuf } => {
            let (json, spans) = if protobuf {
                otlp::protobuf_to_json(body).map_err(|e| refuse("invalid_otlp", e))?
            } else {
                let spans = otlp::json_span_count(body)
                    .ok_or_else(|| refuse("invalid_otlp", "not an OTLP/JSON trace export (no resourceSpans)"))?;
                (body.clone(), spans)
            };
            otlp::Otlp.read(&json, emit);
            Ok(Delivered { format: otlp::Otlp.name(), spans: Some(spans) })
        }
        Delivery::OktaEventHook => {
            #[derive(Deserialize)]
            struct Hook<'a> {
                #[serde(borrow)]
                data: HookData<'a>,
            }
            #[derive(Deserialize)]
            struct HookData<'a> {
                #[serde(borrow)]
                events: &'a RawValue,
            }
            let hook: Hook<'_> = serde_json::from_slice(body)
                .map_err(|e| refuse("invalid_hook", format!("not an Okta Event Hook delivery (data.events): {e}")))?;
            let events = Bytes::copy_from_slice(hook.data.events.get().as_bytes());
            Okta.read(&events, emit);
            Ok(Delivered { format: Okta.name(), spans: None })
        }
    }
}
