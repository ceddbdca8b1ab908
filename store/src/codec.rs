//! Encodings. The journal payload is a transaction's canonical JSON, versioned by the
//! segment header (`journal::SEGMENT_VERSION`); a newer version adds a decoder here and
//! upgrades older payloads as it reads them. Projection values (entity states, history
//! entries, link records, transaction facts) are MessagePack with field names: the store's
//! own, rebuilt from the journal when their format changes (`keys::PROJECTION_VERSION`),
//! and written and read on every commit and read, where JSON's text costs the most.
//! Entity states, the largest values by far (field names and provenance repeat in every
//! value), are also LZ4-compressed: a third of their size, for about a microsecond each.

use pole_model::{EntityId, Transaction};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;

use crate::journal::ChangeSpan;
use crate::{Result, StoreError};

/// Canonical: struct fields in declaration order, maps sorted, no whitespace. The hash
/// chain covers exactly these bytes.
pub fn encode_transaction(tx: &Transaction) -> Result<Vec<u8>> {
    // A change encodes to about 350 bytes: sized once, a large transaction's payload is not
    // copied into fresh memory at every doubling.
    let mut payload = Vec::with_capacity(512 * (tx.changes.len() + 1));
    serde_json::to_writer(&mut payload, tx)?;
    Ok(payload)
}

pub fn decode_transaction(payload: &[u8], seq: u64) -> Result<Transaction> {
    let tx: Transaction = serde_json::from_slice(payload)
        .map_err(|e| StoreError::Journal(format!("transaction seq {seq} does not decode: {e}")))?;
    if tx.seq != seq {
        return Err(StoreError::Journal(format!("frame seq {seq} holds a transaction that says seq {}", tx.seq)));
    }
    Ok(tx)
}

/// Where each change of a transaction's payload lies in it, in order: the bytes of its JSON
/// object, found without decoding any change. History entries point at these.
pub fn change_spans(payload: &[u8], seq: u64) -> Result<Vec<ChangeSpan>> {
    #[derive(Deserialize)]
    struct Changes<'a> {
        #[serde(borrow)]
        changes: Vec<&'a serde_json::value::RawValue>,
    }
    let unreadable =
        |e: String| StoreError::Journal(format!("transaction seq {seq}: its changes cannot be located: {e}"));
    let parsed: Changes<'_> = serde_json::from_slice(payload).map_err(|e| unreadable(e.to_string()))?;
    let base = payload.as_ptr() as usize;
    parsed
        .changes
        .iter()
        .map(|raw| {
            let text = raw.get();
            let start = text.as_ptr() as usize - base;
            match (u32::try_from(start), u32::try_from(text.len())) {
                (Ok(start), Ok(len)) => Ok(ChangeSpan { start, len }),
                _ => Err(unreadable(format!("a change at byte {start} lies past 4 GiB"))),
            }
        })
        .collect()
}

/// A projection value. Field names are kept, so optional fields may be left out and a
/// reader may take only the fields it needs, as with JSON.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| StoreError::Encoding(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Encoding(e.to_string()))
}

/// Most bytes an entity state may claim to decompress to: a stored state is far smaller,
/// so a larger claim is damage, refused before anything is allocated for it.
const MAX_STATE_BYTES: usize = 64 << 20;

/// An entity state (or any value kept under `e/`): [`encode`], then LZ4 with the length first.
pub fn encode_state<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(lz4_flex::compress_prepend_size(&encode(value)?))
}

/// Reads what [`encode_state`] wrote for entity `id`, into the state or a view of some of
/// its fields; an error names the entity and what is wrong with its stored state.
pub fn decode_state<T: DeserializeOwned>(id: &EntityId, bytes: &[u8]) -> Result<T> {
    let damaged = |what: String| StoreError::Encoding(format!("the stored state of entity {id}: {what}"));
    match lz4_flex::block::uncompressed_size(bytes) {
        Ok((len, _)) if len <= MAX_STATE_BYTES => {}
        Ok((len, _)) => return Err(damaged(format!("claims {len} bytes uncompressed, over {MAX_STATE_BYTES}"))),
        Err(e) => return Err(damaged(e.to_string())),
    }
    let plain = lz4_flex::decompress_size_prepended(bytes).map_err(|e| damaged(e.to_string()))?;
    decode(&plain).map_err(|e| damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_spans_are_each_change_s_own_json() {
        use pole_model::{Change, ChangeOp, Delta, Kind, Source, Timestamp};
        let change = |n: u8| Change {
            entity: EntityId::new(format!("01J000000000000000000000{n:02}")).unwrap(),
            valid_time: n.is_multiple_of(2).then(|| Timestamp::from_micros(1_700_000_000_000_000)),
            row: Some(u64::from(n)),
            op: ChangeOp::Create { kind: Kind::Person, entity_type: "person".into(), delta: Delta::default() },
        };
        let tx = Transaction {
            seq: 4,
            recorded_at: Timestamp::from_micros(1_800_000_000_000_000),
            actor: "a \"quoted\" [actor]".into(),
            role: "admin".into(),
            source: Source { council: Some("305".into()), ..Source::default() },
            idempotency_key: Some("{\"changes\": []}".into()),
            reason: None,
            request_fingerprint: None,
            refs: [("changes".to_owned(), EntityId::new("01J0000000000000000000000R").unwrap())].into(),
            changes: (0..3).map(change).collect(),
        };
        let payload = encode_transaction(&tx).unwrap();
        let spans = change_spans(&payload, 4).unwrap();
        assert_eq!(spans.len(), 3);
        for (span, change) in spans.iter().zip(&tx.changes) {
            let bytes = &payload[span.start as usize..(span.start + span.len) as usize];
            assert_eq!(bytes, serde_json::to_vec(change).unwrap().as_slice());
            assert_eq!(&serde_json::from_slice::<Change>(bytes).unwrap(), change);
        }
        assert!(change_spans(b"{\"changes\": [", 4).is_err());
    }

    #[test]
    fn states_round_trip_compressed_and_damage_is_an_error() {
        let id = EntityId::new("01J0000000000000000000000P").unwrap();
        let value = serde_json::json!({"attributes": {"name": {"value": "Ashdown Lodge", "seq": 7}}, "version": 3});
        let bytes = encode_state(&value).unwrap();
        assert_eq!(decode_state::<serde_json::Value>(&id, &bytes).unwrap(), value);
        assert!(decode_state::<serde_json::Value>(&id, &bytes[..2]).is_err());
        assert!(decode_state::<serde_json::Value>(&id, &[0xff, 0xff, 0xff, 0x7f, 0]).is_err(), "a huge claimed size");
        let truncated = decode_state::<serde_json::Value>(&id, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(truncated.to_string().contains(id.as_str()), "the error names the entity: {truncated}");
    }
}
