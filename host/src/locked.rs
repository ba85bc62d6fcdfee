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
use serde_json::{Map, Value, json};

use crate::manifest::{
    BuildCommands, ComponentSource, FileMount, HttpExecutor, HttpRoute, LoadedManifest,
    TriggerComponent,
};

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

/// Builds the locked app for a manifest, as Spin's loader does with its `Copy` mount
/// strategy for file patterns (copied into `staging_dir/<component>`) and direct mounts
/// for directory placements. Checks what only the manifest can get wrong; everything
/// that also applies to a lock from a registry is checked in `App::from_locked`.
pub fn from_manifest(loaded: &LoadedManifest, staging_dir: &Path) -> anyhow::Result<LockedApp> {
    let file = loaded.path.display();
    let m = &loaded.manifest;
    let base_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();

    let mut components = Vec::new();
    for (id, c) in &m.component {
        let ctx = |field: &str| format!("{file}: component `{id}`, field `{field}`");
        let source = match &c.source {
            ComponentSource::Local(path) => base_dir.join(path),
            ComponentSource::Remote { url, .. } => bail!(
                "{}: remote sources ({url}) are not supported by `tessera up`; build the component locally",
                ctx("source")
            ),
        };
        if c.allowed_http_hosts.is_some() {
            bail!(
                "{}: Spin 1 field; use `allowed_outbound_hosts` instead",
                ctx("allowed_http_hosts")
            );
        }
        if !c.ai_models.is_empty() {
            bail!(
                "{}: Serverless AI is not supported by `tessera up`",
                ctx("ai_models")
            );
        }
        if c.dependencies.is_some() {
            bail!(
                "{}: component dependencies are not supported by `tessera up`",
                ctx("dependencies")
            );
        }
        let files = lock_files(
            &base_dir,
            &c.files,
            &c.exclude_files,
            &staging_dir.join(id.as_str()),
        )
        .with_context(|| ctx("files"))?;

        let mut metadata = Map::new();
        insert_str(&mut metadata, "description", c.description.as_deref());
        insert_list(
            &mut metadata,
            "allowed_outbound_hosts",
            &c.allowed_outbound_hosts,
        );
        insert_list(&mut metadata, "key_value_stores", &c.key_value_stores);
        insert_list(&mut metadata, "databases", &c.sqlite_databases);
        if let Some(build) = &c.build {
            let mut b = Map::new();
            b.insert(
                "command".into(),
                match &build.command {
                    BuildCommands::One(cmd) => json!(cmd),
                    BuildCommands::Many(cmds) => json!(cmds),
                },
            );
            insert_str(&mut b, "workdir", build.workdir.as_deref());
            insert_list(&mut b, "watch", &build.watch);
            if !build.environment.is_empty() {
                b.insert("environment".into(), json!(build.environment));
            }
            metadata.insert("build".into(), Value::Object(b));
        }

        components.push(LockedComponent {
            id: id.to_string(),
            metadata,
            source: LockedComponentSource {
                content_type: WASM_CONTENT_TYPE.into(),
                content: ContentRef::file(&source)?,
            },
            env: c.environment.clone(),
            files,
            config: c
                .variables
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            dependencies: Map::new(),
            host_requirements: Map::new(),
        });
    }

    let triggers = lock_triggers(loaded)?;

    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(m.application.name));
    insert_str(&mut metadata, "version", m.application.version.as_deref());
    insert_str(
        &mut metadata,
        "description",
        m.application.description.as_deref(),
    );
    insert_list(&mut metadata, "authors", &m.application.authors);
    let mut global = Map::new();
    if let Some(http) = &m.application.trigger.http {
        let mut h = Map::new();
        insert_str(&mut h, "base", http.base.as_deref());
        global.insert("http".into(), Value::Object(h));
    }
    if let Some(redis) = &m.application.trigger.redis {
        global.insert("redis".into(), json!({ "address": redis.address }));
    }
    let mut types: Vec<&str> = triggers.iter().map(|t| t.trigger_type.as_str()).collect();
    types.dedup();
    metadata.insert("triggers".into(), Value::Object(global.clone()));
    // Spin also writes a single trigger type's settings as `trigger` (with `type`).
    if let [only] = types.as_slice() {
        let mut single = match global.get(*only) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        single.insert("type".into(), json!(only));
        metadata.insert("trigger".into(), Value::Object(single));
    }
    metadata.insert("origin".into(), json!(file_url(&loaded.path)?));

    let variables = m
        .variables
        .iter()
        .map(|(name, v)| {
            if v.required && v.default.is_some() {
                bail!(
                    "{file}: [variables]: variable `{name}` is both required and has a default; choose one"
                );
            }
            // A lock cannot say "optional without a default" (Spin refuses it too).
            if !v.required && v.default.is_none() {
                bail!(
                    "{file}: [variables]: variable `{name}` needs `required = true` or a `default`"
                );
            }
            Ok((
                name.to_string(),
                Variable {
                    description: None,
                    default: v.default.clone(),
                    secret: v.secret,
                },
            ))
        })
        .collect::<anyhow::Result<_>>()?;

    Ok(LockedApp {
        spin_lock_version: LockVersion,
        must_understand: Vec::new(),
        metadata,
        host_requirements: Map::new(),
        variables,
        triggers,
        components,
    })
}

/// Triggers in manifest order, HTTP first then Redis, with Spin's generated ids
/// (`<component>-<type>-trigger`, else `<type>-trigger<n>`).
fn lock_triggers(loaded: &LoadedManifest) -> anyhow::Result<Vec<LockedTrigger>> {
    let file = loaded.path.display();
    let m = &loaded.manifest;
    let component_id = |what: String, tc: &TriggerComponent| -> anyhow::Result<String> {
        match tc {
            TriggerComponent::Reference(id) => Ok(id.to_string()),
            TriggerComponent::Inline(_) => bail!(
                "{file}: {what} defines its component inline; define it as [component.<id>] and reference the id"
            ),
        }
    };
    let mut raw = Vec::new();
    for (i, t) in m.trigger.http.iter().enumerate() {
        let what = format!("[[trigger.http]] #{}", i + 1);
        let mut config = Map::new();
        config.insert("component".into(), json!(component_id(what, &t.component)?));
        config.insert(
            "route".into(),
            match &t.route {
                HttpRoute::Path(p) => json!(p),
                HttpRoute::Private(p) => json!({ "private": p.private }),
            },
        );
        match &t.executor {
            Some(HttpExecutor::Spin) => {
                config.insert("executor".into(), json!({ "type": "spin" }));
            }
            Some(HttpExecutor::Wagi { argv, entrypoint }) => {
                let mut e = Map::new();
                e.insert("type".into(), json!("wagi"));
                insert_str(&mut e, "argv", argv.as_deref());
                insert_str(&mut e, "entrypoint", entrypoint.as_deref());
                config.insert("executor".into(), Value::Object(e));
            }
            None => {}
        }
        raw.push((t.id.clone(), "http", config));
    }
    for (i, t) in m.trigger.redis.iter().enumerate() {
        let what = format!("[[trigger.redis]] #{} (channel {:?})", i + 1, t.channel);
        let mut config = Map::new();
        config.insert("channel".into(), json!(t.channel));
        insert_str(&mut config, "address", t.address.as_deref());
        config.insert("component".into(), json!(component_id(what, &t.component)?));
        raw.push((t.id.clone(), "redis", config));
    }

    let mut taken: std::collections::HashSet<String> =
        raw.iter().filter_map(|(id, _, _)| id.clone()).collect();
    let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
    let mut triggers = Vec::new();
    for (id, trigger_type, config) in raw {
        let id = match id {
            Some(id) => id,
            None => {
                let natural = config
                    .get("component")
                    .and_then(Value::as_str)
                    .map(|c| format!("{c}-{trigger_type}-trigger"));
                match natural {
                    Some(n) if !taken.contains(&n) => n,
                    _ => loop {
                        let n = counters.entry(trigger_type).or_insert(1);
                        let candidate = format!("{trigger_type}-trigger{n}");
                        *n += 1;
                        if !taken.contains(&candidate) {
                            break candidate;
                        }
                    },
                }
            }
        };
        taken.insert(id.clone());
        triggers.push(LockedTrigger {
            id,
            trigger_type: trigger_type.into(),
            trigger_config: Value::Object(config),
        });
    }
    Ok(triggers)
}

fn insert_str(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        map.insert(key.into(), json!(v));
    }
}

fn insert_list(map: &mut Map<String, Value>, key: &str, values: &[String]) {
    if !values.is_empty() {
        map.insert(key.into(), json!(values));
    }
}

/// Directory placements are mounted directly; file and glob entries are copied into a
/// staging directory mounted at `/`, keeping their paths relative to the app directory.
fn lock_files(
    base_dir: &Path,
    files: &[FileMount],
    exclude: &[String],
    staging: &Path,
) -> anyhow::Result<Vec<ContentPath>> {
    let mut mounts = Vec::new();
    let mut staged = false;
    let excluded: Vec<glob::Pattern> = exclude
        .iter()
        .map(|p| glob::Pattern::new(p).with_context(|| format!("invalid exclude pattern {p:?}")))
        .collect::<anyhow::Result<_>>()?;
    for entry in files {
        match entry {
            FileMount::Placement {
                source,
                destination,
            } => {
                let host = base_dir.join(source);
                if !host.is_dir() {
                    bail!(
                        "{source:?} is not a directory (placements mount directories; use a pattern string for single files)"
                    );
                }
                if !destination.starts_with('/') {
                    bail!("destination {destination:?} must be an absolute guest path");
                }
                mounts.push(ContentPath {
                    content: ContentRef::file(&host)?,
                    path: destination.into(),
                });
            }
            FileMount::Pattern(pattern) => {
                if !staged {
                    let _ = std::fs::remove_dir_all(staging);
                    std::fs::create_dir_all(staging)
                        .with_context(|| format!("cannot create {}", staging.display()))?;
                    staged = true;
                }
                let full = base_dir.join(pattern);
                let full = full.to_string_lossy();
                let matches =
                    glob::glob(&full).with_context(|| format!("invalid pattern {pattern:?}"))?;
                for path in matches.flatten() {
                    let Ok(rel) = path.strip_prefix(base_dir) else {
                        continue;
                    };
                    if !path.is_file() || excluded.iter().any(|p| p.matches_path(rel)) {
                        continue;
                    }
                    let dest = staging.join(rel);
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::copy(&path, &dest)
                        .with_context(|| format!("cannot copy {}", path.display()))?;
                }
            }
        }
    }
    if staged {
        mounts.push(ContentPath {
            content: ContentRef::file(staging)?,
            path: "/".into(),
        });
    }
    Ok(mounts)
}

#[cfg(test)]
pub(crate) mod tests;
