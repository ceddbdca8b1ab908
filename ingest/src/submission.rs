//! The POLE submission pipeline: a `<submission>` read by [`crate::xml::submission`] is
//! checked against the schema pack (types, kinds, attributes and their value types,
//! identifier systems, link roles), its entities are resolved by natural key (an `id`, or
//! an identifier the store already holds, or one given earlier in the same submission) and
//! the accepted rows are committed as one transaction, with the same report and the same
//! refusal handling as every tabular format.
//!
//! Resubmitting a submission changes nothing when its entities carry identifiers or ids
//! (updates with the same values and links that already exist are no-ops in the store); an
//! entity with only a `ref` is new every time, and the report warns of it.
//!
//! One submission is one transaction, so it may carry at most [`pole_store::MAX_CHANGES`]
//! changes; a larger one is refused whole, and is split into several submissions (several
//! files) by the submitter.

use std::collections::{BTreeMap, HashMap};

use pole_model::{EntityId, EntityState, Identifier, Kind, SchemaRegistry, Source, Timestamp, ValueType};
use pole_store::{ChangeRequest, OpRequest, Store, Target, TransactionRequest};
use serde_json::Value;

use crate::commit::{self, Built};
use crate::error::Result;
use crate::report::{Report, RowReport};
use crate::xml::submission::{self as shape, Element, EntityElement, LinkElement};
use crate::{commit_rows, rejected, ChunkTx, Options, PlannedRow, Run};

/// The report's profile for a submission: the mapping is fixed by the format.
pub const PROFILE: &str = "pole-submission";

/// An entity row checked against the schema.
#[derive(Debug, Clone)]
struct EntityPlan {
    row: u64,
    local_ref: Option<String>,
    id: Option<EntityId>,
    entity_type: String,
    valid: Option<Timestamp>,
    identifiers: Vec<Identifier>,
    set: BTreeMap<String, Value>,
}

/// A link row whose ends name entity rows of the submission.
#[derive(Debug, Clone)]
struct LinkPlan {
    row: u64,
    role: String,
    from: String,
    to: String,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
}

#[derive(Debug, Clone)]
enum Plan {
    Entity(EntityPlan),
    Link(LinkPlan),
}

impl PlannedRow for Plan {
    fn row(&self) -> u64 {
        match self {
            Plan::Entity(e) => e.row,
            Plan::Link(l) => l.row,
        }
    }
}

/// Ingests one submission's text into the store (or plans it, in a dry run).
pub fn ingest(
    store: &Store,
    text: &str,
    options: &Options<'_>,
    mut report: Report,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let read = match shape::read(text, progress) {
        Ok(read) => read,
        Err(problem) => return Ok(rejected(report, problem)),
    };
    progress(text.len() as u64);
    let mut rows = read.rows;
    if rows.is_empty() {
        report.file_problems.push("the submission has no <entity> or <link>: nothing to store".into());
    }
    let schema = store.schema();
    let mut plans = Vec::new();
    // Refs of entity rows: their type and kind when accepted, or the row that was rejected.
    let mut refs: HashMap<String, std::result::Result<(String, Kind), u64>> = HashMap::new();
    for element in &read.elements {
        if let Element::Entity(entity) = element {
            let Some(row) = row_mut(&mut rows, entity.row) else { continue };
            let plan = check_entity(schema, entity, row);
            if let Some(local_ref) = &entity.local_ref {
                if refs.contains_key(local_ref) {
                    row.error(
                        &format!("entity[@ref='{local_ref}']"),
                        local_ref,
                        format!("line {}: the ref {local_ref} is already used by an earlier entity", row.line),
                    );
                } else {
                    let entry = match (&plan, row.is_rejected()) {
                        (Some((_, kind)), false) => Ok((entity.entity_type.clone(), *kind)),
                        _ => Err(entity.row),
                    };
                    refs.insert(local_ref.clone(), entry);
                }
            }
            if let (Some((plan, _)), false) = (plan, row.is_rejected()) {
                plans.push(Plan::Entity(plan));
            }
        }
    }
    for element in &read.elements {
        if let Element::Link(link) = element {
            let Some(row) = row_mut(&mut rows, link.row) else { continue };
            if let Some(plan) = check_link(schema, &refs, link, row) {
                plans.push(Plan::Link(plan));
            }
        }
    }
    let source = Source {
        council: Some(options.council.to_owned()),
        system: Some("pole-ods ingest".into()),
        batch: Some(read.id.map_or_else(|| "pole submission".to_owned(), |id| format!("pole submission {id}"))),
        file: Some(options.file_name.to_owned()),
    };
    let accepted = !plans.is_empty();
    let (outcome, _) =
        commit_rows(store, options, &mut report, &mut rows, plans, ChunkTx::single(), |store, plans, _earlier| {
            build(store, plans, source.clone())
        })?;
    // Stored at durability: the caller may read next.
    store.wait_readable()?;
    for row in rows {
        report.add(row);
    }
    let mut run = Run::default();
    run.record(&outcome, accepted);
    report.status = run.status(options);
    Ok(report)
}

fn row_mut(rows: &mut [RowReport], row: u64) -> Option<&mut RowReport> {
    usize::try_from(row).ok().and_then(|r| r.checked_sub(1)).and_then(|idx| rows.get_mut(idx))
}

/// An attribute's text as the value its schema type wants, checked.
fn typed_value(
    schema: &SchemaRegistry,
    entity_type: &str,
    name: &str,
    text: &str,
) -> std::result::Result<Value, String> {
    let def = schema.attribute(entity_type, name).map_err(|e| e.to_string())?;
    let text = text.trim();
    let value = match def.value_type {
        ValueType::Integer => text.parse::<i64>().map(Value::from).map_err(|_| format!("not an integer: {text:?}"))?,
        ValueType::Decimal => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("not a decimal number: {text:?}"))?,
        ValueType::Boolean => match text {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("not a boolean (true, false, 1 or 0): {text:?}")),
        },
        ValueType::Text | ValueType::Date | ValueType::Datetime | ValueType::Code => Value::String(text.to_owned()),
    };
    schema.check_value(entity_type, name, &value).map_err(|e| e.to_string())
}

fn check_entity(schema: &SchemaRegistry, entity: &EntityElement, row: &mut RowReport) -> Option<(EntityPlan, Kind)> {
    let line = row.line;
    let at = match &entity.local_ref {
        Some(r) => format!("entity[@ref='{r}']"),
        None => format!("entity (row {})", entity.row),
    };
    let kind = match schema.type_def(&entity.entity_type) {
        Ok(def) => def.kind,
        Err(e) => {
            row.error(&format!("{at}/@type"), &entity.entity_type, format!("line {line}: {e}"));
            return None;
        }
    };
    if let Some(given) = entity.kind.filter(|k| *k != kind) {
        row.error(
            &format!("{at}/@kind"),
            given.as_str(),
            format!("line {line}: type {} is a {kind}, not a {given}", entity.entity_type),
        );
    }
    let mut identifiers = Vec::new();
    for (path, system, value) in &entity.identifiers {
        match schema.check_identifier(&Identifier::new(system.as_str(), value.as_str())) {
            Ok(id) => identifiers.push(id),
            Err(e) => row.error(path, value, format!("line {line}: {e}")),
        }
    }
    let mut set = BTreeMap::new();
    for (path, name, text) in &entity.attributes {
        match typed_value(schema, &entity.entity_type, name, text) {
            Ok(value) => _ = set.insert(name.clone(), value),
            Err(reason) => row.error(path, text, format!("line {line}: {reason}")),
        }
    }
    if entity.id.is_none() && identifiers.is_empty() && !row.is_rejected() {
        row.warn(&at, "", "no identifier and no id: resubmitting this file creates the entity again");
    }
    let plan = EntityPlan {
        row: entity.row,
        local_ref: entity.local_ref.clone(),
        id: entity.id.clone(),
        entity_type: entity.entity_type.clone(),
        valid: entity.valid_from,
        identifiers,
        set,
    };
    Some((plan, kind))
}

fn check_link(
    schema: &SchemaRegistry,
    refs: &HashMap<String, std::result::Result<(String, Kind), u64>>,
    link: &LinkElement,
    row: &mut RowReport,
) -> Option<LinkPlan> {
    let line = row.line;
    let end = |attribute: &str, local_ref: &str, row: &mut RowReport| match refs.get(local_ref) {
        Some(Ok(found)) => Some(found.clone()),
        Some(Err(rejected)) => {
            row.error(
                &format!("link/@{attribute}"),
                local_ref,
                format!("line {line}: the entity {local_ref} is rejected (row {rejected}), so this link is too"),
            );
            None
        }
        None => {
            row.error(
                &format!("link/@{attribute}"),
                local_ref,
                format!("line {line}: no entity of this submission has ref {local_ref}"),
            );
            None
        }
    };
    let from = end("from", &link.from, row);
    let to = end("to", &link.to, row);
    let ((from_type, from_kind), (to_type, to_kind)) = (from?, to?);
    if let Err(e) = schema.check_link(&link.role, (from_kind, &from_type), (to_kind, &to_type)) {
        row.error("link/@role", &link.role, format!("line {line}: {e}"));
        return None;
    }
    Some(LinkPlan {
        row: link.row,
        role: link.role.clone(),
        from: link.from.clone(),
        to: link.to.clone(),
        valid_from: link.valid_from,
        valid_to: link.valid_to,
    })
}

/// The transaction of the plans still accepted: entities first (so that links can name
/// them), each an update of the entity its id or an identifier finds, or a create.
fn build(store: &Store, plans: &[Plan], source: Source) -> Result<Built> {
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut dropped = Vec::new();
    let mut targets: HashMap<&str, Target> = HashMap::new();
    let mut by_identifier: HashMap<Identifier, Target> = HashMap::new();
    // Ids and identifiers name the submitter's own records only: another contributor's
    // record reads as no record at all, so a submission learns nothing of it.
    let contributor = source.council.clone();
    let own = |state: Option<EntityState>| state.filter(|s| s.contributor() == contributor.as_deref());
    for plan in plans {
        let Plan::Entity(entity) = plan else { continue };
        let found = match &entity.id {
            Some(id) => match own(commit::active(store, id)?) {
                Some(state) if state.entity_type == entity.entity_type => Some(Target::Entity(state.id)),
                Some(state) => {
                    let reason = format!("entity {id} is a {}, not a {}", state.entity_type, entity.entity_type);
                    dropped.push((entity.row, reason));
                    continue;
                }
                None => {
                    dropped.push((entity.row, format!("no active entity of this submitter has id {id}")));
                    continue;
                }
            },
            None => find(store, contributor.as_deref(), entity, &by_identifier, &mut warnings)?,
        };
        let mut change = match &found {
            Some(target) => {
                let mut update = ChangeRequest::update(target.clone());
                if let OpRequest::Update { set, add_identifiers, .. } = &mut update.op {
                    set.extend(entity.set.clone());
                    add_identifiers.extend(entity.identifiers.iter().cloned());
                }
                update
            }
            None => {
                let mut create = ChangeRequest::create(format!("row{}", entity.row), entity.entity_type.clone());
                if let OpRequest::Create { set, identifiers, .. } = &mut create.op {
                    set.extend(entity.set.clone());
                    identifiers.extend(entity.identifiers.iter().cloned());
                }
                create
            }
        };
        change.row = Some(entity.row);
        change.valid_time = entity.valid;
        let target = change.target.clone();
        let says_something = found.is_none() || !entity.set.is_empty() || !entity.identifiers.is_empty();
        if says_something {
            changes.push(change);
        }
        for identifier in &entity.identifiers {
            by_identifier.insert(identifier.clone(), target.clone());
        }
        if let Some(local_ref) = &entity.local_ref {
            targets.insert(local_ref, target);
        }
    }
    for plan in plans {
        let Plan::Link(link) = plan else { continue };
        let (Some(from), Some(to)) = (targets.get(link.from.as_str()), targets.get(link.to.as_str())) else {
            dropped.push((link.row, "not stored: an entity it links was refused (see its row)".to_owned()));
            continue;
        };
        let mut change = ChangeRequest::link(from.clone(), link.role.clone(), to.clone());
        if let OpRequest::Link { valid_from, valid_to, .. } = &mut change.op {
            *valid_from = link.valid_from;
            *valid_to = link.valid_to;
        }
        change.row = Some(link.row);
        change.valid_time = link.valid_from;
        changes.push(change);
    }
    let reason = source.file.as_ref().map(|f| format!("ingest of {f}"));
    let request = TransactionRequest {
        actor: "pole-ods ingest".into(),
        role: "council".into(),
        source,
        idempotency_key: None,
        reason,
        changes,
    };
    Ok(Built { request, warnings, dropped, carry: Default::default() })
}

/// The entity an earlier row of this submission or the store holds under one of the
/// entity's identifiers, of the same type.
fn find(
    store: &Store,
    contributor: Option<&str>,
    entity: &EntityPlan,
    by_identifier: &HashMap<Identifier, Target>,
    warnings: &mut Vec<(u64, String, String)>,
) -> Result<Option<Target>> {
    for identifier in &entity.identifiers {
        if let Some(target) = by_identifier.get(identifier) {
            return Ok(Some(target.clone()));
        }
    }
    for identifier in &entity.identifiers {
        let mut found = Vec::new();
        for id in store.find_by_identifier(identifier)? {
            if let Some(state) = commit::active(store, &id)? {
                if state.entity_type == entity.entity_type
                    && state.contributor() == contributor
                    && !found.contains(&state.id)
                {
                    found.push(state.id);
                }
            }
        }
        if found.len() > 1 {
            warnings.push((
                entity.row,
                identifier.system.clone(),
                format!("{} entities hold this identifier; the first ({}) is updated", found.len(), found[0]),
            ));
        }
        if let Some(id) = found.into_iter().next() {
            return Ok(Some(Target::Entity(id)));
        }
    }
    Ok(None)
}
