//! `POST /v1/ingest/{format}`: a council's file over HTTP, through the same pipeline as
//! `pole-ods ingest`, answered with the submission report (JSON, or CSV when asked with
//! `Accept: text/csv`). The caller decides the council: a council token submits for its
//! own council only; an administrator names one.

use actix_web::http::header::ACCEPT;
use actix_web::{web, HttpRequest, HttpResponse};
use pole_auth::Role;
use pole_ingest::{Format, IngestError, Options, Profile};
use pole_model::Operation;
use pole_store::{AccessAction, Store};
use serde::Deserialize;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::{ApiConfig, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IngestQuery {
    /// The submitting council (a council token's own by default; required of an
    /// administrator, except for hl7 where MSH-4 names the sender)
    council: Option<String>,
    /// Validate and report without writing
    #[serde(default)]
    dry_run: bool,
    /// A built-in mapping profile (`safeguarding`, `council-305`, ...) [default: safeguarding]
    profile: Option<String>,
    /// For spreadsheets: the sheet, by name or 1-based position
    sheet: Option<String>,
    /// The file's name, for the report and the journal's provenance
    file_name: Option<String>,
}

fn ingest_error(error: IngestError) -> ApiError {
    match error {
        IngestError::UnknownFormat(_) => ApiError::invalid("format", error.to_string()),
        IngestError::BadCouncil(_) => ApiError::invalid("council", error.to_string()),
        IngestError::Profile { .. } => ApiError::invalid("profile", error.to_string()),
        // The API hands the pipeline bytes, never a path: a read failure is the server's.
        IngestError::Schema(_) | IngestError::Read { .. } => ApiError::Internal(error.to_string()),
        IngestError::Store(e) => ApiError::from(e),
    }
}

/// The format and the council a submission is attributed to, or why this caller may not
/// make it: decided before the body is read.
fn attribute(caller: &Caller, format: &str, query: &IngestQuery) -> ApiResult<(Format, String)> {
    let format: Format = format.parse().map_err(ingest_error)?;
    let own = (caller.principal.role == Role::Council).then_some(caller.principal.council.as_deref()).flatten();
    let council = match (query.council.as_deref(), own) {
        (Some(asked), _) => asked.to_owned(),
        (None, Some(own)) => own.to_owned(),
        (None, None) if format == Format::Hl7 => String::new(),
        (None, None) => return Err(ApiError::invalid("council", "name the submitting council")),
    };
    let attributed = (!council.is_empty()).then_some(council.as_str());
    // The operations every submission makes; what each row or message's transaction asks
    // for beyond them is checked as it is built (an A40's merge).
    caller.require_write(&[Operation::Create, Operation::Update, Operation::Link], attributed.or(own))?;
    if format == Format::Hl7 && query.profile.is_some() {
        return Err(ApiError::invalid(
            "profile",
            "does not apply to hl7: ADT messages map the same way for every sender",
        ));
    }
    Ok((format, council))
}

/// Runs one submission for `caller`; blocking.
fn submit(
    store: &Store,
    caller: &Caller,
    (format, council): (Format, String),
    query: IngestQuery,
    body: &[u8],
) -> ApiResult<pole_ingest::Report> {
    // Over HTTP only built-in profiles: a name never reaches the file system.
    let profile = Profile::builtin(query.profile.as_deref().unwrap_or("safeguarding")).map_err(ingest_error)?;
    let file_name = query.file_name.unwrap_or_else(|| format!("upload.{}", format.as_str()));
    let role = caller.principal.role.to_string();
    let options = Options {
        file_name: &file_name,
        format,
        council: &council,
        profile: &profile,
        dry_run: query.dry_run,
        today: None,
        sheet: query.sheet.as_deref(),
        actor: &caller.principal.subject,
        role: &role,
        operations: caller.viewer().writable_operations(),
        chunk_rows: pole_ingest::DEFAULT_CHUNK_ROWS,
    };
    let report = pole_ingest::ingest(store, body, &options, &|_| {}).map_err(ingest_error)?;
    let action = if query.dry_run { AccessAction::Read } else { AccessAction::Write };
    let what = format!("ingest {file_name} ({}) for council {council}", format.as_str());
    caller.audit(action, &[], Some(what), Some(report.accepted))?;
    Ok(report)
}

#[utoipa::path(post, path = "/v1/ingest/{format}", tag = "ingest", params(("format" = String, Path, description = "csv, pipe, xlsx, xml or hl7"), IngestQuery), request_body(content = String, description = "The file, as the council's system produced it", content_type = "application/octet-stream"), responses((status = 200, description = "The submission report: counts `accepted`, `warnings`, `rejected`, the transactions and every row with a warning or an error (CSV with `Accept: text/csv`)", body = Object), (status = 400, description = "A parameter is malformed", body = crate::error::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid credentials", body = crate::error::Problem, content_type = "application/problem+json"), (status = 403, description = "Not this caller's council, or a role that does not submit", body = crate::error::Problem, content_type = "application/problem+json"), (status = 413, description = "The file is too large", body = crate::error::Problem, content_type = "application/problem+json")))]
pub(crate) async fn post_ingest(
    state: web::Data<AppState>,
    config: web::Data<ApiConfig>,
    caller: Caller,
    format: web::Path<String>,
    query: web::Query<IngestQuery>,
    request: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let attributed = attribute(&caller, &format, &query)?;
    let bytes = read_body(body, config.max_ingest_bytes).await?;
    let store = state.store.clone();
    let report = web::block(move || submit(&store, &caller, attributed, query.into_inner(), &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let wants_csv = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/csv"));
    Ok(if wants_csv {
        HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(report.to_csv())
    } else {
        HttpResponse::Ok().json(report)
    })
}

/// The body, refused whole once it passes `limit` bytes.
async fn read_body(mut body: web::Payload, limit: usize) -> ApiResult<Vec<u8>> {
    use futures_util::StreamExt as _;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid("body", e.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("body", "send the file as the request body"));
    }
    Ok(bytes)
}
