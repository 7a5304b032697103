//! Writes the seed corpora into `fuzz/seeds/<target>/`: real files built with collab-core's
//! `testing::files` helpers, and names, numbers, addresses, templates, callbacks and requests
//! written out here. Run from `fuzz/`: `cargo +nightly run --example seeds` (it replaces the
//! generated seeds; crash inputs kept beside them, `crash-*`, are left alone).

use std::fs;
use std::path::Path;

use collab_core::testing::files::{adler32, gif, jpeg, pdf, pdf_with_pages, png, stream, webp, zip, zip_entry};
use collab_fuzz::join;
use collab_notify::SecretString;
use collab_notify::twilio::{TwilioWebhook, parse_form};

const ROOM: &str = "0191c1d2-7e3a-7b4c-8d5e-6f708192a3b4";
const INVITE: &str = "0191c1d2-7e3a-7b4c-8d5e-6f708192a3b5";
const TOKEN: &str = "5f3c8a1d9e2b4f6a7c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, seeds: Vec<(&str, Vec<u8>)>| -> std::io::Result<()> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let generated = path
                .file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with("crash-"));
            if generated {
                fs::remove_file(path)?;
            }
        }
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    };
    write("customer", customer())?;
    write("display_name", display_names())?;
    write("document_inspect", documents())?;
    write("pdf_pages", pdfs())?;
    write("templates", templates())?;
    write("provider_callbacks", callbacks())?;
    write("server_decode", requests())?;
    write("server_app", http_requests())?;
    Ok(())
}

fn text(seeds: &[(&'static str, &str)]) -> Vec<(&'static str, Vec<u8>)> {
    seeds.iter().map(|(name, s)| (*name, s.as_bytes().to_vec())).collect()
}

fn customer() -> Vec<(&'static str, Vec<u8>)> {
    let long_name = "x".repeat(101);
    let long_email = format!("{}@example.com", "a".repeat(250));
    text(&[
        ("name", "  Grace Hopper "),
        ("name-accents", "Zoë Ångström-Øre"),
        ("name-bidi", "Ev\u{202E}il"),
        ("name-control", "A\u{0}b"),
        ("name-long", &long_name),
        ("phone-uk", "+44 7911 123456"),
        ("phone-us", "+1 415 555 2671"),
        ("phone-fr", "+33 6 12 34 56 78"),
        ("phone-jp", "+81 90-1234-5678"),
        ("phone-short", "+1 555"),
        ("phone-national", "07700 900123"),
        ("email", " Ada.L@Example.COM "),
        ("email-quoted", "\"ada lovelace\"@example.com"),
        ("email-localhost", "ada@localhost"),
        ("email-literal", "ada@[127.0.0.1]"),
        ("email-display", "Ada <ada@example.com>"),
        ("email-crlf", "ada@example.com\r\nBcc: eve@example.com"),
        ("email-long", &long_email),
    ])
}

fn display_names() -> Vec<(&'static str, Vec<u8>)> {
    // The first byte picks the name limit: 0 is the shortest (32 characters).
    let seed = |limit: u8, name: &str| {
        let mut bytes = vec![limit];
        bytes.extend_from_slice(name.as_bytes());
        bytes
    };
    let long = format!("{}.pdf", "a".repeat(5000));
    vec![
        ("windows-path", seed(56, "C:\\Users\\ada\\..\\notes\u{202E}txt.exe")),
        ("traversal", seed(56, "../../etc/passwd")),
        ("plain", seed(56, "Quarterly report.pdf")),
        ("long", seed(0, &long)),
        (
            "long-extension",
            seed(0, &format!("{}.{}", "b".repeat(40), "c".repeat(20))),
        ),
        ("nul", seed(56, "\u{0}file.jpg")),
        ("crlf", seed(56, "name\r\nX-Header: y.png")),
        ("dots", seed(56, "...hidden.... ")),
        ("invisible", seed(56, "\u{FEFF}zero\u{200B}width\u{2066}.txt")),
        ("quotes", seed(56, "say \"hi\"; filename=evil.html %41.txt")),
        ("unicode", seed(56, "Rapport «été» 日本語.pdf")),
        ("media-type", seed(56, "Image/PNG; charset=x")),
    ]
}

/// A 2×3 24-bit BMP (the dimension reader knows more formats than the default allow-list).
fn bmp() -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&(54u32 + 24).to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&2i32.to_le_bytes());
    out.extend_from_slice(&3i32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out.extend_from_slice(&[0; 24]);
    out
}

/// The start of an OLE compound file (legacy Office): the header and a root directory entry
/// carrying Word's class id.
fn ole_word() -> Vec<u8> {
    let mut out = vec![0u8; 1024];
    out[..8].copy_from_slice(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
    out[0x1A] = 0x3E;
    out[0x1C..0x1E].copy_from_slice(&[0xFE, 0xFF]);
    out[0x1E] = 9;
    out[0x20] = 6;
    out[0x30..0x34].copy_from_slice(&0u32.to_le_bytes());
    // Sector 0 (the directory) starts at 512; the root entry's type and class id.
    let root = 512;
    out[root..root + 10].copy_from_slice(b"R\0o\0o\0t\0 \0");
    out[root + 0x42] = 5;
    out[root + 0x50..root + 0x60].copy_from_slice(b"\x06\x09\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46");
    out
}

fn documents() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("png", png(10, 10)),
        ("png-bomb", png(100_000, 100_000)),
        ("jpeg", jpeg(640, 480)),
        ("gif", gif(3, 2)),
        ("webp", webp(64, 48)),
        ("bmp", bmp()),
        ("pdf", pdf_with_pages(1)),
        // Office and OpenDocument files are told apart by their ZIP central directory.
        (
            "docx",
            zip(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("word/document.xml", b"<w:document/>"),
            ]),
        ),
        (
            "odt",
            zip(&[
                ("mimetype", b"application/vnd.oasis.opendocument.text"),
                ("content.xml", b"<c/>"),
            ]),
        ),
        ("zip", zip_entry("notes.txt", b"a plain archive")),
        ("doc", ole_word()),
        ("text", b"Meeting notes\nline two\n".to_vec()),
        ("html", b"<!DOCTYPE html><html><script>alert(1)</script>".to_vec()),
        ("html-late", b"Notes\n\n<ScRiPt>alert(1)</script>".to_vec()),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(),
        ),
        ("xml", b"<?xml version=\"1.0\"?><a/>".to_vec()),
        ("shell", b"#!/bin/sh\necho hi\n".to_vec()),
        ("elf", b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()),
    ]
}

/// A zlib stream of one stored block: a valid `FlateDecode` stream without a compressor.
fn stored_zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&data[..usize::from(len)]);
    out.extend_from_slice(&adler32(&data[..usize::from(len)]).to_be_bytes());
    out
}

fn pdfs() -> Vec<(&'static str, Vec<u8>)> {
    let catalog = "<< /Type /Catalog /Pages 2 0 R >>".to_owned();
    let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned();
    let cyclic = pdf(&[
        catalog.clone(),
        "<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>".to_owned(),
        page.clone(),
    ]);
    let nested = pdf(&[
        catalog.clone(),
        format!(
            "<< /Type /Pages /Kids [3 0 R] /Count 1 /X {}{} >>",
            "[".repeat(300),
            "]".repeat(300)
        ),
        page.clone(),
    ]);
    let content = "BT /F1 24 Tf 72 700 Td (Hello) Tj ET";
    let compressed = stored_zlib(content.as_bytes());
    let mut flate = pdf(&[
        catalog.clone(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_owned(),
        format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\nZLIB\nendstream",
            compressed.len()
        ),
    ]);
    if let Some(at) = flate.windows(4).position(|w| w == b"ZLIB") {
        flate.splice(at..at + 4, compressed);
    }
    let mut broken_xref = pdf_with_pages(2);
    if let Some(at) = broken_xref.windows(4).position(|w| w == b"xref") {
        broken_xref.truncate(at);
        broken_xref.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    }
    vec![
        ("one-page", pdf_with_pages(1)),
        ("three-pages", pdf_with_pages(3)),
        ("cyclic-tree", cyclic),
        ("nested", nested),
        ("flate-contents", flate),
        ("no-xref", broken_xref),
        (
            "stream-text",
            pdf(&[
                catalog,
                "<< /Type /Pages /Kids [] /Count 0 >>".to_owned(),
                stream("(a) Tj"),
            ]),
        ),
        ("header-only", b"%PDF-1.7\n".to_vec()),
    ]
}

fn templates() -> Vec<(&'static str, Vec<u8>)> {
    let link = "https://rooms.example.com/join/5f3c8a1d?x=1&y=2".as_bytes();
    vec![
        (
            "sms",
            join(&[b"Hi {first_name}, join your collaboration room: {link}", b"Grace", link]),
        ),
        ("no-link", join(&[b"Hello {first_name}!", b"Grace", link])),
        ("name-is-placeholder", join(&[b"{first_name} {link}", b"{link}", link])),
        ("twice", join(&[b"{link}{link}{first_name}{first_name}", b"Ada", link])),
        (
            "email",
            join(&[
                b"Hello {first_name},\r\n\r\nPlease join:\n{link}\n",
                b"Zo\xC3\xAB",
                link,
            ]),
        ),
        (
            "markup",
            join(&[b"<b>{first_name}</b> & co: {link}", b"<script>x</script>", link]),
        ),
        ("subject", join(&[b"Your room, {first_name}", b"Grace", b""])),
        (
            "subject-untrimmed-name",
            join(&[b"Your room, {first_name}", b"Grace\r\n", b""]),
        ),
        (
            "ucs2",
            join(&["Привет, {first_name}: {link} €".as_bytes(), b"\xC5\x81ukasz", link]),
        ),
        (
            "braces",
            join(&[b"{first_name {link {link}} {first_name}}", b"}{", link]),
        ),
    ]
}

fn callbacks() -> Vec<(&'static str, Vec<u8>)> {
    let token = "0123456789abcdef0123456789abcdef";
    let url = format!("https://rooms.example.com/api/callbacks/twilio?room={ROOM}&invite={INVITE}");
    let webhook = TwilioWebhook::new(SecretString::from(token));
    let signed = |name, body: &str| {
        let signature = webhook
            .signature(&url, &parse_form(body.as_bytes()))
            .unwrap_or_default();
        (
            name,
            join(&[token.as_bytes(), url.as_bytes(), body.as_bytes(), signature.as_bytes()]),
        )
    };
    vec![
        signed(
            "delivered",
            "MessageSid=SM0123&MessageStatus=delivered&To=%2B447911123456",
        ),
        signed("sent", "MessageSid=SM0123&MessageStatus=sent"),
        signed("failed", "MessageSid=SM0123&MessageStatus=undelivered&ErrorCode=30007"),
        signed("canceled", "MessageSid=SM0123&MessageStatus=canceled&ErrorCode="),
        signed("queued", "MessageStatus=queued&MessageSid=SM0123&AccountSid=AC1"),
        signed("no-status", "MessageSid=SM0123"),
        (
            "wrong",
            join(&[
                token.as_bytes(),
                url.as_bytes(),
                b"MessageSid=SM1&MessageStatus=read",
                b"c2lnbmF0dXJl",
            ]),
        ),
        (
            "retry-seconds",
            join(&[b"t", b"https://x/cb", b"a=1&a=2&b=%zz", b"120"]),
        ),
        (
            "retry-date",
            join(&[
                b"t",
                b"https://x/cb?room=x",
                b"+=+&&=",
                b"Wed, 21 Oct 2015 07:28:00 GMT",
            ]),
        ),
    ]
}

fn requests() -> Vec<(&'static str, Vec<u8>)> {
    let cookies = format!("theme=dark; collab_agent={TOKEN}; collab_customer={TOKEN}");
    let seed = |body: &str, query: &str, range: &str, cookie: &str, last: &str| {
        join(&[
            body.as_bytes(),
            query.as_bytes(),
            range.as_bytes(),
            cookie.as_bytes(),
            last.as_bytes(),
        ])
    };
    vec![
        (
            "sign-in",
            seed(
                r#"{"agent":"ada","password":"correct horse"}"#,
                "name=Gr&phone=%2B447911123456&email=ada%40example.com&limit=20",
                "bytes=0-99",
                &cookies,
                "42",
            ),
        ),
        (
            "invite",
            seed(
                r#"{"channel":"sms","first_name":"Grace","last_name":"Hopper","identifier":"+447911123456"}"#,
                &format!("after=1795857000000.{ROOM}&limit=50"),
                "bytes=100-",
                "collab_customer=",
                "",
            ),
        ),
        (
            "message",
            seed(
                r#"{"text":"hello \u00e9","client_key":null}"#,
                "after=5&limit=10&as=customer",
                "bytes=5-1",
                "collab_agent=a=b;collab_agent=second",
                "18446744073709551615",
            ),
        ),
        (
            "join",
            seed(
                &format!(r#"{{"token":"{TOKEN}"}}"#),
                &format!("room={ROOM}&invite={INVITE}"),
                "bytes=0-0,5-9",
                ";;=;",
                "7x",
            ),
        ),
        (
            "ignored-field-not-utf8",
            join(&[
                b"{\"token\":\"t\",\"other\":\"\xB4\x90\"}",
                b"limit=5",
                b"bytes=1-2",
                b"",
                b"1",
            ]),
        ),
        (
            "upload",
            seed(
                r#"["ada","pw"]"#,
                "name=..%2F..%2Fetc%2Fpasswd&name=again",
                "bytes=-500",
                "",
                "+3",
            ),
        ),
    ]
}

/// Requests for `server_app`: a route byte, a flags byte (method, credential, JSON, customer
/// view), then path parameter, query, header lines and body.
fn http_requests() -> Vec<(&'static str, Vec<u8>)> {
    const AGENT: u8 = 1 << 2;
    const CUSTOMER: u8 = 2 << 2;
    const JSON: u8 = 1 << 4;
    const AS_CUSTOMER: u8 = 1 << 5;
    let seed = |route: u8, flags: u8, param: &str, query: &str, headers: &str, body: &[u8]| {
        let mut bytes = vec![route, flags];
        bytes.extend(join(&[param.as_bytes(), query.as_bytes(), headers.as_bytes(), body]));
        bytes
    };
    vec![
        (
            "sign-in",
            seed(0, JSON, "", "", "", br#"{"agent":"ada","password":"secret"}"#),
        ),
        (
            "list",
            seed(2, AGENT, "", "name=Gr&phone=%2B447911123456&limit=5", "", b""),
        ),
        ("room-bad-id", seed(3, AGENT, "not-a-room", "", "", b"")),
        (
            "invite-link",
            seed(4, AGENT | JSON, "", "", "", br#"{"channel":"link"}"#),
        ),
        (
            "invite-sms",
            seed(
                4,
                AGENT | JSON,
                "",
                "",
                "",
                br#"{"channel":"sms","identifier":"+447911123456"}"#,
            ),
        ),
        ("events", seed(6, CUSTOMER, "", "after=1&limit=2", "", b"")),
        (
            "live",
            seed(7, CUSTOMER | AS_CUSTOMER, "", "as=customer", "Last-Event-ID: 2", b""),
        ),
        (
            "message",
            seed(
                8,
                CUSTOMER | JSON | AS_CUSTOMER,
                "",
                "",
                "",
                br#"{"text":"hi","client_key":"k1"}"#,
            ),
        ),
        (
            "upload-pdf",
            seed(9, AGENT, "", "name=..%2Freport.pdf", "", &pdf_with_pages(1)),
        ),
        ("upload-png", seed(9, CUSTOMER, "", "name=photo.png", "", &png(4, 4))),
        ("download-range", seed(10, CUSTOMER, "", "", "Range: bytes=0-3", b"")),
        (
            "join",
            seed(11, JSON, "", "", "", format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes()),
        ),
        (
            "twilio",
            seed(
                13,
                0,
                "",
                &format!("room={ROOM}&invite={INVITE}"),
                "x-twilio-signature: c2lnbmF0dXJl\ncontent-type: application/x-www-form-urlencoded",
                b"MessageSid=SM1&MessageStatus=delivered",
            ),
        ),
        (
            "cross-origin",
            seed(5, AGENT, "", "", "Origin: https://evil.example", b""),
        ),
        ("rebound-host", seed(1, AGENT, "", "", "Host: evil.example", b"")),
        ("unknown-route", seed(15, 0, "nothing-here", "", "", b"")),
        ("bad-json", seed(8, AGENT | JSON, "", "", "", b"{\"text\": tru")),
    ]
}
