//! The IMAP source against a real Dovecot (Debian `dovecot-imapd`), which
//! `.ci/run` starts on 127.0.0.1 with a throw-away configuration and
//! exports as `SEALDEX_IMAP=imap://127.0.0.1:PORT`, with
//! `SEALDEX_IMAP_USER`, `SEALDEX_IMAP_PASSWORD`, `SEALDEX_IMAP_LOG` (its
//! log, whose logout lines count the bodies each session fetched), and
//! `SEALDEX_IMAP_CA` and `SEALDEX_IMAPS`: the server offers STARTTLS on
//! the first port and TLS on a second one, with a certificate for
//! 127.0.0.1 from a throw-away CA, so every test below runs over rustls.
//!
//! Every test is `#[ignore = "needs SEALDEX_IMAP …"]`: a plain `cargo test`
//! lists them as ignored, and asked for without the server (CI runs with
//! `--include-ignored`) they fail, never pass silently. Each test logs in as
//! a user of its own (`$SEALDEX_IMAP_USER-N`), so they run in parallel
//! without seeing each other's mail, and empties that mailbox first.
#![cfg(feature = "imap")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealdex::backends::imap::{Account, Auth, Imap};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{Control, IndexOptions};
use sealdex::{
    Credential, Error, Index, IndexConfig, KdfParams, SearchOptions, Source, SourceErrorKind,
};

/// The test server: (host, port, base user, password).
struct Server {
    host: String,
    port: u16,
    user: String,
    password: String,
    /// The CA of the server's certificate.
    ca: PathBuf,
    /// `imaps://127.0.0.1:PORT`.
    imaps: String,
}

fn server() -> Server {
    let Ok(url) = std::env::var("SEALDEX_IMAP") else {
        panic!(
            "SEALDEX_IMAP is not set: this test needs a Dovecot on loopback (it is #[ignore]d, and \
             was asked for with --ignored or --include-ignored); .ci/run starts one and sets \
             SEALDEX_IMAP=imap://127.0.0.1:PORT, SEALDEX_IMAP_USER and SEALDEX_IMAP_PASSWORD"
        );
    };
    let hostport = url
        .strip_prefix("imap://")
        .expect("SEALDEX_IMAP is imap://HOST:PORT");
    let (host, port) = hostport.rsplit_once(':').expect("SEALDEX_IMAP has a port");
    Server {
        host: host.to_string(),
        port: port.parse().expect("a port number"),
        user: std::env::var("SEALDEX_IMAP_USER").expect("SEALDEX_IMAP_USER is set"),
        password: std::env::var("SEALDEX_IMAP_PASSWORD").expect("SEALDEX_IMAP_PASSWORD is set"),
        ca: std::env::var_os("SEALDEX_IMAP_CA")
            .expect("SEALDEX_IMAP_CA is set")
            .into(),
        imaps: std::env::var("SEALDEX_IMAPS").expect("SEALDEX_IMAPS is set"),
    }
}

impl Server {
    /// The user of test `n` (1 to 9).
    fn user(&self, n: u8) -> String {
        format!("{}-{n}", self.user)
    }

    fn url(&self, user: &str, port: u16) -> String {
        format!("imap://{user}@{}:{port}", self.host)
    }

    fn source(&self, user: &str) -> Imap {
        self.source_at(user, self.port)
    }

    fn source_at(&self, user: &str, port: u16) -> Imap {
        Imap::new(
            Account::parse(&self.url(user, port)).unwrap(),
            Auth::password(self.password.clone()),
        )
        .with_ca_file(&self.ca)
        .with_timeout(Duration::from_secs(10))
        .with_retries(2, Duration::from_millis(50))
    }

    /// An IMAP session for the test itself (APPEND, STORE, MOVE, EXPUNGE):
    /// another client, as a mail app would be.
    fn admin(&self, user: &str) -> imap::Session<TcpStream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).unwrap();
        let mut client = imap::Client::new(tcp);
        client.read_greeting().unwrap();
        client
            .login(user, &self.password)
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// Empties every mailbox of `user` and deletes those the tests make.
    fn reset(&self, user: &str) {
        let mut s = self.admin(user);
        let names: Vec<String> = s
            .list(Some(""), Some("*"))
            .unwrap()
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        for name in names {
            if ["INBOX", "Sent", "Trash", "Junk", "Archive"].contains(&name.as_str()) {
                let mb = s.select(&name).unwrap();
                if mb.exists > 0 {
                    s.store("1:*", "+FLAGS.SILENT (\\Deleted)").unwrap();
                    s.expunge().unwrap();
                }
            } else {
                s.delete(&name).unwrap();
            }
        }
        s.logout().unwrap();
    }
}

fn new_index(dir: &Path) -> Index {
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

fn options(batch: usize) -> IndexOptions {
    IndexOptions {
        batch_messages: batch,
        ..IndexOptions::default()
    }
}

/// A small message with a subject word unique to it.
fn fixture(i: usize, word: &str) -> Vec<u8> {
    format!(
        "From: Sender {i} <s{i}@example.org>\r\nTo: me@example.org\r\n\
         Subject: fixture {word} number{i}\r\nMessage-ID: <fixture-{i}@sealdex.test>\r\n\
         Date: Tue, 1 Oct 2024 10:{:02}:00 +0000\r\n\r\nbody of {word} fixture {i}\r\n",
        i % 60
    )
    .into_bytes()
}

/// The Message-IDs of every hit of `query`.
fn hits(index: &Index, query: &str) -> BTreeSet<String> {
    index
        .search(
            query,
            &SearchOptions {
                limit: None,
                snippet_bytes: 0,
                ..SearchOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .hits
        .into_iter()
        .map(|h| {
            h.record
                .message_id
                .clone()
                .unwrap_or_else(|| h.record.subject.clone())
        })
        .collect()
}

fn count(index: &Index, query: &str) -> usize {
    hits(index, query).len()
}

/// The log lines of the sessions of `user` that logged out.
fn logouts(user: &str) -> Vec<String> {
    let log = std::env::var("SEALDEX_IMAP_LOG").expect("SEALDEX_IMAP_LOG is set");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let tag = format!("imap({user})<");
    text.lines()
        .filter(|l| l.contains(&tag) && l.contains("body_count="))
        .map(str::to_string)
        .collect()
}

/// How many logout lines of `user` the log holds once it has stopped
/// growing for half a second (ten seconds at most).
fn settled_logouts(user: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = logouts(user).len();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = logouts(user).len();
        if now == seen || Instant::now() > deadline {
            return now;
        }
        seen = now;
    }
}

/// The sum of `body_count` over the logout lines of `user` after the
/// first `skip`, waiting (a few seconds at most) until `sessions` of them
/// are there: Dovecot's log process writes them asynchronously.
fn bodies_fetched_by_server(user: &str, skip: usize, sessions: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = logouts(user);
        if lines.len() >= skip + sessions || Instant::now() > deadline {
            assert!(
                lines.len() >= skip + sessions,
                "Dovecot logged {} logout(s) of {user}, expected {}",
                lines.len(),
                skip + sessions
            );
            return lines[skip..]
                .iter()
                .map(|l| {
                    let v = l.split("body_count=").nth(1).unwrap_or("0");
                    v.split(|c: char| !c.is_ascii_digit())
                        .next()
                        .unwrap_or("0")
                        .parse::<u64>()
                        .unwrap_or(0)
                })
                .sum();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn index_then_flags_moves_expunges_and_uidvalidity_arrive_without_refetch() {
    let srv = server();
    let user = srv.user(1);
    srv.reset(&user);
    let mut admin = srv.admin(&user);
    for i in 0..6 {
        admin
            .append("INBOX", &fixture(i, "inboxword"))
            .finish()
            .unwrap();
    }
    for i in 6..9 {
        admin
            .append("Archive", &fixture(i, "archiveword"))
            .flag(imap::types::Flag::Seen)
            .finish()
            .unwrap();
    }
    admin.create("Lists").unwrap();
    admin.logout().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"));
    let mut source = srv.source(&user);
    let report = index
        .index(&mut source, &PassThrough::default(), &options(4))
        .unwrap();
    assert_eq!(report.stored, 9);
    assert_eq!(report.failed, 0);
    assert_eq!(source.stats().bodies_fetched, 9);
    assert_eq!(count(&index, "inboxword"), 6);
    assert_eq!(count(&index, "in:inbox"), 6);
    assert_eq!(count(&index, "archiveword in:archive"), 3);
    assert_eq!(
        count(&index, "is:unread"),
        6,
        "fetching never marks mail read"
    );
    drop(source);

    // Another client changes things on the server.
    let mut admin = srv.admin(&user);
    // By sequence number: UIDs go on from earlier runs of the test.
    admin.select("INBOX").unwrap();
    admin.store("1", "+FLAGS (\\Seen)").unwrap();
    admin.store("2", "+FLAGS (\\Flagged)").unwrap();
    admin.store("4", "+FLAGS (\\Deleted)").unwrap();
    admin.expunge().unwrap();
    admin.mv("3", "Lists").unwrap();
    admin.select("Archive").unwrap();
    admin.store("1", "-FLAGS (\\Seen)").unwrap();
    admin
        .append("INBOX", &fixture(9, "lateword"))
        .finish()
        .unwrap();
    admin.logout().unwrap();

    // Every earlier session's logout line (the admin's just now) must be in
    // the log before counting: Dovecot writes them asynchronously.
    let before = settled_logouts(&user);
    let mut source = srv.source(&user);
    let report = index
        .index(&mut source, &PassThrough::default(), &options(4))
        .unwrap();
    let stats = source.stats();
    drop(source);
    assert_eq!(report.deleted, 1, "{report:?}");
    assert_eq!(report.failed, 0);
    assert_eq!(
        stats.bodies_fetched, 1,
        "only the new message is fetched; flags and the move are patches"
    );
    assert_eq!(
        bodies_fetched_by_server(&user, before, stats.connections as usize),
        1,
        "Dovecot counts one body fetched"
    );
    assert_eq!(count(&index, "inboxword"), 5, "one expunged");
    assert_eq!(count(&index, "inboxword in:lists"), 1, "moved");
    assert_eq!(count(&index, "lateword"), 1, "appended");
    assert_eq!(count(&index, "is:flagged"), 1);
    // Unread: INBOX 6 at first, -1 read, -1 expunged, +1 new, and the
    // Archive message marked unread again.
    assert_eq!(count(&index, "is:unread"), 6);
    let moved = hits(&index, "in:lists");
    assert_eq!(
        moved,
        BTreeSet::from(["fixture-2@sealdex.test".to_string()])
    );

    // Nothing changed: nothing compared, nothing fetched.
    let mut source = srv.source(&user);
    let report = index
        .index(&mut source, &PassThrough::default(), &options(4))
        .unwrap();
    assert_eq!((report.stored, report.deleted), (0, 0), "{report:?}");
    let stats = source.stats();
    assert_eq!(stats.mailboxes_compared, 0, "{stats:?}");
    assert_eq!(stats.bodies_fetched + stats.fingerprints_fetched, 0);
    drop(source);

    // A new UIDVALIDITY: `Lists` deleted and made again with the same
    // message (same arrival time). The mailbox is listed again and the
    // message comes back as a move: no body fetched.
    let mut admin = srv.admin(&user);
    admin.select("Lists").unwrap();
    let fetched = admin
        .uid_fetch("1:*", "(INTERNALDATE BODY.PEEK[])")
        .unwrap();
    let f = fetched.iter().next().unwrap();
    let (body, date) = (f.body().unwrap().to_vec(), f.internal_date().unwrap());
    drop(fetched);
    admin.close().unwrap();
    admin.delete("Lists").unwrap();
    admin.create("Lists").unwrap();
    admin
        .append("Lists", &body)
        .internal_date(date)
        .finish()
        .unwrap();
    admin.logout().unwrap();
    let mut source = srv.source(&user);
    let report = index
        .index(&mut source, &PassThrough::default(), &options(4))
        .unwrap();
    assert_eq!((report.deleted, report.failed), (0, 0), "{report:?}");
    assert_eq!(source.stats().bodies_fetched, 0);
    assert_eq!(hits(&index, "in:lists"), moved);
    assert_eq!(index.len(), 9);
}

/// The first `n` messages of the SpamAssassin ham, without their mbox
/// `From ` line: (file name, bytes).
fn spamassassin(n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = common::corpora("spamassassin").unwrap().join("easy-ham-1");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .into_iter()
        .take(n)
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let bytes = if bytes.starts_with(b"From ") {
                let nl = bytes.iter().position(|&b| b == b'\n').unwrap_or(0);
                bytes[nl + 1..].to_vec()
            } else {
                bytes
            };
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

#[test]
#[ignore = "needs SEALDEX_IMAP and SEALDEX_CORPORA"]
fn spamassassin_over_imap_matches_the_same_messages_from_files() {
    let srv = server();
    let user = srv.user(2);
    srv.reset(&user);
    let messages = spamassassin(300);
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut admin = srv.admin(&user);
    admin.create("Lists").unwrap();
    let folders = ["INBOX", "Archive", "Lists"];
    for (i, (name, bytes)) in messages.iter().enumerate() {
        std::fs::write(files.join(name), bytes).unwrap();
        admin.append(folders[i % 3], bytes).finish().unwrap();
    }
    admin.logout().unwrap();

    let from_files = new_index(&tmp.path().join("a"));
    let mut tree = sealdex::backends::Tree::open(&files).unwrap();
    from_files
        .index(&mut tree, &PassThrough::default(), &options(64))
        .unwrap();
    let over_imap = new_index(&tmp.path().join("b"));
    let mut source = srv.source(&user);
    let report = over_imap
        .index(&mut source, &PassThrough::default(), &options(64))
        .unwrap();
    assert_eq!(report.stored, 300);
    assert_eq!(report.failed, 0);
    assert_eq!(from_files.len(), over_imap.len());
    for q in [
        "linux",
        "razor",
        "spamassassin",
        "free software",
        "subject:re",
        "from:yahoo",
        "perl OR python",
        "\"mailing list\"",
        "exmh -razor",
        "to:zzzz",
        "after:2002-08-01 before:2002-09-01",
    ] {
        let a = hits(&from_files, q);
        assert!(!a.is_empty(), "{q} finds something");
        assert_eq!(a, hits(&over_imap, q), "{q}");
    }
    assert_eq!(count(&over_imap, "in:archive"), 100);
    assert_eq!(count(&over_imap, "in:lists"), 100);
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn a_killed_sync_resumes_and_stores_everything_once() {
    let srv = server();
    let user = srv.user(3);
    srv.reset(&user);
    let mut admin = srv.admin(&user);
    for i in 0..120 {
        admin
            .append("INBOX", &fixture(i, "resumeword"))
            .finish()
            .unwrap();
    }
    admin.logout().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"));
    let control = Control::new();
    let c = control.clone();
    let mut batches = 0;
    let mut source = srv.source(&user);
    let err = index
        .index_with(
            &mut source,
            &PassThrough::default(),
            &options(10),
            &control,
            &mut |_| {
                batches += 1;
                if batches == 3 {
                    c.cancel();
                }
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let kept = index.len();
    assert!((30..120).contains(&kept), "kept {kept}");
    drop(source);

    let mut source = srv.source(&user);
    index
        .index(&mut source, &PassThrough::default(), &options(10))
        .unwrap();
    assert_eq!(index.len(), 120);
    assert_eq!(count(&index, "resumeword"), 120);
    assert!(
        source.stats().bodies_fetched <= (120 - kept as u64) + 10,
        "the resumed run starts after the checkpoint: {:?}",
        source.stats()
    );
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn a_wrong_password_is_a_typed_auth_error_that_is_not_retried() {
    let srv = server();
    let user = srv.user(5);
    let account = Account::parse(&srv.url(&user, srv.port)).unwrap();
    let mut source = Imap::new(account, Auth::password("wrong-Zq9-password"))
        .with_ca_file(&srv.ca)
        .with_retries(3, Duration::from_millis(10));
    let e = source.connect().unwrap_err();
    assert_eq!(e.kind(), SourceErrorKind::Auth, "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("refused the login"), "{e}");
    assert!(!e.to_string().contains("wrong-Zq9"), "{e}");
    assert!(!format!("{source:?}").contains("wrong-Zq9"));
    // Through the pipeline: the run stops with the same kind, once.
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"));
    let err = index
        .index(&mut source, &PassThrough::default(), &options(10))
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        matches!(
            err,
            Error::Source {
                kind: SourceErrorKind::Auth,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(source.stats().connections, 0);

    // The CLI: a clear message, a non-zero exit, and no index left behind.
    let dir = tmp.path().join("cli");
    let out = common::run(
        common::sealdex(&dir)
            .arg("index")
            .arg(srv.url(&user, srv.port))
            .arg("--imap-ca")
            .arg(&srv.ca)
            .env("SEALDEX_IMAP_PASSWORD", "wrong-Zq9-password"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the login"), "{stderr}");
    assert!(!stderr.contains("wrong-Zq9"), "{stderr}");
    assert!(!dir.join("keyring").exists());
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn the_cli_indexes_an_imap_account_and_searches_it() {
    let srv = server();
    let user = srv.user(6);
    srv.reset(&user);
    let mut admin = srv.admin(&user);
    for i in 0..5 {
        admin
            .append("INBOX", &fixture(i, "cliword"))
            .finish()
            .unwrap();
    }
    admin.logout().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let out = common::ok(
        common::sealdex(&dir)
            .arg("index")
            .arg(srv.url(&user, srv.port))
            .arg("--imap-ca")
            .arg(&srv.ca)
            .env("SEALDEX_IMAP_PASSWORD", &srv.password),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stored 5"), "{stderr}");
    let out = common::ok(common::sealdex(&dir).args(["count", "cliword"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    // A second run is a no-change sync.
    let out = common::ok(
        common::sealdex(&dir)
            .arg("index")
            .arg(srv.url(&user, srv.port))
            .arg("--imap-ca")
            .arg(&srv.ca)
            .env("SEALDEX_IMAP_PASSWORD", &srv.password),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stored 0, deleted 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP relay on loopback between the source and Dovecot that the test
/// can cut, as a server that goes away mid-sync: the shared Dovecot keeps
/// running for the other tests.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(port: u16, to: (String, u16)) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, k) = (cut.clone(), conns.clone());
        let thread = std::thread::spawn(move || {
            while !c.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect((to.0.as_str(), to.1)).unwrap();
                        k.lock().unwrap().push(client.try_clone().unwrap());
                        k.lock().unwrap().push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            port,
            cut,
            conns,
            thread: Some(thread),
        }
    }

    /// Stops listening and cuts every connection.
    fn cut(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn a_server_gone_mid_sync_is_a_retryable_error_and_loses_nothing() {
    let srv = server();
    let user = srv.user(4);
    srv.reset(&user);
    let mut admin = srv.admin(&user);
    for i in 0..100 {
        admin
            .append("INBOX", &fixture(i, "goneword"))
            .finish()
            .unwrap();
    }
    admin.logout().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"));
    let relay = Arc::new(Mutex::new(Relay::start(0, (srv.host.clone(), srv.port))));
    let port = relay.lock().unwrap().port;
    let mut source = srv.source_at(&user, port);
    let mut batches = 0;
    let r = relay.clone();
    let err = index
        .index_with(
            &mut source,
            &PassThrough::default(),
            &options(10),
            &Control::new(),
            &mut |_| {
                batches += 1;
                if batches == 2 {
                    r.lock().unwrap().cut();
                }
            },
        )
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            err,
            Error::Source {
                kind: SourceErrorKind::Network,
                ..
            }
        ),
        "{err}"
    );
    let kept = index.len();
    assert!(kept < 100, "kept {kept}");
    assert!(
        index.failures().unwrap().is_empty(),
        "no message is recorded as failed for a lost server"
    );
    drop(source);

    // The server is back (on the same address: the source's name, and
    // with it its checkpoint, is the URL).
    let _relay = Relay::start(port, (srv.host.clone(), srv.port));
    let mut source = srv.source_at(&user, port);
    index
        .index(&mut source, &PassThrough::default(), &options(10))
        .unwrap();
    assert_eq!(index.len(), 100);
    assert_eq!(count(&index, "goneword"), 100);
    assert!(index.failures().unwrap().is_empty());
}

#[test]
#[ignore = "needs SEALDEX_IMAP (a Dovecot on loopback; .ci/run starts one)"]
fn tls_and_starttls_verify_the_server_against_the_given_ca() {
    let srv = server();
    let user = srv.user(7);
    srv.reset(&user);
    let mut admin = srv.admin(&user);
    admin
        .append("INBOX", &fixture(0, "tlsword"))
        .finish()
        .unwrap();
    admin.logout().unwrap();
    let imaps = srv.imaps.replace("imaps://", &format!("imaps://{user}@"));
    for url in [imaps, srv.url(&user, srv.port)] {
        let account = Account::parse(&url).unwrap();
        // Trusted: logs in (over TLS, or after STARTTLS) and lists.
        let mut ok =
            Imap::new(account.clone(), Auth::password(srv.password.clone())).with_ca_file(&srv.ca);
        let page = ok.list(None, 10).unwrap();
        assert_eq!(page.refs.len(), 1, "{url}");
        let fetched = ok.fetch(&page.refs);
        assert!(
            fetched[0]
                .as_ref()
                .unwrap()
                .bytes
                .ends_with(b"tlsword fixture 0\r\n")
        );
        // Not trusted (only the system's roots): a clear error, not retried
        // and never a fallback to plain text.
        let mut refused = Imap::new(account, Auth::password(srv.password.clone()))
            .with_retries(3, Duration::from_millis(10));
        let e = refused.connect().unwrap_err();
        assert!(!e.is_retryable(), "{url}: {e}");
        assert!(e.to_string().contains("--imap-ca"), "{url}: {e}");
        assert!(e.to_string().contains("TLS"), "{url}: {e}");
    }
}
