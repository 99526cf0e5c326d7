//! The CLI as people use it (issue 18), through the `sealdex` binary:
//! options anywhere on the line, hostile mail that must not reach the
//! terminal raw, closed pipes, bad paths and files that are not mail, exit
//! codes, `show`, `count`, `failures`, JSON output, columns, passphrases,
//! completions and the man page.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;

fn mail(n: u32, from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\n\
         To: Reader <reader@example.org>\r\n\
         Subject: {subject}\r\n\
         Date: Tue, 1 Oct 2024 10:{n:02}:00 +0000\r\n\
         Message-ID: <m{n}@example.org>\r\n\
         \r\n\
         {body}\r\n"
    )
}

/// A tree of five plain messages about linux and one about cooking, indexed.
fn indexed() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("mail");
    std::fs::create_dir_all(tree.join("inbox")).unwrap();
    for n in 0..5 {
        std::fs::write(
            tree.join("inbox").join(format!("{n}.eml")),
            mail(
                n,
                "Alice <alice@example.org>",
                &format!("linux kernel {n}"),
                "the linux kernel draft",
            ),
        )
        .unwrap();
    }
    std::fs::write(
        tree.join("inbox/cook.eml"),
        mail(9, "Bob <bob@example.org>", "dinner", "a recipe for soup"),
    )
    .unwrap();
    let dir = t.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&tree));
    (t, tree, dir)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn options_work_anywhere_on_the_line() {
    let (_t, _tree, dir) = indexed();
    // `--json` after the query: JSON, not a search for "linux --json".
    let out = ok(sealdex(&dir).args(["search", "linux", "--json"]));
    let v = json_lines(&out);
    assert_eq!(v.len(), 6, "{}", stdout(&out));
    assert!(v[..5].iter().all(|h| h["type"] == "hit"));
    assert_eq!(v[5]["type"], "summary");
    assert_eq!(v[5]["total"], 5);
    // `--limit 5` after the query limits; it does not search for "5".
    let out = ok(sealdex(&dir).args(["search", "linux", "--limit", "2", "--json"]));
    let v = json_lines(&out);
    assert_eq!(v.len(), 3);
    assert_eq!(v[2]["total"], 5);
    assert_eq!(v[2]["shown"], 2);
    assert!(v[2]["next"].is_string(), "a next cursor: {}", v[2]);
    let out = run(sealdex(&dir).args(["search", "is:unread", "--limit", "2"]));
    assert_eq!(out.status.code(), Some(1), "a tree has no unread flags");
    let out = ok(sealdex(&dir).args(["search", "-is:unread", "--limit", "2"]));
    assert_eq!(stdout(&out).lines().count(), 2);
    let out = ok(sealdex(&dir).args(["search", "from:alice", "--limit", "2"]));
    assert_eq!(stdout(&out).lines().count(), 2);
    // A leading exclusion is query text, not a flag cluster.
    let out = ok(sealdex(&dir).args(["count", "-linux", "--mode", "forward"]));
    assert_eq!(stdout(&out).trim(), "1");
    let out = ok(sealdex(&dir).args(["search", "-draft", "--json", "soup"]));
    assert_eq!(json_lines(&out).len(), 2);
    // After `--` everything is query text: this searches for "--json".
    let out = run(sealdex(&dir).args(["search", "--", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stdout(&out).starts_with('{'));
    // A misspelt option is an error, not query text.
    let out = run(sealdex(&dir).args(["search", "linux", "--lmit", "2"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--limit"), "{}", stderr(&out));
}

#[test]
fn exit_codes_and_query_errors() {
    let (_t, _tree, dir) = indexed();
    assert_eq!(
        run(sealdex(&dir).args(["search", "linux"])).status.code(),
        Some(0)
    );
    assert_eq!(
        run(sealdex(&dir).args(["search", "nosuchwordanywhere"]))
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(sealdex(&dir).args(["count", "nosuchwordanywhere"]))
            .status
            .code(),
        Some(1)
    );
    // A query error: exit 2, the query with a caret under the position.
    let out = run(sealdex(&dir).args(["search", "linux after:2024-13-01"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("query error at byte 12"), "{err}");
    assert_eq!(lines[1], "  linux after:2024-13-01");
    assert_eq!(lines[2], "              ^");
    // `NOT` typed as a word is refused with the way to exclude.
    let out = run(sealdex(&dir).args(["search", "linux NOT draft"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("-draft"), "{}", stderr(&out));
    assert!(stderr(&out).lines().nth(2) == Some("        ^"));
    // AND is an operator (a no-op beside the implicit AND).
    let out = ok(sealdex(&dir).args(["count", "linux AND kernel"]));
    assert_eq!(stdout(&out).trim(), "5");
    // An error that is not about the query: a wrong passphrase.
    let out = run(sealdex(&dir)
        .args(["search", "linux"])
        .env("SEALDEX_PASSPHRASE", "wrong"));
    assert_eq!(out.status.code(), Some(2));
    // No index at all.
    let out = run(sealdex(&dir.join("nothing-here")).args(["count", "linux"]));
    assert_eq!(out.status.code(), Some(2));
}

/// Every field of this mail carries escape sequences: the window title
/// (`ESC]0;…BEL`), clear screen (`ESC[2J`), red (`ESC[31m`), a C1 CSI, and
/// a right-to-left override; some raw, some in RFC 2047 encoded words.
#[test]
fn hostile_mail_never_reaches_the_terminal_raw() {
    const RAW: &str = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}[31m";
    const Q: &str = "=1B]0;PWNED=07=1B[2J=1B[31m=C2=9B=E2=80=AE";
    let t = tempfile::tempdir().unwrap();
    // The folder and the file name carry them too.
    let folder = t.path().join("mail").join(format!("box{RAW}"));
    std::fs::create_dir_all(&folder).unwrap();
    let hostile = format!(
        "From: =?utf-8?q?Eve{Q}?= <eve@example.org>\r\n\
         To: =?utf-8?q?Victim{Q}?= <v@example.org>\r\n\
         Cc: x{RAW}y <c@example.org>\r\n\
         Subject: hostile {RAW} =?utf-8?q?subject{Q}?=\r\n\
         Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\
         \r\n\
         --b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         hostile body {RAW} and \u{9b}31m and \u{202e}reversed\r\n\
         --b\r\n\
         Content-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"=?utf-8?q?hostile{Q}.pdf?=\"\r\n\
         \r\n\
         x\r\n\
         --b--\r\n"
    );
    std::fs::write(folder.join(format!("hostile{RAW}.eml")), &hostile).unwrap();
    // A file that is not mail, with a hostile name: its failure is listed.
    std::fs::write(folder.join(format!("bin{RAW}")), b"\x00\x01\x02").unwrap();
    let dir = t.path().join("idx");
    let index = ok(sealdex(&dir).arg("index").arg(t.path().join("mail")));

    let clean = |what: &str, bytes: &[u8]| {
        let s = String::from_utf8_lossy(bytes);
        for c in s.chars() {
            let control = (c < ' ' && c != '\n' && c != '\t')
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            assert!(!control, "{what}: U+{:04X} printed raw in {s:?}", c as u32);
        }
    };
    clean("index stderr", &index.stderr);
    for args in [
        vec!["search", "hostile"],
        vec!["search", "hostile", "--json"],
        vec!["search", "hostile", "--color", "never"],
        vec!["failures"],
        vec!["failures", "--json"],
        vec!["stats"],
    ] {
        let out = ok(sealdex(&dir).args(&args).env("COLUMNS", "300"));
        clean(&format!("{args:?} stdout"), &out.stdout);
        clean(&format!("{args:?} stderr"), &out.stderr);
        assert!(!out.stdout.is_empty(), "{args:?} printed nothing");
    }
    // The JSON is exact: the escapes decode to the original characters.
    let out = ok(sealdex(&dir).args(["search", "hostile", "--json"]));
    let hit = &json_lines(&out)[0];
    let subject = hit["subject"].as_str().unwrap();
    assert!(subject.contains(RAW), "{subject:?}");
    assert!(hit["from"].as_str().unwrap().contains("\u{9b}"));
    let location = hit["location"].as_str().unwrap().to_owned();
    assert!(location.contains(RAW));
    // `show`, by the location search printed, as text and as JSON.
    let out = ok(sealdex(&dir).args(["show", &location]));
    clean("show", &out.stdout);
    let text = stdout(&out);
    assert!(text.contains("hostile body"), "{text}");
    assert!(text.contains("␛]0;PWNED␇"), "visible stand-ins: {text}");
    let out = ok(sealdex(&dir).args(["show", "--json", &location]));
    clean("show --json", &out.stdout);
    let v = &json_lines(&out)[0];
    assert!(v["body"].as_str().unwrap().contains(RAW));
    assert!(v["attachments"][0].as_str().unwrap().contains("\u{202e}"));
    // An error that quotes the input.
    let out = run(sealdex(&dir).args(["show", &format!("nothing{RAW}")]));
    assert_eq!(out.status.code(), Some(1));
    clean("show error", &out.stderr);
    assert!(stderr(&out).contains("nothing␛"));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    // The demo prints after indexing; its reader is gone by then.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sealdex"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");

    // `search | head -1`: the reader leaves after one line.
    let (_t, _tree, dir) = indexed();
    let mut child = sealdex(&dir)
        .args(["search", "--all", "linux"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn bad_paths_create_nothing_and_non_mail_is_refused_by_content() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("idx");
    // A path that does not exist: an error, and no index left behind.
    let out = run(sealdex(&dir).arg("index").arg(t.path().join("nope")));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert!(!dir.exists(), "an index was created for a missing path");
    // A file that is neither an mbox nor a message: the same.
    let passwd = t.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let binary = t.path().join("ls");
    std::fs::write(&binary, b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
    for f in [&passwd, &binary] {
        let out = run(sealdex(&dir).arg("index").arg(f));
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("no mail found in"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.exists());
    }
    // An empty folder: "no mail found", non-zero.
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(sealdex(&dir).arg("index").arg(&empty));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no mail found in"),
        "{}",
        stderr(&out)
    );

    // A tree of a binary, random bytes, a plain text file and one mail:
    // one message stored, three refused with a reason each.
    let tree = t.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("program"), b"\x7fELF\x02\x01\x01\x00\x00\x00rest").unwrap();
    let mut x: u32 = 0x9e37_79b9;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 3) as u8
        })
        .collect();
    std::fs::write(tree.join("noise.bin"), &noise).unwrap();
    std::fs::write(tree.join("notes.txt"), "shopping list\nmilk\n").unwrap();
    std::fs::write(
        tree.join("real.eml"),
        mail(1, "a@example.org", "real one", "body"),
    )
    .unwrap();
    ok(sealdex(&dir).arg("index").arg(&tree));
    assert_eq!(stats(&dir)["messages"], 1);
    let out = ok(sealdex(&dir).args(["failures", "--json"]));
    let failures = json_lines(&out);
    assert_eq!(failures.len(), 3, "{}", stdout(&out));
    for f in &failures {
        let loc = f["location"].as_str().unwrap();
        assert!(loc.starts_with(&*tree.canonicalize().unwrap().to_string_lossy()));
        assert!(
            f["detail"].as_str().unwrap().starts_with("not mail: "),
            "{f}"
        );
    }
    let text = stdout(&ok(sealdex(&dir).arg("failures")));
    assert!(
        text.contains("notes.txt") && text.contains("header line"),
        "{text}"
    );
    assert!(text.contains("program") && text.contains("NUL"), "{text}");

    // A single message given as the path, with and without a `From ` line.
    let single = t.path().join("single.eml");
    std::fs::write(&single, mail(2, "b@example.org", "single one", "alone")).unwrap();
    let with_from = t.path().join("with-from.eml");
    std::fs::write(
        &with_from,
        format!(
            "From b@example.org Tue Oct  1 10:00:00 2024\n{}",
            mail(3, "b@example.org", "fromline one", "x")
        ),
    )
    .unwrap();
    ok(sealdex(&dir).arg("index").arg(&single).arg(&with_from));
    assert_eq!(stats(&dir)["messages"], 3);
    let out = ok(sealdex(&dir).args(["search", "subject:single", "--json"]));
    let hit = &json_lines(&out)[0];
    assert_eq!(
        hit["location"].as_str().unwrap(),
        single.canonicalize().unwrap().to_string_lossy()
    );
    ok(sealdex(&dir).args(["count", "subject:fromline"]));
}

#[test]
fn show_prints_the_message_and_search_fits_the_width() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("m");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(
        tree.join("a.eml"),
        "From: 山田太郎 <taro@example.jp>\r\nTo: Ann <ann@example.org>\r\nCc: Carl <carl@example.org>\r\n\
         Subject: 東京の会議 meeting agenda\r\nDate: Wed, 2 Oct 2024 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe meeting is in Tokyo.\r\nSecond line.\r\n\
         --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"agenda.pdf\"\r\n\r\nx\r\n--b--\r\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("b.eml"),
        mail(5, "Bob <bob@example.org>", "plain meeting notes", "meeting notes here and a long line of words that goes on and on past any terminal width for sure"),
    )
    .unwrap();
    let dir = t.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&tree));
    let a = tree.canonicalize().unwrap().join("a.eml");

    let out = ok(sealdex(&dir).args(["show", a.to_str().unwrap()]));
    let text = stdout(&out);
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Location:"), a.to_string_lossy());
    assert_eq!(field("Date:"), "2024-10-02T09:00:00Z");
    assert_eq!(field("From:"), "山田太郎 <taro@example.jp>");
    assert_eq!(
        field("To/Cc:"),
        "Ann <ann@example.org>, Carl <carl@example.org>"
    );
    assert_eq!(field("Subject:"), "東京の会議 meeting agenda");
    assert_eq!(field("Attachments:"), "agenda.pdf");
    assert_eq!(field("Flags:"), "attachment");
    assert!(
        text.contains("\n\nThe meeting is in Tokyo.\nSecond line."),
        "{text}"
    );
    // A relative path works too, and an unknown id exits 1.
    let out = ok(sealdex(&dir)
        .current_dir(&tree)
        .args(["show", "--json", "a.eml"]));
    let v = &json_lines(&out)[0];
    assert_eq!(v["subject"], "東京の会議 meeting agenda");
    assert_eq!(v["flags"][0], "attachment");
    assert_eq!(v["kind"], "mail");
    assert!(v["body"].as_str().unwrap().contains("Second line."));
    let out = run(sealdex(&dir).args(["show", "/no/such/file.eml"]));
    assert_eq!(out.status.code(), Some(1));

    // One line per hit, within COLUMNS, the date column aligned even
    // though one sender is written in wide characters.
    let out = ok(sealdex(&dir)
        .args(["search", "meeting", "--color", "never"])
        .env("COLUMNS", "120"));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let cols = |l: &str| unicode_width::UnicodeWidthStr::width(l);
    let loc_width = cols(&a.to_string_lossy());
    for l in &lines {
        assert!(cols(l) <= 120.max(loc_width + 60), "too wide: {l}");
        assert!(l.contains("2024-10-0"), "{l}");
    }
    let date_col = |l: &str| cols(&l[..l.find("2024-10-0").unwrap()]);
    assert_eq!(date_col(lines[0]), date_col(lines[1]), "{text}");
    let subject_col = |l: &str, s: &str| cols(&l[..l.find(s).unwrap()]);
    // Newest first: the wide sender's message is the first line.
    assert_eq!(
        subject_col(lines[0], "東京") - date_col(lines[0]),
        subject_col(lines[1], "plain meeting") - date_col(lines[1]),
        "subjects aligned after a wide sender:\n{text}"
    );
    assert!(lines.iter().any(|l| l.starts_with(&*a.to_string_lossy())));

    // Colour: never by default into a pipe, always when asked, and
    // NO_COLOR does not override an explicit --color always.
    let plain = ok(sealdex(&dir).args(["search", "meeting"]));
    assert!(!plain.stdout.contains(&0x1b));
    let coloured = ok(sealdex(&dir)
        .args(["search", "meeting", "--color", "always"])
        .env("NO_COLOR", "1"));
    assert!(coloured.stdout.contains(&0x1b));
}

#[test]
fn passphrase_rules_for_a_new_index() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("m");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.eml"), mail(1, "a@example.org", "x", "y")).unwrap();
    let dir = t.path().join("idx");
    // Empty: refused, nothing created.
    let out = run(sealdex(&dir)
        .arg("index")
        .arg(&tree)
        .env("SEALDEX_PASSPHRASE", ""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("empty passphrase"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("keyring").exists());
    // Weak: a warning, and the index is made.
    let out = ok(sealdex(&dir)
        .arg("index")
        .arg(&tree)
        .env("SEALDEX_PASSPHRASE", "password1"));
    assert!(stderr(&out).contains("weak"), "{}", stderr(&out));
    // Opening an existing index never warns.
    let out = ok(sealdex(&dir)
        .arg("stats")
        .env("SEALDEX_PASSPHRASE", "password1"));
    assert!(!stderr(&out).contains("weak"));
    // A strong one: no warning.
    let dir2 = t.path().join("idx2");
    let out = ok(sealdex(&dir2).arg("index").arg(&tree));
    assert!(!stderr(&out).contains("weak"), "{}", stderr(&out));
}

/// On a terminal the new passphrase is asked twice; two that differ
/// create nothing. `script` gives the command a terminal.
#[test]
fn a_new_passphrase_is_asked_twice_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("this test needs util-linux's `script` to give sealdex a terminal");
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("m");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.eml"), mail(1, "a@example.org", "x", "y")).unwrap();
    let typed = |dir: &Path, input: &str| -> (bool, String) {
        let cmd = format!(
            "{} --dir {} index {}",
            env!("CARGO_BIN_EXE_sealdex"),
            dir.display(),
            tree.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("SEALDEX_PASSPHRASE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // Each answer after its prompt has been shown.
            for line in input.lines() {
                std::thread::sleep(std::time::Duration::from_millis(700));
                stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let out = child.wait_with_output().unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out));
        (out.status.success(), all)
    };
    let dir = t.path().join("differ");
    let (ok_, said) = typed(&dir, "first-Zq9-phrase-xy\nsecond-Zq9-phrase-xy");
    assert!(!ok_, "{said}");
    assert!(said.contains("New passphrase again"), "{said}");
    assert!(said.contains("differ"), "{said}");
    assert!(!dir.join("keyring").exists());
    let dir = t.path().join("same");
    let (ok_, said) = typed(&dir, "same-Zq9-phrase-xyw\nsame-Zq9-phrase-xyw");
    assert!(ok_, "{said}");
    ok(sealdex(&dir)
        .arg("verify")
        .env("SEALDEX_PASSPHRASE", "same-Zq9-phrase-xyw"));
}

#[test]
fn completions_and_man_page_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out =
            ok(std::process::Command::new(env!("CARGO_BIN_EXE_sealdex"))
                .args(["completions", shell]));
        let s = stdout(&out);
        for word in ["search", "failures", "json", "color"] {
            assert!(s.contains(word), "{shell}: {word} missing");
        }
    }
    let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_sealdex")).arg("man"));
    let s = stdout(&out);
    assert!(s.starts_with(".ie") || s.contains(".TH sealdex"), "{s}");
    assert!(s.contains("search") && s.contains("SEALDEX_DIR"));
}

/// The same mail in an mbox archive and a Maildir (same Message-ID) is one
/// hit that lists both locations; a different mail with the same subject
/// stays a hit of its own.
#[test]
fn copies_of_one_message_are_one_hit_with_their_locations() {
    let t = tempfile::tempdir().unwrap();
    let m = mail(
        7,
        "Alice <alice@example.org>",
        "quarterly duplicate",
        "twice stored",
    );
    let mbox = t.path().join("archive.mbox");
    let other = mail(
        8,
        "Alice <alice@example.org>",
        "quarterly duplicate",
        "a different one",
    )
    .replace("<m8@example.org>", "<other@example.org>");
    std::fs::write(
        &mbox,
        format!("From alice@example.org Tue Oct  1 10:07:00 2024\n{m}\nFrom alice@example.org Tue Oct  1 10:08:00 2024\n{other}"),
    )
    .unwrap();
    let md = t.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("cur/1727777220.dup.host:2,S"), &m).unwrap();
    let dir = t.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&mbox).arg(&md));
    assert_eq!(stats(&dir)["messages"], 3);

    let out = ok(sealdex(&dir).args(["search", "--json", "subject:quarterly"]));
    let lines = json_lines(&out);
    let hits: Vec<&serde_json::Value> = lines.iter().filter(|v| v["type"] == "hit").collect();
    assert_eq!(hits.len(), 2, "{}", stdout(&out));
    let dup = hits
        .iter()
        .find(|h| h["message_id"] == "m7@example.org")
        .expect("the duplicated message");
    let locations: Vec<&str> = dup["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(locations.len(), 2, "{locations:?}");
    assert!(locations.iter().any(|l| l.starts_with("mbox:")));
    assert!(locations.iter().any(|l| l.starts_with("maildir:")));
    let summary = lines.last().unwrap();
    assert_eq!(summary["total"], 3, "the total counts records");
    assert_eq!(summary["folded"], 1);
    // Each location shows the message.
    for l in locations {
        ok(sealdex(&dir).args(["show", l]));
    }
    // In text: one line for it, naming the other copy.
    let out = ok(sealdex(&dir).args(["search", "subject:quarterly"]));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("(also "), "{text}");
    assert!(stderr(&out).contains("folded"));
}
