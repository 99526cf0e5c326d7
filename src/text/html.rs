//! HTML to text: the plain text a reader of an HTML body would see, by
//! one pass over an HTML tokenizer's tokens, or through html2text when the
//! document's own style sheets may hide elements (see [`html_to_text`]).
//!
//! Records hold cleaned text, never HTML, so that searching never parses
//! anything; what this drops (hidden elements, scripts, link targets) is
//! what a search must not find.

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
/// assert_eq!(sealdex::text::html_to_text(html).trim(), "Hello world");
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
pub(super) fn style_hides(style: &str) -> bool {
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
pub(super) mod tokens_to_text {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::convert::Infallible;

    use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};
    use html5gum::{Emitter, ForwardingEmitter, Span, Tokenizer};

    /// What one pass found.
    pub(in crate::text) enum Extracted {
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
    pub(in crate::text) fn extract(html: &str) -> Extracted {
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
