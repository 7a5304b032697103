//! Thumbnails over real HTTP, from the real `collab-server` binary on loopback (SQLite and local
//! files in a temp dir): an image's view names its thumbnail, which is a small JPEG cached for
//! good; the original stays whole; a decompression bomb gets none; outsiders get nothing.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use collab_core::testing::files::{deflated_zeros, pdf_with_pages, png, png_chunk};
use common::Reply;
use common::http::Http;
use common::process::ServerProcess;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::{Value, json};

/// A photo-like RGB image: gradients under noise, so that it does not compress to nothing
/// (a 4000 × 3000 one is a JPEG of several MB).
fn photo(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let image = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 64) as u32;
        image::Rgb([
            ((x * 200 / width + noise) % 256) as u8,
            ((y * 200 / height + noise) % 256) as u8,
            ((x / 16 + y / 16 + noise) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    DynamicImage::ImageRgb8(image).write_with_encoder(encoder).unwrap();
    out.into_inner()
}

/// A real decompression bomb: an RGB PNG of `width` × `height` black pixels whose pixel data
/// inflates to `height × (1 + 3 × width)` bytes.
fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = png(width, height)[..33].to_vec();
    let raw = height as usize * (1 + 3 * width as usize);
    let mut zlib = vec![0x78, 0x01];
    zlib.extend_from_slice(&deflated_zeros(raw));
    // Adler-32 of zeros: a stays 1, b adds 1 per byte.
    let b = u32::try_from(raw % 65_521).unwrap();
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// The development agent's cookie.
async fn agent(http: &Http) -> String {
    http.sign_in("agent@example.com", "dev").await
}

/// A new room with a customer who joined by link: the room and the customer's cookie.
async fn room_with_customer(http: &Http, agent: &str, first: &str) -> (String, String) {
    let room = http.call("POST", "/api/rooms", Some(agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = json!({ "channel": "email", "first_name": first, "last_name": "Doe",
        "identifier": format!("{}@example.com", first.to_lowercase()) });
    let invites = format!("/api/rooms/{room}/invites");
    let reply = http.call("POST", &invites, Some(agent), Some(email)).await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
    // A link comes once the first invite has gone out (to the Dev inbox).
    let started = Instant::now();
    let link = loop {
        let reply = http
            .call("POST", &invites, Some(agent), Some(json!({ "channel": "link" })))
            .await;
        if let Some(link) = reply.json()["link"].as_str() {
            break link.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no link: {}", reply.json());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let token = link.rsplit('/').next().unwrap();
    let joined = http
        .call("POST", "/api/join", None, Some(json!({ "token": token })))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{:?}", joined.json());
    (room, joined.cookie_named("collab_customer").unwrap())
}

async fn upload(http: &Http, cookie: &str, room: &str, name: &str, bytes: Vec<u8>) -> Value {
    let path = format!("/api/rooms/{room}/documents?name={name}");
    let headers = [("cookie", cookie), ("content-type", "application/octet-stream")];
    let reply = http.send("POST", &path, &headers, bytes).await.unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{name}: {:?}", reply.json());
    reply.json()["document"].clone()
}

async fn get(http: &Http, path: &str, cookie: &str) -> Reply {
    http.send("GET", path, &[("cookie", cookie)], Vec::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_is_shown_from_a_small_thumbnail_and_opened_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path().join("data"));
    });
    let http = server.http();
    let agent = agent(&http).await;
    let (room, customer) = room_with_customer(&http, &agent, "Grace").await;
    let (_, outsider) = room_with_customer(&http, &agent, "Mallory").await;

    let original = photo(4_000, 3_000);
    assert!(
        original.len() > 1_000_000,
        "a photo-like file: {} bytes",
        original.len()
    );
    let doc = upload(&http, &customer, &room, "photo.jpg", original.clone()).await;
    let url = doc["url"].as_str().unwrap();
    let thumbnail_url = doc["thumbnail_url"].as_str().unwrap();
    assert_eq!(thumbnail_url, format!("{url}/thumbnail"));
    // The timeline names it too.
    let events = get(&http, &format!("/api/rooms/{room}/events"), &agent).await.json();
    let shared = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "document_shared")
        .unwrap();
    assert_eq!(shared["document"]["thumbnail_url"], thumbnail_url);

    // The agent's console asks first: the thumbnail is made.
    let thumb = get(&http, thumbnail_url, &agent).await;
    assert_eq!(thumb.status, StatusCode::OK, "{:?}", thumb.json());
    assert_eq!(thumb.header("content-type"), "image/jpeg");
    assert!(thumb.body.len() < 64 * 1024, "{} bytes", thumb.body.len());
    let image = image::load_from_memory_with_format(&thumb.body, ImageFormat::Jpeg).unwrap();
    assert!(image.width().max(image.height()) <= 320);
    assert_eq!((image.width(), image.height()), (320, 240));
    let cache = thumb.header("cache-control");
    assert!(
        cache.contains("private") && cache.contains("immutable") && cache.contains("max-age="),
        "{cache}"
    );
    assert_eq!(thumb.header("x-content-type-options"), "nosniff");
    assert!(thumb.header("content-security-policy").contains("sandbox"));
    assert_eq!(thumb.header("cross-origin-resource-policy"), "same-origin");
    eprintln!(
        "a {} KB 4000 × 3000 JPEG: a {} KB {}×{} thumbnail",
        original.len() / 1024,
        thumb.body.len() / 1024,
        image.width(),
        image.height()
    );

    // The customer gets the same stored one; the original stays whole.
    let again = get(&http, thumbnail_url, &customer).await;
    assert_eq!((again.status, &again.body), (StatusCode::OK, &thumb.body));
    let whole = get(&http, url, &customer).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, original, "the original, byte for byte");

    // A customer of another room gets neither, and is told the same about both.
    let theirs = get(&http, thumbnail_url, &outsider).await;
    let document = get(&http, url, &outsider).await;
    assert!(!theirs.status.is_success(), "{:?}", theirs.json());
    assert_eq!((theirs.status, theirs.code()), (document.status, document.code()));
    assert_eq!(theirs.header("content-type"), "application/json");
    // So does a stranger with no session.
    let stranger = http.send("GET", thumbnail_url, &[], Vec::new()).await.unwrap();
    assert!(stranger.status.is_client_error(), "{}", stranger.status);

    // Only images have thumbnails.
    let pdf = upload(&http, &agent, &room, "a.pdf", pdf_with_pages(2)).await;
    assert_eq!(pdf["thumbnail_url"], Value::Null);
    let none = get(&http, &format!("{}/thumbnail", pdf["url"].as_str().unwrap()), &agent).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::NOT_FOUND, "not_found".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_gets_no_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path().join("data"));
    });
    let http = server.http();
    let agent = agent(&http).await;
    let (room, customer) = room_with_customer(&http, &agent, "Grace").await;
    // 7,000 × 7,000 = 49 megapixels: accepted (only its header is read at upload), and 147 MB
    // once decoded.
    let bomb = bomb_png(7_000, 7_000);
    let doc = upload(&http, &customer, &room, "bomb.png", bomb.clone()).await;
    assert_eq!(doc["width"], 7_000);
    let thumbnail_url = doc["thumbnail_url"].as_str().unwrap();

    let refused = get(&http, thumbnail_url, &agent).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.json());
    assert_eq!(refused.code(), "not_found");
    let message = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("thumbnail"), "{message}");
    // The server is fine, and the original is served as stored, not decoded.
    let whole = get(&http, doc["url"].as_str().unwrap(), &agent).await;
    assert_eq!((whole.status, whole.body.len()), (StatusCode::OK, bomb.len()));
}
