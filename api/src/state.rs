//! Shared application state and configuration.

use std::sync::Arc;

use pole_store::Store;

use crate::access::AccessControl;

use crate::graphql::Graphql;
use crate::metrics::Metrics;

/// How the HTTP application behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest page a list or feed returns.
    pub max_page: usize,
    /// Largest file `POST /v1/ingest/{format}` accepts.
    pub max_ingest_bytes: usize,
    /// Whether `/metrics` answers without a token (it shows counts, no records); when
    /// false it needs an administrator's or an auditor's.
    pub metrics_public: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { max_body_bytes: 16 << 20, max_page: 1000, max_ingest_bytes: 256 << 20, metrics_public: true }
    }
}

/// What every handler can reach; built once and shared by every worker.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub graphql: Graphql,
    pub access: Arc<AccessControl>,
}

impl AppState {
    pub fn new(store: Store, access: AccessControl) -> Result<Self, prometheus::Error> {
        let graphql = Graphql::build(&store, crate::graphql::LoadCounter::new()?);
        let metrics = Metrics::new()?;
        metrics.register_graphql(graphql.load_counter())?;
        Ok(AppState { store, metrics, graphql, access: Arc::new(access) })
    }
}
