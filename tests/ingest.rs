//! End-to-end tests of `pole-ods ingest`: the real binary on the example files under
//! `examples/ingest/`, checking the reports, the exit statuses and the store (`stats`,
//! `verify`): a re-ingest adds nothing, a corrected file adds only its deltas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, pole};

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
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[4]["outcome"], "rejected");
    assert_eq!(rows[4]["issues"][0]["column"], "Date Referral Initiated");
    assert_eq!(rows[3]["issues"][0]["column"], "Client NHS Number");
    assert_eq!(report["per_column"]["Client Gender"]["errors"], 1);
    let first = stats(&data);
    assert_eq!(first["transactions"], 1);
    assert_eq!(first["changes"], report["transaction"]["changes"]);

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

    // Formats not built yet, and bad options, are usage errors.
    let path = example("empty.csv");
    for (format, council) in [("xlsx", "305"), ("xml", "305"), ("json", "305"), ("csv", "30:5"), ("hl7", "30:5")] {
        let out = pole(&data, &["ingest", path.to_str().unwrap(), "--format", format, "--council", council]);
        assert_eq!(out.status.code(), Some(2), "{format} {council}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let out =
        pole(&data, &["ingest", path.to_str().unwrap(), "--format", "csv", "--council", "305", "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(2));

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
