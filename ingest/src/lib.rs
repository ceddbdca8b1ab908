//! Ingest: format adapters (CSV and pipe-delimited text, spreadsheets, XML, HL7 v2),
//! per-council mapping profiles from local values to national codes, validation, and the
//! row-level submission report.
//!
//! Status: CSV and pipe-delimited text with the built-in `safeguarding` profile and council
//! profiles that extend it ([`ingest`]); HL7 v2 files, one transaction a message
//! ([`hl7_ingest`], on the parser and mapping of [`hl7`]); spreadsheets and XML answer "not
//! supported yet".
//!
//! The pipeline, one module per step: [`text`] decodes bytes, [`delimited`] reads records
//! one at a time, [`profile`] maps the submitter's columns and values, [`safeguarding`]
//! turns a row into a plan of entities and links and [`validate`] checks single values,
//! [`commit`] resolves natural keys and commits one transaction, and [`report`] is what
//! the submitter gets back.
//!
//! This crate must never know about HTTP: the API and the command line hand it bytes and a
//! council, and it answers with a report after committing through `pole-store`.

pub mod commit;
pub mod delimited;
mod error;
pub mod hl7;
pub mod hl7_ingest;
pub mod profile;
pub mod report;
pub mod safeguarding;
pub mod text;
pub mod validate;

use std::collections::HashMap;

use chrono::NaiveDate;
use pole_model::Source;
use pole_store::Store;

pub use error::{IngestError, Result};
pub use profile::Profile;
pub use report::{Outcome, Report, RowReport, Severity, Status};

use crate::commit::RowPlan;
use crate::delimited::Delimiter;
use crate::report::{ColumnUse, CommitInfo};

/// The formats of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Pipe,
    Xlsx,
    Xml,
    Hl7,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Pipe => "pipe",
            Format::Xlsx => "xlsx",
            Format::Xml => "xml",
            Format::Hl7 => "hl7",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = IngestError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "pipe" | "psv" => Ok(Format::Pipe),
            "xlsx" | "xls" => Ok(Format::Xlsx),
            "xml" => Ok(Format::Xml),
            "hl7" => Ok(Format::Hl7),
            _ => Err(IngestError::UnknownFormat(s.to_owned())),
        }
    }
}

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The file's name, for the report and the transaction's provenance.
    pub file_name: &'a str,
    pub format: Format,
    pub council: &'a str,
    pub profile: &'a Profile,
    /// Validate and plan without writing.
    pub dry_run: bool,
    /// The date future dates are judged against; today (UTC) when `None`.
    pub today: Option<NaiveDate>,
}

/// How many times the store may refuse a row before the file is given up on: each refusal
/// removes the row it names and tries again.
const MAX_STORE_REFUSALS: usize = 100;

/// Ingests one file: reads, maps and validates every row, then commits the accepted rows
/// as one transaction (unless `dry_run`). `progress` is called with the bytes read so far.
/// An `Err` is a failure of the run (a bad option, the store failing); everything about the
/// file's content is in the report.
pub fn ingest(store: &Store, bytes: &[u8], options: &Options<'_>, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    // HL7 first: its council is optional (MSH-4 stands in) and each message is a transaction.
    if options.format == Format::Hl7 {
        return hl7_ingest::ingest_hl7(store, bytes, options, progress);
    }
    if !validate::council_code(options.council) {
        return Err(IngestError::BadCouncil(options.council.to_owned()));
    }
    let delimiter = match options.format {
        Format::Csv => Delimiter::Comma,
        Format::Pipe => Delimiter::Pipe,
        other => return Err(IngestError::UnsupportedFormat(other.as_str().to_owned())),
    };
    let profile = options.profile;
    if profile.reader != "safeguarding" {
        return Err(IngestError::Profile {
            name: profile.name.clone(),
            reason: format!("reader {:?} is not known (this build has: safeguarding)", profile.reader),
        });
    }
    let mut report =
        Report::new(options.file_name, options.format.as_str(), options.council, &profile.name, options.dry_run);
    let decoded = text::decode(bytes);
    report.encoding = decoded.encoding;
    report.byte_order_mark = decoded.byte_order_mark;

    let (header, records) = match delimited::open(&decoded.text, delimiter) {
        Ok(opened) => opened,
        Err(problem) => {
            report.file_problems.push(problem);
            report.status = Status::Rejected;
            return Ok(report);
        }
    };
    let today = options.today.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let schema = store.schema();
    let mut reader = safeguarding::Reader::new(profile, schema, options.council, &header, today)?;
    report.columns = header
        .iter()
        .enumerate()
        .map(|(idx, column)| {
            let read_as = reader.read_as(idx);
            ColumnUse {
                column: column.clone(),
                read_as: read_as.map(str::to_owned),
                note: read_as.and_then(safeguarding::column_note),
            }
        })
        .collect();
    for missing in reader.missing_columns() {
        report.file_problems.push(format!("required column missing: {missing}; every row is rejected"));
    }

    let mut plans: Vec<RowPlan> = Vec::new();
    for record in records {
        progress(record.byte);
        let mut row = RowReport::new(record.row, record.line);
        match &record.fields {
            Err(reason) => row.error("", "", reason.clone()),
            Ok(fields) if fields.iter().all(|f| f.trim().is_empty()) => {
                row.error("", "", "the row is blank");
            }
            Ok(fields) => {
                if let Some(plan) = reader.read(record.row, fields, &mut row) {
                    plans.push(plan);
                }
            }
        }
        report.rows.push(row);
    }
    progress(decoded.text.len() as u64);
    if report.rows.is_empty() {
        report.file_problems.push("the file has a header row but no data rows".into());
    }

    let source = Source {
        council: Some(options.council.to_owned()),
        system: Some("pole-ods ingest".into()),
        batch: Some(format!("profile {}", profile.name)),
        file: Some(options.file_name.to_owned()),
    };
    let row_index: HashMap<u64, usize> = report.rows.iter().enumerate().map(|(i, r)| (r.row, i)).collect();
    let mut refusals = 0;
    loop {
        if plans.is_empty() {
            report.status = if options.dry_run { Status::DryRun } else { Status::NothingAccepted };
            break;
        }
        let built = commit::build(store, &plans, source.clone())?;
        let warn = |report: &mut Report| {
            for (row, column, reason) in &built.warnings {
                if let Some(r) = row_index.get(row).and_then(|&i| report.rows.get_mut(i)) {
                    r.warn(column, "", reason.clone());
                }
            }
        };
        report.changes = built.request.changes.len();
        if options.dry_run {
            warn(&mut report);
            report.status = Status::DryRun;
            break;
        }
        let request = built.request.clone();
        match store.commit(built.request.clone())? {
            Ok(committed) => {
                warn(&mut report);
                report.changes = committed.changes;
                report.status = if committed.changes == 0 { Status::Unchanged } else { Status::Committed };
                if committed.changes > 0 {
                    report.transaction = Some(CommitInfo { seq: committed.seq, changes: committed.changes });
                }
                break;
            }
            Err(rejection) => {
                let row = commit::refused_row(&request, &rejection);
                let slot = row.and_then(|row| row_index.get(&row).copied());
                match (row, slot) {
                    (Some(row), Some(slot)) if refusals < MAX_STORE_REFUSALS => {
                        refusals += 1;
                        if let Some(r) = report.rows.get_mut(slot) {
                            r.error("", "", format!("the store refused this row: {rejection}"));
                        }
                        plans.retain(|p| p.row != row);
                    }
                    _ => {
                        report.file_problems.push(format!("the store refused the file's transaction: {rejection}"));
                        report.status = Status::Rejected;
                        report.changes = 0;
                        // Nothing was written: no row may read as stored.
                        for r in report.rows.iter_mut().filter(|r| !r.is_rejected()) {
                            r.error("", "", "not stored: the file's transaction was refused (see the file problems)");
                        }
                        break;
                    }
                }
            }
        }
    }
    report.total();
    Ok(report)
}
