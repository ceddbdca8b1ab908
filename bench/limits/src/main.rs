//! `pole-limits`: the ceilings our store's durable ingest runs under, measured on the same
//! change stream as the store and its peers (`scripts/bench`, BENCHMARKS.md "Peers and
//! limits"). Every subcommand prints one JSON document on stdout.
//!
//! - `sled --changes FILE --batch N --flush 0|1 --dir DIR`: raw sled 0.34 inserts of the
//!   stream's bytes, three keys per change (a journal entry `j`+n holding the change's JSON
//!   line, an entity key `e`+stream holding the same bytes, an index key
//!   `v`+stream+version holding n), one `apply_batch` per N changes, with or without
//!   `Db::flush` (fsync) after each batch.
//! - `redb --changes FILE --batch N --flush 0|1 --dir DIR`: the same keys in one redb 4
//!   write transaction per batch, committed with `Durability::Immediate` (flush 1) or
//!   `Durability::None` (flush 0, with one durable commit at the end, timed).
//! - `fsync --dir DIR [--writes 2000] [--batches 200]`: appends of 4 KiB, each followed
//!   by `fdatasync`, then appends of 1 MiB, each followed by `fdatasync`: the disk's
//!   synchronous write rate, the physical limit of a durable commit.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// One change of the stream, as its three keys and values.
struct Record {
    journal_key: Vec<u8>,
    entity_key: Vec<u8>,
    index_key: Vec<u8>,
    line: Vec<u8>,
    n: [u8; 8],
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: pole-limits sled|redb|fsync --flag value ... (see the module documentation)");
    };
    let flags = parse_flags(rest)?;
    let out = match command.as_str() {
        "sled" => sled_run(&flags)?,
        "redb" => redb_run(&flags)?,
        "fsync" => fsync_run(&flags)?,
        other => bail!("unknown subcommand {other:?}"),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn parse_flags(args: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let Some(key) = name.strip_prefix("--") else { bail!("expected --flag, got {name:?}") };
        let value = it.next().with_context(|| format!("{name} needs a value"))?;
        map.insert(key.to_owned(), value.clone());
    }
    Ok(map)
}

fn flag<'a>(flags: &'a HashMap<String, String>, name: &str) -> anyhow::Result<&'a str> {
    flags.get(name).map(String::as_str).with_context(|| format!("--{name} is required"))
}

fn num(flags: &HashMap<String, String>, name: &str, default: u64) -> anyhow::Result<u64> {
    match flags.get(name) {
        Some(v) => v.parse().with_context(|| format!("--{name} {v:?} is not a number")),
        None => Ok(default),
    }
}

fn records(path: &Path, limit: u64) -> anyhow::Result<Vec<Record>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for text in std::io::BufReader::new(file).lines() {
        if out.len() as u64 >= limit {
            break;
        }
        let text = text?;
        let v: Value = serde_json::from_str(&text)?;
        let n = v["n"].as_u64().context("line without n")?;
        let stream = v["stream"].as_str().context("line without stream")?;
        let version = v["version"].as_u64().context("line without version")?;
        let mut journal_key = b"j".to_vec();
        journal_key.extend_from_slice(&n.to_be_bytes());
        let mut entity_key = b"e".to_vec();
        entity_key.extend_from_slice(stream.as_bytes());
        let mut index_key = b"v".to_vec();
        index_key.extend_from_slice(stream.as_bytes());
        index_key.push(0);
        index_key.extend_from_slice(&version.to_be_bytes());
        out.push(Record { journal_key, entity_key, index_key, line: text.into_bytes(), n: n.to_be_bytes() });
    }
    Ok(out)
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() as f64 - 1.0) * p).round() as usize).min(sorted.len() - 1)]
}

fn dir_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).map(|e| dir_bytes(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.blocks() * 512
    }
}

struct Setup {
    records: Vec<Record>,
    batch: usize,
    flush: bool,
    dir: PathBuf,
}

fn setup(flags: &HashMap<String, String>) -> anyhow::Result<Setup> {
    let records = records(Path::new(flag(flags, "changes")?), num(flags, "limit", u64::MAX)?)?;
    let batch = num(flags, "batch", 1000)?.max(1) as usize;
    let flush = num(flags, "flush", 1)? != 0;
    let dir = PathBuf::from(flag(flags, "dir")?);
    if dir.exists() {
        bail!("{} exists: give a new directory", dir.display());
    }
    Ok(Setup { records, batch, flush, dir })
}

fn report(engine: &str, s: &Setup, seconds: f64, mut batch_seconds: Vec<f64>, disk: u64) -> Value {
    batch_seconds.sort_by(f64::total_cmp);
    let n = s.records.len() as f64;
    let json_bytes: usize = s.records.iter().map(|r| r.line.len() + 1).sum();
    json!({
        "engine": engine,
        "batch": s.batch,
        "flush_per_batch": s.flush,
        "changes": s.records.len(),
        "keys_per_change": 3,
        "seconds": seconds,
        "changes_per_second": n / seconds,
        "keys_per_second": 3.0 * n / seconds,
        "batch_seconds_p50": percentile(&batch_seconds, 0.5),
        "batch_seconds_p99": percentile(&batch_seconds, 0.99),
        "stream_json_bytes": json_bytes,
        "disk_bytes": disk,
        "peak_rss_kib": peak_rss_kib(),
    })
}

fn sled_run(flags: &HashMap<String, String>) -> anyhow::Result<Value> {
    let s = setup(flags)?;
    // As the store's SledBackend opens it: 256 MiB cache, sled's own background flush.
    let db = sled::Config::new().path(&s.dir).cache_capacity(256 << 20).flush_every_ms(Some(2_000)).open()?;
    let mut batch_seconds = Vec::new();
    let started = Instant::now();
    for chunk in s.records.chunks(s.batch) {
        let t = Instant::now();
        let mut batch = sled::Batch::default();
        for r in chunk {
            batch.insert(r.journal_key.as_slice(), r.line.as_slice());
            batch.insert(r.entity_key.as_slice(), r.line.as_slice());
            batch.insert(r.index_key.as_slice(), &r.n[..]);
        }
        db.apply_batch(batch)?;
        if s.flush {
            db.flush()?;
        }
        batch_seconds.push(t.elapsed().as_secs_f64());
    }
    let seconds = started.elapsed().as_secs_f64();
    db.flush()?;
    drop(db);
    let disk = dir_bytes(&s.dir);
    Ok(report("sled 0.34.7", &s, seconds, batch_seconds, disk))
}

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("limits");

fn redb_run(flags: &HashMap<String, String>) -> anyhow::Result<Value> {
    let s = setup(flags)?;
    std::fs::create_dir_all(&s.dir)?;
    let db = redb::Database::builder().set_cache_size(256 << 20).create(s.dir.join("limits.redb"))?;
    let durability = if s.flush { redb::Durability::Immediate } else { redb::Durability::None };
    let mut batch_seconds = Vec::new();
    let started = Instant::now();
    for chunk in s.records.chunks(s.batch) {
        let t = Instant::now();
        let mut txn = db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for r in chunk {
                table.insert(r.journal_key.as_slice(), r.line.as_slice())?;
                table.insert(r.entity_key.as_slice(), r.line.as_slice())?;
                table.insert(r.index_key.as_slice(), &r.n[..])?;
            }
        }
        txn.commit()?;
        batch_seconds.push(t.elapsed().as_secs_f64());
    }
    if !s.flush {
        // One durable commit at the end, so every run ends with everything on disk.
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        txn.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(db);
    let disk = dir_bytes(&s.dir);
    Ok(report("redb 4.6.0", &s, seconds, batch_seconds, disk))
}

fn sync_series(path: &Path, size: usize, count: u64) -> anyhow::Result<Value> {
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
    let block = vec![0x5au8; size];
    let mut latencies = Vec::with_capacity(count as usize);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed().as_secs_f64());
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "write_bytes": size,
        "writes": count,
        "seconds": seconds,
        "syncs_per_second": count as f64 / seconds,
        "mib_per_second": (size as f64 * count as f64) / seconds / (1024.0 * 1024.0),
        "seconds_p50": percentile(&latencies, 0.5),
        "seconds_p99": percentile(&latencies, 0.99),
    }))
}

fn fsync_run(flags: &HashMap<String, String>) -> anyhow::Result<Value> {
    let dir = PathBuf::from(flag(flags, "dir")?);
    std::fs::create_dir_all(&dir)?;
    let small = sync_series(&dir.join("fsync-4k.bin"), 4096, num(flags, "writes", 2000)?)?;
    let large = sync_series(&dir.join("fsync-1m.bin"), 1 << 20, num(flags, "batches", 200)?)?;
    Ok(json!({ "append_4kib_fdatasync": small, "append_1mib_fdatasync": large }))
}
