//! The lock as Spin writes and reads it, field by field.

use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::manifest::{self, LoadedManifest};

const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "shop"
version = "1.2.3"
authors = ["Ann <ann@example.com>"]
[application.trigger.redis]
address = "{{ redis_address }}"
[variables]
redis_address = { default = "redis://127.0.0.1:6379" }
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
id = "static"
route = "/..."
component = "web"
[[trigger.redis]]
channel = "a"
component = "api"
[[trigger.redis]]
channel = "b"
address = "redis://other:6379"
component = "api"
[component.api]
source = "api.wasm"
description = "The API"
sqlite_databases = ["api"]
key_value_stores = ["default"]
allowed_outbound_hosts = ["{{ redis_address }}"]
environment = { MODE = "test" }
variables = { key = "{{ api_key }}" }
[component.api.build]
command = "cargo build"
watch = ["src/**/*.rs"]
[component.web]
source = "web.wasm"
files = [{ source = "static", destination = "/www" }, "notes/*.txt"]
"#;

/// Writes the manifest's app (wasm files and static files) into `dir`.
pub(crate) fn write_app(dir: &Path) -> LoadedManifest {
    std::fs::write(dir.join("spin.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("api.wasm"), b"\0asm\x01\0\0\0api").unwrap();
    std::fs::write(dir.join("web.wasm"), b"\0asm\x01\0\0\0api").unwrap();
    std::fs::create_dir_all(dir.join("static/css")).unwrap();
    std::fs::write(dir.join("static/index.html"), vec![b'x'; 300]).unwrap();
    std::fs::write(dir.join("static/css/site.css"), b"body{}").unwrap();
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    std::fs::write(dir.join("notes/a.txt"), vec![b'x'; 300]).unwrap();
    manifest::load(&dir.join("spin.toml")).unwrap()
}

fn url(path: &Path) -> String {
    file_url(path).unwrap()
}

#[test]
fn a_manifest_locks_as_spin_locks_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = &std::fs::canonicalize(dir.path()).unwrap();
    let loaded = write_app(dir);
    let staging = dir.join("staging");
    let locked = from_manifest(&loaded, &staging).unwrap();
    let actual: Value = serde_json::from_slice(&locked.to_json_pretty()).unwrap();
    let expected = json!({
        "spin_lock_version": 0,
        "metadata": {
            "name": "shop",
            "version": "1.2.3",
            "authors": ["Ann <ann@example.com>"],
            "triggers": { "redis": { "address": "{{ redis_address }}" } },
            "origin": url(&dir.join("spin.toml")),
        },
        "variables": {
            "api_key": { "secret": true },
            "redis_address": { "default": "redis://127.0.0.1:6379" },
        },
        "triggers": [
            { "id": "api-http-trigger", "trigger_type": "http",
              "trigger_config": { "component": "api", "route": "/api/..." } },
            { "id": "static", "trigger_type": "http",
              "trigger_config": { "component": "web", "route": "/..." } },
            { "id": "api-redis-trigger", "trigger_type": "redis",
              "trigger_config": { "channel": "a", "component": "api" } },
            { "id": "redis-trigger1", "trigger_type": "redis",
              "trigger_config": { "channel": "b", "address": "redis://other:6379",
                                  "component": "api" } },
        ],
        "components": [
            {
                "id": "api",
                "metadata": {
                    "description": "The API",
                    "allowed_outbound_hosts": ["{{ redis_address }}"],
                    "key_value_stores": ["default"],
                    "databases": ["api"],
                    "build": { "command": "cargo build", "watch": ["src/**/*.rs"] },
                },
                "source": { "content_type": "application/wasm",
                            "source": url(&dir.join("api.wasm")) },
                "env": { "MODE": "test" },
                "config": { "key": "{{ api_key }}" },
            },
            {
                "id": "web",
                "source": { "content_type": "application/wasm",
                            "source": url(&dir.join("web.wasm")) },
                "files": [
                    { "source": url(&dir.join("static")), "path": "/www" },
                    { "source": url(&staging.join("web")), "path": "/" },
                ],
            },
        ],
    });
    assert_eq!(actual, expected);
    assert!(
        staging.join("web/notes/a.txt").is_file(),
        "patterns are staged"
    );
    // And it reads back to the same value.
    assert_eq!(
        LockedApp::from_json(&locked.to_json_pretty()).unwrap(),
        locked
    );
}

#[test]
fn a_lock_written_by_spin_is_read() {
    let spin = json!({
        "spin_lock_version": 1,
        "must_understand": ["host_requirements"],
        "host_requirements": { "local_service_chaining": "optional" },
        "metadata": { "name": "hello", "trigger": { "type": "http" } },
        "triggers": [{ "id": "t", "trigger_type": "http",
                       "trigger_config": { "component": "hello", "route": "/..." } }],
        "components": [{
            "id": "hello",
            "source": { "content_type": "application/wasm",
                        "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000" },
            "files": [{ "inline": "aGk=", "digest": "sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4",
                        "path": "hi.txt" }],
            "a_future_field": 1,
        }],
    });
    let locked = LockedApp::from_json(spin.to_string().as_bytes()).unwrap();
    assert_eq!(
        locked.components[0].files[0].content.inline.as_deref(),
        Some(&b"hi"[..])
    );
    let written: Value = serde_json::from_slice(&locked.to_json_pretty()).unwrap();
    assert_eq!(
        written["spin_lock_version"], 1,
        "must_understand keeps version 1"
    );
    assert_eq!(written["components"][0]["files"][0]["inline"], "aGk=");
    assert!(written["components"][0]["source"].get("inline").is_none());
}

#[test]
fn unsupported_versions_and_host_requirements_are_refused() {
    let lock = |extra: Value| {
        let mut v = json!({ "spin_lock_version": 1, "triggers": [], "components": [] });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        LockedApp::from_json(v.to_string().as_bytes())
    };
    assert!(lock(json!({})).is_ok());
    let err = lock(json!({ "spin_lock_version": 2 })).unwrap_err();
    assert!(
        format!("{err:#}").contains("spin_lock_version 2"),
        "{err:#}"
    );
    let err =
        lock(json!({ "host_requirements": { "local_service_chaining": "required" } })).unwrap_err();
    assert!(
        format!("{err:#}").contains("local_service_chaining"),
        "{err:#}"
    );
    let err = lock(json!({ "must_understand": ["time_travel"] })).unwrap_err();
    assert!(format!("{err:#}").contains("time_travel"), "{err:#}");
}

#[test]
fn selecting_components_keeps_their_triggers_and_the_variables_they_use() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = write_app(dir.path());
    let locked = from_manifest(&loaded, &dir.path().join("staging")).unwrap();

    let mut web = locked.clone();
    web.retain_components(&["web".into()], "spin.toml").unwrap();
    assert_eq!(web.components.len(), 1);
    assert_eq!(
        web.triggers.len(),
        1,
        "only web's route: {:?}",
        web.triggers
    );
    // Neither the API's required key nor the Redis default is web's business.
    assert!(web.variables.is_empty(), "{:?}", web.variables.keys());

    let mut api = locked.clone();
    api.retain_components(&["api".into()], "spin.toml").unwrap();
    assert_eq!(api.triggers.len(), 3, "one route and two channels");
    let names: Vec<&str> = api.variables.keys().map(String::as_str).collect();
    assert_eq!(names, ["api_key", "redis_address"]);

    let err = locked
        .clone()
        .retain_components(&["api".into(), "wbe".into()], "spin.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spin.toml") && err.contains("wbe") && err.contains("api, web"),
        "{err}"
    );
}
