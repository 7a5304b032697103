//! Display names of uploads, and the `Content-Disposition` header that carries them.
//!
//! Input: the first byte picks the policy's name limit (32 to 1,024 characters); the rest is the
//! client's file name. Properties: the display name is never empty, within the limit, a single
//! path part (no `/` or `\`), free of control and text-direction characters, not starting with a
//! dot or space, not ending with either, and sanitising it again changes nothing. The header is
//! a valid HTTP header value whose quoted `filename` cannot be closed early and whose
//! `filename*` decodes back to the exact name.
#![no_main]

use axum::http::HeaderValue;
use collab_core::document::{
    Disposition, DocumentPolicy, FALLBACK_NAME, content_disposition_header, display_name, disposition,
};
use collab_fuzz::{is_bidi_control, percent_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, raw)) = data.split_first() else {
        return;
    };
    let span = DocumentPolicy::MAX_NAME_CHARS - DocumentPolicy::MIN_NAME_CHARS + 1;
    let max = DocumentPolicy::MIN_NAME_CHARS + usize::from(limit) * 4 % span;
    let policy = DocumentPolicy::default()
        .with_max_name_chars(max)
        .expect("the limit is within bounds");
    let raw = String::from_utf8_lossy(raw);

    let name = display_name(&raw, &policy);
    assert!(!name.is_empty());
    assert!(name.chars().count() <= max, "{name:?} is longer than {max}");
    assert!(!name.contains(['/', '\\']), "{name:?} is more than one path part");
    assert!(
        !name
            .chars()
            .any(|c| c.is_control() || is_bidi_control(c) || matches!(c, '\u{200B}'..='\u{200F}' | '\u{FEFF}')),
        "{name:?} holds an invisible character"
    );
    for end in [name.chars().next(), name.chars().next_back()].into_iter().flatten() {
        assert!(
            end != '.' && !end.is_whitespace(),
            "{name:?} starts or ends with a dot or a space"
        );
    }
    assert_eq!(display_name(&name, &policy), name, "sanitising is not idempotent");
    if name != FALLBACK_NAME {
        // Every character shown was in the client's name.
        assert!(name.chars().all(|c| raw.contains(c)), "{name:?} invents characters");
    }

    for kind in [Disposition::Inline, Disposition::Attachment] {
        let header = content_disposition_header(kind, &name);
        assert!(
            HeaderValue::from_str(&header).is_ok(),
            "{header:?} is not a header value"
        );
        let quoted = header
            .strip_prefix(kind.as_str())
            .and_then(|h| h.strip_prefix("; filename=\""))
            .expect("the header starts with the disposition and the quoted name");
        let (fallback, extended) = quoted
            .split_once("\"; filename*=UTF-8''")
            .expect("the quoted name ends where filename* starts");
        assert!(
            !fallback.contains(['"', '\\', '%']) && fallback.chars().all(|c| (' '..='~').contains(&c)),
            "{fallback:?} is not a safe quoted name"
        );
        assert_eq!(
            percent_decode(extended).as_deref(),
            Some(name.as_str()),
            "filename* does not decode back"
        );
    }

    // The disposition only ever makes images, PDFs and plain text inline, whatever the media
    // type says.
    if disposition(&raw) == Disposition::Inline {
        let essence = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        assert!(
            [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain"
            ]
            .contains(&essence.as_str()),
            "{raw:?} is served inline"
        );
    }
});
