//! How records and hits are printed: aligned lines that fit the terminal
//! for people, one JSON object per line for programs.
//!
//! Everything printed for a person goes through [`term::line`] or
//! [`term::text`] (see `term.rs` for why); JSON through [`term::json`].
//!
//! A hit's line: `LOCATION  DATE  FROM  SUBJECT  SNIPPET`. The location is
//! never clipped (it is what `sealdex show` takes, and for a file source
//! the path to open); the other columns are padded and clipped by display
//! width, so wide CJK characters keep the columns aligned, and the snippet
//! takes what is left of the line.

use sealdex::{ContentKind, Flags, Record};

use crate::ops::{Page, WireHit, location};
use crate::term::{self, Out};

const DATE_COLS: usize = 10;
const FROM_COLS: usize = 20;
const SUBJECT_COLS: usize = 40;
const GAP: &str = "  ";

/// RFC 3339 in UTC, or `None` for an undated record.
pub fn rfc3339(ts: Option<i64>) -> Option<String> {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn day(ts: Option<i64>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "----------".into())
}

/// The sender's display name if it has one, else the address.
fn sender(from: &str) -> &str {
    let first = from.lines().next().unwrap_or("").trim();
    match first.find('<') {
        Some(i) if i > 0 => first[..i].trim().trim_matches('"'),
        _ => first.trim_matches(['<', '>']),
    }
}

fn flag_names(f: Flags) -> Vec<&'static str> {
    let mut v = Vec::new();
    if f.contains(Flags::UNREAD) {
        v.push("unread");
    }
    if f.contains(Flags::FLAGGED) {
        v.push("flagged");
    }
    if f.contains(Flags::HAS_ATTACHMENT) {
        v.push("attachment");
    }
    v
}

fn kind(k: ContentKind) -> &'static str {
    match k {
        ContentKind::Mail => "mail",
        ContentKind::Chat => "chat",
        ContentKind::File => "file",
        ContentKind::Event => "event",
    }
}

fn lines_of(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// The fields every JSON rendering of a record carries. `to` holds the
/// To and Cc recipients together, one per line: the record does not keep
/// them apart.
fn record_json(r: &Record) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "id": r.id,
        "location": location(&r.source, &r.id),
        "source": r.source,
        "kind": kind(r.kind),
        "date": rfc3339(r.timestamp),
        "from": r.from,
        "to": r.to,
        "subject": r.subject,
        "folders": r.folders,
        "labels": r.labels,
        "message_id": r.message_id,
        "flags": flag_names(r.flags),
        "attachments": lines_of(&r.attachments),
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn json_hit(hit: &WireHit) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), "hit".into());
    m.extend(record_json(&hit.record));
    m.insert("snippet".into(), hit.snippet.clone().into());
    m.insert(
        "highlights".into(),
        serde_json::json!(
            hit.highlights
                .iter()
                .map(|(s, e)| [*s, *e])
                .collect::<Vec<_>>()
        ),
    );
    m.insert("score".into(), serde_json::json!(hit.score));
    let mut locations = vec![location(&hit.record.source, &hit.record.id)];
    locations.extend(hit.also.iter().cloned());
    m.insert("locations".into(), serde_json::json!(locations));
    serde_json::Value::Object(m)
}

/// How a page is printed.
pub struct Style {
    /// JSON lines instead of text.
    pub json: bool,
    /// Colour the text.
    pub colour: bool,
    /// Columns to fit, if any.
    pub width: Option<usize>,
    /// Print the count and the next cursor (stderr for text, a final
    /// summary object for JSON).
    pub summary: bool,
}

/// Prints a page of hits. Text: one line per hit on stdout, the count and
/// the next-page cursor on stderr. JSON: one `{"type":"hit",…}` object per
/// hit, then `{"type":"summary","total":…,"shown":…,"next":…}` (and the
/// same count and cursor on stderr).
pub fn print_page(out: &mut Out, page: &Page, style: &Style) -> Result<(), term::Closed> {
    if style.json {
        for hit in &page.hits {
            out.line(&term::json(&json_hit(hit)))?;
        }
        if style.summary {
            out.line(&term::json(&serde_json::json!({
                "type": "summary",
                "total": page.total,
                "shown": page.hits.len(),
                "folded": page.folded,
                "next": page.next,
            })))?;
        }
        out.flush()?;
        summary(page, style);
        return Ok(());
    }
    let locations: Vec<String> = page
        .hits
        .iter()
        .map(|h| term::line(&location(&h.record.source, &h.record.id)))
        .collect();
    let widest = locations.iter().map(|l| term::width(l)).max().unwrap_or(0);
    // The location column: as wide as the widest on the page, unless that
    // would leave too little of the line; longer ones then push their line.
    let loc_cols = match style.width {
        Some(w) => widest.min(w / 2),
        None => widest,
    };
    for (hit, loc) in page.hits.iter().zip(&locations) {
        let line = hit_line(hit, loc, loc_cols, style);
        out.line(&line)?;
    }
    out.flush()?;
    summary(page, style);
    Ok(())
}

/// The count and the next page's cursor on stderr, for a person (JSON has
/// them in its summary object as well).
fn summary(page: &Page, style: &Style) {
    if style.summary {
        let folded = match page.folded {
            0 => String::new(),
            n => format!(
                " ({n} more cop{} of shown messages folded in)",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        term::note(&format!(
            "{} match(es), {} shown{folded}",
            page.total,
            page.hits.len()
        ));
        if let Some(next) = &page.next {
            term::note(&format!("next page: --cursor {next}"));
        }
    }
}

fn hit_line(hit: &WireHit, loc: &str, loc_cols: usize, style: &Style) -> String {
    let r = &hit.record;
    let mut subject_cols = SUBJECT_COLS;
    let mut from_cols = FROM_COLS;
    let fixed = |from: usize, subject: usize| {
        loc_cols.max(term::width(loc)) + DATE_COLS + from + subject + 4 * GAP.len()
    };
    if let Some(w) = style.width {
        // Narrow terminals give up the subject's and sender's room first,
        // down to a useful minimum each.
        while fixed(from_cols, subject_cols) > w && subject_cols > 16 {
            subject_cols -= 1;
        }
        while fixed(from_cols, subject_cols) > w && from_cols > 10 {
            from_cols -= 1;
        }
    }
    let mut line = String::new();
    let loc_cell = term::pad(loc, loc_cols.max(term::width(loc)));
    if style.colour {
        line.push_str(&format!("\x1b[35m{loc_cell}\x1b[0m"));
    } else {
        line.push_str(&loc_cell);
    }
    line.push_str(GAP);
    line.push_str(&day(r.timestamp));
    line.push_str(GAP);
    line.push_str(&term::pad(&term::line(sender(&r.from)), from_cols));
    line.push_str(GAP);
    line.push_str(&term::pad(&term::line(&r.subject), subject_cols));
    line.push_str(GAP);
    // Other copies of the same message close the line, whole.
    let also = if hit.also.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = hit.also.iter().map(|l| term::line(l)).collect();
        format!("{GAP}(also {})", list.join(", "))
    };
    let room = style
        .width
        .map(|w| w.saturating_sub(fixed(from_cols, subject_cols) + term::width(&also)));
    line.push_str(&snippet(hit, room, style.colour));
    line.push_str(&also);
    line.trim_end().to_owned()
}

/// The snippet with its highlights, clipped to `room` columns: each piece
/// is neutralised before it is measured, and colour codes are added after,
/// so they never count as columns.
fn snippet(hit: &WireHit, room: Option<usize>, colour: bool) -> String {
    let text = &hit.snippet;
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut at = 0;
    for &(s, e) in &hit.highlights {
        if s < at || e > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        pieces.push((term::line(&text[at..s]), false));
        pieces.push((term::line(&text[s..e]), true));
        at = e;
    }
    if text.is_char_boundary(at) {
        pieces.push((term::line(&text[at..]), false));
    }
    let mut left = room.unwrap_or(usize::MAX);
    let mut out = String::new();
    for (piece, lit) in pieces {
        if left == 0 {
            break;
        }
        let marks = if lit && !colour { 2 } else { 0 };
        let w = term::width(&piece) + marks;
        let shown = if w > left {
            term::clip(&piece, left.saturating_sub(marks))
        } else {
            piece
        };
        left = left.saturating_sub(term::width(&shown) + marks);
        match (lit, colour) {
            (true, true) => out.push_str(&format!("\x1b[1;31m{shown}\x1b[0m")),
            (true, false) => out.push_str(&format!("[{shown}]")),
            (false, _) => out.push_str(&shown),
        }
    }
    out
}

/// Prints one record as a person reads it, or as one JSON object.
pub fn print_record(out: &mut Out, r: &Record, json: bool) -> Result<(), term::Closed> {
    if json {
        let mut m = record_json(r);
        m.insert("body".into(), r.body.clone().into());
        out.line(&term::json(&serde_json::Value::Object(m)))?;
        return out.flush();
    }
    let field = |name: &str, value: &str| format!("{name:<13}{}", term::line(value));
    out.line(&field("Location:", &location(&r.source, &r.id)))?;
    out.line(&field("Date:", &rfc3339(r.timestamp).unwrap_or_default()))?;
    out.line(&field("From:", &lines_of(&r.from).join(", ")))?;
    out.line(&field("To/Cc:", &lines_of(&r.to).join(", ")))?;
    out.line(&field("Subject:", &r.subject))?;
    out.line(&field("Folders:", &r.folders.join(", ")))?;
    if !r.labels.is_empty() {
        out.line(&field("Labels:", &r.labels.join(", ")))?;
    }
    if let Some(mid) = &r.message_id {
        out.line(&field("Message-ID:", &format!("<{mid}>")))?;
    }
    out.line(&field("Flags:", &flag_names(r.flags).join(", ")))?;
    out.line(&field("Attachments:", &lines_of(&r.attachments).join(", ")))?;
    out.line("")?;
    out.line(&term::text(r.body.trim_end()))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_and_dates() {
        assert_eq!(
            sender("\"Alice Martin\" <alice@example.org>"),
            "Alice Martin"
        );
        assert_eq!(sender("<bob@example.org>"), "bob@example.org");
        assert_eq!(rfc3339(Some(0)).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(None), None);
    }

    #[test]
    fn snippets_fit_and_highlight() {
        let hit = WireHit {
            record: Record::default(),
            score: 0.0,
            snippet: "a cafe b".into(),
            highlights: vec![(2, 6)],
            also: Vec::new(),
        };
        assert_eq!(snippet(&hit, None, false), "a [cafe] b");
        assert_eq!(snippet(&hit, Some(5), false), "a […]");
        assert_eq!(snippet(&hit, None, true), "a \x1b[1;31mcafe\x1b[0m b");
    }
}
