use std::collections::HashMap;

use super::*;

struct Memory(HashMap<&'static str, &'static [u8]>);

impl Files for Memory {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.0.get(path).map(|b| b.to_vec())
    }
}

fn dist() -> Memory {
    Memory(HashMap::from([
        ("/index.html", b"<!doctype html>".as_slice()),
        ("/style.css", b"body{}".as_slice()),
        ("/pkg/client-0123456789abcdef.js", b"export{}".as_slice()),
        ("/pkg/client-0123456789abcdef_bg.wasm", b"\0asm".as_slice()),
        (
            "/pkg/client-0123456789abcdef_bg.wasm.gz",
            b"gzipped".as_slice(),
        ),
    ]))
}

fn get(path: &str) -> Reply {
    respond(
        &Incoming {
            method: "GET",
            path,
            if_none_match: None,
            accept_encoding: None,
        },
        &dist(),
    )
}

#[test]
fn serves_files_with_type_and_cache_policy() {
    let wasm = get("/pkg/client-0123456789abcdef_bg.wasm");
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.body, b"\0asm");
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("cache-control"), Some(cache::IMMUTABLE));
    let css = get("/style.css");
    assert_eq!(css.header("cache-control"), Some("no-cache"));
}

#[test]
fn pages_get_the_entry_document() {
    for path in ["/", "/tickets/abc", "/orders", "/auth/signin"] {
        let reply = get(path);
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, b"<!doctype html>");
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
}

#[test]
fn missing_assets_traversal_api_and_other_methods_are_json_404() {
    let cases = [
        ("GET", "/missing.js"),
        ("GET", "/../etc/passwd"),
        ("GET", "/api/nope"),
        ("POST", "/"),
        ("DELETE", "/style.css"),
    ];
    for (method, path) in cases {
        let reply = respond(
            &Incoming {
                method,
                path,
                if_none_match: None,
                accept_encoding: None,
            },
            &dist(),
        );
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.body, br#"{"errors":[{"message":"Not Found"}]}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[test]
fn head_has_headers_but_no_body() {
    let reply = respond(
        &Incoming {
            method: "HEAD",
            path: "/style.css",
            if_none_match: None,
            accept_encoding: None,
        },
        &dist(),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), get("/style.css").header("etag"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/css; charset=utf-8")
    );
}

#[test]
fn matching_etag_is_304() {
    let tag = get("/pkg/client-0123456789abcdef.js")
        .header("etag")
        .unwrap()
        .to_owned();
    let req = Incoming {
        method: "GET",
        path: "/pkg/client-0123456789abcdef.js",
        if_none_match: Some(&tag),
        accept_encoding: None,
    };
    let reply = respond(&req, &dist());
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some(tag.as_str()));
    let stale = Incoming {
        method: "GET",
        path: "/pkg/client-0123456789abcdef.js",
        if_none_match: Some("\"old\""),
        accept_encoding: None,
    };
    assert_eq!(respond(&stale, &dist()).status, 200);
}

fn get_accepting(path: &str, accept_encoding: &str) -> Reply {
    respond(
        &Incoming {
            method: "GET",
            path,
            if_none_match: None,
            accept_encoding: Some(accept_encoding),
        },
        &dist(),
    )
}

#[test]
fn gzip_copy_is_sent_to_clients_that_accept_it() {
    let wasm = "/pkg/client-0123456789abcdef_bg.wasm";
    let zipped = get_accepting(wasm, "gzip, deflate, br");
    assert_eq!(zipped.body, b"gzipped");
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("content-type"), Some("application/wasm"));
    assert_eq!(zipped.header("vary"), Some("accept-encoding"));
    let plain = get_accepting(wasm, "br");
    assert_eq!(plain.body, b"\0asm");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    // One ETag per encoding: a cache never serves one encoding for the other.
    assert_ne!(zipped.header("etag"), plain.header("etag"));
}

#[test]
fn files_without_a_gzip_copy_are_sent_as_they_are() {
    let css = get_accepting("/style.css", "gzip");
    assert_eq!(css.body, b"body{}");
    assert_eq!(css.header("content-encoding"), None);
}
