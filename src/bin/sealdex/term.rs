//! What reaches the terminal: mail text made inert, stdout that tolerates a
//! closed pipe, the terminal's width, and whether to colour.
//!
//! Why neutralise rather than trust: every field sealdex prints for a person
//! (sender, subject, snippet, folder, id, and errors that quote input) comes
//! from mail, which anyone can send. A terminal obeys the control characters
//! in what it prints: `ESC]0;…BEL` renames the window, `ESC[2J` clears the
//! screen, and some emulators have had escape sequences that write files or
//! answer back into the input. So every C0 control (except the newline and
//! tab a multi-line body keeps), DEL, every C1 control, and the Unicode
//! bidirectional overrides and isolates (which reorder what follows them,
//! the "Trojan Source" trick) are replaced by a visible stand-in. An escape
//! sequence thus prints as `␛[2J`: harmless, and still visible to whoever
//! wonders why a subject looks odd.
//!
//! JSON output is not neutralised but escaped: every such character is
//! written as a `\uXXXX` escape, which JSON defines as the same character,
//! so a program reading it gets the exact text and a terminal showing it
//! gets no control character.

use std::io::{IsTerminal, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Whether `c` must never reach a terminal raw.
fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Bidirectional embeddings, overrides and isolates: they reorder the
        // text after them (LRM/RLM/ALM, which only mark, stay).
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The visible stand-in for a dangerous character: the Control Pictures
/// block for C0 and DEL (`␛` for ESC), U+FFFD for the rest.
fn stand_in(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        _ => '\u{fffd}',
    }
}

/// One line of text for a person: every control character, newlines and
/// tabs included, neutralised (line breaks and tabs become spaces, so a
/// field stays on its line).
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' | '\r' => out.push(' '),
            c if is_dangerous(c) => out.push(stand_in(c)),
            c => out.push(c),
        }
    }
    out
}

/// Multi-line text for a person (a body, an error): newlines and tabs
/// kept, every other control character neutralised. A CR before a newline
/// is dropped (CRLF text), a lone CR neutralised: it would move the cursor
/// back over what was printed.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => {}
            c if is_dangerous(c) => out.push(stand_in(c)),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as one line whose every dangerous character is a `\uXXXX`
/// escape. serde_json escapes C0 itself; DEL, C1 and the bidi controls it
/// writes raw, and those can only stand inside strings, where the escape
/// means the same character.
pub fn json(v: &serde_json::Value) -> String {
    let raw = v.to_string();
    if !raw.chars().any(is_dangerous) {
        return raw;
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        if is_dangerous(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Display width of `s` in terminal columns (wide CJK characters count two).
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `cols` columns, with `…` when cut.
pub fn clip(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return s.to_owned();
    }
    if cols == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > cols - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` clipped to `cols` columns and padded with spaces to exactly `cols`.
pub fn pad(s: &str, cols: usize) -> String {
    let mut out = clip(s, cols);
    let w = width(&out);
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(w)));
    out
}

/// The width lines on stdout must fit: the terminal's, else `$COLUMNS`,
/// else none (a pipe gets whole lines).
pub fn stdout_width() -> Option<usize> {
    if std::io::stdout().is_terminal()
        && let Some((_, cols)) = console::Term::stdout().size_checked()
    {
        return Some(cols as usize);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
}

/// `--color`: when to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (to anything but empty).
    Auto,
    /// Always, even into a pipe and despite `NO_COLOR`.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether stdout gets colour.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Stdout for results. A closed pipe (`sealdex search … | head`) is
/// reported as [`Closed`] so that the command stops quietly instead of
/// panicking the way `println!` does.
pub struct Out {
    inner: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

/// Stdout was closed by the reader.
#[derive(Debug)]
pub struct Closed;

impl Out {
    /// Locks stdout for the command.
    pub fn new() -> Out {
        Out {
            inner: std::io::BufWriter::new(std::io::stdout().lock()),
        }
    }

    /// Writes one line (the text must already be safe for a terminal).
    pub fn line(&mut self, s: &str) -> Result<(), Closed> {
        writeln!(self.inner, "{s}").map_err(|_| Closed)
    }

    /// Flushes; a line-at-a-time reader (a pager) sees each page at once.
    pub fn flush(&mut self) -> Result<(), Closed> {
        self.inner.flush().map_err(|_| Closed)
    }
}

/// A message for the person at the terminal, on stderr, neutralised.
/// Never panics: a closed stderr loses the message, nothing else.
pub fn note(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", text(s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_neutralised() {
        let hostile = "a\u{1b}]0;TITLE\u{7}b\u{1b}[2J\u{9b}31m\u{202e}c\r\nd\te";
        let l = line(hostile);
        assert!(!l.chars().any(is_dangerous), "{l:?}");
        assert!(!l.contains('\n') && !l.contains('\t'));
        assert!(l.contains("␛]0;TITLE␇b␛[2J"));
        let t = text(hostile);
        assert!(t.contains("c\nd\te"), "{t:?}");
        assert!(!t.chars().any(|c| is_dangerous(c) && c != '\n' && c != '\t'));
    }

    #[test]
    fn json_stays_exact() {
        let s = "x\u{1b}[31m\u{9b}\u{7f}\u{202e}y";
        let v = serde_json::json!({ "s": s });
        let j = json(&v);
        assert!(!j.chars().any(is_dangerous), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["s"], s);
    }

    #[test]
    fn widths_count_wide_characters() {
        assert_eq!(width("東京"), 4);
        assert_eq!(pad("東京タワー", 5), "東京…");
        assert_eq!(width(&pad("東京タワー", 6)), 6);
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
