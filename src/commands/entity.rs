//! `pole-ods entity ID [--as-of T] [--valid-at D]`: one entity and its links.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use pole_model::Timestamp;
use pole_store::ReadAt;

use crate::config::Config;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct EntityArgs {
    /// The entity id
    pub id: String,
    /// What the store knew at this recorded time (RFC 3339 or date) or sequence
    #[arg(long, value_name = "T|SEQ")]
    pub as_of: Option<String>,
    /// The world as it was on this valid time (RFC 3339 or date)
    #[arg(long, value_name = "T")]
    pub valid_at: Option<String>,
}

pub fn run(config: &Config, args: &EntityArgs) -> anyhow::Result<ExitCode> {
    let id = super::parse_id(&args.id)?;
    let store = super::open_existing(config)?;
    let as_of = args.as_of.as_deref().map(|text| super::as_of(&store, text).map(|(a, _)| a)).transpose()?;
    let valid_at =
        args.valid_at.as_deref().map(Timestamp::parse).transpose().map_err(|e| anyhow::anyhow!("--valid-at: {e}"))?;
    let at = ReadAt { as_of, valid_at };
    let Some(state) = store.entity(&id, at)? else {
        bail!("no entity {id} at that point");
    };
    let links = store.links(&id, None, None, at)?;
    crate::access::trace_cli(config, pole_store::AccessAction::Read, "pole-ods entity", vec![id.clone()])?;
    if config.json {
        print_json(&serde_json::json!({ "entity": state, "links": links }))?;
    } else {
        print!("{}", super::render_entity(&store, &state, &links));
    }
    store.close()?;
    Ok(ExitCode::SUCCESS)
}
