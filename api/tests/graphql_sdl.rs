//! The GraphQL schema's SDL: a contract change must be deliberate. The snapshot lives in
//! `api/tests/graphql.snapshot.graphql`; regenerate it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p pole-api --test graphql_sdl` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod support;

use pole_api::AppState;
use pole_store::{BackendKind, Store, StoreOptions};

#[test]
fn the_graphql_sdl_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions { backend: BackendKind::Memory, ..Default::default() }).unwrap();
    let sdl = AppState::new(store.clone(), support::access(&store, dir.path()))
        .unwrap()
        .graphql
        .sdl()
        .expect("the schema builds from the default pack");
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphql.snapshot.graphql");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &sdl).unwrap();
    }
    for needle in [
        "interface Entity",
        // async-graphql 7 prints no `implements` on an interface; every kind interface
        // still carries all of `Entity`'s fields, and every object implements both.
        "interface Person {",
        "interface Location {",
        "type PersonType implements Entity & Person",
        "type SafeguardingConcern implements Entity & Event",
        "transaction(",
        "type Subscription",
    ] {
        assert!(sdl.contains(needle), "SDL lacks {needle:?}");
    }
    let expected = std::fs::read_to_string(&snapshot).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1");
    assert_eq!(sdl.trim_end(), expected.trim_end(), "the GraphQL schema changed; review and update the snapshot");
}
