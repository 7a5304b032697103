//! What the fuzz targets share: how one input is split into several text fields, the
//! reference checks the targets assert with, and the runtime async targets run on.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The byte that separates the fields of one input. It never occurs in UTF-8, so a field's text
/// cannot contain it, and seeds stay readable.
pub const SEPARATOR: u8 = 0xFF;

/// Splits `data` into `N` fields at [`SEPARATOR`] bytes, each decoded as UTF-8 (lossily: an
/// invalid byte becomes U+FFFD). Missing fields are empty; the last field keeps any further
/// separators, decoded as U+FFFD.
pub fn fields<const N: usize>(data: &[u8]) -> [String; N] {
    raw_fields::<N>(data).map(|field| String::from_utf8_lossy(field).into_owned())
}

/// Splits `data` into `N` byte fields at [`SEPARATOR`] bytes, as [`fields`] does, undecoded.
pub fn raw_fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut parts = data.splitn(N, |b| *b == SEPARATOR);
    std::array::from_fn(|_| parts.next().unwrap_or_default())
}

/// Joins fields into one input, the inverse of [`fields`] (for the seed generator).
pub fn join(fields: &[&[u8]]) -> Vec<u8> {
    fields.join(&SEPARATOR)
}

/// Unicode's explicit bidirectional formatting characters: a name must never carry one.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_at_the_separator_and_pad() {
        let data = join(&[b"a", b"b\xFFc"]);
        assert_eq!(fields::<2>(&data), ["a".to_owned(), "b\u{FFFD}c".to_owned()]);
        assert_eq!(fields::<3>(b"x"), ["x".to_owned(), String::new(), String::new()]);
    }

    #[test]
    fn percent_decoding_reads_escapes() {
        assert_eq!(percent_decode("a%20b%C3%A9").as_deref(), Some("a bé"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}

/// One current-thread runtime (with timers) for the whole run: building one per input would
/// dominate the execution time.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}
