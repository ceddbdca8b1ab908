//! End-to-end tests of `pole-ods ingest`: the real binary on the example files under
//! `examples/ingest/`, checking the reports, the exit statuses and the store (`stats`,
//! `verify`): a re-ingest adds nothing, a corrected file adds only its deltas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, pole, report_row};

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ingest").join(name)
}

fn ingest(data: &Path, file: &str, format: &str, extra: &[&str]) -> (Output, Value) {
    let path = example(file);
    let mut args = vec!["--json", "ingest", path.to_str().unwrap(), "--format", format, "--council", "305"];
    args.extend_from_slice(extra);
    let output = pole(data, &args);
    let report = json(&output);
    (output, report)
}

fn stats(data: &Path) -> Value {
    let output = pole(data, &["--json", "stats"]);
    assert!(output.status.success());
    json(&output)
}

#[test]
fn ingest_reingest_and_correct() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");

    let (out, report) = ingest(&data, "safeguarding-identifiable.csv", "csv", &[]);
    assert!(out.status.success(), "rows rejected alongside accepted ones still commit: {report}");
    assert_eq!(report["status"], "committed");
    assert_eq!(
        (report["accepted"].as_u64(), report["warnings"].as_u64(), report["rejected"].as_u64()),
        (Some(3), Some(1), Some(3))
    );
    assert_eq!(report["rows_read"], 7);
    assert_eq!(report["rows"].as_array().unwrap().len(), 4, "the rows with findings: {report}");
    assert_eq!(report_row(&report, 5)["outcome"], "rejected");
    assert_eq!(report_row(&report, 5)["issues"][0]["column"], "Date Referral Initiated");
    assert_eq!(report_row(&report, 4)["issues"][0]["column"], "Client NHS Number");
    assert_eq!(report["per_column"]["Client Gender"]["errors"], 1);
    let first = stats(&data);
    assert_eq!(first["transactions"], 1);
    assert_eq!(first["changes"], report["transactions"][0]["changes"]);

    // The same file again: nothing new in the journal.
    let (out, again) = ingest(&data, "safeguarding-identifiable.csv", "csv", &[]);
    assert!(out.status.success());
    assert_eq!(again["status"], "unchanged");
    assert_eq!(stats(&data), first);

    // The corrected file: one transaction of exactly the differing deltas.
    let (out, corrected) = ingest(&data, "safeguarding-identifiable-corrected.csv", "csv", &[]);
    assert!(out.status.success());
    assert_eq!(corrected["status"], "committed");
    assert_eq!(corrected["rejected"], 1);
    let second = stats(&data);
    assert_eq!(second["transactions"], 2);
    let added = second["changes"].as_u64().unwrap() - first["changes"].as_u64().unwrap();
    // One type-of-risk correction, and two rows now accepted: a person, concern (with its
    // outcome update) and allegation with their links each, and one home address.
    assert_eq!(added, 15, "{corrected}");
    let (_, third) = ingest(&data, "safeguarding-identifiable-corrected.csv", "csv", &[]);
    assert_eq!(third["status"], "unchanged");
    assert_eq!(stats(&data), second);

    let verify = pole(&data, &["--json", "verify"]);
    assert_eq!(json(&verify)["ok"], true);
}

#[test]
fn messy_files_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");

    // Pipe-delimited, UTF-8 with a byte-order mark, CRLF.
    let (out, poc) = ingest(&data, "safeguarding-poc.txt", "pipe", &[]);
    assert!(out.status.success(), "{poc}");
    assert_eq!(poc["byte_order_mark"], true);
    assert_eq!(poc["rejected"], 0);
    assert_eq!(poc["warnings"], 1, "the unmapped local code is kept and reported");

    // Windows-1252 with the council's own column names and codes.
    let (out, local) = ingest(&data, "council-305-export.csv", "csv", &["--profile", "council-305"]);
    assert!(out.status.success(), "{local}");
    assert_eq!(local["encoding"], "windows-1252");
    assert_eq!(local["accepted"], 4);

    // A profile file given by path works the same as the built-in name.
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/adult-social-care/profiles/council-305.toml");
    let (out, by_path) =
        ingest(&data, "council-305-export.csv", "csv", &["--profile", profile.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success());
    assert_eq!(by_path["status"], "dry_run");
    let before = stats(&data);

    // Files that store nothing exit 1 and say why; nothing is written.
    let (out, missing) = ingest(&data, "missing-column.csv", "csv", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(missing["file_problems"][0].as_str().unwrap().contains("Date Referral Initiated"));
    let (out, empty) = ingest(&data, "empty.csv", "csv", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(empty["status"], "rejected");
    let (out, header_only) = ingest(&data, "header-only.txt", "pipe", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(header_only["rows_read"], 0);
    assert_eq!(stats(&data), before);

    // Unknown formats and bad options are usage errors.
    let path = example("empty.csv");
    for (format, council) in [("json", "305"), ("csv", "30:5"), ("hl7", "30:5"), ("xlsx", "30:5")] {
        let out = pole(&data, &["ingest", path.to_str().unwrap(), "--format", format, "--council", council]);
        assert_eq!(out.status.code(), Some(2), "{format} {council}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let out =
        pole(&data, &["ingest", path.to_str().unwrap(), "--format", "csv", "--council", "305", "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = pole(&data, &["ingest", path.to_str().unwrap(), "--format", "csv", "--council", "305", "--sheet", "1"]);
    assert_eq!(out.status.code(), Some(2), "--sheet is for spreadsheets");

    // The text report names the rows and the policy.
    let text = pole(
        &data,
        &[
            "ingest",
            example("safeguarding-identifiable.csv").to_str().unwrap(),
            "--format",
            "csv",
            "--council",
            "305",
            "--dry-run",
        ],
    );
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("dry run"), "{text}");
    assert!(text.contains("Client Gender"), "{text}");
    assert!(text.contains("not stored"), "{text}");
}

/// Ingests a file given by path (a generated fixture), like [`ingest`].
fn ingest_path(data: &Path, path: &Path, format: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["--json", "ingest", path.to_str().unwrap(), "--format", format, "--council", "305"];
    args.extend_from_slice(extra);
    let output = pole(data, &args);
    let report = json(&output);
    (output, report)
}

/// The keys of a JSON object, to compare report shapes across formats.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// A workbook as a council's spreadsheet export: a notes sheet first, the data on a sheet
/// called "Allegations" whose header is on row 3 (rows 1 and 2 empty), dates as date cells,
/// numbers as numbers, a boolean, a blank row 6, and a `#N/A` formula result in C7.
fn safeguarding_workbook(path: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let mut book = Workbook::new();
    let notes = book.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "Exported from the case-management system").unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Allegations").unwrap();
    let header = [
        "Local Authority Identifier",
        "Council Client Identifier",
        "Type of Risk",
        "Date Referral Initiated",
        "Client Date of Birth",
        "Council Safeguarding Referral Identifier",
        "Client Age at Start of Referral",
        "Client NHS Number",
        "Known to Council",
    ];
    for (col, name) in header.iter().enumerate() {
        sheet.write_string(2, col as u16, *name).unwrap();
    }
    let date_format = Format::new().set_num_format("dd/mm/yyyy");
    let date = |y, m, d| ExcelDateTime::from_ymd(y, m, d).unwrap();
    let rows: [(u32, &str, &str, &str); 3] = [
        (3, "C-70001", "Physical", "SG-70001"),
        (4, "C-70001", "Financial", "SG-70001"),
        (6, "C-70002", "", "SG-70002"),
    ];
    for (row, client, risk, referral) in rows {
        sheet.write_number(row, 0, 305).unwrap();
        sheet.write_string(row, 1, client).unwrap();
        if risk.is_empty() {
            sheet.write_formula(row, 2, Formula::new("=NA()").set_result("#N/A")).unwrap();
        } else {
            sheet.write_string(row, 2, risk).unwrap();
        }
        sheet.write_datetime_with_format(row, 3, date(2013, 7, 12), &date_format).unwrap();
        sheet.write_datetime_with_format(row, 4, date(1931, 7, 4), &date_format).unwrap();
        sheet.write_string(row, 5, referral).unwrap();
        sheet.write_number(row, 6, 82.0).unwrap();
        sheet.write_number(row, 7, 9_434_765_919.0).unwrap();
        sheet.write_boolean(row, 8, true).unwrap();
    }
    book.save(path).unwrap();
}

#[test]
fn spreadsheets_by_sheet_name_or_position() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let book = dir.path().join("export.xlsx");
    safeguarding_workbook(&book);

    // A dry run first: nothing written.
    let (out, dry) = ingest_path(&data, &book, "xlsx", &["--sheet", "2", "--dry-run"]);
    assert!(out.status.success(), "{dry}");
    assert_eq!(dry["status"], "dry_run");

    let (out, report) = ingest_path(&data, &book, "xlsx", &["--sheet", "Allegations"]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["status"], "committed");
    assert_eq!(report["format"], "xlsx");
    assert_eq!(report["rows_read"], 3, "the blank row 6 is not a row: {report}");
    assert_eq!(report["accepted"], 2, "dates, whole numbers and booleans read as text: {report}");
    // Rows carry the spreadsheet's own row numbers.
    let rejected = report_row(&report, 3);
    assert_eq!(rejected["line"], 7);
    assert_eq!(rejected["outcome"], "rejected");
    let issue = &rejected["issues"][0];
    assert_eq!(issue["column"], "Type of Risk");
    assert_eq!(issue["value"], "#N/A");
    assert!(issue["reason"].as_str().unwrap().contains("cell C7"), "{issue}");
    let first = stats(&data);
    assert_eq!(first["transactions"], 1);

    // The same report shape as a CSV's.
    let (_, csv) = ingest(&data, "safeguarding-identifiable.csv", "csv", &["--dry-run"]);
    assert_eq!(keys(&dry), keys(&csv), "dry runs of both");
    assert_eq!(keys(rejected), keys(report_row(&csv, 5)));

    // Resubmitting, by position this time, changes nothing.
    let (out, again) = ingest_path(&data, &book, "xlsx", &["--sheet", "2"]);
    assert!(out.status.success(), "{again}");
    assert_eq!(again["status"], "unchanged");
    assert_eq!(stats(&data), first);

    // The first sheet by default: it has no such columns.
    let (out, notes) = ingest_path(&data, &book, "xlsx", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(notes["file_problems"][0].as_str().unwrap().contains("required column missing"), "{notes}");

    // An unknown sheet, a corrupt file, a CSV given as a spreadsheet: rejected, nothing written.
    let (out, unknown) = ingest_path(&data, &book, "xlsx", &["--sheet", "Referrals"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(unknown["status"], "rejected");
    let problem = unknown["file_problems"][0].as_str().unwrap();
    assert!(problem.contains("no sheet named \"Referrals\"") && problem.contains("\"Allegations\""), "{problem}");
    let (out, beyond) = ingest_path(&data, &book, "xlsx", &["--sheet", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(beyond["file_problems"][0].as_str().unwrap().contains("no sheet 9"));
    let corrupt = dir.path().join("corrupt.xlsx");
    let mut bytes = std::fs::read(&book).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    for path in [corrupt.as_path(), example("safeguarding-identifiable.csv").as_path()] {
        let (out, bad) = ingest_path(&data, path, "xlsx", &[]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert_eq!(bad["status"], "rejected");
        assert!(bad["file_problems"][0].as_str().unwrap().contains("not a spreadsheet"), "{bad}");
    }
    assert_eq!(stats(&data), first);
}

#[test]
fn safeguarding_data_set_as_xml() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let (out, report) = ingest(&data, "safeguarding.xml", "xml", &[]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["status"], "committed");
    assert_eq!(report["profile"], "safeguarding");
    assert_eq!(report["rows_read"], 4);
    // Each row's line is its <allegation> start tag.
    let rejected = report_row(&report, 4);
    assert_eq!(rejected["line"], 54);
    assert_eq!(rejected["outcome"], "rejected");
    assert_eq!(rejected["issues"][0]["column"], "client_gender", "the submitter's element name: {report}");
    let read_as: Vec<&Value> = report["columns"].as_array().unwrap().iter().map(|c| &c["read_as"]).collect();
    assert!(read_as.iter().all(|r| r.is_string()), "every element maps to a profile column: {report}");
    let first = stats(&data);

    let (out, again) = ingest(&data, "safeguarding.xml", "xml", &[]);
    assert!(out.status.success());
    assert_eq!(again["status"], "unchanged");
    assert_eq!(stats(&data), first);

    // The shape is checked with the element path and line.
    let nested = dir.path().join("nested.xml");
    std::fs::write(
        &nested,
        "<safeguarding>\n <allegation>\n  <type_of_risk><code>PHYSICAL</code></type_of_risk>\n </allegation>\n</safeguarding>\n",
    )
    .unwrap();
    let (out, bad) = ingest_path(&data, &nested, "xml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let problem = bad["file_problems"][0].as_str().unwrap();
    assert!(problem.starts_with("line 3: /safeguarding/allegation/type_of_risk/code"), "{problem}");
    assert_eq!(stats(&data), first);
}

#[test]
fn pole_submissions_in_xml() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");

    let (out, dry) = ingest(&data, "pole-submission.xml", "xml", &["--dry-run"]);
    assert!(out.status.success(), "{dry}");
    assert_eq!(dry["status"], "dry_run");
    assert_eq!(stats(&data)["transactions"], 0);

    let (out, report) = ingest(&data, "pole-submission.xml", "xml", &[]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["status"], "committed");
    assert_eq!(report["profile"], "pole-submission");
    assert_eq!((report["accepted"].as_u64(), report["rejected"].as_u64()), (Some(7), Some(0)), "{report}");
    let first = stats(&data);
    assert_eq!(first["transactions"], 1);
    assert_eq!(first["entities"], 4);

    // Found again by identifier: nothing changes.
    let (out, again) = ingest(&data, "pole-submission.xml", "xml", &[]);
    assert!(out.status.success(), "{again}");
    assert_eq!(again["status"], "unchanged");
    assert_eq!(stats(&data), first);

    // A wrong value type and an unknown attribute reject their entity, naming the element
    // path and line, and the link to it; the rest is stored.
    let (out, bad) = ingest(&data, "pole-submission-bad.xml", "xml", &[]);
    assert!(out.status.success(), "{bad}");
    assert_eq!((bad["accepted"].as_u64(), bad["rejected"].as_u64()), (Some(1), Some(2)), "{bad}");
    let issues = report_row(&bad, 2)["issues"].as_array().unwrap();
    assert_eq!(issues[0]["column"], "/submission/entity[2]/attribute[@name='weekly_cost']");
    assert!(issues[0]["reason"].as_str().unwrap().contains("not a decimal"), "{bad}");
    assert_eq!(issues[1]["column"], "/submission/entity[2]/attribute[@name='colour']");
    assert!(report_row(&bad, 3)["issues"][0]["reason"].as_str().unwrap().contains("rejected (row 2)"), "{bad}");
    let second = stats(&data);
    assert_eq!(second["transactions"], 2);

    // Not well-formed, truncated, or with a DOCTYPE: rejected whole with the line.
    let (out, truncated) = ingest(&data, "truncated.xml", "xml", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(truncated["status"], "rejected");
    assert!(truncated["file_problems"][0].as_str().unwrap().contains("truncated"), "{truncated}");
    let mismatched = dir.path().join("mismatched.xml");
    std::fs::write(&mismatched, "<submission>\n<entity ref=\"a\" type=\"person\">\n</link>\n</submission>\n").unwrap();
    let (out, bad) = ingest_path(&data, &mismatched, "xml", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(bad["file_problems"][0].as_str().unwrap().starts_with("line 3:"), "{bad}");
    let laughs = dir.path().join("laughs.xml");
    std::fs::write(
        &laughs,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE submission [\n <!ENTITY a \"aaaaaaaaaa\">\n <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n]>\n<submission>&b;</submission>\n",
    )
    .unwrap();
    let (out, refused) = ingest_path(&data, &laughs, "xml", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(refused["file_problems"][0].as_str().unwrap().contains("DOCTYPE is refused"), "{refused}");
    assert_eq!(stats(&data), second);
    let verify = pole(&data, &["--json", "verify"]);
    assert_eq!(json(&verify)["ok"], true);
}

/// A generated safeguarding file of `clients` clients, two allegations each, without NHS
/// numbers, from the example's first row.
fn generated_file(path: &Path, clients: usize) {
    let example = std::fs::read_to_string(example("safeguarding-identifiable.csv")).unwrap();
    let mut lines = example.lines();
    let header = lines.next().unwrap();
    let template = lines.next().unwrap();
    let mut out = format!("{header}\n");
    for client in 0..clients {
        for day in ["2013-07-01", "2013-07-08"] {
            let row = template
                .replace("C-40113", &format!("C-{client}"))
                .replace("SG-2013-0141", &format!("SG-{client}"))
                .replace("943 476 5919", "")
                .replace("2013-07-01", day);
            out.push_str(&row);
            out.push('\n');
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_large_file_is_streamed_in_chunks_and_a_resubmission_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let file = dir.path().join("large.csv");
    generated_file(&file, 1_500);

    let (out, report) = ingest_path(&data, &file, "csv", &["--chunk-rows", "400"]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["status"], "committed");
    assert_eq!(report["rows_read"], 3_000);
    let transactions = report["transactions"].as_array().unwrap();
    assert_eq!(transactions.len(), 8, "3,000 rows in chunks of 400");
    assert_eq!(
        (transactions[7]["first_row"].as_u64(), transactions[7]["last_row"].as_u64()),
        (Some(2_801), Some(3_000))
    );
    assert_eq!(stats(&data)["transactions"], 8);

    // Again: every chunk is recognised and skipped; the journal does not grow.
    let (out, again) = ingest_path(&data, &file, "csv", &["--chunk-rows", "400"]);
    assert!(out.status.success(), "{again}");
    assert_eq!(again["status"], "unchanged");
    assert!(again["transactions"].as_array().unwrap().iter().all(|t| t["already_stored"] == true), "{again}");
    assert_eq!(stats(&data)["transactions"], 8);

    // An option out of range is a usage error.
    let out =
        pole(&data, &["ingest", file.to_str().unwrap(), "--format", "csv", "--council", "305", "--chunk-rows", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = pole(&data, &["verify"]);
    assert!(out.status.success());
}
