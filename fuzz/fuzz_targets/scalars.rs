//! Arbitrary text through the scalar parsers and checks: timestamps, NHS numbers, entity ids,
//! identifiers and attribute values of the default schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use pole_model::{default_registry, normalise_nhs_number, EntityId, Identifier, SchemaRegistry, Timestamp};

fn registry() -> Option<&'static SchemaRegistry> {
    static REGISTRY: OnceLock<Option<SchemaRegistry>> = OnceLock::new();
    REGISTRY.get_or_init(|| default_registry().ok()).as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = Timestamp::parse(text) {
        assert_eq!(Timestamp::parse(&t.to_string()).ok(), Some(t), "timestamps round-trip");
    }
    if let Ok(n) = normalise_nhs_number(text) {
        assert_eq!(normalise_nhs_number(&n).ok(), Some(n.clone()), "normalised NHS numbers stay valid");
    }
    let _ = EntityId::new(text);
    if let Some(registry) = registry() {
        for system in ["nhs-number", "council:305:client", "cqc-location"] {
            let _ = registry.check_identifier(&Identifier::new(system, text));
        }
        for (ty, attr) in [("person", "birth_date"), ("person", "gender"), ("hospital_admission", "admitted_at")] {
            let _ = registry.check_value(ty, attr, &serde_json::Value::String(text.to_owned()));
        }
    }
});
