//! The OpenAPI document: a contract change must be deliberate. The snapshot lives in
//! `api/tests/openapi.snapshot.json`; regenerate it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p pole-api --test openapi` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let document = pole_api::openapi::document();
    let parsed: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert!(parsed["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");
    for path in ["/v1/transactions", "/v1/entities/{id}", "/v1/journal/stream", "/v1/search", "/health", "/metrics"] {
        assert!(parsed["paths"].get(path).is_some(), "{path} is documented");
    }
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi.snapshot.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, format!("{document}\n")).unwrap();
    }
    let expected = std::fs::read_to_string(&snapshot).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1");
    assert_eq!(
        document.trim_end(),
        expected.trim_end(),
        "the OpenAPI document changed; review and update the snapshot"
    );
}
