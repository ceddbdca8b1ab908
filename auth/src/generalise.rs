//! Coarser forms of identifiable values for minimised views.

use chrono::{Datelike, NaiveDate};
use pole_model::Generalisation;
use serde_json::Value;

/// The age band of someone born on `birth` as of `on`; everyone 90 or over is "90+", as
/// the national safeguarding collection reports them.
pub fn age_band(birth: NaiveDate, on: NaiveDate) -> String {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    match age {
        i32::MIN..=-1 => "unborn".into(),
        0..=17 => "0-17".into(),
        18..=24 => "18-24".into(),
        90.. => "90+".into(),
        _ => {
            let low = age / 10 * 10 + if age % 10 >= 5 { 5 } else { 0 };
            format!("{low}-{}", low + 4)
        }
    }
}

/// The outward code of a UK postcode (`LS1 4AP` → `LS1`), or nothing when the value is
/// not shaped like a postcode (then the value is withheld rather than guessed at).
pub fn postcode_district(postcode: &str) -> Option<String> {
    let compact: String = postcode.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect();
    let ok_len = (5..=7).contains(&compact.len()) && compact.is_ascii();
    let inward = compact.get(compact.len().saturating_sub(3)..)?;
    let inward_ok = inward.len() == 3
        && inward.as_bytes()[0].is_ascii_digit()
        && inward.as_bytes()[1..].iter().all(u8::is_ascii_alphabetic);
    (ok_len && inward_ok).then(|| compact[..compact.len() - 3].to_owned())
}

/// A date or date-time to its year and month (`2024-03-15` → `2024-03`).
pub fn month(value: &str) -> Option<String> {
    let head = value.get(..7)?;
    let b = head.as_bytes();
    (b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5..].iter().all(u8::is_ascii_digit))
        .then(|| head.to_owned())
}

/// Applies `how` to a stored value, or `None` when the value cannot be generalised (then it
/// is withheld).
pub fn apply(how: Generalisation, value: &Value, on: NaiveDate) -> Option<Value> {
    let text = value.as_str()?;
    let out = match how {
        Generalisation::AgeBand => age_band(NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?, on),
        Generalisation::PostcodeDistrict => postcode_district(text)?,
        Generalisation::Month => month(text)?,
    };
    Some(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn age_bands_turn_on_birthdays_and_cap_at_ninety() {
        assert_eq!(age_band(d("1950-06-15"), d("2020-06-14")), "65-69");
        assert_eq!(age_band(d("1950-06-15"), d("2020-06-15")), "70-74");
        assert_eq!(age_band(d("1930-01-01"), d("2020-01-01")), "90+");
        assert_eq!(age_band(d("1930-01-02"), d("2020-01-01")), "85-89");
        assert_eq!(age_band(d("2010-01-01"), d("2020-01-01")), "0-17");
        assert_eq!(age_band(d("2000-01-01"), d("2020-01-01")), "18-24");
        assert_eq!(age_band(d("1995-01-01"), d("2020-01-01")), "25-29");
        assert_eq!(age_band(d("2021-01-01"), d("2020-01-01")), "unborn");
    }

    #[test]
    fn postcode_districts_are_outward_codes() {
        assert_eq!(postcode_district("LS1 4AP").as_deref(), Some("LS1"));
        assert_eq!(postcode_district("sw1a1aa").as_deref(), Some("SW1A"));
        assert_eq!(postcode_district("M1 1AE").as_deref(), Some("M1"));
        assert_eq!(postcode_district("not a postcode"), None);
        assert_eq!(postcode_district("AB"), None);
        assert_eq!(postcode_district("ÉÉ1 1AA"), None);
    }

    #[test]
    fn months_keep_year_and_month() {
        assert_eq!(month("2024-03-15").as_deref(), Some("2024-03"));
        assert_eq!(month("2024-03-15T10:00:00Z").as_deref(), Some("2024-03"));
        assert_eq!(month("15/03/2024"), None);
        assert_eq!(month("2024"), None);
    }
}
