//! Access control from configuration: the token secret and key set, the agreements, the
//! pseudonym secret and the access log, for `serve`, `token` and `demo`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pole_api::{AccessControl, AccessSettings};
use pole_auth::{Agreements, Principal, Role, TokenIssuer, TokenSettings, TokenVerifier};
use pole_model::SchemaRegistry;
use pole_store::AccessLog;
use rand::RngCore as _;

use crate::config::Config;

fn secrets_dir(config: &Config) -> PathBuf {
    config.data.join("secrets")
}

/// A 32-byte secret kept in the data directory, created on first use, readable only by
/// its owner.
fn stored_secret(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            // Written by an older pole-ods into a directory others could enter.
            pole_store::owner_only::tighten(dir)?;
            pole_store::owner_only::tighten(&path)?;
            let secret = hex::decode(text.trim()).ok().filter(|s| s.len() >= 32);
            return secret.with_context(|| format!("{} does not hold a secret of 64 hex digits", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    pole_store::owner_only::create_dir_all(dir)?;
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let written = pole_store::owner_only::options().write(true).create_new(true).open(&path).and_then(|mut file| {
        file.write_all(hex::encode(&secret).as_bytes())?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(secret),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => stored_secret(dir, name),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// The HS256 secret: configured, or generated once for this data directory.
pub fn token_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    match &config.auth.token_secret {
        Some(secret) => Ok(secret.as_bytes().to_vec()),
        None => stored_secret(&secrets_dir(config), "token.secret"),
    }
}

fn settings(config: &Config) -> TokenSettings {
    TokenSettings { issuer: config.auth.issuer.clone(), audience: config.auth.audience.clone(), leeway_secs: 30 }
}

pub fn agreements(config: &Config, schema: &SchemaRegistry) -> anyhow::Result<Agreements> {
    let mut agreements = Agreements::builtin(schema)?;
    if let Some(dir) = &config.auth.agreements {
        agreements.load_dir(dir, schema)?;
    }
    Ok(agreements)
}

/// Everything `serve` needs to decide who a caller is and what they see.
pub fn control(config: &Config, schema: &SchemaRegistry) -> anyhow::Result<AccessControl> {
    let mut verifier = TokenVerifier::new(settings(config)).with_secret(&token_secret(config)?);
    if let Some(path) = &config.auth.jwks_file {
        verifier = verifier.with_key_set(path)?;
    }
    let log = AccessLog::open(config.data.join("audit"))
        .with_context(|| format!("opening the access log in {}", config.data.display()))?;
    Ok(AccessControl::new(AccessSettings {
        verifier,
        agreements: agreements(config, schema)?,
        pseudonym_secret: stored_secret(&secrets_dir(config), "pseudonym.secret")?,
        break_glass_minutes: config.auth.break_glass_minutes,
        log,
    }))
}

/// Mints a development token signed with this deployment's HS256 secret.
pub fn mint(config: &Config, principal: &Principal, ttl_secs: i64) -> anyhow::Result<String> {
    let issuer = TokenIssuer::new(settings(config), &token_secret(config)?);
    Ok(issuer.mint(principal, chrono::Utc::now().timestamp(), ttl_secs)?)
}

/// One ready-made token per role for the demo's newcomer, with what each is bound to.
pub fn demo_tokens(config: &Config, council: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let principal = Principal {
            subject: format!("demo-{role}"),
            role,
            council: (role == Role::Council).then(|| council.to_owned()),
            agreement: (role == Role::Consumer).then(|| "research".to_owned()),
            purpose: (role == Role::Consumer).then(|| "research".to_owned()),
            exp: None,
        };
        let label = match role {
            Role::Council => format!("council ({council})"),
            Role::Consumer => "consumer (agreement research)".to_owned(),
            other => other.to_string(),
        };
        out.push((label, mint(config, &principal, 8 * 3600)?));
    }
    Ok(out)
}

/// The pseudonym an entity has under an agreement (the demo shows the consumer's view).
pub fn pseudonym(config: &Config, agreement: &str, id: &pole_model::EntityId) -> anyhow::Result<String> {
    let secret = stored_secret(&secrets_dir(config), "pseudonym.secret")?;
    Ok(pole_auth::Pseudonymiser::new(&secret, agreement).pseudonym(id))
}

/// Records an operator's access from the command line (the actor is `cli:` and the login
/// name), durably, before the command shows anything. The command holds the store's lock,
/// so no server is appending to the same log.
pub fn trace_cli(
    config: &Config,
    action: pole_store::AccessAction,
    operation: &str,
    entities: Vec<pole_model::EntityId>,
) -> anyhow::Result<()> {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "operator".into());
    let log = AccessLog::open(config.data.join("audit"))
        .with_context(|| format!("opening the access log in {}", config.data.display()))?;
    let mut entry = pole_store::AccessEntry::new(format!("cli:{user}"), "operator", action, operation);
    entry.entities = entities;
    log.record_durably(entry)?;
    Ok(())
}
