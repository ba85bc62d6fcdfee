//! Content negotiation for the precompressed copies `client/build.sh` writes next to the
//! big assets (`client-<hash>_bg.wasm.gz`): the wasm is about a quarter of its size gzipped.

/// The suffix of a file's gzip-compressed copy.
pub const GZIP_SUFFIX: &str = ".gz";

/// True when an `Accept-Encoding` header value accepts gzip (`gzip` or `*`, unless given
/// `q=0`).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|param| {
            let param = param.trim();
            param
                .strip_prefix("q=")
                .or_else(|| param.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_accept_gzip() {
        assert!(accepts_gzip(Some("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(Some("*")));
    }

    #[test]
    fn absent_or_refused_gzip_is_not_accepted() {
        assert!(!accepts_gzip(None));
        assert!(!accepts_gzip(Some("")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("br, deflate")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("gzip; q=0.0, br")));
        assert!(!accepts_gzip(Some("gzipped")));
    }
}
