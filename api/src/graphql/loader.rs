//! Batched reads for the traversal. A query that walks 100 people's events and those events'
//! locations asks for hundreds of entities and link lists; the resolvers ask the request's
//! [`DataLoader`] instead of the service directly, and the loader answers every key asked
//! for within one tick with a single trip to the blocking pool. The number of such batches
//! depends on the query's shape (its levels), not on how many items each level holds.
//!
//! Each key still goes through the same `service` function as a single read (one rule),
//! carrying its own read point, and the loader holds the request's [`Caller`] so that
//! scoping by caller applies to batched reads exactly as to single ones. A loader lives for
//! one request (or one subscription connection) and keeps no cache, so no answer outlives
//! the request that read it or crosses callers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use pole_store::Store;
use prometheus::IntCounter;

use crate::access::Caller;
use crate::error::ApiError;
use crate::service;
use crate::views::{EntityView, HistoryView, LinksView};

/// One key's outcome: shared, because the loader hands the same answer to every resolver
/// that asked for the key.
pub(crate) type Loaded<T> = Result<Arc<T>, Arc<ApiError>>;

/// How many batches the loaders ran and how many keys they read, since the process started.
/// Counted in the loader (not the store), so the figure is exactly what GraphQL asked for;
/// `/metrics` exports it as `pole_graphql_batches_total` and `pole_graphql_batch_keys_total`.
#[derive(Debug)]
pub struct LoadCounter {
    batches: IntCounter,
    keys: IntCounter,
}

/// A reading of [`LoadCounter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadCounts {
    /// Trips to the blocking pool, each reading every key asked for in one tick.
    pub batches: u64,
    /// Keys read (entities, link lists, histories).
    pub keys: u64,
}

impl LoadCounter {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(LoadCounter {
            batches: IntCounter::new("graphql_batches_total", "Batched reads made by GraphQL data loaders")?,
            keys: IntCounter::new("graphql_batch_keys_total", "Keys read by GraphQL data loaders")?,
        })
    }

    pub fn counts(&self) -> LoadCounts {
        LoadCounts { batches: self.batches.get(), keys: self.keys.get() }
    }

    /// Adds the counters to a Prometheus registry.
    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.batches.clone()))?;
        registry.register(Box::new(self.keys.clone()))
    }
}

/// An entity at a read point (the service's `as_of` and `valid_at` parameters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EntityKey {
    pub id: String,
    pub as_of: Option<String>,
    pub valid_at: Option<String>,
}

/// An entity's links of one direction and role at a read point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LinksKey {
    pub id: String,
    pub direction: Option<String>,
    pub role: Option<String>,
    pub as_of: Option<String>,
    pub valid_at: Option<String>,
}

/// An entity's whole history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HistoryKey(pub String);

/// The loader of one request.
pub(crate) struct StoreLoader {
    store: Store,
    caller: Caller,
    counter: Arc<LoadCounter>,
}

/// The request's data loader.
pub(crate) type Loaders = DataLoader<StoreLoader>;

/// A loader for one request by `caller`, counting into `counter`.
pub(crate) fn loaders(store: Store, caller: Caller, counter: Arc<LoadCounter>) -> Loaders {
    // Batches run as tasks on the caller's runtime (actix's: one thread per worker); their
    // store work goes to the blocking pool. No delay: a batch task cannot run before the
    // request's task yields, and by then every sibling field of the level (resolved together
    // in one poll) has asked for its key; waiting longer would only add latency per level.
    DataLoader::new(StoreLoader { store, caller, counter }, actix_web::rt::spawn).delay(std::time::Duration::ZERO)
}

impl StoreLoader {
    /// Reads every key with `read` in one task on the blocking pool.
    async fn batch<K, T>(
        &self,
        keys: &[K],
        read: fn(&Store, &Caller, &K) -> Result<T, ApiError>,
    ) -> Result<HashMap<K, Loaded<T>>, Arc<ApiError>>
    where
        K: Clone + Eq + Hash + Send + 'static,
        T: Send + Sync + 'static,
    {
        self.counter.batches.inc();
        self.counter.keys.inc_by(keys.len() as u64);
        let (store, caller, keys) = (self.store.clone(), self.caller.clone(), keys.to_vec());
        actix_web::web::block(move || {
            keys.into_iter()
                .map(|key| {
                    let loaded = read(&store, &caller, &key).map(Arc::new).map_err(Arc::new);
                    (key, loaded)
                })
                .collect()
        })
        .await
        .map_err(|e| Arc::new(ApiError::Internal(e.to_string())))
    }
}

impl Loader<EntityKey> for StoreLoader {
    type Value = Loaded<EntityView>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[EntityKey]) -> Result<HashMap<EntityKey, Self::Value>, Self::Error> {
        self.batch(keys, |store, caller, key| {
            service::entity(store, caller, &key.id, key.as_of.as_deref(), key.valid_at.as_deref())
        })
        .await
    }
}

impl Loader<LinksKey> for StoreLoader {
    type Value = Loaded<LinksView>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[LinksKey]) -> Result<HashMap<LinksKey, Self::Value>, Self::Error> {
        self.batch(keys, |store, caller, key| {
            service::links(
                store,
                caller,
                &key.id,
                key.direction.as_deref(),
                key.role.as_deref(),
                key.as_of.as_deref(),
                key.valid_at.as_deref(),
            )
        })
        .await
    }
}

impl Loader<HistoryKey> for StoreLoader {
    type Value = Loaded<HistoryView>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[HistoryKey]) -> Result<HashMap<HistoryKey, Self::Value>, Self::Error> {
        self.batch(keys, |store, caller, key| service::history(store, caller, &key.0)).await
    }
}
