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

/// The HS256 secret every test server is started with, so tests can mint their tokens.
pub const TEST_SECRET: &str = "a test secret of at least thirty-two bytes";

/// A token for `role` (with a council for council tokens, an agreement for consumers),
/// signed with [`TEST_SECRET`].
pub fn token(role: &str, council: Option<&str>, agreement: Option<&str>) -> String {
    expiring_token(role, council, agreement, 3600).0
}

/// [`token`] valid for `ttl_secs` from now, with its `exp` (seconds since the epoch).
pub fn expiring_token(role: &str, council: Option<&str>, agreement: Option<&str>, ttl_secs: i64) -> (String, i64) {
    let principal = pole_auth::Principal {
        subject: format!("test-{role}"),
        role: role.parse().unwrap(),
        council: council.map(str::to_owned),
        agreement: agreement.map(str::to_owned),
        purpose: agreement.map(|_| "research".to_owned()),
        exp: None,
    };
    let now = chrono::Utc::now().timestamp();
    let token = pole_auth::TokenIssuer::new(pole_auth::TokenSettings::default(), TEST_SECRET.as_bytes())
        .mint(&principal, now, ttl_secs)
        .unwrap();
    (token, now + ttl_secs)
}

/// A blocking HTTP client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A blocking HTTP client acting as an administrator.
pub fn admin_client() -> reqwest::blocking::Client {
    client_with(&token("admin", None, None))
}

/// A running `pole-ods serve`: stdout read line by line on a thread (so the server never
/// blocks on a full pipe), stderr to a log file; killed on drop.
pub struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: std::path::PathBuf,
}

/// How long a server may take to print its addresses.
pub const START_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts `pole-ods --data DATA --cache-mb 16 serve --bind 127.0.0.1:0 EXTRA...`.
pub fn serve(data: &Path, log: &Path, extra: &[&str]) -> Serving {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let stderr = std::fs::File::create(log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pole-ods"))
        .arg("--data")
        .arg(data)
        .args(["--cache-mb", "16", "serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .env_remove("POLE_CONFIG")
        .env_remove("POLE_BIND")
        .env_remove("POLE_SCHEMA_PACK")
        .env("POLE_TOKEN_SECRET", TEST_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start pole-ods serve");
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    Serving { child, lines, log: log.to_path_buf() }
}

impl Serving {
    /// Hands each stdout line to `seen` until it answers true; panics with the server's
    /// stderr if that takes longer than [`START_DEADLINE`] or the server exits first.
    pub fn wait_for(&mut self, mut seen: impl FnMut(&str) -> bool) {
        use std::sync::mpsc::RecvTimeoutError;
        let deadline = std::time::Instant::now() + START_DEADLINE;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(line) => {
                    if seen(&line) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the server printed no address within {START_DEADLINE:?}\n{}", self.stderr())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!("the server exited ({status:?}) before printing its address\n{}", self.stderr())
                }
            }
        }
    }

    /// Asks the server to stop, as a service manager does (SIGTERM).
    pub fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success());
    }

    /// Waits for the server to exit; panics after `limit`.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {limit:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The listed row `row` of a submission report (a report lists the rows with findings).
pub fn report_row(report: &Value, row: u64) -> &Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["row"] == row))
        .unwrap_or_else(|| panic!("row {row} is not listed: {report}"))
}
