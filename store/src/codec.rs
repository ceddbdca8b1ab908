//! The journal payload encoding: a transaction's canonical JSON. The encoding is versioned
//! by the segment header (`journal::SEGMENT_VERSION`); a newer version adds a decoder here
//! and upgrades older payloads as it reads them.

use pole_model::Transaction;

use crate::{Result, StoreError};

/// Canonical: struct fields in declaration order, maps sorted, no whitespace. The hash
/// chain covers exactly these bytes.
pub fn encode_transaction(tx: &Transaction) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(tx)?)
}

pub fn decode_transaction(payload: &[u8], seq: u64) -> Result<Transaction> {
    let tx: Transaction = serde_json::from_slice(payload)
        .map_err(|e| StoreError::Journal(format!("transaction seq {seq} does not decode: {e}")))?;
    if tx.seq != seq {
        return Err(StoreError::Journal(format!("frame seq {seq} holds a transaction that says seq {}", tx.seq)));
    }
    Ok(tx)
}
