//! One error type for every handler, mapped once to an HTTP status and an RFC 9457
//! `application/problem+json` document with a stable `type` per kind.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use pole_store::{Rejection, StoreError};
use serde::Serialize;

/// What went wrong, in the terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{what} not found")]
    NotFound { what: String },
    /// A request parameter or body field is malformed.
    #[error("{field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    /// The store refused a change of the transaction.
    #[error("{0}")]
    InvalidChange(Rejection),
    #[error("{0}")]
    VersionConflict(Rejection),
    #[error("{0}")]
    IdempotencyKeyReused(Rejection),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// No token, or one that cannot be trusted; the reason never repeats the token.
    #[error("no valid credentials: {0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the store failed: {0}")]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidRequest { field: field.into(), reason: reason.into() }
    }

    /// The stable error code: the last segment of the problem `type`, and GraphQL's
    /// `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "not-found",
            ApiError::InvalidRequest { .. } => "invalid-request",
            ApiError::InvalidChange(_) => "invalid-change",
            ApiError::VersionConflict(_) => "version-conflict",
            ApiError::IdempotencyKeyReused(_) => "idempotency-key-reused",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Store(StoreError::WriterStopped(_)) => "unavailable",
            ApiError::Store(_) | ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "Not found",
            ApiError::InvalidRequest { .. } => "Invalid request",
            ApiError::InvalidChange(_) => "Invalid change",
            ApiError::VersionConflict(_) => "Version conflict",
            ApiError::IdempotencyKeyReused(_) => "Idempotency key reused",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Store(StoreError::WriterStopped(_)) => "Service unavailable",
            ApiError::Store(_) | ApiError::Internal(_) => "Internal error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => ApiError::invalid("cursor", "not a cursor this API returned for this listing"),
            other => ApiError::Store(other),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Conflict { .. } => ApiError::VersionConflict(rejection),
            Rejection::IdempotencyKeyReused { .. } => ApiError::IdempotencyKeyReused(rejection),
            Rejection::Invalid { .. } | Rejection::Transaction { .. } => ApiError::InvalidChange(rejection),
            // Callers with a principal answer it as a read of the record is answered
            // (`Caller::refused_write`); this is the fallback, with the same status.
            Rejection::OutOfScope { .. } => ApiError::Forbidden(rejection.to_string()),
        }
    }
}

/// The problem document (RFC 9457) with the extension members clients use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `/problems/<code>`, stable per kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The same code GraphQL will carry in `extensions.code`.
    pub code: &'static str,
    /// The parameter, header or body field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The store's refusal, for changes: which change, entity and field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub rejection: Option<Rejection>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::InvalidChange(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::VersionConflict(_) => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Store(StoreError::WriterStopped(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = HttpResponse::build(status);
        if matches!(self, ApiError::Unauthorized(_)) {
            // RFC 9110: a 401 names the scheme the client should use.
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.content_type("application/problem+json").json(self.problem())
    }
}

impl ApiError {
    /// The problem document of this error: the body of its response, and the data of the
    /// `error` event that ends the change feed's stream.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (field, rejection) = match self {
            ApiError::InvalidRequest { field, .. } => (Some(field.clone()), None),
            ApiError::InvalidChange(r) | ApiError::VersionConflict(r) | ApiError::IdempotencyKeyReused(r) => {
                let field = match r {
                    Rejection::Invalid { field, .. } => field.clone(),
                    _ => None,
                };
                (field, Some(r.clone()))
            }
            _ => (None, None),
        };
        Problem {
            kind: format!("/problems/{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code(),
            field,
            rejection,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
