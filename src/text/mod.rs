//! Text: what search sees of a record's text. HTML turned into the text a
//! reader sees ([`html_to_text`]), the one Unicode normaliser
//! ([`normalise()`]) and the tokenizer ([`tokens()`]).
//!
//! They live together because together they decide *what text search
//! sees*. The forward scan and the inverted index both call the normaliser
//! and the tokenizer, on records and on queries alike; if the two modes
//! normalised or split differently they would return different results for
//! the same query. The Cleaner ([`crate::clean`]) uses the HTML extractor
//! to turn a decrypted message into a record.
//!
//! One module per concern: `html` (HTML to text: one pass over html5gum's
//! tokens, or html2text when style sheets may hide elements), `normalise`
//! (NFKD, marks dropped, full case folding, hangul kept whole) and `tokens`
//! (runs of letters and digits; each CJK ideograph, kana or hangul syllable
//! a token of its own). Each one's documentation explains its trade-offs.

mod html;
mod normalise;
mod tokens;

#[cfg(test)]
mod tests;

pub use html::html_to_text;
pub use normalise::{normalise, normalise_char, normalise_into};
pub use tokens::{Tokens, is_single_char_token, is_word_char, tokens};
