//! REST handlers under `/v1`: each extracts, runs one service function off the worker
//! thread, and answers JSON.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::access::{Caller, Grant};
use crate::error::Problem;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, AccessPage, EraseInput, SearchParams, TransactionInput, VerifyView};
use crate::state::{ApiConfig, AppState};
use crate::views::{
    CommittedView, DiffView, EntityView, HistoryView, JournalView, LinksView, MatchesView, NationalPersonView, PageView,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").get(health))
        .service(resource("/ready").get(ready))
        .service(resource("/metrics").get(crate::metrics::metrics))
        .service(resource("/openapi.json").get(crate::openapi::openapi_json))
        .service(resource("/docs").get(crate::openapi::docs))
        .service(
            web::scope("/v1")
                .service(resource("/transactions").post(post_transaction))
                .service(resource("/entities").get(list_entities))
                .service(resource("/entities/{id}").get(get_entity))
                .service(resource("/entities/{id}/history").get(get_history))
                .service(resource("/people/{id}").get(get_national_person))
                .service(resource("/entities/{id}/diff").get(get_diff))
                .service(resource("/entities/{id}/links").get(get_links))
                .service(resource("/search").get(search))
                .service(resource("/identifiers/{system}/{value}").get(get_identifier))
                .service(resource("/journal").get(get_journal))
                .service(resource("/journal/stream").get(crate::stream::journal_stream))
                .service(resource("/entities/{id}/erase").post(post_erase))
                .service(resource("/ingest/{format}").post(crate::ingest::post_ingest))
                .service(resource("/break-glass").post(post_break_glass))
                .service(resource("/audit/access").get(get_audit_access))
                .service(resource("/audit/break-glass").get(get_audit_break_glass))
                .service(resource("/audit/verify").get(get_audit_verify)),
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

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is alive")))]
pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "The store is open; its journal head")))]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let head = state.store.head();
    if let Err(problem) = state.access.log().healthy() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "reason": format!("access log: {problem}") }));
    }
    HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "head_seq": head.seq, "head_hash": head.hash }))
}

#[utoipa::path(get, path = "/v1/people/{id}", tag = "entities", params(("id" = String, Path, description = "The id of any source record of the person")), responses((status = 200, description = "The national view of the person: every source record identity resolution links to this one (today, those sharing a valid NHS number), and each attribute's value by the schema pack's survivorship rules, with its source and the other sources' values when they differ", body = NationalPersonView), (status = 400, description = "A malformed id, or a record that is not an active person", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "A role that reads one council's records or minimised data, or a person outside the caller's scope", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_national_person(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::national_person(&store, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadAtQuery {
    /// What the store knew at this recorded instant: a journal sequence, or an RFC 3339 time or date
    as_of: Option<String>,
    /// The world as it was at this valid time (RFC 3339 time or date)
    valid_at: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities/{id}", tag = "entities", params(("id" = String, Path, description = "Entity id"), ReadAtQuery), responses((status = 200, body = EntityView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such entity at that point", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_entity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<ReadAtQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view =
        blocking(move || service::entity(&store, &caller, &id, query.as_of.as_deref(), query.valid_at.as_deref()))
            .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/entities/{id}/history", tag = "entities", params(("id" = String, Path, description = "Entity id")), responses((status = 200, body = HistoryView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such entity at that point", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::history(&store, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DiffQuery {
    /// The earlier version (1-based)
    from: u64,
    /// The later version
    to: u64,
}

#[utoipa::path(get, path = "/v1/entities/{id}/diff", tag = "entities", params(("id" = String, Path, description = "Entity id"), DiffQuery), responses((status = 200, body = DiffView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such entity at that point", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_diff(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::diff(&store, &caller, &id, query.from, query.to)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinksQuery {
    /// `out` (links this entity makes), `in` (links made to it) or `both` (default)
    direction: Option<String>,
    /// Only links of this role, e.g. `subject`
    role: Option<String>,
    /// A journal sequence, or an RFC 3339 time or date
    as_of: Option<String>,
    /// Only links whose own validity period covers this time
    valid_at: Option<String>,
}

#[utoipa::path(get, path = "/v1/entities/{id}/links", tag = "entities", params(("id" = String, Path, description = "Entity id"), LinksQuery), responses((status = 200, body = LinksView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such entity at that point", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_links(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<LinksQuery>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || {
        let q = query.into_inner();
        service::links(
            &store,
            &caller,
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// person, object, location or event
    kind: Option<String>,
    /// A type of the schema pack, e.g. `person` or `safeguarding_concern`
    #[serde(rename = "type")]
    #[param(rename = "type")]
    entity_type: Option<String>,
    /// Only entities this council contributed to
    council: Option<String>,
    /// The `next_cursor` of the previous page
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100)
    limit: Option<usize>,
}

fn page_limit(config: &ApiConfig, limit: Option<usize>) -> ApiResult<usize> {
    service::page_limit(config.max_page, "limit", limit)
}

#[utoipa::path(get, path = "/v1/entities", tag = "entities", params(ListQuery), responses((status = 200, body = PageView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_entities(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(&config, query.limit)?;
    let store = state.store.clone();
    let view = blocking(move || {
        let q = query.into_inner();
        service::list(
            &store,
            &caller,
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

#[utoipa::path(get, path = "/v1/search", tag = "search", params(SearchParams), responses((status = 200, body = MatchesView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SearchParams>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::search(&store, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/identifiers/{system}/{value}", tag = "search", params(("system" = String, Path, description = "Identifier system, e.g. nhs-number"), ("value" = String, Path, description = "Identifier value")), responses((status = 200, body = MatchesView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No entity holds it", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_identifier(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let (system, value) = path.into_inner();
    let view = blocking(move || service::identifier(&store, &caller, &system, &value)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct JournalQuery {
    /// Transactions after this sequence (default 0: from the start)
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 100)
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/journal", tag = "journal", params(JournalQuery), responses((status = 200, body = JournalView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_journal(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    query: web::Query<JournalQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(&config, query.limit)?;
    let after = query.after.unwrap_or(0);
    let store = state.store.clone();
    let view = blocking(move || service::journal(&store, &caller, after, limit)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/transactions", tag = "transactions", request_body = TransactionInput, params(("Idempotency-Key" = Option<String>, Header, description = "Resubmitting with the same key changes nothing and answers the original result")), responses((status = 201, body = CommittedView), (status = 200, description = "A resubmission of an idempotency key", body = CommittedView), (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 409, description = "An expected_version did not match", body = Problem, content_type = "application/problem+json"), (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"), (status = 422, description = "A change was refused (named by change, entity and field), or the idempotency key was reused for another request", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn post_transaction(
    state: web::Data<AppState>,
    caller: Caller,
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
    let view = blocking(move || service::commit(&store, &caller, body.into_inner(), key)).await?;
    let status =
        if view.committed.replayed { actix_web::http::StatusCode::OK } else { actix_web::http::StatusCode::CREATED };
    Ok(HttpResponse::build(status).json(view))
}

#[utoipa::path(post, path = "/v1/entities/{id}/erase", tag = "entities", request_body = EraseInput, params(("id" = String, Path, description = "Entity id")), responses((status = 201, body = CommittedView), (status = 400, description = "A parameter is malformed", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Only administrators erase", body = Problem, content_type = "application/problem+json"), (status = 422, description = "The store refused the erasure", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn post_erase(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<EraseInput>,
) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let view = blocking(move || service::erase(&store, &caller, &id, body.into_inner())).await?;
    Ok(HttpResponse::Created().json(view))
}

/// The body of `POST /v1/break-glass`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakGlassInput {
    /// Why the analyst needs to read beyond their scope (at least 10 characters).
    reason: String,
}

#[utoipa::path(post, path = "/v1/break-glass", tag = "access", request_body = BreakGlassInput, responses((status = 201, description = "The grant, with its expiry", body = Grant), (status = 400, description = "No usable reason", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Only analysts break the glass", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn post_break_glass(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<BreakGlassInput>,
) -> ApiResult<HttpResponse> {
    let access = state.access.clone();
    let grant = blocking(move || service::break_glass(&access, &caller, &body.reason)).await?;
    Ok(HttpResponse::Created().json(grant))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AccessLogQuery {
    /// Only accesses that showed or changed this entity ("who has seen this person")
    entity: Option<String>,
    /// Only this actor's accesses
    actor: Option<String>,
    /// From this instant (RFC 3339 or a date)
    from: Option<String>,
    /// Before this instant
    to: Option<String>,
    /// Only records after this access-log sequence (paging)
    after: Option<u64>,
    limit: Option<usize>,
}

fn access_query(
    config: &ApiConfig,
    q: AccessLogQuery,
    action: Option<pole_store::AccessAction>,
) -> ApiResult<pole_store::AccessQuery> {
    let instant = |field: &str, text: Option<String>| {
        text.map(|t| pole_model::Timestamp::parse(&t).map_err(|e| ApiError::invalid(field, e.to_string()))).transpose()
    };
    Ok(pole_store::AccessQuery {
        entity: q.entity.map(|e| service::entity_id(&e)).transpose()?,
        actor: q.actor,
        action,
        from: instant("from", q.from)?,
        to: instant("to", q.to)?,
        after: q.after.unwrap_or(0),
        limit: page_limit(config, q.limit)?,
    })
}

#[utoipa::path(get, path = "/v1/audit/access", tag = "audit", params(AccessLogQuery), responses((status = 200, body = AccessPage), (status = 400, description = "A parameter is malformed", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Only auditors and administrators", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_audit_access(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    query: web::Query<AccessLogQuery>,
) -> ApiResult<HttpResponse> {
    caller.require_auditor()?;
    let query = access_query(&config, query.into_inner(), None)?;
    let access = state.access.clone();
    let view = blocking(move || {
        access.log().flush()?;
        service::access_records(&caller, access.log(), query)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/audit/break-glass", tag = "audit", params(AccessLogQuery), responses((status = 200, body = AccessPage), (status = 400, description = "A parameter is malformed", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Only auditors and administrators", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_audit_break_glass(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    query: web::Query<AccessLogQuery>,
) -> ApiResult<HttpResponse> {
    caller.require_auditor()?;
    let query = access_query(&config, query.into_inner(), Some(pole_store::AccessAction::BreakGlass))?;
    let access = state.access.clone();
    let view = blocking(move || {
        access.log().flush()?;
        service::access_records(&caller, access.log(), query)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, description = "Both chains verified (`ok` says whether they hold)", body = VerifyView), (status = 401, description = "No valid credentials", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Only auditors and administrators", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_audit_verify(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let store = state.store.clone();
    let access = state.access.clone();
    let view = blocking(move || service::verify(&store, &caller, access.log())).await?;
    Ok(HttpResponse::Ok().json(view))
}
