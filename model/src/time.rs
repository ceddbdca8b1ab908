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

#[cfg(test)]
mod tests {
    use super::*;

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
