//! Calendars: iCalendar (RFC 5545) events and tasks read into messages of
//! kind [`Event`](crate::ContentKind::Event), with their times in UTC and
//! their recurring series expanded within a window.
//!
//! Two entry points, for the two places calendar bytes come from:
//!
//! - [`crate::backends::Ics`] (a `.ics` file or a folder of them) lists
//!   every event, task and occurrence of a calendar, and hands each over
//!   as a small standalone iCalendar object;
//! - [`parse_event`] (and the [`IcsPassThrough`] decryptor around it)
//!   reads one such object into a [`Message`]: what an end-to-end
//!   encrypted calendar client calls after decrypting an event, since such
//!   clients (Proton Calendar among them) store each event as its own
//!   iCalendar object.
//!
//! Parsing is the `icalendar` crate's; this module cuts a calendar into
//! its components first (`split.rs`), so a malformed event fails on its
//! own, as a per-event failure, and the others are indexed.
//!
//! # What a record holds
//!
//! Subject: SUMMARY; body: DESCRIPTION and COMMENTs; from: ORGANIZER;
//! to: the ATTENDEEs; location: LOCATION; labels: CATEGORIES (and `todo`
//! for a VTODO); timestamp and end: DTSTART and DTEND (or DUE, or DTSTART
//! plus DURATION), in UTC; folder: the calendar's name (`X-WR-CALNAME`,
//! else the file's name).
//!
//! # Time zones
//!
//! A time with a TZID is placed by the IANA database when the TZID names
//! an IANA zone (vendor prefixes such as `/mozilla.org/…/` removed), else
//! by the calendar's VTIMEZONE of that TZID; `zone.rs` says why in that
//! order. Floating times, all-day dates and TZIDs that resolve to nothing
//! are read as UTC: the index has no zone of its own to read them in, and
//! UTC keeps an all-day event on its date for `after:` and `before:`.
//!
//! # Recurring series
//!
//! A series (RRULE or RDATE) is one record for its first occurrence, with
//! the rule kept in its body (`Repeats: FREQ=WEEKLY;BYDAY=MO`), plus one
//! record per later occurrence that starts within the
//! [`RecurrenceWindow`] after the first: by default one year
//! (366 days) and at most 500 occurrences, so a daily series gives a
//! year of days and an unbounded one cannot flood the index. The window
//! is anchored on the series' start, not on today, so what is indexed
//! depends only on the calendar and not on the day it was read. EXDATEs
//! are left out, and an occurrence the calendar overrides (RECURRENCE-ID)
//! is the override. Occurrence ids are the UID, `@`, and the start in
//! UTC (`standup@example.org@20240311T090000Z`).

use std::time::Duration;

mod event;
pub(crate) mod expand;
pub(crate) mod split;
mod zone;

use crate::message::{DecryptError, Message};
use crate::source::RawMessage;

/// Which occurrences of a recurring series are indexed, besides the first:
/// those starting less than `horizon` after the first, at most
/// `max_occurrences` of them. See the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrenceWindow {
    /// How far after the series' first occurrence.
    pub horizon: Duration,
    /// The most occurrences per series, the first not counted.
    pub max_occurrences: u16,
}

impl Default for RecurrenceWindow {
    fn default() -> Self {
        RecurrenceWindow {
            horizon: Duration::from_secs(366 * 86_400),
            max_occurrences: 500,
        }
    }
}

/// Reads the first VEVENT or VTODO of an iCalendar object (with the
/// VTIMEZONEs it refers to) into a [`Message`] of kind event: see the
/// [module documentation](self) for what goes where. The message's `id`
/// is empty and its folders none: the caller's.
///
/// ```
/// let ics = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1@example.org\r\n\
///     DTSTART;TZID=Europe/Berlin:20240305T140000\r\nDURATION:PT1H\r\n\
///     SUMMARY:Design review\r\nLOCATION:Harbour room\r\n\
///     ORGANIZER;CN=Alice:mailto:alice@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
/// let msg = sealdex::calendar::parse_event(ics)?;
/// assert_eq!(msg.subject, "Design review");
/// assert_eq!(msg.location, "Harbour room");
/// assert_eq!(msg.from, "Alice <alice@example.org>");
/// assert_eq!(msg.date, Some(1709643600)); // 13:00 UTC
/// assert_eq!(msg.end, Some(1709643600 + 3600));
/// # Ok::<(), sealdex::DecryptError>(())
/// ```
pub fn parse_event(bytes: &[u8]) -> Result<Message, DecryptError> {
    let text = String::from_utf8_lossy(bytes);
    let split = split::split(&text);
    let block = split
        .items
        .first()
        .ok_or_else(|| DecryptError::Malformed("no VEVENT or VTODO in the calendar".into()))?;
    let comp = expand::parse_block(block).map_err(DecryptError::Malformed)?;
    let (zones, _) = expand::zones(&split);
    let mut msg = event::message(&comp, block.kind, &zones);
    if let Some(name) = split.name {
        msg.folders = vec![name];
    }
    Ok(msg)
}

/// One instance of a calendar read by [`parse_calendar`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its id within the calendar: the UID, `UID@start` for an
    /// occurrence, or `#n` for the n-th component when it has no UID.
    pub id: String,
    /// The event, or why it could not be read.
    pub event: Result<Message, DecryptError>,
}

/// Reads a whole calendar (an `.ics` file, an invitation attached to a
/// mail) into its instances: each event and task, and each occurrence of
/// a recurring series within `window`, as [`crate::backends::Ics`] lists
/// them. A malformed component is an `Err` instance; the others are read.
///
/// ```
/// use sealdex::calendar::{RecurrenceWindow, parse_calendar};
///
/// let ics = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTART:20240101T090000Z\r\n\
///     RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
/// let all = parse_calendar(ics, &RecurrenceWindow::default());
/// let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
/// assert_eq!(ids, ["w", "w@20240108T090000Z", "w@20240115T090000Z"]);
/// assert!(all.iter().all(|i| i.event.as_ref().is_ok_and(|m| m.subject == "Weekly")));
/// ```
pub fn parse_calendar(bytes: &[u8], window: &RecurrenceWindow) -> Vec<Instance> {
    let text = String::from_utf8_lossy(bytes);
    let split = split::split(&text);
    expand::instances(&split, window)
        .into_iter()
        .map(|i| Instance {
            id: i.id,
            event: i
                .ics
                .map_err(DecryptError::Malformed)
                .and_then(|ics| parse_event(ics.as_bytes()))
                .map(|mut m| {
                    if m.folders.is_empty()
                        && let Some(name) = &split.name
                    {
                        m.folders = vec![name.clone()];
                    }
                    m
                }),
        })
        .collect()
}

/// The decryptor for plaintext calendars ([`crate::backends::Ics`]): reads
/// each raw message with [`parse_event`], its folder the calendar the
/// source names.
///
/// ```
/// use sealdex::calendar::IcsPassThrough;
/// use sealdex::{ContentKind, Decryptor, RawMessage};
///
/// let raw = RawMessage {
///     id: "work.ics#1@example.org".into(),
///     bytes: b"BEGIN:VEVENT\nUID:1@example.org\nDTSTART:20240305T130000Z\nSUMMARY:Lunch\nEND:VEVENT\n".to_vec(),
///     folder: Some("Work".into()),
///     ..RawMessage::default()
/// };
/// let msg = IcsPassThrough::default().decrypt(&raw)?;
/// assert_eq!((msg.kind, msg.subject.as_str()), (ContentKind::Event, "Lunch"));
/// assert_eq!(msg.folders, ["Work"]);
/// # Ok::<(), sealdex::DecryptError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcsPassThrough {
    /// Objects longer than this many bytes fail with
    /// [`DecryptError::TooLarge`] (one event, not a whole calendar).
    pub max_event_bytes: usize,
}

impl Default for IcsPassThrough {
    /// 4 MiB: an event is a few KiB; inline attachments are dropped
    /// before this limit applies.
    fn default() -> Self {
        IcsPassThrough {
            max_event_bytes: 4 << 20,
        }
    }
}

impl crate::decrypt::Decryptor for IcsPassThrough {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        if raw.bytes.len() > self.max_event_bytes {
            return Err(DecryptError::TooLarge {
                size: raw.bytes.len(),
                limit: self.max_event_bytes,
            });
        }
        let mut msg = parse_event(&raw.bytes)?;
        msg.id = raw.id.clone();
        if let Some(folder) = &raw.folder {
            msg.folders = vec![folder.clone()];
        }
        msg.labels.extend(raw.labels.iter().cloned());
        Ok(msg)
    }
}

/// Whether `bytes` start like an iCalendar object (`BEGIN:VCALENDAR`,
/// after an optional byte order mark and blank lines): how `sealdex index`
/// tells a calendar from mail by content.
pub fn looks_like_ics(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b[start..]
        .get(..15)
        .is_some_and(|h| h.eq_ignore_ascii_case(b"BEGIN:VCALENDAR"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        expand::instances(&split::split(text), &RecurrenceWindow::default())
            .into_iter()
            .map(|i| i.id)
            .collect()
    }

    #[test]
    fn weekly_series_with_exdate_and_override() {
        let cal = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:s\nDTSTART;TZID=Europe/Berlin:20240304T090000\n\
                   DTEND;TZID=Europe/Berlin:20240304T093000\nRRULE:FREQ=WEEKLY;COUNT=5\n\
                   EXDATE;TZID=Europe/Berlin:20240311T090000\nSUMMARY:Standup\nEND:VEVENT\n\
                   BEGIN:VEVENT\nUID:s\nRECURRENCE-ID;TZID=Europe/Berlin:20240318T090000\n\
                   DTSTART;TZID=Europe/Berlin:20240318T100000\nSUMMARY:Standup (moved)\nEND:VEVENT\n\
                   END:VCALENDAR\n";
        // 4 March is +01:00; from 31 March Berlin is +02:00, so 09:00 local
        // is 07:00 UTC on 1 April.
        assert_eq!(
            ids(cal),
            [
                "s",
                "s@20240325T080000Z",
                "s@20240401T070000Z",
                "s@20240318T080000Z"
            ]
        );
        let inst = expand::instances(&split::split(cal), &RecurrenceWindow::default());
        let occ = parse_event(inst[2].ics.as_ref().unwrap().as_bytes()).unwrap();
        assert_eq!(occ.subject, "Standup");
        assert_eq!(occ.date, Some(1711954800)); // 2024-04-01T07:00Z
        assert_eq!(occ.end, Some(1711954800 + 1800));
        assert!(!matches!(occ.body, crate::Body::Text(ref t) if t.contains("Repeats")));
        let series = parse_event(inst[0].ics.as_ref().unwrap().as_bytes()).unwrap();
        assert!(
            matches!(series.body, crate::Body::Text(ref t) if t.contains("Repeats: FREQ=WEEKLY;COUNT=5"))
        );
    }

    #[test]
    fn the_window_bounds_an_endless_series() {
        let cal =
            "BEGIN:VEVENT\nUID:d\nDTSTART;VALUE=DATE:20240101\nRRULE:FREQ=DAILY\nEND:VEVENT\n";
        let w = RecurrenceWindow {
            horizon: Duration::from_secs(10 * 86_400),
            max_occurrences: 500,
        };
        let inst = expand::instances(&split::split(cal), &w);
        assert_eq!(inst.len(), 10);
        assert_eq!(inst[1].id, "d@20240102");
        let w = RecurrenceWindow {
            max_occurrences: 3,
            ..RecurrenceWindow::default()
        };
        assert_eq!(expand::instances(&split::split(cal), &w).len(), 4);
        assert_eq!(ids(cal).len(), 1 + 365); // 2024 is a leap year: 366 days
    }

    #[test]
    fn until_in_utc_bounds_local_times_east_of_utc() {
        // 09:00 in Tokyo is 00:00 UTC: UNTIL at that instant keeps the
        // third occurrence.
        let cal = "BEGIN:VEVENT\nUID:t\nDTSTART;TZID=Asia/Tokyo:20240101T090000\n\
                   RRULE:FREQ=DAILY;UNTIL=20240103T000000Z\nEND:VEVENT\n";
        assert_eq!(ids(cal), ["t", "t@20240102T000000Z", "t@20240103T000000Z"]);
    }

    #[test]
    fn malformed_events_fail_alone() {
        let cal = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:ok\nSUMMARY:fine\nEND:VEVENT\n\
                   BEGIN:VEVENT\nUID:bad\nSUMMARY:secret words\nEND:VALARM\nEND:VEVENT\n\
                   BEGIN:VEVENT\nUID:mended\nthis is not a property\nSUMMARY:kept\nEND:VEVENT\n\
                   END:VCALENDAR\n";
        let inst = expand::instances(&split::split(cal), &RecurrenceWindow::default());
        assert_eq!(inst.len(), 3);
        assert!(inst[0].ics.is_ok());
        assert_eq!(inst[1].id, "bad");
        let e = inst[1].ics.as_ref().unwrap_err();
        assert!(e.contains("line 6"), "{e}");
        assert!(
            !e.contains("secret"),
            "a reason must not quote content: {e}"
        );
        // A line the parser refuses is dropped; the event is read.
        let mended = parse_event(inst[2].ics.as_ref().unwrap().as_bytes()).unwrap();
        assert_eq!(mended.subject, "kept");
        assert!(parse_event(b"garbage").is_err());
        assert!(parse_event(b"").is_err());
    }

    proptest::proptest! {
        /// Occurrences of a series in a zone with DST keep their wall-clock
        /// time, come in order, inside the window, with distinct ids.
        #[test]
        fn occurrences_keep_local_time(
            day in 0i64..11_000,
            hour in 0u32..24,
            freq in 0usize..3,
            interval in 1u32..4,
            count in 1u32..60,
        ) {
            use chrono::{NaiveDate, TimeZone};
            let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()
                .and_hms_opt(hour, 30, 0).unwrap() + chrono::Duration::days(day);
            let freq = ["DAILY", "WEEKLY", "MONTHLY"][freq];
            let cal = format!(
                "BEGIN:VEVENT\nUID:p\nDTSTART;TZID=Europe/Berlin:{}\n\
                 RRULE:FREQ={freq};INTERVAL={interval};COUNT={count}\nEND:VEVENT\n",
                start.format("%Y%m%dT%H%M%S")
            );
            let all = parse_calendar(cal.as_bytes(), &RecurrenceWindow::default());
            proptest::prop_assert!(!all.is_empty() && all.len() <= count as usize);
            let berlin = chrono_tz::Europe::Berlin;
            let mut last = None;
            let mut ids = std::collections::HashSet::new();
            for i in &all {
                proptest::prop_assert!(ids.insert(i.id.clone()));
                let m = i.event.as_ref().unwrap();
                let t = chrono::DateTime::from_timestamp(m.date.unwrap(), 0).unwrap();
                let local = berlin.from_utc_datetime(&t.naive_utc());
                // The series' wall-clock time, unless that time does not
                // exist on this day (a DST gap moves it by the gap).
                let exists = !matches!(
                    berlin.from_local_datetime(&local.date_naive().and_time(start.time())),
                    chrono::LocalResult::None
                );
                if exists {
                    proptest::prop_assert_eq!(local.time(), start.time(), "{}", i.id);
                }
                proptest::prop_assert!(last.is_none_or(|l| l < t));
                last = Some(t);
            }
            let first = all[0].event.as_ref().unwrap().date.unwrap();
            let end = all.last().unwrap().event.as_ref().unwrap().date.unwrap();
            proptest::prop_assert!(end - first < 367 * 86_400);
        }

        /// Any text: no panic, and ids stay unique per kind of instance.
        #[test]
        fn any_text_is_read_without_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("BEGIN:VEVENT".to_string()),
                    proptest::strategy::Just("END:VEVENT".to_string()),
                    proptest::strategy::Just("BEGIN:VTIMEZONE".to_string()),
                    proptest::strategy::Just("END:VTIMEZONE".to_string()),
                    proptest::strategy::Just("RRULE:FREQ=DAILY;COUNT=3".to_string()),
                    proptest::strategy::Just("DTSTART;TZID=Europe/Paris:20240101T100000".to_string()),
                    "[A-Z;=:/ ,0-9-]{0,30}",
                ],
                0..30,
            )
        ) {
            let text = lines.join("\r\n");
            let _ = parse_calendar(text.as_bytes(), &RecurrenceWindow::default());
            let _ = parse_event(text.as_bytes());
        }
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_ics(b"\xef\xbb\xbf\r\nbegin:vcalendar\r\n"));
        assert!(!looks_like_ics(b"From: a@b\r\n"));
    }
}
