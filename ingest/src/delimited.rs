//! Delimited text with a header row (CSV with `,`, or pipe-delimited with `|`), read one
//! record at a time: quoted fields may hold delimiters, quotes and newlines; lines may end
//! in CRLF; a trailing delimiter (an empty last column) is tolerated. Problems with the
//! header are file-level; problems with a record are that record's, so the rest is read.

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

/// The records after the header.
pub struct Records<'a> {
    inner: csv::StringRecordsIntoIter<&'a [u8]>,
    text: &'a str,
    columns: Vec<String>,
    width: usize,
    row: u64,
    /// Lines counted so far: the csv reader does not count newlines inside quoted values,
    /// and a submitter needs the line their editor shows.
    counted: (usize, u64),
}

impl std::fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("width", &self.width).field("row", &self.row).finish()
    }
}

/// Opens `text`, reads its header and returns the column names (trimmed, trailing empty
/// names of a trailing delimiter removed) and the record iterator. `Err` is a file-level
/// problem: no header, or duplicated column names (which column a value belongs to would
/// be a guess).
pub fn open(text: &str, delimiter: Delimiter) -> Result<(Vec<String>, Records<'_>), String> {
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter.byte())
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut inner = reader.into_records();
    let header = match inner.next() {
        None => return Err("the file is empty: a header row naming the columns is needed".into()),
        Some(Err(e)) => return Err(format!("the header row cannot be read: {e}")),
        Some(Ok(record)) => record,
    };
    let columns = check_header(header.iter().map(str::to_owned))?;
    let width = columns.len();
    Ok((columns.clone(), Records { inner, text, columns, width, row: 0, counted: (0, 1) }))
}

impl Records<'_> {
    /// The 1-based line of the file at byte `byte`, counted on from the last call.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(self.text.len());
        // The reader places a record after the `\r` of a CRLF, and skips blank lines: the
        // record itself starts at its first other byte.
        let bytes = self.text.as_bytes();
        while byte < bytes.len() && matches!(bytes[byte], b'\r' | b'\n') {
            byte += 1;
        }
        let (from, line) = self.counted;
        if byte < from {
            return line;
        }
        let newlines = self.text.as_bytes()[from..byte].iter().filter(|&&b| b == b'\n').count() as u64;
        self.counted = (byte, line + newlines);
        line + newlines
    }
}

impl RecordSource for Records<'_> {
    fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl Iterator for Records<'_> {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        let record = self.inner.next()?;
        self.row += 1;
        let row = self.row;
        Some(match record {
            Err(e) => {
                let byte = e.position().map_or(0, csv::Position::byte);
                let line = self.line_at(byte);
                RawRecord::new(row, line, byte, Err(format!("the record cannot be read: {e}")))
            }
            Ok(record) => {
                let byte = record.position().map_or(0, csv::Position::byte);
                let line = self.line_at(byte);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, d: Delimiter) -> (Vec<String>, Vec<RawRecord>) {
        let (cols, recs) = open(text, d).unwrap();
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
        assert!(open("", Delimiter::Comma).unwrap_err().contains("empty"));
        assert!(open(",,\n", Delimiter::Comma).unwrap_err().contains("blank"));
        let (cols, recs) = read("a,b\n", Delimiter::Comma);
        assert_eq!(cols.len(), 2);
        assert!(recs.is_empty());
        let err = open("a,b,a\n", Delimiter::Comma).unwrap_err();
        assert!(err.contains("\"a\" (columns 1 and 3)"), "{err}");
    }
}
