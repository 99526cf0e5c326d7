//! Arbitrary bytes as a DOCX, ODT, Markdown or text document (issue 16),
//! the first byte choosing which: the zip reader, quick-xml and
//! pulldown-cmark must never panic, and extracted text stays within the
//! limit it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::extract::{Limits, extract};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let name = ["a.docx", "a.odt", "a.md", "a.txt", "noextension"][usize::from(which) % 5];
    let limits = Limits {
        max_xml_bytes: 1 << 20,
        max_text_bytes: 64 << 10,
    };
    if let Ok(doc) = extract(name, bytes, &limits) {
        assert!(doc.text.len() <= limits.max_text_bytes);
    }
});
