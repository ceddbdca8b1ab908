//! Field-level deltas and their pure `diff` and `apply`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Identifier;

/// The attribute values and identifiers of one entity, without provenance: what a delta
/// moves between.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    pub attributes: BTreeMap<String, Value>,
    pub identifiers: BTreeSet<Identifier>,
}

/// One field operation, carrying the value before and after so that history can show both
/// sides without replaying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FieldOp {
    Set {
        attribute: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Value>,
        after: Value,
    },
    Unset {
        attribute: String,
        before: Value,
    },
    AddIdentifier {
        identifier: Identifier,
    },
    RemoveIdentifier {
        identifier: Identifier,
    },
}

/// A list of field operations; at most one per attribute and per identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Delta(pub Vec<FieldOp>);

/// Why a delta does not apply to the fields it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("attribute {attribute:?} was expected to be {expected:?} before the change but is {actual:?}")]
    BeforeMismatch { attribute: String, expected: Option<Value>, actual: Option<Value> },
    #[error("identifier {0} is already present")]
    IdentifierPresent(Identifier),
    #[error("identifier {0} is not present")]
    IdentifierAbsent(Identifier),
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ops(&self) -> &[FieldOp] {
        &self.0
    }

    /// The delta that turns `before` into `after`, in a canonical order: attributes by name,
    /// then identifiers removed, then identifiers added.
    pub fn diff(before: &Fields, after: &Fields) -> Delta {
        let mut ops = Vec::new();
        let names: BTreeSet<&String> = before.attributes.keys().chain(after.attributes.keys()).collect();
        for name in names {
            match (before.attributes.get(name), after.attributes.get(name)) {
                (old, Some(new)) if old != Some(new) => {
                    ops.push(FieldOp::Set { attribute: name.clone(), before: old.cloned(), after: new.clone() })
                }
                (Some(old), None) => ops.push(FieldOp::Unset { attribute: name.clone(), before: old.clone() }),
                _ => {}
            }
        }
        for gone in before.identifiers.difference(&after.identifiers) {
            ops.push(FieldOp::RemoveIdentifier { identifier: gone.clone() });
        }
        for new in after.identifiers.difference(&before.identifiers) {
            ops.push(FieldOp::AddIdentifier { identifier: new.clone() });
        }
        Delta(ops)
    }

    /// Applies the delta strictly: every `before` must match what `fields` holds, so a
    /// delta computed against another state is refused rather than silently merged.
    pub fn apply(&self, fields: &mut Fields) -> Result<(), DeltaError> {
        for op in &self.0 {
            match op {
                FieldOp::Set { attribute, before, after } => {
                    let actual = fields.attributes.get(attribute);
                    if actual != before.as_ref() {
                        return Err(DeltaError::BeforeMismatch {
                            attribute: attribute.clone(),
                            expected: before.clone(),
                            actual: actual.cloned(),
                        });
                    }
                    fields.attributes.insert(attribute.clone(), after.clone());
                }
                FieldOp::Unset { attribute, before } => {
                    let actual = fields.attributes.get(attribute);
                    if actual != Some(before) {
                        return Err(DeltaError::BeforeMismatch {
                            attribute: attribute.clone(),
                            expected: Some(before.clone()),
                            actual: actual.cloned(),
                        });
                    }
                    fields.attributes.remove(attribute);
                }
                FieldOp::AddIdentifier { identifier } => {
                    if !fields.identifiers.insert(identifier.clone()) {
                        return Err(DeltaError::IdentifierPresent(identifier.clone()));
                    }
                }
                FieldOp::RemoveIdentifier { identifier } => {
                    if !fields.identifiers.remove(identifier) {
                        return Err(DeltaError::IdentifierAbsent(identifier.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The delta that undoes this one.
    pub fn inverse(&self) -> Delta {
        let ops = self
            .0
            .iter()
            .rev()
            .map(|op| match op {
                FieldOp::Set { attribute, before: Some(old), after } => {
                    FieldOp::Set { attribute: attribute.clone(), before: Some(after.clone()), after: old.clone() }
                }
                FieldOp::Set { attribute, before: None, after } => {
                    FieldOp::Unset { attribute: attribute.clone(), before: after.clone() }
                }
                FieldOp::Unset { attribute, before } => {
                    FieldOp::Set { attribute: attribute.clone(), before: None, after: before.clone() }
                }
                FieldOp::AddIdentifier { identifier } => FieldOp::RemoveIdentifier { identifier: identifier.clone() },
                FieldOp::RemoveIdentifier { identifier } => FieldOp::AddIdentifier { identifier: identifier.clone() },
            })
            .collect();
        Delta(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields(attrs: &[(&str, Value)], ids: &[(&str, &str)]) -> Fields {
        Fields {
            attributes: attrs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            identifiers: ids.iter().map(|(s, v)| Identifier::new(*s, *v)).collect(),
        }
    }

    #[test]
    fn diff_names_before_and_after() {
        let a = fields(&[("family_name", json!("Smith")), ("gender", json!("1"))], &[("nhs-number", "9434765919")]);
        let b = fields(&[("family_name", json!("Smyth")), ("ethnicity", json!("A"))], &[]);
        let delta = Delta::diff(&a, &b);
        assert_eq!(
            delta.0,
            vec![
                FieldOp::Set { attribute: "ethnicity".into(), before: None, after: json!("A") },
                FieldOp::Set { attribute: "family_name".into(), before: Some(json!("Smith")), after: json!("Smyth") },
                FieldOp::Unset { attribute: "gender".into(), before: json!("1") },
                FieldOp::RemoveIdentifier { identifier: Identifier::new("nhs-number", "9434765919") },
            ]
        );
    }

    #[test]
    fn strict_apply_refuses_a_stale_delta() {
        let a = fields(&[("family_name", json!("Smith"))], &[]);
        let b = fields(&[("family_name", json!("Smyth"))], &[]);
        let delta = Delta::diff(&a, &b);
        let mut other = fields(&[("family_name", json!("Jones"))], &[]);
        assert!(matches!(delta.apply(&mut other), Err(DeltaError::BeforeMismatch { .. })));
    }

    fn arb_fields() -> impl Strategy<Value = Fields> {
        let attr = prop::collection::btree_map(
            "[a-e]",
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                "[a-z]{0,4}".prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
            ],
            0..5,
        );
        let ids = prop::collection::btree_set(("[xy]", "[0-9]{1,2}").prop_map(|(s, v)| Identifier::new(s, v)), 0..4);
        (attr, ids).prop_map(|(attributes, identifiers)| Fields { attributes, identifiers })
    }

    proptest! {
        #[test]
        fn diff_then_apply_round_trips(before in arb_fields(), after in arb_fields()) {
            let delta = Delta::diff(&before, &after);
            let mut state = before.clone();
            delta.apply(&mut state).unwrap();
            prop_assert_eq!(&state, &after);
            delta.inverse().apply(&mut state).unwrap();
            prop_assert_eq!(&state, &before);
        }

        #[test]
        fn diff_of_equal_is_empty(state in arb_fields()) {
            prop_assert!(Delta::diff(&state, &state).is_empty());
        }

        #[test]
        fn delta_survives_json(before in arb_fields(), after in arb_fields()) {
            let delta = Delta::diff(&before, &after);
            let text = serde_json::to_string(&delta).unwrap();
            let back: Delta = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, delta);
        }
    }
}
