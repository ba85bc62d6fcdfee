//! From a request path to what to serve: a file, the SPA entry page, or nothing.

/// What a request path asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A file under the mount, as a normalised absolute path (`/pkg/client.js`).
    Asset(String),
    /// A client-side page route (`/tickets/123`): serve `/index.html`.
    Page,
    /// Not ours: an API path, a traversal attempt, or an undecodable path.
    Refused,
}

/// Classifies `raw` (the URL path, possibly with a query and percent-escapes).
pub fn resolve(raw: &str) -> Target {
    let path = raw.split(['?', '#']).next().unwrap_or("");
    let Some(path) = percent_decode(path) else {
        return Target::Refused;
    };
    if !path.starts_with('/') || path.contains(['\\', '\0']) {
        return Target::Refused;
    }
    if path
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Target::Refused;
    }
    if path == "/api" || path.starts_with("/api/") {
        return Target::Refused;
    }
    if path == "/" {
        return Target::Asset("/index.html".into());
    }
    if path.ends_with('/') || crate::content_type::extension(&path).is_none() {
        return Target::Page;
    }
    // Collapse `//` so the file system sees one canonical name.
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    Target::Asset(format!("/{}", segments.join("/")))
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(path: &str) -> Target {
        Target::Asset(path.into())
    }

    #[test]
    fn root_and_files() {
        assert_eq!(resolve("/"), asset("/index.html"));
        assert_eq!(resolve("/pkg/client.js"), asset("/pkg/client.js"));
        assert_eq!(resolve("/style.css?v=2"), asset("/style.css"));
        assert_eq!(
            resolve("//pkg//client_bg.wasm"),
            asset("/pkg/client_bg.wasm")
        );
        assert_eq!(resolve("/my%20file.txt"), asset("/my file.txt"));
    }

    #[test]
    fn pages_fall_back_to_the_spa() {
        assert_eq!(resolve("/tickets/01HZX"), Target::Page);
        assert_eq!(resolve("/orders"), Target::Page);
        assert_eq!(resolve("/auth/signin/"), Target::Page);
        assert_eq!(resolve("/orders?x=1.2"), Target::Page);
    }

    #[test]
    fn traversal_and_api_are_refused() {
        assert_eq!(resolve("/../etc/passwd"), Target::Refused);
        assert_eq!(resolve("/pkg/../../secret.txt"), Target::Refused);
        assert_eq!(resolve("/%2e%2e/secret.txt"), Target::Refused);
        assert_eq!(resolve("/pkg/..%2fsecret.txt"), Target::Refused);
        assert_eq!(resolve("/a\\..\\b.txt"), Target::Refused);
        assert_eq!(resolve("/a%00.txt"), Target::Refused);
        assert_eq!(resolve("/%zz.txt"), Target::Refused);
        assert_eq!(resolve("/api/unknown"), Target::Refused);
        assert_eq!(resolve("/api"), Target::Refused);
    }
}
