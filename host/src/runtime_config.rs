//! `runtime-config.toml`: where each key-value store and sqlite database label lives.
//!
//! Same format as Spin's. Without a file only the `default` store and database exist,
//! both embedded files under the state directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, RawStore>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Where the data behind one label is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// An embedded sqlite file.
    File(PathBuf),
}

/// Resolved backends for every declared label.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, Backend>,
    pub sqlite_databases: BTreeMap<String, Backend>,
}

impl RuntimeConfig {
    /// Loads `file` (if given); relative paths in it are relative to the file, labels
    /// without a path get `<state_dir>/<kind>/<label>.db`.
    pub fn load(file: Option<&Path>, state_dir: &Path) -> anyhow::Result<Self> {
        let (raw, base) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read runtime config {}", path.display()))?;
                let raw: RawRuntimeConfig = toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let base = path.parent().map(Path::to_owned).unwrap_or_default();
                (raw, base)
            }
            None => (RawRuntimeConfig::default(), PathBuf::new()),
        };
        let source = file.map_or("runtime config".into(), |p| p.display().to_string());
        let mut key_value_stores = resolve_all(
            &raw.key_value_store,
            "key_value_store",
            &source,
            &base,
            &state_dir.join("kv"),
        )?;
        let mut sqlite_databases = resolve_all(
            &raw.sqlite_database,
            "sqlite_database",
            &source,
            &base,
            &state_dir.join("sqlite"),
        )?;
        key_value_stores
            .entry("default".into())
            .or_insert_with(|| Backend::File(state_dir.join("kv").join("default.db")));
        sqlite_databases
            .entry("default".into())
            .or_insert_with(|| Backend::File(state_dir.join("sqlite").join("default.db")));
        Ok(RuntimeConfig {
            key_value_stores,
            sqlite_databases,
        })
    }
}

fn resolve_all(
    entries: &BTreeMap<String, RawStore>,
    section: &str,
    source: &str,
    base: &Path,
    default_dir: &Path,
) -> anyhow::Result<BTreeMap<String, Backend>> {
    let mut out = BTreeMap::new();
    for (label, store) in entries {
        let where_ = format!("{source}: [{section}.{label}]");
        let backend = match store.kind.as_str() {
            "spin" => {
                if store.url.is_some() || store.token.is_some() {
                    bail!("{where_}: type \"spin\" takes only `path`");
                }
                let path = match &store.path {
                    Some(p) if p.is_absolute() => p.clone(),
                    Some(p) => base.join(p),
                    None => default_dir.join(format!("{label}.db")),
                };
                Backend::File(path)
            }
            "redis" | "libsql" | "azure_cosmos" | "aws_dynamo" => bail!(
                "{where_}: type {:?} is supported by Spin and SpinKube but not by `tessera up`, which keeps data in embedded files (type = \"spin\")",
                store.kind
            ),
            other => bail!("{where_}: unknown type {other:?} (expected \"spin\")"),
        };
        out.insert(label.clone(), backend);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_default_to_files_under_the_state_dir() {
        let dir = std::env::temp_dir().join(format!("tessera-rc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rc.toml");
        std::fs::write(&file, "[sqlite_database.auth]\ntype = \"spin\"\n[sqlite_database.x]\ntype = \"spin\"\npath = \"data/x.db\"\n").unwrap();
        let rc = RuntimeConfig::load(Some(&file), Path::new("/state")).unwrap();
        assert_eq!(
            rc.sqlite_databases["auth"],
            Backend::File("/state/sqlite/auth.db".into())
        );
        assert_eq!(
            rc.sqlite_databases["x"],
            Backend::File(dir.join("data/x.db"))
        );
        assert!(rc.sqlite_databases.contains_key("default"));
        assert!(rc.key_value_stores.contains_key("default"));
    }

    #[test]
    fn unknown_type_names_file_and_label() {
        let dir = std::env::temp_dir().join(format!("tessera-rc2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("rc.toml");
        std::fs::write(&file, "[key_value_store.cache]\ntype = \"memcached\"\n").unwrap();
        let err = RuntimeConfig::load(Some(&file), Path::new("/s"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rc.toml")
                && err.contains("key_value_store.cache")
                && err.contains("memcached"),
            "{err}"
        );
    }
}
