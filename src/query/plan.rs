//! Planning: turns a parsed [`Query`] into what the search modes evaluate,
//! with every text term normalised by the one normaliser the index uses.
//!
//! A term becomes a *needle* over the token stream that the cache keeps for
//! each field: every token preceded by one space, the field closed by a
//! newline (`" tok1 tok2 tok3\n"`). In that form every query operator on text
//! is a byte search:
//!
//! * a word `abc` is the needle `" abc"`: it can only start at a token
//!   start, and it matches any token that begins with `abc` (a prefix);
//! * a bare word the normaliser splits (`o'reilly` → `o`, `reilly`) is the
//!   needle `" o reilly"`: adjacent tokens, all exact but the last, which is a
//!   prefix;
//! * a phrase `"a b"` is `" a b"` followed by a space or the newline: every
//!   token exact;
//! * no needle contains a newline, so no match crosses a field.

use crate::clean;
use crate::query::{Filter, Query, Term};
use crate::record::Field;

/// Bit set of fields, bit `f as u8`.
pub(crate) type FieldMask = u8;

/// The fields a term without a field prefix searches: every one (an
/// event's location is found by a plain word, as its summary is).
pub(crate) const DEFAULT_FIELDS: FieldMask = (1 << Field::ALL.len()) - 1;

/// A text term, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Needle {
    /// `" t1 t2 … tn"`.
    pub bytes: Vec<u8>,
    /// The normalised tokens.
    pub tokens: Vec<String>,
    /// Whether the last token must end where the token does (phrases).
    pub exact_end: bool,
    /// Fields it may match in.
    pub fields: FieldMask,
}

impl Needle {
    /// Whether the token list, at `i`, matches this needle.
    pub(crate) fn matches_tokens_at(&self, toks: &[&str], i: usize) -> bool {
        let n = self.tokens.len();
        if i + n > toks.len() {
            return false;
        }
        self.tokens.iter().enumerate().all(|(j, t)| {
            let tok = toks[i + j];
            if j + 1 == n && !self.exact_end {
                tok.starts_with(t.as_str())
            } else {
                tok == t
            }
        })
    }
}

/// A filter, ready to test against a record's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FilterPlan {
    /// Folder or label, lowercased.
    Folder(String),
    /// Timestamp at or after.
    After(i64),
    /// Timestamp before.
    Before(i64),
    HasAttachment,
    Unread,
    Read,
    Flagged,
}

/// What the search modes evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Matches every record (a term with no tokens, such as `!!!`).
    All,
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    Text(Needle),
    Filter(FilterPlan),
}

fn field_bit(f: Field) -> FieldMask {
    1 << (f as u8)
}

fn needle(term: &Term) -> Option<Needle> {
    let norm = clean::normalise(&term.text);
    let tokens: Vec<String> = clean::tokens(&norm).map(|(_, t)| t.to_owned()).collect();
    if tokens.is_empty() {
        return None;
    }
    let mut bytes = Vec::with_capacity(norm.len() + tokens.len());
    for t in &tokens {
        bytes.push(b' ');
        bytes.extend_from_slice(t.as_bytes());
    }
    Some(Needle {
        bytes,
        tokens,
        exact_end: term.phrase,
        fields: term.field.map_or(DEFAULT_FIELDS, field_bit),
    })
}

/// Plans a parsed query.
pub(crate) fn plan(q: &Query) -> Plan {
    match q {
        Query::And(qs) => Plan::And(qs.iter().map(plan).collect()),
        Query::Or(qs) => Plan::Or(qs.iter().map(plan).collect()),
        Query::Not(q) => Plan::Not(Box::new(plan(q))),
        Query::Term(t) => needle(t).map_or(Plan::All, Plan::Text),
        Query::Filter(f) => Plan::Filter(match f {
            Filter::In(name) | Filter::Label(name) => FilterPlan::Folder(fold_name(name)),
            Filter::After(t) => FilterPlan::After(*t),
            Filter::Before(t) => FilterPlan::Before(*t),
            Filter::HasAttachment => FilterPlan::HasAttachment,
            Filter::IsUnread => FilterPlan::Unread,
            Filter::IsRead => FilterPlan::Read,
            Filter::IsFlagged => FilterPlan::Flagged,
        }),
    }
}

/// Folder and label names compare case-insensitively (full case folding).
pub(crate) fn fold_name(name: &str) -> String {
    caseless::default_case_fold_str(name)
}

impl Plan {
    /// Every positive text needle (not under a `Not`), for highlighting and scoring.
    pub(crate) fn positive_needles<'a>(&'a self, out: &mut Vec<&'a Needle>) {
        match self {
            Plan::And(ps) | Plan::Or(ps) => ps.iter().for_each(|p| p.positive_needles(out)),
            Plan::Text(n) => out.push(n),
            Plan::Not(_) | Plan::All | Plan::Filter(_) => {}
        }
    }
}

/// Appends the token stream of one field: `" tok1 tok2\n"`.
pub(crate) fn push_token_stream(text: &str, scratch: &mut String, out: &mut Vec<u8>) {
    scratch.clear();
    clean::normalise_into(text, scratch);
    for (_, tok) in clean::tokens(scratch) {
        out.push(b' ');
        out.extend_from_slice(tok.as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;

    #[test]
    fn words_phrases_and_split_words() {
        let Plan::Text(n) = plan(&parse("Café").unwrap()) else {
            panic!()
        };
        assert_eq!(n.bytes, b" cafe");
        assert!(!n.exact_end);
        let Plan::Text(n) = plan(&parse("o'Reilly").unwrap()) else {
            panic!()
        };
        assert_eq!(n.bytes, b" o reilly");
        assert!(!n.exact_end);
        let Plan::Text(n) = plan(&parse("subject:\"Big Deal\"").unwrap()) else {
            panic!()
        };
        assert_eq!(n.bytes, b" big deal");
        assert!(n.exact_end);
        assert_eq!(n.fields, 1 << (Field::Subject as u8));
        assert_eq!(plan(&parse("!!!").unwrap()), Plan::All);
    }

    #[test]
    fn token_stream_shape() {
        let mut out = Vec::new();
        push_token_stream("Hello, Wörld! 日本", &mut String::new(), &mut out);
        assert_eq!(out, " hello world 日 本\n".as_bytes());
    }
}
