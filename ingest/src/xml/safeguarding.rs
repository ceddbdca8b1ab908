//! The safeguarding case-level data set as XML, a record source like a CSV file:
//!
//! ```xml
//! <safeguarding>
//!   <allegation>
//!     <local_authority_identifier>305</local_authority_identifier>
//!     <date_referral_initiated>2013-07-12</date_referral_initiated>
//!     ...
//!   </allegation>
//! </safeguarding>
//! ```
//!
//! Each `<allegation>` is a row; each of its child elements is a column, named by the
//! column's name in lower case with `_` for spaces (`Date Referral Initiated` is
//! `date_referral_initiated`), so the `safeguarding` profile and council profiles apply
//! unchanged (their renames too: `client_ref` reads as `Client Ref`). The header is every
//! column element the document uses, in order of first appearance; an allegation without
//! one of them has it empty. The document is read twice, both times as a stream: once to
//! check its shape and collect the columns, once for the rows.

use std::collections::HashMap;

use super::{Events, Node, SAFEGUARDING_ROOT};
use crate::source::{check_header, RawRecord, RecordSource};

/// The row element.
pub const ROW: &str = "allegation";

/// More distinct column elements than any profile could read means the document is not
/// this shape; refusing it bounds the header's size.
const MAX_COLUMNS: usize = 512;

/// The allegations of a document whose shape has been checked.
#[derive(Debug)]
pub struct Allegations<'a> {
    columns: Vec<String>,
    index: HashMap<String, usize>,
    events: Events<'a>,
    row: u64,
    done: bool,
}

/// Checks the document's shape and collects its columns. `Err` is a file-level problem
/// naming the element path and the line.
pub fn open(text: &str) -> Result<Allegations<'_>, String> {
    let mut columns: Vec<String> = Vec::new();
    let mut events = Events::new(text);
    let mut path: Vec<String> = Vec::new();
    while let Some(node) = events.next_node()? {
        match node {
            Node::Open { name, attributes, line } => {
                let depth = path.len();
                let expected = match depth {
                    0 => Some(SAFEGUARDING_ROOT),
                    1 => Some(ROW),
                    _ => None,
                };
                let at = format!("/{}", path.iter().chain([&name]).cloned().collect::<Vec<_>>().join("/"));
                if let Some(expected) = expected.filter(|e| *e != name) {
                    return Err(format!("line {line}: {at}: expected <{expected}>"));
                }
                if depth == 3 {
                    return Err(format!("line {line}: {at}: a column element holds text only, not other elements"));
                }
                if let Some((attribute, _)) = attributes.first() {
                    return Err(format!("line {line}: {at}: attribute {attribute:?} is not part of the shape"));
                }
                if depth == 2 && !columns.contains(&name) {
                    if columns.len() == MAX_COLUMNS {
                        return Err(format!("line {line}: {at}: more than {MAX_COLUMNS} distinct column elements"));
                    }
                    columns.push(name.clone());
                }
                path.push(name);
            }
            Node::Close => {
                path.pop();
            }
            Node::Text(text) if path.len() < 3 && !text.trim().is_empty() => {
                let line = events.line();
                return Err(format!(
                    "line {line}: /{}: text directly inside <{}>; values belong in column elements",
                    path.join("/"),
                    path.last().map_or("", String::as_str)
                ));
            }
            Node::Text(_) => {}
        }
    }
    if columns.is_empty() {
        return Err(format!("the document has no <{ROW}> with any column element: nothing to read"));
    }
    let columns = check_header(columns)?;
    let index = columns.iter().enumerate().map(|(idx, name)| (name.clone(), idx)).collect();
    Ok(Allegations { columns, index, events: Events::new(text), row: 0, done: false })
}

impl RecordSource for Allegations<'_> {
    fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl Allegations<'_> {
    /// Reads the allegation just opened into its fields.
    fn read_row(&mut self) -> Result<Result<Vec<String>, String>, String> {
        let mut fields = vec![String::new(); self.columns.len()];
        let mut seen: Vec<Option<u64>> = vec![None; self.columns.len()];
        let mut twice = Vec::new();
        loop {
            match self.events.next_node()? {
                None | Some(Node::Close) => break,
                Some(Node::Text(_)) => {}
                Some(Node::Open { name, line, .. }) => {
                    let mut value = String::new();
                    loop {
                        match self.events.next_node()? {
                            None | Some(Node::Close) => break,
                            Some(Node::Text(text)) => value.push_str(&text),
                            // The shape was checked: a column holds no elements.
                            Some(Node::Open { .. }) => self.events.skip_element()?,
                        }
                    }
                    let Some(&idx) = self.index.get(&name) else { continue };
                    match seen.get(idx).copied().flatten() {
                        Some(first) => twice.push(format!("<{name}> (lines {first} and {line})")),
                        None => {
                            if let (Some(slot), Some(field)) = (seen.get_mut(idx), fields.get_mut(idx)) {
                                *slot = Some(line);
                                *field = value;
                            }
                        }
                    }
                }
            }
        }
        if twice.is_empty() {
            Ok(Ok(fields))
        } else {
            Ok(Err(format!("a column appears more than once in this allegation: {}", twice.join(", "))))
        }
    }
}

impl Iterator for Allegations<'_> {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        while !self.done {
            let node = match self.events.next_node() {
                Ok(Some(node)) => node,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                // The first pass read the same text without an error; if this ever differs
                // the row says so rather than vanishing.
                Err(reason) => {
                    self.done = true;
                    self.row += 1;
                    let line = self.events.line();
                    return Some(RawRecord::new(self.row, line, self.events.position(), Err(reason)));
                }
            };
            let Node::Open { name, line, .. } = node else { continue };
            if name != ROW {
                continue;
            }
            let byte = self.events.position();
            self.row += 1;
            let fields = match self.read_row() {
                Ok(fields) => fields,
                Err(reason) => {
                    self.done = true;
                    Err(reason)
                }
            };
            return Some(RawRecord::new(self.row, line, byte, fields));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_columns() {
        let doc = "<safeguarding>\n <allegation>\n  <a>1</a>\n  <b>x &amp; y</b>\n </allegation>\n <allegation>\n  <c>3</c>\n  <a>4</a>\n </allegation>\n</safeguarding>\n";
        let records = open(doc).unwrap();
        assert_eq!(records.columns(), ["a", "b", "c"]);
        let rows: Vec<RawRecord> = records.collect();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].row, rows[0].line), (1, 2));
        assert_eq!(rows[0].fields.as_ref().unwrap(), &["1", "x & y", ""]);
        assert_eq!((rows[1].row, rows[1].line), (2, 6));
        assert_eq!(rows[1].fields.as_ref().unwrap(), &["4", "", "3"]);
    }

    #[test]
    fn a_column_twice_rejects_its_row() {
        let doc =
            "<safeguarding><allegation><a>1</a>\n<a>2</a></allegation><allegation><a>3</a></allegation></safeguarding>";
        let rows: Vec<RawRecord> = open(doc).unwrap().collect();
        assert!(rows[0].fields.as_ref().unwrap_err().contains("<a> (lines 1 and 2)"));
        assert_eq!(rows[1].fields.as_ref().unwrap(), &["3"]);
    }

    #[test]
    fn shape_errors_name_path_and_line() {
        let err = open("<safeguarding>\n<row><a>1</a></row></safeguarding>").unwrap_err();
        assert_eq!(err, "line 2: /safeguarding/row: expected <allegation>");
        let err = open("<safeguarding>\n<allegation>\n<a><b>1</b></a></allegation></safeguarding>").unwrap_err();
        assert!(err.starts_with("line 3: /safeguarding/allegation/a/b:"), "{err}");
        let err = open("<safeguarding><allegation>loose</allegation></safeguarding>").unwrap_err();
        assert!(err.contains("text directly inside <allegation>"), "{err}");
        let err = open("<safeguarding><allegation id=\"1\"><a>1</a></allegation></safeguarding>").unwrap_err();
        assert!(err.contains("attribute \"id\""), "{err}");
        assert!(open("<safeguarding/>").unwrap_err().contains("nothing to read"));
        let err = open("<safeguarding>\n<allegation><a>1</a>\n").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
