//! `tessera registry push`: a manifest's locked app and its blobs as Spin's OCI artifact.
//!
//! Identical content gives identical digests: layers come in lock order (components by
//! id, files by path), duplicates are dropped, and nothing time-dependent is written
//! (Spin adds an `org.opencontainers.image.created` annotation; Tessera does not).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oci_client::client::{Config, ImageLayer};
use oci_client::config::{Architecture, ConfigFile, Os};
use oci_client::manifest::OciImageManifest;

use super::progress::{self, Progress};
use super::{
    DATA_MEDIA_TYPE, INLINE_MAX_SIZE, LOCKED_APP_DIGEST_LABEL, SPIN_APPLICATION_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE, sha256_digest,
};
use crate::locked::{ContentPath, ContentRef, LockedApp};

/// Everything that goes to the registry.
pub struct Artifact {
    /// The lock as pushed: contents by digest, no local paths.
    pub locked: LockedApp,
    pub layers: Vec<ImageLayer>,
    pub config: Config,
    pub manifest: OciImageManifest,
}

/// Builds the artifact for a locked app whose sources and files are local (`file://`).
pub fn assemble(local: &LockedApp) -> anyhow::Result<Artifact> {
    let mut locked = local.clone();
    let mut layers = Layers::default();
    for c in &mut locked.components {
        let Some(path) = c.source.content.file_path() else {
            bail!("component `{}`: source is not a local file", c.id);
        };
        let wasm = std::fs::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "component `{}`: cannot read {}: {e} (run `tessera build` to build it)",
                c.id,
                path.display()
            )
        })?;
        if !wasm.starts_with(b"\0asm") {
            bail!(
                "component `{}`: {} is not a WebAssembly file",
                c.id,
                path.display()
            );
        }
        c.source.content = layers.add(wasm, WASM_LAYER_MEDIA_TYPE, true);
        let mut files = Vec::new();
        for mount in &c.files {
            collect_files(mount, &mut files)
                .with_context(|| format!("component `{}`, field `files`", c.id))?;
        }
        c.files = files
            .into_iter()
            .map(|(guest, host)| {
                let bytes = std::fs::read(&host)
                    .with_context(|| format!("cannot read {}", host.display()))?;
                // Tiny files live only in the lock: some registries refuse 0- and 1-byte blobs.
                let content = layers.add(bytes, DATA_MEDIA_TYPE, false);
                Ok(ContentPath {
                    content,
                    path: guest,
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    // Where the manifest was is meaningless to whoever pulls the app.
    locked.metadata.remove("origin");

    let lock_json = serde_json::to_vec(&locked).context("cannot serialise the locked app")?;
    let lock_layer = ImageLayer::new(lock_json, SPIN_APPLICATION_MEDIA_TYPE.into(), None);
    let lock_digest = lock_layer.sha256_digest();
    let mut layers = layers.list;
    layers.push(lock_layer);

    let config_file = ConfigFile {
        architecture: Architecture::Wasm,
        os: Os::Other("Wasip1".into()),
        // Distinct apps must get distinct configs, or runtimes see one image id for all.
        config: Some(oci_client::config::Config {
            labels: Some(HashMap::from([(
                LOCKED_APP_DIGEST_LABEL.to_owned(),
                lock_digest,
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let config = Config::oci_v1_from_config_file(config_file, None)
        .context("cannot serialise the image config")?;
    let manifest = OciImageManifest::build(&layers, &config, annotations(&locked));
    Ok(Artifact {
        locked,
        layers,
        config,
        manifest,
    })
}

/// Spin's inferred annotations, except the creation time.
fn annotations(locked: &LockedApp) -> Option<BTreeMap<String, String>> {
    use oci_client::annotations::{
        ORG_OPENCONTAINERS_IMAGE_AUTHORS, ORG_OPENCONTAINERS_IMAGE_DESCRIPTION,
        ORG_OPENCONTAINERS_IMAGE_TITLE, ORG_OPENCONTAINERS_IMAGE_VERSION,
    };
    let mut map = BTreeMap::new();
    let authors: Vec<&str> = match locked.metadata.get("authors") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if !authors.is_empty() {
        map.insert(ORG_OPENCONTAINERS_IMAGE_AUTHORS.into(), authors.join(", "));
    }
    for (key, field) in [
        (ORG_OPENCONTAINERS_IMAGE_TITLE, "name"),
        (ORG_OPENCONTAINERS_IMAGE_DESCRIPTION, "description"),
        (ORG_OPENCONTAINERS_IMAGE_VERSION, "version"),
    ] {
        if let Some(value) = locked.metadata_str(field) {
            map.insert(key.into(), value.into());
        }
    }
    Some(map)
}

/// Layers in order of first appearance, each digest once.
#[derive(Default)]
struct Layers {
    list: Vec<ImageLayer>,
    seen: HashSet<String>,
}

impl Layers {
    /// Adds `bytes` as a layer (unless small and `always` is false) and returns the lock's
    /// reference to it: the digest, plus the bytes inline when they are small.
    fn add(&mut self, bytes: Vec<u8>, media_type: &str, always: bool) -> ContentRef {
        let digest = sha256_digest(&bytes);
        let small = bytes.len() <= INLINE_MAX_SIZE;
        let inline = small.then(|| bytes.clone());
        if (always || !small) && self.seen.insert(digest.clone()) {
            self.list
                .push(ImageLayer::new(bytes, media_type.to_owned(), None));
        }
        ContentRef {
            source: None,
            inline,
            digest: Some(digest),
        }
    }
}

/// Every regular file under a mount, as (guest path relative to `/`, host path), sorted.
fn collect_files(mount: &ContentPath, out: &mut Vec<(PathBuf, PathBuf)>) -> anyhow::Result<()> {
    let Some(host) = mount.content.file_path() else {
        bail!("{:?} is not a local file", mount.content.source);
    };
    let guest_root: PathBuf = mount.path.strip_prefix("/").unwrap_or(&mount.path).into();
    if host.is_file() {
        out.push((guest_root, host));
        return Ok(());
    }
    let mut found = Vec::new();
    walk(&host, &mut found)?;
    found.sort();
    for path in found {
        let rel = path.strip_prefix(&host).unwrap_or(&path);
        out.push((guest_root.join(rel), path));
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Pushes the artifact; returns the manifest digest the registry reports.
pub async fn push(artifact: Artifact, reference: &str, insecure: bool) -> anyhow::Result<String> {
    let reference = super::parse_reference(reference)?;
    let auth = super::auth(&reference);
    let client = super::client(insecure);
    let pushing = |e| super::explain(e, &reference, &format!("pushing {reference}"));
    client
        .store_auth_if_needed(reference.resolve_registry(), &auth)
        .await;
    // Layer by layer (what `Client::push` does inside), to show each one as it goes and
    // to skip those the registry already has.
    let total = artifact.layers.iter().map(|l| l.data.len() as u64).sum();
    let progress = Progress::new("pushed", artifact.layers.len(), total);
    for (layer, descriptor) in artifact.layers.iter().zip(&artifact.manifest.layers) {
        let kind = progress::kind(&layer.media_type);
        let size = layer.data.len() as u64;
        let reused = client
            .blob_exists(&reference, &descriptor.digest)
            .await
            .unwrap_or(false);
        if !reused {
            client
                .push_blob(&reference, layer.data.clone(), &descriptor.digest)
                .await
                .map_err(pushing)?;
            progress.advance(size);
        }
        progress.layer_done(kind, &descriptor.digest, size, reused);
    }
    client
        .push_blob(
            &reference,
            artifact.config.data,
            &artifact.manifest.config.digest,
        )
        .await
        .map_err(pushing)?;
    client
        .push_manifest(&reference, &artifact.manifest.into())
        .await
        .map_err(pushing)?;
    progress.finish();
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .map_err(|e| super::explain(e, &reference, &format!("reading back {reference}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locked::{self, tests::write_app};
    use crate::registry::cache::Cache;
    use crate::registry::pull::materialize;

    fn assembled(dir: &Path) -> Artifact {
        let loaded = write_app(dir);
        let local = locked::from_manifest(&loaded, &dir.join("staging")).unwrap();
        assemble(&local).unwrap()
    }

    #[test]
    fn layers_follow_spins_layout_and_are_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let a = assembled(dir.path());
        let types: Vec<&str> = a.layers.iter().map(|l| l.media_type.as_str()).collect();
        // Both components share one wasm; index.html and notes/a.txt share one data
        // blob; site.css (6 bytes) is inlined only.
        assert_eq!(
            types,
            [
                WASM_LAYER_MEDIA_TYPE,
                DATA_MEDIA_TYPE,
                SPIN_APPLICATION_MEDIA_TYPE
            ]
        );
        let lock: serde_json::Value = serde_json::from_slice(&a.layers[2].data).unwrap();
        assert_eq!(
            a.manifest.layers[2].digest,
            sha256_digest(&a.layers[2].data)
        );
        assert!(lock["metadata"].get("origin").is_none());
        let wasm = &lock["components"][0]["source"];
        assert_eq!(wasm["content_type"], "application/wasm");
        assert_eq!(wasm["digest"], a.manifest.layers[0].digest.as_str());
        assert_eq!(
            wasm["inline"], "AGFzbQEAAABhcGk=",
            "small wasm is inlined too"
        );
        assert!(wasm.get("source").is_none());
        let files = lock["components"][1]["files"].as_array().unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["www/css/site.css", "www/index.html", "notes/a.txt"]);
        assert_eq!(files[0]["inline"], "Ym9keXt9");
        assert!(files[1].get("inline").is_none());
        assert_eq!(files[1]["digest"], a.manifest.layers[1].digest.as_str());

        let config: serde_json::Value = serde_json::from_slice(&a.config.data).unwrap();
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "Wasip1");
        assert_eq!(
            config["config"]["Labels"][LOCKED_APP_DIGEST_LABEL],
            a.manifest.layers[2].digest.as_str()
        );
        let annotations = a.manifest.annotations.clone().unwrap();
        assert_eq!(annotations["org.opencontainers.image.title"], "shop");
        assert_eq!(annotations["org.opencontainers.image.version"], "1.2.3");

        let again = assembled(dir.path());
        assert_eq!(
            serde_json::to_string(&a.manifest).unwrap(),
            serde_json::to_string(&again.manifest).unwrap()
        );
    }

    #[test]
    fn a_pulled_lock_materialises_to_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = assembled(dir.path());
        let cache = Cache::new(dir.path().join("cache"));
        for layer in &a.layers {
            cache
                .write_blob(&layer.sha256_digest(), &layer.data, "layer")
                .unwrap();
        }
        let staging = dir.path().join("files");
        let local = materialize(&a.locked, &cache, &staging).unwrap();
        let source = local.components[0].source.content.file_path().unwrap();
        assert!(source.starts_with(cache.root()));
        assert_eq!(local.components[1].files.len(), 1);
        assert_eq!(
            std::fs::read(staging.join("web/www/css/site.css")).unwrap(),
            b"body{}"
        );
        assert_eq!(
            std::fs::read(staging.join("web/notes/a.txt"))
                .unwrap()
                .len(),
            300
        );

        let mut evil = a.locked.clone();
        evil.components[1].files[0].path = "../../etc/passwd".into();
        let err = materialize(&evil, &cache, &staging).unwrap_err();
        assert!(format!("{err:#}").contains("leaves its mount"), "{err:#}");

        let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let err = cache.write_blob(bad, b"data", "layer").unwrap_err();
        assert!(format!("{err:#}").contains("digest mismatch"), "{err:#}");
    }
}
