//! Uploaded documents: what the bytes are, whether they are accepted, how to name and serve them.
//!
//! The type of a document comes from its bytes, never from the client's file name or declared
//! type. An upload goes through three steps:
//!
//! 1. While streaming it into the [`BlobStore`](crate::BlobStore), keep its first [`HEAD_LEN`]
//!    bytes and call [`inspect`]: it sniffs the media type, refuses what the
//!    [`DocumentPolicy`] does not allow, and reads image dimensions from the header.
//! 2. For a PDF, read the stored bytes back and call [`pdf_page_count`].
//! 3. Name it with [`display_name_for`] (the client's name, with the sniffed type's extension
//!    when its own is not one of that type's); serve it with [`disposition`] and
//!    [`content_disposition_header`].
//!
//! ```
//! use collab_core::document::*;
//! use collab_core::DocumentKind;
//!
//! let policy = DocumentPolicy::default();
//! let inspection = inspect(b"Meeting notes\n", &policy)?;
//! assert_eq!(inspection.media_type, "text/plain");
//! assert_eq!(inspection.kind, DocumentKind::Other);
//! assert!(inspect(b"<html><script>alert(1)</script>", &policy).is_err());
//!
//! let name = display_name_for("C:\\Users\\ada\\..\\notes\u{202E}txt.exe", &inspection.media_type, &policy);
//! assert_eq!(name, "notestxt.exe.txt");
//! let header = content_disposition_header(disposition(&inspection.media_type), &name);
//! assert_eq!(header, "inline; filename=\"notestxt.exe.txt\"; filename*=UTF-8''notestxt.exe.txt");
//! assert_eq!(disposition("application/zip"), Disposition::Attachment);
//! # Ok::<(), collab_core::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;

use crate::Error;
use crate::customer::is_bidi_control;
use crate::event::DocumentKind;

/// How many leading bytes of an upload [`inspect`] looks at: 64 KiB.
pub const HEAD_LEN: usize = 64 * 1024;

/// How many trailing bytes of a ZIP upload [`inspect_with_tail`] looks at for the archive's
/// central directory: 256 KiB. An Office document's directory lists a few dozen parts and takes
/// a few KiB; an archive whose directory does not fit is a plain ZIP.
pub const ZIP_TAIL_LEN: usize = 256 * 1024;

/// The most central-directory entries read; an archive with more is a plain ZIP.
const MAX_ZIP_ENTRIES: usize = 10_000;

/// What a display name becomes when nothing printable is left of it.
pub const FALLBACK_NAME: &str = "document";

/// The deepest nesting of `[` arrays and `<<` dictionaries a PDF may have before it is parsed.
pub const MAX_PDF_NESTING: usize = 256;

/// The stack of the thread that parses a PDF. Parsing recurses on nested objects; the nesting
/// pre-scan bounds the depth and this leaves ample room for what remains.
const PDF_THREAD_STACK: usize = 32 * 1024 * 1024;

/// The most one PDF stream may inflate to while the document is loaded (lopdf's own default is
/// 256 MiB, too much memory to spend on one upload).
const PDF_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// The longest extension [`display_name`] keeps when it shortens a name, in characters.
const MAX_KEPT_EXTENSION_CHARS: usize = 16;

/// Tags that make a browser treat text as HTML and run it, matched case-insensitively.
const HTML_MARKUP: &[&[u8]] = &[b"<html", b"<script", b"<!doctype", b"<iframe", b"<body", b"<head"];

/// The limits and the allow-list [`inspect`], [`pdf_page_count`] and [`display_name`] apply.
/// Build it from [`DocumentPolicy::default`] and the `with_` methods; each checks its bound and
/// names the field it refuses.
///
/// ```
/// use std::time::Duration;
/// use collab_core::document::DocumentPolicy;
///
/// let policy = DocumentPolicy::default()
///     .with_allowed_media_types(["application/pdf", "image/png"])?
///     .with_pdf_timeout(Duration::from_secs(5))?;
/// assert!(policy.allows("image/png"));
/// assert!(!policy.allows("text/plain"));
/// assert!(DocumentPolicy::default().with_max_image_pixels(0).is_err());
/// # Ok::<(), collab_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentPolicy {
    allowed_media_types: BTreeSet<String>,
    max_image_pixels: u64,
    max_pdf_bytes: u64,
    pdf_timeout: Duration,
    max_name_chars: usize,
}

impl Default for DocumentPolicy {
    fn default() -> Self {
        Self {
            allowed_media_types: Self::DEFAULT_MEDIA_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            max_image_pixels: Self::DEFAULT_MAX_IMAGE_PIXELS,
            max_pdf_bytes: Self::DEFAULT_MAX_PDF_BYTES,
            pdf_timeout: Self::DEFAULT_PDF_TIMEOUT,
            max_name_chars: Self::DEFAULT_MAX_NAME_CHARS,
        }
    }
}

impl DocumentPolicy {
    /// The media types accepted by default: common images, PDF, Microsoft Office (legacy and
    /// OOXML), OpenDocument text, spreadsheet and presentation, and plain text. Markup a browser
    /// would run (HTML, SVG, XML) is not among them.
    pub const DEFAULT_MEDIA_TYPES: &'static [&'static str] = &[
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "text/plain",
    ];
    /// 50 megapixels.
    pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;
    /// 1 gigapixel: the largest image limit accepted.
    pub const MAX_IMAGE_PIXELS: u64 = 1_000_000_000;
    /// 25 MiB.
    pub const DEFAULT_MAX_PDF_BYTES: u64 = 25 * 1024 * 1024;
    /// 1 GiB: the largest PDF size limit accepted (the whole PDF is held in memory to count).
    pub const MAX_PDF_BYTES: u64 = 1024 * 1024 * 1024;
    /// 10 seconds.
    pub const DEFAULT_PDF_TIMEOUT: Duration = Duration::from_secs(10);
    /// 10 minutes: the longest PDF timeout accepted.
    pub const MAX_PDF_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    /// 255 characters.
    pub const DEFAULT_MAX_NAME_CHARS: usize = 255;
    /// 32 characters: the shortest name limit accepted, room for a stem and an extension.
    pub const MIN_NAME_CHARS: usize = 32;
    /// 1,024 characters: the longest name limit accepted.
    pub const MAX_NAME_CHARS: usize = 1024;

    /// Replaces the allow-list. Each entry must be a lowercase `type/subtype` without parameters.
    pub fn with_allowed_media_types<I, S>(mut self, media_types: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut allowed = BTreeSet::new();
        for media_type in media_types {
            let media_type = media_type.into();
            if !is_plain_media_type(&media_type) {
                return Err(Error::invalid(
                    "allowed_media_types",
                    format!("{media_type:?} is not a lowercase type/subtype"),
                ));
            }
            allowed.insert(media_type);
        }
        self.allowed_media_types = allowed;
        Ok(self)
    }

    /// The largest image, in pixels (width × height): from 1 to 1 gigapixel, 50 megapixels by
    /// default. It guards against images that decompress to far more memory than their size.
    pub fn with_max_image_pixels(mut self, max: u64) -> Result<Self, Error> {
        if max == 0 || max > Self::MAX_IMAGE_PIXELS {
            return Err(Error::invalid("max_image_pixels", "must be from 1 to 1000000000"));
        }
        self.max_image_pixels = max;
        Ok(self)
    }

    /// The largest PDF whose pages are counted, in bytes: from 1 to 1 GiB, 25 MiB by default.
    pub fn with_max_pdf_bytes(mut self, max: u64) -> Result<Self, Error> {
        if max == 0 || max > Self::MAX_PDF_BYTES {
            return Err(Error::invalid("max_pdf_bytes", "must be from 1 byte to 1 GiB"));
        }
        self.max_pdf_bytes = max;
        Ok(self)
    }

    /// How long counting a PDF's pages may take: from 1 ms to 10 minutes, 10 s by default.
    pub fn with_pdf_timeout(mut self, timeout: Duration) -> Result<Self, Error> {
        if timeout < Duration::from_millis(1) || timeout > Self::MAX_PDF_TIMEOUT {
            return Err(Error::invalid("pdf_timeout", "must be from 1 ms to 10 minutes"));
        }
        self.pdf_timeout = timeout;
        Ok(self)
    }

    /// The longest display name, in characters: from 32 to 1,024, 255 by default.
    pub fn with_max_name_chars(mut self, max: usize) -> Result<Self, Error> {
        if !(Self::MIN_NAME_CHARS..=Self::MAX_NAME_CHARS).contains(&max) {
            return Err(Error::invalid("max_name_chars", "must be from 32 to 1024"));
        }
        self.max_name_chars = max;
        Ok(self)
    }

    /// Whether documents of `media_type` (as [`inspect`] reports it) are accepted.
    pub fn allows(&self, media_type: &str) -> bool {
        self.allowed_media_types.contains(media_type)
    }

    /// The accepted media types, in order.
    pub fn allowed_media_types(&self) -> impl Iterator<Item = &str> {
        self.allowed_media_types.iter().map(String::as_str)
    }

    /// The largest image, in pixels.
    pub fn max_image_pixels(&self) -> u64 {
        self.max_image_pixels
    }

    /// The largest PDF whose pages are counted, in bytes.
    pub fn max_pdf_bytes(&self) -> u64 {
        self.max_pdf_bytes
    }

    /// How long counting a PDF's pages may take.
    pub fn pdf_timeout(&self) -> Duration {
        self.pdf_timeout
    }

    /// The longest display name, in characters.
    pub fn max_name_chars(&self) -> usize {
        self.max_name_chars
    }
}

/// `type/subtype`, lowercase, of the characters RFC 6838 allows in names.
fn is_plain_media_type(media_type: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&-^_.+".contains(&b))
    };
    matches!(media_type.split_once('/'), Some((kind, sub)) if name(kind) && name(sub))
}

/// The display name of an upload, made from the client's file name.
///
/// Only the last path part is kept (split on `/` and `\`). Control characters, text-direction
/// overrides and other invisible formatting characters are removed; whitespace, and dots at the
/// start (hidden files, `..`) and at the end (Windows drops them, revealing another
/// extension), are trimmed. A name longer than the policy's limit is shortened, keeping its
/// extension when it has a short one. An empty result becomes [`FALLBACK_NAME`].
///
/// The name is for display only: blob keys never derive from it. It keeps the client's
/// extension, whatever the bytes are: once they are inspected, name the document with
/// [`display_name_for`].
pub fn display_name(raw: &str, policy: &DocumentPolicy) -> String {
    let visible: String = raw.chars().filter(|&c| !is_invisible(c)).collect();
    let last = visible
        .split(['/', '\\'])
        .map(trim_name)
        .rfind(|part| !part.is_empty())
        .unwrap_or_default();
    let bounded = bound_name(last, policy.max_name_chars);
    if bounded.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        bounded
    }
}

/// The display name of an upload whose bytes are of `media_type` (as [`inspect`] found them):
/// [`display_name`], then [`typed_name`], within the policy's length (keeping the extension).
///
/// Use this once the type is known; the name is then safe to save under whatever it is
/// served as.
pub fn display_name_for(raw: &str, media_type: &str, policy: &DocumentPolicy) -> String {
    let typed = typed_name(&display_name(raw, policy), media_type);
    bound_name(&typed, policy.max_name_chars)
}

/// `name` with the usual extension of `media_type` appended when its own is not one of that
/// type's (or it has none): a text upload named `invoice.html` becomes `invoice.html.txt`, a
/// PNG named `page.html` becomes `page.html.png`. Otherwise a browser's "Save as", or a file
/// taken from an export, would carry the client's extension and open as an active file (a web
/// page, a script, an HTML application) rather than as what was checked.
///
/// The extensions are compared ignoring ASCII case. Types outside
/// [`DocumentPolicy::DEFAULT_MEDIA_TYPES`] have no extensions here, so their names are kept as
/// they are: a host that allows such a type takes its names as given. The name is not
/// shortened; it grows by at most five characters.
///
/// ```
/// use collab_core::document::typed_name;
///
/// assert_eq!(typed_name("invoice.html", "text/plain"), "invoice.html.txt");
/// assert_eq!(typed_name("Holiday.JPEG", "image/jpeg"), "Holiday.JPEG");
/// assert_eq!(typed_name("scan", "application/pdf"), "scan.pdf");
/// ```
pub fn typed_name(name: &str, media_type: &str) -> String {
    let Some(extensions) = extensions_of(media_type) else {
        return name.to_owned();
    };
    let own = name
        .rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .map(|(_, extension)| extension);
    match own {
        Some(own) if extensions.iter().any(|e| own.eq_ignore_ascii_case(e)) => name.to_owned(),
        _ => format!("{name}.{}", extensions[0]),
    }
}

/// The extensions a file of `media_type` may carry, the usual one first; `None` for a type
/// outside the default allow-list.
fn extensions_of(media_type: &str) -> Option<&'static [&'static str]> {
    Some(match media_type {
        "image/png" => &["png"],
        "image/jpeg" => &["jpg", "jpeg", "jpe", "jfif"],
        "image/gif" => &["gif"],
        "image/webp" => &["webp"],
        "application/pdf" => &["pdf"],
        "application/msword" => &["doc"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => &["docx"],
        "application/vnd.ms-excel" => &["xls"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => &["xlsx"],
        "application/vnd.ms-powerpoint" => &["ppt"],
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => &["pptx"],
        "application/vnd.oasis.opendocument.text" => &["odt"],
        "application/vnd.oasis.opendocument.spreadsheet" => &["ods"],
        "application/vnd.oasis.opendocument.presentation" => &["odp"],
        // Text that no common program runs by its extension.
        "text/plain" => &["txt", "text", "log", "md", "csv"],
        _ => return None,
    })
}

/// Trims whitespace and dots at both ends.
fn trim_name(name: &str) -> &str {
    name.trim_matches(|c: char| c == '.' || c.is_whitespace())
}

/// Shortens `name` to `max` characters, keeping a short extension.
fn bound_name(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_owned();
    }
    if let Some((stem, extension)) = name.rsplit_once('.') {
        let extension_chars = extension.chars().count();
        if (1..=MAX_KEPT_EXTENSION_CHARS).contains(&extension_chars) {
            let stem: String = stem.chars().take(max.saturating_sub(extension_chars + 1)).collect();
            let stem = trim_name(&stem);
            if !stem.is_empty() {
                return format!("{stem}.{extension}");
            }
        }
    }
    let cut: String = name.chars().take(max).collect();
    trim_name(&cut).to_owned()
}

/// Characters that do not show but change how a name reads: controls, text-direction marks and
/// overrides, zero-width and other format characters (most of Unicode's `Cf`), line separators,
/// variation selectors and the blank Hangul fillers.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// What [`inspect`] found the bytes of an upload to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The media type sniffed from the bytes, e.g. `"image/png"`.
    pub media_type: String,
    /// Image dimensions, or PDF, or other. For a PDF it is `DocumentKind::Pdf { pages: 0 }`:
    /// the pages are counted from the whole document by [`pdf_page_count`].
    pub kind: DocumentKind,
}

/// Finds what an upload is from its first bytes, checks that against the policy and reads image
/// dimensions.
///
/// Pass the first [`HEAD_LEN`] bytes (or the whole upload if it is shorter). Text and markup are
/// judged on the first `HEAD_LEN` bytes only; binary formats may look further into `head` when
/// given more. That matters for legacy Office files (`.doc`, `.xls`, `.ppt`): their type is
/// in a directory that may lie past the head, and such a file whose type cannot be told from
/// its head is refused as `application/x-ole-storage` (a caller can inspect the whole file).
///
/// # Errors
///
/// - [`Error::Invalid`] (`file`): `head` is empty; an image whose dimensions cannot be read from
///   its header, or whose pixels exceed the policy's limit.
/// - [`Error::UnsupportedMediaType`]: the sniffed type is not on the allow-list. Bytes of no
///   known type are `application/octet-stream`; markup a browser would run is `text/html`,
///   `image/svg+xml` or `text/xml`.
pub fn inspect(head: &[u8], policy: &DocumentPolicy) -> Result<Inspection, Error> {
    inspect_with_tail(head, head, policy)
}

/// Whether the upload starting with `head` is a ZIP archive, whose type [`inspect_with_tail`]
/// tells from its last bytes when the head is not the whole upload.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
}

/// [`inspect`], given also the last bytes of the upload (its last [`ZIP_TAIL_LEN`] bytes, or the
/// whole upload when it is shorter), which only a ZIP archive needs.
///
/// A ZIP is classified by the entries its central directory lists, read from `tail` without
/// extracting anything: OOXML (Word, Excel, PowerPoint) by a `[Content_Types].xml` entry and
/// `word/`, `xl/` or `ppt/` parts; OpenDocument text, spreadsheet and presentation by a first,
/// stored `mimetype` entry, whose content is read from `head`. Any other archive, or one whose
/// directory is missing, malformed, larger than the tail or lists more than 10,000 entries, is
/// `application/zip` (refused by the default policy).
///
/// # Errors
///
/// As [`inspect`].
pub fn inspect_with_tail(head: &[u8], tail: &[u8], policy: &DocumentPolicy) -> Result<Inspection, Error> {
    if head.is_empty() {
        return Err(Error::invalid("file", "is empty"));
    }
    let media_type = sniff(head, tail);
    if !policy.allows(media_type) {
        return Err(Error::UnsupportedMediaType {
            media_type: media_type.to_owned(),
        });
    }
    let kind = if media_type.starts_with("image/") {
        image_kind(head, policy)?
    } else if media_type == "application/pdf" {
        DocumentKind::Pdf { pages: 0 }
    } else {
        DocumentKind::Other
    };
    Ok(Inspection {
        media_type: media_type.to_owned(),
        kind,
    })
}

/// The media type of the bytes.
fn sniff(bytes: &[u8], tail: &[u8]) -> &'static str {
    let found = infer::get(bytes);
    match found {
        // infer guesses Office types from the first local entries, which a client writes as it
        // likes: the central directory decides.
        Some(t) if is_zip(bytes) && (t.mime_type() == "application/zip" || is_office_zip(t.mime_type())) => {
            return zip_type(bytes, tail).unwrap_or("application/zip");
        }
        Some(t) if t.mime_type() == "application/x-ole-storage" => {
            return ole_office_type(bytes).unwrap_or(t.mime_type());
        }
        Some(t) if t.matcher_type() != infer::MatcherType::Text => return t.mime_type(),
        _ => {}
    }
    let head = &bytes[..bytes.len().min(HEAD_LEN)];
    // Text, or nothing infer knows. Binary formats are full of NULs; text never has one.
    if head.contains(&0) {
        return "application/octet-stream";
    }
    // infer's text matchers only look at the very start; markup anywhere in the head counts, in
    // any encoding, because a browser that sniffs it may run it.
    let infer_says = found.map(|t| t.mime_type());
    if contains_ignore_ascii_case(head, b"<svg") {
        "image/svg+xml"
    } else if infer_says == Some("text/html") || HTML_MARKUP.iter().any(|m| contains_ignore_ascii_case(head, m)) {
        "text/html"
    } else if infer_says == Some("text/xml") || contains_ignore_ascii_case(head, b"<?xml") {
        "text/xml"
    } else if !is_utf8(head) {
        "application/octet-stream"
    } else if let Some(other) = infer_says {
        // A shell script (`#!`): text, but refused unless allowed by name.
        other
    } else {
        "text/plain"
    }
}

/// The legacy Office type of an OLE compound file, from the class id of its root directory
/// entry, for when infer could not open the file because it is cut off at the head.
fn ole_office_type(bytes: &[u8]) -> Option<&'static str> {
    // Class ids as stored (the first three fields little-endian).
    const WORD: [u8; 16] = *b"\x06\x09\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46";
    const EXCEL_5: [u8; 16] = *b"\x10\x08\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46";
    const EXCEL_8: [u8; 16] = *b"\x20\x08\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46";
    const POWERPOINT: [u8; 16] = *b"\x10\x8D\x81\x64\x9B\x4F\xCF\x11\x86\xEA\x00\xAA\x00\xB9\x29\xE8";
    const ROOT_STORAGE: u8 = 5;

    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let sector_shift = u16_at(0x1E)?;
    if sector_shift != 9 && sector_shift != 12 {
        return None;
    }
    // Sector n starts after the header, which takes one sector.
    let sector_size = 1usize << sector_shift;
    let directory = usize::try_from(u32_at(0x30)?)
        .ok()?
        .checked_add(1)?
        .checked_mul(sector_size)?;
    let root = bytes.get(directory..directory.checked_add(128)?)?;
    if root[0x42] != ROOT_STORAGE {
        return None;
    }
    match root[0x50..0x60].try_into().ok()? {
        WORD => Some("application/msword"),
        EXCEL_5 | EXCEL_8 => Some("application/vnd.ms-excel"),
        POWERPOINT => Some("application/vnd.ms-powerpoint"),
        _ => None,
    }
}

/// The media types of the ZIP-based Office formats [`zip_type`] recognises.
const OFFICE_ZIP_TYPES: &[&str] = &[
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
];

fn is_office_zip(media_type: &str) -> bool {
    OFFICE_ZIP_TYPES.contains(&media_type)
}

/// The Office type of a ZIP archive, from the central directory at the end of `tail` and, for
/// OpenDocument, the `mimetype` entry at the start of `head`. Nothing is decompressed.
fn zip_type(head: &[u8], tail: &[u8]) -> Option<&'static str> {
    let (mut content_types, mut word, mut excel, mut powerpoint, mut mimetype_first) =
        (false, false, false, false, false);
    for (name, local_offset) in zip_directory(tail)? {
        match name {
            b"[Content_Types].xml" => content_types = true,
            b"mimetype" => mimetype_first |= local_offset == 0,
            _ if name.starts_with(b"word/") => word = true,
            _ if name.starts_with(b"xl/") => excel = true,
            _ if name.starts_with(b"ppt/") => powerpoint = true,
            _ => {}
        }
    }
    if content_types {
        return match (word, excel, powerpoint) {
            (true, false, false) => Some(OFFICE_ZIP_TYPES[0]),
            (false, true, false) => Some(OFFICE_ZIP_TYPES[1]),
            (false, false, true) => Some(OFFICE_ZIP_TYPES[2]),
            _ => None,
        };
    }
    if mimetype_first {
        let declared = stored_first_entry(head, b"mimetype")?;
        return OFFICE_ZIP_TYPES[3..].iter().copied().find(|t| t.as_bytes() == declared);
    }
    None
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    )))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The entries (name, offset of the local header) of the central directory that ends `tail`,
/// or `None` if there is no complete, well-formed one within it. ZIP64 and multi-disk archives
/// are not read: no Office document is one.
fn zip_directory(tail: &[u8]) -> Option<Vec<(&[u8], u32)>> {
    const END_LEN: usize = 22;
    const ENTRY_LEN: usize = 46;
    // The end record is last, followed only by a comment of up to 64 KiB that gives its length.
    let latest = tail.len().checked_sub(END_LEN)?;
    let end = (latest.saturating_sub(usize::from(u16::MAX))..=latest)
        .rev()
        .find(|&at| {
            tail[at..].starts_with(b"PK\x05\x06") && u16_at(tail, at + 20) == Some(tail.len() - at - END_LEN)
        })?;
    let single_disk = u16_at(tail, end + 4)? == 0 && u16_at(tail, end + 6)? == 0;
    let entries = u16_at(tail, end + 10)?;
    let size = usize::try_from(u32_at(tail, end + 12)?).ok()?;
    if !single_disk || entries > MAX_ZIP_ENTRIES || u32_at(tail, end + 16)? == u32::MAX {
        return None;
    }
    // The directory lies just before the end record.
    let directory = tail.get(end.checked_sub(size)?..end)?;
    let mut found = Vec::with_capacity(entries);
    let mut at = 0;
    for _ in 0..entries {
        if !directory.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let name_len = u16_at(directory, at + 28)?;
        let rest_len = u16_at(directory, at + 30)? + u16_at(directory, at + 32)?;
        let name_start = at + ENTRY_LEN;
        let name = directory.get(name_start..name_start + name_len)?;
        found.push((name, u32_at(directory, at + 42)?));
        at = name_start + name_len + rest_len;
    }
    (at == directory.len()).then_some(found)
}

/// The content of the archive's first entry when it is named `name` and stored uncompressed.
fn stored_first_entry<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    const LOCAL_LEN: usize = 30;
    const STORED: usize = 0;
    if !is_zip(head) || u16_at(head, 8)? != STORED {
        return None;
    }
    let size = usize::try_from(u32_at(head, 18)?).ok()?;
    let name_len = u16_at(head, 26)?;
    let extra_len = u16_at(head, 28)?;
    if head.get(LOCAL_LEN..LOCAL_LEN + name_len)? != name {
        return None;
    }
    let start = LOCAL_LEN + name_len + extra_len;
    head.get(start..start.checked_add(size)?)
}

/// Valid UTF-8. A character cut off by the end of a full head still counts: the rest of it is
/// in the bytes after the head.
fn is_utf8(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() == HEAD_LEN,
    }
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// The dimensions of an image, read from its header without decoding, within the pixel limit.
fn image_kind(head: &[u8], policy: &DocumentPolicy) -> Result<DocumentKind, Error> {
    let size = imagesize::blob_size(head)
        .map_err(|_| Error::invalid("file", "is an image whose dimensions cannot be read from its header"))?;
    let (Ok(width), Ok(height)) = (u32::try_from(size.width), u32::try_from(size.height)) else {
        return Err(too_many_pixels(policy));
    };
    if width == 0 || height == 0 {
        return Err(Error::invalid("file", "is an image with no pixels"));
    }
    if u64::from(width) * u64::from(height) > policy.max_image_pixels {
        return Err(too_many_pixels(policy));
    }
    Ok(DocumentKind::Image { width, height })
}

fn too_many_pixels(policy: &DocumentPolicy) -> Error {
    Error::invalid(
        "file",
        format!(
            "is an image larger than the limit of {} pixels (width × height)",
            policy.max_image_pixels
        ),
    )
}

/// Counts the pages of a whole PDF.
///
/// The work runs on a thread of its own with a large stack, off the async runtime's threads,
/// and is given the policy's timeout. A PDF larger than the policy's limit is refused at once;
/// one nested deeper than [`MAX_PDF_NESTING`] is refused before it is parsed.
///
/// # Errors
///
/// - [`Error::TooLarge`]: `bytes` is larger than the policy's `max_pdf_bytes`.
/// - [`Error::Invalid`] (`file`, "not a readable PDF: …"): the PDF is malformed, too deeply
///   nested, has no pages, could not be read within the timeout, or the parser failed.
/// - [`Error::Backend`]: no thread could be started for the parse.
///
/// # Panics
///
/// Outside a Tokio runtime with the time driver enabled, as [`tokio::time::timeout`] does.
pub async fn pdf_page_count(bytes: Bytes, policy: &DocumentPolicy) -> Result<u32, Error> {
    pdf_page_count_holding(bytes, policy, ()).await
}

/// [`pdf_page_count`], with `guard` kept alive until the parse thread ends, even after a
/// timeout: a semaphore permit passed here keeps counting a parse that outlived its caller.
pub async fn pdf_page_count_holding(
    bytes: Bytes,
    policy: &DocumentPolicy,
    guard: impl Send + 'static,
) -> Result<u32, Error> {
    if bytes.len() as u64 > policy.max_pdf_bytes {
        return Err(Error::TooLarge {
            limit: policy.max_pdf_bytes,
        });
    }
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("collab-pdf".to_owned())
        .stack_size(PDF_THREAD_STACK)
        .spawn(move || {
            // Nothing is shared with the parse, so a panic leaves nothing half-changed behind.
            let counted = catch_unwind(AssertUnwindSafe(|| count_pages(&bytes)))
                .unwrap_or_else(|_| Err(unreadable_pdf("the parser failed")));
            // After a timeout nobody listens any more; the result is dropped.
            let _ = sender.send(counted);
            drop(guard);
        })
        .map_err(|e| Error::internal("pdf thread", e))?;
    // On timeout the thread cannot be stopped: it runs the parse to its end, bounded by the
    // size and nesting limits above, and then exits.
    match tokio::time::timeout(policy.pdf_timeout, receiver).await {
        Ok(Ok(counted)) => counted,
        Ok(Err(_)) => Err(unreadable_pdf("the parser stopped without an answer")),
        Err(_) => Err(unreadable_pdf(format!(
            "reading it took longer than {} ms",
            policy.pdf_timeout.as_millis()
        ))),
    }
}

/// Runs on the PDF thread: the nesting scan too reads every byte, so it stays off the runtime.
fn count_pages(bytes: &[u8]) -> Result<u32, Error> {
    if nesting_exceeds(bytes, MAX_PDF_NESTING) {
        return Err(unreadable_pdf(format!(
            "objects are nested deeper than {MAX_PDF_NESTING} levels"
        )));
    }
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(PDF_MAX_DECOMPRESSED),
        ..lopdf::LoadOptions::default()
    };
    let document = lopdf::Document::load_mem_with_options(bytes, options).map_err(|e| unreadable_pdf(e.to_string()))?;
    // The page-tree walk is bounded by the number of objects, so a tree that refers back to
    // itself ends (with the pages reached so far) instead of looping.
    let pages = document.page_iter().count();
    match u32::try_from(pages) {
        Ok(0) => Err(unreadable_pdf("it has no pages")),
        Ok(pages) => Ok(pages),
        Err(_) => Err(unreadable_pdf("it has too many pages")),
    }
}

fn unreadable_pdf(reason: impl std::fmt::Display) -> Error {
    Error::invalid("file", format!("not a readable PDF: {reason}"))
}

/// Whether `[` arrays and `<<` dictionaries nest deeper than `max` anywhere in the PDF.
///
/// A lexical scan, not a parse: it skips comments, literal and hex strings, and the bodies of
/// streams (from `stream` to the next `endstream`, ignoring `/Length`). It can over-count, and
/// refuse a PDF a full parser would read, when a stream's binary data happens to contain
/// `endstream` followed by many `[`; an unbalanced `(` can make it under-count, and then lopdf's
/// own nesting limit still applies.
fn nesting_exceeds(pdf: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&byte) = pdf.get(i) {
        let next = pdf.get(i + 1).copied();
        match byte {
            b'%' => {
                while pdf.get(i).is_some_and(|b| *b != b'\r' && *b != b'\n') {
                    i += 1;
                }
            }
            b'(' => i = skip_literal_string(pdf, i),
            b'<' if next == Some(b'<') => {
                depth += 1;
                i += 1;
            }
            b'<' => {
                while pdf.get(i).is_some_and(|b| *b != b'>') {
                    i += 1;
                }
            }
            b'>' if next == Some(b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b's' if starts_stream(pdf, i) => match find(pdf, i + 6, b"endstream") {
                Some(end) => i = end + b"endstream".len() - 1,
                None => return false,
            },
            _ => {}
        }
        if depth > max {
            return true;
        }
        i += 1;
    }
    false
}

/// The index of the `)` closing the literal string opened at `open`, or the end.
fn skip_literal_string(pdf: &[u8], open: usize) -> usize {
    let mut level = 0usize;
    let mut i = open;
    while let Some(&byte) = pdf.get(i) {
        match byte {
            b'\\' => i += 1,
            b'(' => level += 1,
            b')' => {
                level -= 1;
                if level == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Whether the `stream` keyword, followed by an end of line, starts at `i`.
fn starts_stream(pdf: &[u8], i: usize) -> bool {
    let delimited_before = i == 0 || pdf[i - 1].is_ascii_whitespace() || pdf[i - 1] == b'>';
    delimited_before && pdf[i..].starts_with(b"stream") && matches!(pdf.get(i + 6), Some(b'\r' | b'\n'))
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let rest = haystack.get(from..)?;
    rest.windows(needle.len()).position(|w| w == needle).map(|at| from + at)
}

/// How a browser should present a document it downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Shown by the browser (in a new tab for a link): images, PDFs and plain text, which a
    /// browser renders without running anything.
    Inline,
    /// Saved as a file.
    Attachment,
}

impl Disposition {
    /// The header's disposition type: `"inline"` or `"attachment"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }
}

/// The media types served inline ([`disposition`]).
pub const INLINE_MEDIA_TYPES: [&str; 6] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// How to serve a document of `media_type`: inline only for PNG, JPEG, GIF and WebP images,
/// PDFs and plain text ([`INLINE_MEDIA_TYPES`]), so that a link to one opens in a new tab as the
/// product promises; everything else as an attachment. Parameters (`; charset=…`) and case are
/// ignored. Every document is served sandboxed and `nosniff`
/// ([`DocumentDownload::headers`](crate::rooms::DocumentDownload::headers)), so plain text
/// shows as text, never as a page.
pub fn disposition(media_type: &str) -> Disposition {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    let inline = INLINE_MEDIA_TYPES.iter().any(|t| t.eq_ignore_ascii_case(essence));
    if inline {
        Disposition::Inline
    } else {
        Disposition::Attachment
    }
}

/// `text` made safe inside HTML, as an element's content or a quoted attribute's value: `&`,
/// `<`, `>`, `"` and `'` become entities.
///
/// ```
/// assert_eq!(
///     collab_core::document::escape_html("<b>\"Tom\" & 'Jerry'</b>"),
///     "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
/// );
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `Content-Disposition` header value (RFC 6266) carrying `name` twice: as an ASCII-only
/// quoted `filename` for old clients, and as the exact `filename*` (RFC 5987, UTF-8,
/// percent-encoded), which current browsers prefer.
///
/// In `filename`, every character outside printable ASCII, and `"`, `\` and `%`, becomes `_`, so
/// no input can end the quoted string or the header. An empty name is sent as
/// [`FALLBACK_NAME`].
///
/// ```
/// use collab_core::document::{content_disposition_header, Disposition};
///
/// assert_eq!(
///     content_disposition_header(Disposition::Inline, "Rapport «été».pdf"),
///     "inline; filename=\"Rapport _t_.pdf\"; filename*=UTF-8''Rapport%20%C2%AB%C3%A9t%C3%A9%C2%BB.pdf",
/// );
/// ```
pub fn content_disposition_header(disposition: Disposition, name: &str) -> String {
    let name = if name.is_empty() { FALLBACK_NAME } else { name };
    let mut header = format!("{}; filename=\"", disposition.as_str());
    let mut last_was_replaced = false;
    for c in name.chars() {
        let safe = (' '..='~').contains(&c) && !matches!(c, '"' | '\\' | '%');
        if safe {
            header.push(c);
        } else if !last_was_replaced {
            // One `_` for a run of unsafe characters keeps the fallback readable.
            header.push('_');
        }
        last_was_replaced = !safe;
    }
    header.push_str("\"; filename*=UTF-8''");
    for byte in name.bytes() {
        // RFC 5987 attr-char: everything else is percent-encoded.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            header.push(char::from(byte));
        } else {
            let _ = write!(header, "%{byte:02X}");
        }
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_named_as_an_active_file_gets_the_text_extension() {
        for name in [
            "invoice.html",
            "x.svg",
            "a.js",
            "a.hta",
            "a.cmd",
            "b.HTM",
            "c.exe",
            "d.txt.lnk",
        ] {
            assert_eq!(typed_name(name, "text/plain"), format!("{name}.txt"), "{name}");
        }
        for name in ["notes.txt", "NOTES.TXT", "server.log", "README.md", "figures.csv"] {
            assert_eq!(typed_name(name, "text/plain"), name, "{name}");
        }
        assert_eq!(typed_name("notes", "text/plain"), "notes.txt", "no extension");
        assert_eq!(typed_name("v1.2 final", "text/plain"), "v1.2 final.txt");
    }

    #[test]
    fn images_pdfs_and_office_files_get_their_own_extensions() {
        let cases = [
            ("page.html", "image/png", "page.html.png"),
            ("Photo.JPEG", "image/jpeg", "Photo.JPEG"),
            ("photo.png", "image/jpeg", "photo.png.jpg"),
            ("run.exe", "application/pdf", "run.exe.pdf"),
            ("Report.PDF", "application/pdf", "Report.PDF"),
            ("macro.docm", OFFICE_ZIP_TYPES[0], "macro.docm.docx"),
            ("old.xls", "application/vnd.ms-excel", "old.xls"),
            (
                "sheet.ods",
                "application/vnd.oasis.opendocument.spreadsheet",
                "sheet.ods",
            ),
        ];
        for (name, media_type, typed) in cases {
            assert_eq!(typed_name(name, media_type), typed, "{name} as {media_type}");
        }
        // A type the host allowed beyond the defaults: its names are taken as given.
        assert_eq!(typed_name("page.html", "text/html"), "page.html");
    }

    #[test]
    fn every_default_type_has_extensions() {
        for media_type in DocumentPolicy::DEFAULT_MEDIA_TYPES {
            let extensions = extensions_of(media_type).unwrap_or_default();
            assert!(!extensions.is_empty(), "{media_type}");
            let usual = format!("name.{}", extensions[0]);
            assert_eq!(typed_name(&usual, media_type), usual, "{media_type}");
        }
    }

    #[test]
    fn typed_display_names_stay_within_the_limit_and_are_stable() {
        let policy = DocumentPolicy::default();
        assert_eq!(
            display_name_for("../../invoice.html\u{202E}", "text/plain", &policy),
            "invoice.html.txt"
        );
        let long = format!("{}.html", "n".repeat(300));
        // Shortened to 255 with ".html" kept, then ".txt" added, then the stem cut (and the dot
        // it now ends with trimmed).
        let name = display_name_for(&long, "text/plain", &policy);
        assert_eq!(name, format!("{}.txt", "n".repeat(250)));
        for raw in ["invoice.html", "notes.txt", "", long.as_str(), "a.....html"] {
            let once = display_name_for(raw, "text/plain", &policy);
            assert_eq!(display_name_for(&once, "text/plain", &policy), once, "{raw:?}");
        }
        assert_eq!(display_name_for("", "text/plain", &policy), "document.txt");
    }
}
