//! Encodings. The journal payload is a transaction's canonical JSON, versioned by the
//! segment header (`journal::SEGMENT_VERSION`); a newer version adds a decoder here and
//! upgrades older payloads as it reads them. Projection values (entity states, history
//! entries, link records, transaction facts) are MessagePack with field names: the store's
//! own, rebuilt from the journal when their format changes (`keys::PROJECTION_VERSION`),
//! and written and read on every commit and read, where JSON's text costs the most.

use pole_model::Transaction;
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// A projection value. Field names are kept, so optional fields may be left out and a
/// reader may take only the fields it needs, as with JSON.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| StoreError::Encoding(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Encoding(e.to_string()))
}
