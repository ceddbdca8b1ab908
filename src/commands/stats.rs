//! `pole-ods stats`: counts and the state digest.

use std::process::ExitCode;

use serde::Serialize;

use crate::config::Config;
use crate::output::print_json;

#[derive(Debug, Serialize)]
struct StatsView {
    transactions: u64,
    changes: u64,
    entities: u64,
    digest: String,
    head_seq: u64,
    head_hash: String,
}

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let store = super::open_existing(config)?;
    let stats = store.stats()?;
    let view = StatsView {
        transactions: stats.transactions,
        changes: stats.changes,
        entities: stats.entities,
        digest: store.digest()?.to_hex(),
        head_seq: stats.head_seq,
        head_hash: stats.head_hash.to_hex(),
    };
    if config.json {
        print_json(&view)?;
    } else {
        println!("transactions  {}", view.transactions);
        println!("changes       {}", view.changes);
        println!("entities      {}", view.entities);
        println!("head          seq {} hash {}", view.head_seq, view.head_hash);
        println!("digest        {}", view.digest);
    }
    store.close()?;
    Ok(ExitCode::SUCCESS)
}
