//! [`Suggestions`] as a profile fragment to edit and paste: the sections a profile file
//! reads (`[values."Column"]` per column, `[codes.list]` where the profile reads no column
//! into the attribute), one line per local value mapped to the proposed code, and the
//! candidates with their scores as comments. A value with no close candidate is written
//! commented out, so the fragment always loads as it is.

use std::fmt::Write as _;

use super::{Suggestions, Unmapped};

/// A TOML basic string: quotes and escapes `text` (local values carry quotes, slashes).
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn section(u: &Unmapped) -> String {
    match &u.column {
        Some(column) => format!("[values.{}]", quoted(column)),
        None => format!("[codes.{}]", quoted(&u.code_list)),
    }
}

/// The fragment, or a comment saying there is nothing to map.
pub fn render(s: &Suggestions) -> String {
    let mut out = String::new();
    if s.is_empty() {
        let _ = writeln!(
            out,
            "# Nothing unmapped for council {}: every coded value of its {} entities is a national code{}.",
            s.council,
            s.entities_read,
            if s.mapped_since > 0 {
                format!(" or is mapped by profile {} ({} mapped since ingest)", s.profile, s.mapped_since)
            } else {
                String::new()
            }
        );
        return out;
    }
    let total: u64 = s.unmapped.iter().map(|u| u.seen).sum();
    let _ = writeln!(
        out,
        "# Unmapped local values for council {}: {} distinct, held {total} time(s) across {} entities;",
        s.council,
        s.unmapped.len(),
        s.entities_read
    );
    let _ = writeln!(out, "# none of them mapped by profile {}.", s.profile);
    let _ = writeln!(
        out,
        "# Check each proposal, then add these sections to the council's profile (a file with\n\
         # `name = \"...\"` and `extends = \"{}\"`) and ingest again.",
        if s.reader == "generic" { s.profile.as_str() } else { "safeguarding" }
    );
    let _ = writeln!(
        out,
        "# Scores: similarity of the local value to each code and its label, 1.00 = the same\n\
         # once case and punctuation are ignored."
    );
    let mut current = String::new();
    for u in &s.unmapped {
        let header = section(u);
        if header != current {
            let _ = writeln!(out, "\n{header}");
            let _ = writeln!(out, "# {}.{} (code list {})", u.entity_type, u.attribute, u.code_list);
            current = header;
        }
        let times = if u.seen == 1 { "1 time".to_owned() } else { format!("{} times", u.seen) };
        let candidates: Vec<String> =
            u.candidates.iter().map(|c| format!("{} ({}) {:.2}", c.code, c.label, c.score)).collect();
        let _ = writeln!(out, "# {}: seen {times}; candidates: {}", quoted(&u.value), candidates.join(", "));
        for e in &u.elsewhere {
            let _ = writeln!(out, "#   profile {} maps it to {}", e.profile, e.code);
        }
        match &u.proposed {
            Some(code) => _ = writeln!(out, "{} = {}", quoted(&u.value), quoted(code)),
            None => _ = writeln!(out, "# {} = \"\"  # no close candidate: choose a code", quoted(&u.value)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suggest::{rank, Elsewhere};
    use crate::Profile;

    fn unmapped(column: Option<&str>, value: &str, proposed: Option<&str>) -> Unmapped {
        let list = pole_model::CodeList::from_csv("type_of_risk", "code,label\nPHYSICAL,Physical\nSEXUAL,Sexual\n")
            .unwrap_or_else(|e| panic!("{e}"));
        Unmapped {
            entity_type: "allegation".into(),
            attribute: "type_of_risk".into(),
            code_list: "type_of_risk".into(),
            column: column.map(str::to_owned),
            value: value.into(),
            seen: 2,
            candidates: rank(value, &list, 2),
            elsewhere: Vec::new(),
            proposed: proposed.map(str::to_owned),
        }
    }

    fn suggestions(unmapped: Vec<Unmapped>) -> Suggestions {
        Suggestions {
            council: "305".into(),
            profile: "safeguarding".into(),
            reader: "safeguarding".into(),
            entities_read: 10,
            mapped_since: 0,
            unmapped,
        }
    }

    #[test]
    fn the_fragment_loads_as_a_profile_and_maps_what_it_proposes() {
        let mut with_quote = unmapped(Some("Type of Risk"), "phys \"ab\"", Some("PHYSICAL"));
        with_quote.elsewhere.push(Elsewhere { profile: "council-305".into(), code: "PHYSICAL".into() });
        let s = suggestions(vec![
            with_quote,
            unmapped(Some("Type of Risk"), "01", None),
            unmapped(None, "sex_ab", Some("SEXUAL")),
        ]);
        let text = render(&s);
        assert!(text.contains("[values.\"Type of Risk\"]"), "{text}");
        assert!(text.contains("[codes.\"type_of_risk\"]") || text.contains("[codes.type_of_risk]"), "{text}");
        assert!(text.contains("# \"01\" = \"\""), "{text}");
        assert!(text.contains("profile council-305 maps it to PHYSICAL"), "{text}");
        let profile = Profile::from_toml(&format!("name = \"x\"\nextends = \"safeguarding\"\n{text}"), "fragment")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let list = pole_model::default_registry()
            .ok()
            .and_then(|r| r.code_list("type_of_risk").cloned())
            .unwrap_or_else(|| panic!("type_of_risk list"));
        assert_eq!(profile.map_code("Type of Risk", "phys \"ab\"", &list).code, "PHYSICAL");
        assert_eq!(profile.map_code("Source of Risk", "sex_ab", &list).code, "SEXUAL");
        assert!(!profile.map_code("Type of Risk", "01", &list).known);
    }

    #[test]
    fn nothing_unmapped_says_so() {
        let text = render(&suggestions(Vec::new()));
        assert!(text.starts_with("# Nothing unmapped for council 305"), "{text}");
    }
}
