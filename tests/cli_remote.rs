//! Two processes on one index (issue 18): while `sealdex index` holds it,
//! other `sealdex` processes search, count, show and read stats through
//! its local socket; a client that cannot prove it holds the index's key
//! is refused. And Ctrl-C during `index`: what was kept, and the resume.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SOCKET: &str = "sealdex.sock";

/// `n` small messages in a tree, enough to keep a debug or release build
/// busy for a while with small batches.
fn many(root: &Path, n: u32) {
    for i in 0..n {
        let d = root.join(format!("f{}", i / 500));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("{i}.eml")),
            format!(
                "From: Sender {i} <s{i}@example.org>\r\nTo: r@example.org\r\n\
                 Subject: message number {i} about widgets\r\n\
                 Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\n\
                 Body {i}: widgets and gadgets, word{i}.\r\n"
            ),
        )
        .unwrap();
    }
}

/// Starts `sealdex index` and waits until it serves its socket.
fn start_indexing(dir: &Path, mail: &Path, batch: &str) -> Child {
    // Create the index first (an empty folder), so the timed run below is
    // all indexing and no key derivation.
    let empty = dir.with_extension("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let _ = run(sealdex(dir).arg("index").arg(&empty));
    let mut child = sealdex(dir)
        .args(["index", "--batch", batch])
        .arg(mail)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.join(SOCKET).exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("indexing ended ({status}) before it served its socket");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no socket after a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    out
}

fn json(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The issue's scenario: one process indexes the SpamAssassin corpus, a
/// second searches, counts, shows and reads stats meanwhile, and both are
/// right.
#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn search_and_stats_while_indexing_the_spamassassin_corpus() {
    let Some(corpus) = corpora("spamassassin") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("idx");
    let child = start_indexing(&dir, &corpus, "8");
    let socket = std::fs::metadata(dir.join(SOCKET)).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o600);

    let mut answered_while_indexing = 0;
    let mut last_messages = 0;
    let mut child = child;
    loop {
        let stats = run(sealdex(&dir).args(["stats", "--json"]));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if !stats.status.success() {
            // The holder stopped serving between our check and the call.
            break;
        }
        let s: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
        if s["indexing"] != true {
            break;
        }
        answered_while_indexing += 1;
        let messages = s["messages"].as_u64().unwrap();
        assert!(messages >= last_messages && messages <= 6046, "{s}");
        last_messages = messages;
        // A search and a count agree with each other and with stats.
        let search = run(sealdex(&dir).args(["search", "--json", "--limit", "3", "money"]));
        assert!(matches!(search.status.code(), Some(0 | 1)));
        let lines = json(&search);
        let summary = lines.last().unwrap();
        assert_eq!(summary["type"], "summary");
        let total = summary["total"].as_u64().unwrap();
        assert!(total <= 6046);
        let count = run(sealdex(&dir).args(["count", "money"]));
        if child.try_wait().unwrap().is_some() {
            break; // it finished meanwhile: the last answer may be "gone"
        }
        let counted: u64 = String::from_utf8_lossy(&count.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&count.stderr)));
        assert!(counted >= total, "the count went backwards");
        // A hit shown through the socket is the hit searched.
        if let Some(hit) = lines.iter().find(|h| h["type"] == "hit") {
            let location = hit["location"].as_str().unwrap();
            assert!(Path::new(location).is_file(), "{location}");
            let show = run(sealdex(&dir).args(["show", "--json", location]));
            if show.status.success() {
                let shown = &json(&show)[0];
                assert_eq!(shown["subject"], hit["subject"]);
                assert_eq!(shown["date"], hit["date"]);
            }
        }
        if answered_while_indexing >= 3 {
            break;
        }
    }
    let out = finish(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        answered_while_indexing > 0,
        "no answer came from the indexing process"
    );
    assert!(!dir.join(SOCKET).exists(), "the socket outlived its server");
    // Afterwards the index opens directly and holds the whole corpus.
    let s = stats(&dir);
    assert_eq!(s["indexing"], false);
    assert_eq!(
        s["messages"].as_u64().unwrap() + s["failures"].as_u64().unwrap(),
        6046,
        "{s}"
    );
    let count = ok(sealdex(&dir).args(["count", "money"]));
    let after: u64 = String::from_utf8_lossy(&count.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(after > 0);
}

/// A client that does not hold the key learns nothing: wrong proofs and
/// requests without a handshake are refused; a wrong passphrase fails
/// before it even connects. The right key gets answers.
#[test]
fn a_client_without_the_key_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let mail = t.path().join("mail");
    many(&mail, HOLD);
    let dir = t.path().join("idx");
    let child = start_indexing(&dir, &mail, "1");

    // Wrong proof: random nonce and tag.
    let mut s = UnixStream::connect(dir.join(SOCKET)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut hello = [0u8; 36];
    s.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..4], b"SDX1");
    s.write_all(&[0x5a; 64]).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest,
        [0],
        "a wrong proof gets one refusal byte and the door"
    );

    // No handshake at all: a request frame straight away.
    let mut s = UnixStream::connect(dir.join(SOCKET)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = br#"{"op":"stats"}"#;
    let mut frame = (req.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(req);
    frame.resize(64, b' ');
    s.write_all(&frame).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.len() <= 37, "an unauthenticated request was answered");
    assert!(!String::from_utf8_lossy(&rest).contains("messages"));

    // Replaying a proof recorded from another connection fails too: the
    // server's nonce is fresh each time.
    let mut a = UnixStream::connect(dir.join(SOCKET)).unwrap();
    let mut b = UnixStream::connect(dir.join(SOCKET)).unwrap();
    let (mut ha, mut hb) = ([0u8; 36], [0u8; 36]);
    a.read_exact(&mut ha).unwrap();
    b.read_exact(&mut hb).unwrap();
    assert_ne!(ha[4..], hb[4..], "two connections got the same nonce");
    drop((a, b));

    // A wrong passphrase: refused by the keyring, before any connection.
    let out = run(sealdex(&dir)
        .args(["stats", "--json"])
        .env("SEALDEX_PASSPHRASE", "not the passphrase"));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));

    // The right one is answered by the holder.
    let out = ok(sealdex(&dir).args(["stats", "--json"]));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["indexing"], true, "{s}");
    interrupt(&child);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(130));
}

/// Messages one batch each take a while: the holder is still indexing when
/// the checks run, and is then stopped with Ctrl-C.
const HOLD: u32 = 8000;

fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Ctrl-C: the run stops after its batch, says what it kept and how to
/// resume; the next run says how much was done and finishes the set.
#[test]
fn ctrl_c_keeps_what_was_done_and_the_next_run_resumes() {
    let t = tempfile::tempdir().unwrap();
    let mail = t.path().join("mail");
    many(&mail, HOLD);
    let dir = t.path().join("idx");
    let child = start_indexing(&dir, &mail, "1");
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let out = finish(child);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(err.contains("again to resume"), "{err}");
    let kept = stats(&dir)["messages"].as_u64().unwrap();
    assert!(kept < HOLD as u64, "the run was not interrupted: {kept}");
    assert!(err.contains(&format!("keeps {kept} message")), "{err}");
    assert!(!dir.join(SOCKET).exists());

    let out = ok(sealdex(&dir).arg("index").arg(&mail));
    let err = String::from_utf8_lossy(&out.stderr);
    if kept > 0 {
        assert!(err.contains("resuming"), "{err}");
        assert!(err.contains("already done"), "{err}");
    }
    assert_eq!(stats(&dir)["messages"], HOLD);
}
