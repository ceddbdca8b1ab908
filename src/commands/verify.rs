//! `pole-ods verify`: walks the journal's hash chain read-only (and the access log's, once
//! there is one) and names the first bad transaction.

use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use crate::config::Config;
use crate::output::{print_json, progress};

#[derive(Debug, Serialize)]
struct VerifyView {
    ok: bool,
    journal: pole_store::VerifyReport,
    /// The access log arrives with access control; until then there is nothing to verify.
    access_log: &'static str,
}

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    if !config.data.join("FORMAT").exists() {
        bail!("{} is not a pole-ods data directory (no FORMAT file)", config.data.display());
    }
    let bar = progress(0, "verifying", config.json);
    let report = pole_store::verify(&config.data, |seq| bar.set_position(seq))?;
    bar.finish_and_clear();
    let view = VerifyView { ok: report.ok, journal: report, access_log: "none recorded yet" };
    if config.json {
        print_json(&view)?;
    } else if view.ok {
        println!("journal: ok, {} transactions, head hash {}", view.journal.transactions, view.journal.head_hash);
        println!("access log: {}", view.access_log);
    } else {
        println!(
            "journal: FAILED at transaction seq {}: {}",
            view.journal.first_bad_seq.unwrap_or_default(),
            view.journal.problem.as_deref().unwrap_or("unknown problem")
        );
        println!(
            "  {} transactions before it verified; last good hash {}",
            view.journal.transactions, view.journal.head_hash
        );
    }
    Ok(if view.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
