//! One seeded safeguarding data set written to every format that can carry it (CSV,
//! pipe-delimited, xlsx, the safeguarding XML shape), each ingested into its own fresh store
//! through `pole_ingest::ingest`: the stores must hold the same thing. Compared through a
//! canonical dump that leaves out what legitimately differs between two ingests of the same
//! data (entity ids, recorded times, sequences, the file and row a value came from) and
//! keeps everything else: each entity by its type and natural key with its attribute values
//! and the valid time each holds from, and each link as (from's key, role, to's key) with
//! its validity period.
//!
//! Then, on the CSV store: the same file again changes nothing, and a file with one value
//! corrected changes exactly that value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/safeguarding_data.rs"]
mod data;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use pole_ingest::{ingest, Format, Options, Profile, Report, Status};
use pole_model::{EntityId, EntityState};
use pole_store::{ReadAt, Store, StoreOptions};

const SEED: u64 = 20_130_712;
const CLIENTS: usize = 90;

/// The date future dates are judged against, fixed so the test does not age.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 4, 1).unwrap()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions { cache_bytes: 16 << 20, ..Default::default() }).unwrap()
}

fn run(store: &Store, bytes: &[u8], file_name: &str, format: Format, profile: &Profile) -> Report {
    run_in_chunks(store, bytes, file_name, format, profile, pole_ingest::DEFAULT_CHUNK_ROWS)
}

fn run_in_chunks(
    store: &Store,
    bytes: &[u8],
    file_name: &str,
    format: Format,
    profile: &Profile,
    chunk_rows: usize,
) -> Report {
    let options = Options {
        today: Some(today()),
        actor: "ingest_roundtrip",
        chunk_rows,
        ..Options::new(file_name, format, "305", profile)
    };
    ingest(store, bytes, &options, &|_| {}).unwrap()
}

/// Every entity of the store, read now.
fn states(store: &Store) -> Vec<EntityState> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (ids, next) = store.list(None, None, cursor.as_deref(), 500).unwrap();
        for id in &ids {
            out.push(store.entity(id, ReadAt::NOW).unwrap().expect("a listed entity exists"));
        }
        match next {
            Some(next) if !ids.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    out
}

/// The canonical dump: sorted lines, one per entity and one per link. An entity's natural
/// key is its type and identifiers; one without identifiers (a home address) is keyed by
/// its attributes and the keys of the entities linking to it, which is all that tells two
/// such entities apart.
fn dump(store: &Store) -> Vec<String> {
    let states = states(store);
    let mut keys: BTreeMap<EntityId, String> = BTreeMap::new();
    for state in &states {
        if !state.identifiers.is_empty() {
            let mut ids: Vec<String> =
                state.identifiers.iter().map(|i| format!("{}={}", i.identifier.system, i.identifier.value)).collect();
            ids.sort();
            keys.insert(state.id.clone(), format!("{}[{}]", state.entity_type, ids.join(",")));
        }
    }
    let mut incoming: BTreeMap<EntityId, Vec<String>> = BTreeMap::new();
    for state in &states {
        for link in &state.links {
            if let Some(from) = keys.get(&state.id) {
                incoming.entry(link.to.clone()).or_default().push(format!("{}<-{from}", link.role));
            }
        }
    }
    for state in &states {
        if state.identifiers.is_empty() {
            let attributes: Vec<String> =
                state.attributes.iter().map(|(name, value)| format!("{name}={}", value.value)).collect();
            let mut from = incoming.get(&state.id).cloned().unwrap_or_default();
            from.sort();
            keys.insert(
                state.id.clone(),
                format!("{}{{{}}}({})", state.entity_type, attributes.join(","), from.join(",")),
            );
        }
    }
    let mut lines = Vec::new();
    for state in &states {
        let key = &keys[&state.id];
        let attributes: Vec<String> = state
            .attributes
            .iter()
            .map(|(name, value)| format!("{name}={}@{}", value.value, value.provenance.valid_time))
            .collect();
        lines.push(format!("entity {key} {:?} {}", state.status, attributes.join(" ")));
        for link in &state.links {
            let to = keys.get(&link.to).cloned().unwrap_or_else(|| format!("<unknown {}>", link.to));
            let valid = |t: Option<pole_model::Timestamp>| t.map_or("-".to_owned(), |t| t.to_string());
            lines.push(format!(
                "link {key} -{}-> {to} [{}, {}) {:?}",
                link.role,
                valid(link.valid_from),
                valid(link.valid_to),
                link.attributes
            ));
        }
    }
    lines.sort();
    lines
}

/// The lines only in `a` and only in `b`, for a failure message that names the difference.
fn difference(a: &[String], b: &[String]) -> (Vec<String>, Vec<String>) {
    let (a_set, b_set): (BTreeSet<&String>, BTreeSet<&String>) = (a.iter().collect(), b.iter().collect());
    let only_a = a_set.difference(&b_set).map(|s| (*s).clone()).collect();
    let only_b = b_set.difference(&a_set).map(|s| (*s).clone()).collect();
    (only_a, only_b)
}

fn count_of(lines: &[String], entity_type: &str) -> usize {
    let prefix = format!("entity {entity_type}[");
    let bare = format!("entity {entity_type}{{");
    lines.iter().filter(|l| l.starts_with(&prefix) || l.starts_with(&bare)).count()
}

fn assert_report_clean(report: &Report, rows: usize, format: &str) {
    assert_eq!(report.status, Status::Committed, "{format}: {:?}", report.file_problems);
    assert_eq!(report.rows_read as usize, rows, "{format}: every row read");
    let rejected: Vec<_> = report.rows.iter().filter(|r| r.is_rejected()).take(3).collect();
    assert_eq!(report.rejected, 0, "{format}: no row rejected, e.g. {rejected:?}");
}

#[test]
fn one_data_set_in_every_format_makes_the_same_store() {
    let set = data::generate(SEED, CLIENTS);
    let rows = set.rows.len();
    assert!((200..=800).contains(&rows), "a few hundred rows, got {rows}");
    let profile = Profile::builtin("safeguarding").unwrap();
    let dir = tempfile::tempdir().unwrap();

    let csv = data::delimited(&set.rows, ',');
    let files: [(&str, Format, Vec<u8>); 4] = [
        ("safeguarding.csv", Format::Csv, csv.clone().into_bytes()),
        ("safeguarding.txt", Format::Pipe, data::delimited(&set.rows, '|').into_bytes()),
        ("safeguarding.xlsx", Format::Xlsx, data::xlsx(&set.rows)),
        ("safeguarding.xml", Format::Xml, data::xml(&set.rows, SEED).into_bytes()),
    ];
    // To look at the files (or seed a fuzz corpus with them): POLE_ROUNDTRIP_OUT=DIR.
    if let Some(out) = std::env::var_os("POLE_ROUNDTRIP_OUT") {
        for (name, _, bytes) in &files {
            std::fs::write(Path::new(&out).join(name), bytes).unwrap();
        }
    }
    let mut dumps: Vec<(&str, Vec<String>)> = Vec::new();
    let mut warnings = Vec::new();
    for (name, format, bytes) in &files {
        let store = open(&dir.path().join(format.as_str()));
        let report = run(&store, bytes, name, *format, &profile);
        assert_report_clean(&report, rows, format.as_str());
        warnings.push((format.as_str(), report.warnings));
        dumps.push((format.as_str(), dump(&store)));
        store.close().unwrap();
    }
    // The CSV again, committed seven rows at a time: chunks resolve what earlier chunks
    // stored, so the store is the same.
    let store = open(&dir.path().join("csv-in-chunks"));
    let report = run_in_chunks(&store, csv.as_bytes(), "safeguarding.csv", Format::Csv, &profile, 7);
    assert_report_clean(&report, rows, "csv in chunks");
    assert_eq!(report.transactions.len(), rows.div_ceil(7));
    warnings.push(("csv in chunks", report.warnings));
    dumps.push(("csv in chunks", dump(&store)));
    store.close().unwrap();

    // Not trivially equal: the dump holds the people, concerns and allegations expected.
    let csv_dump = &dumps[0].1;
    assert_eq!(count_of(csv_dump, "person"), set.clients, "one person a client");
    assert_eq!(count_of(csv_dump, "safeguarding_concern"), set.referrals, "one concern a referral");
    assert_eq!(count_of(csv_dump, "allegation"), rows, "one allegation a row");
    assert_eq!(count_of(csv_dump, "organisation"), set.providers);
    assert_eq!(count_of(csv_dump, "care_setting"), set.locations);
    assert!(csv_dump.iter().any(|l| l.contains("type_of_risk=\"PHYSICAL\"")), "mapped codes are stored");
    assert!(csv_dump.iter().any(|l| l.contains("Zoë's Care & Support, Ltd")), "non-ASCII text survives");
    assert!(csv_dump.iter().any(|l| l.contains("\\\"no new admissions\\\"")), "quoted, multi-line text survives");
    assert!(csv_dump.iter().any(|l| l.starts_with("link ") && l.contains("-part_of->")));

    for (format, other) in &dumps[1..] {
        let (only_csv, only_other) = difference(csv_dump, other);
        assert!(
            only_csv.is_empty() && only_other.is_empty() && csv_dump.len() == other.len(),
            "csv and {format} stores differ:\nonly in csv ({}):\n{}\nonly in {format} ({}):\n{}",
            only_csv.len(),
            only_csv.iter().take(10).cloned().collect::<Vec<_>>().join("\n"),
            only_other.len(),
            only_other.iter().take(10).cloned().collect::<Vec<_>>().join("\n"),
        );
    }
    let first = warnings[0].1;
    assert!(warnings.iter().all(|(_, w)| *w == first), "the same warnings in every format: {warnings:?}");

    // The CSV again into the CSV store: nothing new.
    let store = open(&dir.path().join("csv"));
    let stats = store.stats().unwrap();
    let again = run(&store, csv.as_bytes(), "safeguarding.csv", Format::Csv, &profile);
    assert_eq!(again.status, Status::Unchanged);
    assert_eq!(store.stats().unwrap(), stats);
    assert_eq!(&dump(&store), csv_dump);

    // One value corrected: the type of risk of one allegation. Exactly one change, and the
    // dump differs in exactly that allegation's line.
    let mut corrected_rows = set.rows.clone();
    let target = corrected_rows
        .iter()
        .position(|r| r[data::column("Type of Risk")].text() == "Physical")
        .expect("a row with Physical");
    corrected_rows[target][data::column("Type of Risk")] = data::Cell::Text("Sexual".into());
    let corrected = data::delimited(&corrected_rows, ',');
    let report = run(&store, corrected.as_bytes(), "safeguarding-corrected.csv", Format::Csv, &profile);
    assert_eq!(report.status, Status::Committed);
    assert_eq!(report.transactions.first().map(|t| t.changes), Some(1), "{:?}", report.transactions);
    let after = store.stats().unwrap();
    assert_eq!((after.transactions, after.changes), (stats.transactions + 1, stats.changes + 1));
    let (removed, added) = difference(csv_dump, &dump(&store));
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(removed[0].starts_with("entity allegation[") && removed[0].contains("type_of_risk=\"PHYSICAL\"@"));
    assert_eq!(removed[0].replace("type_of_risk=\"PHYSICAL\"@", "type_of_risk=\"SEXUAL\"@"), added[0]);
    store.close().unwrap();
}

/// A care setting whose operator changes between rows of one file, the rows not in date
/// order (a home sold in 2015, the file sorted by client): the operator at each row's date
/// is what the file says, and the current one is the latest-dated. Each move ends the
/// previous link where the new one starts (a row older than the current link adds a link
/// that ends where the current one starts), so the valid-time fold never meets an unlink
/// of a link it does not hold. Also after a second file moves the operator on again.
#[test]
fn a_setting_whose_provider_changes_within_one_file() {
    let header = "Council Client Identifier,Date Referral Initiated,Type of Risk,Council Safeguarding Referral Identifier,CQC Provider Identifier,CQC Location Identifier\n";
    let rows = [
        "C-1,2015-06-01,Neglect,SG-1,1-100000001,1-200000001",
        "C-2,2013-02-01,Neglect,SG-2,1-100000002,1-200000001",
        "C-3,2014-03-01,Neglect,SG-3,1-100000001,1-200000001",
        "C-4,2016-01-01,Neglect,SG-4,1-100000003,1-200000001",
    ];
    let profile = Profile::builtin("safeguarding").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let file = format!("{header}{}\n", rows.join("\n"));
    let report = run(&store, file.as_bytes(), "sold.csv", Format::Csv, &profile);
    assert_eq!(report.status, Status::Committed, "{:?}", report.file_problems);
    assert_eq!(report.rejected, 0, "{:?}", report.rows);
    let operators: Vec<String> = dump(&store).into_iter().filter(|l| l.contains("-operated_by->")).collect();
    assert_eq!(operators.len(), 1, "one current operator: {operators:?}");
    assert!(operators[0].contains("cqc-provider=1-100000003"), "{operators:?}");

    // A later file moves it on again, ending the stored link.
    let later = format!("{header}C-5,2017-01-01,Neglect,SG-5,1-100000001,1-200000001\n");
    let report = run(&store, later.as_bytes(), "sold-again.csv", Format::Csv, &profile);
    assert_eq!((report.status, report.rejected), (Status::Committed, 0), "{:?}", report.rows);
    let operators: Vec<String> = dump(&store).into_iter().filter(|l| l.contains("-operated_by->")).collect();
    assert_eq!(operators.len(), 1, "one current operator: {operators:?}");
    assert!(operators[0].contains("cqc-provider=1-100000001"), "{operators:?}");
    store.close().unwrap();
}
