//! HL7 v2 (2.3 to 2.5.1) ingest: a parser of our own for messages and their file and batch
//! envelopes, MLLP framing as a pure byte codec, acknowledgements, and the mapping of ADT
//! events (A01, A02, A03, A04, A08, A28, A31, A40) to store transaction requests.
//!
//! Flow: [`split_batch`] cuts a file into [`BatchMessage`]s, [`Message::parse`] reads each
//! (delimiters from MSH-1/MSH-2, escapes resolved, every segment kept in order, Z-segments
//! and unknown ones included), [`map_adt`] describes what a message says as an
//! [`AdtRecord`], and [`to_request`] turns that into one [`pole_store::TransactionRequest`]
//! once the caller has looked the people and hospitals up in the store. Over TCP,
//! [`MllpDecoder`] yields frames and [`build_ack`] answers each.
//!
//! This module must never panic on input (every malformed byte sequence is a typed
//! [`Hl7Error`] naming the segment, field and offending text), never do I/O or touch the
//! store itself, and never drop a segment it does not understand.

mod ack;
mod adt;
mod batch;
mod delimiters;
mod dtm;
mod error;
mod escape;
mod mllp;
mod parse;
mod path;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use ack::{build_ack, build_ack_for_bytes, AckCode, AckError};
pub use adt::{
    address_decision, map_adt, resolve_person, to_request, AddressDecision, AddressRecord, AdtEvent, AdtRecord,
    AdtValue, CurrentAddress, EncounterKind, EncounterRecord, FacilityRecord, NewEntities, PersonMatch, PersonRecord,
};
pub use batch::{split_batch, split_batch_text, Batch, BatchIssue, BatchMessage, SegmentReader, Splitter};
pub use delimiters::Delimiters;
pub use dtm::{format_hl7, Dtm};
pub use error::{Hl7Error, Location};
pub use escape::{escape, unescape, EscapeError};
pub use mllp::{encode_frame, FrameTooLarge, MllpDecoder, CR, DEFAULT_MAX_FRAME, FS, VT};
pub(crate) use parse::segment_lines;
pub use parse::{Component, Field, Header, Message, Repetition, Segment, SUPPORTED_VERSIONS};
pub use path::Path;

/// Bytes to text: UTF-8 when they are (a byte-order mark skipped), otherwise Latin-1, one
/// character a byte, since English senders that are not UTF-8 are ISO 8859-1 or close to it.
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}
