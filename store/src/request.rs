//! What a writer asks the store to do: changes stated as intent ("set these attributes"),
//! which the store turns into journal changes with before and after values.

use std::collections::BTreeMap;

use pole_model::{EntityId, Identifier, Operation, Source, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An atomic batch of changes. Either every change is committed or none is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    /// The token subject writing.
    pub actor: String,
    pub role: String,
    #[serde(default)]
    pub source: Source,
    /// Resubmitting a request with the same key changes nothing and answers with the
    /// original result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub changes: Vec<ChangeRequest>,
}

impl TransactionRequest {
    /// The operations the transaction asks for, each once, in [`Operation`] order: what
    /// access rules judge a write by.
    pub fn operations(&self) -> Vec<Operation> {
        let mut ops: Vec<Operation> = self.changes.iter().map(|c| c.op.operation()).collect();
        ops.sort();
        ops.dedup();
        ops
    }
}

/// The namespace a writer's idempotency keys (and so HL7 control ids) live in: its
/// contributor (the source's council), or for a national writer its actor. The same key in
/// two namespaces names two transactions, and neither writer learns of the other's.
pub fn idempotency_namespace(council: Option<&str>, actor: &str) -> String {
    match council {
        Some(council) => format!("council:{council}"),
        None => format!("actor:{actor}"),
    }
}

/// A new id of the store's own form (a ULID), for a create that names its entity itself: a
/// writer that queues a transaction referring to the entity before the store has answered
/// the one creating it cannot learn a store-assigned id in time.
pub fn new_entity_id() -> EntityId {
    match EntityId::new(ulid::Ulid::new().to_string()) {
        Ok(id) => id,
        Err(_) => unreachable!("a ULID is 26 letters and digits"),
    }
}

/// Names the entity a change targets: an existing id, or a local `ref` given to an entity
/// created earlier in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Entity(EntityId),
    Ref(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Entity(id) => write!(f, "{id}"),
            Target::Ref(name) => write!(f, "ref {name:?}"),
        }
    }
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The entity changed. For `create`, a `Ref` names the new entity for later changes of
    /// the same transaction and the store assigns its id; an `Entity` gives the new entity
    /// that id (see [`new_entity_id`]), refused when an entity has ever held it.
    pub target: Target,
    /// Refuse the whole transaction unless the entity is at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// When this became true in the world; defaults to the recorded time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_time: Option<Timestamp>,
    /// The source row (1-based) for provenance and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    pub op: OpRequest,
}

/// The requested operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpRequest {
    Create {
        #[serde(rename = "type")]
        entity_type: String,
        #[serde(default)]
        set: BTreeMap<String, Value>,
        #[serde(default)]
        identifiers: Vec<Identifier>,
    },
    Update {
        #[serde(default)]
        set: BTreeMap<String, Value>,
        #[serde(default)]
        unset: Vec<String>,
        #[serde(default)]
        add_identifiers: Vec<Identifier>,
        #[serde(default)]
        remove_identifiers: Vec<Identifier>,
    },
    Link {
        role: String,
        to: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_from: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_to: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, Value>,
    },
    Unlink {
        role: String,
        to: Target,
    },
    Retract {
        reason: String,
    },
    Merge {
        into: Target,
    },
    Unmerge,
    Erase {
        reason: String,
    },
}

impl OpRequest {
    pub fn name(&self) -> &'static str {
        self.operation().as_str()
    }

    pub fn operation(&self) -> Operation {
        match self {
            OpRequest::Create { .. } => Operation::Create,
            OpRequest::Update { .. } => Operation::Update,
            OpRequest::Link { .. } => Operation::Link,
            OpRequest::Unlink { .. } => Operation::Unlink,
            OpRequest::Retract { .. } => Operation::Retract,
            OpRequest::Merge { .. } => Operation::Merge,
            OpRequest::Unmerge => Operation::Unmerge,
            OpRequest::Erase { .. } => Operation::Erase,
        }
    }
}

impl ChangeRequest {
    /// A create of `entity_type` named `local_ref` within its transaction.
    pub fn create(local_ref: impl Into<String>, entity_type: impl Into<String>) -> Self {
        ChangeRequest {
            target: Target::Ref(local_ref.into()),
            expected_version: None,
            valid_time: None,
            row: None,
            op: OpRequest::Create { entity_type: entity_type.into(), set: BTreeMap::new(), identifiers: Vec::new() },
        }
    }

    /// An update of `target` with nothing set yet.
    pub fn update(target: Target) -> Self {
        ChangeRequest {
            target,
            expected_version: None,
            valid_time: None,
            row: None,
            op: OpRequest::Update {
                set: BTreeMap::new(),
                unset: Vec::new(),
                add_identifiers: Vec::new(),
                remove_identifiers: Vec::new(),
            },
        }
    }

    /// A link `target -role-> to`.
    pub fn link(target: Target, role: impl Into<String>, to: Target) -> Self {
        ChangeRequest {
            target,
            expected_version: None,
            valid_time: None,
            row: None,
            op: OpRequest::Link {
                role: role.into(),
                to,
                valid_from: None,
                valid_to: None,
                attributes: BTreeMap::new(),
            },
        }
    }

    /// Sets an attribute on a create or update (ignored for other operations).
    pub fn with(mut self, attribute: impl Into<String>, value: impl Into<Value>) -> Self {
        if let OpRequest::Create { set, .. } | OpRequest::Update { set, .. } = &mut self.op {
            set.insert(attribute.into(), value.into());
        }
        self
    }

    /// Adds an identifier on a create or update (ignored for other operations).
    pub fn with_identifier(mut self, system: impl Into<String>, value: impl Into<String>) -> Self {
        let identifier = Identifier::new(system, value);
        match &mut self.op {
            OpRequest::Create { identifiers, .. } => identifiers.push(identifier),
            OpRequest::Update { add_identifiers, .. } => add_identifiers.push(identifier),
            _ => {}
        }
        self
    }

    pub fn valid_at(mut self, valid_time: Timestamp) -> Self {
        self.valid_time = Some(valid_time);
        self
    }

    pub fn expecting(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }

    /// Sets the validity period of a link (ignored for other operations).
    pub fn link_period(mut self, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        if let OpRequest::Link { valid_from, valid_to, .. } = &mut self.op {
            *valid_from = from;
            *valid_to = to;
        }
        self
    }
}
