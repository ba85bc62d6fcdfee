//! HTTP route matching with Spin's rules.
//!
//! A route is an exact path (`/api/health`), a path with `:name` segments
//! (`/api/tickets/:id`), or a prefix ending in `/...` (`/api/users/...`, `/...`).
//! When several match, the most specific wins: segment by segment from the left a
//! literal beats a `:param`, which beats the wildcard; a longer route beats its prefix.

use std::cmp::Ordering;

use anyhow::bail;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed route pattern.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route as written (`/api/users/...`).
    pub raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// A successful match: what Spin tells the component in its `spin-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `spin-path-info`: the part of the path after the route's fixed prefix.
    pub path_info: String,
    /// `spin-path-match-<name>` values.
    pub params: Vec<(String, String)>,
}

impl Route {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        if !raw.starts_with('/') {
            bail!("route {raw:?} must start with '/'");
        }
        let (body, wildcard) = match raw.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for seg in body.split('/').filter(|s| !s.is_empty()) {
            if seg == "..." || seg.contains("...") {
                bail!("route {raw:?}: '...' is allowed only as the last segment");
            }
            match seg.strip_prefix(':') {
                Some("") => bail!("route {raw:?}: ':' must be followed by a parameter name"),
                Some(name) => segments.push(Segment::Param(name.to_owned())),
                None => segments.push(Segment::Literal(seg.to_owned())),
            }
        }
        Ok(Route {
            raw: raw.to_owned(),
            segments,
            wildcard,
        })
    }

    /// `spin-component-route`: the route without its `/...` suffix.
    pub fn component_route(&self) -> &str {
        self.raw.strip_suffix("/...").unwrap_or(&self.raw)
    }

    /// Matches a request path (without query string).
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_owned())),
            }
        }
        let path_info = if self.wildcard {
            let rest = parts[self.segments.len()..].join("/");
            if rest.is_empty() && !path.ends_with('/') {
                String::new()
            } else {
                format!("/{rest}")
            }
        } else {
            String::new()
        };
        Some(RouteMatch { path_info, params })
    }

    /// Orders routes so that the more specific one compares as `Less`.
    fn specificity(&self, other: &Route) -> Ordering {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            let rank = |s: &Segment| match s {
                Segment::Literal(_) => 0,
                Segment::Param(_) => 1,
            };
            match rank(a).cmp(&rank(b)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        // Same shape so far: exact before wildcard, then the longer (more specific) first.
        self.wildcard
            .cmp(&other.wildcard)
            .then_with(|| other.segments.len().cmp(&self.segments.len()))
    }

    /// Two routes that match exactly the same paths.
    fn same_shape(&self, other: &Route) -> bool {
        self.wildcard == other.wildcard
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }
}

/// All routes of an app, most specific first, each with its target `T`.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<(Route, T)>,
}

impl<T> Router<T> {
    /// Builds the router; two routes that would match the same paths are an error.
    pub fn new(mut routes: Vec<(Route, T)>) -> anyhow::Result<Self> {
        for (i, (a, _)) in routes.iter().enumerate() {
            for (b, _) in &routes[i + 1..] {
                if a.same_shape(b) {
                    bail!(
                        "duplicate route: {:?} and {:?} match the same paths",
                        a.raw,
                        b.raw
                    );
                }
            }
        }
        routes.sort_by(|(a, _), (b, _)| a.specificity(b));
        Ok(Router { routes })
    }

    /// Every route with its target, most specific first.
    pub fn entries(&self) -> impl Iterator<Item = (&Route, &T)> {
        self.routes.iter().map(|(r, t)| (r, t))
    }

    pub fn route(&self, path: &str) -> Option<(&Route, &T, RouteMatch)> {
        self.routes
            .iter()
            .find_map(|(route, target)| route.matches(path).map(|m| (route, target, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router<String> {
        Router::new(
            routes
                .iter()
                .map(|r| (Route::parse(r).unwrap(), r.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn target(r: &Router<String>, path: &str) -> Option<String> {
        r.route(path).map(|(_, t, _)| t.clone())
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        let r = router(&[
            "/...",
            "/api/tickets/...",
            "/api/tickets/:id",
            "/api/tickets/new",
        ]);
        assert_eq!(
            target(&r, "/api/tickets/new").as_deref(),
            Some("/api/tickets/new")
        );
        assert_eq!(
            target(&r, "/api/tickets/abc").as_deref(),
            Some("/api/tickets/:id")
        );
        assert_eq!(
            target(&r, "/api/tickets/abc/x").as_deref(),
            Some("/api/tickets/...")
        );
        assert_eq!(
            target(&r, "/api/tickets").as_deref(),
            Some("/api/tickets/...")
        );
        assert_eq!(target(&r, "/index.html").as_deref(), Some("/..."));
    }

    #[test]
    fn longer_prefix_wins() {
        let r = router(&["/api/...", "/api/users/..."]);
        assert_eq!(
            target(&r, "/api/users/signin").as_deref(),
            Some("/api/users/...")
        );
        assert_eq!(target(&r, "/api/orders").as_deref(), Some("/api/..."));
    }

    #[test]
    fn exact_route_does_not_match_longer_paths() {
        let r = router(&["/hello"]);
        assert!(target(&r, "/hello/x").is_none());
        assert!(target(&r, "/").is_none());
    }

    #[test]
    fn path_info_and_params() {
        let route = Route::parse("/api/users/...").unwrap();
        assert_eq!(
            route.matches("/api/users/signup").unwrap().path_info,
            "/signup"
        );
        assert_eq!(route.matches("/api/users").unwrap().path_info, "");
        assert_eq!(route.component_route(), "/api/users");
        let route = Route::parse("/t/:id").unwrap();
        let m = route.matches("/t/42").unwrap();
        assert_eq!(m.params, vec![("id".to_string(), "42".to_string())]);
    }

    #[test]
    fn duplicates_and_malformed_routes_are_rejected() {
        let dup = Router::new(vec![
            (Route::parse("/a/:x").unwrap(), ()),
            (Route::parse("/a/:y").unwrap(), ()),
        ]);
        assert!(dup.unwrap_err().to_string().contains("duplicate route"));
        assert!(Route::parse("api").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        assert!(Route::parse("/a/:").is_err());
    }
}
