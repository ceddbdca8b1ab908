//! Bearer tokens: JWT verification with pinned algorithms, and minting for development.
//!
//! HS256 tokens verify against one shared secret, which has no key id: an HS256 token whose
//! header names a `kid` is refused as naming an unknown key. RS256 and ES256 tokens verify
//! against a JWKS file, chosen by the header's `kid`, with the algorithm the key set pins
//! for that key (a token cannot pick a weaker one). `exp`, `nbf`, `iss` and `aud` are
//! checked with a small clock-skew allowance.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Result};
use pole_model::is_council_code;

use crate::principal::{Principal, Role};

/// The claims pole-ods reads. `roles` holds exactly one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub council: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

impl Claims {
    /// The principal these claims describe, or why they describe none.
    pub fn principal(&self) -> Result<Principal> {
        if self.sub.trim().is_empty() {
            return Err(AuthError::rejected("the sub claim is empty"));
        }
        let role = match self.roles.as_slice() {
            [one] => one.parse::<Role>().map_err(AuthError::rejected)?,
            [] => return Err(AuthError::rejected("the roles claim is empty")),
            _ => return Err(AuthError::rejected("a token carries exactly one role")),
        };
        if let Some(council) = &self.council {
            if !is_council_code(council) {
                return Err(AuthError::rejected(
                    "the council claim is not a council code (1 to 32 letters, digits, - or _)",
                ));
            }
        }
        match role {
            Role::Council if self.council.is_none() => {
                return Err(AuthError::rejected("a council token needs a council claim"))
            }
            Role::Consumer if self.agreement.as_deref().is_none_or(str::is_empty) => {
                return Err(AuthError::rejected("a consumer token needs an agreement claim"))
            }
            Role::Admin | Role::Consumer | Role::Auditor if self.council.is_some() => {
                return Err(AuthError::rejected(format!("a {role} token cannot carry a council claim")))
            }
            _ => {}
        }
        Ok(Principal {
            subject: self.sub.clone(),
            role,
            council: self.council.clone(),
            agreement: self.agreement.clone(),
            purpose: self.purpose.clone(),
            exp: Some(self.exp),
        })
    }
}

/// Who issues tokens and for whom, and how much clock skew is tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings { issuer: "pole-ods".into(), audience: "pole-ods".into(), leeway_secs: 30 }
    }
}

/// Verifies bearer tokens. Built once at start; cheap to share.
#[derive(Clone)]
pub struct TokenVerifier {
    settings: TokenSettings,
    secret: Option<DecodingKey>,
    keys: BTreeMap<String, (Algorithm, DecodingKey)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("settings", &self.settings)
            .field("hs256", &self.secret.is_some())
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    pub fn new(settings: TokenSettings) -> Self {
        TokenVerifier { settings, secret: None, keys: BTreeMap::new() }
    }

    /// Accept HS256 tokens signed with `secret`.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(DecodingKey::from_secret(secret));
        self
    }

    /// Accept RS256 and ES256 tokens signed by the keys of a JWKS document.
    pub fn with_key_set(mut self, path: &Path) -> Result<Self> {
        let fail = |reason: String| AuthError::KeySet { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| fail(format!("not a JWKS document: {e}")))?;
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().ok_or_else(|| fail("every key needs a kid".into()))?;
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => return Err(fail(format!("key {kid}: only RS256 (RSA) and ES256 (P-256) keys are accepted"))),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| fail(format!("key {kid}: {e}")))?;
            if self.keys.insert(kid.clone(), (algorithm, key)).is_some() {
                return Err(fail(format!("key id {kid} appears twice")));
            }
        }
        Ok(self)
    }

    /// The principal a token proves, or why it proves none. The reason never contains the
    /// token.
    pub fn verify(&self, token: &str) -> Result<Principal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| header_problem(token))?;
        let key = match header.alg {
            Algorithm::HS256 => {
                let secret =
                    self.secret.as_ref().ok_or_else(|| AuthError::rejected("HS256 tokens are not accepted here"))?;
                // The shared secret has no key id, so a kid names a key this verifier does
                // not hold: another deployment's secret, or a key-set key's id on a token
                // that tries to pass as HS256. Either way it is not a token of ours.
                if let Some(kid) = &header.kid {
                    return Err(AuthError::rejected(format!(
                        "unknown key id {kid:?} (HS256 tokens are signed with the shared secret, which has no key id)"
                    )));
                }
                secret
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let kid = header.kid.as_deref().ok_or_else(|| AuthError::rejected("the token header has no kid"))?;
                let (pinned, key) =
                    self.keys.get(kid).ok_or_else(|| AuthError::rejected(format!("unknown key id {kid:?}")))?;
                if *pinned != header.alg {
                    return Err(AuthError::rejected(format!(
                        "key {kid:?} signs with {pinned:?}, not {:?}",
                        header.alg
                    )));
                }
                key
            }
            other => return Err(AuthError::rejected(format!("algorithm {other:?} is not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_secs;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            AuthError::rejected(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
                ErrorKind::InvalidIssuer => format!("the issuer is not {:?}", self.settings.issuer),
                ErrorKind::InvalidAudience => format!("the audience is not {:?}", self.settings.audience),
                ErrorKind::MissingRequiredClaim(claim) => format!("the {claim} claim is missing"),
                ErrorKind::Json(e) => format!("the claims are malformed: {e}"),
                _ => "the token is malformed".to_owned(),
            })
        })?;
        data.claims.principal()
    }
}

/// Explains a header that does not parse, naming `alg: none` when that is what it is.
fn header_problem(token: &str) -> AuthError {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| B64.decode(h).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|header| header.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) if alg.eq_ignore_ascii_case("none") => {
            AuthError::rejected("unsigned tokens (alg none) are not accepted")
        }
        Some(alg) => AuthError::rejected(format!("algorithm {alg:?} is not accepted")),
        None => AuthError::rejected("the token is malformed (expected header.claims.signature)"),
    }
}

/// Mints HS256 tokens: `pole-ods token` and the demo's ready-made tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    settings: TokenSettings,
    key: EncodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(settings: TokenSettings, secret: &[u8]) -> Self {
        TokenIssuer { settings, key: EncodingKey::from_secret(secret) }
    }

    /// A token for `principal`, valid from `now` for `ttl_secs` (the principal's own `exp`,
    /// if any, is not used). The principal is checked the way a verifier will check it, so
    /// no unusable token is printed.
    pub fn mint(&self, principal: &Principal, now: i64, ttl_secs: i64) -> Result<String> {
        let claims = Claims {
            sub: principal.subject.clone(),
            roles: vec![principal.role.to_string()],
            council: principal.council.clone(),
            purpose: principal.purpose.clone(),
            agreement: principal.agreement.clone(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            exp: now.saturating_add(ttl_secs),
            nbf: Some(now),
            iat: Some(now),
        };
        claims.principal().map_err(|e| AuthError::Signing(e.to_string()))?;
        // No kid: the verifier refuses one on an HS256 token.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }
}
