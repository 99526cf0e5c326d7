//! Arbitrary bytes as a PDF (issue 16): lopdf and pdf-extract through
//! `sealdex::extract` must never bring the process down.
//!
//! pdf-extract has `unwrap`s that malformed PDFs reach; sealdex runs it
//! under `catch_unwind` and reports such a document as malformed, its
//! documented behaviour. libFuzzer's panic hook aborts before unwinding,
//! so panics raised inside pdf-extract, lopdf and the parsers pdf-extract
//! calls (adobe-cmap-parser, type1-encoding-parser, cff-parser,
//! postscript; the first was found by this target) are let through to
//! sealdex's `catch_unwind`; every other panic still aborts and is
//! reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::extract::{Limits, extract};

fuzz_target!(
    init: {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            const PDF_CRATES: [&str; 6] = [
                "/pdf-extract-",
                "/lopdf-",
                "/adobe-cmap-parser-",
                "/type1-encoding-parser-",
                "/cff-parser-",
                "/postscript-",
            ];
            let in_pdf_crates = info
                .location()
                .is_some_and(|l| PDF_CRATES.iter().any(|c| l.file().contains(c)));
            if !in_pdf_crates {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
        let limits = Limits::default();
        if let Ok(doc) = extract("a.pdf", data, &limits) {
            assert!(doc.text.len() <= limits.max_text_bytes);
        }
    }
);
