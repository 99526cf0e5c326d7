//! The query battery the search benches share: about fifty queries per
//! corpus in sealdex's query language (`src/query/mod.rs`), covering every
//! operator, each with a kind (for tables) and a short name (for criterion
//! ids and JSON keys).
//!
//! - [`MAIL`] for SpamAssassin (`$SEALDEX_CORPORA/spamassassin` through the
//!   Tree source: folders are the corpus's directories, no flags are set,
//!   so `is:unread` matches nothing and `is:read` everything; dates run from
//!   1997 to 2002, most in 2002).
//! - [`CHAT`] for ChitChat (`benches/common/chitchat.rs`: every message in
//!   folder `chat`, dated 2018, no subject, no attachments, senders and
//!   recipients are UUIDs).
//!
//! The first 25 of each list are the batteries `benches/search.rs` measured
//! for BENCHMARKS.md, in the same order with the same names; the rest extend
//! them to every operator: `to:`, `body:`, `filename:`, `label:`,
//! `before:`, `is:read`, `has:attachment`, grouping, negated fields and
//! filters, words the normaliser splits, and longer combinations.
//!
//! Use from a bench with `mod common;` then `common::battery::MAIL`.

// Each bench uses part of this file; the rest is not dead code.
#![allow(dead_code)]

/// One query of a battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchQuery {
    /// What the query exercises, for grouping in tables (`"rare word"`,
    /// `"2-letter prefix"`, ...).
    pub kind: &'static str,
    /// A short unique name: ASCII letters, digits, `_` and `-` only.
    pub name: &'static str,
    /// The query, in sealdex's query language.
    pub text: &'static str,
}

const fn q(kind: &'static str, name: &'static str, text: &'static str) -> BenchQuery {
    BenchQuery { kind, name, text }
}

/// Kinds, spelled once.
pub mod kind {
    /// One word found in few records.
    pub const RARE: &str = "rare word";
    /// One word found in many records.
    pub const COMMON: &str = "common word";
    /// A one-letter word: a prefix matching most records.
    pub const PREFIX1: &str = "1-letter prefix";
    /// A two-letter word: a prefix matching many records.
    pub const PREFIX2: &str = "2-letter prefix";
    /// A quoted phrase.
    pub const PHRASE: &str = "phrase";
    /// Several words, all required.
    pub const AND: &str = "AND";
    /// Alternatives.
    pub const OR: &str = "OR";
    /// A negated term, alone or with others.
    pub const EXCL: &str = "exclusion";
    /// A term restricted to one field.
    pub const FIELD: &str = "field";
    /// A metadata filter without text.
    pub const FILTER: &str = "filter only";
    /// A metadata filter with text.
    pub const FILTER_WORD: &str = "filter + word";
    /// Non-ASCII text: diacritics, CJK, case folding that changes length.
    pub const NON_ASCII: &str = "non-ASCII";
    /// A word the normaliser splits into several tokens.
    pub const SPLIT: &str = "split word";
    /// Several operators at once.
    pub const COMBINED: &str = "combination";
}

use kind::*;

/// The mail battery (SpamAssassin, 6,046 messages).
pub const MAIL: &[BenchQuery] = &[
    // The 25 of benches/search.rs.
    q(RARE, "rare_bayesian", "bayesian"),
    q(RARE, "rare_garrigues", "garrigues"),
    q(COMMON, "common_the", "the"),
    q(COMMON, "common_email", "email"),
    q(PREFIX1, "prefix_a", "a"),
    q(PREFIX1, "prefix_t", "t"),
    q(PREFIX2, "prefix_th", "th"),
    q(PREFIX2, "prefix_re", "re"),
    q(PHRASE, "phrase_mailing_list", "\"mailing list\""),
    q(PHRASE, "phrase_click_here", "\"click here\""),
    q(AND, "and_free_money", "free money"),
    q(AND, "and_linux_kernel_patch", "linux kernel patch"),
    q(
        OR,
        "or_viagra_mortgage_casino",
        "viagra OR mortgage OR casino",
    ),
    q(EXCL, "excl_free_-money", "free -money"),
    q(EXCL, "excl_-the", "-the"),
    q(FIELD, "field_from_garrigues", "from:garrigues"),
    q(FIELD, "field_subject_sequences", "subject:sequences"),
    q(FILTER, "filter_in_spam2", "in:spam-2"),
    q(FILTER, "filter_after", "after:2002-10-01"),
    q(FILTER, "filter_is_unread", "is:unread"),
    q(FILTER_WORD, "filter_in_easy_ham_perl", "in:easy-ham-1 perl"),
    q(FILTER_WORD, "filter_after_linux", "after:2002-09-01 linux"),
    q(NON_ASCII, "nonascii_cafe", "café"),
    q(NON_ASCII, "nonascii_cjk", "免费"),
    q(NON_ASCII, "nonascii_strasse", "Straße"),
    // Extensions: more of each kind, and every remaining operator.
    q(RARE, "rare_spambayes", "spambayes"),
    q(COMMON, "common_list", "list"),
    q(PREFIX1, "prefix_x", "x"),
    q(PREFIX2, "prefix_co", "co"),
    q(PHRASE, "phrase_remove_list", "\"to be removed from\""),
    q(AND, "and_razor_spam", "razor spam"),
    q(OR, "or_python_perl", "python OR perl"),
    q(EXCL, "excl_linux_-kernel", "linux -kernel"),
    q(EXCL, "excl_-phrase", "spam -\"mailing list\""),
    q(FIELD, "field_to_fork", "to:fork"),
    q(FIELD, "field_body_unsubscribe", "body:unsubscribe"),
    q(FIELD, "field_filename_html", "filename:html"),
    q(FIELD, "field_subject_phrase", "subject:\"razor-users\""),
    q(FIELD, "field_from_prefix_j", "from:j"),
    q(FILTER, "filter_label_easy_ham2", "label:easy-ham-2"),
    q(FILTER, "filter_before", "before:2002-08-01"),
    q(FILTER, "filter_is_read", "is:read"),
    q(FILTER, "filter_has_attachment", "has:attachment"),
    q(
        FILTER,
        "filter_date_range",
        "after:2002-08-01 before:2002-09-01",
    ),
    q(
        FILTER_WORD,
        "filter_attachment_word",
        "has:attachment money",
    ),
    q(
        FILTER_WORD,
        "filter_-in_spam_offer",
        "offer -in:spam-1 -in:spam-2",
    ),
    q(SPLIT, "split_e-mail", "e-mail"),
    q(SPLIT, "split_oreilly", "o'reilly"),
    q(NON_ASCII, "nonascii_fold_upper", "LINUX"),
    q(
        COMBINED,
        "comb_group_or_excl",
        "(linux OR unix) -windows after:2002-08-01",
    ),
    q(
        COMBINED,
        "comb_field_or_phrase",
        "from:garrigues (subject:sequences OR \"mailing list\")",
    ),
    q(
        COMBINED,
        "comb_negated_group",
        "in:easy-ham-1 -(spam OR razor) python",
    ),
    q(
        COMBINED,
        "comb_everything",
        "subject:re (perl OR python) -\"click here\" -from:yahoo after:2002-01-01 before:2002-12-01 in:easy-ham-1",
    ),
];

/// The chat battery (ChitChat, 258,145 messages).
pub const CHAT: &[BenchQuery] = &[
    // The 25 of benches/search.rs.
    q(RARE, "rare_xylophone", "xylophone"),
    q(RARE, "rare_giraffe", "giraffe"),
    q(COMMON, "common_the", "the"),
    q(COMMON, "common_love", "love"),
    q(PREFIX1, "prefix_a", "a"),
    q(PREFIX1, "prefix_t", "t"),
    q(PREFIX2, "prefix_th", "th"),
    q(PREFIX2, "prefix_re", "re"),
    q(PHRASE, "phrase_i_love", "\"i love\""),
    q(PHRASE, "phrase_favorite_movie", "\"favorite movie\""),
    q(AND, "and_pizza_weekend", "pizza weekend"),
    q(AND, "and_dog_cat_love", "dog cat love"),
    q(
        OR,
        "or_netflix_guitar_banana",
        "netflix OR guitar OR banana",
    ),
    q(EXCL, "excl_movie_-love", "movie -love"),
    q(EXCL, "excl_-the", "-the"),
    q(FIELD, "field_from_uuid", "from:31267496"),
    q(FIELD, "field_to_uuid", "to:549cc1d1 pizza"),
    q(FILTER, "filter_in_chat", "in:chat"),
    q(FILTER, "filter_after", "after:2018-10-01"),
    q(FILTER, "filter_is_unread", "is:unread"),
    q(FILTER_WORD, "filter_in_chat_pizza", "in:chat pizza"),
    q(
        FILTER_WORD,
        "filter_after_netflix",
        "after:2018-10-01 netflix",
    ),
    q(NON_ASCII, "nonascii_cafe", "café"),
    q(NON_ASCII, "nonascii_cjk", "免费"),
    q(NON_ASCII, "nonascii_strasse", "Straße"),
    // Extensions: more of each kind, and every remaining operator.
    q(RARE, "rare_saxophone", "saxophone"),
    q(COMMON, "common_you", "you"),
    q(PREFIX1, "prefix_s", "s"),
    q(PREFIX2, "prefix_wh", "wh"),
    q(PHRASE, "phrase_how_are_you", "\"how are you\""),
    q(PHRASE, "phrase_long", "\"what do you do for a living\""),
    q(AND, "and_beach_summer", "beach summer"),
    q(OR, "or_cat_dog", "cat OR dog"),
    q(EXCL, "excl_music_-rock", "music -rock"),
    q(EXCL, "excl_-phrase", "travel -\"i love\""),
    q(FIELD, "field_body_pizza", "body:pizza"),
    q(FIELD, "field_from_prefix_a", "from:a"),
    q(FIELD, "field_subject_none", "subject:hello"),
    q(FIELD, "field_filename_none", "filename:pdf"),
    q(FILTER, "filter_label_chat", "label:chat"),
    q(FILTER, "filter_before", "before:2018-06-01"),
    q(FILTER, "filter_is_read", "is:read"),
    q(FILTER, "filter_has_attachment", "has:attachment"),
    q(
        FILTER,
        "filter_date_range",
        "after:2018-07-01 before:2018-08-01",
    ),
    q(FILTER_WORD, "filter_-in_chat_pizza", "pizza -in:chat"),
    q(SPLIT, "split_dont", "don't"),
    q(SPLIT, "split_im", "i'm"),
    q(NON_ASCII, "nonascii_fold_upper", "PIZZA"),
    q(
        COMBINED,
        "comb_group_or_excl",
        "(movie OR film) -horror after:2018-06-01",
    ),
    q(
        COMBINED,
        "comb_field_or_phrase",
        "from:31267496 (pizza OR \"i love\")",
    ),
    q(
        COMBINED,
        "comb_negated_group",
        "music -(rock OR jazz) guitar",
    ),
    q(
        COMBINED,
        "comb_everything",
        "(dog OR cat) \"my favorite\" -hate -from:31267496 after:2018-01-01 before:2019-01-01 in:chat",
    ),
];

/// Both batteries, by corpus name (`"mail"`, `"chat"`).
pub fn battery(corpus: &str) -> Option<&'static [BenchQuery]> {
    match corpus {
        "mail" => Some(MAIL),
        "chat" => Some(CHAT),
        _ => None,
    }
}
