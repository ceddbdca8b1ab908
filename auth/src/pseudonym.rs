//! Per-agreement pseudonyms: stable across calls, unlinkable between agreements, and
//! reversible only by this server.
//!
//! A pseudonym is a deterministic authenticated encryption of the entity id in the SIV
//! style: the nonce is a keyed HMAC of the id (so the same id always gives the same
//! pseudonym under one agreement) and the id is encrypted with ChaCha20 under that nonce.
//! Reversing it decrypts and checks the HMAC again, so a forged or foreign pseudonym is
//! refused. Both keys derive from the server's pseudonym secret and the agreement name.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hmac::{Hmac, Mac};
use pole_model::EntityId;
use sha2::Sha256;

const PREFIX: &str = "psn_";
const NONCE_LEN: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// Issues and reverses one agreement's pseudonyms.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac_key: [u8; 32],
    cipher_key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(..)")
    }
}

fn derive(secret: &[u8], label: &str, agreement: &str) -> [u8; 32] {
    #[allow(clippy::expect_used)] // HMAC accepts keys of every length
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.update(&[0]);
    mac.update(agreement.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Pseudonymiser {
    pub fn new(server_secret: &[u8], agreement: &str) -> Self {
        Pseudonymiser {
            mac_key: derive(server_secret, "pole-ods pseudonym mac v1", agreement),
            cipher_key: derive(server_secret, "pole-ods pseudonym cipher v1", agreement),
        }
    }

    fn nonce(&self, label: u8, data: &[u8]) -> [u8; NONCE_LEN] {
        #[allow(clippy::expect_used)] // the key is 32 bytes
        let mut mac = HmacSha256::new_from_slice(&self.mac_key).expect("HMAC takes any key length");
        mac.update(&[label]);
        mac.update(data);
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&full[..NONCE_LEN]);
        nonce
    }

    fn seal(&self, label: u8, data: &[u8]) -> String {
        let nonce = self.nonce(label, data);
        let mut bytes = data.to_vec();
        ChaCha20::new(&self.cipher_key.into(), &nonce.into()).apply_keystream(&mut bytes);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&bytes);
        B64.encode(out)
    }

    fn open(&self, label: u8, text: &str, max_len: usize) -> Option<Vec<u8>> {
        let bytes = B64.decode(text).ok()?;
        if bytes.len() <= NONCE_LEN || bytes.len() > NONCE_LEN + max_len {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut plain = sealed.to_vec();
        ChaCha20::new(&self.cipher_key.into(), &nonce.into()).apply_keystream(&mut plain);
        (self.nonce(label, &plain) == nonce).then_some(plain)
    }

    pub fn pseudonym(&self, id: &EntityId) -> String {
        format!("{PREFIX}{}", self.seal(b'i', id.as_str().as_bytes()))
    }

    /// The entity behind a pseudonym this agreement issued, or `None` for anything else.
    pub fn reveal(&self, pseudonym: &str) -> Option<EntityId> {
        let plain = self.open(b'i', pseudonym.strip_prefix(PREFIX)?, 64)?;
        EntityId::new(String::from_utf8(plain).ok()?).ok()
    }

    /// Seals a paging cursor (an index key, which holds an entity id) so that it reveals
    /// nothing to the consumer and cannot be forged.
    pub fn seal_cursor(&self, key: &[u8]) -> String {
        self.seal(b'c', key)
    }

    pub fn open_cursor(&self, text: &str) -> Option<Vec<u8>> {
        self.open(b'c', text, 4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stable_reversible_and_unlinkable() {
        let research = Pseudonymiser::new(b"secret", "research");
        let commissioning = Pseudonymiser::new(b"secret", "commissioning");
        let id = EntityId::new("01J0000000000000000000000A").unwrap();
        let p = research.pseudonym(&id);
        assert_eq!(p, research.pseudonym(&id));
        assert_ne!(p, commissioning.pseudonym(&id));
        assert_eq!(research.reveal(&p), Some(id.clone()));
        assert_eq!(commissioning.reveal(&p), None);
        assert_eq!(Pseudonymiser::new(b"other", "research").reveal(&p), None);
        assert!(!p.contains(id.as_str()));
        let cursor = research.seal_cursor(b"k/person\0person\0ID");
        assert_eq!(research.open_cursor(&cursor).as_deref(), Some(&b"k/person\0person\0ID"[..]));
        assert_eq!(commissioning.open_cursor(&cursor), None);
        assert_eq!(research.reveal(&format!("psn_{cursor}")), None);
    }

    proptest! {
        #[test]
        fn round_trips_and_refuses_tampering(id in "[A-Za-z0-9_-]{1,64}", flip in 0usize..200) {
            let p = Pseudonymiser::new(b"k", "a");
            let id = EntityId::new(id).unwrap();
            let text = p.pseudonym(&id);
            prop_assert_eq!(p.reveal(&text), Some(id.clone()));
            let mut bytes = text.into_bytes();
            let at = PREFIX.len() + flip % (bytes.len() - PREFIX.len());
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert_ne!(p.reveal(&tampered), Some(id));
        }
    }
}
