//! The service layer: every rule a read or write obeys (parameter checks, as-of semantics,
//! pagination), written once for REST and, later, GraphQL. Handlers only translate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use pole_model::{EntityId, Identifier, Kind, SearchKey, Source, Timestamp};
use pole_store::{AsOf, ChangeRequest, Direction, ReadAt, Store, TransactionRequest};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::principal::Principal;
use crate::views::*;

/// Parses an entity id from a path.
pub fn entity_id(text: &str) -> ApiResult<EntityId> {
    EntityId::new(text).map_err(|e| ApiError::invalid("id", e.to_string()))
}

/// Resolves `as_of` (a sequence or an RFC 3339 time/date) and `valid_at`, refusing instants
/// before the store's first transaction or in the future.
pub fn read_at(store: &Store, as_of: Option<&str>, valid_at: Option<&str>) -> ApiResult<(ReadAt, ReadAtView)> {
    let as_of = match as_of.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => {
            let as_of = AsOf::parse(text).map_err(|e| ApiError::invalid("as_of", e.to_string()))?;
            let seq = store.check_as_of(as_of)?.map_err(|e| ApiError::invalid("as_of", e.to_string()))?;
            Some((as_of, seq))
        }
    };
    let valid_at = match valid_at.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(Timestamp::parse(text).map_err(|e| ApiError::invalid("valid_at", e.to_string()))?),
    };
    let as_of_seq = as_of.map_or(store.head().seq, |(_, seq)| seq);
    Ok((ReadAt { as_of: as_of.map(|(a, _)| a), valid_at }, ReadAtView { as_of_seq, valid_at }))
}

pub fn entity(store: &Store, id: &str, as_of: Option<&str>, valid_at: Option<&str>) -> ApiResult<EntityView> {
    let id = entity_id(id)?;
    let (at, view) = read_at(store, as_of, valid_at)?;
    let state =
        store.entity(&id, at)?.ok_or_else(|| ApiError::NotFound { what: format!("entity {id} at that point") })?;
    Ok(EntityView::new(state, view))
}

pub fn history(store: &Store, id: &str) -> ApiResult<HistoryView> {
    let id = entity_id(id)?;
    let versions = store.history(&id)?;
    if versions.is_empty() {
        return Err(ApiError::NotFound { what: format!("entity {id}") });
    }
    Ok(HistoryView { id, versions })
}

pub fn diff(store: &Store, id: &str, from: u64, to: u64) -> ApiResult<DiffView> {
    let id = entity_id(id)?;
    let n_versions = store.history(&id)?.len() as u64;
    if n_versions == 0 {
        return Err(ApiError::NotFound { what: format!("entity {id}") });
    }
    for (field, v) in [("from", from), ("to", to)] {
        if v == 0 || v > n_versions {
            return Err(ApiError::invalid(
                field,
                format!("version {v} does not exist (the entity has 1 to {n_versions})"),
            ));
        }
    }
    let delta = store.diff(&id, from, to)?.ok_or_else(|| ApiError::Internal(format!("versions of {id} vanished")))?;
    Ok(DiffView { id, from, to, delta })
}

pub fn links(
    store: &Store,
    id: &str,
    direction: Option<&str>,
    role: Option<&str>,
    as_of: Option<&str>,
    valid_at: Option<&str>,
) -> ApiResult<LinksView> {
    let id = entity_id(id)?;
    let direction = match direction {
        None | Some("both") => None,
        Some("out") => Some(Direction::Out),
        Some("in") => Some(Direction::In),
        Some(other) => return Err(ApiError::invalid("direction", format!("{other:?} is not out, in or both"))),
    };
    let (at, view) = read_at(store, as_of, valid_at)?;
    if store.entity(&id, at)?.is_none() {
        return Err(ApiError::NotFound { what: format!("entity {id} at that point") });
    }
    let links = store.links(&id, direction, role, at)?;
    Ok(LinksView { id, links, read_at: view })
}

pub fn list(
    store: &Store,
    kind: Option<&str>,
    entity_type: Option<&str>,
    council: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<PageView> {
    let kind = kind.map(|k| k.parse::<Kind>().map_err(|e| ApiError::invalid("kind", e.to_string()))).transpose()?;
    if let Some(ty) = entity_type {
        let def = store.schema().type_def(ty).map_err(|e| ApiError::invalid("type", e.to_string()))?;
        if kind.is_some_and(|k| k != def.kind) {
            return Err(ApiError::invalid(
                "type",
                format!("type {ty:?} is a {}, not a {}", def.kind, kind.map(|k| k.to_string()).unwrap_or_default()),
            ));
        }
    }
    let cursor = cursor
        .map(|c| B64.decode(c).map_err(|_| ApiError::invalid("cursor", "not a cursor this API returned")))
        .transpose()?;
    let (items, next) = match council {
        Some(council) => {
            if council.is_empty() || !council.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApiError::invalid("council", "a council code is letters and digits"));
            }
            store.list_by_council(council, kind, entity_type, cursor.as_deref(), limit)?
        }
        None => store.list(kind, entity_type, cursor.as_deref(), limit)?,
    };
    Ok(PageView { items, next_cursor: next.map(|k| B64.encode(k)) })
}

/// The search parameters; at least one is required, and every one given must match.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    pub nhs_number: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub birth_date: Option<String>,
    pub postcode: Option<String>,
}

pub fn search(store: &Store, params: &SearchParams) -> ApiResult<MatchesView> {
    let mut sets: Vec<Vec<EntityId>> = Vec::new();
    if let Some(nhs) = &params.nhs_number {
        pole_model::normalise_nhs_number(nhs).map_err(|e| ApiError::invalid("nhs_number", e.to_string()))?;
        sets.push(store.find_by_identifier(&Identifier::new("nhs-number", nhs.clone()))?);
    }
    for (key, value) in [
        (SearchKey::FamilyName, &params.family_name),
        (SearchKey::GivenName, &params.given_name),
        (SearchKey::BirthDate, &params.birth_date),
        (SearchKey::Postcode, &params.postcode),
    ] {
        if let Some(value) = value {
            if key.normalise(value).is_empty() {
                return Err(ApiError::invalid(key.as_str(), "empty after normalisation"));
            }
            sets.push(store.search(key, value)?);
        }
    }
    let Some((first, rest)) = sets.split_first() else {
        return Err(ApiError::invalid(
            "query",
            "give at least one of nhs_number, family_name, given_name, birth_date, postcode",
        ));
    };
    let mut items: Vec<EntityId> = first.iter().filter(|id| rest.iter().all(|s| s.contains(id))).cloned().collect();
    items.sort();
    items.dedup();
    Ok(MatchesView { items })
}

pub fn identifier(store: &Store, system: &str, value: &str) -> ApiResult<MatchesView> {
    let identifier = Identifier::new(system, value);
    store.schema().check_identifier(&identifier).map_err(|e| ApiError::invalid("identifier", e.to_string()))?;
    let items = store.find_by_identifier(&identifier)?;
    if items.is_empty() {
        return Err(ApiError::NotFound { what: format!("identifier {system}/{value}") });
    }
    Ok(MatchesView { items })
}

pub fn journal(store: &Store, after: u64, limit: usize) -> ApiResult<JournalView> {
    let head_seq = store.head().seq;
    let transactions = store.transactions(after, limit)?.into_iter().map(|tx| store.open_transaction(tx)).collect();
    Ok(JournalView { transactions, head_seq })
}

/// The body of `POST /v1/transactions`: an atomic batch of changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionInput {
    /// `council`, `system`, `batch`, `file`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source: Option<Source>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Each `{"target": {"ref": "p1"} | {"entity": "ID"}, "op": {"op": "create" | "update" |
    /// "link" | "unlink" | "retract" | "merge" | "unmerge" | "erase", ...}, "expected_version",
    /// "valid_time", "row"}`.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<ChangeRequest>,
}

pub fn commit(
    store: &Store,
    principal: &Principal,
    input: TransactionInput,
    idempotency_key: Option<String>,
) -> ApiResult<CommittedView> {
    let mut source = input.source.unwrap_or_default();
    if source.system.is_none() {
        source.system = Some("api".into());
    }
    if let (Some(own), Some(claimed)) = (&principal.council, &source.council) {
        if own != claimed {
            return Err(ApiError::Forbidden(format!("council {own} may not submit for council {claimed}")));
        }
    }
    if source.council.is_none() {
        source.council.clone_from(&principal.council);
    }
    let request = TransactionRequest {
        actor: principal.subject.clone(),
        role: principal.role.clone(),
        source,
        idempotency_key,
        reason: input.reason,
        changes: input.changes,
    };
    let committed = store.commit(request)??;
    Ok(CommittedView { committed })
}

// ------------------------------------------------------------------------- pages and the feed

/// The page size a caller asked for (`limit` in REST, `first` in GraphQL, named by `field`):
/// 1 to `max_page`, 100 (or `max_page` if smaller) when not given.
pub fn page_limit(max_page: usize, field: &str, limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(100.min(max_page)),
        Some(0) => Err(ApiError::invalid(field, "must be at least 1")),
        Some(n) if n > max_page => Err(ApiError::invalid(field, format!("must be at most {max_page}"))),
        Some(n) => Ok(n),
    }
}

/// How often an idle follower looks at the journal head.
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// Transactions a follower reads at a time.
const FEED_BATCH: usize = 256;

/// Follows the change feed: replays the transactions after a sequence, then waits for new
/// commits, answering each transaction once, in sequence order, opened for the caller by
/// [`journal`]. The server-sent-events stream and the GraphQL subscription both follow the
/// journal with it, so the start rule and the order rule are written once.
#[derive(Debug)]
pub struct JournalFollower {
    store: Store,
    after: u64,
}

impl JournalFollower {
    /// Starts after `after` (the current head when `None`); a sequence past the head is refused.
    pub fn start(store: Store, after: Option<u64>) -> ApiResult<Self> {
        let head = store.head().seq;
        let after = after.unwrap_or(head);
        if after > head {
            return Err(ApiError::invalid("after", format!("seq {after} is after the journal head ({head})")));
        }
        Ok(JournalFollower { store, after })
    }

    /// The sequence of the last transaction answered (or the start point).
    pub fn after(&self) -> u64 {
        self.after
    }

    /// The next transactions, oldest first. Waits up to `wait` for a commit and answers an
    /// empty batch if none came, so a caller can keep an idle connection alive.
    pub async fn next(&mut self, wait: std::time::Duration) -> ApiResult<Vec<pole_model::Transaction>> {
        let mut waited = std::time::Duration::ZERO;
        loop {
            // The head moves only after a group is durable and applied, so everything up to
            // it can be read, and nothing later is seen before something earlier.
            if self.store.head().seq > self.after {
                let (store, after) = (self.store.clone(), self.after);
                let view = actix_web::web::block(move || journal(&store, after, FEED_BATCH))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))??;
                if let Some(last) = view.transactions.last() {
                    self.after = last.seq;
                }
                return Ok(view.transactions);
            }
            if waited >= wait {
                return Ok(Vec::new());
            }
            actix_web::rt::time::sleep(FEED_POLL).await;
            waited += FEED_POLL;
        }
    }
}
