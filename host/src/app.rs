//! The resolved ("locked") application: what `tessera up` runs.
//!
//! Built from a manifest, the resolved variables and the runtime config. Every
//! cross-reference is checked here, before anything is compiled or bound, and each error
//! names the manifest file, the component and the field.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::allowed_hosts::{AllowedHost, AllowedHosts};
use crate::manifest::{
    ComponentId, ComponentSource, FileMount, HttpExecutor, HttpRoute, LoadedManifest,
    TriggerComponent,
};
use crate::router::Route;
use crate::runtime_config::RuntimeConfig;
use crate::variables::Resolved;

/// One component, ready to compile and instantiate.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub id: ComponentId,
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// Component variables with their templates rendered.
    pub variables: HashMap<String, String>,
    pub environment: Vec<(String, String)>,
    /// Host directories preopened read-only at guest paths.
    pub mounts: Vec<Mount>,
    pub allowed_hosts: AllowedHosts,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
}

#[derive(Debug, Clone)]
pub struct HttpTriggerSpec {
    pub route: Route,
    pub component: ComponentId,
}

#[derive(Debug, Clone)]
pub struct RedisTriggerSpec {
    pub address: String,
    pub channel: String,
    pub component: ComponentId,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// The directory holding spin.toml; relative paths in it are relative to this.
    pub base_dir: PathBuf,
    pub components: BTreeMap<ComponentId, ComponentSpec>,
    pub http_triggers: Vec<HttpTriggerSpec>,
    pub redis_triggers: Vec<RedisTriggerSpec>,
    pub runtime_config: RuntimeConfig,
}

impl App {
    /// Resolves and validates `loaded`; `staging_dir` receives files matched by globs.
    pub fn resolve(
        loaded: &LoadedManifest,
        vars: &Resolved,
        runtime_config: RuntimeConfig,
        staging_dir: &Path,
    ) -> anyhow::Result<App> {
        let file = loaded.path.display();
        let m = &loaded.manifest;
        let base_dir = loaded.path.parent().map(Path::to_owned).unwrap_or_default();

        let mut components = BTreeMap::new();
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
            let mut variables = HashMap::new();
            for (name, template) in &c.variables {
                let value = vars
                    .render(template)
                    .with_context(|| ctx(&format!("variables.{name}")))?;
                variables.insert(name.as_str().to_owned(), value);
            }
            let mut allowed = Vec::new();
            for entry in &c.allowed_outbound_hosts {
                let rendered = vars
                    .render(entry)
                    .with_context(|| ctx("allowed_outbound_hosts"))?;
                allowed.push(
                    AllowedHost::parse(&rendered).with_context(|| ctx("allowed_outbound_hosts"))?,
                );
            }
            for label in &c.key_value_stores {
                if !runtime_config.key_value_stores.contains_key(label) {
                    bail!(
                        "{}: store `{label}` is not declared; add [key_value_store.{label}] to the runtime config (--runtime-config-file)",
                        ctx("key_value_stores")
                    );
                }
            }
            for label in &c.sqlite_databases {
                if !runtime_config.sqlite_databases.contains_key(label) {
                    bail!(
                        "{}: database `{label}` is not declared; add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                        ctx("sqlite_databases")
                    );
                }
            }
            let mounts = resolve_files(
                &base_dir,
                &c.files,
                &c.exclude_files,
                &staging_dir.join(id.as_str()),
            )
            .with_context(|| ctx("files"))?;
            components.insert(
                id.clone(),
                ComponentSpec {
                    id: id.clone(),
                    source,
                    variables,
                    environment: c.environment.clone().into_iter().collect(),
                    mounts,
                    allowed_hosts: AllowedHosts::new(allowed),
                    key_value_stores: c.key_value_stores.clone(),
                    sqlite_databases: c.sqlite_databases.clone(),
                },
            );
        }

        let component_ref = |what: String, tc: &TriggerComponent| -> anyhow::Result<ComponentId> {
            match tc {
                TriggerComponent::Reference(id) if components.contains_key(id) => Ok(id.clone()),
                TriggerComponent::Reference(id) => {
                    let known: Vec<&str> = components.keys().map(ComponentId::as_str).collect();
                    bail!(
                        "{file}: {what} names component `{id}`, which is not defined (defined: {})",
                        known.join(", ")
                    )
                }
                TriggerComponent::Inline(_) => {
                    bail!(
                        "{file}: {what} defines its component inline; define it as [component.<id>] and reference the id"
                    )
                }
            }
        };

        let mut http_triggers = Vec::new();
        for (i, t) in m.trigger.http.iter().enumerate() {
            let what = format!("[[trigger.http]] #{}", i + 1);
            let component = component_ref(what.clone(), &t.component)?;
            if let Some(HttpExecutor::Wagi { .. }) = t.executor {
                bail!("{file}: {what}: the wagi executor is not supported by `tessera up`");
            }
            match &t.route {
                HttpRoute::Path(p) => {
                    let route = Route::parse(p)
                        .with_context(|| format!("{file}: {what}, field `route`"))?;
                    http_triggers.push(HttpTriggerSpec { route, component });
                }
                HttpRoute::Private(_) => {} // reachable only through service chaining
            }
        }

        let default_address = m
            .application
            .trigger
            .redis
            .as_ref()
            .map(|r| r.address.as_str());
        let mut redis_triggers = Vec::new();
        for (i, t) in m.trigger.redis.iter().enumerate() {
            let what = format!("[[trigger.redis]] #{} (channel {:?})", i + 1, t.channel);
            let component = component_ref(what.clone(), &t.component)?;
            let Some(address) = t.address.as_deref().or(default_address) else {
                bail!(
                    "{file}: {what} has no `address` and there is no [application.trigger.redis] address"
                );
            };
            let address = vars
                .render(address)
                .with_context(|| format!("{file}: {what}, field `address`"))?;
            let channel = vars
                .render(&t.channel)
                .with_context(|| format!("{file}: {what}, field `channel`"))?;
            redis_triggers.push(RedisTriggerSpec {
                address,
                channel,
                component,
            });
        }

        Ok(App {
            name: m.application.name.clone(),
            base_dir,
            components,
            http_triggers,
            redis_triggers,
            runtime_config,
        })
    }
}

/// Directory placements are mounted directly; file and glob entries are copied into a
/// staging directory mounted at `/`, keeping their paths relative to the app directory.
fn resolve_files(
    base_dir: &Path,
    files: &[FileMount],
    exclude: &[String],
    staging: &Path,
) -> anyhow::Result<Vec<Mount>> {
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
                mounts.push(Mount {
                    host,
                    guest: destination.clone(),
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
        mounts.push(Mount {
            host: staging.to_owned(),
            guest: "/".into(),
        });
    }
    Ok(mounts)
}
