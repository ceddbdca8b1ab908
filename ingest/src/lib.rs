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
//! [`validate`] checks single values, [`commit`] resolves natural keys and builds one
//! transaction per chunk of rows (each chunk planned while the previous one commits, from
//! that chunk's [`commit::Carry`]), and [`report`] is what the submitter gets back.
//! [`ingest`] takes a file held in memory; [`ingest_file`] streams delimited text and HL7
//! from disk in bounded memory. Every path resolves and commits under one process-wide
//! lock, so concurrent ingests never create the same new entity twice.
//!
//! This crate must never know about HTTP: the API and the command line hand it bytes (or a
//! path) and a council, and it answers with a report after committing through `pole-store`.

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
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use chrono::NaiveDate;
use pole_model::{Operation, Source};
use pole_store::{DryRun, Rejection, Store};
use sha2::{Digest as _, Sha256};

pub use error::{IngestError, Result};
pub use profile::Profile;
pub use report::{Outcome, Report, RowReport, Severity, Status};

use crate::commit::{Built, Carry, RowPlan};
use crate::delimited::Delimiter;
use crate::reader::RowReader;
use crate::report::CommitInfo;
use crate::source::RecordSource;

/// Held from natural-key look-up to the commit that relies on it, by every ingest path of
/// the process (files from the command line or HTTP, HL7 over MLLP): two ingests that
/// each found a new person missing would otherwise both create them. The store serialises
/// commits, not the look-ups before them.
static RESOLVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the other ingests of the process to finish resolving and committing.
pub(crate) fn resolving() -> std::sync::MutexGuard<'static, ()> {
    RESOLVING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Told how far into the file a run has read (bytes, or rows of a spreadsheet), from
/// whichever thread is reading.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

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
    /// The operations the submitter may make ([`Operation::COUNCIL`] for a council): a row
    /// or message whose transaction asks for another is refused.
    pub operations: &'a [Operation],
    /// The rows a transaction holds at most ([`DEFAULT_CHUNK_ROWS`]); fewer when the rows
    /// would make more changes than the store takes in one transaction.
    pub chunk_rows: usize,
}

impl<'a> Options<'a> {
    /// A file to commit for `council` through `profile`, with the defaults every other field
    /// has on the command line: not a dry run, judged against today, the first sheet, written
    /// by `pole-ods ingest` as a council (with a council's operations), in chunks of
    /// [`DEFAULT_CHUNK_ROWS`].
    pub fn new(file_name: &'a str, format: Format, council: &'a str, profile: &'a Profile) -> Self {
        Options {
            file_name,
            format,
            council,
            profile,
            dry_run: false,
            today: None,
            sheet: None,
            actor: "pole-ods ingest",
            role: "council",
            // No council (HL7 only): the sending facility's own feed, which merges its own
            // patients' records (A40).
            operations: if council.is_empty() { &Operation::ALL } else { &Operation::COUNCIL },
            chunk_rows: DEFAULT_CHUNK_ROWS,
        }
    }
}

/// How many times the store may refuse a row before the transaction is given up on: each
/// refusal removes the row it names and tries again.
const MAX_STORE_REFUSALS: usize = 100;

/// The rows a transaction holds at most, unless [`Options::chunk_rows`] says otherwise:
/// most files are one transaction, and a very large one is committed a chunk at a time, so
/// that memory stays bounded and a failed run resumes after the last stored chunk.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;

/// Ingests one file held in memory: reads, maps and validates every row, then commits the
/// accepted rows (unless `dry_run`), a chunk of rows per transaction. `progress` is called
/// with the bytes read so far. An `Err` is a failure of the run (a bad option, the store
/// failing); everything about the file's content is in the report.
pub fn ingest(store: &Store, bytes: &[u8], options: &Options<'_>, progress: Progress<'_>) -> Result<Report> {
    match options.format {
        Format::Csv | Format::Pipe => {
            check_council(options.council)?;
            ingest_delimited(store, || Ok(bytes), options, progress)
        }
        // HL7 first: its council is optional (MSH-4 stands in) and each message is a
        // transaction.
        Format::Hl7 => hl7_ingest::ingest_hl7(store, bytes, options, &mut |done| progress(done)),
        Format::Xlsx => {
            check_council(options.council)?;
            ingest_spreadsheet(store, bytes, options, progress)
        }
        Format::Xml => {
            check_council(options.council)?;
            ingest_xml(store, bytes, options, progress)
        }
    }
}

/// Ingests one file from disk. Delimited text and HL7 are streamed: read twice (once to
/// choose the text encoding, once to ingest) a block at a time, so a file of any size is
/// ingested in bounded memory. Spreadsheets and XML are read whole first. `progress` is
/// called with the bytes read so far, out of the file's length.
pub fn ingest_file(store: &Store, path: &Path, options: &Options<'_>, progress: Progress<'_>) -> Result<Report> {
    let read_error = |source| IngestError::Read { path: path.to_owned(), source };
    match options.format {
        Format::Csv | Format::Pipe => {
            check_council(options.council)?;
            let open = || std::fs::File::open(path).map(std::io::BufReader::new);
            // An unreadable file is the run's failure, not a problem of its content.
            open().map_err(read_error)?;
            ingest_delimited(store, open, options, progress)
        }
        Format::Hl7 => hl7_ingest::ingest_hl7_file(store, path, options, &mut |done| progress(done)),
        Format::Xlsx | Format::Xml => {
            let bytes = std::fs::read(path).map_err(read_error)?;
            ingest(store, &bytes, options, progress)
        }
    }
}

fn check_council(council: &str) -> Result<()> {
    match pole_model::is_council_code(council) {
        true => Ok(()),
        false => Err(IngestError::BadCouncil(council.to_owned())),
    }
}

/// CSV or pipe-delimited text from `open`, which gives the file's bytes from the start
/// each time it is called.
fn ingest_delimited<R: Read + Send>(
    store: &Store,
    open: impl Fn() -> std::io::Result<R>,
    options: &Options<'_>,
    progress: Progress<'_>,
) -> Result<Report> {
    let delimiter = match options.format {
        Format::Pipe => Delimiter::Pipe,
        _ => Delimiter::Comma,
    };
    check_reader(options.profile)?;
    let mut report = new_report(options, &options.profile.name);
    let io_failed = |report: Report, e: std::io::Error| rejected(report, format!("the file could not be read: {e}"));
    let encoding = match open().and_then(text::sniff) {
        Ok(encoding) => encoding,
        Err(e) => return Ok(io_failed(report, e)),
    };
    report.encoding = encoding.name();
    report.byte_order_mark = encoding.byte_order_mark;
    let input = match open() {
        Ok(input) => encoding.decoding(input),
        Err(e) => return Ok(io_failed(report, e)),
    };
    let records = match delimited::open(input, delimiter) {
        Ok((_, records)) => records,
        Err(problem) => return Ok(rejected(report, problem)),
    };
    ingest_records(store, options, report, records, progress)
}

fn new_report(options: &Options<'_>, profile: &str) -> Report {
    Report::new(options.file_name, options.format.as_str(), options.council, profile, options.dry_run)
}

/// A report for a file that could not be read as a whole.
fn rejected(mut report: Report, problem: String) -> Report {
    report.file_problems.push(problem);
    report.status = Status::Rejected;
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

fn ingest_spreadsheet(store: &Store, bytes: &[u8], options: &Options<'_>, progress: Progress<'_>) -> Result<Report> {
    check_reader(options.profile)?;
    let mut report = new_report(options, &options.profile.name);
    // A spreadsheet carries its own text encoding; the report's is what the cells become.
    report.encoding = "spreadsheet";
    let records = match spreadsheet::open(bytes, options.sheet) {
        Ok(records) => records,
        Err(problem) => return Ok(rejected(report, problem)),
    };
    let total = records.height();
    ingest_records(store, options, report, records, &|done| progress(done.min(total)))
}

fn ingest_xml(store: &Store, bytes: &[u8], options: &Options<'_>, progress: Progress<'_>) -> Result<Report> {
    let decoded = text::decode(bytes);
    let total = decoded.text.len() as u64;
    let shape = xml::shape_of(&decoded.text);
    let mut report = match shape {
        Ok(xml::Shape::Submission) => new_report(options, submission::PROFILE),
        _ => new_report(options, &options.profile.name),
    };
    report.encoding = decoded.encoding;
    report.byte_order_mark = decoded.byte_order_mark;
    match shape {
        Ok(xml::Shape::Submission) => {
            submission::ingest(store, &decoded.text, options, report, &mut |done| progress(done))
        }
        Ok(xml::Shape::Safeguarding) => {
            check_reader(options.profile)?;
            match xml::safeguarding::open(&decoded.text) {
                Ok(records) => {
                    let report = ingest_records(store, options, report, records, progress)?;
                    progress(total);
                    Ok(report)
                }
                Err(problem) => Ok(rejected(report, problem)),
            }
        }
        Err(problem) => Ok(rejected(report, problem)),
    }
}

/// No row plan of a built-in reader comes near this many changes; a generic profile's
/// could, and its chunk is then closed early enough.
const MOST_CHANGES_A_ROW: usize = 1_000;

/// The rows of one transaction: read, mapped and validated, waiting to be committed.
#[derive(Debug, Default)]
struct Chunk {
    rows: Vec<RowReport>,
    plans: Vec<RowPlan>,
    /// An upper bound of the changes the plans make, to keep under the store's cap.
    changes: usize,
    /// The idempotency key of its transaction ([`resume_key`]), digested on the reading
    /// thread rather than between two commits.
    key: String,
}

impl Chunk {
    fn is_full(&self, options: &Options<'_>) -> bool {
        self.rows.len() >= options.chunk_rows.max(1) || self.changes + MOST_CHANGES_A_ROW > pole_store::MAX_CHANGES
    }
}

/// The tabular pipeline, the same for every record source: each record is mapped and
/// validated through the profile's reader into a row of the report, and the accepted rows
/// are committed a chunk at a time. Only one chunk's rows are held at once.
fn ingest_records(
    store: &Store,
    options: &Options<'_>,
    mut report: Report,
    mut records: impl RecordSource + Send,
    progress: Progress<'_>,
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
    let source = Source {
        council: Some(options.council.to_owned()),
        system: Some("pole-ods ingest".into()),
        batch: Some(format!("profile {}", profile.name)),
        file: Some(options.file_name.to_owned()),
    };
    // Reading, mapping and validating run on their own thread, a chunk ahead of the
    // commits: resolution must see the previous chunk stored, reading need not.
    let mut run = Run::default();
    let mut dry_run = options.dry_run.then(|| FileDryRun::new(store));
    std::thread::scope(|scope| -> Result<()> {
        let (chunks, ready) = std::sync::mpsc::sync_channel::<Piece>(1);
        scope.spawn(move || read_chunks(&mut records, &mut reader, options, progress, &chunks));
        let mut pieces = ready.into_iter().peekable();
        let mut ahead = None;
        while let Some(piece) = pieces.next() {
            match piece.failure {
                None => {
                    let last_row = piece.chunk.rows.last().map_or(0, |r| r.row);
                    // The next chunk is planned while this one commits.
                    let next = pieces.peek().filter(|p| p.failure.is_none()).map(|p| p.chunk.plans.as_slice());
                    let lookahead = Lookahead { ahead: ahead.take(), next, dry_run: dry_run.as_mut() };
                    let (stored, next_ahead) =
                        run.commit(store, options, &mut report, piece.chunk, &source, lookahead)?;
                    ahead = next_ahead;
                    if !stored {
                        report.file_problems.push(format!(
                            "no row after row {last_row} was read or stored: resubmit the file once the cause is \
                             fixed (rows already stored change nothing)"
                        ));
                        // Dropping `ready` stops the reader at its next chunk.
                        break;
                    }
                }
                // The rows read since the last chunk are not committed: the file's end was
                // never seen, so they may be cut short.
                Some(failure) => {
                    report.file_problems.push(format!("{failure}; no row after the last stored chunk was stored"));
                    for mut row in piece.chunk.rows {
                        if !row.is_rejected() {
                            row.error("", "", "not stored: the file could not be read to its end");
                        }
                        report.add(row);
                    }
                    run.refused = true;
                }
            }
        }
        Ok(())
    })?;
    // The last stored chunk may still be being applied: the caller may read next.
    store.wait_readable()?;
    if report.rows_read == 0 && report.file_problems.is_empty() {
        report.file_problems.push("the file has a header row but no data rows".into());
    }
    report.status = run.status(options);
    Ok(report)
}

/// A chunk read, or the rows read before the input failed.
#[derive(Debug)]
struct Piece {
    chunk: Chunk,
    failure: Option<String>,
}

/// Reads, maps and validates `records` into chunks, and sends each when it is full, the
/// last one when the records end, until the receiver hangs up.
fn read_chunks(
    records: &mut impl RecordSource,
    reader: &mut RowReader<'_>,
    options: &Options<'_>,
    progress: Progress<'_>,
    chunks: &std::sync::mpsc::SyncSender<Piece>,
) {
    let mut chunk = Chunk::default();
    for record in records.by_ref() {
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
                    chunk.changes += plan.most_changes();
                    chunk.plans.push(plan);
                }
            }
        }
        chunk.rows.push(row);
        if chunk.is_full(options) {
            chunk.key = resume_key(options, &chunk.plans);
            let piece = Piece { chunk: std::mem::take(&mut chunk), failure: None };
            if chunks.send(piece).is_err() {
                return;
            }
        }
    }
    let failure = records.failure();
    if !chunk.rows.is_empty() || failure.is_some() {
        chunk.key = resume_key(options, &chunk.plans);
        let _ = chunks.send(Piece { chunk, failure });
    }
}

/// What the transactions of a run came to.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// A chunk's transaction changed the store (or, in a dry run, would).
    changed: bool,
    /// A chunk had accepted rows.
    accepted: bool,
    /// A chunk was stored by an earlier submission.
    already_stored: bool,
    /// A chunk's transaction was refused, or the file could not be read to its end.
    refused: bool,
}

impl Run {
    /// Commits one chunk (or plans it, in a dry run) and adds its rows to the report; plans
    /// the next chunk while this one commits. False when the chunk was refused: no later
    /// chunk may be stored.
    fn commit<'s>(
        &mut self,
        store: &'s Store,
        options: &Options<'_>,
        report: &mut Report,
        mut chunk: Chunk,
        source: &Source,
        lookahead: Lookahead<'_, 's>,
    ) -> Result<(bool, Option<Ahead>)> {
        let accepted = !chunk.plans.is_empty();
        let mut plan_next = lookahead
            .next
            .map(|plans| move |previous: &Carry| commit::build(store, plans, source.clone(), previous).ok());
        let tx = ChunkTx {
            key: Some(std::mem::take(&mut chunk.key)),
            ahead: lookahead.ahead,
            next: plan_next.as_mut().map(|f| f as &mut PlanNext<'_>),
            dry_run: lookahead.dry_run,
        };
        let (outcome, ahead) =
            commit_rows(store, options, report, &mut chunk.rows, chunk.plans, tx, |store, plans, earlier| {
                commit::build(store, plans, source.clone(), earlier)
            })?;
        for row in chunk.rows {
            report.add(row);
        }
        self.record(&outcome, accepted);
        Ok((!self.refused, ahead))
    }

    /// Notes what one transaction came to.
    pub(crate) fn record(&mut self, outcome: &TxOutcome, accepted: bool) {
        self.accepted |= accepted;
        match outcome {
            TxOutcome::Nothing => {}
            TxOutcome::Planned(changes) => self.changed |= *changes > 0,
            TxOutcome::Stored(info) => {
                self.changed |= info.changes > 0 && !info.already_stored;
                self.already_stored |= info.already_stored;
            }
            TxOutcome::Refused => self.refused = true,
        }
    }

    pub(crate) fn status(&self, options: &Options<'_>) -> Status {
        let stored = self.changed || self.already_stored;
        match (options.dry_run, self.refused, stored, self.accepted) {
            (true, _, _, _) => Status::DryRun,
            (false, true, false, _) => Status::Rejected,
            (false, true, true, _) => Status::Incomplete,
            (false, false, true, _) if self.changed => Status::Committed,
            (false, false, _, true) => Status::Unchanged,
            (false, false, _, false) => Status::NothingAccepted,
        }
    }
}

/// The idempotency key of a chunk's transaction: the council, the profile and a digest of
/// what its rows were read as. A resubmission whose chunk reads the same is recognised
/// before anything is planned; a corrected row, or a profile that now maps a value, makes
/// a different key, and the chunk is planned and committed again.
fn resume_key(options: &Options<'_>, plans: &[RowPlan]) -> String {
    struct Digest(Sha256);
    impl std::fmt::Write for Digest {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut digest = Digest(Sha256::new());
    for plan in plans {
        let _ = write!(digest, "{plan:?}");
    }
    let hash = digest.0.finalize();
    let short: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("ingest:{}:{}:{short}", options.council, options.profile.name)
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

/// What became of one transaction's rows.
#[derive(Debug)]
pub(crate) enum TxOutcome {
    /// No row was accepted.
    Nothing,
    /// A dry run: the changes the transaction would make.
    Planned(usize),
    Stored(CommitInfo),
    /// The store refused the transaction as a whole: its rows read as not stored.
    Refused,
}

/// A chunk's plan made while the chunk before it committed. It holds while the store's
/// head is still `after_seq` (that chunk's transaction) when the resolution lock is taken:
/// nothing else was stored in between.
#[derive(Debug)]
pub(crate) struct Ahead {
    built: Built,
    after_seq: u64,
}

/// The chunk pipeline's look-ahead for one chunk: its plan if one was made ahead, and the
/// next chunk's rows, to plan while this chunk commits.
pub(crate) struct Lookahead<'a, 's> {
    ahead: Option<Ahead>,
    next: Option<&'a [RowPlan]>,
    /// In a dry run, the chunks judged before this one.
    dry_run: Option<&'a mut FileDryRun<'s>>,
}

/// A dry run of a file's chunks. The store's dry run judges each chunk against what the
/// chunks before it would have stored; `earlier` is what their plans knew of the entities
/// they would make (natural keys, links, single-valued roles), which no store read can
/// find, so that every plan of a later chunk, made ahead or again after a refusal,
/// starts from it.
pub(crate) struct FileDryRun<'s> {
    store: DryRun<'s>,
    earlier: Carry,
}

impl<'s> FileDryRun<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        FileDryRun { store: store.dry_run(), earlier: Carry::default() }
    }
}

/// Plans the next chunk from this chunk's [`Carry`] (in a dry run, every judged chunk's);
/// `None` when it cannot be planned now.
pub(crate) type PlanNext<'a> = dyn FnMut(&Carry) -> Option<Built> + 'a;

/// How one chunk's transaction is committed besides its rows.
pub(crate) struct ChunkTx<'a, 's> {
    /// A transaction stored before under this key is not planned again.
    pub key: Option<String>,
    /// This chunk's plan, made while the previous chunk committed.
    pub ahead: Option<Ahead>,
    /// Plans the next chunk from this one's [`Carry`], while this one commits.
    pub next: Option<&'a mut PlanNext<'a>>,
    /// In a dry run, the chunks judged before this one.
    pub dry_run: Option<&'a mut FileDryRun<'s>>,
}

impl ChunkTx<'_, '_> {
    /// A transaction on its own: no key, nothing planned ahead.
    pub(crate) fn single() -> Self {
        ChunkTx { key: None, ahead: None, next: None, dry_run: None }
    }
}

/// Commits the accepted rows' plans as one transaction (or plans it, in a dry run). `rows`
/// are the report rows the plans came from, in order. When the store refuses a change
/// that names a row, that row is rejected and the rest is tried again; a refusal that
/// names no row refuses the transaction, and then none of its rows reads as stored. With
/// a key, a transaction stored before under the same key is not planned again. The
/// answer's second part is the next chunk's plan when `tx.next` made one that still holds
/// once this transaction is stored.
pub(crate) fn commit_rows<'s, P: PlannedRow>(
    store: &'s Store,
    options: &Options<'_>,
    report: &mut Report,
    rows: &mut [RowReport],
    mut plans: Vec<P>,
    tx: ChunkTx<'_, 's>,
    build: impl Fn(&Store, &[P], &Carry) -> Result<Built>,
) -> Result<(TxOutcome, Option<Ahead>)> {
    let ChunkTx { mut key, ahead, mut next, dry_run } = tx;
    let (Some(first_row), Some(last_row)) = (plans.first().map(P::row), plans.last().map(P::row)) else {
        return Ok((TxOutcome::Nothing, None));
    };
    if !options.dry_run {
        let namespace = pole_store::idempotency_namespace(Some(options.council), options.actor);
        if let Some(earlier) = key.as_deref().map(|key| store.idempotent(&namespace, key)).transpose()?.flatten() {
            let info = CommitInfo { seq: earlier.seq, changes: 0, first_row, last_row, already_stored: true };
            report.transactions.push(info.clone());
            return Ok((TxOutcome::Stored(info), None));
        }
    }
    let row_index: HashMap<u64, usize> = rows.iter().enumerate().map(|(i, r)| (r.row, i)).collect();
    let _resolving = resolving();
    // The plan made ahead holds only if no other transaction was stored since the one it
    // followed. Durable, not applied: this chunk is submitted while that one is applied.
    // A dry run keeps it whatever others store meanwhile: it alone knows what the earlier
    // chunks, stored nowhere, would have created.
    let mut ahead = ahead.filter(|a| options.dry_run || store.durable_seq() == a.after_seq).map(|a| a.built);
    let mut refusals = 0;
    // A dry run judges every chunk of a run in one store dry run, so later chunks see what
    // earlier ones would have made; a caller with no run of chunks gets one of its own.
    let mut own_dry_run = None;
    let mut dry_run = match dry_run {
        Some(dry_run) => Some(dry_run),
        None if options.dry_run => Some(own_dry_run.insert(FileDryRun::new(store))),
        None => None,
    };
    // A commit plans from the store alone: every earlier chunk is stored.
    let stored_before = Carry::default();
    loop {
        if plans.is_empty() {
            return Ok((TxOutcome::Nothing, None));
        }
        let planning = std::time::Instant::now();
        let mut built = match ahead.take() {
            Some(built) => built,
            None => {
                // Planning reads the store: it must show every stored transaction.
                store.wait_readable()?;
                build(store, &plans, dry_run.as_deref().map_or(&stored_before, |d| &d.earlier))?
            }
        };
        let planned_in = planning.elapsed();
        built.request.actor = options.actor.to_owned();
        built.request.role = options.role.to_owned();
        built.request.idempotency_key = key.clone();
        if !built.dropped.is_empty() {
            for (row, reason) in &built.dropped {
                if let Some(r) = row_index.get(row).and_then(|&i| rows.get_mut(i)) {
                    r.error("", "", reason.clone());
                }
            }
            plans.retain(|p| !built.dropped.iter().any(|(row, _)| *row == p.row()));
            continue;
        }
        let warn = |rows: &mut [RowReport], warnings: &[(u64, String, String)]| {
            for (row, column, reason) in warnings {
                if let Some(r) = row_index.get(row).and_then(|&i| rows.get_mut(i)) {
                    r.warn(column, "", reason.clone());
                }
            }
        };
        // The request is large: keep only which row each change came from.
        let change_rows: Vec<Option<u64>> = built.request.changes.iter().map(|c| c.row).collect();
        let rejection = if let Some(dry_run) = dry_run.as_deref_mut() {
            match dry_run.store.judge(&built.request)? {
                Ok(judged) => {
                    warn(rows, &built.warnings);
                    report.changes += judged.changes;
                    let mut carry = built.carry;
                    carry.resolve_refs(&judged.refs);
                    dry_run.earlier.absorb(carry);
                    let after_seq = store.durable_seq();
                    let next_plan =
                        next.take().and_then(|plan| plan(&dry_run.earlier)).map(|built| Ahead { built, after_seq });
                    return Ok((TxOutcome::Planned(judged.changes), next_plan));
                }
                Err(rejection) => rejection,
            }
        } else {
            let committing = std::time::Instant::now();
            let before = store.durable_seq();
            let Built { request, warnings, carry, .. } = built;
            let pending = store.submit(request)?;
            // The writer commits this chunk while this thread plans the next one, from the
            // store as it was before this chunk (the previous chunk may still be being
            // applied) and this chunk's carry.
            let (mut waited_ms, mut next_planned_ms) = (0, 0);
            let next_plan = match next.take() {
                Some(plan) => {
                    let waiting = std::time::Instant::now();
                    store.wait_applied(before)?;
                    waited_ms = waiting.elapsed().as_millis() as u64;
                    let planning = std::time::Instant::now();
                    let next_plan = plan(&carry);
                    next_planned_ms = planning.elapsed().as_millis() as u64;
                    next_plan
                }
                None => None,
            };
            // Durable is enough to go on: the writer judges the next chunk against this one
            // while it is applied. Callers wait until reads show it before they return
            // (`Store::wait_readable`).
            let outcome = pending.wait_durable()?;
            tracing::debug!(
                first_row,
                last_row,
                planned_ms = planned_in.as_millis() as u64,
                waited_ms,
                next_planned_ms,
                committed_ms = committing.elapsed().as_millis() as u64,
                "chunk"
            );
            match outcome {
                Ok(committed) => {
                    warn(rows, &warnings);
                    let info = CommitInfo {
                        seq: committed.seq,
                        changes: committed.changes,
                        first_row,
                        last_row,
                        already_stored: committed.replayed,
                    };
                    report.changes += if committed.replayed { 0 } else { committed.changes };
                    if committed.changes > 0 || committed.replayed {
                        report.transactions.push(info.clone());
                    }
                    // The next plan saw the store before this transaction and this chunk's
                    // own plan: it holds if this transaction is the only one stored since.
                    let alone = match committed.changes {
                        0 => committed.seq == before,
                        _ => committed.seq == before + 1,
                    };
                    let next_ahead = next_plan.filter(|_| alone && !committed.replayed).map(|mut built| {
                        built.resolve_refs(&committed.refs);
                        Ahead { built, after_seq: committed.seq }
                    });
                    return Ok((TxOutcome::Stored(info), next_ahead));
                }
                // The same rows were stored under this key while this run planned them.
                Err(Rejection::IdempotencyKeyReused { seq, .. }) => {
                    let info = CommitInfo { seq, changes: 0, first_row, last_row, already_stored: true };
                    report.transactions.push(info.clone());
                    return Ok((TxOutcome::Stored(info), None));
                }
                Err(rejection) => rejection,
            }
        };
        let row = commit::refused_row(&change_rows, &rejection);
        let slot = row.and_then(|row| row_index.get(&row).copied());
        match (row, slot) {
            (Some(row), Some(slot)) if refusals < MAX_STORE_REFUSALS => {
                refusals += 1;
                // What is stored is no longer what the rows read as: a resubmission must
                // plan this chunk again, and may then store the refused row.
                key = None;
                if let Some(r) = rows.get_mut(slot) {
                    let refused = if options.dry_run { "the store would refuse" } else { "the store refused" };
                    r.error("", "", format!("{refused} this row: {rejection}"));
                }
                plans.retain(|p| p.row() != row);
            }
            _ => {
                let (refused, why) = match options.dry_run {
                    true => (
                        "the store would refuse",
                        "would not be stored: the transaction holding this row would be refused (see the file problems)",
                    ),
                    false => (
                        "the store refused",
                        "not stored: the transaction holding this row was refused (see the file problems)",
                    ),
                };
                report
                    .file_problems
                    .push(format!("{refused} the transaction of rows {first_row} to {last_row}: {rejection}"));
                // Nothing of it was written: none of its rows may read as stored.
                for r in rows.iter_mut().filter(|r| !r.is_rejected()) {
                    r.error("", "", why);
                }
                return Ok((TxOutcome::Refused, None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(changes: usize, already_stored: bool) -> TxOutcome {
        TxOutcome::Stored(CommitInfo { seq: 1, changes, first_row: 1, last_row: 2, already_stored })
    }

    fn status(outcomes: &[TxOutcome], dry_run: bool) -> Status {
        let profile = Profile::builtin("safeguarding").unwrap();
        let options = Options { dry_run, actor: "test", ..Options::new("f.csv", Format::Csv, "305", &profile) };
        let mut run = Run::default();
        for outcome in outcomes {
            run.record(outcome, !matches!(outcome, TxOutcome::Nothing));
        }
        run.status(&options)
    }

    #[test]
    fn a_run_is_judged_by_all_its_transactions() {
        assert_eq!(status(&[stored(5, false), stored(0, true)], false), Status::Committed);
        assert_eq!(status(&[stored(0, true), stored(0, true)], false), Status::Unchanged);
        assert_eq!(status(&[stored(0, false)], false), Status::Unchanged);
        assert_eq!(status(&[TxOutcome::Nothing], false), Status::NothingAccepted);
        assert_eq!(status(&[TxOutcome::Refused], false), Status::Rejected);
        assert_eq!(status(&[stored(5, false), TxOutcome::Refused], false), Status::Incomplete);
        assert_eq!(status(&[stored(0, true), TxOutcome::Refused], false), Status::Incomplete);
        assert_eq!(status(&[TxOutcome::Planned(3)], true), Status::DryRun);
    }
}
