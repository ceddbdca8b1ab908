//! GraphQL at `POST /graphql` (GraphiQL at `GET /graphql`, subscriptions over a WebSocket
//! upgrade of `GET /graphql` speaking `graphql-transport-ws`), over the same service layer as
//! REST: no rule is written here twice.
//!
//! The schema is built once per process, with the `AppState`, from the store's schema registry with
//! `async_graphql::dynamic`: an `Entity` interface, one interface per kind (`Person`,
//! `Object`, `Location`, `Event`) and one object type per schema type (`address` →
//! `Address`, `safeguarding_concern` → `SafeguardingConcern`, `person` → `PersonType` beside
//! the `Person` interface) carrying that type's attributes as typed, nullable fields, so a new
//! pack needs no new Rust structs. `Link` resolves the other end at the root's read point:
//! `asOf`/`validAt` given to `entity` hold for the whole traversal (each parent value carries
//! its pinned journal sequence). `transaction` is one mutation, one transaction, through
//! `service::commit`; the `transactions` subscription follows the journal through
//! `service::JournalFollower`, the same follower as the server-sent-events stream.
//!
//! Reads below the root go through a per-request [`DataLoader`](async_graphql::dataloader)
//! (`loader.rs`), so a two-hop traversal over 100 people costs a handful of batches, not one
//! read per item; [`Graphql::load_counts`] tells how many.
//!
//! Every `ApiError` becomes a GraphQL error whose `extensions.code` is [`ApiError::code`]
//! (with `field`, and `rejection` for refused changes); the engine's own errors (syntax,
//! validation, depth and complexity limits) carry `invalid-request`. Callers authenticate
//! with the same [`Caller`] extractor as REST (the one enforcement point); store calls run on the blocking pool.

mod error;
mod loader;
mod schema;

use std::sync::Arc;

use actix_web::{guard, web, HttpRequest, HttpResponse};
use async_graphql::http::GraphiQLSource;
use async_graphql::{Executor, Request, Response};
use async_graphql_actix_web::{GraphQLResponse, GraphQLSubscription};
use futures_util::stream::{BoxStream, StreamExt as _};

pub use loader::{LoadCounter, LoadCounts};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::{ApiConfig, AppState};

/// Deepest selection a query may nest.
pub const MAX_DEPTH: usize = 12;
/// Most fields a query may select, counted over the whole document.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The schema, built once per process with the [`AppState`] (every worker shares it), or why
/// it could not be built; and the count of the batched reads its requests made.
#[derive(Clone)]
pub struct Graphql {
    schema: Result<Tagged, String>,
    loads: Arc<LoadCounter>,
}

impl std::fmt::Debug for Graphql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.schema.is_ok() { "Graphql(schema)" } else { "Graphql(unavailable)" })
    }
}

impl Graphql {
    /// The schema in GraphQL SDL, for the contract snapshot; `None` if it could not be built.
    pub fn sdl(&self) -> Option<String> {
        self.schema.as_ref().ok().map(|schema| schema.0.sdl())
    }

    /// Builds the schema from the store's schema registry; its data loaders count into `loads`.
    pub fn build(store: &pole_store::Store, loads: LoadCounter) -> Self {
        let schema = schema::build(store, MAX_DEPTH, MAX_COMPLEXITY).map(Tagged).map_err(|e| {
            tracing::error!(error = %e, "the GraphQL schema could not be built from the schema pack");
            e.to_string()
        });
        Graphql { schema, loads: Arc::new(loads) }
    }

    /// Batches and keys read by the data loaders of every request so far.
    pub fn load_counts(&self) -> LoadCounts {
        self.loads.counts()
    }

    /// The data loaders' counters, for `/metrics`.
    pub fn load_counter(&self) -> &LoadCounter {
        &self.loads
    }

    fn schema(&self) -> ApiResult<&Tagged> {
        self.schema.as_ref().map_err(|e| ApiError::Internal(format!("no GraphQL schema: {e}")))
    }

    /// What every operation of one caller sees: who it is, the limits, its batch loader.
    fn request_data(&self, state: &AppState, config: &ApiConfig, caller: Caller) -> RequestData {
        let loaders = loader::loaders(state.store.clone(), caller.clone(), Arc::clone(&self.loads));
        (loaders, config.clone(), caller)
    }
}

type RequestData = (loader::Loaders, ApiConfig, Caller);

/// Marks the operations of a WebSocket connection: its caller was authenticated when the
/// connection opened, so every root field refuses once the token has expired (`Caller::
/// require_live`), and a running `transactions` subscription ends then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverWebSocket;

/// The schema, with the engine's own errors given our codes on every path (HTTP and
/// WebSocket alike).
#[derive(Clone)]
struct Tagged(async_graphql::dynamic::Schema);

impl Executor for Tagged {
    async fn execute(&self, request: Request) -> Response {
        let mut response = self.0.execute(request).await;
        error::tag_engine_errors(&mut response.errors, MAX_DEPTH, MAX_COMPLEXITY);
        response
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        self.0
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(|mut response| {
                error::tag_engine_errors(&mut response.errors, MAX_DEPTH, MAX_COMPLEXITY);
                response
            })
            .boxed()
    }
}

/// Registers `/graphql`; used by `create_app`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(execute))
            .route(web::get().guard(guard::fn_guard(|ctx| is_websocket_upgrade(ctx.head()))).to(subscribe))
            .route(web::get().to(graphiql))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A GET asking to become a WebSocket (`Upgrade: websocket`, in any case).
fn is_websocket_upgrade(head: &actix_web::dev::RequestHead) -> bool {
    head.headers().get("upgrade").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn execute(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    request: web::Json<Request>,
) -> ApiResult<GraphQLResponse> {
    let graphql = &state.graphql;
    let schema = graphql.schema()?;
    // One access record per query, naming every entity its resolvers read.
    let caller = caller.gathering();
    let (loaders, config, caller) = graphql.request_data(&state, &config, caller);
    let request = request.into_inner().data(loaders).data(config).data(caller.clone());
    let response = schema.execute(request).await;
    // The answer leaves only once its access record is durable.
    web::block(move || caller.finish()).await.map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(response.into())
}

/// `graphql-transport-ws` (and the older `graphql-ws`) over a WebSocket: the caller is
/// authenticated at the upgrade, like any request, and every operation on the connection runs
/// as that caller (each read recorded as it happens, each subscription batch before it is sent)
/// until the token's `exp`: then a running subscription ends with an `unauthorized` error and
/// every later operation is refused with one.
async fn subscribe(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let graphql = &state.graphql;
    let schema = graphql.schema()?.clone();
    let (loaders, config, caller) = graphql.request_data(&state, &config, caller);
    let mut data = async_graphql::Data::default();
    data.insert(loaders);
    data.insert(config);
    data.insert(caller);
    data.insert(OverWebSocket);
    GraphQLSubscription::new(schema).with_data(data).start(&request, payload)
}

/// The GraphiQL page: static, like `/docs`; the queries it sends are authenticated.
async fn graphiql() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("pole-ods GraphQL")
            .finish(),
    )
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    ApiError::MethodNotAllowed { method: request.method().to_string(), path: request.path().to_owned() }
        .error_response()
}
