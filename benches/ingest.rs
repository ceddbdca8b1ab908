#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end ingest throughput through the file path (parse, map, validate, commit), on
//! generated files: the CSV safeguarding data set with identifiable columns, and HL7 v2 ADT
//! messages. A harness, not criterion: each run is long and the figure is rows (or
//! messages) per second over the whole run, with the peak resident memory.
//!
//! ```sh
//! cargo bench --bench ingest -- [--rows N] [--file-rows N] [--chunk-rows N] [--format csv|hl7|both] [--backend redb|sled] [--dry-run] [--keep-files DIR]
//! ```
//!
//! `--rows` are written to disk as files of `--file-rows` rows (default: one file) and
//! ingested one after another into the same store through `pole_ingest::ingest_file`, the
//! command line's path: CSV streamed and committed a chunk of `--chunk-rows` rows at a time
//! (default `pole_ingest::DEFAULT_CHUNK_ROWS`), HL7 one transaction a message. Prints one
//! JSON document; BENCHMARKS.md has the figures and the machine. `--dry-run` reads, maps,
//! validates and plans every chunk without writing (a file far larger than the disk
//! could hold as a store still shows the streaming path's memory). `--keep-files DIR` writes
//! the generated files into DIR and leaves them there, to ingest again with the binary
//! (under `perf`, or with debug logs).

use std::fmt::Write as _;
use std::time::Instant;

use pole_ingest::{Format, Options, Profile};
use pole_model::nhs_check_digit;
use pole_store::{BackendKind, Store, StoreOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The product's allocator (`src/main.rs`), so ingest is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HEADER: &str = "Local Authority Identifier,Council Client Identifier,Client NHS Number,Client Date of Birth,Client Postcode,Council Safeguarding Referral Identifier,CQC Safeguarding Referral Identifier,Known to Council,Client Gender,Client Age at Start of Referral,Primary Client Group,Client Ethnicity,Date Referral Initiated,Consent to Investigation,Repeat Referral,Date Incident Occurred,Type of Risk,Risk Reported by,Source of Risk,Location of Risk,CQC Provider Identifier,CQC Location Identifier,CQC Location Postcode,Action and Result,Conclusion,Conclusion Date,Lacking Capacity,Advocate Support,Desired Outcome Expressed,Desired Outcome Achieved,Client Involvement in Safeguarding Meetings,Client Involvement in Decision Making,Serious Case Review,Serious Case Review Reason";

/// A valid NHS number for `n` (Modulus 11), a different one for each `n` below 25 million:
/// numbers `20n` on, skipping those without a check digit (never twenty in a row). Taking
/// `n` itself gave about one patient in eleven the next patient's number, so the files
/// linked different people as one.
fn nhs_number(n: u64) -> String {
    let mut n = n * 20;
    loop {
        let digits = format!("{:09}", 400_000_000 + n % 500_000_000);
        let nine: [u8; 9] = digits.as_bytes().iter().map(|b| b - b'0').collect::<Vec<_>>().try_into().unwrap();
        if let Some(check) = nhs_check_digit(&nine) {
            return format!("{digits}{check}");
        }
        n += 1;
    }
}

/// Rows `first..first + count` of a safeguarding submission: a client per three rows, a
/// referral per client, up to three allegations each.
fn csv_file(first: u64, count: u64, rng: &mut ChaCha8Rng) -> Vec<u8> {
    const RISK: [&str; 4] = ["Physical", "Financial", "Neglect", "Psychological"];
    const SOURCE: [&str; 3] = ["KNOWN_FAMILY", "KNOWN_OTHER", "UNKNOWN"];
    const LOCATION: [&str; 3] = ["OWN_HOME", "CARE_HOME", "COMMUNITY"];
    let mut out = String::with_capacity(count as usize * 260);
    out.push_str(HEADER);
    out.push('\n');
    for row in first..first + count {
        let client = row / 3;
        let day = 1 + (row % 28);
        let (birth_day, birth_year) = (1 + client % 28, 1930 + client % 60);
        // Age at the referral, consistent with the date of birth (the profile checks it).
        let age = 2023 - birth_year - u64::from(day < birth_day);
        let _ = writeln!(
            out,
            "305,C-{client},{nhs},{dob:02}/0{month}/19{year},LS1 {n}AB,SG-{client},,Y,{gender},{age},PHYS,A,2023-0{month}-{day:02},Y,N,2023-0{month}-{day:02},{risk},Health staff,{source},{location},,,,\"Carers increased, daily visits\",SUBSTANTIATED,2023-09-30,N,N,Y,Fully achieved,,,N,",
            nhs = nhs_number(client),
            dob = birth_day,
            month = 1 + client % 8,
            year = birth_year - 1900,
            n = client % 10,
            gender = if client % 2 == 0 { "F" } else { "M" },
            age = age,
            risk = RISK[rng.gen_range(0..RISK.len())],
            source = SOURCE[rng.gen_range(0..SOURCE.len())],
            location = LOCATION[rng.gen_range(0..LOCATION.len())],
        );
    }
    out.into_bytes()
}

/// `count` ADT messages from `first`: registrations (A28) and admissions (A01) of patients
/// with NHS numbers, `\r`-terminated segments, one message after another.
fn hl7_file(first: u64, count: u64) -> Vec<u8> {
    let mut out = String::with_capacity(count as usize * 300);
    for n in first..first + count {
        let patient = n / 2;
        let (event, structure) = if n % 2 == 0 { ("A28", "ADT_A05") } else { ("A01", "ADT_A01") };
        let _ = write!(
            out,
            "MSH|^~\\&|PAS|RR8|POLE|LEEDS|20240710091500||ADT^{event}^{structure}|RR8-{n}|P|2.4\r\
             EVN|{event}|20240710091500\r\
             PID|1||{nhs}^^^NHS^NH~K{patient}^^^RR8^MR||Smith{patient}^Margaret^^^Mrs^^L||19400312|F|||12 Acacia Avenue^^Leeds^^LS1 4AB^GBR^H\r\
             PV1|1|I|WARD1^^^RR8||||||||||||||||V{n}\r",
            nhs = nhs_number(patient),
        );
    }
    out.into_bytes()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Writes rows `first..first + count` to `path`, a block at a time (the harness's own
/// memory stays small, so the peak it reports is the ingest's).
fn write_file(path: &std::path::Path, format: Format, first: u64, count: u64, rng: &mut ChaCha8Rng) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut at = first;
    while at < first + count {
        let block = 10_000.min(first + count - at);
        let bytes = match format {
            Format::Hl7 => hl7_file(at, block),
            _ => {
                let bytes = csv_file(at, block, rng);
                // Every block but the first without its header row.
                let skip = if at == first { 0 } else { bytes.iter().position(|&b| b == b'\n').unwrap() + 1 };
                bytes[skip..].to_vec()
            }
        };
        file.write_all(&bytes).unwrap();
        at += block;
    }
    file.flush().unwrap();
}

/// What one harness run is asked to do.
struct Plan {
    format: Format,
    rows: u64,
    file_rows: u64,
    chunk_rows: usize,
    backend: BackendKind,
    dry_run: bool,
    keep_files: Option<std::path::PathBuf>,
}

fn run(plan: &Plan) -> serde_json::Value {
    let Plan { format, rows, file_rows, chunk_rows, backend, dry_run, ref keep_files } = *plan;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), StoreOptions { backend, ..Default::default() }).unwrap();
    let profile = Profile::builtin("safeguarding").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut elapsed, mut accepted, mut warnings, mut rejected, mut changes, mut bytes) = (0.0, 0, 0, 0, 0, 0);
    let mut first = 0;
    while first < rows {
        let count = file_rows.min(rows - first);
        let name = format!("bench-{first}.{}", format.as_str());
        let path = keep_files.as_deref().unwrap_or(dir.path()).join(&name);
        // Generation is outside the timed part: only the file path is measured.
        write_file(&path, format, first, count, &mut rng);
        bytes += std::fs::metadata(&path).unwrap().len();
        let options = Options { dry_run, actor: "bench", chunk_rows, ..Options::new(&name, format, "305", &profile) };
        let started = Instant::now();
        let report = pole_ingest::ingest_file(&store, &path, &options, &|_| {}).unwrap();
        elapsed += started.elapsed().as_secs_f64();
        assert!(report.file_problems.is_empty(), "{:?}", report.file_problems);
        // Every generated row is valid: a rejected one is a defect, and a store refusal
        // would also make the chunk's transaction be prepared again, so the figure would
        // measure retries (as it did for a while: BENCHMARKS.md, log).
        if report.rejected > 0 {
            let listed: Vec<String> =
                report.rows.iter().filter(|r| r.is_rejected()).take(3).map(|r| format!("{r:?}")).collect();
            panic!("{} generated rows were rejected, for example: {listed:?}", report.rejected);
        }
        accepted += report.accepted;
        warnings += report.warnings;
        rejected += report.rejected;
        changes += report.changes;
        if keep_files.is_none() {
            std::fs::remove_file(&path).unwrap();
        }
        first += count;
    }
    let stats = store.stats().unwrap();
    store.close().unwrap();
    serde_json::json!({
        "format": format.as_str(),
        "backend": format!("{backend:?}").to_lowercase(),
        "rows": rows,
        "file_rows": file_rows,
        "chunk_rows": chunk_rows,
        "dry_run": dry_run,
        "file_mib": bytes as f64 / (1024.0 * 1024.0),
        "accepted": accepted,
        "accepted_with_warnings": warnings,
        "rejected": rejected,
        "changes": changes,
        "transactions": stats.transactions,
        "seconds": elapsed,
        "rows_per_second": rows as f64 / elapsed,
        "changes_per_second": changes as f64 / elapsed,
        "peak_rss_mib": peak_rss_mib(),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = arg(&args, "--rows").map_or(100_000, |v| v.parse().unwrap());
    let file_rows: u64 = arg(&args, "--file-rows").map_or(rows, |v| v.parse().unwrap());
    let chunk_rows: usize = arg(&args, "--chunk-rows").map_or(pole_ingest::DEFAULT_CHUNK_ROWS, |v| v.parse().unwrap());
    let backend = match arg(&args, "--backend").as_deref() {
        Some("sled") => BackendKind::Sled,
        _ => BackendKind::Redb,
    };
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let keep_files = arg(&args, "--keep-files").map(std::path::PathBuf::from);
    let formats = match arg(&args, "--format").as_deref() {
        Some("csv") => vec![Format::Csv],
        Some("hl7") => vec![Format::Hl7],
        _ => vec![Format::Csv, Format::Hl7],
    };
    let results: Vec<_> = formats
        .into_iter()
        .map(|format| {
            run(&Plan { format, rows, file_rows, chunk_rows, backend, dry_run, keep_files: keep_files.clone() })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
}
