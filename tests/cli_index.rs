//! The foundation, end to end through the `sealdex` binary: indexing real
//! mail, no plaintext on disk, crash and resume, tampering, bad input,
//! passphrases.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const CANARIES: &[&str] = &[
    "canarybodyxq",
    "canarysubjqz",
    "canaryfromzk",
    "canarytowvq",
    "canaryfolderjx",
    "canaryattachyp",
    "canaryhtmlkw",
    "canarylabelmv",
];

fn canary_mail(n: u32) -> String {
    format!(
        "From: \"Canaryfromzk Sender\" <sender{n}@example.org>\r\n\
         To: \"Canarytowvq Person\" <canarytowvq@example.net>\r\n\
         Subject: about canarysubjqz number {n}\r\n\
         Date: Tue, 1 Oct 2024 10:0{n}:00 +0000\r\n\
         Message-ID: <canary{n}@example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: multipart/alternative; boundary=\"b2\"\r\n\
         \r\n\
         --b2\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         The canarybodyxq is in the body.\r\n\
         --b2\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <p>The <b>canaryhtmlkw</b> is in the html.</p>\r\n\
         --b2--\r\n\
         --b1\r\n\
         Content-Type: application/pdf; name=\"canaryattachyp.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"canaryattachyp.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n\
         --b1--\r\n"
    )
}

#[test]
fn no_plaintext_on_disk() {
    let mail = tempfile::tempdir().unwrap();
    // A directory tree whose folder name is a canary...
    let tree = mail.path().join("tree");
    std::fs::create_dir_all(tree.join("canaryfolderjx")).unwrap();
    for n in 0..3 {
        std::fs::write(
            tree.join("canaryfolderjx").join(format!("m{n}.eml")),
            canary_mail(n),
        )
        .unwrap();
    }
    // ...and a Maildir with a canary folder and a flagged, unread message.
    let md = mail.path().join("maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
        std::fs::create_dir_all(md.join(".canarylabelmv").join(sub)).unwrap();
    }
    std::fs::write(md.join("new/1700000000.canary1.host"), canary_mail(4)).unwrap();
    std::fs::write(
        md.join(".canarylabelmv/cur/1700000001.canary2.host:2,F"),
        canary_mail(5),
    )
    .unwrap();

    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&tree).arg(&md));
    let s = stats(&dir);
    assert_eq!(s["messages"], 5, "{s}");
    ok(sealdex(&dir).arg("verify"));
    // Re-index (an incremental run) and change the passphrase: still nothing in clear.
    ok(sealdex(&dir).arg("index").arg(&tree).arg(&md));
    ok(sealdex(&dir)
        .arg("passwd")
        .env("SEALDEX_NEW_PASSPHRASE", "new-Zq9-canary-phrase"));

    let mut words: Vec<&str> = CANARIES.to_vec();
    words.push(PASSPHRASE);
    words.push("new-Zq9-canary-phrase");
    // Message ids and addresses must not leak either.
    words.push("canary1@example.org");
    words.push("1700000000.canary1.host");
    assert_no_plaintext(&dir, &words);
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn spamassassin_corpus_indexes_completely() {
    let Some(corpus) = corpora("spamassassin") else {
        return;
    };
    let total = count_files(&corpus);
    assert_eq!(total, 6046);
    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    let out = ok(sealdex(&dir).arg("index").arg(&corpus));
    let s = stats(&dir);
    let messages = s["messages"].as_u64().unwrap();
    let failures = s["failures"].as_u64().unwrap();
    assert_eq!(
        messages + failures,
        total as u64,
        "every message is stored or recorded as a failure: {s}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Real mail parses: only a handful of files in the corpus are unusable.
    assert!(messages >= 6000, "{s}");
    if failures > 0 {
        assert!(!s["failures_by_reason"].as_object().unwrap().is_empty());
    }
    let v = ok(sealdex(&dir).arg("verify"));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("ok:"));

    // Running again changes nothing and duplicates nothing.
    ok(sealdex(&dir).arg("index").arg(&corpus));
    assert_eq!(stats(&dir)["messages"].as_u64().unwrap(), messages);
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn sigkill_then_resume_ends_with_the_full_set() {
    let Some(corpus) = corpora("spamassassin") else {
        return;
    };
    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    // Create the index first so that every kill lands inside indexing (an
    // empty folder creates it and says "no mail found": exit 2).
    let created = run(sealdex(&dir)
        .arg("index")
        .arg(index.path().join("empty-mailbox"))
        .tap_mkdir());
    assert_eq!(created.status.code(), Some(2));
    assert!(dir.join("keyring").is_file());
    let mut killed_mid_run = 0;
    for delay_ms in [150u64, 300, 450, 700, 1000] {
        let mut child = sealdex(&dir)
            .args(["index", "--batch", "64"])
            .arg(&corpus)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        // SIGKILL: no destructor, no flush, no goodbye.
        let _ = child.kill();
        let _ = child.wait();
        // Whatever was reported done is intact.
        ok(sealdex(&dir).arg("verify"));
    }
    assert!(
        killed_mid_run > 0,
        "no kill landed mid-run; the corpus indexed too fast"
    );
    ok(sealdex(&dir).arg("index").arg(&corpus));
    let s = stats(&dir);
    assert_eq!(
        s["messages"].as_u64().unwrap() + s["failures"].as_u64().unwrap(),
        6046,
        "{s}"
    );
    ok(sealdex(&dir).arg("verify"));
}

trait TapMkdir {
    fn tap_mkdir(&mut self) -> &mut Self;
}

impl TapMkdir for std::process::Command {
    /// Creates the last argument as a directory before running.
    fn tap_mkdir(&mut self) -> &mut Self {
        if let Some(last) = self.get_args().last() {
            let _ = std::fs::create_dir_all(last);
        }
        self
    }
}

fn small_tree(root: &Path, n: u32) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..n {
        std::fs::write(root.join(format!("m{i}.eml")), canary_mail(i % 10)).unwrap();
    }
}

#[test]
fn wrong_passphrase_and_passwd() {
    let mail = tempfile::tempdir().unwrap();
    small_tree(mail.path(), 3);
    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(mail.path()));

    let out = run(sealdex(&dir)
        .arg("stats")
        .env("SEALDEX_PASSPHRASE", "not it"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));

    ok(sealdex(&dir)
        .arg("passwd")
        .env("SEALDEX_NEW_PASSPHRASE", "second"));
    let out = run(sealdex(&dir).arg("stats"));
    assert!(!out.status.success(), "the old passphrase still works");
    let out = ok(sealdex(&dir)
        .args(["stats", "--json"])
        .env("SEALDEX_PASSPHRASE", "second"));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["messages"], 3);

    // A key file of the wrong length is a clear error.
    let kf = index.path().join("short.key");
    std::fs::write(&kf, [1u8; 16]).unwrap();
    let out = run(sealdex(&dir).arg("--key-file").arg(&kf).arg("stats"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 raw bytes"));
    // Switching to a 32-byte key file.
    let kf = index.path().join("app.key");
    std::fs::write(&kf, [7u8; 32]).unwrap();
    ok(sealdex(&dir)
        .env("SEALDEX_PASSPHRASE", "second")
        .arg("passwd")
        .arg("--new-key-file")
        .arg(&kf));
    ok(sealdex(&dir).arg("--key-file").arg(&kf).arg("verify"));
}

#[test]
fn bad_input_is_recorded_and_loses_nothing() {
    let mail = tempfile::tempdir().unwrap();
    let good = mail.path().join("good");
    small_tree(&good, 5);
    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    ok(sealdex(&dir).arg("index").arg(&good));
    assert_eq!(stats(&dir)["messages"], 5);

    let bad = mail.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("empty.eml"), b"").unwrap();
    std::fs::write(
        bad.join("invalid-utf8.eml"),
        b"Subject: \xff\xfe\xfd\r\nFrom: \xc3\x28@x\r\n\r\nbody \xe2\x28\xa1 text\r\n",
    )
    .unwrap();
    let mut noise = Vec::with_capacity(4096);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    std::fs::write(bad.join("random.bin"), &noise).unwrap();
    // A 20 MB message: a long plain-text body.
    let mut huge = b"From: big@example.org\r\nSubject: huge hugemessageword\r\n\r\n".to_vec();
    while huge.len() < 20 << 20 {
        huge.extend_from_slice(b"lorem ipsum dolor sit amet consectetur adipiscing elit\r\n");
    }
    std::fs::write(bad.join("huge.eml"), &huge).unwrap();
    let mut expected = 4;
    // The mail-parser crate's edge cases too, when the corpora are there.
    if let Some(mp) = corpora_if_set("mailparser") {
        for set in std::fs::read_dir(&mp).unwrap() {
            let set = set.unwrap().path();
            let dst = bad.join(set.file_name().unwrap());
            std::fs::create_dir_all(&dst).unwrap();
            for f in std::fs::read_dir(&set).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
                expected += 1;
            }
        }
    }
    ok(sealdex(&dir).arg("index").arg(&bad));
    let s = stats(&dir);
    assert_eq!(
        s["messages"].as_u64().unwrap() + s["failures"].as_u64().unwrap(),
        5 + expected,
        "{s}"
    );
    ok(sealdex(&dir).arg("verify"));
    // Running again retries nothing yet (backoff) and still loses nothing.
    ok(sealdex(&dir).arg("index").arg(&good).arg(&bad));
    let s2 = stats(&dir);
    assert_eq!(s2["messages"], s["messages"]);
}

#[test]
fn file_level_tampering_is_a_clear_error_never_a_panic() {
    let mail = tempfile::tempdir().unwrap();
    small_tree(mail.path(), 40);
    let index = tempfile::tempdir().unwrap();
    let pristine = index.path().join("pristine");
    ok(sealdex(&pristine).arg("index").arg(mail.path()));

    let db_file = |dir: &Path| dir.join("db").join("db");
    let len = std::fs::metadata(db_file(&pristine)).unwrap().len() as usize;
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let mut cases: Vec<(String, Damage)> = Vec::new();
    for frac in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let pos = (len as f64 * frac) as usize;
        cases.push((
            format!("flip@{pos}"),
            Box::new(move |b: &mut Vec<u8>| b[pos] ^= 0x40),
        ));
    }
    for frac in [0.2, 0.5, 0.8] {
        let keep = (len as f64 * frac) as usize;
        cases.push((
            format!("truncate@{keep}"),
            Box::new(move |b: &mut Vec<u8>| b.truncate(keep)),
        ));
    }
    let mut detected = 0;
    for (name, damage) in cases {
        let dir = index.path().join(&name);
        copy_dir(&pristine, &dir);
        let mut bytes = std::fs::read(db_file(&dir)).unwrap();
        damage(&mut bytes);
        std::fs::write(db_file(&dir), bytes).unwrap();
        // Neither verify nor a read may panic; verify either passes (the
        // damage hit padding sled never reads) or fails with a message.
        let v = run(sealdex(&dir).arg("verify"));
        let s = run(sealdex(&dir).args(["stats", "--json"]));
        if !v.status.success() {
            detected += 1;
            assert!(
                !String::from_utf8_lossy(&v.stderr).trim().is_empty(),
                "{name}: silent failure"
            );
        } else {
            // If verify passed, the data must be complete and correct.
            let st: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
            assert_eq!(
                st["messages"], 40,
                "{name}: verify passed on a store that lost data"
            );
        }
    }
    assert!(detected > 0, "no file-level damage was detected at all");
    // The keyring: a flipped bit in the wrapped key is a wrong key, never a panic.
    let dir = index.path().join("keyring-flip");
    copy_dir(&pristine, &dir);
    let kr = dir.join("keyring");
    let mut b = std::fs::read(&kr).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&kr, b).unwrap();
    let out = run(sealdex(&dir).arg("verify"));
    assert!(!out.status.success());
}

/// With the inverted index on (the CLI's default), no canary reaches the
/// disk after many commits and the merges they set off: each run adds mail,
/// so each commits new segments, and tantivy merges them past eight.
#[test]
fn no_plaintext_after_inverted_commits_and_merges() {
    let mail = tempfile::tempdir().unwrap();
    let tree = mail.path().join("tree");
    let index = tempfile::tempdir().unwrap();
    let dir = index.path().join("idx");
    for run in 0..12u32 {
        let folder = tree.join(format!("canaryfolderjx{run}"));
        std::fs::create_dir_all(&folder).unwrap();
        for n in 0..4 {
            std::fs::write(folder.join(format!("m{n}.eml")), canary_mail(n)).unwrap();
        }
        ok(sealdex(&dir).arg("index").arg(&tree));
    }
    let s = stats(&dir);
    assert_eq!(s["messages"], 48, "{s}");
    assert_eq!(s["inverted"], "current", "{s}");
    // Twelve unmerged segments would be more than 70 files (six or more
    // per segment); merges leave about one segment's worth (10 seen).
    let inverted_files = std::fs::read_dir(dir.join("inverted")).unwrap().count();
    assert!(
        inverted_files < 40,
        "no merge happened: {inverted_files} files"
    );
    let out = ok(sealdex(&dir).args(["search", "--mode", "inverted", "canarybodyxq"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("48 match"));
    let mut words: Vec<&str> = CANARIES.to_vec();
    words.push(PASSPHRASE);
    assert_no_plaintext(&dir, &words);
}
