//! The access log: every read, search, write, export and denial, appended and hash-chained
//! like the journal (its own chain, domain-separated), so that altering any record breaks
//! verification at that record.
//!
//! Layout: `audit/access-NNNNNN.log` segment files of text lines
//! `seq \t prev-hash \t hash \t record-json`; the hash covers the record's JSON bytes exactly
//! as written. Appends go through one background thread that writes a batch and syncs it
//! once (group commit), so recording a read never waits for the disk; [`AccessLog::flush`]
//! waits until everything recorded so far is durable. On open, a torn last line (a crash
//! mid-append) is cut off and kept beside the segment, like the journal's torn tail.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use pole_audit::{chain_hash, Chain, ChainVerifier, Hash};
use pole_model::{EntityId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::owner_only;

/// Start a new segment once the current one is this large.
const SEGMENT_BYTES: u64 = 64 << 20;

/// What a request did with the records it touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessAction {
    Read,
    Search,
    Write,
    Export,
    BreakGlass,
}

/// Whether the request was served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AccessOutcome {
    Allowed,
    Denied { detail: String },
}

/// One access, as the caller describes it; the log adds the sequence and the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub actor: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
    pub action: AccessAction,
    /// What was asked, e.g. `GET /v1/entities/{id}` or `graphql`.
    pub operation: String,
    /// The entities the answer showed (or the write changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityId>,
    /// A search's or listing's parameters, without identifiable values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_count: Option<u64>,
    #[serde(flatten)]
    pub outcome: AccessOutcome,
    /// The read used an analyst's break-glass grant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// For break-glass grants: the reason declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl AccessEntry {
    /// An allowed access by `actor` with nothing else said yet; callers set the rest.
    pub fn new(
        actor: impl Into<String>,
        role: impl Into<String>,
        action: AccessAction,
        operation: impl Into<String>,
    ) -> Self {
        AccessEntry {
            actor: actor.into(),
            role: role.into(),
            council: None,
            purpose: None,
            agreement: None,
            action,
            operation: operation.into(),
            entities: Vec::new(),
            query: None,
            result_count: None,
            outcome: AccessOutcome::Allowed,
            break_glass: false,
            reason: None,
            request_id: None,
        }
    }
}

/// A record as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(flatten)]
    pub entry: AccessEntry,
}

/// Which records an auditor asks for.
#[derive(Debug, Clone, Default)]
pub struct AccessQuery {
    pub entity: Option<EntityId>,
    pub actor: Option<String>,
    pub action: Option<AccessAction>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Only records after this sequence (paging).
    pub after: u64,
    pub limit: usize,
}

impl AccessQuery {
    fn matches(&self, record: &AccessRecord) -> bool {
        self.entity.as_ref().is_none_or(|e| record.entry.entities.contains(e))
            && self.actor.as_ref().is_none_or(|a| *a == record.entry.actor)
            && self.action.is_none_or(|a| a == record.entry.action)
            && self.from.is_none_or(|from| record.at >= from)
            && self.to.is_none_or(|to| record.at < to)
    }
}

/// The outcome of verifying the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLogReport {
    pub ok: bool,
    pub records: u64,
    pub head_hash: Hash,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

enum Message {
    /// An access, with whom to tell once it is durable (if anyone waits).
    Record(Box<AccessEntry>, Option<mpsc::SyncSender<Result<()>>>),
    Flush(mpsc::SyncSender<Result<()>>),
    /// Write what came before, then stop taking records.
    Close(mpsc::SyncSender<Result<()>>),
}

struct Tail {
    file: File,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    last: Hash,
    dir: PathBuf,
}

/// The open access log of one data directory. Cheap to clone; one appender thread.
#[derive(Clone)]
pub struct AccessLog {
    sender: Sender<Message>,
    dir: PathBuf,
    failed: Arc<Mutex<Option<String>>>,
    _thread: Arc<AppenderThread>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

struct AppenderThread {
    sender: Mutex<Option<Sender<Message>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for AppenderThread {
    fn drop(&mut self) {
        self.sender.lock().take();
        if let Some(handle) = self.handle.lock().take() {
            let _ = handle.join();
        }
    }
}

/// The segment files of an access-log directory, in order.
fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("access-") && n.ends_with(".log"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StoreError::Io { path: dir.to_owned(), source: e }),
    };
    paths.sort();
    Ok(paths)
}

fn segment_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("access-{index:06}.log"))
}

/// One line split into its parts; `None` when it is not a well-formed line.
fn split_line(line: &str) -> Option<(u64, Hash, Hash, &str)> {
    let mut parts = line.splitn(4, '\t');
    let seq = parts.next()?.parse().ok()?;
    let prev = Hash::from_hex(parts.next()?)?;
    let hash = Hash::from_hex(parts.next()?)?;
    Some((seq, prev, hash, parts.next()?))
}

impl AccessLog {
    /// Opens (creating if needed) the access log in `dir`, cutting a torn last line.
    pub fn open(dir: impl AsRef<Path>) -> Result<AccessLog> {
        let dir = dir.as_ref().to_owned();
        owner_only::create_dir_all(&dir)?;
        // Segments written by an older pole-ods may be readable by others: the log names who
        // read which person's records.
        owner_only::tighten_tree(&dir)?;
        let paths = segments(&dir)?;
        let path = paths.last().cloned().unwrap_or_else(|| segment_path(&dir, 1));
        let (next_seq, last, len) = recover_tail(&path)?;
        let file = owner_only::options().create(true).append(true).open(&path).map_err(StoreError::io(&path))?;
        let tail = Tail { file, path, len, next_seq, last, dir: dir.clone() };
        let (sender, receiver) = mpsc::channel();
        let failed = Arc::new(Mutex::new(None));
        let thread_failed = Arc::clone(&failed);
        let handle = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || append_loop(tail, receiver, thread_failed))
            .map_err(StoreError::io(&dir))?;
        let thread = AppenderThread { sender: Mutex::new(Some(sender.clone())), handle: Mutex::new(Some(handle)) };
        Ok(AccessLog { sender, dir, failed, _thread: Arc::new(thread) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records an access without waiting for the disk (refusals: nothing was disclosed). A
    /// failed appender is reported by [`AccessLog::flush`] and by [`AccessLog::healthy`].
    pub fn record(&self, entry: AccessEntry) {
        let _ = self.sender.send(Message::Record(Box::new(entry), None));
    }

    /// Records an access and waits until it is on disk: an answer that shows records is sent
    /// only after its access record is durable. Concurrent callers share one sync.
    pub fn record_durably(&self, entry: AccessEntry) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let stopped = || StoreError::WriterStopped("the access log's appender has stopped".into());
        self.sender.send(Message::Record(Box::new(entry), Some(tx))).map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }

    /// Waits until every access recorded before this call is on disk.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.sender
            .send(Message::Flush(tx))
            .map_err(|_| StoreError::WriterStopped("the access log's appender has stopped".into()))?;
        rx.recv().map_err(|_| StoreError::WriterStopped("the access log's appender has stopped".into()))?
    }

    /// Writes and syncs everything recorded before this call, then stops the appender:
    /// every clone of this log refuses records from then on (`record_durably` and `flush`
    /// answer an error, [`AccessLog::healthy`] says it is closed). For a shutdown that must
    /// not let anything be recorded after its last flush.
    pub fn close(&self) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let stopped = || StoreError::WriterStopped("the access log's appender has stopped".into());
        self.sender.send(Message::Close(tx)).map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }

    /// Whether appends are still succeeding (for `/ready`).
    pub fn healthy(&self) -> std::result::Result<(), String> {
        match self.failed.lock().clone() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Records matching `query`, oldest first, at most `query.limit`.
    pub fn query(&self, query: &AccessQuery) -> Result<Vec<AccessRecord>> {
        read_records(&self.dir, query)
    }
}

/// Reads the last segment to find where the chain stands, truncating a torn last line
/// (kept as `*.torn` beside it).
fn recover_tail(path: &Path) -> Result<(u64, Hash, u64)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StoreError::Io { path: path.to_owned(), source: e }),
    };
    let mut good = 0usize;
    let mut last = None;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let complete = line.ends_with(b"\n");
        let parsed = std::str::from_utf8(line).ok().and_then(|l| split_line(l.trim_end_matches('\n')));
        match (complete, parsed) {
            (true, Some((seq, _, hash, _))) => {
                good += line.len();
                last = Some((seq, hash));
            }
            _ => break,
        }
    }
    if good < bytes.len() {
        let torn = path.with_extension("log.torn");
        owner_only::write(&torn, &bytes[good..])?;
        let file = OpenOptions::new().write(true).open(path).map_err(StoreError::io(path))?;
        file.set_len(good as u64).map_err(StoreError::io(path))?;
        file.sync_all().map_err(StoreError::io(path))?;
    }
    match last {
        Some((seq, hash)) => Ok((seq + 1, hash, good as u64)),
        None => {
            // An empty segment continues the chain of the segment before it.
            let dir = path.parent().unwrap_or(Path::new("."));
            let earlier: Vec<PathBuf> = segments(dir)?.into_iter().filter(|p| p != path).collect();
            match earlier.last() {
                Some(previous) => {
                    let (next, hash, _) = recover_tail(previous)?;
                    Ok((next, hash, 0))
                }
                None => Ok((1, Hash::GENESIS, 0)),
            }
        }
    }
}

fn append_loop(mut tail: Tail, receiver: Receiver<Message>, failed: Arc<Mutex<Option<String>>>) {
    let mut buffer = Vec::with_capacity(64 << 10);
    while let Ok(first) = receiver.recv() {
        let mut waiting = Vec::new();
        let mut next = Some(first);
        let mut batch = 0;
        let mut closing = false;
        while let Some(message) = next {
            match message {
                Message::Record(entry, reply) => {
                    append_line(&mut tail, *entry, &mut buffer);
                    batch += 1;
                    waiting.extend(reply);
                }
                Message::Flush(reply) => waiting.push(reply),
                Message::Close(reply) => {
                    waiting.push(reply);
                    closing = true;
                }
            }
            next = if batch < 4096 && !closing { receiver.try_recv().ok() } else { None };
        }
        let outcome = write_out(&mut tail, &mut buffer);
        if let Err(e) = &outcome {
            *failed.lock() = Some(e.to_string());
            tracing::error!(error = %e, "access log append failed");
        }
        if closing {
            failed.lock().get_or_insert_with(|| "the access log is closed".into());
        }
        for reply in waiting {
            let _ = reply.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::WriterStopped(format!("access log: {e}"))),
            });
        }
        if closing {
            // Dropping the receiver makes every later send, from any clone, fail.
            return;
        }
    }
    let _ = write_out(&mut tail, &mut buffer);
}

fn append_line(tail: &mut Tail, entry: AccessEntry, buffer: &mut Vec<u8>) {
    let record = AccessRecord { seq: tail.next_seq, at: Timestamp::now(), entry };
    let Ok(json) = serde_json::to_string(&record) else { return };
    let hash = chain_hash(Chain::AccessLog, &tail.last, json.as_bytes());
    let line = format!("{}\t{}\t{}\t{json}\n", record.seq, tail.last.to_hex(), hash.to_hex());
    buffer.extend_from_slice(line.as_bytes());
    tail.last = hash;
    tail.next_seq += 1;
}

fn write_out(tail: &mut Tail, buffer: &mut Vec<u8>) -> Result<()> {
    if buffer.is_empty() {
        return Ok(());
    }
    if tail.len >= SEGMENT_BYTES {
        let index = segments(&tail.dir)?.len() + 1;
        let path = segment_path(&tail.dir, index);
        tail.file = owner_only::options().create(true).append(true).open(&path).map_err(StoreError::io(&path))?;
        tail.path = path;
        tail.len = 0;
    }
    tail.file.write_all(buffer).map_err(StoreError::io(&tail.path))?;
    tail.file.sync_data().map_err(StoreError::io(&tail.path))?;
    tail.len += buffer.len() as u64;
    buffer.clear();
    Ok(())
}

fn read_records(dir: &Path, query: &AccessQuery) -> Result<Vec<AccessRecord>> {
    let mut out = Vec::new();
    for path in segments(dir)? {
        let file = File::open(&path).map_err(StoreError::io(&path))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(StoreError::io(&path))?;
            // A record that does not read is not skipped: an answer to "who has seen this
            // person" must not quietly leave anyone out.
            let unreadable = || StoreError::Corrupt {
                path: path.clone(),
                reason: format!("access log line {} is not a readable record; run `pole-ods verify`", n + 1),
            };
            let (seq, _, _, json) = split_line(&line).ok_or_else(unreadable)?;
            if seq <= query.after {
                continue;
            }
            let record = serde_json::from_str::<AccessRecord>(json).map_err(|_| unreadable())?;
            if query.matches(&record) {
                out.push(record);
                if out.len() >= query.limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Walks the access log of `dir` record by record, read-only.
pub fn verify_access_log(dir: &Path) -> Result<AccessLogReport> {
    let mut chain = ChainVerifier::new(Chain::AccessLog);
    let mut expected = 1u64;
    let fail = |chain: &ChainVerifier, seq: u64, problem: String| AccessLogReport {
        ok: false,
        records: chain.checked(),
        head_hash: chain.last(),
        first_bad_seq: Some(seq),
        problem: Some(problem),
    };
    for path in segments(dir)? {
        let name = path.display().to_string();
        let file = File::open(&path).map_err(StoreError::io(&path))?;
        for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line.map_err(StoreError::io(&path))?;
            let at = format!("{name} line {}", n + 1);
            let Some((seq, prev, hash, json)) = std::str::from_utf8(&line).ok().and_then(split_line) else {
                return Ok(fail(&chain, expected, format!("{at}: not a well-formed access record")));
            };
            if seq != expected {
                return Ok(fail(&chain, expected, format!("{at}: record says seq {seq}, expected {expected}")));
            }
            if let Err(e) = chain.check(seq, &prev, &hash, json.as_bytes()) {
                return Ok(fail(&chain, expected, format!("{at}: {e}")));
            }
            if let Err(e) = serde_json::from_str::<AccessRecord>(json) {
                return Ok(fail(&chain, expected, format!("{at}: record {seq} does not decode: {e}")));
            }
            expected += 1;
        }
    }
    Ok(AccessLogReport {
        ok: true,
        records: chain.checked(),
        head_hash: chain.last(),
        first_bad_seq: None,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str) -> AccessEntry {
        AccessEntry::new(actor, "admin", AccessAction::Read, "test")
    }

    #[test]
    fn a_closed_log_keeps_what_came_before_and_refuses_what_comes_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::open(dir.path()).unwrap();
        let clone = log.clone();
        log.record(entry("before"));
        log.close().unwrap();
        assert!(clone.record_durably(entry("after")).is_err());
        assert!(clone.flush().is_err());
        assert!(log.healthy().unwrap_err().contains("closed"));
        drop((log, clone));
        let reopened = AccessLog::open(dir.path()).unwrap();
        let records = reopened.query(&AccessQuery { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(records.iter().map(|r| r.entry.actor.as_str()).collect::<Vec<_>>(), ["before"]);
        reopened.record_durably(entry("reopened")).unwrap();
        assert!(verify_access_log(dir.path()).unwrap().ok);
    }
}
