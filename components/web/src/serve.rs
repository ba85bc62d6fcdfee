//! The whole request → response decision, over any file source (so it is testable natively).

use crate::path::{Target, resolve};
use crate::{cache, content_type, encoding, etag};

/// Reads files from the mounted `client/dist` (or, in tests, from memory).
pub trait Files {
    /// The bytes of the regular file at the absolute path `path`, if there is one.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
}

/// A response, independent of the Spin SDK types.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for HEAD and 304).
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request facts the server looks at.
pub struct Incoming<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// The URL path (a query is ignored).
    pub path: &'a str,
    /// The `If-None-Match` header, if any.
    pub if_none_match: Option<&'a str>,
    /// The `Accept-Encoding` header, if any.
    pub accept_encoding: Option<&'a str>,
}

/// Serves `req` from `files`. GET and HEAD only; anything else is the API's JSON 404.
pub fn respond(req: &Incoming<'_>, files: &impl Files) -> Reply {
    let head = match req.method {
        "GET" => false,
        "HEAD" => true,
        _ => return not_found(),
    };
    let file = match resolve(req.path) {
        Target::Asset(path) => path,
        Target::Page => "/index.html".to_owned(),
        Target::Refused => return not_found(),
    };
    // The gzip copy when the client takes it; the ETag is of the bytes sent, so the two
    // encodings never share one.
    let gzipped = encoding::accepts_gzip(req.accept_encoding)
        .then(|| files.read(&format!("{file}{}", encoding::GZIP_SUFFIX)))
        .flatten();
    let (bytes, content_encoding) = match gzipped {
        Some(bytes) => (bytes, Some("gzip")),
        None => match files.read(&file) {
            Some(bytes) => (bytes, None),
            None => return not_found(),
        },
    };
    let tag = etag::of(&bytes);
    let mut headers = vec![
        ("content-type", content_type::for_path(&file).to_owned()),
        ("cache-control", cache::for_path(&file).to_owned()),
        ("etag", tag.clone()),
        ("vary", "accept-encoding".to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
    ];
    if let Some(coding) = content_encoding {
        headers.push(("content-encoding", coding.to_owned()));
    }
    if req
        .if_none_match
        .is_some_and(|inm| etag::matches(inm, &tag))
    {
        headers.retain(|(name, _)| *name != "content-type");
        return Reply {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    // No content-length for HEAD: a body-less response that declares one trips hosts that
    // check the declared length against the bytes written.
    let body = if head { Vec::new() } else { bytes };
    Reply {
        status: 200,
        headers,
        body,
    }
}

/// The marketplace's JSON 404 (missing assets, refused paths, other methods).
pub fn not_found() -> Reply {
    Reply {
        status: 404,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("cache-control", cache::REVALIDATE.to_owned()),
        ],
        body: br#"{"errors":[{"message":"Not Found"}]}"#.to_vec(),
    }
}

#[cfg(test)]
mod tests;
