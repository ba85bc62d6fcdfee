//! The resolved application: what `tessera up` runs.
//!
//! Built from a locked app (`locked.rs`: from a manifest or pulled from a registry), the
//! resolved variables and the runtime config. Every cross-reference is checked here,
//! before anything is compiled or bound, and each error names where the app came from
//! (the manifest file or the registry reference), the component and the field.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::allowed_hosts::{AllowedHost, AllowedHosts};
use serde_json::Value;

use crate::locked::{ContentPath, LockedApp, LockedComponent};
use crate::manifest::{ComponentId, Variable, VariableName};
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
    pub components: BTreeMap<ComponentId, ComponentSpec>,
    pub http_triggers: Vec<HttpTriggerSpec>,
    pub redis_triggers: Vec<RedisTriggerSpec>,
    pub runtime_config: RuntimeConfig,
}

impl App {
    /// Resolves and validates a locked app; `origin` names it in errors (the manifest
    /// file, or the registry reference).
    pub fn from_locked(
        locked: &LockedApp,
        origin: &str,
        vars: &Resolved,
        runtime_config: RuntimeConfig,
    ) -> anyhow::Result<App> {
        let mut components = BTreeMap::new();
        for c in &locked.components {
            let spec = resolve_component(c, origin, vars, &runtime_config)?;
            components.insert(spec.id.clone(), spec);
        }
        let (http_triggers, redis_triggers) = resolve_triggers(locked, origin, vars, &components)?;
        Ok(App {
            name: locked.metadata_str("name").unwrap_or_default().to_owned(),
            components,
            http_triggers,
            redis_triggers,
            runtime_config,
        })
    }
}

/// Resolves one locked component (`tessera watch` resolves a reloaded one on its own);
/// `file` names the app in errors.
pub fn resolve_component(
    c: &LockedComponent,
    file: &str,
    vars: &Resolved,
    runtime_config: &RuntimeConfig,
) -> anyhow::Result<ComponentSpec> {
    let id = ComponentId::try_from(c.id.clone()).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let ctx = |field: &str| format!("{file}: component `{id}`, field `{field}`");
    if !c.dependencies.is_empty() {
        bail!(
            "{}: component dependencies are not supported by `tessera up`",
            ctx("dependencies")
        );
    }
    let Some(source) = c.source.content.file_path() else {
        bail!(
            "{}: the wasm is not a local file (content {:?})",
            ctx("source"),
            c.source.content.digest
        );
    };
    let strings = |key: &str| -> Vec<String> {
        match c.metadata.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    if !strings("ai_models").is_empty() {
        bail!(
            "{}: Serverless AI is not supported by `tessera up`",
            ctx("ai_models")
        );
    }
    let mut variables = HashMap::new();
    for (name, template) in &c.config {
        let value = vars
            .render(template)
            .with_context(|| ctx(&format!("variables.{name}")))?;
        variables.insert(name.clone(), value);
    }
    let mut allowed = Vec::new();
    for entry in strings("allowed_outbound_hosts") {
        let rendered = vars
            .render(&entry)
            .with_context(|| ctx("allowed_outbound_hosts"))?;
        allowed.push(AllowedHost::parse(&rendered).with_context(|| ctx("allowed_outbound_hosts"))?);
    }
    let key_value_stores = strings("key_value_stores");
    for label in &key_value_stores {
        if !runtime_config.key_value_stores.contains_key(label) {
            bail!(
                "{}: store `{label}` is not declared; add [key_value_store.{label}] to the runtime config (--runtime-config-file)",
                ctx("key_value_stores")
            );
        }
    }
    let sqlite_databases = strings("databases");
    for label in &sqlite_databases {
        if !runtime_config.sqlite_databases.contains_key(label) {
            bail!(
                "{}: database `{label}` is not declared; add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                ctx("sqlite_databases")
            );
        }
    }
    Ok(ComponentSpec {
        mounts: resolve_mounts(&c.files).with_context(|| ctx("files"))?,
        id,
        source,
        variables,
        environment: c.env.clone().into_iter().collect(),
        allowed_hosts: AllowedHosts::new(allowed),
        key_value_stores,
        sqlite_databases,
    })
}

/// Each file entry must be a local directory by now (`locked` and `registry::pull` put
/// single files into a staged directory).
fn resolve_mounts(files: &[ContentPath]) -> anyhow::Result<Vec<Mount>> {
    files
        .iter()
        .map(|f| {
            let Some(host) = f.content.file_path().filter(|p| p.is_dir()) else {
                bail!("{:?} is not a local directory", f.content.source);
            };
            let guest = f.path.to_string_lossy();
            let guest = if guest.starts_with('/') {
                guest.into_owned()
            } else {
                format!("/{guest}")
            };
            Ok(Mount { host, guest })
        })
        .collect()
}

/// HTTP and Redis triggers; errors count them as the manifest does (`[[trigger.http]] #2`).
fn resolve_triggers(
    locked: &LockedApp,
    file: &str,
    vars: &Resolved,
    components: &BTreeMap<ComponentId, ComponentSpec>,
) -> anyhow::Result<(Vec<HttpTriggerSpec>, Vec<RedisTriggerSpec>)> {
    let default_address = locked
        .metadata
        .get("triggers")
        .and_then(|t| t.get("redis"))
        .and_then(|r| r.get("address"))
        .and_then(Value::as_str);
    let mut http_triggers = Vec::new();
    let mut redis_triggers = Vec::new();
    for t in &locked.triggers {
        let config = &t.trigger_config;
        let text = |key: &str| config.get(key).and_then(Value::as_str);
        match t.trigger_type.as_str() {
            "http" => {
                let what = format!("[[trigger.http]] #{}", http_triggers.len() + 1);
                let component = component_ref(file, &what, config, components)?;
                let executor = config.get("executor").and_then(|e| e.get("type"));
                if executor.and_then(Value::as_str) == Some("wagi") {
                    bail!("{file}: {what}: the wagi executor is not supported by `tessera up`");
                }
                // A `{ private = true }` route is reachable only through service chaining.
                if let Some(p) = text("route") {
                    let route = Route::parse(p)
                        .with_context(|| format!("{file}: {what}, field `route`"))?;
                    http_triggers.push(HttpTriggerSpec { route, component });
                }
            }
            "redis" => {
                let Some(channel) = text("channel") else {
                    bail!("{file}: redis trigger `{}` has no `channel`", t.id);
                };
                let n = redis_triggers.len() + 1;
                let what = format!("[[trigger.redis]] #{n} (channel {channel:?})");
                let component = component_ref(file, &what, config, components)?;
                let Some(address) = text("address").or(default_address) else {
                    bail!(
                        "{file}: {what} has no `address` and there is no [application.trigger.redis] address"
                    );
                };
                redis_triggers.push(RedisTriggerSpec {
                    address: vars
                        .render(address)
                        .with_context(|| format!("{file}: {what}, field `address`"))?,
                    channel: vars
                        .render(channel)
                        .with_context(|| format!("{file}: {what}, field `channel`"))?,
                    component,
                });
            }
            other => bail!(
                "{file}: trigger `{}` has type `{other}`; `tessera up` runs http and redis triggers",
                t.id
            ),
        }
    }
    Ok((http_triggers, redis_triggers))
}

fn component_ref(
    file: &str,
    what: &str,
    config: &Value,
    components: &BTreeMap<ComponentId, ComponentSpec>,
) -> anyhow::Result<ComponentId> {
    let Some(name) = config.get("component").and_then(Value::as_str) else {
        bail!("{file}: {what} names no component");
    };
    match components.keys().find(|id| id.as_str() == name) {
        Some(id) => Ok(id.clone()),
        None => {
            let known: Vec<&str> = components.keys().map(ComponentId::as_str).collect();
            bail!(
                "{file}: {what} names component `{name}`, which is not defined (defined: {})",
                known.join(", ")
            )
        }
    }
}

/// The lock's variables as the resolver reads them (no default = required).
pub fn declared_variables(locked: &LockedApp) -> anyhow::Result<BTreeMap<VariableName, Variable>> {
    locked
        .variables
        .iter()
        .map(|(name, v)| {
            let name = VariableName::parse(name).map_err(anyhow::Error::msg)?;
            let decl = Variable {
                default: v.default.clone(),
                required: v.default.is_none(),
                secret: v.secret,
            };
            Ok((name, decl))
        })
        .collect()
}
