//! OCI registries: Spin's application artifact (`spin registry push` / `spin up --from`).
//!
//! The artifact is an OCI image manifest whose config blob is an empty image config
//! (`architecture: wasm`, `os: Wasip1`, label `com.fermyon.spin.lockedAppDigest`) and whose
//! layers are one `…layer.v1+wasm` per distinct component wasm, one `…layer.v1+data` per
//! distinct static file (files of at most 128 bytes are inlined in the lock instead), and
//! last the locked app JSON (`application/vnd.fermyon.spin.application.v1+config`), whose
//! components and files refer to the layers by digest. See `push.rs` and `pull.rs`.

pub mod cache;
pub mod progress;
pub mod pull;
pub mod push;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

/// The locked app layer.
pub const SPIN_APPLICATION_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// A component's wasm.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A wasm pushed by `wkg`, which Spin also accepts as a component source.
pub const WASM_LAYER_MEDIA_TYPE_WKG: &str = "application/wasm";
/// One static file.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// All of a component's files as one archive (Spin writes these past 500 layers).
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// The config label naming the locked app layer's digest.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";
/// Content of at most this many bytes is inlined into the lock (Spin's default).
pub const INLINE_MAX_SIZE: usize = 128;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `registry/repository[:tag][@digest]`, naming the input when it is not one.
pub fn parse_reference(reference: &str) -> anyhow::Result<Reference> {
    reference.parse::<Reference>().map_err(|e| {
        anyhow::anyhow!(
            "invalid registry reference {reference:?}: {e} (expected e.g. localhost:5000/tessera:v1 or ghcr.io/org/app:1.0)"
        )
    })
}

/// A client speaking HTTPS, or plain HTTP with `insecure`.
pub fn client(insecure: bool) -> Client {
    // reqwest is built without a bundled crypto provider; ring is already in the tree.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(oci_client::client::ClientConfig {
        protocol: if insecure {
            oci_client::client::ClientProtocol::Http
        } else {
            oci_client::client::ClientProtocol::Https
        },
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..Default::default()
    })
}

/// Credentials from the Docker config (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`, plain `auths.<registry>.auth` entries), else anonymous.
pub fn auth(reference: &Reference) -> RegistryAuth {
    docker_credentials(reference.resolve_registry()).unwrap_or(RegistryAuth::Anonymous)
}

fn docker_credentials(registry: &str) -> Option<RegistryAuth> {
    use base64::Engine;
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        (host == registry).then_some(value)
    })?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    Some(RegistryAuth::Basic(user, password))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:` digest, refusing anything else (it becomes a file name).
pub fn digest_hex(digest: &str) -> anyhow::Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(hex),
        _ => bail!("unsupported digest {digest:?} (expected sha256:<64 hex digits>)"),
    }
}

/// Refuses `bytes` unless they hash to `digest`.
pub fn verify(digest: &str, bytes: &[u8], what: &str) -> anyhow::Result<()> {
    let actual = sha256_digest(bytes);
    if actual != digest {
        bail!(
            "digest mismatch: {what} {digest} has content hashing to {actual}; refusing the corrupted blob"
        );
    }
    Ok(())
}

/// Turns an oci-client failure into a message naming what failed.
pub fn explain(err: OciDistributionError, reference: &Reference, what: &str) -> anyhow::Error {
    let registry = reference.resolve_registry();
    match err {
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            anyhow::anyhow!(
                "digest mismatch: {what} {expected} from {registry} has content hashing to {actual}; refusing the corrupted blob"
            )
        }
        OciDistributionError::ImageManifestNotFoundError(_) => {
            anyhow::anyhow!("{reference} was not found on {registry} (no such repository or tag)")
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
                )
            }) =>
        {
            anyhow::anyhow!(
                "{reference} was not found on {registry} (no such repository or tag): {envelope}"
            )
        }
        OciDistributionError::RequestError(e) => anyhow::Error::new(e).context(format!(
            "cannot reach registry {registry} ({what}); is it running, and is --insecure needed for plain HTTP?"
        )),
        other => anyhow::Error::new(other).context(format!("{what}: registry {registry} failed")),
    }
}

/// Runs `f` on a fresh single-purpose runtime (registry commands are one-shot).
pub fn block_on<F: std::future::Future<Output = anyhow::Result<T>>, T>(f: F) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}
