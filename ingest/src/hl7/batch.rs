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
    let mut splitter = Splitter::default();
    let mut messages = Vec::new();
    for line in segment_lines(text) {
        messages.extend(splitter.segment(line));
    }
    let (last, mut batch) = splitter.finish()?;
    messages.extend(last);
    batch.messages = messages;
    Ok(batch)
}

/// The splitting of [`split_batch_text`] a segment at a time, for a file read as a stream:
/// each message comes out as soon as the segment after it is seen, and only the message
/// being read is held.
#[derive(Debug, Default)]
pub struct Splitter {
    /// The envelope so far; its `messages` stay empty.
    envelope: Batch,
    current: Option<(usize, Vec<String>)>,
    segments: usize,
    messages: usize,
    in_batch: bool,
    in_file: bool,
    batch_messages: usize,
    batches: usize,
    first_line: Option<String>,
    envelope_seen: bool,
}

impl Splitter {
    /// Takes the next non-blank segment; the message it completes, if any, comes out.
    pub fn segment(&mut self, line: &str) -> Option<BatchMessage> {
        self.segments += 1;
        let segment_index = self.segments;
        if self.first_line.is_none() {
            self.first_line = Some(line.to_owned());
        }
        let name = segment_name(line).unwrap_or_default();
        match name {
            "MSH" => {
                let done = self.flush();
                self.current = Some((segment_index, vec![line.to_owned()]));
                self.batch_messages += 1;
                done
            }
            "FHS" | "BHS" | "BTS" | "FTS" => {
                self.envelope_seen = true;
                let done = self.flush();
                match name {
                    "FHS" => {
                        self.in_file = true;
                        self.envelope.file_header = Some(line.to_owned());
                    }
                    "BHS" => {
                        self.in_batch = true;
                        self.batches += 1;
                        self.batch_messages = 0;
                        self.envelope.batch_headers.push(line.to_owned());
                    }
                    "BTS" => {
                        check_count(&mut self.envelope, line, "BTS", segment_index, self.batch_messages);
                        self.in_batch = false;
                        self.batch_messages = 0;
                    }
                    _ => {
                        check_count(&mut self.envelope, line, "FTS", segment_index, self.batches);
                        self.in_file = false;
                    }
                }
                done
            }
            _ => {
                match self.current.as_mut() {
                    Some((_, lines)) => lines.push(line.to_owned()),
                    None => self.envelope.issues.push(BatchIssue::StraySegment { segment_index, found: excerpt(line) }),
                }
                None
            }
        }
    }

    /// The input ended: its last message, if any, and the envelope with what was wrong with
    /// it. `Err` when there was nothing HL7 at all.
    pub fn finish(mut self) -> Result<(Option<BatchMessage>, Batch), Hl7Error> {
        let last = self.flush();
        if self.messages == 0 && !self.envelope_seen {
            return Err(match self.first_line {
                None => Hl7Error::Empty,
                Some(line) => Hl7Error::MissingMsh { found: excerpt(&line) },
            });
        }
        if self.in_batch {
            self.envelope.issues.push(BatchIssue::MissingTrailer { segment: "BTS" });
        }
        if self.in_file {
            self.envelope.issues.push(BatchIssue::MissingTrailer { segment: "FTS" });
        }
        Ok((last, self.envelope))
    }

    fn flush(&mut self) -> Option<BatchMessage> {
        let (segment_index, lines) = self.current.take()?;
        self.messages += 1;
        Some(BatchMessage { index: self.messages, segment_index, text: lines.join("\r") })
    }
}

/// The longest segment a stream may hold: far past any real one (an OBX carrying a scanned
/// document runs to a few megabytes), short of a file with no segment terminators at all
/// being read into memory whole.
pub const MAX_SEGMENT_BYTES: usize = 64 << 20;

/// The non-blank segments of a stream, one at a time: terminated by `\r`, `\n` or `\r\n`,
/// read as UTF-8 (a leading byte-order mark dropped) or, when the file is not UTF-8, as
/// Latin-1, the rule of [`super::decode_text`].
#[derive(Debug)]
pub struct SegmentReader<R> {
    input: R,
    utf8: bool,
    segment: Vec<u8>,
    first: bool,
    done: bool,
}

impl<R: std::io::BufRead> SegmentReader<R> {
    pub fn new(input: R, utf8: bool) -> Self {
        SegmentReader { input, utf8, segment: Vec::new(), first: true, done: false }
    }

    fn text(&mut self) -> std::io::Result<Option<String>> {
        let mut bytes = std::mem::take(&mut self.segment);
        if std::mem::take(&mut self.first) && bytes.starts_with(b"\xef\xbb\xbf") {
            bytes.drain(..3);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let text = match self.utf8 {
            true => String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            false => bytes.iter().map(|&b| char::from(b)).collect(),
        };
        Ok(Some(text))
    }
}

impl<R: std::io::BufRead> Iterator for SegmentReader<R> {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if available.is_empty() {
                self.done = true;
                return self.text().transpose();
            }
            let end = available.iter().position(|&b| b == b'\r' || b == b'\n');
            let take = end.unwrap_or(available.len());
            self.segment.extend_from_slice(&available[..take]);
            self.input.consume(end.map_or(take, |at| at + 1));
            if self.segment.len() > MAX_SEGMENT_BYTES {
                self.done = true;
                let message = format!("a segment runs past {} MiB without a terminator", MAX_SEGMENT_BYTES >> 20);
                return Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message)));
            }
            if end.is_some() {
                match self.text() {
                    Ok(Some(text)) => return Some(Ok(text)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        None
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
