//! `mapping suggest`: the local values a council's data holds that no profile mapped to a
//! national code (ingest keeps them verbatim, with a warning, in attributes of type `code`
//! whose list is not strict), each with how often it is held and the national codes most
//! like it ([`rank`](mod@rank)), rendered as a profile fragment to edit ([`fragment`]) or merged into
//! a council's profile file ([`merge`]).
//!
//! The store is read through its public API only: the council's entities
//! (`Store::list_by_council`), their current state, and the schema's code lists. A value
//! counts when the council itself set it (the attribute's provenance names the council).
//! A value the chosen profile maps now (it was edited since the ingest) is not proposed
//! again, only counted.

pub mod fragment;
pub mod merge;
pub mod rank;

use std::collections::BTreeMap;

use pole_model::{CodeList, SchemaRegistry, Status, ValueType};
use pole_store::{ReadAt, Store};
use serde::Serialize;

use crate::error::Result;
use crate::profile::{Profile, BUILTIN};
use crate::safeguarding;

pub use rank::{normalise_text, rank, similarity, Candidate};

/// How many entities are read per page of the council index.
const PAGE: usize = 500;

/// The best score below which a candidate is shown but not proposed.
pub const PROPOSE_AT: f64 = 0.3;

/// One local value no profile maps, where it is held and what it might be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmapped {
    pub entity_type: String,
    pub attribute: String,
    pub code_list: String,
    /// The profile column whose value map would map it; `None` when the profile reads no
    /// column into that attribute (the fragment then maps it for the whole code list).
    pub column: Option<String>,
    pub value: String,
    /// How many of the council's entities hold it now.
    pub seen: u64,
    pub candidates: Vec<Candidate>,
    /// Other built-in profiles that map the same local value, and to what.
    pub elsewhere: Vec<Elsewhere>,
    /// The code the fragment proposes: another profile's mapping, else the best candidate
    /// scoring at least [`PROPOSE_AT`]; `None` when nothing is close.
    pub proposed: Option<String>,
}

/// A mapping of the same local value in another profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Elsewhere {
    pub profile: String,
    pub code: String,
}

/// What `mapping suggest` found for one council.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestions {
    pub council: String,
    pub profile: String,
    /// The profile's reader, for the fragment's `extends` hint.
    pub reader: String,
    pub entities_read: u64,
    /// Distinct unmapped values the profile maps now (edited since they were ingested).
    pub mapped_since: u64,
    pub unmapped: Vec<Unmapped>,
}

impl Suggestions {
    pub fn is_empty(&self) -> bool {
        self.unmapped.is_empty()
    }
}

/// The profile column `profile` reads into `attribute` of `entity_type`.
pub fn column_for(profile: &Profile, entity_type: &str, attribute: &str) -> Option<String> {
    if profile.reader == "generic" {
        return profile
            .entities
            .iter()
            .filter(|e| e.entity_type == entity_type)
            .find_map(|e| e.attributes.get(attribute).cloned());
    }
    safeguarding::column_for_attribute(entity_type, attribute).map(str::to_owned)
}

/// The council's unmapped values, with `limit` candidates each, most held first within
/// each attribute.
pub fn suggest(store: &Store, council: &str, profile: &Profile, limit: usize) -> Result<Suggestions> {
    let schema = store.schema();
    let (held, entities_read) = unmapped_values(store, schema, council)?;
    let others: Vec<Profile> = BUILTIN
        .iter()
        .filter(|(name, _)| *name != profile.name)
        .filter_map(|(name, _)| Profile::builtin(name).ok())
        .collect();
    let mut out = Suggestions {
        council: council.to_owned(),
        profile: profile.name.clone(),
        reader: profile.reader.clone(),
        entities_read,
        mapped_since: 0,
        unmapped: Vec::new(),
    };
    for ((entity_type, attribute, value), seen) in held {
        let Some(list) = list_of(schema, &entity_type, &attribute) else { continue };
        let column = column_for(profile, &entity_type, &attribute);
        let map_column = column.as_deref().unwrap_or_default();
        if profile.map_code(map_column, &value, list).known {
            out.mapped_since += 1;
            continue;
        }
        let elsewhere: Vec<Elsewhere> = others
            .iter()
            .filter_map(|other| {
                let other_column = column_for(other, &entity_type, &attribute).unwrap_or_default();
                let mapped = other.map_code(&other_column, &value, list);
                mapped.known.then(|| Elsewhere { profile: other.name.clone(), code: mapped.code })
            })
            .collect();
        let candidates = rank(&value, list, limit);
        let proposed = elsewhere
            .first()
            .map(|e| e.code.clone())
            .or_else(|| candidates.first().filter(|c| c.score >= PROPOSE_AT).map(|c| c.code.clone()));
        out.unmapped.push(Unmapped {
            entity_type,
            attribute,
            code_list: list.name.clone(),
            column,
            value,
            seen,
            candidates,
            elsewhere,
            proposed,
        });
    }
    out.unmapped.sort_by(|a, b| {
        (&a.column, &a.code_list, &a.entity_type, &a.attribute, std::cmp::Reverse(a.seen), &a.value).cmp(&(
            &b.column,
            &b.code_list,
            &b.entity_type,
            &b.attribute,
            std::cmp::Reverse(b.seen),
            &b.value,
        ))
    });
    Ok(out)
}

fn list_of<'s>(schema: &'s SchemaRegistry, entity_type: &str, attribute: &str) -> Option<&'s CodeList> {
    let def = schema.attribute(entity_type, attribute).ok()?;
    if def.value_type != ValueType::Code {
        return None;
    }
    def.code_list.as_deref().and_then(|l| schema.code_list(l))
}

/// (entity type, attribute, value) → how many active entities hold it.
type Held = BTreeMap<(String, String, String), u64>;

/// Every value the council set that its attribute's code list lacks, and how many entities
/// were read.
fn unmapped_values(store: &Store, schema: &SchemaRegistry, council: &str) -> Result<(Held, u64)> {
    let mut held = Held::new();
    let mut read = 0;
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (ids, next) = store.list_by_council(council, None, None, cursor.as_deref(), PAGE)?;
        for id in &ids {
            let Some(state) = store.entity(id, ReadAt::NOW)? else { continue };
            if state.status != Status::Active {
                continue;
            }
            read += 1;
            for (attribute, value) in &state.attributes {
                if value.provenance.council.as_deref() != Some(council) {
                    continue;
                }
                let Some(list) = list_of(schema, &state.entity_type, attribute) else { continue };
                let Some(text) = value.value.as_str() else { continue };
                if !list.contains(text) {
                    *held.entry((state.entity_type.clone(), attribute.clone(), text.to_owned())).or_default() += 1;
                }
            }
        }
        match next {
            Some(next) if !ids.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Ok((held, read))
}
