//! The service layer: every rule a read or write obeys (parameter checks, as-of semantics,
//! pagination, access), written once for REST and GraphQL. Handlers only translate. Access
//! is decided by the [`Caller`] (the one enforcement point) and every answer is recorded in
//! the access log through it.

use pole_model::{
    survive, Change, ChangeOp, Delta, EntityId, EntityState, Identifier, Kind, SearchKey, Source, SourceKind,
    SourceRecord, Timestamp,
};
use pole_store::{
    AccessAction, AccessLogReport, AccessQuery, AccessRecord, AsOf, ChangeRequest, Direction, ReadAt, Store, Target,
    TransactionRequest, VerifyReport,
};
use serde::Deserialize;

use crate::access::{Caller, Grant};
use crate::error::{ApiError, ApiResult};
use crate::views::*;

/// Parses an entity id from a path.
pub fn entity_id(text: &str) -> ApiResult<EntityId> {
    EntityId::new(text).map_err(|e| ApiError::invalid("id", e.to_string()))
}

/// Resolves `as_of` (a sequence or an RFC 3339 time/date) and `valid_at`, refusing instants
/// before the store's first transaction or in the future.
pub fn read_at(store: &Store, as_of: Option<&str>, valid_at: Option<&str>) -> ApiResult<(ReadAt, ReadAtView)> {
    let as_of = match as_of.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => {
            let as_of = AsOf::parse(text).map_err(|e| ApiError::invalid("as_of", e.to_string()))?;
            let seq = store.check_as_of(as_of)?.map_err(|e| ApiError::invalid("as_of", e.to_string()))?;
            Some((as_of, seq))
        }
    };
    let valid_at = match valid_at.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(Timestamp::parse(text).map_err(|e| ApiError::invalid("valid_at", e.to_string()))?),
    };
    let as_of_seq = as_of.map_or(store.head().seq, |(_, seq)| seq);
    Ok((ReadAt { as_of: as_of.map(|(a, _)| a), valid_at }, ReadAtView { as_of_seq, valid_at }))
}

/// The instant ages are computed for: the read's valid time, else now.
fn age_instant(view: &ReadAtView) -> Timestamp {
    view.valid_at.unwrap_or_else(Timestamp::now)
}

/// Reads one entity the caller may see, refusing out-of-scope ids before reading.
fn visible_state(store: &Store, caller: &Caller, id: &EntityId, at: ReadAt) -> ApiResult<Option<EntityState>> {
    caller.check_visible(store, id, None)?;
    let Some(state) = store.entity(id, at)? else { return Ok(None) };
    caller.check_state(store, id, &state)?;
    Ok(Some(state))
}

pub fn entity(
    store: &Store,
    caller: &Caller,
    id: &str,
    as_of: Option<&str>,
    valid_at: Option<&str>,
) -> ApiResult<EntityView> {
    caller.require_records()?;
    let id = caller.resolve_id(id)?;
    let (at, view) = read_at(store, as_of, valid_at)?;
    let shown = caller.present_id(&id).unwrap_or_else(|| id.clone());
    let state = visible_state(store, caller, &id, at)?
        .ok_or_else(|| ApiError::NotFound { what: format!("entity {shown} at that point") })?;
    let state = caller.present(store, state, age_instant(&view))?;
    caller.audit(AccessAction::Read, std::slice::from_ref(&id), None, None)?;
    Ok(EntityView::new(state, view))
}

/// The current state, for deciding visibility of history and diffs.
fn current_visible(store: &Store, caller: &Caller, id: &EntityId) -> ApiResult<EntityState> {
    caller.check_visible(store, id, None)?;
    let state =
        store.entity_sealed(id, ReadAt::NOW)?.ok_or_else(|| ApiError::NotFound { what: format!("entity {id}") })?;
    caller.check_state(store, id, &state)?;
    Ok(state)
}

pub fn history(store: &Store, caller: &Caller, id: &str) -> ApiResult<HistoryView> {
    caller.require_identifying("history")?;
    let id = caller.resolve_id(id)?;
    current_visible(store, caller, &id)?;
    let mut versions = store.history(&id)?;
    if let Some(own) = caller.viewer().own_contributions_only() {
        // A council sees the versions it wrote; the others exist but are not its record.
        versions.retain(|v| v.source.council.as_deref() == Some(own));
    }
    caller.audit(AccessAction::Read, std::slice::from_ref(&id), None, None)?;
    Ok(HistoryView { id, versions })
}

/// The most source records one national person gathers: resolution stops there (a number
/// shared by more records than any person has is a data error, not a person).
const MAX_SOURCE_RECORDS: usize = 64;

/// The national view of the person record `id` is of: every source record identity
/// resolution links to it and each attribute by the pack's survivorship rules. For national
/// roles only: it joins every council's records, which a council never sees.
pub fn national_person(store: &Store, caller: &Caller, id: &str) -> ApiResult<NationalPersonView> {
    caller.require_identifying("the national view of a person")?;
    if let Some(council) = caller.viewer().council_scope() {
        return Err(caller.denied(
            AccessAction::Read,
            ApiError::Forbidden(format!(
                "the national view joins every source's records; council {council} reads its own record"
            )),
        ));
    }
    let id = caller.resolve_id(id)?;
    let asked = current_visible(store, caller, &id)?;
    if asked.kind != Kind::Person {
        return Err(ApiError::invalid("id", format!("entity {id} is a {}, not a person", asked.entity_type)));
    }
    if !asked.is_active() {
        return Err(ApiError::invalid(
            "id",
            format!("entity {id} is no longer active (retracted, merged or erased): ask through an active record"),
        ));
    }
    // The first deterministic rule: records holding the same valid NHS number, gathered
    // transitively (a record with two numbers joins both groups).
    let mut records: Vec<(EntityState, &'static str)> = Vec::new();
    let mut queue = vec![(id.clone(), "asked")];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((next, linked_by)) = queue.pop() {
        if !seen.insert(next.clone()) || records.len() >= MAX_SOURCE_RECORDS {
            continue;
        }
        let Some(state) = store.entity(&next, ReadAt::NOW)? else { continue };
        if state.kind != Kind::Person || !state.is_active() {
            continue;
        }
        for nhs in state.identifiers.iter().filter(|i| i.identifier.system == "nhs-number") {
            for holder in store.find_by_identifier(&nhs.identifier)? {
                queue.push((holder, "nhs-number"));
            }
        }
        records.push((state, linked_by));
    }
    // An objection recorded by any source is the person's: a caller that honours opt-out
    // does not see the national person at all.
    if caller.viewer().honours_opt_out() && records.iter().any(|(state, _)| state.opted_out()) {
        return Err(caller.denied(
            AccessAction::Read,
            ApiError::Forbidden(format!(
                "entity {id} is not available to the {} role without break-glass",
                caller.principal.role
            )),
        ));
    }
    records.sort_by(|a, b| (a.1 != "asked", &a.0.id).cmp(&(b.1 != "asked", &b.0.id)));
    let mut kinds = Vec::with_capacity(records.len());
    for (state, _) in &records {
        let role = store.transaction_meta(state.created.seq)?.map(|meta| meta.role).unwrap_or_default();
        kinds.push(match (state.contributor(), role.as_str()) {
            (None, _) => SourceKind::National,
            (Some(_), "council") => SourceKind::Council,
            (Some(_), _) => SourceKind::Health,
        });
    }
    let sources: Vec<SourceRecord<'_>> =
        records.iter().zip(&kinds).map(|((state, _), kind)| SourceRecord { state, kind: *kind }).collect();
    let survived = survive(&sources, store.schema().survivorship());
    let from = |c: &pole_model::Candidate| ValueSourceView {
        record: c.record.clone(),
        source: c.kind.as_str().to_owned(),
        provenance: c.provenance.clone(),
    };
    let attributes = survived
        .into_iter()
        .map(|(name, s)| {
            let view = SurvivedView {
                value: s.chosen.value.clone(),
                rule: s.rule.as_str().to_owned(),
                from: from(&s.chosen),
                candidates: s
                    .candidates
                    .iter()
                    .map(|c| CandidateView { value: c.value.clone(), from: from(c) })
                    .collect(),
            };
            (name, view)
        })
        .collect();
    let identifiers = records
        .iter()
        .flat_map(|(state, _)| {
            state.identifiers.iter().map(|i| HeldIdentifierView {
                system: i.identifier.system.clone(),
                value: i.identifier.value.clone(),
                record: state.id.clone(),
            })
        })
        .collect();
    let record_views = records
        .iter()
        .zip(&kinds)
        .map(|((state, linked_by), kind)| SourceRecordView {
            id: state.id.clone(),
            contributor: state.contributor().map(str::to_owned),
            source: kind.as_str().to_owned(),
            linked_by: (*linked_by).to_owned(),
        })
        .collect::<Vec<_>>();
    let ids: Vec<EntityId> = records.iter().map(|(state, _)| state.id.clone()).collect();
    caller.audit(AccessAction::Read, &ids, Some("national view of a person".into()), None)?;
    Ok(NationalPersonView { id, records: record_views, attributes, identifiers })
}

pub fn diff(store: &Store, caller: &Caller, id: &str, from: u64, to: u64) -> ApiResult<DiffView> {
    caller.require_identifying("diff")?;
    let id = caller.resolve_id(id)?;
    current_visible(store, caller, &id)?;
    let n_versions = store.history(&id)?.len() as u64;
    for (field, v) in [("from", from), ("to", to)] {
        if v == 0 || v > n_versions {
            return Err(ApiError::invalid(
                field,
                format!("version {v} does not exist (the entity has 1 to {n_versions})"),
            ));
        }
    }
    let vanished = || ApiError::Internal(format!("versions of {id} vanished"));
    let delta = if caller.viewer().own_contributions_only().is_some() {
        // The difference between what this council may see of the two versions.
        let now = Timestamp::now();
        let mut fields = Vec::new();
        for v in [from, to] {
            let state = store.entity_at_version(&id, v)?.ok_or_else(vanished)?;
            fields.push(caller.present(store, state, now)?.fields());
        }
        Delta::diff(&fields[0], &fields[1])
    } else {
        store.diff(&id, from, to)?.ok_or_else(vanished)?
    };
    caller.audit(AccessAction::Read, std::slice::from_ref(&id), None, None)?;
    Ok(DiffView { id, from, to, delta })
}

pub fn links(
    store: &Store,
    caller: &Caller,
    id: &str,
    direction: Option<&str>,
    role: Option<&str>,
    as_of: Option<&str>,
    valid_at: Option<&str>,
) -> ApiResult<LinksView> {
    caller.require_records()?;
    let id = caller.resolve_id(id)?;
    let direction = match direction {
        None | Some("both") => None,
        Some("out") => Some(Direction::Out),
        Some("in") => Some(Direction::In),
        Some(other) => return Err(ApiError::invalid("direction", format!("{other:?} is not out, in or both"))),
    };
    let (at, view) = read_at(store, as_of, valid_at)?;
    let shown = caller.present_id(&id).unwrap_or_else(|| id.clone());
    let Some(state) = visible_state(store, caller, &id, at)? else {
        return Err(ApiError::NotFound { what: format!("entity {shown} at that point") });
    };
    let via_person = state.kind == Kind::Person;
    let own = caller.viewer().own_contributions_only();
    let mut links = Vec::new();
    for mut link in store.links(&id, direction, role, at)? {
        if own.is_some_and(|own| link.council.as_deref() != Some(own)) {
            continue;
        }
        if !caller.link_visible(store, &link.other, via_person)? {
            continue;
        }
        let Some(other) = caller.present_id(&link.other) else { continue };
        link.other = other;
        if caller.viewer().minimised() {
            link.council = None;
            link.valid_from = link.valid_from.map(|t| caller.viewer().coarsen(t));
            link.valid_to = link.valid_to.map(|t| caller.viewer().coarsen(t));
        }
        links.push(link);
    }
    caller.audit(AccessAction::Read, std::slice::from_ref(&id), None, Some(links.len() as u64))?;
    Ok(LinksView { id: shown, links, read_at: view })
}

pub fn list(
    store: &Store,
    caller: &Caller,
    kind: Option<&str>,
    entity_type: Option<&str>,
    council: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<PageView> {
    caller.require_records()?;
    let kind = kind.map(|k| k.parse::<Kind>().map_err(|e| ApiError::invalid("kind", e.to_string()))).transpose()?;
    if let Some(ty) = entity_type {
        let def = store.schema().type_def(ty).map_err(|e| ApiError::invalid("type", e.to_string()))?;
        if kind.is_some_and(|k| k != def.kind) {
            return Err(ApiError::invalid(
                "type",
                format!("type {ty:?} is a {}, not a {}", def.kind, kind.map(|k| k.to_string()).unwrap_or_default()),
            ));
        }
    }
    if let Some(council) = council {
        if !pole_model::is_council_code(council) {
            return Err(ApiError::invalid("council", "a council code is 1 to 32 letters, digits, - or _"));
        }
    }
    let viewer = caller.viewer();
    // A council-scoped caller lists its own council's index, whatever it asked for.
    let council = match (viewer.council_scope(), council) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(caller.denied(
                AccessAction::Search,
                ApiError::Forbidden(format!("council {own} may not list council {asked}'s records")),
            ))
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let cursor = cursor
        .map(|text| {
            caller.open_cursor(text).ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API returned"))
        })
        .transpose()?;
    let needs_state = viewer.minimised() || viewer.honours_opt_out();
    let keep = |id: &EntityId| -> pole_store::Result<bool> {
        if !needs_state {
            return Ok(true);
        }
        let Some(head) = store.entity_head(id)? else { return Ok(false) };
        // Listed from the caller's own council index when it has a council scope.
        caller.may_see_head(store, id, Some(&head), false).map_err(|e| pole_store::StoreError::Backend(e.to_string()))
    };
    let (ids, next) = match council {
        Some(council) => store.list_by_council_where(council, kind, entity_type, cursor.as_deref(), limit, keep)?,
        None => store.list_where(kind, entity_type, cursor.as_deref(), limit, keep)?,
    };
    let query = format!(
        "kind={} type={} council={}",
        kind.map(|k| k.to_string()).unwrap_or_default(),
        entity_type.unwrap_or_default(),
        council.unwrap_or_default()
    );
    caller.audit(AccessAction::Search, &ids, Some(query), Some(ids.len() as u64))?;
    let items = ids.iter().filter_map(|id| caller.present_id(id)).collect();
    let next_cursor = next.map(|k| caller.seal_cursor(&k));
    Ok(PageView { items, next_cursor })
}

/// The search parameters; at least one is required, and every one given must match.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    pub nhs_number: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub birth_date: Option<String>,
    pub postcode: Option<String>,
}

pub fn search(store: &Store, caller: &Caller, params: &SearchParams) -> ApiResult<MatchesView> {
    caller.require_identifying("search")?;
    let mut sets: Vec<Vec<EntityId>> = Vec::new();
    let mut used = Vec::new();
    if let Some(nhs) = &params.nhs_number {
        pole_model::normalise_nhs_number(nhs).map_err(|e| ApiError::invalid("nhs_number", e.to_string()))?;
        sets.push(store.find_by_identifier(&Identifier::new("nhs-number", nhs.clone()))?);
        used.push("nhs_number");
    }
    for (key, value) in [
        (SearchKey::FamilyName, &params.family_name),
        (SearchKey::GivenName, &params.given_name),
        (SearchKey::BirthDate, &params.birth_date),
        (SearchKey::Postcode, &params.postcode),
    ] {
        if let Some(value) = value {
            if key.normalise(value).is_empty() {
                return Err(ApiError::invalid(key.as_str(), "empty after normalisation"));
            }
            sets.push(store.search(key, value)?);
            used.push(key.as_str());
        }
    }
    let Some((first, rest)) = sets.split_first() else {
        return Err(ApiError::invalid(
            "query",
            "give at least one of nhs_number, family_name, given_name, birth_date, postcode",
        ));
    };
    let mut items: Vec<EntityId> = first.iter().filter(|id| rest.iter().all(|s| s.contains(id))).cloned().collect();
    items.sort();
    items.dedup();
    let items = visible_only(store, caller, items)?;
    // The access log names which keys were searched, never their (identifiable) values.
    caller.audit(
        AccessAction::Search,
        &items,
        Some(format!("search by {}", used.join(", "))),
        Some(items.len() as u64),
    )?;
    Ok(MatchesView { items })
}

/// The ids of a match set the caller may see; scope is decided per id from the indexes
/// (the council index first, the entity only when opt-out matters).
fn visible_only(store: &Store, caller: &Caller, ids: Vec<EntityId>) -> ApiResult<Vec<EntityId>> {
    let viewer = caller.viewer();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !caller.may_see(store, &id, None)? {
            continue;
        }
        if viewer.honours_opt_out() {
            let Some(head) = store.entity_head(&id)? else { continue };
            if !caller.may_see_head(store, &id, Some(&head), false)? {
                continue;
            }
        }
        out.push(id);
    }
    Ok(out)
}

pub fn identifier(store: &Store, caller: &Caller, system: &str, value: &str) -> ApiResult<MatchesView> {
    caller.require_identifying("identifier look-up")?;
    let identifier = Identifier::new(system, value);
    store.schema().check_identifier(&identifier).map_err(|e| ApiError::invalid("identifier", e.to_string()))?;
    let items = visible_only(store, caller, store.find_by_identifier(&identifier)?)?;
    caller.audit(AccessAction::Search, &items, Some(format!("identifier {system}")), Some(items.len() as u64))?;
    if items.is_empty() {
        return Err(ApiError::NotFound { what: format!("identifier {system}/{value}") });
    }
    Ok(MatchesView { items })
}

pub fn journal(store: &Store, caller: &Caller, after: u64, limit: usize) -> ApiResult<JournalView> {
    journal_page(store, caller, after, limit, true)
}

/// A page of the feed as the caller may see it; `always_trace`: record the access even when
/// nothing was the caller's to see (a request), or only when something was (a follower).
fn journal_page(
    store: &Store,
    caller: &Caller,
    after: u64,
    limit: usize,
    always_trace: bool,
) -> ApiResult<JournalView> {
    caller.require_records()?;
    let head_seq = store.head().seq;
    let mut transactions = Vec::new();
    let mut seen = Vec::new();
    let mut next_after = after;
    for tx in store.transactions(after, limit)? {
        next_after = tx.seq;
        if let Some(tx) = feed_transaction(store, caller, store.open_transaction(tx))? {
            seen.extend(tx.changes.iter().map(|c| c.entity.clone()));
            transactions.push(tx);
        }
    }
    seen.sort();
    seen.dedup();
    if always_trace || !transactions.is_empty() {
        let query = format!("journal after {after}");
        caller.audit(AccessAction::Export, &seen, Some(query), Some(transactions.len() as u64))?;
    }
    Ok(JournalView { transactions, head_seq, next_after })
}

/// One transaction of the change feed as the caller may see it, or `None` when nothing of
/// it is theirs to see. A council sees its own submissions; opt-out hides changes to the
/// people concerned; a consumer sees covered entities' changes, minimised and pseudonymised.
pub fn feed_transaction(
    store: &Store,
    caller: &Caller,
    mut tx: pole_model::Transaction,
) -> ApiResult<Option<pole_model::Transaction>> {
    let viewer = caller.viewer();
    if viewer.own_contributions_only().is_some_and(|own| tx.source.council.as_deref() != Some(own)) {
        return Ok(None);
    }
    if !viewer.minimised() && !viewer.honours_opt_out() && viewer.council_scope().is_none() {
        return Ok(Some(tx));
    }
    let on = Timestamp::now().date();
    let mut changes = Vec::with_capacity(tx.changes.len());
    for change in std::mem::take(&mut tx.changes) {
        let Some(head) = store.entity_head(&change.entity)? else { continue };
        if !caller.may_see_head(store, &change.entity, Some(&head), true)? {
            continue;
        }
        if !viewer.minimised() {
            changes.push(change);
            continue;
        }
        if let Some(change) = minimise_change(store, caller, change, &head.entity_type, on)? {
            changes.push(change);
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    tx.changes = changes;
    if viewer.minimised() {
        let council = tx.source.council.take();
        tx.source = Source { council, ..Source::default() };
        tx.recorded_at = viewer.coarsen(tx.recorded_at);
        tx.actor = String::new();
        tx.idempotency_key = None;
        tx.reason = None;
        tx.request_fingerprint = None;
        tx.refs.clear();
    }
    Ok(Some(tx))
}

fn minimise_change(
    store: &Store,
    caller: &Caller,
    mut change: Change,
    entity_type: &str,
    on: chrono::NaiveDate,
) -> ApiResult<Option<Change>> {
    let viewer = caller.viewer();
    let schema = store.schema();
    let Some(entity) = caller.present_id(&change.entity) else { return Ok(None) };
    change.entity = entity;
    change.row = None;
    change.valid_time = change.valid_time.map(|t| viewer.coarsen(t));
    change.op = match change.op {
        ChangeOp::Create { kind, entity_type: ty, delta } => {
            ChangeOp::Create { kind, delta: viewer.redact_delta(delta, schema, &ty, on), entity_type: ty }
        }
        ChangeOp::Update { delta } => ChangeOp::Update { delta: viewer.redact_delta(delta, schema, entity_type, on) },
        ChangeOp::Link { role, to, valid_from, valid_to, attributes } => {
            if !caller.link_visible(store, &to, false)? {
                return Ok(None);
            }
            let Some(to) = caller.present_id(&to) else { return Ok(None) };
            let (valid_from, valid_to) = (valid_from.map(|t| viewer.coarsen(t)), valid_to.map(|t| viewer.coarsen(t)));
            ChangeOp::Link { role, to, valid_from, valid_to, attributes }
        }
        ChangeOp::Unlink { role, to } => {
            if !caller.link_visible(store, &to, false)? {
                return Ok(None);
            }
            let Some(to) = caller.present_id(&to) else { return Ok(None) };
            ChangeOp::Unlink { role, to }
        }
        ChangeOp::Merge { into } => {
            if !caller.link_visible(store, &into, false)? {
                return Ok(None);
            }
            let Some(into) = caller.present_id(&into) else { return Ok(None) };
            ChangeOp::Merge { into }
        }
        ChangeOp::Retract { .. } => ChangeOp::Retract { reason: String::new() },
        ChangeOp::Erase { .. } => ChangeOp::Erase { reason: String::new() },
        ChangeOp::Unmerge => ChangeOp::Unmerge,
    };
    Ok(Some(change))
}

/// The body of `POST /v1/transactions`: an atomic batch of changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionInput {
    /// `council`, `system`, `batch`, `file`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source: Option<Source>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Each `{"target": {"ref": "p1"} | {"entity": "ID"}, "op": {"op": "create" | "update" |
    /// "link" | "unlink" | "retract" | "merge" | "unmerge" | "erase", ...}, "expected_version",
    /// "valid_time", "row"}`. A create's `ref` gets an id the store assigns; a create naming an
    /// `entity` id gives the new entity that id, refused if any entity ever held it.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<ChangeRequest>,
}

pub fn commit(
    store: &Store,
    caller: &Caller,
    input: TransactionInput,
    idempotency_key: Option<String>,
) -> ApiResult<CommittedView> {
    let mut source = input.source.unwrap_or_default();
    if source.system.is_none() {
        source.system = Some("api".into());
    }
    if source.council.is_none() && caller.principal.role == pole_auth::Role::Council {
        source.council.clone_from(&caller.principal.council);
    }
    let mut touched: Vec<EntityId> = input
        .changes
        .iter()
        .filter_map(|c| match &c.target {
            Target::Entity(id) => Some(id.clone()),
            Target::Ref(_) => None,
        })
        .collect();
    let request = TransactionRequest {
        actor: caller.principal.subject.clone(),
        role: caller.principal.role.to_string(),
        source,
        idempotency_key,
        reason: input.reason,
        changes: input.changes,
    };
    caller.require_write(&request.operations(), request.source.council.as_deref())?;
    let committed = store.commit(request)?.map_err(|rejection| caller.refused_write(rejection))?;
    touched.extend(committed.refs.values().cloned());
    touched.sort();
    touched.dedup();
    caller.audit(AccessAction::Write, &touched, None, Some(committed.changes as u64))?;
    Ok(CommittedView { committed })
}

/// The body of `POST /v1/entities/{id}/erase`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    /// Why the person's identifiable values are destroyed (no personal data: it is kept in
    /// the journal as the erasure receipt).
    pub reason: String,
}

/// Erases an entity's identifiable values everywhere, leaving a receipt in the journal.
pub fn erase(store: &Store, caller: &Caller, id: &str, input: EraseInput) -> ApiResult<CommittedView> {
    let id = caller.resolve_id(id)?;
    if input.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "say why the record is erased"));
    }
    let change: ChangeRequest = serde_json::from_value(serde_json::json!({
        "target": { "entity": id },
        "op": { "op": "erase", "reason": input.reason.trim() },
    }))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let input = TransactionInput { source: None, reason: Some(format!("erasure of {id}")), changes: vec![change] };
    commit(store, caller, input, None)
}

/// Records matching an auditor's query: who read or changed what, when.
pub fn access_records(caller: &Caller, log: &pole_store::AccessLog, query: AccessQuery) -> ApiResult<AccessPage> {
    caller.require_auditor()?;
    let limit = query.limit;
    let records = log.query(&query)?;
    let next_after = (records.len() == limit).then(|| records.last().map(|r| r.seq)).flatten();
    caller.audit(AccessAction::Read, &[], Some("access log".into()), Some(records.len() as u64))?;
    Ok(AccessPage { records, next_after })
}

/// A page of the access log.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AccessPage {
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<AccessRecord>,
    /// Pass as `after` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Both chains, verified end to end.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    #[schema(value_type = Object)]
    pub journal: VerifyReport,
    #[schema(value_type = Object)]
    pub access_log: AccessLogReport,
}

pub fn verify(store: &Store, caller: &Caller, log: &pole_store::AccessLog) -> ApiResult<VerifyView> {
    caller.require_auditor()?;
    log.flush()?;
    let journal = pole_store::verify(store.dir(), |_| {})?;
    let access_log = pole_store::verify_access_log(log.dir())?;
    caller.audit(AccessAction::Read, &[], Some("verify".into()), None)?;
    Ok(VerifyView { ok: journal.ok && access_log.ok, journal, access_log })
}

/// Opens a break-glass grant for the calling analyst.
pub fn break_glass(access: &crate::access::AccessControl, caller: &Caller, reason: &str) -> ApiResult<Grant> {
    access.break_glass(caller, reason)
}

// ------------------------------------------------------------------------- pages and the feed

/// The page size a caller asked for (`limit` in REST, `first` in GraphQL, named by `field`):
/// 1 to `max_page`, 100 (or `max_page` if smaller) when not given.
pub fn page_limit(max_page: usize, field: &str, limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(100.min(max_page)),
        Some(0) => Err(ApiError::invalid(field, "must be at least 1")),
        Some(n) if n > max_page => Err(ApiError::invalid(field, format!("must be at most {max_page}"))),
        Some(n) => Ok(n),
    }
}

/// How often an idle follower looks at the journal head.
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// Transactions a follower reads at a time.
const FEED_BATCH: usize = 256;

/// Follows the change feed: replays the transactions after a sequence, then waits for new
/// commits, answering each transaction once, in sequence order, opened for the caller by
/// [`journal`]. The server-sent-events stream and the GraphQL subscription both follow the
/// journal with it, so the start rule and the order rule are written once.
#[derive(Debug)]
pub struct JournalFollower {
    store: Store,
    caller: Caller,
    after: u64,
}

impl JournalFollower {
    /// Starts after `after` (the current head when `None`); a sequence past the head is refused.
    pub fn start(store: Store, caller: Caller, after: Option<u64>) -> ApiResult<Self> {
        caller.require_records()?;
        caller.require_live()?;
        let head = store.head().seq;
        let after = after.unwrap_or(head);
        if after > head {
            return Err(ApiError::invalid("after", format!("seq {after} is after the journal head ({head})")));
        }
        Ok(JournalFollower { store, caller, after })
    }

    /// The sequence of the last transaction answered (or the start point).
    pub fn after(&self) -> u64 {
        self.after
    }

    /// Refuses once the caller's token has expired ([`Caller::require_live`]).
    pub fn require_live(&self) -> ApiResult<()> {
        self.caller.require_live()
    }

    /// The next transactions the caller may see, oldest first. Waits up to `wait` for a
    /// commit and answers an empty batch if none came, so a caller can keep an idle
    /// connection alive. Each batch is in the access log before it is answered. Once the
    /// caller's token has expired it answers `Unauthorized`, within one poll of its `exp`,
    /// waiting or not: the stream or subscription ends there.
    pub async fn next(&mut self, wait: std::time::Duration) -> ApiResult<Vec<pole_model::Transaction>> {
        let mut waited = std::time::Duration::ZERO;
        loop {
            self.caller.require_live()?;
            // The head moves only after a group is durable and applied, so everything up to
            // it can be read, and nothing later is seen before something earlier.
            if self.store.head().seq > self.after {
                let (store, caller, after) = (self.store.clone(), self.caller.clone(), self.after);
                let view = actix_web::web::block(move || journal_page(&store, &caller, after, FEED_BATCH, false))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))??;
                self.after = view.next_after;
                if view.transactions.is_empty() {
                    // Nothing of that batch is the caller's: look further without waiting.
                    continue;
                }
                return Ok(view.transactions);
            }
            if waited >= wait {
                return Ok(Vec::new());
            }
            actix_web::rt::time::sleep(FEED_POLL).await;
            waited += FEED_POLL;
        }
    }
}
