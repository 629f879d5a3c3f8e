//! The Shared Signals vocabulary Tenet transmits (and, later, receives):
//! who an event is about ([`Subject`], RFC 9493 as SSF 1.0 extends it),
//! what happened ([`SecurityEvent`], the CAEP and RISC event types), and
//! the claims of the Security Event Token that carries exactly one event
//! ([`SetClaims`], RFC 8417 as SSF 1.0 §4 profiles it: `sub_id` always, no
//! `sub`, no `exp`).
//!
//! Values in, JSON documents and signed SETs out ([`SigningKey`], RS256):
//! no I/O but the OS random source RSA signing blinds with. Keys on disk,
//! streams, delivery and the outbox live at the edges.

mod event;
mod jws;
mod set;
mod stream;
mod subject;
mod verify;
mod wire;

pub use event::{CaepRiskLevel, ChangeType, Initiator, Reason, SecurityEvent, Why, supported_event_types};
pub use jws::{KeyError, SigningKey, Unsigned, generate, jwks};
pub use set::{Audience, SetClaims};
pub use stream::{Delivery, Invalid, Issuing, POLL, PUSH, StreamConfig, StreamStatus, WEBHOOK};
pub use subject::{ComplexSubject, Subject};
pub use verify::{Expect, Received, Refused, claimed_issuer, claimed_kid, verify};
pub use wire::{PollRequest, PushOutcome, SetError, StatusRequest, SubjectRequest, VerifyRequest};
