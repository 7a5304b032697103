//! Content sniffing and image inspection: what an upload is, from its first bytes.
//!
//! Input: the bytes of an upload (the target passes at most the head `inspect` looks at, as the
//! upload path does). Each input is inspected under the default policy and under one that also
//! allows the other image formats the dimension reader knows, with a small pixel limit.
//! Properties: an accepted upload has an allowed type; an image has width and height of at least
//! 1 and within the pixel limit; text passed as `text/plain` holds no markup a browser would run
//! and no NUL; a PDF is announced with its pages still to count; inspecting again gives the same
//! answer.
#![no_main]

use collab_core::DocumentKind;
use collab_core::document::{DocumentPolicy, HEAD_LEN, Inspection, inspect};
use libfuzzer_sys::fuzz_target;

/// Markup a browser would run, whatever the case.
const MARKUP: &[&[u8]] = &[
    b"<html",
    b"<script",
    b"<!doctype",
    b"<iframe",
    b"<body",
    b"<head",
    b"<svg",
    b"<?xml",
];

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(HEAD_LEN)];
    let all_images = DocumentPolicy::default()
        .with_allowed_media_types(DocumentPolicy::DEFAULT_MEDIA_TYPES.iter().copied().chain([
            "image/bmp",
            "image/tiff",
            "image/heif",
            "image/avif",
            "image/vnd.microsoft.icon",
            "image/jxl",
            "image/vnd.adobe.photoshop",
        ]))
        .and_then(|p| p.with_max_image_pixels(1_000_000))
        .expect("a valid policy");
    for policy in [DocumentPolicy::default(), all_images] {
        let result = inspect(head, &policy);
        let again = inspect(head, &policy);
        assert_eq!(
            result.as_ref().map_err(ToString::to_string),
            again.as_ref().map_err(ToString::to_string),
            "inspection is not deterministic"
        );
        if let Ok(inspection) = result {
            check(head, &policy, &inspection);
        }
    }
});

fn check(head: &[u8], policy: &DocumentPolicy, inspection: &Inspection) {
    let media_type = inspection.media_type.as_str();
    assert!(policy.allows(media_type), "{media_type} is not allowed");
    match inspection.kind {
        DocumentKind::Image { width, height } => {
            assert!(media_type.starts_with("image/"), "{media_type} has dimensions");
            assert!(width >= 1 && height >= 1, "an image of {width}×{height}");
            assert!(
                u64::from(width) * u64::from(height) <= policy.max_image_pixels(),
                "{width}×{height} is over the pixel limit"
            );
        }
        DocumentKind::Pdf { pages } => {
            assert_eq!(media_type, "application/pdf");
            assert_eq!(pages, 0, "pages are counted from the whole document");
        }
        DocumentKind::Other => {
            assert!(!media_type.starts_with("image/"), "an image without dimensions");
            assert_ne!(media_type, "application/pdf");
        }
    }
    if media_type == "text/plain" {
        assert!(!head.contains(&0), "text with a NUL byte");
        for markup in MARKUP {
            assert!(
                !head.windows(markup.len()).any(|w| w.eq_ignore_ascii_case(markup)),
                "text/plain holding {:?}",
                String::from_utf8_lossy(markup)
            );
        }
    }
}
