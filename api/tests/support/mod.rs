//! What the in-process API tests share: access control over a temporary access log, and
//! tokens signed with the test secret.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use pole_api::{AccessControl, AccessSettings};
use pole_auth::{Agreements, Principal, TokenIssuer, TokenSettings, TokenVerifier};
use pole_store::{AccessLog, Store};

pub const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

/// Access control for `store`, its access log under `dir`.
pub fn access(store: &Store, dir: &Path) -> AccessControl {
    AccessControl::new(AccessSettings {
        verifier: TokenVerifier::new(TokenSettings::default()).with_secret(SECRET),
        agreements: Agreements::builtin(store.schema()).unwrap(),
        pseudonym_secret: b"pseudonyms for the tests".to_vec(),
        break_glass_minutes: 15,
        log: AccessLog::open(dir.join("audit")).unwrap(),
    })
}

/// `Bearer <token>` for a role.
pub fn bearer(role: &str, council: Option<&str>, agreement: Option<&str>) -> String {
    let principal = Principal {
        subject: format!("test-{role}"),
        role: role.parse().unwrap(),
        council: council.map(str::to_owned),
        agreement: agreement.map(str::to_owned),
        purpose: None,
        exp: None,
    };
    let token = TokenIssuer::new(TokenSettings::default(), SECRET)
        .mint(&principal, chrono::Utc::now().timestamp(), 3600)
        .unwrap();
    format!("Bearer {token}")
}
