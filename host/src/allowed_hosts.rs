//! `allowed_outbound_hosts`: which network destinations a component may reach.
//!
//! Entries look like Spin's: `scheme://host[:port]` where scheme may be `*`, host may be
//! `*` or `*.example.com`, port may be a number, `*` or a range `8000..8080`; without a
//! port the scheme's well-known port is used. Anything not listed is denied.

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
    SubdomainOf(String),
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

/// The parsed list for one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<AllowedHost>);

pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "redis" => 6379,
        "rediss" => 6380,
        "mysql" => 3306,
        "postgres" => 5432,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHost {
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = entry
            .split_once("://")
            .with_context(|| format!("{entry:?} needs a scheme, e.g. \"https://{entry}\""))?;
        if rest.contains('/') && !rest.ends_with('/') {
            bail!("{entry:?} must not contain a path");
        }
        let rest = rest.trim_end_matches('/');
        let scheme_pattern = match scheme {
            "*" => SchemePattern::Any,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
                SchemePattern::Is(s.to_ascii_lowercase())
            }
            _ => bail!("{entry:?} has an invalid scheme {scheme:?}"),
        };
        let (host, port) = split_host_port(rest);
        let host = match host {
            "" => bail!("{entry:?} has no host"),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::SubdomainOf(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                bail!("{entry:?}: '*' is allowed only as the whole host or a leading '*.'")
            }
            h => HostPattern::Is(h.to_ascii_lowercase()),
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((lo, hi)) => {
                    let lo = parse_port(entry, lo)?;
                    let hi = parse_port(entry, hi)?;
                    if lo >= hi {
                        bail!("{entry:?}: empty port range");
                    }
                    PortPattern::Range(lo, hi - 1)
                }
                None => {
                    let p = parse_port(entry, p)?;
                    PortPattern::Range(p, p)
                }
            },
            None => match default_port(scheme) {
                Some(p) => PortPattern::Range(p, p),
                None => bail!("{entry:?} needs a port: scheme {scheme:?} has no default port"),
            },
        };
        Ok(AllowedHost {
            scheme: scheme_pattern,
            host,
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Is(s) => s.eq_ignore_ascii_case(scheme),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::SubdomainOf(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Is(h) => h.trim_start_matches('[').trim_end_matches(']') == host,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

fn split_host_port(rest: &str) -> (&str, Option<&str>) {
    // IPv6 literal: [::1]:8080
    if let Some(end) = rest.find(']') {
        let host = &rest[..=end];
        let port = rest[end + 1..].strip_prefix(':');
        return (host, port);
    }
    match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    }
}

fn parse_port(entry: &str, p: &str) -> anyhow::Result<u16> {
    p.parse()
        .with_context(|| format!("{entry:?} has an invalid port {p:?}"))
}

impl AllowedHosts {
    pub fn new(entries: Vec<AllowedHost>) -> Self {
        AllowedHosts(entries)
    }

    /// Whether `scheme://host:port` may be reached (port already defaulted by the caller).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.0.iter().any(|a| a.allows(scheme, host, port))
    }

    /// Checks a URL such as `redis://127.0.0.1:6379/0` or `https://api.stripe.com/v1`.
    pub fn allows_url(&self, url: &str) -> bool {
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        let Some(host) = parsed.host_str() else {
            return false;
        };
        let Some(port) = parsed.port().or_else(|| default_port(parsed.scheme())) else {
            return false;
        };
        self.allows(parsed.scheme(), host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::new(
            entries
                .iter()
                .map(|e| AllowedHost::parse(e).unwrap())
                .collect(),
        )
    }

    #[test]
    fn exact_host_uses_default_port() {
        let h = hosts(&["https://api.stripe.com"]);
        assert!(h.allows_url("https://api.stripe.com/v1/payment_intents"));
        assert!(!h.allows_url("http://api.stripe.com/"));
        assert!(!h.allows_url("https://api.stripe.com:8443/"));
        assert!(!h.allows_url("https://evil.com/"));
    }

    #[test]
    fn wildcards_and_ranges() {
        let h = hosts(&["*://127.0.0.1:*", "http://*.example.com:8000..8002"]);
        assert!(h.allows_url("redis://127.0.0.1:7000"));
        assert!(h.allows_url("http://a.example.com:8001/"));
        assert!(!h.allows_url("http://a.example.com:8002/"));
        assert!(!h.allows_url("http://example.com:8000/"));
    }

    #[test]
    fn malformed_entries_are_explained() {
        assert!(
            AllowedHost::parse("api.stripe.com")
                .unwrap_err()
                .to_string()
                .contains("scheme")
        );
        assert!(
            AllowedHost::parse("foo://x")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
        assert!(AllowedHost::parse("http://x:99999").is_err());
        assert!(
            AllowedHost::parse("http://x/path")
                .unwrap_err()
                .to_string()
                .contains("path")
        );
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!AllowedHosts::default().allows_url("http://127.0.0.1/"));
    }
}
