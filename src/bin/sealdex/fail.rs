//! How a command fails, and the exit code each failure gives.
//!
//! Exit codes follow ripgrep's (and grep's): 0 when something was found,
//! 1 when a search, count or show found nothing (or `verify` found a
//! problem), 2 on an error. A reader that closes stdout early ends the
//! command quietly with 0, and Ctrl-C during `index` with 130, the shell's
//! code for an interrupt.

use std::process::ExitCode;

use crate::term;

/// Exit code: something matched / the command did what it was asked.
pub const FOUND: u8 = 0;
/// Exit code: nothing matched.
pub const NOT_FOUND: u8 = 1;
/// Exit code: an error.
pub const ERROR: u8 = 2;
/// Exit code: interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Why a command stopped early.
#[derive(Debug)]
pub enum Fail {
    /// The library failed.
    Sealdex(sealdex::Error),
    /// A query that does not parse, with where.
    Query {
        /// The query as given.
        query: String,
        /// Byte offset of the problem.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// Anything else worth a sentence (bad arguments, no mail found, a
    /// refused connection).
    Message(String),
    /// Stdout was closed by its reader: stop quietly.
    Closed,
    /// Ctrl-C: the message says what was kept.
    Interrupted(String),
}

impl From<sealdex::Error> for Fail {
    fn from(e: sealdex::Error) -> Self {
        match e {
            sealdex::Error::Query(q) => Fail::Query {
                query: String::new(),
                position: q.position,
                message: q.message,
            },
            other => Fail::Sealdex(other),
        }
    }
}

impl From<term::Closed> for Fail {
    fn from(_: term::Closed) -> Self {
        Fail::Closed
    }
}

impl Fail {
    /// A failure described by one sentence.
    pub fn msg(s: impl Into<String>) -> Self {
        Fail::Message(s.into())
    }

    /// Attaches the query text to a query error, for the caret.
    pub fn with_query(self, q: &str) -> Self {
        match self {
            Fail::Query {
                position, message, ..
            } => Fail::Query {
                query: q.to_owned(),
                position,
                message,
            },
            other => other,
        }
    }

    /// Reports the failure on stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Fail::Closed => ExitCode::from(FOUND),
            Fail::Interrupted(what) => {
                term::note(&format!("sealdex: {what}"));
                ExitCode::from(INTERRUPTED)
            }
            Fail::Sealdex(e) => {
                term::note(&format!("sealdex: {e}"));
                ExitCode::from(ERROR)
            }
            Fail::Message(m) => {
                term::note(&format!("sealdex: {m}"));
                ExitCode::from(ERROR)
            }
            Fail::Query {
                query,
                position,
                message,
            } => {
                term::note(&caret(&query, position, &message));
                ExitCode::from(ERROR)
            }
        }
    }
}

/// The query on one line and a caret under byte `position`:
///
/// ```text
/// sealdex: query error at byte 13: `2024-13-01` is not a date: …
///   report after:2024-13-01
///                ^
/// ```
///
/// The query is neutralised first, which keeps one character per character,
/// so the caret's column is the display width of what precedes it.
pub fn caret(query: &str, position: usize, message: &str) -> String {
    let mut out = format!(
        "sealdex: query error at byte {position}: {}",
        term::line(message)
    );
    if query.is_empty() {
        return out;
    }
    let mut at = position.min(query.len());
    while !query.is_char_boundary(at) {
        at -= 1;
    }
    let before = term::width(&term::line(&query[..at]));
    out.push_str(&format!(
        "\n  {}\n  {}^",
        term::line(query),
        " ".repeat(before)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_lands_under_the_position() {
        let c = caret("report after:2024-13-01", 13, "bad date");
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines[1], "  report after:2024-13-01");
        assert_eq!(lines[2], "               ^");
        // Wide characters count two columns.
        let c = caret("東京 from:", 7, "x");
        assert_eq!(c.lines().nth(2), Some("       ^"));
    }
}
