//! Cutting an iCalendar text into its top-level components, so that each
//! event is parsed (by the `icalendar` crate) on its own and a broken one
//! fails alone.
//!
//! Why not hand the whole file to the parser: its grammar is all or
//! nothing, so one bad line anywhere (a stray `END:`, an unescaped
//! newline written by an old exporter) would lose every event of the
//! calendar. This module only follows `BEGIN:`/`END:` lines after
//! unfolding; every property is still read by the crate's parser.

use icalendar::parser::unfold;

/// The deepest nesting accepted inside one component (a VEVENT holding a
/// VALARM is depth 2). Deeper is refused before parsing: the crate's
/// parser recurses once per level, and hostile input must not overflow
/// the stack.
const MAX_DEPTH: usize = 8;

/// What a top-level component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// A VEVENT.
    Event,
    /// A VTODO.
    Todo,
    /// A VTIMEZONE.
    Timezone,
}

/// One top-level component's text: unfolded, one property per line,
/// lines joined by `\n` (the form the parser reads best).
#[derive(Clone, Debug)]
pub(crate) struct Block {
    /// What it is.
    pub kind: BlockKind,
    /// From its `BEGIN:` line to its `END:` line.
    pub text: String,
    /// Its first line's number (1-based, unfolded lines).
    pub line: usize,
    /// Why it cannot be read, when the splitter already knows.
    pub problem: Option<String>,
}

/// A calendar cut into components.
#[derive(Clone, Debug, Default)]
pub(crate) struct Split {
    /// The calendar's display name (`X-WR-CALNAME`), if it has one.
    pub name: Option<String>,
    /// Its VTIMEZONE components.
    pub zones: Vec<Block>,
    /// Its VEVENT and VTODO components, in file order.
    pub items: Vec<Block>,
}

/// The name of the property on `line` (before its first `;` or `:`).
pub(crate) fn prop_name(line: &str) -> &str {
    let end = line.find([';', ':']).unwrap_or(line.len());
    &line[..end]
}

/// The value after `BEGIN:` or `END:` on `line`, if it is such a line.
fn marker<'a>(line: &'a str, what: &str) -> Option<&'a str> {
    let head = line.get(..what.len())?;
    head.eq_ignore_ascii_case(what)
        .then(|| line[what.len()..].trim())
}

/// Cuts `text` (a whole `.ics` file, or one event sealed by an app) into
/// its components. Never fails: what cannot be followed becomes a block
/// with a problem, or is ignored when it is outside any event.
pub(crate) fn split(text: &str) -> Split {
    let unfolded = unfold(text);
    let mut out = Split::default();
    // The names of the components open around the current line.
    let mut stack: Vec<String> = Vec::new();
    // The block being collected, and the stack depth it started at.
    let mut current: Option<(Block, usize)> = None;
    for (n, raw) in unfolded.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(name) = marker(line, "BEGIN:") {
            let name = name.to_ascii_uppercase();
            if current.is_none() {
                let kind = match name.as_str() {
                    "VEVENT" => Some(BlockKind::Event),
                    "VTODO" => Some(BlockKind::Todo),
                    "VTIMEZONE" => Some(BlockKind::Timezone),
                    _ => None,
                };
                if let Some(kind) = kind {
                    let block = Block {
                        kind,
                        text: String::new(),
                        line: n + 1,
                        problem: None,
                    };
                    current = Some((block, stack.len()));
                }
            }
            stack.push(name);
            if let Some((block, start)) = &mut current {
                if stack.len() - *start > MAX_DEPTH && block.problem.is_none() {
                    block.problem = Some(format!("components nested more than {MAX_DEPTH} deep"));
                }
                push_line(&mut block.text, line);
            }
            continue;
        }
        if let Some(name) = marker(line, "END:") {
            let name = name.to_ascii_uppercase();
            // Close up to the matching BEGIN; an END that matches nothing
            // open is ignored (outside events) or a problem (inside one).
            let Some(pos) = stack.iter().rposition(|s| *s == name) else {
                if let Some((block, _)) = &mut current {
                    block.problem.get_or_insert_with(|| {
                        format!("line {}: END:{name} without a BEGIN", n + 1)
                    });
                }
                continue;
            };
            if let Some((block, _)) = &mut current {
                if pos + 1 != stack.len() {
                    block.problem.get_or_insert_with(|| {
                        format!("line {}: END:{name} closes an inner component", n + 1)
                    });
                }
                push_line(&mut block.text, line);
            }
            stack.truncate(pos);
            if let Some((_, start)) = &current
                && stack.len() <= *start
                && let Some((block, _)) = current.take()
            {
                finish(&mut out, block);
            }
            continue;
        }
        match &mut current {
            Some((block, _)) => push_line(&mut block.text, line),
            None => {
                if prop_name(line).eq_ignore_ascii_case("X-WR-CALNAME")
                    && out.name.is_none()
                    && let Some((_, v)) = line.split_once(':')
                {
                    let v = v.trim();
                    if !v.is_empty() {
                        out.name = Some(v.replace("\\,", ",").replace("\\;", ";"));
                    }
                }
            }
        }
    }
    if let Some((mut block, _)) = current.take() {
        block
            .problem
            .get_or_insert_with(|| "the component never ends (no END line)".into());
        finish(&mut out, block);
    }
    out
}

/// Appends one property line, leaving out the bytes of inline binary
/// attachments (`ATTACH;VALUE=BINARY;ENCODING=BASE64:…`): their name (the
/// `FILENAME` parameter) is kept and indexed, their content is not text.
fn push_line(text: &mut String, line: &str) {
    if prop_name(line).eq_ignore_ascii_case("ATTACH") {
        let upper = line.to_ascii_uppercase();
        if upper.contains("ENCODING=BASE64") || upper.contains("VALUE=BINARY") {
            // Parameters end at the first ':' outside quotes.
            let mut quoted = false;
            for (i, c) in line.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    ':' if !quoted => {
                        text.push_str(&line[..=i]);
                        text.push('\n');
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    text.push_str(line);
    text.push('\n');
}

/// The most property lines [`repair`] drops from one component.
const MAX_DROPPED: usize = 16;

/// Drops the property lines of `block` that the parser refuses (a line
/// without a colon, `SUMMARY=x`, a malformed parameter), one at a time,
/// as long as the rest then parses: exporters write such lines, and a
/// calendar application shows the event without them rather than not at
/// all. A block still unreadable after [`MAX_DROPPED`] lines, or whose
/// error is at a `BEGIN:` or `END:` line, keeps its text and gets a
/// problem instead.
fn repair(block: &mut Block) {
    if block.problem.is_some() {
        return;
    }
    let mut dropped = 0;
    loop {
        let at = match icalendar::parser::read_calendar_simple(&block.text) {
            Ok(c) if !c.is_empty() => break,
            Ok(_) => {
                block.problem = Some("empty".into());
                break;
            }
            Err(e) => block.text.len().saturating_sub(e.input.len()),
        };
        // The line the error is on.
        let start = block.text[..at.min(block.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let end = block.text[start..]
            .find('\n')
            .map_or(block.text.len(), |i| start + i + 1);
        let line_no = block.line + block.text[..start].matches('\n').count();
        let name = prop_name(&block.text[start..end]);
        if dropped >= MAX_DROPPED
            || start == 0
            || name.eq_ignore_ascii_case("BEGIN")
            || name.eq_ignore_ascii_case("END")
        {
            block.problem = Some(format!("not valid iCalendar at line {line_no}"));
            break;
        }
        block.text.replace_range(start..end, "");
        dropped += 1;
    }
    if dropped > 0 && block.problem.is_none() {
        tracing::debug!(
            dropped,
            line = block.line,
            "dropped unreadable property lines of a calendar component"
        );
    }
}

fn finish(out: &mut Split, mut block: Block) {
    repair(&mut block);
    match block.kind {
        BlockKind::Timezone => out.zones.push(block),
        BlockKind::Event | BlockKind::Todo => out.items.push(block),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_events_and_zones_and_keeps_the_name() {
        let s = split(
            "BEGIN:VCALENDAR\r\nX-WR-CALNAME:Work\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nEND:VTIMEZONE\r\n\
             BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:long\r\n  line\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n\
             END:VALARM\r\nEND:VEVENT\r\nBEGIN:VTODO\r\nUID:2\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        );
        assert_eq!(s.name.as_deref(), Some("Work"));
        assert_eq!(s.zones.len(), 1);
        assert_eq!(s.items.len(), 2);
        assert!(s.items[0].text.contains("SUMMARY:long line\n"));
        assert!(s.items[0].text.ends_with("END:VEVENT\n"));
        assert_eq!(s.items[1].kind, BlockKind::Todo);
        assert!(s.items.iter().all(|b| b.problem.is_none()));
    }

    #[test]
    fn a_broken_event_fails_alone() {
        let s = split(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\nBEGIN:VALARM\nEND:VEVENT\n\
             BEGIN:VEVENT\nUID:2\nEND:VEVENT\nBEGIN:VEVENT\nUID:3\n",
        );
        assert_eq!(s.items.len(), 3);
        assert!(s.items[0].problem.is_some());
        assert!(s.items[1].problem.is_none());
        assert!(
            s.items[2]
                .problem
                .as_deref()
                .unwrap()
                .contains("never ends")
        );
    }

    #[test]
    fn unreadable_property_lines_are_dropped() {
        let s = split(
            "BEGIN:VEVENT\nUID:1\nX-APPLE-RADIUS=49.9\nSUMMARY=x\nDESCRIPTION:kept\nEND:VEVENT\n",
        );
        let b = &s.items[0];
        assert!(b.problem.is_none(), "{:?}", b.problem);
        assert_eq!(
            b.text,
            "BEGIN:VEVENT\nUID:1\nDESCRIPTION:kept\nEND:VEVENT\n"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut t = String::from("BEGIN:VEVENT\n");
        for _ in 0..20 {
            t.push_str("BEGIN:X\n");
        }
        let s = split(&t);
        assert!(s.items[0].problem.as_deref().unwrap().contains("nested"));
    }

    #[test]
    fn inline_attachment_bytes_are_dropped() {
        let s = split(
            "BEGIN:VEVENT\nATTACH;FILENAME=\"a:b.pdf\";ENCODING=BASE64;VALUE=BINARY:AAAA\nEND:VEVENT\n",
        );
        assert!(
            s.items[0]
                .text
                .contains("ATTACH;FILENAME=\"a:b.pdf\";ENCODING=BASE64;VALUE=BINARY:\n")
        );
    }
}
