//! The tokenizer both search modes share: what counts as a word.
//!
//! A token is a maximal run of letters and digits ([`char::is_alphanumeric`]),
//! except that each CJK ideograph, hiragana, katakana and hangul syllable is
//! a token of its own ([`is_single_char_token`]): those scripts do not put
//! spaces between words, and one character per token lets a phrase query
//! match any word without a dictionary.

/// Whether `c` can be part of a token: a letter or a digit in any script.
///
/// ```
/// use sealdex::text::is_word_char;
/// assert!(is_word_char('a') && is_word_char('7') && is_word_char('語'));
/// assert!(!is_word_char('-') && !is_word_char(' ') && !is_word_char('😀'));
/// ```
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        c.is_alphanumeric()
    }
}

/// Whether `c` is a word character that forms a token on its own: CJK
/// ideographs (every CJK Unified Ideographs block, extensions A to I, and
/// the compatibility ideographs), hiragana, katakana (with the phonetic
/// extensions and halfwidth forms) and hangul syllables.
///
/// These are code point blocks, not a script table, on purpose: a block is
/// stable across Unicode versions, so an index built today tokenises the
/// same way after a toolchain upgrade.
///
/// ```
/// use sealdex::text::is_single_char_token;
/// assert!(is_single_char_token('日') && is_single_char_token('テ') && is_single_char_token('한'));
/// assert!(!is_single_char_token('a') && !is_single_char_token('・'));
/// ```
pub fn is_single_char_token(c: char) -> bool {
    in_single_char_blocks(c) && c.is_alphanumeric()
}

fn in_single_char_blocks(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{309F}'       // Hiragana
        | '\u{30A0}'..='\u{30FF}'     // Katakana
        | '\u{31F0}'..='\u{31FF}'     // Katakana Phonetic Extensions
        | '\u{FF66}'..='\u{FF9F}'     // Halfwidth Katakana
        | '\u{3400}'..='\u{4DBF}'     // CJK Unified Ideographs Extension A
        | '\u{4E00}'..='\u{9FFF}'     // CJK Unified Ideographs
        | '\u{F900}'..='\u{FAFF}'     // CJK Compatibility Ideographs
        | '\u{AC00}'..='\u{D7A3}'     // Hangul Syllables
        | '\u{20000}'..='\u{2A6DF}'   // Extension B
        | '\u{2A700}'..='\u{2EE5F}'   // Extensions C, D, E, F, I
        | '\u{2F800}'..='\u{2FA1F}'   // CJK Compatibility Ideographs Supplement
        | '\u{30000}'..='\u{323AF}'   // Extensions G, H
    )
}

/// How a non-ASCII character takes part in tokens; one Unicode table
/// lookup per character, which dominates tokenising non-Latin text.
#[derive(PartialEq, Eq)]
pub(super) enum Class {
    Separator,
    Word,
    Single,
}

pub(super) fn classify(c: char) -> Class {
    if !c.is_alphanumeric() {
        Class::Separator
    } else if in_single_char_blocks(c) {
        Class::Single
    } else {
        Class::Word
    }
}

/// Splits text into tokens: `(byte offset, token)` pairs, in order, never
/// overlapping. Meant for normalised text (see [`normalise`](super::normalise())); on other text
/// it still splits correctly, but case and accents are left as they are.
///
/// ```
/// use sealdex::text::{normalise, tokens};
/// let text = normalise("O'Reilly: 日本語 apt-get");
/// let words: Vec<&str> = tokens(&text).map(|(_, t)| t).collect();
/// assert_eq!(words, ["o", "reilly", "日", "本", "語", "apt", "get"]);
/// ```
pub fn tokens(s: &str) -> Tokens<'_> {
    Tokens { s, pos: 0 }
}

/// Iterator over the tokens of a string; see [`tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    s: &'a str,
    pos: usize,
}

/// Whether an ASCII byte is part of a word: letters and digits. A table,
/// because the tokenizer asks once per byte of every text it indexes.
const ASCII_WORD: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    t
};

impl<'a> Tokens<'a> {
    /// The character starting at byte `at` (which is always a boundary).
    fn char_at(&self, at: usize) -> Option<char> {
        self.s.get(at..).and_then(|rest| rest.chars().next())
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // The position lives in a local while scanning, so that the loops
        // over ASCII bytes are a table lookup and an increment each.
        let bytes = self.s.as_bytes();
        let mut pos = self.pos;
        // Skip to the start of the next token.
        let start = loop {
            let Some(&b) = bytes.get(pos) else {
                self.pos = pos;
                return None;
            };
            if b < 0x80 {
                if ASCII_WORD[usize::from(b)] {
                    break pos;
                }
                pos += 1;
            } else {
                let Some(c) = self.char_at(pos) else {
                    self.pos = bytes.len();
                    return None;
                };
                match classify(c) {
                    Class::Separator => pos += c.len_utf8(),
                    Class::Word => break pos,
                    Class::Single => {
                        self.pos = pos + c.len_utf8();
                        return Some((pos, &self.s[pos..self.pos]));
                    }
                }
            }
        };
        // Extend over word characters up to the next separator or
        // single-character token.
        while let Some(&b) = bytes.get(pos) {
            if b < 0x80 {
                if !ASCII_WORD[usize::from(b)] {
                    break;
                }
                pos += 1;
            } else {
                let Some(c) = self.char_at(pos) else {
                    break;
                };
                if classify(c) != Class::Word {
                    break;
                }
                pos += c.len_utf8();
            }
        }
        self.pos = pos;
        Some((start, &self.s[start..pos]))
    }
}

impl std::iter::FusedIterator for Tokens<'_> {}
