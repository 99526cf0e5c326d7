//! One VEVENT or VTODO, parsed, as a [`Message`] of kind event.

use chrono::{DateTime, Duration, Utc};
use icalendar::parser::{Component, ParseString, Property};

use super::split::BlockKind;
use super::zone::{When, Zones, param, prop, props, when};
use crate::message::{Body, Message};
use crate::record::{ContentKind, Flags};

/// The start and end of a component, in UTC, and whether its start is an
/// all-day date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub all_day: bool,
}

/// An RFC 5545 duration (`PT1H30M`, `P1D`, `-PT15M`, `P2W`) as a chrono
/// duration, through the `iso8601` crate (the sign is iCalendar's own).
pub(crate) fn duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (neg, body) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let secs = match iso8601::duration(body).ok()? {
        iso8601::Duration::Weeks(w) => i64::from(w) * 7 * 86_400,
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            ..
        } => {
            // Years and months are not iCalendar durations; read them as
            // 365 and 30 days rather than refusing the event.
            i64::from(year) * 365 * 86_400
                + i64::from(month) * 30 * 86_400
                + i64::from(day) * 86_400
                + i64::from(hour) * 3600
                + i64::from(minute) * 60
                + i64::from(second)
        }
    };
    let d = Duration::try_seconds(secs)?;
    Some(if neg { -d } else { d })
}

/// The start and end of `comp`: DTSTART, then DTEND (VEVENT) or DUE
/// (VTODO), else DTSTART plus DURATION, else for an all-day event the end
/// of its day (RFC 5545 3.6.1).
pub(crate) fn span(comp: &Component<'_>, kind: BlockKind, zones: &Zones) -> Span {
    let start_w = prop(comp, "DTSTART").and_then(when);
    let all_day = matches!(start_w, Some(When::Date(_)));
    let start = start_w.as_ref().map(|w| zones.to_utc(w).0);
    let end_prop = match kind {
        BlockKind::Todo => "DUE",
        _ => "DTEND",
    };
    let end = prop(comp, end_prop)
        .and_then(when)
        .map(|w| zones.to_utc(&w).0)
        .or_else(|| {
            let d = prop(comp, "DURATION").and_then(|p| duration(p.val.as_str()))?;
            start?.checked_add_signed(d)
        })
        .or_else(|| {
            (all_day && kind == BlockKind::Event)
                .then(|| start?.checked_add_signed(Duration::days(1)))
                .flatten()
        });
    Span {
        start,
        end,
        all_day,
    }
}

/// A person (ORGANIZER, ATTENDEE) as `Name <address>`: the common name
/// (`CN`) and the calendar address without its `mailto:`.
fn person(p: &Property<'_>) -> String {
    let v = p.val.as_str().trim();
    let addr = match v.get(..7) {
        Some(head) if head.eq_ignore_ascii_case("mailto:") => &v[7..],
        _ => v,
    };
    match param(p, "CN").filter(|cn| !cn.is_empty()) {
        Some(cn) if addr.is_empty() => cn.to_owned(),
        Some(cn) => format!("{cn} <{addr}>"),
        None => addr.to_owned(),
    }
}

/// A TEXT value (already unescaped by the parser).
fn text(comp: &Component<'_>, name: &str) -> String {
    prop(comp, name)
        .map(|p| p.val.as_str().trim().to_owned())
        .unwrap_or_default()
}

/// The items of a text list (CATEGORIES): split at unescaped commas, each
/// unescaped by the crate.
fn text_list(p: &Property<'_>) -> Vec<String> {
    let v = p.val.as_str();
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b',' => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&v[start.min(v.len())..]);
    out.into_iter()
        .map(|s| {
            ParseString::from(s)
                .unescape_text()
                .as_str()
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The message for one parsed VEVENT or VTODO. `id` and `folders` are the
/// caller's; everything else comes from the component:
///
/// | message | from |
/// |---|---|
/// | `subject` | SUMMARY |
/// | `body` | DESCRIPTION, then COMMENTs, then `Repeats: ` and the RRULE of a series |
/// | `from` | ORGANIZER (`CN <address>`) |
/// | `to` | every ATTENDEE, one per line |
/// | `location` | LOCATION |
/// | `date`, `end` | DTSTART (a task without one: DUE); DTEND, DUE or DTSTART + DURATION, in UTC |
/// | `labels` | CATEGORIES, and `todo` for a VTODO |
/// | `attachments` | the FILENAME of each ATTACH that has one |
pub(crate) fn message(comp: &Component<'_>, kind: BlockKind, zones: &Zones) -> Message {
    let span = span(comp, kind, zones);
    let mut body = text(comp, "DESCRIPTION");
    for c in props(comp, "COMMENT") {
        let c = c.val.as_str().trim();
        if !c.is_empty() {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(c);
        }
    }
    for r in props(comp, "RRULE") {
        if !body.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str("Repeats: ");
        body.push_str(r.val.as_str().trim());
    }
    let mut labels: Vec<String> = props(comp, "CATEGORIES").flat_map(text_list).collect();
    if kind == BlockKind::Todo {
        labels.push("todo".into());
    }
    let attachments: Vec<String> = props(comp, "ATTACH")
        .filter_map(|a| param(a, "FILENAME").or_else(|| param(a, "X-FILENAME")))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let mut flags = Flags::empty();
    flags.set(Flags::HAS_ATTACHMENT, !attachments.is_empty());
    Message {
        // A task with a due date and no start is found by its due date.
        date: span.start.or(span.end).map(|d| d.timestamp()),
        end: span.end.map(|d| d.timestamp()),
        subject: text(comp, "SUMMARY"),
        body: Body::Text(body),
        from: prop(comp, "ORGANIZER").map(person).unwrap_or_default(),
        to: props(comp, "ATTENDEE")
            .map(person)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        location: text(comp, "LOCATION"),
        labels,
        attachments,
        flags,
        kind: ContentKind::Event,
        ..Message::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(duration("P1D"), Some(Duration::days(1)));
        assert_eq!(duration("P2W"), Some(Duration::days(14)));
        assert_eq!(duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(duration("soon"), None);
    }

    #[test]
    fn people_and_categories() {
        let c = icalendar::parser::read_calendar_simple(
            "BEGIN:VEVENT\nORGANIZER;CN=\"Alice A\":mailto:alice@example.org\n\
             ATTENDEE;CN=Bob:MAILTO:bob@example.org\nATTENDEE:mailto:carol@example.org\n\
             CATEGORIES:Work,Planning\\, Q3\nEND:VEVENT\n",
        )
        .unwrap();
        let m = message(&c[0], BlockKind::Event, &Zones::default());
        assert_eq!(m.from, "Alice A <alice@example.org>");
        assert_eq!(m.to, "Bob <bob@example.org>\ncarol@example.org");
        assert_eq!(m.labels, ["Work", "Planning, Q3"]);
    }
}
