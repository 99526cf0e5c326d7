//! The format upgrade (`sealdex::upgrade`): indexes written in store formats
//! 1 and 3 (committed fixtures, made by the code of those formats) are
//! rebuilt in format 4 and swapped in, with every record, failure,
//! checkpoint and sync token kept, the same answers to the same queries in
//! both search modes, search and writes going on during the rebuild, and a
//! complete index left by a SIGKILL at every step.
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use common::{Counting, assert_no_plaintext, both, both_modes_config, copy_dir, ids};
use sealdex::ops::Op;
use sealdex::pipeline::{IndexOptions, RetryPolicy};
use sealdex::source::Metadata;
use sealdex::store::{Checkpoint, Failure, TokenSlot};
use sealdex::{ContentKind, Credential, Index, Order, Record, SearchMode, SecretKey};

/// The format-3 fixture's credential (tests/data/store-format-3/README.md).
fn cred3() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x5e; 32]))
}

/// The format-1 fixture's credential.
fn cred1() -> Credential {
    Credential::passphrase("pw")
}

/// The Maildir the format-3 fixture indexed: its source name holds this
/// path.
const MAILDIR: &str = "/tmp/sealdex-format3-maildir";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A copy of a fixture in a fresh directory: the index is `dir/index`.
fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    copy_dir(&data(name), &index);
    let _ = std::fs::remove_file(index.join("README.md"));
    (dir, index)
}

/// The tests that upgrade share the process-wide test hook: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Queries over the fixtures' words, fields and flags.
const QUERIES: &[&str] = &[
    "invoice",
    "noodle OR noodles",
    "from:alice",
    "from:alice invoice",
    "-invoice",
    "in:Work",
    "is:unread",
    "is:flagged",
    "lunch",
    "station",
    "subject:\"quarterly invoice\"",
    "paid",
    "alpha",
    "bravo",
    "deleted",
    "kind:chat",
    "kind:mail -is:unread",
];

/// The answers to [`QUERIES`], both modes checked to agree (newest first,
/// ids in order; by relevance, the same set). Records of the same time are
/// listed in key order, which an upgrade changes (the keys are MACs under
/// the new data key): here they are put in id order.
fn battery(index: &Index) -> Vec<(String, Vec<String>)> {
    QUERIES
        .iter()
        .map(|q| {
            both(index, q);
            let r = index
                .search(
                    q,
                    &sealdex::SearchOptions {
                        limit: None,
                        ..Default::default()
                    },
                )
                .unwrap();
            let mut hits: Vec<(std::cmp::Reverse<Option<i64>>, String)> = r
                .hits
                .into_iter()
                .map(|h| (std::cmp::Reverse(h.record.timestamp), h.id))
                .collect();
            hits.sort();
            (q.to_string(), hits.into_iter().map(|(_, id)| id).collect())
        })
        .collect()
}

/// A source's checkpoint and its two sync tokens.
type SourceState = (String, Option<Checkpoint>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Everything an index holds, by source and id: records, failures, and
/// the checkpoints and tokens of the sources named.
#[derive(Debug, PartialEq)]
struct Contents {
    records: Vec<Record>,
    failures: Vec<Failure>,
    state: Vec<SourceState>,
    documents: u64,
}

fn contents(index: &Index, sources: &[&str]) -> Contents {
    let store = index.store();
    let mut records: Vec<Record> = store.records().map(|r| r.unwrap()).collect();
    records.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
    let mut failures = store.failures().unwrap();
    failures.sort_by(|a, b| (&a.source, &a.message.id).cmp(&(&b.source, &b.message.id)));
    let state = sources
        .iter()
        .map(|s| {
            (
                s.to_string(),
                store.checkpoint(s).unwrap(),
                store
                    .token(s, TokenSlot::ListingStart)
                    .unwrap()
                    .map(|t| t.0),
                store.token(s, TokenSlot::Synced).unwrap().map(|t| t.0),
            )
        })
        .collect();
    Contents {
        records,
        failures,
        state,
        documents: store.manifest().unwrap().documents,
    }
}

fn maildir_source() -> String {
    format!("maildir:{MAILDIR}")
}

/// Checks the upgraded index: format 4, nothing left to upgrade, verify
/// clean, the hidden build directory gone.
fn assert_upgraded(index: &Index, path: &Path) {
    assert_eq!(index.store().format(), sealdex::store::FORMAT_VERSION);
    assert!(!index.upgrade_available());
    let report = index.verify();
    assert!(report.is_ok(), "{report:?}");
    assert!(!leftover(path).exists(), "the build directory is left");
}

fn leftover(path: &Path) -> PathBuf {
    path.with_file_name(".index.sealdex-upgrade")
}

/// The format-3 fixture (a Maildir run with a too-large message, flags and
/// folders; a chat source with versions of its own, a patch and a delete)
/// is upgraded with every record equal field by field, its failure,
/// checkpoint and tokens kept, the same answers to the query battery in
/// both modes, and nothing in clear; a re-sync of the same Maildir after
/// the upgrade does exactly what it does on the old index (fetching only
/// the failed message again, which its backoff allows).
#[test]
fn format_3_upgrade_keeps_everything() {
    let _serial = serial();
    let (_dir, path) = fixture("store-format-3");
    let config = both_modes_config();
    let index = Index::open(&path, &cred3(), config.clone()).unwrap();
    assert_eq!(index.store().format(), 3);
    assert!(index.upgrade_available());
    let sources = [maildir_source(), "chat".to_string()];
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let before = contents(&index, &sources);
    assert_eq!(before.records.len(), 7);
    assert_eq!(before.failures.len(), 1);
    assert!(before.state[0].1.as_ref().is_some_and(|c| c.synced));
    assert!(before.state[0].3.is_some(), "the Maildir's sync token");
    let e2 = before.records.iter().find(|r| r.id == "$e2").unwrap();
    assert_eq!(
        (e2.revision, e2.flags.contains(sealdex::Flags::FLAGGED)),
        (20, true)
    );
    let answers = battery(&index);
    assert!(answers.iter().any(|(_, ids)| ids.len() > 1));
    assert!(answers.iter().all(|(_, ids)| !ids.contains(&"$e3".into())));

    let index = index.upgrade(&cred3(), config.clone()).unwrap();
    assert_upgraded(&index, &path);
    assert_eq!(contents(&index, &sources), before);
    assert_eq!(battery(&index), answers);
    // Still so after a reopen (the inverted index was committed).
    drop(index);
    let index = Index::open(&path, &cred3(), config.clone()).unwrap();
    assert_eq!(contents(&index, &sources), before);
    assert_eq!(battery(&index), answers);
    // An op older than what a record holds changes nothing, as before.
    let applied = index
        .apply(vec![
            Op::upsert(chat("$e2", "an older edit")).with_version(15),
        ])
        .unwrap();
    assert_eq!(applied.skipped, 1);
    drop(index);
    assert_no_plaintext(
        &path,
        &[
            "CANARYPLAINTEXT",
            "noodle",
            "Quarterly",
            "alice@example.org",
            "dumplings",
        ],
    );

    // A re-sync of the Maildir: the same on the upgraded index as on the
    // old one.
    let (_old_dir, old_path) = fixture("store-format-3");
    let resync = |path: &Path| {
        let index = Index::open(path, &cred3(), config.clone()).unwrap();
        let fetched = Arc::new(AtomicUsize::new(0));
        let mut source = Counting {
            inner: sealdex::backends::open_path(Path::new(MAILDIR)).unwrap(),
            fetched: Arc::clone(&fetched),
        };
        let report = index
            .index(
                &mut source,
                &sealdex::decrypt::PassThrough {
                    max_message_bytes: 4000,
                },
                &IndexOptions {
                    retry: RetryPolicy {
                        base_delay: std::time::Duration::ZERO,
                        ..RetryPolicy::default()
                    },
                    ..IndexOptions::default()
                },
            )
            .unwrap();
        let after = contents(&index, &sources);
        (
            fetched.load(Ordering::SeqCst),
            report.stored,
            report.failed,
            after.documents,
            after.failures.len(),
        )
    };
    write_maildir();
    let on_old = resync(&old_path);
    let on_new = resync(&path);
    assert_eq!(on_new, on_old);
    assert_eq!(on_new.0, 1, "only the failed message is fetched again");
}

/// Writes the fixture's Maildir where its source name says it is, with
/// the times it was indexed with (its listing versions hold them).
fn write_maildir() {
    let to = Path::new(MAILDIR);
    let _ = std::fs::remove_dir_all(to);
    copy_dir(&data("store-format-3-maildir"), to);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for d in ["", ".Work"] {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(to.join(d).join(sub)).unwrap();
        }
    }
    for f in common::all_files(to) {
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

fn chat(id: &str, body: &str) -> Record {
    Record {
        source: "chat".into(),
        id: id.into(),
        kind: ContentKind::Chat,
        // Apart for each id: records with the same time are listed in key
        // order, and an upgrade changes the keys (they are MACs under the
        // new data key).
        timestamp: Some(1_700_000_500 + id.bytes().map(i64::from).sum::<i64>()),
        from: "Frank".into(),
        body: body.into(),
        folders: vec!["!room:example.org".into()],
        ..Record::default()
    }
}

/// The format-1 fixture (passphrase, records `a` and `b`, a failure, a
/// checkpoint and a sync token) is upgraded with all of it kept.
#[test]
fn format_1_upgrade_keeps_everything() {
    let _serial = serial();
    let (_dir, path) = fixture("store-format-1");
    let config = both_modes_config();
    let index = Index::open(&path, &cred1(), config.clone()).unwrap();
    assert_eq!(index.store().format(), 1);
    let before = contents(&index, &["test"]);
    assert_eq!(before.records.len(), 2);
    assert_eq!(before.failures.len(), 1);
    assert!(before.state[0].1.is_some() && before.state[0].3.is_some());
    let answers = battery(&index);
    let index = index.upgrade(&cred1(), config.clone()).unwrap();
    assert_upgraded(&index, &path);
    assert_eq!(contents(&index, &["test"]), before);
    assert_eq!(battery(&index), answers);
    drop(index);
    assert_no_plaintext(&path, &["alpha body", "bravo body"]);
}

/// States of the hook of [`search_and_writes_go_on_during_the_rebuild`].
static PAUSE: (Mutex<u8>, Condvar) = (Mutex::new(0), Condvar::new());

/// Holds the upgrade once its copy is done until the other thread has
/// searched and written (state 1: paused, 2: go on).
fn pause_after_copy(point: &'static str) {
    if point == "copied" {
        let (lock, cv) = &PAUSE;
        let mut s = lock.lock().unwrap();
        *s = 1;
        cv.notify_all();
        while *s != 2 {
            s = cv.wait(s).unwrap();
        }
    }
}

/// While the new index is built, the old one answers searches in both
/// modes (from another thread, with the upgrade held at a point where it
/// has copied every record) and takes writes; the writes are in the
/// upgraded index (a new record, a patch, a delete whose tombstone still
/// refuses an older upsert), and nothing else changed.
#[test]
fn search_and_writes_go_on_during_the_rebuild() {
    let _serial = serial();
    let (_dir, path) = fixture("store-format-3");
    let config = both_modes_config();
    let index = Index::open(&path, &cred3(), config.clone()).unwrap();
    let answers = battery(&index);
    *PAUSE.0.lock().unwrap() = 0;
    sealdex::upgrade::set_test_hook(Some(pause_after_copy));
    let prepared = std::thread::scope(|s| {
        let searcher = s.spawn(|| {
            let (lock, cv) = &PAUSE;
            let mut st = lock.lock().unwrap();
            while *st != 1 {
                st = cv.wait(st).unwrap();
            }
            drop(st);
            // The upgrade is under way: the old index answers as before.
            let during = battery(&index);
            index
                .apply(vec![
                    Op::upsert(chat("$e5", "written during the upgrade: dumplings")),
                    Op::patch(
                        "chat",
                        "$e4",
                        Metadata {
                            flagged: Some(true),
                            ..Metadata::default()
                        },
                    ),
                    Op::delete("chat", "$e1").with_version(30),
                ])
                .unwrap();
            *lock.lock().unwrap() = 2;
            cv.notify_all();
            during
        });
        let prepared = index.prepare_upgrade(&cred3(), config.clone());
        let during = searcher.join().unwrap();
        assert_eq!(during, answers, "answers during the rebuild");
        prepared.unwrap()
    });
    sealdex::upgrade::set_test_hook(None);
    // More writes after the prepared copy: the final catch-up brings them.
    index
        .apply(vec![Op::upsert(chat("$e6", "written before the swap"))])
        .unwrap();
    let sources = [maildir_source(), "chat".to_string()];
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let expected = contents(&index, &sources);
    let expected_answers = battery(&index);
    let (index, report) = prepared.finish(index).unwrap();
    assert_eq!(report.caught_up, 1, "{report:?}");
    assert_upgraded(&index, &path);
    let got = contents(&index, &sources);
    assert_eq!(got, expected);
    assert_eq!(battery(&index), expected_answers);
    assert!(ids(&index, "dumplings", SearchMode::Inverted, Order::Newest).contains(&"$e5".into()));
    assert_eq!(both(&index, "swap"), vec!["$e6".to_string()]);
    let e4 = got.records.iter().find(|r| r.id == "$e4").unwrap();
    assert!(e4.flags.contains(sealdex::Flags::FLAGGED));
    // The delete made during the upgrade kept its tombstone.
    let applied = index
        .apply(vec![
            Op::upsert(chat("$e1", "an older upsert")).with_version(25),
        ])
        .unwrap();
    assert_eq!(applied.skipped, 1);
    assert!(index.get_by_id("chat", "$e1").unwrap().is_none());
}

/// The points of an upgrade where the crash test kills it, in order; from
/// `swapped` on, the index is the new one.
const POINTS: &[&str] = &[
    "copying",
    "copied",
    "inverted-built",
    "caught-up",
    "swapped",
    "removing",
    "removed",
];

/// Killed with SIGKILL at each step of an upgrade (in a child process: this
/// test binary, running [`child_upgrade_until_killed`]), the index opens
/// afterwards, in format 3 before the swap and 4 after, complete (every
/// record equal, verify clean), the half-built or old directory is removed
/// by that open, and an upgrade then completes.
#[test]
fn a_kill_at_each_step_leaves_a_complete_index() {
    let _serial = serial();
    let config = both_modes_config();
    let (_ref_dir, ref_path) = fixture("store-format-3");
    let sources = [maildir_source(), "chat".to_string()];
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (expected, answers) = {
        let index = Index::open(&ref_path, &cred3(), config.clone()).unwrap();
        (contents(&index, &sources), battery(&index))
    };
    for (i, point) in POINTS.iter().enumerate() {
        let (_dir, path) = fixture("store-format-3");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_upgrade_until_killed", "--include-ignored"])
            .env("SEALDEX_UPGRADE_CHILD_INDEX", &path)
            .env("SEALDEX_UPGRADE_KILL_AT", point)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(9), "{point}: {status:?}");
        let swapped = i >= POINTS.iter().position(|p| *p == "swapped").unwrap();
        let index =
            Index::open(&path, &cred3(), config.clone()).unwrap_or_else(|e| panic!("{point}: {e}"));
        assert!(!leftover(&path).exists(), "{point}: left over");
        assert_eq!(
            index.store().format(),
            if swapped { 4 } else { 3 },
            "{point}"
        );
        let report = index.verify();
        assert!(report.is_ok(), "{point}: {report:?}");
        assert_eq!(contents(&index, &sources), expected, "{point}");
        assert_eq!(battery(&index), answers, "{point}");
        let index = index.upgrade(&cred3(), config.clone()).unwrap();
        assert_upgraded(&index, &path);
        assert_eq!(contents(&index, &sources), expected, "{point}");
    }
}

/// Not a test of its own: the child process of
/// [`a_kill_at_each_step_leaves_a_complete_index`], which upgrades the
/// index it is given and kills itself with SIGKILL at the point it is
/// given. Without them (a plain test run) it returns at once.
#[test]
#[ignore = "the child process of a_kill_at_each_step_leaves_a_complete_index"]
fn child_upgrade_until_killed() {
    let Some(path) = std::env::var_os("SEALDEX_UPGRADE_CHILD_INDEX") else {
        return;
    };
    fn kill_here(point: &'static str) {
        if std::env::var("SEALDEX_UPGRADE_KILL_AT").as_deref() == Ok(point) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
    sealdex::upgrade::set_test_hook(Some(kill_here));
    let config = both_modes_config();
    let index = Index::open(Path::new(&path), &cred3(), config.clone()).unwrap();
    let _ = index.upgrade(&cred3(), config);
    // Not killed: the parent sees an exit status, not a signal, and fails.
}

/// An index in the current format is returned as it is; a wrong credential
/// is refused before anything is built.
#[test]
fn current_index_and_wrong_credential() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let config = both_modes_config();
    let index = Index::create(&path, &cred3(), config.clone()).unwrap();
    index.apply(vec![Op::upsert(chat("$x", "hello"))]).unwrap();
    assert!(!index.upgrade_available());
    assert!(matches!(
        index.prepare_upgrade(&cred3(), config.clone()),
        Err(sealdex::Error::Upgrade(_))
    ));
    let index = index.upgrade(&cred3(), config.clone()).unwrap();
    assert_eq!(index.len(), 1);
    drop(index);

    let (_dir, path) = fixture("store-format-3");
    let index = Index::open(&path, &cred3(), config.clone()).unwrap();
    let wrong = Credential::AppKey(SecretKey::from_bytes([0x11; 32]));
    assert!(matches!(
        index.prepare_upgrade(&wrong, config.clone()),
        Err(sealdex::Error::WrongKey)
    ));
    assert!(!leftover(&path).exists());
    assert_eq!(index.store().format(), 3);
}

/// `sealdex upgrade PATH` upgrades the format-1 fixture; `verify` then
/// passes and a search finds its records.
#[test]
fn cli_upgrade() {
    let (_dir, path) = fixture("store-format-1");
    let sealdex = |args: &[&str]| {
        let out = common::run(
            std::process::Command::new(env!("CARGO_BIN_EXE_sealdex"))
                .args(args)
                .env("SEALDEX_PASSPHRASE", "pw")
                .env_remove("SEALDEX_DIR")
                .env_remove("RUST_LOG"),
        );
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let p = path.to_str().unwrap();
    let out = sealdex(&["upgrade", p]);
    assert!(
        out.contains("upgraded to store format 4: 2 records"),
        "{out}"
    );
    let out = sealdex(&["upgrade", p]);
    assert!(out.is_empty(), "{out}");
    sealdex(&["--dir", p, "verify"]);
    let out = sealdex(&["--dir", p, "count", "bravo"]);
    assert_eq!(out.trim(), "1");
}

/// An index opened through a symbolic link is upgraded in the directory
/// the link points to; the link stays a link.
#[test]
fn upgrade_through_a_symbolic_link() {
    let _serial = serial();
    let (dir, path) = fixture("store-format-1");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let config = both_modes_config();
    let index = Index::open(&link, &cred1(), config.clone()).unwrap();
    let index = index.upgrade(&cred1(), config.clone()).unwrap();
    assert_eq!(index.len(), 2);
    drop(index);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let index = Index::open(&path, &cred1(), config).unwrap();
    assert_upgraded(&index, &path);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
