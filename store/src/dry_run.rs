//! Dry runs: transactions judged exactly as the writer judges them, against the
//! projections as they stand plus the transactions judged earlier in the same dry run, and
//! stored nowhere. A submission checked in chunks learns what each chunk would change,
//! including the entities earlier chunks would create, without a byte written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pole_audit::Hash;
use pole_model::{EntityId, EntityState, Identifier, Timestamp};

use crate::outcome::Rejection;
use crate::prepare::{prepare, Context, Keys, Prepared};
use crate::projection::Stage;
use crate::request::TransactionRequest;
use crate::store::Store;
use crate::vault::{DataKey, JustSealed};
use crate::Result;
use crate::{codec, keys, read, writer};

/// What a judged transaction would do if it were committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The changes it would make (none when everything it asks is already so).
    pub changes: usize,
    /// The ids its refs would name, for later transactions of the same dry run to use.
    pub refs: BTreeMap<String, EntityId>,
    /// The sequence of the transaction stored (or judged earlier in this dry run) under its
    /// idempotency key from the same request: it would change nothing again.
    pub replay_of: Option<u64>,
}

/// A dry run over a store ([`Store::dry_run`]). Its judged transactions are staged in
/// memory, so it grows with what it judges; it never writes to the journal, the vault or the
/// projections. Commits made meanwhile by others are seen where the projections show them.
pub struct DryRun<'s> {
    store: &'s Store,
    stage: Stage<'s>,
    /// Keys made for entities this dry run created, so their values can be read again.
    keys: HashMap<EntityId, DataKey>,
    ids: ulid::Generator,
    /// Where the next judged transaction would be sequenced.
    seq: u64,
    recorded_at: Timestamp,
}

impl std::fmt::Debug for DryRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRun").field("seq", &self.seq).field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl Store {
    /// Starts a dry run over the projections as they are now.
    pub fn dry_run(&self) -> DryRun<'_> {
        let head = *self.inner.head.read();
        DryRun {
            store: self,
            stage: Stage::new(self.inner.backend.as_ref(), &self.inner.frames),
            keys: HashMap::new(),
            ids: ulid::Generator::new(),
            seq: head.seq,
            recorded_at: head.recorded_at,
        }
    }
}

impl DryRun<'_> {
    /// Judges a transaction as the writer would and, if it would be accepted, keeps its
    /// effect for the transactions judged after it. `Ok(Err(_))` is the refusal the store
    /// would answer.
    pub fn judge(&mut self, request: &TransactionRequest) -> Result<std::result::Result<Judged, Rejection>> {
        let fingerprint = match &request.idempotency_key {
            Some(key) => {
                let fingerprint = writer::fingerprint(request)?;
                match writer::stored_under_key(&self.stage, request, key, &fingerprint)? {
                    Ok(None) => Some(fingerprint),
                    Ok(Some(record)) => {
                        return Ok(Ok(Judged { changes: 0, refs: record.refs, replay_of: Some(record.seq) }))
                    }
                    Err(rejection) => return Ok(Err(rejection)),
                }
            }
            None => None,
        };
        let schema = &self.store.inner.schema;
        let recorded_at = writer::recorded_after(self.recorded_at);
        let vault = self.store.inner.vault.read();
        let sealed = JustSealed::default();
        let mut ctx = Context {
            stage: &self.stage,
            schema,
            keys: Keys { vault: &vault, group: &self.keys, sealed: &sealed },
            ids: &mut self.ids,
            recorded_at,
        };
        let Prepared { changes, refs, new_keys, .. } = match prepare(request, &mut ctx)? {
            Ok(prepared) => prepared,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if changes.is_empty() {
            return Ok(Ok(Judged { changes: 0, refs, replay_of: None }));
        }
        self.keys.extend(new_keys);
        let tx = writer::sequence(request, self.seq + 1, recorded_at, fingerprint, refs, changes);
        let payload = codec::encode_transaction(&tx)?;
        if let Some(rejection) = writer::too_large(payload.len()) {
            return Ok(Err(rejection));
        }
        // Never written: the hash names nothing, and the stage keeps the transaction for
        // the history entries of the transactions judged after it.
        let spans = codec::change_spans(&payload, tx.seq)?;
        let tx = Arc::new(tx);
        let keys = Keys { vault: &vault, group: &self.keys, sealed: &sealed };
        self.stage.apply_transaction(schema, &keys, &tx, Hash::GENESIS, None, &spans)?;
        self.seq = tx.seq;
        self.recorded_at = recorded_at;
        Ok(Ok(Judged { changes: tx.changes.len(), refs: tx.refs.clone(), replay_of: None }))
    }

    /// An entity as it would stand after the transactions judged so far, its identifiable
    /// values opened (those of entities this dry run created with the keys it made).
    pub fn entity(&self, id: &EntityId) -> Result<Option<EntityState>> {
        let Some(state) = self.stage.entity(id)? else { return Ok(None) };
        let key = self.keys.get(id).copied().or_else(|| self.store.inner.vault.read().key(id).copied());
        Ok(Some(read::open_state(key, state)))
    }

    /// The active entities that would hold an identifier after the transactions judged so far.
    pub fn find_by_identifier(&self, identifier: &Identifier) -> Result<Vec<EntityId>> {
        let Some(prefix) = self.store.identifier_index_prefix(identifier)? else { return Ok(Vec::new()) };
        Ok(self.stage.scan_prefix(&prefix)?.iter().filter_map(|(key, _)| keys::trailing_id(key)).collect())
    }

    /// [`Store::find_by_identifier_of`] after the transactions judged so far.
    pub fn find_by_identifier_of(&self, identifier: &Identifier, contributor: Option<&str>) -> Result<Vec<EntityId>> {
        let mut own = Vec::new();
        for id in self.find_by_identifier(identifier)? {
            let mine = match contributor {
                Some(contributor) => self.stage.get(&keys::council(contributor, &id))?.is_some(),
                None => self.stage.entity(&id)?.is_some_and(|s| s.contributor().is_none()),
            };
            if mine {
                own.push(id);
            }
        }
        Ok(own)
    }
}
