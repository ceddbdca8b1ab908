//! Loading a schema pack from a directory at run time (`schema.toml` and `codes/*.csv`).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use pole_model::SchemaRegistry;

/// The configured pack, or the built-in adult social care pack.
pub fn load(dir: Option<&Path>) -> anyhow::Result<Arc<SchemaRegistry>> {
    let Some(dir) = dir else {
        return Ok(Arc::new(pole_model::default_registry().context("the built-in schema pack")?));
    };
    let schema_path = dir.join("schema.toml");
    let schema = std::fs::read_to_string(&schema_path).with_context(|| format!("reading {}", schema_path.display()))?;
    let codes_dir = dir.join("codes");
    let mut lists = Vec::new();
    for entry in std::fs::read_dir(&codes_dir).with_context(|| format!("reading {}", codes_dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            lists.push((name, text));
        }
    }
    let registry = SchemaRegistry::from_sources(&schema, lists.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .with_context(|| format!("schema pack {}", dir.display()))?;
    Ok(Arc::new(registry))
}
