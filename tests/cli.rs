//! End-to-end tests of the command line: the real binary on a real data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json_ok as json, pole};

use std::path::Path;

use serde_json::Value;

fn load_demo(data: &Path) -> Value {
    json(&pole(data, &["--json", "demo", "--changes", "3000", "--seed", "11"]))
}

#[test]
fn demo_loads_and_tours_and_everything_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let demo = load_demo(&data);
    assert_eq!(demo["load"]["loaded"], true);
    let changes = demo["stats"]["changes"].as_u64().unwrap();
    assert!(changes >= 2_500, "{demo}");
    assert!(demo["stats"]["entities"].as_u64().unwrap() > 100);
    let tour = &demo["tour"];
    assert_eq!(tour["person"]["entity"]["kind"], "person", "{tour}");
    assert!(tour["history"].as_array().unwrap().len() >= 2, "the toured concern has several versions");
    assert!(tour["earlier"]["entity"]["version"].as_u64().unwrap() < tour["history"].as_array().unwrap().len() as u64);

    let stats = json(&pole(&data, &["--json", "stats"]));
    assert_eq!(stats["digest"], demo["digest"]);
    assert_eq!(stats["changes"].as_u64().unwrap(), changes);

    let verify = json(&pole(&data, &["--json", "verify"]));
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["journal"]["transactions"], stats["transactions"]);

    let replay = json(&pole(&data, &["--json", "replay"]));
    assert_eq!(replay["equal"], true);
    let rebuild = json(&pole(&data, &["--json", "replay", "--rebuild"]));
    assert_eq!(rebuild["equal"], true);
    assert_eq!(rebuild["digest"], stats["digest"]);

    // Running demo again shows the tour without loading twice.
    let again = json(&pole(&data, &["--json", "demo", "--changes", "3000", "--seed", "11"]));
    assert_eq!(again["load"]["loaded"], false);
    assert_eq!(again["digest"], stats["digest"]);

    let concern = tour["history_of"].as_str().unwrap();
    let history = json(&pole(&data, &["--json", "history", concern]));
    assert!(history["versions"].as_array().unwrap().len() >= 2);
    let text = pole(&data, &["history", concern]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("create safeguarding_concern"));

    // Materialise as of an earlier sequence: exactly that many transactions, chain intact.
    let seq = stats["transactions"].as_u64().unwrap() / 2;
    let copy = dir.path().join("copy");
    let materialised =
        json(&pole(&data, &["--json", "replay", "--as-of", &seq.to_string(), "--into", copy.to_str().unwrap()]));
    assert_eq!(materialised["as_of_seq"].as_u64().unwrap(), seq);
    let copy_stats = json(&pole(&copy, &["--json", "stats"]));
    assert_eq!(copy_stats["transactions"].as_u64().unwrap(), seq);
    assert_eq!(json(&pole(&copy, &["--json", "verify"]))["ok"], true);
}

#[test]
fn entity_reads_as_of_and_refuses_instants_outside_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let demo = load_demo(&data);
    let concern = demo["tour"]["history_of"].as_str().unwrap();
    let earlier_seq = demo["tour"]["earlier"]["as_of_seq"].as_u64().unwrap();
    let then = json(&pole(&data, &["--json", "entity", concern, "--as-of", &earlier_seq.to_string()]));
    assert_eq!(then["entity"], demo["tour"]["earlier"]["entity"]);

    let future = pole(&data, &["entity", concern, "--as-of", "2999-01-01"]);
    assert!(!future.status.success());
    assert!(String::from_utf8_lossy(&future.stderr).contains("in the future"));
    let before = pole(&data, &["entity", concern, "--as-of", "2001-01-01"]);
    assert!(!before.status.success());
    assert!(String::from_utf8_lossy(&before.stderr).contains("before the store's first transaction"));
    let unknown = pole(&data, &["entity", "NOSUCHID"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no entity NOSUCHID"));
}

#[test]
fn verify_names_the_first_altered_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    load_demo(&data);
    let segment = data.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    // Alter one byte in the middle of the file and find which transaction holds it.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let expected_seq = seq_holding(&bytes, at);
    let output = pole(&data, &["--json", "verify"]);
    assert_eq!(output.status.code(), Some(1), "verify must exit 1 on a damaged journal");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["journal"]["first_bad_seq"].as_u64().unwrap(), expected_seq, "{report}");
    let text = pole(&data, &["verify"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("FAILED at transaction seq {expected_seq}")));
}

/// Walks frames (16-byte segment header, 80-byte frame headers) to find the one holding `at`.
fn seq_holding(bytes: &[u8], at: usize) -> u64 {
    let mut offset = 16;
    let mut seq = 1;
    loop {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let end = offset + 80 + len;
        if at < end {
            return seq;
        }
        offset = end;
        seq += 1;
    }
}

#[test]
fn a_newer_or_foreign_data_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    load_demo(&data);
    std::fs::write(data.join("FORMAT"), r#"{"format": 99, "created_at": "2030-01-01T00:00:00Z"}"#).unwrap();
    let output = pole(&data, &["stats"]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("format version 99"), "{err}");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let output = pole(&foreign, &["demo", "--changes", "1000"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a pole-ods data directory"));
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn read_commands_do_not_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let output = pole(&data, &["stats"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a pole-ods data directory"));
    assert!(!data.exists());
}

#[test]
fn generated_secrets_are_the_owners_alone_and_looser_ones_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secrets = data.join("secrets");
    let secret = secrets.join("token.secret");
    let mint = || {
        let output = pole(&data, &["token", "--role", "admin"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    mint();
    assert_eq!((mode(&data), mode(&secrets), mode(&secret)), (0o700, 0o700, 0o600));
    // As an older pole-ods left them.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    mint();
    assert_eq!((mode(&secrets), mode(&secret)), (0o700, 0o600));
}
