//! Mail, calendars and drive documents in one index through the CLI
//! (`sealdex index MAIL CALENDAR --drive DIR`): `kind:` tells them apart
//! in both search modes, and no word of any of them is left in clear on
//! disk (the canary check of the security model, for events and files).
#![cfg(all(feature = "calendar", feature = "drive"))]

mod common;
mod docs_fixtures;

use std::path::Path;

use common::*;

const CALENDAR: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Canarycalnamevx\r\n\
BEGIN:VEVENT\r\nUID:canaryuidqw@example.org\r\n\
DTSTART;TZID=Europe/Paris:20240305T140000\r\nDTEND;TZID=Europe/Paris:20240305T150000\r\n\
SUMMARY:Canarysummaryzb meeting\r\nDESCRIPTION:About the canarydescjq plan\r\n\
LOCATION:Canarylocationwp hall\r\n\
ORGANIZER;CN=Canaryorgnamekf:mailto:canaryorgaddr@example.org\r\n\
ATTENDEE;CN=Canaryattendeeyh:mailto:canaryattaddr@example.org\r\n\
CATEGORIES:Canarycategoryux\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const MAIL: &str = "From: Canarymailfromrt <canarymailaddr@example.org>\r\n\
To: bob@example.org\r\nSubject: canarymailsubjgd\r\nDate: Mon, 4 Mar 2024 10:00:00 +0000\r\n\
Message-ID: <canarymsgid@example.org>\r\n\r\nThe canarymailbodyhs is here.\r\n";

/// What `sealdex count QUERY --mode MODE` prints.
fn count(dir: &Path, q: &str, mode: &str) -> u64 {
    let out = run(sealdex(dir).args(["count", q, "--mode", mode]));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{q} --mode {mode}: {out:?}"))
}

#[test]
fn mail_calendars_and_drive_share_an_index_and_nothing_is_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = tmp.path().join("calendars");
    std::fs::create_dir_all(cal.join("canarycaldirxp")).unwrap();
    std::fs::write(cal.join("canarycaldirxp/canarycalfilebn.ics"), CALENDAR).unwrap();
    let mail = tmp.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::write(mail.join("m1.eml"), MAIL).unwrap();
    let drive = tmp.path().join("drive");
    docs_fixtures::drive(&drive, "canarydrv", 100 << 20);
    std::fs::create_dir_all(drive.join("canarydirvm")).unwrap();
    std::fs::write(drive.join("canarydirvm/canaryfilenl.txt"), "plain").unwrap();

    let dir = tmp.path().join("idx");
    // A single .ics file is recognised too (by its extension), and a
    // calendar folder by its content.
    ok(sealdex(&dir)
        .arg("index")
        .arg(&mail)
        .arg(&cal)
        .arg("--drive")
        .arg(&drive));
    let s = stats(&dir);
    // 1 mail, 3 events (a series of 3), 7 documents; the image and the
    // 100 MiB file are skipped.
    assert_eq!(s["messages"], 11, "{s}");
    ok(sealdex(&dir).arg("verify"));
    for mode in ["forward", "inverted"] {
        assert_eq!(count(&dir, "kind:mail", mode), 1, "{mode}");
        assert_eq!(count(&dir, "kind:event", mode), 3, "{mode}");
        assert_eq!(count(&dir, "kind:file", mode), 7, "{mode}");
        assert_eq!(count(&dir, "-kind:mail", mode), 10, "{mode}");
        let q = "kind:event location:canarylocationwp in:canarycalnamevx after:2024-03-10";
        assert_eq!(count(&dir, q, mode), 2, "{mode}");
        let q = "kind:file filename:canarydirvm label:text/plain";
        assert_eq!(count(&dir, q, mode), 1, "{mode}");
    }
    let out = ok(sealdex(&dir).args(["failures", "--json"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("skipped: a .jpeg file"), "{text}");
    assert!(text.contains("exceeds"), "{text}");
    // An incremental run, then a new passphrase: still nothing in clear.
    ok(sealdex(&dir)
        .arg("index")
        .arg(&mail)
        .arg(&cal)
        .arg("--drive")
        .arg(&drive));
    ok(sealdex(&dir)
        .arg("passwd")
        .env("SEALDEX_NEW_PASSPHRASE", "new-Kp4-canary-phrase"));

    let words = [
        // The event: every field, its calendar, file and directory names.
        "canarycalnamevx",
        "canaryuidqw",
        "canarysummaryzb",
        "canarydescjq",
        "canarylocationwp",
        "canaryorgnamekf",
        "canaryorgaddr@example.org",
        "canaryattendeeyh",
        "canaryattaddr@example.org",
        "canarycategoryux",
        "canarycaldirxp",
        "canarycalfilebn",
        // The documents: text, titles, authors, directory and file names.
        "canarydrvtxt",
        "canarydrvmd",
        "canarydrvmdtitle",
        "canarydrvhtml",
        "canarydrvpdf",
        "canarydrvpdftitle",
        "canarydrvpdfauthor",
        "canarydrvdocx",
        "canarydrvdocxtitle",
        "canarydrvdocxauthor",
        "canarydrvodt",
        "canarydrvodttitle",
        "canarydrvodtauthor",
        "canarydirvm",
        "canaryfilenl",
        "q3-summary",
        // The mail.
        "canarymailfromrt",
        "canarymailsubjgd",
        "canarymailbodyhs",
        "canarymsgid",
        PASSPHRASE,
        "new-Kp4-canary-phrase",
    ];
    assert_no_plaintext(&dir, &words);
}

#[test]
fn a_single_ics_file_is_a_calendar_and_a_bad_drive_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // No extension: told by its content.
    let file = tmp.path().join("exported-calendar");
    std::fs::write(&file, CALENDAR).unwrap();
    let dir = tmp.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&file));
    assert_eq!(stats(&dir)["messages"], 3);
    assert_eq!(count(&dir, "kind:event", "forward"), 3);
    // --drive on something that is not a directory: an error before any
    // index is created.
    let other = tmp.path().join("idx2");
    let out = run(sealdex(&other).arg("index").arg("--drive").arg(&file));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--drive"));
    assert!(!other.exists());
    // An empty calendar folder: nothing found, said as such.
    let empty = tmp.path().join("empty-cal");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("tz.ics"), "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").unwrap();
    let out = run(sealdex(&tmp.path().join("idx3")).arg("index").arg(&empty));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no calendar events found in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
