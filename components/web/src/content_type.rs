//! The `Content-Type` for a file, from its extension.

/// The media type for `path` (by its extension, case-insensitively); unknown types are
/// `application/octet-stream`, which browsers never execute or render.
pub fn for_path(path: &str) -> &'static str {
    let ext = extension(path).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The extension of the last path segment, if it has one (`.hidden` files have none).
pub fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(0) | None => None,
        Some(dot) => Some(&name[dot + 1..]).filter(|ext| !ext.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types() {
        assert_eq!(for_path("/pkg/client_bg.wasm"), "application/wasm");
        assert_eq!(for_path("/pkg/client.js"), "text/javascript; charset=utf-8");
        assert_eq!(for_path("/style.css"), "text/css; charset=utf-8");
        assert_eq!(for_path("/index.html"), "text/html; charset=utf-8");
        assert_eq!(for_path("/logo.svg"), "image/svg+xml");
        assert_eq!(for_path("/a.PNG"), "image/png");
        assert_eq!(for_path("/favicon.ico"), "image/x-icon");
        assert_eq!(for_path("/m.json"), "application/json");
        assert_eq!(for_path("/robots.txt"), "text/plain; charset=utf-8");
    }

    #[test]
    fn unknown_is_octet_stream() {
        assert_eq!(for_path("/x.exe"), "application/octet-stream");
        assert_eq!(for_path("/noext"), "application/octet-stream");
    }

    #[test]
    fn extension_only_looks_at_the_last_segment() {
        assert_eq!(extension("/v1.2/tickets"), None);
        assert_eq!(extension("/.well-known"), None);
        assert_eq!(extension("/a/b.tar.gz"), Some("gz"));
        assert_eq!(extension("/trailing."), None);
    }
}
