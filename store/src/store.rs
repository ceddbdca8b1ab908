//! [`Store`]: opening a data directory, recovery, the commit path and replay.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use pole_audit::Hash;
use pole_model::{ChangeOp, SchemaRegistry, Timestamp};
use serde::{Deserialize, Serialize};

use crate::applier::Progress;
use crate::backend::{Backend, MemoryBackend, RedbBackend, SledBackend};
use crate::codec::{self, decode_transaction};
use crate::journal::{FrameReader, JournalReader, JournalWriter, Recovery};
use crate::outcome::{Committed, Rejection};
use crate::projection::{live_overlays, Counts, IdempotencyRecord, Overlay, Stage, TxMeta};
use crate::request::TransactionRequest;
use crate::vault::Vault;
use crate::writer::{Head, Job, Work, Writer};
use crate::{keys, owner_only, Result, StoreError};

/// The data directory format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// A backend batch while catching up or rebuilding closes at this many transactions, or
/// at [`REPLAY_BATCH_CHANGES`] changes, whichever comes first: the changes bound holds
/// memory when transactions are large (a CSV chunk is tens of thousands of changes).
const REPLAY_BATCH: usize = 2_000;
const REPLAY_BATCH_CHANGES: usize = 40_000;
/// Journal bytes copied per write while materialising.
const MATERIALISE_BATCH_BYTES: usize = 16 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct FormatFile {
    format: u32,
    /// Informational; a FORMAT file is judged by its version alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
}

/// Where projections live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// sled, in `DIR/projections/`.
    #[default]
    Sled,
    /// redb, in `DIR/projections.redb`.
    Redb,
    /// Projections in memory, rebuilt from the journal at every open (tests, tools).
    Memory,
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "sled" => Ok(BackendKind::Sled),
            "redb" => Ok(BackendKind::Redb),
            "memory" => Ok(BackendKind::Memory),
            other => Err(format!("unknown backend {other:?} (expected sled, redb or memory)")),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub backend: BackendKind,
    /// sled's page cache.
    pub cache_bytes: u64,
    /// The schema pack; the adult social care pack when `None`.
    pub schema: Option<Arc<SchemaRegistry>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { backend: BackendKind::Redb, cache_bytes: 256 << 20, schema: None }
    }
}

/// Counts and the head, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub transactions: u64,
    pub changes: u64,
    pub entities: u64,
    pub head_seq: u64,
    pub head_hash: Hash,
}

/// A submitted transaction.
#[derive(Debug)]
pub struct PendingCommit {
    reply: mpsc::Receiver<crate::writer::Reply>,
    progress: Arc<Progress>,
}

impl PendingCommit {
    /// Answers once the transaction is durable and readable (its projections applied, the
    /// head moved past it), or refused.
    pub fn wait(self) -> Result<std::result::Result<Committed, Rejection>> {
        let progress = Arc::clone(&self.progress);
        let outcome = self.wait_durable()?;
        if let Ok(committed) = &outcome {
            progress.wait_applied(committed.seq)?;
        }
        Ok(outcome)
    }

    /// Answers as soon as the transaction is durable in the journal (or refused), possibly
    /// before reads show it: for a caller that keeps submitting and reads only after
    /// [`Store::wait_applied`]. The writer judges later transactions against it either way.
    pub fn wait_durable(self) -> Result<std::result::Result<Committed, Rejection>> {
        self.reply.recv().map_err(|_| StoreError::WriterStopped("the writer thread exited mid-commit".into()))?
    }
}

pub(crate) struct Inner {
    pub dir: PathBuf,
    pub backend_kind: BackendKind,
    pub schema: Arc<SchemaRegistry>,
    pub backend: Arc<dyn Backend>,
    pub vault: Arc<RwLock<Vault>>,
    pub head: Arc<RwLock<Head>>,
    /// Reads the changes history entries point at in the journal.
    pub frames: Arc<FrameReader>,
    progress: Arc<Progress>,
    jobs: Mutex<Option<Sender<Work>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    recovery: Recovery,
    _lock: File,
}

/// The event-sourced store over one data directory. Cheap to clone; every clone shares
/// the same writer.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.inner.dir).field("head", &*self.inner.head.read()).finish()
    }
}

fn journal_dir(dir: &Path) -> PathBuf {
    dir.join("journal")
}

fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join("FORMAT");
    match fs::read(&path) {
        Ok(bytes) => {
            let format: FormatFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: format!("FORMAT file does not parse: {e}"),
            })?;
            if format.format > FORMAT_VERSION {
                return Err(StoreError::NewerFormat {
                    path: dir.to_path_buf(),
                    found: format.format,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if journal_dir(dir).exists() {
                return Err(StoreError::Corrupt {
                    path: dir.to_path_buf(),
                    reason: "it has a journal but no FORMAT file".into(),
                });
            }
            let non_empty = fs::read_dir(dir)
                .map_err(StoreError::io(dir))?
                .any(|e| e.map(|e| e.file_name() != "LOCK").unwrap_or(true));
            if non_empty {
                return Err(StoreError::Corrupt {
                    path: dir.to_path_buf(),
                    reason: "it is not empty and is not a pole-ods data directory".into(),
                });
            }
            let format = FormatFile { format: FORMAT_VERSION, created_at: Some(Timestamp::now()) };
            owner_only::write(&path, &serde_json::to_vec_pretty(&format)?)?;
            Ok(())
        }
        Err(e) => Err(StoreError::io(&path)(e)),
    }
}

impl Store {
    /// Opens (creating when new) the store in `dir`: recovers the journal's tail, brings the
    /// projections up to the journal's head and starts the writer.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        owner_only::create_dir_all(&dir)?;
        let lock_path = dir.join("LOCK");
        let lock = owner_only::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(StoreError::io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir));
        }
        owner_only::tighten_file(&lock, &lock_path)?;
        check_format(&dir)?;
        owner_only::tighten(&dir.join("FORMAT"))?;
        let schema = match options.schema {
            Some(schema) => schema,
            None => Arc::new(pole_model::default_registry().map_err(|e| StoreError::Journal(e.to_string()))?),
        };
        let (journal, recovery) = JournalWriter::open(&journal_dir(&dir))?;
        let vault = Vault::open(&dir.join("keys"))?;
        let backend: Arc<dyn Backend> = match options.backend {
            BackendKind::Sled => Arc::new(SledBackend::open(&dir.join("projections"), options.cache_bytes)?),
            BackendKind::Redb => Arc::new(RedbBackend::open(&dir.join("projections.redb"), options.cache_bytes)?),
            BackendKind::Memory => Arc::new(MemoryBackend::new()),
        };
        let vault = Arc::new(RwLock::new(vault));
        let mut applied = applied_seq(backend.as_ref())?;
        if applied > 0 && projection_version(backend.as_ref())? != keys::PROJECTION_VERSION {
            // Built by an older pole-ods: rebuild them from the journal, the source of truth.
            tracing::warn!(dir = %dir.display(), "projections are of an older format; rebuilding them from the journal");
            backend.clear()?;
            applied = 0;
        }
        let journal_head = journal.head();
        if applied > journal_head.seq {
            return Err(StoreError::Corrupt {
                path: dir.clone(),
                reason: format!(
                    "the projections have applied seq {applied} but the journal ends at seq {}: acknowledged \
                     transactions are missing from the journal",
                    journal_head.seq
                ),
            });
        }
        // One reader of the journal's frames for the whole store: start-up, the writer and reads.
        let frames = Arc::new(FrameReader::new(&journal_dir(&dir)));
        catch_up(&frames, backend.as_ref(), &schema, &vault, true, applied, |_| {})?;
        let recorded_at = match backend.get(&keys::transaction(journal_head.seq))? {
            Some(bytes) => codec::decode::<TxMeta>(&bytes)?.recorded_at,
            None => Timestamp::from_micros(0),
        };
        let head = Arc::new(RwLock::new(Head { seq: journal_head.seq, hash: journal_head.hash, recorded_at }));
        let progress = Arc::new(Progress::at(journal_head.seq));
        let (tx, rx) = mpsc::channel::<Work>();
        let writer = Writer::new(
            journal,
            Arc::clone(&frames),
            Arc::clone(&backend),
            Arc::clone(&schema),
            Arc::clone(&vault),
            Arc::clone(&head),
            Arc::clone(&progress),
        )?;
        let handle = std::thread::Builder::new()
            .name("pole-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Journal(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                frames,
                dir,
                backend_kind: options.backend,
                schema,
                backend,
                vault,
                head,
                progress,
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                recovery,
                _lock: lock,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn schema(&self) -> &Arc<SchemaRegistry> {
        &self.inner.schema
    }

    /// What opening had to recover.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// The last transaction readers see.
    pub fn head(&self) -> Head {
        *self.inner.head.read()
    }

    /// The sequence of the last durable transaction; the head reaches it once the writer's
    /// applier has applied it.
    pub fn durable_seq(&self) -> u64 {
        self.inner.progress.durable()
    }

    /// Blocks until reads show every transaction up to `seq` (see
    /// [`PendingCommit::wait_durable`]).
    pub fn wait_applied(&self, seq: u64) -> Result<()> {
        self.inner.progress.wait_applied(seq)
    }

    /// Blocks until reads show every transaction durable so far: what a caller that went on
    /// at durability ([`PendingCommit::wait_durable`]) calls before it reads.
    pub fn wait_readable(&self) -> Result<()> {
        self.wait_applied(self.durable_seq())
    }

    /// Commits a transaction durably, or explains why not. Blocks until the group holding
    /// it is synced; call from a blocking context.
    pub fn commit(&self, request: TransactionRequest) -> Result<std::result::Result<Committed, Rejection>> {
        self.enqueue(request)?.wait()
    }

    /// Queues a transaction without waiting for it, so one caller can keep several in
    /// flight and let group commit share a sync among them. Transactions are sequenced in
    /// the order they are submitted.
    pub fn submit(&self, request: TransactionRequest) -> Result<PendingCommit> {
        self.enqueue(request)
    }

    fn enqueue(&self, request: TransactionRequest) -> Result<PendingCommit> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let jobs = self.inner.jobs.lock();
        let sender = jobs.as_ref().ok_or_else(|| StoreError::WriterStopped("the store is closed".into()))?;
        sender
            .send(Work::Commit(Box::new(Job::new(request, reply_tx)?)))
            .map_err(|_| StoreError::WriterStopped("the writer thread has exited".into()))?;
        Ok(PendingCommit { reply: reply_rx, progress: Arc::clone(&self.inner.progress) })
    }

    /// Stops the writer after the queued transactions and flushes the projections.
    pub fn close(&self) -> Result<()> {
        self.inner.jobs.lock().take();
        if let Some(handle) = self.inner.writer.lock().take() {
            let _ = handle.join();
        }
        self.inner.backend.flush()
    }

    pub fn stats(&self) -> Result<Stats> {
        let counts: Counts = match self.inner.backend.get(keys::STATS)? {
            Some(bytes) => codec::decode(&bytes)?,
            None => Counts::default(),
        };
        let head = self.head();
        Ok(Stats {
            transactions: counts.transactions,
            changes: counts.changes,
            entities: counts.entities,
            head_seq: head.seq,
            head_hash: head.hash,
        })
    }

    /// SHA-256 over every projection key and value in key order: equal digests mean equal
    /// projections, byte for byte.
    pub fn digest(&self) -> Result<Hash> {
        digest_of(self.inner.backend.as_ref())
    }

    /// Drops every projection and rebuilds it from the journal; returns the new digest.
    /// `progress` is called with the sequence reached.
    /// Commits queued before it are applied first; commits after it wait for it.
    pub fn rebuild(&self, progress: impl FnMut(u64) + Send + 'static) -> Result<Hash> {
        self.rebuild_projections(progress)?;
        self.digest()
    }

    /// [`Store::rebuild`] without the digest: drops the projections, rebuilds them from the
    /// journal and flushes them.
    pub fn rebuild_projections(&self, progress: impl FnMut(u64) + Send + 'static) -> Result<()> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        {
            let jobs = self.inner.jobs.lock();
            let sender = jobs.as_ref().ok_or_else(|| StoreError::WriterStopped("the store is closed".into()))?;
            sender
                .send(Work::Rebuild { progress: Box::new(progress), reply: reply_tx })
                .map_err(|_| StoreError::WriterStopped("the writer thread has exited".into()))?;
        }
        reply_rx.recv().map_err(|_| StoreError::WriterStopped("the writer thread exited mid-rebuild".into()))?
    }

    /// Replays the journal into memory and returns that digest, leaving this store as it is.
    pub fn replay_digest(&self, progress: impl FnMut(u64)) -> Result<Hash> {
        let memory = MemoryBackend::new();
        catch_up(&self.inner.frames, &memory, &self.inner.schema, &self.inner.vault, false, 0, progress)?;
        digest_of(&memory)
    }

    /// Writes a new data directory holding this store as it stood at sequence `as_of_seq`:
    /// the journal's first `as_of_seq` transactions byte for byte (so its chain verifies),
    /// the keys, and projections rebuilt from them.
    pub fn materialise(&self, as_of_seq: u64, into: &Path, mut progress: impl FnMut(u64)) -> Result<Hash> {
        if into.exists() && fs::read_dir(into).map_err(StoreError::io(into))?.next().is_some() {
            return Err(StoreError::Corrupt {
                path: into.to_path_buf(),
                reason: "the target directory is not empty".into(),
            });
        }
        owner_only::create_dir_all(into)?;
        check_format(into)?;
        {
            let (mut writer, _) = JournalWriter::open(&journal_dir(into))?;
            let mut reader = JournalReader::open(&journal_dir(&self.inner.dir))?;
            let mut chunk: Vec<Vec<u8>> = Vec::new();
            let mut chunk_bytes = 0;
            while let Some(frame) = reader.next_frame()? {
                if frame.seq > as_of_seq {
                    break;
                }
                chunk_bytes += frame.payload.len();
                chunk.push(frame.payload);
                if chunk.len() >= REPLAY_BATCH || chunk_bytes >= MATERIALISE_BATCH_BYTES {
                    chunk_bytes = 0;
                    writer.append(&chunk)?;
                    chunk.clear();
                    progress(frame.seq);
                }
            }
            if !chunk.is_empty() {
                writer.append(&chunk)?;
            }
        }
        self.inner.vault.read().copy_to(&into.join("keys"))?;
        let target = Store::open(
            into,
            StoreOptions {
                schema: Some(Arc::clone(&self.inner.schema)),
                backend: self.inner.backend_kind,
                ..Default::default()
            },
        )?;
        let digest = target.digest()?;
        target.close()?;
        Ok(digest)
    }

    /// The sequence that was the head at recorded time `at` (0 before the first transaction).
    pub fn seq_at(&self, at: Timestamp) -> Result<u64> {
        let upper = keys::recorded(at);
        Ok(match self.inner.backend.last_at_or_before(keys::RECORDED_PREFIX, &upper)? {
            Some((_, v)) => u64::from_be_bytes(v.as_slice().try_into().unwrap_or_default()),
            None => 0,
        })
    }

    /// The transaction an idempotency key names in a writer's namespace
    /// ([`idempotency_namespace`](crate::idempotency_namespace)), if one was committed
    /// under it: the resubmitter can tell before building a request that it was stored
    /// already.
    pub fn idempotent(&self, namespace: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        match self.inner.backend.get(&keys::idempotency(namespace, key))? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Facts of a committed transaction.
    pub fn transaction_meta(&self, seq: u64) -> Result<Option<TxMeta>> {
        match self.inner.backend.get(&keys::transaction(seq))? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// Reads committed transactions after `after`, at most `limit`, in sequence order.
    pub fn transactions(&self, after: u64, limit: usize) -> Result<Vec<pole_model::Transaction>> {
        let head = self.head().seq;
        if after >= head || limit == 0 {
            return Ok(Vec::new());
        }
        let start = match self.transaction_meta(after + 1)? {
            Some(meta) => meta.location,
            None => return Err(StoreError::Journal(format!("no index entry for seq {}", after + 1))),
        };
        let mut reader = JournalReader::open_at(&journal_dir(&self.inner.dir), start)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(frame) = reader.next_frame()? else { break };
            if frame.seq > head {
                break;
            }
            out.push(decode_transaction(&frame.payload, frame.seq)?);
        }
        Ok(out)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.jobs.lock().take();
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
        if let Err(e) = self.backend.flush() {
            tracing::warn!(error = %e, "flushing projections on close failed; they will be re-applied from the journal");
        }
    }
}

fn applied_seq(backend: &dyn Backend) -> Result<u64> {
    Ok(match backend.get(keys::APPLIED)? {
        Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            path: PathBuf::from("projections"),
            reason: "unreadable applied sequence".into(),
        })?),
        None => 0,
    })
}

pub(crate) fn digest_of(backend: &dyn Backend) -> Result<Hash> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for item in backend.iter_all() {
        let (k, v) = item?;
        hasher.update((k.len() as u64).to_le_bytes());
        hasher.update(&k);
        hasher.update((v.len() as u64).to_le_bytes());
        hasher.update(&v);
    }
    Ok(Hash(hasher.finalize().into()))
}

/// Applies journal transactions after `applied` to `backend`, in batches. With `erase_keys`,
/// erasures found on the way destroy their keys (an erasure whose key deletion was cut short
/// by a crash completes here).
pub(crate) fn catch_up(
    frames: &FrameReader,
    backend: &dyn Backend,
    schema: &SchemaRegistry,
    vault: &RwLock<Vault>,
    erase_keys: bool,
    applied: u64,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    let journal = frames.dir();
    let mut reader = match applied {
        0 => JournalReader::open(journal)?,
        seq => match backend.get(&keys::transaction(seq))? {
            Some(bytes) => JournalReader::open_at(journal, codec::decode::<TxMeta>(&bytes)?.location)?,
            None => JournalReader::open(journal)?,
        },
    };
    // Batches are applied on a second thread while the next ones are staged over them, as
    // on the live path (`crate::applier`).
    std::thread::scope(|scope| {
        let (batches, queue) = mpsc::sync_channel::<Arc<Overlay>>(1);
        let applying = scope.spawn(move || -> Result<()> {
            // Each overlay is dropped once applied: staging then reads the backend instead.
            for overlay in queue {
                backend.apply(overlay.to_batch()?)?;
                // Durable after each batch (one sync a batch of up to 40,000 changes): redb
                // reuses the pages a commit frees only after a durable one, so a rebuild
                // committing non-durably left a file a tenth larger (1,865 against 1,693 MB
                // for a million changes).
                backend.flush()?;
            }
            Ok(())
        });
        let staged =
            stage_journal(&mut reader, frames, backend, schema, vault, erase_keys, applied, &batches, &mut progress);
        drop(batches);
        let applied =
            applying.join().map_err(|_| StoreError::Backend("the thread applying batches panicked".into()))?;
        // A failed batch closes the queue, so staging stops with a send error: report the cause.
        applied.and(staged)
    })
}

/// The staging half of [`catch_up`]: every transaction after `applied`, staged in batches of
/// [`REPLAY_BATCH`] transactions or [`REPLAY_BATCH_CHANGES`] changes over the ones still
/// being applied.
#[allow(clippy::too_many_arguments)]
fn stage_journal(
    reader: &mut JournalReader,
    frames: &FrameReader,
    backend: &dyn Backend,
    schema: &SchemaRegistry,
    vault: &RwLock<Vault>,
    erase_keys: bool,
    applied: u64,
    batches: &mpsc::SyncSender<Arc<Overlay>>,
    progress: &mut impl FnMut(u64),
) -> Result<()> {
    let mut pending: Vec<Weak<Overlay>> = Vec::new();
    let mut stage = Stage::new(backend, frames);
    let mut in_stage = 0;
    let mut changes_in_stage = 0;
    let send = |overlay: Overlay, pending: &mut Vec<Weak<Overlay>>| -> Result<()> {
        let overlay = Arc::new(overlay);
        pending.push(Arc::downgrade(&overlay));
        batches.send(overlay).map_err(|_| StoreError::Backend("applying a batch failed".into()))
    };
    while let Some(frame) = reader.next_frame()? {
        if frame.seq <= applied {
            continue;
        }
        let tx = Arc::new(decode_transaction(&frame.payload, frame.seq)?);
        let spans = codec::change_spans(&frame.payload, frame.seq)?;
        stage.apply_transaction(schema, &*vault.read(), &tx, frame.hash, Some(frame.location), &spans)?;
        if erase_keys {
            for change in &tx.changes {
                if matches!(change.op, ChangeOp::Erase { .. }) {
                    vault.write().destroy(&change.entity)?;
                }
            }
        }
        in_stage += 1;
        changes_in_stage += tx.changes.len();
        if in_stage >= REPLAY_BATCH || changes_in_stage >= REPLAY_BATCH_CHANGES {
            send(stage.freeze()?, &mut pending)?;
            stage = Stage::over(backend, frames, live_overlays(&mut pending));
            in_stage = 0;
            changes_in_stage = 0;
            progress(frame.seq);
        }
    }
    stage.put(keys::PROJECTION_FORMAT.to_vec(), keys::PROJECTION_VERSION.to_be_bytes().to_vec());
    send(stage.freeze()?, &mut pending)
}

/// The format the projections were built with (1 for stores from before it was recorded).
fn projection_version(backend: &dyn Backend) -> Result<u32> {
    Ok(match backend.get(keys::PROJECTION_FORMAT)? {
        Some(bytes) => u32::from_be_bytes(bytes.as_slice().try_into().unwrap_or([0; 4])),
        None => 1,
    })
}
