//! Compiled code cached on disk by the wasm's content hash: compiling a large component
//! takes seconds (a Python one tens of seconds), loading cached code milliseconds. So a
//! restart, a second replica, or `tessera watch` reloading an unchanged `.wasm` is cheap.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::manifest::ComponentId;

/// Loads `source`, reusing compiled code from `cache_dir` when the wasm is unchanged.
pub fn compile(
    engine: &Engine,
    id: &ComponentId,
    source: &Path,
    cache_dir: &Path,
) -> anyhow::Result<Component> {
    let bytes = std::fs::read(source).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: cannot read {}: {e} (run `tessera build` to build it)",
            source.display()
        )
    })?;
    let cached = cache_path(engine, &bytes, cache_dir);
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of an engine with the
        // same compatibility hash (part of the file name), and only Tessera writes there.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                tracing::debug!(component = %id, cache = %cached.display(), "loaded compiled component from cache");
                if let Some(metrics) = crate::metrics::get() {
                    metrics.compile_cache(true);
                }
                return Ok(component);
            }
            Err(e) => tracing::warn!(component = %id, "ignoring unusable compile cache entry: {e}"),
        }
    }
    if let Some(metrics) = crate::metrics::get() {
        metrics.compile_cache(false);
    }
    let started = std::time::Instant::now();
    let compiled = engine.precompile_component(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "component `{id}`: {} is not a valid component: {e}",
            source.display()
        )
    })?;
    tracing::info!(component = %id, elapsed_ms = started.elapsed().as_millis() as u64, "compiled");
    if let Err(e) = write_atomically(&cached, &compiled) {
        tracing::warn!(component = %id, "cannot write compile cache: {e:#}");
    }
    // SAFETY: `compiled` was just produced by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
        .map_err(|e| anyhow::anyhow!("component `{id}`: cannot load compiled code: {e}"))
}

fn cache_path(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> PathBuf {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = hex::encode(Sha256::digest(wasm));
    cache_dir.join(format!("{digest}-{:016x}.cwasm", engine_hash.finish()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
