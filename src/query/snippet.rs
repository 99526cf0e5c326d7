//! Snippets: a short window of a hit's original text around its first
//! matches, with byte ranges to highlight.
//!
//! Matching happens on normalised tokens, but a user reads the original
//! text. So the field is normalised once more here, character by character,
//! keeping for every normalised byte the original byte it came from; the
//! tokens that match the query map back through that table to ranges of
//! the original text. This runs only for the hits on the page being shown.

use std::ops::Range;

use crate::query::plan::Needle;
use crate::record::{Field, Record};
use crate::text;

/// A window of one field's text with the ranges that matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snippet {
    /// The text shown (line breaks turned into spaces).
    pub text: String,
    /// Byte ranges of `text` to highlight, in order, not overlapping.
    pub highlights: Vec<Range<usize>>,
    /// The field the window comes from.
    pub field: Option<Field>,
    /// Where `text` starts in that field of the record, so that
    /// `offset + highlight.start` indexes the original text.
    pub offset: usize,
}

/// Ranges of `text` (original bytes) that match any of the needles.
pub(crate) fn matches_in(text: &str, field: Field, needles: &[&Needle]) -> Vec<Range<usize>> {
    let needles: Vec<&&Needle> = needles
        .iter()
        .filter(|n| n.fields & (1 << field as u8) != 0)
        .collect();
    if needles.is_empty() || text.is_empty() {
        return Vec::new();
    }
    // Normalise, remembering for each normalised byte its original char start.
    let mut norm = String::with_capacity(text.len());
    let mut origin: Vec<u32> = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let before = norm.len();
        text::normalise_char(c, &mut norm);
        origin.extend(std::iter::repeat_n(i as u32, norm.len() - before));
    }
    let toks: Vec<(usize, &str)> = text::tokens(&norm).collect();
    let words: Vec<&str> = toks.iter().map(|(_, t)| *t).collect();
    let orig_range = |ti: usize| -> Range<usize> {
        let (s, t) = toks[ti];
        let start = origin[s] as usize;
        let last = origin[s + t.len() - 1] as usize;
        let end = last + text[last..].chars().next().map_or(0, char::len_utf8);
        start..end
    };
    let mut out: Vec<Range<usize>> = Vec::new();
    for i in 0..toks.len() {
        for n in &needles {
            if n.matches_tokens_at(&words, i) {
                let r = orig_range(i).start..orig_range(i + n.tokens.len() - 1).end;
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| (r.start, r.end));
    // Merge overlaps.
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Builds the snippet for a record: the body around its first match, else
/// the first other field with a match (in [`Field::ALL`]'s order), else the
/// start of the body.
pub(crate) fn snippet(record: &Record, needles: &[&Needle], width: usize) -> Snippet {
    let order =
        std::iter::once(Field::Body).chain(Field::ALL.into_iter().filter(|&f| f != Field::Body));
    let mut chosen = None;
    for f in order {
        let text = record.field(f);
        let m = matches_in(text, f, needles);
        if !m.is_empty() {
            chosen = Some((f, m));
            break;
        }
    }
    let (field, ranges) = chosen.unwrap_or((Field::Body, Vec::new()));
    let text = record.field(field);
    let first = ranges.first().map_or(0, |r| r.start);
    // Start a little before the first match, at a word boundary if one is near.
    let lead = width / 4;
    let mut start = floor_boundary(text, first.saturating_sub(lead));
    if start > 0
        && let Some(sp) = text[start..first].find(char::is_whitespace)
    {
        start += sp + 1;
    }
    let start = floor_boundary(text, start.min(first));
    let end = floor_boundary(text, start + width);
    let window = &text[start..end];
    let shown: String = window
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let highlights = ranges
        .into_iter()
        .filter(|r| r.start >= start && r.end <= end)
        .map(|r| r.start - start..r.end - start)
        .collect();
    Snippet {
        text: shown,
        highlights,
        field: Some(field),
        offset: start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;
    use crate::query::plan::{Plan, plan};

    fn needles(q: &str) -> Plan {
        plan(&parse(q).unwrap())
    }

    #[test]
    fn highlights_map_to_original_text() {
        let p = needles("cafe \"Straße nach\"");
        let mut ns = Vec::new();
        p.positive_needles(&mut ns);
        let text = "Im Café an der Straße nach Rom";
        let m = matches_in(text, Field::Body, &ns);
        let got: Vec<&str> = m.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(got, vec!["Café", "Straße nach"]);
    }

    #[test]
    fn snippet_window_and_offsets() {
        let p = needles("needle");
        let mut ns = Vec::new();
        p.positive_needles(&mut ns);
        let r = Record {
            subject: "hay".into(),
            body: format!(
                "{} the Needle\nis here {}",
                "hay ".repeat(100),
                "hay ".repeat(100)
            ),
            ..Default::default()
        };
        let s = snippet(&r, &ns, 80);
        assert_eq!(s.field, Some(Field::Body));
        assert_eq!(s.highlights.len(), 1);
        let h = s.highlights[0].clone();
        assert_eq!(&s.text[h.clone()], "Needle");
        assert_eq!(&r.body[s.offset + h.start..s.offset + h.end], "Needle");
        assert!(!s.text.contains('\n'));
    }

    #[test]
    fn a_match_outside_the_body_shows_its_field() {
        let p = needles("berlin");
        let mut ns = Vec::new();
        p.positive_needles(&mut ns);
        let r = Record {
            subject: "Standup".into(),
            body: "Daily sync".into(),
            location: "Room 4, Berlin office".into(),
            ..Default::default()
        };
        let s = snippet(&r, &ns, 80);
        assert_eq!(s.field, Some(Field::Location));
        assert_eq!(&s.text[s.highlights[0].clone()], "Berlin");
    }
}
