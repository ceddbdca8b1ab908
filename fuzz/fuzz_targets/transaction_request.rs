//! Arbitrary JSON as a transaction request (the shape the API and ingest hand the store).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<pole_store::TransactionRequest>(data) {
        let text = serde_json::to_vec(&request).unwrap_or_default();
        let again: pole_store::TransactionRequest = serde_json::from_slice(&text).unwrap_or_default();
        assert_eq!(again, request, "requests round-trip through JSON");
    }
});
