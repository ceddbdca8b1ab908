//! `GET /v1/journal/stream`: the change feed as server-sent events. Each event is one
//! transaction, its `id` the sequence, so a client that reconnects with `Last-Event-ID`
//! (or `?after=`) resumes exactly after the last one it saw, in order, with no gap.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use pole_store::Store;
use serde::Deserialize;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How often an idle stream looks for new transactions.
const POLL: Duration = Duration::from_millis(200);
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Transactions read per poll.
const BATCH: usize = 256;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this sequence (default: the current head); `Last-Event-ID` wins over it
    after: Option<u64>,
}

/// Where the stream starts: `Last-Event-ID` wins over `?after=` (a reconnecting browser
/// sends the header); neither means from the current head.
fn start(store: &Store, request: &HttpRequest, query: &StreamQuery) -> ApiResult<u64> {
    let head = store.head().seq;
    let after = match request.headers().get("Last-Event-ID") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid("Last-Event-ID", "must be a sequence number this stream sent"))?,
        None => query.after.unwrap_or(head),
    };
    if after > head {
        return Err(ApiError::invalid("after", format!("seq {after} is after the journal head ({head})")));
    }
    Ok(after)
}

struct Cursor {
    store: Store,
    caller: Caller,
    after: u64,
    pending: std::collections::VecDeque<Bytes>,
    idle: Duration,
}

#[utoipa::path(get, path = "/v1/journal/stream", tag = "journal", params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence")), responses((status = 200, description = "Server-sent events: one `transaction` event per transaction, its id the sequence", content_type = "text/event-stream", body = String), (status = 400, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn journal_stream(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: web::Query<StreamQuery>,
) -> ApiResult<HttpResponse> {
    caller.require_records()?;
    let after = start(&state.store, &request, &query)?;
    let cursor =
        Cursor { store: state.store.clone(), caller, after, pending: Default::default(), idle: Duration::ZERO };
    let events = stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(event), cursor));
            }
            if cursor.store.head().seq > cursor.after {
                let store = cursor.store.clone();
                let caller = cursor.caller.clone();
                let after = cursor.after;
                let read = web::block(move || -> ApiResult<(u64, Vec<pole_model::Transaction>)> {
                    let mut last = after;
                    let mut shown = Vec::new();
                    for tx in store.transactions(after, BATCH)? {
                        last = tx.seq;
                        if let Some(tx) = crate::service::feed_transaction(&store, &caller, store.open_transaction(tx))?
                        {
                            shown.push(tx);
                        }
                    }
                    if !shown.is_empty() {
                        // Each batch is traced before it is sent.
                        let mut seen: Vec<_> =
                            shown.iter().flat_map(|t| t.changes.iter().map(|c| c.entity.clone())).collect();
                        seen.sort();
                        seen.dedup();
                        let query = format!("journal stream after {after}");
                        caller.audit(pole_store::AccessAction::Export, &seen, Some(query), Some(shown.len() as u64))?;
                    }
                    Ok((last, shown))
                })
                .await;
                match read {
                    Ok(Ok((last, transactions))) => {
                        cursor.after = last;
                        for tx in transactions {
                            let data = serde_json::to_string(&tx).unwrap_or_default();
                            cursor.pending.push_back(Bytes::from(format!(
                                "id: {}\nevent: transaction\ndata: {data}\n\n",
                                tx.seq
                            )));
                        }
                        cursor.idle = Duration::ZERO;
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "change feed stream stopped");
                        return None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "change feed stream stopped");
                        return None;
                    }
                }
            }
            actix_web::rt::time::sleep(POLL).await;
            cursor.idle += POLL;
            if cursor.idle >= KEEP_ALIVE {
                cursor.idle = Duration::ZERO;
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), cursor));
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}
