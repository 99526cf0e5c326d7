//! The query parser: a lexer over byte positions and a recursive-descent
//! parser on top of it. The grammar and the reasons behind it are in the
//! [module documentation](super).

use chrono::{NaiveDate, NaiveTime};

use super::ast::{Filter, Query, Term};
use super::{QueryError, QueryErrorKind};
use crate::record::Field;

/// How deeply parentheses and negations may nest. Real queries nest two or
/// three levels; the limit keeps a hostile query from overflowing the stack.
pub const MAX_DEPTH: usize = 64;

/// Parses a query.
///
/// ```
/// use sealdex::query::{parse, Filter, Query};
///
/// let q = parse("from:alice -spam after:2024-01-31").unwrap();
/// let Query::And(parts) = q else { panic!() };
/// assert_eq!(parts[2], Query::Filter(Filter::After(1_706_659_200)));
///
/// let err = parse("subject:(a b)").unwrap_err();
/// assert_eq!(err.position, 8);
/// ```
///
/// # Errors
///
/// A [`QueryError`] with the byte offset of the first problem, what it is, and
/// how to fix it.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    let mut parser = Parser {
        lexer: Lexer { src: q, pos: 0 },
        peeked: None,
    };
    let first = parser.peek()?;
    if first.tok == Tok::End {
        return Err(err(
            QueryErrorKind::Empty,
            0,
            "empty query: type a word to search for".into(),
        ));
    }
    let query = parser.conj(0)?;
    let next = parser.next()?;
    match next.tok {
        Tok::End => Ok(query),
        Tok::RParen => Err(err(
            QueryErrorKind::UnbalancedParen,
            next.pos,
            "`)` without a matching `(`: remove it, or add a `(` where the group starts".into(),
        )),
        // `conj` stops only at the end or at `)`.
        _ => Err(err(
            QueryErrorKind::UnbalancedParen,
            next.pos,
            "unexpected text here".into(),
        )),
    }
}

fn err(kind: QueryErrorKind, position: usize, message: String) -> QueryError {
    QueryError {
        position,
        message,
        kind,
    }
}

/// What one token is.
#[derive(Debug, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    /// `-` directly before the atom it excludes.
    Minus,
    /// A standalone `OR`.
    Or,
    /// A standalone `AND`.
    And,
    /// A term or filter, complete with its value.
    Atom(Query),
    End,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    /// Byte offset where the token starts.
    pos: usize,
}

/// What a `NAME:` prefix stands for.
#[derive(Clone, Copy)]
pub(super) enum Key {
    Field(Field),
    In,
    Label,
    After,
    Before,
    Has,
    Is,
}

const KEYS: [(&str, Key); 12] = [
    ("from", Key::Field(Field::From)),
    ("to", Key::Field(Field::To)),
    ("subject", Key::Field(Field::Subject)),
    ("body", Key::Field(Field::Body)),
    ("filename", Key::Field(Field::Filename)),
    ("location", Key::Field(Field::Location)),
    ("in", Key::In),
    ("label", Key::Label),
    ("after", Key::After),
    ("before", Key::Before),
    ("has", Key::Has),
    ("is", Key::Is),
];

const KNOWN_FIELDS: &str =
    "from:, to:, subject:, body:, filename:, location:, in:, label:, after:, before:, has:, is:";

/// The field or filter that `name` (any case) names, if any.
pub(super) fn key(name: &str) -> Option<Key> {
    KEYS.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|&(_, key)| key)
}

/// Whether `c` ends a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')'
}

/// Splits the source into tokens on demand, so that errors come out in the
/// order they stand in the query.
struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next unread character (always a char boundary).
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn next(&mut self) -> Result<Token, QueryError> {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let tok = match chars.next() {
            None => Tok::End,
            Some('(') => {
                self.pos += 1;
                Tok::LParen
            }
            Some(')') => {
                self.pos += 1;
                Tok::RParen
            }
            Some('"') => Tok::Atom(Query::Term(Term::phrase(self.phrase()?))),
            Some('-') if chars.next().is_some_and(|c| !c.is_whitespace() && c != ')') => {
                self.pos += 1;
                Tok::Minus
            }
            Some(_) => self.word_or_field()?,
        };
        Ok(Token { tok, pos: start })
    }

    /// Reads a quoted phrase starting at the `"` under the cursor and returns
    /// what stands between the quotes.
    fn phrase(&mut self) -> Result<&'a str, QueryError> {
        let start = self.pos;
        let inner = self.rest().get(1..).unwrap_or("");
        let Some(len) = inner.find('"') else {
            return Err(err(
                QueryErrorKind::UnbalancedQuote,
                start,
                "this quote is never closed: add a `\"` where the phrase ends".into(),
            ));
        };
        let text = inner.get(..len).unwrap_or("");
        self.pos = start + 1 + len + 1;
        if text.trim().is_empty() {
            return Err(err(
                QueryErrorKind::EmptyPhrase,
                start,
                "empty phrase: put the words to find between the quotes, or remove them".into(),
            ));
        }
        Ok(text)
    }

    /// Reads a bare word starting under the cursor (which is not at a word
    /// end); it ends at whitespace, `(`, `)` or the end of the query.
    fn bare(&mut self) -> Result<&'a str, QueryError> {
        let start = self.pos;
        let rest = self.rest();
        let len = rest.find(ends_word).unwrap_or(rest.len());
        let word = rest.get(..len).unwrap_or("");
        if let Some(q) = word.find('"') {
            return Err(err(
                QueryErrorKind::QuoteInWord,
                start + q,
                "a quote inside a word: put a space before the quote to start a phrase, \
                 or quote the whole term (a quote cannot be searched for)"
                    .into(),
            ));
        }
        self.pos = start + len;
        Ok(word)
    }

    /// Reads a bare word, `OR`, `AND`, or a `NAME:value` term or filter.
    fn word_or_field(&mut self) -> Result<Tok, QueryError> {
        let start = self.pos;
        let rest = self.rest();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if letters > 0 && rest.as_bytes().get(letters) == Some(&b':') {
            let name = rest.get(..letters).unwrap_or("");
            let value_start = start + letters + 1;
            let after = rest.get(letters + 1..).and_then(|s| s.chars().next());
            let has_value = after.is_some_and(|c| !ends_word(c));
            match key(name) {
                Some(key) => {
                    if !has_value {
                        return Err(missing_value(name, value_start, after));
                    }
                    self.pos = value_start;
                    let (value, quoted) = if after == Some('"') {
                        (self.phrase()?, true)
                    } else {
                        (self.bare()?, false)
                    };
                    return keyed(key, name, value, quoted, value_start).map(Tok::Atom);
                }
                None if has_value => {
                    let len = rest.find(ends_word).unwrap_or(rest.len());
                    let word = rest.get(..len).unwrap_or("");
                    let hint = if word.contains('"') {
                        "put the whole term in quotes".to_owned()
                    } else {
                        format!("put it in quotes: \"{word}\"")
                    };
                    return Err(err(
                        QueryErrorKind::UnknownField,
                        start,
                        format!(
                            "unknown field `{name}:` (known: {KNOWN_FIELDS}); \
                             to search for this text literally, {hint}"
                        ),
                    ));
                }
                // `re: lunch`: an unknown name with nothing after the colon
                // is just a word.
                None => {}
            }
        }
        let word = self.bare()?;
        Ok(match word {
            "OR" => Tok::Or,
            "AND" => Tok::And,
            _ => Tok::Atom(Query::Term(Term::word(word))),
        })
    }
}

fn missing_value(name: &str, position: usize, after: Option<char>) -> QueryError {
    let lower = name.to_ascii_lowercase();
    let message = match after {
        Some('(') => format!(
            "`{name}:` takes one word or a quoted phrase, not a group: \
             write `({lower}:a OR {lower}:b)` or `{lower}:\"a b\"`"
        ),
        _ => format!(
            "`{name}:` needs a value directly after the colon, with no space \
             (for example `{lower}:{}`)",
            example(&lower)
        ),
    };
    err(QueryErrorKind::MissingValue, position, message)
}

fn example(name: &str) -> &'static str {
    match name {
        "after" | "before" => "2024-01-31",
        "has" => "attachment",
        "is" => "unread",
        "in" | "label" => "inbox",
        _ => "alice",
    }
}

/// Builds the atom for `name:value`. `position` is where the value starts.
fn keyed(
    key: Key,
    name: &str,
    value: &str,
    quoted: bool,
    position: usize,
) -> Result<Query, QueryError> {
    let unknown = |valid: &str| {
        err(
            QueryErrorKind::UnknownFilterValue,
            position,
            format!("`{name}:{value}` is not a known filter; use {valid}"),
        )
    };
    let filter = match key {
        Key::Field(field) => {
            return Ok(Query::Term(Term {
                field: Some(field),
                text: value.to_owned(),
                phrase: quoted,
            }));
        }
        Key::In => Filter::In(value.to_owned()),
        Key::Label => Filter::Label(value.to_owned()),
        Key::After | Key::Before => {
            let Some(secs) = day_start(value) else {
                return Err(err(
                    QueryErrorKind::BadDate,
                    position,
                    format!(
                        "`{value}` is not a date: write it as YYYY-MM-DD, \
                         for example `{}:2024-01-31`",
                        name.to_ascii_lowercase()
                    ),
                ));
            };
            if matches!(key, Key::After) {
                Filter::After(secs)
            } else {
                Filter::Before(secs)
            }
        }
        Key::Has if value.eq_ignore_ascii_case("attachment") => Filter::HasAttachment,
        Key::Has => return Err(unknown("`has:attachment`")),
        Key::Is if value.eq_ignore_ascii_case("unread") => Filter::IsUnread,
        Key::Is if value.eq_ignore_ascii_case("read") => Filter::IsRead,
        Key::Is
            if value.eq_ignore_ascii_case("flagged") || value.eq_ignore_ascii_case("starred") =>
        {
            Filter::IsFlagged
        }
        Key::Is => return Err(unknown("`is:unread`, `is:read` or `is:flagged`")),
    };
    Ok(Query::Filter(filter))
}

/// The start (00:00 UTC) of the day written `YYYY-MM-DD`, in seconds since
/// the Unix epoch. chrono checks the calendar (month lengths, leap years);
/// the shape is checked here, because chrono's parser also takes one-digit
/// months, signs and wider years.
fn day_start(s: &str) -> Option<i64> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s.as_bytes() else {
        return None;
    };
    let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |ds: &[u8]| ds.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let year = i32::try_from(num(&digits[..4])).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(&digits[4..6]), num(&digits[6..]))?;
    Some(date.and_time(NaiveTime::MIN).and_utc().timestamp())
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, QueryError> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token, QueryError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    /// `conj = disj { ["AND"] disj }`; stops before `)` or the end. Returns
    /// the collapsed conjunction; may be called only where at least one
    /// operand follows (the callers check).
    fn conj(&mut self, depth: usize) -> Result<Query, QueryError> {
        let mut items = Vec::new();
        loop {
            let tok = self.peek()?;
            match tok.tok {
                Tok::End | Tok::RParen => break,
                Tok::And => {
                    let and_pos = tok.pos;
                    self.next()?;
                    let follows = self.peek()?;
                    let position = match follows.tok {
                        _ if items.is_empty() => Some(and_pos),
                        Tok::End | Tok::RParen => Some(and_pos),
                        Tok::And => Some(follows.pos),
                        // `a AND OR b`: `disj` reports the OR.
                        _ => None,
                    };
                    if let Some(position) = position {
                        return Err(unexpected_and(position));
                    }
                }
                _ => push_flat(&mut items, self.disj(depth)?, true),
            }
        }
        Ok(collapse(items, Query::And))
    }

    /// `disj = unary { "OR" unary }`.
    fn disj(&mut self, depth: usize) -> Result<Query, QueryError> {
        let mut items = Vec::new();
        push_flat(&mut items, self.unary(depth)?, false);
        while self.peek()?.tok == Tok::Or {
            let or = self.next()?;
            let follows = self.peek()?;
            if matches!(follows.tok, Tok::End | Tok::RParen | Tok::And) {
                return Err(unexpected_or(or.pos));
            }
            push_flat(&mut items, self.unary(depth)?, false);
        }
        Ok(collapse(items, Query::Or))
    }

    /// `unary = "-" unary | atom`.
    fn unary(&mut self, depth: usize) -> Result<Query, QueryError> {
        if self.peek()?.tok == Tok::Minus {
            let minus = self.next()?;
            check_depth(depth, minus.pos)?;
            return Ok(Query::Not(Box::new(self.unary(depth + 1)?)));
        }
        self.atom(depth)
    }

    /// `atom = "(" conj ")" | term | filter`.
    fn atom(&mut self, depth: usize) -> Result<Query, QueryError> {
        let token = self.next()?;
        match token.tok {
            Tok::Atom(q) => Ok(q),
            Tok::LParen => {
                check_depth(depth, token.pos)?;
                match self.peek()?.tok {
                    Tok::RParen => {
                        return Err(err(
                            QueryErrorKind::EmptyGroup,
                            token.pos,
                            "empty parentheses: put terms inside, or remove them".into(),
                        ));
                    }
                    Tok::End => return Err(unclosed(token.pos)),
                    _ => {}
                }
                let inner = self.conj(depth + 1)?;
                match self.next()?.tok {
                    Tok::RParen => Ok(inner),
                    _ => Err(unclosed(token.pos)),
                }
            }
            Tok::Or => Err(unexpected_or(token.pos)),
            Tok::And => Err(unexpected_and(token.pos)),
            // The lexer never puts these after `-`, and `conj`/`disj` stop
            // before them.
            Tok::RParen | Tok::Minus | Tok::End => Err(err(
                QueryErrorKind::MissingValue,
                token.pos,
                "expected a word, a phrase or a group here".into(),
            )),
        }
    }
}

fn check_depth(depth: usize, position: usize) -> Result<(), QueryError> {
    if depth >= MAX_DEPTH {
        return Err(err(
            QueryErrorKind::TooDeep,
            position,
            format!(
                "parentheses and exclusions nest more than {MAX_DEPTH} deep: \
                 simplify the query"
            ),
        ));
    }
    Ok(())
}

fn unclosed(position: usize) -> QueryError {
    err(
        QueryErrorKind::UnbalancedParen,
        position,
        "this `(` is never closed: add a `)` where the group ends".into(),
    )
}

fn unexpected_and(position: usize) -> QueryError {
    err(
        QueryErrorKind::UnexpectedAnd,
        position,
        "AND needs a term on each side (`a AND b`); to search for the word, \
         write it in lowercase or in quotes"
            .into(),
    )
}

fn unexpected_or(position: usize) -> QueryError {
    err(
        QueryErrorKind::UnexpectedOr,
        position,
        "OR needs a term on each side (`a OR b`); to search for the word, \
         write it in lowercase or in quotes"
            .into(),
    )
}

/// Appends `q` to the operands of an AND (`and`) or OR, splicing in the
/// operands of a nested node of the same kind.
fn push_flat(items: &mut Vec<Query>, q: Query, and: bool) {
    match q {
        Query::And(inner) if and => items.extend(inner),
        Query::Or(inner) if !and => items.extend(inner),
        other => items.push(other),
    }
}

/// One operand stands for itself; several make a node.
fn collapse(mut items: Vec<Query>, node: fn(Vec<Query>) -> Query) -> Query {
    if items.len() == 1
        && let Some(only) = items.pop()
    {
        return only;
    }
    node(items)
}
