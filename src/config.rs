//! One typed configuration for every command: a TOML file, then `POLE_*` environment
//! variables, then flags, each overriding the one before.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use pole_store::BackendKind;
use serde::Deserialize;

/// Settings shared by every command. Each flag also reads an environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Data directory [default: ./data]
    #[arg(long, global = true, env = "POLE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Configuration file (TOML); flags and environment variables override it
    #[arg(long, global = true, env = "POLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Projection store: `redb` or `sled` [default: redb]
    #[arg(long, global = true, env = "POLE_BACKEND", value_name = "NAME")]
    pub backend: Option<String>,
    /// Projection cache size in MiB [default: 256]
    #[arg(long, global = true, env = "POLE_CACHE_MB", value_name = "MIB")]
    pub cache_mb: Option<u64>,
    /// Schema pack directory (schema.toml and codes/*.csv) [default: the built-in adult social care pack]
    #[arg(long, global = true, env = "POLE_SCHEMA_PACK", value_name = "DIR")]
    pub schema_pack: Option<PathBuf>,
    /// Log filter, e.g. `info` or `pole_store=debug` [default: warn]
    #[arg(long, global = true, env = "POLE_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format: `text` or `json` [default: text]
    #[arg(long, global = true, env = "POLE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// JWKS file of the RS256/ES256 keys that sign tokens (federated issuers)
    #[arg(long, global = true, env = "POLE_JWKS_FILE", value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Issuer (`iss`) tokens must name [default: pole-ods]
    #[arg(long, global = true, env = "POLE_TOKEN_ISSUER", value_name = "NAME")]
    pub token_issuer: Option<String>,
    /// Audience (`aud`) tokens must name [default: pole-ods]
    #[arg(long, global = true, env = "POLE_TOKEN_AUDIENCE", value_name = "NAME")]
    pub token_audience: Option<String>,
    /// Directory of extra data-sharing agreements (*.toml), beside the built-in `research`
    #[arg(long, global = true, env = "POLE_AGREEMENTS", value_name = "DIR")]
    pub agreements: Option<PathBuf>,
    /// How long an analyst's break-glass grant lasts, in minutes [default: 15]
    #[arg(long, global = true, env = "POLE_BREAK_GLASS_MINUTES", value_name = "MINUTES")]
    pub break_glass_minutes: Option<u32>,
    /// Whether /metrics answers without a token: `true` or `false` [default: true]
    #[arg(long, global = true, env = "POLE_METRICS_PUBLIC", value_name = "BOOL")]
    pub metrics_public: Option<bool>,
    /// Most MLLP connections served at once; more are closed on accept [default: 64]
    #[arg(long, global = true, env = "POLE_MLLP_MAX_CONNECTIONS", value_name = "N")]
    pub mllp_max_connections: Option<usize>,
    /// Seconds an MLLP connection may stay silent before it is closed [default: 300]
    #[arg(long, global = true, env = "POLE_MLLP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub mllp_idle_timeout_secs: Option<u64>,
    /// Threads that run HTTP requests' store work, in all [default: 4 per core]
    #[arg(long, global = true, env = "POLE_STORE_THREADS", value_name = "N")]
    pub store_threads: Option<usize>,
}

/// The configuration file's shape; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub backend: Option<String>,
    pub cache_mb: Option<u64>,
    pub schema_pack: Option<PathBuf>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    /// The HS256 secret; prefer the environment (`POLE_TOKEN_SECRET`) or this file to a flag,
    /// which other users of the machine can read from the process list.
    pub token_secret: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub token_issuer: Option<String>,
    pub token_audience: Option<String>,
    pub agreements: Option<PathBuf>,
    pub break_glass_minutes: Option<u32>,
    pub metrics_public: Option<bool>,
    pub mllp_max_connections: Option<usize>,
    pub mllp_idle_timeout_secs: Option<u64>,
    pub store_threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data: PathBuf,
    pub json: bool,
    pub backend: BackendKind,
    pub cache_mb: u64,
    pub schema_pack: Option<PathBuf>,
    pub log: String,
    pub log_format: LogFormat,
    pub auth: AuthConfig,
    pub mllp: MllpConfig,
    /// Threads that run HTTP requests' store work (reads and commits never run on the
    /// server's workers), shared among the workers. A few per core: more let requests
    /// that wait on the disk overlap, many more only queue on the cores (BENCHMARKS.md,
    /// measured: on 2 cores, with 512, actix's default, reads by id at 64 connections had
    /// a p99 of 10–30 ms, against 4–5 ms with 8).
    pub store_threads: usize,
}

/// Limits of the MLLP listener (`serve --mllp`), so that senders cannot hold unbounded
/// sockets (file descriptors, buffers) open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MllpConfig {
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// A connection that sends nothing (and takes no ACK) for this long is closed.
    pub idle_timeout_secs: u64,
}

impl Default for MllpConfig {
    fn default() -> Self {
        MllpConfig { max_connections: 64, idle_timeout_secs: 300 }
    }
}

/// How callers are authenticated and what third parties may read.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The HS256 secret (`POLE_TOKEN_SECRET` or the file's `token_secret`); when neither
    /// is set, one is generated once per data directory (`secrets/token.secret`).
    pub token_secret: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub agreements: Option<PathBuf>,
    pub break_glass_minutes: u32,
    pub metrics_public: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("token_secret", &self.token_secret.as_ref().map(|_| "<set>"))
            .field("jwks_file", &self.jwks_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("agreements", &self.agreements)
            .field("break_glass_minutes", &self.break_glass_minutes)
            .field("metrics_public", &self.metrics_public)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_secret: None,
            jwks_file: None,
            issuer: "pole-ods".into(),
            audience: "pole-ods".into(),
            agreements: None,
            break_glass_minutes: 15,
            metrics_public: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("data"),
            json: false,
            backend: BackendKind::Redb,
            cache_mb: 256,
            schema_pack: None,
            log: "warn".into(),
            log_format: LogFormat::Text,
            auth: AuthConfig::default(),
            mllp: MllpConfig::default(),
            store_threads: 4 * cores(),
        }
    }
}

/// The cores this process may run on (1 when the system cannot say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Config {
    /// Merges defaults < file < environment and flags (clap has already preferred a flag
    /// over its environment variable).
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = Config::default();
        let log_format = match args.log_format.clone().or(file.log_format) {
            None => defaults.log_format,
            Some(f) if f == "text" => LogFormat::Text,
            Some(f) if f == "json" => LogFormat::Json,
            Some(other) => bail!("log format {other:?} is not `text` or `json`"),
        };
        let backend = match args.backend.clone().or(file.backend) {
            None => defaults.backend,
            Some(name) => name.parse().map_err(|e: String| anyhow::anyhow!("backend: {e}"))?,
        };
        let config = Config {
            data: args.data.clone().or(file.data).unwrap_or(defaults.data),
            json: args.json,
            backend,
            cache_mb: args.cache_mb.or(file.cache_mb).unwrap_or(defaults.cache_mb),
            schema_pack: args.schema_pack.clone().or(file.schema_pack),
            log: args.log.clone().or(file.log).unwrap_or(defaults.log),
            log_format,
            auth: AuthConfig {
                token_secret: std::env::var("POLE_TOKEN_SECRET").ok().filter(|s| !s.is_empty()).or(file.token_secret),
                jwks_file: args.jwks_file.clone().or(file.jwks_file),
                issuer: args.token_issuer.clone().or(file.token_issuer).unwrap_or(defaults.auth.issuer),
                audience: args.token_audience.clone().or(file.token_audience).unwrap_or(defaults.auth.audience),
                agreements: args.agreements.clone().or(file.agreements),
                break_glass_minutes: args
                    .break_glass_minutes
                    .or(file.break_glass_minutes)
                    .unwrap_or(defaults.auth.break_glass_minutes),
                metrics_public: args.metrics_public.or(file.metrics_public).unwrap_or(defaults.auth.metrics_public),
            },
            mllp: MllpConfig {
                max_connections: args
                    .mllp_max_connections
                    .or(file.mllp_max_connections)
                    .unwrap_or(defaults.mllp.max_connections),
                idle_timeout_secs: args
                    .mllp_idle_timeout_secs
                    .or(file.mllp_idle_timeout_secs)
                    .unwrap_or(defaults.mllp.idle_timeout_secs),
            },
            store_threads: args.store_threads.or(file.store_threads).unwrap_or(defaults.store_threads),
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.cache_mb == 0 || self.cache_mb > 64 * 1024 {
            bail!("cache_mb must be between 1 and 65536, got {}", self.cache_mb);
        }
        if self.backend == BackendKind::Memory {
            bail!("the memory backend is for tests; choose sled or redb");
        }
        if self.data.as_os_str().is_empty() {
            bail!("the data directory must not be empty");
        }
        if !(1..=24 * 60).contains(&self.auth.break_glass_minutes) {
            bail!("break_glass_minutes must be between 1 and 1440, got {}", self.auth.break_glass_minutes);
        }
        if !(1..=10_000).contains(&self.mllp.max_connections) {
            bail!("mllp_max_connections must be between 1 and 10000, got {}", self.mllp.max_connections);
        }
        if !(1..=24 * 60 * 60).contains(&self.mllp.idle_timeout_secs) {
            bail!("mllp_idle_timeout_secs must be between 1 and 86400, got {}", self.mllp.idle_timeout_secs);
        }
        if !(1..=1024).contains(&self.store_threads) {
            bail!("store_threads must be between 1 and 1024, got {}", self.store_threads);
        }
        if self.auth.token_secret.as_ref().is_some_and(|s| s.len() < 32) {
            bail!("the token secret must be at least 32 bytes long");
        }
        Ok(())
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::resolve(&GlobalArgs::default()).unwrap(), Config::default());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pole.toml");
        std::fs::write(&path, "data = \"/srv/pole\"\ncache_mb = 64\n").unwrap();
        let args = GlobalArgs { config: Some(path.clone()), cache_mb: Some(128), ..Default::default() };
        let config = Config::resolve(&args).unwrap();
        assert_eq!(config.data, PathBuf::from("/srv/pole"));
        assert_eq!(config.cache_mb, 128);
    }

    #[test]
    fn the_backend_is_chosen_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pole.toml");
        assert_eq!(Config::resolve(&GlobalArgs::default()).unwrap().backend, BackendKind::Redb);
        std::fs::write(&path, "backend = \"sled\"\n").unwrap();
        let config = Config::resolve(&GlobalArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(config.backend, BackendKind::Sled);
        let flag = GlobalArgs { config: Some(path), backend: Some("redb".into()), ..Default::default() };
        assert_eq!(Config::resolve(&flag).unwrap().backend, BackendKind::Redb);
        let bad = GlobalArgs { backend: Some("rocks".into()), ..Default::default() };
        assert!(format!("{:#}", Config::resolve(&bad).unwrap_err()).contains("rocks"));
    }

    #[test]
    fn mllp_limits_come_from_the_file_and_flags_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pole.toml");
        std::fs::write(&path, "mllp_max_connections = 8\nmllp_idle_timeout_secs = 30\n").unwrap();
        let config = Config::resolve(&GlobalArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(config.mllp, MllpConfig { max_connections: 8, idle_timeout_secs: 30 });
        let flag = GlobalArgs { config: Some(path), mllp_max_connections: Some(2), ..Default::default() };
        assert_eq!(Config::resolve(&flag).unwrap().mllp.max_connections, 2);
        for bad in [
            GlobalArgs { mllp_max_connections: Some(0), ..Default::default() },
            GlobalArgs { mllp_idle_timeout_secs: Some(0), ..Default::default() },
        ] {
            assert!(format!("{:#}", Config::resolve(&bad).unwrap_err()).contains("mllp_"));
        }
    }

    #[test]
    fn store_threads_come_from_the_file_and_flags_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pole.toml");
        std::fs::write(&path, "store_threads = 4\n").unwrap();
        assert_eq!(Config::resolve(&GlobalArgs::default()).unwrap().store_threads, 4 * cores());
        let config = Config::resolve(&GlobalArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(config.store_threads, 4);
        let flag = GlobalArgs { config: Some(path), store_threads: Some(32), ..Default::default() };
        assert_eq!(Config::resolve(&flag).unwrap().store_threads, 32);
        let bad = GlobalArgs { store_threads: Some(0), ..Default::default() };
        assert!(format!("{:#}", Config::resolve(&bad).unwrap_err()).contains("store_threads"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pole.toml");
        std::fs::write(&path, "dta = \"x\"\n").unwrap();
        let err = Config::resolve(&GlobalArgs { config: Some(path), ..Default::default() }).unwrap_err();
        assert!(format!("{err:#}").contains("dta"), "{err:#}");
    }
}
