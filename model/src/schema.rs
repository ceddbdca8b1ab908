//! The schema registry: entity types, their attributes, identifier systems and link rules,
//! loaded from a schema pack (a TOML file plus code lists) so a new domain is data, not code.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::CodeList;
use crate::nhs::normalise_nhs_number;
use crate::{Identifier, Kind, ModelError, Survivorship};

/// How an attribute's values are governed. Access rules are written against these, never
/// against field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Identifies a person: names, dates of birth, NHS numbers, postcodes, addresses, client ids.
    /// Sealed at rest with the entity's key so that erasure can make it unreadable.
    Identifiable,
    /// Special-category or otherwise sensitive: ethnicity, health, safeguarding details.
    Sensitive,
    Plain,
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Classification::Identifiable => "identifiable",
            Classification::Sensitive => "sensitive",
            Classification::Plain => "plain",
        })
    }
}

/// The value type of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Text,
    Integer,
    Decimal,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    /// A code from the attribute's code list.
    Code,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ValueType::Text => "text",
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
            ValueType::Boolean => "boolean",
            ValueType::Date => "date (YYYY-MM-DD)",
            ValueType::Datetime => "datetime (RFC 3339)",
            ValueType::Code => "code",
        };
        f.write_str(name)
    }
}

/// Which search index an attribute feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKey {
    FamilyName,
    GivenName,
    BirthDate,
    Postcode,
}

impl SearchKey {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKey::FamilyName => "family_name",
            SearchKey::GivenName => "given_name",
            SearchKey::BirthDate => "birth_date",
            SearchKey::Postcode => "postcode",
        }
    }

    /// The form a value is indexed and searched under: names upper-cased with punctuation and
    /// spacing removed, postcodes without spaces, dates as they are.
    pub fn normalise(self, text: &str) -> String {
        match self {
            SearchKey::BirthDate => text.trim().to_owned(),
            SearchKey::FamilyName | SearchKey::GivenName | SearchKey::Postcode => {
                text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
            }
        }
    }
}

/// A coarser form of an identifiable value that minimised views may show in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generalisation {
    /// A date of birth becomes an age band at the read's instant, everyone 90 or over "90+".
    AgeBand,
    /// A postcode becomes its district (the outward code): `LS1 4AP` becomes `LS1`.
    PostcodeDistrict,
    /// A date keeps its year and month.
    Month,
}

/// One attribute of an entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub required: bool,
    pub classification: Classification,
    /// The code list a `code` attribute draws from.
    #[serde(default)]
    pub code_list: Option<String>,
    /// When false, a value outside the code list is kept (and reported by ingest) instead of
    /// rejected: councils send local codes that mapping has not caught up with yet.
    #[serde(default = "default_true")]
    pub strict: bool,
    #[serde(default)]
    pub search: Option<SearchKey>,
    /// How minimised views (third-party consumers) coarsen an identifiable value instead of
    /// removing it.
    #[serde(default)]
    pub generalise: Option<Generalisation>,
    #[serde(default)]
    pub description: String,
}

fn default_true() -> bool {
    true
}

/// An entity type such as `person`, `referral` or `care_setting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDef {
    pub kind: Kind,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeDef>,
}

/// A check applied to identifier values of a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifierCheck {
    /// Ten digits with a Modulus 11 check digit; stored without spaces.
    NhsNumber,
    /// CQC location and provider ids: `1-` followed by digits.
    Cqc,
}

/// An identifier system. `system` may contain `*` standing for one `:`-free segment, as in
/// `council:*:client`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierSystem {
    pub system: String,
    pub classification: Classification,
    #[serde(default)]
    pub check: Option<IdentifierCheck>,
    #[serde(default)]
    pub description: String,
}

impl IdentifierSystem {
    fn matches(&self, system: &str) -> bool {
        let mut pattern = self.system.split(':');
        let mut actual = system.split(':');
        loop {
            match (pattern.next(), actual.next()) {
                (None, None) => return true,
                (Some("*"), Some(seg)) if !seg.is_empty() => {}
                (Some(p), Some(a)) if p == a => {}
                _ => return false,
            }
        }
    }
}

/// An allowed link role: `from` and `to` list kinds or type names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRule {
    pub role: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    name: String,
    version: u32,
    #[serde(default)]
    description: String,
    #[serde(default)]
    identifier: Vec<IdentifierSystem>,
    #[serde(default)]
    types: BTreeMap<String, TypeDef>,
    #[serde(default)]
    link: Vec<LinkRule>,
    #[serde(default)]
    survivorship: Survivorship,
}

/// The loaded schema pack: every check the store makes on a change's shape goes through here.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    pub name: String,
    pub version: u32,
    pub description: String,
    types: BTreeMap<String, TypeDef>,
    identifiers: Vec<IdentifierSystem>,
    links: Vec<LinkRule>,
    code_lists: BTreeMap<String, CodeList>,
    survivorship: Survivorship,
}

/// What is wrong with one field of a change: the store adds which change and entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("unknown entity type {0:?}")]
    UnknownType(String),
    #[error("type {entity_type:?} is a {actual}, not a {expected}")]
    WrongKind { entity_type: String, expected: Kind, actual: Kind },
    #[error("type {entity_type:?} has no attribute {attribute:?}")]
    UnknownAttribute { entity_type: String, attribute: String },
    #[error("attribute {attribute:?} must be a {expected}, got {got}")]
    WrongValueType { attribute: String, expected: ValueType, got: String },
    #[error("attribute {attribute:?}: {value:?} is not a code of list {list:?}")]
    CodeOutsideList { attribute: String, value: String, list: String },
    #[error("attribute {attribute:?} is required")]
    MissingRequired { attribute: String },
    #[error("identifier system {0:?} is not registered in the schema")]
    UnknownIdentifierSystem(String),
    #[error("identifier {system:?}: {reason}")]
    BadIdentifier { system: String, reason: String },
    #[error("link role {role:?} is not allowed from {from} to {to}")]
    LinkNotAllowed { role: String, from: String, to: String },
}

impl SchemaRegistry {
    /// Builds a registry from a pack's TOML text and its code lists `(name, csv text)`.
    /// Cross-references (code lists, link endpoints) are checked here, once, so a bad pack
    /// fails at start with the name of what is wrong.
    pub fn from_sources<'a>(
        pack_toml: &str,
        code_lists: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ModelError> {
        let pack: PackFile = toml::from_str(pack_toml).map_err(|e| ModelError::BadSchemaPack(e.to_string()))?;
        let mut lists = BTreeMap::new();
        for (name, text) in code_lists {
            lists.insert(name.to_owned(), CodeList::from_csv(name, text)?);
        }
        let bad = |msg: String| Err(ModelError::BadSchemaPack(msg));
        for (type_name, def) in &pack.types {
            for (attr_name, attr) in &def.attributes {
                match (&attr.value_type, &attr.code_list) {
                    (ValueType::Code, None) => {
                        return bad(format!("{type_name}.{attr_name}: a code attribute needs `code_list`"))
                    }
                    (ValueType::Code, Some(list)) if !lists.contains_key(list) => {
                        return bad(format!("{type_name}.{attr_name}: code list {list:?} is not loaded"))
                    }
                    (t, Some(_)) if *t != ValueType::Code => {
                        return bad(format!("{type_name}.{attr_name}: only code attributes take `code_list`"))
                    }
                    _ => {}
                }
            }
        }
        for rule in &pack.link {
            for end in rule.from.iter().chain(&rule.to) {
                if end.parse::<Kind>().is_err() && !pack.types.contains_key(end) {
                    return bad(format!("link role {:?}: {end:?} is neither a kind nor a type", rule.role));
                }
            }
        }
        for name in pack.survivorship.attributes.keys() {
            if !pack.types.values().any(|def| def.attributes.contains_key(name)) {
                return bad(format!("survivorship: attribute {name:?} is in no type of the pack"));
            }
        }
        Ok(SchemaRegistry {
            survivorship: pack.survivorship,
            name: pack.name,
            version: pack.version,
            description: pack.description,
            types: pack.types,
            identifiers: pack.identifier,
            links: pack.link,
            code_lists: lists,
        })
    }

    pub fn types(&self) -> &BTreeMap<String, TypeDef> {
        &self.types
    }

    pub fn type_def(&self, entity_type: &str) -> Result<&TypeDef, FieldError> {
        self.types.get(entity_type).ok_or_else(|| FieldError::UnknownType(entity_type.to_owned()))
    }

    pub fn attribute(&self, entity_type: &str, attribute: &str) -> Result<&AttributeDef, FieldError> {
        self.type_def(entity_type)?.attributes.get(attribute).ok_or_else(|| FieldError::UnknownAttribute {
            entity_type: entity_type.to_owned(),
            attribute: attribute.to_owned(),
        })
    }

    pub fn code_list(&self, name: &str) -> Option<&CodeList> {
        self.code_lists.get(name)
    }

    pub fn code_lists(&self) -> &BTreeMap<String, CodeList> {
        &self.code_lists
    }

    /// How the national view of a person picks each attribute from its source records.
    pub fn survivorship(&self) -> &Survivorship {
        &self.survivorship
    }

    pub fn link_rules(&self) -> &[LinkRule] {
        &self.links
    }

    pub fn identifier_systems(&self) -> &[IdentifierSystem] {
        &self.identifiers
    }

    pub fn identifier_system(&self, system: &str) -> Result<&IdentifierSystem, FieldError> {
        self.identifiers
            .iter()
            .find(|s| s.matches(system))
            .ok_or_else(|| FieldError::UnknownIdentifierSystem(system.to_owned()))
    }

    /// Checks a value against its attribute definition and returns it in canonical form
    /// (dates normalised, NHS-style whitespace trimmed). `Value::Null` is never valid: an
    /// attribute is removed with an unset, not set to null.
    pub fn check_value(&self, entity_type: &str, attribute: &str, value: &Value) -> Result<Value, FieldError> {
        let def = self.attribute(entity_type, attribute)?;
        let wrong = || FieldError::WrongValueType {
            attribute: attribute.to_owned(),
            expected: def.value_type,
            got: describe(value),
        };
        let checked = match def.value_type {
            ValueType::Text => match value {
                Value::String(s) if !s.trim().is_empty() => Value::String(s.trim().to_owned()),
                _ => return Err(wrong()),
            },
            ValueType::Integer => match value {
                Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
                _ => return Err(wrong()),
            },
            ValueType::Decimal => match value {
                Value::Number(_) => value.clone(),
                _ => return Err(wrong()),
            },
            ValueType::Boolean => match value {
                Value::Bool(_) => value.clone(),
                _ => return Err(wrong()),
            },
            ValueType::Date => match value {
                Value::String(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                    Ok(d) if (1..=9999).contains(&chrono::Datelike::year(&d)) => {
                        Value::String(d.format("%Y-%m-%d").to_string())
                    }
                    _ => return Err(wrong()),
                },
                _ => return Err(wrong()),
            },
            ValueType::Datetime => match value {
                Value::String(s) => match crate::Timestamp::parse(s.trim()) {
                    Ok(_) if DateTime::parse_from_rfc3339(s.trim()).is_ok() => Value::String(s.trim().to_owned()),
                    _ => return Err(wrong()),
                },
                _ => return Err(wrong()),
            },
            ValueType::Code => match value {
                Value::String(s) if !s.trim().is_empty() => {
                    let code = s.trim();
                    let list_name = def.code_list.as_deref().unwrap_or_default();
                    let known = self.code_lists.get(list_name).is_some_and(|l| l.contains(code));
                    if !known && def.strict {
                        return Err(FieldError::CodeOutsideList {
                            attribute: attribute.to_owned(),
                            value: code.to_owned(),
                            list: list_name.to_owned(),
                        });
                    }
                    Value::String(code.to_owned())
                }
                _ => return Err(wrong()),
            },
        };
        Ok(checked)
    }

    /// Checks an identifier against its system and returns it in canonical form.
    pub fn check_identifier(&self, identifier: &Identifier) -> Result<Identifier, FieldError> {
        identifier
            .check_shape()
            .map_err(|e| FieldError::BadIdentifier { system: identifier.system.clone(), reason: e.to_string() })?;
        let system = self.identifier_system(&identifier.system)?;
        let value = match system.check {
            Some(IdentifierCheck::NhsNumber) => {
                normalise_nhs_number(&identifier.value).map_err(|e| FieldError::BadIdentifier {
                    system: identifier.system.clone(),
                    reason: format!("{:?} is not a valid NHS number: {e}", identifier.value),
                })?
            }
            Some(IdentifierCheck::Cqc) => {
                let v = identifier.value.trim();
                let ok = v.len() > 2 && v.starts_with("1-") && v[2..].bytes().all(|b| b.is_ascii_digit());
                if !ok {
                    return Err(FieldError::BadIdentifier {
                        system: identifier.system.clone(),
                        reason: format!("{v:?} is not a CQC id (1- followed by digits)"),
                    });
                }
                v.to_owned()
            }
            None => identifier.value.trim().to_owned(),
        };
        Ok(Identifier { system: identifier.system.clone(), value })
    }

    /// Checks that `role` may link an entity of `(from_kind, from_type)` to one of `(to_kind, to_type)`.
    pub fn check_link(
        &self,
        role: &str,
        (from_kind, from_type): (Kind, &str),
        (to_kind, to_type): (Kind, &str),
    ) -> Result<(), FieldError> {
        let fits = |ends: &[String], kind: Kind, ty: &str| ends.iter().any(|e| e == kind.as_str() || e == ty);
        let allowed = self
            .links
            .iter()
            .any(|r| r.role == role && fits(&r.from, from_kind, from_type) && fits(&r.to, to_kind, to_type));
        if allowed {
            Ok(())
        } else {
            Err(FieldError::LinkNotAllowed {
                role: role.to_owned(),
                from: format!("{from_type} ({from_kind})"),
                to: format!("{to_type} ({to_kind})"),
            })
        }
    }

    /// The classification of an attribute, `Plain` for names the schema does not know.
    pub fn attribute_classification(&self, entity_type: &str, attribute: &str) -> Classification {
        self.attribute(entity_type, attribute).map(|a| a.classification).unwrap_or(Classification::Plain)
    }

    /// The classification of an identifier system, `Identifiable` for systems the schema does
    /// not know (the safe default for something that names a person).
    pub fn identifier_classification(&self, system: &str) -> Classification {
        self.identifier_system(system).map(|s| s.classification).unwrap_or(Classification::Identifiable)
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("text {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
