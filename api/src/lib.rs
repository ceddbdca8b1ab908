//! The HTTP application: REST under `/v1`, GraphQL at `/graphql` (queries, mutations and
//! subscriptions over WebSocket), `/health` and `/ready`, served by actix-web through one app
//! factory, [`create_app`], used by the binary and by the tests.
//!
//! Main types: [`ApiConfig`], [`AppState`], [`ApiError`] (one problem+json `type` per kind),
//! [`AccessControl`] and the per-request [`Caller`] (the one enforcement point of access
//! rules). The rules live in [`service`], which REST and GraphQL both call.
//!
//! Wire types (`*View`) live here, never in the store or the model. Handlers never block a
//! worker thread on the store.

pub mod access;
pub mod error;
pub mod graphql;
mod ingest;
pub mod metrics;
pub mod openapi;
mod request_id;
pub mod rest;
pub mod service;
pub mod state;
mod stream;
pub mod views;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::{middleware, web, App, HttpRequest, ResponseError};

pub use access::{AccessControl, AccessSettings, Caller};
pub use error::{ApiError, ApiResult};
pub use pole_auth::Principal;
pub use state::{ApiConfig, AppState};

/// The application: state, extractor limits and error shapes, compression, routes.
pub fn create_app(
    state: AppState,
    config: ApiConfig,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = config.max_body_bytes;
    App::new()
        .configure(graphql::routes)
        .app_data(web::Data::new(state))
        .app_data(web::Data::new(config))
        .app_data(web::JsonConfig::default().limit(limit).error_handler(move |err, _| json_error(err, limit).into()))
        .app_data(
            web::QueryConfig::default().error_handler(|err, _| ApiError::invalid("query", err.to_string()).into()),
        )
        .app_data(web::PathConfig::default().error_handler(|err, _| ApiError::invalid("path", err.to_string()).into()))
        .wrap(middleware::Compress::default())
        .wrap_fn(request_id::tag)
        .configure(rest::routes)
        .default_service(web::to(not_found))
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::invalid("Content-Type", "send application/json"),
        JsonPayloadError::Deserialize(e) => ApiError::invalid("body", e.to_string()),
        other => ApiError::invalid("body", other.to_string()),
    }
}

async fn not_found(request: HttpRequest) -> actix_web::HttpResponse {
    ApiError::NotFound { what: format!("route {} {}", request.method(), request.path()) }.error_response()
}
