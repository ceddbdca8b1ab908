//! End-to-end tests of the `generic` reader and of `mapping suggest`: the real binary on
//! `examples/ingest/services-export.csv` with the built-in `services` profile (people,
//! services and providers linked; a resubmission changes nothing), on small files and
//! profiles written here for the bad cases (an unmapped local code kept with a warning, a
//! bad date rejected naming the column, profiles naming an unknown column or attribute
//! refused), and `mapping suggest` on ingested and on demo data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, json_ok, pole};

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ingest").join(name)
}

fn ingest(data: &Path, file: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["--json", "ingest", file.to_str().unwrap(), "--format", "csv", "--council", "305"];
    args.extend_from_slice(extra);
    let output = pole(data, &args);
    let report = json(&output);
    (output, report)
}

fn stats(data: &Path) -> Value {
    json_ok(&pole(data, &["--json", "stats"]))
}

/// A generic profile for a council's allegations export: allegation type and source of
/// risk are non-strict lists, so a local code nobody mapped is kept.
const ALLEGATIONS_PROFILE: &str = r#"
name = "allegations-305"
reader = "generic"
date_formats = ["%d/%m/%Y"]
valid_from = "Date"

[[entities]]
name = "client"
type = "person"
keys = [{ system = "council:{council}:client", column = "Client" }]

[[entities]]
name = "allegation"
type = "allegation"
keys = [{ system = "council:{council}:event", column = "Allegation", prefix = "allegation/" }]
[entities.attributes]
type_of_risk = "Abuse Type"
source_of_risk = "Perpetrator"
date_occurred = "Date"

[[links]]
from = "allegation"
role = "subject"
to = "client"
single = true

[values."Abuse Type"]
"phys_ab" = "PHYSICAL"
"#;

const ALLEGATIONS_CSV: &str = "Client,Allegation,Abuse Type,Perpetrator,Date\n\
C1,A1,phys_ab,fam,01/07/2013\n\
C1,A2,shouting at client,Relative / family / carer,02/07/2013\n\
C2,A3,financial abuse,stranger,31/02/2013\n";

#[test]
fn services_export_becomes_people_services_and_providers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let file = example("services-export.csv");

    let (out, report) = ingest(&data, &file, &["--profile", "services"]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["status"], "committed", "{report}");
    assert_eq!(report["profile"], "services");
    assert_eq!((report["accepted"].as_u64(), report["rejected"].as_u64()), (Some(4), Some(0)), "{report}");
    let columns = report["columns"].as_array().unwrap();
    let service_ref = columns.iter().find(|c| c["column"] == "Service Ref").unwrap();
    assert_eq!(service_ref["read_as"], "Service Identifier");
    assert!(service_ref["note"].as_str().unwrap().contains("council:305:event"), "{service_ref}");
    let first = stats(&data);
    assert_eq!(first["transactions"], 1);
    // Three clients, four services, two providers.
    assert_eq!(first["entities"], 9, "{first}");

    // The client is found by the natural key, the service linked to client and provider.
    let clients = json_ok(&pole(&data, &["--json", "stats"]));
    assert_eq!(clients["entities"], first["entities"]);

    // Resubmitting the same file changes nothing.
    let (out, again) = ingest(&data, &file, &["--profile", "services"]);
    assert!(out.status.success());
    assert_eq!(again["status"], "unchanged", "{again}");
    assert_eq!(stats(&data), first);

    // The profile file by path reads the same.
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/adult-social-care/profiles/services.toml");
    let (out, by_path) = ingest(&data, &file, &["--profile", profile.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(by_path["status"], "unchanged");
    assert_eq!(json_ok(&pole(&data, &["--json", "verify"]))["ok"], true);
}

#[test]
fn unmapped_codes_warn_bad_dates_reject_and_suggest_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let profile = dir.path().join("allegations-305.toml");
    std::fs::write(&profile, ALLEGATIONS_PROFILE).unwrap();
    let file = dir.path().join("allegations.csv");
    std::fs::write(&file, ALLEGATIONS_CSV).unwrap();

    let (out, report) = ingest(&data, &file, &["--profile", profile.to_str().unwrap()]);
    assert!(out.status.success(), "{report}");
    let rows = report["rows"].as_array().unwrap();
    // Row 1: phys_ab is mapped, fam is not (kept verbatim, a warning).
    assert_eq!(rows[0]["outcome"], "accepted_with_warnings", "{report}");
    assert_eq!(rows[0]["issues"][0]["column"], "Perpetrator");
    assert_eq!(rows[0]["issues"][0]["value"], "fam");
    assert!(rows[0]["issues"][0]["reason"].as_str().unwrap().contains("kept verbatim"));
    // Row 2: an unmapped type of risk, and a source of risk matched by its label.
    assert_eq!(rows[1]["outcome"], "accepted_with_warnings");
    assert_eq!(rows[1]["issues"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(rows[1]["issues"][0]["column"], "Abuse Type");
    // Row 3: 31 February is not a date: rejected naming the column.
    assert_eq!(rows[2]["outcome"], "rejected");
    assert!(rows[2]["issues"].as_array().unwrap().iter().any(|i| i["column"] == "Date"
        && i["value"] == "31/02/2013"
        && i["reason"].as_str().unwrap().contains("not a date")));
    let dates = rows[2]["issues"].as_array().unwrap().iter().filter(|i| i["column"] == "Date").count();
    assert_eq!(dates, 1, "a bad date is reported once, however many entities read it: {report}");
    assert_eq!(report["accepted"].as_u64().unwrap() + report["warnings"].as_u64().unwrap(), 2);

    // suggest: the two verbatim values, under the profile's columns, best candidate first.
    let out =
        pole(&data, &["--json", "mapping", "suggest", "--council", "305", "--profile", profile.to_str().unwrap()]);
    let found = json_ok(&out);
    let unmapped = found["unmapped"].as_array().unwrap();
    assert_eq!(unmapped.len(), 2, "{found}");
    let fam = unmapped.iter().find(|u| u["value"] == "fam").unwrap();
    assert_eq!(fam["column"], "Perpetrator");
    assert_eq!(fam["code_list"], "source_of_risk");
    assert_eq!(fam["seen"], 1);
    assert_eq!(fam["candidates"][0]["code"], "KNOWN_FAMILY", "{fam}");
    assert_eq!(fam["candidates"].as_array().unwrap().len(), 3);

    // The text form is a fragment a profile file can take as it is.
    let out = pole(
        &data,
        &["mapping", "suggest", "--council", "305", "--profile", profile.to_str().unwrap(), "--limit", "2"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("[values.\"Perpetrator\"]"), "{text}");
    assert!(text.contains("\"fam\" = \"KNOWN_FAMILY\""), "{text}");
    let edited = dir.path().join("edited.toml");
    // A section the profile already has is merged by hand; this profile's one is left out.
    let base = ALLEGATIONS_PROFILE.split("[values.").next().unwrap();
    std::fs::write(&edited, format!("{base}\n{text}")).unwrap();
    let (out, reingest) = ingest(&data, &file, &["--profile", edited.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success(), "{reingest}");
    assert!(
        !reingest["rows"][0]["issues"].as_array().is_some_and(|i| i.iter().any(|i| i["value"] == "fam")),
        "{reingest}"
    );

    // Another council has nothing unmapped, and is told so.
    let out = pole(&data, &["mapping", "suggest", "--council", "341"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing unmapped for council 341"));
}

#[test]
fn profiles_naming_unknown_columns_or_attributes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let file = dir.path().join("allegations.csv");
    std::fs::write(&file, ALLEGATIONS_CSV).unwrap();
    let cases = [
        (ALLEGATIONS_PROFILE.replace("[values.\"Abuse Type\"]", "[values.\"Abuse Kind\"]"), "\"abuse kind\""),
        (ALLEGATIONS_PROFILE.replace("type_of_risk = ", "type_of_abuse = "), "no attribute \"type_of_abuse\""),
        (ALLEGATIONS_PROFILE.replace("type = \"allegation\"", "type = \"alegation\""), "\"alegation\""),
        (ALLEGATIONS_PROFILE.replace("role = \"subject\"", "role = \"carer_of\""), "carer_of"),
        (ALLEGATIONS_PROFILE.replace("council:{council}:event", "council:{council}:events"), "events"),
        (ALLEGATIONS_PROFILE.replace("to = \"client\"", "to = \"customer\""), "\"customer\""),
    ];
    for (text, needle) in cases {
        let profile = dir.path().join("bad.toml");
        std::fs::write(&profile, &text).unwrap();
        let out = pole(
            &data,
            &[
                "ingest",
                file.to_str().unwrap(),
                "--format",
                "csv",
                "--council",
                "305",
                "--profile",
                profile.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {stderr}");
        assert!(stderr.contains("profile") && stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!data.join("FORMAT").exists() || stats(&data)["transactions"] == 0);
}

#[test]
fn suggest_on_demo_data_proposes_national_codes_for_the_planted_local_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    json_ok(&pole(&data, &["--json", "demo", "--changes", "3000", "--seed", "11", "--no-tour", "--no-serve"]));
    let mut proposals = 0;
    for council in ["341", "373", "801", "878", "926"] {
        let found = json_ok(&pole(&data, &["--json", "mapping", "suggest", "--council", council]));
        for u in found["unmapped"].as_array().unwrap() {
            assert!(u["seen"].as_u64().unwrap() >= 1);
            if u["value"] == "phys_ab" || u["value"] == "physical abuse" {
                assert_eq!(u["proposed"], "PHYSICAL", "{u}");
                proposals += 1;
            }
        }
    }
    assert!(proposals > 0, "the demo plants local Type of Risk codes");
    let out = pole(&data, &["mapping", "suggest", "--council", "305"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Nothing unmapped for council 305"), "council 305 sends national codes: {text}");
    // A bad command line is a usage error.
    assert_eq!(pole(&data, &["mapping", "suggest", "--council", "30:5"]).status.code(), Some(2));
    assert_eq!(pole(&data, &["mapping", "suggest", "--council", "305", "--profile", "nope"]).status.code(), Some(2));
}

/// A council profile as a council keeps it: comments, its own order, one value mapped
/// already (to a code the list lacks, which suggest proposes again and `--into` must not
/// replace).
const COUNCIL_PROFILE: &str = r#"# Council 999's export, agreed with its data team.
name = "council-999"
extends = "safeguarding"

[columns]
"Abuse Type" = "Type of Risk"
"Perpetrator" = "Source of Risk"

# Checked with the council in 2024: do not change without asking them.
[values."Type of Risk"]
"phys abuse" = "PHYSICAL"  # their old system's code
"neglect_x" = "NEGLECTED"

[defaults]
"Known to Council" = "N"
"#;

const COUNCIL_CSV: &str = "Council Client Identifier,Date Referral Initiated,Abuse Type,Perpetrator,Council Safeguarding Referral Identifier\n\
C-1,2014-03-02,phys abuse,fam,SG-1\n\
C-1,2014-03-02,fin_ab,Family member,SG-1\n\
C-2,2014-05-11,neglect_x,paid_carer,SG-2\n\
C-3,2014-06-01,Physical,qqqq,SG-3\n";

#[test]
fn suggest_into_merges_into_the_council_profile_and_the_warnings_go() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let profile = dir.path().join("council-999.toml");
    std::fs::write(&profile, COUNCIL_PROFILE).unwrap();
    let file = dir.path().join("export.csv");
    std::fs::write(&file, COUNCIL_CSV).unwrap();
    let profile_arg = profile.to_str().unwrap();

    let (out, first) = ingest(&data, &file, &["--profile", profile_arg]);
    assert!(out.status.success(), "{first}");
    let unmapped = |report: &Value| -> Vec<String> {
        let mut values: Vec<String> = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["issues"].as_array().cloned().unwrap_or_default())
            .filter(|i| i["reason"].as_str().unwrap_or_default().contains("kept verbatim"))
            .map(|i| i["value"].as_str().unwrap().to_owned())
            .collect();
        values.sort();
        values
    };
    assert_eq!(unmapped(&first), ["fam", "fin_ab", "neglect_x", "paid_carer", "qqqq"], "{first}");

    let out = pole(&data, &["mapping", "suggest", "--council", "305", "--into", profile_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "the fragment is not printed with --into");
    assert!(stderr.contains("added: [values.\"Source of Risk\"] \"fam\" = \"KNOWN_FAMILY\""), "{stderr}");
    assert!(stderr.contains("added: [values.\"Type of Risk\"] \"fin_ab\" = \"FINANCIAL\""), "{stderr}");
    assert!(stderr.contains("added: [values.\"Source of Risk\"] \"paid_carer\" = \"SOCIAL_CARE\""), "{stderr}");
    assert!(
        stderr.contains("skipped: [values.\"Type of Risk\"] \"neglect_x\": the file already maps \"neglect_x\" to \"NEGLECTED\" in [values.\"Type of Risk\"]"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped: [values.\"Source of Risk\"] \"qqqq\": no close national code"), "{stderr}");
    assert!(stderr.contains("3 mapping(s) added, 2 skipped"), "{stderr}");

    // The file kept what it had, in its order, with its comments; new entries follow.
    let merged = std::fs::read_to_string(&profile).unwrap();
    let kept = COUNCIL_PROFILE.split("[defaults]").next().unwrap();
    let (head, tail) = kept.split_at(kept.find("\"neglect_x\"").unwrap());
    assert!(merged.starts_with(head), "{merged}");
    assert!(merged.contains(&format!("{}\n# mapping suggest: seen 1 time", tail.trim_end())), "{merged}");
    assert!(merged.contains("[defaults]\n\"Known to Council\" = \"N\"\n"), "{merged}");
    assert!(merged.contains("fin_ab = \"FINANCIAL\""), "{merged}");

    // Ingest again with the merged profile: the added values map, only the two skipped
    // ones still warn.
    let (out, second) = ingest(&data, &file, &["--profile", profile_arg]);
    assert!(out.status.success(), "{second}");
    assert_eq!(second["status"], "committed", "the stored values move to national codes: {second}");
    assert_eq!(unmapped(&second), ["neglect_x", "qqqq"], "{second}");
    let found = json_ok(&pole(&data, &["--json", "mapping", "suggest", "--council", "305", "--profile", profile_arg]));
    let mut left: Vec<&str> =
        found["unmapped"].as_array().unwrap().iter().map(|u| u["value"].as_str().unwrap()).collect();
    left.sort_unstable();
    assert_eq!(left, ["neglect_x", "qqqq"], "{found}");

    // Running it again changes nothing.
    let out = pole(&data, &["mapping", "suggest", "--council", "305", "--into", profile_arg]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 mapping(s) added, 2 skipped"));
    assert_eq!(std::fs::read_to_string(&profile).unwrap(), merged);

    // A file that is not a valid profile is refused and left alone.
    let bad = dir.path().join("bad.toml");
    for text in ["name = \"x\"\n[values\n", "name = \"x\"\n", "extends = \"safeguarding\"\n"] {
        std::fs::write(&bad, text).unwrap();
        let out = pole(&data, &["mapping", "suggest", "--council", "305", "--into", bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains("bad.toml") && stderr.contains("--into takes an existing council profile"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), text);
    }
    let missing = dir.path().join("missing.toml");
    let out = pole(&data, &["mapping", "suggest", "--council", "305", "--into", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!missing.exists());
}
