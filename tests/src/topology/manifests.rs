//! What the deployment says about its own shape: deploy/k8s rendered with `kubectl
//! kustomize` (the SpinApps, the Ingress's routes, Redis's settings), and which Redis
//! channels spin.toml subscribes each component to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// One service: a SpinApp running some of spin.toml's components, several times.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The SpinApp's name (and its Kubernetes Service's).
    pub name: String,
    /// `spec.components`: the components this service runs (empty: all of them).
    pub components: Vec<String>,
    pub replicas: usize,
}

/// A path of the Ingress and the service it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub path: String,
    /// `Exact` matches only `path`; otherwise `path` and everything below it.
    pub exact: bool,
    pub service: String,
}

/// The parts of a rendered overlay this topology reproduces.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    /// Redis's command-line settings, without the program name and `--dir` (the
    /// caller chooses where the data lives).
    pub redis_args: Vec<String>,
}

/// Renders `deploy/k8s/overlays/<overlay>` of the checkout at `root`.
pub fn render(root: &Path, overlay: &str) -> anyhow::Result<String> {
    let dir = root.join("deploy/k8s/overlays").join(overlay);
    if !dir.is_dir() {
        bail!("there is no overlay {}", dir.display());
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .context("cannot run kubectl (it renders deploy/k8s; see README's deploy checks)")?;
    if !out.status.success() {
        bail!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("kubectl kustomize printed non-UTF-8")
}

/// Reads the SpinApps, the Ingress and the Redis Deployment out of rendered YAML. Every
/// service gets at least `min_replicas` replicas.
pub fn parse(yaml: &str, min_replicas: usize) -> anyhow::Result<Deployment> {
    let mut services = Vec::new();
    let mut routes = Vec::new();
    let mut redis_args = None;
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let document = Document::deserialize(document).context("a rendered YAML document")?;
        let name = document.metadata.name;
        match document.kind.as_str() {
            "SpinApp" => {
                let spec: SpinAppSpec = serde_yaml_ng::from_value(document.spec)
                    .with_context(|| format!("SpinApp {name}"))?;
                services.push(Service {
                    name,
                    components: spec.components,
                    replicas: spec.replicas.unwrap_or(1).max(min_replicas),
                });
            }
            "Ingress" => {
                let spec: IngressSpec = serde_yaml_ng::from_value(document.spec)
                    .with_context(|| format!("Ingress {name}"))?;
                for path in spec.rules.into_iter().flat_map(|rule| rule.http.paths) {
                    routes.push(Route {
                        path: path.path,
                        exact: path.path_type == "Exact",
                        service: path.backend.service.name,
                    });
                }
            }
            "Deployment" if name == "redis" => {
                let spec: DeploymentSpec =
                    serde_yaml_ng::from_value(document.spec).context("Deployment redis")?;
                let container = spec
                    .template
                    .spec
                    .containers
                    .into_iter()
                    .find(|c| c.name == "redis")
                    .context("Deployment redis has no container named redis")?;
                redis_args = Some(redis_settings(container.command, container.args));
            }
            _ => {}
        }
    }
    if services.is_empty() {
        bail!("the rendered overlay has no SpinApp");
    }
    if routes.is_empty() {
        bail!("the rendered overlay has no Ingress paths");
    }
    if let Some(route) = routes
        .iter()
        .find(|r| !services.iter().any(|s| s.name == r.service))
    {
        bail!(
            "the Ingress sends {} to {}, which is no SpinApp",
            route.path,
            route.service
        );
    }
    let redis_args = redis_args.context("the rendered overlay has no Deployment named redis")?;
    Ok(Deployment {
        services,
        routes,
        redis_args,
    })
}

/// The container's command line without the program and its `--dir`.
fn redis_settings(command: Vec<String>, args: Vec<String>) -> Vec<String> {
    let mut words = command.into_iter().chain(args).peekable();
    words.next_if(|w| w == "redis-server");
    let mut settings = Vec::new();
    while let Some(word) = words.next() {
        if word == "--dir" {
            words.next();
        } else {
            settings.push(word);
        }
    }
    settings
}

/// The Redis channels each component of the manifest at `spin_toml` subscribes to.
pub fn redis_channels(spin_toml: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let text = std::fs::read_to_string(spin_toml)
        .with_context(|| format!("cannot read {}", spin_toml.display()))?;
    let manifest: SpinManifest =
        toml::from_str(&text).with_context(|| format!("cannot parse {}", spin_toml.display()))?;
    let mut channels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for trigger in manifest.trigger.redis {
        if let toml::Value::String(component) = trigger.component {
            channels
                .entry(component)
                .or_default()
                .insert(trigger.channel);
        }
    }
    Ok(channels)
}

#[derive(Deserialize)]
struct Document {
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: serde_yaml_ng::Value,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct SpinAppSpec {
    #[serde(default)]
    components: Vec<String>,
    replicas: Option<usize>,
}

#[derive(Deserialize)]
struct IngressSpec {
    rules: Vec<IngressRule>,
}

#[derive(Deserialize)]
struct IngressRule {
    http: IngressHttp,
}

#[derive(Deserialize)]
struct IngressHttp {
    paths: Vec<IngressPath>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IngressPath {
    path: String,
    path_type: String,
    backend: IngressBackend,
}

#[derive(Deserialize)]
struct IngressBackend {
    service: ServiceRef,
}

#[derive(Deserialize)]
struct ServiceRef {
    name: String,
}

#[derive(Deserialize)]
struct DeploymentSpec {
    template: PodTemplate,
}

#[derive(Deserialize)]
struct PodTemplate {
    spec: PodSpec,
}

#[derive(Deserialize)]
struct PodSpec {
    containers: Vec<Container>,
}

#[derive(Deserialize)]
struct Container {
    name: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Deserialize)]
struct SpinManifest {
    #[serde(default)]
    trigger: Triggers,
}

#[derive(Deserialize, Default)]
struct Triggers {
    #[serde(default)]
    redis: Vec<RedisTrigger>,
}

#[derive(Deserialize)]
struct RedisTrigger {
    channel: String,
    /// A component id, or an inline component (which no SpinApp can select).
    component: toml::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: tessera
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: orders
spec:
  components:
  - orders
  replicas: 3
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: web
spec:
  components: [web]
  replicas: 1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis
spec:
  template:
    spec:
      containers:
      - name: redis
        args: [redis-server, --dir, /data, --appendonly, "yes", --notify-keyspace-events, Ex]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: tessera
spec:
  rules:
  - http:
      paths:
      - path: /api/orders
        pathType: Prefix
        backend:
          service:
            name: orders
            port:
              number: 80
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"#;

    #[test]
    fn reads_services_routes_and_redis_settings() {
        let deployment = parse(RENDERED, 2).expect("parses");
        assert_eq!(
            deployment.services,
            [
                Service {
                    name: "orders".into(),
                    components: vec!["orders".into()],
                    replicas: 3
                },
                Service {
                    name: "web".into(),
                    components: vec!["web".into()],
                    replicas: 2
                },
            ]
        );
        assert_eq!(deployment.routes[0].path, "/api/orders");
        assert_eq!(deployment.routes[0].service, "orders");
        assert!(!deployment.routes[0].exact);
        assert_eq!(
            deployment.redis_args,
            ["--appendonly", "yes", "--notify-keyspace-events", "Ex"]
        );
    }

    #[test]
    fn an_ingress_to_an_unknown_service_is_refused() {
        let yaml = RENDERED.replace(
            "name: web\n            port",
            "name: nowhere\n            port",
        );
        let error = parse(&yaml, 1).expect_err("refused").to_string();
        assert!(error.contains("nowhere"), "{error}");
    }
}
