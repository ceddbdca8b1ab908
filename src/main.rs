//! `pole-ods`: the command line of the POLE operational data store.

mod access;
mod commands;
mod config;
mod output;
mod pack;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, GlobalArgs, LogFormat};

/// mimalloc rather than the system allocator: the write path and rebuild allocate and free
/// many small values (JSON states, deltas, keys), where glibc's malloc was a third of the
/// profile (BENCHMARKS.md, finding 6). Built without transparent huge pages (the workspace
/// enables mimalloc's `no_thp`): the writer allocates a group and the applier frees it, and
/// mimalloc's pages, returned to the kernel between groups, came back as fresh huge pages
/// to zero, a fifth of the writer's time (BENCHMARKS.md, log).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An event-sourced operational data store of People, Objects, Locations and Events for
/// England's adult social care data.
#[derive(Debug, Parser)]
#[command(name = "pole-ods", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (REST under /v1, /health, /ready)
    Serve(commands::serve::ServeArgs),
    /// Load a realistic, reproducible synthetic adult social care data set, then take a tour
    Demo(commands::demo::DemoArgs),
    /// Verify the journal's hash chain (and the access log's); exit status 1 if either fails
    Verify,
    /// Rebuild projections from the journal, or materialise the store as of an instant
    Replay(commands::replay::ReplayArgs),
    /// Every version of an entity: its change, actor, source, recorded and valid time
    History(commands::history::HistoryArgs),
    /// An entity now, or as of a recorded instant and valid at a valid time
    Entity(commands::entity::EntityArgs),
    /// Counts of transactions, changes and entities, and the state digest
    Stats,
    /// Ingest a council's file (CSV, pipe-delimited or HL7 v2) and print the submission report
    Ingest(commands::ingest::IngestArgs),
    /// Mapping profiles: `mapping suggest` lists a council's unmapped local values with
    /// candidate national codes, as a profile fragment to edit
    Mapping(commands::mapping::MappingArgs),
    /// Mint a development token (HS256, this deployment's secret) and print it alone
    Token(commands::token::TokenArgs),
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::resolve(&cli.global) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(&config, &args),
        Command::Demo(args) => commands::demo::run(&config, &args),
        Command::Verify => commands::verify::run(&config),
        Command::Replay(args) => commands::replay::run(&config, &args),
        Command::History(args) => commands::history::run(&config, &args),
        Command::Entity(args) => commands::entity::run(&config, &args),
        Command::Stats => commands::stats::run(&config),
        Command::Ingest(args) => commands::ingest::run(&config, &args),
        Command::Mapping(args) => commands::mapping::run(&config, &args),
        Command::Token(args) => commands::token::run(&config, &args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
