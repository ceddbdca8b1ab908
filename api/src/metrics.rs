//! `GET /metrics` in the Prometheus text format: requests and their latency by route and
//! status, the journal head, and how far the projections trail it.

use actix_web::{web, HttpResponse};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::state::AppState;

/// The application's metrics; one per app, shared by every worker.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    journal_head: IntGauge,
    transactions: IntGauge,
    entities: IntGauge,
    lag: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("pole".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            &["method", "route"],
        )?;
        let journal_head = IntGauge::new("journal_head_seq", "Sequence of the last committed transaction")?;
        let transactions = IntGauge::new("projection_transactions", "Transactions applied to the projections")?;
        let entities = IntGauge::new("entities", "Entities in the store")?;
        let lag = IntGauge::new(
            "projection_lag_transactions",
            "Transactions in the journal not yet applied to the projections",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(journal_head.clone()))?;
        registry.register(Box::new(transactions.clone()))?;
        registry.register(Box::new(entities.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(Metrics { registry, requests, latency, journal_head, transactions, entities, lag })
    }

    /// Adds GraphQL's batched-read counters.
    pub fn register_graphql(&self, loads: &crate::graphql::LoadCounter) -> Result<(), prometheus::Error> {
        loads.register(&self.registry)
    }

    /// Records one answered request under its route pattern (never the raw path, whose ids
    /// would make every request a new series).
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests.with_label_values(&[method, route, &status.to_string()]).inc();
        self.latency.with_label_values(&[method, route]).observe(seconds);
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(
    state: web::Data<AppState>,
    config: web::Data<crate::state::ApiConfig>,
    request: actix_web::HttpRequest,
) -> HttpResponse {
    if !config.metrics_public {
        // Counts reveal no record, but a deployment may still want them behind a token.
        use actix_web::FromRequest as _;
        let caller = crate::access::Caller::extract(&request).await;
        if let Err(e) = caller.and_then(|c| c.require_auditor()) {
            return actix_web::ResponseError::error_response(&e);
        }
    }
    let metrics = &state.metrics;
    let store = state.store.clone();
    let stats = web::block(move || store.stats()).await;
    if let Ok(Ok(stats)) = stats {
        metrics.journal_head.set(stats.head_seq as i64);
        metrics.transactions.set(stats.transactions as i64);
        metrics.entities.set(stats.entities as i64);
        metrics.lag.set(stats.head_seq.saturating_sub(stats.transactions) as i64);
    }
    let mut body = Vec::new();
    match TextEncoder::new().encode(&metrics.registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
