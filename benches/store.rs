#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Benchmarks of the store API against the performance contract of DESIGN.md. Results and
//! the machine they ran on are in BENCHMARKS.md.
//!
//! Run with `cargo bench --bench store` (all groups, a few minutes on two cores) or
//! `cargo bench --bench store -- GROUP` for one group. Every store lives in a fresh temporary
//! directory on the same disk as `/tmp`; nothing here asserts on time.
//!
//! Groups (run in this order):
//! - `as_of_read`: a person with 100 versions read as of random sequences in its history,
//!   now, and its whole history. A latency distribution of single as-of reads (p50, p99)
//!   is printed after the group, since criterion reports means of many reads.
//! - `rebuild`: `Store::rebuild` of 20,000 demo changes, and the parts it is made of
//!   (journal read, decode, replay into memory, digest) plus the journal encode.
//! - `durable_ingest`: commits into a sled store, each acknowledged only after its journal
//!   frame is `fdatasync`ed. `demo` is the demo generator's mix committed one transaction
//!   at a time (time inside `commit` only); `demo_pipelined` the same loaded as
//!   `pole-ods demo` does, 32 in flight (wall time); `sequential/N` one thread committing
//!   transactions of N independent person creates; `threads8/N` eight threads doing so at
//!   once (group commit shares one sync); `peer_*` measure the disk's sync and the memory
//!   backend in the same run, for comparison.
//!
//! Figures are in changes per second (`Throughput::Elements`), reads in reads per second.

use std::cell::OnceCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, Bencher, BenchmarkGroup, BenchmarkId, Criterion,
    SamplingMode, Throughput,
};
use pole_model::{nhs_check_digit, EntityId, Source, Transaction};
use pole_ods::demo::{DemoConfig, DemoGenerator};
use pole_store::journal::{JournalReader, JournalWriter};
use pole_store::{
    decode_transaction, encode_transaction, BackendKind, ChangeRequest, ReadAt, Store, StoreOptions, Target,
    TransactionRequest,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// The product's allocator (`src/main.rs`), so the store is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Changes of demo data committed per `durable_ingest/demo` iteration.
const DEMO_INGEST_CHANGES: u64 = 20_000;
/// Changes of demo data the rebuild group's store holds.
const REBUILD_CHANGES: u64 = 20_000;
const DEMO_SEED: u64 = 42;
/// Independent person creates per transaction.
const BATCH_SIZES: [usize; 3] = [1, 100, 1_000];
const THREADS: usize = 8;
const VERSIONS: usize = 100;
const COUNCIL: &str = "305";

fn open(kind: BackendKind) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions { backend: kind, ..StoreOptions::default() }).unwrap();
    (dir, store)
}

/// Numbers person creates across the whole run, so refs, NHS numbers and client ids differ.
static PERSON_NO: AtomicU64 = AtomicU64::new(0);

const FAMILY: [&str; 8] = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"];
const GIVEN: [&str; 8] = ["Olivia", "Amelia", "George", "Harry", "Margaret", "Arthur", "Doris", "Kwame"];

/// A valid NHS number in the never-issued 999 range, distinct for each `n` below 10^7.
fn nhs_number(mut n: u64) -> String {
    loop {
        let text = format!("99{:07}", n % 10_000_000);
        let mut nine = [0u8; 9];
        for (d, b) in nine.iter_mut().zip(text.bytes()) {
            *d = b - b'0';
        }
        if let Some(check) = nhs_check_digit(&nine) {
            return format!("{text}{check}");
        }
        // About a tenth of numbers have no check digit; take the next one (the caller's
        // numbering leaves room: see `person`).
        n += 1;
    }
}

/// A new client as a council submits one: names, birth date and NHS number (identifiable,
/// so sealed and blind-indexed), gender (a code) and the council's client id.
fn person() -> ChangeRequest {
    let i = PERSON_NO.fetch_add(1, Ordering::Relaxed);
    let i_us = i as usize;
    ChangeRequest::create(format!("p{i}"), "person")
        .with("family_name", FAMILY[i_us % FAMILY.len()])
        .with("given_name", GIVEN[(i_us / FAMILY.len()) % GIVEN.len()])
        .with("birth_date", format!("19{:02}-{:02}-{:02}", 30 + i % 70, 1 + i % 12, 1 + i % 28))
        .with("gender", if i.is_multiple_of(2) { "1" } else { "2" })
        .with_identifier("nhs-number", nhs_number(i * 2))
        .with_identifier(format!("council:{COUNCIL}:client"), format!("CL{i:08}"))
}

fn request(changes: Vec<ChangeRequest>) -> TransactionRequest {
    TransactionRequest {
        actor: "bench".into(),
        role: "council".into(),
        source: Source {
            council: Some(COUNCIL.into()),
            system: Some("bench".into()),
            batch: None,
            file: Some("new_clients.csv".into()),
        },
        idempotency_key: None,
        reason: None,
        changes,
    }
}

fn creates(n: usize) -> TransactionRequest {
    request((0..n).map(|_| person()).collect())
}

fn commit_ok(store: &Store, request: TransactionRequest) -> pole_store::Committed {
    store.commit(request).unwrap().unwrap()
}

/// Loads demo data, answering the generator after every commit. Returns the changes
/// committed and the time spent inside `Store::commit` (generation excluded).
fn load_demo(store: &Store, changes: u64) -> (u64, Duration) {
    let mut generator = DemoGenerator::new(DemoConfig { changes, seed: DEMO_SEED });
    let (mut committed, mut in_commit) = (0u64, Duration::ZERO);
    while let Some(request) = generator.next_transaction() {
        let started = Instant::now();
        let outcome = store.commit(request).unwrap();
        in_commit += started.elapsed();
        match outcome {
            Ok(c) => {
                committed += c.changes as u64;
                generator.committed(&c.refs);
            }
            Err(rejection) => generator.rejected(&rejection),
        }
    }
    (committed, in_commit)
}

/// Transactions the pipelined demo load keeps in flight, as `pole-ods demo` does.
const DEMO_WINDOW: usize = 32;

/// Loads demo data as `pole-ods demo` does: up to DEMO_WINDOW submitted transactions in
/// flight, answered to the generator in order. Returns the changes committed and the wall
/// time of the whole load (generation overlaps the commits, so it cannot be taken out).
fn load_demo_pipelined(store: &Store, changes: u64) -> (u64, Duration) {
    let mut generator = DemoGenerator::new(DemoConfig { changes, seed: DEMO_SEED });
    let mut in_flight = VecDeque::with_capacity(DEMO_WINDOW);
    let mut committed = 0u64;
    let started = Instant::now();
    loop {
        while in_flight.len() < DEMO_WINDOW {
            let Some(request) = generator.next_transaction() else { break };
            in_flight.push_back(store.submit(request).unwrap());
        }
        let Some(pending) = in_flight.pop_front() else { break };
        match pending.wait_durable().unwrap() {
            Ok(c) => {
                committed += c.changes as u64;
                generator.committed(&c.refs);
            }
            Err(rejection) => generator.rejected(&rejection),
        }
    }
    store.wait_readable().unwrap();
    (committed, started.elapsed())
}

/// Sampling for one benchmark: slow iterations are sampled flat (one sample, one or a few
/// iterations) so that the whole suite stays within a few minutes.
fn sampling(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, seconds: u64, flat: bool) {
    group.sampling_mode(if flat { SamplingMode::Flat } else { SamplingMode::Auto });
    group.sample_size(samples);
    group.warm_up_time(Duration::from_secs(if flat { 1 } else { 2 }));
    group.measurement_time(Duration::from_secs(seconds));
}

/// Times `iters` runs of `f` and scales the time by `scale` (see the demo benchmarks).
fn scaled(b: &mut Bencher<'_, WallTime>, scale: f64, mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let started = Instant::now();
        for _ in 0..iters {
            f();
        }
        started.elapsed().mul_f64(scale)
    });
}

fn durable_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_ingest");

    // The demo mix. Its requests name entities by the ids the store assigned, so they are
    // generated while committing into a fresh store; only the time inside `commit` counts.
    // The generator overshoots or falls short of the changes asked for by a little (and
    // some requests are refused), so each iteration's time is scaled to exactly
    // DEMO_INGEST_CHANGES committed changes at the rate measured.
    sampling(&mut group, 10, 25, true);
    group.throughput(Throughput::Elements(DEMO_INGEST_CHANGES));
    group.bench_function("demo", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, store) = open(BackendKind::Sled);
                let (loaded, in_commit) = load_demo(&store, DEMO_INGEST_CHANGES);
                total += in_commit.mul_f64(DEMO_INGEST_CHANGES as f64 / loaded.max(1) as f64);
                store.close().unwrap();
            }
            total
        });
    });

    // The same data loaded as `pole-ods demo` loads it, 32 transactions in flight.
    group.bench_function("demo_pipelined", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, store) = open(BackendKind::Sled);
                let (loaded, wall) = load_demo_pipelined(&store, DEMO_INGEST_CHANGES);
                total += wall.mul_f64(DEMO_INGEST_CHANGES as f64 / loaded.max(1) as f64);
                store.close().unwrap();
            }
            total
        });
    });

    // The floor under one commit: a journal append of one small frame and its fdatasync.
    {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = JournalWriter::open(dir.path()).unwrap();
        let payload = vec![b'x'; 512];
        sampling(&mut group, 30, 3, false);
        group.throughput(Throughput::Elements(1));
        group.bench_function("peer_journal_append_fdatasync", |b| {
            b.iter(|| journal.append(&[payload.as_slice()]).unwrap());
        });
    }

    // One thread, one transaction of N independent person creates per iteration, into a
    // store that grows as the benchmark runs.
    for &n in &BATCH_SIZES {
        let (_dir, store) = open(BackendKind::Sled);
        match n {
            1 | 100 => sampling(&mut group, 30, 4, false),
            _ => sampling(&mut group, 20, 4, true),
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("sequential", n), &n, |b, &n| {
            b.iter_batched(|| creates(n), |req| commit_ok(&store, req), BatchSize::PerIteration);
        });
        store.close().unwrap();
    }

    // The same over the memory backend (the journal is still synced): the difference to
    // `sequential/1000` is what sled costs on the write path.
    {
        let (_dir, store) = open(BackendKind::Memory);
        let n = 1_000;
        sampling(&mut group, 20, 3, true);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("peer_memory_backend_sequential", n), &n, |b, &n| {
            b.iter_batched(|| creates(n), |req| commit_ok(&store, req), BatchSize::PerIteration);
        });
        store.close().unwrap();
    }

    // Eight threads at once, each committing `per_thread` transactions of N creates: the
    // writer takes whatever is queued as one group with one fdatasync.
    for &n in &BATCH_SIZES {
        let per_thread = match n {
            1 => 50,
            100 => 5,
            _ => 1,
        };
        let (_dir, store) = open(BackendKind::Sled);
        sampling(&mut group, 10, if n == 1 { 3 } else { 10 }, true);
        group.throughput(Throughput::Elements((THREADS * per_thread * n) as u64));
        group.bench_with_input(BenchmarkId::new("threads8", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let work: Vec<Vec<TransactionRequest>> =
                        (0..THREADS).map(|_| (0..per_thread).map(|_| creates(n)).collect()).collect();
                    let barrier = Barrier::new(THREADS + 1);
                    total += std::thread::scope(|s| {
                        let handles: Vec<_> = work
                            .into_iter()
                            .map(|requests| {
                                let (store, barrier) = (&store, &barrier);
                                s.spawn(move || {
                                    barrier.wait();
                                    for req in requests {
                                        commit_ok(store, req);
                                    }
                                })
                            })
                            .collect();
                        barrier.wait();
                        let started = Instant::now();
                        for handle in handles {
                            handle.join().unwrap();
                        }
                        started.elapsed()
                    });
                }
                total
            });
        });
        store.close().unwrap();
    }
    group.finish();
}

/// A person with `VERSIONS` versions (a create, then updates of names and gender), among
/// 1,100 other people. Returns the store, the id and the sequences of its versions.
fn versioned_person() -> (TempDir, Store, EntityId, Vec<u64>) {
    let (dir, store) = open(BackendKind::Sled);
    commit_ok(&store, creates(1_000));
    let created = commit_ok(&store, creates(1));
    let id = created.refs.values().next().unwrap().clone();
    for v in 1..VERSIONS {
        let update = ChangeRequest::update(Target::Entity(id.clone()))
            .with("given_name", format!("{}{v}", GIVEN[v % GIVEN.len()]))
            .with("family_name", FAMILY[v % FAMILY.len()])
            .with("gender", if v.is_multiple_of(2) { "1" } else { "2" });
        // Another person's create in between, so the entity's history is not contiguous.
        commit_ok(&store, request(vec![update, person()]));
    }
    let seqs: Vec<u64> = store.history(&id).unwrap().iter().map(|v| v.seq).collect();
    assert_eq!(seqs.len(), VERSIONS);
    (dir, store, id, seqs)
}

fn as_of_read(c: &mut Criterion) {
    let (_dir, store, id, seqs) = versioned_person();
    let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let points: Vec<u64> = (0..4_096).map(|_| rng.gen_range(first..=last)).collect();

    let mut group = c.benchmark_group("as_of_read");
    sampling(&mut group, 50, 4, false);
    group.throughput(Throughput::Elements(1));
    // Each read is timed on its own (Instant costs tens of nanoseconds against reads of
    // hundreds of microseconds) so that the distribution of single reads can be printed:
    // the contract is a p99, and criterion reports means.
    let mut latencies: Vec<Duration> = Vec::new();
    group.bench_function("as_of_random_seq_100_versions", |b| {
        let mut i = 0;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let at = points[i % points.len()];
                i += 1;
                let started = Instant::now();
                black_box(store.entity(&id, ReadAt::as_of_seq(at)).unwrap().unwrap());
                let took = started.elapsed();
                latencies.push(took);
                total += took;
            }
            total
        });
    });
    group.bench_function("now_100_versions", |b| {
        b.iter(|| store.entity(black_box(&id), ReadAt::NOW).unwrap().unwrap());
    });
    group.bench_function("history_100_versions", |b| {
        b.iter(|| store.history(black_box(&id)).unwrap());
    });
    group.finish();
    if !latencies.is_empty() {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "as_of_read/as_of_random_seq_100_versions single reads (warm-up included): n={} p50={:?} p90={:?} \
             p99={:?} p99.9={:?} max={:?}",
            latencies.len(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(0.999),
            latencies[latencies.len() - 1]
        );
    }
}

/// The rebuild group's data: a sled store holding REBUILD_CHANGES of demo data, its
/// journal's frames and their decoded transactions.
struct RebuildData {
    _dir: TempDir,
    store: Store,
    journal_dir: PathBuf,
    frames: Vec<(u64, Vec<u8>)>,
    transactions: Vec<Transaction>,
    /// Scales a run over the data set to exactly REBUILD_CHANGES changes.
    scale: f64,
}

fn rebuild_data() -> RebuildData {
    let (dir, store) = open(BackendKind::Sled);
    let (changes, _) = load_demo(&store, REBUILD_CHANGES);
    let stats = store.stats().unwrap();
    assert_eq!(stats.changes, changes);
    let journal_dir = dir.path().join("journal");
    let mut frames = Vec::new();
    let mut reader = JournalReader::open(&journal_dir).unwrap();
    while let Some(frame) = reader.next_frame().unwrap() {
        frames.push((frame.seq, frame.payload));
    }
    let transactions: Vec<Transaction> = frames.iter().map(|(seq, p)| decode_transaction(p, *seq).unwrap()).collect();
    let bytes: usize = frames.iter().map(|(_, p)| p.len()).sum();
    println!(
        "rebuild data set: {} transactions, {} changes, {} entities, {} journal payload bytes ({} per change)",
        stats.transactions,
        stats.changes,
        stats.entities,
        bytes,
        bytes as u64 / changes.max(1)
    );
    RebuildData {
        _dir: dir,
        store,
        journal_dir,
        frames,
        transactions,
        scale: REBUILD_CHANGES as f64 / changes.max(1) as f64,
    }
}

fn rebuild(c: &mut Criterion) {
    // Built on first use, so that running another group alone does not load it.
    let cell: OnceCell<RebuildData> = OnceCell::new();
    let data = || cell.get_or_init(rebuild_data);

    let mut group = c.benchmark_group("rebuild");
    // Times are scaled to exactly REBUILD_CHANGES changes, like the demo ingest.
    group.throughput(Throughput::Elements(REBUILD_CHANGES));
    sampling(&mut group, 10, 15, true);
    group.bench_function("sled", |b| {
        let d = data();
        scaled(b, d.scale, || {
            black_box(d.store.rebuild(|_| {}).unwrap());
        });
    });

    // What it is made of: replay without sled (read, decode, apply into memory, digest),
    // the digest over sled, the journal read alone and the decode alone; and the encode the
    // write path does once per transaction.
    sampling(&mut group, 10, 6, true);
    group.bench_function("peer_replay_into_memory", |b| {
        let d = data();
        scaled(b, d.scale, || {
            black_box(d.store.replay_digest(|_| {}).unwrap());
        });
    });
    sampling(&mut group, 20, 3, false);
    group.bench_function("digest_sled", |b| {
        let d = data();
        scaled(b, d.scale, || {
            black_box(d.store.digest().unwrap());
        });
    });
    group.bench_function("journal_read_frames", |b| {
        let d = data();
        scaled(b, d.scale, || {
            let mut reader = JournalReader::open(&d.journal_dir).unwrap();
            while let Some(frame) = reader.next_frame().unwrap() {
                black_box(frame);
            }
        });
    });
    group.bench_function("journal_decode", |b| {
        let d = data();
        scaled(b, d.scale, || {
            for (seq, payload) in &d.frames {
                black_box(decode_transaction(payload, *seq).unwrap());
            }
        });
    });
    group.bench_function("journal_encode", |b| {
        let d = data();
        scaled(b, d.scale, || {
            for tx in &d.transactions {
                black_box(encode_transaction(tx).unwrap());
            }
        });
    });
    group.finish();
    if let Some(d) = cell.get() {
        d.store.close().unwrap();
    }
}

// Reads first: the ingest group leaves the disk busy (deleted stores being discarded, sled
// threads winding down), which showed in the read latency tail when reads ran after it.
criterion_group!(benches, as_of_read, rebuild, durable_ingest);
criterion_main!(benches);
