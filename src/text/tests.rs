//! Tests of the text tree: the normaliser, the tokenizer and the HTML
//! extractors, together, since most properties span them (tokens of
//! normalised text, words kept through HTML).

use super::html::*;
use super::normalise::*;
use super::tokens::*;
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

/// Strings that mix ASCII with characters the normaliser treats
/// specially, so that properties are exercised on them often.
fn tricky() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a", "Z", " ", "-", "'", "1", "é", "E\u{301}", "ß", "ẞ", "ﬁ", "Ａ", "İ", "ı", "Σ", "ς",
        "日", "語", "テ", "ｶﾞ", "が", "한", "ᄒ", "ㄱ", "㈎", "😀", "①", "Ǆ", "ǅ", "ΐ", "\u{345}",
        "ﬆ", "Ω", "K", "Å", "µ", "ᾈ", "\u{1E9E}", "ŉ", "\u{0}", "\u{FEFF}",
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

/// A drive file's path is stored where attachment names go: `filename:`
/// finds the file by its name, its extension and each folder of its path,
/// because `/`, `.` and `-` all separate tokens.
#[test]
fn a_path_splits_into_its_components() {
    assert_eq!(
        norm_toks("Documents/Reports/2024/Q3-summary.final.PDF"),
        [
            "documents",
            "reports",
            "2024",
            "q3",
            "summary",
            "final",
            "pdf"
        ]
    );
    assert_eq!(
        norm_toks("C:\\Users\\zoë\\Résumé.docx"),
        ["c", "users", "zoe", "resume", "docx"]
    );
}
