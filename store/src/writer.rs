//! The single writer: sequences transactions, group-commits them to the journal with one
//! `fdatasync` per group, then applies them to the projections and answers each caller.
//!
//! Steps for one group (numbered as in ARCHITECTURE.md):
//! 1. take every queued request (up to a bound), in arrival order;
//! 2. for each: check the idempotency key, prepare (validate, delta, seal) against the
//!    projections with the group's earlier transactions staged over them; a refused request
//!    is answered at once and leaves no trace;
//! 3. append the new data keys to the vault and sync it;
//! 4. frame, chain and write the group's transactions to the journal and `fdatasync` once;
//! 5. destroy the keys of erased entities, then apply the staged projections to the backend
//!    in one atomic batch (with the last applied sequence), and publish the new head;
//! 6. answer every caller. Nothing is acknowledged before step 4 completes.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use parking_lot::RwLock;
use pole_audit::Hash;
use pole_model::{EntityId, SchemaRegistry, Timestamp, Transaction};

use crate::backend::Backend;
use crate::codec;
use crate::journal::{JournalWriter, MAX_PAYLOAD_BYTES};
use crate::outcome::{Committed, Rejection};
use crate::prepare::{prepare, Context, Keys, Prepared};
use crate::projection::{IdempotencyRecord, Stage};
use crate::request::TransactionRequest;
use crate::vault::{DataKey, Vault};
use crate::{keys, Result, StoreError};

/// At most this many requests, or this many changes, go into one group.
const MAX_GROUP_REQUESTS: usize = 1024;
const MAX_GROUP_CHANGES: usize = 200_000;

pub type Reply = Result<std::result::Result<Committed, Rejection>>;

pub struct Job {
    pub request: TransactionRequest,
    pub reply: SyncSender<Reply>,
}

/// Work for the writer thread. Rebuild runs there too, so it is ordered with commits and
/// never races a group being applied.
pub enum Work {
    Commit(Job),
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
    pub journal: JournalWriter,
    pub backend: Arc<dyn Backend>,
    pub schema: Arc<SchemaRegistry>,
    pub vault: Arc<RwLock<Vault>>,
    pub head: Arc<RwLock<Head>>,
    pub ids: ulid::Generator,
}

struct Accepted {
    tx: Transaction,
    payload: Vec<u8>,
    erased: Vec<EntityId>,
    reply: SyncSender<Reply>,
}

impl Writer {
    /// Runs until every sender is dropped.
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
                    let mut group = vec![job];
                    let mut n_changes = group[0].request.changes.len();
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
        self.backend.clear()?;
        crate::store::catch_up(
            self.journal.dir(),
            self.backend.as_ref(),
            &self.schema,
            &self.vault,
            false,
            0,
            progress,
        )?;
        self.backend.flush()
    }

    fn commit_group(&mut self, group: Vec<Job>) -> Result<()> {
        let backend = Arc::clone(&self.backend);
        let mut stage = Stage::new(backend.as_ref());
        let mut accepted: Vec<Accepted> = Vec::with_capacity(group.len());
        // Answers that name this group's state wait until the group is durable.
        let mut deferred: Vec<(SyncSender<Reply>, Committed)> = Vec::new();
        let mut group_keys: HashMap<EntityId, DataKey> = HashMap::new();
        let mut new_keys: Vec<(EntityId, DataKey)> = Vec::new();
        let mut last = *self.head.read();
        let journal_head = self.journal.head();
        let mut prev_hash = journal_head.hash;
        let vault = Arc::clone(&self.vault);
        {
            let vault = vault.read();
            for job in group {
                match self.prepare_one(&mut stage, &vault, &group_keys, &job.request, last)? {
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
                    Ok(Outcome::Sequenced { tx, payload, new_keys: keys_of_tx, erased }) => {
                        let hash = pole_audit::chain_hash(pole_audit::Chain::Journal, &prev_hash, &payload);
                        prev_hash = hash;
                        for (id, key) in &keys_of_tx {
                            group_keys.insert(id.clone(), *key);
                        }
                        new_keys.extend(keys_of_tx);
                        // The location is filled in after the write; projections of later
                        // transactions in the group never read it.
                        stage.apply_transaction(
                            &self.schema,
                            &Keys { vault: &vault, group: &group_keys },
                            &tx,
                            hash,
                            crate::journal::FrameLocation { segment: 0, offset: 0 },
                        )?;
                        last = Head { seq: tx.seq, hash, recorded_at: tx.recorded_at };
                        accepted.push(Accepted { tx: *tx, payload, erased, reply: job.reply });
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
        vault.write().add(&new_keys)?;
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
        // Now durable. Record where each frame landed, then publish the projections.
        for (a, frame) in accepted.iter().zip(&frames) {
            debug_assert_eq!(a.tx.seq, frame.seq);
            let key = keys::transaction(frame.seq);
            if let Some(bytes) = stage.get(&key)? {
                let mut meta: crate::projection::TxMeta = codec::decode(&bytes)?;
                meta.location = frame.location;
                stage.put(key, codec::encode(&meta)?);
            }
        }
        let batch = stage.into_batch()?;
        tracing::debug!(transactions = accepted.len(), keys = batch.len(), bytes = batch.bytes(), "projection batch");
        // Keys of erased entities go before the projections record the erasure as applied:
        // after a crash in between, start-up re-applies the erasure and finds no key left;
        // the other order could leave a key behind for good.
        {
            let mut vault = vault.write();
            for a in &accepted {
                for id in &a.erased {
                    vault.destroy(id)?;
                }
            }
        }
        self.backend.apply(batch)?;
        *self.head.write() = last;
        for (a, frame) in accepted.into_iter().zip(frames) {
            let committed = Committed {
                seq: frame.seq,
                recorded_at: a.tx.recorded_at,
                hash: frame.hash,
                changes: a.tx.changes.len(),
                refs: a.tx.refs.clone(),
                replayed: false,
            };
            let _ = a.reply.send(Ok(Ok(committed)));
        }
        for (reply, committed) in deferred {
            let _ = reply.send(Ok(Ok(committed)));
        }
        Ok(())
    }

    fn prepare_one(
        &mut self,
        stage: &mut Stage<'_>,
        vault: &Vault,
        group_keys: &HashMap<EntityId, DataKey>,
        request: &TransactionRequest,
        last: Head,
    ) -> Result<std::result::Result<Outcome, Rejection>> {
        let fingerprint = match &request.idempotency_key {
            Some(key) => {
                if key.is_empty() || key.len() > 256 {
                    return Ok(Err(Rejection::transaction("an idempotency key is 1 to 256 characters")));
                }
                let fingerprint = Hash::of(&serde_json::to_vec(request)?).to_hex();
                if let Some(bytes) = stage.get(&keys::idempotency(key))? {
                    let record: IdempotencyRecord = codec::decode(&bytes)?;
                    if record.fingerprint != fingerprint {
                        return Ok(Err(Rejection::IdempotencyKeyReused { key: key.clone(), seq: record.seq }));
                    }
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
                Some(fingerprint)
            }
            None => None,
        };
        // Strictly increasing recorded time, whatever the wall clock does.
        let now = Timestamp::now();
        let recorded_at =
            if now > last.recorded_at { now } else { Timestamp::from_micros(last.recorded_at.micros() + 1) };
        let mut ctx = Context {
            stage,
            schema: &self.schema,
            keys: Keys { vault, group: group_keys },
            ids: &mut self.ids,
            recorded_at,
        };
        let Prepared { changes, refs, new_keys, erased } = match prepare(request, &mut ctx)? {
            Ok(prepared) => prepared,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if changes.is_empty() {
            return Ok(Ok(Outcome::NoChange));
        }
        let tx = Transaction {
            seq: last.seq + 1,
            recorded_at,
            actor: request.actor.clone(),
            role: request.role.clone(),
            source: request.source.clone(),
            idempotency_key: request.idempotency_key.clone(),
            reason: request.reason.clone(),
            request_fingerprint: fingerprint,
            refs,
            changes,
        };
        let payload = crate::codec::encode_transaction(&tx)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Ok(Err(Rejection::transaction(format!(
                "the transaction encodes to {} bytes, over the limit of {MAX_PAYLOAD_BYTES}; split it",
                payload.len()
            ))));
        }
        Ok(Ok(Outcome::Sequenced { tx: Box::new(tx), payload, new_keys, erased }))
    }
}

enum Outcome {
    Replayed(Committed),
    NoChange,
    Sequenced { tx: Box<Transaction>, payload: Vec<u8>, new_keys: Vec<(EntityId, DataKey)>, erased: Vec<EntityId> },
}
