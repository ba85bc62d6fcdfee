//! The local registry cache: blobs by digest, and what each reference last resolved to.
//!
//! ```text
//! <root>/blobs/sha256/<hex>                              every blob (wasm, data, lock, config)
//! <root>/manifests/<registry>/<repository>/<tag>/manifest.json
//! <root>/manifests/<registry>/<repository>/<tag>/digest  the manifest's digest
//! ```
//! A blob is written only after its content matched its digest, and re-checked before it
//! is first reused by a process, so a damaged cache file is fetched again rather than run.
//! Within one process each blob is hashed once: `up --from` looks every blob up twice
//! (pulling, then laying out the app), and the wasm is the bulk of the bytes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use oci_client::Reference;

use super::{digest_hex, sha256_digest};

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Digests whose cached file this process has written or checked.
    verified: Arc<Mutex<HashSet<String>>>,
}

impl Cache {
    pub fn new(root: PathBuf) -> Self {
        Cache {
            root,
            verified: Arc::default(),
        }
    }

    fn is_verified(&self, digest: &str) -> bool {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.contains(digest)
    }

    fn mark_verified(&self, digest: &str) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.insert(digest.to_owned());
    }

    /// `$XDG_CACHE_HOME/tessera/registry`, else `~/.cache/tessera/registry`.
    pub fn default_root() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        base.join("tessera").join("registry")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .root
            .join("blobs")
            .join("sha256")
            .join(digest_hex(digest)?))
    }

    /// The cached blob, if present and intact.
    pub fn verified_blob(&self, digest: &str) -> anyhow::Result<Option<PathBuf>> {
        let path = self.blob_path(digest)?;
        if self.is_verified(digest) && path.is_file() {
            return Ok(Some(path));
        }
        match std::fs::read(&path) {
            Ok(bytes) if sha256_digest(&bytes) == digest => {
                self.mark_verified(digest);
                Ok(Some(path))
            }
            _ => Ok(None),
        }
    }

    /// Stores `bytes` under `digest` once they match it (atomically: write, then rename);
    /// `what` names them in the mismatch error.
    pub fn write_blob(&self, digest: &str, bytes: &[u8], what: &str) -> anyhow::Result<PathBuf> {
        super::verify(digest, bytes, what)?;
        let path = self.blob_path(digest)?;
        write_atomic(&path, bytes)?;
        self.mark_verified(digest);
        Ok(path)
    }

    pub fn read_blob(&self, digest: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        std::fs::read(&path).with_context(|| format!("cannot read cached blob {digest}"))
    }

    fn reference_dir(&self, reference: &Reference) -> PathBuf {
        let tag = reference
            .tag()
            .map(str::to_owned)
            .or_else(|| reference.digest().map(|d| d.replace(':', "-")))
            .unwrap_or_else(|| "latest".into());
        self.root
            .join("manifests")
            .join(reference.resolve_registry().replace(':', "_"))
            .join(reference.repository())
            .join(tag)
    }

    /// Records the manifest a reference resolved to.
    pub fn write_manifest(
        &self,
        reference: &Reference,
        manifest_json: &[u8],
        digest: &str,
    ) -> anyhow::Result<()> {
        let dir = self.reference_dir(reference);
        write_atomic(&dir.join("manifest.json"), manifest_json)?;
        write_atomic(&dir.join("digest"), digest.as_bytes())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create cache directory {}", parent.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
