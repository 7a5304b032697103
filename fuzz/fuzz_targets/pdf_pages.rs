//! PDF page counting: the whole upload parsed on its own thread, as the upload path does.
//!
//! Input: the bytes of a PDF. Properties: a count is at least 1 page; counting again gives the
//! same answer; a refusal is an `Invalid` error on `file` (never a panic, a hang or unbounded
//! memory, which libFuzzer's `-timeout` and `-rss_limit_mb` catch). The policy's own timeout is
//! set above libFuzzer's, so that a slow parse is reported as a hang rather than hidden by the
//! library's timeout.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use collab_core::Error;
use collab_core::document::{DocumentPolicy, pdf_page_count};
use collab_fuzz::runtime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = DocumentPolicy::default()
        .with_pdf_timeout(Duration::from_secs(120))
        .expect("a valid timeout");
    let bytes = Bytes::copy_from_slice(data);
    let count = |bytes: Bytes| runtime().block_on(pdf_page_count(bytes, &policy));
    match count(bytes.clone()) {
        Ok(pages) => {
            assert!(pages >= 1, "a PDF of no pages was counted");
            assert_eq!(count(bytes).ok(), Some(pages), "counting is not deterministic");
        }
        Err(Error::Invalid { field: "file", .. }) => {}
        Err(e) => panic!("an unexpected refusal: {e:?}"),
    }
});
