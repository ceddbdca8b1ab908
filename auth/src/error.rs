//! What can go wrong while establishing who a caller is and what they may see.

/// Errors of the access-control layer. A rejected token is the only variant a client can
/// cause; the others are configuration mistakes found at start.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The bearer token cannot be trusted; the reason never includes the token itself.
    #[error("token rejected: {reason}")]
    TokenRejected { reason: String },
    #[error("cannot sign a token: {0}")]
    Signing(String),
    #[error("key set {path}: {reason}")]
    KeySet { path: String, reason: String },
    #[error("agreement {name}: {reason}")]
    Agreement { name: String, reason: String },
}

impl AuthError {
    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        AuthError::TokenRejected { reason: reason.into() }
    }
}

pub type Result<T> = std::result::Result<T, AuthError>;
