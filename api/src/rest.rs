//! REST handlers under `/v1`: each extracts, runs one service function off the worker
//! thread, and answers JSON.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::principal::Principal;
use crate::service::{self, SearchParams, TransactionInput};
use crate::state::{ApiConfig, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").get(health))
        .service(resource("/ready").get(ready))
        .service(resource("/metrics").get(crate::metrics::metrics))
        .service(
            web::scope("/v1")
                .service(resource("/transactions").post(post_transaction))
                .service(resource("/entities").get(list_entities))
                .service(resource("/entities/{id}").get(get_entity))
                .service(resource("/entities/{id}/history").get(get_history))
                .service(resource("/entities/{id}/diff").get(get_diff))
                .service(resource("/entities/{id}/links").get(get_links))
                .service(resource("/search").get(search))
                .service(resource("/identifiers/{system}/{value}").get(get_identifier))
                .service(resource("/journal").get(get_journal))
                .service(resource("/journal/stream").get(crate::stream::journal_stream)),
        );
}

/// A resource that answers 405 with a problem document to methods it does not serve.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::MethodNotAllowed { method: request.method().to_string(), path: request.path().to_owned() }
        .error_response()
}

/// Runs store work on the blocking pool: store calls never block a worker thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    web::block(work).await.map_err(|e| ApiError::Internal(e.to_string()))?
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let head = state.store.head();
    HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "head_seq": head.seq, "head_hash": head.hash }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadAtQuery {
    as_of: Option<String>,
    valid_at: Option<String>,
}

async fn get_entity(
    state: web::Data<AppState>,
    _principal: Principal,
    id: web::Path<String>,
    query: web::Query<ReadAtQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view =
        blocking(move || service::entity(&store, &id, query.as_of.as_deref(), query.valid_at.as_deref())).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn get_history(
    state: web::Data<AppState>,
    _principal: Principal,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::history(&store, &id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: u64,
    to: u64,
}

async fn get_diff(
    state: web::Data<AppState>,
    _principal: Principal,
    id: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::diff(&store, &id, query.from, query.to)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksQuery {
    direction: Option<String>,
    role: Option<String>,
    as_of: Option<String>,
    valid_at: Option<String>,
}

async fn get_links(
    state: web::Data<AppState>,
    _principal: Principal,
    id: web::Path<String>,
    query: web::Query<LinksQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || {
        let q = query.into_inner();
        service::links(
            &store,
            &id,
            q.direction.as_deref(),
            q.role.as_deref(),
            q.as_of.as_deref(),
            q.valid_at.as_deref(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    kind: Option<String>,
    #[serde(rename = "type")]
    entity_type: Option<String>,
    council: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn page_limit(config: &ApiConfig, limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(100.min(config.max_page)),
        Some(0) => Err(ApiError::invalid("limit", "must be at least 1")),
        Some(n) if n > config.max_page => {
            Err(ApiError::invalid("limit", format!("must be at most {}", config.max_page)))
        }
        Some(n) => Ok(n),
    }
}

async fn list_entities(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    _principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(&config, query.limit)?;
    let store = state.store.clone();
    let view = blocking(move || {
        let q = query.into_inner();
        service::list(
            &store,
            q.kind.as_deref(),
            q.entity_type.as_deref(),
            q.council.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn search(
    state: web::Data<AppState>,
    _principal: Principal,
    query: web::Query<SearchParams>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::search(&store, &query)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn get_identifier(
    state: web::Data<AppState>,
    _principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let (system, value) = path.into_inner();
    let view = blocking(move || service::identifier(&store, &system, &value)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn get_journal(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    _principal: Principal,
    query: web::Query<JournalQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(&config, query.limit)?;
    let after = query.after.unwrap_or(0);
    let store = state.store.clone();
    let view = blocking(move || service::journal(&store, after, limit)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn post_transaction(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
    body: web::Json<TransactionInput>,
) -> ApiResult<HttpResponse> {
    let key = match request.headers().get("Idempotency-Key") {
        None => None,
        Some(value) => {
            Some(value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?.to_owned())
        }
    };
    let store = state.store.clone();
    let view = blocking(move || service::commit(&store, &principal, body.into_inner(), key)).await?;
    let status =
        if view.committed.replayed { actix_web::http::StatusCode::OK } else { actix_web::http::StatusCode::CREATED };
    Ok(HttpResponse::build(status).json(view))
}
