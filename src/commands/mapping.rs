//! `pole-ods mapping suggest --council CODE [--profile NAME|FILE | --into FILE] [--limit N]`:
//! the local values of a council's data that no profile mapped to a national code (kept
//! verbatim by ingest), each with how often it is held and the national codes most like
//! it, printed as a profile fragment to edit (`--json`: one JSON document). With `--into
//! FILE`, the best candidate for each value is merged into that council profile in place
//! instead (`suggest::merge`): what was added and what was skipped is said on stderr, and
//! the file is replaced whole (written beside it, then renamed) only when it changed.
//! Reads the store only; the store must exist.
//!
//! Exit status: 0 (also when nothing is unmapped, which it says), 2 for a bad command
//! line (unknown profile, bad council code, an `--into` file that is not a valid profile).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use pole_ingest::suggest;
use pole_ingest::Profile;

use crate::config::Config;
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    pub command: MappingCommand,
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// List a council's unmapped local values with candidate national codes, as a profile
    /// fragment to edit
    Suggest(SuggestArgs),
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// The council whose data is read
    #[arg(long, value_name = "CODE")]
    pub council: String,
    /// The profile the fragment is for (built-in name or .toml file): values it maps now
    /// are not proposed again, and its columns name the value maps; default safeguarding
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "into")]
    pub profile: Option<String>,
    /// Merge the best candidate for each value into this council profile file, in place,
    /// keeping its entries, comments and order (never replacing a mapping it has); the
    /// file is also the profile whose mappings are not proposed again
    #[arg(long, value_name = "PROFILE.toml")]
    pub into: Option<std::path::PathBuf>,
    /// Candidate national codes shown per local value
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub limit: usize,
}

pub fn run(config: &Config, args: &MappingArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        MappingCommand::Suggest(args) => suggest_cmd(config, args),
    }
}

fn suggest_cmd(config: &Config, args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    if !pole_model::is_council_code(&args.council) {
        eprintln!("error: {}", pole_ingest::IngestError::BadCouncil(args.council.clone()));
        return Ok(ExitCode::from(2));
    }
    if args.limit == 0 {
        eprintln!("error: --limit must be at least 1");
        return Ok(ExitCode::from(2));
    }
    // Read before the store is opened, so a bad file costs nothing.
    let into = match &args.into {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path, text)),
            Err(e) => {
                eprintln!("error: cannot read profile {}: {e}", path.display());
                return Ok(ExitCode::from(2));
            }
        },
    };
    let loaded = match &into {
        Some((path, text)) => Profile::from_toml(text, &path.display().to_string()),
        None => Profile::load(args.profile.as_deref().unwrap_or("safeguarding")),
    };
    let profile = match loaded {
        Ok(profile) => profile,
        Err(e) => {
            let hint = if into.is_some() { " (--into takes an existing council profile file)" } else { "" };
            eprintln!("error: {e}{hint}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = super::open_existing(config)?;
    let found = suggest::suggest(&store, &args.council, &profile, args.limit);
    store.close()?;
    let found = found?;
    let operation = format!("pole-ods mapping suggest --council {}", args.council);
    crate::access::trace_cli(config, pole_store::AccessAction::Read, &operation, Vec::new())?;
    if let Some((path, text)) = into {
        return merge_into(config, path, &text, &found);
    }
    if config.json {
        print_json(&found)?;
    } else {
        print!("{}", suggest::fragment::render(&found));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--into`: merges the suggestions into the profile file and reports on stderr (stdout
/// carries `--json`'s document only).
fn merge_into(
    config: &Config,
    path: &std::path::Path,
    text: &str,
    found: &suggest::Suggestions,
) -> anyhow::Result<ExitCode> {
    let shown = path.display().to_string();
    let merged = match suggest::merge::merge(text, &shown, found) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("error: {e}; the file was not changed");
            return Ok(ExitCode::from(2));
        }
    };
    for added in &merged.added {
        eprintln!("added: [{}] {:?} = {:?}", added.section, added.value, added.code);
    }
    for skipped in &merged.skipped {
        eprintln!("skipped: [{}] {:?}: {}", skipped.section, skipped.value, skipped.reason);
    }
    if merged.text != text {
        write_beside(path, &merged.text)?;
    }
    eprintln!(
        "{shown}: {} mapping(s) added, {} skipped{}",
        merged.added.len(),
        merged.skipped.len(),
        if found.is_empty() { format!(" (nothing unmapped for council {})", found.council) } else { String::new() }
    );
    if config.json {
        let added: Vec<_> = merged
            .added
            .iter()
            .map(|a| serde_json::json!({"section": a.section, "value": a.value, "code": a.code}))
            .collect();
        let skipped: Vec<_> = merged
            .skipped
            .iter()
            .map(|s| serde_json::json!({"section": s.section, "value": s.value, "reason": s.reason}))
            .collect();
        print_json(&serde_json::json!({"profile": shown, "added": added, "skipped": skipped}))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces `path` with `text` so that a reader sees the old file or the new one, never
/// half of it: written to a file beside it, synced, then renamed over it.
fn write_beside(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.suggest-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}
