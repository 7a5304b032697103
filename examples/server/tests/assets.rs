//! The pages' assets: compressed, and cached for good at a URL that changes with their content.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use common::Server;

#[tokio::test]
async fn assets_are_versioned_kept_for_good_and_compressed() {
    let server = Server::start().await;
    for page in ["/", "/room"] {
        let reply = server.send_with("GET", page, &[], Body::empty()).await;
        assert_eq!(
            reply.header("cache-control"),
            "no-cache",
            "{page}: a page is revalidated"
        );
        let html = String::from_utf8(reply.body).unwrap();
        for asset in ["/assets/app.css", "/assets/common.js", "/assets/pdf-viewer.js"] {
            let start = html
                .find(&format!("\"{asset}?v="))
                .unwrap_or_else(|| panic!("{page}: no versioned {asset}"));
            let url = &html[start + 1..][..html[start + 1..].find('"').unwrap()];
            let kept = server
                .send_with("GET", url, &[("accept-encoding", "gzip")], Body::empty())
                .await;
            assert_eq!(kept.status, 200, "{url}");
            assert_eq!(
                kept.header("cache-control"),
                "public, max-age=31536000, immutable",
                "{url}"
            );
            assert_eq!(kept.header("content-encoding"), "gzip", "{url}");
            // Another version (an old page's) or none: served, but never kept without asking.
            for stale in [format!("{asset}?v=000000000000"), asset.to_owned()] {
                let reply = server.send_with("GET", &stale, &[], Body::empty()).await;
                assert_eq!(reply.status, 200, "{stale}");
                assert_eq!(reply.header("cache-control"), "no-cache", "{stale}");
            }
        }
    }
    let worker = "/assets/vendor/pdfjs/pdf.worker.min.mjs";
    let reply = server
        .send_with("GET", worker, &[("accept-encoding", "br")], Body::empty())
        .await;
    assert_eq!(reply.status, 200, "{worker}");
    assert_eq!(reply.header("content-encoding"), "br");
    assert_eq!(reply.header("cache-control"), "no-cache");
}
