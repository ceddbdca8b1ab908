//! `ApiError` to GraphQL error: `extensions.code` is [`ApiError::code`], `extensions.field`
//! the parameter or body field at fault, `extensions.rejection` the store's refusal.

use async_graphql::{ErrorExtensions as _, ServerError};
use pole_store::Rejection;

use crate::error::ApiError;

/// The GraphQL error for an [`ApiError`], with the same code as the REST problem `type`.
pub(crate) fn to_graphql(error: &ApiError) -> async_graphql::Error {
    let (field, rejection) = match error {
        ApiError::InvalidRequest { field, .. } => (Some(field.clone()), None),
        ApiError::InvalidChange(r) | ApiError::VersionConflict(r) | ApiError::IdempotencyKeyReused(r) => {
            let field = match r {
                Rejection::Invalid { field, .. } => field.clone(),
                _ => None,
            };
            (field, serde_json::to_value(r).ok().and_then(|v| async_graphql::Value::from_json(v).ok()))
        }
        _ => (None, None),
    };
    if matches!(error, ApiError::Store(_) | ApiError::Internal(_)) {
        tracing::error!(error = %error, "graphql resolver failed");
    }
    let code = error.code();
    async_graphql::Error::new(error.to_string()).extend_with(move |_, ext| {
        ext.set("code", code);
        if let Some(field) = field {
            ext.set("field", field);
        }
        if let Some(rejection) = rejection {
            ext.set("rejection", rejection);
        }
    })
}

/// Gives every error without a code (parse, validation and limit errors raised by the
/// GraphQL engine itself) the `invalid-request` code, and a clearer message for the limits.
pub(crate) fn tag_engine_errors(errors: &mut [ServerError], max_depth: usize, max_complexity: usize) {
    for error in errors {
        if error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some()) {
            continue;
        }
        match error.message.as_str() {
            "Query is nested too deep." => {
                error.message = format!("the query is nested deeper than the limit of {max_depth} levels");
            }
            "Query is too complex." => {
                error.message = format!("the query selects more than the limit of {max_complexity} fields");
            }
            _ => {}
        }
        let ext = error.extensions.get_or_insert_with(Default::default);
        ext.set("code", "invalid-request");
        ext.set("field", "query");
    }
}
