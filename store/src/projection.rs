//! Projections: how a committed transaction changes current state, history and indexes.
//! The writer applies each transaction here right after it is sequenced, and replay applies
//! the journal here from the start: one code path, so a rebuilt store equals the live one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use pole_model::{
    apply_change, fold_entries, ChangeContext, EntityId, EntityState, HistoryEntry, LinkValue, SchemaRegistry, Status,
    Timestamp, Transaction,
};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Snapshot, WriteBatch};
use crate::codec;
use crate::journal::{ChangeSpan, FrameLocation, FrameReader};
use crate::keys::{self, Direction};
use crate::vault::{self, KeyRing};
use crate::{Result, StoreError};
use pole_audit::Hash;

/// Counters kept with the projections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub transactions: u64,
    pub changes: u64,
    pub entities: u64,
}

/// The facts of a committed transaction kept beside its frame's location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxMeta {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub hash: Hash,
    pub location: FrameLocation,
    pub actor: String,
    pub role: String,
    pub source: pole_model::Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub changes: usize,
}

/// A link record in the `lo/` and `li/` indexes: when it was added (in the key) and removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
}

/// What the idempotency index keeps for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub seq: u64,
    pub fingerprint: String,
    pub refs: BTreeMap<String, EntityId>,
    pub changes: usize,
}

/// A history entry as stored under `h/`: where its change lies in the journal, and what
/// of its transaction a fold needs. The change itself is not copied: it is read from the
/// journal ([`FrameReader`]), which holds it once already. Fixed layout: segment:be8
/// offset:be8 start:be4 len:be4 recorded micros:be8, then the council's code (none if empty).
#[derive(Debug, Clone, PartialEq)]
struct HistoryPointer<'a> {
    location: FrameLocation,
    span: ChangeSpan,
    recorded_at: Timestamp,
    council: Option<&'a str>,
}

impl<'a> HistoryPointer<'a> {
    const FIXED: usize = 32;

    fn to_bytes(&self) -> Vec<u8> {
        let council = self.council.unwrap_or_default();
        let mut out = Vec::with_capacity(Self::FIXED + council.len());
        out.extend_from_slice(&self.location.segment.to_be_bytes());
        out.extend_from_slice(&self.location.offset.to_be_bytes());
        out.extend_from_slice(&self.span.start.to_be_bytes());
        out.extend_from_slice(&self.span.len.to_be_bytes());
        out.extend_from_slice(&self.recorded_at.micros().to_be_bytes());
        out.extend_from_slice(council.as_bytes());
        out
    }

    fn from_bytes(id: &EntityId, bytes: &'a [u8]) -> Result<Self> {
        let damaged = || StoreError::Encoding(format!("a history entry of entity {id} is damaged"));
        if bytes.len() < Self::FIXED {
            return Err(damaged());
        }
        let (fixed, council) = bytes.split_at(Self::FIXED);
        let be8 = |at: usize| fixed[at..at + 8].try_into().map_err(|_| damaged());
        let be4 = |at: usize| fixed[at..at + 4].try_into().map_err(|_| damaged());
        let council = std::str::from_utf8(council).map_err(|_| damaged())?;
        Ok(HistoryPointer {
            location: FrameLocation { segment: u64::from_be_bytes(be8(0)?), offset: u64::from_be_bytes(be8(8)?) },
            span: ChangeSpan { start: u32::from_be_bytes(be4(16)?), len: u32::from_be_bytes(be4(20)?) },
            recorded_at: Timestamp::from_micros(i64::from_be_bytes(be8(24)?)),
            council: (!council.is_empty()).then_some(council),
        })
    }
}

/// The history entry of change `idx` of a transaction held in memory.
fn history_entry_of(tx: &Transaction, idx: usize, change: &pole_model::Change) -> HistoryEntry {
    HistoryEntry {
        seq: tx.seq,
        change_idx: idx,
        recorded_at: tx.recorded_at,
        council: tx.source.council.clone(),
        change: change.clone(),
    }
}

/// The history entry stored under `key` (an `h/` key of entity `id`) as `value`, its change
/// read from the journal.
pub(crate) fn read_history_entry(
    journal: &FrameReader,
    id: &EntityId,
    key: &[u8],
    value: &[u8],
) -> Result<HistoryEntry> {
    let (seq, change_idx) = keys::history_position(key)
        .ok_or_else(|| StoreError::Encoding(format!("a history key of entity {id} is damaged")))?;
    let pointer = HistoryPointer::from_bytes(id, value)?;
    let bytes = journal.read_span(pointer.location, pointer.span)?;
    let change: pole_model::Change = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::Journal(format!("seq {seq} change {change_idx} of entity {id} does not read from the journal: {e}"))
    })?;
    if change.entity != *id {
        return Err(StoreError::Journal(format!(
            "the history of entity {id} points at seq {seq} change {change_idx}, which is about {}",
            change.entity
        )));
    }
    Ok(HistoryEntry {
        seq,
        change_idx: change_idx as usize,
        recorded_at: pointer.recorded_at,
        council: pointer.council.map(str::to_owned),
        change,
    })
}

/// Writes staged over a backend for one group of transactions: reads see the staged writes
/// (and the overlays of earlier groups not yet applied), and the group lands in the backend
/// as one atomic batch.
pub struct Stage<'a> {
    backend: &'a dyn Backend,
    /// Where history entries of earlier groups are read from.
    journal: &'a FrameReader,
    /// This stage's transactions not yet in the journal (the writer stages a group before it
    /// writes it; a dry run never writes), oldest first: their history entries are read here.
    unwritten: Vec<Arc<Transaction>>,
    /// Earlier groups, oldest first, whose batches may not have reached the backend yet.
    below: Vec<Arc<Overlay>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Decoded states touched in this group; written out once at the end.
    states: HashMap<EntityId, EntityState>,
    /// States read from the overlays or the backend in this group and not yet changed,
    /// decoded once: a change's entity is read when the change is checked, again when its
    /// transaction moves past it, and a last time when it is applied.
    read: RefCell<HashMap<EntityId, EntityState>>,
    counts: Option<Counts>,
    /// Decoded histories read in this group, kept up to date as it stages entries: an
    /// entity's late changes are judged and refolded against its history, often many
    /// times in one group (every older row of a file about one concern).
    histories: RefCell<HashMap<EntityId, Vec<HistoryEntry>>>,
    /// The backend's point reads for this group, from one snapshot ([`Stage::over`]),
    /// taken at the first read.
    snapshot: Option<RefCell<Option<Box<dyn Snapshot + 'a>>>>,
}

/// A group's staged writes, sequenced and durable in the journal, frozen while its batch
/// is applied to the backend on another thread. The next group's [`Stage`] reads through it,
/// so preparing that group never waits for the backend. Whoever applies it holds the last
/// strong reference and drops it once the backend holds the batch; stages keep only weak
/// ones between groups, so a dropped overlay means "read the backend". Reading an overlay
/// after its batch is applied gives the same answers as the backend: later groups' writes
/// sit above it.
#[derive(Debug)]
pub struct Overlay {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Entity states stay decoded: the next group reads them, the batch encodes them.
    states: HashMap<EntityId, EntityState>,
}

impl Overlay {
    /// The overlay as one atomic batch, in key order (the B-tree inserts go faster so).
    pub fn to_batch(&self) -> Result<WriteBatch> {
        let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(self.writes.len() + self.states.len());
        ops.extend(self.writes.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (id, state) in &self.states {
            ops.push((keys::entity(id), Some(codec::encode_state(state)?)));
        }
        // Stable, so were a key both written and a state, the state (pushed last) wins.
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(WriteBatch { ops })
    }
}

/// The overlays of `pending` (oldest first) that are still being applied; forgets the rest.
pub fn live_overlays(pending: &mut Vec<Weak<Overlay>>) -> Vec<Arc<Overlay>> {
    pending.retain(|overlay| overlay.strong_count() > 0);
    pending.iter().filter_map(Weak::upgrade).collect()
}

impl std::fmt::Debug for Stage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("below", &self.below.len())
            .field("writes", &self.writes.len())
            .field("states", &self.states.len())
            .finish()
    }
}

impl<'a> Stage<'a> {
    /// A stage over the backend, whose every read sees the backend as it is then.
    pub fn new(backend: &'a dyn Backend, journal: &'a FrameReader) -> Self {
        Stage {
            backend,
            journal,
            unwritten: Vec::new(),
            below: Vec::new(),
            writes: BTreeMap::new(),
            states: HashMap::new(),
            read: RefCell::new(HashMap::new()),
            counts: None,
            histories: RefCell::new(HashMap::new()),
            snapshot: None,
        }
    }

    /// A stage for one group over `below` (oldest first, held until the stage is dropped)
    /// over the backend, whose point reads come from one snapshot of it taken after `below`
    /// was: a group applied since is still among `below`, so nothing is missed.
    pub fn over(backend: &'a dyn Backend, journal: &'a FrameReader, below: Vec<Arc<Overlay>>) -> Self {
        Stage { below, snapshot: Some(RefCell::new(None)), ..Stage::new(backend, journal) }
    }

    /// A point read of the backend, through the group's snapshot if it has one.
    fn backend_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(snapshot) = &self.snapshot else { return self.backend.get(key) };
        let mut snapshot = snapshot.borrow_mut();
        let snapshot = match snapshot.as_mut() {
            Some(taken) => taken,
            None => snapshot.insert(self.backend.snapshot()?),
        };
        snapshot.get(key)
    }

    /// A staged value. Entity states are read with [`Stage::entity`], never here: they are
    /// held decoded until the batch is made.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(staged) = self.writes.get(key) {
            return Ok(staged.clone());
        }
        for overlay in self.below.iter().rev() {
            if let Some(staged) = overlay.writes.get(key) {
                return Ok(staged.clone());
            }
        }
        self.backend_get(key)
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Pairs under `prefix`, staged writes merged over the overlays' and the backend's.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged = BTreeMap::new();
        for item in self.backend.scan_prefix(prefix) {
            let (k, v) = item?;
            merged.insert(k, v);
        }
        let layers = self.below.iter().map(|o| &o.writes).chain(std::iter::once(&self.writes));
        for writes in layers {
            for (k, v) in writes.range(prefix.to_vec()..).take_while(|(k, _)| k.starts_with(prefix)) {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
        }
        Ok(merged.into_iter().collect())
    }

    /// Makes room for the states of `changes` more changes, so a large group does not
    /// rehash its map of whole states as it grows.
    pub fn reserve(&mut self, changes: usize) {
        self.states.reserve(changes);
    }

    /// The current state of an entity, taken out of the group's states (the caller puts
    /// the state after its change back): saves a clone per change.
    fn take_entity(&mut self, id: &EntityId) -> Result<Option<EntityState>> {
        if let Some(state) = self.states.remove(id) {
            return Ok(Some(state));
        }
        if let Some(state) = self.read.get_mut().remove(id) {
            return Ok(Some(state));
        }
        self.stored_entity(id)
    }

    /// The current state of an entity, including this group's changes.
    pub fn entity(&self, id: &EntityId) -> Result<Option<EntityState>> {
        if let Some(state) = self.states.get(id) {
            return Ok(Some(state.clone()));
        }
        if let Some(state) = self.read.borrow().get(id) {
            return Ok(Some(state.clone()));
        }
        let state = self.stored_entity(id)?;
        if let Some(state) = &state {
            self.read.borrow_mut().insert(id.clone(), state.clone());
        }
        Ok(state)
    }

    /// The state of an entity before this group: from the overlays, else the backend.
    fn stored_entity(&self, id: &EntityId) -> Result<Option<EntityState>> {
        for overlay in self.below.iter().rev() {
            if let Some(state) = overlay.states.get(id) {
                return Ok(Some(state.clone()));
            }
        }
        match self.get(&keys::entity(id))? {
            Some(bytes) => Ok(Some(codec::decode_state(id, &bytes)?)),
            None => Ok(None),
        }
    }

    fn counts(&mut self) -> Result<&mut Counts> {
        if self.counts.is_none() {
            let counts = match self.get(keys::STATS)? {
                Some(bytes) => codec::decode(&bytes)?,
                None => Counts::default(),
            };
            self.counts = Some(counts);
        }
        Ok(self.counts.get_or_insert_with(Counts::default))
    }

    /// Freezes the staged writes, to be applied as one batch ([`Overlay::to_batch`]) while
    /// later stages read through them.
    pub fn freeze(mut self) -> Result<Overlay> {
        if let Some(counts) = self.counts {
            self.writes.insert(keys::STATS.to_vec(), Some(codec::encode(&counts)?));
        }
        Ok(Overlay { writes: self.writes, states: self.states })
    }

    /// Applies one committed transaction to the staged projections. `location` is where
    /// its frame is in the journal, `None` while it is not written yet (the writer's group
    /// before its write, which [`Stage::written_at`] records after it; a dry run's
    /// transactions); `spans` locate its changes in the frame's payload.
    pub fn apply_transaction(
        &mut self,
        schema: &SchemaRegistry,
        keys: &dyn KeyRing,
        tx: &Arc<Transaction>,
        hash: Hash,
        location: Option<FrameLocation>,
        spans: &[ChangeSpan],
    ) -> Result<()> {
        if spans.len() != tx.changes.len() {
            return Err(StoreError::Journal(format!(
                "seq {}: {} changes but {} located in the payload",
                tx.seq,
                tx.changes.len(),
                spans.len()
            )));
        }
        if location.is_none() {
            self.unwritten.push(Arc::clone(tx));
        }
        let council = tx.source.council.as_deref();
        // Unwritten, the entries' keys are staged (so scans find them) and read from
        // `unwritten`; `written_at` points them at the frame.
        let at = location.unwrap_or(FrameLocation { segment: 0, offset: 0 });
        let mut created = 0u64;
        for ((idx, change), span) in tx.changes.iter().enumerate().zip(spans) {
            let before = self.take_entity(&change.entity)?;
            // Staged change by change: a late change refolds the history up to itself.
            self.put_history_entry(tx, idx, at, *span);
            if let Some(history) = self.histories.get_mut().get_mut(&change.entity) {
                // Entries are keyed by sequence: a new one sorts last.
                history.push(history_entry_of(tx, idx, change));
            }
            let late = before.as_ref().is_some_and(|s| change.valid_time_or(tx.recorded_at) < s.last_valid_time);
            let after = if late {
                // A late-recorded change: refold in valid-time order (its history entry is staged).
                self.with_history(&change.entity, |history| fold_entries(history, None))?
                    .map_err(|e| inconsistent(tx.seq, idx, e))?
            } else {
                let ctx = ChangeContext { seq: tx.seq, recorded_at: tx.recorded_at, council };
                Some(apply_change(before.clone(), change, ctx).map_err(|e| inconsistent(tx.seq, idx, e))?)
            };
            let Some(after) = after else {
                return Err(StoreError::Journal(format!("seq {} change {idx}: the entity folded to nothing", tx.seq)));
            };
            if before.is_none() {
                created += 1;
                self.put(keys::kind_type(after.kind, &after.entity_type, &after.id), Vec::new());
                // A record is its creator's: the one contributor that may change or read it.
                if let Some(council) = after.contributor() {
                    self.put(keys::council(council, &after.id), Vec::new());
                }
            }
            if before.as_ref().is_some_and(EntityState::opted_out) != after.opted_out() {
                if after.opted_out() {
                    self.put(keys::opted_out(&after.id), Vec::new());
                } else {
                    self.delete(keys::opted_out(&after.id));
                }
            }
            let touched = if late { Touched::All } else { Touched::of(change) };
            self.update_lookup_indexes(schema, keys, before.as_ref(), &after, &touched)?;
            self.update_link_index(tx.seq, before.as_ref(), &after)?;
            self.states.insert(after.id.clone(), after);
        }
        let meta = TxMeta {
            seq: tx.seq,
            recorded_at: tx.recorded_at,
            hash,
            location: at,
            actor: tx.actor.clone(),
            role: tx.role.clone(),
            source: tx.source.clone(),
            idempotency_key: tx.idempotency_key.clone(),
            reason: tx.reason.clone(),
            changes: tx.changes.len(),
        };
        self.put(keys::transaction(tx.seq), codec::encode(&meta)?);
        self.put(keys::recorded(tx.recorded_at), tx.seq.to_be_bytes().to_vec());
        if let Some(key) = &tx.idempotency_key {
            let record = IdempotencyRecord {
                seq: tx.seq,
                fingerprint: tx.request_fingerprint.clone().unwrap_or_default(),
                refs: tx.refs.clone(),
                changes: tx.changes.len(),
            };
            let namespace = crate::idempotency_namespace(tx.source.council.as_deref(), &tx.actor);
            self.put(keys::idempotency(&namespace, key), codec::encode(&record)?);
        }
        self.put(keys::APPLIED.to_vec(), tx.seq.to_be_bytes().to_vec());
        let counts = self.counts()?;
        counts.transactions += 1;
        counts.changes += tx.changes.len() as u64;
        counts.entities += created;
        Ok(())
    }

    /// Calls `f` with every history entry of an entity, staged ones included, in sequence
    /// order; decoded once a group.
    pub fn with_history<R>(&self, id: &EntityId, f: impl FnOnce(&[HistoryEntry]) -> R) -> Result<R> {
        if let Some(history) = self.histories.borrow().get(id) {
            return Ok(f(history));
        }
        let history: Vec<HistoryEntry> = self
            .scan_prefix(&keys::history_prefix(id))?
            .into_iter()
            .map(|(k, v)| self.history_entry(id, &k, &v))
            .collect::<Result<_>>()?;
        let answer = f(&history);
        self.histories.borrow_mut().insert(id.clone(), history);
        Ok(answer)
    }

    /// A stored history entry: from this stage's unwritten transactions, else the journal.
    fn history_entry(&self, id: &EntityId, key: &[u8], value: &[u8]) -> Result<HistoryEntry> {
        if let Some((seq, idx)) = keys::history_position(key) {
            if let Ok(at) = self.unwritten.binary_search_by_key(&seq, |tx| tx.seq) {
                let tx = &self.unwritten[at];
                if let Some(change) = tx.changes.get(idx as usize) {
                    return Ok(history_entry_of(tx, idx as usize, change));
                }
            }
        }
        read_history_entry(self.journal, id, key, value)
    }

    /// Records where the writer wrote a transaction this stage applied unwritten: its
    /// facts and its history entries now point at its frame.
    pub fn written_at(&mut self, tx: &Transaction, location: FrameLocation, spans: &[ChangeSpan]) -> Result<()> {
        let key = keys::transaction(tx.seq);
        if let Some(bytes) = self.get(&key)? {
            let mut meta: TxMeta = codec::decode(&bytes)?;
            meta.location = location;
            self.put(key, codec::encode(&meta)?);
        }
        for (idx, span) in spans.iter().enumerate() {
            self.put_history_entry(tx, idx, location, *span);
        }
        Ok(())
    }

    /// Stages the history entry of change `idx`: its pointer into the frame at `at`.
    fn put_history_entry(&mut self, tx: &Transaction, idx: usize, at: FrameLocation, span: ChangeSpan) {
        let Some(change) = tx.changes.get(idx) else { return };
        let council = tx.source.council.as_deref();
        let pointer = HistoryPointer { location: at, span, recorded_at: tx.recorded_at, council };
        self.put(keys::history(&change.entity, tx.seq, idx), pointer.to_bytes());
    }

    fn update_lookup_indexes(
        &mut self,
        schema: &SchemaRegistry,
        keys: &dyn KeyRing,
        before: Option<&EntityState>,
        after: &EntityState,
        touched: &Touched,
    ) -> Result<()> {
        // Opening sealed values and hashing tokens is the costly part: only the fields a
        // change touched can move index entries, unless the entity's status moved.
        let touched = match before {
            Some(b) if b.status != after.status => &Touched::All,
            _ => touched,
        };
        if matches!(touched, Touched::Fields { attributes, systems } if attributes.is_empty() && systems.is_empty()) {
            return Ok(());
        }
        let old = match before {
            Some(state) => lookup_keys(schema, keys, state, touched)?,
            None => BTreeSet::new(),
        };
        let new = lookup_keys(schema, keys, after, touched)?;
        for gone in old.difference(&new) {
            self.delete(gone.clone());
        }
        for added in new.difference(&old) {
            self.put(added.clone(), Vec::new());
        }
        Ok(())
    }

    /// Keeps the link index in step with the entity's folded links: a link that left the
    /// state is closed at this sequence, a new or changed one opens a record.
    fn update_link_index(&mut self, seq: u64, before: Option<&EntityState>, after: &EntityState) -> Result<()> {
        let same = |a: &LinkValue, b: &LinkValue| {
            a.valid_from == b.valid_from && a.valid_to == b.valid_to && a.attributes == b.attributes
        };
        let old: &[LinkValue] = before.map(|b| b.links.as_slice()).unwrap_or_default();
        for link in old {
            if !after.link(&link.role, &link.to).is_some_and(|new| same(link, new)) {
                self.close_link(seq, &after.id, link)?;
            }
        }
        for link in &after.links {
            let unchanged = before.and_then(|b| b.link(&link.role, &link.to)).is_some_and(|old| same(old, link));
            if !unchanged {
                let record = LinkRecord {
                    removed_seq: None,
                    valid_from: link.valid_from,
                    valid_to: link.valid_to,
                    attributes: link.attributes.clone(),
                    council: link.provenance.council.clone(),
                };
                let bytes = codec::encode(&record)?;
                self.put(keys::link(Direction::Out, &after.id, &link.role, &link.to, seq), bytes.clone());
                self.put(keys::link(Direction::In, &link.to, &link.role, &after.id, seq), bytes);
            }
        }
        Ok(())
    }

    fn close_link(&mut self, seq: u64, from: &EntityId, link: &LinkValue) -> Result<()> {
        let base_len = keys::link_prefix(Direction::Out, from, None, None).len();
        let prefix = keys::link_prefix(Direction::Out, from, Some(&link.role), Some(&link.to));
        for (key, value) in self.scan_prefix(&prefix)? {
            let mut record: LinkRecord = codec::decode(&value)?;
            if record.removed_seq.is_some() {
                continue;
            }
            record.removed_seq = Some(seq);
            let Some((_, _, added)) = keys::parse_link(&key, base_len) else {
                return Err(StoreError::Journal(format!("unreadable link key under entity {from}")));
            };
            let bytes = codec::encode(&record)?;
            self.put(keys::link(Direction::In, &link.to, &link.role, from, added), bytes.clone());
            self.put(key, bytes);
        }
        Ok(())
    }
}

fn inconsistent(seq: u64, idx: usize, e: pole_model::ApplyError) -> StoreError {
    StoreError::Journal(format!("seq {seq} change {idx} does not apply to the projections: {e}"))
}

/// Which fields a change can have moved in the lookup indexes.
enum Touched {
    All,
    Fields { attributes: BTreeSet<String>, systems: BTreeSet<String> },
}

impl Touched {
    fn of(change: &pole_model::Change) -> Touched {
        use pole_model::{ChangeOp, FieldOp};
        let (ChangeOp::Create { delta, .. } | ChangeOp::Update { delta }) = &change.op else {
            return match change.op {
                ChangeOp::Link { .. } | ChangeOp::Unlink { .. } => {
                    Touched::Fields { attributes: BTreeSet::new(), systems: BTreeSet::new() }
                }
                _ => Touched::All,
            };
        };
        let mut attributes = BTreeSet::new();
        let mut systems = BTreeSet::new();
        for op in delta.ops() {
            match op {
                FieldOp::Set { attribute, .. } | FieldOp::Unset { attribute, .. } => {
                    attributes.insert(attribute.clone());
                }
                FieldOp::AddIdentifier { identifier } | FieldOp::RemoveIdentifier { identifier } => {
                    systems.insert(identifier.system.clone());
                }
            }
        }
        Touched::Fields { attributes, systems }
    }

    fn attribute(&self, name: &str) -> bool {
        match self {
            Touched::All => true,
            Touched::Fields { attributes, .. } => attributes.contains(name),
        }
    }

    fn system(&self, system: &str) -> bool {
        match self {
            Touched::All => true,
            Touched::Fields { systems, .. } => systems.contains(system),
        }
    }
}

/// The identifier and search index keys an entity's state should have: none unless it is
/// active. Identifiable values are indexed by blind token, opened with the entity's key; a
/// value whose key is gone (erased) is not indexed.
fn lookup_keys(
    schema: &SchemaRegistry,
    ring: &dyn KeyRing,
    state: &EntityState,
    touched: &Touched,
) -> Result<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    if state.status != Status::Active {
        return Ok(out);
    }
    let key = ring.key(&state.id);
    let just = ring.just_sealed();
    for ident in &state.identifiers {
        let id = &ident.identifier;
        if !touched.system(&id.system) {
            continue;
        }
        if id.value.starts_with(pole_model::SEALED_PREFIX) {
            if let Some(open) = vault::open_identifier_via(key.as_ref(), just, &state.id, id) {
                out.insert(keys::identifier(&id.system, &ring.token(&id.system, &open.value)?, &state.id));
            }
        } else {
            out.insert(keys::identifier(&id.system, &id.value, &state.id));
        }
    }
    let Ok(def) = schema.type_def(&state.entity_type) else { return Ok(out) };
    for (name, attr) in &state.attributes {
        let Some(search) = def.attributes.get(name).and_then(|a| a.search) else { continue };
        if !touched.attribute(name) {
            continue;
        }
        let entry = if vault::is_sealed_value(&attr.value) {
            match vault::open_value_via(key.as_ref(), just, &state.id, name, &attr.value) {
                Some(serde_json::Value::String(text)) => ring.token(search.as_str(), &search.normalise(&text))?,
                _ => continue,
            }
        } else {
            match attr.value.as_str() {
                Some(text) => search.normalise(text),
                None => continue,
            }
        };
        out.insert(keys::search(search.as_str(), &entry, &state.id));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use pole_model::{Change, ChangeOp, Delta, Fields, Kind, Source};

    /// No keys: the changes below carry nothing sealed or identifiable.
    struct NoKeys;

    impl KeyRing for NoKeys {
        fn key(&self, _: &EntityId) -> Option<vault::DataKey> {
            None
        }

        fn token(&self, _: &str, normalised: &str) -> Result<String> {
            Ok(normalised.to_owned())
        }
    }

    fn transaction(seq: u64, changes: Vec<Change>) -> Transaction {
        Transaction {
            seq,
            recorded_at: Timestamp::from_micros(1_800_000_000_000_000 + seq as i64),
            actor: "tester".into(),
            role: "admin".into(),
            source: Source { council: Some("305".into()), ..Source::default() },
            idempotency_key: None,
            reason: None,
            request_fingerprint: None,
            refs: BTreeMap::new(),
            changes,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields {
            attributes: pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))).collect(),
            identifiers: BTreeSet::new(),
        }
    }

    fn change(entity: &EntityId, op: ChangeOp, valid_days: i64) -> Change {
        let valid = Timestamp::from_micros(1_700_000_000_000_000 + valid_days * 86_400_000_000);
        Change { entity: entity.clone(), op, valid_time: Some(valid), row: None }
    }

    /// Three transactions: a create, a link to a second entity, and a late update (its valid
    /// time before the entity's latest, so the history is refolded).
    fn transactions() -> Vec<Transaction> {
        let person = EntityId::new("01J0000000000000000000000P").unwrap();
        let place = EntityId::new("01J0000000000000000000000A").unwrap();
        let named = fields(&[("family_name", "Overlay"), ("given_name", "Ada")]);
        let renamed = fields(&[("family_name", "Overlay"), ("given_name", "Ida")]);
        let create = |ty: &str, kind: Kind, f: &Fields| ChangeOp::Create {
            kind,
            entity_type: ty.into(),
            delta: Delta::diff(&Fields::default(), f),
        };
        vec![
            transaction(
                1,
                vec![
                    change(&person, create("person", Kind::Person, &named), 10),
                    change(&place, create("address", Kind::Location, &fields(&[("line1", "1 Row")])), 10),
                ],
            ),
            transaction(
                2,
                vec![change(
                    &person,
                    ChangeOp::Link {
                        role: "resides_at".into(),
                        to: place.clone(),
                        valid_from: None,
                        valid_to: None,
                        attributes: BTreeMap::new(),
                    },
                    20,
                )],
            ),
            transaction(3, vec![change(&person, ChangeOp::Update { delta: Delta::diff(&named, &renamed) }, 15)]),
        ]
    }

    fn contents(backend: &MemoryBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
        backend.iter_all().map(|kv| kv.unwrap()).collect()
    }

    /// The transactions written to a journal in `dir`: each with its frame and its spans.
    fn journaled(dir: &std::path::Path) -> Vec<(Arc<Transaction>, FrameLocation, Vec<ChangeSpan>)> {
        let (mut journal, _) = crate::journal::JournalWriter::open(dir).unwrap();
        transactions()
            .into_iter()
            .map(|tx| {
                let payload = codec::encode_transaction(&tx).unwrap();
                let frame = journal.append(&[&payload]).unwrap().remove(0);
                (Arc::new(tx), frame.location, codec::change_spans(&payload, frame.seq).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_stage_over_unapplied_overlays_writes_what_a_stage_over_the_applied_backend_writes() {
        let schema = pole_model::default_registry().unwrap();
        let hash = Hash([7; 32]);
        let dir = tempfile::tempdir().unwrap();
        let written = journaled(dir.path());
        let frames = FrameReader::new(dir.path());

        // One transaction a group, each applied before the next is staged.
        let applied = MemoryBackend::default();
        for (tx, location, spans) in &written {
            let mut stage = Stage::new(&applied, &frames);
            stage.apply_transaction(&schema, &NoKeys, tx, hash, Some(*location), spans).unwrap();
            applied.apply(stage.freeze().unwrap().to_batch().unwrap()).unwrap();
        }

        // The same groups, each staged over the earlier ones before any reaches the backend,
        // and staged as the writer stages them: before the write, located after it.
        let layered = MemoryBackend::default();
        let mut below: Vec<Arc<Overlay>> = Vec::new();
        for (tx, location, spans) in &written {
            let mut stage = Stage::over(&layered, &frames, below.clone());
            stage.apply_transaction(&schema, &NoKeys, tx, hash, None, spans).unwrap();
            stage.written_at(tx, *location, spans).unwrap();
            below.push(Arc::new(stage.freeze().unwrap()));
        }
        assert!(contents(&layered).is_empty());
        for overlay in &below {
            layered.apply(overlay.to_batch().unwrap()).unwrap();
        }
        assert_eq!(contents(&layered), contents(&applied));
        let person = EntityId::new("01J0000000000000000000000P").unwrap();
        let state: EntityState =
            codec::decode_state(&person, &layered.get(&keys::entity(&person)).unwrap().unwrap()).unwrap();
        assert_eq!(state.version, 3);
        assert_eq!(state.links.len(), 1, "the link staged in the second group survives the late update's refold");
    }

    #[test]
    fn history_entries_read_their_changes_back_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let written = journaled(dir.path());
        let frames = FrameReader::new(dir.path());
        let backend = MemoryBackend::default();
        let schema = pole_model::default_registry().unwrap();
        for (tx, location, spans) in &written {
            let mut stage = Stage::new(&backend, &frames);
            stage.apply_transaction(&schema, &NoKeys, tx, Hash([7; 32]), Some(*location), spans).unwrap();
            backend.apply(stage.freeze().unwrap().to_batch().unwrap()).unwrap();
        }
        let person = EntityId::new("01J0000000000000000000000P").unwrap();
        let stored: Vec<HistoryEntry> = backend
            .scan_prefix(&keys::history_prefix(&person))
            .map(|kv| {
                let (k, v) = kv.unwrap();
                assert!(v.len() < 64, "an entry points at its change, it does not copy it: {} bytes", v.len());
                read_history_entry(&frames, &person, &k, &v).unwrap()
            })
            .collect();
        let expected: Vec<HistoryEntry> = written
            .iter()
            .flat_map(|(tx, _, _)| {
                tx.changes.iter().enumerate().filter(|(_, c)| c.entity == person).map(|(idx, change)| HistoryEntry {
                    seq: tx.seq,
                    change_idx: idx,
                    recorded_at: tx.recorded_at,
                    council: tx.source.council.clone(),
                    change: change.clone(),
                })
            })
            .collect();
        assert_eq!(stored, expected);

        // An entry read under another entity's name, or damaged, is an error, never a wrong answer.
        let (key, value) = backend.scan_prefix(&keys::history_prefix(&person)).next().unwrap().unwrap();
        let other = EntityId::new("01J0000000000000000000000L").unwrap();
        assert!(read_history_entry(&frames, &other, &key, &value).is_err());
        assert!(read_history_entry(&frames, &person, &key, &value[..20]).is_err());
        let pointer = HistoryPointer::from_bytes(&person, &value).unwrap();
        assert_eq!(pointer.council, Some("305"));
        let shifted = HistoryPointer { span: ChangeSpan { start: pointer.span.start + 1, ..pointer.span }, ..pointer };
        assert!(read_history_entry(&frames, &person, &key, &shifted.to_bytes()).is_err());
    }
}
