//! The one error type of the HL7 module: what went wrong and where, with the offending text.

use std::fmt;

/// Where in a message a problem sits: the segment's position (1-based, counting the message's
/// segments in order), its name and the field number (HL7 numbering, so MSH-1 is the field
/// separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub segment_index: usize,
    pub segment: String,
    pub field: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} ({}), field {}-{}", self.segment_index, self.segment, self.segment, self.field)
    }
}

/// Why HL7 input could not be read or mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hl7Error {
    /// Nothing but whitespace (or a byte-order mark).
    Empty,
    /// The first segment is not MSH; `found` is the start of what was there.
    MissingMsh { found: String },
    /// MSH is too short to carry the field separator and the encoding characters.
    TruncatedMsh { found: String },
    /// MSH-1/MSH-2 declare unusable delimiters (repeated, or a line break).
    BadEncodingCharacters { found: String, reason: &'static str },
    /// A segment name is not three upper-case letters or digits followed by the field separator.
    BadSegmentName { segment_index: usize, found: String },
    /// An escape sequence is unterminated or malformed.
    BadEscape { at: Location, found: String, reason: &'static str },
    /// A required field (or component) is empty or absent.
    MissingField { at: Location, what: &'static str },
    /// A required segment is absent.
    MissingSegment { segment: &'static str, message_type: String },
    /// MSH-12 names a version this parser does not read.
    UnsupportedVersion { found: String },
    /// MSH-9 is not an ADT event this module maps.
    UnsupportedMessageType { found: String },
    /// A field holds a value of the wrong shape (a date that is not a date, ...).
    BadValue { at: Location, found: String, reason: String },
    /// The patient carries no identifier the store could find them by.
    NoUsableIdentifier { at: Location, dropped: Vec<String> },
}

impl Hl7Error {
    /// The HL7 table 0357 error code an acknowledgement should carry for this error.
    pub fn hl7_code(&self) -> &'static str {
        match self {
            Hl7Error::Empty | Hl7Error::MissingMsh { .. } | Hl7Error::TruncatedMsh { .. } => "100",
            Hl7Error::BadSegmentName { .. } | Hl7Error::BadEncodingCharacters { .. } => "100",
            Hl7Error::MissingField { .. } | Hl7Error::MissingSegment { .. } | Hl7Error::NoUsableIdentifier { .. } => {
                "101"
            }
            Hl7Error::BadEscape { .. } | Hl7Error::BadValue { .. } => "102",
            Hl7Error::UnsupportedMessageType { .. } => "200",
            Hl7Error::UnsupportedVersion { .. } => "203",
        }
    }

    /// The location, when the error has one (for ERR-2).
    pub fn location(&self) -> Option<&Location> {
        match self {
            Hl7Error::BadEscape { at, .. }
            | Hl7Error::MissingField { at, .. }
            | Hl7Error::BadValue { at, .. }
            | Hl7Error::NoUsableIdentifier { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// Shortens text quoted in an error so a megabyte of garbage does not become the message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

impl fmt::Display for Hl7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hl7Error::Empty => f.write_str("the input holds no HL7 segments"),
            Hl7Error::MissingMsh { found } => write!(f, "a message must start with an MSH segment, found {found:?}"),
            Hl7Error::TruncatedMsh { found } => {
                write!(f, "MSH is too short to hold the field separator and encoding characters: {found:?}")
            }
            Hl7Error::BadEncodingCharacters { found, reason } => {
                write!(f, "MSH-1/MSH-2 encoding characters {found:?} are unusable: {reason}")
            }
            Hl7Error::BadSegmentName { segment_index, found } => write!(
                f,
                "segment {segment_index} does not start with a segment name (three upper-case letters or digits): {found:?}"
            ),
            Hl7Error::BadEscape { at, found, reason } => write!(f, "{at}: bad escape sequence in {found:?}: {reason}"),
            Hl7Error::MissingField { at, what } => write!(f, "{at}: {what} is required but empty"),
            Hl7Error::MissingSegment { segment, message_type } => {
                write!(f, "{message_type} message has no {segment} segment")
            }
            Hl7Error::UnsupportedVersion { found } => {
                write!(f, "MSH-12 version {found:?} is not supported (2.3, 2.3.1, 2.4, 2.5 and 2.5.1 are)")
            }
            Hl7Error::UnsupportedMessageType { found } => write!(
                f,
                "MSH-9 message type {found:?} is not mapped (ADT A01, A02, A03, A04, A08, A28, A31 and A40 are)"
            ),
            Hl7Error::BadValue { at, found, reason } => write!(f, "{at}: {found:?} {reason}"),
            Hl7Error::NoUsableIdentifier { at, dropped } => {
                write!(f, "{at}: the patient has no usable identifier")?;
                if !dropped.is_empty() {
                    write!(f, " (dropped: {})", dropped.join("; "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Hl7Error {}
