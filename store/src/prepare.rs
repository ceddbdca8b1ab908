//! Turns a [`TransactionRequest`] (intent) into journal [`Change`]s: resolves refs, checks
//! every change against the schema and the current state, computes field-level deltas with
//! before and after values, and seals identifiable values. Reads only; nothing is written
//! until the whole transaction is known to be valid.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use pole_model::{
    apply_change, fold_entries, Change, ChangeContext, ChangeOp, Classification, Delta, EntityId, EntityState, FieldOp,
    Fields, HistoryEntry, Identifier, Kind, SchemaRegistry, Status, Timestamp,
};
use serde_json::Value;

use crate::keys::{self, Direction};
use crate::outcome::Rejection;
use crate::projection::Stage;
use crate::request::{ChangeRequest, OpRequest, Target, TransactionRequest};
use crate::vault::{self, DataKey, JustSealed, KeyRing, Vault};
use crate::{Result, StoreError};

/// The most changes one transaction may carry.
pub const MAX_CHANGES: usize = 100_000;

/// A request that passed every check, ready to be sequenced.
#[derive(Debug)]
pub struct Prepared {
    pub changes: Vec<Change>,
    pub refs: BTreeMap<String, EntityId>,
    pub new_keys: Vec<(EntityId, DataKey)>,
    pub erased: Vec<EntityId>,
}

/// Keys already known to the group being prepared, and the values it has sealed.
pub struct Keys<'a> {
    pub vault: &'a Vault,
    pub group: &'a HashMap<EntityId, DataKey>,
    pub sealed: &'a JustSealed,
}

impl KeyRing for Keys<'_> {
    fn key(&self, id: &EntityId) -> Option<DataKey> {
        self.group.get(id).copied().or_else(|| KeyRing::key(self.vault, id))
    }

    fn token(&self, domain: &str, normalised: &str) -> Result<String> {
        self.vault.token(domain, normalised)
    }

    fn just_sealed(&self) -> Option<&JustSealed> {
        Some(self.sealed)
    }
}

/// Everything preparation reads.
pub struct Context<'a, 'b> {
    pub stage: &'a Stage<'b>,
    pub schema: &'a SchemaRegistry,
    pub keys: Keys<'a>,
    pub ids: &'a mut ulid::Generator,
    pub recorded_at: Timestamp,
}

type Checked<T> = std::result::Result<T, Rejection>;

struct Tx<'c, 'a, 'b> {
    ctx: &'c mut Context<'a, 'b>,
    /// The contributor the transaction writes for (its source's council): it changes only
    /// that contributor's records. `None`: a national writer, who may change any record.
    contributor: Option<String>,
    refs: BTreeMap<String, EntityId>,
    /// States as changed by earlier changes of this transaction.
    local: HashMap<EntityId, EntityState>,
    /// This transaction's accepted changes per entity, for refolding after a late one.
    local_history: HashMap<EntityId, Vec<HistoryEntry>>,
    new_keys: HashMap<EntityId, DataKey>,
    erased: Vec<EntityId>,
}

/// Checks and converts a request. `Ok(Err(_))` is a refusal to report to the caller.
pub fn prepare(request: &TransactionRequest, ctx: &mut Context<'_, '_>) -> Result<Checked<Prepared>> {
    if request.changes.is_empty() {
        return Ok(Err(Rejection::transaction("a transaction needs at least one change")));
    }
    if request.changes.len() > MAX_CHANGES {
        return Ok(Err(Rejection::transaction(format!(
            "a transaction may carry at most {MAX_CHANGES} changes, this one has {}; split it",
            request.changes.len()
        ))));
    }
    let mut tx = Tx {
        ctx,
        contributor: request.source.council.clone(),
        refs: BTreeMap::new(),
        // Sized for the worst case (every change a different entity): growing these maps of
        // whole states rehashed them repeatedly, into fresh memory, for large transactions.
        local: HashMap::with_capacity(request.changes.len()),
        local_history: HashMap::with_capacity(request.changes.len()),
        new_keys: HashMap::new(),
        erased: Vec::new(),
    };
    let mut changes = Vec::with_capacity(request.changes.len());
    for (idx, change) in request.changes.iter().enumerate() {
        match tx.change(idx, change)? {
            Ok(Some((change, before))) => {
                tx.accept(idx, &change, before)?;
                changes.push(change);
            }
            Ok(None) => {}
            Err(rejection) => return Ok(Err(rejection)),
        }
    }
    // An erased person takes with them the identifiable records that exist only for them
    // (their home addresses, past ones included): left behind, an address would stay
    // readable, searchable by postcode and linked to the erased person's id.
    let erased_people: Vec<EntityId> = tx.erased.clone();
    let mut idx = request.changes.len();
    for person in erased_people {
        for far in tx.only_theirs(&person)? {
            let change = ChangeRequest {
                target: Target::Entity(far),
                expected_version: None,
                valid_time: None,
                row: None,
                op: OpRequest::Erase { reason: format!("erased with {person}, the only record linked to it") },
            };
            match tx.change(idx, &change)? {
                Ok(Some((change, before))) => {
                    tx.accept(idx, &change, before)?;
                    changes.push(change);
                    idx += 1;
                }
                Ok(None) => {}
                Err(rejection) => return Ok(Err(rejection)),
            }
        }
    }
    let mut new_keys: Vec<(EntityId, DataKey)> = tx.new_keys.into_iter().collect();
    // Sorted so the vault file is written in a deterministic order.
    new_keys.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Ok(Prepared { changes, refs: tx.refs, new_keys, erased: tx.erased }))
}

/// A change and the state it was judged against (`None` for a create).
type ChangeAndBase = (Change, Option<EntityState>);

impl Tx<'_, '_, '_> {
    /// Moves the transaction's view of the entity past an accepted change, refolding in
    /// valid-time order when the change is late, exactly as the projections will.
    /// `before` is the state [`Tx::change`] judged the change against, already the current one.
    fn accept(&mut self, idx: usize, change: &Change, before: Option<EntityState>) -> Result<()> {
        // Reused, not read again: the state after the change replaces the transaction's copy.
        self.local.remove(&change.entity);
        let entry = HistoryEntry {
            seq: u64::MAX,
            change_idx: idx,
            recorded_at: self.ctx.recorded_at,
            council: self.contributor.clone(),
            change: change.clone(),
        };
        let late = before.as_ref().is_some_and(|s| change.valid_time_or(self.ctx.recorded_at) < s.last_valid_time);
        self.local_history.entry(change.entity.clone()).or_default().push(entry);
        let after = if late {
            self.fold_with_local(&change.entity, None)?
        } else {
            let ctx = ChangeContext {
                seq: u64::MAX,
                recorded_at: self.ctx.recorded_at,
                council: self.contributor.as_deref(),
            };
            apply_change(before, change, ctx).map(Some)
        };
        let after = after
            .map_err(|e| StoreError::Journal(format!("a checked change did not apply: {e}")))?
            .ok_or_else(|| StoreError::Journal(format!("entity {} folded to nothing", change.entity)))?;
        self.local.insert(after.id.clone(), after);
        Ok(())
    }

    /// Calls `f` with the entity's stored history and this transaction's changes of it so
    /// far, in that order.
    fn with_local_history<R>(&self, id: &EntityId, f: impl FnOnce(&[HistoryEntry], &[HistoryEntry]) -> R) -> Result<R> {
        let local = self.local_history.get(id).map(Vec::as_slice).unwrap_or_default();
        self.ctx.stage.with_history(id, |stored| f(stored, local))
    }

    /// The fold of the entity's stored history and this transaction's changes so far.
    fn fold_with_local(
        &self,
        id: &EntityId,
        valid_at: Option<Timestamp>,
    ) -> Result<Result<Option<EntityState>, pole_model::ApplyError>> {
        self.with_local_history(id, |stored, local| fold_entries(stored.iter().chain(local), valid_at))
    }

    /// Whether the entity's history already ends its `role` link to `to` at `valid`.
    fn unlinked_at(&self, id: &EntityId, role: &str, to: &EntityId, valid: Timestamp) -> Result<bool> {
        self.with_local_history(id, |stored, local| {
            stored.iter().chain(local).any(|entry| {
                matches!(&entry.change.op, ChangeOp::Unlink { role: r, to: t } if r == role && t == to)
                    && entry.change.valid_time_or(entry.recorded_at) == valid
            })
        })
    }

    /// The state a change with `valid_time` is judged against: the current state, or, for a
    /// change about an earlier time than the entity's latest, the state valid at that time.
    fn base_for<'s>(&self, state: &'s EntityState, valid_time: Timestamp) -> Result<Option<Cow<'s, EntityState>>> {
        if valid_time >= state.last_valid_time {
            return Ok(Some(Cow::Borrowed(state)));
        }
        let folded = self
            .fold_with_local(&state.id, Some(valid_time))?
            .map_err(|e| StoreError::Journal(format!("history of {} does not fold: {e}", state.id)))?;
        Ok(folded.map(Cow::Owned))
    }

    fn current(&self, id: &EntityId) -> Result<Option<EntityState>> {
        match self.local.get(id) {
            Some(state) => Ok(Some(state.clone())),
            None => self.ctx.stage.entity(id),
        }
    }

    fn key_of(&self, id: &EntityId) -> Option<DataKey> {
        self.new_keys.get(id).copied().or_else(|| self.ctx.keys.key(id))
    }

    fn key_for_sealing(&mut self, id: &EntityId) -> DataKey {
        if let Some(key) = self.key_of(id) {
            return key;
        }
        let key = Vault::new_key();
        self.new_keys.insert(id.clone(), key);
        key
    }

    /// Whether a contributor's transaction may name `id`, whose state is `state`: its own
    /// record, or for `far_end` (a link's target) a national one. An id that names nothing
    /// is refused the same way, so a contributor learns nothing of records not its own.
    fn in_scope(&self, idx: usize, op: &str, id: &EntityId, state: Option<&EntityState>, far_end: bool) -> Checked<()> {
        let Some(contributor) = self.contributor.as_deref() else { return Ok(()) };
        let allowed = match state.map(EntityState::contributor) {
            Some(Some(owner)) => owner == contributor,
            Some(None) => far_end,
            None => false,
        };
        if allowed {
            return Ok(());
        }
        Err(Rejection::OutOfScope {
            change_idx: idx,
            op: op.to_owned(),
            entity: id.clone(),
            contributor: contributor.to_owned(),
        })
    }

    /// The records an erased person's erasure takes with it: those it ever linked to that
    /// hold identifiable attributes, are not people, are not erased yet and were never
    /// linked to by anything else.
    fn only_theirs(&self, person: &EntityId) -> Result<Vec<EntityId>> {
        let Some(state) = self.current(person)? else { return Ok(Vec::new()) };
        if state.kind != Kind::Person {
            return Ok(Vec::new());
        }
        let mut fars: BTreeSet<EntityId> = state.links.iter().map(|l| l.to.clone()).collect();
        let out = keys::link_prefix(Direction::Out, person, None, None);
        for (key, _) in self.ctx.stage.scan_prefix(&out)? {
            if let Some((_, far, _)) = keys::parse_link(&key, out.len()) {
                fars.insert(far);
            }
        }
        let mut theirs = Vec::new();
        for far in fars {
            let Some(far_state) = self.current(&far)? else { continue };
            // Not people (each is erased on its own request), not what is erased already,
            // and only what this writer may change at all.
            let in_scope = self.in_scope(0, "erase", &far, Some(&far_state), false).is_ok();
            if far_state.kind == Kind::Person || far_state.status == Status::Erased || !in_scope {
                continue;
            }
            let identifiable = self
                .ctx
                .schema
                .type_def(&far_state.entity_type)
                .is_ok_and(|def| def.attributes.values().any(|a| a.classification == Classification::Identifiable));
            if !identifiable {
                continue;
            }
            let incoming = keys::link_prefix(Direction::In, &far, None, None);
            let only_theirs = self
                .ctx
                .stage
                .scan_prefix(&incoming)?
                .iter()
                .all(|(key, _)| keys::parse_link(key, incoming.len()).is_some_and(|(_, near, _)| &near == person));
            if only_theirs {
                theirs.push(far);
            }
        }
        Ok(theirs)
    }

    fn resolve(&self, idx: usize, op: &str, target: &Target) -> Checked<EntityId> {
        match target {
            Target::Entity(id) => Ok(id.clone()),
            Target::Ref(name) => self.refs.get(name).cloned().ok_or_else(|| {
                Rejection::invalid(
                    idx,
                    op,
                    target,
                    None,
                    format!("ref {name:?} is not created earlier in this transaction"),
                )
            }),
        }
    }

    /// The existing, active entity a change targets (or, `far_end`, links to), within the
    /// writing contributor's scope ([`Tx::in_scope`], judged before anything else about it).
    fn existing(
        &self,
        idx: usize,
        op: &str,
        id: &EntityId,
        allow_inactive: bool,
        far_end: bool,
    ) -> Result<Checked<EntityState>> {
        let state = self.current(id)?;
        if let Err(r) = self.in_scope(idx, op, id, state.as_ref(), far_end) {
            return Ok(Err(r));
        }
        let Some(state) = state else {
            return Ok(Err(Rejection::invalid(idx, op, id, None, "no such entity")));
        };
        if !allow_inactive && state.status != Status::Active {
            let why = match &state.status {
                Status::Retracted { .. } => "the entity was retracted",
                Status::Merged { .. } => "the entity was merged into another; change the surviving entity",
                Status::Erased => "the entity was erased",
                Status::Active => "",
            };
            return Ok(Err(Rejection::invalid(idx, op, id, None, why)));
        }
        Ok(Ok(state))
    }

    /// The change a request makes, if any, with the state it was judged against (`None` for
    /// a create), which [`Tx::accept`] moves past it.
    fn change(&mut self, idx: usize, request: &ChangeRequest) -> Result<Checked<Option<ChangeAndBase>>> {
        let op_name = request.op.name();
        let (id, current) = match (&request.op, &request.target) {
            // A caller that must name the new entity before the store answers (a later
            // transaction, already queued, refers to it) chooses its id; a used one is
            // refused, whatever became of its entity, so an id never names two entities.
            (OpRequest::Create { .. }, Target::Entity(id)) => {
                if let Some(state) = self.current(id)? {
                    if let Err(r) = self.in_scope(idx, op_name, id, Some(&state), false) {
                        return Ok(Err(r));
                    }
                    return Ok(Err(Rejection::invalid(
                        idx,
                        op_name,
                        id,
                        None,
                        "an entity with this id exists already; a create names a new id (or a `ref`)",
                    )));
                }
                (id.clone(), None)
            }
            (OpRequest::Create { .. }, Target::Ref(name)) => {
                if self.refs.contains_key(name) {
                    return Ok(Err(Rejection::invalid(idx, op_name, &request.target, None, "ref is used twice")));
                }
                let id = self.new_id()?;
                self.refs.insert(name.clone(), id.clone());
                (id, None)
            }
            (_, target) => {
                let id = match self.resolve(idx, op_name, target) {
                    Ok(id) => id,
                    Err(r) => return Ok(Err(r)),
                };
                let allow_inactive = matches!(request.op, OpRequest::Unmerge | OpRequest::Erase { .. });
                match self.existing(idx, op_name, &id, allow_inactive, false)? {
                    Ok(state) => (id, Some(state)),
                    Err(r) => return Ok(Err(r)),
                }
            }
        };
        if let Some(expected) = request.expected_version {
            let actual = current.as_ref().map_or(0, |s| s.version);
            if actual != expected {
                return Ok(Err(Rejection::Conflict { change_idx: idx, entity: id, expected, actual }));
            }
        }
        if let Some(valid_time) = request.valid_time {
            if valid_time > self.ctx.recorded_at.plus_days(366) {
                return Ok(Err(Rejection::invalid(
                    idx,
                    op_name,
                    &id,
                    Some("valid_time"),
                    format!("{valid_time} is more than a year after now"),
                )));
            }
        }
        let op = match self.op(idx, &id, current.as_ref(), request)? {
            Ok(Some(op)) => op,
            Ok(None) => return Ok(Ok(None)),
            Err(r) => return Ok(Err(r)),
        };
        Ok(Ok(Some((Change { entity: id, valid_time: request.valid_time, row: request.row, op }, current))))
    }

    fn new_id(&mut self) -> Result<EntityId> {
        let when = UNIX_EPOCH + Duration::from_micros(self.ctx.recorded_at.micros().max(0) as u64);
        let ulid =
            self.ctx.ids.generate_from_datetime(when).map_err(|e| StoreError::Journal(format!("id generator: {e}")))?;
        EntityId::new(ulid.to_string()).map_err(|e| StoreError::Journal(e.to_string()))
    }

    fn op(
        &mut self,
        idx: usize,
        id: &EntityId,
        current: Option<&EntityState>,
        request: &ChangeRequest,
    ) -> Result<Checked<Option<ChangeOp>>> {
        let op_name = request.op.name();
        // A refused create is named as the caller named it: its id was never assigned.
        let name = match (&request.op, &request.target) {
            (OpRequest::Create { .. }, target @ Target::Ref(_)) => target.to_string(),
            _ => id.to_string(),
        };
        let invalid = |field: Option<&str>, reason: String| Rejection::invalid(idx, op_name, &name, field, reason);
        let op = match (&request.op, current) {
            (OpRequest::Create { entity_type, set, identifiers }, None) => {
                let schema = self.ctx.schema;
                let def = match schema.type_def(entity_type) {
                    Ok(def) => def,
                    Err(e) => return Ok(Err(invalid(Some("type"), e.to_string()))),
                };
                let mut fields = Fields::default();
                match self.checked_fields(entity_type, set, &[], identifiers, &[], &mut fields) {
                    Ok(()) => {}
                    Err((field, reason)) => return Ok(Err(invalid(Some(&field), reason))),
                }
                if let Some((name, _)) =
                    def.attributes.iter().find(|(n, a)| a.required && !fields.attributes.contains_key(*n))
                {
                    return Ok(Err(invalid(
                        Some(name),
                        format!("attribute {name:?} is required for type {entity_type:?}"),
                    )));
                }
                let delta = Delta::diff(&Fields::default(), &fields);
                let delta = self.seal_delta(id, entity_type, &delta, None)?;
                ChangeOp::Create { kind: def.kind, entity_type: entity_type.clone(), delta }
            }
            (OpRequest::Update { set, unset, add_identifiers, remove_identifiers }, Some(state)) => {
                // A change about an earlier time is compared with what held then, so that
                // resubmitting it is a no-op and its deltas say what it changed at that time.
                let base = self.base_for(state, request.valid_time.unwrap_or(self.ctx.recorded_at))?;
                let plain = match &base {
                    Some(base) => self.plain_fields(base),
                    None => Some(Fields::default()),
                };
                let Some(plain) = plain else {
                    return Ok(Err(invalid(None, "the entity's identifiable values are unreadable".into())));
                };
                let mut fields = plain.clone();
                if let Err((field, reason)) = self.checked_fields(
                    &state.entity_type,
                    set,
                    unset,
                    add_identifiers,
                    remove_identifiers,
                    &mut fields,
                ) {
                    return Ok(Err(invalid(Some(&field), reason)));
                }
                let def =
                    self.ctx.schema.type_def(&state.entity_type).map_err(|e| StoreError::Journal(e.to_string()))?;
                if let Some(name) = unset.iter().find(|n| def.attributes.get(*n).is_some_and(|a| a.required)) {
                    return Ok(Err(invalid(Some(name), format!("attribute {name:?} is required and cannot be unset"))));
                }
                let delta = Delta::diff(&plain, &fields);
                if delta.is_empty() {
                    return Ok(Ok(None));
                }
                ChangeOp::Update { delta: self.seal_delta(id, &state.entity_type, &delta, base.as_deref())? }
            }
            (OpRequest::Link { role, to, valid_from, valid_to, attributes }, Some(state)) => {
                let to = match self.resolve(idx, op_name, to) {
                    Ok(to) => to,
                    Err(r) => return Ok(Err(r)),
                };
                let far = match self.existing(idx, op_name, &to, false, true)? {
                    Ok(far) => far,
                    Err(r @ Rejection::OutOfScope { .. }) => return Ok(Err(r)),
                    Err(_) => {
                        return Ok(Err(invalid(
                            Some("to"),
                            format!("link target {to} does not exist or is not active"),
                        )))
                    }
                };
                if let Err(e) =
                    self.ctx.schema.check_link(role, (state.kind, &state.entity_type), (far.kind, &far.entity_type))
                {
                    return Ok(Err(invalid(Some("role"), e.to_string())));
                }
                if let (Some(from), Some(until)) = (valid_from, valid_to) {
                    if from > until {
                        return Ok(Err(invalid(
                            Some("valid_to"),
                            format!("valid_to {until} is before valid_from {from}"),
                        )));
                    }
                }
                if let Some((name, _)) = attributes.iter().find(|(_, v)| v.is_null() || v.is_array() || v.is_object()) {
                    return Ok(Err(invalid(Some(name), "link attributes are text, numbers or booleans".into())));
                }
                let same = |l: &pole_model::LinkValue| {
                    l.valid_from == *valid_from && l.valid_to == *valid_to && l.attributes == *attributes
                };
                if state.link(role, &to).is_some_and(same) {
                    return Ok(Ok(None));
                }
                // A link about an earlier time is judged against what held then, as an
                // update is: a link that held then (and was ended since) is a repeat.
                let valid = request.valid_time.unwrap_or(self.ctx.recorded_at);
                if valid < state.last_valid_time
                    && self.base_for(state, valid)?.is_some_and(|base| base.link(role, &to).is_some_and(same))
                {
                    return Ok(Ok(None));
                }
                ChangeOp::Link {
                    role: role.clone(),
                    to,
                    valid_from: *valid_from,
                    valid_to: *valid_to,
                    attributes: attributes.clone(),
                }
            }
            (OpRequest::Unlink { role, to }, Some(state)) => {
                let to = match self.resolve(idx, op_name, to) {
                    Ok(to) => to,
                    Err(r) => return Ok(Err(r)),
                };
                if state.link(role, &to).is_none() {
                    // The same unlink at the same valid time, stored or earlier in this
                    // transaction, is a repeat: it changes nothing, as a repeated set does.
                    let valid = request.valid_time.unwrap_or(self.ctx.recorded_at);
                    if self.unlinked_at(id, role, &to, valid)? {
                        return Ok(Ok(None));
                    }
                    return Ok(Err(invalid(Some("role"), format!("there is no {role:?} link to {to}"))));
                }
                ChangeOp::Unlink { role: role.clone(), to }
            }
            (OpRequest::Retract { reason }, Some(_)) => {
                if reason.trim().is_empty() {
                    return Ok(Err(invalid(Some("reason"), "a retraction needs a reason".into())));
                }
                ChangeOp::Retract { reason: reason.clone() }
            }
            (OpRequest::Merge { into }, Some(state)) => {
                let into = match self.resolve(idx, op_name, into) {
                    Ok(into) => into,
                    Err(r) => return Ok(Err(r)),
                };
                if &into == id {
                    return Ok(Err(invalid(Some("into"), "an entity cannot be merged into itself".into())));
                }
                let survivor = match self.existing(idx, op_name, &into, false, false)? {
                    Ok(s) => s,
                    Err(r @ Rejection::OutOfScope { .. }) => return Ok(Err(r)),
                    Err(_) => return Ok(Err(invalid(Some("into"), format!("{into} does not exist or is not active")))),
                };
                if survivor.kind != state.kind {
                    return Ok(Err(invalid(
                        Some("into"),
                        format!("cannot merge a {} into a {}", state.kind, survivor.kind),
                    )));
                }
                // Each source's records stay its own: a merge joins duplicates within one
                // source. Records of different sources are one person through identity
                // resolution (the national view), which links them and can undo the link;
                // a merge would point one source's record at another's.
                if survivor.contributor() != state.contributor() {
                    return Ok(Err(invalid(
                        Some("into"),
                        format!(
                            "{into} is another source's record: a merge joins duplicate records of one source, \
                             and records of different sources are one person through identity resolution"
                        ),
                    )));
                }
                ChangeOp::Merge { into }
            }
            (OpRequest::Unmerge, Some(state)) => {
                if !matches!(state.status, Status::Merged { .. }) {
                    return Ok(Err(invalid(None, "the entity is not merged".into())));
                }
                ChangeOp::Unmerge
            }
            (OpRequest::Erase { reason }, Some(state)) => {
                if state.status == Status::Erased {
                    return Ok(Err(invalid(None, "the entity is already erased".into())));
                }
                if reason.trim().is_empty() {
                    return Ok(Err(invalid(Some("reason"), "an erasure needs a reason (no personal data)".into())));
                }
                self.erased.push(id.clone());
                ChangeOp::Erase { reason: reason.clone() }
            }
            // `change` resolved existence already: a create meets `None`, every other op `Some`.
            _ => return Ok(Err(invalid(None, "operation does not fit the entity's existence".into()))),
        };
        Ok(Ok(Some(op)))
    }

    /// Applies the requested sets, unsets and identifier changes to `fields`, checking each
    /// against the schema. Errors name the field.
    fn checked_fields(
        &self,
        entity_type: &str,
        set: &BTreeMap<String, Value>,
        unset: &[String],
        add: &[Identifier],
        remove: &[Identifier],
        fields: &mut Fields,
    ) -> std::result::Result<(), (String, String)> {
        let schema = self.ctx.schema;
        for (name, value) in set {
            let value = schema.check_value(entity_type, name, value).map_err(|e| (name.clone(), e.to_string()))?;
            fields.attributes.insert(name.clone(), value);
        }
        for name in unset {
            schema.attribute(entity_type, name).map_err(|e| (name.clone(), e.to_string()))?;
            if set.contains_key(name) {
                return Err((name.clone(), "attribute is both set and unset".into()));
            }
            fields.attributes.remove(name);
        }
        if let Some(contributor) = self.contributor.as_deref() {
            if let Some(ident) = add.iter().chain(remove).find(|i| i.council().is_some_and(|c| c != contributor)) {
                return Err((
                    format!("identifiers.{}", ident.system),
                    format!(
                        "identifier system {} is council {}'s; contributor {contributor} records only its own",
                        ident.system,
                        ident.council().unwrap_or_default(),
                    ),
                ));
            }
        }
        for ident in remove {
            let field = format!("identifiers.{}", ident.system);
            let ident = schema.check_identifier(ident).map_err(|e| (field.clone(), e.to_string()))?;
            if !fields.identifiers.remove(&ident) {
                return Err((field, format!("the entity has no identifier {}", ident.system)));
            }
        }
        for ident in add {
            let field = format!("identifiers.{}", ident.system);
            let ident = schema.check_identifier(ident).map_err(|e| (field, e.to_string()))?;
            fields.identifiers.insert(ident);
        }
        Ok(())
    }

    /// The entity's fields with identifiable values opened; `None` if they cannot be.
    fn plain_fields(&self, state: &EntityState) -> Option<Fields> {
        let key = self.key_of(&state.id);
        let just = Some(self.ctx.keys.sealed);
        let mut fields = Fields::default();
        for (name, attr) in &state.attributes {
            let value = vault::open_value_via(key.as_ref(), just, &state.id, name, &attr.value)?;
            fields.attributes.insert(name.clone(), value);
        }
        for ident in &state.identifiers {
            fields.identifiers.insert(vault::open_identifier_via(key.as_ref(), just, &state.id, &ident.identifier)?);
        }
        Some(fields)
    }

    /// Seals identifiable values of a plaintext delta. `before` values are taken from the
    /// current state as stored (already sealed), so history keeps one ciphertext per value.
    fn seal_delta(
        &mut self,
        id: &EntityId,
        entity_type: &str,
        delta: &Delta,
        current: Option<&EntityState>,
    ) -> Result<Delta> {
        let schema = self.ctx.schema;
        let stored_attr = |name: &str| current.and_then(|s| s.attributes.get(name)).map(|a| a.value.clone());
        let mut ops = Vec::with_capacity(delta.ops().len());
        for op in delta.ops() {
            let sealed = match op {
                FieldOp::Set { attribute, before, after } => {
                    let def =
                        schema.attribute(entity_type, attribute).map_err(|e| StoreError::Journal(e.to_string()))?;
                    if def.classification == Classification::Identifiable {
                        let key = self.key_for_sealing(id);
                        let sealed = vault::seal_value(&key, id, attribute, after)?;
                        self.ctx.keys.sealed.remember_value(id, attribute, &sealed, after);
                        FieldOp::Set {
                            attribute: attribute.clone(),
                            before: before.as_ref().and_then(|_| stored_attr(attribute)),
                            after: sealed,
                        }
                    } else {
                        op.clone()
                    }
                }
                FieldOp::Unset { attribute, before } => FieldOp::Unset {
                    attribute: attribute.clone(),
                    before: stored_attr(attribute).unwrap_or_else(|| before.clone()),
                },
                FieldOp::AddIdentifier { identifier } | FieldOp::RemoveIdentifier { identifier }
                    if schema.identifier_classification(&identifier.system) == Classification::Identifiable =>
                {
                    // Deterministic sealing: a removal seals to the bytes its addition stored.
                    let key = self.key_for_sealing(id);
                    let sealed = vault::seal_identifier(&key, id, identifier)?;
                    self.ctx.keys.sealed.remember_identifier(id, &sealed, identifier);
                    match op {
                        FieldOp::AddIdentifier { .. } => FieldOp::AddIdentifier { identifier: sealed },
                        _ => FieldOp::RemoveIdentifier { identifier: sealed },
                    }
                }
                FieldOp::AddIdentifier { .. } | FieldOp::RemoveIdentifier { .. } => op.clone(),
            };
            ops.push(sealed);
        }
        Ok(Delta(ops))
    }
}
