//! Strong ETags from the file bytes, and `If-None-Match` matching.

/// A strong ETag for `bytes`: FNV-1a 64 plus the length, quoted. Deterministic across
/// builds and instances (every request gets a fresh instance, so nothing is cached).
pub fn of(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{hash:016x}-{:x}\"", bytes.len())
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, as RFC 9110
/// requires for this header; `*` matches any existing file).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = strip(etag);
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || strip(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_content_dependent() {
        assert_eq!(of(b"hello"), of(b"hello"));
        assert_ne!(of(b"hello"), of(b"hellp"));
        assert!(of(b"").starts_with('"') && of(b"").ends_with('"'));
    }

    #[test]
    fn if_none_match_forms() {
        let tag = of(b"x");
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"other\", {tag}"), &tag));
        assert!(matches(&format!("W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
    }
}
