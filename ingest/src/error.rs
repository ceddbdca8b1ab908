//! Failures of an ingest run as a whole. Problems with the file's content (a bad header, a
//! bad row) are not errors: they are lines of the submission report.

use pole_store::StoreError;

/// Why an ingest could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unknown format {0:?} (expected csv, pipe, xlsx, xml or hl7)")]
    UnknownFormat(String),
    #[error("council code {0:?} is not valid (1 to 32 of A-Z, a-z, 0-9, - and _)")]
    BadCouncil(String),
    #[error("profile {name}: {reason}")]
    Profile { name: String, reason: String },
    #[error("the schema pack has no {0}, which the safeguarding profile needs")]
    Schema(String),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
