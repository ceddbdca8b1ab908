//! The submission report: every row accepted, accepted with warnings, or rejected, each
//! problem with the column (in the submitter's own name), the value and the reason; totals
//! per outcome and per column; as JSON (serde), CSV, or text for a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// How bad one problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row is stored; the value is kept verbatim or left out as the reason says.
    Warning,
    /// The row is not stored.
    Error,
}

/// One problem with one value of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    /// The submitter's column name; empty for a problem of the whole row.
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    AcceptedWithWarnings,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::AcceptedWithWarnings => "accepted_with_warnings",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One row of the file and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowReport {
    /// The data row's number (1-based; the header is not counted).
    pub row: u64,
    /// The line of the file the row starts on (the header is line 1).
    pub line: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Issue>,
}

impl RowReport {
    pub fn new(row: u64, line: u64) -> Self {
        RowReport { row, line, outcome: Outcome::Accepted, issues: Vec::new() }
    }

    pub fn warn(&mut self, column: &str, value: &str, reason: impl Into<String>) {
        self.push(Severity::Warning, column, value, reason.into());
    }

    pub fn error(&mut self, column: &str, value: &str, reason: impl Into<String>) {
        self.push(Severity::Error, column, value, reason.into());
    }

    fn push(&mut self, severity: Severity, column: &str, value: &str, reason: String) {
        self.issues.push(Issue { severity, column: column.to_owned(), value: value.to_owned(), reason });
        self.outcome = match (self.outcome, severity) {
            (_, Severity::Error) | (Outcome::Rejected, _) => Outcome::Rejected,
            _ => Outcome::AcceptedWithWarnings,
        };
    }

    pub fn is_rejected(&self) -> bool {
        self.outcome == Outcome::Rejected
    }
}

/// Problems per column, over the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnTotals {
    pub warnings: u64,
    pub errors: u64,
}

/// What the submitter's column was read as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnUse {
    pub column: String,
    /// The profile's column it was read as; `None` when the profile does not use it.
    pub read_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The end state of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The accepted rows were committed (one transaction per chunk of the file).
    Committed,
    /// Every accepted row matched what the store already held: nothing was written.
    Unchanged,
    /// `--dry-run`: validated only, nothing written.
    DryRun,
    /// No row was accepted: nothing to write.
    NothingAccepted,
    /// The file could not be read as a table (its header) or the store refused its first
    /// transaction: nothing was written.
    Rejected,
    /// The store refused a later chunk's transaction: the chunks before it are stored, the
    /// rows from the refused chunk on are not. Resubmitting the file resumes there.
    Incomplete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Committed => "committed",
            Status::Unchanged => "committed: nothing changed (the store already held every accepted row)",
            Status::DryRun => "dry run: validated, nothing written",
            Status::NothingAccepted => "nothing written: no row was accepted",
            Status::Rejected => "rejected: nothing written",
            Status::Incomplete => "incomplete: the rows before the refused transaction are stored, the rest are not",
        }
    }
}

/// One committed transaction of the run: a file has one per chunk of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub seq: u64,
    pub changes: usize,
    /// The first and last data rows the transaction holds.
    pub first_row: u64,
    pub last_row: u64,
    /// The same rows, mapped the same way, were stored by an earlier submission (a resumed
    /// or repeated file): they were not planned again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_stored: bool,
}

/// What the report says about rows that are rejected while others are accepted.
pub const POLICY: &str = "Rejected rows are listed with their reasons and not stored; every other row is \
                          stored. A file is committed in transactions of consecutive rows (one for most files; \
                          a chunk at a time for very large ones), each whole or not at all, in file order; when \
                          one is refused, no later row is stored. Correct the rejected rows and resubmit the \
                          file: rows already stored are matched by their identifiers and change nothing, and \
                          chunks already stored unchanged are skipped, so a resubmission resumes where the \
                          last one stopped.";

/// How many rows with findings a report lists; the totals count every row. A file whose
/// every row has a warning must not make a report as large as the file.
pub const MAX_LISTED_ROWS: usize = 50_000;

/// The submission report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub file: String,
    pub format: String,
    pub council: String,
    pub profile: String,
    pub encoding: &'static str,
    pub byte_order_mark: bool,
    pub dry_run: bool,
    pub status: Status,
    pub policy: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_problems: Vec<String>,
    pub columns: Vec<ColumnUse>,
    pub rows_read: u64,
    pub accepted: u64,
    pub warnings: u64,
    pub rejected: u64,
    pub per_column: BTreeMap<String, ColumnTotals>,
    /// The transactions the run committed, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<CommitInfo>,
    /// Changes the run would make (dry run) or made.
    pub changes: usize,
    /// The rows with a warning or an error, in file order (every other row was accepted
    /// as it is), at most [`MAX_LISTED_ROWS`] of them.
    pub rows: Vec<RowReport>,
    /// Rows with findings past [`MAX_LISTED_ROWS`]: counted in the totals, not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_not_listed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    /// An empty report for a run about to start.
    pub fn new(file: &str, format: &str, council: &str, profile: &str, dry_run: bool) -> Self {
        Report {
            file: file.to_owned(),
            format: format.to_owned(),
            council: council.to_owned(),
            profile: profile.to_owned(),
            encoding: "UTF-8",
            byte_order_mark: false,
            dry_run,
            status: Status::NothingAccepted,
            policy: POLICY,
            file_problems: Vec::new(),
            columns: Vec::new(),
            rows_read: 0,
            accepted: 0,
            warnings: 0,
            rejected: 0,
            per_column: BTreeMap::new(),
            transactions: Vec::new(),
            changes: 0,
            rows: Vec::new(),
            rows_not_listed: 0,
        }
    }

    /// Counts a finished row in the totals, and lists it if it has findings.
    pub fn add(&mut self, row: RowReport) {
        self.rows_read += 1;
        match row.outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::AcceptedWithWarnings => self.warnings += 1,
            Outcome::Rejected => self.rejected += 1,
        }
        for issue in &row.issues {
            let totals = match self.per_column.get_mut(issue.column.as_str()) {
                Some(totals) => totals,
                None => {
                    let key = if issue.column.is_empty() { "(row)".to_owned() } else { issue.column.clone() };
                    self.per_column.entry(key).or_default()
                }
            };
            match issue.severity {
                Severity::Warning => totals.warnings += 1,
                Severity::Error => totals.errors += 1,
            }
        }
        if row.issues.is_empty() {
            return;
        }
        if self.rows.len() < MAX_LISTED_ROWS {
            self.rows.push(row);
        } else {
            self.rows_not_listed += 1;
        }
    }

    /// The CSV form: one line per problem.
    pub fn to_csv(&self) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut lines: Vec<[String; 7]> =
            vec![["row", "line", "outcome", "severity", "column", "value", "reason"].map(str::to_owned)];
        for row in &self.rows {
            let head = [row.row.to_string(), row.line.to_string(), row.outcome.as_str().to_owned()];
            for issue in &row.issues {
                let severity = match issue.severity {
                    Severity::Warning => "warning",
                    Severity::Error => "error",
                };
                lines.push([
                    head[0].clone(),
                    head[1].clone(),
                    head[2].clone(),
                    severity.to_owned(),
                    issue.column.clone(),
                    issue.value.clone(),
                    issue.reason.clone(),
                ]);
            }
        }
        for line in &lines {
            // Writing to a Vec cannot fail; an error here would be a csv crate bug, so the
            // line is skipped rather than aborting the report.
            let _ = out.write_record(line);
        }
        out.into_inner().map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    /// The text form for a terminal: the summary, totals, then every problem.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let status = self.status.as_str();
        let _ = writeln!(out, "{} ({}, council {}, profile {})", self.file, self.format, self.council, self.profile);
        let bom = if self.byte_order_mark { " with byte-order mark" } else { "" };
        let _ = writeln!(out, "  encoding   {}{bom}", self.encoding);
        let _ = writeln!(out, "  status     {status}");
        match self.transactions.as_slice() {
            [] => {}
            [tx] if !tx.already_stored => {
                let _ = writeln!(out, "  journal    seq {}, {} changes", tx.seq, tx.changes);
            }
            txs => {
                let stored = txs.iter().filter(|tx| tx.already_stored).count();
                let (first, last) = (txs[0].seq, txs[txs.len() - 1].seq);
                let _ = writeln!(
                    out,
                    "  journal    {} transactions, seq {first} to {last}, {} changes{}",
                    txs.len(),
                    self.changes,
                    if stored > 0 {
                        format!(" ({stored} stored by an earlier submission and skipped)")
                    } else {
                        String::new()
                    }
                );
            }
        }
        if self.transactions.is_empty() && self.dry_run {
            let _ = writeln!(out, "  would make {} changes", self.changes);
        }
        for problem in &self.file_problems {
            let _ = writeln!(out, "  FILE       {problem}");
        }
        let _ = writeln!(
            out,
            "  rows       {} read: {} accepted, {} accepted with warnings, {} rejected",
            self.rows_read, self.accepted, self.warnings, self.rejected
        );
        let unused: Vec<&str> =
            self.columns.iter().filter(|c| c.read_as.is_none()).map(|c| c.column.as_str()).collect();
        if !unused.is_empty() {
            let _ = writeln!(out, "  not used   {}", unused.join(", "));
        }
        if !self.per_column.is_empty() {
            let _ = writeln!(out, "  by column  (warnings / errors)");
            for (column, totals) in &self.per_column {
                let _ = writeln!(out, "    {column:<44} {:>6} / {}", totals.warnings, totals.errors);
            }
        }
        for row in &self.rows {
            for issue in &row.issues {
                let severity = match issue.severity {
                    Severity::Warning => "warning",
                    Severity::Error => "ERROR  ",
                };
                let _ = writeln!(
                    out,
                    "  row {:>5} (line {:>5}) {severity} {}: {:?}: {}",
                    row.row, row.line, issue.column, issue.value, issue.reason
                );
            }
        }
        if self.rows_not_listed > 0 {
            let _ =
                writeln!(out, "  ({} more rows with findings are counted above but not listed)", self.rows_not_listed);
        }
        let _ = writeln!(out, "  {}", self.policy);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_totals() {
        let mut report = Report::new("f.csv", "csv", "305", "safeguarding", false);
        let mut a = RowReport::new(1, 2);
        a.warn("Type of Risk", "phys", "not mapped");
        let mut b = RowReport::new(2, 3);
        b.warn("Type of Risk", "x", "not mapped");
        b.error("Date Referral Initiated", "31/02/2024", "not a date");
        let c = RowReport::new(3, 4);
        for row in [a, b, c] {
            report.add(row);
        }
        assert_eq!((report.rows_read, report.accepted, report.warnings, report.rejected), (3, 1, 1, 1));
        assert_eq!(report.per_column["Type of Risk"], ColumnTotals { warnings: 2, errors: 0 });
        assert_eq!(report.rows.len(), 2, "the row without findings is counted, not listed");
        assert_eq!(report.rows[1].outcome, Outcome::Rejected);
        let csv = report.to_csv();
        assert!(csv.starts_with("row,line,outcome,severity,column,value,reason\n"));
        assert!(csv.contains("2,3,rejected,error,Date Referral Initiated,31/02/2024,not a date\n"), "{csv}");
        assert!(!csv.contains("3,4,"), "{csv}");
    }

    #[test]
    fn listing_is_bounded() {
        let mut report = Report::new("f.csv", "csv", "305", "safeguarding", false);
        for n in 0..(MAX_LISTED_ROWS as u64 + 10) {
            let mut row = RowReport::new(n + 1, n + 2);
            row.warn("Type of Risk", "phys", "not mapped");
            report.add(row);
        }
        assert_eq!(report.rows.len(), MAX_LISTED_ROWS);
        assert_eq!(report.rows_not_listed, 10);
        assert_eq!(report.warnings, MAX_LISTED_ROWS as u64 + 10);
    }
}
