//! Who is calling: a verified subject with exactly one role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The five roles of DESIGN.md's access model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything; writes schema, mapping profiles, merges and erasure.
    Admin,
    /// Reads all councils with identifiable fields (people who opted out only under
    /// break-glass); writes identity-resolution decisions.
    Analyst,
    /// Reads and writes only its own council's contributions.
    Council,
    /// Reads minimised, pseudonymised data under a data-sharing agreement.
    Consumer,
    /// Reads the access log and verifies the chains; no record content.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Analyst, Role::Council, Role::Consumer, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Council => "council",
            Role::Consumer => "consumer",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?} (expected admin, analyst, council, consumer or auditor)"))
    }
}

/// An authenticated caller, built only from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    /// The council a `council` principal acts for; for an analyst, an optional narrower scope.
    pub council: Option<String>,
    /// The data-sharing agreement a consumer reads under.
    pub agreement: Option<String>,
    pub purpose: Option<String>,
    /// When the token ends (its `exp`, seconds since the epoch): a connection opened with it
    /// (the change feed's stream, a GraphQL WebSocket) ends then. `None` for a principal not
    /// read from a token, such as one about to be minted into one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl Principal {
    /// Whether the token has ended at `now_millis` (milliseconds since the epoch), with no
    /// leeway: leeway is for the clock skew between issuer and server when a token is
    /// presented, not a longer life for a connection that outlasts it.
    pub fn expired_at(&self, now_millis: i64) -> bool {
        self.exp.is_some_and(|exp| now_millis >= exp.saturating_mul(1000))
    }
}
