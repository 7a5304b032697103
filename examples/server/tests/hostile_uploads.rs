//! Hostile uploads through the HTTP API: type confusion, bombs, broken PDFs and file names
//! built to break headers or paths. Each gets a clear JSON error and leaves nothing behind, or
//! is stored under a generated key and served with headers that keep a browser from running it.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;
use collab_core::rooms::RoomsConfig;
use collab_core::testing::files::{crc32, pdf, pdf_with_pages, png, png_chunk};
use collab_server::quota::Quotas;
use common::{Reply, Server, agents};

/// The upload limit of these tests: small, so that "one byte over" is cheap to send.
const LIMIT: u64 = 1024 * 1024;

async fn server() -> Server {
    let config = RoomsConfig::default().with_max_document_bytes(LIMIT).unwrap();
    // One session uploads file after file here, past the upload rate: not what is tested.
    Server::start_with_quotas(agents(), Quotas::unlimited(), |builder| builder.config(config)).await
}

/// Every byte but letters, digits and `.-_~` percent-encoded, as a query value.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An upload a client means as `_declared`, which the server must not trust: the API takes
/// `application/octet-stream` only (another `Content-Type` is a 415, tests/screening.rs), so the
/// claim can be made only by the name, and the server decides the type from the bytes.
async fn upload_declared(
    server: &Server,
    room: &str,
    cookie: &str,
    name: &str,
    _declared: &str,
    bytes: Vec<u8>,
) -> Reply {
    let uri = format!("/api/rooms/{room}/documents?name={}", encode(name));
    server
        .send(
            "POST",
            &uri,
            Some(cookie),
            Body::from(bytes),
            "application/octet-stream",
        )
        .await
}

/// A deeply nested PDF: 50,000 open arrays.
fn nested_pdf() -> Vec<u8> {
    let mut deep = b"%PDF-1.4\n1 0 obj\n".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    deep
}

/// A PDF whose page tree is its own only child.
fn cyclic_pdf() -> Vec<u8> {
    pdf(&[
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [2 0 R] /Count 1 >>".to_owned(),
    ])
}

/// A PDF with one real page and a loop back to the root through a child.
fn cyclic_pdf_with_a_page() -> Vec<u8> {
    pdf(&[
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned(),
        "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>".to_owned(),
    ])
}

/// An ELF executable header (64-bit, x86-64) padded to a plausible size.
fn elf() -> Vec<u8> {
    let mut bytes = b"\x7FELF\x02\x01\x01\x00".to_vec();
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&[2, 0, 0x3E, 0, 1, 0, 0, 0]);
    bytes.resize(4096, 0);
    bytes
}

/// A Windows PE executable header (`MZ`, DOS stub, `PE\0\0`).
fn pe() -> Vec<u8> {
    let mut bytes = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xFF\xFF".to_vec();
    bytes.resize(0x3C, 0);
    bytes.extend_from_slice(&0x80u32.to_le_bytes());
    bytes.extend_from_slice(b"This program cannot be run in DOS mode.");
    bytes.resize(0x80, 0);
    bytes.extend_from_slice(b"PE\0\0\x64\x86");
    bytes.resize(4096, 0);
    bytes
}

/// Writes Huffman codes (most significant bit first) into deflate's LSB-first bit stream.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    used: u32,
}

impl Bits {
    fn push(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            if self.used == 0 {
                self.out.push(0);
            }
            let bit = u8::from((code >> i) & 1 == 1);
            *self.out.last_mut().unwrap() |= bit << self.used;
            self.used = (self.used + 1) % 8;
        }
    }
}

/// A zlib stream that inflates to `len` zero bytes: one fixed-Huffman block of a literal zero,
/// then matches of 258 bytes at distance 1 (13 bits each, ≈160× smaller than what it makes).
fn zeros_zlib(len: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    // BFINAL = 1, BTYPE = 01 (fixed Huffman), both written least significant bit first.
    bits.push(1, 1);
    bits.push(1, 1);
    bits.push(0, 1);
    let literal_zero = (0b0011_0000, 8);
    bits.push(literal_zero.0, literal_zero.1);
    let remaining = len - 1;
    for _ in 0..remaining / 258 {
        bits.push(0b1100_0101, 8); // length 258 (code 285)
        bits.push(0, 5); // distance 1 (code 0)
    }
    for _ in 0..remaining % 258 {
        bits.push(literal_zero.0, literal_zero.1);
    }
    bits.push(0, 7); // end of block (256)
    let mut zlib = vec![0x78, 0x01];
    zlib.extend_from_slice(&bits.out);
    // Adler-32 of zeros: a stays 1, b adds 1 per byte.
    let b = u32::try_from(len % 65_521).unwrap();
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    zlib
}

/// A real decompression bomb: an RGB PNG of `width` × `height` black pixels whose pixel data
/// inflates to `height × (1 + 3 × width)` bytes.
fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    // The signature and the header chunk of a plain PNG of that size: its first 33 bytes.
    let mut out = png(width, height)[..33].to_vec();
    let raw = height as usize * (1 + 3 * width as usize);
    png_chunk(&mut out, b"IDAT", &zeros_zlib(raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The answer to a refused upload: status, error code, field, words the message must hold.
struct Refusal(StatusCode, &'static str, Option<&'static str>, &'static str);

/// A type the server does not take: the body as a whole is at fault, as for `invalid_file`.
fn unsupported(words: &'static str) -> Refusal {
    Refusal(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        Some("body"),
        words,
    )
}

fn invalid_file(words: &'static str) -> Refusal {
    Refusal(StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("body"), words)
}

fn too_large(words: &'static str) -> Refusal {
    Refusal(StatusCode::PAYLOAD_TOO_LARGE, "too_large", Some("body"), words)
}

#[tokio::test]
async fn hostile_files_get_a_clear_error_and_leave_nothing_behind() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(document.cookie)</script></svg>"#;
    let one_over = vec![b'a'; usize::try_from(LIMIT).unwrap() + 1];
    // (name, declared type, bytes, the answer)
    let cases: Vec<(&str, &str, Vec<u8>, Refusal)> = vec![
        (
            "photo.jpg",
            "image/jpeg",
            b"<html><body><script>alert(document.cookie)</script></body></html>".to_vec(),
            unsupported("text/html"),
        ),
        ("logo.svg", "image/svg+xml", svg.to_vec(), unsupported("image/svg+xml")),
        ("logo.png", "image/png", svg.to_vec(), unsupported("image/svg+xml")),
        (
            "invoice.pdf",
            "application/pdf",
            elf(),
            unsupported("application/x-executable"),
        ),
        (
            "invoice.pdf",
            "application/pdf",
            pe(),
            unsupported("portable-executable"),
        ),
        (
            "report.pdf",
            "application/pdf",
            b"#!/bin/sh\nrm -rf ~\n".to_vec(),
            unsupported("shellscript"),
        ),
        ("empty.txt", "text/plain", Vec::new(), invalid_file("empty")),
        ("big.txt", "text/plain", one_over, too_large("1048576 bytes")),
        (
            "bomb.png",
            "image/png",
            png(100_000, 100_000),
            invalid_file("larger than the limit"),
        ),
        (
            // A real bomb (953 KB inflating to 151 MB) just over the 50-megapixel limit.
            "bomb.png",
            "image/png",
            bomb_png(7_100, 7_100),
            invalid_file("larger than the limit"),
        ),
        (
            "deep.pdf",
            "application/pdf",
            nested_pdf(),
            invalid_file("nested deeper"),
        ),
        ("loop.pdf", "application/pdf", cyclic_pdf(), invalid_file("no pages")),
    ];
    for (name, declared, bytes, Refusal(status, code, field, words)) in cases {
        let started = Instant::now();
        let reply = upload_declared(&server, &room, &customer, name, declared, bytes).await;
        let error = &reply.json()["error"];
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{name} ({declared}): {error}"
        );
        assert_eq!(error["field"].as_str(), field, "{name}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(words), "{name}: {message:?} does not say {words:?}");
        assert!(reply.header("content-type").starts_with("application/json"));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(server.stored_documents(), 0, "a refused upload left bytes behind");
    let events = server
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent), None)
        .await
        .json();
    assert!(
        !events.to_string().contains("document_shared"),
        "a refused upload was recorded: {events}"
    );

    // Exactly at the limit is accepted, and a page tree with a loop still ends with its pages.
    let at_limit = vec![b'a'; usize::try_from(LIMIT).unwrap()];
    let reply = upload_declared(&server, &room, &customer, "max.txt", "text/plain", at_limit).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let reply = upload_declared(
        &server,
        &room,
        &customer,
        "loop.pdf",
        "application/pdf",
        cyclic_pdf_with_a_page(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    let pages = reply.json()["document"]["pages"].as_u64().unwrap();
    assert!((1..=4).contains(&pages), "{pages} pages");
    assert_eq!(server.stored_documents(), 2);
}

#[tokio::test]
async fn the_declared_type_is_never_trusted() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    // (name, declared type, bytes, the type it is served as, the name it is served under: the
    // type's extension is added, so that "Save as" cannot make an active file of it)
    let cases: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        ("page.html", "text/html", png(4, 3), "image/png", "page.html.png"),
        (
            "page.html",
            "text/html",
            b"just words, <b>no</b> markup to run".to_vec(),
            "text/plain",
            "page.html.txt",
        ),
        (
            "run.exe",
            "application/x-msdownload",
            pdf_with_pages(2),
            "application/pdf",
            "run.exe.pdf",
        ),
    ];
    for (name, declared, bytes, served_as, served_name) in cases {
        // Images, PDFs and plain text open in the browser (text as text: nosniff, sandboxed).
        let reply = upload_declared(&server, &room, &customer, name, declared, bytes.clone()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.json());
        let document = &reply.json()["document"];
        assert_eq!(document["media_type"], served_as, "{name}");
        assert_eq!(document["name"], served_name, "{name}");
        let served = server
            .call("GET", document["url"].as_str().unwrap(), Some(&customer), None)
            .await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.body, bytes);
        assert_eq!(served.header("content-type"), served_as, "{name}");
        assert_eq!(served.header("x-content-type-options"), "nosniff");
        let csp = served.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        // Every document, PDFs included (PDF.js reads them in the page), is sandboxed and may
        // be framed by no page.
        assert!(csp.ends_with("; sandbox"), "{name}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let header = served.header("content-disposition");
        assert!(header.starts_with("inline"), "{name}: {header}");
        assert!(header.contains(&format!("filename=\"{served_name}\"")), "{header}");
    }
}

#[tokio::test]
async fn hostile_file_names_are_stored_safely_and_served_quoted() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    let long = format!("{}.txt", "n".repeat(5_000));
    let long_multibyte = format!("{}.txt", "é".repeat(5_000));
    let names = [
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "....//....//etc/shadow",
        "a\0b.txt",
        "report\r\nSet-Cookie: collab_agent=stolen\r\n.txt",
        "invoice\u{202E}fdp.exe",
        "\u{2066}harmless\u{2069}\u{200B}.txt",
        "\"; filename=evil.html; x=\".txt",
        "50%25%0D%0A.txt",
        long.as_str(),
        long_multibyte.as_str(),
        "..",
        "\r\n",
    ];
    for raw in names {
        let reply = upload_declared(&server, &room, &customer, raw, "text/plain", b"hello".to_vec()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{raw:?}: {}", reply.json());
        let document = &reply.json()["document"];
        let name = document["name"].as_str().unwrap();
        assert!(
            !name.contains(['/', '\\', '\0', '\r', '\n', '\u{202E}', '\u{2066}', '\u{200B}']),
            "{raw:?} became {name:?}"
        );
        assert!(!name.starts_with('.'), "{raw:?} became {name:?}");
        assert!(
            (1..=255).contains(&name.chars().count()),
            "{raw:?} became {} characters",
            name.chars().count()
        );
        let served = server
            .call("GET", document["url"].as_str().unwrap(), Some(&customer), None)
            .await;
        assert_eq!(served.status, StatusCode::OK);
        assert!(served.headers.get("set-cookie").is_none(), "{raw:?} set a cookie");
        let disposition = served.headers.get_all("content-disposition").iter().count();
        assert_eq!(disposition, 1, "{raw:?}");
        let header = served.header("content-disposition");
        assert!(header.is_ascii() && !header.contains(['\r', '\n', '\0']), "{header:?}");
        assert!(header.starts_with("inline; filename=\""), "{header:?}");
        // The quoted name ends where the header says: no quote or backslash inside it.
        let quoted = header
            .strip_prefix("inline; filename=\"")
            .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
            .map(|(quoted, _)| quoted)
            .unwrap_or_else(|| panic!("{header:?}"));
        assert!(!quoted.contains(['"', '\\', '/']), "{quoted:?}");
    }
    // Keys are generated: nothing on disk is named after the client's name or sits outside the
    // documents folder.
    assert_eq!(server.stored_documents(), names.len());
    let mut paths = Vec::new();
    let mut stack = vec![server.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                paths.push(entry.path());
            }
        }
    }
    for path in paths {
        let relative = path
            .strip_prefix(server.dir.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            relative.starts_with("documents/") || relative.starts_with("rooms.db"),
            "{relative}"
        );
        for word in ["passwd", "shadow", "win.ini", "evil", "report", "invoice", "nnnn"] {
            assert!(!relative.contains(word), "{relative} is named after the upload");
        }
    }
}

#[tokio::test]
async fn malformed_upload_requests_get_json_errors() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    for query in ["", "?nom=x.txt"] {
        let uri = format!("/api/rooms/{room}/documents{query}");
        let reply = server
            .send("POST", &uri, Some(&customer), Body::from("hello"), "text/plain")
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{query}: {}",
            reply.json()
        );
    }
    assert_eq!(server.stored_documents(), 0);
    // A name that is not UTF-8 is decoded with replacement characters: visible, harmless.
    let uri = format!("/api/rooms/{room}/documents?name=%FF%FE.txt");
    let reply = server
        .send(
            "POST",
            &uri,
            Some(&customer),
            Body::from("hello"),
            "application/octet-stream",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["document"]["name"], "\u{FFFD}\u{FFFD}.txt");
}

#[test]
fn the_bomb_is_a_real_one() {
    // A small bomb checked by a real PNG decoder's rules: CRCs, and the zlib stream inflating
    // to exactly the rows the header claims.
    let (width, height) = (300u32, 200u32);
    let bytes = bomb_png(width, height);
    let idat_len = u32::from_be_bytes(bytes[33..37].try_into().unwrap()) as usize;
    assert_eq!(&bytes[37..41], b"IDAT");
    let idat = &bytes[41..41 + idat_len];
    let crc = u32::from_be_bytes(bytes[41 + idat_len..45 + idat_len].try_into().unwrap());
    assert_eq!(crc, crc32(&bytes[37..41 + idat_len]));
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(idat).unwrap();
    assert_eq!(inflated.len(), height as usize * (1 + 3 * width as usize));
    assert!(inflated.iter().all(|&b| b == 0));
    assert!(idat.len() * 100 < inflated.len(), "it inflates more than 100×");
}

#[tokio::test]
async fn a_decompression_bomb_is_never_decoded() {
    let server = server().await;
    let agent = server.agent("ada", "secret").await;
    let (room, customer) = server.room_with_customer(&agent).await;
    // 7,000 × 7,000 = 49 megapixels, just under the pixel limit: accepted, since its header is
    // all that is read. Decoding it would take 147 MB.
    let bomb = bomb_png(7_000, 7_000);
    let decoded = 7_000 * (1 + 3 * 7_000);
    assert!(bomb.len() < usize::try_from(LIMIT).unwrap(), "{} bytes", bomb.len());

    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let reply = upload_declared(&server, &room, &customer, "bomb.png", "image/png", bomb.clone()).await;
    let served = server
        .call(
            "GET",
            reply.json()["document"]["url"].as_str().unwrap_or("/api/none"),
            Some(&customer),
            None,
        )
        .await;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
    assert_eq!(reply.json()["document"]["width"], 7_000);
    assert_eq!(served.body.len(), bomb.len(), "served as stored, not re-encoded");
    let growth_kib = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "bomb of {} KiB (decodes to {} MiB): peak RSS growth {growth_kib} KiB",
        bomb.len() / 1024,
        decoded / (1 << 20)
    );
    assert!(
        growth_kib * 1024 < decoded / 4,
        "RSS grew by {growth_kib} KiB: the image was decoded"
    );
}
