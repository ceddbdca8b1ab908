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
    /// Projection store: `sled` or `redb` [default: sled]
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("data"),
            json: false,
            backend: BackendKind::Sled,
            cache_mb: 256,
            schema_pack: None,
            log: "warn".into(),
            log_format: LogFormat::Text,
        }
    }
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
        std::fs::write(&path, "backend = \"redb\"\n").unwrap();
        let config = Config::resolve(&GlobalArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(config.backend, BackendKind::Redb);
        let flag = GlobalArgs { config: Some(path), backend: Some("sled".into()), ..Default::default() };
        assert_eq!(Config::resolve(&flag).unwrap().backend, BackendKind::Sled);
        let bad = GlobalArgs { backend: Some("rocks".into()), ..Default::default() };
        assert!(format!("{:#}", Config::resolve(&bad).unwrap_err()).contains("rocks"));
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
