//! HL7 v2 into the store: the file path (`ingest FILE --format hl7`) and the one-message
//! step it shares with the MLLP listener of `serve --mllp`.
//!
//! Unlike a CSV file, which is one transaction, every HL7 message is its own transaction,
//! committed in file (or arrival) order: a message is an event a sending system has already
//! acted on, its MSH-10 control id is what a resend repeats, and the idempotency key built
//! from it must name exactly one transaction. [`process_message`] reads, maps, resolves and
//! commits one message and says what became of it ([`MessageOutcome`]), which the file
//! path turns into a report row and the listener into an ACK.
//!
//! Rule: an outcome that reads as applied (AA, an accepted row) is only ever produced after
//! `Store::commit` returned `Ok`, that is after the journal was synced.

use pole_model::{EntityId, Identifier, Source, Timestamp};
use pole_store::{Committed, Rejection, Store};

use crate::hl7::{self, AckCode, AckError, AdtRecord, Hl7Error, Message};
use crate::report::{Issue, Report, RowReport, Severity, Status};
use crate::{IngestError, Options, Result};

/// The report's profile name for HL7: mapping is fixed by the ADT events, not by a profile.
pub const PROFILE: &str = "hl7-adt";

/// What the report says about messages rejected while others are applied.
pub const POLICY: &str = "Each HL7 message is its own transaction, applied in file order: rejected messages are \
                          listed with the segment and field at fault and not stored; every other message is \
                          stored. A message whose control id (MSH-10) was applied before is reported as already \
                          applied and changes nothing, so resending a file is safe.";

/// Where a message comes from and how to apply it.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The contributing council; `None` makes the sending facility (MSH-4) the source.
    pub council: Option<&'a str>,
    /// The file the message came from, for provenance.
    pub file: Option<&'a str>,
    /// The message's 1-based position in its file or connection, for provenance.
    pub row: u64,
    /// Who applies it (the transaction's actor), e.g. `ingest` or `mllp`.
    pub actor: &'a str,
    /// Map and resolve without committing.
    pub dry_run: bool,
}

/// What became of one message.
#[derive(Debug, Clone)]
pub enum MessageOutcome {
    /// Not readable as an HL7 message (no MSH, bad delimiters, no control id...): AR.
    Unreadable(Hl7Error),
    /// Readable, but a message type this build does not map: AR, as HL7 answers a message
    /// type it does not take (resending it will not help; another receiver may).
    Unsupported(Hl7Error),
    /// Readable, but its content cannot be mapped (no usable patient identifier, a required
    /// segment or field missing): AE.
    Unmappable(Hl7Error),
    /// Mapped, but the store refused the transaction (a schema rule): AE.
    Refused(Rejection),
    /// Durably committed (`changes` may be 0 when the store already held everything).
    Committed(Committed),
    /// The control id was applied before (seq of that transaction): nothing changed, AA.
    AlreadyApplied { seq: u64 },
    /// Dry run: the transaction that would be committed has this many changes.
    Planned { changes: usize },
}

impl MessageOutcome {
    /// MSA-1 for this outcome.
    pub fn ack_code(&self) -> AckCode {
        match self {
            MessageOutcome::Unreadable(_) | MessageOutcome::Unsupported(_) => AckCode::Reject,
            MessageOutcome::Unmappable(_) | MessageOutcome::Refused(_) => AckCode::Error,
            MessageOutcome::Committed(_) | MessageOutcome::AlreadyApplied { .. } | MessageOutcome::Planned { .. } => {
                AckCode::Accept
            }
        }
    }

    /// The ERR segment and MSA-3 for this outcome, when it is not an acceptance.
    pub fn ack_error(&self) -> Option<AckError> {
        match self {
            MessageOutcome::Unreadable(e) | MessageOutcome::Unsupported(e) | MessageOutcome::Unmappable(e) => {
                Some(AckError::from(e))
            }
            MessageOutcome::Refused(rejection) => {
                Some(AckError::application(format!("the store refused the message: {rejection}")))
            }
            _ => None,
        }
    }
}

/// One message processed.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The parsed message, for the ACK; `None` when it could not be parsed.
    pub message: Option<Message>,
    /// MSH-10 as sent (empty when unreadable).
    pub control_id: String,
    /// What was dropped or doubtful, each naming its field where it can.
    pub warnings: Vec<String>,
    pub outcome: MessageOutcome,
}

impl Processed {
    /// The acknowledgement of this message (unframed), echoing what of its header could be
    /// read. `bytes` is the message as received, for when it did not parse; `control_id` is
    /// the ACK's own MSH-10 and `at` its MSH-7.
    pub fn ack(&self, bytes: &[u8], control_id: &str, at: Timestamp) -> String {
        let code = self.outcome.ack_code();
        let error = self.outcome.ack_error();
        match &self.message {
            Some(message) => hl7::build_ack(message, code, error.as_ref(), control_id, at),
            None => hl7::build_ack_for_bytes(bytes, code, error.as_ref(), control_id, at),
        }
    }
}

/// Reads, maps, resolves and (unless dry run) commits one message. An `Err` is the store
/// failing (not the message): the caller must not acknowledge the message as applied.
pub fn process_message(store: &Store, text: &str, context: &MessageContext<'_>) -> pole_store::Result<Processed> {
    let message = match Message::parse(text) {
        Ok(message) => message,
        Err(error) => {
            let control_id = Message::parse_structure(text).map(|m| m.header().control_id).unwrap_or_default();
            return Ok(Processed {
                message: None,
                control_id,
                warnings: Vec::new(),
                outcome: MessageOutcome::Unreadable(error),
            });
        }
    };
    let control_id = message.header().control_id.trim().to_owned();
    let done = |message: Message, warnings: Vec<String>, outcome| Processed {
        message: Some(message),
        control_id: control_id.clone(),
        warnings,
        outcome,
    };
    let record = match hl7::map_adt(&message, context.council) {
        Ok(record) => record.at_row(context.row),
        Err(error @ Hl7Error::UnsupportedMessageType { .. }) => {
            return Ok(done(message, Vec::new(), MessageOutcome::Unsupported(error)))
        }
        Err(error) => return Ok(done(message, Vec::new(), MessageOutcome::Unmappable(error))),
    };
    let mut warnings = record.warnings.clone();
    let known = resolve_all(store, &record, &mut warnings)?;
    let resolve = |id: &Identifier| known.iter().find(|(k, _)| k == id).and_then(|(_, found)| found.clone());
    let mut request = hl7::to_request(&record, resolve);
    request.actor = context.actor.to_owned();
    request.source = Source {
        file: context.file.map(str::to_owned),
        batch: Some(format!("HL7 {} {}", record.message_type, record.control_id)),
        ..request.source
    };
    if context.dry_run {
        let changes = request.changes.len();
        return Ok(done(message, warnings, MessageOutcome::Planned { changes }));
    }
    let outcome = match store.commit(request)? {
        Ok(committed) if committed.replayed => MessageOutcome::AlreadyApplied { seq: committed.seq },
        Ok(committed) => MessageOutcome::Committed(committed),
        // The request depends on what the store held when the message was mapped, so a
        // resend maps to another request under the same key: that is "already applied".
        Err(Rejection::IdempotencyKeyReused { seq, .. }) => MessageOutcome::AlreadyApplied { seq },
        Err(rejection) => MessageOutcome::Refused(rejection),
    };
    Ok(done(message, warnings, outcome))
}

/// Looks up every identifier `to_request` will ask about, so that a store failure fails the
/// message instead of reading as "nobody holds it" (which would create a duplicate).
/// Identifiers held by another person than the message's, and identifiers held by several
/// entities, are warned about: linkage conflicts are for a human, never moved silently.
fn resolve_all(
    store: &Store,
    record: &AdtRecord,
    warnings: &mut Vec<String>,
) -> pole_store::Result<Vec<(Identifier, Option<EntityId>)>> {
    let mut wanted: Vec<Identifier> = record.person.identifiers.iter().chain(&record.merge_from).cloned().collect();
    if let Some(facility) = record.encounter.as_ref().and_then(|e| e.facility.as_ref()) {
        wanted.push(Identifier::new("ods", facility.ods.clone()));
    }
    let mut known: Vec<(Identifier, Option<EntityId>)> = Vec::with_capacity(wanted.len());
    for identifier in wanted {
        if known.iter().any(|(k, _)| *k == identifier) {
            continue;
        }
        let found = store.find_by_identifier(&identifier)?;
        if found.len() > 1 {
            warnings.push(format!(
                "identifier {} is held by {} entities; the first ({}) is used",
                identifier.system,
                found.len(),
                found[0]
            ));
        }
        known.push((identifier, found.into_iter().next()));
    }
    let lookup = |id: &Identifier| known.iter().find(|(k, _)| k == id).and_then(|(_, f)| f.clone());
    let found = hl7::resolve_person(&record.person.identifiers, &lookup);
    for (identifier, other) in &found.conflicts {
        warnings.push(format!(
            "PID-3: identifier {} names another person ({other}) than the message's other identifiers: \
             left where it is, for a human to resolve",
            identifier.system
        ));
    }
    Ok(known)
}

/// Ingests an HL7 v2 file: single messages or FHS/BHS batches, each message committed as
/// its own transaction in file order, one report row per message. `options.council` empty
/// means "not given": each message's sending facility (MSH-4) is then its source.
/// `options.profile` is not used. An `Err` is a failure of the run (a bad council code, the
/// store failing); everything about the file's content is in the report.
pub fn ingest_hl7(store: &Store, bytes: &[u8], options: &Options<'_>, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    let council = match options.council.trim() {
        "" => None,
        code if pole_model::is_council_code(code) => Some(code),
        code => return Err(IngestError::BadCouncil(code.to_owned())),
    };
    let mut report =
        Report::new(options.file_name, options.format.as_str(), council.unwrap_or("(MSH-4)"), PROFILE, options.dry_run);
    report.policy = POLICY;
    let body = bytes.strip_prefix(b"\xef\xbb\xbf");
    report.byte_order_mark = body.is_some();
    report.encoding = if std::str::from_utf8(body.unwrap_or(bytes)).is_ok() { "UTF-8" } else { "ISO-8859-1" };

    let batch = match hl7::split_batch(bytes) {
        Ok(batch) => batch,
        Err(error) => {
            report.file_problems.push(format!("not an HL7 v2 file: {error}"));
            report.status = Status::Rejected;
            return Ok(report);
        }
    };
    report.file_problems.extend(batch.issues.iter().map(ToString::to_string));
    if batch.messages.is_empty() {
        report.file_problems.push("the file holds no messages (no MSH segment)".into());
    }

    let mut done: u64 = 0;
    let mut changed = false;
    let mut accepted = false;
    for batch_message in &batch.messages {
        let row = batch_message.index as u64;
        let context = MessageContext {
            council,
            file: Some(options.file_name),
            row,
            actor: options.actor,
            dry_run: options.dry_run,
        };
        let processed = process_message(store, &batch_message.text, &context)?;
        let mut line = RowReport::new(row, batch_message.segment_index as u64);
        changed |= report_row(&mut line, &processed, &mut report.changes);
        accepted |= !line.is_rejected();
        report.add(line);
        done += batch_message.text.len() as u64;
        progress(done.min(bytes.len() as u64));
    }
    progress(bytes.len() as u64);

    report.status = match (options.dry_run, changed, accepted) {
        (true, _, _) => Status::DryRun,
        (false, true, _) => Status::Committed,
        (false, false, true) => Status::Unchanged,
        (false, false, false) => Status::NothingAccepted,
    };
    Ok(report)
}

/// Fills one report row from a processed message; true when it changed the store.
fn report_row(row: &mut RowReport, processed: &Processed, changes: &mut usize) -> bool {
    let warn = |row: &mut RowReport| {
        for warning in &processed.warnings {
            row.warn(field_named_in(warning), "", warning.clone());
        }
    };
    match &processed.outcome {
        MessageOutcome::Unreadable(error) | MessageOutcome::Unsupported(error) | MessageOutcome::Unmappable(error) => {
            row.error(&error_field(error), &error_value(error), error.to_string());
            false
        }
        MessageOutcome::Refused(rejection) => {
            row.error("", &processed.control_id, format!("the store refused the message: {rejection}"));
            false
        }
        MessageOutcome::Committed(committed) => {
            warn(row);
            *changes += committed.changes;
            committed.changes > 0
        }
        MessageOutcome::AlreadyApplied { seq } => {
            // A note, not a warning: the message was accepted (before), and a resend is
            // exactly what the sender should do when unsure. The outcome stays `accepted`.
            row.issues.push(Issue {
                severity: Severity::Warning,
                column: "MSH-10".into(),
                value: processed.control_id.clone(),
                reason: format!("already applied (seq {seq}): nothing changed"),
            });
            false
        }
        MessageOutcome::Planned { changes: planned } => {
            warn(row);
            *changes += planned;
            false
        }
    }
}

/// The segment and field an error names, as `PID-3`, for the report's column.
fn error_field(error: &Hl7Error) -> String {
    if let Some(at) = error.location() {
        return format!("{}-{}", at.segment, at.field);
    }
    match error {
        Hl7Error::MissingSegment { segment, .. } => (*segment).to_owned(),
        Hl7Error::UnsupportedMessageType { .. } => "MSH-9".into(),
        Hl7Error::UnsupportedVersion { .. } => "MSH-12".into(),
        Hl7Error::MissingMsh { .. } | Hl7Error::TruncatedMsh { .. } => "MSH".into(),
        Hl7Error::BadEncodingCharacters { .. } => "MSH-2".into(),
        Hl7Error::BadSegmentName { segment_index, .. } => format!("segment {segment_index}"),
        _ => String::new(),
    }
}

/// The offending text an error quotes, for the report's value.
fn error_value(error: &Hl7Error) -> String {
    match error {
        Hl7Error::MissingMsh { found }
        | Hl7Error::TruncatedMsh { found }
        | Hl7Error::BadEncodingCharacters { found, .. }
        | Hl7Error::BadSegmentName { found, .. }
        | Hl7Error::BadEscape { found, .. }
        | Hl7Error::UnsupportedVersion { found }
        | Hl7Error::UnsupportedMessageType { found }
        | Hl7Error::BadValue { found, .. } => found.clone(),
        _ => String::new(),
    }
}

/// The first `SEG-n` field reference in a warning (`PID-7`), or empty when it names none.
fn field_named_in(text: &str) -> &str {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        let name = bytes.get(start..start + 3);
        let starts_word = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let is_name = name.is_some_and(|n| {
            n[0].is_ascii_uppercase() && n.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        if !(starts_word && is_name && bytes.get(start + 3) == Some(&b'-')) {
            continue;
        }
        let digits = bytes[start + 4..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            // ASCII throughout, so these are character boundaries.
            return text.get(start..start + 4 + digits).unwrap_or_default();
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_references_are_found_in_warnings() {
        assert_eq!(field_named_in("segment 3 (PID), field PID-7: \"1940\" gives no day: not set"), "PID-7");
        assert_eq!(field_named_in("PID-30 says the patient died"), "PID-30");
        assert_eq!(field_named_in("neither PV1-3.4 nor MSH-4 names the hospital"), "PV1-3");
        assert_eq!(field_named_in("no field here, not even XPID-3 or PID-"), "");
        assert_eq!(field_named_in("é PID-8 é"), "PID-8");
    }

    #[test]
    fn outcomes_map_to_ack_codes() {
        let unreadable = MessageOutcome::Unreadable(Hl7Error::Empty);
        assert_eq!(unreadable.ack_code(), AckCode::Reject);
        assert!(unreadable.ack_error().is_some());
        let refused = MessageOutcome::Refused(Rejection::Transaction { reason: "no".into() });
        assert_eq!(refused.ack_code(), AckCode::Error);
        assert_eq!(MessageOutcome::AlreadyApplied { seq: 3 }.ack_code(), AckCode::Accept);
        assert!(MessageOutcome::AlreadyApplied { seq: 3 }.ack_error().is_none());
    }
}
