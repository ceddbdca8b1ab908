//! What a commit answers: committed, or rejected with the change, entity and field named.

use std::collections::BTreeMap;
use std::fmt;

use pole_audit::Hash;
use pole_model::{EntityId, Timestamp};
use serde::{Deserialize, Serialize};

/// A transaction the store made durable (or had already made durable, for a replayed
/// idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The transaction's sequence; for a transaction whose changes were all no-ops, the
    /// journal head it was checked against.
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub hash: Hash,
    /// Changes written (updates that change nothing are not written).
    pub changes: usize,
    /// The ids assigned to the request's local refs.
    pub refs: BTreeMap<String, EntityId>,
    /// True when this answers a resubmission of an earlier idempotency key.
    pub replayed: bool,
}

/// Why a transaction was refused. Nothing of a refused transaction is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// A change is malformed or breaks the schema.
    #[error("change {change_idx} ({op} of {entity}){field_part}: {reason}", field_part = field_suffix(field))]
    Invalid { change_idx: usize, op: String, entity: String, field: Option<String>, reason: String },
    /// `expected_version` did not match.
    #[error("change {change_idx}: entity {entity} is at version {actual}, not the expected {expected}")]
    Conflict { change_idx: usize, entity: EntityId, expected: u64, actual: u64 },
    /// A change names a record that is not the writing contributor's own (nor, for a link's
    /// far end, a national record), or one that does not exist: the two read alike, so the
    /// refusal says nothing about another contributor's records.
    #[error("change {change_idx} ({op} of {entity}): the entity is outside contributor {contributor}'s records")]
    OutOfScope { change_idx: usize, op: String, entity: EntityId, contributor: String },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key:?} was already used for a different transaction (seq {seq})")]
    IdempotencyKeyReused { key: String, seq: u64 },
    /// The transaction as a whole is unacceptable (empty, too large, a bad idempotency key).
    #[error("{reason}")]
    Transaction { reason: String },
}

fn field_suffix(field: &Option<String>) -> String {
    field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default()
}

impl Rejection {
    pub(crate) fn transaction(reason: impl Into<String>) -> Self {
        Rejection::Transaction { reason: reason.into() }
    }

    pub(crate) fn invalid(
        change_idx: usize,
        op: &str,
        entity: impl fmt::Display,
        field: Option<&str>,
        reason: impl fmt::Display,
    ) -> Self {
        Rejection::Invalid {
            change_idx,
            op: op.to_owned(),
            entity: entity.to_string(),
            field: field.map(str::to_owned),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_serialises() {
        let id = EntityId::new("E1").unwrap();
        let all = [
            Rejection::invalid(0, "create", "ref \"p\"", Some("gender"), "bad"),
            Rejection::Conflict { change_idx: 1, entity: id, expected: 2, actual: 3 },
            Rejection::IdempotencyKeyReused { key: "k".into(), seq: 4 },
            Rejection::OutOfScope {
                change_idx: 2,
                op: "update".into(),
                entity: EntityId::new("E2").unwrap(),
                contributor: "305".into(),
            },
            Rejection::transaction("empty"),
        ];
        for rejection in all {
            let json = serde_json::to_value(&rejection).unwrap();
            assert!(json["kind"].is_string(), "{json}");
            let back: Rejection = serde_json::from_value(json).unwrap();
            assert_eq!(back, rejection);
        }
    }
}
