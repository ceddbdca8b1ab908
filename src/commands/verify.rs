//! `pole-ods verify`: walks the journal's hash chain and the access log's, read-only, and
//! names the first bad record of each.

use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use crate::config::Config;
use crate::output::{print_json, progress};

#[derive(Debug, Serialize)]
struct VerifyView {
    ok: bool,
    journal: pole_store::VerifyReport,
    access_log: pole_store::AccessLogReport,
}

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    if !config.data.join("FORMAT").exists() {
        bail!("{} is not a pole-ods data directory (no FORMAT file)", config.data.display());
    }
    let bar = progress(0, "verifying", config.json);
    let journal = pole_store::verify(&config.data, |seq| bar.set_position(seq))?;
    bar.finish_and_clear();
    let access_log = pole_store::verify_access_log(&config.data.join("audit"))?;
    let view = VerifyView { ok: journal.ok && access_log.ok, journal, access_log };
    if config.json {
        print_json(&view)?;
        return Ok(if view.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let journal = &view.journal;
    if journal.ok {
        println!("journal: ok, {} transactions, head hash {}", journal.transactions, journal.head_hash);
    } else {
        println!(
            "journal: FAILED at transaction seq {}: {}",
            journal.first_bad_seq.unwrap_or_default(),
            journal.problem.as_deref().unwrap_or("unknown problem")
        );
        println!("  {} transactions before it verified; last good hash {}", journal.transactions, journal.head_hash);
    }
    let log = &view.access_log;
    if log.ok {
        println!("access log: ok, {} records, head hash {}", log.records, log.head_hash);
    } else {
        println!(
            "access log: FAILED at record {}: {}",
            log.first_bad_seq.unwrap_or_default(),
            log.problem.as_deref().unwrap_or("unknown problem")
        );
        println!("  {} records before it verified; last good hash {}", log.records, log.head_hash);
    }
    Ok(if view.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
