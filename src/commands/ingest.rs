//! `pole-ods ingest FILE --format csv|pipe|xlsx|xml|hl7 --council CODE [--profile NAME|FILE]
//! [--sheet NAME|N] [--dry-run] [--chunk-rows N] [--report-csv FILE]`: reads a council's
//! submission, commits its accepted rows (one transaction per chunk of rows; one for most
//! files) and prints the submission report (JSON with `--json`). CSV and pipe-delimited
//! files are streamed, in bounded memory whatever their size. `xlsx` reads any spreadsheet calamine recognises (xlsx, xls, ods), one sheet;
//! `xml` reads the safeguarding data set or the POLE submission format, told apart by the
//! root element. For `hl7`
//! every message is its own transaction, one report row a message, and `--council` is
//! optional: without it each message's sending facility (MSH-4) is its source.
//!
//! Exit status: 0 when the file was read and its accepted rows committed (or, with
//! `--dry-run`, validated), even if some rows were rejected: they are listed in the report
//! and the rest is stored, as the proof of concept did. 1 when nothing could be stored (the
//! header is unusable, every row was rejected, or the store refused the transaction) or
//! the run stopped part way (a chunk refused, the file unreadable to its end), 2 for
//! a bad command line (unknown format or profile, no council for a format that needs one).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use pole_ingest::{Format, IngestError, Options, Profile, Status};
use pole_model::Operation;

use crate::config::Config;
use crate::output::{print_json, progress};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The file to ingest
    pub file: PathBuf,
    /// csv, pipe (pipe-delimited text), xlsx (also xls and ods), xml (safeguarding data set or
    /// POLE submission) or hl7
    #[arg(long, value_name = "FORMAT")]
    pub format: String,
    /// The submitting council's code, e.g. 305: it namespaces the file's local identifiers.
    /// Required except for hl7, where each message's sending facility (MSH-4) stands in
    #[arg(long, value_name = "CODE")]
    pub council: Option<String>,
    /// A built-in profile (safeguarding, council-305, services) or a profile file (.toml); default
    /// safeguarding. Not for hl7, whose mapping is fixed by the ADT events
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// For a spreadsheet, the sheet to read: its name, or its position (1 is the first);
    /// default the first sheet
    #[arg(long, value_name = "NAME|N")]
    pub sheet: Option<String>,
    /// Validate and report without writing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the report's CSV form (one line per problem) to this file
    #[arg(long, value_name = "FILE")]
    pub report_csv: Option<PathBuf>,
    /// The rows one transaction holds at most: a larger file is committed a chunk at a time,
    /// and a run that stops part way resumes after its last stored chunk when resubmitted
    #[arg(long, value_name = "N", default_value_t = pole_ingest::DEFAULT_CHUNK_ROWS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub chunk_rows: usize,
}

pub fn run(config: &Config, args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let format: Format = match args.format.parse() {
        Ok(format) => format,
        Err(e) => return usage(e),
    };
    if args.sheet.is_some() && format != Format::Xlsx {
        eprintln!("error: --sheet applies to spreadsheets (--format xlsx) only");
        return Ok(ExitCode::from(2));
    }
    if format == Format::Hl7 && args.profile.is_some() {
        eprintln!("error: --profile does not apply to hl7: ADT messages map the same way for every sender");
        return Ok(ExitCode::from(2));
    }
    // Only HL7 carries its source in the data (MSH-4); everything else needs the council.
    let council = match (&args.council, format) {
        (Some(code), _) => code.as_str(),
        (None, Format::Hl7) => "",
        (None, _) => {
            eprintln!("error: --council CODE is required for {}", format.as_str());
            return Ok(ExitCode::from(2));
        }
    };
    let profile = match Profile::load(args.profile.as_deref().unwrap_or("safeguarding")) {
        Ok(profile) => profile,
        Err(e) => return usage(e),
    };
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    let file_name =
        args.file.file_name().map_or_else(|| args.file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let store = super::open_store(config)?;
    let options = Options {
        file_name: &file_name,
        format,
        council,
        profile: &profile,
        dry_run: args.dry_run,
        today: None,
        sheet: args.sheet.as_deref(),
        actor: "pole-ods ingest",
        // With a council, a council's submission (no merges); without one (HL7 only), the
        // sending facility's feed, which merges its own patients' records (A40).
        role: if council.is_empty() { "system" } else { "council" },
        operations: if council.is_empty() { &Operation::ALL } else { &pole_model::Operation::COUNCIL },
        chunk_rows: args.chunk_rows,
    };
    let bar = progress(size, "ingesting", config.json);
    let result = pole_ingest::ingest_file(&store, &args.file, &options, &|done| bar.set_position(done.min(size)));
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(e @ (IngestError::BadCouncil(_) | IngestError::Profile { .. })) => {
            store.close()?;
            return usage(e);
        }
        Err(e) => {
            store.close()?;
            return Err(e.into());
        }
    };
    store.close()?;
    if !args.dry_run {
        let operation = format!("pole-ods ingest {file_name} --format {}", format.as_str());
        crate::access::trace_cli(config, pole_store::AccessAction::Write, &operation, Vec::new())?;
    }
    if let Some(path) = &args.report_csv {
        std::fs::write(path, report.to_csv()).with_context(|| format!("writing {}", path.display()))?;
    }
    if config.json {
        print_json(&report)?;
    } else {
        print!("{}", report.to_text());
    }
    Ok(match report.status {
        Status::Committed | Status::Unchanged | Status::DryRun => ExitCode::SUCCESS,
        Status::NothingAccepted | Status::Rejected | Status::Incomplete => ExitCode::FAILURE,
    })
}

fn usage(e: IngestError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e}");
    Ok(ExitCode::from(2))
}
