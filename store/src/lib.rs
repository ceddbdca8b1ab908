//! The event-sourced store: an append-only, hash-chained journal of field-level deltas and
//! the projections (current state, history, indexes, links) rebuilt from it.
//!
//! Main types: [`Store`] (open, [`Store::commit`], reads, [`Store::rebuild`],
//! [`Store::materialise`], [`Store::dry_run`] to judge transactions without storing them),
//! [`TransactionRequest`] and its [`ChangeRequest`]s, [`Committed`] and [`Rejection`], [`ReadAt`] for time travel, the [`Backend`] trait with
//! [`SledBackend`] and [`MemoryBackend`], and [`verify`] for the offline chain check.
//!
//! The journal (our own segment files, one `fdatasync` per group commit) is the only source
//! of truth; a backend holds projections and never decides durability. Writes go through two
//! threads: the writer (prepare, journal, answer) and the applier (projections, head), so
//! [`PendingCommit::wait`] returns once a transaction is readable and
//! [`PendingCommit::wait_durable`] once it is durable. This crate must never
//! know about HTTP, tokens or roles, and the journal logic must never name a backend type.

mod access_log;
mod applier;
pub mod backend;
mod codec;
mod dry_run;
mod error;
pub mod journal;
pub mod keys;
mod outcome;
pub mod owner_only;
mod prepare;
mod projection;
mod read;
mod request;
mod store;
pub mod vault;
mod verify;
mod writer;

pub use access_log::{
    verify_access_log, AccessAction, AccessEntry, AccessLog, AccessLogReport, AccessOutcome, AccessQuery, AccessRecord,
};
pub use backend::{Backend, MemoryBackend, RedbBackend, SledBackend, WriteBatch};
pub use codec::{decode_transaction, encode_transaction};
pub use dry_run::{DryRun, Judged};
pub use error::{Result, StoreError};
pub use keys::Direction;
pub use outcome::{Committed, Rejection};
pub use prepare::MAX_CHANGES;
pub use projection::{Counts, IdempotencyRecord, TxMeta};
pub use read::{AsOf, EntityHead, LinkView, ReadAt, ReadPointError, Version};
pub use request::{idempotency_namespace, new_entity_id, ChangeRequest, OpRequest, Target, TransactionRequest};
pub use store::{BackendKind, PendingCommit, Stats, Store, StoreOptions, FORMAT_VERSION};
pub use verify::{verify, VerifyReport};
pub use writer::Head;
