//! Indexing over IMAP from a loopback Dovecot against the same messages
//! from files, and what a no-change re-sync costs (time, bytes), with and
//! without CONDSTORE/QRESYNC.
//!
//! ```sh
//! # with the Dovecot of .ci/run's IMAP block running and its variables set:
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --bench imap -- [--no-files] [COUNT ...]
//! ```
//!
//! COUNT defaults to 6000. The messages are the SpamAssassin corpus (all
//! five folders, their mbox `From ` line removed), cycled past its size
//! with a fresh Message-ID per copy (100,000 messages are the corpus about
//! 17 times), put in `$SEALDEX_IMAP_USER`'s INBOX, Archive and a `Lists`
//! mailbox in turn (the account is emptied first) with MULTIAPPEND, one
//! command per 8 MB (tests/imap_support/append.rs), and written to a
//! directory for the file run (`--no-files` skips it). Corpus copies and
//! not small synthetic messages: a re-sync's cost does not depend on the
//! messages' size, but the first run's rate and bytes do, and they stay
//! comparable with the 6,000-message row.
//!
//! Bytes on the wire are Dovecot's own counts from its logout line (`in=`,
//! `out=`: what the server read and wrote, TLS included). One run of each
//! kind: the numbers are for a person to read, not a regression gate.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealdex::backends::imap::{Account, Auth, Imap};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::IndexOptions;
use sealdex::{Credential, Index, IndexConfig, KdfParams};

#[path = "../tests/imap_support/append.rs"]
mod append;

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![6000]
    } else {
        counts
    };
    let Ok(url) = std::env::var("SEALDEX_IMAP") else {
        eprintln!(
            "benches/imap.rs needs SEALDEX_IMAP, SEALDEX_IMAP_USER, SEALDEX_IMAP_PASSWORD, \
             SEALDEX_IMAP_CA and SEALDEX_IMAP_LOG: start the Dovecot of .ci/run's IMAP block"
        );
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set"));
    let (user, password, ca, log) = (
        env("SEALDEX_IMAP_USER"),
        env("SEALDEX_IMAP_PASSWORD"),
        env("SEALDEX_IMAP_CA"),
        env("SEALDEX_IMAP_LOG"),
    );
    let with_files = !std::env::args().any(|a| a == "--no-files");
    let corpus = load_corpus();
    println!(
        "| messages | files: msg/s | IMAP: msg/s | IMAP bytes from server | re-sync, CONDSTORE | its bytes in / out | re-sync, no CONDSTORE | its bytes in / out |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in counts {
        let tmp = tempfile::tempdir().unwrap();
        let files = tmp.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        let hostport = url.trim_start_matches("imap://").to_string();
        fill(
            &hostport,
            &user,
            &password,
            &corpus,
            n,
            with_files.then_some(&files),
        );

        let opts = IndexOptions::default();
        let files_rate = if with_files {
            let a = index(&tmp.path().join("a"));
            let t = Instant::now();
            let mut tree = sealdex::backends::Tree::open(&files).unwrap();
            a.index(&mut tree, &PassThrough::default(), &opts).unwrap();
            let rate = format!("{:.0}", n as f64 / t.elapsed().as_secs_f64());
            drop(a);
            std::fs::remove_dir_all(&files).unwrap();
            rate
        } else {
            "–".to_string()
        };

        let b = index(&tmp.path().join("b"));
        let source = |condstore: bool| {
            Imap::new(
                Account::parse(&format!("imap://{user}@{hostport}")).unwrap(),
                Auth::password(password.clone()),
            )
            .with_ca_file(&ca)
            .with_condstore(condstore)
        };
        let mark = logouts(&log, &user).len();
        let t = Instant::now();
        let mut s = source(true);
        let report = b.index(&mut s, &PassThrough::default(), &opts).unwrap();
        let imap_secs = t.elapsed().as_secs_f64();
        assert_eq!(report.stored as usize, n, "{report:?}");
        let sessions = s.stats().connections as usize;
        drop(s);
        let (_, out_full) = wire(&log, &user, mark, sessions);

        // The no-change re-sync, with CONDSTORE and QRESYNC, then without
        // (the source told not to use them: every mailbox's UIDs and flags
        // are compared).
        let mut resync = Vec::new();
        for condstore in [true, false] {
            let mark = logouts(&log, &user).len();
            let t = Instant::now();
            let mut s = source(condstore);
            let report = b.index(&mut s, &PassThrough::default(), &opts).unwrap();
            let took = t.elapsed();
            assert_eq!((report.stored, report.deleted), (0, 0), "{report:?}");
            let stats = s.stats();
            assert_eq!(
                stats.bodies_fetched + stats.fingerprints_fetched,
                0,
                "{stats:?}"
            );
            let sessions = stats.connections as usize;
            drop(s);
            let (bytes_in, bytes_out) = wire(&log, &user, mark, sessions);
            resync.push(format!(
                "{:.0} ms | {bytes_in} B / {bytes_out} B",
                took.as_secs_f64() * 1e3
            ));
        }
        println!(
            "| {n} | {files_rate} | {:.0} | {:.1} MB | {} | {} |",
            n as f64 / imap_secs,
            out_full as f64 / 1e6,
            resync[0],
            resync[1],
        );
    }
}

fn index(dir: &Path) -> Index {
    Index::create(
        dir,
        &Credential::passphrase("pw"),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        },
    )
    .unwrap()
}

/// Every SpamAssassin message without its mbox `From ` line.
fn load_corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(std::env::var_os("SEALDEX_CORPORA").expect("SEALDEX_CORPORA is set"))
        .join("spamassassin");
    let mut paths: Vec<PathBuf> = walk(&root);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| {
            if b.starts_with(b"From ") {
                let nl = b.iter().position(|&c| c == b'\n').unwrap_or(0);
                b[nl + 1..].to_vec()
            } else {
                b
            }
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Empties the account and puts `n` messages in it with MULTIAPPEND (and
/// writes them to `files`, if given).
fn fill(
    hostport: &str,
    user: &str,
    password: &str,
    corpus: &[Vec<u8>],
    n: usize,
    files: Option<&PathBuf>,
) {
    let mut a = append::Appender::login(hostport, user, password).unwrap();
    let _ = a.run("DELETE Lists");
    for name in ["INBOX", "Archive"] {
        a.run(&format!("SELECT {name}")).unwrap();
        a.run("STORE 1:* +FLAGS.SILENT (\\Deleted)").ok();
        a.run("CLOSE").unwrap();
    }
    a.run("CREATE Lists").unwrap();
    let folders = ["INBOX", "Archive", "Lists"];
    let t = Instant::now();
    // In rounds of 3,000 messages, each mailbox's share in one go.
    for round in (0..n).step_by(3000) {
        let mut by_folder: [Vec<Vec<u8>>; 3] = Default::default();
        for i in round..(round + 3000).min(n) {
            let base = &corpus[i % corpus.len()];
            // A copy past the corpus's size gets a Message-ID of its own.
            let bytes = if i < corpus.len() {
                base.clone()
            } else {
                let mut b = format!("Message-ID: <bench-copy-{i}@sealdex.test>\r\n").into_bytes();
                b.extend_from_slice(base);
                b
            };
            if let Some(files) = files {
                std::fs::write(files.join(format!("{i:07}.eml")), &bytes).unwrap();
            }
            by_folder[i % 3].push(bytes);
        }
        for (folder, messages) in folders.iter().zip(&by_folder) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            a.append_all(folder, "", &refs).unwrap();
        }
    }
    eprintln!("appended {n} messages in {:.1}s", t.elapsed().as_secs_f64());
    a.logout();
}

/// The logout lines of `user`'s sessions.
fn logouts(log: &str, user: &str) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tag = format!("imap({user})<");
    text.lines()
        .filter(|l| l.contains(&tag) && l.contains(" in="))
        .map(str::to_string)
        .collect()
}

/// Bytes in and out of `user`'s sessions after the first `skip`, waiting
/// for `sessions` logout lines (Dovecot logs asynchronously).
fn wire(log: &str, user: &str, skip: usize, sessions: usize) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = logouts(log, user);
        if lines.len() >= skip + sessions || Instant::now() > deadline {
            let field = |l: &str, k: &str| -> u64 {
                l.split(k)
                    .nth(1)
                    .and_then(|v| v.split(' ').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let tail = lines.get(skip..).unwrap_or_default();
            return (
                tail.iter().map(|l| field(l, " in=")).sum(),
                tail.iter().map(|l| field(l, " out=")).sum(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
