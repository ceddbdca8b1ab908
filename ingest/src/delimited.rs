//! Delimited text with a header row (CSV with `,`, or pipe-delimited with `|`), read one
//! record at a time: quoted fields may hold delimiters, quotes and newlines; lines may end
//! in CRLF; a trailing delimiter (an empty last column) is tolerated. Problems with the
//! header are file-level; problems with a record are that record's, so the rest is read.

use std::collections::VecDeque;
use std::io::Read;

pub use crate::source::RawRecord;
use crate::source::{check_header, RecordSource};

/// Which delimiter the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Pipe,
}

impl Delimiter {
    fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Pipe => b'|',
        }
    }
}

/// The records after the header, read from `R` a block at a time.
pub struct Records<R: Read> {
    reader: csv::Reader<LineBreaks<R>>,
    record: csv::StringRecord,
    columns: Vec<String>,
    width: usize,
    row: u64,
    /// The line the last record started on (the header is line 1).
    line: u64,
    /// Reading the input failed: no record after this can be trusted.
    failure: Option<String>,
}

impl<R: Read> std::fmt::Debug for Records<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("width", &self.width).field("row", &self.row).finish()
    }
}

/// Opens delimited text (UTF-8; see [`crate::text`]), reads its header and returns the
/// column names (trimmed, trailing empty names of a trailing delimiter removed) and the
/// record iterator. `Err` is a file-level problem: no header, or duplicated column names
/// (which column a value belongs to would be a guess).
pub fn open<R: Read>(text: R, delimiter: Delimiter) -> Result<(Vec<String>, Records<R>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter.byte())
        .has_headers(false)
        .flexible(true)
        .from_reader(LineBreaks::new(text));
    let mut header = csv::StringRecord::new();
    match reader.read_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err("the file is empty: a header row naming the columns is needed".into()),
        Err(e) => return Err(format!("the header row cannot be read: {e}")),
    }
    let columns = check_header(header.iter().map(str::to_owned))?;
    let width = columns.len();
    let records = Records {
        reader,
        record: csv::StringRecord::new(),
        columns: columns.clone(),
        width,
        row: 0,
        line: 1,
        failure: None,
    };
    Ok((columns, records))
}

impl<R: Read> RecordSource for Records<R> {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn failure(&mut self) -> Option<String> {
        self.failure.take()
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        if self.failure.is_some() {
            return None;
        }
        let read = self.reader.read_record(&mut self.record);
        let byte = match &read {
            Ok(_) => self.record.position().map_or(0, csv::Position::byte),
            Err(e) => e.position().map_or(0, csv::Position::byte),
        };
        match read {
            Ok(false) => return None,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                self.failure = Some(format!("reading the file failed after data row {}: {e}", self.row));
                return None;
            }
            _ => {}
        }
        self.row += 1;
        self.line = self.reader.get_mut().line_at(byte, self.line);
        let (row, line) = (self.row, self.line);
        Some(match read {
            Err(e) => RawRecord::new(row, line, byte, Err(format!("the record cannot be read: {e}"))),
            Ok(_) => {
                let record = &self.record;
                let width = self.width;
                let fields = if record.len() > width && record.iter().skip(width).all(|f| f.trim().is_empty()) {
                    // A trailing delimiter, or blank cells past the last named column.
                    Ok(record.iter().take(width).map(str::to_owned).collect())
                } else if record.len() != width {
                    Err(format!(
                        "the record has {} values but the header names {width} columns (a stray or missing \
                         delimiter, or an unquoted value containing one)",
                        record.len()
                    ))
                } else {
                    Ok(record.iter().map(str::to_owned).collect())
                };
                RawRecord::new(row, line, byte, fields)
            }
        })
    }
}

/// Remembers where the line breaks are in the text read so far but not yet counted, so
/// that a record's line is known without keeping the text: the csv reader does not count
/// newlines inside quoted values, and a submitter needs the line their editor shows. Only
/// the csv reader's read-ahead (a few kilobytes) is ever held.
struct LineBreaks<R> {
    inner: R,
    offset: u64,
    /// Offsets of `\r` and `\n` bytes after the last counted position, with the byte.
    breaks: VecDeque<(u64, u8)>,
}

impl<R> LineBreaks<R> {
    fn new(inner: R) -> Self {
        LineBreaks { inner, offset: 0, breaks: VecDeque::new() }
    }

    /// The line of the record that starts at `byte`, counting on from `line`, the line of
    /// the previous record. The reader places a record after the `\r` of a CRLF and skips
    /// blank lines: the record itself starts at its first other byte.
    fn line_at(&mut self, byte: u64, mut line: u64) -> u64 {
        let mut start = byte;
        while let Some(&(at, b)) = self.breaks.front() {
            if at > start {
                break;
            }
            if at == start {
                start += 1;
            }
            if b == b'\n' {
                line += 1;
            }
            self.breaks.pop_front();
        }
        line
    }
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        for (idx, &b) in buf[..read].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.breaks.push_back((self.offset + idx as u64, b));
            }
        }
        self.offset += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, d: Delimiter) -> (Vec<String>, Vec<RawRecord>) {
        let (cols, recs) = open(text.as_bytes(), d).unwrap();
        (cols, recs.collect())
    }

    #[test]
    fn quoted_delimiters_quotes_and_newlines() {
        let (cols, recs) = read("a,b\r\n\"x, y\",\"said \"\"hi\"\"\nthen left\"\r\n3,4\r\n", Delimiter::Comma);
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(recs[0].fields.as_ref().unwrap(), &["x, y", "said \"hi\"\nthen left"]);
        assert_eq!(recs[1].row, 2);
        assert_eq!(recs[1].line, 4, "the second record starts after the quoted newline");
    }

    #[test]
    fn lines_are_counted_across_blank_lines_and_crlf() {
        let (_, recs) = read("a,b\r\n\r\n1,2\r\n\"x\ny\",3\n\n\n4,5", Delimiter::Comma);
        let lines: Vec<u64> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 8]);
    }

    #[test]
    fn a_failing_input_ends_the_records_with_a_failure() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk went away"));
                }
                self.0 -= 1;
                let line = b"a,b\n";
                buf[..line.len()].copy_from_slice(line);
                Ok(line.len())
            }
        }
        let (_, mut recs) = open(Failing(3), Delimiter::Comma).unwrap();
        assert_eq!(recs.by_ref().count(), 2);
        assert!(recs.failure().unwrap().contains("disk went away"));
    }

    #[test]
    fn pipe_with_trailing_delimiters() {
        let (cols, recs) = read("a|b|\n1|2|\n3|4||\n", Delimiter::Pipe);
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(recs[0].fields.as_ref().unwrap(), &["1", "2"]);
        assert_eq!(recs[1].fields.as_ref().unwrap(), &["3", "4"]);
    }

    #[test]
    fn wrong_width_is_a_record_problem() {
        let (_, recs) = read("a,b\n1\n1,2,3\n", Delimiter::Comma);
        assert!(recs[0].fields.as_ref().unwrap_err().contains("1 values"));
        assert!(recs[1].fields.as_ref().unwrap_err().contains("3 values"));
    }

    #[test]
    fn empty_header_only_and_duplicates() {
        assert!(open(&b""[..], Delimiter::Comma).unwrap_err().contains("empty"));
        assert!(open(&b",,\n"[..], Delimiter::Comma).unwrap_err().contains("blank"));
        let (cols, recs) = read("a,b\n", Delimiter::Comma);
        assert_eq!(cols.len(), 2);
        assert!(recs.is_empty());
        let err = open(&b"a,b,a\n"[..], Delimiter::Comma).unwrap_err();
        assert!(err.contains("\"a\" (columns 1 and 3)"), "{err}");
    }
}
