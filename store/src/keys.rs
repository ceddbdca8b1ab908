//! The projection keyspace. One ordered keyspace, a short prefix per projection; `\0`
//! separates parts (entity ids, systems, roles and council codes never contain it).
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `m/` | `applied`, `stats`, `format` | last applied seq, counters, projection format |
//! | `e/` | id | current [`EntityState`](pole_model::EntityState), sealed values as in the journal, LZ4-compressed |
//! | `h/` | id `\0` seq:be8 idx:be4 | where the change lies in the journal (frame, bytes), its recorded time and council |
//! | `t/` | seq:be8 | transaction facts and its frame's location |
//! | `r/` | recorded micros:be8 | seq (as-of by time) |
//! | `i/` | system `\0` value-or-token `\0` id | identifier index |
//! | `k/` | kind `\0` type `\0` id | kind and type index |
//! | `c/` | council `\0` id | each contributor's own records (the entities its transactions created) |
//! | `s/` | search key `\0` value-or-token `\0` id | search index |
//! | `lo/`, `li/` | from `\0` role `\0` to `\0` seq:be8 (`li/` swaps from and to) | link record |
//! | `x/` | writer's namespace `\0` idempotency key | seq and request fingerprint |
//! | `o/` | id | people who currently object to use beyond direct care (opt-out) |

use pole_model::{EntityId, Kind, Timestamp};

pub const APPLIED: &[u8] = b"m/applied";
pub const STATS: &[u8] = b"m/stats";
pub const PROJECTION_FORMAT: &[u8] = b"m/format";
/// The projections' own format: a store whose projections were built by an older one
/// rebuilds them from the journal on open. 2: the opt-out index. 3: values in MessagePack
/// (`codec::encode`), no longer JSON. 4: entity states LZ4-compressed (`codec::encode_state`).
/// 5: history entries point at their changes in the journal instead of copying them.
/// 6: the council index holds each contributor's own records (those it created), and
/// idempotency keys live in their writer's namespace.
pub const PROJECTION_VERSION: u32 = 6;

pub fn opted_out(id: &EntityId) -> Vec<u8> {
    join("o/", &[id.as_str().as_bytes()])
}

fn join(prefix: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    key.extend_from_slice(prefix.as_bytes());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(0);
        }
        key.extend_from_slice(part);
    }
    key
}

pub fn entity(id: &EntityId) -> Vec<u8> {
    join("e/", &[id.as_str().as_bytes()])
}

pub fn history_prefix(id: &EntityId) -> Vec<u8> {
    let mut key = join("h/", &[id.as_str().as_bytes()]);
    key.push(0);
    key
}

pub fn history(id: &EntityId, seq: u64, change_idx: usize) -> Vec<u8> {
    let mut key = history_prefix(id);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&(change_idx as u32).to_be_bytes());
    key
}

/// The sequence and change index at the end of a [`history`] key.
pub fn history_position(key: &[u8]) -> Option<(u64, u32)> {
    let tail = key.len().checked_sub(12).and_then(|at| key.get(at..))?;
    let (seq, idx) = tail.split_at(8);
    Some((u64::from_be_bytes(seq.try_into().ok()?), u32::from_be_bytes(idx.try_into().ok()?)))
}

pub fn transaction(seq: u64) -> Vec<u8> {
    let mut key = b"t/".to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub const TRANSACTION_PREFIX: &[u8] = b"t/";

/// Orders signed microseconds as unsigned big-endian bytes.
pub fn recorded(at: Timestamp) -> Vec<u8> {
    let mut key = b"r/".to_vec();
    key.extend_from_slice(&((at.micros() as u64) ^ (1 << 63)).to_be_bytes());
    key
}

pub const RECORDED_PREFIX: &[u8] = b"r/";

pub fn identifier_prefix(system: &str, value_or_token: &str) -> Vec<u8> {
    let mut key = join("i/", &[system.as_bytes(), value_or_token.as_bytes()]);
    key.push(0);
    key
}

pub fn identifier(system: &str, value_or_token: &str, id: &EntityId) -> Vec<u8> {
    let mut key = identifier_prefix(system, value_or_token);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

pub fn kind_type_prefix(kind: Option<Kind>, entity_type: Option<&str>) -> Vec<u8> {
    match (kind, entity_type) {
        (Some(kind), Some(ty)) => {
            let mut key = join("k/", &[kind.as_str().as_bytes(), ty.as_bytes()]);
            key.push(0);
            key
        }
        (Some(kind), None) => {
            let mut key = join("k/", &[kind.as_str().as_bytes()]);
            key.push(0);
            key
        }
        _ => b"k/".to_vec(),
    }
}

pub fn kind_type(kind: Kind, entity_type: &str, id: &EntityId) -> Vec<u8> {
    let mut key = kind_type_prefix(Some(kind), Some(entity_type));
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

pub fn council_prefix(council: &str) -> Vec<u8> {
    let mut key = join("c/", &[council.as_bytes()]);
    key.push(0);
    key
}

pub fn council(council: &str, id: &EntityId) -> Vec<u8> {
    let mut key = council_prefix(council);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

pub fn search_prefix(search_key: &str, value_or_token: &str) -> Vec<u8> {
    let mut key = join("s/", &[search_key.as_bytes(), value_or_token.as_bytes()]);
    key.push(0);
    key
}

pub fn search(search_key: &str, value_or_token: &str, id: &EntityId) -> Vec<u8> {
    let mut key = search_prefix(search_key, value_or_token);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// Direction of a link as seen from the entity it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Links this entity makes: `(this, role, other)`.
    Out,
    /// Links made to this entity: `(other, role, this)`.
    In,
}

fn link_prefix_for(direction: Direction) -> &'static str {
    match direction {
        Direction::Out => "lo/",
        Direction::In => "li/",
    }
}

/// All link records of `near` in a direction, optionally of one role and one other end.
pub fn link_prefix(direction: Direction, near: &EntityId, role: Option<&str>, far: Option<&EntityId>) -> Vec<u8> {
    let mut key = join(link_prefix_for(direction), &[near.as_str().as_bytes()]);
    key.push(0);
    if let Some(role) = role {
        key.extend_from_slice(role.as_bytes());
        key.push(0);
        if let Some(far) = far {
            key.extend_from_slice(far.as_str().as_bytes());
            key.push(0);
        }
    }
    key
}

pub fn link(direction: Direction, near: &EntityId, role: &str, far: &EntityId, added_seq: u64) -> Vec<u8> {
    let mut key = link_prefix(direction, near, Some(role), Some(far));
    key.extend_from_slice(&added_seq.to_be_bytes());
    key
}

/// Splits a link key into `(role, far end, added seq)`.
pub fn parse_link(key: &[u8], prefix_len: usize) -> Option<(String, EntityId, u64)> {
    let rest = key.get(prefix_len..)?;
    let (seq_bytes, head) = (rest.get(rest.len().checked_sub(8)?..)?, rest.get(..rest.len() - 8)?);
    let seq = u64::from_be_bytes(seq_bytes.try_into().ok()?);
    let head = head.strip_suffix(&[0])?;
    let mut parts = head.split(|b| *b == 0);
    let role = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let far = EntityId::new(std::str::from_utf8(parts.next()?).ok()?).ok()?;
    Some((role, far, seq))
}

/// The idempotency index key of `key` in a writer's namespace (see
/// [`idempotency_namespace`](crate::idempotency_namespace)).
pub fn idempotency(namespace: &str, key: &str) -> Vec<u8> {
    join("x/", &[namespace.as_bytes(), key.as_bytes()])
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// The entity id at the end of an index key (after the last `\0`).
pub fn trailing_id(key: &[u8]) -> Option<EntityId> {
    let pos = key.iter().rposition(|b| *b == 0)?;
    EntityId::new(std::str::from_utf8(&key[pos + 1..]).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_keys_round_trip() {
        let a = EntityId::new("A1").unwrap();
        let b = EntityId::new("B2").unwrap();
        let key = link(Direction::Out, &a, "subject", &b, 42);
        let prefix = link_prefix(Direction::Out, &a, None, None);
        assert_eq!(parse_link(&key, prefix.len()), Some(("subject".into(), b, 42)));
    }

    #[test]
    fn recorded_keys_sort_like_times() {
        let early = recorded(Timestamp::from_micros(-5));
        let late = recorded(Timestamp::from_micros(5));
        assert!(early < late);
    }

    #[test]
    fn trailing_ids() {
        let id = EntityId::new("X9").unwrap();
        assert_eq!(trailing_id(&identifier("nhs-number", "tok", &id)), Some(id));
    }
}
