//! Arbitrary text as a schema pack, with the default code lists.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pole_model::SchemaRegistry::from_sources(text, pole_model::DEFAULT_CODE_LISTS);
    }
});
