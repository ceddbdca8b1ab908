//! Hash chains: each journal transaction (and, later, each access-log record) stores the
//! previous record's hash and its own, so altering any byte anywhere breaks the chain at
//! that record and every later one.
//!
//! Main types: [`Hash`], [`chain_hash`], [`ChainVerifier`] and [`ChainError`].
//!
//! This crate must never do I/O or know how records are stored: callers hand it bytes.
//! It depends on nothing of the workspace, so `store` and `api` can both use it.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The "previous hash" of the first record of a chain.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Hash> {
        let bytes = hex::decode(text).ok()?;
        Some(Hash(bytes.try_into().ok()?))
    }

    /// SHA-256 of arbitrary bytes (used for state digests and request fingerprints).
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Domain separation so a journal hash can never be replayed as an access-log hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Journal,
    AccessLog,
}

impl Chain {
    fn tag(self) -> &'static [u8] {
        match self {
            Chain::Journal => b"pole-ods/journal/v1",
            Chain::AccessLog => b"pole-ods/access-log/v1",
        }
    }
}

/// `SHA-256(tag || prev || len(payload) as u64 LE || payload)` where `payload` is the record's
/// canonical encoding.
pub fn chain_hash(chain: Chain, prev: &Hash, payload: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(chain.tag());
    hasher.update(prev.0);
    hasher.update((payload.len() as u64).to_le_bytes());
    hasher.update(payload);
    Hash(hasher.finalize().into())
}

/// Why a record breaks its chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("record {position} names previous hash {found} but the record before it hashes to {expected}")]
    BrokenLink { position: u64, expected: Hash, found: Hash },
    #[error("record {position} stores hash {stored} but its contents hash to {computed}")]
    ContentMismatch { position: u64, stored: Hash, computed: Hash },
}

/// Walks a chain record by record.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    chain: Chain,
    last: Hash,
    checked: u64,
}

impl ChainVerifier {
    pub fn new(chain: Chain) -> Self {
        ChainVerifier { chain, last: Hash::GENESIS, checked: 0 }
    }

    /// Continues a chain whose earlier part was verified elsewhere.
    pub fn resume(chain: Chain, last: Hash, checked: u64) -> Self {
        ChainVerifier { chain, last, checked }
    }

    /// Checks the next record; `position` is how the caller names it in errors (a sequence).
    pub fn check(&mut self, position: u64, prev: &Hash, stored: &Hash, payload: &[u8]) -> Result<(), ChainError> {
        if *prev != self.last {
            return Err(ChainError::BrokenLink { position, expected: self.last, found: *prev });
        }
        let computed = chain_hash(self.chain, prev, payload);
        if computed != *stored {
            return Err(ChainError::ContentMismatch { position, stored: *stored, computed });
        }
        self.last = *stored;
        self.checked += 1;
        Ok(())
    }

    pub fn last(&self) -> Hash {
        self.last
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(payloads: &[&[u8]]) -> Vec<(Hash, Hash)> {
        let mut prev = Hash::GENESIS;
        payloads
            .iter()
            .map(|p| {
                let h = chain_hash(Chain::Journal, &prev, p);
                let pair = (prev, h);
                prev = h;
                pair
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let payloads: [&[u8]; 3] = [b"one", b"two", b"three"];
        let links = build(&payloads);
        let mut v = ChainVerifier::new(Chain::Journal);
        for (i, ((prev, hash), payload)) in links.iter().zip(payloads).enumerate() {
            v.check(i as u64 + 1, prev, hash, payload).unwrap();
        }
        assert_eq!(v.checked(), 3);
    }

    #[test]
    fn an_altered_payload_is_named() {
        let payloads: [&[u8]; 3] = [b"one", b"two", b"three"];
        let links = build(&payloads);
        let mut v = ChainVerifier::new(Chain::Journal);
        v.check(1, &links[0].0, &links[0].1, b"one").unwrap();
        let err = v.check(2, &links[1].0, &links[1].1, b"twO").unwrap_err();
        assert!(matches!(err, ChainError::ContentMismatch { position: 2, .. }));
    }

    #[test]
    fn chains_are_domain_separated() {
        assert_ne!(
            chain_hash(Chain::Journal, &Hash::GENESIS, b"x"),
            chain_hash(Chain::AccessLog, &Hash::GENESIS, b"x")
        );
    }

    #[test]
    fn hex_round_trip() {
        let h = Hash::of(b"abc");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(h.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
