//! Calendars from iCalendar files (feature `calendar`): a hand-written
//! calendar folder in `tests/data/calendar` (an Outlook-style custom
//! VTIMEZONE, a Thunderbird-style TZID, a weekly series with an EXDATE and
//! an override, a task, an all-day event, a broken event, a calendar file
//! without an extension beside a text file that is not one), searched in
//! both modes; then the real-world `.ics` files of the Python `icalendar`
//! package's test suite (`scripts/fetch-corpora.sh icalendar`), none of
//! which may panic or stop a run.
#![cfg(feature = "calendar")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use sealdex::backends::Ics;
use sealdex::calendar::IcsPassThrough;
use sealdex::{ContentKind, Credential, Index, SecretKey, Source};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x3c; 32]))
}

use common::both_modes_config as config;

/// The ids a query returns, after checking that both modes agree.
fn both(index: &Index, q: &str) -> BTreeSet<String> {
    common::both(index, q).into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn copy_fixture(to: &Path) {
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendar"),
        to,
    );
}

const REVIEW: &str = "work.ics#review-1@example.org";
const STANDUP: &str = "work.ics#standup@example.org";
const STANDUP_25: &str = "work.ics#standup@example.org@20240325T130000Z";
const STANDUP_MOVED: &str = "work.ics#standup@example.org@20240318T130000Z";
const TODO: &str = "work.ics#expenses@example.org";
const HOLIDAY: &str = "work.ics#holiday@example.org";
const DENTIST: &str = "personal/home#dentist@example.org";

#[test]
fn a_calendar_folder_is_indexed_and_searched_in_both_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = tmp.path().join("cal");
    copy_fixture(&cal);
    let index = Index::create(&tmp.path().join("idx"), &cred(), config()).unwrap();
    let mut source = Ics::open(&cal).unwrap();
    let name = source.name().to_owned();
    let report = index
        .index(&mut source, &IcsPassThrough::default(), &Default::default())
        .unwrap();
    index.wait_for_inverted().unwrap();
    assert_eq!((report.stored, report.failed), (7, 1), "{report:?}");
    // The broken event is a failure with a reason that quotes no content.
    let failures = index.failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].message.id, "work.ics#broken-1@example.org");
    assert!(
        failures[0].detail.contains("END:VALARM without a BEGIN"),
        "{:?}",
        failures[0]
    );

    let all = set(&[
        REVIEW,
        STANDUP,
        STANDUP_25,
        STANDUP_MOVED,
        TODO,
        HOLIDAY,
        DENTIST,
    ]);
    assert_eq!(both(&index, "kind:event"), all);
    assert!(both(&index, "kind:mail OR kind:file").is_empty());
    assert_eq!(both(&index, "location:harbour"), set(&[REVIEW]));
    assert_eq!(both(&index, "location:paris"), set(&[DENTIST]));
    assert_eq!(both(&index, "to:carol"), set(&[REVIEW]));
    assert_eq!(both(&index, "from:\"alice archer\""), set(&[REVIEW]));
    assert_eq!(both(&index, "roadmap"), set(&[REVIEW]));
    // The series: first instance, one later occurrence (the EXDATE left
    // out), and the override instead of the occurrence it replaces.
    assert_eq!(
        both(&index, "standup"),
        set(&[STANDUP, STANDUP_25, STANDUP_MOVED])
    );
    assert_eq!(both(&index, "standup after:2024-03-20"), set(&[STANDUP_25]));
    assert_eq!(both(&index, "allhands"), set(&[STANDUP_MOVED]));
    // The rule is kept with the first instance.
    assert_eq!(both(&index, "\"freq weekly\""), set(&[STANDUP]));
    assert_eq!(both(&index, "label:todo"), set(&[TODO]));
    assert_eq!(both(&index, "label:finance"), set(&[TODO]));
    assert_eq!(both(&index, "in:work").len(), 6);
    assert_eq!(both(&index, "in:home"), set(&[DENTIST]));
    assert!(
        both(&index, "milk").is_empty(),
        "notes.txt is not a calendar"
    );

    // Times in UTC: a custom (Outlook) zone, an IANA zone behind a vendor
    // prefix across a DST change, an all-day date, a duration.
    let rec = |id: &str| index.get_by_id(&name, id).unwrap().unwrap();
    let r = rec(REVIEW);
    assert_eq!(r.kind, ContentKind::Event);
    assert_eq!((r.timestamp, r.end), (Some(1709643600), Some(1709647200)));
    assert_eq!(r.from, "Alice Archer <alice@example.org>");
    assert_eq!(
        r.to,
        "Bob Baker <bob@example.org>\nCarol Cook <carol@example.org>"
    );
    assert!(
        r.body.contains("roadmap, then the open\n questions"),
        "{:?}",
        r.body
    );
    assert_eq!(rec(STANDUP).timestamp, Some(1709560800)); // 09:00 EST
    assert_eq!(rec(STANDUP_25).timestamp, Some(1711371600)); // 09:00 EDT
    assert_eq!(rec(STANDUP_MOVED).timestamp, Some(1710770400)); // 10:00 EDT
    assert_eq!(rec(STANDUP_25).end, Some(1711371600 + 900));
    assert_eq!(
        (rec(HOLIDAY).timestamp, rec(HOLIDAY).end),
        (Some(1711929600), Some(1711929600 + 86400))
    );
    assert_eq!(rec(TODO).timestamp, Some(1709917200)); // its DUE
    assert_eq!(
        (rec(DENTIST).timestamp, rec(DENTIST).end),
        (Some(1710230400), Some(1710230400 + 2700))
    );
    assert_eq!(rec(DENTIST).location, "Rue de Rivoli 12, Paris");

    // A second run with nothing changed stores nothing; an edited event is
    // the only one stored again; a removed calendar's events are deleted.
    let report = index
        .index(&mut source, &IcsPassThrough::default(), &Default::default())
        .unwrap();
    assert_eq!((report.stored, report.deleted), (0, 0), "{report:?}");
    let work = cal.join("work.ics");
    let text = std::fs::read_to_string(&work).unwrap();
    std::fs::write(&work, text.replace("Harbour room", "Lighthouse room")).unwrap();
    std::fs::remove_file(cal.join("personal/home")).unwrap();
    let report = index
        .index(&mut source, &IcsPassThrough::default(), &Default::default())
        .unwrap();
    index.wait_for_inverted().unwrap();
    assert_eq!((report.stored, report.deleted), (1, 1), "{report:?}");
    assert_eq!(both(&index, "location:lighthouse"), set(&[REVIEW]));
    assert!(both(&index, "harbour").is_empty());
    assert!(both(&index, "dentist").is_empty());
}

#[test]
fn a_bad_sync_token_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    let mut source = Ics::open(tmp.path().join("work.ics")).unwrap();
    let e = source
        .changes(&sealdex::SyncToken(b"\x01\x03ics garbage".to_vec()))
        .unwrap_err();
    assert_eq!(e.kind(), sealdex::SourceErrorKind::Malformed);
    // One file: its events only, named by the file.
    assert!(source.name().starts_with("ics:"));
    assert_eq!(source.list(None, 100).unwrap().total, Some(7));
}

/// The `.ics` files of the Python `icalendar` package's test suite (real
/// exports from Google, Outlook, Apple, Thunderbird and broken ones): each
/// file's events are indexed or fail one by one, and nothing panics.
#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn icalendar_test_suite_files_index_without_a_panic() {
    let Some(corpus) = common::corpora("icalendar") else {
        return;
    };
    let files = common::count_files(&corpus);
    assert!(files >= 100, "{files} .ics files in {}", corpus.display());
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(&tmp.path().join("idx"), &cred(), config()).unwrap();
    let mut source = Ics::open(&corpus).unwrap();
    let report = index
        .index(&mut source, &IcsPassThrough::default(), &Default::default())
        .unwrap();
    index.wait_for_inverted().unwrap();
    eprintln!(
        "icalendar corpus: {files} files, {} events stored, {} failed",
        report.stored, report.failed
    );
    for f in index.failures().unwrap() {
        eprintln!("  failed: {}: {}", f.message.id, f.detail);
    }
    assert!(report.stored >= 200, "{report:?}");
    // Most of what the files hold is readable: failures are the exception.
    assert!(report.failed * 5 < report.stored, "{report:?}");
    // A weekly series from 27 March to UNTIL 3 July 2012 08:00Z (10:00 in
    // Vienna, so 3 July is in), less five EXDATEs: ten instances.
    let series = both(
        &index,
        "in:event_with_recurrence_exdates_on_different_lines",
    );
    assert_eq!(series.len(), 10, "{series:?}");
    // A time in the file's VTIMEZONE (Vienna, winter: UTC+1).
    let sprint: Vec<String> = both(&index, "\"artsprint 2012\"").into_iter().collect();
    assert_eq!(sprint.len(), 1, "{sprint:?}");
    let rec = index.get_by_id(source.name(), &sprint[0]).unwrap().unwrap();
    assert_eq!(
        (rec.timestamp, rec.end),
        (Some(1329123600), Some(1329498000))
    );
    let events = both(&index, "kind:event").len() as u64;
    assert_eq!(events, report.stored);
    assert!(both(&index, "kind:mail").is_empty());
}
