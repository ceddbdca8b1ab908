//! Arbitrary bytes as a council's CSV or pipe-delimited safeguarding file, through the
//! whole ingest pipeline in dry-run mode: decoding, records, profile mapping, validation
//! and the report. It must never panic, and every data row must have a line in the report.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pole_ingest::{ingest, Format, Options, Profile};
use pole_store::{BackendKind, Store, StoreOptions};

struct Fixture {
    store: Store,
    profile: Profile,
    _dir: std::path::PathBuf,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("pole-fuzz-delimited-{}", std::process::id()));
            let store = Store::open(&dir, StoreOptions { backend: BackendKind::Memory, ..Default::default() }).ok()?;
            let profile = Profile::builtin("safeguarding").ok()?;
            Some(Fixture { store, profile, _dir: dir })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(fixture) = fixture() else { return };
    for format in [Format::Csv, Format::Pipe] {
        let options = Options {
            file_name: "fuzz.csv",
            format,
            council: "305",
            profile: &fixture.profile,
            dry_run: true,
            today: None,
            sheet: None,
            actor: "pole-ods ingest",
            role: "council",
            operations: &pole_model::Operation::COUNCIL,
            chunk_rows: pole_ingest::DEFAULT_CHUNK_ROWS,
        };
        if let Ok(report) = ingest(&fixture.store, data, &options, &|_| {}) {
            let _ = serde_json::to_string(&report);
        }
    }
});
