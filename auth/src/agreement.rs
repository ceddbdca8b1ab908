//! Data-sharing agreements: what a third-party consumer may read, for what purpose, until
//! when. Agreements are data files (TOML), one per agreement.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use pole_model::{Kind, SchemaRegistry};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Result};

/// How precisely plain dates are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatePrecision {
    #[default]
    Day,
    Month,
}

/// One agreement, as its file states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    pub name: String,
    pub purpose: String,
    #[serde(default)]
    pub description: String,
    /// The last day the agreement may be used (UTC); from the next day every read is refused.
    pub expires: NaiveDate,
    /// The kinds of entity the consumer may read.
    pub kinds: Vec<Kind>,
    /// When not empty, only these types (of the kinds above).
    #[serde(default)]
    pub types: Vec<String>,
    /// When not empty, only these attributes; identifiable ones are still generalised or
    /// removed whatever this list says.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Whether attributes classified sensitive may be read.
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub dates: DatePrecision,
    /// The day ages are banded at, fixed for every read under the agreement (an extract's
    /// reference date); without it, the first day of the current year. Never a day the
    /// consumer chooses: banding at a chosen day would let a few reads find a birthday.
    #[serde(default)]
    pub ages_at: Option<NaiveDate>,
}

impl Agreement {
    pub fn parse(name_hint: &str, text: &str, schema: &SchemaRegistry) -> Result<Agreement> {
        let fail = |reason: String| AuthError::Agreement { name: name_hint.to_owned(), reason };
        let agreement: Agreement = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        if agreement.name.is_empty() || !agreement.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(fail("the name is letters, digits and hyphens".into()));
        }
        if agreement.kinds.is_empty() {
            return Err(fail("kinds lists no kind of entity".into()));
        }
        for ty in &agreement.types {
            let def = schema.type_def(ty).map_err(|e| fail(e.to_string()))?;
            if !agreement.kinds.contains(&def.kind) {
                return Err(fail(format!("type {ty} is a {}, which kinds does not list", def.kind)));
            }
        }
        for attribute in &agreement.attributes {
            let known = schema.types().values().any(|def| def.attributes.contains_key(attribute));
            if !known {
                return Err(fail(format!("attribute {attribute} is in no type of the schema")));
            }
        }
        Ok(agreement)
    }

    /// Whether the agreement may be used on `today`.
    pub fn in_force(&self, today: NaiveDate) -> bool {
        today <= self.expires
    }

    /// Whether entities of this kind and type are covered.
    pub fn covers(&self, kind: Kind, entity_type: &str) -> bool {
        self.kinds.contains(&kind) && (self.types.is_empty() || self.types.iter().any(|t| t == entity_type))
    }

    pub fn allows_attribute(&self, name: &str) -> bool {
        self.attributes.is_empty() || self.attributes.iter().any(|a| a == name)
    }
}

/// Every agreement the server knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Agreements {
    by_name: BTreeMap<String, Agreement>,
}

impl Agreements {
    pub fn insert(&mut self, agreement: Agreement) -> Result<()> {
        let name = agreement.name.clone();
        if self.by_name.insert(name.clone(), agreement).is_some() {
            return Err(AuthError::Agreement { name, reason: "defined twice".into() });
        }
        Ok(())
    }

    /// Adds every `*.toml` file of a directory.
    pub fn load_dir(&mut self, dir: &Path, schema: &SchemaRegistry) -> Result<()> {
        let fail = |reason: String| AuthError::Agreement { name: dir.display().to_string(), reason };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            self.insert(Agreement::parse(&path.display().to_string(), &text, schema)?)?;
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Agreement> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The agreements shipped with the default schema pack (`research`).
pub const DEFAULT_AGREEMENTS: &[(&str, &str)] =
    &[("research", include_str!("../../packs/adult-social-care/agreements/research.toml"))];

impl Agreements {
    /// The default pack's agreements.
    pub fn builtin(schema: &SchemaRegistry) -> Result<Agreements> {
        let mut agreements = Agreements::default();
        for (name, text) in DEFAULT_AGREEMENTS {
            agreements.insert(Agreement::parse(name, text, schema)?)?;
        }
        Ok(agreements)
    }
}
