//! Token verification against every way a token can be wrong, for HS256 and JWKS keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pole_auth::{Claims, Principal, Role, TokenIssuer, TokenSettings, TokenVerifier};

const SECRET: &[u8] = b"a test secret of reasonable length";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn claims(role: &str) -> Claims {
    Claims {
        sub: "alice".into(),
        roles: vec![role.into()],
        council: None,
        purpose: None,
        agreement: None,
        iss: "pole-ods".into(),
        aud: "pole-ods".into(),
        exp: now() + 600,
        nbf: Some(now() - 5),
        iat: Some(now() - 5),
    }
}

fn hs256(claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(TokenSettings::default()).with_secret(SECRET).with_key_set(&keys().join("jwks.json")).unwrap()
}

fn rejection(token: &str) -> String {
    verifier().verify(token).unwrap_err().to_string()
}

#[test]
fn a_good_hs256_token_names_its_principal() {
    let claims = claims("analyst");
    let p = verifier().verify(&hs256(&claims, SECRET)).unwrap();
    assert_eq!(
        p,
        Principal {
            subject: "alice".into(),
            role: Role::Analyst,
            council: None,
            agreement: None,
            purpose: None,
            exp: Some(claims.exp),
        }
    );
}

#[test]
fn minted_tokens_verify_and_unusable_ones_are_not_minted() {
    let issuer = TokenIssuer::new(TokenSettings::default(), SECRET);
    let council = Principal {
        subject: "leeds".into(),
        role: Role::Council,
        council: Some("LDS".into()),
        agreement: None,
        purpose: None,
        exp: None,
    };
    let at = now();
    let token = issuer.mint(&council, at, 3600).unwrap();
    assert_eq!(verifier().verify(&token).unwrap(), Principal { exp: Some(at + 3600), ..council.clone() });
    let mut homeless = council.clone();
    homeless.council = None;
    assert!(issuer.mint(&homeless, now(), 3600).unwrap_err().to_string().contains("needs a council claim"));
}

#[test]
fn every_wrong_token_is_refused_with_its_reason() {
    let mut expired = claims("admin");
    expired.exp = now() - 3600;
    assert!(rejection(&hs256(&expired, SECRET)).contains("expired"));

    let mut early = claims("admin");
    early.nbf = Some(now() + 3600);
    assert!(rejection(&hs256(&early, SECRET)).contains("not valid yet"));

    assert!(rejection(&hs256(&claims("admin"), b"another secret")).contains("signature"));

    let mut issuer = claims("admin");
    issuer.iss = "someone-else".into();
    assert!(rejection(&hs256(&issuer, SECRET)).contains("issuer"));

    let mut audience = claims("admin");
    audience.aud = "another-service".into();
    assert!(rejection(&hs256(&audience, SECRET)).contains("audience"));

    assert!(rejection(&hs256(&claims("superuser"), SECRET)).contains("unknown role"));
    assert!(rejection(&hs256(&claims("council"), SECRET)).contains("needs a council claim"));
    assert!(rejection(&hs256(&claims("consumer"), SECRET)).contains("needs an agreement claim"));
    let mut two = claims("admin");
    two.roles.push("analyst".into());
    assert!(rejection(&hs256(&two, SECRET)).contains("exactly one role"));

    assert!(rejection("not-a-token").contains("malformed"));
    assert!(rejection("a.b.c").contains("malformed"));
}

#[test]
fn unsigned_tokens_are_refused_by_name() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64.encode(serde_json::to_vec(&claims("admin")).unwrap());
    let reason = rejection(&format!("{header}.{body}."));
    assert!(reason.contains("alg none"), "{reason}");
}

#[test]
fn jwks_keys_verify_by_kid_with_their_pinned_algorithm() {
    let es = EncodingKey::from_ec_pem(&std::fs::read(keys().join("es256-private.pem")).unwrap()).unwrap();
    let rs = EncodingKey::from_rsa_pem(&std::fs::read(keys().join("rs256-private.pem")).unwrap()).unwrap();
    let sign = |alg, kid: Option<&str>, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims("auditor"), key).unwrap()
    };
    assert_eq!(verifier().verify(&sign(Algorithm::ES256, Some("ec-1"), &es)).unwrap().role, Role::Auditor);
    assert_eq!(verifier().verify(&sign(Algorithm::RS256, Some("rsa-1"), &rs)).unwrap().role, Role::Auditor);
    assert!(rejection(&sign(Algorithm::ES256, Some("ec-9"), &es)).contains("unknown key id"));
    assert!(rejection(&sign(Algorithm::ES256, None, &es)).contains("no kid"));
    // A token may not choose another algorithm than the one its key is pinned to.
    assert!(rejection(&sign(Algorithm::RS256, Some("ec-1"), &rs)).contains("signs with"));
    // Algorithms outside HS256, RS256 and ES256 are refused before any key is tried.
    assert!(rejection(&sign(Algorithm::RS512, Some("rsa-1"), &rs)).contains("not accepted"));
}

#[test]
fn an_hs256_token_naming_a_key_id_is_refused() {
    // Signed with the right secret, but naming a key: the secret has no key id, so any kid
    // is one this verifier does not know, a key-set key's id included.
    for kid in ["hs-1", "rsa-1", "ec-1", ""] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims("admin"), &EncodingKey::from_secret(SECRET)).unwrap();
        let reason = rejection(&token);
        assert!(reason.contains(&format!("unknown key id {kid:?}")), "{kid}: {reason}");
    }
    // The tokens pole-ods mints itself carry none, and verify.
    let issuer = TokenIssuer::new(TokenSettings::default(), SECRET);
    let admin = Principal {
        subject: "root".into(),
        role: Role::Admin,
        council: None,
        agreement: None,
        purpose: None,
        exp: None,
    };
    let token = issuer.mint(&admin, now(), 60).unwrap();
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, None);
    assert_eq!(verifier().verify(&token).unwrap().subject, "root");
}

#[test]
fn a_principal_ends_at_its_token_s_exp_without_leeway() {
    let mut claims = claims("admin");
    // Past exp, but inside the verifier's leeway: the token is still accepted...
    claims.exp = now() - 5;
    claims.nbf = Some(now() - 60);
    let principal = verifier().verify(&hs256(&claims, SECRET)).unwrap();
    assert_eq!(principal.exp, Some(claims.exp));
    // ...while a connection it opened has ended.
    assert!(principal.expired_at(claims.exp * 1000));
    assert!(!principal.expired_at(claims.exp * 1000 - 1));
    let unbounded = Principal { exp: None, ..principal };
    assert!(!unbounded.expired_at(i64::MAX));
}

#[test]
fn without_a_secret_hs256_is_not_accepted() {
    let only_keys = TokenVerifier::new(TokenSettings::default()).with_key_set(&keys().join("jwks.json")).unwrap();
    let reason = only_keys.verify(&hs256(&claims("admin"), SECRET)).unwrap_err().to_string();
    assert!(reason.contains("HS256 tokens are not accepted"), "{reason}");
}

#[test]
fn rejections_never_echo_the_token() {
    let token = hs256(&claims("superuser"), SECRET);
    assert!(!rejection(&token).contains(&token[..20]));
}
