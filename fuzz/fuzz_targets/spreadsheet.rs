//! Arbitrary bytes as a spreadsheet (xlsx, xls, ods: calamine recognises them by content),
//! through the whole ingest pipeline in dry-run mode, on the first sheet and on a sheet
//! chosen by position. It must never panic. Seed the corpus with real workbooks (a zip
//! mutated at random rarely gets past the container), for example the one
//! `tests/ingest.rs` generates.
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
            // libFuzzer's panic hook aborts on every panic, even one the code under test
            // catches on purpose (spreadsheet.rs contains calamine's); the default hook
            // still reports it, and a panic that escapes still aborts the run.
            drop(std::panic::take_hook());
            let dir = std::env::temp_dir().join(format!("pole-fuzz-spreadsheet-{}", std::process::id()));
            let store = Store::open(&dir, StoreOptions { backend: BackendKind::Memory, ..Default::default() }).ok()?;
            let profile = Profile::builtin("safeguarding").ok()?;
            Some(Fixture { store, profile, _dir: dir })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(fixture) = fixture() else { return };
    for sheet in [None, Some("2")] {
        let options = Options {
            file_name: "fuzz.xlsx",
            format: Format::Xlsx,
            council: "305",
            profile: &fixture.profile,
            dry_run: true,
            today: None,
            sheet,
            actor: "pole-ods ingest",
            role: "council",
            operations: &pole_model::Operation::COUNCIL,
            chunk_rows: pole_ingest::DEFAULT_CHUNK_ROWS,
        };
        if let Ok(report) = ingest(&fixture.store, data, &options, &|_| {}) {
            assert_eq!(report.rows_read, report.accepted + report.warnings + report.rejected);
            let _ = serde_json::to_string(&report);
        }
    }
});
