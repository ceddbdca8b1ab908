//! Store failures: the disk, the data directory, or a broken invariant. Expected outcomes of
//! a commit (a refused transaction) are not errors: see [`crate::Rejection`].

use std::path::PathBuf;

/// A failure of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("projection backend: {0}")]
    Backend(String),
    #[error(
        "data directory {path} was written by format version {found}; this pole-ods reads version {supported}. \
         Use a newer pole-ods; the directory was not changed"
    )]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("data directory {path} is not usable: {reason}. Nothing was changed; inspect it with `pole-ods verify`")]
    Corrupt { path: PathBuf, reason: String },
    #[error("data directory {0} is in use by another pole-ods process")]
    Locked(PathBuf),
    #[error("journal: {0}")]
    Journal(String),
    #[error("encoding: {0}")]
    Encoding(String),
    #[error("the store's writer has stopped after an earlier failure: {0}")]
    WriterStopped(String),
    #[error("key vault: {0}")]
    Vault(String),
    /// A paging cursor that does not belong to the listing it was passed to.
    #[error("the cursor does not belong to this listing")]
    BadCursor,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Encoding(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
