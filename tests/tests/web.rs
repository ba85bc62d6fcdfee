//! The `web` component over real HTTP, serving the built client (`client/dist`) next to the
//! API routes: the entry page and SPA fallback, hashed assets cached forever, gzip copies,
//! ETag revalidation, HEAD, and JSON 404s that never fall through to the page.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};
use tessera_blackbox::marketplace::{Marketplace, body};

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The hashed wasm path that index.html loads (`/pkg/client-<hash>_bg.wasm`).
fn wasm_path(index: &str) -> String {
    let end = index.find("_bg.wasm").expect("index.html names the wasm") + "_bg.wasm".len();
    let start = index[..end].rfind("/pkg/").expect("under /pkg/");
    index[start..end].to_owned()
}

#[tokio::test]
async fn pages_get_the_entry_document_and_assets_are_cached_by_hash() {
    let market = Marketplace::start();
    let http = market.client();

    let index = http.get(market.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK, "{}", market.app.logs());
    assert_eq!(
        header(&index, CONTENT_TYPE).as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&index, CACHE_CONTROL).as_deref(), Some("no-cache"));
    let index = index.text().await.unwrap();
    assert!(index.contains("<!doctype html>"), "{index}");

    // Client-side routes reload into the same document.
    for page in [
        "/orders",
        "/tickets/new",
        "/orders/6b0f6a1e-0000-4000-8000-000000000000",
    ] {
        let resp = http.get(market.url(page)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        assert_eq!(resp.text().await.unwrap(), index, "{page}");
    }

    let wasm = wasm_path(&index);
    let plain = http.get(market.url(&wasm)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        header(&plain, CONTENT_TYPE).as_deref(),
        Some("application/wasm")
    );
    assert_eq!(
        header(&plain, CACHE_CONTROL).as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(header(&plain, CONTENT_ENCODING), None);
    let raw = plain.bytes().await.unwrap();
    assert_eq!(&raw[..4], b"\0asm");

    // A browser that takes gzip gets the precompressed copy: same bytes once inflated.
    let zipped = http
        .get(market.url(&wasm))
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&zipped, CONTENT_ENCODING).as_deref(), Some("gzip"));
    assert_eq!(
        header(&zipped, CONTENT_TYPE).as_deref(),
        Some("application/wasm")
    );
    let compressed = zipped.bytes().await.unwrap();
    assert!(
        compressed.len() * 2 < raw.len(),
        "{} vs {}",
        compressed.len(),
        raw.len()
    );
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, raw);
}

#[tokio::test]
async fn etag_revalidation_head_and_json_404s() {
    let market = Marketplace::start();
    let http = market.client();

    let first = http.get(market.url("/")).send().await.unwrap();
    let tag = header(&first, ETAG).expect("etag");
    let again = http
        .get(market.url("/"))
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    let head = http.head(market.url("/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, ETAG), Some(tag));
    assert!(head.bytes().await.unwrap().is_empty());

    // Missing assets, traversal, unknown API paths and other methods: the API's JSON 404,
    // never the page.
    market
        .assert_json_404s(
            &http,
            &[
                (reqwest::Method::GET, "/pkg/missing.wasm"),
                (reqwest::Method::GET, "/style.css.map"),
                (reqwest::Method::GET, "/pkg/..%2f..%2fspin.toml"),
                (reqwest::Method::GET, "/api/nothing-here"),
                (reqwest::Method::POST, "/"),
                (reqwest::Method::DELETE, "/orders"),
            ],
        )
        .await;
}

#[tokio::test]
async fn spins_health_check_is_answered_by_the_host_not_the_catch_all() {
    let market = Marketplace::start();
    let http = market.client();
    let health = http
        .get(market.url("/.well-known/spin/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "OK");
    let info = body(
        http.get(market.url("/.well-known/spin/info"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["host"], "tessera");
    let other = http
        .get(market.url("/.well-known/spin/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
