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

use caseless::Caseless;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::decrypt::{Body, Message};
use crate::record::Record;

// ---------------------------------------------------------------------------
// HTML to text
// ---------------------------------------------------------------------------

/// Converts HTML to the plain text a reader would see.
///
/// Dropped: the `<head>` (its `<title>` included), `<script>` and `<style>`
/// content, comments, elements with the `hidden` attribute or an inline
/// style that hides them (`display:none`, `visibility:hidden` or
/// `collapse`, a zero height with hidden overflow), elements hidden by
/// `display:none` rules of the document's own style sheets, the content of
/// `<iframe>`, `<noframes>`, `<noscript>`, `<template>` and inline `<svg>`,
/// images without `alt` text (including inline `data:` images), link
/// targets, and all markup decoration. Entities are decoded; block
/// elements, table cells and `<br>` separate words; an image's `alt` text
/// stands where the image is. Runs of whitespace become one space (except
/// inside `<pre>`), and lines are not wrapped.
///
/// # How
///
/// Mail HTML is turned into text in a single pass over the tokens of a
/// WHATWG-compliant tokenizer (html5gum), without building a DOM: a stack
/// of open elements, with the tree builder's implied end tags for
/// paragraphs, list items, table parts and options, is enough to know
/// which text is inside a hidden element. This is about five times faster
/// than building a DOM and rendering it, and HTML is the costliest stage
/// of indexing. The one thing it cannot do cheaply is apply a style
/// sheet's selectors, so a document whose `<style>` could hide elements
/// (a rare case in mail: 2 of the 943 HTML bodies of the SpamAssassin
/// corpus) goes through html2text, which builds the DOM and applies the
/// sheet, instead.
///
/// Broken HTML is tokenized the way browsers tokenize it and never panics.
/// Time and memory are linear in the input: the implied-end-tag search is
/// bounded, and an end tag without a matching open element costs one
/// lookup.
///
/// ```
/// let html = r#"<p>Hello <b>world</b><span style="display:none">hidden bait</span></p>
///               <script>alert(1)</script><img src="data:image/png;base64,iVBORw0KGgo=">"#;
/// assert_eq!(sealdex::clean::html_to_text(html).trim(), "Hello world");
/// ```
pub fn html_to_text(html: &str) -> String {
    match tokens_to_text::extract(html) {
        tokens_to_text::Extracted::Text(text) => text,
        tokens_to_text::Extracted::NeedsStyleSheet => with_style_sheets::html_to_text(html),
    }
}

/// Whether an inline style hides its element: `display: none`,
/// `visibility: hidden` or `collapse`, or a zero `height`/`max-height`
/// with `overflow: hidden` (the way html2text reads them too). Whitespace,
/// case and `!important` are ignored; a later declaration of the same
/// property wins, as in CSS.
fn style_hides(style: &str) -> bool {
    let mut display_none = false;
    let mut invisible = false;
    let mut zero_height = false;
    let mut overflow_hidden = false;
    for decl in style.split(';') {
        let Some((prop, value)) = decl.split_once(':') else {
            continue;
        };
        let prop = prop.trim();
        let value = value.trim();
        let value = match value.get(value.len().saturating_sub(10)..) {
            Some(tail) if tail.eq_ignore_ascii_case("!important") => {
                value.get(..value.len() - 10).unwrap_or_default().trim_end()
            }
            _ => value,
        };
        let is = |name: &str| prop.eq_ignore_ascii_case(name);
        if is("display") {
            display_none = value.eq_ignore_ascii_case("none");
        } else if is("visibility") {
            invisible =
                value.eq_ignore_ascii_case("hidden") || value.eq_ignore_ascii_case("collapse");
        } else if is("height") || is("max-height") {
            zero_height = value
                .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%')
                .parse::<f64>()
                .is_ok_and(|v| v == 0.0);
        } else if is("overflow") || is("overflow-y") {
            overflow_hidden = value.eq_ignore_ascii_case("hidden");
        }
    }
    display_none || invisible || (zero_height && overflow_hidden)
}

/// HTML to text in one pass over html5gum's tokens; see [`html_to_text`].
mod tokens_to_text {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::convert::Infallible;

    use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};
    use html5gum::{Emitter, ForwardingEmitter, Span, Tokenizer};

    /// What one pass found.
    pub(super) enum Extracted {
        /// The text.
        Text(String),
        /// A `<style>` sheet may hide elements: the document needs a
        /// converter that applies style sheets.
        NeedsStyleSheet,
    }

    thread_local! {
        /// One extractor per thread, reused from document to document so
        /// that its name table and stack are allocated once.
        static EXTRACTOR: RefCell<Extractor> = RefCell::new(Extractor::new());
    }

    /// Converts `html`, or says that it needs its style sheets applied.
    pub(super) fn extract(html: &str) -> Extracted {
        EXTRACTOR.with(|cell| match cell.try_borrow_mut() {
            Ok(mut ex) => extract_with(&mut ex, html),
            // Not reached (nothing in here calls back into `extract`), but
            // a fresh extractor is always correct.
            Err(_) => extract_with(&mut Extractor::new(), html),
        })
    }

    fn extract_with(ex: &mut Extractor, html: &str) -> Extracted {
        ex.reset(html.len());
        {
            let mut emitter = CallbackEmitter::new(|event: CallbackEvent<'_>, _: Span<()>| {
                ex.event(event);
                None::<Infallible>
            });
            // Switch to raw text after `<script>`, `<style>`, `<title>`,
            // `<textarea>` and the like, as the tree builder would.
            emitter.naively_switch_states(true);
            // The string reader cannot fail: its error type is `Infallible`.
            for _ in Tokenizer::new_with_emitter(html, Quiet(emitter)) {}
        }
        if ex.needs_style_sheet {
            return Extracted::NeedsStyleSheet;
        }
        let mut out = std::mem::take(&mut ex.out);
        out.truncate(
            out.trim_end_matches(|c: char| c.is_ascii_whitespace())
                .len(),
        );
        Extracted::Text(out)
    }

    /// Most distinct element names interned; later new names all share one
    /// id (so a flood of invented names stays linear, at worst matching
    /// each other's end tags).
    const MAX_NAMES: usize = 1024;

    /// Names the rules below refer to, interned first so that their ids are
    /// the constants that follow.
    const PRESET: [&[u8]; 21] = [
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"td",
        b"th",
        b"tr",
        b"tbody",
        b"thead",
        b"tfoot",
        b"option",
        b"table",
        b"caption",
        b"button",
        b"body",
        b"ul",
        b"ol",
        b"dl",
        b"select",
        b"datalist",
        b"style",
    ];
    const P: u32 = 0;
    const LI: u32 = 1;
    const DT: u32 = 2;
    const DD: u32 = 3;
    const TD: u32 = 4;
    const TH: u32 = 5;
    const TR: u32 = 6;
    const TBODY: u32 = 7;
    const THEAD: u32 = 8;
    const TFOOT: u32 = 9;
    const OPTION: u32 = 10;
    const TABLE: u32 = 11;
    const CAPTION: u32 = 12;
    const BUTTON: u32 = 13;
    const BODY: u32 = 14;
    const UL: u32 = 15;
    const OL: u32 = 16;
    const DL: u32 = 17;
    const SELECT: u32 = 18;
    const DATALIST: u32 = 19;
    const STYLE: u32 = 20;

    /// The callback emitter without parse errors: nothing here reads them,
    /// and checking every character for them was a fifth of the
    /// tokenizer's time.
    struct Quiet<E>(E);

    impl<E: Emitter> ForwardingEmitter for Quiet<E> {
        type Token = E::Token;

        fn inner(&mut self) -> &mut impl Emitter<Token = Self::Token> {
            &mut self.0
        }

        fn should_emit_errors(&mut self) -> bool {
            false
        }
    }

    /// Elements whose content no reader sees, whatever their style.
    fn drops_content(name: &[u8]) -> bool {
        matches!(
            name,
            b"script"
                | b"style"
                | b"title"
                | b"template"
                | b"iframe"
                | b"noframes"
                | b"noscript"
                | b"svg"
        )
    }

    /// Elements without content or end tag.
    fn is_void(name: &[u8]) -> bool {
        matches!(
            name,
            b"area"
                | b"base"
                | b"basefont"
                | b"bgsound"
                | b"br"
                | b"col"
                | b"embed"
                | b"frame"
                | b"hr"
                | b"image"
                | b"img"
                | b"input"
                | b"keygen"
                | b"link"
                | b"meta"
                | b"param"
                | b"source"
                | b"track"
                | b"wbr"
        )
    }

    /// Elements whose start and end separate the words around them.
    fn is_block(name: &[u8]) -> bool {
        matches!(
            name,
            b"address"
                | b"article"
                | b"aside"
                | b"blockquote"
                | b"body"
                | b"br"
                | b"button"
                | b"caption"
                | b"center"
                | b"dd"
                | b"details"
                | b"dialog"
                | b"dir"
                | b"div"
                | b"dl"
                | b"dt"
                | b"fieldset"
                | b"figcaption"
                | b"figure"
                | b"footer"
                | b"form"
                | b"frameset"
                | b"h1"
                | b"h2"
                | b"h3"
                | b"h4"
                | b"h5"
                | b"h6"
                | b"header"
                | b"hgroup"
                | b"hr"
                | b"legend"
                | b"li"
                | b"listing"
                | b"main"
                | b"menu"
                | b"nav"
                | b"ol"
                | b"option"
                | b"p"
                | b"plaintext"
                | b"pre"
                | b"section"
                | b"select"
                | b"summary"
                | b"table"
                | b"tbody"
                | b"td"
                | b"textarea"
                | b"tfoot"
                | b"th"
                | b"thead"
                | b"tr"
                | b"ul"
                | b"xmp"
        )
    }

    /// Elements whose whitespace is kept as it is.
    fn is_preformatted(name: &[u8]) -> bool {
        matches!(
            name,
            b"pre" | b"listing" | b"xmp" | b"plaintext" | b"textarea"
        )
    }

    /// Elements that may stand in `<head>`; any other start tag begins the
    /// body, as in the tree builder's "in head" insertion mode.
    fn belongs_in_head(name: &[u8]) -> bool {
        matches!(
            name,
            b"base"
                | b"basefont"
                | b"bgsound"
                | b"link"
                | b"meta"
                | b"title"
                | b"noscript"
                | b"noframes"
                | b"style"
                | b"script"
                | b"template"
        )
    }

    /// The elements without an end tag that a start tag closes, and the
    /// elements at which the search for them stops (as ids of [`PRESET`]):
    /// a small part of the tree builder's rules, enough that
    /// `<p style="display:none">bait<p>` hides only the bait.
    type Implied = (&'static [u32], &'static [u32]);

    fn implied_end(name: &[u8]) -> Option<Implied> {
        const P_ONLY: &[u32] = &[P];
        const P_STOP: &[u32] = &[TABLE, TD, TH, CAPTION, BUTTON, BODY];
        match name {
            b"address" | b"article" | b"aside" | b"blockquote" | b"center" | b"details"
            | b"dialog" | b"dir" | b"div" | b"dl" | b"fieldset" | b"figcaption" | b"figure"
            | b"footer" | b"form" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"header"
            | b"hgroup" | b"hr" | b"listing" | b"main" | b"menu" | b"nav" | b"ol" | b"p"
            | b"plaintext" | b"pre" | b"section" | b"summary" | b"table" | b"ul" | b"xmp" => {
                Some((P_ONLY, P_STOP))
            }
            b"li" => Some((&[LI], &[UL, OL, TABLE, TD, TH, BODY])),
            b"dt" | b"dd" => Some((&[DT, DD], &[DL, TABLE, TD, TH, BODY])),
            b"td" | b"th" => Some((&[TD, TH], &[TR, TABLE])),
            b"tr" => Some((&[TR, TD, TH], &[TBODY, THEAD, TFOOT, TABLE])),
            b"tbody" | b"thead" | b"tfoot" => Some((&[TBODY, THEAD, TFOOT, TR, TD, TH], &[TABLE])),
            b"option" => Some((&[OPTION], &[SELECT, DATALIST])),
            _ => None,
        }
    }

    /// How far down the open elements an implied end tag is looked for;
    /// keeps hostile nesting linear.
    const IMPLIED_END_SEARCH: usize = 32;

    /// The attribute of the start tag being read that the next value
    /// belongs to.
    #[derive(Clone, Copy, Default, PartialEq, Eq)]
    enum Attr {
        #[default]
        Other,
        Style,
        Alt,
        Src,
    }

    /// An open element.
    struct Open {
        /// Interned name.
        name: u32,
        /// Its end separates words.
        block: bool,
        /// Whitespace inside it is kept.
        pre: bool,
    }

    struct Extractor {
        out: String,
        /// Whether the text written last ends in collapsed whitespace.
        at_space: bool,
        /// A block boundary was passed since the last text.
        pending_break: bool,
        /// Open elements, innermost last.
        stack: Vec<Open>,
        /// Names of elements seen, interned: `names[name] == id`,
        /// `open_counts[id]` open elements of that name.
        /// FxHash: tag names are short, and SipHash on them was a tenth of
        /// the extractor's time. Hash flooding is bounded by [`MAX_NAMES`].
        names: HashMap<Vec<u8>, u32, rustc_hash::FxBuildHasher>,
        open_counts: Vec<u32>,
        /// Depth of the outermost open element that hides its content.
        hidden_from: Option<usize>,
        /// Open preformatted elements.
        pre: u32,
        /// The body has begun: text now counts, and `<head>` is ignored.
        in_body: bool,
        /// The start tag being read.
        tag: Vec<u8>,
        attr: Attr,
        tag_hides: bool,
        alt: Option<String>,
        has_src: bool,
        /// Inside `<style>`: its text is a style sheet, not content.
        in_style: bool,
        needs_style_sheet: bool,
    }

    impl Extractor {
        fn new() -> Self {
            let mut ex = Extractor {
                out: String::new(),
                at_space: true,
                pending_break: false,
                stack: Vec::new(),
                names: HashMap::default(),
                open_counts: Vec::new(),
                hidden_from: None,
                pre: 0,
                in_body: false,
                tag: Vec::new(),
                attr: Attr::Other,
                tag_hides: false,
                alt: None,
                has_src: false,
                in_style: false,
                needs_style_sheet: false,
            };
            for name in PRESET {
                ex.intern(name);
            }
            ex
        }

        /// Ready for a new document of `len` bytes; keeps the name table.
        fn reset(&mut self, len: usize) {
            if self.names.len() > MAX_NAMES / 2 {
                // Made by a flood of invented names: start afresh rather
                // than carry it to every later document.
                *self = Extractor::new();
            }
            // Text is usually well under half of mail HTML.
            self.out = String::with_capacity(len / 2);
            self.at_space = true;
            self.pending_break = false;
            self.stack.clear();
            self.stack.shrink_to(1024);
            self.open_counts.iter_mut().for_each(|c| *c = 0);
            self.hidden_from = None;
            self.pre = 0;
            self.in_body = false;
            self.in_style = false;
            self.needs_style_sheet = false;
        }

        fn id_of(&self, name: &[u8]) -> Option<u32> {
            self.names.get(name).copied()
        }

        fn open_count(&self, id: u32) -> u32 {
            self.open_counts.get(id as usize).copied().unwrap_or(0)
        }

        fn intern(&mut self, name: &[u8]) -> u32 {
            if let Some(id) = self.id_of(name) {
                return id;
            }
            let id = u32::try_from(self.open_counts.len()).unwrap_or(u32::MAX);
            if self.open_counts.len() >= MAX_NAMES {
                return id.saturating_sub(1);
            }
            self.names.insert(name.to_vec(), id);
            self.open_counts.push(0);
            id
        }

        fn push(&mut self, name: &[u8], hides: bool) {
            let id = self.intern(name);
            if let Some(count) = self.open_counts.get_mut(id as usize) {
                *count += 1;
            }
            if hides && self.hidden_from.is_none() {
                self.hidden_from = Some(self.stack.len());
            }
            let pre = is_preformatted(name);
            self.pre += u32::from(pre);
            self.in_style |= name == b"style";
            self.stack.push(Open {
                name: id,
                block: is_block(name),
                pre,
            });
        }

        fn pop(&mut self) {
            let Some(open) = self.stack.pop() else {
                return;
            };
            if let Some(count) = self.open_counts.get_mut(open.name as usize) {
                *count = count.saturating_sub(1);
            }
            if self.hidden_from == Some(self.stack.len()) {
                self.hidden_from = None;
            }
            self.pending_break |= open.block;
            self.pre -= u32::from(open.pre && self.pre > 0);
            if open.name == STYLE {
                self.in_style = false;
            }
        }

        /// An end tag: pops up to and including the innermost open element
        /// of that name, if there is one (otherwise the tag is ignored).
        fn end_tag(&mut self, name: &[u8]) {
            match name {
                // `</br>` is a `<br>`, and `</p>` without a `<p>` an empty
                // paragraph, as the tree builder has it.
                b"br" => self.pending_break = true,
                b"p" if self.open_count(P) == 0 => self.pending_break = true,
                b"head" | b"html" | b"body" => {}
                _ => {
                    let Some(id) = self.id_of(name) else {
                        return;
                    };
                    if self.open_counts.get(id as usize).is_none_or(|&c| c == 0) {
                        return;
                    }
                    while let Some(top) = self.stack.last() {
                        let found = top.name == id;
                        self.pop();
                        if found {
                            break;
                        }
                    }
                }
            }
        }

        /// Pops the element that the start tag `name` implicitly closes.
        fn implied_close(&mut self, name: &[u8]) {
            let Some((closes, stops)) = implied_end(name) else {
                return;
            };
            if closes.iter().all(|&id| self.open_count(id) == 0) {
                return;
            }
            let len = self.stack.len();
            for depth in (len.saturating_sub(IMPLIED_END_SEARCH)..len).rev() {
                let Some(open) = self.stack.get(depth) else {
                    return;
                };
                if closes.contains(&open.name) {
                    while self.stack.len() > depth {
                        self.pop();
                    }
                    return;
                }
                if stops.contains(&open.name) {
                    return;
                }
            }
        }

        fn start_tag(&mut self) {
            let name = std::mem::take(&mut self.tag);
            self.start_tag_named(&name);
            self.tag = name;
        }

        fn start_tag_named(&mut self, name: &[u8]) {
            if name.is_empty() || name == b"html" || name == b"head" {
                // Neither holds content of its own; `<head>` only matters
                // before the body, where `in_body` is false anyway.
                return;
            }
            if !self.in_body && (name == b"body" || !belongs_in_head(name)) {
                self.in_body = true;
            }
            self.implied_close(name);
            self.pending_break |= is_block(name);
            if is_void(name) {
                let alt = self.alt.take();
                if let Some(alt) = alt
                    && matches!(name, b"img" | b"image")
                    && self.has_src
                    && !self.tag_hides
                {
                    self.text(" ");
                    self.text(&alt);
                    self.text(" ");
                }
                return;
            }
            let hides = self.tag_hides || drops_content(name);
            self.push(name, hides);
        }

        /// Text outside tags.
        fn text(&mut self, text: &str) {
            if self.in_style {
                self.needs_style_sheet |= style_sheet_may_hide(text);
                return;
            }
            if self.hidden_from.is_some() {
                return;
            }
            if !self.in_body {
                if text.bytes().all(|b| b.is_ascii_whitespace()) {
                    return;
                }
                self.in_body = true;
            }
            if self.pre > 0 {
                self.flush_break();
                self.out.push_str(text);
                self.at_space = text.ends_with(|c: char| c.is_ascii_whitespace());
                return;
            }
            for (i, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
                if i > 0 && !self.at_space {
                    self.at_space = true;
                    if !self.out.is_empty() && !self.pending_break {
                        self.out.push(' ');
                    }
                }
                if !word.is_empty() {
                    self.flush_break();
                    self.out.push_str(word);
                    self.at_space = false;
                }
            }
        }

        /// Writes the line break that a passed block boundary stands for.
        fn flush_break(&mut self) {
            if !std::mem::take(&mut self.pending_break) || self.out.is_empty() {
                return;
            }
            if self.out.ends_with(' ') {
                self.out.pop();
            }
            if !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            self.at_space = true;
        }

        fn event(&mut self, event: CallbackEvent<'_>) {
            match event {
                CallbackEvent::OpenStartTag { name } => {
                    self.tag.clear();
                    self.tag.extend_from_slice(name);
                    self.attr = Attr::Other;
                    self.tag_hides = false;
                    self.alt = None;
                    self.has_src = false;
                }
                CallbackEvent::AttributeName { name } => {
                    self.tag_hides |= name == b"hidden";
                    self.attr = match name {
                        b"style" => Attr::Style,
                        b"alt" => Attr::Alt,
                        b"src" => Attr::Src,
                        _ => Attr::Other,
                    };
                }
                CallbackEvent::AttributeValue { value } => match self.attr {
                    Attr::Style => {
                        self.tag_hides |= super::style_hides(&String::from_utf8_lossy(value));
                    }
                    Attr::Alt => {
                        let alt = String::from_utf8_lossy(value);
                        if !alt.trim().is_empty() {
                            self.alt = Some(alt.into_owned());
                        }
                    }
                    Attr::Src => self.has_src = true,
                    Attr::Other => {}
                },
                CallbackEvent::CloseStartTag { .. } => self.start_tag(),
                CallbackEvent::EndTag { name } => self.end_tag(name),
                // The tokenizer splits text only at ASCII characters, so a
                // run of valid UTF-8 input stays valid: the lossy path is a
                // safety net, not a code path.
                CallbackEvent::String { value } => match std::str::from_utf8(value) {
                    Ok(text) => self.text(text),
                    Err(_) => self.text(&String::from_utf8_lossy(value)),
                },
                CallbackEvent::Comment { .. }
                | CallbackEvent::Doctype { .. }
                | CallbackEvent::Error(_) => {}
            }
        }
    }

    /// Whether a style sheet declares anything that can hide an element
    /// (`display: none`, or a zero height with hidden overflow). A plain
    /// substring test, deliberately coarse: a false alarm only costs the
    /// slower converter.
    fn style_sheet_may_hide(css: &str) -> bool {
        let compact: String = css
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        compact.contains("display:none")
            || ((compact.contains("height:0") || compact.contains("max-height:0"))
                && (compact.contains("overflow:hidden") || compact.contains("overflow-y:hidden")))
    }
}

/// The converter for documents whose style sheets may hide elements:
/// html2text builds the DOM (html5ever) and applies the sheets.
mod with_style_sheets {
    use std::cell::RefCell;

    use html2text::render::TrivialDecorator;

    /// Render width. html2text wraps at the width it is given; text for
    /// search must not be re-wrapped, so the width is far beyond any real
    /// paragraph, while small enough that no layout arithmetic overflows.
    const HTML_WIDTH: usize = 1 << 20;

    type HtmlConfig = html2text::config::Config<TrivialDecorator>;

    thread_local! {
        /// Built once per thread: it is not `Sync`, and building it parses
        /// its agent style sheet.
        static HTML_CONFIG: RefCell<HtmlConfig> = RefCell::new(html_config());
    }

    /// html2text configured for search text: `TrivialDecorator` (no
    /// emphasis marks, link footnotes, heading or quote prefixes, or image
    /// placeholders; an `<img>` shows its `alt` text only), raw mode (table
    /// cells one after another, no borders or column layout), and the
    /// document's CSS applied.
    fn html_config() -> HtmlConfig {
        html2text::config::with_decorator(TrivialDecorator::new())
            .raw_mode(true)
            .no_table_borders()
            .link_footnotes(false)
            .allow_width_overflow()
            .use_doc_css()
    }

    /// [`super::html_to_text`] through html2text; the empty string when
    /// html2text cannot render the document (nothing renderable is left).
    pub(super) fn html_to_text(html: &str) -> String {
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

    /// Removes from the DOM what html2text would render although a reader
    /// would not see it, the same as the one-pass converter drops: the
    /// `hidden` attribute, inline styles that hide, the title, and the
    /// content of `<iframe>`, `<noframes>`, `<noscript>`, `<template>` and
    /// `<svg>`. Iterative, because a hostile message may nest elements
    /// deeply enough to overflow a recursive walk.
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
        if matches!(
            &*name.local,
            "title" | "iframe" | "noframes" | "noscript" | "template" | "svg"
        ) {
            return true;
        }
        attrs.borrow().iter().any(|attr| match &*attr.name.local {
            "hidden" => true,
            "style" => super::style_hides(&attr.value),
            _ => false,
        })
    }
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
        kind: msg.kind,
        subject: msg.subject,
        body,
        from: msg.from,
        to: msg.to,
        attachments: msg.attachments.join("\n"),
        folders: msg.folders,
        labels: msg.labels,
        flags: msg.flags,
        version,
        revision: 0,
        message_id: msg.message_id,
        end: msg.end,
        location: msg.location,
        media_type: msg.media_type,
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
        assert_drops_and_keeps(
            &text,
            &[
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
            ],
            &[
                "Title",
                "Some emphasis and bold and",
                "a link",
                "Company logo",
                "cell one",
                "cell two",
                "item",
                "quoted",
            ],
        );
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

    /// The same page as above without the style sheet rule, so that the
    /// one-pass converter (not the html2text fallback) handles it.
    #[test]
    fn one_pass_drops_what_a_reader_does_not_see() {
        let html = r#"<!DOCTYPE html><html><head><title>Page title</title>
            <style>p { color: red }</style><script>var secret = 1;</script>
            <meta charset="utf-8"></head><body>
            <h1>Title</h1><p>Some <em>emphasis</em> and <strong>bold</strong> and
            <a href="https://example.org/track">a link</a>.</p>
            <div hidden>hidden attr</div>
            <div style="display: none">display none</div>
            <div style="Visibility : Hidden">visibility hidden</div>
            <div style="height:0;overflow:hidden">zero height</div>
            <!-- a comment --><noscript>no script</noscript>
            <iframe src="x">frame text</iframe><template>template text</template>
            <svg><text>svg text</text></svg>
            <img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB" alt="">
            <img src="https://example.org/pixel.gif">
            <img src="logo.png" alt="Company logo">
            <table><tr><td>cell one</td><td>cell two</td></tr></table>
            <ul><li>item</li></ul><blockquote>quoted</blockquote>
            <p>caf&eacute; &amp; cr&#232;me &#x41;&lt;b&gt;</p>
            </body></html>"#;
        assert!(matches!(
            tokens_to_text::extract(html),
            tokens_to_text::Extracted::Text(_)
        ));
        let text = html_to_text(html);
        assert_drops_and_keeps(
            &text,
            &[
                "Page title",
                "secret",
                "color",
                "hidden attr",
                "display none",
                "visibility hidden",
                "zero height",
                "comment",
                "no script",
                "frame text",
                "template text",
                "svg text",
                "iVBOR",
                "example.org",
                "<b>x",
            ],
            &[
                "Title",
                "Some emphasis and bold and a link.",
                "Company logo",
                "cell one",
                "cell two",
                "item",
                "quoted",
                "café & crème A<b>",
            ],
        );
    }

    #[test]
    fn one_pass_separates_blocks_not_inline_elements() {
        let words = |html: &str| -> Vec<String> {
            let text = html_to_text(html);
            tokens(&text).map(|(_, t)| t.to_owned()).collect()
        };
        assert_eq!(
            words("<b>W</b>ord <i>in</i><u>line</u>"),
            ["Word", "inline"]
        );
        assert_eq!(words("<div>one</div><div>two</div>"), ["one", "two"]);
        assert_eq!(
            words("one<br>two<br/>three</br>four"),
            ["one", "two", "three", "four"]
        );
        assert_eq!(
            words("<table><tr><td>a</td><td>b</td></tr></table>"),
            ["a", "b"]
        );
        assert_eq!(words("<p>a<p>b<li>c<li>d"), ["a", "b", "c", "d"]);
        assert_eq!(words("a<img src=x alt=pic>b"), ["a", "pic", "b"]);
        assert_eq!(
            html_to_text("<p>  lots \n\t of   space </p>"),
            "lots of space"
        );
        assert_eq!(html_to_text("<pre>a\n  b</pre>"), "a\n  b");
        assert_eq!(html_to_text("<p>Hello&nbsp;there</p>"), "Hello\u{a0}there");
    }

    #[test]
    fn one_pass_hidden_elements_end_where_the_tree_builder_ends_them() {
        let text = html_to_text(r#"<p style="display:none">bait<p>shown one"#);
        assert_eq!(text, "shown one");
        let text = html_to_text(r#"<ul><li hidden>bait<li>shown</ul>"#);
        assert_eq!(text, "shown");
        let text = html_to_text(r#"<table><tr><td hidden>bait<td>shown</table>"#);
        assert_eq!(text, "shown");
        let text = html_to_text(r#"<span hidden>bait <b>bait</span> shown</b>"#);
        assert_eq!(text.trim(), "shown");
        // An end tag without an open element is ignored.
        let text = html_to_text(r#"<div hidden>bait</span></p></td> bait</div>shown"#);
        assert_eq!(text, "shown");
        // A hidden element never closed hides the rest, as in a browser.
        assert_eq!(html_to_text("shown<div hidden>bait<p>bait"), "shown");
    }

    #[test]
    fn one_pass_head_and_body() {
        // Text before the body begins it; a `<head>` inside the body is
        // ignored, as the tree builder ignores it.
        assert_eq!(
            html_to_text("<head><title>t</title></head>body text"),
            "body text"
        );
        assert_eq!(
            html_to_text("<body>one<head>two</head>three"),
            "onetwothree"
        );
        assert_eq!(html_to_text("<html><head><meta x=y>\n</head><body>x"), "x");
    }

    #[test]
    fn style_sheets_that_may_hide_need_the_fallback() {
        for css in [
            ".x { display : NONE }",
            "#a{height:0;overflow:hidden}",
            "@media print { p { display:none } }",
        ] {
            let html = format!("<style>{css}</style><p class=x id=a>text</p>");
            assert!(
                matches!(
                    tokens_to_text::extract(&html),
                    tokens_to_text::Extracted::NeedsStyleSheet
                ),
                "{css}"
            );
        }
        let html = "<style>p { color: red; height: 0 }</style><p>text</p>";
        assert!(matches!(
            tokens_to_text::extract(html),
            tokens_to_text::Extracted::Text(t) if t == "text"
        ));
        // The fallback applies the sheet.
        let html = "<style>.x{display:none}</style><p class=x>bait</p><p>shown</p>";
        assert_eq!(html_to_text(html), "shown");
    }

    #[test]
    fn one_pass_hostile_nesting_stays_linear() {
        // Would take minutes if implied end tags or unmatched end tags
        // searched the whole stack each time (no timing is asserted).
        let n = 50_000;
        let html = "<p><table>".to_owned()
            + &"<span>".repeat(n)
            + &"<div>".repeat(n)
            + &"</x>".repeat(n)
            + "end";
        assert!(html_to_text(&html).ends_with("end"));
        let html = "<li>".repeat(n) + &"<tr><td>".repeat(n) + "end";
        assert!(html_to_text(&html).ends_with("end"));
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
            ..Message::default()
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

    /// `text` holds none of `gone` and every one of `kept`.
    fn assert_drops_and_keeps(text: &str, gone: &[&str], kept: &[&str]) {
        for g in gone {
            assert!(!text.contains(g), "{g:?} in {text:?}");
        }
        for k in kept {
            assert!(text.contains(k), "{k:?} not in {text:?}");
        }
    }

    /// Tokens, one character at a time: what [`Tokens`] must yield.
    fn tokens_reference(s: &str) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in s.char_indices() {
            match classify(c) {
                Class::Word => {
                    start.get_or_insert(i);
                }
                Class::Separator => {
                    if let Some(st) = start.take() {
                        out.push((st, &s[st..i]));
                    }
                }
                Class::Single => {
                    if let Some(st) = start.take() {
                        out.push((st, &s[st..i]));
                    }
                    out.push((i, &s[i..i + c.len_utf8()]));
                }
            }
        }
        if let Some(st) = start {
            out.push((st, &s[st..]));
        }
        out
    }

    proptest! {
        #[test]
        fn tokens_match_the_reference(s in any_text()) {
            let got: Vec<(usize, &str)> = tokens(&s).collect();
            prop_assert_eq!(got, tokens_reference(&s));
            let n = normalise(&s);
            let got: Vec<(usize, &str)> = tokens(&n).collect();
            prop_assert_eq!(got, tokens_reference(&n));
        }

        #[test]
        fn html_to_text_never_panics_and_keeps_plain_words(
            s in any_text(),
            tags in prop::collection::vec(prop::sample::select(vec![
                "<p>", "</p>", "<div hidden>", "</div>", "<b>", "</b>", "<br>", "<li>",
                "<td>", "<table>", "<style>", "</style>", "<script>", "&amp;", "&#x", "<!--",
                "<head>", "<body>", "<span style='display:none'>", "</span>", "<img alt=",
            ]), 0..12),
        ) {
            let html: String = tags.iter().map(|t| format!("{t}{s}")).collect();
            let _ = html_to_text(&html);
            // Text without markup comes out as its words.
            let plain: String = s.chars().filter(|c| !matches!(c, '<' | '&' | '\0' | '\r')).collect();
            let words = |t: &str| t.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>();
            prop_assert_eq!(words(&html_to_text(&plain)), words(&plain));
        }

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
