//! Ingest: format adapters (CSV and pipe-delimited text, spreadsheets, XML, HL7 v2),
//! per-council mapping profiles from local values to national codes, validation, and the
//! row-level submission report.
//!
//! Status: CSV and pipe-delimited text, spreadsheets (xlsx, xls, ods; [`spreadsheet`]) and
//! the safeguarding data set as XML ([`xml::safeguarding`]), all with the built-in
//! `safeguarding` profile and council profiles that extend it ([`ingest`]), or with a
//! `generic` profile that declares the entities and links each row makes ([`generic`]);
//! [`suggest`] ranks national codes for the local values no profile mapped; the POLE
//! submission format in XML, one transaction a submission ([`submission`], on
//! [`xml::submission`]); HL7 v2 files, one transaction a message ([`hl7_ingest`], on the
//! parser and mapping of [`hl7`]).
//!
//! The pipeline, one module per step: [`text`] decodes bytes, a [`source::RecordSource`]
//! ([`delimited`], [`spreadsheet`], [`xml::safeguarding`]) reads records one at a time,
//! [`profile`] maps the submitter's columns and values, the profile's [`reader`]
//! ([`safeguarding`] or [`generic`]) turns a row into a plan of entities and links and
//! [`validate`] checks single values,
//! [`commit`] resolves natural keys and commits one transaction, and [`report`] is what
//! the submitter gets back.
//!
//! This crate must never know about HTTP: the API and the command line hand it bytes and a
//! council, and it answers with a report after committing through `pole-store`.

pub mod commit;
pub mod delimited;
mod error;
pub mod generic;
pub mod hl7;
pub mod hl7_ingest;
pub mod profile;
pub mod reader;
pub mod report;
pub mod safeguarding;
pub mod source;
pub mod spreadsheet;
pub mod submission;
pub mod suggest;
pub mod text;
pub mod validate;
pub mod xml;

use std::collections::HashMap;

use chrono::NaiveDate;
use pole_model::Source;
use pole_store::Store;

pub use error::{IngestError, Result};
pub use profile::Profile;
pub use report::{Outcome, Report, RowReport, Severity, Status};

use crate::commit::Built;
use crate::commit::RowPlan;
use crate::delimited::Delimiter;
use crate::reader::RowReader;
use crate::report::CommitInfo;
use crate::source::RecordSource;

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
    /// For a spreadsheet, the sheet to read: a name or a 1-based position; the first
    /// sheet when `None`.
    pub sheet: Option<&'a str>,
    /// Who submits, as the journal records it: the token subject over HTTP.
    pub actor: &'a str,
    /// The submitter's role, as the journal records it.
    pub role: &'a str,
}

/// How many times the store may refuse a row before the file is given up on: each refusal
/// removes the row it names and tries again.
const MAX_STORE_REFUSALS: usize = 100;

/// Ingests one file: reads, maps and validates every row, then commits the accepted rows
/// as one transaction (unless `dry_run`). `progress` is called with the bytes read so far.
/// An `Err` is a failure of the run (a bad option, the store failing); everything about the
/// file's content is in the report.
pub fn ingest(store: &Store, bytes: &[u8], options: &Options<'_>, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    let delimiter = match options.format {
        // HL7 first: its council is optional (MSH-4 stands in) and each message is a
        // transaction.
        Format::Hl7 => return hl7_ingest::ingest_hl7(store, bytes, options, progress),
        _ if !pole_model::is_council_code(options.council) => {
            return Err(IngestError::BadCouncil(options.council.to_owned()))
        }
        Format::Csv => Delimiter::Comma,
        Format::Pipe => Delimiter::Pipe,
        Format::Xlsx => return ingest_spreadsheet(store, bytes, options, progress),
        Format::Xml => return ingest_xml(store, bytes, options, progress),
    };
    check_reader(options.profile)?;
    let mut report = new_report(options, &options.profile.name);
    let decoded = text::decode(bytes);
    report.encoding = decoded.encoding;
    report.byte_order_mark = decoded.byte_order_mark;
    let records = match delimited::open(&decoded.text, delimiter) {
        Ok((_, records)) => records,
        Err(problem) => return Ok(rejected(report, problem)),
    };
    let total = decoded.text.len() as u64;
    ingest_records(store, options, report, records, total, progress)
}

fn new_report(options: &Options<'_>, profile: &str) -> Report {
    Report::new(options.file_name, options.format.as_str(), options.council, profile, options.dry_run)
}

/// A report for a file that could not be read as a whole.
fn rejected(mut report: Report, problem: String) -> Report {
    report.file_problems.push(problem);
    report.status = Status::Rejected;
    report.total();
    report
}

/// The tabular formats read rows through a profile's reader.
fn check_reader(profile: &Profile) -> Result<()> {
    if !profile::READERS.contains(&profile.reader.as_str()) {
        return Err(IngestError::Profile {
            name: profile.name.clone(),
            reason: format!("reader {:?} is not known (readers: {})", profile.reader, profile::READERS.join(", ")),
        });
    }
    Ok(())
}

fn ingest_spreadsheet(
    store: &Store,
    bytes: &[u8],
    options: &Options<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    check_reader(options.profile)?;
    let mut report = new_report(options, &options.profile.name);
    // A spreadsheet carries its own text encoding; the report's is what the cells become.
    report.encoding = "spreadsheet";
    let records = match spreadsheet::open(bytes, options.sheet) {
        Ok(records) => records,
        Err(problem) => return Ok(rejected(report, problem)),
    };
    let total = records.height();
    ingest_records(store, options, report, records, total, progress)
}

fn ingest_xml(store: &Store, bytes: &[u8], options: &Options<'_>, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    let decoded = text::decode(bytes);
    let total = decoded.text.len() as u64;
    match xml::shape_of(&decoded.text) {
        Ok(xml::Shape::Submission) => {
            let mut report = new_report(options, submission::PROFILE);
            report.encoding = decoded.encoding;
            report.byte_order_mark = decoded.byte_order_mark;
            submission::ingest(store, &decoded.text, options, report, progress)
        }
        Ok(xml::Shape::Safeguarding) => {
            check_reader(options.profile)?;
            let mut report = new_report(options, &options.profile.name);
            report.encoding = decoded.encoding;
            report.byte_order_mark = decoded.byte_order_mark;
            match xml::safeguarding::open(&decoded.text) {
                Ok(records) => ingest_records(store, options, report, records, total, progress),
                Err(problem) => Ok(rejected(report, problem)),
            }
        }
        Err(problem) => {
            let mut report = new_report(options, &options.profile.name);
            report.encoding = decoded.encoding;
            report.byte_order_mark = decoded.byte_order_mark;
            Ok(rejected(report, problem))
        }
    }
}

/// The tabular pipeline, the same for every record source: each record is mapped and
/// validated through the profile's reader into a row of the report, and the accepted rows
/// are committed as one transaction.
fn ingest_records(
    store: &Store,
    options: &Options<'_>,
    mut report: Report,
    records: impl RecordSource,
    total: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let profile = options.profile;
    let header = records.columns().to_vec();
    let today = options.today.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let schema = store.schema();
    let mut reader = RowReader::new(profile, schema, options.council, &header, today)?;
    report.columns = reader.columns(&header);
    for missing in reader.missing_columns() {
        report.file_problems.push(format!("required column missing: {missing}; every row is rejected"));
    }

    let mut plans: Vec<RowPlan> = Vec::new();
    for record in records {
        progress(record.byte);
        let mut row = RowReport::new(record.row, record.line);
        // Unusable values first: they reject the row, and the reader then still counts the
        // row (allegation positions stay put when it is corrected) and names any other
        // problem, so one resubmission can fix them all.
        for problem in &record.problems {
            row.error(&problem.column, &problem.value, problem.reason.clone());
        }
        match &record.fields {
            Err(reason) => row.error("", "", reason.clone()),
            Ok(fields) if record.problems.is_empty() && fields.iter().all(|f| f.trim().is_empty()) => {
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
    progress(total);
    if report.rows.is_empty() {
        report.file_problems.push("the file has a header row but no data rows".into());
    }

    let source = Source {
        council: Some(options.council.to_owned()),
        system: Some("pole-ods ingest".into()),
        batch: Some(format!("profile {}", profile.name)),
        file: Some(options.file_name.to_owned()),
    };
    commit_rows(store, options, &mut report, plans, |store, plans| commit::build(store, plans, source.clone()))?;
    Ok(report)
}

/// What the commit loop needs of a planned row.
pub(crate) trait PlannedRow {
    fn row(&self) -> u64;
}

impl PlannedRow for RowPlan {
    fn row(&self) -> u64 {
        self.row
    }
}

/// Commits the accepted rows' plans as one transaction (or plans it, in a dry run), and
/// finishes the report. When the store refuses a change that names a row, that row is
/// rejected and the rest is tried again; a refusal that names no row refuses the file,
/// and then no row reads as stored.
pub(crate) fn commit_rows<P: PlannedRow>(
    store: &Store,
    options: &Options<'_>,
    report: &mut Report,
    mut plans: Vec<P>,
    build: impl Fn(&Store, &[P]) -> Result<Built>,
) -> Result<()> {
    let row_index: HashMap<u64, usize> = report.rows.iter().enumerate().map(|(i, r)| (r.row, i)).collect();
    let mut refusals = 0;
    loop {
        if plans.is_empty() {
            report.status = if options.dry_run { Status::DryRun } else { Status::NothingAccepted };
            break;
        }
        let mut built = build(store, &plans)?;
        built.request.actor = options.actor.to_owned();
        built.request.role = options.role.to_owned();
        if !built.dropped.is_empty() {
            for (row, reason) in &built.dropped {
                if let Some(r) = row_index.get(row).and_then(|&i| report.rows.get_mut(i)) {
                    r.error("", "", reason.clone());
                }
            }
            plans.retain(|p| !built.dropped.iter().any(|(row, _)| *row == p.row()));
            continue;
        }
        let warn = |report: &mut Report| {
            for (row, column, reason) in &built.warnings {
                if let Some(r) = row_index.get(row).and_then(|&i| report.rows.get_mut(i)) {
                    r.warn(column, "", reason.clone());
                }
            }
        };
        report.changes = built.request.changes.len();
        if options.dry_run {
            warn(report);
            report.status = Status::DryRun;
            break;
        }
        let request = built.request.clone();
        match store.commit(built.request.clone())? {
            Ok(committed) => {
                warn(report);
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
                        plans.retain(|p| p.row() != row);
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
    Ok(())
}
