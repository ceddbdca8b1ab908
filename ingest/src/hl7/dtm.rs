//! HL7 date/times (`YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]`) to the store's dates and
//! RFC 3339 instants, and instants back to HL7 for acknowledgements.

use pole_model::Timestamp;

/// A date/time as sent, with the precision the sender gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtm {
    pub year: u32,
    pub month: Option<u32>,
    pub day: Option<u32>,
    pub hour: Option<u32>,
    pub minute: Option<u32>,
    pub second: Option<u32>,
    pub micros: u32,
    /// Minutes east of UTC, when the sender said.
    pub offset_minutes: Option<i32>,
}

impl Dtm {
    /// Parses and range-checks (a 30th of February is refused).
    pub fn parse(text: &str) -> Result<Dtm, &'static str> {
        let text = text.trim();
        let (body, offset) = match text.find(['+', '-']) {
            Some(at) => (&text[..at], Some(parse_offset(&text[at..])?)),
            None => (text, None),
        };
        let (digits, fraction) = match body.split_once('.') {
            Some((d, f)) => (d, Some(f)),
            None => (body, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14) {
            return Err("is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS]]]]])");
        }
        let part = |from: usize, to: usize| digits.get(from..to).and_then(|s| s.parse::<u32>().ok());
        let year = part(0, 4).ok_or("has no year")?;
        let dtm = Dtm {
            year,
            month: part(4, 6),
            day: part(6, 8),
            hour: part(8, 10),
            minute: part(10, 12),
            second: part(12, 14),
            micros: match fraction {
                None => 0,
                Some(f)
                    if digits.len() == 14 && !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("{f:0<6}").parse().map_err(|_| "has a bad fraction of a second")?
                }
                Some(_) => return Err("has a bad fraction of a second"),
            },
            offset_minutes: offset,
        };
        if !(1..=9999).contains(&dtm.year) {
            return Err("has a year outside 1 to 9999");
        }
        if let Some(m) = dtm.month {
            if !(1..=12).contains(&m) {
                return Err("has a month outside 1 to 12");
            }
            if let Some(d) = dtm.day {
                if d == 0 || d > days_in_month(dtm.year, m) {
                    return Err("has a day that is not in the month");
                }
            }
        }
        if dtm.hour.is_some_and(|h| h > 23) || dtm.minute.is_some_and(|m| m > 59) || dtm.second.is_some_and(|s| s > 59)
        {
            return Err("has a time outside 00:00:00 to 23:59:59");
        }
        Ok(dtm)
    }

    /// `YYYY-MM-DD`, when the sender gave at least a day.
    pub fn date(&self) -> Option<String> {
        Some(format!("{:04}-{:02}-{:02}", self.year, self.month?, self.day?))
    }

    /// The instant as RFC 3339, when the sender gave at least a day. A time without an
    /// offset is England's local time (GMT or BST), which is what English senders mean.
    pub fn rfc3339(&self) -> Option<String> {
        let (month, day) = (self.month?, self.day?);
        let (h, m, s) = (self.hour.unwrap_or(0), self.minute.unwrap_or(0), self.second.unwrap_or(0));
        let offset = match self.offset_minutes {
            Some(o) => o,
            None => uk_offset_minutes(self.year, month, day, h, m, s),
        };
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        let fraction = if self.micros > 0 { format!(".{:06}", self.micros) } else { String::new() };
        Some(format!(
            "{:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}{sign}{:02}:{:02}",
            self.year,
            abs / 60,
            abs % 60
        ))
    }

    /// The instant, when the sender gave at least a day.
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.rfc3339()?).ok()
    }
}

/// An instant as an HL7 DTM in UTC: `YYYYMMDDHHMMSS+0000`.
pub fn format_hl7(at: Timestamp) -> String {
    // Display is RFC 3339 in UTC (`2024-03-01T09:30:00.000000Z`); keep its digits.
    let text = at.to_string();
    let digits: String = text.chars().take(19).filter(char::is_ascii_digit).collect();
    if digits.len() == 14 {
        format!("{digits}+0000")
    } else {
        String::new()
    }
}

fn parse_offset(text: &str) -> Result<i32, &'static str> {
    let bad = "has a bad time zone offset (+HHMM or -HHMM)";
    let (sign, digits) = text.split_at(1);
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad)?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad)?;
    if hours > 14 || minutes > 59 {
        return Err(bad);
    }
    let total = hours * 60 + minutes;
    Ok(if sign == "-" { -total } else { total })
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day number of the last Sunday of a 31-day month.
fn last_sunday(year: u32, month: u32) -> i64 {
    let last = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday: (days + 4) mod 7 counts from Sunday.
    last - (last + 4).rem_euclid(7)
}

/// British Summer Time runs from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
/// last Sunday of October (the rule since 1996; earlier years are rare in ADT feeds).
fn uk_offset_minutes(year: u32, month: u32, day: u32, h: u32, m: u32, s: u32) -> i32 {
    let local = days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s);
    let start = last_sunday(year, 3) * 86_400 + 3600;
    let end = last_sunday(year, 10) * 86_400 + 3600;
    let as_bst = local - 3600;
    if (start..end).contains(&as_bst) {
        60
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_kept() {
        let d = Dtm::parse("1948").unwrap();
        assert_eq!((d.year, d.month, d.date()), (1948, None, None));
        let d = Dtm::parse("19481204").unwrap();
        assert_eq!(d.date().as_deref(), Some("1948-12-04"));
        assert_eq!(d.rfc3339().as_deref(), Some("1948-12-04T00:00:00+00:00"));
    }

    #[test]
    fn local_times_follow_british_summer_time() {
        assert_eq!(Dtm::parse("202401150930").unwrap().rfc3339().as_deref(), Some("2024-01-15T09:30:00+00:00"));
        assert_eq!(Dtm::parse("20240715093000").unwrap().rfc3339().as_deref(), Some("2024-07-15T09:30:00+01:00"));
        // 2024: BST from 31 March 01:00 UTC to 27 October 01:00 UTC.
        assert_eq!(Dtm::parse("202403310030").unwrap().rfc3339().as_deref(), Some("2024-03-31T00:30:00+00:00"));
        assert_eq!(Dtm::parse("202403310300").unwrap().rfc3339().as_deref(), Some("2024-03-31T03:00:00+01:00"));
        assert_eq!(Dtm::parse("202410270300").unwrap().rfc3339().as_deref(), Some("2024-10-27T03:00:00+00:00"));
    }

    #[test]
    fn offsets_and_fractions() {
        let d = Dtm::parse("20240715093000.25-0500").unwrap();
        assert_eq!(d.rfc3339().as_deref(), Some("2024-07-15T09:30:00.250000-05:00"));
        assert_eq!(d.timestamp().unwrap().to_string(), "2024-07-15T14:30:00.250000Z");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["", "2024013", "20240230", "20241301", "202401012460", "abcd", "2024+01", "20240101.5", "0000"] {
            assert!(Dtm::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_format_for_acks() {
        let t = Timestamp::parse("2024-03-01T09:30:05.123Z").unwrap();
        assert_eq!(format_hl7(t), "20240301093005+0000");
    }
}
