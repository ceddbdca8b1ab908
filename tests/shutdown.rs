//! The server's edges in time: a stop (SIGTERM) lets in-flight transactions finish and
//! loses none that was answered; a client that never finishes its request is cut off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

fn start(dir: &std::path::Path) -> (common::Serving, String) {
    let mut serving = common::serve(&dir.join("store"), &dir.join("stderr.log"), &[]);
    let mut base = String::new();
    serving.wait_for(|line| match line.strip_prefix("listening on ") {
        Some(addr) => {
            base = addr.trim().to_owned();
            true
        }
        None => false,
    });
    (serving, base)
}

#[test]
fn a_stop_finishes_in_flight_transactions_and_loses_no_answered_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut serving, base) = start(dir.path());
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (base, answered, stop) = (base.clone(), answered.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = common::admin_client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"changes": [{"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                        "set": {"family_name": format!("Writer {w} {n}")}}}]});
                    match client.post(format!("{base}/v1/transactions")).json(&body).send() {
                        Ok(response) if response.status().as_u16() == 201 => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        // Refused connections after the stop: never committed, never answered.
                        Ok(response) => panic!("unexpected answer {}", response.status()),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "writers made no progress\n{}", serving.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    serving.terminate();
    let status = serving.wait_exit(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(status.success(), "the server did not stop cleanly: {status:?}\n{}", serving.stderr());
    let stats = common::json_ok(&common::pole(&dir.path().join("store"), &["--json", "stats"]));
    assert_eq!(
        stats["transactions"].as_u64().unwrap(),
        answered.load(Ordering::SeqCst),
        "every answered transaction is in the store, and no unanswered one"
    );
    let verify = common::json_ok(&common::pole(&dir.path().join("store"), &["--json", "verify"]));
    assert_eq!(verify["ok"], true, "{verify}");
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_serving, base) = start(dir.path());
    let addr = base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    socket.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(20), "the server waited {waited:?} for the rest of the head");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}
