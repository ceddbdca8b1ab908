//! One module per command, and what they share: opening the store, parsing instants,
//! rendering entities as text.

pub mod demo;
pub mod entity;
pub mod history;
pub mod ingest;
pub mod replay;
pub mod serve;
pub mod stats;
pub mod tour;
pub mod verify;

use std::fmt::Write as _;

use anyhow::{bail, Context};
use pole_model::{EntityId, EntityState, Timestamp};
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

/// Parses `--as-of`: a sequence number, or an RFC 3339 time or date.
pub fn parse_as_of(text: &str) -> anyhow::Result<AsOf> {
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(AsOf::Seq(seq));
    }
    Timestamp::parse(text).map(AsOf::Time).map_err(|e| anyhow::anyhow!("--as-of: {e}; or give a sequence number"))
}

/// Refuses an as-of outside the store's recorded history.
pub fn check_as_of(store: &Store, as_of: AsOf) -> anyhow::Result<()> {
    let head = store.head();
    match as_of {
        AsOf::Seq(seq) if seq > head.seq => bail!("--as-of {seq}: the journal ends at seq {}", head.seq),
        AsOf::Seq(0) => bail!("--as-of 0: sequences start at 1"),
        AsOf::Time(t) if t > Timestamp::now() => bail!("--as-of {t} is in the future"),
        AsOf::Time(t) => {
            let first = store.transaction_meta(1)?.map(|m| m.recorded_at);
            if let Some(first) = first.filter(|f| t < *f) {
                bail!("--as-of {t} is before the store's first transaction (recorded at {first})");
            }
        }
        AsOf::Seq(_) => {}
    }
    Ok(())
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
