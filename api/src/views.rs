//! Wire types: what the API answers. Built from the store's types, never persisted.

use std::collections::BTreeMap;

use pole_model::{EntityId, EntityState, Identifier, Kind, Provenance, Status, Timestamp};
use pole_store::{Committed, LinkView, Version};
use serde::Serialize;
use serde_json::Value;

/// An entity as read at a point in time.
#[derive(Debug, Serialize)]
pub struct EntityView {
    pub id: EntityId,
    pub kind: Kind,
    #[serde(rename = "type")]
    pub entity_type: String,
    pub version: u64,
    pub status: Status,
    pub attributes: BTreeMap<String, Value>,
    pub identifiers: Vec<Identifier>,
    /// Which transaction, council and row set each attribute.
    pub provenance: BTreeMap<String, Provenance>,
    pub created: Provenance,
    pub updated: Provenance,
    pub read_at: ReadAtView,
}

/// The read point a view answers for.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReadAtView {
    /// The journal sequence the read saw (the head for a current read).
    pub as_of_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub id: EntityId,
    pub versions: Vec<Version>,
}

#[derive(Debug, Serialize)]
pub struct DiffView {
    pub id: EntityId,
    pub from: u64,
    pub to: u64,
    pub delta: pole_model::Delta,
}

#[derive(Debug, Serialize)]
pub struct LinksView {
    pub id: EntityId,
    pub links: Vec<LinkView>,
    pub read_at: ReadAtView,
}

/// One page of entity ids and the cursor of the next page.
#[derive(Debug, Serialize)]
pub struct PageView {
    pub items: Vec<EntityId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MatchesView {
    pub items: Vec<EntityId>,
}

/// A committed transaction as the writer sees it.
#[derive(Debug, Serialize)]
pub struct CommittedView {
    #[serde(flatten)]
    pub committed: Committed,
}

/// A page of the change feed.
#[derive(Debug, Serialize)]
pub struct JournalView {
    pub transactions: Vec<pole_model::Transaction>,
    pub head_seq: u64,
}
