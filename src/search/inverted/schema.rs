//! [`IndexSchema`]: owns what the inverted index holds for each record, and
//! the tokenizer that makes its terms the forward scan's tokens.
//!
//! # What is indexed, and why nothing is stored
//!
//! The inverted index holds no message text. Each record becomes one tantivy
//! document with:
//!
//! | field                          | kind                          | for                          |
//! |--------------------------------|-------------------------------|------------------------------|
//! | one per [`Field`], by its [`name`](Field::name): `subject` `body` … `location` | text, freqs + positions, not stored | words, prefixes, phrases, BM25 |
//! | `subject.pre` … `location.pre` | the first one and two characters of each token, docs only | one- and two-letter prefixes |
//! | `folder`                       | raw string, one value per folder or label, case-folded | `in:` `label:` |
//! | `flag`                         | raw string: `unread` `flagged` `attachment` | `is:` `has:` |
//! | `kind`                         | raw string: the [`ContentKind`]'s name (`mail` `chat` `event` `file`) | `kind:` |
//! | `date`                         | i64 fast (and indexed before store format 4); [`UNDATED`] when undated | `after:` `before:` (range queries on the column), newest-first order |
//!
//! and how it names the record, which depends on the store's format:
//!
//! | store format | field | kind | for |
//! |---|---|---|---|
//! | 4 (blocks)   | `docno` | u64, indexed and fast: the record's document number | deleting, resolving a hit, catching up |
//! | 1 to 3       | `key` | bytes, indexed | deleting or replacing a record |
//! | 1 to 3       | `k0`..`k3` | u64 fast: the key's 32 bytes, big-endian | resolving a hit in the store, ties in the order |
//! | 1 to 3       | `stamp` | u64 fast: the stored envelope's [`stamp`](crate::seal::stamp) | catching up with the store |
//!
//! Why document numbers: a key is 32 random bytes, which no column or term
//! dictionary compresses: about 70 bytes per record, and a large term
//! dictionary to search on every delete. A document number is dense and
//! grows with every write, so its column bit-packs to a few bytes and its
//! terms share prefixes; and since an upsert gets a new number, the number
//! is also the record's stamp. The store resolves a number to its key from
//! memory (`Store::keys_of_docnos`).
//!
//! A hit is resolved through the encrypted store, so snippets and result
//! lists come from the one source of truth, and the index can be thrown
//! away and rebuilt at any time.
//!
//! # One tokenizer for both modes
//!
//! The text fields are tokenized by [`SealdexTokenizer`], which runs the
//! crate's normaliser ([`text::normalise_into`]) and splits with
//! [`text::tokens`], exactly as the cache builds the forward scan's token
//! streams. A field is indexed as one value, so token positions are the
//! token numbers of the forward scan's stream, and a phrase can match in the
//! inverted index exactly where the forward scan's needle matches.
//!
//! # Short prefixes
//!
//! A word is a prefix (`th` finds `the`, `this`, `thanks`): in the term
//! dictionary, a one- or two-letter prefix covers thousands of terms, and
//! uniting their postings costs milliseconds on a large mailbox. So each
//! text field has a companion `.pre` field holding, for every token, its
//! first character and its first two characters ([`PrefixTokenizer`]);
//! a one- or two-letter word is then a single term lookup. These fields keep
//! no frequencies or positions, so they cost little space; longer prefixes
//! expand in the term dictionary as usual.
//!
//! tantivy drops terms longer than 65,530 bytes; the tokenizer cuts such a
//! token (a run of letters with no separator, never seen in real text) to
//! that length at a character boundary, so that a prefix of it is still
//! found. An exact phrase through such a token is the one place where the
//! two modes could differ.

use tantivy::schema::{
    BytesOptions, Field as TField, INDEXED, IndexRecordOption, NumericOptions, STRING, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{TantivyDocument, Term};

use crate::query::plan::fold_name;
use crate::record::{ContentKind, Field, Flags, Record};
use crate::store::DocKey;
use crate::text;

/// The name the tokenizer is registered under in every tantivy index.
pub const TOKENIZER: &str = "sealdex";

/// The name [`PrefixTokenizer`] is registered under.
pub const PREFIX_TOKENIZER: &str = "sealdex-prefix";

/// Prefixes up to this many characters have their own terms.
pub const SHORT_PREFIX_CHARS: usize = 2;

/// The longest term tantivy indexes (its `MAX_TOKEN_LEN`).
const MAX_TERM_BYTES: usize = u16::MAX as usize - 5;

/// The `date` of an undated record. Every record has a date value so that
/// the column is dense: reading it is a bit-unpacking, where an optional
/// column costs a rank lookup per hit (measured: half of a broad query's
/// collection time). Date filters exclude it explicitly.
pub const UNDATED: i64 = i64::MIN;

/// The flag terms of the `flag` field.
pub(crate) const FLAG_UNREAD: &str = "unread";
pub(crate) const FLAG_FLAGGED: &str = "flagged";
pub(crate) const FLAG_ATTACHMENT: &str = "attachment";

/// The tantivy schema of the inverted index, with handles to its fields.
///
/// ```
/// use sealdex::inverted::IndexSchema;
///
/// let s = IndexSchema::new();
/// let index = tantivy::Index::create_in_ram(s.schema().clone());
/// s.register_tokenizer(&index);
/// ```
#[derive(Clone, Debug)]
pub struct IndexSchema {
    schema: Schema,
    /// Text fields, indexed by [`Field`] as `u8`.
    pub(crate) text: [TField; Field::ALL.len()],
    /// Their short-prefix companions.
    pub(crate) prefix: [TField; Field::ALL.len()],
    pub(crate) folder: TField,
    pub(crate) flag: TField,
    pub(crate) kind: TField,
    pub(crate) date: TField,
    /// How documents name their record.
    pub(crate) ids: Ids,
}

/// How the documents of an index name their record (see the module doc).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ids {
    /// By key and envelope stamp (stores of format 1 to 3).
    Keys {
        key: TField,
        k: [TField; 4],
        stamp: TField,
    },
    /// By document number (stores of format 4).
    Docnos { docno: TField },
}

impl Default for IndexSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// The name of the document-number field.
pub(crate) const DOCNO: &str = "docno";

/// The fast-field names of the key's four 64-bit words.
pub(crate) const KEY_WORDS: [&str; 4] = ["k0", "k1", "k2", "k3"];

impl IndexSchema {
    /// Builds the schema of an index whose documents name their record by
    /// key (stores of format 1 to 3).
    pub fn new() -> Self {
        Self::build(false)
    }

    /// Builds the schema of an index whose documents name their record by
    /// document number (stores of format 4).
    pub fn with_docnos() -> Self {
        Self::build(true)
    }

    /// Whether documents name their record by document number.
    pub fn has_docnos(&self) -> bool {
        matches!(self.ids, Ids::Docnos { .. })
    }

    fn build(docnos: bool) -> Self {
        let mut b = Schema::builder();
        let text_options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let text = Field::ALL.map(|f| b.add_text_field(f.name(), text_options.clone()));
        let prefix_options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(PREFIX_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        let prefix = Field::ALL
            .map(|f| b.add_text_field(&format!("{}.pre", f.name()), prefix_options.clone()));
        let folder = b.add_text_field("folder", STRING);
        let flag = b.add_text_field("flag", STRING);
        let kind = b.add_text_field("kind", STRING);
        // An index by document number keeps dates as a fast column only:
        // `after:` and `before:` are range queries, which tantivy runs on
        // the column of a fast field; date terms (one per distinct date,
        // nearly one per chat message) cost 2.6 of ChitChat's 25.7 MB and
        // were never read (`bench-notes/footprint-run10.md`).
        let date_options = if docnos {
            NumericOptions::default().set_fast()
        } else {
            NumericOptions::default().set_indexed().set_fast()
        };
        let date = b.add_i64_field("date", date_options);
        let ids = if docnos {
            Ids::Docnos {
                docno: b.add_u64_field(DOCNO, NumericOptions::default().set_indexed().set_fast()),
            }
        } else {
            Ids::Keys {
                key: b.add_bytes_field("key", BytesOptions::from(INDEXED)),
                k: KEY_WORDS.map(|n| b.add_u64_field(n, NumericOptions::default().set_fast())),
                stamp: b.add_u64_field("stamp", NumericOptions::default().set_fast()),
            }
        };
        IndexSchema {
            schema: b.build(),
            text,
            prefix,
            folder,
            flag,
            kind,
            date,
            ids,
        }
    }

    /// The tantivy schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Registers [`SealdexTokenizer`] and [`PrefixTokenizer`] with `index`:
    /// needed once for every tantivy `Index` value, before writing or
    /// searching it.
    pub fn register_tokenizer(&self, index: &tantivy::Index) {
        index
            .tokenizers()
            .register(TOKENIZER, TextAnalyzer::from(SealdexTokenizer::default()));
        index.tokenizers().register(
            PREFIX_TOKENIZER,
            TextAnalyzer::from(PrefixTokenizer::default()),
        );
    }

    /// The short-prefix companion of a text field.
    pub(crate) fn prefix_field(&self, f: Field) -> TField {
        self.prefix[f as usize]
    }

    /// The tantivy field of a text field.
    pub(crate) fn text_field(&self, f: Field) -> TField {
        self.text[f as usize]
    }

    /// The term of the records of one kind (`kind:`).
    pub(crate) fn kind_term(&self, kind: ContentKind) -> Term {
        Term::from_field_text(self.kind, kind.name())
    }

    /// The term that names a record, for deleting or replacing it: by its
    /// key, or, in an index by document number, by `stamp` (its number).
    pub fn id_term(&self, key: &DocKey, stamp: u64) -> Term {
        match self.ids {
            Ids::Keys { key: field, .. } => Term::from_field_bytes(field, &key.mac()),
            Ids::Docnos { docno } => Term::from_field_u64(docno, stamp),
        }
    }

    /// The document indexed for `record`, stored under `key` with the
    /// envelope stamp `stamp` (in an index by document number, its number).
    pub fn document(&self, key: &DocKey, stamp: u64, record: &Record) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        for f in Field::ALL {
            let text = record.field(f);
            if !text.is_empty() {
                doc.add_text(self.text_field(f), text);
                doc.add_text(self.prefix_field(f), text);
            }
        }
        for folder in record.places() {
            doc.add_text(self.folder, fold_name(folder));
        }
        for (flag, name) in [
            (Flags::UNREAD, FLAG_UNREAD),
            (Flags::FLAGGED, FLAG_FLAGGED),
            (Flags::HAS_ATTACHMENT, FLAG_ATTACHMENT),
        ] {
            if record.flags.contains(flag) {
                doc.add_text(self.flag, name);
            }
        }
        doc.add_text(self.kind, record.kind.name());
        doc.add_i64(self.date, record.timestamp.unwrap_or(UNDATED));
        match self.ids {
            Ids::Keys {
                key: key_field,
                k,
                stamp: stamp_field,
            } => {
                let mac = key.mac();
                doc.add_bytes(key_field, &mac[..]);
                for (i, field) in k.iter().enumerate() {
                    doc.add_u64(*field, key_word(&mac, i));
                }
                doc.add_u64(stamp_field, stamp);
            }
            Ids::Docnos { docno } => doc.add_u64(docno, stamp),
        }
        doc
    }
}

/// Word `i` (0..4) of a 32-byte key, big-endian, so that comparing the four
/// words in order compares the bytes.
pub(crate) fn key_word(mac: &[u8; 32], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&mac[i * 8..i * 8 + 8]);
    u64::from_be_bytes(w)
}

/// The 32-byte key back from its four words.
pub(crate) fn key_from_words(words: [u64; 4]) -> DocKey {
    let mut mac = [0u8; 32];
    for (i, w) in words.iter().enumerate() {
        mac[i * 8..i * 8 + 8].copy_from_slice(&w.to_be_bytes());
    }
    DocKey::from_mac(mac)
}

/// A tantivy tokenizer that yields the normaliser's tokens: the same terms,
/// in the same positions, as the forward scan's token streams.
///
/// ```
/// use sealdex::inverted::SealdexTokenizer;
/// use tantivy::tokenizer::{TokenStream, Tokenizer};
///
/// let mut t = SealdexTokenizer::default();
/// let mut s = t.token_stream("O'Reilly: Café");
/// let mut words = Vec::new();
/// while let Some(tok) = s.next() {
///     words.push((tok.position, tok.text.clone()));
/// }
/// assert_eq!(words, [(0, "o".into()), (1, "reilly".into()), (2, "cafe".into())]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SealdexTokenizer {
    normalised: String,
}

/// The token stream of [`SealdexTokenizer`].
#[derive(Debug)]
pub struct SealdexTokenStream<'a> {
    tokens: text::Tokens<'a>,
    token: Token,
}

impl Tokenizer for SealdexTokenizer {
    type TokenStream<'a> = SealdexTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> SealdexTokenStream<'a> {
        self.normalised.clear();
        text::normalise_into(text, &mut self.normalised);
        SealdexTokenStream {
            tokens: text::tokens(&self.normalised),
            token: Token {
                position: usize::MAX,
                ..Token::default()
            },
        }
    }
}

impl TokenStream for SealdexTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some((offset, tok)) = self.tokens.next() else {
            return false;
        };
        let mut end = tok.len().min(MAX_TERM_BYTES);
        while !tok.is_char_boundary(end) {
            end -= 1;
        }
        let t = &mut self.token;
        t.position = t.position.wrapping_add(1);
        t.offset_from = offset;
        t.offset_to = offset + tok.len();
        t.position_length = 1;
        t.text.clear();
        t.text.push_str(&tok[..end]);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// A tantivy tokenizer that yields the distinct one- and two-character
/// prefixes of the normaliser's tokens in a text: the terms of the
/// short-prefix fields (see the module docs).
///
/// Each prefix is yielded once per text, in no particular order: the fields keep no
/// frequencies, and a text of a thousand words has only a few hundred
/// distinct short prefixes, so tantivy's indexer sees a fraction of the
/// tokens (measured: the fields' indexing cost fell by more than half).
///
/// ```
/// use sealdex::inverted::schema::PrefixTokenizer;
/// use tantivy::tokenizer::{TokenStream, Tokenizer};
///
/// let mut t = PrefixTokenizer::default();
/// let mut s = t.token_stream("The café, the cat");
/// let mut terms = Vec::new();
/// while let Some(tok) = s.next() {
///     terms.push(tok.text.clone());
/// }
/// terms.sort();
/// assert_eq!(terms, ["c", "ca", "t", "th"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct PrefixTokenizer {
    normalised: String,
    /// The distinct prefixes, each packed into a `u64` (see [`pack`]).
    prefixes: Vec<u64>,
    /// Which all-ASCII prefixes this text has already given, by their one
    /// or two bytes (`b0 << 8 | b1`): most prefixes, deduplicated without
    /// sorting. Cleared after each text.
    seen: Vec<u64>,
}

/// The token stream of [`PrefixTokenizer`].
#[derive(Debug)]
pub struct PrefixTokenStream<'a> {
    prefixes: std::slice::Iter<'a, u64>,
    token: Token,
}

/// Packs a prefix of at most two characters (at most eight bytes of UTF-8,
/// never a NUL: the normaliser drops controls) into a `u64`, big-endian and
/// zero-padded, so that sorting and deduplicating are integer operations.
fn pack(prefix: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = prefix.len().min(8);
    b[..n].copy_from_slice(&prefix.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

impl Tokenizer for PrefixTokenizer {
    type TokenStream<'a> = PrefixTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PrefixTokenStream<'a> {
        self.normalised.clear();
        text::normalise_into(text, &mut self.normalised);
        self.prefixes.clear();
        if self.seen.is_empty() {
            self.seen = vec![0; (1 << 16) / 64];
        }
        let mut others = 0;
        for (_, tok) in text::tokens(&self.normalised) {
            let b = tok.as_bytes();
            if b.is_empty() {
                continue;
            }
            let ascii = |i: usize| b.get(i).is_none_or(u8::is_ascii);
            if ascii(0) && ascii(1) {
                // The one- and two-byte prefixes are the one- and two-character ones.
                let one = u16::from(b[0]) << 8;
                let codes = [one, b.get(1).map_or(one, |&c| one | u16::from(c))];
                for code in codes {
                    let (word, bit) = (usize::from(code) / 64, code % 64);
                    if self.seen[word] & (1 << bit) == 0 {
                        self.seen[word] |= 1 << bit;
                        self.prefixes.push(u64::from(code) << 48);
                    }
                }
                continue;
            }
            let mut chars = tok.char_indices().skip(1).map(|(i, _)| i);
            let one = chars.next().unwrap_or(tok.len());
            let two = chars.next().unwrap_or(tok.len());
            self.prefixes.push(pack(&tok[..one]));
            self.prefixes.push(pack(&tok[..two]));
            others += 2;
        }
        // Forget the ASCII prefixes for the next text.
        for &p in &self.prefixes {
            if let Ok(code) = u16::try_from(p >> 48)
                && p & ((1 << 48) - 1) == 0
            {
                self.seen[usize::from(code) / 64] = 0;
            }
        }
        if others > 0 {
            self.prefixes.sort_unstable();
            self.prefixes.dedup();
        }
        PrefixTokenStream {
            prefixes: self.prefixes.iter(),
            token: Token::default(),
        }
    }
}

impl TokenStream for PrefixTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some(&packed) = self.prefixes.next() else {
            return false;
        };
        let bytes = packed.to_be_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(8);
        let t = &mut self.token;
        t.position = t.position.wrapping_add(1);
        t.text.clear();
        // Packed from a str, cut at a char boundary: always UTF-8.
        t.text
            .push_str(std::str::from_utf8(&bytes[..len]).unwrap_or_default());
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_the_forward_streams() {
        let text = "Hello, Wörld! 日本 apt-get o'Reilly ΣΊΣΥΦΟΣ";
        let mut stream = Vec::new();
        crate::query::plan::push_token_stream(text, &mut String::new(), &mut stream);
        let expected: Vec<String> = String::from_utf8(stream)
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let mut t = SealdexTokenizer::default();
        let mut s = t.token_stream(text);
        let mut got = Vec::new();
        while let Some(tok) = s.next() {
            assert_eq!(tok.position, got.len());
            got.push(tok.text.clone());
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn key_words_round_trip() {
        let mac: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let key = DocKey::from_mac(mac);
        let words = [0, 1, 2, 3].map(|i| key_word(&mac, i));
        assert_eq!(key_from_words(words), key);
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::*;
    use proptest::prelude::*;

    fn prefixes(text: &str) -> Vec<String> {
        let mut t = PrefixTokenizer::default();
        let mut out = Vec::new();
        // Twice through the same tokenizer: nothing carries over.
        for _ in 0..2 {
            let mut s = t.token_stream(text);
            out.clear();
            while let Some(tok) = s.next() {
                out.push(tok.text.clone());
            }
        }
        out.sort();
        out
    }

    proptest! {
        /// The distinct one- and two-character prefixes of the tokens, each
        /// once, whatever the script.
        #[test]
        fn distinct_short_prefixes(text in "[a-c0-9éΣ日 ,.'-]{0,40}") {
            let norm = text::normalise(&text);
            let mut expected: Vec<String> = text::tokens(&norm)
                .flat_map(|(_, tok)| {
                    let one: String = tok.chars().take(1).collect();
                    let two: String = tok.chars().take(2).collect();
                    [one, two]
                })
                .collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(prefixes(&text), expected);
        }
    }
}
