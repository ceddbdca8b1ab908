//! The four POLE kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// People, Objects, Locations and Events: every entity is exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Person,
    Object,
    Location,
    Event,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Person, Kind::Object, Kind::Location, Kind::Event];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Object => "object",
            Kind::Location => "location",
            Kind::Event => "event",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| ModelError::UnknownKind(s.to_owned()))
    }
}
