//! `tessera registry pull` and `tessera up --from`: fetch a Spin artifact into the cache,
//! then turn its lock into a local one (sources and files as `file://`) for `App`.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use oci_client::manifest::{OciDescriptor, OciImageManifest};

use super::cache::Cache;
use super::progress::{self, Progress};
use super::{
    ARCHIVE_MEDIA_TYPE, DATA_MEDIA_TYPE, SPIN_APPLICATION_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE_WKG,
};
use crate::locked::{ContentPath, ContentRef, LockedApp};

/// A pulled application: its lock refers to blobs in the cache by digest.
#[derive(Debug)]
pub struct Pulled {
    /// The reference as given, for messages.
    pub reference: String,
    /// The manifest's digest.
    pub digest: String,
    pub locked: LockedApp,
}

/// Fetches the manifest and every blob not already cached, verifying each one.
pub async fn pull(reference_text: &str, insecure: bool, cache: &Cache) -> anyhow::Result<Pulled> {
    let reference = super::parse_reference(reference_text)?;
    let auth = super::auth(&reference);
    let client = super::client(insecure);
    let (manifest, digest) = client
        .pull_image_manifest(&reference, &auth)
        .await
        .map_err(|e| super::explain(e, &reference, &format!("fetching manifest {reference}")))?;
    let lock_descriptor = spin_lock_descriptor(&manifest)
        .with_context(|| format!("{reference_text} is not a Spin application"))?;

    // The lock first (it is usually also the last layer; it is fetched once).
    let blobs: Vec<&OciDescriptor> = std::iter::once(lock_descriptor)
        .chain(
            manifest
                .layers
                .iter()
                .filter(|l| l.digest != lock_descriptor.digest),
        )
        .collect();
    let total = blobs
        .iter()
        .map(|b| u64::try_from(b.size).unwrap_or(0))
        .sum();
    let progress = Progress::new("pulled", blobs.len(), total);
    for descriptor in blobs {
        let size = u64::try_from(descriptor.size).unwrap_or(0);
        let kind = progress::kind(&descriptor.media_type);
        if cache.verified_blob(&descriptor.digest)?.is_some() {
            progress.layer_done(kind, &descriptor.digest, size, true);
            continue;
        }
        let what = format!("{} layer", descriptor.media_type);
        let mut bytes = Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0));
        client
            .pull_blob(&reference, descriptor, Counted::new(&mut bytes, &progress))
            .await
            .map_err(|e| super::explain(e, &reference, &what))?;
        cache.write_blob(&descriptor.digest, &bytes, &what)?;
        progress.layer_done(kind, &descriptor.digest, size, false);
    }
    progress.finish();

    let lock_bytes = cache.read_blob(&lock_descriptor.digest)?;
    let locked = LockedApp::from_json(&lock_bytes).with_context(|| {
        format!(
            "{reference_text}: layer {} is not a valid Spin locked app",
            lock_descriptor.digest
        )
    })?;
    check_references(&locked, &manifest)
        .with_context(|| format!("{reference_text}: the locked app does not match its layers"))?;
    let manifest_json = serde_json::to_vec(&manifest).context("cannot serialise the manifest")?;
    cache.write_manifest(&reference, &manifest_json, &digest)?;
    Ok(Pulled {
        reference: reference_text.to_owned(),
        digest,
        locked,
    })
}

/// A blob being downloaded into memory, reporting each chunk to the progress display.
struct Counted<'a> {
    into: &'a mut Vec<u8>,
    progress: &'a Progress,
}

impl<'a> Counted<'a> {
    fn new(into: &'a mut Vec<u8>, progress: &'a Progress) -> Self {
        Counted { into, progress }
    }
}

impl tokio::io::AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.into.extend_from_slice(buf);
        self.progress.advance(buf.len() as u64);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The locked app's descriptor: a layer of Spin's application media type (or, for apps
/// pushed by early Spin versions, the config).
fn spin_lock_descriptor(manifest: &OciImageManifest) -> anyhow::Result<&OciDescriptor> {
    if let Some(archive) = manifest
        .layers
        .iter()
        .find(|l| l.media_type == ARCHIVE_MEDIA_TYPE)
    {
        bail!(
            "layer {} is a file archive ({ARCHIVE_MEDIA_TYPE}), which Tessera does not unpack",
            archive.digest
        );
    }
    let mut locks = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SPIN_APPLICATION_MEDIA_TYPE);
    match (locks.next(), locks.next()) {
        (Some(lock), None) => Ok(lock),
        (Some(_), Some(_)) => bail!("it has more than one {SPIN_APPLICATION_MEDIA_TYPE} layer"),
        (None, _) if manifest.config.media_type == SPIN_APPLICATION_MEDIA_TYPE => {
            Ok(&manifest.config)
        }
        (None, _) => {
            let found: Vec<&str> = manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect();
            bail!(
                "no layer has media type {SPIN_APPLICATION_MEDIA_TYPE} (config {}, layers: {})",
                manifest.config.media_type,
                if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                }
            )
        }
    }
}

/// Every digest the lock needs is inline or a layer of the right kind.
fn check_references(locked: &LockedApp, manifest: &OciImageManifest) -> anyhow::Result<()> {
    let layer = |digest: &str, kinds: &[&str]| {
        manifest
            .layers
            .iter()
            .any(|l| l.digest == digest && kinds.contains(&l.media_type.as_str()))
    };
    for c in &locked.components {
        let content = &c.source.content;
        match (&content.inline, &content.digest) {
            (Some(_), _) => {}
            (None, Some(d)) if layer(d, &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE_WKG]) => {}
            (None, d) => bail!(
                "component `{}`: its wasm ({d:?}) is not a {WASM_LAYER_MEDIA_TYPE} layer",
                c.id
            ),
        }
        for f in &c.files {
            match (&f.content.inline, &f.content.digest) {
                (Some(_), _) => {}
                (None, Some(d)) if layer(d, &[DATA_MEDIA_TYPE]) => {}
                (None, d) => bail!(
                    "component `{}`: file {} ({d:?}) is not a {DATA_MEDIA_TYPE} layer",
                    c.id,
                    f.path.display()
                ),
            }
        }
    }
    Ok(())
}

/// Makes a pulled lock runnable: each component's source becomes its cached wasm, and
/// its files are written under `staging/<component>` and mounted at `/`.
pub fn materialize(locked: &LockedApp, cache: &Cache, staging: &Path) -> anyhow::Result<LockedApp> {
    let mut local = locked.clone();
    for c in &mut local.components {
        let wasm = cached(cache, &c.source.content)
            .with_context(|| format!("component `{}`: source", c.id))?;
        c.source.content = ContentRef {
            digest: c.source.content.digest.clone(),
            ..ContentRef::file(&wasm)?
        };
        if c.files.is_empty() {
            continue;
        }
        let dir = staging.join(&c.id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for f in &c.files {
            let rel = safe_relative(&f.path).with_context(|| format!("component `{}`", c.id))?;
            let dest = dir.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let written = match &f.content.inline {
                Some(bytes) => std::fs::write(&dest, bytes),
                None => cached(cache, &f.content)
                    .with_context(|| format!("component `{}`, file {}", c.id, f.path.display()))
                    .and_then(|src| Ok(std::fs::copy(src, &dest).map(|_| ())?))
                    .map_err(std::io::Error::other),
            };
            written.with_context(|| format!("cannot write {}", dest.display()))?;
        }
        c.files = vec![ContentPath {
            content: ContentRef::file(&dir)?,
            path: "/".into(),
        }];
    }
    Ok(local)
}

/// The cached blob for a content reference (inline content is cached on first use).
fn cached(cache: &Cache, content: &ContentRef) -> anyhow::Result<PathBuf> {
    let digest = match (&content.digest, &content.inline) {
        (Some(d), _) => d.clone(),
        (None, Some(bytes)) => super::sha256_digest(bytes),
        (None, None) => bail!("the lock gives neither a digest nor inline content"),
    };
    if let Some(path) = cache.verified_blob(&digest)? {
        return Ok(path);
    }
    match &content.inline {
        Some(bytes) => cache.write_blob(&digest, bytes, "inline content"),
        None => bail!("blob {digest} is missing from the cache; pull the app again"),
    }
}

/// A lock's file path as a relative path that stays inside the mount.
fn safe_relative(path: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            _ => bail!("file path {} leaves its mount", path.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("file path {:?} names no file", path.display());
    }
    Ok(out)
}
