//! Manifest → locked app, as Spin's loader does it (`spin_loader::from_file`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::{
    ContentPath, ContentRef, LockVersion, LockedApp, LockedComponent, LockedComponentSource,
    LockedTrigger, Variable, WASM_CONTENT_TYPE, file_url,
};
use crate::manifest::{
    BuildCommands, Component, ComponentId, ComponentSource, FileMount, HttpExecutor, HttpRoute,
    LoadedManifest, TriggerComponent,
};

/// Builds the locked app for a manifest, as Spin's loader does with its `Copy` mount
/// strategy for file patterns (copied into `staging_dir/<component>`) and direct mounts
/// for directory placements. Checks what only the manifest can get wrong; everything
/// that also applies to a lock from a registry is checked in `App::from_locked`.
pub fn from_manifest(loaded: &LoadedManifest, staging_dir: &Path) -> anyhow::Result<LockedApp> {
    let file = loaded.path.display().to_string();
    let base_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();
    let components = loaded
        .manifest
        .component
        .iter()
        .map(|(id, c)| lock_component(id, c, &file, &base_dir, staging_dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let triggers = lock_triggers(loaded)?;
    Ok(LockedApp {
        spin_lock_version: LockVersion,
        must_understand: Vec::new(),
        metadata: lock_metadata(loaded, &triggers)?,
        host_requirements: Map::new(),
        variables: lock_variables(loaded)?,
        triggers,
        components,
    })
}

/// Locks one component of the manifest again, staging its file patterns under
/// `staging_dir` (which must not be in use by a running version): what `tessera watch`
/// does to reload that component alone.
pub fn component_from_manifest(
    loaded: &LoadedManifest,
    id: &ComponentId,
    staging_dir: &Path,
) -> anyhow::Result<LockedComponent> {
    let file = loaded.path.display().to_string();
    let base_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();
    let Some(component) = loaded.manifest.component.get(id) else {
        bail!("{file}: no component `{id}`");
    };
    lock_component(id, component, &file, &base_dir, staging_dir)
}

/// A directory of staged files that belongs to one loaded version of a component and is
/// removed when that version is dropped (see `ComponentContext::staged_files`).
#[derive(Debug)]
pub struct StagedFiles(PathBuf);

impl StagedFiles {
    /// Takes ownership of `dir`, which need not exist yet.
    pub fn new(dir: PathBuf) -> Self {
        StagedFiles(dir)
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove staged files {}: {e}", self.0.display());
        }
    }
}

/// One component: its wasm and files as `file://` content, the rest as Spin's metadata.
fn lock_component(
    id: &ComponentId,
    c: &Component,
    file: &str,
    base_dir: &Path,
    staging_dir: &Path,
) -> anyhow::Result<LockedComponent> {
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
        base_dir,
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

    Ok(LockedComponent {
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
    })
}

/// Spin's app metadata: name, version, description, authors, the app-wide trigger
/// settings (`triggers`, and `trigger` when there is one trigger type), `origin`.
fn lock_metadata(
    loaded: &LoadedManifest,
    triggers: &[LockedTrigger],
) -> anyhow::Result<Map<String, Value>> {
    let m = &loaded.manifest;
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
    Ok(metadata)
}

fn lock_variables(loaded: &LoadedManifest) -> anyhow::Result<BTreeMap<String, Variable>> {
    let file = loaded.path.display();
    loaded
        .manifest
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
        .collect()
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
