//! Date and time values of iCalendar, and turning local times into UTC:
//! `TZID`s by the IANA database (chrono-tz) or by the calendar's own
//! VTIMEZONE definitions.
//!
//! # Which definition wins
//!
//! RFC 5545 makes a VTIMEZONE the definition of its TZID. In practice,
//! exporters write TZIDs that are IANA names (`Europe/Berlin`), often with
//! a vendor prefix (`/mozilla.org/20050126_1/Europe/Berlin`), and a
//! VTIMEZONE holding only today's rules (one STANDARD and one DAYLIGHT
//! observance starting in 1970). For a date before the last rule change
//! (the US moved its DST dates in 2007) the IANA database is right and
//! such a VTIMEZONE is not, so a TZID that names an IANA zone is resolved
//! by chrono-tz, as Thunderbird, Evolution and Google Calendar do. A TZID
//! that is not an IANA name (Outlook's `W. Europe Standard Time`, custom
//! zones) is resolved by the calendar's VTIMEZONE: the observance whose
//! latest onset (its DTSTART, RRULE and RDATE occurrences) comes last
//! before the time gives the offset. A TZID that neither resolves is read
//! as a floating time, which sealdex indexes as if it were UTC, as it
//! does floating times and all-day dates (see the module documentation of
//! [`crate::calendar`]).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use icalendar::parser::{Component, Property};

/// A DATE or DATE-TIME value as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum When {
    /// An all-day date.
    Date(NaiveDate),
    /// A time in UTC (`…Z`).
    Utc(NaiveDateTime),
    /// A local time, in the named zone or floating (`None`).
    Local(NaiveDateTime, Option<String>),
}

impl When {
    /// The wall-clock time (midnight for a date; UTC for a UTC time).
    pub fn naive(&self) -> NaiveDateTime {
        match self {
            When::Date(d) => d.and_time(NaiveTime::MIN),
            When::Utc(t) | When::Local(t, _) => *t,
        }
    }

    /// The zone its wall-clock time is in: `None` for UTC, floating times
    /// and dates.
    pub fn tzid(&self) -> Option<&str> {
        match self {
            When::Local(_, tz) => tz.as_deref(),
            _ => None,
        }
    }
}

/// The value of a parameter of `prop` (any case), unquoted.
pub(crate) fn param<'p>(prop: &'p Property<'_>, key: &str) -> Option<&'p str> {
    prop.params
        .iter()
        .find(|p| p.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str().trim().trim_matches('"'))
}

/// The first property of `comp` named `name` (any case).
pub(crate) fn prop<'c>(comp: &'c Component<'_>, name: &str) -> Option<&'c Property<'c>> {
    comp.properties
        .iter()
        .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
}

/// Every property of `comp` named `name`.
pub(crate) fn props<'c>(
    comp: &'c Component<'_>,
    name: &'c str,
) -> impl Iterator<Item = &'c Property<'c>> + 'c {
    comp.properties
        .iter()
        .filter(move |p| p.name.as_str().eq_ignore_ascii_case(name))
}

/// Reads one DATE or DATE-TIME value (`20240305`, `20240305T140000`,
/// `20240305T140000Z`), in the zone `tzid` if it is local.
pub(crate) fn parse_value(v: &str, tzid: Option<&str>, date_only: bool) -> Option<When> {
    let v = v.trim();
    if date_only || (v.len() == 8 && !v.contains('T')) {
        return NaiveDate::parse_from_str(v.get(..8)?, "%Y%m%d")
            .ok()
            .map(When::Date);
    }
    let (body, utc) = match v.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (v, false),
    };
    let t = NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M%S").ok()?;
    Some(if utc {
        When::Utc(t)
    } else {
        When::Local(t, tzid.map(str::to_owned))
    })
}

/// The value of a DTSTART-like property (DTSTART, DTEND, DUE,
/// RECURRENCE-ID).
pub(crate) fn when(prop: &Property<'_>) -> Option<When> {
    let date_only = param(prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    parse_value(prop.val.as_str(), param(prop, "TZID"), date_only)
}

/// Every value of a list property (RDATE, EXDATE: comma-separated).
pub(crate) fn whens(prop: &Property<'_>) -> Vec<When> {
    let date_only = param(prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    let tzid = param(prop, "TZID");
    prop.val
        .as_str()
        .split(',')
        .filter_map(|v| parse_value(v, tzid, date_only))
        .collect()
}

/// The IANA zone a TZID names, trying it whole and then without each
/// leading path component (`/mozilla.org/20050126_1/Europe/Berlin`,
/// `/softwarestudio.org/Olson_20011030_5/America/New_York`).
pub(crate) fn iana(tzid: &str) -> Option<chrono_tz::Tz> {
    let mut rest = tzid.trim().trim_matches('"').trim_start_matches('/');
    loop {
        if let Ok(tz) = rest.parse::<chrono_tz::Tz>() {
            return Some(tz);
        }
        rest = rest.split_once('/')?.1;
    }
}

/// One STANDARD or DAYLIGHT observance of a VTIMEZONE.
#[derive(Clone, Debug)]
struct Observance {
    /// Its first onset, local time before it (in `from`).
    start: NaiveDateTime,
    /// Offset before the onset, seconds east of UTC.
    from: i32,
    /// Offset from the onset on.
    to: i32,
    /// Its RRULE, as written.
    rule: Option<String>,
    /// Its RDATEs, local times.
    rdates: Vec<NaiveDateTime>,
}

impl Observance {
    /// The latest onset at or before the local time `t` (both read in the
    /// offset this observance brings, `to`), if any.
    fn latest_onset(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        // Onsets are written in the offset before them; shift to `to`.
        let shift = Duration::seconds(i64::from(self.to) - i64::from(self.from));
        let mut best: Option<NaiveDateTime> = None;
        let mut consider = |onset: NaiveDateTime| {
            let o = onset + shift;
            if o <= t && best.is_none_or(|b| o > b) {
                best = Some(o);
            }
        };
        consider(self.start);
        for d in &self.rdates {
            consider(*d);
        }
        if let Some(rule) = &self.rule
            && self.start + shift <= t
        {
            // Onsets in floating local time (UTC stands in for it), looked
            // for in the 400 days before `t`: a zone's rules are yearly, so
            // its latest onset is there unless its rule ended long before,
            // when another observance's onset is later anyway. Bounding
            // the search keeps a hostile rule (FREQ=SECONDLY from 1601)
            // cheap.
            let start = rrule::Tz::UTC.from_utc_datetime(&self.start);
            let before = t - shift;
            let after = before - Duration::days(400);
            if let Ok(rule) = rule.parse::<rrule::RRule<rrule::Unvalidated>>()
                && let Ok(set) = rule.build(start)
            {
                let res = set
                    .after(rrule::Tz::UTC.from_utc_datetime(&after))
                    .before(rrule::Tz::UTC.from_utc_datetime(&before))
                    .all(512);
                if let Some(last) = res.dates.last() {
                    consider(last.naive_utc());
                }
            }
        }
        best
    }
}

/// The VTIMEZONE definitions of one calendar, by TZID.
#[derive(Clone, Debug, Default)]
pub(crate) struct Zones {
    defs: HashMap<String, Vec<Observance>>,
}

/// An offset (`+0100`, `-0530`, `+013045`) in seconds east of UTC.
fn offset(v: &str) -> Option<i32> {
    let v = v.trim();
    let (sign, digits) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => (1, v),
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<i32>().ok());
    let secs = n(0..2)? * 3600 + n(2..4)? * 60 + if digits.len() == 6 { n(4..6)? } else { 0 };
    (secs < 24 * 3600).then_some(sign * secs)
}

impl Zones {
    /// The definitions in `zones` (parsed VTIMEZONE components); a
    /// definition that cannot be read is left out (times in it are then
    /// resolved by their TZID's IANA name, or read as floating).
    pub fn new<'a>(zones: impl IntoIterator<Item = &'a Component<'a>>) -> Zones {
        let mut defs = HashMap::new();
        for z in zones {
            let Some(tzid) = prop(z, "TZID").map(|p| p.val.as_str().trim().to_owned()) else {
                continue;
            };
            let mut obs = Vec::new();
            for c in &z.components {
                let name = c.name.as_str();
                if !(name.eq_ignore_ascii_case("STANDARD") || name.eq_ignore_ascii_case("DAYLIGHT"))
                {
                    continue;
                }
                let start = prop(c, "DTSTART").and_then(when).map(|w| w.naive());
                let from = prop(c, "TZOFFSETFROM").and_then(|p| offset(p.val.as_str()));
                let to = prop(c, "TZOFFSETTO").and_then(|p| offset(p.val.as_str()));
                if let (Some(start), Some(from), Some(to)) = (start, from, to) {
                    obs.push(Observance {
                        start,
                        from,
                        to,
                        rule: prop(c, "RRULE").map(|p| p.val.as_str().to_owned()),
                        rdates: props(c, "RDATE")
                            .flat_map(whens)
                            .map(|w| w.naive())
                            .collect(),
                    });
                }
            }
            if !obs.is_empty() {
                defs.insert(tzid, obs);
            }
        }
        Zones { defs }
    }

    /// The offset (seconds east of UTC) of the local time `t` in the zone
    /// a VTIMEZONE defines as `tzid`.
    fn vtimezone_offset(&self, tzid: &str, t: NaiveDateTime) -> Option<i32> {
        let obs = self.defs.get(tzid.trim())?;
        let latest = obs
            .iter()
            .filter_map(|o| o.latest_onset(t).map(|at| (at, o.to)))
            .max_by_key(|(at, _)| *at);
        match latest {
            Some((_, to)) => Some(to),
            // Before every onset: the offset before the earliest one.
            None => obs.iter().min_by_key(|o| o.start).map(|o| o.from),
        }
    }

    /// The UTC instant of `w`, and whether it was floating (no zone, an
    /// all-day date, or a TZID that resolves to nothing), in which case
    /// the wall-clock time is taken as UTC.
    pub fn to_utc(&self, w: &When) -> (DateTime<Utc>, bool) {
        match w {
            When::Utc(t) => (Utc.from_utc_datetime(t), false),
            When::Date(_) | When::Local(_, None) => (Utc.from_utc_datetime(&w.naive()), true),
            When::Local(t, Some(tzid)) => match self.local_to_utc(*t, tzid) {
                Some(u) => (u, false),
                None => {
                    tracing::debug!("unknown TZID in a calendar: a floating time");
                    (Utc.from_utc_datetime(t), true)
                }
            },
        }
    }

    /// The UTC instant of the local time `t` in `tzid`, if the zone is
    /// known. A time in a gap (skipped by a DST change) is read with the
    /// offset before the gap, and a time that occurs twice as the first of
    /// the two, as RFC 5545 (3.3.5) prescribes.
    pub fn local_to_utc(&self, t: NaiveDateTime, tzid: &str) -> Option<DateTime<Utc>> {
        if let Some(tz) = iana(tzid) {
            return Some(match tz.from_local_datetime(&t) {
                chrono::LocalResult::Single(d) => d.with_timezone(&Utc),
                chrono::LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
                chrono::LocalResult::None => {
                    let before = tz
                        .offset_from_utc_datetime(&(t - Duration::days(1)))
                        .fix()
                        .local_minus_utc();
                    Utc.from_utc_datetime(&(t - Duration::seconds(i64::from(before))))
                }
            });
        }
        let off = self.vtimezone_offset(tzid, t)?;
        Some(Utc.from_utc_datetime(&(t - Duration::seconds(i64::from(off)))))
    }

    /// The local wall-clock time in `tzid` of the UTC instant `u` (for an
    /// RRULE's UNTIL, which is written in UTC but bounds local times).
    pub fn utc_to_local(&self, u: NaiveDateTime, tzid: &str) -> Option<NaiveDateTime> {
        if let Some(tz) = iana(tzid) {
            return Some(tz.from_utc_datetime(&u).naive_local());
        }
        // The offset at the local time about `u`: exact but within hours of
        // a change of offset.
        let off = self.vtimezone_offset(tzid, u)?;
        Some(u + Duration::seconds(i64::from(off)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").unwrap()
    }

    #[test]
    fn iana_names_with_vendor_prefixes() {
        assert_eq!(iana("Europe/Berlin"), Some(chrono_tz::Europe::Berlin));
        assert_eq!(
            iana("/mozilla.org/20050126_1/America/New_York"),
            Some(chrono_tz::America::New_York)
        );
        assert_eq!(iana("\"Asia/Tokyo\""), Some(chrono_tz::Asia::Tokyo));
        assert_eq!(iana("W. Europe Standard Time"), None);
        assert_eq!(iana(""), None);
    }

    #[test]
    fn values_and_offsets() {
        assert_eq!(
            parse_value("20240305", None, false),
            Some(When::Date(NaiveDate::from_ymd_opt(2024, 3, 5).unwrap()))
        );
        assert_eq!(
            parse_value("20240305T140000Z", Some("X"), false),
            Some(When::Utc(at("20240305T140000")))
        );
        assert_eq!(parse_value("2024-03-05", None, false), None);
        assert_eq!(offset("+0530"), Some(19800));
        assert_eq!(offset("-0800"), Some(-28800));
        assert_eq!(offset("+9999"), None);
        assert_eq!(offset("abc"), None);
    }

    #[test]
    fn iana_zone_gap_and_overlap() {
        let z = Zones::default();
        // Berlin in summer: +02:00.
        let (u, floating) = z.to_utc(&When::Local(
            at("20240705T100000"),
            Some("Europe/Berlin".into()),
        ));
        assert!(!floating);
        assert_eq!(u.naive_utc(), at("20240705T080000"));
        // 02:30 on 31 March 2024 does not exist in Berlin: offset before (+1).
        let u = z
            .local_to_utc(at("20240331T023000"), "Europe/Berlin")
            .unwrap();
        assert_eq!(u.naive_utc(), at("20240331T013000"));
        // 02:30 on 27 October 2024 occurs twice: the first (+2).
        let u = z
            .local_to_utc(at("20241027T023000"), "Europe/Berlin")
            .unwrap();
        assert_eq!(u.naive_utc(), at("20241027T003000"));
    }

    #[test]
    fn a_custom_vtimezone_is_followed() {
        let text = "BEGIN:VTIMEZONE\nTZID:Custom Eastern\nBEGIN:STANDARD\nDTSTART:19701101T020000\n\
                    RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\nTZOFFSETFROM:-0400\nTZOFFSETTO:-0500\n\
                    END:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700308T020000\n\
                    RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\nTZOFFSETFROM:-0500\nTZOFFSETTO:-0400\n\
                    END:DAYLIGHT\nEND:VTIMEZONE\n";
        let comps = icalendar::parser::read_calendar_simple(text).unwrap();
        let z = Zones::new(comps.iter());
        let l = |s| z.local_to_utc(at(s), "Custom Eastern").unwrap().naive_utc();
        assert_eq!(l("20240115T090000"), at("20240115T140000"));
        assert_eq!(l("20240715T090000"), at("20240715T130000"));
        // The day after the change in March 2024 (10 March).
        assert_eq!(l("20240311T090000"), at("20240311T130000"));
        assert_eq!(l("20240309T090000"), at("20240309T140000"));
        assert_eq!(
            z.utc_to_local(at("20240715T130000"), "Custom Eastern"),
            Some(at("20240715T090000"))
        );
        // Unknown: floating.
        assert!(
            z.to_utc(&When::Local(at("20240115T090000"), Some("Nowhere".into())))
                .1
        );
    }
}
