//! `GET /v1/journal/stream`: the change feed as server-sent events. Each event is one
//! transaction, its `id` the sequence, so a client that reconnects with `Last-Event-ID`
//! (or `?after=`) resumes exactly after the last one it saw, in order, with no gap. The
//! stream lives as long as the token that opened it: at its `exp` it sends an `error` event
//! (the `unauthorized` problem document) and ends, and the client reconnects with a new
//! token, resuming from the last id it saw.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use pole_store::Store;
use serde::Deserialize;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::JournalFollower;
use crate::state::AppState;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this sequence (default: the current head); `Last-Event-ID` wins over it
    after: Option<u64>,
}

/// Where the stream starts: `Last-Event-ID` wins over `?after=` (a reconnecting browser
/// sends the header); neither means from the current head. The bounds are the follower's.
fn start(store: &Store, caller: Caller, request: &HttpRequest, query: &StreamQuery) -> ApiResult<JournalFollower> {
    let after = match request.headers().get("Last-Event-ID") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID", "must be a sequence number this stream sent"))?,
        ),
        None => query.after,
    };
    JournalFollower::start(store.clone(), caller, after)
}

#[utoipa::path(get, path = "/v1/journal/stream", tag = "journal", params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence")), responses((status = 200, description = "Server-sent events: one `transaction` event per transaction, its id the sequence; the stream ends with an `error` event whose data is a problem document (`unauthorized` when the token that opened it reaches its `exp`)", content_type = "text/event-stream", body = String), (status = 400, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn journal_stream(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: web::Query<StreamQuery>,
) -> ApiResult<HttpResponse> {
    let follower = start(&state.store, caller, &request, &query)?;
    let events = stream::unfold(Some(follower), |follower| async move {
        let mut follower = follower?;
        match follower.next(KEEP_ALIVE).await {
            Ok(transactions) if transactions.is_empty() => {
                Some((Ok::<_, actix_web::Error>(Bytes::from_static(b": keep-alive\n\n")), Some(follower)))
            }
            Ok(transactions) => {
                let mut chunk = String::new();
                for tx in transactions {
                    let data = serde_json::to_string(&tx).unwrap_or_default();
                    chunk.push_str(&format!("id: {}\nevent: transaction\ndata: {data}\n\n", tx.seq));
                }
                Some((Ok(Bytes::from(chunk)), Some(follower)))
            }
            // The stream ends with the reason as its last event: the problem document a
            // request would have been answered with (an expired token's `unauthorized`, when
            // the token that opened the stream reaches its `exp`).
            Err(e) => {
                if matches!(e, ApiError::Unauthorized(_)) {
                    tracing::info!(reason = %e, "change feed stream ended");
                } else {
                    tracing::error!(error = %e, "change feed stream stopped");
                }
                let data = serde_json::to_string(&e.problem()).unwrap_or_default();
                Some((Ok(Bytes::from(format!("event: error\ndata: {data}\n\n"))), None))
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}
