//! `mapping suggest --into PROFILE.toml`: [`Suggestions`] merged into an existing council
//! profile's text, edited in place with `toml_edit` so the file's own entries, comments,
//! formatting and order stay as they were. Each unmapped value with a proposed code is
//! added to the section the fragment would put it in (`[values."Column"]`, or
//! `[codes.list]` when the profile reads no column into the attribute), after that
//! section's existing entries (a new section after its siblings), with its evidence as a
//! comment. A value the file already
//! maps (keys compare as profiles compare them, ignoring case and spacing) is never
//! overwritten, and a value without a close candidate is not guessed: both are reported as
//! skipped.
//!
//! Pure text in, text out: the command line reads and writes the file.

use toml_edit::{DocumentMut, Item, Table, TableLike};

use super::{Suggestions, Unmapped};
use crate::error::{IngestError, Result};
use crate::profile::{normalise, Profile};

/// What merging did, value by value, and the new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub added: Vec<Added>,
    pub skipped: Vec<Skipped>,
}

/// A mapping written into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The section, as a profile file writes its header (`values."Type of Risk"`).
    pub section: String,
    pub value: String,
    pub code: String,
}

/// A suggestion left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub section: String,
    pub value: String,
    pub reason: String,
}

/// A TOML key or string as a profile file writes it.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A key as a TOML file writes it: bare when it can be, quoted otherwise.
fn key_text(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        quoted(key)
    }
}

/// The two levels of the section a suggestion belongs in: (`values`, column) or (`codes`,
/// list).
fn section_of(u: &Unmapped) -> (&'static str, &str) {
    match &u.column {
        Some(column) => ("values", column.as_str()),
        None => ("codes", u.code_list.as_str()),
    }
}

fn invalid(origin: &str, reason: impl Into<String>) -> IngestError {
    IngestError::Profile { name: origin.to_owned(), reason: reason.into() }
}

/// Merges `suggestions` into `text`, the profile file `origin`. Refuses a text that is not
/// a valid profile (nothing is merged into a file ingest could not load), and checks that
/// the merged text still loads.
pub fn merge(text: &str, origin: &str, suggestions: &Suggestions) -> Result<Merged> {
    Profile::from_toml(text, origin).map_err(|e| match e {
        IngestError::Profile { reason, .. } => invalid(origin, format!("not a valid profile: {reason}")),
        other => other,
    })?;
    let mut doc: DocumentMut = text.parse().map_err(|e| invalid(origin, format!("not valid TOML: {e}")))?;
    let mut added = Vec::new();
    let mut skipped = Vec::new();
    for u in &suggestions.unmapped {
        let (top, name) = section_of(u);
        let section = format!("{top}.{}", key_text(name));
        // A column's value map is read before its code list's, so an entry added under the
        // column would shadow one the file has for the list: both count as the file's.
        let mut sections = vec![(top, name)];
        if top == "values" {
            sections.push(("codes", u.code_list.as_str()));
        }
        let existing = sections.iter().find_map(|(top, name)| {
            let found = find_section(&doc, top, name).and_then(|t| existing_mapping(t, &u.value))?;
            Some((format!("{top}.{}", key_text(name)), found))
        });
        if let Some((at, (key, code))) = existing {
            skipped.push(Skipped {
                section,
                value: u.value.clone(),
                reason: format!("the file already maps {} to {code} in [{at}]; left as it is", quoted(&key)),
            });
            continue;
        }
        let Some(code) = &u.proposed else {
            skipped.push(Skipped {
                section,
                value: u.value.clone(),
                reason: "no close national code: choose one by hand".into(),
            });
            continue;
        };
        let table = section_table(&mut doc, top, name, origin)?;
        table.insert(&u.value, toml_edit::value(code.as_str()));
        if let Some(mut key) = table.key_mut(&u.value) {
            let best = u.candidates.first().map_or(String::new(), |c| format!(", score {:.2}", c.score));
            let times = if u.seen == 1 { "1 time".to_owned() } else { format!("{} times", u.seen) };
            key.leaf_decor_mut().set_prefix(format!("# mapping suggest: seen {times}{best}\n"));
        }
        added.push(Added { section, value: u.value.clone(), code: code.clone() });
    }
    let merged = doc.to_string();
    Profile::from_toml(&merged, origin)
        .map_err(|e| invalid(origin, format!("the merged profile would not load ({e}); the file was not changed")))?;
    Ok(Merged { text: merged, added, skipped })
}

/// Whether `key`, a key under `top`, names the section `name`: `values` compare as profiles
/// compare column names (ignoring case and spacing), `codes` exactly.
fn same_section(top: &str, key: &str, name: &str) -> bool {
    if top == "values" {
        normalise(key) == normalise(name)
    } else {
        key == name
    }
}

/// The `[top."name"]` table, if the file has it.
fn find_section<'d>(doc: &'d DocumentMut, top: &str, name: &str) -> Option<&'d dyn TableLike> {
    let parent = doc.as_table().get(top).and_then(Item::as_table_like)?;
    parent.iter().find(|(key, _)| same_section(top, key, name)).and_then(|(_, item)| item.as_table_like())
}

/// The `[top."name"]` table, created when the file lacks it (`toml_edit` writes a new
/// table after the last of its siblings, or at the end).
fn section_table<'d>(doc: &'d mut DocumentMut, top: &str, name: &str, origin: &str) -> Result<&'d mut dyn TableLike> {
    let root = doc.as_table_mut();
    if !root.contains_key(top) {
        let mut implicit = Table::new();
        implicit.set_implicit(true);
        root.insert(top, Item::Table(implicit));
    }
    let parent = root
        .get_mut(top)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| invalid(origin, format!("`{top}` is not a table")))?;
    let existing = parent.iter().map(|(key, _)| key.to_owned()).find(|key| same_section(top, key, name));
    let key = match existing {
        Some(key) => key,
        None => {
            parent.insert(name, Item::Table(Table::new()));
            name.to_owned()
        }
    };
    parent
        .get_mut(&key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| invalid(origin, format!("`{top}.{}` is not a table", quoted(&key))))
}

/// The file's mapping of `value` in `table`, if any: its key as written and its code.
fn existing_mapping(table: &dyn TableLike, value: &str) -> Option<(String, String)> {
    let wanted = normalise(value);
    table.iter().find(|(key, _)| normalise(key) == wanted).map(|(key, item)| {
        let code = item.as_str().map_or_else(|| item.to_string().trim().to_owned(), quoted);
        (key.to_owned(), code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suggest::Candidate;

    fn unmapped(column: Option<&str>, list: &str, value: &str, proposed: Option<&str>) -> Unmapped {
        Unmapped {
            entity_type: "allegation".into(),
            attribute: list.into(),
            code_list: list.into(),
            column: column.map(str::to_owned),
            value: value.into(),
            seen: 3,
            candidates: proposed
                .map(|code| Candidate { code: code.into(), label: code.into(), score: 0.8 })
                .into_iter()
                .collect(),
            elsewhere: Vec::new(),
            proposed: proposed.map(str::to_owned),
        }
    }

    fn suggestions(unmapped: Vec<Unmapped>) -> Suggestions {
        Suggestions {
            council: "305".into(),
            profile: "council-999".into(),
            reader: "safeguarding".into(),
            entities_read: 10,
            mapped_since: 0,
            unmapped,
        }
    }

    const FILE: &str = r#"# Council 999's export.
name = "council-999"
extends = "safeguarding"

[columns]
"Abuse Type" = "Type of Risk"

# Local codes agreed with the council in 2023.
[values."type of risk"]
"phys_ab" = "PHYSICAL" # the old system's code
"sex_ab" = "NOT_A_CODE"

[defaults]
"Known to Council" = "N"

[codes.source_of_risk]
"fam2" = "KNOWN"
"#;

    #[test]
    fn adds_new_values_keeps_everything_else_and_never_overwrites() {
        let s = suggestions(vec![
            unmapped(Some("Type of Risk"), "type_of_risk", "fin_ab", Some("FINANCIAL")),
            unmapped(Some("Type of Risk"), "type_of_risk", "SEX_AB", Some("SEXUAL")),
            unmapped(Some("Type of Risk"), "type_of_risk", "01", None),
            unmapped(Some("Source of Risk"), "source_of_risk", "fam \"x\"", Some("KNOWN_FAMILY")),
            unmapped(None, "location_of_risk", "ch", Some("CARE_HOME")),
            unmapped(Some("Source of Risk"), "source_of_risk", "Fam2", Some("KNOWN_FAMILY")),
        ]);
        let merged = merge(FILE, "council-999.toml", &s).unwrap_or_else(|e| panic!("{e}"));
        let text = &merged.text;
        // The file as it was is the start of the merged one, up to the end of its section.
        let kept = "# Council 999's export.\nname = \"council-999\"\nextends = \"safeguarding\"\n\n[columns]\n\"Abuse \
                    Type\" = \"Type of Risk\"\n\n# Local codes agreed with the council in 2023.\n[values.\"type of \
                    risk\"]\n\"phys_ab\" = \"PHYSICAL\" # the old system's code\n\"sex_ab\" = \"NOT_A_CODE\"\n";
        assert!(text.starts_with(kept), "{text}");
        assert!(text.contains("# mapping suggest: seen 3 times, score 0.80\nfin_ab = \"FINANCIAL\"\n"), "{text}");
        assert!(
            text.contains("[defaults]\n\"Known to Council\" = \"N\"\n\n[codes.source_of_risk]\n\"fam2\" = \"KNOWN\"\n"),
            "{text}"
        );
        assert!(text.contains("[values.\"Source of Risk\"]"), "{text}");
        assert!(text.contains("[codes.location_of_risk]\n# mapping suggest"), "{text}");
        // A new section goes after its siblings, and with no siblings at the end.
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle}: {text}"));
        assert!(
            at("fin_ab") < at("[values.\"Source of Risk\"]") && at("[values.\"Source of Risk\"]") < at("[defaults]")
        );
        assert!(at("\"fam2\"") < at("[codes.location_of_risk]"), "{text}");
        assert_eq!(merged.added.len(), 3, "{merged:?}");
        assert_eq!(merged.skipped.len(), 3, "{merged:?}");
        assert!(merged.skipped[0].reason.contains("already maps \"sex_ab\" to \"NOT_A_CODE\""), "{merged:?}");
        assert!(merged.skipped[1].reason.contains("no close national code"), "{merged:?}");
        // The list's map is the file's mapping too: a column entry would shadow it.
        assert!(merged.skipped[2].reason.contains("\"fam2\" to \"KNOWN\" in [codes.source_of_risk]"), "{merged:?}");

        let profile = Profile::from_toml(text, "merged").unwrap_or_else(|e| panic!("{e}"));
        let registry = pole_model::default_registry().unwrap_or_else(|e| panic!("{e}"));
        let list = |name: &str| registry.code_list(name).cloned().unwrap_or_else(|| panic!("{name}"));
        assert_eq!(profile.map_code("Type of Risk", "fin_ab", &list("type_of_risk")).code, "FINANCIAL");
        assert_eq!(profile.map_code("Type of Risk", "phys_ab", &list("type_of_risk")).code, "PHYSICAL");
        assert_eq!(profile.map_code("Source of Risk", "fam \"x\"", &list("source_of_risk")).code, "KNOWN_FAMILY");
        assert_eq!(profile.map_code("Location of Risk", "ch", &list("location_of_risk")).code, "CARE_HOME");
        assert_eq!(profile.map_code("Source of Risk", "fam2", &list("source_of_risk")).code, "KNOWN");

        // Merging again adds nothing.
        let again = merge(text, "council-999.toml", &s).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.added.is_empty(), "{again:?}");
        assert_eq!(&again.text, text);
    }

    #[test]
    fn refuses_a_file_that_is_not_a_profile() {
        let s = suggestions(vec![unmapped(Some("Type of Risk"), "type_of_risk", "fin_ab", Some("FINANCIAL"))]);
        for (text, expected) in [
            ("name = \"x\"\nextends = \"safeguarding\"\n[values\n", "not a valid profile"),
            ("extends = \"safeguarding\"\n", "not a valid profile"),
            ("name = \"x\"\nextends = \"safeguarding\"\ncolour = \"red\"\n", "not a valid profile"),
            ("name = \"x\"\n", "not a valid profile"),
        ] {
            let err = merge(text, "bad.toml", &s).map(|m| m.text).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("bad.toml"), "{text:?}: {err}");
        }
    }
}
