//! GraphQL at `POST /graphql` (GraphiQL at `GET /graphql`), over the same service layer as
//! REST: no rule is written here twice.
//!
//! The schema is built once per process, with the `AppState`, from the store's schema registry with
//! `async_graphql::dynamic`: an `Entity` interface and one object type per schema type
//! (`person` → `Person`, `safeguarding_concern` → `SafeguardingConcern`) carrying that type's
//! attributes as typed, nullable fields, so a new pack needs no new Rust structs. `Link`
//! resolves the other end at the root's read point: `asOf`/`validAt` given to `entity` hold
//! for the whole traversal (each parent value carries its pinned journal sequence).
//! `transaction` is one mutation, one transaction, through `service::commit`.
//!
//! Every `ApiError` becomes a GraphQL error whose `extensions.code` is [`ApiError::code`]
//! (with `field`, and `rejection` for refused changes); the engine's own errors (syntax,
//! validation, depth and complexity limits) carry `invalid-request`. Callers authenticate
//! with the same [`Principal`] extractor as REST; store calls run on the blocking pool.
//!
//! Not yet: DataLoader batching (each link's other end is one read), the change-feed
//! subscription, `diff`, list roots and an SDL snapshot test.

mod error;
mod schema;

use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::http::GraphiQLSource;
use async_graphql_actix_web::GraphQLResponse;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Deepest selection a query may nest.
pub const MAX_DEPTH: usize = 12;
/// Most fields a query may select, counted over the whole document.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The schema, built once per process with the [`AppState`] (every worker shares it), or why
/// it could not be built.
#[derive(Clone)]
pub struct Graphql(Result<async_graphql::dynamic::Schema, String>);

impl std::fmt::Debug for Graphql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_ok() { "Graphql(schema)" } else { "Graphql(unavailable)" })
    }
}

impl Graphql {
    /// The schema in GraphQL SDL, for the contract snapshot; `None` if it could not be built.
    pub fn sdl(&self) -> Option<String> {
        self.0.as_ref().ok().map(|schema| schema.sdl())
    }

    /// Builds the schema from the store's schema registry.
    pub fn build(store: &pole_store::Store) -> Self {
        Graphql(schema::build(store, MAX_DEPTH, MAX_COMPLEXITY).map_err(|e| {
            tracing::error!(error = %e, "the GraphQL schema could not be built from the schema pack");
            e.to_string()
        }))
    }
}

/// Registers `/graphql`; used by `create_app`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(execute))
            .route(web::get().to(graphiql))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn execute(
    state: web::Data<AppState>,
    caller: Caller,
    request: web::Json<async_graphql::Request>,
) -> ApiResult<GraphQLResponse> {
    let schema = state.graphql.0.as_ref().map_err(|e| ApiError::Internal(format!("no GraphQL schema: {e}")))?;
    // One access record per query, naming every entity its resolvers read.
    let caller = caller.gathering();
    let mut response = schema.execute(request.into_inner().data(caller.clone())).await;
    // The answer leaves only once its access record is durable.
    web::block(move || caller.finish()).await.map_err(|e| ApiError::Internal(e.to_string()))??;
    error::tag_engine_errors(&mut response.errors, MAX_DEPTH, MAX_COMPLEXITY);
    Ok(response.into())
}

/// The GraphiQL page: static, like `/docs`; the queries it sends are authenticated.
async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(GraphiQLSource::build().endpoint("/graphql").title("pole-ods GraphQL").finish())
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::MethodNotAllowed { method: request.method().to_string(), path: request.path().to_owned() }
        .error_response()
}
