//! Transactions and the changes they carry, as committed to the journal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Delta, EntityId, Kind, Timestamp};

/// Where a transaction came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The contributing council's code, e.g. `"305"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    /// The sending system, e.g. a case-management system or `"api"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A committed transaction: the unit of atomicity, ordering and hashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Global, gap-free sequence number, starting at 1.
    pub seq: u64,
    /// When the store learned it; strictly increasing with `seq`.
    pub recorded_at: Timestamp,
    /// The token subject that wrote it.
    pub actor: String,
    pub role: String,
    #[serde(default)]
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// SHA-256 of the request an idempotency key was given with, so a resubmission with the
    /// same key and another body is told apart after any replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// The ids assigned to the request's local refs (e.g. one per ingested row's entities).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: BTreeMap<String, EntityId>,
    pub changes: Vec<Change>,
}

/// One change to one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub entity: EntityId,
    /// When the change became true in the world; the transaction's recorded time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_time: Option<Timestamp>,
    /// The source row (1-based, in the submitted file) this change came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(flatten)]
    pub op: ChangeOp,
}

impl Change {
    pub fn valid_time_or(&self, recorded_at: Timestamp) -> Timestamp {
        self.valid_time.unwrap_or(recorded_at)
    }
}

/// What a change does. Every kind the journal will ever need is here from format version 1,
/// so that merge, unmerge and erase never need a format change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ChangeOp {
    Create {
        kind: Kind,
        #[serde(rename = "type")]
        entity_type: String,
        delta: Delta,
    },
    Update {
        delta: Delta,
    },
    Link {
        role: String,
        to: EntityId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_from: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_to: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, Value>,
    },
    Unlink {
        role: String,
        to: EntityId,
    },
    /// The entity was entered in error; it stays in history but leaves current views.
    Retract {
        reason: String,
    },
    /// This entity is a duplicate of `into` (identity resolution).
    Merge {
        into: EntityId,
    },
    /// Undoes a merge of this entity.
    Unmerge,
    /// The entity's identifiable values are destroyed (their key is deleted). Carries no
    /// personal data: the receipt is the change itself.
    Erase {
        reason: String,
    },
}

impl ChangeOp {
    pub fn name(&self) -> &'static str {
        self.operation().as_str()
    }

    pub fn operation(&self) -> Operation {
        match self {
            ChangeOp::Create { .. } => Operation::Create,
            ChangeOp::Update { .. } => Operation::Update,
            ChangeOp::Link { .. } => Operation::Link,
            ChangeOp::Unlink { .. } => Operation::Unlink,
            ChangeOp::Retract { .. } => Operation::Retract,
            ChangeOp::Merge { .. } => Operation::Merge,
            ChangeOp::Unmerge => Operation::Unmerge,
            ChangeOp::Erase { .. } => Operation::Erase,
        }
    }
}

/// What kind of change an operation is, without its content: what access rules decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Create,
    Update,
    Link,
    Unlink,
    Retract,
    Merge,
    Unmerge,
    Erase,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Operation::Create,
        Operation::Update,
        Operation::Link,
        Operation::Unlink,
        Operation::Retract,
        Operation::Merge,
        Operation::Unmerge,
        Operation::Erase,
    ];

    /// What a council's submission may ask for: its own records' content and links, never
    /// the national decisions ([`Operation::is_national_decision`]).
    pub const COUNCIL: [Operation; 5] =
        [Operation::Create, Operation::Update, Operation::Link, Operation::Unlink, Operation::Retract];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Link => "link",
            Operation::Unlink => "unlink",
            Operation::Retract => "retract",
            Operation::Merge => "merge",
            Operation::Unmerge => "unmerge",
            Operation::Erase => "erase",
        }
    }

    /// Identity-resolution and governance decisions, taken nationally: never a council's.
    pub fn is_national_decision(self) -> bool {
        matches!(self, Operation::Merge | Operation::Unmerge | Operation::Erase)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
