//! Shared application state and configuration.

use pole_store::Store;

use crate::graphql::Graphql;
use crate::metrics::Metrics;

/// How the HTTP application behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Treat every request as the development principal (an administrator). Never on by
    /// default; the server logs a warning at start when it is.
    pub dev_principal: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest page a list or feed returns.
    pub max_page: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { dev_principal: false, max_body_bytes: 16 << 20, max_page: 1000 }
    }
}

/// What every handler can reach; built once and shared by every worker.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub graphql: Graphql,
}

impl AppState {
    pub fn new(store: Store) -> Result<Self, prometheus::Error> {
        let graphql = Graphql::build(&store, crate::graphql::LoadCounter::new()?);
        let metrics = Metrics::new()?;
        metrics.register_graphql(graphql.load_counter())?;
        Ok(AppState { store, metrics, graphql })
    }
}
