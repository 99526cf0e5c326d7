//! The parsed form of a query (the AST) and its canonical text form.

use std::fmt::{self, Display, Formatter, Write as _};

use chrono::{DateTime, Datelike as _};

use crate::record::Field;

/// A parsed query: what both search modes (forward scan and inverted index)
/// plan from.
///
/// [`parse`](super::parse) returns it in a normal form: an `And` or `Or` has
/// at least two children, an `And` never holds an `And` directly, and an `Or`
/// never holds an `Or` directly (grouping parentheses that do not change the
/// meaning leave no trace). Double negation is kept as written (`--a` is
/// `Not(Not(a))`); simplifying it is the planner's business.
///
/// Its [`Display`] is the canonical text form; parsing that text gives back an
/// equal `Query` for every `Query` that `parse` can return.
///
/// ```
/// use sealdex::query::{parse, Query, Term};
///
/// let q = parse("from:alice -spam").unwrap();
/// let Query::And(parts) = &q else { panic!("two terms are an AND") };
/// assert_eq!(parts.len(), 2);
/// assert_eq!(parts[1], Query::Not(Box::new(Query::Term(Term::word("spam")))));
/// assert_eq!(q.to_string(), "from:alice -spam");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// Every child must match.
    And(Vec<Query>),
    /// At least one child must match.
    Or(Vec<Query>),
    /// The child must not match (an exclusion, `-x`).
    Not(Box<Query>),
    /// A word or phrase to find in text.
    Term(Term),
    /// A condition on a record's metadata.
    Filter(Filter),
}

/// A word or phrase to find in the text of a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    /// The field to search, or `None` for the default fields.
    pub field: Option<Field>,
    /// The text as the user typed it, not normalised; for a phrase, what stood
    /// between the quotes. A bare word may hold characters the normaliser
    /// splits on (`o'reilly`, `10:30`); the planner turns such a word into a
    /// phrase whose last token is a prefix.
    pub text: String,
    /// `true` for a quoted phrase (every token exact and adjacent, in order),
    /// `false` for a bare word (a word prefix).
    pub phrase: bool,
}

impl Term {
    /// A bare word in the default fields.
    pub fn word(text: impl Into<String>) -> Self {
        Term {
            field: None,
            text: text.into(),
            phrase: false,
        }
    }

    /// A quoted phrase in the default fields.
    pub fn phrase(text: impl Into<String>) -> Self {
        Term {
            field: None,
            text: text.into(),
            phrase: true,
        }
    }

    /// The same term, restricted to `field`.
    pub fn in_field(self, field: Field) -> Self {
        Term {
            field: Some(field),
            ..self
        }
    }
}

/// A condition on a record's metadata rather than its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `in:NAME`: the record is in the folder or has the label NAME
    /// (case-insensitive exact name). Kept apart from [`Filter::Label`] only
    /// so that the query prints back as typed; both mean the same.
    In(String),
    /// `label:NAME`: same meaning as [`Filter::In`].
    Label(String),
    /// `after:YYYY-MM-DD`: timestamp at or after this many seconds since the
    /// Unix epoch (the start of that day, UTC).
    After(i64),
    /// `before:YYYY-MM-DD`: timestamp before this many seconds since the Unix
    /// epoch (the start of that day, UTC).
    Before(i64),
    /// `has:attachment`.
    HasAttachment,
    /// `is:unread`.
    IsUnread,
    /// `is:read`.
    IsRead,
    /// `is:flagged` (also written `is:starred`).
    IsFlagged,
}

/// The lowercase name a field is written with.
pub(crate) fn field_name(field: Field) -> &'static str {
    field.name()
}

/// Whether `s` can stand after `field:` or `in:` unquoted.
fn is_bare_value(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('"')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '(' | ')'))
}

/// Whether `s` parses back as a bare word in the default fields.
fn is_bare_word(s: &str) -> bool {
    if !is_bare_value(s) || s == "OR" || s == "AND" {
        return false;
    }
    // A leading `-` is a negation, unless the word is just "-".
    if s.starts_with('-') && s != "-" {
        return false;
    }
    // `NAME:` followed by more is a field (or an unknown-field error), and a
    // known `NAME:` alone is a missing value.
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let named = letters > 0 && s.as_bytes().get(letters) == Some(&b':');
    !(named && (s.len() > letters + 1 || s.get(..letters).and_then(super::parse::key).is_some()))
}

fn write_value(f: &mut Formatter<'_>, text: &str, quoted: bool) -> fmt::Result {
    if quoted || !is_bare_value(text) {
        f.write_char('"')?;
        f.write_str(text)?;
        f.write_char('"')
    } else {
        f.write_str(text)
    }
}

fn write_date(f: &mut Formatter<'_>, secs: i64) -> fmt::Result {
    match DateTime::from_timestamp(secs, 0) {
        Some(t) if (0..=9999).contains(&t.year()) => {
            write!(f, "{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
        }
        // Not a date `parse` can produce; print the seconds so nothing is lost.
        _ => write!(f, "{secs}"),
    }
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => {
                f.write_str(field_name(field))?;
                f.write_char(':')?;
                write_value(f, &self.text, self.phrase)
            }
            None => write_value(f, &self.text, self.phrase || !is_bare_word(&self.text)),
        }
    }
}

impl Display for Filter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Filter::In(name) => {
                f.write_str("in:")?;
                write_value(f, name, false)
            }
            Filter::Label(name) => {
                f.write_str("label:")?;
                write_value(f, name, false)
            }
            Filter::After(secs) => {
                f.write_str("after:")?;
                write_date(f, *secs)
            }
            Filter::Before(secs) => {
                f.write_str("before:")?;
                write_date(f, *secs)
            }
            Filter::HasAttachment => f.write_str("has:attachment"),
            Filter::IsUnread => f.write_str("is:unread"),
            Filter::IsRead => f.write_str("is:read"),
            Filter::IsFlagged => f.write_str("is:flagged"),
        }
    }
}

impl Query {
    /// Writes `self` as an operand: groups an `And` or `Or` in parentheses.
    fn fmt_operand(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Query::And(_) | Query::Or(_) => {
                f.write_char('(')?;
                self.fmt(f)?;
                f.write_char(')')
            }
            _ => self.fmt(f),
        }
    }
}

/// The canonical text form: lowercase field names, `OR` groups inside an
/// `AND` in parentheses (they would parse the same without, as `OR` binds
/// tighter, but the parentheses say so to a reader), one space between terms.
///
/// A `Query` built by hand that `parse` could never return (an empty `And`, a
/// bare word holding a space, a phrase holding `"`, a date outside the years
/// 0000 to 9999) prints as close as the language allows and may not parse
/// back to the same value.
impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Query::And(children) | Query::Or(children) => {
                let sep = if matches!(self, Query::And(_)) {
                    " "
                } else {
                    " OR "
                };
                if children.is_empty() {
                    return f.write_str("()");
                }
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    child.fmt_operand(f)?;
                }
                Ok(())
            }
            Query::Not(inner) => {
                f.write_char('-')?;
                inner.fmt_operand(f)
            }
            Query::Term(term) => term.fmt(f),
            Query::Filter(filter) => filter.fmt(f),
        }
    }
}
