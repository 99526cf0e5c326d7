//! Queries: the one query language both search modes share, its parser and
//! its parsed form ([`Query`]).
//!
//! The language follows Gmail's, which most users already know:
//!
//! ```text
//! from:alice "quarterly report" -draft (budget OR forecast) after:2024-01-01 is:unread
//! ```
//!
//! ```
//! let q = sealdex::query::parse("from:alice -spam")?;
//! assert_eq!(q.to_string(), "from:alice -spam");
//! # Ok::<(), sealdex::query::QueryError>(())
//! ```
//!
//! This module only parses; planning and running a search is done by the
//! search modes, from the [`Query`] this returns.
//!
//! # Grammar
//!
//! As EBNF over characters; whitespace (Unicode `White_Space`) separates
//! tokens and is otherwise ignored.
//!
//! ```text
//! query   = conj ;                                  (* not empty *)
//! conj    = disj { [ "AND" ] disj } ;               (* implicit AND; AND is a no-op *)
//! disj    = unary { "OR" unary } ;                  (* OR binds tighter than AND *)
//! unary   = "-" unary | atom ;                      (* "-" directly before its operand *)
//! atom    = "(" conj ")" | phrase | field | filter | word ;
//! field   = ( "from" | "to" | "subject" | "body" | "filename" ) ":" value ;
//! filter  = ( "in" | "label" ) ":" value
//!         | ( "after" | "before" ) ":" date
//!         | "has:attachment"
//!         | "is:" ( "unread" | "read" | "flagged" | "starred" ) ;
//! value   = phrase | word ;                         (* directly after the colon *)
//! phrase  = '"' { char - '"' } '"' ;                (* not empty or only whitespace *)
//! word    = wchar { wchar } ;                       (* wchar: not whitespace, '(', ')', '"' *)
//! date    = digit digit digit digit "-" digit digit "-" digit digit ;
//! ```
//!
//! The lexical rules the EBNF cannot say:
//!
//! - **Operators** are the standalone bare words `OR` and `AND`, uppercase
//!   only; `or`, `and`, `"OR"` and `from:OR` are ordinary text.
//! - **Negation**: `-` directly followed by an operand (`-spam`, `-"a b"`,
//!   `-from:bob`, `-(a OR b)`, `-is:unread`). A `-` followed by whitespace,
//!   `)` or the end is the word `-` (so `cats - dogs` is three words, not an
//!   error; like `!!!`, it normalises to no token, and the planner must treat
//!   such words as matching everything). A `-` inside a word (`e-mail`) is
//!   part of the word.
//! - **Fields and filters**: `NAME:` where NAME is one or more ASCII letters,
//!   any case (`From:alice`), and the value follows the colon directly. A
//!   known NAME with nothing after the colon (`from: alice`, `from:(a b)`) is
//!   an error. An unknown NAME followed by a value (`foo:bar`, `http://x`) is
//!   an error whose message says to quote the term; an unknown NAME with
//!   nothing after the colon (`re: lunch`) is the plain word `re:`. If the
//!   part before the colon is not only letters (`10:30`, `e-mail:x`) the
//!   whole thing is a plain word.
//! - **Words** end at whitespace, `(`, `)` or the end of the query, and are
//!   kept whole: `o'reilly`, `apt-get` and `10:30` are one [`Term`] each
//!   (the planner turns a word the normaliser splits into a phrase whose last
//!   token is a prefix). A `"` inside a word (`foo"bar`) is an error: it
//!   cannot be read as starting a phrase without surprising someone, and
//!   quotes themselves are never searched for. A phrase may touch what
//!   follows (`"a b"c` is the phrase and the word `c`).
//! - **Filter values**: `in:` and `label:` take a folder or label name,
//!   quoted if it has spaces (`in:"Project X"`), matched later without regard
//!   to case. `after:` and `before:` take a UTC calendar day: `after:D` keeps
//!   records at or after the start of D, `before:D` records before the start
//!   of D. `has:` and `is:` values are case-insensitive; `is:starred` is
//!   Gmail's name for `is:flagged`.
//! - Parentheses and negations nest at most [`MAX_DEPTH`] deep.
//!
//! # Why these choices
//!
//! - **OR binds tighter than AND**, as in Gmail: `from:alice report OR memo`
//!   means `from:alice (report OR memo)`. Mail search queries are mostly a
//!   list of required terms with an occasional alternative, and users write
//!   the alternative in place; the boolean-algebra precedence would turn that
//!   query into "(from alice and report) or memo", which no one means.
//!   [`Query`]'s `Display` still writes the parentheses, so the canonical
//!   form shows how a query was read.
//! - **Unknown fields are errors**, not silently words: a typo (`form:alice`)
//!   or a field this language lacks (`cc:bob`) would otherwise search for the
//!   text `form:alice` and quietly find nothing, and the user would conclude
//!   the mail does not exist. An error costs one edit; the message says how to
//!   search the text literally (quote it). The same goes for bad dates and
//!   unknown `is:`/`has:` values.
//! - **Words are not split** here, because splitting belongs to the one
//!   normaliser both search modes share; the parser keeps the text as typed.
//! - **A hand-written recursive-descent parser** over a lexer that records
//!   byte positions: the grammar is small, the errors can say exactly where
//!   and what, and there is no dependency to audit.
//!
//! # Errors
//!
//! Every error is a [`QueryError`] with the byte offset of the problem (the
//! unclosed quote or parenthesis, the stray `)`, the unknown field name, the
//! bad value), a [`QueryErrorKind`], and a message that says how to fix it.
//! The message may quote a few words of the query back, so treat it as
//! being as private as the query.

mod ast;
mod parse;

#[cfg(feature = "tantivy")]
pub(crate) use ast::field_name;
pub use ast::{Filter, Query, Term};
pub use parse::{MAX_DEPTH, parse};

/// A query that could not be parsed, with the byte position of the problem.
///
/// ```
/// use sealdex::query::{parse, QueryErrorKind};
///
/// let err = parse("report after:2024-13-01").unwrap_err();
/// assert_eq!(err.kind, QueryErrorKind::BadDate);
/// assert_eq!(err.position, 13);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("query error at byte {position}: {message}")]
pub struct QueryError {
    /// Byte offset into the query string (always on a char boundary and at
    /// most the query's length).
    pub position: usize,
    /// What is wrong there, and how to fix it.
    pub message: String,
    /// What kind of problem it is, for callers that react to it.
    pub kind: QueryErrorKind,
}

/// What kind of problem a [`QueryError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryErrorKind {
    /// The query is empty or only whitespace.
    Empty,
    /// A `"` is never closed.
    UnbalancedQuote,
    /// A `"` stands inside a bare word (`foo"bar`).
    QuoteInWord,
    /// A phrase is empty or only whitespace (`""`).
    EmptyPhrase,
    /// A `(` is never closed, or a `)` has no `(`.
    UnbalancedParen,
    /// Parentheses with nothing inside (`()`).
    EmptyGroup,
    /// `OR` without a term on one side.
    UnexpectedOr,
    /// `AND` without a term on one side.
    UnexpectedAnd,
    /// `NAME:value` with a NAME that is not a field or filter.
    UnknownField,
    /// A field or filter with nothing directly after its colon.
    MissingValue,
    /// An `after:` or `before:` value that is not a `YYYY-MM-DD` date.
    BadDate,
    /// A `has:` or `is:` value that is not known.
    UnknownFilterValue,
    /// Parentheses and negations nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::str::FromStr for Query {
    type Err = QueryError;

    /// Same as [`parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

pub(crate) mod plan;
pub mod snippet;
