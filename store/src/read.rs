//! Reads: entities now or as of an instant, history, diffs between versions, links in both
//! directions as of an instant, identifier look-ups, search and listing. Identifiable values
//! are opened here, on the way out; an erased entity's come back absent.

use std::collections::BTreeMap;

use pole_model::{
    fold, Change, ChangeOp, Delta, EntityId, EntityState, FieldOp, HistoryEntry, Identifier, Kind, SearchKey, Source,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::keys::{self, Direction};
use crate::projection::LinkRecord;
use crate::store::Store;
use crate::vault::{self, DataKey};
use crate::{Result, StoreError};

/// A point on the recorded-time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// Right after the transaction with this sequence.
    Seq(u64),
    /// What the store knew at this recorded time.
    Time(Timestamp),
}

impl AsOf {
    /// Reads a sequence number, or an RFC 3339 time or date.
    pub fn parse(text: &str) -> std::result::Result<AsOf, ReadPointError> {
        let text = text.trim();
        match text.parse::<u64>() {
            Ok(seq) => Ok(AsOf::Seq(seq)),
            Err(_) => Timestamp::parse(text)
                .map(AsOf::Time)
                .map_err(|e| ReadPointError::Unreadable(format!("{e}; or give a sequence number"))),
        }
    }
}

/// Why an as-of lies outside the store's recorded history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadPointError {
    #[error("{0}")]
    Unreadable(String),
    #[error("sequences start at 1")]
    SeqZero,
    #[error("seq {seq} is after the journal head ({head})")]
    AfterHead { seq: u64, head: u64 },
    #[error("{0} is in the future")]
    InFuture(Timestamp),
    #[error("{at} is before the store's first transaction (recorded at {first})")]
    BeforeFirst { at: Timestamp, first: Timestamp },
    #[error("the store holds no transactions yet")]
    EmptyStore,
}

/// "What did we know at `as_of` about the world on `valid_at`". Both default to now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadAt {
    pub as_of: Option<AsOf>,
    pub valid_at: Option<Timestamp>,
}

impl ReadAt {
    pub const NOW: ReadAt = ReadAt { as_of: None, valid_at: None };

    pub fn as_of_seq(seq: u64) -> Self {
        ReadAt { as_of: Some(AsOf::Seq(seq)), valid_at: None }
    }
}

/// One version of an entity: the change that made it, with its transaction's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub version: u64,
    pub seq: u64,
    pub change_idx: usize,
    pub recorded_at: Timestamp,
    pub valid_time: Timestamp,
    pub actor: String,
    pub role: String,
    pub source: Source,
    pub change: Change,
}

/// What an entity is, without its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityHead {
    pub kind: pole_model::Kind,
    pub entity_type: String,
    pub active: bool,
}

/// A link seen from one of its ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub role: String,
    pub direction: Direction,
    /// The entity at the other end.
    pub other: EntityId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The transaction that made the link, and the one that ended it.
    pub added_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
}

impl Store {
    fn key_of(&self, id: &EntityId) -> Option<DataKey> {
        self.inner.vault.read().key(id).copied()
    }

    /// Checks that an as-of lies within the recorded history (from the first transaction to
    /// now) and resolves it to the sequence it names. The one rule the command line and the
    /// API both apply.
    pub fn check_as_of(&self, as_of: AsOf) -> Result<std::result::Result<u64, ReadPointError>> {
        let head = self.head().seq;
        Ok(match as_of {
            AsOf::Seq(0) => Err(ReadPointError::SeqZero),
            AsOf::Seq(seq) if seq > head => Err(ReadPointError::AfterHead { seq, head }),
            AsOf::Seq(seq) => Ok(seq),
            AsOf::Time(at) if at > Timestamp::now() => Err(ReadPointError::InFuture(at)),
            AsOf::Time(at) => match self.transaction_meta(1)?.map(|m| m.recorded_at) {
                None => Err(ReadPointError::EmptyStore),
                Some(first) if at < first => Err(ReadPointError::BeforeFirst { at, first }),
                Some(_) => Ok(self.seq_at(at)?),
            },
        })
    }

    /// Resolves an as-of to a sequence; `None` means now.
    pub fn resolve_as_of(&self, as_of: Option<AsOf>) -> Result<Option<u64>> {
        Ok(match as_of {
            None => None,
            Some(AsOf::Seq(seq)) => Some(seq),
            Some(AsOf::Time(at)) => Some(self.seq_at(at)?),
        })
    }

    /// An entity's history entries (sealed, as stored) up to `as_of_seq`.
    fn history_entries(&self, id: &EntityId, as_of_seq: Option<u64>) -> Result<Vec<HistoryEntry>> {
        let mut out = Vec::new();
        for item in self.backend().scan_prefix(&keys::history_prefix(id)) {
            let (key, value) = item?;
            if let (Some(as_of), Some((seq, _))) = (as_of_seq, keys::history_position(&key)) {
                if seq > as_of {
                    break;
                }
            }
            out.push(crate::projection::read_history_entry(&self.inner.frames, id, &key, &value)?);
        }
        Ok(out)
    }

    /// The entity as stored (identifiable values sealed), now or at a read point.
    pub fn entity_sealed(&self, id: &EntityId, at: ReadAt) -> Result<Option<EntityState>> {
        let as_of_seq = self.resolve_as_of(at.as_of)?;
        if as_of_seq.is_none() && at.valid_at.is_none() {
            return match self.backend().get(&keys::entity(id))? {
                Some(bytes) => Ok(Some(codec::decode_state(id, &bytes)?)),
                None => Ok(None),
            };
        }
        let history = self.history_entries(id, as_of_seq)?;
        fold(&history, at.valid_at).map_err(|e| StoreError::Journal(format!("history of {id} does not fold: {e}")))
    }

    /// What an entity is, now: its kind, type and whether it is active, read without
    /// decoding its values (access checks on the far ends of links need no more).
    pub fn entity_head(&self, id: &EntityId) -> Result<Option<EntityHead>> {
        #[derive(Deserialize)]
        struct Stored {
            kind: pole_model::Kind,
            #[serde(rename = "type")]
            entity_type: String,
            status: pole_model::Status,
        }
        Ok(match self.backend().get(&keys::entity(id))? {
            Some(bytes) => {
                let stored: Stored = codec::decode_state(id, &bytes)?;
                Some(EntityHead {
                    kind: stored.kind,
                    entity_type: stored.entity_type,
                    active: stored.status == pole_model::Status::Active,
                })
            }
            None => None,
        })
    }

    /// The entity with identifiable values opened, now or at a read point.
    pub fn entity(&self, id: &EntityId, at: ReadAt) -> Result<Option<EntityState>> {
        Ok(self.entity_sealed(id, at)?.map(|state| self.open_state(state)))
    }

    /// Opens sealed values; values whose key is gone (erased) are left out.
    pub fn open_state(&self, state: EntityState) -> EntityState {
        open_state(self.key_of(&state.id), state)
    }

    /// Opens the sealed values of a change of `entity`.
    pub fn open_change(&self, mut change: Change) -> Change {
        let key = self.key_of(&change.entity);
        let id = change.entity.clone();
        let open_delta = |delta: &mut Delta| {
            for op in delta.0.iter_mut() {
                match op {
                    FieldOp::Set { attribute, before, after } => {
                        *after =
                            vault::open_value(key.as_ref(), &id, attribute, after).unwrap_or(serde_json::Value::Null);
                        if let Some(b) = before.as_mut() {
                            *b = vault::open_value(key.as_ref(), &id, attribute, b).unwrap_or(serde_json::Value::Null);
                        }
                    }
                    FieldOp::Unset { attribute, before } => {
                        *before =
                            vault::open_value(key.as_ref(), &id, attribute, before).unwrap_or(serde_json::Value::Null);
                    }
                    FieldOp::AddIdentifier { identifier } | FieldOp::RemoveIdentifier { identifier } => {
                        if let Some(open) = vault::open_identifier(key.as_ref(), &id, identifier) {
                            *identifier = open;
                        } else {
                            identifier.value = "[erased]".into();
                        }
                    }
                }
            }
        };
        match &mut change.op {
            ChangeOp::Create { delta, .. } | ChangeOp::Update { delta } => open_delta(delta),
            _ => {}
        }
        change
    }

    /// Opens the sealed values of every change of a journaled transaction (values of erased
    /// entities stay unreadable).
    pub fn open_transaction(&self, mut tx: pole_model::Transaction) -> pole_model::Transaction {
        tx.changes = tx.changes.into_iter().map(|c| self.open_change(c)).collect();
        tx
    }

    /// Every version of an entity, oldest first.
    pub fn history(&self, id: &EntityId) -> Result<Vec<Version>> {
        let entries = self.history_entries(id, None)?;
        let mut metas: BTreeMap<u64, crate::projection::TxMeta> = BTreeMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for (n, entry) in entries.into_iter().enumerate() {
            let meta = match metas.entry(entry.seq) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    self.transaction_meta(entry.seq)?
                        .ok_or_else(|| StoreError::Journal(format!("no transaction facts for seq {}", entry.seq)))?,
                ),
            };
            out.push(Version {
                version: n as u64 + 1,
                seq: entry.seq,
                change_idx: entry.change_idx,
                recorded_at: entry.recorded_at,
                valid_time: entry.change.valid_time_or(entry.recorded_at),
                actor: meta.actor.clone(),
                role: meta.role.clone(),
                source: meta.source.clone(),
                change: self.open_change(entry.change),
            });
        }
        Ok(out)
    }

    /// The state right after version `version` (1-based), opened. `None` when the entity has
    /// fewer versions.
    pub fn entity_at_version(&self, id: &EntityId, version: u64) -> Result<Option<EntityState>> {
        let entries = self.history_entries(id, None)?;
        if version == 0 || version as usize > entries.len() {
            return Ok(None);
        }
        let state = fold(&entries[..version as usize], None)
            .map_err(|e| StoreError::Journal(format!("history of {id} does not fold: {e}")))?;
        Ok(state.map(|s| self.open_state(s)))
    }

    /// The delta from version `from` to version `to`; `None` if either does not exist.
    pub fn diff(&self, id: &EntityId, from: u64, to: u64) -> Result<Option<Delta>> {
        let (Some(a), Some(b)) = (self.entity_at_version(id, from)?, self.entity_at_version(id, to)?) else {
            return Ok(None);
        };
        Ok(Some(Delta::diff(&a.fields(), &b.fields())))
    }

    /// Links of an entity in one direction (or both), optionally of one role, as they stood
    /// at a read point.
    pub fn links(
        &self,
        id: &EntityId,
        direction: Option<Direction>,
        role: Option<&str>,
        at: ReadAt,
    ) -> Result<Vec<LinkView>> {
        let as_of_seq = self.resolve_as_of(at.as_of)?;
        let mut out = Vec::new();
        for dir in [Direction::Out, Direction::In] {
            if direction.is_some_and(|d| d != dir) {
                continue;
            }
            let base_len = keys::link_prefix(dir, id, None, None).len();
            for item in self.backend().scan_prefix(&keys::link_prefix(dir, id, role, None)) {
                let (key, bytes) = item?;
                let Some((role, other, added_seq)) = keys::parse_link(&key, base_len) else {
                    return Err(StoreError::Journal(format!("unreadable link key under {id}")));
                };
                let record: LinkRecord = codec::decode(&bytes)?;
                let visible = match as_of_seq {
                    None => record.removed_seq.is_none(),
                    Some(seq) => added_seq <= seq && record.removed_seq.is_none_or(|r| r > seq),
                };
                let valid = at
                    .valid_at
                    .is_none_or(|t| record.valid_from.is_none_or(|f| f <= t) && record.valid_to.is_none_or(|u| t < u));
                if visible && valid {
                    out.push(LinkView {
                        role,
                        direction: dir,
                        other,
                        valid_from: record.valid_from,
                        valid_to: record.valid_to,
                        attributes: record.attributes,
                        added_seq,
                        removed_seq: record.removed_seq,
                        council: record.council,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Entities holding an identifier (the value is normalised by its system's rules first).
    pub fn find_by_identifier(&self, identifier: &Identifier) -> Result<Vec<EntityId>> {
        match self.identifier_index_prefix(identifier)? {
            Some(prefix) => self.ids_under(&prefix),
            None => Ok(Vec::new()),
        }
    }

    /// The active entities holding an identifier among one contributor's own records
    /// (`None`: national records, which no contributor created): what a contributor's
    /// natural keys resolve to, since it may change nothing else.
    pub fn find_by_identifier_of(&self, identifier: &Identifier, contributor: Option<&str>) -> Result<Vec<EntityId>> {
        let mut own = Vec::new();
        for id in self.find_by_identifier(identifier)? {
            let mine = match contributor {
                Some(contributor) => self.contributed_by(contributor, &id)?,
                None => self.entity_sealed(&id, ReadAt::NOW)?.is_some_and(|s| s.contributor().is_none()),
            };
            if mine {
                own.push(id);
            }
        }
        Ok(own)
    }

    /// Where the identifier index holds an identifier's holders (identifiable values by
    /// blind token); `None` for an identifier the schema does not accept, which nobody holds.
    pub(crate) fn identifier_index_prefix(&self, identifier: &Identifier) -> Result<Option<Vec<u8>>> {
        let schema = self.schema();
        let Ok(normal) = schema.check_identifier(identifier) else { return Ok(None) };
        let value = match schema.identifier_classification(&normal.system) {
            pole_model::Classification::Identifiable => self.inner.vault.read().token(&normal.system, &normal.value)?,
            _ => normal.value,
        };
        Ok(Some(keys::identifier_prefix(&normal.system, &value)))
    }

    /// Active entities whose search key matches `value` exactly after normalisation.
    pub fn search(&self, key: SearchKey, value: &str) -> Result<Vec<EntityId>> {
        let normal = key.normalise(value);
        if normal.is_empty() {
            return Ok(Vec::new());
        }
        let token = self.inner.vault.read().token(key.as_str(), &normal)?;
        let mut ids = self.ids_under(&keys::search_prefix(key.as_str(), &token))?;
        ids.extend(self.ids_under(&keys::search_prefix(key.as_str(), &normal))?);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Entity ids of a kind (and type), at most `limit`, in index order (type, then id),
    /// starting after `cursor`. Returns the page and the cursor of the next page, if any.
    /// The cursor is opaque: the index key of the last entity returned.
    pub fn list(
        &self,
        kind: Option<Kind>,
        entity_type: Option<&str>,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<EntityId>, Option<Vec<u8>>)> {
        self.list_where(kind, entity_type, cursor, limit, |_| Ok(true))
    }

    /// [`list`](Store::list) keeping only the entities `keep` accepts, decided while the index
    /// is read so a page is full whenever enough entities qualify.
    pub fn list_where(
        &self,
        kind: Option<Kind>,
        entity_type: Option<&str>,
        cursor: Option<&[u8]>,
        limit: usize,
        keep: impl FnMut(&EntityId) -> Result<bool>,
    ) -> Result<(Vec<EntityId>, Option<Vec<u8>>)> {
        let kind = match (kind, entity_type) {
            (None, Some(ty)) => {
                Some(self.schema().type_def(ty).map(|d| d.kind).map_err(|e| StoreError::Journal(e.to_string()))?)
            }
            (k, _) => k,
        };
        self.page(&keys::kind_type_prefix(kind, entity_type), cursor, limit, keep)
    }

    /// Entities a council contributed to, optionally of a kind and type, in id order, at
    /// most `limit`, starting after `cursor` (the same opaque kind of cursor as [`list`]).
    ///
    /// [`list`]: Store::list
    pub fn list_by_council(
        &self,
        council: &str,
        kind: Option<Kind>,
        entity_type: Option<&str>,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<EntityId>, Option<Vec<u8>>)> {
        self.list_by_council_where(council, kind, entity_type, cursor, limit, |_| Ok(true))
    }

    /// [`list_by_council`](Store::list_by_council) keeping only what `keep` accepts.
    pub fn list_by_council_where(
        &self,
        council: &str,
        kind: Option<Kind>,
        entity_type: Option<&str>,
        cursor: Option<&[u8]>,
        limit: usize,
        mut keep: impl FnMut(&EntityId) -> Result<bool>,
    ) -> Result<(Vec<EntityId>, Option<Vec<u8>>)> {
        let filtered = kind.is_some() || entity_type.is_some();
        self.page(&keys::council_prefix(council), cursor, limit, |id| {
            let of_kind = !filtered
                || self.entity_sealed(id, ReadAt::NOW)?.is_some_and(|s| {
                    kind.is_none_or(|k| s.kind == k) && entity_type.is_none_or(|t| s.entity_type == t)
                });
            Ok(of_kind && keep(id)?)
        })
    }

    /// Whether a person currently objects to use beyond direct care (a point look-up in the
    /// opt-out index; the current state decides, whatever instant a read is for).
    pub fn opted_out(&self, id: &EntityId) -> Result<bool> {
        Ok(self.backend().get(&keys::opted_out(id))?.is_some())
    }

    /// Whether an entity is a contributor's own record, one its transactions created (a
    /// point look-up in the council index).
    pub fn contributed_by(&self, council: &str, id: &EntityId) -> Result<bool> {
        Ok(self.backend().get(&keys::council(council, id))?.is_some())
    }

    /// One page of the entity ids under an index prefix that `keep` accepts, resuming after
    /// `cursor`; the cursor of the next page is the last index key looked at.
    fn page(
        &self,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        limit: usize,
        mut keep: impl FnMut(&EntityId) -> Result<bool>,
    ) -> Result<(Vec<EntityId>, Option<Vec<u8>>)> {
        if cursor.is_some_and(|c| !c.starts_with(prefix)) {
            return Err(StoreError::BadCursor);
        }
        let start = resume_after(prefix, cursor);
        let mut out = Vec::new();
        let mut last_key = None;
        for item in self.backend().range(&start, &keys::prefix_end(prefix)) {
            let (key, _) = item?;
            if out.len() == limit {
                return Ok((out, last_key));
            }
            if let Some(id) = keys::trailing_id(&key) {
                if keep(&id)? {
                    out.push(id);
                }
            }
            last_key = Some(key);
        }
        Ok((out, None))
    }

    fn ids_under(&self, prefix: &[u8]) -> Result<Vec<EntityId>> {
        let mut ids = Vec::new();
        for item in self.backend().scan_prefix(prefix) {
            let (key, _) = item?;
            if let Some(id) = keys::trailing_id(&key) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// Opens an entity's sealed values with its key; values whose key is gone (erased) are left
/// out.
pub(crate) fn open_state(key: Option<DataKey>, mut state: EntityState) -> EntityState {
    let id = state.id.clone();
    state.attributes.retain(|name, attr| match vault::open_value(key.as_ref(), &id, name, &attr.value) {
        Some(value) => {
            attr.value = value;
            true
        }
        None => false,
    });
    state.identifiers.retain_mut(|ident| match vault::open_identifier(key.as_ref(), &id, &ident.identifier) {
        Some(open) => {
            ident.identifier = open;
            true
        }
        None => false,
    });
    state
}

/// Where a listing under `prefix` resumes: strictly after the cursor key. A cursor from
/// another listing starts it over.
fn resume_after(prefix: &[u8], cursor: Option<&[u8]>) -> Vec<u8> {
    match cursor {
        Some(c) if c.starts_with(prefix) => {
            let mut next = c.to_vec();
            next.push(0);
            next
        }
        _ => prefix.to_vec(),
    }
}
