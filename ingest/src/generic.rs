//! The `generic` reader: a profile's `[[entities]]` and `[[links]]` turn each row of any
//! tabular file into POLE entities and links, with the same value maps, date formats and
//! defaults as the `safeguarding` reader, and the same plans, so natural keys, the one
//! transaction per file and the report are shared.
//!
//! Everything a profile names is checked against the schema before the first row
//! (entity types, attributes, identifier systems, link roles): a mistake there refuses the
//! profile, it is not repeated on every row. What rejects a row: a blank key of an entity
//! that is not `optional`, a key the identifier system refuses, a date that does not parse
//! or lies in the future, a value outside a strict code list, a value of the wrong type.
//! What warns (the row is stored): a local code of a non-strict list no mapping covers
//! (kept verbatim), levels that disagree in a split cell, values of an optional entity the
//! row gives no key for (not stored).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use pole_model::{Identifier, Kind, SchemaRegistry, Timestamp, ValueType};
use serde_json::Value;

use crate::commit::{EntityPlan, LinkPlan, RowPlan};
use crate::error::{IngestError, Result};
use crate::profile::{normalise, EntityDecl, Profile};
use crate::report::RowReport;
use crate::validate;

/// Reads rows of one file with a `generic` profile.
#[derive(Debug)]
pub struct Reader<'a> {
    profile: &'a Profile,
    schema: &'a SchemaRegistry,
    council: String,
    today: NaiveDate,
    /// Profile column (normalised) → (index in the record, the submitter's name for it).
    index: BTreeMap<String, (usize, String)>,
    /// Header position → the profile column it is read as.
    read_as: BTreeMap<usize, String>,
    /// Profile column (normalised) → what it is stored as, for the report.
    notes: BTreeMap<String, String>,
    missing: Vec<String>,
}

/// A value of a row: the submitter's column name (for the report) and the trimmed text.
#[derive(Debug, Clone)]
struct Cell {
    column: String,
    value: String,
}

fn refuse(profile: &Profile, reason: String) -> IngestError {
    IngestError::Profile { name: profile.name.clone(), reason }
}

impl<'a> Reader<'a> {
    /// Checks the profile's declarations against the schema and prepares to read a file
    /// whose header is `header`.
    pub fn new(
        profile: &'a Profile,
        schema: &'a SchemaRegistry,
        council: &str,
        header: &[String],
        today: NaiveDate,
    ) -> Result<Self> {
        // Per declaration, its kind: the link rules are written in kinds and types.
        let mut kinds: Vec<Kind> = Vec::new();
        let mut notes = BTreeMap::new();
        for entity in &profile.entities {
            let def = schema.type_def(&entity.entity_type).map_err(|_| {
                let types: Vec<&str> = schema.types().keys().map(String::as_str).collect();
                refuse(
                    profile,
                    format!(
                        "entity {:?}: type {:?} is not in the schema (types: {})",
                        entity.name,
                        entity.entity_type,
                        types.join(", ")
                    ),
                )
            })?;
            kinds.push(def.kind);
            for attribute in entity.attributes.keys().chain(entity.constants.keys()) {
                if !def.attributes.contains_key(attribute) {
                    let known: Vec<&str> = def.attributes.keys().map(String::as_str).collect();
                    return Err(refuse(
                        profile,
                        format!(
                            "entity {:?}: type {} has no attribute {attribute:?} (attributes: {})",
                            entity.name,
                            entity.entity_type,
                            known.join(", ")
                        ),
                    ));
                }
            }
            for key in &entity.keys {
                let system = key.system.replace("{council}", council);
                schema.identifier_system(&system).map_err(|e| {
                    refuse(profile, format!("entity {:?}: key column {:?}: {e}", entity.name, key.column))
                })?;
                notes.insert(normalise(&key.column), format!("{} identifier {system}", entity.entity_type));
            }
            for (attribute, column) in &entity.attributes {
                notes.insert(normalise(column), format!("{}.{attribute}", entity.entity_type));
            }
        }
        let slot = |name: &str| profile.entities.iter().position(|e| e.name == name);
        for link in &profile.links {
            let (Some(from), Some(to)) = (slot(&link.from), slot(&link.to)) else {
                return Err(refuse(profile, format!("link {} names an undeclared entity", link.role)));
            };
            let ends = |i: usize| (kinds[i], profile.entities[i].entity_type.as_str());
            schema
                .check_link(&link.role, ends(from), ends(to))
                .map_err(|e| refuse(profile, format!("link {} -{}-> {}: {e}", link.from, link.role, link.to)))?;
        }

        let declared = profile.declared_columns();
        let known: Vec<&str> = declared.iter().map(String::as_str).collect();
        let mut index = BTreeMap::new();
        let mut read_as = BTreeMap::new();
        for (idx, name) in header.iter().enumerate() {
            let column =
                profile.column_for(name, &known).or_else(|| profile.column_for(&name.replace('_', " "), &known));
            if let Some(column) = column {
                // The first of two columns read as one profile column is the one used.
                if let std::collections::btree_map::Entry::Vacant(slot) = index.entry(normalise(column)) {
                    slot.insert((idx, name.clone()));
                    read_as.insert(idx, column.to_owned());
                }
            }
        }
        // A key of a required entity the file lacks rejects every row; a missing optional
        // column is fine (a council may not record it).
        let missing = profile
            .entities
            .iter()
            .filter(|e| !e.optional)
            .flat_map(|e| &e.keys)
            .map(|k| &k.column)
            .filter(|c| !index.contains_key(&normalise(c)) && profile.default_for(c).is_none())
            .fold(Vec::new(), |mut out: Vec<String>, c| {
                if !out.contains(c) {
                    out.push(c.clone());
                }
                out
            });
        Ok(Reader { profile, schema, council: council.to_owned(), today, index, read_as, notes, missing })
    }

    /// Required columns the header lacks: each row is rejected naming them.
    pub fn missing_columns(&self) -> &[String] {
        &self.missing
    }

    /// The profile column a header position is read as.
    pub fn read_as(&self, position: usize) -> Option<&str> {
        self.read_as.get(&position).map(String::as_str)
    }

    /// What a profile column is stored as, for the report's column list.
    pub fn column_note(&self, column: &str) -> Option<String> {
        self.notes.get(&normalise(column)).cloned()
    }

    fn cell(&self, fields: &[String], column: &str) -> Option<Cell> {
        let found = self.index.get(&normalise(column)).and_then(|(idx, name)| {
            let value = fields.get(*idx)?.trim();
            (!value.is_empty()).then(|| Cell { column: name.clone(), value: value.to_owned() })
        });
        found.or_else(|| {
            self.profile
                .default_for(column)
                .map(|value| Cell { column: format!("{column} (profile default)"), value: value.to_owned() })
        })
    }

    /// One date column may be read several times (an attribute and the valid time of
    /// several entities); its problem is reported once.
    fn date(&self, cell: &Cell, report: &mut RowReport) -> Option<NaiveDate> {
        let problem = match self.profile.parse_date(&cell.value) {
            None => {
                let formats = self.profile.date_formats.join(", ");
                format!("not a date (formats read: YYYY-MM-DD, {formats})")
            }
            Some(date) => match validate::not_future(date, self.today) {
                Ok(()) => return Some(date),
                Err(reason) => reason,
            },
        };
        let reported =
            report.issues.iter().any(|i| i.column == cell.column && i.value == cell.value && i.reason == problem);
        if !reported {
            report.error(&cell.column, &cell.value, problem);
        }
        None
    }

    /// A cell's value as `attribute` of `entity_type` stores it: mapped, parsed and checked
    /// by the schema. `None` (with an error or a warning in the report) when it is not stored.
    fn value(
        &self,
        cell: &Cell,
        profile_column: &str,
        (entity_type, attribute): (&str, &str),
        report: &mut RowReport,
    ) -> Option<Value> {
        let def = self.schema.attribute(entity_type, attribute).ok()?;
        let bad = |report: &mut RowReport, what: &str| {
            report.error(&cell.column, &cell.value, format!("not {what} ({entity_type}.{attribute})"));
            None
        };
        let raw = match def.value_type {
            ValueType::Code => {
                let list = def.code_list.as_deref().and_then(|l| self.schema.code_list(l))?;
                let mapped =
                    self.profile.map_cell(profile_column, (&cell.column, &cell.value), list, def.strict, report)?;
                Value::String(mapped.code)
            }
            ValueType::Date => Value::String(self.date(cell, report)?.format("%Y-%m-%d").to_string()),
            ValueType::Integer => match cell.value.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => return bad(report, "a whole number"),
            },
            ValueType::Decimal => match cell.value.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Value::Number(n),
                None => return bad(report, "a number"),
            },
            ValueType::Boolean => match normalise(&cell.value).as_str() {
                "y" | "yes" | "true" | "1" => Value::Bool(true),
                "n" | "no" | "false" | "0" => Value::Bool(false),
                _ => return bad(report, "yes or no"),
            },
            ValueType::Text | ValueType::Datetime => Value::String(cell.value.clone()),
        };
        match self.schema.check_value(entity_type, attribute, &raw) {
            Ok(value) => Some(value),
            Err(e) => {
                report.error(&cell.column, &cell.value, e.to_string());
                None
            }
        }
    }

    fn keys(&self, entity: &EntityDecl, fields: &[String], report: &mut RowReport) -> (Vec<Identifier>, bool) {
        let mut keys = Vec::new();
        let mut given = false;
        for key in &entity.keys {
            let Some(cell) = self.cell(fields, &key.column) else { continue };
            given = true;
            let system = key.system.replace("{council}", &self.council);
            let checked = validate::identifier_value(&system, &format!("{}{}", key.prefix, cell.value))
                .and_then(|id| self.schema.check_identifier(&id).map_err(|e| e.to_string()));
            match checked {
                Ok(id) => keys.push(id),
                Err(reason) => report.error(&cell.column, &cell.value, reason),
            }
        }
        (keys, given)
    }

    /// Reads one record. `None` when the row is rejected (the report says why).
    pub fn read(&mut self, row: u64, fields: &[String], report: &mut RowReport) -> Option<RowPlan> {
        if !self.missing.is_empty() {
            for missing in &self.missing {
                report.error(missing, "", "the file has no such column and the profile gives no default");
            }
            return None;
        }
        let default_valid = self.profile.valid_from.as_deref();
        let mut plan = RowPlan { row, entities: Vec::new(), links: Vec::new() };
        // Declaration index → slot in the plan, for the entities this row has.
        let mut slots: Vec<Option<usize>> = Vec::new();
        let mut valids: Vec<Timestamp> = Vec::new();
        for entity in &self.profile.entities {
            let (keys, given) = self.keys(entity, fields, report);
            if !given {
                if entity.optional {
                    for column in entity.attributes.values() {
                        if let Some(cell) = self.cell(fields, column) {
                            report.warn(
                                &cell.column,
                                &cell.value,
                                format!("not stored: the row has no key for {}", entity.name),
                            );
                        }
                    }
                    slots.push(None);
                    continue;
                }
                let columns: Vec<&str> = entity.keys.iter().map(|k| k.column.as_str()).collect();
                report.error(
                    columns.first().copied().unwrap_or_default(),
                    "",
                    format!("a key for {} is required ({})", entity.name, columns.join(" or ")),
                );
                slots.push(None);
                continue;
            }
            let valid_column = entity.valid_from.as_deref().or(default_valid);
            let valid = valid_column
                .and_then(|c| self.cell(fields, c))
                .and_then(|cell| self.date(&cell, report))
                .unwrap_or(self.today);
            let mut set = BTreeMap::new();
            for (attribute, column) in &entity.attributes {
                if let Some(cell) = self.cell(fields, column) {
                    if let Some(value) = self.value(&cell, column, (&entity.entity_type, attribute), report) {
                        set.insert(attribute.clone(), value);
                    }
                }
            }
            for (attribute, constant) in &entity.constants {
                let cell = Cell { column: format!("{} (profile constant)", entity.name), value: constant.clone() };
                if let Some(value) = self.value(&cell, attribute, (&entity.entity_type, attribute), report) {
                    set.insert(attribute.clone(), value);
                }
            }
            slots.push(Some(plan.entities.len()));
            valids.push(Timestamp::from_date(valid));
            plan.entities.push(EntityPlan {
                entity_type: entity.entity_type.clone().into(),
                keys,
                linked_match: None,
                valid: Timestamp::from_date(valid),
                set,
                create_only: BTreeMap::new(),
                later: None,
            });
        }
        if report.is_rejected() {
            return None;
        }
        let position = |name: &str| self.profile.entities.iter().position(|e| e.name == name);
        for link in &self.profile.links {
            let from = position(&link.from).and_then(|i| slots.get(i).copied().flatten());
            let to = position(&link.to).and_then(|i| slots.get(i).copied().flatten());
            if let (Some(from), Some(to)) = (from, to) {
                let valid = valids.get(from).copied().unwrap_or(Timestamp::from_date(self.today));
                plan.links.push(LinkPlan { from, role: link.role.clone().into(), to, valid, single: link.single });
            }
        }
        Some(plan)
    }
}
