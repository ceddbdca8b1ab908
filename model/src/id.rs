//! Entity ids and external identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A store-assigned, stable, opaque entity id (a ULID in practice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(String);

/// A council code as every layer accepts it (tokens, submissions, listings, the council
/// index): 1 to 32 ASCII letters, digits, `-` or `_`.
pub fn is_council_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl EntityId {
    /// Accepts 1 to 64 characters of `[0-9A-Za-z_-]`: every id the store assigns, and
    /// nothing that could smuggle a key separator into an index.
    pub fn new(text: impl Into<String>) -> Result<Self, ModelError> {
        let text = text.into();
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(EntityId(text))
        } else {
            Err(ModelError::BadEntityId(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An external identifier: a `(system, value)` pair such as `("nhs-number", "9434765919")`
/// or `("council:305:client", "6789")`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// Prefix of an identifier value that the store has sealed (encrypted) at rest. Plain values
/// may not start with it, so a sealed value is never mistaken for a plain one.
pub const SEALED_PREFIX: &str = "sealed:";

impl Identifier {
    pub fn new(system: impl Into<String>, value: impl Into<String>) -> Self {
        Identifier { system: system.into(), value: value.into() }
    }

    /// The council whose namespace the identifier's system is (`council:305:client` is
    /// council 305's), if it is one: only that council's records carry it.
    pub fn council(&self) -> Option<&str> {
        let rest = self.system.strip_prefix("council:")?;
        let (code, _) = rest.split_once(':')?;
        Some(code)
    }

    /// Checks the shape every identifier must have, whatever its system.
    pub fn check_shape(&self) -> Result<(), ModelError> {
        let system_ok = !self.system.is_empty()
            && self.system.len() <= 128
            && self.system.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
        if !system_ok {
            return Err(ModelError::BadIdentifierSystem(self.system.clone()));
        }
        let value_ok = !self.value.trim().is_empty()
            && self.value.len() <= 256
            && !self.value.chars().any(char::is_control)
            && !self.value.starts_with(SEALED_PREFIX);
        if !value_ok {
            return Err(ModelError::BadIdentifierValue {
                system: self.system.clone(),
                reason: "must be 1 to 256 printable characters and not start with \"sealed:\"",
            });
        }
        Ok(())
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.system, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_refuse_separators() {
        assert!(EntityId::new("01HZX3J4K5M6N7P8Q9R0S1T2V3").is_ok());
        assert!(EntityId::new("a/b").is_err());
        assert!(EntityId::new("").is_err());
        assert!(EntityId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn identifier_shape() {
        assert!(Identifier::new("council:305:client", "6789").check_shape().is_ok());
        assert_eq!(Identifier::new("council:305:client", "6789").council(), Some("305"));
        assert_eq!(Identifier::new("nhs-number", "9434765919").council(), None);
        assert_eq!(Identifier::new("council:305", "1").council(), None);
        assert!(Identifier::new("nhs number", "1").check_shape().is_err());
        assert!(Identifier::new("nhs-number", " ").check_shape().is_err());
        assert!(Identifier::new("nhs-number", "sealed:abc").check_shape().is_err());
    }
}
