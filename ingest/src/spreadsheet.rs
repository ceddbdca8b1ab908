//! Spreadsheets (xlsx, xlsm, xlsb, xls and ods: whatever calamine recognises from the bytes)
//! as a record source. One sheet is read, chosen by name or 1-based position (the first by
//! default); its header is the first row with any value; cells become the text a profile
//! reads, as the spreadsheet shows them: dates (Excel serials) as ISO dates, whole numbers
//! without `.0`, booleans as `TRUE`/`FALSE`. An error cell (`#N/A`, `#REF!`, ...) rejects its
//! row, naming the column and the cell (`C7`). Rows are reported with the sheet's own row
//! numbers (the report's `line`), so a submitter finds them where the spreadsheet shows them.
//!
//! calamine holds the chosen sheet's cells in memory (the format is a zip of XML parts
//! read whole); the records are then produced one at a time.

use std::io::Cursor;

use calamine::{Data, Range, Reader};
use chrono::{NaiveDateTime, Timelike};

use crate::source::{check_header, CellProblem, RawRecord, RecordSource};

/// The latest Excel serial that is still a date Excel can show (9999-12-31): anything
/// larger is not a date, and converting it would overflow.
const MAX_SERIAL: f64 = 2_958_465.999_999;

/// One sheet's records after its header row.
#[derive(Debug)]
pub struct SheetRecords {
    columns: Vec<String>,
    range: Range<Data>,
    /// The range's first row and column on the sheet (0-based), for cell references.
    origin: (u32, u32),
    /// The next row of `range` to read (0-based within the range).
    next: usize,
    row: u64,
}

/// Which sheet `choice` names among `names`: an exact name first (a sheet may be called
/// "2"), then a 1-based position; the first sheet without a choice.
fn choose_sheet(names: &[String], choice: Option<&str>) -> Result<String, String> {
    let listed = || names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let Some(choice) = choice.map(str::trim) else {
        return names.first().cloned().ok_or_else(|| "the workbook has no sheets".to_owned());
    };
    if let Some(name) = names.iter().find(|n| n.as_str() == choice) {
        return Ok(name.clone());
    }
    if let Some(name) = names.iter().find(|n| n.trim().eq_ignore_ascii_case(choice)) {
        return Ok(name.clone());
    }
    if let Ok(position) = choice.parse::<usize>() {
        return position
            .checked_sub(1)
            .and_then(|idx| names.get(idx))
            .cloned()
            .ok_or_else(|| format!("there is no sheet {position}: the workbook has {} ({})", names.len(), listed()));
    }
    Err(format!("there is no sheet named {choice:?}: the workbook has {}", listed()))
}

/// Reads the chosen sheet's cells with calamine.
fn read_sheet(bytes: &[u8], sheet: Option<&str>) -> Result<(String, Range<Data>), String> {
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| format!("the file is not a spreadsheet that can be read (xlsx, xlsm, xlsb, xls or ods): {e}"))?;
    let names = workbook.sheet_names();
    let name = choose_sheet(&names, sheet)?;
    let range = workbook.worksheet_range(&name).map_err(|e| format!("sheet {name:?} cannot be read: {e}"))?;
    Ok((name, range))
}

/// Opens the workbook in `bytes` and reads the header of the chosen sheet. `Err` is a
/// file-level problem: not a spreadsheet, no such sheet, an empty sheet, a bad header.
pub fn open(bytes: &[u8], sheet: Option<&str>) -> Result<SheetRecords, String> {
    // calamine is a third-party parser of untrusted bytes, and fuzzing found inputs on
    // which it panics (an arithmetic overflow on an absurd cell reference, in builds with
    // overflow checks). A panic there is a file that cannot be read, not a crash.
    let read = std::panic::catch_unwind(|| read_sheet(bytes, sheet)).unwrap_or_else(|_| {
        Err("the file is not a spreadsheet that can be read: the spreadsheet reader failed on it (a malformed \
             workbook)"
            .to_owned())
    });
    let (name, range) = read?;
    let origin = range.start().unwrap_or((0, 0));
    let mut rows = range.rows().enumerate();
    let header = loop {
        match rows.next() {
            None => return Err(format!("sheet {name:?} is empty: a header row naming the columns is needed")),
            Some((_, cells)) if cells.iter().all(|c| cell_text(c).map_or(true, |t| t.trim().is_empty())) => {}
            Some((idx, cells)) => break (idx, cells),
        }
    };
    let (header_idx, header_cells) = header;
    let mut names = Vec::with_capacity(header_cells.len());
    for (col, cell) in header_cells.iter().enumerate() {
        match cell_text(cell) {
            Ok(text) => names.push(text),
            Err(reason) => {
                let at = cell_ref(origin.0 as usize + header_idx, origin.1 as usize + col);
                return Err(format!("the header cell {at} holds {reason}: it must name its column"));
            }
        }
    }
    let columns = check_header(names)?;
    Ok(SheetRecords { columns, range, origin, next: header_idx + 1, row: 0 })
}

impl RecordSource for SheetRecords {
    fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl SheetRecords {
    /// How many rows the sheet has, for progress.
    pub fn height(&self) -> u64 {
        self.range.height() as u64
    }
}

impl Iterator for SheetRecords {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        loop {
            let idx = self.next;
            if idx >= self.range.height() {
                return None;
            }
            self.next += 1;
            let cells = &self.range[idx];
            // A row with no cell at all is not a row of data (a spreadsheet's gap, like a
            // blank line of text); a row of blank strings is reported as blank.
            if cells.iter().all(|c| matches!(c, Data::Empty)) {
                continue;
            }
            self.row += 1;
            let sheet_row = self.origin.0 as usize + idx;
            let width = self.columns.len();
            let mut fields = Vec::with_capacity(width);
            let mut problems = Vec::new();
            let mut stray = Vec::new();
            for (col, cell) in cells.iter().enumerate() {
                let at = cell_ref(sheet_row, self.origin.1 as usize + col);
                match (cell_text(cell), self.columns.get(col)) {
                    (Ok(text), Some(_)) => fields.push(text),
                    (Ok(text), None) if text.trim().is_empty() => {}
                    (Ok(text), None) => stray.push(format!("{at} ({text:?})")),
                    (Err(reason), column) => {
                        let column = column.cloned().unwrap_or_else(|| format!("(column {})", col + 1));
                        problems.push(CellProblem {
                            column,
                            value: error_value(cell),
                            reason: format!("cell {at} holds {reason}"),
                        });
                        if fields.len() < width {
                            fields.push(String::new());
                        }
                    }
                }
            }
            fields.resize(width, String::new());
            let fields = if stray.is_empty() {
                Ok(fields)
            } else {
                Err(format!("values beyond the last named column: {}", stray.join(", ")))
            };
            let line = sheet_row as u64 + 1;
            return Some(RawRecord { row: self.row, line, byte: line, fields, problems });
        }
    }
}

/// The A1-style reference of a 0-based (row, column): `(6, 2)` is `C7`.
pub fn cell_ref(row: usize, col: usize) -> String {
    let mut letters = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(row + 1).to_string()
}

/// The error cell's value as the spreadsheet shows it.
fn error_value(cell: &Data) -> String {
    match cell {
        Data::Error(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// A cell as the text the profile reads. `Err` names what the cell holds when it cannot
/// be a value: an error such as `#N/A`, or a date Excel cannot show.
pub fn cell_text(cell: &Data) -> Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        Data::DateTime(dt) if dt.is_duration() => number_text(dt.as_f64()),
        Data::DateTime(dt) => {
            let serial = dt.as_f64();
            // Checked before converting: calamine's conversion panics on huge serials.
            if !(0.0..=MAX_SERIAL).contains(&serial) {
                return Err(format!("the date serial {serial}, which is not a date"));
            }
            match dt.as_datetime() {
                Some(at) => datetime_text(at),
                None => return Err(format!("the date serial {serial}, which is not a date")),
            }
        }
        // ODS keeps dates as ISO text already; a midnight time adds nothing to a date.
        Data::DateTimeIso(s) => s.strip_suffix("T00:00:00").unwrap_or(s).to_owned(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => return Err(format!("the error {e}")),
    })
}

/// A date alone when the time is midnight (a date cell), otherwise date and time.
fn datetime_text(at: NaiveDateTime) -> String {
    // Serials carry milliseconds as a fraction of a day; round to the second so that
    // 09:30 does not read as 09:29:59.999.
    let at = if at.nanosecond() >= 500_000_000 { at + chrono::Duration::seconds(1) } else { at };
    let at = at.with_nanosecond(0).unwrap_or(at);
    if at.time() == chrono::NaiveTime::MIN {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// A number as a spreadsheet shows it in General format: whole numbers without `.0`.
fn number_text(f: f64) -> String {
    // Integers up to 2^53 are exact in an f64; beyond that `as i64` would be a guess.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};

    use super::*;

    #[test]
    fn cells_become_the_text_a_profile_reads() {
        let date = |serial| Data::DateTime(ExcelDateTime::new(serial, ExcelDateTimeType::DateTime, false));
        assert_eq!(cell_text(&Data::Empty).unwrap(), "");
        assert_eq!(cell_text(&Data::String(" 305 ".into())).unwrap(), " 305 ");
        assert_eq!(cell_text(&Data::Int(82)).unwrap(), "82");
        assert_eq!(cell_text(&Data::Float(82.0)).unwrap(), "82");
        assert_eq!(cell_text(&Data::Float(-3.0)).unwrap(), "-3");
        assert_eq!(cell_text(&Data::Float(2.5)).unwrap(), "2.5");
        assert_eq!(cell_text(&Data::Float(1e20)).unwrap(), "100000000000000000000");
        assert_eq!(cell_text(&Data::Bool(true)).unwrap(), "TRUE");
        assert_eq!(cell_text(&Data::Bool(false)).unwrap(), "FALSE");
        // 41467 is 2013-07-12 in the 1900 system.
        assert_eq!(cell_text(&date(41467.0)).unwrap(), "2013-07-12");
        assert_eq!(cell_text(&date(41467.5)).unwrap(), "2013-07-12T12:00:00");
        assert_eq!(cell_text(&date(41_467.395_833_333)).unwrap(), "2013-07-12T09:30:00");
        let d1904 = Data::DateTime(ExcelDateTime::new(40_005.0, ExcelDateTimeType::DateTime, true));
        assert_eq!(cell_text(&d1904).unwrap(), "2013-07-12");
        assert!(cell_text(&date(1e300)).unwrap_err().contains("not a date"));
        assert!(cell_text(&date(-1.0)).unwrap_err().contains("not a date"));
        assert!(cell_text(&date(f64::NAN)).is_err());
        assert_eq!(cell_text(&Data::DateTimeIso("2013-07-12T00:00:00".into())).unwrap(), "2013-07-12");
        assert_eq!(cell_text(&Data::Error(CellErrorType::NA)).unwrap_err(), "the error #N/A");
    }

    #[test]
    fn cell_references() {
        assert_eq!(cell_ref(0, 0), "A1");
        assert_eq!(cell_ref(6, 2), "C7");
        assert_eq!(cell_ref(9, 25), "Z10");
        assert_eq!(cell_ref(0, 26), "AA1");
        assert_eq!(cell_ref(0, 701), "ZZ1");
        assert_eq!(cell_ref(0, 702), "AAA1");
    }

    #[test]
    fn sheets_by_name_or_position() {
        let names = vec!["Notes".to_owned(), "Data".to_owned(), "3".to_owned()];
        assert_eq!(choose_sheet(&names, None).unwrap(), "Notes");
        assert_eq!(choose_sheet(&names, Some("data")).unwrap(), "Data");
        assert_eq!(choose_sheet(&names, Some("2")).unwrap(), "Data");
        assert_eq!(choose_sheet(&names, Some("3")).unwrap(), "3", "a name wins over a position");
        assert!(choose_sheet(&names, Some("4")).unwrap_err().contains("no sheet 4"));
        assert!(choose_sheet(&names, Some("0")).is_err());
        assert!(choose_sheet(&names, Some("Allegations")).unwrap_err().contains("\"Notes\", \"Data\", \"3\""));
        assert!(choose_sheet(&[], None).unwrap_err().contains("no sheets"));
    }

    #[test]
    fn not_a_spreadsheet() {
        assert!(open(b"", None).unwrap_err().contains("not a spreadsheet"));
        assert!(open(b"PK\x03\x04garbage", None).unwrap_err().contains("not a spreadsheet"));
        assert!(open(b"a,b\n1,2\n", None).unwrap_err().contains("not a spreadsheet"));
    }
}
