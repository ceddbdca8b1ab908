//! HL7 acknowledgements: MSA-1 AA/AE/AR, MSA-2 the original control id, and for errors
//! MSA-3 plus an ERR segment in the layout of the original's version.

use pole_model::Timestamp;

use super::delimiters::Delimiters;
use super::dtm::format_hl7;
use super::error::{Hl7Error, Location};
use super::escape::escape;
use super::parse::{Header, Message, SUPPORTED_VERSIONS};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// AA: applied (durably).
    Accept,
    /// AE: understood but not applied (bad content; resending it unchanged will fail again),
    /// or, from the MLLP listener, applied but its access record could not be written
    /// (the ERR text asks for a resend, which is answered AA once the record can be written).
    Error,
    /// AR: rejected (unreadable, unsupported, or the store could not take it now).
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// What an ERR segment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// HL7 table 0357 code, e.g. `101` required field missing, `207` application error.
    pub code: String,
    pub text: String,
    pub location: Option<Location>,
}

impl AckError {
    /// An application error (0357 code 207), e.g. the store refused the transaction.
    pub fn application(text: impl Into<String>) -> Self {
        AckError { code: "207".into(), text: text.into(), location: None }
    }
}

impl From<&Hl7Error> for AckError {
    fn from(error: &Hl7Error) -> Self {
        AckError { code: error.hl7_code().into(), text: error.to_string(), location: error.location().cloned() }
    }
}

/// The acknowledgement of `original`, sent with its delimiters. `control_id` is the ACK's
/// own MSH-10; `at` its MSH-7.
pub fn build_ack(
    original: &Message,
    code: AckCode,
    error: Option<&AckError>,
    control_id: &str,
    at: Timestamp,
) -> String {
    let d = original.delimiters();
    // Without all four encoding characters errors could not be escaped: answer in the standard ones.
    let complete = d.repetition.is_some() && d.escape.is_some() && d.subcomponent.is_some();
    let d = if complete { *d } else { Delimiters::default() };
    write_ack(&d, &original.header(), code, error, control_id, at)
}

/// The acknowledgement of bytes that may not parse at all: whatever of the header can be
/// read is echoed (MSA-2 is empty when the control id cannot be read).
pub fn build_ack_for_bytes(
    bytes: &[u8],
    code: AckCode,
    error: Option<&AckError>,
    control_id: &str,
    at: Timestamp,
) -> String {
    match Message::parse_structure(&super::decode_text(bytes)) {
        Ok(message) => build_ack(&message, code, error, control_id, at),
        Err(_) => write_ack(&Delimiters::default(), &Header::default(), code, error, control_id, at),
    }
}

fn write_ack(
    d: &Delimiters,
    original: &Header,
    code: AckCode,
    error: Option<&AckError>,
    control_id: &str,
    at: Timestamp,
) -> String {
    let e = |text: &str| escape(text, d).into_owned();
    let f = d.field;
    let c = d.component;
    let version = match original.version.trim() {
        v if SUPPORTED_VERSIONS.contains(&v) => v.to_owned(),
        _ => "2.5".to_owned(),
    };
    let processing = if original.processing_id.is_empty() { "P" } else { original.processing_id.as_str() };
    let mut out = String::with_capacity(256);
    // The ACK goes back to the sender: sending and receiving swap.
    out.push_str(&format!(
        "MSH{f}{}{f}{}{f}{}{f}{}{f}{}{f}{}{f}{f}ACK{c}{}{c}ACK{f}{}{f}{}{f}{}\r",
        d.encoding_characters(),
        e(&original.receiving_application),
        e(&original.receiving_facility),
        e(&original.sending_application),
        e(&original.sending_facility),
        // Even the time and version are escaped: a sender may declare `+` or `.` a delimiter.
        e(&format_hl7(at)),
        e(&original.trigger_event),
        e(control_id),
        e(processing),
        e(&version),
    ));
    out.push_str(&format!("MSA{f}{}{f}{}", code.as_str(), e(&original.control_id)));
    if let Some(error) = error {
        out.push_str(&format!("{f}{}", e(&error.text)));
    }
    out.push('\r');
    if let Some(error) = error {
        out.push_str(&err_segment(d, &version, error));
        out.push('\r');
    }
    out
}

fn err_segment(d: &Delimiters, version: &str, error: &AckError) -> String {
    let e = |text: &str| escape(text, d).into_owned();
    let (f, c) = (d.field, d.component);
    let (seg, seq, field) = match &error.location {
        Some(l) => (e(&l.segment), l.segment_index.to_string(), l.field.to_string()),
        None => (String::new(), String::new(), String::new()),
    };
    if version.starts_with("2.5") {
        // ERR-2 location, ERR-3 code^text^table, ERR-4 severity, ERR-8 user message.
        format!(
            "ERR{f}{f}{seg}{c}{seq}{c}{field}{f}{}{c}{}{c}HL70357{f}E{f}{f}{f}{f}{}",
            e(&error.code),
            e(&error.text),
            e(&error.text)
        )
    } else {
        // 2.3 and 2.4: ERR-1 is an ELD, segment^sequence^field^code&text&table.
        let s = d.subcomponent.unwrap_or(c);
        format!("ERR{f}{seg}{c}{seq}{c}{field}{c}{}{s}{}{s}HL70357", e(&error.code), e(&error.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str =
        "MSH|^~\\&|PAS|RXH|POLE|305|20240301093000||ADT^A01^ADT_A01|CTRL-1|P|2.5\rPID|1||123^^^RXH^MR\r";

    fn at() -> Timestamp {
        Timestamp::parse("2024-03-01T09:30:05Z").unwrap()
    }

    #[test]
    fn accept_round_trips_through_the_parser() {
        let original = Message::parse(MESSAGE).unwrap();
        let ack = build_ack(&original, AckCode::Accept, None, "ACK-1", at());
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSH-3"), Some("POLE"));
        assert_eq!(parsed.get("MSH-5"), Some("PAS"));
        assert_eq!(parsed.get("MSH-6"), Some("RXH"));
        assert_eq!(parsed.get("MSH-7"), Some("20240301093005+0000"));
        assert_eq!(parsed.get("MSH-9.1"), Some("ACK"));
        assert_eq!(parsed.get("MSH-9.2"), Some("A01"));
        assert_eq!(parsed.get("MSH-10"), Some("ACK-1"));
        assert_eq!(parsed.get("MSA-1"), Some("AA"));
        assert_eq!(parsed.get("MSA-2"), Some("CTRL-1"));
        assert_eq!(parsed.get("MSA-3"), None);
        assert!(parsed.segment("ERR").is_none());
    }

    #[test]
    fn error_ack_carries_the_error_escaped_in_v25_layout() {
        let original = Message::parse(MESSAGE).unwrap();
        let error = AckError {
            code: "101".into(),
            text: "PID-3 | missing ^ here".into(),
            location: Some(Location { segment_index: 2, segment: "PID".into(), field: 3 }),
        };
        let ack = build_ack(&original, AckCode::Error, Some(&error), "ACK-2", at());
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSA-1"), Some("AE"));
        assert_eq!(parsed.get("MSA-3"), Some("PID-3 | missing ^ here"));
        assert_eq!(parsed.get("ERR-2.1"), Some("PID"));
        assert_eq!(parsed.get("ERR-2.2"), Some("2"));
        assert_eq!(parsed.get("ERR-2.3"), Some("3"));
        assert_eq!(parsed.get("ERR-3.1"), Some("101"));
        assert_eq!(parsed.get("ERR-3.2"), Some("PID-3 | missing ^ here"));
        assert_eq!(parsed.get("ERR-4"), Some("E"));
        assert_eq!(parsed.get("ERR-8"), Some("PID-3 | missing ^ here"));
    }

    #[test]
    fn v23_error_ack_uses_the_eld_layout_and_the_senders_delimiters() {
        let original = Message::parse("MSH#$*!@#PAS#RXH#POLE#305#20240301##ADT$A08#C9#P#2.3\r").unwrap();
        let error = AckError::application("store & journal busy");
        let ack = build_ack(&original, AckCode::Reject, Some(&error), "A9", at());
        assert!(ack.starts_with("MSH#$*!@#POLE#305#PAS#RXH#"));
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSH-12"), Some("2.3"));
        assert_eq!(parsed.get("MSA-1"), Some("AR"));
        assert_eq!(parsed.get("MSA-2"), Some("C9"));
        assert_eq!(parsed.get("ERR-1.4.1"), Some("207"));
        assert_eq!(parsed.get("ERR-1.4.2"), Some("store & journal busy"));
        assert_eq!(parsed.get("ERR-1.4.3"), Some("HL70357"));
    }

    #[test]
    fn unreadable_bytes_still_get_a_parseable_reject() {
        let error = AckError::from(&Hl7Error::Empty);
        let ack = build_ack_for_bytes(b"\xff\xfe garbage", AckCode::Reject, Some(&error), "A1", at());
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSA-1"), Some("AR"));
        assert_eq!(parsed.get("MSA-2"), None);
        assert_eq!(parsed.get("ERR-3.1"), Some("100"));
        // An unsupported version is answered in 2.5 but keeps the control id.
        let ack = build_ack_for_bytes(
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.7\r",
            AckCode::Reject,
            Some(&AckError::from(&Hl7Error::UnsupportedVersion { found: "2.7".into() })),
            "A2",
            at(),
        );
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSA-2"), Some("X1"));
        assert_eq!(parsed.get("ERR-3.1"), Some("203"));
    }
}
