//! Arbitrary text as an HTML body: the cleaner's one-pass HTML converter
//! (and its html2text fallback for documents with style sheets) must never
//! panic, must not grow the text beyond what the markup holds, and its
//! output must normalise and tokenise like any other text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::clean;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let text = clean::html_to_text(&html);
    // Output stays linear in the input: a character reference or a NUL
    // (replaced by U+FFFD) at most triples, `alt` text is written once per
    // image, and separators are shorter than the tags they stand for.
    assert!(
        text.len() <= html.len() * 3 + 16,
        "{} from {}",
        text.len(),
        html.len()
    );
    let normalised = clean::normalise(&text);
    for (start, token) in clean::tokens(&normalised) {
        assert_eq!(&normalised[start..start + token.len()], token);
    }
});
