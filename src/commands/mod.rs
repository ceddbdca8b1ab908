//! One module per command, and what they share: opening the store, parsing instants,
//! rendering entities as text.

pub mod demo;
pub mod entity;
pub mod history;
pub mod ingest;
pub mod mapping;
pub mod replay;
pub mod serve;
pub mod stats;
pub mod token;
pub mod tour;
pub mod verify;

use std::fmt::Write as _;

use anyhow::{bail, Context};
use pole_model::{EntityId, EntityState};
use pole_store::{AsOf, LinkView, Store, StoreOptions};
use serde_json::Value;

use crate::config::Config;

/// Opens the configured store (creating it when new).
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let schema = crate::pack::load(config.schema_pack.as_deref())?;
    let options = StoreOptions { backend: config.backend, cache_bytes: config.cache_mb << 20, schema: Some(schema) };
    Store::open(&config.data, options).with_context(|| format!("opening data directory {}", config.data.display()))
}

/// Opens a store that must already exist (read commands never create one).
pub fn open_existing(config: &Config) -> anyhow::Result<Store> {
    if !config.data.join("FORMAT").exists() {
        bail!(
            "{} is not a pole-ods data directory (no FORMAT file); load one with `pole-ods demo` or pass --data",
            config.data.display()
        );
    }
    open_store(config)
}

/// Parses `--as-of` (a sequence number, or an RFC 3339 time or date), checks it lies within
/// the store's recorded history, and returns it with the sequence it names.
pub fn as_of(store: &Store, text: &str) -> anyhow::Result<(AsOf, u64)> {
    let as_of = AsOf::parse(text).map_err(|e| anyhow::anyhow!("--as-of {text}: {e}"))?;
    let seq = store.check_as_of(as_of)?.map_err(|e| anyhow::anyhow!("--as-of {text}: {e}"))?;
    Ok((as_of, seq))
}

pub fn parse_id(text: &str) -> anyhow::Result<EntityId> {
    EntityId::new(text).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A one-line label for an entity: its type and a telling attribute.
pub fn label(store: &Store, id: &EntityId) -> String {
    match store.entity(id, pole_store::ReadAt::NOW) {
        Ok(Some(state)) => {
            let pick = [
                "name",
                "family_name",
                "postcode",
                "contact_date",
                "referral_date",
                "start_date",
                "date_initiated",
                "date_occurred",
                "admitted_at",
                "discharged_at",
                "service_type",
            ];
            let detail = pick.iter().find_map(|a| state.attribute(a).map(|v| format!("{a}={}", value_text(v))));
            match detail {
                Some(d) => format!("{} {} ({d})", state.entity_type, id),
                None => format!("{} {}", state.entity_type, id),
            }
        }
        _ => format!("{id} (unreadable)"),
    }
}

/// Renders an entity as indented text.
pub fn render_entity(store: &Store, state: &EntityState, links: &[LinkView]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({}) version {}, {:?}",
        state.entity_type, state.id, state.kind, state.version, state.status
    );
    for (name, attr) in &state.attributes {
        let p = &attr.provenance;
        let _ = writeln!(
            out,
            "  {name:<26} {:<28} seq {} council {} valid {}",
            value_text(&attr.value),
            p.seq,
            p.council.as_deref().unwrap_or("-"),
            p.valid_time.to_string().get(..10).unwrap_or_default()
        );
    }
    for ident in &state.identifiers {
        let _ = writeln!(out, "  identifier {:<15} {}", ident.identifier.system, ident.identifier.value);
    }
    for link in links {
        let arrow = match link.direction {
            pole_store::Direction::Out => "->",
            pole_store::Direction::In => "<-",
        };
        let period = match (link.valid_from, link.valid_to) {
            (None, None) => String::new(),
            (f, t) => format!(
                " [{} .. {}]",
                f.map(|f| f.to_string()[..10].to_owned()).unwrap_or_default(),
                t.map(|t| t.to_string()[..10].to_owned()).unwrap_or_default()
            ),
        };
        let _ = writeln!(out, "  {arrow} {:<20} {}{period}", link.role, label(store, &link.other));
    }
    out
}
