//! `pole-ods replay`: replay the journal and compare digests, rebuild projections in place,
//! or materialise the store as of an instant into another directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use crate::output::{print_json, progress};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Materialise the store as it stood at this recorded time (RFC 3339 or date) or sequence (needs --into)
    #[arg(long, value_name = "T|SEQ")]
    pub as_of: Option<String>,
    /// Drop every projection and rebuild it from the journal, in place
    #[arg(long, conflicts_with = "into")]
    pub rebuild: bool,
    /// Write the materialised store into this new (empty) directory
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct ReplayView {
    mode: &'static str,
    digest: String,
    /// The live projections' digest before, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    live_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    equal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    into: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_of_seq: Option<u64>,
    /// The whole command, digests included.
    seconds: f64,
    /// Rebuilding alone (drop, replay, flush), without the digests that check it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuild_seconds: Option<f64>,
    transactions: u64,
}

pub fn run(config: &Config, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    if args.as_of.is_some() && args.into.is_none() {
        bail!("--as-of materialises a copy of the store: give --into DIR as well");
    }
    let store = super::open_existing(config)?;
    let head = store.head().seq;
    let started = std::time::Instant::now();
    let bar = progress(head, "replaying", config.json);
    let view = if let Some(into) = &args.into {
        let seq = match args.as_of.as_deref() {
            None => head,
            Some(text) => super::as_of(&store, text)?.1,
        };
        let digest = store.materialise(seq, into, |s| bar.set_position(s))?;
        ReplayView {
            mode: "materialise",
            digest: digest.to_hex(),
            live_digest: None,
            equal: None,
            into: Some(into.clone()),
            as_of_seq: Some(seq),
            seconds: started.elapsed().as_secs_f64(),
            rebuild_seconds: None,
            transactions: seq,
        }
    } else if args.rebuild {
        let before = store.digest()?;
        let rebuild_bar = bar.clone();
        let rebuilding = std::time::Instant::now();
        store.rebuild_projections(move |s| rebuild_bar.set_position(s))?;
        let rebuild_seconds = rebuilding.elapsed().as_secs_f64();
        let digest = store.digest()?;
        ReplayView {
            mode: "rebuild",
            digest: digest.to_hex(),
            live_digest: Some(before.to_hex()),
            equal: Some(before == digest),
            into: None,
            as_of_seq: None,
            seconds: started.elapsed().as_secs_f64(),
            rebuild_seconds: Some(rebuild_seconds),
            transactions: head,
        }
    } else {
        let live = store.digest()?;
        let digest = store.replay_digest(|s| bar.set_position(s))?;
        ReplayView {
            mode: "replay-in-memory",
            digest: digest.to_hex(),
            live_digest: Some(live.to_hex()),
            equal: Some(live == digest),
            into: None,
            as_of_seq: None,
            seconds: started.elapsed().as_secs_f64(),
            rebuild_seconds: None,
            transactions: head,
        }
    };
    bar.finish_and_clear();
    store.close()?;
    let ok = view.equal != Some(false);
    if config.json {
        print_json(&view)?;
    } else {
        match view.mode {
            "materialise" => println!(
                "materialised seq 1..={} into {} in {:.2}s\ndigest {}",
                view.as_of_seq.unwrap_or_default(),
                view.into.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                view.seconds,
                view.digest
            ),
            mode => {
                println!("{mode}: {} transactions in {:.2}s", view.transactions, view.seconds);
                println!("digest      {}", view.digest);
                println!("live digest {}", view.live_digest.as_deref().unwrap_or("-"));
                println!(
                    "{}",
                    if ok {
                        "equal: the projections are exactly what the journal implies"
                    } else {
                        "DIFFERENT: the projections do not match the journal"
                    }
                );
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
