//! What the end-to-end tests share: running the real `pole-ods` binary on a data directory
//! and reading its JSON output.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `pole-ods --data DATA ARGS...` to completion.
pub fn pole(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pole-ods")).arg("--data").arg(data).args(args).output().expect("run pole-ods")
}

/// The JSON document a `--json` command printed, whatever its exit status.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The JSON document of a command that must have succeeded.
pub fn json_ok(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json(output)
}
