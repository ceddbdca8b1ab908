//! Entity state and how a change moves it: the fold that every projection and every
//! time-travel read is built from.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Change, ChangeOp, Delta, EntityId, FieldOp, Fields, Identifier, Kind, Timestamp};

/// The person attribute that records an opt-out: journaled like any change, effective from
/// the moment it is recorded.
pub const OPT_OUT_ATTRIBUTE: &str = "opted_out";

/// Which transaction, council and row set a value, and the valid time it was set for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub valid_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

/// The context a change is applied in: facts of its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeContext<'a> {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub council: Option<&'a str>,
}

impl ChangeContext<'_> {
    fn provenance(&self, change: &Change) -> Provenance {
        Provenance {
            seq: self.seq,
            recorded_at: self.recorded_at,
            valid_time: change.valid_time_or(self.recorded_at),
            council: self.council.map(str::to_owned),
            row: change.row,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub value: Value,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierValue {
    pub identifier: Identifier,
    pub provenance: Provenance,
}

/// An outgoing link `(this entity, role, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkValue {
    pub role: String,
    pub to: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    pub provenance: Provenance,
}

impl LinkValue {
    /// Whether the link's own validity period covers `instant` (open ends are unbounded).
    pub fn valid_at(&self, instant: Timestamp) -> bool {
        self.valid_from.is_none_or(|from| from <= instant) && self.valid_to.is_none_or(|to| instant < to)
    }
}

/// Lifecycle of an entity beyond its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Active,
    Retracted { reason: String },
    Merged { into: EntityId },
    Erased,
}

/// An entity as it stands after a set of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityState {
    pub id: EntityId,
    pub kind: Kind,
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Number of changes applied; starts at 1 with the create.
    pub version: u64,
    pub status: Status,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Sorted by identifier.
    pub identifiers: Vec<IdentifierValue>,
    /// Outgoing links, sorted by `(role, to)`.
    pub links: Vec<LinkValue>,
    pub created: Provenance,
    /// The change with the highest sequence applied.
    pub updated: Provenance,
    /// The latest valid time among applied changes: a change with an earlier valid time
    /// arrived late and the state must be refolded in valid-time order.
    pub last_valid_time: Timestamp,
}

/// Why a change cannot be applied to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("entity {0} already exists")]
    AlreadyExists(EntityId),
    #[error("entity {0} does not exist")]
    NotFound(EntityId),
    #[error("change for entity {change} applied to entity {state}")]
    WrongEntity { change: EntityId, state: EntityId },
}

impl EntityState {
    /// The fields without provenance, as deltas see them.
    pub fn fields(&self) -> Fields {
        Fields {
            attributes: self.attributes.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect(),
            identifiers: self.identifiers.iter().map(|i| i.identifier.clone()).collect(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// The contributor whose record this is: the council (or other source) whose
    /// transaction created it; `None` for a national record (reference data an
    /// administrator loaded). Only its contributor, or a national writer, changes it.
    pub fn contributor(&self) -> Option<&str> {
        self.created.council.as_deref()
    }

    /// Whether this is a person who objects to the use of their data beyond direct care
    /// (the attribute [`OPT_OUT_ATTRIBUTE`] is true).
    pub fn opted_out(&self) -> bool {
        self.kind == Kind::Person && self.attribute(OPT_OUT_ATTRIBUTE) == Some(&Value::Bool(true))
    }

    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name).map(|a| &a.value)
    }

    pub fn link(&self, role: &str, to: &EntityId) -> Option<&LinkValue> {
        self.links.iter().find(|l| l.role == role && &l.to == to)
    }

    fn apply_delta(&mut self, delta: &Delta, provenance: &Provenance) {
        // Lenient on `before`: in valid-time order a late change may meet a value that was
        // recorded after it. The strict check happens once, when the store computes the delta.
        for op in delta.ops() {
            match op {
                FieldOp::Set { attribute, after, .. } => {
                    self.attributes.insert(
                        attribute.clone(),
                        AttributeValue { value: after.clone(), provenance: provenance.clone() },
                    );
                }
                FieldOp::Unset { attribute, .. } => {
                    self.attributes.remove(attribute);
                }
                FieldOp::AddIdentifier { identifier } => {
                    match self.identifiers.binary_search_by(|i| i.identifier.cmp(identifier)) {
                        Ok(pos) => self.identifiers[pos].provenance = provenance.clone(),
                        Err(pos) => self.identifiers.insert(
                            pos,
                            IdentifierValue { identifier: identifier.clone(), provenance: provenance.clone() },
                        ),
                    }
                }
                FieldOp::RemoveIdentifier { identifier } => {
                    if let Ok(pos) = self.identifiers.binary_search_by(|i| i.identifier.cmp(identifier)) {
                        self.identifiers.remove(pos);
                    }
                }
            }
        }
    }
}

/// Applies one change to an entity's state (`None` before its create).
pub fn apply_change(
    state: Option<EntityState>,
    change: &Change,
    ctx: ChangeContext<'_>,
) -> Result<EntityState, ApplyError> {
    match (state, &change.op) {
        (Some(_), ChangeOp::Create { .. }) => Err(ApplyError::AlreadyExists(change.entity.clone())),
        (None, ChangeOp::Create { .. }) => {
            let shell = EntityState::shell(change, ctx).ok_or_else(|| ApplyError::NotFound(change.entity.clone()))?;
            apply_to(shell, change, ctx)
        }
        (None, _) => Err(ApplyError::NotFound(change.entity.clone())),
        (Some(state), _) if state.id != change.entity => {
            Err(ApplyError::WrongEntity { change: change.entity.clone(), state: state.id })
        }
        (Some(state), _) => apply_to(state, change, ctx),
    }
}

impl EntityState {
    /// The entity as its create makes it exist, before any field is set: version 0.
    fn shell(create: &Change, ctx: ChangeContext<'_>) -> Option<EntityState> {
        let ChangeOp::Create { kind, entity_type, .. } = &create.op else { return None };
        let provenance = ctx.provenance(create);
        Some(EntityState {
            id: create.entity.clone(),
            kind: *kind,
            entity_type: entity_type.clone(),
            version: 0,
            status: Status::Active,
            attributes: BTreeMap::new(),
            identifiers: Vec::new(),
            links: Vec::new(),
            created: provenance.clone(),
            updated: provenance,
            last_valid_time: Timestamp::MIN,
        })
    }
}

/// Applies a change to an existing state. A create's fields apply like an update's: in a
/// valid-time fold they take their turn at the create's valid time.
fn apply_to(mut state: EntityState, change: &Change, ctx: ChangeContext<'_>) -> Result<EntityState, ApplyError> {
    let provenance = ctx.provenance(change);
    match &change.op {
        ChangeOp::Create { delta, .. } | ChangeOp::Update { delta } => state.apply_delta(delta, &provenance),
        ChangeOp::Link { role, to, valid_from, valid_to, attributes } => {
            let link = LinkValue {
                role: role.clone(),
                to: to.clone(),
                valid_from: *valid_from,
                valid_to: *valid_to,
                attributes: attributes.clone(),
                provenance: provenance.clone(),
            };
            match state.links.binary_search_by(|l| (l.role.as_str(), &l.to).cmp(&(role.as_str(), to))) {
                Ok(pos) => state.links[pos] = link,
                Err(pos) => state.links.insert(pos, link),
            }
        }
        ChangeOp::Unlink { role, to } => {
            if let Ok(pos) = state.links.binary_search_by(|l| (l.role.as_str(), &l.to).cmp(&(role.as_str(), to))) {
                state.links.remove(pos);
            }
        }
        ChangeOp::Retract { reason } => state.status = Status::Retracted { reason: reason.clone() },
        ChangeOp::Merge { into } => state.status = Status::Merged { into: into.clone() },
        ChangeOp::Unmerge => state.status = Status::Active,
        ChangeOp::Erase { .. } => state.status = Status::Erased,
    }
    state.version += 1;
    if provenance.seq >= state.updated.seq {
        state.updated = provenance.clone();
    }
    state.last_valid_time = state.last_valid_time.max(provenance.valid_time);
    Ok(state)
}

/// The order in which an entity's changes are folded: by valid time, then by sequence and
/// position in the transaction. Recorded-time reads restrict the set of changes; valid-time
/// order decides which value wins. The create's values take their turn like any other
/// change's, so a change recorded later about an earlier time never overrides them.
pub fn fold_order(a: (&Change, u64, usize, Timestamp), b: (&Change, u64, usize, Timestamp)) -> Ordering {
    let key =
        |(change, seq, idx, recorded): (&Change, u64, usize, Timestamp)| (change.valid_time_or(recorded), seq, idx);
    key(a).cmp(&key(b))
}

/// One change of an entity's history with the transaction facts it needs to be folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub change_idx: usize,
    pub recorded_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    pub change: Change,
}

/// Folds an entity's history into its state, in [`fold_order`], keeping only the changes
/// with `valid time <= valid_at` (all of them when `valid_at` is `None`). `None` means the
/// entity did not exist under those conditions: its create is not in `history`, or no
/// change of it is valid by `valid_at`.
pub fn fold(history: &[HistoryEntry], valid_at: Option<Timestamp>) -> Result<Option<EntityState>, ApplyError> {
    fold_entries(history, valid_at)
}

/// [`fold`] over entries held in more than one place (a stored history and the changes of
/// a transaction being prepared), without copying them into one slice.
pub fn fold_entries<'a>(
    history: impl IntoIterator<Item = &'a HistoryEntry>,
    valid_at: Option<Timestamp>,
) -> Result<Option<EntityState>, ApplyError> {
    let history: Vec<&HistoryEntry> = history.into_iter().collect();
    let Some(create) = history.iter().copied().find(|e| matches!(e.change.op, ChangeOp::Create { .. })) else {
        return match history.first() {
            Some(entry) => Err(ApplyError::NotFound(entry.change.entity.clone())),
            None => Ok(None),
        };
    };
    let mut entries: Vec<&HistoryEntry> = history
        .iter()
        .copied()
        .filter(|e| valid_at.is_none_or(|at| e.change.valid_time_or(e.recorded_at) <= at))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    entries.sort_by(|a, b| {
        fold_order((&a.change, a.seq, a.change_idx, a.recorded_at), (&b.change, b.seq, b.change_idx, b.recorded_at))
    });
    let ctx_of = |e: &HistoryEntry| ChangeContext { seq: e.seq, recorded_at: e.recorded_at, council: None };
    let create_ctx = ChangeContext { council: create.council.as_deref(), ..ctx_of(create) };
    let mut state = EntityState::shell(&create.change, create_ctx)
        .ok_or_else(|| ApplyError::NotFound(create.change.entity.clone()))?;
    for entry in entries {
        let ctx = ChangeContext { seq: entry.seq, recorded_at: entry.recorded_at, council: entry.council.as_deref() };
        state = apply_to(state, &entry.change, ctx)?;
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(s: &str) -> EntityId {
        EntityId::new(s).unwrap()
    }

    fn entry(seq: u64, valid: Option<&str>, op: ChangeOp) -> HistoryEntry {
        HistoryEntry {
            seq,
            change_idx: 0,
            recorded_at: Timestamp::from_micros(seq as i64 * 1_000_000_000_000),
            council: Some("305".into()),
            change: Change { entity: id("p1"), valid_time: valid.map(|v| Timestamp::parse(v).unwrap()), row: None, op },
        }
    }

    fn set(attr: &str, v: Value) -> Delta {
        Delta(vec![FieldOp::Set { attribute: attr.into(), before: None, after: v }])
    }

    #[test]
    fn create_update_link_fold() {
        let history = vec![
            entry(
                1,
                None,
                ChangeOp::Create {
                    kind: Kind::Person,
                    entity_type: "person".into(),
                    delta: set("family_name", json!("Smith")),
                },
            ),
            entry(2, None, ChangeOp::Update { delta: set("family_name", json!("Smyth")) }),
            entry(
                3,
                None,
                ChangeOp::Link {
                    role: "resides_at".into(),
                    to: id("a1"),
                    valid_from: None,
                    valid_to: None,
                    attributes: BTreeMap::new(),
                },
            ),
        ];
        let state = fold(&history, None).unwrap().unwrap();
        assert_eq!(state.version, 3);
        assert_eq!(state.attribute("family_name"), Some(&json!("Smyth")));
        assert_eq!(state.links.len(), 1);
        assert_eq!(state.updated.seq, 3);
    }

    #[test]
    fn late_recorded_change_loses_to_later_valid_time() {
        // seq 2 says the address changed in 2024; seq 3 arrives late saying what held in 2023.
        let history = vec![
            entry(
                1,
                Some("2020-01-01"),
                ChangeOp::Create { kind: Kind::Person, entity_type: "person".into(), delta: set("gender", json!("1")) },
            ),
            entry(2, Some("2024-06-01"), ChangeOp::Update { delta: set("gender", json!("2")) }),
            entry(3, Some("2023-01-01"), ChangeOp::Update { delta: set("gender", json!("9")) }),
        ];
        let now = fold(&history, None).unwrap().unwrap();
        assert_eq!(now.attribute("gender"), Some(&json!("2")));
        let in_2023 = fold(&history, Some(Timestamp::parse("2023-06-01").unwrap())).unwrap().unwrap();
        assert_eq!(in_2023.attribute("gender"), Some(&json!("9")));
        let in_2019 = fold(&history, Some(Timestamp::parse("2019-06-01").unwrap())).unwrap();
        assert!(in_2019.is_none());
    }

    #[test]
    fn create_twice_is_refused() {
        let create = entry(
            1,
            None,
            ChangeOp::Create { kind: Kind::Person, entity_type: "person".into(), delta: Delta::default() },
        );
        let ctx = ChangeContext { seq: 1, recorded_at: create.recorded_at, council: None };
        let state = apply_change(None, &create.change, ctx).unwrap();
        assert_eq!(apply_change(Some(state), &create.change, ctx), Err(ApplyError::AlreadyExists(id("p1"))));
    }

    #[test]
    fn status_changes() {
        let mut history = vec![entry(
            1,
            None,
            ChangeOp::Create { kind: Kind::Person, entity_type: "person".into(), delta: Delta::default() },
        )];
        history.push(entry(2, None, ChangeOp::Merge { into: id("p2") }));
        assert_eq!(fold(&history, None).unwrap().unwrap().status, Status::Merged { into: id("p2") });
        history.push(entry(3, None, ChangeOp::Unmerge));
        assert_eq!(fold(&history, None).unwrap().unwrap().status, Status::Active);
        history.push(entry(4, None, ChangeOp::Erase { reason: "request".into() }));
        assert_eq!(fold(&history, None).unwrap().unwrap().status, Status::Erased);
    }
}
