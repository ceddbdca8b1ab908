//! Mapping profiles: data files (TOML) that say how one council's file reads. A profile
//! renames the submitter's columns to the profile's own, maps local values to national
//! codes (per column, or per code list for every column using it), splits a column that
//! mixes higher- and lower-level codes, lists the date formats to try, and supplies
//! defaults for blank or missing columns. A council profile `extends` a built-in one and
//! overrides what it names.
//!
//! A profile whose reader is `generic` also declares, per row, the POLE entities to make
//! (`[[entities]]`: a type, natural keys built from columns, attributes from columns) and
//! the links between them (`[[links]]`); [`crate::generic`] reads rows with them. Every
//! column such a profile names elsewhere (renames, value maps, defaults, splits) must be
//! one its declarations read, so a typo fails when the profile loads.
//!
//! Matching is forgiving where that is safe (case and spacing of column names and local
//! values, national codes and their labels) and never guesses beyond that: a value no
//! rule maps is kept verbatim and reported.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use pole_model::CodeList;
use serde::Deserialize;

use crate::error::{IngestError, Result};

/// The built-in profiles, by name, embedded so a fresh binary needs no files beside it.
pub const BUILTIN: [(&str, &str); 3] = [
    ("safeguarding", include_str!("../../packs/adult-social-care/profiles/safeguarding.toml")),
    ("council-305", include_str!("../../packs/adult-social-care/profiles/council-305.toml")),
    ("services", include_str!("../../packs/adult-social-care/profiles/services.toml")),
];

/// The readers a profile can name.
pub const READERS: [&str; 2] = ["safeguarding", "generic"];

/// One entity a `generic` profile makes from each row.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDecl {
    /// The name links use for it (`client`, `service`).
    pub name: String,
    /// The schema type (`person`, `service`, `organisation`).
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Natural keys, tried in order to find the entity again; at least one.
    pub keys: Vec<KeyDecl>,
    /// Schema attribute → the profile column its value comes from.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Schema attribute → a fixed value set on every row (`organisation_type = "care
    /// provider"`).
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    /// The date column whose value is when the row's facts about it became true; the
    /// profile's `valid_from` when not given.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// A row with no key for it leaves it (and its links) out instead of being rejected.
    #[serde(default)]
    pub optional: bool,
}

/// A natural key: an identifier of `system` whose value is `prefix` then the column's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDecl {
    /// An identifier system of the schema; `{council}` is replaced by the council's code.
    pub system: String,
    pub column: String,
    /// Keeps keys of different things in one system apart (`service/`).
    #[serde(default)]
    pub prefix: String,
}

/// A link a `generic` profile makes between two of a row's entities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDecl {
    pub from: String,
    pub role: String,
    pub to: String,
    /// The `from` entity has at most one link of this role: a correction moves it.
    #[serde(default)]
    pub single: bool,
}

/// Splitting a column whose values may carry two levels in one cell (`KNOWN: Relative`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRule {
    /// Tried in order; the first that divides the value is used.
    pub separators: Vec<String>,
}

/// A profile file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    /// A built-in profile this one overrides.
    #[serde(default)]
    extends: Option<String>,
    /// Which built-in reader turns the profile's columns into POLE (`safeguarding`).
    #[serde(default)]
    reader: Option<String>,
    #[serde(default)]
    date_formats: Vec<String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    split: BTreeMap<String, SplitRule>,
    /// For the `generic` reader: the default date column for valid times.
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    entities: Vec<EntityDecl>,
    #[serde(default)]
    links: Vec<LinkDecl>,
}

/// A loaded profile, merged with the one it extends. Keys of the maps are normalised
/// (lower case, single spaces) so look-ups ignore case and spacing.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub reader: String,
    pub date_formats: Vec<String>,
    columns: BTreeMap<String, String>,
    values: BTreeMap<String, BTreeMap<String, String>>,
    codes: BTreeMap<String, BTreeMap<String, String>>,
    defaults: BTreeMap<String, String>,
    split: BTreeMap<String, SplitRule>,
    /// The `generic` reader's declarations (empty for `safeguarding`).
    pub valid_from: Option<String>,
    pub entities: Vec<EntityDecl>,
    pub links: Vec<LinkDecl>,
}

/// A value after mapping to a code list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The national code, or the value verbatim (trimmed) when nothing maps it.
    pub code: String,
    pub known: bool,
    /// The top-level code a known lower-level code rolls up to (its parent chain).
    pub higher: Option<String>,
    /// Something worth a warning even though the value mapped (levels that disagree).
    pub note: Option<String>,
}

/// Lower case with runs of whitespace made one space: how names and values are compared.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn normalise_keys<V>(map: BTreeMap<String, V>) -> BTreeMap<String, V> {
    map.into_iter().map(|(k, v)| (normalise(&k), v)).collect()
}

impl Profile {
    /// A built-in profile by name, or a profile file when `name_or_path` names one (a path
    /// that exists or ends in `.toml`).
    pub fn load(name_or_path: &str) -> Result<Profile> {
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| IngestError::Profile {
                name: name_or_path.to_owned(),
                reason: format!("cannot read the file: {e}"),
            })?;
            return Profile::from_toml(&text, name_or_path);
        }
        Profile::builtin(name_or_path)
    }

    /// A built-in profile.
    pub fn builtin(name: &str) -> Result<Profile> {
        let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(IngestError::Profile {
                name: name.to_owned(),
                reason: format!(
                    "no built-in profile of that name (built-in: {}; or give a .toml file)",
                    names.join(", ")
                ),
            });
        };
        Profile::from_toml(text, name)
    }

    /// Parses a profile's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile> {
        let file: ProfileFile = toml::from_str(text)
            .map_err(|e| IngestError::Profile { name: origin.to_owned(), reason: e.to_string() })?;
        let mut base = match &file.extends {
            Some(parent) if parent == &file.name => {
                return Err(IngestError::Profile {
                    name: origin.to_owned(),
                    reason: "a profile cannot extend itself".into(),
                })
            }
            Some(parent) => Profile::builtin(parent)?,
            None => Profile::default(),
        };
        for format in &file.date_formats {
            check_date_format(format).map_err(|reason| IngestError::Profile { name: origin.to_owned(), reason })?;
        }
        base.name = file.name;
        if !file.description.is_empty() {
            base.description = file.description;
        }
        if let Some(reader) = file.reader {
            base.reader = reader;
        }
        if base.reader.is_empty() {
            return Err(IngestError::Profile {
                name: origin.to_owned(),
                reason: "name a `reader` (safeguarding or generic) or `extends` a built-in profile".into(),
            });
        }
        // The council's own date formats are tried first.
        let mut formats = file.date_formats;
        formats.extend(std::mem::take(&mut base.date_formats));
        formats.dedup();
        base.date_formats = formats;
        base.columns.extend(normalise_keys(file.columns));
        for (column, map) in file.values {
            base.values.entry(normalise(&column)).or_default().extend(normalise_keys(map));
        }
        for (list, map) in file.codes {
            base.codes.entry(list).or_default().extend(normalise_keys(map));
        }
        base.defaults.extend(normalise_keys(file.defaults));
        base.split.extend(normalise_keys(file.split));
        if file.valid_from.is_some() {
            base.valid_from = file.valid_from;
        }
        if !file.entities.is_empty() {
            base.entities = file.entities;
        }
        if !file.links.is_empty() {
            base.links = file.links;
        }
        base.check_declarations().map_err(|reason| IngestError::Profile { name: origin.to_owned(), reason })?;
        Ok(base)
    }

    /// The checks of a `generic` profile's declarations that need no schema (the schema's
    /// are made when a file is read: [`crate::generic::Reader::new`]).
    fn check_declarations(&self) -> std::result::Result<(), String> {
        if !READERS.contains(&self.reader.as_str()) {
            return Err(format!("reader {:?} is not known (readers: {})", self.reader, READERS.join(", ")));
        }
        if self.reader != "generic" {
            if !self.entities.is_empty() || !self.links.is_empty() || self.valid_from.is_some() {
                return Err("`entities`, `links` and `valid_from` need `reader = \"generic\"`".into());
            }
            return Ok(());
        }
        if self.entities.is_empty() {
            return Err("a generic profile declares at least one [[entities]]".into());
        }
        let mut names = Vec::new();
        for entity in &self.entities {
            if names.contains(&entity.name.as_str()) {
                return Err(format!("two entities are named {:?}", entity.name));
            }
            names.push(&entity.name);
            if entity.keys.is_empty() {
                return Err(format!(
                    "entity {:?} has no keys: without a natural key a resubmission would create it again",
                    entity.name
                ));
            }
        }
        for link in &self.links {
            for end in [&link.from, &link.to] {
                if !names.contains(&end.as_str()) {
                    return Err(format!(
                        "link {} names entity {end:?}, which is not declared (entities: {})",
                        link.role,
                        names.join(", ")
                    ));
                }
            }
        }
        let read = self.declared_columns();
        let known: Vec<&str> = read.iter().map(String::as_str).collect();
        let named = self
            .columns
            .values()
            .map(|target| ("[columns]", normalise(target)))
            .chain(self.values.keys().map(|c| ("[values]", c.clone())))
            .chain(self.defaults.keys().map(|c| ("[defaults]", c.clone())))
            .chain(self.split.keys().map(|c| ("[split]", c.clone())));
        for (section, column) in named {
            if !known.iter().any(|k| normalise(k) == column) {
                return Err(format!(
                    "column {column:?} in {section} is not read by any entity (columns read: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Every profile column a `generic` profile's declarations read, in declaration order.
    pub fn declared_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |column: &String| {
            if !out.iter().any(|c| normalise(c) == normalise(column)) {
                out.push(column.clone());
            }
        };
        add_opt(&mut add, self.valid_from.as_ref());
        for entity in &self.entities {
            entity.keys.iter().for_each(|k| add(&k.column));
            entity.attributes.values().for_each(&mut add);
            add_opt(&mut add, entity.valid_from.as_ref());
        }
        out
    }

    /// The profile column a submitter's column is read as: a rename, or the profile
    /// column of the same name (ignoring case and spacing).
    pub fn column_for<'k>(&self, submitted: &str, known: &[&'k str]) -> Option<&'k str> {
        let key = normalise(submitted);
        let target = self.columns.get(&key).map(|t| normalise(t)).unwrap_or(key);
        known.iter().copied().find(|k| normalise(k) == target)
    }

    /// The default for a profile column left blank or missing.
    pub fn default_for(&self, column: &str) -> Option<&str> {
        self.defaults.get(&normalise(column)).map(String::as_str)
    }

    /// Parses a date with the profile's formats (ISO `YYYY-MM-DD` always works).
    pub fn parse_date(&self, raw: &str) -> Option<NaiveDate> {
        let raw = raw.trim();
        // Spreadsheet exports append a midnight time to dates.
        let raw = raw.strip_suffix(" 00:00:00").or_else(|| raw.strip_suffix("T00:00:00")).unwrap_or(raw);
        self.date_formats
            .iter()
            .map(String::as_str)
            .chain(std::iter::once("%Y-%m-%d"))
            .find_map(|f| NaiveDate::parse_from_str(raw, f).ok())
    }

    /// Maps one submitted cell to `list` and says so on the row: a note the mapping made, a
    /// warning for a value kept verbatim (a list that is not strict), or an error and
    /// `None` (a strict list). `column` is the name the profile reads; `cell` the
    /// submitter's column name and value, as the report shows them.
    pub fn map_cell(
        &self,
        column: &str,
        (shown, value): (&str, &str),
        list: &CodeList,
        strict: bool,
        report: &mut crate::report::RowReport,
    ) -> Option<Mapped> {
        let mapped = self.map_code(column, value, list);
        if let Some(note) = &mapped.note {
            report.warn(shown, value, note.clone());
        }
        if !mapped.known {
            if strict {
                let reason = format!(
                    "not a code of list {} and not mapped by profile {}; add it to the profile's values",
                    list.name, self.name
                );
                report.error(shown, value, reason);
                return None;
            }
            report.warn(
                shown,
                value,
                format!("not mapped to list {} by profile {}: kept verbatim", list.name, self.name),
            );
        }
        Some(mapped)
    }

    /// Maps a value of `column` to `list`: the column's value map, then the list's, then
    /// the national code itself or its label; then, for a split column, each level.
    pub fn map_code(&self, column: &str, raw: &str, list: &CodeList) -> Mapped {
        if let Some(code) = self.map_one(column, raw, list) {
            return Mapped { higher: higher_of(list, &code), code, known: true, note: None };
        }
        if let Some(mapped) = self.map_split(column, raw, list) {
            return mapped;
        }
        Mapped { code: raw.trim().to_owned(), known: false, higher: None, note: None }
    }

    fn map_one(&self, column: &str, raw: &str, list: &CodeList) -> Option<String> {
        let key = normalise(raw);
        let mapped = self
            .values
            .get(&normalise(column))
            .and_then(|m| m.get(&key))
            .or_else(|| self.codes.get(&list.name).and_then(|m| m.get(&key)));
        if let Some(code) = mapped {
            // A profile mapping to a code the list lacks is a profile mistake: the value
            // is then reported unmapped rather than stored under a code nobody knows.
            return list.contains(code).then(|| code.clone());
        }
        let raw = raw.trim();
        if list.contains(raw) {
            return Some(raw.to_owned());
        }
        list.codes().iter().find(|c| normalise(&c.code) == key || normalise(&c.label) == key).map(|c| c.code.clone())
    }

    /// A cell carrying both levels (`Known: Relative`): each part is mapped; the most
    /// specific code is kept, and levels that do not belong together are noted.
    fn map_split(&self, column: &str, raw: &str, list: &CodeList) -> Option<Mapped> {
        let rule = self.split.get(&normalise(column))?;
        let parts = rule.separators.iter().find_map(|sep| {
            let parts: Vec<&str> = raw.split(sep.as_str()).map(str::trim).filter(|p| !p.is_empty()).collect();
            (parts.len() > 1).then_some(parts)
        })?;
        let codes: Vec<String> = parts.iter().map(|p| self.map_one(column, p, list)).collect::<Option<_>>()?;
        let depth = |code: &str| {
            let mut depth = 0;
            let mut current = list.get(code);
            while let Some(parent) = current.and_then(|c| c.parent.as_deref()) {
                depth += 1;
                current = list.get(parent);
            }
            depth
        };
        let deepest = codes.iter().max_by_key(|c| depth(c))?.clone();
        let ancestors = ancestors(list, &deepest);
        let strays: Vec<&String> = codes.iter().filter(|c| **c != deepest && !ancestors.contains(c)).collect();
        let note = (!strays.is_empty()).then(|| {
            let strays: Vec<&str> = strays.iter().map(|s| s.as_str()).collect();
            format!("levels disagree: {deepest} does not belong under {}; {deepest} kept", strays.join(", "))
        });
        Some(Mapped { higher: higher_of(list, &deepest), code: deepest, known: true, note })
    }
}

fn add_opt(add: &mut impl FnMut(&String), column: Option<&String>) {
    if let Some(column) = column {
        add(column);
    }
}

fn ancestors(list: &CodeList, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = list.get(code);
    while let Some(parent) = current.and_then(|c| c.parent.clone()) {
        current = list.get(&parent);
        out.push(parent);
    }
    out
}

fn higher_of(list: &CodeList, code: &str) -> Option<String> {
    list.top_level(code).filter(|top| *top != code).map(str::to_owned)
}

/// Refuses a date format chrono would not parse with, so a typo fails when the profile
/// loads rather than as a rejected date on every row.
fn check_date_format(format: &str) -> std::result::Result<(), String> {
    let probe = NaiveDate::from_ymd_opt(2013, 7, 1).unwrap_or_default();
    let written = probe.format(format);
    let mut text = String::new();
    std::fmt::write(&mut text, format_args!("{written}"))
        .map_err(|_| format!("date format {format:?} is not a valid chrono format"))?;
    match NaiveDate::parse_from_str(&text, format) {
        Ok(back) if back == probe => Ok(()),
        _ => Err(format!("date format {format:?} does not name a full date (day, month and year)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str) -> CodeList {
        let text = pole_model::DEFAULT_CODE_LISTS.iter().find(|(n, _)| *n == name).unwrap().1;
        CodeList::from_csv(name, text).unwrap()
    }

    #[test]
    fn builtin_profiles_load() {
        let p = Profile::builtin("safeguarding").unwrap();
        assert_eq!(p.reader, "safeguarding");
        let c = Profile::builtin("council-305").unwrap();
        assert_eq!(c.reader, "safeguarding");
        assert!(Profile::builtin("nope").is_err());
    }

    #[test]
    fn local_codes_map_to_national() {
        let p = Profile::builtin("council-305").unwrap();
        let risk = list("type_of_risk");
        for local in ["phys_ab", "Physical Abuse", "01", "physical", "PHYSICAL", " physical  abuse "] {
            let m = p.map_code("Type of Risk", local, &risk);
            assert_eq!((m.code.as_str(), m.known), ("PHYSICAL", true), "{local}");
        }
        let m = p.map_code("Type of Risk", "shouting", &risk);
        assert_eq!((m.code.as_str(), m.known), ("shouting", false));
    }

    #[test]
    fn lower_level_codes_imply_their_parent_and_split() {
        let p = Profile::builtin("safeguarding").unwrap();
        let source = list("source_of_risk");
        let m = p.map_code("Source of Risk", "KNOWN_FAMILY", &source);
        assert_eq!((m.code.as_str(), m.higher.as_deref()), ("KNOWN_FAMILY", Some("KNOWN")));
        let m = p.map_code("Source of Risk", "Other - known to individual: Relative / family / carer", &source);
        assert_eq!((m.code.as_str(), m.higher.as_deref(), m.note.as_deref()), ("KNOWN_FAMILY", Some("KNOWN"), None));
        let m = p.map_code("Source of Risk", "UNKNOWN: KNOWN_FAMILY", &source);
        assert_eq!(m.code, "KNOWN_FAMILY");
        assert!(m.note.unwrap().contains("UNKNOWN"));
        let m = p.map_code("Source of Risk", "KNOWN", &source);
        assert_eq!((m.code.as_str(), m.higher), ("KNOWN", None));
    }

    #[test]
    fn dates_and_columns() {
        let p = Profile::builtin("council-305").unwrap();
        let d = NaiveDate::from_ymd_opt(2013, 7, 1).unwrap();
        for raw in ["01/07/2013", "2013-07-01", "01/07/13", "01/07/2013 00:00:00"] {
            assert_eq!(p.parse_date(raw), Some(d), "{raw}");
        }
        assert_eq!(p.parse_date("31/02/2013"), None);
        let known = ["DUMMY Council Client Identifier", "Type of Risk"];
        assert_eq!(p.column_for("  type of  RISK ", &known), Some("Type of Risk"));
        assert_eq!(p.column_for("Client Ref", &known), Some("DUMMY Council Client Identifier"));
        assert_eq!(p.column_for("Shoe size", &known), None);
    }

    #[test]
    fn bad_profiles_fail_at_load() {
        assert!(Profile::from_toml("name = 'x'\n", "x").unwrap_err().to_string().contains("reader"));
        assert!(Profile::from_toml("name='x'\nreader='safeguarding'\ndate_formats=['%d/%m']\n", "x").is_err());
        assert!(Profile::from_toml("name='x'\nreader='safeguarding'\nbogus=1\n", "x").is_err());
        assert!(Profile::from_toml("name='x'\nextends='x'\n", "x").is_err());
    }
}
