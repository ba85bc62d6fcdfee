//! `spin.toml` (Spin application manifest, version 2) as it is written on disk.
//!
//! These types mirror the file; they validate names while deserialising (so TOML errors
//! point at the offending line) and reject unknown fields, as Spin does. Cross-references
//! (a trigger naming a component, a component naming a store) are checked in `app.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A parsed manifest plus the file it came from (for error messages and relative paths).
#[derive(Debug)]
pub struct LoadedManifest {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "cannot read {path}: {source} (pass the manifest with -f/--file, or run from the app directory)"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Reads and parses a manifest file.
pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let manifest = parse(&text).map_err(|message| ManifestError::Parse {
        path: path.to_owned(),
        message,
    })?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    Ok(LoadedManifest { path, manifest })
}

/// Parses manifest text; the error message carries TOML's line/column and a caret.
pub fn parse(text: &str) -> Result<Manifest, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
    if manifest.spin_manifest_version != 2 {
        return Err(format!(
            "spin_manifest_version = {} is not supported; Tessera reads version 2 manifests",
            manifest.spin_manifest_version
        ));
    }
    Ok(manifest)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<VariableName, Variable>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<ComponentId, Component>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: ApplicationTriggers,
    /// Tool-specific settings (`[application.tool.x]`), ignored by the runtime.
    #[serde(default)]
    pub tool: Option<toml::Table>,
}

/// `[application.trigger.*]`: app-wide trigger settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTriggers {
    #[serde(default)]
    pub http: Option<HttpAppSettings>,
    #[serde(default)]
    pub redis: Option<RedisAppSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAppSettings {
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisAppSettings {
    /// Default address for every `[[trigger.redis]]`; may use `{{ variables }}`.
    pub address: String,
}

/// `[variables]` entry: either a default, or required; optionally secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub redis: Vec<RedisTrigger>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: HttpRoute,
    pub component: TriggerComponent,
    #[serde(default)]
    pub executor: Option<HttpExecutor>,
}

/// A route string, or `{ private = true }` for a component reachable only internally.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HttpRoute {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum HttpExecutor {
    Spin,
    Wagi {
        #[serde(default)]
        argv: Option<String>,
        #[serde(default)]
        entrypoint: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub channel: String,
    #[serde(default)]
    pub address: Option<String>,
    pub component: TriggerComponent,
}

/// A trigger's component: an id in `[component.*]`, or an inline table (unsupported).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TriggerComponent {
    Reference(ComponentId),
    Inline(Box<toml::Table>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: ComponentSource,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<VariableName, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<FileMount>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Spin 1.x's name for outbound HTTP hosts; rejected with a pointer to the new field.
    #[serde(default)]
    pub allowed_http_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub build: Option<BuildConfig>,
    #[serde(default)]
    pub tool: Option<toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub dependencies: Option<toml::Table>,
}

/// `source = "path.wasm"` or `source = { url = "...", digest = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ComponentSource {
    Local(String),
    Remote { url: String, digest: String },
}

/// `files = ["glob", { source = "dir", destination = "/" }]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    Pattern(String),
    Placement { source: String, destination: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub command: BuildCommands,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BuildCommands {
    One(String),
    Many(Vec<String>),
}

impl BuildCommands {
    pub fn as_slice(&self) -> &[String] {
        match self {
            BuildCommands::One(c) => std::slice::from_ref(c),
            BuildCommands::Many(cs) => cs,
        }
    }
}

/// A component id: kebab-case (`auth`, `web-client`), as Spin requires.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ComponentId(String);

impl TryFrom<String> for ComponentId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        check_kebab(&id).map(|()| ComponentId(id))
    }
}

impl ComponentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_kebab(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("component id must not be empty".into());
    }
    if id.contains('_') {
        return Err(format!(
            "invalid component id {id:?}: words must be separated with '-', not '_'"
        ));
    }
    for word in id.split('-') {
        let Some(first) = word.chars().next() else {
            return Err(format!(
                "invalid component id {id:?}: empty word between '-'"
            ));
        };
        if !first.is_ascii_lowercase() {
            return Err(format!(
                "invalid component id {id:?}: each word must start with a lower-case letter"
            ));
        }
        if !word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "invalid component id {id:?}: only lower-case letters, digits and '-' are allowed"
            ));
        }
    }
    Ok(())
}

/// A variable name: lower-case letters, digits and '_', starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct VariableName(String);

impl VariableName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a name the way both the manifest and guests' `variables::get` must.
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(VariableName(name.to_owned()))
        } else {
            Err(format!(
                "invalid variable name {name:?}: use lower-case letters, digits and '_', starting with a letter"
            ))
        }
    }
}

impl TryFrom<String> for VariableName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        VariableName::parse(&name)
    }
}

impl fmt::Display for VariableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "hello.wasm"
"#;

    #[test]
    fn parses_a_minimal_manifest() {
        let m = parse(MINIMAL).expect("valid manifest");
        assert_eq!(m.application.name, "demo");
        assert_eq!(m.trigger.http.len(), 1);
        assert!(m.component.contains_key(&ComponentId("hello".into())));
    }

    #[test]
    fn unknown_component_field_names_line_and_field() {
        let text = MINIMAL.replace(
            "source = \"hello.wasm\"",
            "source = \"hello.wasm\"\nsorce = 1",
        );
        let err = parse(&text).unwrap_err();
        assert!(err.contains("line 10"), "{err}");
        assert!(err.contains("sorce"), "{err}");
    }

    #[test]
    fn snake_case_component_id_is_rejected_with_reason() {
        let text = MINIMAL.replace("component.hello", "component.hello_world");
        let err = parse(&text).unwrap_err();
        assert!(err.contains("separated with '-'"), "{err}");
    }

    #[test]
    fn wrong_manifest_version_is_rejected() {
        let text = MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(parse(&text).unwrap_err().contains("version 2"));
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(VariableName::parse("jwt_secret").is_ok());
        assert!(VariableName::parse("JWT").is_err());
        assert!(VariableName::parse("1x").is_err());
        assert!(VariableName::parse("a-b").is_err());
    }
}
