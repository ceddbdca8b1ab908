//! Instants on the two time axes (recorded time and valid time).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// An instant in microseconds since the Unix epoch, UTC.
///
/// Serialised as RFC 3339 text so journals and API documents stay readable; ordered and
/// compared as an integer so the store can index it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// The instant `days` whole days later (saturating).
    pub fn plus_days(self, days: i64) -> Self {
        Timestamp(self.0.saturating_add(days.saturating_mul(86_400_000_000)))
    }

    /// Now, from the system clock.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// Midnight UTC at the start of `date`: the valid time a date-only source value means.
    pub fn from_date(date: NaiveDate) -> Self {
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        Timestamp(Utc.from_utc_datetime(&midnight).timestamp_micros())
    }

    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.0)
    }

    /// The UTC calendar day of this instant (the Unix epoch's day when out of range).
    pub fn date(self) -> NaiveDate {
        self.to_datetime().map(|dt| dt.date_naive()).unwrap_or_default()
    }

    /// Parses RFC 3339 (`2024-03-01T09:30:00Z`) or a plain date (`2024-03-01`, midnight UTC),
    /// in the years 0001 to 9999 that RFC 3339 can write back.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let text = text.trim();
        if let Some(micros) = canonical::parse(text.as_bytes()) {
            return Ok(Timestamp(micros));
        }
        Self::parse_general(text)
    }

    /// Every form `parse` accepts, through chrono.
    fn parse_general(text: &str) -> Result<Self, ModelError> {
        let parsed = DateTime::parse_from_rfc3339(text).map(|dt| dt.with_timezone(&Utc)).ok().or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.and_time(Default::default()).and_utc())
        });
        match parsed {
            Some(dt) if (1..=9999).contains(&dt.year()) => Ok(Timestamp(dt.timestamp_micros())),
            _ => Err(ModelError::BadTimestamp(text.to_owned())),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = canonical::text(self.0) {
            // Only ASCII digits and separators are written.
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        match self.to_datetime() {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Micros, true)),
            None => write!(f, "@{}us", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The canonical text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (years 1 to 9999), written and read
/// without chrono: every journal record, entity state and history entry carries several
/// timestamps, and chrono's RFC 3339 writer allocates a string for each. Chrono stays the
/// reader of every other form; tests hold both to the same answers.
mod canonical {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    const LEN: usize = 27;

    pub(super) fn text(micros: i64) -> Option<[u8; LEN]> {
        let (year, month, day) = civil_from_days(micros.div_euclid(MICROS_PER_DAY));
        if !(1..=9999).contains(&year) {
            return None;
        }
        let in_day = micros.rem_euclid(MICROS_PER_DAY);
        let seconds = in_day / 1_000_000;
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        put(&mut out[0..4], year);
        put(&mut out[5..7], month);
        put(&mut out[8..10], day);
        put(&mut out[11..13], seconds / 3600);
        put(&mut out[14..16], seconds / 60 % 60);
        put(&mut out[17..19], seconds % 60);
        put(&mut out[20..26], in_day % 1_000_000);
        Some(out)
    }

    /// `None` for anything but the canonical shape with a real date and time (a leap second
    /// included): the caller then asks chrono.
    pub(super) fn parse(text: &[u8]) -> Option<i64> {
        if text.len() != LEN
            || text[4] != b'-'
            || text[7] != b'-'
            || text[10] != b'T'
            || text[13] != b':'
            || text[16] != b':'
            || text[19] != b'.'
            || text[26] != b'Z'
        {
            return None;
        }
        let number = |from: usize, to: usize| {
            text[from..to].iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
        };
        let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
        let (hour, minute, second, micro) = (number(11, 13)?, number(14, 16)?, number(17, 19)?, number(20, 26)?);
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then(|| {
            days_from_civil(year, month, day) * MICROS_PER_DAY
                + ((hour * 60 + minute) * 60 + second) * 1_000_000
                + micro
        })
    }

    fn put(slot: &mut [u8], mut n: i64) {
        for digit in slot.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }

    fn days_in_month(year: i64, month: i64) -> i64 {
        match month {
            2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    // Howard Hinnant's civil calendar algorithms (proleptic Gregorian, March-based years).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
    const FIRST: i64 = -62_135_596_800_000_000;
    const LAST: i64 = 253_402_300_799_999_999;

    fn chrono_text(t: Timestamp) -> String {
        t.to_datetime().map(|dt| dt.to_rfc3339_opts(SecondsFormat::Micros, true)).unwrap_or_default()
    }

    proptest! {
        #[test]
        fn canonical_text_is_chronos(micros in FIRST..=LAST) {
            let t = Timestamp(micros);
            prop_assert_eq!(t.to_string(), chrono_text(t));
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn canonical_parse_agrees_with_chrono(
            text in "[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]\\.[0-9]{6}Z"
        ) {
            prop_assert_eq!(Timestamp::parse(&text).ok(), Timestamp::parse_general(&text).ok());
        }

        #[test]
        fn any_text_parses_as_chrono_reads_it(text in "[0-9T:.Z+-]{0,30}") {
            prop_assert_eq!(Timestamp::parse(&text).ok(), Timestamp::parse_general(text.trim()).ok());
        }
    }

    #[test]
    fn canonical_edges() {
        for micros in [FIRST, LAST, 0, -1, 951_782_400_000_000, 4_107_542_400_000_000] {
            assert_eq!(Timestamp(micros).to_string(), chrono_text(Timestamp(micros)), "{micros}");
        }
        assert_eq!(Timestamp(FIRST - 1).to_string(), chrono_text(Timestamp(FIRST - 1)));
        assert!(Timestamp::parse("2024-02-30T00:00:00.000000Z").is_err());
        assert_eq!(
            Timestamp::parse("2024-02-29T23:59:59.999999Z").unwrap(),
            Timestamp::parse_general("2024-02-29T23:59:59.999999Z").unwrap()
        );
    }

    #[test]
    fn round_trips_through_text() {
        let t = Timestamp::parse("2024-03-01T09:30:00.123456Z").unwrap();
        assert_eq!(t.to_string(), "2024-03-01T09:30:00.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn plain_date_is_midnight_utc() {
        let t = Timestamp::parse("2024-03-01").unwrap();
        assert_eq!(t.to_string(), "2024-03-01T00:00:00.000000Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = Timestamp::parse("2024-03-01T10:30:00+01:00").unwrap();
        assert_eq!(t.to_string(), "2024-03-01T09:30:00.000000Z");
    }

    #[test]
    fn years_outside_rfc_3339_are_refused() {
        // Found by the `scalars` fuzz target: chrono reads a negative year that RFC 3339 cannot write.
        assert!(Timestamp::parse("-7301-7-3").is_err());
        assert!(Timestamp::parse("0000-01-01").is_err());
        assert!(Timestamp::parse("9999-12-31").is_ok());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(Timestamp::parse("yesterday"), Err(ModelError::BadTimestamp(_))));
    }
}
