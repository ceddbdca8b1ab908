//! The single writer: sequences transactions, group-commits them to the journal with one
//! `fdatasync` per group, answers each caller, then hands the group to the applier thread
//! ([`crate::applier`]), which applies it to the projections while the writer prepares the
//! next group over it.
//!
//! Steps for one group (numbered as in ARCHITECTURE.md):
//! 1. take every queued request (up to a bound), in arrival order;
//! 2. for each: check the idempotency key, prepare (validate, delta, seal) against the
//!    projections with the group's earlier transactions staged over them; a refused request
//!    is answered at once and leaves no trace;
//! 3. append the new data keys to the vault and sync it;
//! 4. frame, chain and write the group's transactions to the journal and `fdatasync` once;
//! 5. answer every caller: nothing is acknowledged before step 4 completes;
//! 6. (the applier) destroy the keys of erased entities, then apply the staged projections
//!    to the backend in one atomic batch (with the last applied sequence), and publish the
//!    new head. [`crate::PendingCommit::wait`] returns only once its transaction is applied,
//!    so a caller reads its own write; `wait_durable` returns at step 5.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;
use pole_audit::Hash;
use pole_model::{EntityId, SchemaRegistry, Timestamp, Transaction};

use crate::applier::{Applier, Progress, Sequenced};
use crate::backend::Backend;
use crate::codec;
use crate::journal::{ChangeSpan, FrameReader, JournalWriter, MAX_PAYLOAD_BYTES};
use crate::outcome::{Committed, Rejection};
use crate::prepare::{prepare, Context, Keys, Prepared};
use crate::projection::{live_overlays, IdempotencyRecord, Overlay, Stage};
use crate::request::TransactionRequest;
use crate::vault::{DataKey, JustSealed, Vault};
use crate::{keys, Result, StoreError};

/// At most this many requests, or this many changes, go into one group.
const MAX_GROUP_REQUESTS: usize = 1024;
const MAX_GROUP_CHANGES: usize = 200_000;

pub type Reply = Result<std::result::Result<Committed, Rejection>>;

pub struct Job {
    request: TransactionRequest,
    /// The request's digest when it carries an idempotency key, so a resubmission can be
    /// told from a different request under the same key.
    fingerprint: Option<String>,
    reply: SyncSender<Reply>,
}

impl Job {
    /// A job for the writer's queue. The fingerprint is taken here, on the caller's thread:
    /// for a large request it is a measurable cost the single writer need not carry.
    pub fn new(request: TransactionRequest, reply: SyncSender<Reply>) -> Result<Job> {
        let fingerprint = match &request.idempotency_key {
            Some(_) => Some(fingerprint(&request)?),
            None => None,
        };
        Ok(Job { request, fingerprint, reply })
    }
}

/// Work for the writer thread. Rebuild runs there too, so it is ordered with commits and
/// never races a group being applied.
pub enum Work {
    Commit(Box<Job>),
    Rebuild { progress: Box<dyn FnMut(u64) + Send>, reply: SyncSender<Result<()>> },
}

/// The journal's head as readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
    pub recorded_at: Timestamp,
}

pub struct Writer {
    journal: JournalWriter,
    /// Reads the changes history entries point at (late changes refold from them).
    frames: Arc<FrameReader>,
    backend: Arc<dyn Backend>,
    schema: Arc<SchemaRegistry>,
    vault: Arc<RwLock<Vault>>,
    ids: ulid::Generator,
    applier: Applier,
    progress: Arc<Progress>,
    /// The last transaction sequenced and durable; readers' head catches up with it as the
    /// applier applies each group.
    sequenced: Head,
    /// Groups handed to the applier, oldest first; the applier drops each once applied, so
    /// the writer never keeps one alive between groups.
    pending: Vec<Weak<Overlay>>,
}

struct Accepted {
    tx: Arc<Transaction>,
    payload: Vec<u8>,
    spans: Vec<ChangeSpan>,
    erased: Vec<EntityId>,
    reply: SyncSender<Reply>,
}

impl Writer {
    /// A writer over an opened journal, with its applier thread started.
    pub fn new(
        journal: JournalWriter,
        frames: Arc<FrameReader>,
        backend: Arc<dyn Backend>,
        schema: Arc<SchemaRegistry>,
        vault: Arc<RwLock<Vault>>,
        head: Arc<RwLock<Head>>,
        progress: Arc<Progress>,
    ) -> Result<Writer> {
        let sequenced = *head.read();
        let applier = Applier::start(Arc::clone(&backend), Arc::clone(&vault), head, Arc::clone(&progress))?;
        Ok(Writer {
            journal,
            frames,
            backend,
            schema,
            vault,
            ids: ulid::Generator::new(),
            applier,
            progress,
            sequenced,
            pending: Vec::new(),
        })
    }

    /// Runs until every sender is dropped, then lets the applier finish.
    pub fn run(mut self, work: Receiver<Work>) {
        let mut next = None;
        loop {
            let first = match next.take() {
                Some(first) => first,
                None => match work.recv() {
                    Ok(first) => first,
                    Err(_) => return,
                },
            };
            let result = match first {
                Work::Rebuild { progress, reply } => {
                    let result = self.rebuild(progress);
                    let failed = result.as_ref().err().map(ToString::to_string);
                    let _ = reply.send(result);
                    match failed {
                        Some(reason) => Err(StoreError::WriterStopped(reason)),
                        None => Ok(()),
                    }
                }
                Work::Commit(job) => {
                    // Boxed and sized once: growing a group of whole jobs moved each of them
                    // into fresh memory several times over.
                    let mut n_changes = job.request.changes.len();
                    let mut group = Vec::with_capacity(MAX_GROUP_REQUESTS);
                    group.push(job);
                    while group.len() < MAX_GROUP_REQUESTS && n_changes < MAX_GROUP_CHANGES {
                        match work.try_recv() {
                            Ok(Work::Commit(job)) => {
                                n_changes += job.request.changes.len();
                                group.push(job);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group)
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "the writer stops after a failure");
                // Later requests are answered with the failure until the store is reopened.
                let reason = e.to_string();
                for item in next.take().into_iter().chain(work.iter()) {
                    match item {
                        Work::Commit(job) => {
                            let _ = job.reply.send(Err(StoreError::WriterStopped(reason.clone())));
                        }
                        Work::Rebuild { reply, .. } => {
                            let _ = reply.send(Err(StoreError::WriterStopped(reason.clone())));
                        }
                    }
                }
                return;
            }
        }
    }

    fn rebuild(&mut self, progress: Box<dyn FnMut(u64) + Send>) -> Result<()> {
        self.applier.drain()?;
        self.pending.clear();
        self.backend.clear()?;
        crate::store::catch_up(&self.frames, self.backend.as_ref(), &self.schema, &self.vault, false, 0, progress)?;
        self.backend.flush()
    }

    // The jobs arrive boxed from the queue; unboxing them into the group is the copy the box saves.
    #[allow(clippy::vec_box)]
    fn commit_group(&mut self, group: Vec<Box<Job>>) -> Result<()> {
        if let Some(reason) = self.progress.failure() {
            for job in group {
                let _ = job.reply.send(Err(StoreError::WriterStopped(reason.clone())));
            }
            return Err(StoreError::WriterStopped(reason));
        }
        let backend = Arc::clone(&self.backend);
        let frame_reader = Arc::clone(&self.frames);
        let mut stage = Stage::over(backend.as_ref(), &frame_reader, live_overlays(&mut self.pending));
        stage.reserve(group.iter().map(|job| job.request.changes.len()).sum());
        let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
        // Answers that name this group's state wait until the group is durable.
        let mut deferred: Vec<(SyncSender<Reply>, Committed)> = Vec::new();
        // About one new key a transaction when people are being registered.
        let mut group_keys: HashMap<EntityId, DataKey> = HashMap::with_capacity(group.len());
        let mut new_keys: Vec<(EntityId, DataKey)> = Vec::with_capacity(group.len());
        let mut last = self.sequenced;
        let journal_head = self.journal.head();
        let mut prev_hash = journal_head.hash;
        let vault = Arc::clone(&self.vault);
        let just_sealed = JustSealed::default();
        {
            let vault = vault.read();
            for job in group {
                let keys = Keys { vault: &vault, group: &group_keys, sealed: &just_sealed };
                match self.prepare_one(&mut stage, keys, &job, last)? {
                    Ok(Outcome::Replayed(committed)) => deferred.push((job.reply, committed)),
                    Ok(Outcome::NoChange) => {
                        let committed = Committed {
                            seq: last.seq,
                            recorded_at: last.recorded_at,
                            hash: last.hash,
                            changes: 0,
                            refs: BTreeMap::new(),
                            replayed: false,
                        };
                        deferred.push((job.reply, committed));
                    }
                    Ok(Outcome::Sequenced { tx, payload, spans, new_keys: keys_of_tx, erased }) => {
                        let hash = pole_audit::chain_hash(pole_audit::Chain::Journal, &prev_hash, &payload);
                        prev_hash = hash;
                        for (id, key) in &keys_of_tx {
                            group_keys.insert(id.clone(), *key);
                        }
                        new_keys.extend(keys_of_tx);
                        // Not written yet: the stage reads its history entries from `tx`
                        // until `Stage::written_at` records where it was written.
                        let tx = Arc::new(*tx);
                        stage.apply_transaction(
                            &self.schema,
                            &Keys { vault: &vault, group: &group_keys, sealed: &just_sealed },
                            &tx,
                            hash,
                            None,
                            &spans,
                        )?;
                        last = Head { seq: tx.seq, hash, recorded_at: tx.recorded_at };
                        accepted.push(Accepted { tx, payload, spans, erased, reply: job.reply });
                    }
                    Err(rejection) => {
                        let _ = job.reply.send(Ok(Err(rejection)));
                    }
                }
            }
        }
        if accepted.is_empty() {
            for (reply, committed) in deferred {
                let _ = reply.send(Ok(Ok(committed)));
            }
            return Ok(());
        }
        // Synced under a shared lock: reads that open sealed values or compute index tokens
        // go on while the disk works; only adding the keys in memory excludes them, and only
        // when there are keys (an exclusive lock parks every reader behind it).
        if !new_keys.is_empty() {
            vault.read().append(&new_keys)?;
            vault.write().insert(&new_keys);
        }
        let payloads: Vec<&[u8]> = accepted.iter().map(|a| a.payload.as_slice()).collect();
        let frames = match self.journal.append(&payloads) {
            Ok(frames) => frames,
            Err(e) => {
                for a in accepted {
                    let _ = a.reply.send(Err(StoreError::WriterStopped(e.to_string())));
                }
                return Err(e);
            }
        };
        // Now durable. Record where each frame landed, then hand the projections over.
        for (a, frame) in accepted.iter().zip(&frames) {
            debug_assert_eq!(a.tx.seq, frame.seq);
            stage.written_at(&a.tx, frame.location, &a.spans)?;
        }
        let overlay = Arc::new(stage.freeze()?);
        self.pending.push(Arc::downgrade(&overlay));
        self.sequenced = last;
        self.progress.set_durable(last.seq);
        let mut erased = Vec::new();
        for (a, frame) in accepted.into_iter().zip(frames) {
            // The stage that shared the transaction is frozen and gone: the refs move out.
            let (recorded_at, changes) = (a.tx.recorded_at, a.tx.changes.len());
            let refs = Arc::try_unwrap(a.tx).map_or_else(|tx| tx.refs.clone(), |tx| tx.refs);
            let committed = Committed { seq: frame.seq, recorded_at, hash: frame.hash, changes, refs, replayed: false };
            erased.extend(a.erased);
            let _ = a.reply.send(Ok(Ok(committed)));
        }
        for (reply, committed) in deferred {
            let _ = reply.send(Ok(Ok(committed)));
        }
        let erasing = !erased.is_empty();
        self.applier.send(Sequenced { overlay, erased, head: last })?;
        if erasing {
            // The erased entities' keys must be gone before another group is prepared, or it
            // could open their values again.
            self.applier.drain()?;
        }
        Ok(())
    }

    fn prepare_one(
        &mut self,
        stage: &mut Stage<'_>,
        keys: Keys<'_>,
        job: &Job,
        last: Head,
    ) -> Result<std::result::Result<Outcome, Rejection>> {
        let request = &job.request;
        let fingerprint = match (&request.idempotency_key, &job.fingerprint) {
            (Some(key), Some(fingerprint)) => {
                let earlier = match stored_under_key(stage, request, key, fingerprint)? {
                    Ok(earlier) => earlier,
                    Err(rejection) => return Ok(Err(rejection)),
                };
                if let Some(record) = earlier {
                    let meta = stage.get(&keys::transaction(record.seq))?.ok_or_else(|| {
                        StoreError::Journal(format!("idempotency key {key:?} names missing seq {}", record.seq))
                    })?;
                    let meta: crate::projection::TxMeta = codec::decode(&meta)?;
                    return Ok(Ok(Outcome::Replayed(Committed {
                        seq: record.seq,
                        recorded_at: meta.recorded_at,
                        hash: meta.hash,
                        changes: record.changes,
                        refs: record.refs,
                        replayed: true,
                    })));
                }
                Some(fingerprint.clone())
            }
            _ => None,
        };
        let recorded_at = recorded_after(last.recorded_at);
        let mut ctx = Context { stage, schema: &self.schema, keys, ids: &mut self.ids, recorded_at };
        let Prepared { changes, refs, new_keys, erased } = match prepare(request, &mut ctx)? {
            Ok(prepared) => prepared,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if changes.is_empty() {
            return Ok(Ok(Outcome::NoChange));
        }
        let tx = sequence(request, last.seq + 1, recorded_at, fingerprint, refs, changes);
        let payload = crate::codec::encode_transaction(&tx)?;
        if let Some(rejection) = too_large(payload.len()) {
            return Ok(Err(rejection));
        }
        let spans = crate::codec::change_spans(&payload, tx.seq)?;
        Ok(Ok(Outcome::Sequenced { tx: Box::new(tx), payload, spans, new_keys, erased }))
    }
}

/// The transaction stored (or staged) under an idempotency key from the same request, if
/// any; refused if the key is malformed or names a different request.
pub(crate) fn stored_under_key(
    stage: &Stage<'_>,
    request: &TransactionRequest,
    key: &str,
    fingerprint: &str,
) -> Result<std::result::Result<Option<IdempotencyRecord>, Rejection>> {
    if key.is_empty() || key.len() > 256 {
        return Ok(Err(Rejection::transaction("an idempotency key is 1 to 256 characters")));
    }
    let namespace = crate::idempotency_namespace(request.source.council.as_deref(), &request.actor);
    let Some(bytes) = stage.get(&keys::idempotency(&namespace, key))? else { return Ok(Ok(None)) };
    let record: IdempotencyRecord = codec::decode(&bytes)?;
    if record.fingerprint != fingerprint {
        return Ok(Err(Rejection::IdempotencyKeyReused { key: key.to_owned(), seq: record.seq }));
    }
    Ok(Ok(Some(record)))
}

/// A request's idempotency fingerprint: the digest of the request as it was sent, so a
/// resubmission can be told from a different request under the same key.
pub(crate) fn fingerprint(request: &TransactionRequest) -> Result<String> {
    Ok(Hash::of(&serde_json::to_vec(request)?).to_hex())
}

/// When a transaction after one recorded at `last` is recorded: now, or a microsecond after
/// `last` if the wall clock has not passed it (recorded time strictly increases).
pub(crate) fn recorded_after(last: Timestamp) -> Timestamp {
    let now = Timestamp::now();
    if now > last {
        now
    } else {
        Timestamp::from_micros(last.micros() + 1)
    }
}

/// The transaction a prepared request makes, sequenced as `seq`.
pub(crate) fn sequence(
    request: &TransactionRequest,
    seq: u64,
    recorded_at: Timestamp,
    fingerprint: Option<String>,
    refs: BTreeMap<String, EntityId>,
    changes: Vec<pole_model::Change>,
) -> Transaction {
    Transaction {
        seq,
        recorded_at,
        actor: request.actor.clone(),
        role: request.role.clone(),
        source: request.source.clone(),
        idempotency_key: request.idempotency_key.clone(),
        reason: request.reason.clone(),
        request_fingerprint: fingerprint,
        refs,
        changes,
    }
}

/// The refusal of a transaction whose journal payload is `bytes` long, if that is over the
/// journal's limit.
pub(crate) fn too_large(bytes: usize) -> Option<Rejection> {
    (bytes > MAX_PAYLOAD_BYTES).then(|| {
        Rejection::transaction(format!(
            "the transaction encodes to {bytes} bytes, over the limit of {MAX_PAYLOAD_BYTES}; split it"
        ))
    })
}

enum Outcome {
    Replayed(Committed),
    NoChange,
    Sequenced {
        tx: Box<Transaction>,
        payload: Vec<u8>,
        spans: Vec<ChangeSpan>,
        new_keys: Vec<(EntityId, DataKey)>,
        erased: Vec<EntityId>,
    },
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::backend::{KvIter, MemoryBackend, WriteBatch};
    use crate::request::{ChangeRequest, Target};

    /// A backend whose batches take a while to apply, so the writer is sure to prepare the
    /// next group while the applier still holds the previous one, and which can be made to
    /// fail (or panic) on its n-th batch.
    #[derive(Default)]
    struct TestBackend {
        inner: MemoryBackend,
        applies: AtomicUsize,
        delay: Duration,
        fail_on: Option<usize>,
        panics: bool,
    }

    impl Backend for TestBackend {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.inner.get(key)
        }
        fn scan_prefix<'a>(&'a self, prefix: &[u8]) -> KvIter<'a> {
            self.inner.scan_prefix(prefix)
        }
        fn range<'a>(&'a self, start: &[u8], end: &[u8]) -> KvIter<'a> {
            self.inner.range(start, end)
        }
        fn last_at_or_before(&self, prefix: &[u8], upper: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
            self.inner.last_at_or_before(prefix, upper)
        }
        fn iter_all<'a>(&'a self) -> KvIter<'a> {
            self.inner.iter_all()
        }
        fn apply(&self, batch: WriteBatch) -> Result<()> {
            std::thread::sleep(self.delay);
            let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail_on == Some(n) {
                assert!(!self.panics, "batch {n} panics, as the test asked");
                return Err(StoreError::Backend(format!("batch {n} fails, as the test asked")));
            }
            self.inner.apply(batch)
        }
        fn clear(&self) -> Result<()> {
            self.inner.clear()
        }
        fn flush(&self) -> Result<()> {
            self.inner.flush()
        }
        fn snapshot(&self) -> Result<Box<dyn crate::backend::Snapshot + '_>> {
            Ok(crate::backend::live(self))
        }
    }

    /// A writer running over `backend`, with what a test looks at.
    struct Running {
        work: mpsc::Sender<Work>,
        head: Arc<RwLock<Head>>,
        progress: Arc<Progress>,
        thread: std::thread::JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    fn start(backend: Arc<TestBackend>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = JournalWriter::open(&dir.path().join("journal")).unwrap();
        let vault = Arc::new(RwLock::new(Vault::open(&dir.path().join("keys")).unwrap()));
        let schema = Arc::new(pole_model::default_registry().unwrap());
        let head = Arc::new(RwLock::new(Head { seq: 0, hash: Hash::GENESIS, recorded_at: Timestamp::from_micros(0) }));
        let progress = Arc::new(Progress::at(0));
        let frames = Arc::new(FrameReader::new(&dir.path().join("journal")));
        let writer =
            Writer::new(journal, frames, backend, schema, vault, Arc::clone(&head), Arc::clone(&progress)).unwrap();
        let (work, queue) = mpsc::channel();
        let thread = std::thread::spawn(move || writer.run(queue));
        Running { work, head, progress, thread, _dir: dir }
    }

    fn address(line1: &str) -> ChangeRequest {
        ChangeRequest::create("a", "address").with("line1", line1).with("postcode", "LS1 4AP")
    }

    fn request(changes: Vec<ChangeRequest>) -> TransactionRequest {
        TransactionRequest {
            actor: "tester".into(),
            role: "admin".into(),
            source: pole_model::Source { council: Some("305".into()), ..pole_model::Source::default() },
            idempotency_key: None,
            reason: None,
            changes,
        }
    }

    fn submit(work: &mpsc::Sender<Work>, changes: Vec<ChangeRequest>) -> Receiver<Reply> {
        let (reply, answer) = mpsc::sync_channel(1);
        work.send(Work::Commit(Box::new(Job::new(request(changes), reply).unwrap()))).unwrap();
        answer
    }

    #[test]
    fn each_group_is_judged_against_the_groups_the_applier_has_not_applied_yet() {
        let backend = Arc::new(TestBackend { delay: Duration::from_millis(15), ..TestBackend::default() });
        let Running { work, head, progress, thread, _dir } = start(Arc::clone(&backend));

        let created = submit(&work, vec![address("1 Row")]).recv().unwrap().unwrap().unwrap();
        let id = created.refs["a"].clone();
        // Sent one by one and never waited for: while the applier sleeps on a batch, the
        // writer takes what has queued as the next group, each change expecting the version
        // the one before it made.
        let answers: Vec<_> = (0..40u64)
            .map(|i| {
                let update = ChangeRequest::update(Target::Entity(id.clone())).with("line1", format!("{i} Row"));
                let answer = submit(&work, vec![update.expecting(i + 1)]);
                std::thread::sleep(Duration::from_millis(2));
                answer
            })
            .collect();
        for (i, answer) in answers.into_iter().enumerate() {
            match answer.recv().unwrap().unwrap() {
                Ok(committed) => {
                    assert_eq!(committed.seq, i as u64 + 2);
                    assert!(progress.durable() >= committed.seq, "answered before it was durable");
                    progress.wait_applied(committed.seq).unwrap();
                    assert!(head.read().seq >= committed.seq, "applied, yet the head does not show it");
                }
                Err(rejection) => panic!("update {i} was refused: {rejection}"),
            }
        }
        drop(work);
        thread.join().unwrap();
        let applies = backend.applies.load(Ordering::SeqCst);
        assert!(applies > 2 && applies < 41, "the updates went in several groups, not one or one each: {applies}");
        let bytes = backend.get(&keys::entity(&id)).unwrap().unwrap();
        let state: pole_model::EntityState = codec::decode_state(&id, &bytes).unwrap();
        assert_eq!(state.version, 41);
    }

    #[test]
    fn a_failed_apply_reaches_every_waiter_and_stops_the_writer() {
        for panics in [false, true] {
            let backend = Arc::new(TestBackend { fail_on: Some(2), panics, ..TestBackend::default() });
            let Running { work, head, progress, thread, _dir } = start(backend);
            let first = submit(&work, vec![address("1 Row")]).recv().unwrap().unwrap().unwrap();
            progress.wait_applied(first.seq).unwrap();
            // Durable, so answered; its projections then fail to apply.
            let second = submit(&work, vec![address("2 Row")]).recv().unwrap().unwrap().unwrap();
            let failure = progress.wait_applied(second.seq).unwrap_err();
            assert!(matches!(failure, StoreError::WriterStopped(_)), "{failure}");
            assert_eq!(head.read().seq, first.seq, "the head stays at the last applied group");
            let third = submit(&work, vec![address("3 Row")]).recv().unwrap();
            assert!(matches!(third, Err(StoreError::WriterStopped(_))), "panics: {panics}, {third:?}");
            drop(work);
            thread.join().unwrap();
        }
    }
}
