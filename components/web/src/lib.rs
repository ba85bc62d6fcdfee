//! The `web` component: serves the Leptos client from its `files` mount (`client/dist`
//! mounted at `/`), with content types, cache policy, ETags and the SPA fallback.
//!
//! All decisions live in plain modules tested natively; this file only adapts Spin's types.
#![deny(missing_docs)]

pub mod cache;
pub mod content_type;
pub mod encoding;
pub mod etag;
pub mod path;
pub mod serve;

/// Reads from the component's file system, where the manifest mounts `client/dist` at `/`.
pub struct MountedFiles;

impl serve::Files for MountedFiles {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        // `serve` passes only normalised absolute paths (no `..`), so this stays in the mount;
        // reading a directory fails, which is "no such file".
        std::fs::read(path).ok()
    }
}

// Native builds (tests) skip the export: its WIT-style symbol names break the native
// cdylib link.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle_web(req: spin_sdk::http::Request) -> spin_sdk::http::Response {
    let method = req.method().to_string().to_ascii_uppercase();
    let incoming = serve::Incoming {
        method: &method,
        path: req.path(),
        if_none_match: req.header("if-none-match").and_then(|v| v.as_str()),
        accept_encoding: req.header("accept-encoding").and_then(|v| v.as_str()),
    };
    let reply = serve::respond(&incoming, &MountedFiles);
    let mut builder = spin_sdk::http::Response::builder();
    builder.status(reply.status);
    for (name, value) in reply.headers {
        builder.header(name, value);
    }
    builder.body(reply.body).build()
}
