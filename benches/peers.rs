#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Our side of the peers-and-limits benchmark (`scripts/bench`, BENCHMARKS.md "Peers and
//! limits"). Not a criterion benchmark: a small command-line harness that `scripts/bench`
//! runs once per measurement, each in its own process so that peak resident memory is that
//! measurement's alone. Every subcommand prints one JSON document on stdout.
//!
//! - `export --changes N --seed S --out FILE`: runs the demo generator (the same data as
//!   `pole-ods demo --changes N --seed S`) against an in-memory store and writes every
//!   change the store committed as one JSON line: `n` (0-based position in the stream),
//!   `tx` (the transaction's seq), `stream` (the entity's id), `version` (1 for its first
//!   change), `actor`, `role`, `source` and `change`, a `ChangeRequest` with every target
//!   an existing id, except a create whose target is `{"ref": "<its id>"}`. Updates that
//!   changed nothing are left out, so the file holds exactly the journal's changes. Every
//!   peer (`bench/peers/peers.py`, `bench/limits`) loads this one file.
//! - `ingest --changes FILE --backend sled|redb --batch N [--limit M] --dir DIR`: commits
//!   the file's changes through `Store::commit`, N consecutive changes per transaction, one
//!   transaction at a time (each acknowledged after its `fdatasync`), then reports the disk
//!   footprint against the journal's raw JSON, and the latency of `entity_at_version` reads.
//! - `rebuild --backend sled|redb --dir DIR`: `Store::rebuild` of a store `ingest` left.
//! - `as-of --backend sled|redb --dir DIR [--versions V] [--reads R]`: in the store `ingest`
//!   left, so that the indexes hold the data size being measured, adds a person with V
//!   versions (default 100; each update committed beside another person's create, so its
//!   history is not contiguous) and times R single reads of it as of a random sequence in
//!   its history (DESIGN.md's as-of target is about such an entity), R reads of it now, and
//!   R reads now of entities spread over the whole store.
//!
//! Run through cargo: `cargo bench --bench peers -- SUBCOMMAND ...` (cargo appends
//! `--bench`, which is ignored).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use pole_model::{EntityId, Source};
use pole_ods::demo::{DemoConfig, DemoGenerator};
use pole_store::{
    encode_transaction, BackendKind, ChangeRequest, OpRequest, ReadAt, Store, StoreOptions, Target, TransactionRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The product's allocator (`src/main.rs`), so the store is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transactions kept in flight while exporting, as `pole-ods demo` does.
const WINDOW: usize = 32;

/// One line of the change stream.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    n: u64,
    tx: u64,
    stream: String,
    version: u64,
    actor: String,
    role: String,
    source: Source,
    change: ChangeRequest,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: peers export|ingest|rebuild|as-of [--flag value]... (see the module documentation)");
    };
    let flags = Flags::parse(rest)?;
    let out = match command.as_str() {
        "export" => export(&flags)?,
        "ingest" => ingest(&flags)?,
        "rebuild" => rebuild(&flags)?,
        "as-of" => as_of(&flags)?,
        other => bail!("unknown subcommand {other:?}"),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `--name value` pairs.
#[derive(Debug)]
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> anyhow::Result<Flags> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let Some(key) = name.strip_prefix("--") else { bail!("expected --flag, got {name:?}") };
            let value = it.next().with_context(|| format!("{name} needs a value"))?;
            map.insert(key.to_owned(), value.clone());
        }
        Ok(Flags(map))
    }

    fn str(&self, name: &str) -> anyhow::Result<&str> {
        self.0.get(name).map(String::as_str).with_context(|| format!("--{name} is required"))
    }

    fn num(&self, name: &str, default: Option<u64>) -> anyhow::Result<u64> {
        match (self.0.get(name), default) {
            (Some(v), _) => v.parse().with_context(|| format!("--{name} {v:?} is not a number")),
            (None, Some(d)) => Ok(d),
            (None, None) => bail!("--{name} is required"),
        }
    }

    fn backend(&self) -> anyhow::Result<BackendKind> {
        self.str("backend")?.parse().map_err(|e: String| anyhow::anyhow!(e))
    }
}

/// Peak resident memory of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn resolve(target: &Target, refs: &std::collections::BTreeMap<String, EntityId>) -> anyhow::Result<EntityId> {
    match target {
        Target::Entity(id) => Ok(id.clone()),
        Target::Ref(r) => refs.get(r).cloned().with_context(|| format!("ref {r:?} has no id")),
    }
}

/// The request's changes with every target an existing id (a create's own target becomes
/// `Ref(<its id>)`), each with the entity it changes.
fn resolved_changes(
    request: &TransactionRequest,
    refs: &std::collections::BTreeMap<String, EntityId>,
) -> anyhow::Result<Vec<(EntityId, ChangeRequest)>> {
    let mut out = Vec::with_capacity(request.changes.len());
    for change in &request.changes {
        let entity = resolve(&change.target, refs)?;
        let mut change = change.clone();
        change.target = match change.op {
            OpRequest::Create { .. } => Target::Ref(entity.to_string()),
            _ => Target::Entity(entity.clone()),
        };
        match &mut change.op {
            OpRequest::Link { to, .. } | OpRequest::Unlink { to, .. } | OpRequest::Merge { into: to } => {
                *to = Target::Entity(resolve(to, refs)?);
            }
            _ => {}
        }
        out.push((entity, change));
    }
    Ok(out)
}

fn export(flags: &Flags) -> anyhow::Result<Value> {
    let changes = flags.num("changes", None)?;
    let seed = flags.num("seed", Some(42))?;
    let out_path = PathBuf::from(flags.str("out")?);
    let dir = tempfile::tempdir_in(flags.0.get("tmp").map(String::as_str).unwrap_or("/tmp"))?;
    let store = Store::open(dir.path(), StoreOptions { backend: BackendKind::Memory, ..StoreOptions::default() })?;
    let mut out = BufWriter::new(std::fs::File::create(&out_path)?);
    let mut generator = DemoGenerator::new(DemoConfig { changes, seed });
    let mut versions: HashMap<EntityId, u64> = HashMap::new();
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let (mut n, mut transactions, mut rejected, mut no_ops, mut bytes) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    loop {
        while in_flight.len() < WINDOW {
            let Some(request) = generator.next_transaction() else { break };
            let pending = store.submit(request.clone())?;
            in_flight.push_back((request, pending));
        }
        let Some((request, pending)) = in_flight.pop_front() else { break };
        match pending.wait()? {
            Ok(committed) => {
                generator.committed(&committed.refs);
                if committed.changes == 0 || committed.replayed {
                    no_ops += request.changes.len() as u64;
                    continue;
                }
                transactions += 1;
                let tx = store.transactions(committed.seq - 1, 1)?.pop().context("committed transaction missing")?;
                let mut journal = tx.changes.iter().peekable();
                for (entity, change) in resolved_changes(&request, &committed.refs)? {
                    // The journal leaves out updates that changed nothing; keep its changes only.
                    match journal.peek() {
                        Some(c) if c.entity == entity && c.op.name() == change.op.name() => {
                            journal.next();
                        }
                        _ => {
                            no_ops += 1;
                            continue;
                        }
                    }
                    let version = versions.entry(entity.clone()).or_default();
                    *version += 1;
                    let line = Line {
                        n,
                        tx: committed.seq,
                        stream: entity.to_string(),
                        version: *version,
                        actor: request.actor.clone(),
                        role: request.role.clone(),
                        source: request.source.clone(),
                        change,
                    };
                    let text = serde_json::to_string(&line)?;
                    bytes += text.len() as u64 + 1;
                    out.write_all(text.as_bytes())?;
                    out.write_all(b"\n")?;
                    n += 1;
                }
                if journal.next().is_some() {
                    bail!("transaction {} has journal changes its request does not explain", committed.seq);
                }
            }
            Err(rejection) => {
                rejected += 1;
                generator.rejected(&rejection);
            }
        }
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    store.close()?;
    Ok(json!({
        "changes_asked": changes,
        "seed": seed,
        "changes": n,
        "streams": versions.len(),
        "max_version": versions.values().max().copied().unwrap_or(0),
        "transactions": transactions,
        "rejected_transactions": rejected,
        "no_op_changes_left_out": no_ops,
        "file": out_path,
        "file_bytes": bytes,
        "seconds": seconds,
    }))
}

fn read_lines(path: &Path, limit: u64) -> anyhow::Result<Vec<Line>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = Vec::new();
    for text in std::io::BufReader::new(file).lines() {
        if lines.len() as u64 >= limit {
            break;
        }
        lines.push(serde_json::from_str(&text?)?);
    }
    Ok(lines)
}

/// The request for one batch: targets that name an entity created earlier in the same batch
/// become refs, others the id this store gave that entity.
fn batch_request(lines: &[Line], ids: &HashMap<String, EntityId>) -> anyhow::Result<TransactionRequest> {
    let mut created: HashSet<&str> = HashSet::new();
    let map = |target: &Target, created: &HashSet<&str>| -> anyhow::Result<Target> {
        Ok(match target {
            Target::Entity(old) if created.contains(old.as_str()) => Target::Ref(old.to_string()),
            Target::Entity(old) => {
                Target::Entity(ids.get(old.as_str()).cloned().with_context(|| format!("entity {old} not created yet"))?)
            }
            Target::Ref(r) => Target::Ref(r.clone()),
        })
    };
    let mut changes = Vec::with_capacity(lines.len());
    for line in lines {
        let mut change = line.change.clone();
        change.expected_version = None;
        if let OpRequest::Create { .. } = change.op {
            created.insert(line.stream.as_str());
        } else {
            change.target = map(&change.target, &created)?;
        }
        match &mut change.op {
            OpRequest::Link { to, .. } | OpRequest::Unlink { to, .. } | OpRequest::Merge { into: to } => {
                *to = map(to, &created)?;
            }
            _ => {}
        }
        changes.push(change);
    }
    let first = &lines[0];
    // A council's transaction changes only its own records, and a batch of N consecutive
    // changes of the stream mixes councils: such a batch is written by a national loader,
    // which may change any record, as the peers' tables take any row. Each change was judged
    // in its own council's scope when the stream was exported; a batch of one contributor
    // keeps it, so the scope check is measured there.
    let mut source = first.source.clone();
    if lines.iter().any(|line| line.source.council != first.source.council) {
        source.council = None;
    }
    Ok(TransactionRequest {
        actor: first.actor.clone(),
        role: first.role.clone(),
        source,
        idempotency_key: None,
        reason: None,
        changes,
    })
}

/// Bytes of every file under `dir` (apparent size, allocated size), by top-level entry.
fn footprint(dir: &Path) -> anyhow::Result<Value> {
    fn walk(path: &Path, apparent: &mut u64, allocated: &mut u64) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                walk(&entry?.path(), apparent, allocated)?;
            }
        } else {
            *apparent += meta.len();
            *allocated += meta.blocks() * 512;
        }
        Ok(())
    }
    let mut parts = serde_json::Map::new();
    let (mut total_apparent, mut total_allocated) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let (mut apparent, mut allocated) = (0, 0);
        walk(&path, &mut apparent, &mut allocated)?;
        total_apparent += apparent;
        total_allocated += allocated;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        parts.insert(name, json!({ "apparent_bytes": apparent, "allocated_bytes": allocated }));
    }
    Ok(json!({ "total_apparent_bytes": total_apparent, "total_allocated_bytes": total_allocated, "parts": parts }))
}

/// The journal's raw JSON: the bytes of every transaction's canonical encoding.
fn journal_json_bytes(store: &Store) -> anyhow::Result<u64> {
    let (mut after, mut bytes) = (0u64, 0u64);
    loop {
        let page = store.transactions(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for tx in &page {
            bytes += encode_transaction(tx)?.len() as u64;
        }
    }
    Ok(bytes)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ingest(flags: &Flags) -> anyhow::Result<Value> {
    let path = PathBuf::from(flags.str("changes")?);
    let backend = flags.backend()?;
    let batch = flags.num("batch", None)? as usize;
    let limit = flags.num("limit", Some(u64::MAX))?;
    let n_reads = flags.num("reads", Some(2000))? as usize;
    let dir = PathBuf::from(flags.str("dir")?);
    if dir.exists() {
        bail!("{} exists: give a new directory", dir.display());
    }
    let lines = read_lines(&path, limit)?;
    // The parsed stream is the harness's, not the store's: its share of the peak.
    let parsed_rss = peak_rss_kib();
    let store = Store::open(&dir, StoreOptions { backend, ..StoreOptions::default() })?;
    let mut ids: HashMap<String, EntityId> = HashMap::new();
    let (mut committed_changes, mut transactions, mut rejected) = (0u64, 0u64, 0u64);
    let mut first_rejection = None;
    let mut commit_latencies = Vec::new();
    let started = Instant::now();
    for chunk in lines.chunks(batch.max(1)) {
        let request = batch_request(chunk, &ids)?;
        let t = Instant::now();
        // Acknowledged once durable, as a commit to the peers is; the next batch is then
        // prepared while this one is applied. Reads wait for it below.
        let outcome = store.submit(request)?.wait_durable()?;
        commit_latencies.push(t.elapsed().as_secs_f64());
        match outcome {
            Ok(committed) => {
                committed_changes += committed.changes as u64;
                transactions += 1;
                for (old, new) in committed.refs {
                    ids.insert(old, new);
                }
            }
            Err(rejection) => {
                rejected += 1;
                if first_rejection.is_none() {
                    first_rejection = Some(rejection.to_string());
                }
            }
        }
    }
    store.wait_readable()?;
    let seconds = started.elapsed().as_secs_f64();
    let ingest_rss = peak_rss_kib();
    commit_latencies.sort_by(f64::total_cmp);

    // Reads of an entity at a version, at the same (stream, version) points every peer reads.
    let n = lines.len();
    let points: Vec<(EntityId, u64)> = (0..n_reads.min(n))
        .filter_map(|k| {
            let line = &lines[k * n / n_reads.min(n)];
            ids.get(&line.stream).map(|id| (id.clone(), line.version))
        })
        .collect();
    let mut missing = 0u64;
    for (id, version) in points.iter().take(200) {
        std::hint::black_box(store.entity_at_version(id, *version)?);
    }
    let mut read_latencies = Vec::with_capacity(points.len());
    for (id, version) in &points {
        let t = Instant::now();
        let state = store.entity_at_version(id, *version)?;
        read_latencies.push(t.elapsed().as_secs_f64());
        if state.is_none() {
            missing += 1;
        }
    }
    read_latencies.sort_by(f64::total_cmp);
    let stats = store.stats()?;
    let journal_json = journal_json_bytes(&store)?;
    store.close()?;
    drop(store);
    Ok(json!({
        "backend": flags.str("backend")?,
        "batch": batch,
        "changes_offered": n,
        "changes": committed_changes,
        "transactions": transactions,
        "rejected_transactions": rejected,
        "first_rejection": first_rejection,
        "seconds": seconds,
        "changes_per_second": committed_changes as f64 / seconds,
        "commit_seconds_p50": percentile(&commit_latencies, 0.5),
        "commit_seconds_p99": percentile(&commit_latencies, 0.99),
        "entities": stats.entities,
        "journal_json_bytes": journal_json,
        "footprint": footprint(&dir)?,
        "reads": read_latencies.len(),
        "reads_missing": missing,
        "read_seconds_p50": percentile(&read_latencies, 0.5),
        "read_seconds_p99": percentile(&read_latencies, 0.99),
        "peak_rss_kib_after_parse": parsed_rss,
        "peak_rss_kib_after_ingest": ingest_rss,
        "peak_rss_kib": peak_rss_kib(),
    }))
}

fn rebuild(flags: &Flags) -> anyhow::Result<Value> {
    let backend = flags.backend()?;
    let dir = PathBuf::from(flags.str("dir")?);
    let store = Store::open(&dir, StoreOptions { backend, ..StoreOptions::default() })?;
    let stats = store.stats()?;
    let before = store.digest()?;
    let started = Instant::now();
    store.rebuild_projections(|_| {})?;
    let seconds = started.elapsed().as_secs_f64();
    // The digest proves the rebuild equal; it is timed apart, as it is a check, not part of
    // rebuilding (before 2026-11-28, `seconds` included it).
    let started = Instant::now();
    let after = store.digest()?;
    let digest_seconds = started.elapsed().as_secs_f64();
    store.close()?;
    drop(store);
    Ok(json!({
        "backend": flags.str("backend")?,
        "changes": stats.changes,
        "transactions": stats.transactions,
        "seconds": seconds,
        "changes_per_second": stats.changes as f64 / seconds,
        "digest_seconds": digest_seconds,
        "digest_equal": before == after,
        "footprint_after_rebuild": footprint(&dir)?,
        "peak_rss_kib": peak_rss_kib(),
    }))
}

/// Latency percentiles of `reads` calls of `read`, after a warm-up of a tenth of them.
fn timed_reads(reads: usize, mut read: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<Value> {
    for i in 0..reads / 10 {
        read(i)?;
    }
    let mut latencies = Vec::with_capacity(reads);
    for i in 0..reads {
        let t = Instant::now();
        read(i)?;
        latencies.push(t.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "reads": reads,
        "seconds_p50": percentile(&latencies, 0.5),
        "seconds_p90": percentile(&latencies, 0.9),
        "seconds_p99": percentile(&latencies, 0.99),
        "seconds_max": latencies.last().copied().unwrap_or(f64::NAN),
    }))
}

fn as_of(flags: &Flags) -> anyhow::Result<Value> {
    let backend = flags.backend()?;
    let dir = PathBuf::from(flags.str("dir")?);
    let versions = flags.num("versions", Some(100))?.max(1) as usize;
    let reads = flags.num("reads", Some(2000))?.max(1) as usize;
    let store = Store::open(&dir, StoreOptions { backend, ..StoreOptions::default() })?;
    let stats = store.stats()?;
    let request = |changes: Vec<ChangeRequest>| TransactionRequest {
        actor: "bench".into(),
        role: "council".into(),
        source: Source { council: Some("305".into()), system: Some("bench".into()), batch: None, file: None },
        idempotency_key: None,
        reason: None,
        changes,
    };
    // No identifiers: the store already holds the demo's, and these people need none.
    let person = |i: usize| {
        ChangeRequest::create(format!("as-of-{i}"), "person")
            .with("family_name", format!("Versioned{i}"))
            .with("given_name", "Ada")
            .with("gender", "1")
    };
    let commit = |changes| -> anyhow::Result<pole_store::Committed> {
        store.commit(request(changes))?.map_err(|r| anyhow::anyhow!("refused: {r}"))
    };
    let created = commit(vec![person(0)])?;
    let id = created.refs.values().next().context("create returned no id")?.clone();
    for v in 1..versions {
        let update = ChangeRequest::update(Target::Entity(id.clone()))
            .with("given_name", format!("Ada{v}"))
            .with("gender", if v % 2 == 0 { "1" } else { "2" });
        commit(vec![update, person(v)])?;
    }
    let seqs: Vec<u64> = store.history(&id)?.iter().map(|v| v.seq).collect();
    if seqs.len() != versions {
        bail!("the versioned person has {} versions, not {versions}", seqs.len());
    }
    let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
    // A fixed sequence of instants, the same at every data size.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let points: Vec<u64> = (0..reads)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            first + state % (last - first + 1)
        })
        .collect();
    let as_of = timed_reads(reads, |i| {
        std::hint::black_box(store.entity(&id, ReadAt::as_of_seq(points[i]))?.context("as-of read found nothing")?);
        Ok(())
    })?;
    let now = timed_reads(reads, |_| {
        std::hint::black_box(store.entity(&id, ReadAt::NOW)?.context("read found nothing")?);
        Ok(())
    })?;
    // Entities spread over the store: every k-th person in index order.
    let (people, _) = store.list(None, Some("person"), None, usize::MAX)?;
    let step = (people.len() / reads).max(1);
    let spread: Vec<&EntityId> = people.iter().step_by(step).take(reads).collect();
    let by_id = timed_reads(reads, |i| {
        std::hint::black_box(store.entity(spread[i % spread.len()], ReadAt::NOW)?);
        Ok(())
    })?;
    store.close()?;
    drop(store);
    Ok(json!({
        "backend": flags.str("backend")?,
        "changes_in_store": stats.changes,
        "entities_in_store": stats.entities,
        "versions": versions,
        "as_of_100_versions": as_of,
        "now_100_versions": now,
        "entity_now_spread": by_id,
        "people_listed": people.len(),
        "peak_rss_kib": peak_rss_kib(),
    }))
}
