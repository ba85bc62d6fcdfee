//! The locked application: Spin's `LockedApp` JSON contract (`spin.lock`).
//!
//! A manifest becomes a locked app here (`from_manifest`), and so does an OCI artifact
//! (`registry::pull`); `App::from_locked` turns either into what `tessera up` runs. The
//! field names, nesting and omission rules follow Spin's `spin-locked-app` crate exactly, so
//! a lock written here is read by Spin and SpinKube's shim, and theirs by us:
//!
//! - `spin_lock_version` is written as 0 unless `must_understand` or `host_requirements`
//!   is set (then 1), as Spin does; both 0 and 1 are read.
//! - empty maps, lists and absent options are omitted;
//! - a content reference is flattened into its owner (`source.digest`, `files[].inline`),
//!   and `inline` is base64.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod manifest;
mod select;
pub use manifest::{StagedFiles, component_from_manifest, from_manifest};

/// Content type of every component source (Spin's only one).
pub const WASM_CONTENT_TYPE: &str = "application/wasm";

/// A fully resolved Spin application.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LockedApp {
    pub spin_lock_version: LockVersion,
    #[serde(default)]
    pub must_understand: Vec<MustUnderstand>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub host_requirements: Map<String, Value>,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    pub triggers: Vec<LockedTrigger>,
    pub components: Vec<LockedComponent>,
}

/// `spin_lock_version`: Spin reads 0 and 1 (1 added `must_understand`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockVersion;

impl<'de> Deserialize<'de> for LockVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            0 | 1 => Ok(LockVersion),
            other => Err(serde::de::Error::custom(format!(
                "spin_lock_version {other} is not supported (expected 0 or 1)"
            ))),
        }
    }
}

/// Fields the host must process if present; anything else is refused when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MustUnderstand {
    HostRequirements,
    ComponentHostRequirements,
}

impl Serialize for LockedApp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let version = if self.must_understand.is_empty() && self.host_requirements.is_empty() {
            0
        } else {
            1
        };
        let mut s = serializer.serialize_struct("LockedApp", 7)?;
        s.serialize_field("spin_lock_version", &version)?;
        if !self.must_understand.is_empty() {
            s.serialize_field("must_understand", &self.must_understand)?;
        }
        if !self.metadata.is_empty() {
            s.serialize_field("metadata", &self.metadata)?;
        }
        if !self.host_requirements.is_empty() {
            s.serialize_field("host_requirements", &self.host_requirements)?;
        }
        if !self.variables.is_empty() {
            s.serialize_field("variables", &self.variables)?;
        }
        s.serialize_field("triggers", &self.triggers)?;
        s.serialize_field("components", &self.components)?;
        s.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absent means required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedTrigger {
    pub id: String,
    pub trigger_type: String,
    /// The trigger's table from the manifest, with `component` as an id.
    pub trigger_config: Value,
}

impl LockedTrigger {
    /// The id of the component it runs.
    pub fn component(&self) -> Option<&str> {
        self.trigger_config.get("component").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedComponent {
    pub id: String,
    /// `description`, `allowed_outbound_hosts`, `key_value_stores`, `databases`,
    /// `ai_models`, `build`: Spin's keys, each omitted when empty.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    pub source: LockedComponentSource,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    /// Component variables, still as templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Component dependencies; Tessera refuses components that have any.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub dependencies: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedComponentSource {
    pub content_type: String,
    #[serde(flatten)]
    pub content: ContentRef,
}

/// Content mounted at a guest path (relative paths are relative to `/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPath {
    #[serde(flatten)]
    pub content: ContentRef,
    pub path: PathBuf,
}

/// Where content is: a URL (`file://` here), the bytes themselves, and/or a digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_bytes"
    )]
    pub inline: Option<Vec<u8>>,
    /// `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ContentRef {
    pub fn file(path: &Path) -> anyhow::Result<Self> {
        Ok(ContentRef {
            source: Some(file_url(path)?),
            ..Default::default()
        })
    }

    /// The local path of a `file://` source.
    pub fn file_path(&self) -> Option<PathBuf> {
        let url = url::Url::parse(self.source.as_deref()?).ok()?;
        (url.scheme() == "file")
            .then(|| url.to_file_path().ok())
            .flatten()
    }
}

/// A `file://` URL for an absolute (or made absolute) path.
pub fn file_url(path: &Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("cannot make {} absolute", path.display()))?;
    url::Url::from_file_path(&abs)
        .map(String::from)
        .map_err(|()| anyhow::anyhow!("cannot express {} as a file URL", abs.display()))
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        STANDARD
            .decode(text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

impl LockedApp {
    /// Parses a lock, refusing `must_understand` entries and host requirements Tessera
    /// does not implement (as Spin does).
    pub fn from_json(bytes: &[u8]) -> anyhow::Result<Self> {
        let locked: LockedApp = serde_json::from_slice(bytes)?;
        let required = |m: &Map<String, Value>| -> Vec<String> {
            m.iter()
                .filter(|(_, v)| v.as_str() != Some("optional"))
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut unmet = required(&locked.host_requirements);
        for c in &locked.components {
            unmet.extend(required(&c.host_requirements));
        }
        if !unmet.is_empty() {
            bail!(
                "the application requires host features Tessera does not support: {}",
                unmet.join(", ")
            );
        }
        Ok(locked)
    }

    /// Pretty JSON, as Spin writes `spin.lock`.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        // Serialising maps of strings and JSON values cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// A metadata string (`name`, `version`, …).
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

#[cfg(test)]
pub(crate) mod tests;
