//! What every tabular reader hands the pipeline: a header (the submitter's column names)
//! and records read one at a time. Delimited text, spreadsheets and the safeguarding data
//! set as XML are all record sources, so one pipeline maps, validates, commits and reports
//! them the same way.

use std::collections::BTreeMap;

/// One data record: its number among the data rows (1-based, header excluded), where the
/// submitter finds it, and its values or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub row: u64,
    /// The line of the file (text, XML) or the spreadsheet's own row number: what the
    /// submitter's editor shows.
    pub line: u64,
    /// How far into the input the record starts, for progress.
    pub byte: u64,
    /// The values in header order, or why the record cannot be read at all.
    pub fields: Result<Vec<String>, String>,
    /// Values that were present but unusable (a spreadsheet error cell such as `#N/A`): each
    /// rejects the row, naming its column; the value is empty in `fields`.
    pub problems: Vec<CellProblem>,
}

impl RawRecord {
    /// A record of plain values.
    pub fn new(row: u64, line: u64, byte: u64, fields: Result<Vec<String>, String>) -> Self {
        RawRecord { row, line, byte, fields, problems: Vec::new() }
    }
}

/// A value that rejects its row, in the submitter's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellProblem {
    /// The submitter's column name.
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// A source of records: the header it read and its records, in order.
pub trait RecordSource: Iterator<Item = RawRecord> {
    /// The column names, in header order (see [`check_header`]).
    fn columns(&self) -> &[String];

    /// Why reading stopped before the end of the input (an I/O error), once the records
    /// have run out; `None` when the input was read to its end.
    fn failure(&mut self) -> Option<String> {
        None
    }
}

/// The header rules every source shares: names trimmed, trailing blank names dropped (a
/// trailing delimiter, empty cells after the last column), other blank names called
/// `(column N)`, and a name used twice refused (which column a value belongs to would be a
/// guess). `Err` is a file-level problem.
pub fn check_header(names: impl IntoIterator<Item = String>) -> Result<Vec<String>, String> {
    let mut columns: Vec<String> = names.into_iter().map(|name| name.trim().to_owned()).collect();
    while columns.last().is_some_and(String::is_empty) {
        columns.pop();
    }
    if columns.is_empty() {
        return Err("the header row is blank: it must name the columns".into());
    }
    for (idx, name) in columns.iter_mut().enumerate() {
        if name.is_empty() {
            *name = format!("(column {})", idx + 1);
        }
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (idx, name) in columns.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), idx) {
            duplicates.push(format!("{name:?} (columns {} and {})", first + 1, idx + 1));
        }
    }
    if !duplicates.is_empty() {
        return Err(format!("the header names a column more than once: {}", duplicates.join(", ")));
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rules() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(check_header(names(&[" a ", "", "b", "", ""])).unwrap(), ["a", "(column 2)", "b"]);
        assert!(check_header(names(&["", " "])).unwrap_err().contains("blank"));
        assert!(check_header(names(&["a", "b", "a"])).unwrap_err().contains("\"a\" (columns 1 and 3)"));
    }
}
