//! The POLE domain model: People, Objects, Locations and Events for adult social care.
//!
//! Main types: [`Kind`], [`EntityId`], [`Identifier`], [`Timestamp`], the committed
//! [`Transaction`] and its [`Change`]s, field-level [`Delta`]s with pure [`Delta::diff`] and
//! [`Delta::apply`], [`EntityState`] and the [`fold`] that builds it from history, and the
//! [`SchemaRegistry`] loaded from a schema pack with its national [`CodeList`]s.
//!
//! This crate must never do I/O, spawn threads or know about storage, HTTP or async: it is
//! the pure core every other crate builds on. Callers read files and hand in their text.

mod change;
mod codes;
mod delta;
mod entity;
mod id;
mod kind;
mod nhs;
mod pack;
mod schema;
mod survivorship;
mod time;

pub use change::{Change, ChangeOp, Operation, Source, Transaction};
pub use codes::{Code, CodeList};
pub use delta::{Delta, DeltaError, FieldOp, Fields};
pub use entity::{
    apply_change, fold, fold_entries, fold_order, ApplyError, AttributeValue, ChangeContext, EntityState, HistoryEntry,
    IdentifierValue, LinkValue, Provenance, Status, OPT_OUT_ATTRIBUTE,
};
pub use id::{is_council_code, EntityId, Identifier, SEALED_PREFIX};
pub use kind::Kind;
pub use nhs::{nhs_check_digit, normalise_nhs_number, NhsNumberError};
pub use pack::{default_registry, DEFAULT_CODE_LISTS, DEFAULT_SCHEMA};
pub use schema::{
    AttributeDef, Classification, FieldError, Generalisation, IdentifierCheck, IdentifierSystem, LinkRule,
    SchemaRegistry, SearchKey, TypeDef, ValueType,
};
pub use survivorship::{survive, Candidate, SourceKind, SourceRecord, Survived, Survivorship, SurvivorshipRule};
pub use time::Timestamp;

/// Errors in the model's own inputs: ids, times, schema packs and code lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("unknown kind {0:?} (expected person, object, location or event)")]
    UnknownKind(String),
    #[error("{0:?} is not a valid entity id (1 to 64 of A-Z, a-z, 0-9, _ and -)")]
    BadEntityId(String),
    #[error("identifier system {0:?} is not valid (1 to 128 of A-Z, a-z, 0-9, -, _, : and .)")]
    BadIdentifierSystem(String),
    #[error("identifier value for system {system:?} {reason}")]
    BadIdentifierValue { system: String, reason: &'static str },
    #[error("{0:?} is not a timestamp (RFC 3339 such as 2024-03-01T09:30:00Z, or a date YYYY-MM-DD)")]
    BadTimestamp(String),
    #[error("code list {list:?}, line {line}: {reason}")]
    BadCodeList { list: String, line: usize, reason: String },
    #[error("schema pack: {0}")]
    BadSchemaPack(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
