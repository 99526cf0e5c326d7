//! The one Unicode normaliser both search modes share, on records and
//! queries alike: what counts as equal.
//!
//! Each character goes through Unicode compatibility decomposition (NFKD),
//! loses its combining marks, and is fully case folded, then decomposed
//! again (folding can produce decomposable characters, for instance
//! `İ` → `i̇`), so that the result is stable: `normalise(normalise(x)) ==
//! normalise(x)`. In effect `Café`, `CAFE` and `café` are all `cafe`;
//! `Straße` is `strasse`; the ligature `ﬁ` is `fi`; fullwidth `ＡＢＣ` is
//! `abc`; `Σ`, `σ` and final `ς` are all `σ`.
//!
//! Trade-offs, on purpose:
//!
//! - **Diacritics are not distinctive.** `resume` finds `résumé`, at the
//!   price of `résumé` also matching `resume`. Users rarely type accents in a
//!   search box, so this is the choice every mail search makes.
//! - **Kana voicing marks go the same way.** NFKD splits `が` into `か` and a
//!   combining voiced mark, which is dropped like any diacritic, so `が` and
//!   `か` match each other (as do half- and fullwidth katakana).
//! - **Other combining marks too**, including the vowel signs of Indic and
//!   Thai scripts. Words there are matched by their consonant skeleton:
//!   coarser, but query and text are treated alike, so nothing is missed.
//! - **Hangul syllables stay composed.** NFKD would split each syllable
//!   (U+AC00–U+D7A3) into two or three conjoining jamo; kept whole, each
//!   syllable is one token, as Korean search expects. Text that arrives
//!   already decomposed into jamo (rare; some macOS file names) is not
//!   recomposed, because normalisation works one character at a time.
//! - **Turkish dotless `ı`** stays `ı`, and `İ` becomes `i`: Unicode's
//!   default, locale-free folding.
//!
//! ASCII, the bulk of most mail, takes a fast path: a byte loop that only
//! lowercases. Only non-ASCII characters pay for decomposition and folding.

use caseless::Caseless;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Normalises text for matching: NFKD, combining marks dropped, full case
/// folding, hangul syllables kept whole (see the module documentation).
///
/// ```
/// use sealdex::text::normalise;
/// assert_eq!(normalise("Crème BRÛLÉE"), "creme brulee");
/// assert_eq!(normalise("Straße ﬁle ＡＢＣ"), "strasse file abc");
/// assert_eq!(normalise("한국어 がくせい"), "한국어 かくせい");
/// ```
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalise_into(text, &mut out);
    out
}

/// Appends the normalised form of `text` to `out`; the same as calling
/// [`normalise_char`] on each character, with a fast path for runs of ASCII.
pub fn normalise_into(text: &str, out: &mut String) {
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(bytes.len() - i);
        if run > 0 {
            let start = out.len();
            out.push_str(&text[i..i + run]);
            out[start..].make_ascii_lowercase();
            i += run;
        }
        // `i` is at a non-ASCII character boundary, or at the end: take the
        // slow path up to the next ASCII character.
        for c in text[i..].chars() {
            if c.is_ascii() {
                break;
            }
            normalise_general(c, out);
            i += c.len_utf8();
        }
    }
}

/// Appends the normalised form of one character to `out` (zero or more
/// characters). [`normalise_into`] is exactly this, applied to each
/// character in turn; it exists separately so that match offsets in
/// normalised text can be mapped back to the original text.
pub fn normalise_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        normalise_general(c, out);
    }
}

/// The full path for any character, ASCII included (the fast paths must
/// agree with it; tests check that they do).
pub(super) fn normalise_general(c: char, out: &mut String) {
    if is_hangul_syllable(c) {
        // Precomposed syllables have no case and no marks: kept whole.
        out.push(c);
        return;
    }
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        for folded in std::iter::once(d).default_case_fold() {
            decompose_compatible(folded, |e| {
                if !is_combining_mark(e) {
                    out.push(e);
                }
            });
        }
    });
}

fn is_hangul_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}
