//! Markdown: the text of pulldown-cmark's events, without the markup; the
//! first heading is the title.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use super::Document;

/// The text of a Markdown document: each block on its own line, inline
/// HTML cleaned to text, code kept, link targets left out (they are
/// addresses, not what the reader reads).
pub(super) fn extract(markdown: &str) -> Document {
    let mut text = String::with_capacity(markdown.len());
    let mut title: Option<String> = None;
    let mut heading: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take()
                    && title.is_none()
                    && !h.trim().is_empty()
                {
                    title = Some(h.trim().to_owned());
                }
                newline(&mut text);
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                text.push_str(&t);
                if let Some(h) = &mut heading {
                    h.push_str(&t);
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                text.push_str(&crate::text::html_to_text(&h));
            }
            Event::SoftBreak => text.push(' '),
            Event::HardBreak => text.push('\n'),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::TableRow) => {
                newline(&mut text)
            }
            Event::End(TagEnd::TableCell) => text.push('\t'),
            _ => {}
        }
    }
    while text.ends_with('\n') {
        text.pop();
    }
    Document {
        title,
        text,
        ..Document::default()
    }
}

fn newline(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_goes_text_stays() {
        let d = extract(
            "Intro line\n\n## Plan *B*\n\n- one [link](https://example.org/x)\n- `two`\n\n```\ncode here\n```\n",
        );
        assert_eq!(d.title.as_deref(), Some("Plan B"));
        assert_eq!(d.text, "Intro line\nPlan B\none link\ntwo\ncode here");
    }
}
