//! Crash test: a real `pole-ods` process loading data is killed with SIGKILL at random
//! moments; after each kill the store must reopen with every acknowledged transaction
//! present and complete, nothing partly present, and the hash chain intact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pole_store::{BackendKind, Store, StoreOptions};
use rand::{Rng, SeedableRng};

const KILLS: u64 = 5;

#[test]
fn acknowledged_transactions_survive_sigkill_on_sled() {
    kill_and_check(BackendKind::Sled, "sled");
}

#[test]
fn acknowledged_transactions_survive_sigkill_on_redb() {
    kill_and_check(BackendKind::Redb, "redb");
}

fn kill_and_check(backend: BackendKind, backend_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    eprintln!("crash test seed {seed} (set CRASH_SEED to repeat)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut acked: Vec<(u64, usize)> = Vec::new();

    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pole-ods"))
            .args(["--data", data.to_str().unwrap(), "--backend", backend_name])
            .args(["demo", "--changes", "2000000", "--print-acks"])
            .args(["--seed", &(seed.wrapping_add(round)).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pole-ods");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                if parts.next() == Some("ack") {
                    let seq: u64 = parts.next().unwrap().parse().unwrap();
                    let changes: usize = parts.next().unwrap().parse().unwrap();
                    let _ = tx.send((seq, changes));
                }
            }
        });
        // Wait for the first acknowledgement so every round kills a process mid-load.
        let first = rx.recv_timeout(Duration::from_secs(60)).expect("the loader acknowledged nothing within 60 s");
        acked.push(first);
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..800)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());

        let report = pole_store::verify(&data, |_| {}).unwrap();
        assert!(report.ok, "round {round}: verify failed after SIGKILL: {report:?}");

        let store = Store::open(&data, StoreOptions { backend, ..Default::default() }).unwrap();
        let head = store.head().seq;
        let last_acked = acked.iter().map(|(seq, _)| *seq).max().unwrap();
        assert!(head >= last_acked, "round {round}: acknowledged seq {last_acked} lost, journal ends at {head}");
        // A transaction whose changes were all no-ops takes no sequence: its answer names
        // the head it was judged against, another transaction, and says 0 changes.
        for &(seq, changes) in acked.iter().filter(|(_, changes)| *changes > 0) {
            let meta =
                store.transaction_meta(seq).unwrap().unwrap_or_else(|| panic!("acknowledged seq {seq} is missing"));
            assert_eq!(meta.changes, changes, "round {round}: seq {seq} is not complete");
        }
        // Nothing partly present: the projections are exactly what the journal implies, and
        // the journal holds whole transactions only (verify checked every frame).
        let stats = store.stats().unwrap();
        assert_eq!(stats.transactions, head, "round {round}: a transaction is missing from the projections");
        assert_eq!(
            store.digest().unwrap(),
            store.replay_digest(|_| {}).unwrap(),
            "round {round}: projections differ from the journal"
        );
        store.close().unwrap();
        drop(store);
        eprintln!("{backend_name} round {round}: killed after seq {last_acked} acknowledged, journal head {head}");
    }
}
