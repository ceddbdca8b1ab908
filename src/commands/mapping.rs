//! `pole-ods mapping suggest --council CODE [--profile NAME|FILE] [--limit N]`: the local
//! values of a council's data that no profile mapped to a national code (kept verbatim by
//! ingest), each with how often it is held and the national codes most like it, printed as
//! a profile fragment to edit (`--json`: one JSON document). Reads only; the store must
//! exist.
//!
//! Exit status: 0 (also when nothing is unmapped, which it says), 2 for a bad command
//! line (unknown profile, bad council code).

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
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
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
    let profile = match Profile::load(args.profile.as_deref().unwrap_or("safeguarding")) {
        Ok(profile) => profile,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = super::open_existing(config)?;
    let found = suggest::suggest(&store, &args.council, &profile, args.limit);
    store.close()?;
    let found = found?;
    let operation = format!("pole-ods mapping suggest --council {}", args.council);
    crate::access::trace_cli(config, pole_store::AccessAction::Read, &operation, Vec::new())?;
    if config.json {
        print_json(&found)?;
    } else {
        print!("{}", suggest::fragment::render(&found));
    }
    Ok(ExitCode::SUCCESS)
}
