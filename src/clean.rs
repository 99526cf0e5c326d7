//! Cleaning: HTML to text, and the one Unicode normaliser both search modes share.
//!
//! Two jobs live here because both decide *what text search sees*:
//!
//! 1. [`html_to_text`] turns an HTML body into the plain text a reader would
//!    see, and [`clean`] turns a parsed [`Message`] into the [`Record`] that
//!    gets sealed. Records hold cleaned text, never HTML, so that searching
//!    never parses anything.
//! 2. [`normalise`] and [`tokens`] define what counts as equal and what
//!    counts as a word. The forward scan and the inverted index both call
//!    them, on records and on queries alike; if the two modes normalised
//!    differently they would return different results for the same query.
//!
//! # Normalisation
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
//!
//! # Tokens
//!
//! A token is a maximal run of letters and digits ([`char::is_alphanumeric`]),
//! except that each CJK ideograph, hiragana, katakana and hangul syllable is
//! a token of its own ([`is_single_char_token`]): those scripts do not put
//! spaces between words, and one character per token lets a phrase query
//! match any word without a dictionary.

use std::cell::RefCell;

use caseless::Caseless;
use html2text::render::TrivialDecorator;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::decrypt::{Body, Message};
use crate::record::{ContentKind, Record};

// ---------------------------------------------------------------------------
// HTML to text
// ---------------------------------------------------------------------------

/// Render width for HTML. html2text wraps at the width it is given; text for
/// search must not be re-wrapped (a wrap inside a phrase is harmless, but a
/// wrap costs time and changes offsets for nothing), so the width is far
/// beyond any real paragraph, while staying small enough that no layout
/// arithmetic could overflow.
const HTML_WIDTH: usize = 1 << 20;

type HtmlConfig = html2text::config::Config<TrivialDecorator>;

thread_local! {
    /// The html2text configuration is built once per thread: it is not
    /// `Sync`, and building it parses its agent style sheet.
    static HTML_CONFIG: RefCell<HtmlConfig> = RefCell::new(html_config());
}

/// html2text configured for search text:
///
/// - `TrivialDecorator`: no `*emphasis*`, no `[link]` footnotes, no `#`
///   heading or `>` quote prefixes, no image placeholders; an `<img>` shows
///   its `alt` text only, so an inline `data:` image never leaks its base64
///   into the text;
/// - raw mode: table cells come out one after another, without borders and
///   without column layout (which is also much faster);
/// - document CSS on: `display:none` in `style` attributes and `<style>`
///   sheets hides elements, the usual way spam hides bait text.
fn html_config() -> HtmlConfig {
    html2text::config::with_decorator(TrivialDecorator::new())
        .raw_mode(true)
        .no_table_borders()
        .link_footnotes(false)
        .allow_width_overflow()
        .use_doc_css()
}

/// Converts HTML to the plain text a reader would see.
///
/// Dropped: `<script>` and `<style>` content, comments, elements with the
/// `hidden` attribute or an inline `display:none` or `visibility:hidden`
/// style, elements hidden by `display:none` rules of the document's own
/// style sheets, the content of `<iframe>`, `<noframes>` and `<template>`,
/// images without `alt` text (including inline `data:` images), link
/// targets, and all markup decoration. Lines are not wrapped.
///
/// Broken HTML is parsed the way browsers parse it (html5ever) and never
/// panics. If html2text still cannot render the document, which happens
/// only when nothing renderable is left (an empty document), the result is
/// the empty string.
///
/// ```
/// let html = r#"<p>Hello <b>world</b><span style="display:none">hidden bait</span></p>
///               <script>alert(1)</script><img src="data:image/png;base64,iVBORw0KGgo=">"#;
/// assert_eq!(sealdex::clean::html_to_text(html).trim(), "Hello world");
/// ```
pub fn html_to_text(html: &str) -> String {
    HTML_CONFIG.with(|config| {
        let config = config.borrow();
        let Ok(dom) = config.parse_html(html.as_bytes()) else {
            return String::new();
        };
        drop_invisible(&dom.document);
        let text = config
            .dom_to_render_tree(&dom)
            .and_then(|tree| config.render_to_string(tree, HTML_WIDTH));
        match text {
            Ok(mut text) => {
                text.truncate(text.trim_end().len());
                text
            }
            Err(_) => String::new(),
        }
    })
}

/// Removes from the DOM the elements that html2text would render although a
/// browser would not show them: the `hidden` attribute, inline
/// `visibility:hidden` (html2text's CSS support does not know the
/// property), and the raw-text fallback content of `<iframe>` and
/// `<noframes>`. Iterative, because a hostile message may nest
/// elements deeply enough to overflow a recursive walk.
fn drop_invisible(root: &html2text::Handle) {
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        let mut children = node.children.borrow_mut();
        children.retain(|child| !is_invisible(child));
        stack.extend(children.iter().cloned());
    }
}

fn is_invisible(node: &html2text::Handle) -> bool {
    let html2text::Element { name, attrs, .. } = &node.data else {
        return false;
    };
    // `<iframe>` and `<noframes>` hold fallback markup as raw text that no
    // browser shows; `<template>` content is never rendered.
    if matches!(&*name.local, "iframe" | "noframes" | "template") {
        return true;
    }
    attrs.borrow().iter().any(|attr| match &*attr.name.local {
        "hidden" => true,
        "style" => style_hides(&attr.value),
        _ => false,
    })
}

/// Whether an inline style declares `visibility: hidden` (html2text's CSS
/// engine does not know the property). Whitespace and case are ignored; a
/// later `visibility: visible` in the same attribute wins, as in CSS.
fn style_hides(style: &str) -> bool {
    let compact: String = style
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    compact
        .split(';')
        .rev()
        .find_map(|decl| decl.strip_prefix("visibility:"))
        .is_some_and(|v| v.starts_with("hidden") || v.starts_with("collapse"))
}

/// The body as plain text: text passes through, HTML goes through
/// [`html_to_text`].
pub fn body_text(body: &Body) -> String {
    match body {
        Body::Text(text) => text.clone(),
        Body::Html(html) => html_to_text(html),
    }
}

/// Builds the [`Record`] to seal from a parsed message: the body becomes
/// text, recipients and attachment names one per line. Text is stored as
/// the message has it (not normalised), so that snippets show what the user
/// wrote; search normalises as it reads.
///
/// ```
/// use sealdex::{Body, Message, ContentKind};
/// let msg = Message {
///     id: "1".into(),
///     subject: "Hi".into(),
///     body: Body::Html("<p>Hello&nbsp;there</p>".into()),
///     attachments: vec!["a.pdf".into(), "b.png".into()],
///     ..Message::default()
/// };
/// let rec = sealdex::clean::clean(msg, "maildir:~/Mail", Some("v1".into()));
/// assert_eq!(rec.body, "Hello\u{a0}there");
/// assert_eq!(rec.attachments, "a.pdf\nb.png");
/// assert_eq!(rec.kind, ContentKind::Mail);
/// assert_eq!(rec.source, "maildir:~/Mail");
/// ```
pub fn clean(msg: Message, source: &str, version: Option<String>) -> Record {
    let body = match msg.body {
        Body::Text(text) => text,
        Body::Html(html) => html_to_text(&html),
    };
    Record {
        id: msg.id,
        source: source.to_owned(),
        timestamp: msg.date,
        kind: ContentKind::Mail,
        subject: msg.subject,
        body,
        from: msg.from,
        to: msg.to,
        attachments: msg.attachments.join("\n"),
        folders: msg.folders,
        flags: msg.flags,
        version,
    }
}

// ---------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------

/// Normalises text for matching: NFKD, combining marks dropped, full case
/// folding, hangul syllables kept whole (see the module documentation).
///
/// ```
/// use sealdex::clean::normalise;
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
fn normalise_general(c: char, out: &mut String) {
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

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

/// Whether `c` can be part of a token: a letter or a digit in any script.
///
/// ```
/// use sealdex::clean::is_word_char;
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
/// use sealdex::clean::is_single_char_token;
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
enum Class {
    Separator,
    Word,
    Single,
}

fn classify(c: char) -> Class {
    if !c.is_alphanumeric() {
        Class::Separator
    } else if in_single_char_blocks(c) {
        Class::Single
    } else {
        Class::Word
    }
}

/// Splits text into tokens: `(byte offset, token)` pairs, in order, never
/// overlapping. Meant for normalised text (see [`normalise`]); on other text
/// it still splits correctly, but case and accents are left as they are.
///
/// ```
/// use sealdex::clean::{normalise, tokens};
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

impl<'a> Tokens<'a> {
    /// The character starting at byte `at` (which is always a boundary).
    fn char_at(&self, at: usize) -> Option<char> {
        self.s.get(at..).and_then(|rest| rest.chars().next())
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.s.as_bytes();
        // Skip to the start of the next token.
        let start = loop {
            let &b = bytes.get(self.pos)?;
            if b.is_ascii() {
                if b.is_ascii_alphanumeric() {
                    break self.pos;
                }
                self.pos += 1;
            } else {
                let c = self.char_at(self.pos)?;
                match classify(c) {
                    Class::Separator => self.pos += c.len_utf8(),
                    Class::Word => break self.pos,
                    Class::Single => {
                        let start = self.pos;
                        self.pos += c.len_utf8();
                        return Some((start, &self.s[start..self.pos]));
                    }
                }
            }
        };
        // Extend over word characters up to the next separator or
        // single-character token.
        while let Some(&b) = bytes.get(self.pos) {
            if b.is_ascii() {
                if !b.is_ascii_alphanumeric() {
                    break;
                }
                self.pos += 1;
            } else {
                let Some(c) = self.char_at(self.pos) else {
                    break;
                };
                if classify(c) != Class::Word {
                    break;
                }
                self.pos += c.len_utf8();
            }
        }
        Some((start, &self.s[start..self.pos]))
    }
}

impl std::iter::FusedIterator for Tokens<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn toks(s: &str) -> Vec<&str> {
        tokens(s).map(|(_, t)| t).collect()
    }

    fn norm_toks(s: &str) -> Vec<String> {
        let n = normalise(s);
        tokens(&n).map(|(_, t)| t.to_owned()).collect()
    }

    /// The general path, char by char, with no ASCII shortcut at all.
    fn normalise_slow(s: &str) -> String {
        let mut out = String::new();
        s.chars().for_each(|c| normalise_general(c, &mut out));
        out
    }

    #[test]
    fn diacritics() {
        assert_eq!(normalise("é"), "e");
        assert_eq!(normalise("Å"), "a");
        assert_eq!(normalise("Ångström"), "angstrom");
        assert_eq!(normalise("naïve façade"), "naive facade");
        assert_eq!(normalise("e\u{301}"), "e"); // already decomposed input
        assert_eq!(normalise("Øre"), "øre"); // ø has no decomposition
    }

    #[test]
    fn folding() {
        assert_eq!(normalise("Straße"), "strasse");
        assert_eq!(normalise("STRASSE"), "strasse");
        assert_eq!(normalise("ẞ"), "ss");
        assert_eq!(normalise("ﬁle ﬂow ﬀ"), "file flow ff");
        assert_eq!(normalise("ＡＢＣ１２３ｘ"), "abc123x");
        assert_eq!(normalise("İstanbul"), "istanbul");
        assert_eq!(normalise("ı"), "ı");
        assert_eq!(normalise("ΣΊΣΥΦΟΣ σίσυφος"), "σισυφοσ σισυφοσ");
        assert_eq!(normalise("ς"), "σ");
        assert_eq!(normalise("МОСКВА"), "москва");
        assert_eq!(normalise("①²"), "12");
    }

    #[test]
    fn ascii_fast_path() {
        assert_eq!(normalise("Hello, World! 42"), "hello, world! 42");
        for b in 0u8..128 {
            let c = b as char;
            let mut fast = String::new();
            normalise_char(c, &mut fast);
            assert_eq!(fast, normalise_slow(&c.to_string()), "{b}");
        }
    }

    #[test]
    fn cjk_and_kana_are_single_tokens() {
        assert_eq!(
            toks("日本語テキスト"),
            ["日", "本", "語", "テ", "キ", "ス", "ト"]
        );
        assert_eq!(normalise("ｶﾞｷﾞ"), "カキ");
        assert_eq!(norm_toks("ｶﾞｷﾞ"), ["カ", "キ"]);
        assert_eq!(normalise("が"), "か");
        assert_eq!(normalise("ガ"), "カ");
        assert_eq!(toks("abc日本def"), ["abc", "日", "本", "def"]);
        assert_eq!(toks("中文ABC123"), ["中", "文", "ABC123"]);
        assert_eq!(toks("𠀀𪜀"), ["𠀀", "𪜀"]); // extensions B and C
    }

    #[test]
    fn hangul_stays_composed() {
        assert_eq!(normalise("한국어"), "한국어");
        assert_eq!(norm_toks("한국어"), ["한", "국", "어"]);
        assert_eq!(normalise("한").chars().count(), 1);
    }

    #[test]
    fn digits_punctuation_and_emoji() {
        assert_eq!(toks("o'reilly"), ["o", "reilly"]);
        assert_eq!(toks("apt-get install"), ["apt", "get", "install"]);
        assert_eq!(
            toks("v1.2.3 2024-05-01"),
            ["v1", "2", "3", "2024", "05", "01"]
        );
        assert_eq!(toks("mail@example.org"), ["mail", "example", "org"]);
        assert_eq!(toks("😀 hi 🎉🎉 yo"), ["hi", "yo"]);
        assert_eq!(toks("٣٤٥ café"), ["٣٤٥", "café"]);
        assert!(toks("").is_empty());
        assert!(toks(" --- ").is_empty());
        let with_offsets: Vec<_> = tokens("ab 日c").collect();
        assert_eq!(with_offsets, [(0, "ab"), (3, "日"), (6, "c")]);
    }

    #[test]
    fn html_drops_scripts_styles_hidden_and_decoration() {
        let html = r#"<html><head><title>T</title><style>.x{display:none} p{color:red}</style>
            <script>var secret = 1;</script></head><body>
            <h1>Title</h1><p>Some <em>emphasis</em> and <strong>bold</strong> and
            <a href="https://example.org/track">a link</a>.</p>
            <div hidden>hidden attr</div>
            <div style="display: none">display none</div>
            <div style="Visibility : Hidden">visibility hidden</div>
            <div class="x">class hidden</div>
            <img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB" alt="">
            <img src="https://example.org/pixel.gif">
            <img src="logo.png" alt="Company logo">
            <table><tr><td>cell one</td><td>cell two</td></tr></table>
            <ul><li>item</li></ul><blockquote>quoted</blockquote>
            </body></html>"#;
        let text = html_to_text(html);
        for gone in [
            "secret",
            "hidden attr",
            "display none",
            "visibility hidden",
            "class hidden",
            "iVBOR",
            "base64",
            "example.org",
            "[",
            "*",
            "_",
            "|",
            "#",
            ">",
            "color",
        ] {
            assert!(!text.contains(gone), "{gone:?} in {text:?}");
        }
        for kept in [
            "Title",
            "Some emphasis and bold and",
            "a link",
            "Company logo",
            "cell one",
            "cell two",
            "item",
            "quoted",
        ] {
            assert!(text.contains(kept), "{kept:?} not in {text:?}");
        }
    }

    #[test]
    fn html_lines_are_not_rewrapped() {
        let long = "word ".repeat(2000);
        let text = html_to_text(&format!("<p>{long}</p>"));
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn broken_and_hostile_html() {
        assert_eq!(html_to_text(""), "");
        assert_eq!(
            html_to_text("<p>unclosed <b>bold <i>text").trim(),
            "unclosed bold text"
        );
        let _ = html_to_text("<table><td><tr></table></td>x<<<>>>&&#xffffffff;&bogus;");
        let deep = "<div>".repeat(20_000) + "deep" + &"</div>".repeat(20_000);
        assert!(html_to_text(&deep).contains("deep"));
        let _ = html_to_text("<table>".repeat(5_000).as_str());
    }

    #[test]
    fn style_hides_parses_declarations() {
        assert!(style_hides("visibility:hidden"));
        assert!(style_hides("color: red; VISIBILITY : hidden !important"));
        assert!(!style_hides("visibility: hidden; visibility: visible"));
        assert!(!style_hides("color: hidden"));
    }

    #[test]
    fn clean_builds_a_record() {
        let msg = Message {
            id: "x".into(),
            date: Some(5),
            from: "a <a@x>".into(),
            to: "b@x\nc@x".into(),
            subject: "S".into(),
            body: Body::Text("plain".into()),
            folders: vec!["INBOX".into()],
            flags: crate::Flags::UNREAD,
            attachments: vec!["f1".into(), "f2".into()],
        };
        let r = clean(msg, "src", None);
        assert_eq!(r.id, "x");
        assert_eq!(r.timestamp, Some(5));
        assert_eq!(r.body, "plain");
        assert_eq!(r.to, "b@x\nc@x");
        assert_eq!(r.attachments, "f1\nf2");
        assert_eq!(r.flags, crate::Flags::UNREAD);
        assert_eq!(r.folders, ["INBOX"]);
        assert_eq!(body_text(&Body::Html("<b>x</b>".into())), "x");
    }

    /// Strings that mix ASCII with characters the normaliser treats
    /// specially, so that properties are exercised on them often.
    fn tricky() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "Z", " ", "-", "'", "1", "é", "E\u{301}", "ß", "ẞ", "ﬁ", "Ａ", "İ", "ı", "Σ", "ς",
            "日", "語", "テ", "ｶﾞ", "が", "한", "ᄒ", "ㄱ", "㈎", "😀", "①", "Ǆ", "ǅ", "ΐ",
            "\u{345}", "ﬆ", "Ω", "K", "Å", "µ", "ᾈ", "\u{1E9E}", "ŉ", "\u{0}", "\u{FEFF}",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), tricky()]
    }

    proptest! {
        #[test]
        fn normalise_is_idempotent(s in any_text()) {
            let once = normalise(&s);
            prop_assert_eq!(normalise(&once), once);
        }

        #[test]
        fn normalise_into_agrees_with_per_char(s in any_text(), prefix in "[a-z]{0,3}") {
            let mut per_char = prefix.clone();
            s.chars().for_each(|c| normalise_char(c, &mut per_char));
            let mut into = prefix;
            normalise_into(&s, &mut into);
            prop_assert_eq!(into, per_char);
        }

        #[test]
        fn ascii_fast_path_agrees_with_slow_path(s in "[\\x00-\\x7f]{0,64}") {
            prop_assert_eq!(normalise(&s), normalise_slow(&s));
        }

        #[test]
        fn fast_path_agrees_everywhere(s in any_text()) {
            prop_assert_eq!(normalise(&s), normalise_slow(&s));
        }

        #[test]
        fn tokens_are_ordered_disjoint_and_in_bounds(s in any_text()) {
            let mut end = 0;
            for (start, tok) in tokens(&s) {
                prop_assert!(start >= end);
                prop_assert!(!tok.is_empty());
                prop_assert_eq!(s.get(start..start + tok.len()), Some(tok));
                end = start + tok.len();
            }
        }

        #[test]
        fn tokens_of_normalised_text_are_word_chars(s in any_text()) {
            let n = normalise(&s);
            let mut word_chars = 0;
            for (_, tok) in tokens(&n) {
                prop_assert!(!tok.is_empty());
                prop_assert!(tok.chars().all(is_word_char));
                let first = tok.chars().next().unwrap_or(' ');
                prop_assert!(!is_single_char_token(first) || tok.chars().count() == 1);
                word_chars += tok.chars().count();
            }
            // Every word character is in some token.
            prop_assert_eq!(word_chars, n.chars().filter(|&c| is_word_char(c)).count());
        }
    }
}
