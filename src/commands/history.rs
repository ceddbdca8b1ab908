//! `pole-ods history ID`: every version of an entity.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use pole_model::{ChangeOp, FieldOp};
use pole_store::Version;

use super::value_text;
use crate::config::Config;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The entity id
    pub id: String,
}

pub fn run(config: &Config, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let id = super::parse_id(&args.id)?;
    let store = super::open_existing(config)?;
    let versions = store.history(&id)?;
    if versions.is_empty() {
        bail!("no entity {id}");
    }
    crate::access::trace_cli(config, pole_store::AccessAction::Read, "pole-ods history", vec![id.clone()])?;
    if config.json {
        print_json(&serde_json::json!({ "id": id, "versions": versions }))?;
    } else {
        for version in &versions {
            print!("{}", render_version(version));
        }
    }
    store.close()?;
    Ok(ExitCode::SUCCESS)
}

pub fn render_version(v: &Version) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "v{} seq {} recorded {} valid {} by {} ({}) council {} file {}",
        v.version,
        v.seq,
        v.recorded_at,
        v.valid_time,
        v.actor,
        v.role,
        v.source.council.as_deref().unwrap_or("-"),
        v.source.file.as_deref().unwrap_or("-"),
    );
    match &v.change.op {
        ChangeOp::Create { delta, entity_type, .. } => {
            let _ = writeln!(out, "  create {entity_type}");
            render_delta(&mut out, delta.ops());
        }
        ChangeOp::Update { delta } => {
            let _ = writeln!(out, "  update");
            render_delta(&mut out, delta.ops());
        }
        ChangeOp::Link { role, to, valid_from, valid_to, .. } => {
            let _ = writeln!(
                out,
                "  link {role} -> {to} valid {:?} .. {:?}",
                valid_from.map(|t| t.to_string()),
                valid_to.map(|t| t.to_string())
            );
        }
        ChangeOp::Unlink { role, to } => {
            let _ = writeln!(out, "  unlink {role} -> {to}");
        }
        other => {
            let _ = writeln!(out, "  {} {}", other.name(), serde_json::to_string(other).unwrap_or_default());
        }
    }
    out
}

fn render_delta(out: &mut String, ops: &[FieldOp]) {
    for op in ops {
        let _ = match op {
            FieldOp::Set { attribute, before: Some(b), after } => {
                writeln!(out, "    {attribute}: {} -> {}", value_text(b), value_text(after))
            }
            FieldOp::Set { attribute, before: None, after } => writeln!(out, "    {attribute}: {}", value_text(after)),
            FieldOp::Unset { attribute, before } => writeln!(out, "    {attribute}: {} -> (unset)", value_text(before)),
            FieldOp::AddIdentifier { identifier } => {
                writeln!(out, "    + identifier {} {}", identifier.system, identifier.value)
            }
            FieldOp::RemoveIdentifier { identifier } => {
                writeln!(out, "    - identifier {} {}", identifier.system, identifier.value)
            }
        };
    }
}
