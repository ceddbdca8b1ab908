//! From row plans to one atomic transaction: natural keys (identifiers) are resolved with
//! `Store::find_by_identifier`, or to entities created earlier in the same file, so that
//! re-ingesting a file asks only for updates the store finds to be no-ops (and drops), and
//! a corrected file yields only the deltas that differ. Links of a single-valued role are
//! moved, not duplicated, when a correction points them elsewhere.
//!
//! One chunk of a file's rows is one transaction (see [`crate::ingest`]): a chunk is
//! closed before its rows could make more than [`pole_store::MAX_CHANGES`] changes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use pole_model::{EntityId, EntityState, Identifier, Source, Status, Timestamp};
use pole_store::{ChangeRequest, OpRequest, ReadAt, Rejection, Store, Target, TransactionRequest};
use serde_json::Value;

use crate::error::Result;

/// One entity a row mentions.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityPlan {
    /// Fixed by the `safeguarding` reader, named by the profile for the `generic` one.
    pub entity_type: Cow<'static, str>,
    /// Natural keys, tried in order; every one is recorded on the entity.
    pub keys: Vec<Identifier>,
    /// For an entity without identifiers (a home address): the same entity is the one
    /// linked from `owner` (an earlier slot) with `role` whose `attribute` has this value.
    pub linked_match: Option<LinkedMatch>,
    /// When the row's facts about it became true.
    pub valid: Timestamp,
    pub set: BTreeMap<String, Value>,
    /// Values set only when the entity is new (a placeholder for a required name).
    pub create_only: BTreeMap<String, Value>,
    /// Facts true from a later time (a concern's conclusion, at its conclusion date).
    pub later: Option<(Timestamp, BTreeMap<String, Value>)>,
}

/// How an entity without identifiers is found again.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedMatch {
    pub owner: usize,
    pub role: &'static str,
    pub attribute: &'static str,
    pub value: Value,
}

/// A link between two slots of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    pub from: usize,
    pub role: Cow<'static, str>,
    pub to: usize,
    pub valid: Timestamp,
    /// The entity has at most one link of this role: a different existing one is removed.
    pub single: bool,
}

/// What one accepted row asks of the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowPlan {
    pub row: u64,
    pub entities: Vec<EntityPlan>,
    pub links: Vec<LinkPlan>,
}

impl RowPlan {
    /// The most changes the row can make: a create or update per entity and one more for
    /// its later facts, a link each and, for a single-valued one, the end of the link it
    /// moves and of its own.
    pub fn most_changes(&self) -> usize {
        let entities: usize = self.entities.iter().map(|e| 1 + usize::from(e.later.is_some())).sum();
        let links: usize = self.links.iter().map(|l| 1 + 2 * usize::from(l.single)).sum();
        entities + links
    }
}

/// A target as a map key: refs and ids never collide.
fn key_of(target: &Target) -> String {
    match target {
        Target::Entity(id) => format!("e:{id}"),
        Target::Ref(name) => format!("r:{name}"),
    }
}

/// What a chunk's plan hands to the plan of the next chunk, which is made while this one
/// commits and so cannot yet find this chunk's entities in the store: the targets it gave
/// natural keys, matched links and single-valued roles (its new entities named by their
/// refs), and the next free ref. Once the chunk is stored, [`Built::resolve_refs`] names
/// those entities by the ids the store gave them. A dry run, which stores no chunk, keeps
/// every judged chunk's carry in one (`Carry::absorb`).
#[derive(Debug, Default)]
pub struct Carry {
    by_identifier: HashMap<Identifier, Target>,
    by_link: HashMap<(String, &'static str, String), Target>,
    single_links: HashMap<(String, String), (Target, Timestamp)>,
    next_ref: usize,
}

impl Carry {
    /// Adds what a later chunk's carry knows; where both know a key, the later one's holds.
    pub(crate) fn absorb(&mut self, later: Carry) {
        self.by_identifier.extend(later.by_identifier);
        self.by_link.extend(later.by_link);
        self.single_links.extend(later.single_links);
        self.next_ref = self.next_ref.max(later.next_ref);
    }

    pub(crate) fn resolve_refs(&mut self, refs: &BTreeMap<String, EntityId>) {
        for target in self.by_identifier.values_mut().chain(self.by_link.values_mut()) {
            resolve(target, refs);
        }
        self.by_link = std::mem::take(&mut self.by_link)
            .into_iter()
            .map(|((owner, role, value), target)| ((resolve_key(owner, refs), role, value), target))
            .collect();
        self.single_links = std::mem::take(&mut self.single_links)
            .into_iter()
            .map(|((from, role), (mut target, since))| {
                resolve(&mut target, refs);
                ((resolve_key(from, refs), role), (target, since))
            })
            .collect();
    }
}

/// A ref the store has given an id becomes that id.
fn resolve(target: &mut Target, refs: &BTreeMap<String, EntityId>) {
    if let Target::Ref(name) = target {
        if let Some(id) = refs.get(name.as_str()) {
            *target = Target::Entity(id.clone());
        }
    }
}

fn resolve_key(key: String, refs: &BTreeMap<String, EntityId>) -> String {
    match key.strip_prefix("r:").and_then(|name| refs.get(name)) {
        Some(id) => key_of(&Target::Entity(id.clone())),
        None => key,
    }
}

/// Builds the change requests of a file, row by row.
struct Builder<'s, 'c> {
    store: &'s Store,
    /// Whose records natural keys resolve to: the submitting council's own, never
    /// another's (each contributor's records stay its own; identity resolution links them).
    contributor: Option<String>,
    /// The previous chunk's plan, while that chunk commits.
    previous: &'c Carry,
    changes: Vec<ChangeRequest>,
    next_ref: usize,
    by_identifier: HashMap<Identifier, Target>,
    by_link: HashMap<(String, &'static str, String), Target>,
    /// Single-valued roles as the file has left them: where each points and since when.
    single_links: HashMap<(String, String), (Target, Timestamp)>,
    /// What the transaction already asks of each target at each valid time. A row that
    /// repeats it (the client and the concern again on each allegation's row) asks nothing
    /// new, and leaving it out spares the store judging a no-op, often a late one that it
    /// refolds the entity's history for. Leaving out an exact repeat changes no outcome:
    /// the fold orders by valid time, and a value set twice at one time is set once.
    said: HashMap<(String, Timestamp), BTreeMap<String, Value>>,
    said_keys: HashSet<(String, Identifier)>,
    said_links: HashSet<(String, String, String, Timestamp)>,
    /// Warnings about a row's rows that only resolution can find (ambiguous keys).
    warnings: Vec<(u64, String, String)>,
}

impl<'s, 'c> Builder<'s, 'c> {
    fn new(store: &'s Store, contributor: Option<String>, previous: &'c Carry) -> Self {
        Builder {
            store,
            contributor,
            previous,
            changes: Vec::new(),
            next_ref: previous.next_ref,
            by_identifier: HashMap::new(),
            by_link: HashMap::new(),
            single_links: HashMap::new(),
            said: HashMap::new(),
            said_keys: HashSet::new(),
            said_links: HashSet::new(),
            warnings: Vec::new(),
        }
    }

    fn active(&self, id: &EntityId) -> Result<Option<EntityState>> {
        active(self.store, id)
    }

    fn find(&mut self, row: u64, plan: &EntityPlan, slots: &[Target]) -> Result<Option<Target>> {
        for key in &plan.keys {
            if let Some(target) = self.by_identifier.get(key).or_else(|| self.previous.by_identifier.get(key)) {
                return Ok(Some(target.clone()));
            }
        }
        for key in &plan.keys {
            let ids = self.store.find_by_identifier(key)?;
            let mut found = Vec::new();
            for id in &ids {
                if let Some(state) = self.active(id)? {
                    if state.entity_type == plan.entity_type
                        && state.contributor() == self.contributor.as_deref()
                        && !found.contains(&state.id)
                    {
                        found.push(state.id);
                    }
                }
            }
            if found.len() > 1 {
                self.warnings.push((
                    row,
                    key.system.clone(),
                    format!("{} entities hold this identifier; the first ({}) is updated", found.len(), found[0]),
                ));
            }
            if let Some(id) = found.into_iter().next() {
                return Ok(Some(Target::Entity(id)));
            }
        }
        let Some(m) = &plan.linked_match else { return Ok(None) };
        let Some(owner) = slots.get(m.owner) else { return Ok(None) };
        let local = (key_of(owner), m.role, m.value.to_string());
        if let Some(target) = self.by_link.get(&local).or_else(|| self.previous.by_link.get(&local)) {
            return Ok(Some(target.clone()));
        }
        if let Target::Entity(owner_id) = owner {
            if let Some(state) = self.active(owner_id)? {
                if let Some(found) = self.linked_from(&state, plan, m)? {
                    return Ok(Some(found));
                }
                // An older row may name what the owner was linked to then and is no longer
                // (a former home address): found in the owner as it was at the row's time.
                if plan.valid < state.last_valid_time {
                    let then = ReadAt { as_of: None, valid_at: Some(plan.valid) };
                    if let Some(then) = self.store.entity(&state.id, then)? {
                        return self.linked_from(&then, plan, m);
                    }
                }
            }
        }
        Ok(None)
    }

    /// The entity of `plan`'s type that `owner` links to by the match's role, with the
    /// match's attribute value.
    fn linked_from(&self, owner: &EntityState, plan: &EntityPlan, m: &LinkedMatch) -> Result<Option<Target>> {
        for link in owner.links.iter().filter(|l| l.role == m.role) {
            if let Some(other) = self.active(&link.to)? {
                if other.entity_type == plan.entity_type && other.attribute(m.attribute) == Some(&m.value) {
                    return Ok(Some(Target::Entity(other.id)));
                }
            }
        }
        Ok(None)
    }

    fn add_row(&mut self, plan: &RowPlan) -> Result<()> {
        let mut slots: Vec<Target> = Vec::with_capacity(plan.entities.len());
        for entity in &plan.entities {
            let target = match self.find(plan.row, entity, &slots)? {
                Some(target) => {
                    let new_set = self.unsaid(&target, entity.valid, &entity.set);
                    let new_keys = self.unsaid_keys(&target, &entity.keys);
                    if !new_set.is_empty() || !new_keys.is_empty() {
                        let mut update = ChangeRequest::update(target.clone()).valid_at(entity.valid);
                        update.row = Some(plan.row);
                        if let OpRequest::Update { set, add_identifiers, .. } = &mut update.op {
                            *set = new_set;
                            *add_identifiers = new_keys;
                        }
                        self.changes.push(update);
                    }
                    target
                }
                None => {
                    self.next_ref += 1;
                    let name = format!("r{}", self.next_ref);
                    let mut create =
                        ChangeRequest::create(name.clone(), entity.entity_type.as_ref()).valid_at(entity.valid);
                    create.row = Some(plan.row);
                    if let OpRequest::Create { set, identifiers, .. } = &mut create.op {
                        set.extend(entity.create_only.clone());
                        set.extend(entity.set.clone());
                        identifiers.extend(entity.keys.iter().cloned());
                    }
                    let target = Target::Ref(name);
                    if let OpRequest::Create { set, identifiers, .. } = &create.op {
                        self.unsaid(&target, entity.valid, set);
                        self.unsaid_keys(&target, identifiers);
                    }
                    self.changes.push(create);
                    target
                }
            };
            if let Some((when, later)) = &entity.later {
                let new_set = self.unsaid(&target, *when, later);
                if !new_set.is_empty() {
                    let mut update = ChangeRequest::update(target.clone()).valid_at(*when);
                    update.row = Some(plan.row);
                    if let OpRequest::Update { set, .. } = &mut update.op {
                        *set = new_set;
                    }
                    self.changes.push(update);
                }
            }
            for key in &entity.keys {
                self.by_identifier.insert(key.clone(), target.clone());
            }
            if let Some(m) = &entity.linked_match {
                if let Some(owner) = slots.get(m.owner) {
                    self.by_link.insert((key_of(owner), m.role, m.value.to_string()), target.clone());
                }
            }
            slots.push(target);
        }
        for link in &plan.links {
            let (Some(from), Some(to)) = (slots.get(link.from), slots.get(link.to)) else { continue };
            let said = (key_of(from), link.role.to_string(), key_of(to), link.valid);
            if !self.said_links.insert(said) {
                continue;
            }
            let ends = match link.single {
                true => self.move_single(plan.row, from, &link.role, to, link.valid)?,
                false => None,
            };
            let mut change = ChangeRequest::link(from.clone(), link.role.as_ref(), to.clone()).valid_at(link.valid);
            change.row = Some(plan.row);
            self.changes.push(change);
            if let Some(end) = ends {
                self.unlink(plan.row, from, &link.role, to.clone(), end);
            }
        }
        Ok(())
    }

    /// The values of `set` this transaction does not already set on `target` at `valid`,
    /// noted as said.
    fn unsaid(&mut self, target: &Target, valid: Timestamp, set: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        let said = self.said.entry((key_of(target), valid)).or_default();
        let mut new = BTreeMap::new();
        for (name, value) in set {
            if said.get(name) != Some(value) {
                said.insert(name.clone(), value.clone());
                new.insert(name.clone(), value.clone());
            }
        }
        new
    }

    /// The identifiers this transaction does not already give `target`, noted as given.
    fn unsaid_keys(&mut self, target: &Target, keys: &[Identifier]) -> Vec<Identifier> {
        let target = key_of(target);
        keys.iter().filter(|key| self.said_keys.insert((target.clone(), (*key).clone()))).cloned().collect()
    }

    /// Moves a single-valued role to `to` as of `valid`: the link it holds now (from the store
    /// or from an earlier row of this file) ends where the new one starts. When the row is
    /// older than that link (a file not in date order), the newer link stays current and the
    /// row's link is the one that ends, where the newer one starts: the answer is the time
    /// the new link must end, if any.
    fn move_single(
        &mut self,
        row: u64,
        from: &Target,
        role: &str,
        to: &Target,
        valid: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let slot = (key_of(from), role.to_owned());
        let current = match self.single_links.get(&slot).or_else(|| self.previous.single_links.get(&slot)) {
            Some(current) => Some(current.clone()),
            None => self.stored_single(row, from, role, to, valid)?,
        };
        match current {
            Some((old, since)) if key_of(&old) == key_of(to) => {
                self.single_links.insert(slot, (old, since.min(valid)));
                Ok(None)
            }
            Some((old, since)) if valid < since => {
                self.single_links.insert(slot, (old, since));
                Ok(Some(since))
            }
            Some((old, _)) => {
                self.unlink(row, from, role, old, valid);
                self.single_links.insert(slot, (to.clone(), valid));
                Ok(None)
            }
            None => {
                self.single_links.insert(slot, (to.clone(), valid));
                Ok(None)
            }
        }
    }

    /// The link of a single-valued role the store holds now and since when; any others (a
    /// role made single after the fact) end at `valid` unless they are `to`.
    fn stored_single(
        &mut self,
        row: u64,
        from: &Target,
        role: &str,
        to: &Target,
        valid: Timestamp,
    ) -> Result<Option<(Target, Timestamp)>> {
        let Target::Entity(id) = from else { return Ok(None) };
        let Some(state) = self.active(id)? else { return Ok(None) };
        let mut links: Vec<(Target, Timestamp)> = state
            .links
            .iter()
            .filter(|l| l.role == role)
            .map(|l| (Target::Entity(l.to.clone()), l.provenance.valid_time))
            .collect();
        links.sort_by_key(|(_, since)| *since);
        let current = links.pop();
        for (old, since) in links {
            if key_of(&old) != key_of(to) && since <= valid {
                self.unlink(row, from, role, old, valid);
            }
        }
        Ok(current)
    }

    fn unlink(&mut self, row: u64, from: &Target, role: &str, old: Target, valid: Timestamp) {
        let mut change = ChangeRequest::update(from.clone()).valid_at(valid);
        change.op = OpRequest::Unlink { role: role.to_owned(), to: old };
        change.row = Some(row);
        self.changes.push(change);
    }
}

/// The active entity an id leads to (following merges), or `None`.
pub(crate) fn active(store: &Store, id: &EntityId) -> Result<Option<EntityState>> {
    let mut id = id.clone();
    for _ in 0..16 {
        let Some(state) = store.entity(&id, ReadAt::NOW)? else { return Ok(None) };
        match &state.status {
            Status::Active => return Ok(Some(state)),
            Status::Merged { into } => id = into.clone(),
            Status::Retracted { .. } | Status::Erased => return Ok(None),
        }
    }
    Ok(None)
}

/// The transaction a file's accepted rows make, and the warnings resolution found.
#[derive(Debug)]
pub struct Built {
    pub request: TransactionRequest,
    /// `(row, identifier system, reason)`.
    pub warnings: Vec<(u64, String, String)>,
    /// Rows the builder could not include, with the reason (a link to an entity whose own
    /// row was refused): the caller rejects them and builds again without them.
    pub dropped: Vec<(u64, String)>,
    /// What the next chunk's plan needs of this one.
    pub carry: Carry,
}

impl Built {
    /// Names the entities the previous chunk created, which this plan knows by their refs,
    /// by the ids the store gave them.
    pub fn resolve_refs(&mut self, refs: &BTreeMap<String, EntityId>) {
        for change in &mut self.request.changes {
            resolve(&mut change.target, refs);
            match &mut change.op {
                OpRequest::Link { to, .. } | OpRequest::Unlink { to, .. } | OpRequest::Merge { into: to } => {
                    resolve(to, refs)
                }
                _ => {}
            }
        }
        self.carry.resolve_refs(refs);
    }
}

/// Builds the transaction for `plans`, after the chunk `previous` was planned (and while it
/// may still be committing); in a dry run, `previous` is every chunk judged before.
pub fn build(store: &Store, plans: &[RowPlan], source: Source, previous: &Carry) -> Result<Built> {
    let mut builder = Builder::new(store, source.council.clone(), previous);
    for plan in plans {
        builder.add_row(plan)?;
    }
    let reason = source.file.as_ref().map(|f| format!("ingest of {f}"));
    let request = TransactionRequest {
        actor: "pole-ods ingest".into(),
        role: "council".into(),
        source,
        idempotency_key: None,
        reason,
        changes: builder.changes,
    };
    let carry = Carry {
        by_identifier: builder.by_identifier,
        by_link: builder.by_link,
        single_links: builder.single_links,
        next_ref: builder.next_ref,
    };
    let warnings = builder.warnings;
    Ok(Built { request, warnings, dropped: Vec::new(), carry })
}

/// The row a store refusal names, when it names a change: `rows` are the rows of the
/// transaction's changes, in order.
pub fn refused_row(rows: &[Option<u64>], rejection: &Rejection) -> Option<u64> {
    let idx = match rejection {
        Rejection::Invalid { change_idx, .. } | Rejection::Conflict { change_idx, .. } => *change_idx,
        _ => return None,
    };
    rows.get(idx).copied().flatten()
}
