//! Document inspection: sniffing, image and PDF limits, display names and download headers.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use collab_core::document::*;
use collab_core::testing::files::*;
use collab_core::{DocumentKind, Error};

mod common;

// ---- files built by hand -------------------------------------------------------------------

fn policy() -> DocumentPolicy {
    DocumentPolicy::default()
}

fn is_invalid_file(result: &Result<impl std::fmt::Debug, Error>, words: &str) -> bool {
    matches!(result, Err(Error::Invalid { field: "file", reason }) if reason.contains(words))
}

fn unsupported(result: Result<Inspection, Error>) -> String {
    match result {
        Err(Error::UnsupportedMediaType { media_type }) => media_type,
        other => panic!("expected UnsupportedMediaType, got {other:?}"),
    }
}

// ---- sniffing ------------------------------------------------------------------------------

#[test]
fn images_are_sniffed_with_their_dimensions() {
    let cases = [
        (png(3, 2), "image/png", 3, 2),
        (jpeg(640, 480), "image/jpeg", 640, 480),
        (gif(17, 9), "image/gif", 17, 9),
        (webp(800, 600), "image/webp", 800, 600),
    ];
    for (bytes, media_type, width, height) in cases {
        let inspection = inspect(&bytes, &policy()).unwrap();
        assert_eq!(inspection.media_type, media_type);
        assert_eq!(inspection.kind, DocumentKind::Image { width, height }, "{media_type}");
    }
}

#[test]
fn the_hand_built_png_is_well_formed() {
    let bytes = png(3, 2);
    // IHDR's CRC covers its type and data.
    assert_eq!(&bytes[12..16], b"IHDR");
    assert_eq!(
        u32::from_be_bytes(bytes[29..33].try_into().unwrap()),
        crc32(&bytes[12..29])
    );
    assert!(bytes.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
}

#[test]
fn an_image_over_the_pixel_limit_is_refused() {
    let bomb = inspect(&png(100_000, 100_000), &policy());
    assert!(is_invalid_file(&bomb, "pixels"), "{bomb:?}");

    let small = policy().with_max_image_pixels(100).unwrap();
    assert!(inspect(&png(10, 10), &small).is_ok());
    assert!(is_invalid_file(&inspect(&png(10, 11), &small), "pixels"));
    assert!(is_invalid_file(&inspect(&gif(101, 1), &small), "pixels"));
}

#[test]
fn an_image_whose_header_has_no_dimensions_is_refused() {
    let truncated = &png(3, 2)[..12];
    let result = inspect(truncated, &policy());
    assert!(is_invalid_file(&result, "dimensions"), "{result:?}");
}

#[test]
fn pdf_and_office_documents_are_sniffed() {
    let inspection = inspect(&pdf_with_pages(3), &policy()).unwrap();
    assert_eq!(inspection.media_type, "application/pdf");
    assert_eq!(inspection.kind, DocumentKind::Pdf { pages: 0 });

    // A ZIP's local entries alone prove nothing: its central directory decides (tests below).
    let docx = zip_entry("word/document.xml", b"<w:document/>");
    assert_eq!(unsupported(inspect(&docx, &policy())), "application/zip");
}

/// A legacy Word file (an OLE compound file with Word's class id) larger than the head.
fn legacy_doc() -> Vec<u8> {
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    let word = "00020906-0000-0000-c000-000000000046".parse().unwrap();
    file.set_storage_clsid("/", word).unwrap();
    let mut stream = file.create_stream("/WordDocument").unwrap();
    stream.write_all(&vec![7u8; 3 * HEAD_LEN]).unwrap();
    drop(stream);
    file.flush().unwrap();
    file.into_inner().into_inner()
}

#[test]
fn a_legacy_word_file_is_sniffed_from_its_head() {
    let doc = legacy_doc();
    assert!(doc.len() > HEAD_LEN);
    assert_eq!(inspect(&doc, &policy()).unwrap().media_type, "application/msword");
    assert_eq!(
        inspect(&doc[..HEAD_LEN], &policy()).unwrap().media_type,
        "application/msword"
    );
}

#[test]
fn plain_text_is_text_even_when_the_head_cuts_a_character() {
    assert_eq!(
        inspect("Grüße\n".as_bytes(), &policy()).unwrap().media_type,
        "text/plain"
    );

    // 'é' is two bytes: a head of odd length ends in half of one.
    let text = format!("a{}", "é".repeat(HEAD_LEN));
    let full_head = &text.as_bytes()[..HEAD_LEN];
    assert_eq!(full_head.last(), Some(&0xC3));
    assert_eq!(inspect(full_head, &policy()).unwrap().media_type, "text/plain");
    // A whole file (shorter than the head) that ends in half a character is not UTF-8.
    assert_eq!(
        unsupported(inspect(&full_head[..100], &policy())),
        "application/octet-stream"
    );
    // Longer input is only looked at up to HEAD_LEN.
    let mut longer = full_head.to_vec();
    longer.extend_from_slice(&[0xA9, 0, 0, 0]);
    assert_eq!(inspect(&longer, &policy()).unwrap().media_type, "text/plain");
}

#[test]
fn html_is_refused_whatever_the_name() {
    // An "image.jpg" whose bytes are HTML.
    let html = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>";
    assert_eq!(unsupported(inspect(html, &policy())), "text/html");
    // Markup deep in the head, in any case, still counts.
    let mut sneaky = "harmless words\n".repeat(1000).into_bytes();
    sneaky.extend_from_slice(b"<ScRiPt>alert(1)</script>");
    assert_eq!(unsupported(inspect(&sneaky, &policy())), "text/html");
    // Not UTF-8 (Latin-1), still HTML.
    assert_eq!(unsupported(inspect(b"<html>caf\xE9</html>", &policy())), "text/html");
    // A policy that allows it gets the honest type.
    let lax = policy().with_allowed_media_types(["text/html"]).unwrap();
    assert_eq!(inspect(html, &lax).unwrap().media_type, "text/html");
}

#[test]
fn svg_and_xml_are_refused() {
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    assert_eq!(unsupported(inspect(svg, &policy())), "image/svg+xml");
    assert_eq!(
        unsupported(inspect(b"<?xml version=\"1.0\"?><a/>", &policy())),
        "text/xml"
    );
}

#[test]
fn executables_and_unknown_binaries_are_refused() {
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xFF\xFF".to_vec();
    exe.resize(256, 0);
    exe[0x3C] = 0x80;
    exe[0x80..0x84].copy_from_slice(b"PE\0\0");
    assert_eq!(
        unsupported(inspect(&exe, &policy())),
        "application/vnd.microsoft.portable-executable"
    );
    assert_eq!(
        unsupported(inspect(&[0x00, 0x13, 0x37, 0xFE, 0x00], &policy())),
        "application/octet-stream"
    );
    assert_eq!(
        unsupported(inspect(b"#!/bin/sh\nrm -rf /\n", &policy())),
        "text/x-shellscript"
    );
}

#[test]
fn empty_files_are_refused() {
    let result = inspect(b"", &policy());
    assert!(is_invalid_file(&result, "empty"), "{result:?}");
}

#[test]
fn the_allow_list_decides() {
    let only_pdf = policy().with_allowed_media_types(["application/pdf"]).unwrap();
    assert!(inspect(&pdf_with_pages(1), &only_pdf).is_ok());
    assert_eq!(unsupported(inspect(&png(1, 1), &only_pdf)), "image/png");
    assert!(policy().with_allowed_media_types(["Image/PNG"]).is_err());
    assert!(
        policy()
            .with_allowed_media_types(["text/plain; charset=utf-8"])
            .is_err()
    );
}

#[test]
fn policy_bounds_name_their_field() {
    let field = |r: Result<DocumentPolicy, Error>| match r {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(field(policy().with_max_image_pixels(0)), "max_image_pixels");
    assert_eq!(field(policy().with_max_pdf_bytes(0)), "max_pdf_bytes");
    assert_eq!(field(policy().with_pdf_timeout(Duration::ZERO)), "pdf_timeout");
    assert_eq!(field(policy().with_max_name_chars(5)), "max_name_chars");
    assert_eq!(
        field(policy().with_allowed_media_types(["nope"])),
        "allowed_media_types"
    );
    let p = policy()
        .with_max_name_chars(40)
        .unwrap()
        .with_max_pdf_bytes(1000)
        .unwrap();
    assert_eq!((p.max_name_chars(), p.max_pdf_bytes()), (40, 1000));
}

// ---- PDF pages -----------------------------------------------------------------------------

#[tokio::test]
async fn a_three_page_pdf_has_three_pages() {
    assert_eq!(pdf_page_count(pdf_with_pages(3).into(), &policy()).await.unwrap(), 3);
    assert_eq!(pdf_page_count(pdf_with_pages(1).into(), &policy()).await.unwrap(), 1);
}

#[tokio::test]
async fn brackets_inside_streams_and_strings_are_not_nesting() {
    let content = format!("BT ({}) Tj ET % {}", "[".repeat(1000), "[".repeat(1000));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 /Title (a [[[ ( nested ) string) >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_owned(),
        stream(&"[".repeat(5000)),
        stream(&content),
    ];
    assert_eq!(pdf_page_count(pdf(&objects).into(), &policy()).await.unwrap(), 1);
}

#[tokio::test]
async fn malformed_pdfs_are_invalid() {
    let whole = pdf_with_pages(3);
    for bad in [
        whole[..40].to_vec(),
        b"%PDF-1.7\n\x00\xFF garbage \x13\x37 trailer".to_vec(),
        b"%PDF-".to_vec(),
        b"not a pdf at all".to_vec(),
    ] {
        let result = pdf_page_count(bad.into(), &policy()).await;
        assert!(is_invalid_file(&result, "not a readable PDF"), "{result:?}");
    }
}

#[tokio::test]
async fn a_pdf_without_pages_is_invalid() {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [] /Count 0 >>".to_owned(),
    ];
    let result = pdf_page_count(pdf(&objects).into(), &policy()).await;
    assert!(is_invalid_file(&result, "no pages"), "{result:?}");
}

#[tokio::test]
async fn deep_nesting_is_refused_before_parsing() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R /Junk {deep} >>"),
    ];
    let result = pdf_page_count(pdf(&objects).into(), &policy()).await;
    assert!(is_invalid_file(&result, "nested"), "{result:?}");

    let dicts = format!("{}{}", "<< /A ".repeat(300), ">>".repeat(300));
    let result = pdf_page_count(pdf(&[dicts]).into(), &policy()).await;
    assert!(is_invalid_file(&result, "nested"), "{result:?}");

    // Just under the limit is left to the parser.
    let ok = format!("{}{}", "[".repeat(MAX_PDF_NESTING - 1), "]".repeat(MAX_PDF_NESTING - 1));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R /Junk {ok} >>"),
    ];
    let result = pdf_page_count(pdf(&objects).into(), &policy()).await;
    assert!(!is_invalid_file(&result, "nested"), "{result:?}");
}

#[tokio::test]
async fn a_pdf_over_the_size_limit_is_refused() {
    let bytes = pdf_with_pages(3);
    let small = policy().with_max_pdf_bytes(100).unwrap();
    let result = pdf_page_count(bytes.clone().into(), &small).await;
    assert!(matches!(result, Err(Error::TooLarge { limit: 100 })), "{result:?}");
    let exact = policy().with_max_pdf_bytes(bytes.len() as u64).unwrap();
    assert_eq!(pdf_page_count(bytes.into(), &exact).await.unwrap(), 3);
}

#[tokio::test]
async fn a_page_tree_that_refers_to_itself_ends() {
    let started = Instant::now();
    let itself = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [2 0 R] /Count 1 >>".to_owned(),
    ];
    let result = pdf_page_count(pdf(&itself).into(), &policy()).await;
    assert!(is_invalid_file(&result, "no pages"), "{result:?}");

    // A loop through a child, beside a real page.
    let through_child = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned(),
        "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>".to_owned(),
    ];
    let pages = pdf_page_count(pdf(&through_child).into(), &policy()).await.unwrap();
    assert!((1..=4).contains(&pages), "{pages} pages");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_slow_pdf_times_out() {
    let bytes = Bytes::from(pdf_with_pages(50_000));
    let hurried = policy().with_pdf_timeout(Duration::from_millis(1)).unwrap();
    let started = Instant::now();
    let result = pdf_page_count(bytes.clone(), &hurried).await;
    assert!(is_invalid_file(&result, "longer than"), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Given time, the same file counts: the longest timeout, so a busy machine cannot fail this.
    let patient = policy().with_pdf_timeout(Duration::from_secs(600)).unwrap();
    assert_eq!(pdf_page_count(bytes, &patient).await.unwrap(), 50_000);
}

// ---- names and headers ---------------------------------------------------------------------

#[test]
fn display_names_keep_only_the_visible_last_part() {
    let name = |raw: &str| display_name(raw, &policy());
    assert_eq!(name("../../etc/passwd"), "passwd");
    assert_eq!(name("..\\..\\Windows\\system.ini"), "system.ini");
    assert_eq!(name("C:\\Users\\ada/report.pdf"), "report.pdf");
    assert_eq!(name("dir/sub/"), "sub");
    assert_eq!(name("evil.pdf\0.exe"), "evil.pdf.exe");
    assert_eq!(name("line\r\nbreak\t.txt"), "linebreak.txt");
    assert_eq!(name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
    assert_eq!(name("zero\u{200B}width\u{FEFF}.txt"), "zerowidth.txt");
    assert_eq!(name("  ..hidden.txt  "), "hidden.txt");
    assert_eq!(name(".bashrc"), "bashrc");
    assert_eq!(name("trailing.exe. . "), "trailing.exe");
    assert_eq!(name("Überweisung März.pdf"), "Überweisung März.pdf");
}

#[test]
fn names_with_nothing_visible_become_document() {
    for raw in [
        "",
        "   ",
        "..",
        "../",
        "..\\..",
        "\0\r\n",
        "\u{202E}\u{2066}",
        "/",
        "....",
    ] {
        assert_eq!(display_name(raw, &policy()), FALLBACK_NAME, "{raw:?}");
    }
}

#[test]
fn long_names_are_shortened_keeping_the_extension() {
    let long = format!("{}.pdf", "x".repeat(5000));
    let name = display_name(&long, &policy());
    assert_eq!(name.chars().count(), 255);
    assert!(name.ends_with("x.pdf"));

    let multibyte = "é".repeat(5000);
    let name = display_name(&multibyte, &policy());
    assert_eq!(name.chars().count(), 255);

    // An "extension" too long to be one is cut like the rest.
    let dotted = format!("a.{}", "b".repeat(5000));
    assert_eq!(display_name(&dotted, &policy()).chars().count(), 255);

    let short = policy().with_max_name_chars(32).unwrap();
    assert_eq!(
        display_name(&format!("{}.docx", "y".repeat(100)), &short),
        format!("{}.docx", "y".repeat(27))
    );
}

#[test]
fn content_disposition_cannot_be_broken_out_of() {
    let header = content_disposition_header(Disposition::Attachment, "a\"b\\c\r\nSet-Cookie: x=1;.txt");
    assert!(!header.contains(['\r', '\n']), "{header}");
    assert_eq!(
        header,
        "attachment; filename=\"a_b_c_Set-Cookie: x=1;.txt\"; filename*=UTF-8''a%22b%5Cc%0D%0ASet-Cookie%3A%20x%3D1%3B.txt"
    );
    // Exactly two quotes: the ones around the fallback name.
    assert_eq!(header.matches('"').count(), 2);
}

#[test]
fn content_disposition_carries_non_ascii_names() {
    let header = content_disposition_header(Disposition::Inline, "Zoë 日本.pdf");
    assert_eq!(
        header,
        "inline; filename=\"Zo_ _.pdf\"; filename*=UTF-8''Zo%C3%AB%20%E6%97%A5%E6%9C%AC.pdf"
    );
    assert!(header.is_ascii());
    let empty = content_disposition_header(Disposition::Attachment, "");
    assert_eq!(empty, "attachment; filename=\"document\"; filename*=UTF-8''document");
    let percent = content_disposition_header(Disposition::Attachment, "100%.txt");
    assert_eq!(
        percent,
        "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"
    );
}

#[test]
fn only_safe_images_pdfs_and_plain_text_are_inline() {
    for inline in [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "Text/Plain; charset=utf-8",
        "Image/PNG",
    ] {
        assert_eq!(disposition(inline), Disposition::Inline, "{inline}");
    }
    for attachment in [
        "image/svg+xml",
        "text/html",
        "text/csv",
        "application/msword",
        "application/octet-stream",
        "image/bmp",
        "",
    ] {
        assert_eq!(disposition(attachment), Disposition::Attachment, "{attachment}");
    }
    assert_eq!(disposition("application/pdf; x=y"), Disposition::Inline);
}

#[test]
fn inspection_and_headers_work_together() {
    let bytes = gif(2, 2);
    let inspection = inspect(&bytes, &policy()).unwrap();
    let name = display_name("../pics/cat\u{202E}gif.exe", &policy());
    let header = content_disposition_header(disposition(&inspection.media_type), &name);
    assert_eq!(header, "inline; filename=\"catgif.exe\"; filename*=UTF-8''catgif.exe");
}

// ---- ZIP-based Office documents ------------------------------------------------------------

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODT: &str = "application/vnd.oasis.opendocument.text";

const RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="PART"/></Relationships>"#;

/// A minimal OOXML package as Word, Excel and PowerPoint write them: the content types first,
/// the package relationships, then the parts.
fn ooxml(main_part: &str, content_type: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let types = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/{main_part}" ContentType="{content_type}"/></Types>"#
    );
    let rels = String::from_utf8(RELS.to_vec()).unwrap().replace("PART", main_part);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", types.as_bytes()),
        ("_rels/.rels", rels.as_bytes()),
    ];
    files.extend_from_slice(parts);
    zip(&files)
}

fn docx(padding: usize) -> Vec<u8> {
    let body = format!(
        r#"<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello{}</w:t></w:r></w:p></w:body></w:document>"#,
        " ".repeat(padding)
    );
    ooxml(
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        &[("word/document.xml", body.as_bytes())],
    )
}

fn xlsx() -> Vec<u8> {
    ooxml(
        "xl/workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        &[
            ("xl/workbook.xml", br#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
            ("xl/_rels/workbook.xml.rels", br#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
            ("xl/worksheets/sheet1.xml", br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#),
        ],
    )
}

fn pptx() -> Vec<u8> {
    ooxml(
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        &[(
            "ppt/presentation.xml",
            br#"<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>"#,
        )],
    )
}

fn odt() -> Vec<u8> {
    zip(&[
        ("mimetype", ODT.as_bytes()),
        ("META-INF/manifest.xml", br#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#),
        ("content.xml", br#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><office:body><office:text/></office:body></office:document-content>"#),
    ])
}

#[test]
fn office_documents_are_recognised_by_their_zip_directory_and_download_as_attachments() {
    for (bytes, expected) in [(docx(0), DOCX), (xlsx(), XLSX), (pptx(), PPTX), (odt(), ODT)] {
        let inspection = inspect(&bytes, &policy()).unwrap_or_else(|e| panic!("{expected}: {e}"));
        assert_eq!(inspection.media_type, expected);
        assert_eq!(inspection.kind, DocumentKind::Other);
        assert_eq!(disposition(&inspection.media_type), Disposition::Attachment);
    }
    for (content, expected) in [
        (
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.spreadsheet",
        ),
        (
            "application/vnd.oasis.opendocument.presentation",
            "application/vnd.oasis.opendocument.presentation",
        ),
    ] {
        let ods = zip(&[("mimetype", content.as_bytes()), ("content.xml", b"<x/>")]);
        assert_eq!(inspect(&ods, &policy()).unwrap().media_type, expected);
    }
}

#[test]
fn an_office_document_longer_than_its_head_is_told_by_its_tail() {
    let bytes = docx(3 * HEAD_LEN);
    assert!(is_zip(&bytes));
    let head = &bytes[..HEAD_LEN];
    let tail = &bytes[bytes.len() - ZIP_TAIL_LEN.min(bytes.len())..];
    assert_eq!(
        unsupported(inspect(head, &policy())),
        "application/zip",
        "the head alone cannot tell"
    );
    assert_eq!(inspect_with_tail(head, tail, &policy()).unwrap().media_type, DOCX);
    // A tail cut inside the directory tells nothing.
    assert_eq!(
        unsupported(inspect_with_tail(head, &tail[tail.len() - 40..], &policy())),
        "application/zip"
    );
}

#[test]
fn plain_and_hostile_zips_stay_refused() {
    let refused = |bytes: &[u8]| unsupported(inspect(bytes, &policy()));

    assert_eq!(refused(&zip(&[("notes.txt", b"hello")])), "application/zip");
    // Local entries that look like a Word file, and junk where the directory should be.
    let mut junk = zip_entry("[Content_Types].xml", b"<Types/>");
    junk.extend_from_slice(&zip_entry("word/document.xml", b"<w:document/>"));
    junk.extend_from_slice(&[0xAB; 200]);
    assert_eq!(refused(&junk), "application/zip");
    // Truncated: the end record is gone.
    let whole = docx(0);
    assert_eq!(refused(&whole[..whole.len() - 10]), "application/zip");
    // A directory claiming more bytes than the archive has, and more entries than are read.
    let mut huge = docx(0);
    let end = huge.len() - 22;
    huge[end + 12..end + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(refused(&huge), "application/zip");
    let mut many = docx(0);
    let end = many.len() - 22;
    many[end + 8..end + 12].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(refused(&many), "application/zip");
    // An ODF whose mimetype is compressed, or names another type, or is not first.
    let odg = zip(&[("mimetype", b"application/vnd.oasis.opendocument.graphics")]);
    assert_eq!(refused(&odg), "application/zip");
    let late = zip(&[("content.xml", b"<x/>"), ("mimetype", ODT.as_bytes())]);
    assert_eq!(refused(&late), "application/zip");
    // Word and Excel parts at once: not one thing.
    let both = ooxml(
        "word/document.xml",
        "x",
        &[("word/document.xml", b"<w/>"), ("xl/workbook.xml", b"<x/>")],
    );
    assert_eq!(refused(&both), "application/zip");
}

#[test]
fn a_zip_bomb_is_classified_without_being_inflated() {
    // 256 MiB of zeros in under 2 MiB, claiming the most a ZIP entry can hold.
    let bomb = deflated_zeros(256 * 1024 * 1024);
    assert!(bomb.len() < 2 * 1024 * 1024, "{}", bomb.len());
    let archive = zip_of(&[
        ZipFile {
            name: "[Content_Types].xml",
            method: 0,
            data: b"<Types/>",
            size: 8,
        },
        ZipFile {
            name: "word/document.xml",
            method: 8,
            data: &bomb,
            size: u32::MAX,
        },
    ]);
    let started = Instant::now();
    let head = &archive[..HEAD_LEN];
    let tail = &archive[archive.len() - ZIP_TAIL_LEN..];
    assert_eq!(inspect_with_tail(head, tail, &policy()).unwrap().media_type, DOCX);
    assert_eq!(inspect(&archive, &policy()).unwrap().media_type, DOCX);
    // Inflating 256 MiB takes far longer than reading a directory; generous for slow machines.
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[test]
fn a_plain_zip_is_accepted_only_when_the_policy_allows_it() {
    let allowing = policy().with_allowed_media_types(["application/zip"]).unwrap();
    let archive = zip(&[("notes.txt", b"hello")]);
    assert_eq!(inspect(&archive, &allowing).unwrap().media_type, "application/zip");
    assert_eq!(unsupported(inspect(&docx(0), &allowing)), DOCX);
}
