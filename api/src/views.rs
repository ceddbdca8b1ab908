//! Wire types: what the API answers. Built from the store's types, never persisted.

use std::collections::BTreeMap;

use pole_model::{EntityId, EntityState, Identifier, Kind, Provenance, Status, Timestamp};
use pole_store::{Committed, LinkView, Version};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An entity as read at a point in time.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityView {
    #[schema(value_type = String)]
    pub id: EntityId,
    /// person, object, location or event.
    #[schema(value_type = String)]
    pub kind: Kind,
    #[serde(rename = "type")]
    pub entity_type: String,
    pub version: u64,
    /// `{"state": "active"}`, `retracted` (with `reason`), `merged` (with `into`) or `erased`.
    #[schema(value_type = Object)]
    pub status: Status,
    /// Attribute values typed per the schema pack.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Value>,
    #[schema(value_type = Vec<Object>)]
    pub identifiers: Vec<Identifier>,
    /// Which transaction, council and row set each attribute.
    #[schema(value_type = Object)]
    pub provenance: BTreeMap<String, Provenance>,
    #[schema(value_type = Object)]
    pub created: Provenance,
    #[schema(value_type = Object)]
    pub updated: Provenance,
    pub read_at: ReadAtView,
}

/// The read point a view answers for.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ReadAtView {
    /// The journal sequence the read saw (the head for a current read).
    pub as_of_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_at: Option<Timestamp>,
}

impl EntityView {
    pub fn new(state: EntityState, read_at: ReadAtView) -> Self {
        let mut attributes = BTreeMap::new();
        let mut provenance = BTreeMap::new();
        for (name, attr) in state.attributes {
            attributes.insert(name.clone(), attr.value);
            provenance.insert(name, attr.provenance);
        }
        EntityView {
            id: state.id,
            kind: state.kind,
            entity_type: state.entity_type,
            version: state.version,
            status: state.status,
            attributes,
            identifiers: state.identifiers.into_iter().map(|i| i.identifier).collect(),
            provenance,
            created: state.created,
            updated: state.updated,
            read_at,
        }
    }
}

/// Every version of an entity, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    #[schema(value_type = String)]
    pub id: EntityId,
    /// Each with its change (delta with before and after), actor, source, recorded and valid time.
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<Version>,
}

/// The field-level delta between two versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffView {
    #[schema(value_type = String)]
    pub id: EntityId,
    pub from: u64,
    pub to: u64,
    #[schema(value_type = Vec<Object>)]
    pub delta: pole_model::Delta,
}

/// An entity's links as they stood at the read point.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinksView {
    #[schema(value_type = String)]
    pub id: EntityId,
    #[schema(value_type = Vec<Object>)]
    pub links: Vec<LinkView>,
    pub read_at: ReadAtView,
}

/// One page of entity ids and the cursor of the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView {
    #[schema(value_type = Vec<String>)]
    pub items: Vec<EntityId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Entities that match.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchesView {
    #[schema(value_type = Vec<String>)]
    pub items: Vec<EntityId>,
}

/// A committed transaction: `seq`, `recorded_at`, `hash`, `changes` written, `refs` (ids
/// assigned to the request's local refs) and `replayed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommittedView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub committed: Committed,
}

/// A page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalView {
    #[schema(value_type = Vec<Object>)]
    pub transactions: Vec<pole_model::Transaction>,
    pub head_seq: u64,
    /// Pass as `after` for the next page: the last sequence this page looked at (some
    /// transactions may not be the caller's to see).
    pub next_after: u64,
}

/// The national view of a person: computed from every source record identity resolution
/// links to the one asked for, by the schema pack's survivorship rules. No source's record
/// is changed by it; each value names the record and source it came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct NationalPersonView {
    /// The source record asked for.
    #[schema(value_type = String)]
    pub id: EntityId,
    /// Every source record of the person, and why each is one of them.
    pub records: Vec<SourceRecordView>,
    /// Each attribute's surviving value, its rule and source, and the other sources' values
    /// when they differ.
    pub attributes: BTreeMap<String, SurvivedView>,
    /// Every source's identifiers, each with the record that holds it.
    pub identifiers: Vec<HeldIdentifierView>,
}

/// One source record of a national person.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceRecordView {
    #[schema(value_type = String)]
    pub id: EntityId,
    /// The council (or hospital feed) whose record it is; none for a national record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributor: Option<String>,
    /// `health`, `council` or `national`: what survivorship's trust order ranks.
    pub source: String,
    /// The rule that linked it: `asked` for the record asked for, `nhs-number` for a record
    /// holding one of the person's valid NHS numbers.
    pub linked_by: String,
}

/// An attribute of the national view.
#[derive(Debug, Serialize, ToSchema)]
pub struct SurvivedView {
    #[schema(value_type = Object)]
    pub value: Value,
    /// `most_recent`, `most_trusted` or `all`.
    pub rule: String,
    pub from: ValueSourceView,
    /// Every source's value, the surviving one first: listed when sources disagree, or
    /// always for the `all` rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CandidateView>,
}

/// Where a value came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueSourceView {
    #[schema(value_type = String)]
    pub record: EntityId,
    /// `health`, `council` or `national`.
    pub source: String,
    #[schema(value_type = Object)]
    pub provenance: Provenance,
}

/// One source's value of an attribute.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    #[schema(value_type = Object)]
    pub value: Value,
    pub from: ValueSourceView,
}

/// An identifier and the source record holding it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldIdentifierView {
    pub system: String,
    pub value: String,
    #[schema(value_type = String)]
    pub record: EntityId,
}
