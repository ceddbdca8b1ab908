//! The default schema pack (adult social care), embedded so that a fresh binary works with no
//! files beside it. A deployment loads a newer pack from a directory with the same parser.

use crate::{ModelError, SchemaRegistry};

/// The code lists of the default pack, by name (file stem).
pub const DEFAULT_CODE_LISTS: [(&str, &str); 9] = [
    ("conclusion", include_str!("../../packs/adult-social-care/codes/conclusion.csv")),
    ("ethnicity", include_str!("../../packs/adult-social-care/codes/ethnicity.csv")),
    ("gender", include_str!("../../packs/adult-social-care/codes/gender.csv")),
    ("location_of_risk", include_str!("../../packs/adult-social-care/codes/location_of_risk.csv")),
    ("primary_client_group", include_str!("../../packs/adult-social-care/codes/primary_client_group.csv")),
    ("primary_support_reason", include_str!("../../packs/adult-social-care/codes/primary_support_reason.csv")),
    ("source_of_risk", include_str!("../../packs/adult-social-care/codes/source_of_risk.csv")),
    ("type_of_risk", include_str!("../../packs/adult-social-care/codes/type_of_risk.csv")),
    ("yes_no_unknown", include_str!("../../packs/adult-social-care/codes/yes_no_unknown.csv")),
];

/// The default pack's schema file.
pub const DEFAULT_SCHEMA: &str = include_str!("../../packs/adult-social-care/schema.toml");

/// The adult social care registry.
pub fn default_registry() -> Result<SchemaRegistry, ModelError> {
    SchemaRegistry::from_sources(DEFAULT_SCHEMA, DEFAULT_CODE_LISTS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Classification, FieldError, Identifier, Kind};
    use serde_json::json;

    #[test]
    fn default_pack_loads() {
        let reg = default_registry().unwrap();
        assert_eq!(reg.name, "adult-social-care");
        assert_eq!(reg.type_def("person").unwrap().kind, Kind::Person);
        assert!(reg.types().len() >= 20);
        assert_eq!(reg.attribute_classification("person", "family_name"), Classification::Identifiable);
        assert_eq!(reg.attribute_classification("person", "ethnicity"), Classification::Sensitive);
    }

    #[test]
    fn values_are_checked_against_types_and_codes() {
        let reg = default_registry().unwrap();
        assert_eq!(reg.check_value("person", "birth_date", &json!("1950-02-03")).unwrap(), json!("1950-02-03"));
        assert!(matches!(
            reg.check_value("person", "birth_date", &json!("03/02/1950")),
            Err(FieldError::WrongValueType { .. })
        ));
        assert!(matches!(reg.check_value("person", "gender", &json!("X")), Err(FieldError::CodeOutsideList { .. })));
        // Non-strict code lists keep a local value.
        assert_eq!(reg.check_value("allegation", "type_of_risk", &json!("phys_ab")).unwrap(), json!("phys_ab"));
        assert!(matches!(reg.check_value("person", "shoe_size", &json!(9)), Err(FieldError::UnknownAttribute { .. })));
        assert!(matches!(reg.check_value("weather", "x", &json!(9)), Err(FieldError::UnknownType(_))));
    }

    #[test]
    fn identifiers_are_checked_by_system() {
        let reg = default_registry().unwrap();
        let ok = reg.check_identifier(&Identifier::new("nhs-number", "943 476 5919")).unwrap();
        assert_eq!(ok.value, "9434765919");
        assert!(reg.check_identifier(&Identifier::new("nhs-number", "9434765918")).is_err());
        assert!(reg.check_identifier(&Identifier::new("council:305:client", "C-1")).is_ok());
        assert!(reg.check_identifier(&Identifier::new("council::client", "C-1")).is_err());
        assert!(reg.check_identifier(&Identifier::new("cqc-location", "1-123456789")).is_ok());
        assert!(reg.check_identifier(&Identifier::new("cqc-location", "123")).is_err());
        assert!(reg.check_identifier(&Identifier::new("passport", "1")).is_err());
    }

    #[test]
    fn link_roles_are_checked() {
        let reg = default_registry().unwrap();
        assert!(reg.check_link("subject", (Kind::Event, "referral"), (Kind::Person, "person")).is_ok());
        assert!(reg.check_link("part_of", (Kind::Event, "allegation"), (Kind::Event, "safeguarding_concern")).is_ok());
        assert!(reg.check_link("subject", (Kind::Person, "person"), (Kind::Event, "referral")).is_err());
        assert!(reg.check_link("friend_of", (Kind::Person, "person"), (Kind::Person, "person")).is_err());
    }

    #[test]
    fn a_pack_naming_a_missing_code_list_fails_at_load() {
        let pack = "name='x'\nversion=1\n[types.t]\nkind='event'\n[types.t.attributes]\nc={type='code',code_list='nope',classification='plain'}\n";
        let err = SchemaRegistry::from_sources(pack, []).unwrap_err();
        assert!(err.to_string().contains("t.c"), "{err}");
    }
}
