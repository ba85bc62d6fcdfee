//! `Cache-Control` policy: content-addressed files forever, everything else revalidated.

/// For files whose URL changes whenever their bytes do.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For the entry page and unhashed files: always revalidate (cheap with the ETag).
pub const REVALIDATE: &str = "no-cache";

/// The `Cache-Control` value for the file at `path` (a normalised absolute path).
pub fn for_path(path: &str) -> &'static str {
    // Only a name that changes with the bytes may be cached forever: a stale copy of
    // anything else would outlive a deploy.
    if has_content_hash(path) {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

/// True when the file name has a part of at least 8 hex digits, containing a digit, set off
/// by `-` or `.` (`app-3f2a9c1b.js`, `main.0a1b2c3d4e.css`), as bundlers name hashed output.
pub fn has_content_hash(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.split(['-', '.', '_']).skip(1).any(|part| {
        part.len() >= 8
            && part.bytes().all(|b| b.is_ascii_hexdigit())
            && part.bytes().any(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_revalidated() {
        assert_eq!(for_path("/index.html"), REVALIDATE);
    }

    #[test]
    fn hashed_names_are_immutable() {
        // What client/build.sh writes.
        assert_eq!(for_path("/pkg/client-ba23961d7339d83b_bg.wasm"), IMMUTABLE);
        assert_eq!(for_path("/pkg/client-ba23961d7339d83b.js"), IMMUTABLE);
        assert_eq!(for_path("/style-2fa3690e9888654d.css"), IMMUTABLE);
        assert_eq!(for_path("/assets/app-3f2a9c1b.js"), IMMUTABLE);
        assert_eq!(for_path("/main.0a1b2c3d4e.css"), IMMUTABLE);
    }

    #[test]
    fn plain_names_are_revalidated() {
        assert_eq!(for_path("/style.css"), REVALIDATE);
        assert_eq!(for_path("/favicon.ico"), REVALIDATE);
        // Unhashed files under /pkg/ (wasm-bindgen's snippets) are revalidated too.
        assert_eq!(for_path("/pkg/client_bg.wasm"), REVALIDATE);
        assert_eq!(
            for_path("/pkg/snippets/client-cda1b8d006d10648/js/stripe-card.js"),
            REVALIDATE
        );
        // Words that happen to be hex, and short hashes, do not count.
        assert_eq!(for_path("/deadbeefcafe-feed.css"), REVALIDATE);
        assert_eq!(for_path("/app-abc123.js"), REVALIDATE);
        assert_eq!(for_path("/app-deadbeefcafe.js"), REVALIDATE);
    }
}
