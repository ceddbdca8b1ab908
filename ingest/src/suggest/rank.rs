//! How alike a council's local value and a national code are: both are normalised (lower
//! case, punctuation and underscores made spaces, filler words dropped), then compared by
//! token overlap (a token matches exactly, as an abbreviation, `phys` for `physical`, or as
//! a near spelling) and by edit distance over the whole text. A code is scored against its
//! code and its label, keeping the better. Pure: no store, no profile.

use pole_model::CodeList;
use serde::Serialize;

/// Words that carry no meaning when telling codes apart.
const FILLER: [&str; 9] = ["a", "and", "of", "or", "the", "to", "with", "in", "for"];

/// How much token overlap counts against edit distance in the score.
const TOKEN_WEIGHT: f64 = 0.7;

/// A national code proposed for a local value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub code: String,
    pub label: String,
    /// 0 (nothing alike) to 1 (the same after normalising).
    pub score: f64,
}

/// Lower case, every run of characters other than letters and digits made one space,
/// filler words dropped: `Phys_Ab.` and `phys ab` compare equal.
pub fn normalise_text(text: &str) -> String {
    let spaced: String = text.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect::<String>();
    spaced.to_lowercase().split_whitespace().filter(|w| !FILLER.contains(w)).collect::<Vec<_>>().join(" ")
}

/// How well one token matches another: exactly, as an abbreviation of it (either way,
/// two letters at least), or as a near spelling.
fn token_match(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() >= 2 && long.starts_with(short) {
        return 0.85;
    }
    let near = strsim::jaro_winkler(a, b);
    if near >= 0.85 {
        near * 0.7
    } else {
        0.0
    }
}

/// The share of `from`'s tokens found in `to`, each by its best match.
fn coverage(from: &[&str], to: &[&str]) -> f64 {
    if from.is_empty() {
        return 0.0;
    }
    let total: f64 = from.iter().map(|f| to.iter().map(|t| token_match(f, t)).fold(0.0, f64::max)).sum();
    total / from.len() as f64
}

/// The similarity of two texts, each normalised first; 0 to 1.
pub fn similarity(local: &str, national: &str) -> f64 {
    let (a, b) = (normalise_text(local), normalise_text(national));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let (ta, tb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    // The local value's words matter most: a code whose label has extra words is still a
    // good candidate, one missing the local value's words is not.
    let tokens = (2.0 * coverage(&ta, &tb) + coverage(&tb, &ta)) / 3.0;
    let edit = strsim::normalized_levenshtein(&a, &b);
    TOKEN_WEIGHT * tokens + (1.0 - TOKEN_WEIGHT) * edit
}

/// The `limit` codes of `list` most like `local`, best first; ties keep the list's order.
pub fn rank(local: &str, list: &CodeList, limit: usize) -> Vec<Candidate> {
    let mut scored: Vec<Candidate> = list
        .codes()
        .iter()
        .map(|c| {
            let score = similarity(local, &c.code).max(similarity(local, &c.label));
            Candidate { code: c.code.clone(), label: c.label.clone(), score: (score * 100.0).round() / 100.0 }
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    scored.truncate(limit);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str) -> CodeList {
        let text = pole_model::DEFAULT_CODE_LISTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or("");
        CodeList::from_csv(name, text).unwrap()
    }

    fn best(local: &str, name: &str) -> String {
        rank(local, &list(name), 1).first().map(|c| c.code.clone()).unwrap_or_default()
    }

    #[test]
    fn normalising() {
        assert_eq!(normalise_text(" Phys_Ab. "), "phys ab");
        assert_eq!(normalise_text("Relative / family / carer"), "relative family carer");
        assert_eq!(normalise_text("Neglect and Acts of Omission"), "neglect acts omission");
    }

    #[test]
    fn the_proof_of_concepts_physical_abuse() {
        for local in ["phys_ab", "physical abuse", "Physical", "PHYS"] {
            assert_eq!(best(local, "type_of_risk"), "PHYSICAL", "{local}");
        }
        assert_eq!(best("sex_ab", "type_of_risk"), "SEXUAL");
        assert_eq!(best("fin_ab", "type_of_risk"), "FINANCIAL");
        assert_eq!(best("emotional/psychological abuse", "type_of_risk"), "PSYCHOLOGICAL");
    }

    #[test]
    fn two_level_lists_and_labels() {
        assert_eq!(best("fam", "source_of_risk"), "KNOWN_FAMILY");
        assert_eq!(best("Relative/family", "source_of_risk"), "KNOWN_FAMILY");
        assert_eq!(best("Nursing home", "location_of_risk"), "CARE_HOME_NURSING");
        assert_eq!(best("own_home", "location_of_risk"), "OWN_HOME");
        assert_eq!(best("part_sub", "conclusion"), "PARTLY_SUBSTANTIATED");
        assert_eq!(best("not_sub", "conclusion"), "NOT_SUBSTANTIATED");
    }

    #[test]
    fn scores_are_bounded_and_ordered() {
        let ranked = rank("phys_ab", &list("type_of_risk"), 3);
        assert_eq!(ranked.len(), 3);
        assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(ranked.iter().all(|c| (0.0..=1.0).contains(&c.score)));
        assert_eq!(similarity("PHYSICAL", "physical"), 1.0);
        assert_eq!(similarity("", "physical"), 0.0);
        // A bare number is like nothing: no code is proposed on similarity alone.
        assert!(rank("01", &list("type_of_risk"), 1)[0].score < 0.3);
    }
}
