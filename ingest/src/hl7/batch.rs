//! File and batch envelopes (FHS/BHS ... BTS/FTS): split a file into its messages and check
//! the counts the trailers declare. A bad count is reported, never fatal to the messages.

use std::fmt;

use super::error::{excerpt, Hl7Error};
use super::parse::{segment_lines, segment_name};

/// A file split into messages, with what was wrong with its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    pub messages: Vec<BatchMessage>,
    pub issues: Vec<BatchIssue>,
    /// The FHS segment, as sent.
    pub file_header: Option<String>,
    /// The BHS segments, as sent, in order.
    pub batch_headers: Vec<String>,
}

/// One message's text (segments joined with `\r`), for [`super::Message::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    /// 1-based position among the file's messages: the report's row.
    pub index: usize,
    /// 1-based position of its MSH among the file's segments.
    pub segment_index: usize,
    pub text: String,
}

/// Something wrong with the envelope; the messages are still handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchIssue {
    /// BTS-1 (messages in the batch) or FTS-1 (batches in the file) disagrees with what came.
    CountMismatch { segment: &'static str, segment_index: usize, declared: String, found: usize },
    /// A segment that is not in any message (before the first MSH, or after a trailer).
    StraySegment { segment_index: usize, found: String },
    /// A batch or file header without its trailer.
    MissingTrailer { segment: &'static str },
}

impl fmt::Display for BatchIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchIssue::CountMismatch { segment, segment_index, declared, found } => {
                let what = if *segment == "BTS" { "messages in the batch" } else { "batches in the file" };
                write!(
                    f,
                    "segment {segment_index} ({segment}): {segment}-1 declares {declared:?} {what}, found {found}"
                )
            }
            BatchIssue::StraySegment { segment_index, found } => {
                write!(f, "segment {segment_index} is outside any message and was skipped: {found:?}")
            }
            BatchIssue::MissingTrailer { segment } => write!(f, "the input ends without its {segment} trailer"),
        }
    }
}

/// Splits bytes (UTF-8, or Latin-1 when not) into messages.
pub fn split_batch(bytes: &[u8]) -> Result<Batch, Hl7Error> {
    split_batch_text(&super::decode_text(bytes))
}

/// Splits text into messages: every MSH starts one, envelope segments end it. Fails only
/// when there is nothing HL7 at all.
pub fn split_batch_text(text: &str) -> Result<Batch, Hl7Error> {
    let mut batch = Batch::default();
    let mut current: Option<(usize, Vec<&str>)> = None;
    let mut in_batch = false;
    let mut in_file = false;
    let mut batch_messages = 0usize;
    let mut batches = 0usize;
    let mut first_line: Option<&str> = None;
    let mut envelope_seen = false;

    for (i, line) in segment_lines(text).enumerate() {
        let segment_index = i + 1;
        first_line.get_or_insert(line);
        let name = segment_name(line).unwrap_or_default();
        match name {
            "MSH" => {
                flush(&mut batch, current.take());
                current = Some((segment_index, vec![line]));
                batch_messages += 1;
            }
            "FHS" | "BHS" | "BTS" | "FTS" => {
                envelope_seen = true;
                flush(&mut batch, current.take());
                match name {
                    "FHS" => {
                        in_file = true;
                        batch.file_header = Some(line.to_owned());
                    }
                    "BHS" => {
                        in_batch = true;
                        batches += 1;
                        batch_messages = 0;
                        batch.batch_headers.push(line.to_owned());
                    }
                    "BTS" => {
                        check_count(&mut batch, line, "BTS", segment_index, batch_messages);
                        in_batch = false;
                        batch_messages = 0;
                    }
                    _ => {
                        check_count(&mut batch, line, "FTS", segment_index, batches);
                        in_file = false;
                    }
                }
            }
            _ => match current.as_mut() {
                Some((_, lines)) => lines.push(line),
                None => batch.issues.push(BatchIssue::StraySegment { segment_index, found: excerpt(line) }),
            },
        }
    }
    flush(&mut batch, current.take());
    if batch.messages.is_empty() && !envelope_seen {
        return Err(match first_line {
            None => Hl7Error::Empty,
            Some(line) => Hl7Error::MissingMsh { found: excerpt(line) },
        });
    }
    if in_batch {
        batch.issues.push(BatchIssue::MissingTrailer { segment: "BTS" });
    }
    if in_file {
        batch.issues.push(BatchIssue::MissingTrailer { segment: "FTS" });
    }
    Ok(batch)
}

fn flush(batch: &mut Batch, current: Option<(usize, Vec<&str>)>) {
    if let Some((segment_index, lines)) = current {
        let index = batch.messages.len() + 1;
        batch.messages.push(BatchMessage { index, segment_index, text: lines.join("\r") });
    }
}

/// Compares field 1 of a trailer, when present, with the count found.
fn check_count(batch: &mut Batch, line: &str, segment: &'static str, segment_index: usize, found: usize) {
    // A trailer declares no delimiters; its own fourth character is its field separator.
    let Some(separator) = line[3..].chars().next() else {
        return;
    };
    let Some(first) = line[3 + separator.len_utf8()..].split(separator).next() else {
        return;
    };
    let declared = first.trim();
    if declared.is_empty() {
        return;
    }
    if declared.parse::<usize>().ok() != Some(found) {
        batch.issues.push(BatchIssue::CountMismatch { segment, segment_index, declared: excerpt(declared), found });
    }
}
