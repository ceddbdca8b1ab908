//! The key vault: one data key per entity that holds identifiable values, and the sealing of
//! those values. Erasure deletes an entity's key, which makes every copy of its identifiable
//! values unreadable (journal, history, projections, exports) while the journal's bytes, and
//! so its hash chain, stay exactly as they were.
//!
//! Sealed forms (never confused with plain values, which the schema keeps scalar and the
//! model keeps from starting with `sealed:`):
//! - attribute: `{"sealed": "<base64 nonce+ciphertext>"}` (random nonce)
//! - identifier value: `sealed:<base64 nonce+ciphertext>` with a nonce derived from the
//!   entity's key and the value, so the same identifier seals to the same bytes and a
//!   removal matches its addition in any fold order.
//!
//! Indexes hold blind tokens (a keyed hash of the normalised value) computed by the
//! projections from the opened value. Tokens are never journaled: an erased value's token
//! would otherwise outlive its key, and a small value space (birth dates, NHS numbers)
//! could be enumerated against it.
//!
//! File `keys/vault`: header `"POLEVLT1"`, the 32-byte index key and its CRC, then records
//! `id_len:u8 id key:[32] crc:u32`. Adding keys appends and syncs; erasing rewrites the file
//! without the key and renames it into place.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use pole_model::{EntityId, Identifier, SEALED_PREFIX};
use rand::RngCore;
use serde_json::Value;
use sha2::Sha256;

use crate::journal::sync_dir;
use crate::{owner_only, Result, StoreError};

const MAGIC: &[u8; 8] = b"POLEVLT1";

pub type DataKey = [u8; 32];

/// Keys by entity, mirrored in memory.
pub struct Vault {
    path: PathBuf,
    index_key: DataKey,
    keys: HashMap<EntityId, DataKey>,
    /// The vault file opened for appending; reopened after every rewrite. Behind its own
    /// lock so that an append and its sync need only a shared borrow of the vault.
    appender: Mutex<Option<File>>,
}

impl Vault {
    /// Opens `dir/vault`, creating it with a fresh index key.
    pub fn open(dir: &Path) -> Result<Self> {
        owner_only::create_dir_all(dir)?;
        let path = dir.join("vault");
        if !path.exists() {
            let mut index_key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut index_key);
            let mut vault = Vault { path, index_key, keys: HashMap::new(), appender: Mutex::new(None) };
            vault.rewrite()?;
            return Ok(vault);
        }
        owner_only::tighten(&path)?;
        let bytes = fs::read(&path).map_err(StoreError::io(&path))?;
        let corrupt = |reason: &str| StoreError::Corrupt { path: path.clone(), reason: format!("key vault: {reason}") };
        if bytes.len() < 44 || &bytes[..8] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let index_key: DataKey = bytes[8..40].try_into().map_err(|_| corrupt("bad header"))?;
        if crc32c::crc32c(&index_key).to_le_bytes() != bytes[40..44] {
            return Err(corrupt("index key checksum mismatch"));
        }
        let mut keys = HashMap::new();
        let mut at = 44;
        while at < bytes.len() {
            let id_len = bytes[at] as usize;
            let end = at + 1 + id_len + 32 + 4;
            if end > bytes.len() {
                // An append cut short by a crash: its key was never used by a durable transaction.
                tracing::warn!(vault = %path.display(), bytes = bytes.len() - at, "ignoring an interrupted key append");
                break;
            }
            let body = &bytes[at..end - 4];
            if crc32c::crc32c(body).to_le_bytes() != bytes[end - 4..end] {
                return Err(corrupt(&format!("record at byte {at} fails its checksum")));
            }
            let id = std::str::from_utf8(&body[1..1 + id_len])
                .ok()
                .and_then(|s| EntityId::new(s).ok())
                .ok_or_else(|| corrupt(&format!("record at byte {at} has a bad entity id")))?;
            let key: DataKey = body[1 + id_len..].try_into().map_err(|_| corrupt("bad key length"))?;
            keys.insert(id, key);
            at = end;
        }
        Ok(Vault { path, index_key, keys, appender: Mutex::new(None) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn key(&self, id: &EntityId) -> Option<&DataKey> {
        self.keys.get(id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A fresh random key (not yet stored).
    pub fn new_key() -> DataKey {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        key
    }

    /// Appends keys to the file and syncs it, leaving the keys in memory as they were (see
    /// [`Vault::insert`]); called before the journal write that uses them. It needs only a
    /// shared borrow, so a writer holding the vault's lock for reading while the disk syncs
    /// keeps no reader of the vault waiting.
    pub fn append(&self, new_keys: &[(EntityId, DataKey)]) -> Result<()> {
        if new_keys.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(new_keys.len() * 100);
        for (id, key) in new_keys {
            let start = buf.len();
            buf.push(id.as_str().len() as u8);
            buf.extend_from_slice(id.as_str().as_bytes());
            buf.extend_from_slice(key);
            let crc = crc32c::crc32c(&buf[start..]);
            buf.extend_from_slice(&crc.to_le_bytes());
        }
        let mut appender = self.appender.lock();
        let file = match &mut *appender {
            Some(file) => file,
            slot => slot.insert(OpenOptions::new().append(true).open(&self.path).map_err(StoreError::io(&self.path))?),
        };
        file.write_all(&buf).and_then(|()| file.sync_data()).map_err(StoreError::io(&self.path))
    }

    /// Adds keys to those in memory, once [`Vault::append`] made them durable.
    pub fn insert(&mut self, new_keys: &[(EntityId, DataKey)]) {
        for (id, key) in new_keys {
            self.keys.insert(id.clone(), *key);
        }
    }

    /// Destroys an entity's key. Returns whether there was one.
    pub fn destroy(&mut self, id: &EntityId) -> Result<bool> {
        if self.keys.remove(id).is_none() {
            return Ok(false);
        }
        self.rewrite()?;
        Ok(true)
    }

    fn rewrite(&mut self) -> Result<()> {
        // The appender points at the file about to be replaced.
        *self.appender.get_mut() = None;
        let mut buf = Vec::with_capacity(44 + self.keys.len() * 100);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&self.index_key);
        buf.extend_from_slice(&crc32c::crc32c(&self.index_key).to_le_bytes());
        let mut ids: Vec<&EntityId> = self.keys.keys().collect();
        ids.sort();
        for id in ids {
            let start = buf.len();
            buf.push(id.as_str().len() as u8);
            buf.extend_from_slice(id.as_str().as_bytes());
            buf.extend_from_slice(&self.keys[id]);
            let crc = crc32c::crc32c(&buf[start..]);
            buf.extend_from_slice(&crc.to_le_bytes());
        }
        let tmp = self.path.with_extension("tmp");
        let mut file =
            owner_only::options().write(true).create(true).truncate(true).open(&tmp).map_err(StoreError::io(&tmp))?;
        // A leftover of an interrupted rewrite keeps its old mode, which the rename would carry over.
        owner_only::tighten_file(&file, &tmp)?;
        file.write_all(&buf).and_then(|()| file.sync_all()).map_err(StoreError::io(&tmp))?;
        fs::rename(&tmp, &self.path).map_err(StoreError::io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Copies the vault file to another directory (materialising a store elsewhere).
    pub fn copy_to(&self, dir: &Path) -> Result<()> {
        owner_only::create_dir_all(dir)?;
        let target = dir.join("vault");
        fs::copy(&self.path, &target).map_err(StoreError::io(&target))?;
        owner_only::tighten(&target)
    }

    /// The blind index token of a normalised value in a named domain (a search key or an
    /// identifier system).
    pub fn token(&self, domain: &str, normalised: &str) -> Result<String> {
        blind_token(&self.index_key, domain, normalised)
    }
}

// Key material is never printed: a debug line names how many keys there are.
impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("path", &self.path).field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

/// Keys as preparation and the projections see them: the vault's, plus any made for the
/// group being committed and not yet in the vault.
pub trait KeyRing {
    fn key(&self, id: &EntityId) -> Option<DataKey>;
    /// The blind index token of a normalised value in a domain (search key or system).
    fn token(&self, domain: &str, normalised: &str) -> Result<String>;
    /// The values the group being committed has sealed, if it keeps them.
    fn just_sealed(&self) -> Option<&JustSealed> {
        None
    }
}

/// The plaintexts of the values sealed while one group is prepared, by their sealed form,
/// so that preparing and indexing the group does not decrypt what it has just encrypted.
/// It lives as long as the group's own requests, which hold the same values in the clear.
#[derive(Default)]
pub struct JustSealed(RefCell<HashMap<String, Plaintext>>);

/// A value sealed in this group: whose, which field, and its bytes in the clear.
struct Plaintext {
    entity: EntityId,
    field: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for JustSealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JustSealed").field("values", &self.0.borrow().len()).finish_non_exhaustive()
    }
}

impl JustSealed {
    /// Notes a sealed attribute value (`{"sealed": ...}`) and the value it seals.
    pub fn remember_value(&self, entity: &EntityId, attribute: &str, sealed: &Value, plain: &Value) {
        let (Some(text), Ok(bytes)) = (sealed.get("sealed").and_then(Value::as_str), serde_json::to_vec(plain)) else {
            return;
        };
        let plain = Plaintext { entity: entity.clone(), field: attribute.to_owned(), bytes };
        self.0.borrow_mut().insert(text.to_owned(), plain);
    }

    /// Notes a sealed identifier and its value.
    pub fn remember_identifier(&self, entity: &EntityId, sealed: &Identifier, plain: &Identifier) {
        if let Some(text) = sealed.value.strip_prefix(SEALED_PREFIX) {
            let noted = Plaintext {
                entity: entity.clone(),
                field: sealed.system.clone(),
                bytes: plain.value.as_bytes().to_vec(),
            };
            self.0.borrow_mut().insert(text.to_owned(), noted);
        }
    }

    /// The plaintext of `sealed`, if it was sealed in this group for this entity and field.
    fn recall(&self, entity: &EntityId, field: &str, sealed: &str) -> Option<Vec<u8>> {
        match self.0.borrow().get(sealed) {
            Some(plain) if &plain.entity == entity && plain.field == field => Some(plain.bytes.clone()),
            _ => None,
        }
    }
}

/// [`open_value`], taking the plaintext from `just` when this group sealed the value.
pub fn open_value_via(
    key: Option<&DataKey>,
    just: Option<&JustSealed>,
    entity: &EntityId,
    attribute: &str,
    value: &Value,
) -> Option<Value> {
    let Value::Object(map) = value else { return Some(value.clone()) };
    let Some(sealed) = map.get("sealed").and_then(Value::as_str) else { return Some(value.clone()) };
    let plain = match just.and_then(|j| j.recall(entity, attribute, sealed)) {
        Some(plain) => plain,
        None => open_bytes(key?, entity, attribute, sealed)?,
    };
    serde_json::from_slice(&plain).ok()
}

/// [`open_identifier`], taking the plaintext from `just` when this group sealed it.
pub fn open_identifier_via(
    key: Option<&DataKey>,
    just: Option<&JustSealed>,
    entity: &EntityId,
    identifier: &Identifier,
) -> Option<Identifier> {
    let Some(sealed) = identifier.value.strip_prefix(SEALED_PREFIX) else { return Some(identifier.clone()) };
    let plain = match just.and_then(|j| j.recall(entity, &identifier.system, sealed)) {
        Some(plain) => plain,
        None => open_bytes(key?, entity, &identifier.system, sealed)?,
    };
    Some(Identifier { system: identifier.system.clone(), value: String::from_utf8(plain).ok()? })
}

impl KeyRing for Vault {
    fn key(&self, id: &EntityId) -> Option<DataKey> {
        self.keys.get(id).copied()
    }

    fn token(&self, domain: &str, normalised: &str) -> Result<String> {
        blind_token(&self.index_key, domain, normalised)
    }
}

pub fn blind_token(index_key: &DataKey, domain: &str, normalised: &str) -> Result<String> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(index_key).map_err(|e| StoreError::Vault(format!("index key: {e}")))?;
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(normalised.as_bytes());
    Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
}

fn aad(entity: &EntityId, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(entity.as_str().len() + field.len() + 1);
    aad.extend_from_slice(entity.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.as_bytes());
    aad
}

fn seal_bytes(key: &DataKey, entity: &EntityId, field: &str, plain: &[u8], nonce: [u8; 12]) -> Result<String> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad(entity, field) })
        .map_err(|_| StoreError::Vault("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(B64.encode(out))
}

fn open_bytes(key: &DataKey, entity: &EntityId, field: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = B64.decode(sealed).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher.decrypt(Nonce::from_slice(&bytes[..12]), Payload { msg: &bytes[12..], aad: &aad(entity, field) }).ok()
}

fn random_nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

/// Seals an attribute value of `entity`.
pub fn seal_value(key: &DataKey, entity: &EntityId, attribute: &str, value: &Value) -> Result<Value> {
    let plain = serde_json::to_vec(value)?;
    let mut sealed = serde_json::Map::new();
    sealed.insert("sealed".into(), Value::String(seal_bytes(key, entity, attribute, &plain, random_nonce())?));
    Ok(Value::Object(sealed))
}

pub fn is_sealed_value(value: &Value) -> bool {
    matches!(value, Value::Object(map) if map.contains_key("sealed"))
}

/// Opens a sealed attribute value; `None` when the key is gone (erased) or it does not open.
pub fn open_value(key: Option<&DataKey>, entity: &EntityId, attribute: &str, value: &Value) -> Option<Value> {
    open_value_via(key, None, entity, attribute, value)
}

/// Seals an identifier's value deterministically (see the module docs).
pub fn seal_identifier(key: &DataKey, entity: &EntityId, identifier: &Identifier) -> Result<Identifier> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| StoreError::Vault(format!("data key: {e}")))?;
    mac.update(b"identifier-nonce\0");
    mac.update(identifier.system.as_bytes());
    mac.update(&[0]);
    mac.update(identifier.value.as_bytes());
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&mac.finalize().into_bytes()[..12]);
    let sealed = seal_bytes(key, entity, &identifier.system, identifier.value.as_bytes(), nonce)?;
    Ok(Identifier { system: identifier.system.clone(), value: format!("{SEALED_PREFIX}{sealed}") })
}

/// Opens a sealed identifier; plain identifiers come back as they are, `None` when erased.
pub fn open_identifier(key: Option<&DataKey>, entity: &EntityId, identifier: &Identifier) -> Option<Identifier> {
    open_identifier_via(key, None, entity, identifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seal_and_open() {
        let key = Vault::new_key();
        let id = EntityId::new("p1").unwrap();
        let sealed = seal_value(&key, &id, "family_name", &json!("Smith")).unwrap();
        assert!(is_sealed_value(&sealed));
        assert!(!sealed.to_string().contains("Smith"));
        assert_eq!(open_value(Some(&key), &id, "family_name", &sealed), Some(json!("Smith")));
        // Bound to its place: the same ciphertext does not open as another field or entity.
        assert_eq!(open_value(Some(&key), &id, "given_name", &sealed), None);
        assert_eq!(open_value(Some(&key), &EntityId::new("p2").unwrap(), "family_name", &sealed), None);
        assert_eq!(open_value(None, &id, "family_name", &sealed), None);
        assert_eq!(open_value(None, &id, "gender", &json!("1")), Some(json!("1")));

        let ident = Identifier::new("nhs-number", "9434765919");
        let sealed = seal_identifier(&key, &id, &ident).unwrap();
        assert!(!sealed.value.contains("9434765919"));
        assert_eq!(seal_identifier(&key, &id, &ident).unwrap(), sealed, "identifiers seal deterministically");
        assert_eq!(open_identifier(Some(&key), &id, &sealed), Some(ident));
    }

    #[test]
    fn a_value_just_sealed_opens_without_decrypting_only_for_its_own_entity_and_field() {
        let key = Vault::new_key();
        let (a, b) = (EntityId::new("a").unwrap(), EntityId::new("b").unwrap());
        let just = JustSealed::default();
        let name = json!("Ada");
        let sealed = seal_value(&key, &a, "given_name", &name).unwrap();
        just.remember_value(&a, "given_name", &sealed, &name);
        let nhs = Identifier::new("nhs-number", "9434765919");
        let sealed_nhs = seal_identifier(&key, &a, &nhs).unwrap();
        just.remember_identifier(&a, &sealed_nhs, &nhs);
        // No key given: only what this group sealed opens.
        assert_eq!(open_value_via(None, Some(&just), &a, "given_name", &sealed), Some(name.clone()));
        assert_eq!(open_identifier_via(None, Some(&just), &a, &sealed_nhs), Some(nhs.clone()));
        assert_eq!(open_value_via(None, Some(&just), &b, "given_name", &sealed), None, "another entity");
        assert_eq!(open_value_via(None, Some(&just), &a, "family_name", &sealed), None, "another field");
        assert_eq!(open_value_via(None, None, &a, "given_name", &sealed), None);
        // With the key, the same answers as decrypting.
        assert_eq!(
            open_value_via(Some(&key), Some(&just), &a, "given_name", &sealed),
            open_value(Some(&key), &a, "given_name", &sealed)
        );
        assert_eq!(open_identifier_via(Some(&key), Some(&just), &a, &sealed_nhs), Some(nhs));
    }

    #[test]
    fn a_vault_never_prints_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut vault = Vault::open(dir.path()).unwrap();
        let key = Vault::new_key();
        let entity = EntityId::new("a").unwrap();
        vault.append(&[(entity.clone(), key)]).unwrap();
        vault.insert(&[(entity, key)]);
        let printed = format!("{vault:?}");
        assert!(printed.contains("keys: 1"), "{printed}");
        for secret in [key, vault.index_key] {
            assert!(!printed.contains(&format!("{secret:?}")), "{printed}");
        }
    }

    #[test]
    fn keys_survive_reopen_and_destroy_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let a = EntityId::new("a").unwrap();
        let b = EntityId::new("b").unwrap();
        let mut vault = Vault::open(dir.path()).unwrap();
        let token = vault.token("family_name", "SMITH").unwrap();
        let keys = [(a.clone(), Vault::new_key()), (b.clone(), Vault::new_key())];
        vault.append(&keys).unwrap();
        vault.insert(&keys);
        let key_a = *vault.key(&a).unwrap();
        drop(vault);
        let mut vault = Vault::open(dir.path()).unwrap();
        assert_eq!(vault.token("family_name", "SMITH").unwrap(), token);
        assert_eq!(vault.key(&a), Some(&key_a));
        assert!(vault.destroy(&a).unwrap());
        drop(vault);
        let vault = Vault::open(dir.path()).unwrap();
        assert_eq!(vault.key(&a), None);
        assert!(vault.key(&b).is_some());
        let raw = fs::read(dir.path().join("vault")).unwrap();
        assert!(!raw.windows(32).any(|w| w == key_a), "the destroyed key is gone from the file");
    }

    proptest::proptest! {
        #[test]
        fn a_damaged_vault_file_is_refused_or_read_never_panics(
            cut in 0usize..400,
            flip in proptest::option::of((0usize..400, 1u8..)),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let vault = Vault::open(dir.path()).unwrap();
            let ids: Vec<EntityId> = (0..4).map(|i| EntityId::new(format!("E{i}")).unwrap()).collect();
            vault.append(&ids.iter().map(|id| (id.clone(), Vault::new_key())).collect::<Vec<_>>()).unwrap();
            drop(vault);
            let path = dir.path().join("vault");
            let mut bytes = fs::read(&path).unwrap();
            bytes.truncate(cut.min(bytes.len()));
            if let Some((at, mask)) = flip {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= mask;
                }
            }
            fs::write(&path, &bytes).unwrap();
            if let Ok(vault) = Vault::open(dir.path()) {
                proptest::prop_assert!(vault.len() <= ids.len());
            }
        }
    }
}
