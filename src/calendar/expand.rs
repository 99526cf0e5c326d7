//! A calendar's instances: each event and task, and each occurrence of a
//! recurring series within the [`RecurrenceWindow`], as a standalone
//! iCalendar object that [`super::parse_event`] reads back.
//!
//! The series itself is one instance (its first occurrence, with the rule
//! kept); every later occurrence in the window is one more, written as
//! RFC 5545 writes an instance of a series: the series' component with
//! its own DTSTART, DTEND and a RECURRENCE-ID, and without RRULE, RDATE
//! and EXDATE. An occurrence that the calendar overrides (a component
//! with the series' UID and that RECURRENCE-ID) is the override instead.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime, TimeZone};
use icalendar::parser::{Component, read_calendar_simple};

use super::RecurrenceWindow;
use super::event::span;
use super::split::{Block, BlockKind, Split, prop_name};
use super::zone::{When, Zones, prop, props, when, whens};

/// One instance: its id within the calendar and its standalone text, or
/// why it cannot be read.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// `UID`, or `UID@start` for one occurrence of a series (the start in
    /// UTC, `20240305T140000Z`, or the date of an all-day one), or `#n`
    /// (the n-th component) for a component without a UID.
    pub id: String,
    /// A VCALENDAR holding this instance and the VTIMEZONEs it uses.
    pub ics: Result<String, String>,
}

/// Parses one block with the `icalendar` crate. The error says where,
/// never what: it is recorded as a failure, and a failure reason must not
/// carry calendar content.
pub(crate) fn parse_block(block: &Block) -> Result<Component<'_>, String> {
    let fail = |p: &str| format!("component at line {}: {p}", block.line);
    if let Some(p) = &block.problem {
        return Err(fail(p));
    }
    match read_calendar_simple(&block.text) {
        Ok(mut comps) if !comps.is_empty() => Ok(comps.swap_remove(0)),
        Ok(_) => Err(fail("empty")),
        // `split` checked it; kept for the case it could not.
        Err(_) => Err(fail("not valid iCalendar")),
    }
}

/// The zones of a split calendar, parsed, with the text of each by TZID.
pub(crate) fn zones(split: &Split) -> (Zones, HashMap<String, &str>) {
    let parsed: Vec<Component<'_>> = split
        .zones
        .iter()
        .filter_map(|b| parse_block(b).ok())
        .collect();
    let texts = split
        .zones
        .iter()
        .zip(&parsed)
        .filter_map(|(b, c)| {
            Some((
                prop(c, "TZID")?.val.as_str().trim().to_owned(),
                b.text.as_str(),
            ))
        })
        .collect();
    (Zones::new(parsed.iter()), texts)
}

/// How an instance's start reads in its id.
fn key(w: &When, zones: &Zones) -> String {
    match w {
        When::Date(d) => d.format("%Y%m%d").to_string(),
        _ => zones.to_utc(w).0.format("%Y%m%dT%H%M%SZ").to_string(),
    }
}

/// Wraps a component's text in a VCALENDAR with the zones it names.
fn wrap(item: &str, zone_texts: &HashMap<String, &str>) -> String {
    let mut out = String::with_capacity(item.len() + 128);
    out.push_str("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//sealdex//calendar//EN\n");
    let mut names: Vec<&String> = zone_texts
        .keys()
        .filter(|tzid| {
            item.contains(&format!("TZID={tzid}")) || item.contains(&format!("TZID=\"{tzid}\""))
        })
        .collect();
    names.sort();
    for n in names {
        out.push_str(zone_texts[n]);
    }
    out.push_str(item);
    out.push_str("END:VCALENDAR\n");
    out
}

/// The UID of a block that could not be parsed, read off its lines so
/// that its failure has the id the event would have had.
fn raw_uid(block: &Block) -> Option<String> {
    block
        .text
        .lines()
        .find(|l| prop_name(l).eq_ignore_ascii_case("UID"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Every instance of the calendar, in file order, each series followed by
/// its occurrences.
pub(crate) fn instances(split: &Split, window: &RecurrenceWindow) -> Vec<Instance> {
    let (zones, zone_texts) = zones(split);
    let parsed: Vec<Result<Component<'_>, String>> = split.items.iter().map(parse_block).collect();
    let uid_of = |i: usize, c: &Component<'_>| {
        prop(c, "UID")
            .map(|p| p.val.as_str().trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("#{}", i + 1))
    };
    // The occurrences each series overrides, by UID.
    let mut overridden: HashMap<String, HashSet<String>> = HashMap::new();
    for (i, c) in parsed.iter().enumerate() {
        if let Ok(c) = c
            && let Some(rid) = prop(c, "RECURRENCE-ID").and_then(when)
        {
            overridden
                .entry(uid_of(i, c))
                .or_default()
                .insert(key(&rid, &zones));
        }
    }
    let mut out = Vec::new();
    for (i, (block, c)) in split.items.iter().zip(&parsed).enumerate() {
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                out.push(Instance {
                    id: raw_uid(block).unwrap_or_else(|| format!("#{}", i + 1)),
                    ics: Err(e.clone()),
                });
                continue;
            }
        };
        let uid = uid_of(i, c);
        if let Some(rid) = prop(c, "RECURRENCE-ID").and_then(when) {
            out.push(Instance {
                id: format!("{uid}@{}", key(&rid, &zones)),
                ics: Ok(wrap(&block.text, &zone_texts)),
            });
            continue;
        }
        out.push(Instance {
            id: uid.clone(),
            ics: Ok(wrap(&block.text, &zone_texts)),
        });
        let none = HashSet::new();
        let skip = overridden.get(&uid).unwrap_or(&none);
        for occ in occurrences(c, &zones, window) {
            let k = key(&occ, &zones);
            if skip.contains(&k) {
                continue;
            }
            let text = occurrence_text(block, c, &occ, &zones);
            out.push(Instance {
                id: format!("{uid}@{k}"),
                ics: Ok(wrap(&text, &zone_texts)),
            });
        }
    }
    out
}

/// The starts of a series' occurrences after its first, within the
/// window: RRULE and RDATE less EXDATE, expanded by the `rrule` crate.
///
/// Recurrence is defined on local time (a weekly 09:00 meeting stays at
/// 09:00 across a change to summer time), so the rule runs on the
/// wall-clock time, with UTC standing in for the floating zone, and each
/// occurrence is placed in its zone afterwards. UNTIL, written in UTC, is
/// moved to the same wall clock first.
fn occurrences(comp: &Component<'_>, zones: &Zones, window: &RecurrenceWindow) -> Vec<When> {
    let has_rule = prop(comp, "RRULE").is_some() || prop(comp, "RDATE").is_some();
    let Some(start) = prop(comp, "DTSTART").and_then(when).filter(|_| has_rule) else {
        return Vec::new();
    };
    let tzid = start.tzid().map(str::to_owned);
    // A value of RDATE/EXDATE as wall-clock time in the series' zone.
    let local = |w: &When| -> NaiveDateTime {
        match (w, &tzid) {
            (When::Utc(t), Some(tz)) => zones.utc_to_local(*t, tz).unwrap_or(*t),
            (When::Local(t, Some(z)), Some(tz)) if z != tz => zones
                .local_to_utc(*t, z)
                .and_then(|u| zones.utc_to_local(u.naive_utc(), tz))
                .unwrap_or(*t),
            _ => w.naive(),
        }
    };
    let utc = rrule::Tz::UTC;
    let first = start.naive();
    let dt_start = utc.from_utc_datetime(&first);
    let mut set = rrule::RRuleSet::new(dt_start);
    for r in props(comp, "RRULE") {
        let Ok(mut rule) = r.val.as_str().parse::<rrule::RRule<rrule::Unvalidated>>() else {
            tracing::debug!("a calendar series has an RRULE the rrule crate refuses");
            continue;
        };
        if let Some(until) = rule.get_until() {
            let u = until.naive_utc();
            let u = match (&start, &tzid) {
                (When::Local(_, _), Some(tz)) => zones.utc_to_local(u, tz).unwrap_or(u),
                _ => u,
            };
            rule = rule.until(utc.from_utc_datetime(&u));
        }
        match rule.validate(dt_start) {
            Ok(rule) => set = set.rrule(rule),
            Err(_) => tracing::debug!("a calendar series has an invalid RRULE"),
        }
    }
    for w in props(comp, "RDATE").flat_map(whens) {
        set = set.rdate(utc.from_utc_datetime(&local(&w)));
    }
    for w in props(comp, "EXDATE").flat_map(whens) {
        set = set.exdate(utc.from_utc_datetime(&local(&w)));
    }
    let horizon = Duration::from_std(window.horizon).unwrap_or(Duration::MAX);
    let Some(end) = first.checked_add_signed(horizon) else {
        return Vec::new();
    };
    let res = set
        .before(utc.from_utc_datetime(&end))
        .all(window.max_occurrences.saturating_add(1));
    res.dates
        .into_iter()
        .map(|d| d.naive_utc())
        .filter(|&t| t != first && t < end)
        .take(usize::from(window.max_occurrences))
        .map(|t| match &start {
            When::Date(_) => When::Date(t.date()),
            When::Utc(_) => When::Utc(t),
            When::Local(_, tz) => When::Local(t, tz.clone()),
        })
        .collect()
}

/// The properties an occurrence's text replaces or leaves out.
const RESCHEDULED: [&str; 9] = [
    "DTSTART",
    "DTEND",
    "DUE",
    "DURATION",
    "RRULE",
    "RDATE",
    "EXDATE",
    "EXRULE",
    "RECURRENCE-ID",
];

/// The series' component rewritten as the occurrence starting at `occ`:
/// its own DTSTART, its end (the series' length after it) and a
/// RECURRENCE-ID, in UTC, or as dates for an all-day series.
fn occurrence_text(block: &Block, comp: &Component<'_>, occ: &When, zones: &Zones) -> String {
    let s = span(comp, block.kind, zones);
    let length = match (s.start, s.end) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let end_name = if block.kind == BlockKind::Todo {
        "DUE"
    } else {
        "DTEND"
    };
    let mut head = String::new();
    match occ {
        When::Date(d) => {
            let d_s = d.format("%Y%m%d");
            head.push_str(&format!(
                "DTSTART;VALUE=DATE:{d_s}\nRECURRENCE-ID;VALUE=DATE:{d_s}\n"
            ));
            if let Some(end) =
                length.and_then(|l| d.checked_add_signed(Duration::days(l.num_days())))
            {
                head.push_str(&format!("{end_name};VALUE=DATE:{}\n", end.format("%Y%m%d")));
            }
        }
        _ => {
            let start = zones.to_utc(occ).0;
            let f = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
            head.push_str(&format!(
                "DTSTART:{}\nRECURRENCE-ID:{}\n",
                f(start),
                f(start)
            ));
            if let Some(end) = length.and_then(|l| start.checked_add_signed(l)) {
                head.push_str(&format!("{end_name}:{}\n", f(end)));
            }
        }
    }
    let mut out = String::with_capacity(block.text.len() + head.len());
    let mut depth = 0usize;
    for line in block.text.lines() {
        let name = prop_name(line);
        if name.eq_ignore_ascii_case("BEGIN") {
            depth += 1;
            out.push_str(line);
            out.push('\n');
            if depth == 1 {
                out.push_str(&head);
            }
            continue;
        }
        if name.eq_ignore_ascii_case("END") {
            depth = depth.saturating_sub(1);
        } else if depth == 1 && RESCHEDULED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
