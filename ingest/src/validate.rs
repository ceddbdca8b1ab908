//! Checks of single values that do not depend on a profile: NHS numbers (Modulus 11), UK
//! postcodes, CQC identifiers, identifier values, ages, and dates against
//! today and a date of birth. Each answers the canonical value or the reason in words a
//! submitter can act on.

use chrono::NaiveDate;
use pole_model::{normalise_nhs_number, Identifier};

/// An NHS number, normalised to ten digits.
pub fn nhs_number(raw: &str) -> Result<String, String> {
    normalise_nhs_number(raw).map_err(|e| format!("not a valid NHS number: {e}"))
}

/// A UK postcode in its canonical form (`SW1A 1AA`): outward code of 2 to 4 characters in
/// one of the six shapes, a space, then a digit and two letters.
pub fn postcode(raw: &str) -> Result<String, String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let bad = || format!("not a UK postcode (such as SW1A 1AA): {raw:?}");
    if compact == "GIR0AA" {
        return Ok("GIR 0AA".into());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return Err(bad());
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let shape = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    '9'
                } else if c.is_ascii_alphabetic() {
                    'A'
                } else {
                    '?'
                }
            })
            .collect()
    };
    let outward_ok = matches!(shape(outward).as_str(), "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A");
    if !outward_ok || shape(inward) != "9AA" {
        return Err(bad());
    }
    Ok(format!("{outward} {inward}"))
}

/// A CQC provider or location id: `1-` followed by digits.
pub fn cqc_id(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    let ok = v.len() > 2 && v.starts_with("1-") && v[2..].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!("not a CQC id (1- followed by digits, such as 1-123456789): {v:?}"))
    }
}

/// The shape every identifier value needs (printable, at most 256 characters).
pub fn identifier_value(system: &str, raw: &str) -> Result<Identifier, String> {
    let identifier = Identifier::new(system, raw.trim());
    identifier.check_shape().map_err(|e| e.to_string())?;
    Ok(identifier)
}

/// The age band stored for a client's age at the start of a referral; "90 or over" is
/// what the data set asks for instead of an exact age from 90.
pub fn age_band(raw: &str) -> Result<&'static str, String> {
    let normal = raw.trim().to_lowercase();
    if normal == "90 or over" || normal == "90+" || normal == "90 and over" {
        return Ok("90 or over");
    }
    let age: i64 = normal.parse().map_err(|_| format!("not an age in years or \"90 or over\": {raw:?}"))?;
    Ok(match age {
        i64::MIN..=-1 => return Err(format!("an age cannot be negative: {raw:?}")),
        0..=17 => "under 18",
        18..=64 => "18-64",
        65..=74 => "65-74",
        75..=84 => "75-84",
        85..=89 => "85-89",
        90..=130 => "90 or over",
        _ => return Err(format!("an age over 130 is not plausible: {raw:?}")),
    })
}

/// Refuses a date after `today`.
pub fn not_future(date: NaiveDate, today: NaiveDate) -> Result<(), String> {
    if date > today {
        Err(format!("{date} is in the future (today is {today})"))
    } else {
        Ok(())
    }
}

/// Refuses a date before the client's birth.
pub fn not_before_birth(date: NaiveDate, birth: Option<NaiveDate>) -> Result<(), String> {
    match birth {
        Some(birth) if date < birth => Err(format!("{date} is before the client's date of birth {birth}")),
        _ => Ok(()),
    }
}

/// Whole years from `birth` to `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut years = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes() {
        for (raw, want) in [
            ("sw1a1aa", "SW1A 1AA"),
            ("BR6 8ND", "BR6 8ND"),
            (" l7  8ye", "L7 8YE"),
            ("EX31 4JB", "EX31 4JB"),
            ("M1 1AE", "M1 1AE"),
        ] {
            assert_eq!(postcode(raw).unwrap(), want, "{raw}");
        }
        for raw in ["", "12345", "BR6", "BR6 8N1", "SW1A-1AA", "ZZZZ 9ZZ"] {
            assert!(postcode(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn nhs_and_cqc() {
        assert_eq!(nhs_number("943 476 5919").unwrap(), "9434765919");
        assert!(nhs_number("9434765918").unwrap_err().contains("Modulus 11"));
        assert_eq!(cqc_id(" 1-101 ").unwrap(), "1-101");
        assert!(cqc_id("1-").is_err());
        assert!(cqc_id("RXH01").is_err());
    }

    #[test]
    fn ages_and_dates() {
        assert_eq!(age_band("90 or over").unwrap(), "90 or over");
        assert_eq!(age_band("84").unwrap(), "75-84");
        assert!(age_band("eighty").is_err());
        assert!(age_band("-3").is_err());
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert!(not_future(d(2030, 1, 1), d(2024, 1, 1)).is_err());
        assert!(not_before_birth(d(1940, 1, 1), Some(d(1941, 1, 1))).is_err());
        assert_eq!(age_on(d(1940, 6, 2), d(2013, 6, 1)), 72);
        assert_eq!(age_on(d(1940, 6, 1), d(2013, 6, 1)), 73);
        assert!(pole_model::is_council_code("305") && !pole_model::is_council_code("30:5"));
        assert!(!pole_model::is_council_code(""));
    }
}
