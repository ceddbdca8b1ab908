//! Arbitrary text as a `code,label,parent` code list.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = pole_model::CodeList::from_csv("fuzz", text) {
            for code in list.codes() {
                assert!(list.top_level(&code.code).is_some(), "every code rolls up to a top level");
            }
        }
    }
});
