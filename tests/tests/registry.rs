//! The app as an OCI artifact: `tessera registry push` to a real registry (Debian's
//! `docker-registry`), what the registry then holds (Spin's format, field by field),
//! `registry pull` into an empty cache, and `tessera up --from` serving the purchase
//! journey; plus the failures a user meets: bad references, no registry, a missing tag, a
//! corrupted blob, and an artifact that is not a Spin app.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_blackbox::marketplace::{Deal, Marketplace, body, eventually};
use tessera_blackbox::{RegistryServer, free_port, run_tessera, workspace_root};

const DEADLINE: Duration = Duration::from_secs(20);
const WASM: &str = "application/vnd.wasm.content.layer.v1+wasm";
const DATA: &str = "application/vnd.wasm.content.layer.v1+data";
const LOCK: &str = "application/vnd.fermyon.spin.application.v1+config";
const COMPONENTS: [&str; 8] = [
    "activity",
    "auth",
    "expiration",
    "orders",
    "payments",
    "search",
    "tickets",
    "web",
];
/// Spin inlines static files up to this size in the lock instead of giving them a layer.
const INLINE_MAX: u64 = 128;

/// The web component's files (`client/dist`), as (path under the mount, size), sorted.
fn dist_files() -> Vec<(String, u64)> {
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<(String, u64)>) {
        for entry in std::fs::read_dir(dir).expect("client/dist is built") {
            let entry = entry.expect("dir entry");
            let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                walk(&entry.path(), &name, out);
            } else {
                out.push((name, meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&workspace_root().join("client/dist"), "", &mut out);
    out.sort();
    out
}

/// `tessera registry push reference --insecure` of the repo's app; returns the digest.
fn push(reference: &str) -> String {
    let manifest = workspace_root().join("spin.toml").display().to_string();
    let (code, out) = run_tessera(
        &["registry", "push", reference, "-f", &manifest, "--insecure"],
        &[],
    );
    assert_eq!(code, 0, "push failed:\n{out}");
    // Each layer is shown as it goes (plain lines: the output is not a terminal).
    assert!(
        out.lines()
            .any(|l| l.starts_with("[1/") && l.contains(" wasm "))
            && out
                .lines()
                .any(|l| l.starts_with("Pushed ") && l.contains(" layers (")),
        "no progress lines in:\n{out}"
    );
    out.lines()
        .find_map(|l| l.strip_prefix("Pushed with digest "))
        .unwrap_or_else(|| panic!("no digest in:\n{out}"))
        .trim()
        .to_owned()
}

async fn get(url: &str, accept: &str) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .expect("GET from registry");
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.bytes().await.expect("body").to_vec()
}

async fn manifest(registry: &RegistryServer, repo: &str, tag: &str) -> Value {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", registry.host());
    serde_json::from_slice(&get(&url, "application/vnd.oci.image.manifest.v1+json").await)
        .expect("manifest JSON")
}

async fn blob(registry: &RegistryServer, repo: &str, digest: &str) -> Value {
    let url = format!("http://{}/v2/{repo}/blobs/{digest}", registry.host());
    serde_json::from_slice(&get(&url, "*/*").await).expect("blob JSON")
}

#[tokio::test]
async fn pushed_app_is_spins_artifact_and_runs_from_the_registry() {
    let registry = RegistryServer::start();
    let reference = format!("{}/tessera:v1", registry.host());
    let digest = push(&reference);
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        push(&reference),
        digest,
        "identical content, identical digest"
    );

    // The image manifest: one wasm layer per component, one data layer per static file
    // too big to inline (distinct contents), the lock last.
    let m = manifest(&registry, "tessera", "v1").await;
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = m["layers"].as_array().expect("layers");
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    let big_files = dist_files()
        .iter()
        .filter(|(_, size)| *size > INLINE_MAX)
        .count();
    let mut expected = vec![WASM; COMPONENTS.len()];
    expected.extend(vec![DATA; big_files]);
    expected.push(LOCK);
    assert_eq!(types, expected);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.title"],
        "tessera"
    );
    assert!(m["annotations"]["org.opencontainers.image.created"].is_null());

    // The config: Spin's empty wasm image config pointing at the lock.
    let lock_digest = layers[layers.len() - 1]["digest"].as_str().unwrap();
    let config = blob(
        &registry,
        "tessera",
        m["config"]["digest"].as_str().unwrap(),
    )
    .await;
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "Wasip1");
    assert_eq!(
        config["config"]["Labels"]["com.fermyon.spin.lockedAppDigest"],
        lock_digest
    );

    // The lock: Spin's LockedApp, contents by digest.
    let lock = blob(&registry, "tessera", lock_digest).await;
    check_lock(&lock, layers);

    // Pull into an empty cache: every blob lands there under its digest.
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let cache_arg = cache.display().to_string();
    let (code, out) = run_tessera(
        &[
            "registry",
            "pull",
            &reference,
            "--insecure",
            "--cache-dir",
            &cache_arg,
        ],
        &[],
    );
    assert_eq!(code, 0, "pull failed:\n{out}");
    assert!(out.contains(&digest), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" locked app ") && l.ends_with(" pulled"))
            && out
                .lines()
                .any(|l| l.starts_with("Pulled ") && l.contains(" layers (")),
        "no progress lines in:\n{out}"
    );
    for layer in layers {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        assert!(cache.join("blobs/sha256").join(hex).is_file(), "{hex}");
    }

    // Serve it from the registry and buy a ticket.
    let m = Marketplace::start_from_registry(&reference, &cache);
    assert!(m.app.logs().contains(&digest), "{}", m.app.logs());
    journey(&m).await;
    assert!(
        m.state_dir().join(".spin/sqlite").is_dir(),
        "state defaults to .spin in the current directory"
    );
}

/// The locked app, field by field, against Spin's `LockedApp` serialisation.
fn check_lock(lock: &Value, layers: &[Value]) {
    // No host requirements, so Spin writes version 0 and no `must_understand`.
    assert_eq!(lock["spin_lock_version"], 0);
    assert!(lock.get("must_understand").is_none());
    assert!(lock.get("host_requirements").is_none());
    let meta = &lock["metadata"];
    assert_eq!(meta["name"], "tessera");
    assert_eq!(meta["version"], "0.1.0");
    assert_eq!(meta["triggers"]["redis"]["address"], "{{ redis_address }}");
    assert!(meta.get("origin").is_none(), "origin is dropped on push");
    assert_eq!(lock["variables"]["jwt_secret"], json!({"secret": true}));
    assert_eq!(
        lock["variables"]["order_lock_seconds"],
        json!({"default": "180"})
    );
    assert_eq!(lock["variables"]["stripe_publishable_key"], json!({}));

    let triggers = lock["triggers"].as_array().expect("triggers");
    assert_eq!(
        triggers[0],
        json!({"id": "auth-http-trigger", "trigger_type": "http",
               "trigger_config": {"component": "auth", "route": "/api/users/..."}})
    );
    let redis: Vec<&Value> = triggers
        .iter()
        .filter(|t| t["trigger_type"] == "redis")
        .collect();
    assert_eq!(
        redis[0],
        &json!({"id": "orders-redis-trigger", "trigger_type": "redis",
                "trigger_config": {"channel": "ticket:created", "component": "orders"}})
    );
    assert_eq!(redis[1]["id"], "redis-trigger1");

    let components = lock["components"].as_array().expect("components");
    let ids: Vec<&str> = components
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, COMPONENTS);
    let digests_of = |media_type: &str| -> Vec<&str> {
        layers
            .iter()
            .filter(|l| l["mediaType"] == media_type)
            .map(|l| l["digest"].as_str().unwrap())
            .collect()
    };
    let wasm_digests = digests_of(WASM);
    for c in components {
        let source = &c["source"];
        assert_eq!(source["content_type"], "application/wasm");
        assert!(source.get("source").is_none(), "no local path: {source}");
        assert!(source.get("inline").is_none());
        let d = source["digest"].as_str().expect("digest");
        assert!(wasm_digests.contains(&d), "{d} is a wasm layer");
    }
    // The web component's files: every one of client/dist, by digest or inline.
    let data_digests = digests_of(DATA);
    let component = |id: &str| {
        components
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("component {id}"))
    };
    let mut files: Vec<&str> = component("web")["files"]
        .as_array()
        .expect("web files")
        .iter()
        .map(|f| {
            // Spin's ContentPath: the content reference flattened next to the path.
            match f["digest"].as_str() {
                Some(d) => assert!(data_digests.contains(&d), "{d} is a data layer"),
                None => assert!(f["inline"].is_string(), "inline: {f}"),
            }
            assert!(f.get("source").is_none(), "no local path: {f}");
            f["path"].as_str().expect("path").trim_start_matches('/')
        })
        .collect();
    files.sort_unstable();
    let dist = dist_files();
    let expected: Vec<&str> = dist
        .iter()
        .map(|(p, _)| p.trim_start_matches('/'))
        .collect();
    assert_eq!(files, expected);

    let orders = component("orders");
    assert_eq!(orders["metadata"]["databases"], json!(["orders"]));
    assert_eq!(
        orders["metadata"]["allowed_outbound_hosts"],
        json!(["{{ redis_address }}"])
    );
    assert_eq!(
        orders["metadata"]["build"]["command"],
        "cargo build --target wasm32-wasip2 --release --locked -p orders"
    );
    assert_eq!(orders["config"]["jwt_secret"], "{{ jwt_secret }}");
}

/// Sign up, sell, order and pay with pm_card_visa; the order completes.
async fn journey(m: &Marketplace) {
    // The browser app comes out of the data layers byte for byte.
    let index = std::fs::read_to_string(workspace_root().join("client/dist/index.html"))
        .expect("client/dist/index.html");
    let page = m.get(&m.client(), "/orders").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.text().await.expect("page"), index);

    let Deal {
        buyer, order_id, ..
    } = m.ordered_ticket(25.5).await;
    let resp = m
        .post(
            &buyer,
            "/api/payments",
            json!({"orderId": order_id, "token": "pm_card_visa"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let payment = body(resp).await;
    assert!(
        payment["stripeId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("pi_")
    );
    eventually("the order to complete", DEADLINE, || async {
        let order = body(m.get(&buyer, &format!("/api/orders/{order_id}")).await).await;
        (order["status"] == "complete").then_some(())
    })
    .await;
}

#[test]
fn bad_references_and_unreachable_registries_fail_clearly() {
    for bad in ["Not A Ref", "localhost:5000/UPPER:v1", "host/repo:bad tag"] {
        let (code, out) = run_tessera(&["registry", "pull", bad, "--insecure"], &[]);
        assert_ne!(code, 0, "{bad}: {out}");
        assert!(out.contains("invalid registry reference"), "{bad}: {out}");
        let (code, out) = run_tessera(&["up", "--from", bad], &[]);
        assert_ne!(code, 0, "{bad}: {out}");
        assert!(out.contains("invalid registry reference"), "{bad}: {out}");
    }
    let manifest = workspace_root().join("spin.toml").display().to_string();
    let (code, out) = run_tessera(&["registry", "push", "Not A Ref", "-f", &manifest], &[]);
    assert_ne!(code, 0);
    assert!(out.contains("invalid registry reference"), "{out}");

    let nobody = format!("127.0.0.1:{}/tessera:v1", free_port());
    let cache = tempfile::tempdir().expect("cache");
    let cache_arg = cache.path().display().to_string();
    for args in [
        vec![
            "registry",
            "pull",
            &nobody,
            "--insecure",
            "--cache-dir",
            &cache_arg,
        ],
        vec!["registry", "push", &nobody, "-f", &manifest, "--insecure"],
    ] {
        let (code, out) = run_tessera(&args, &[]);
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("cannot reach registry 127.0.0.1:"), "{out}");
        assert!(out.contains("Connection refused"), "{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn missing_tags_corrupted_blobs_and_foreign_artifacts_are_refused() {
    let registry = RegistryServer::start();
    let reference = format!("{}/tessera:v1", registry.host());
    push(&reference);
    let cache = tempfile::tempdir().expect("cache");
    let cache_arg = cache.path().display().to_string();
    let pull = |reference: &str| {
        run_tessera(
            &[
                "registry",
                "pull",
                reference,
                "--insecure",
                "--cache-dir",
                &cache_arg,
            ],
            &[],
        )
    };

    let missing = format!("{}/tessera:nope", registry.host());
    let (code, out) = pull(&missing);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("tessera:nope was not found"), "{out}");

    // Damage one wasm blob in the registry's storage: the pull names it and refuses it.
    let manifest: Value = {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(self::manifest(&registry, "tessera", "v1"))
    };
    let victim = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    std::fs::write(registry.blob_file(&victim), b"not the wasm you pushed").expect("corrupt");
    let (code, out) = pull(&reference);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("digest mismatch"), "{out}");
    assert!(out.contains(&victim), "{out}");
    let hex = victim.trim_start_matches("sha256:");
    assert!(
        !cache.path().join("blobs/sha256").join(hex).exists(),
        "a corrupted blob never enters the cache"
    );
    let (code, out) = run_tessera(
        &[
            "up",
            "--from",
            &reference,
            "--insecure",
            "--cache-dir",
            &cache_arg,
        ],
        &[],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("digest mismatch"), "{out}");

    // An ordinary container image is not a Spin app.
    let foreign = format!("{}/not-spin:v1", registry.host());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(push_foreign_image(&registry, "not-spin", "v1"));
    let (code, out) = pull(&foreign);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is not a Spin application"), "{out}");
    assert!(
        out.contains("application/vnd.oci.image.layer.v1.tar"),
        "names what it found: {out}"
    );
}

/// Pushes a minimal OCI image (an empty config and one tar layer) with the registry API.
async fn push_foreign_image(registry: &RegistryServer, repo: &str, tag: &str) {
    use sha2::{Digest, Sha256};
    let http = reqwest::Client::new();
    let base = format!("http://{}", registry.host());
    let upload = |bytes: Vec<u8>| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
            let start = http
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .await
                .expect("start upload");
            assert_eq!(start.status(), StatusCode::ACCEPTED);
            let location = start.headers()["location"].to_str().unwrap().to_owned();
            let url = if location.starts_with("http") {
                location
            } else {
                format!("{base}{location}")
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            let done = http
                .put(format!("{url}{sep}digest={digest}"))
                .body(bytes.clone())
                .send()
                .await
                .expect("finish upload");
            assert_eq!(done.status(), StatusCode::CREATED);
            (digest, bytes.len())
        }
    };
    let (config, config_len) = upload(b"{}".to_vec()).await;
    let (layer, layer_len) = upload(vec![0u8; 1024]).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": layer_len}],
    });
    let resp = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(resp.status(), StatusCode::CREATED);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
