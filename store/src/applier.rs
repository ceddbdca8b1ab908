//! The applier: the write path's second stage. The writer sequences a group, makes it
//! durable in the journal, answers its callers and hands it here as an [`Overlay`]; this
//! thread applies it to the backend and publishes the new head, while the writer prepares
//! the next group against the overlay. Groups are applied in the order they were
//! sequenced, so the head only moves forward and never past what the backend holds.
//! [`Progress`] is how callers wait for their transaction to be readable.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};
use pole_model::EntityId;

use crate::backend::Backend;
use crate::projection::Overlay;
use crate::vault::Vault;
use crate::writer::Head;
use crate::{Result, StoreError};

/// How far the write path has got: the last durable sequence (journal synced, callers
/// answered) and the last applied one (readers see it), with a way to wait for the latter.
#[derive(Debug)]
pub struct Progress {
    durable: AtomicU64,
    applied: Mutex<u64>,
    moved: Condvar,
    failure: Mutex<Option<String>>,
}

impl Progress {
    /// Both at `seq`: what the projections hold when the store opens.
    pub fn at(seq: u64) -> Progress {
        Progress {
            durable: AtomicU64::new(seq),
            applied: Mutex::new(seq),
            moved: Condvar::new(),
            failure: Mutex::new(None),
        }
    }

    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Blocks until readers see every transaction up to `seq` (at most the durable
    /// sequence: nothing later is on its way), or applying has failed.
    pub fn wait_applied(&self, seq: u64) -> Result<()> {
        let seq = seq.min(self.durable());
        let mut applied = self.applied.lock();
        while *applied < seq {
            if let Some(reason) = self.failure() {
                return Err(StoreError::WriterStopped(reason));
            }
            self.moved.wait(&mut applied);
        }
        Ok(())
    }

    /// Why applying stopped, if it did: no later group can be applied after a failed one.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    pub(crate) fn set_durable(&self, seq: u64) {
        self.durable.store(seq, Ordering::Release);
    }

    fn set_applied(&self, seq: u64) {
        let mut applied = self.applied.lock();
        *applied = (*applied).max(seq);
        self.moved.notify_all();
    }

    fn fail(&self, reason: String) {
        self.failure.lock().get_or_insert(reason);
        // Taken so no waiter checks the failure and then sleeps through this notification.
        let _applied = self.applied.lock();
        self.moved.notify_all();
    }
}

/// Groups sent but not yet taken by the applier: one lets the writer run a group ahead
/// without letting overlays pile up in memory.
const QUEUED_GROUPS: usize = 1;

/// A sequenced group, durable in the journal, to apply.
pub struct Sequenced {
    /// Its staged projections.
    pub overlay: Arc<Overlay>,
    /// Entities erased in the group: their keys are destroyed before the projections record
    /// the erasure as applied (after a crash in between, start-up re-applies the erasure).
    pub erased: Vec<EntityId>,
    /// The head after the group.
    pub head: Head,
}

enum Task {
    Apply(Sequenced),
    /// Answered once every group sent before it is applied.
    Barrier(SyncSender<()>),
}

/// The handle the writer keeps: sending groups and waiting for them.
pub struct Applier {
    tasks: Option<SyncSender<Task>>,
    handle: Option<JoinHandle<()>>,
    progress: Arc<Progress>,
}

impl Applier {
    pub fn start(
        backend: Arc<dyn Backend>,
        vault: Arc<RwLock<Vault>>,
        head: Arc<RwLock<Head>>,
        progress: Arc<Progress>,
    ) -> Result<Applier> {
        let (tasks, queue) = mpsc::sync_channel(QUEUED_GROUPS);
        let thread = Thread { backend, vault, head, progress: Arc::clone(&progress), unapplied: Vec::new() };
        let handle = std::thread::Builder::new()
            .name("pole-applier".into())
            .spawn(move || thread.run(queue))
            .map_err(|e| StoreError::Journal(format!("cannot start the applier thread: {e}")))?;
        Ok(Applier { tasks: Some(tasks), handle: Some(handle), progress })
    }

    /// Queues a group; blocks while an earlier one is still queued.
    pub fn send(&self, group: Sequenced) -> Result<()> {
        self.sender()?.send(Task::Apply(group)).map_err(|_| self.stopped())
    }

    /// Waits until every group sent so far is applied, or fails with the applier's failure.
    pub fn drain(&self) -> Result<()> {
        let (done, wait) = mpsc::sync_channel(1);
        self.sender()?.send(Task::Barrier(done)).map_err(|_| self.stopped())?;
        wait.recv().map_err(|_| self.stopped())?;
        match self.progress.failure() {
            Some(reason) => Err(StoreError::WriterStopped(reason)),
            None => Ok(()),
        }
    }

    fn sender(&self) -> Result<&SyncSender<Task>> {
        self.tasks.as_ref().ok_or_else(|| StoreError::WriterStopped("the applier has stopped".into()))
    }

    fn stopped(&self) -> StoreError {
        StoreError::WriterStopped(self.progress.failure().unwrap_or_else(|| "the applier thread has exited".into()))
    }
}

impl Drop for Applier {
    /// Lets the applier finish every group sent, so the projections are complete when the
    /// store flushes them on close.
    fn drop(&mut self) {
        self.tasks.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

struct Thread {
    backend: Arc<dyn Backend>,
    vault: Arc<RwLock<Vault>>,
    head: Arc<RwLock<Head>>,
    progress: Arc<Progress>,
    /// Overlays that were not applied (after a failure). Kept, because the writer reads
    /// through them until it stops: a group prepared meanwhile must see them, as the journal
    /// (replayed at start-up) will.
    unapplied: Vec<Arc<Overlay>>,
}

/// Marks applying as failed if the applier thread unwinds, so no caller waits for ever on
/// a sequence that will not be applied.
struct FailOnPanic(Arc<Progress>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail("the applier thread panicked".into());
        }
    }
}

impl Thread {
    fn run(mut self, queue: Receiver<Task>) {
        let _guard = FailOnPanic(Arc::clone(&self.progress));
        for task in queue {
            match task {
                Task::Barrier(done) => {
                    let _ = done.send(());
                }
                // After a failure nothing more is applied: the journal holds it, and start-up
                // re-applies it.
                Task::Apply(group) if self.progress.failure().is_some() => self.unapplied.push(group.overlay),
                // Applied, the group is dropped here: later stages read the backend instead.
                // A panic is caught so the overlay is kept (and the failure recorded) before
                // any stage could miss it.
                Task::Apply(group) => {
                    let failure = match std::panic::catch_unwind(AssertUnwindSafe(|| self.apply(&group))) {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some("the applier panicked while applying a group".to_owned()),
                    };
                    if let Some(reason) = failure {
                        tracing::error!(error = %reason, "applying a durable group to the projections failed; the writer stops");
                        self.progress.fail(reason);
                        self.unapplied.push(group.overlay);
                    }
                }
            }
        }
    }

    fn apply(&self, group: &Sequenced) -> Result<()> {
        let batch = group.overlay.to_batch()?;
        tracing::debug!(keys = batch.len(), bytes = batch.bytes(), "projection batch");
        // Only for an erasure: an exclusive lock waits for the writer's shared one, which it
        // holds while it prepares a group and syncs the keys, and parks every reader behind it.
        if !group.erased.is_empty() {
            let mut vault = self.vault.write();
            for id in &group.erased {
                vault.destroy(id)?;
            }
        }
        self.backend.apply(batch)?;
        *self.head.write() = group.head;
        self.progress.set_applied(group.head.seq);
        Ok(())
    }
}
