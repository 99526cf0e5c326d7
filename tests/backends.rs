//! Integration tests of the real message sources: Tree, Maildir and Mbox,
//! on fixtures built in temporary directories.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sealdex::backends::{self, Maildir, Mbox, Tree};
use sealdex::{
    Change, Cursor, Error, Flags, MessageRef, Metadata, Source, SourceError, SourceErrorKind,
    SyncToken,
};
use tempfile::TempDir;

/// Lists the whole source in pages of `limit`, checking the page invariants.
fn list_all(src: &mut dyn Source, limit: usize) -> Vec<MessageRef> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = src.list(cursor.as_ref(), limit).unwrap();
        assert!(
            page.refs.len() <= limit.max(1),
            "page larger than the limit"
        );
        out.extend(page.refs);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(out.len() < 1_000_000, "paging does not terminate");
    }
    out
}

fn ids(refs: &[MessageRef]) -> Vec<String> {
    refs.iter().map(|r| r.id.clone()).collect()
}

/// Checks that every page size lists the same ids, each exactly once.
fn check_paging(src: &mut dyn Source, expected: &[&str]) {
    for limit in [1, 2, 3, 5, 256] {
        let got = ids(&list_all(src, limit));
        assert_eq!(got, expected, "limit {limit}");
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "duplicate ids at limit {limit}");
    }
    let page = src.list(None, 1).unwrap();
    assert_eq!(page.total, Some(expected.len() as u64));
}

/// Checks that a fresh source resumes from a mid cursor of another one.
fn check_resume(first: &mut dyn Source, second: &mut dyn Source, expected: &[&str]) {
    let page = first.list(None, 2).unwrap();
    let cursor = page.next.expect("more than one page");
    let mut got = ids(&page.refs);
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let page = second.list(Some(&c), 2).unwrap();
        got.extend(ids(&page.refs));
        cursor = page.next;
    }
    assert_eq!(got, expected);
}

/// The changes as short strings: `+id` created, `~id` content updated, `>id`
/// moved, `*id` metadata updated, `-id` deleted.
fn summarise(changes: &[Change]) -> Vec<String> {
    let mut out: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Created(r) => format!("+{}", r.id),
            Change::ContentUpdated(r) => format!("~{}", r.id),
            Change::Moved(r, _) => format!(">{}", r.id),
            Change::MetadataUpdated(r, _) => format!("*{}", r.id),
            Change::Deleted { id } => format!("-{id}"),
        })
        .collect();
    out.sort();
    out
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

fn mail(subject: &str) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nBody of {subject}\r\n").into_bytes()
}

// ---------------------------------------------------------------- Tree

const TREE_IDS: [&str; 6] = [
    "a.eml",
    "ham/1.txt",
    "ham/2.txt",
    "ham/sub/3",
    "spam-2/00001.7ce3307b56dbc6e7d3ef2e3e3fb01e1f.txt",
    "z",
];

fn tree_fixture() -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    for id in TREE_IDS {
        write(&root.join(id), &mail(id));
    }
    // Hidden files and directories are not mail.
    write(&root.join(".DS_Store"), b"junk");
    write(&root.join("ham/.1.txt.swp"), b"junk");
    write(&root.join(".git/objects/x"), b"junk");
    fs::create_dir_all(root.join("empty/dir")).unwrap();
    dir
}

#[test]
fn tree_lists_everything_once_in_path_order() {
    let dir = tree_fixture();
    let mut tree = Tree::open(dir.path()).unwrap();
    check_paging(&mut tree, &TREE_IDS);
    let refs = list_all(&mut tree, 10);
    assert_eq!(refs[1].locator, b"ham/1.txt");
    assert!(refs.iter().all(|r| r.version.is_some() && r.size.is_some()));
}

#[test]
fn tree_resumes_from_a_mid_cursor() {
    let dir = tree_fixture();
    let mut first = Tree::open(dir.path()).unwrap();
    let mut second = Tree::open(dir.path()).unwrap();
    check_resume(&mut first, &mut second, &TREE_IDS);
}

#[test]
fn tree_fetch_returns_bytes_and_folders() {
    let dir = tree_fixture();
    let mut tree = Tree::open(dir.path()).unwrap();
    let refs = list_all(&mut tree, 100);
    let fetched = tree.fetch(&refs);
    assert_eq!(fetched.len(), refs.len());
    for (r, m) in refs.iter().zip(&fetched) {
        let m = m.as_ref().unwrap();
        assert_eq!(m.id, r.id);
        assert_eq!(m.bytes, mail(&r.id));
        assert_eq!(m.flags, None);
        assert_eq!(m.version, r.version);
    }
    let folders: Vec<Option<&str>> = fetched
        .iter()
        .map(|m| m.as_ref().unwrap().folder.as_deref())
        .collect();
    assert_eq!(
        folders,
        [
            None,
            Some("ham"),
            Some("ham"),
            Some("ham/sub"),
            Some("spam-2"),
            None
        ]
    );
}

#[test]
fn tree_vanished_and_oversized_files_are_err_entries() {
    let dir = tree_fixture();
    write(&dir.path().join("big.eml"), &vec![b'x'; 5000]);
    let mut tree = Tree::open(dir.path()).unwrap().with_max_message_bytes(1000);
    let refs = list_all(&mut tree, 100);
    fs::remove_file(dir.path().join("ham/2.txt")).unwrap();
    let fetched = tree.fetch(&refs);
    assert_eq!(fetched.len(), refs.len());
    for (r, m) in refs.iter().zip(&fetched) {
        match r.id.as_str() {
            "ham/2.txt" => assert_eq!(m.as_ref().unwrap_err().id, "ham/2.txt"),
            "big.eml" => {
                let e = m.as_ref().unwrap_err();
                assert!(e.reason.contains("limit"), "{}", e.reason);
            }
            _ => assert!(m.is_ok()),
        }
    }
    // A forged locator cannot leave the root.
    let evil = MessageRef {
        id: "x".into(),
        locator: b"../../etc/passwd".to_vec(),
        ..MessageRef::default()
    };
    assert!(tree.fetch(&[evil])[0].is_err());
}

#[test]
fn tree_changes() {
    let dir = tree_fixture();
    let root = dir.path();
    let mut tree = Tree::open(root).unwrap();
    let token = tree.sync_token().unwrap();
    let same = tree.changes(&token).unwrap();
    assert!(same.changes.is_empty());

    write(&root.join("new/4.eml"), &mail("four"));
    write(
        &root.join("ham/1.txt"),
        &mail("a longer subject than before"),
    );
    fs::remove_file(root.join("z")).unwrap();
    // A rename to another directory is a new id.
    fs::rename(root.join("ham/sub/3"), root.join("spam-2/3")).unwrap();
    let changes = tree.changes(&same.token).unwrap();
    assert_eq!(
        summarise(&changes.changes),
        ["+new/4.eml", "+spam-2/3", "-ham/sub/3", "-z", "~ham/1.txt"]
    );
    assert!(tree.changes(&changes.token).unwrap().changes.is_empty());
}

#[test]
fn malformed_tokens_are_errors() {
    let dir = tree_fixture();
    let mut tree = Tree::open(dir.path()).unwrap();
    for bad in [
        vec![],
        vec![0xff; 3],
        vec![1, 4, b't', b'r', b'e', b'e', 9, 9],
    ] {
        let e = tree.changes(&SyncToken(bad)).unwrap_err();
        assert_eq!(e.kind(), SourceErrorKind::Malformed, "{e}");
        assert!(!e.is_retryable());
    }
    // A token of another backend is refused too.
    let mbox_dir = TempDir::new().unwrap();
    let path = mbox_dir.path().join("box.mbox");
    write(&path, MBOX.as_bytes());
    let token = Mbox::open(&path).unwrap().sync_token().unwrap();
    let e = tree.changes(&token).unwrap_err();
    assert_eq!(e.kind(), SourceErrorKind::Malformed);
    assert!(e.to_string().contains("mbox"), "{e}");
    let mut truncated = tree.sync_token().unwrap();
    truncated.0.pop();
    assert!(tree.changes(&truncated).is_err());
}

/// A mailbox that vanished is `NotFound` and not retried, at open and at
/// every later call, for every backend; and it stays that kind once it is
/// the crate's error.
#[test]
fn a_vanished_mailbox_is_not_found_and_not_retryable() {
    let check = |e: SourceError| {
        assert_eq!(e.kind(), SourceErrorKind::NotFound, "{e}");
        assert!(!e.is_retryable());
        let e = Error::source("test", e);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("not retried"), "{e}");
    };
    let gone = TempDir::new().unwrap().path().join("nothing-here");
    check(backends::open_path(&gone).err().unwrap());
    check(Maildir::open(&gone).unwrap_err());

    let dir = maildir_fixture();
    let mut md = Maildir::open(dir.path()).unwrap();
    let token = md.sync_token().unwrap();
    let tree_dir = tree_fixture();
    let mut tree = Tree::open(tree_dir.path()).unwrap();
    let tree_token = tree.sync_token().unwrap();
    let (mbox_dir, mbox_path) = mbox_fixture();
    let mut mbox = Mbox::open(&mbox_path).unwrap();
    let mbox_token = mbox.sync_token().unwrap();
    drop((dir, tree_dir, mbox_dir));
    check(md.list(None, 10).unwrap_err());
    check(md.changes(&token).unwrap_err());
    check(tree.changes(&tree_token).unwrap_err());
    check(mbox.changes(&mbox_token).unwrap_err());
}

#[test]
fn source_errors_say_whether_to_retry() {
    use std::io::{Error as IoError, ErrorKind};
    for (io, kind, retry) in [
        (ErrorKind::NotFound, SourceErrorKind::NotFound, false),
        (ErrorKind::PermissionDenied, SourceErrorKind::Auth, false),
        (ErrorKind::TimedOut, SourceErrorKind::Timeout, true),
        (ErrorKind::ConnectionReset, SourceErrorKind::Network, true),
        (ErrorKind::Interrupted, SourceErrorKind::Transient, true),
        (ErrorKind::InvalidData, SourceErrorKind::Malformed, false),
        (ErrorKind::OutOfMemory, SourceErrorKind::Other, false),
    ] {
        let e = SourceError::from(IoError::from(io));
        assert_eq!((e.kind(), e.is_retryable()), (kind, retry), "{io:?}");
        assert_eq!(Error::source("s", e).is_retryable(), retry);
    }
    let auth = Error::source("imap:alice", SourceError::auth("LOGIN refused"));
    assert!(!auth.is_retryable());
    assert!(auth.to_string().contains("authentication failed"), "{auth}");
    assert!(auth.to_string().contains("LOGIN refused"), "{auth}");
    let net = Error::source("imap:alice", SourceError::network("connection reset"));
    assert!(net.is_retryable());
    assert!(net.to_string().contains("retried"), "{net}");
    assert!(!Error::Panicked("the fetch stage".into()).is_retryable());
}

#[cfg(unix)]
#[test]
fn tree_keeps_non_utf8_names_exact_and_survives_symlink_loops() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = TempDir::new().unwrap();
    let root = dir.path();
    write(
        &root.join(OsStr::from_bytes(b"caf\xe9.eml")),
        b"Subject: x\r\n\r\nlatin-1\r\n",
    );
    write(
        &root.join(OsStr::from_bytes(b"caf\xe8.eml")),
        b"Subject: y\r\n\r\nother\r\n",
    );
    write(&root.join("d/m.eml"), b"Subject: z\r\n\r\n\r\n");
    std::os::unix::fs::symlink("..", root.join("d/loop")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();

    let mut tree = Tree::open(root).unwrap();
    let refs = list_all(&mut tree, 1);
    let got = ids(&refs);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], "caf\u{fffd}.eml");
    assert_eq!(got[1], "caf\u{fffd}.eml#636166e92e656d6c");
    assert_eq!(got[2], "d/m.eml");
    assert_eq!(refs[0].locator, b"caf\xe8.eml");
    let fetched = tree.fetch(&refs);
    assert_eq!(
        fetched[0].as_ref().unwrap().bytes,
        b"Subject: y\r\n\r\nother\r\n"
    );
    assert_eq!(
        fetched[1].as_ref().unwrap().bytes,
        b"Subject: x\r\n\r\nlatin-1\r\n"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the file names and page size, the pages together list every
    /// file exactly once, sorted by relative path.
    #[test]
    fn tree_pages_cover_every_file_once_in_order(
        paths in proptest::collection::btree_set("[a-c]{1,2}(/[a-c_.-]{1,3}){0,2}", 1..40),
        limit in 1usize..12,
    ) {
        let dir = TempDir::new().unwrap();
        // A path can't be both a file and a directory: keep the ones that fit,
        // and skip hidden names, which the tree ignores by design.
        let mut files: BTreeMap<Vec<u8>, PathBuf> = BTreeMap::new();
        for p in &paths {
            if p.split('/').any(|c| c.starts_with('.')) {
                continue;
            }
            let path = dir.path().join(p);
            if path.parent().is_some_and(|d| d.is_file()) || path.exists() {
                continue;
            }
            if fs::create_dir_all(path.parent().unwrap()).is_err() || fs::write(&path, p).is_err() {
                continue;
            }
            files.insert(p.as_bytes().to_vec(), path);
        }
        // Files that later became a directory's name are gone from `files`.
        files.retain(|_, path| path.is_file());
        let expected: Vec<String> = files.keys().map(|k| String::from_utf8(k.clone()).unwrap()).collect();
        let mut tree = Tree::open(dir.path()).unwrap();
        let got = ids(&list_all(&mut tree, limit));
        prop_assert_eq!(got, expected);
    }
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn spamassassin_corpus() {
    let Some(corpora) = std::env::var_os("SEALDEX_CORPORA") else {
        panic!(
            "SEALDEX_CORPORA is not set: this test needs the corpora (it is #[ignore]d, and was asked for with --ignored or --include-ignored): fetch them with `scripts/fetch-corpora.sh` and set SEALDEX_CORPORA to the directory it prints"
        );
    };
    let root = Path::new(&corpora).join("spamassassin");
    let mut tree = Tree::open(&root).unwrap();
    let refs = list_all(&mut tree, 256);
    assert_eq!(refs.len(), 6046);
    assert_eq!(
        refs[0].id,
        "easy-ham-1/00001.7c53336b37003a9286aba55d2945844c.txt"
    );
    let unique: HashSet<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), refs.len());
    let fetched = tree.fetch(&refs[..10]);
    let first = fetched[0].as_ref().unwrap();
    assert_eq!(first.folder.as_deref(), Some("easy-ham-1"));
    assert!(!first.bytes.is_empty());
}

// ---------------------------------------------------------------- Maildir

/// The messages of the Maildir fixture, as (relative path, folder, flags).
const MAILDIR: [(&str, &str, u8); 7] = [
    ("new/1000.A.host", "INBOX", 1),
    ("cur/1001.B.host:2,S", "INBOX", 0),
    ("cur/1002.C.host:2,FS", "INBOX", 2),
    ("cur/1003.D.host:2,", "INBOX", 1),
    ("cur/1004.E.host:2,FRS", "INBOX", 2),
    (".Sent/cur/2000.F.host:2,S", "Sent", 0),
    (".Archive.2020/new/3000.G.host", "Archive/2020", 1),
];
const MAILDIR_IDS: [&str; 7] = [
    "1000.A.host",
    "1001.B.host",
    "1002.C.host",
    "1003.D.host",
    "1004.E.host",
    "2000.F.host",
    "3000.G.host",
];

fn maildir_fixture() -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    for sub in ["cur", "new", "tmp", ".Sent/tmp", ".Archive.2020/cur"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    for (path, _, _) in MAILDIR {
        write(&root.join(path), &mail(path));
    }
    write(&root.join("tmp/1005.being-delivered"), &mail("tmp"));
    write(&root.join("cur/.hidden:2,S"), b"junk");
    write(&root.join("dovecot-uidlist"), b"junk");
    dir
}

#[test]
fn maildir_lists_by_unique_name_with_folders_and_flags() {
    let dir = maildir_fixture();
    let mut md = Maildir::open(dir.path()).unwrap();
    check_paging(&mut md, &MAILDIR_IDS);
    let refs = list_all(&mut md, 3);
    let fetched = md.fetch(&refs);
    for ((path, folder, flags), m) in MAILDIR.iter().zip(&fetched) {
        let m = m.as_ref().unwrap();
        assert_eq!(m.bytes, mail(path), "{path}");
        assert_eq!(m.folder.as_deref(), Some(*folder), "{path}");
        assert_eq!(m.flags, Some(Flags::from_bits(*flags)), "{path}");
        assert!(m.version.is_some());
    }
}

#[test]
fn maildir_resumes_from_a_mid_cursor() {
    let dir = maildir_fixture();
    let mut first = Maildir::open(dir.path()).unwrap();
    let mut second = Maildir::open(dir.path()).unwrap();
    check_resume(&mut first, &mut second, &MAILDIR_IDS);
}

#[test]
fn maildir_fetch_follows_renames_and_reports_vanished_and_oversized() {
    let dir = maildir_fixture();
    let root = dir.path();
    write(&root.join("cur/1006.big.host:2,S"), &vec![b'x'; 5000]);
    let mut md = Maildir::open(root).unwrap().with_max_message_bytes(1000);
    let refs = list_all(&mut md, 100);
    // Read by another client: new/ to cur/ with the seen flag.
    fs::rename(
        root.join("new/1000.A.host"),
        root.join("cur/1000.A.host:2,S"),
    )
    .unwrap();
    fs::remove_file(root.join("cur/1001.B.host:2,S")).unwrap();
    let fetched = md.fetch(&refs);
    assert_eq!(fetched.len(), refs.len());
    let read = fetched[0].as_ref().unwrap();
    assert_eq!(read.id, "1000.A.host");
    assert_eq!(read.flags, Some(Flags::empty()));
    assert_eq!(fetched[1].as_ref().unwrap_err().id, "1001.B.host");
    let big = fetched
        .iter()
        .find(|m| m.as_ref().is_err_and(|e| e.id == "1006.big.host"));
    assert!(big.unwrap().as_ref().unwrap_err().reason.contains("limit"));
}

#[test]
fn maildir_changes() {
    let dir = maildir_fixture();
    let root = dir.path();
    let mut md = Maildir::open(root).unwrap();
    let token = md.sync_token().unwrap();
    assert!(md.changes(&token).unwrap().changes.is_empty());

    // Read: new/ to cur/ with flags; same folder, so only metadata changed.
    fs::rename(
        root.join("new/1000.A.host"),
        root.join("cur/1000.A.host:2,S"),
    )
    .unwrap();
    // Moved to another folder, keeping its unique name.
    fs::rename(
        root.join("cur/1001.B.host:2,S"),
        root.join(".Sent/cur/1001.B.host:2,S"),
    )
    .unwrap();
    // Flags only.
    fs::rename(
        root.join("cur/1003.D.host:2,"),
        root.join("cur/1003.D.host:2,F"),
    )
    .unwrap();
    // New content.
    write(
        &root.join("cur/1002.C.host:2,FS"),
        &mail("rewritten with a new body"),
    );
    // Deleted, and a new message.
    fs::remove_file(root.join("cur/1004.E.host:2,FRS")).unwrap();
    write(&root.join("new/1007.H.host"), &mail("new"));

    let changes = md.changes(&token).unwrap();
    assert_eq!(
        summarise(&changes.changes),
        [
            "*1000.A.host",
            "*1003.D.host",
            "+1007.H.host",
            "-1004.E.host",
            ">1001.B.host",
            "~1002.C.host"
        ]
    );
    let moved = changes.changes.iter().find_map(|c| match c {
        Change::Moved(r, _) => Some(r),
        _ => None,
    });
    assert_eq!(moved.unwrap().locator, b".Sent/cur/1001.B.host:2,S");
    let fetched = md.fetch(std::slice::from_ref(moved.unwrap()));
    assert_eq!(fetched[0].as_ref().unwrap().folder.as_deref(), Some("Sent"));
    assert!(md.changes(&changes.token).unwrap().changes.is_empty());
}

#[test]
fn maildir_duplicate_unique_names_get_distinct_ids() {
    let dir = maildir_fixture();
    let root = dir.path();
    write(&root.join(".Sent/cur/1001.B.host:2,S"), &mail("copy"));
    let mut md = Maildir::open(root).unwrap();
    let got = ids(&list_all(&mut md, 1));
    assert_eq!(got.len(), MAILDIR_IDS.len() + 1);
    assert!(got.contains(&"1001.B.host".to_string()));
    assert!(got.contains(&"1001.B.host#cur/1001.B.host:2,S".to_string()));
}

// ------------------------------------------------- incremental sync tokens

/// Sets the modification time of `root` and every directory under it an
/// hour back, as if the mailbox had last changed then. Directories changed
/// within the last seconds are re-read on every run by design (a change in
/// the same clock tick as a listing could leave the mtime equal), so a test
/// of what an unchanged mailbox costs needs them older than that.
fn age_directories(root: &Path) {
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        fs::File::open(&dir).unwrap().set_modified(past).unwrap();
        for d in fs::read_dir(&dir).unwrap() {
            let d = d.unwrap();
            if d.file_type().unwrap().is_dir() {
                stack.push(d.path());
            }
        }
    }
}

/// A Maildir of `per_dir` messages in each of INBOX's new/ and cur/ and
/// three subfolders' cur/.
fn big_maildir(per_dir: usize) -> (TempDir, usize) {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    let subs = [
        "new",
        "cur",
        ".Sent/cur",
        ".Archive.2020/cur",
        ".Lists.rust/cur",
    ];
    for (s, sub) in subs.iter().enumerate() {
        fs::create_dir_all(root.join(sub)).unwrap();
        for i in 0..per_dir {
            let info = if sub.ends_with("cur") { ":2,S" } else { "" };
            let name = format!("17000{s}{i:05}.M{i}P1.host{info}");
            fs::write(root.join(sub).join(name), mail(&format!("{s}-{i}"))).unwrap();
        }
    }
    fs::create_dir_all(root.join("tmp")).unwrap();
    (dir, subs.len() * per_dir)
}

/// An unchanged Maildir of a few thousand messages: the re-run reads no
/// directory (it stats the root, the folders and their cur/ and new/), finds
/// nothing, and gives back the very token it was given.
#[test]
fn maildir_no_change_rerun_reads_no_directory() {
    let (dir, n) = big_maildir(400);
    age_directories(dir.path());
    let mut md = Maildir::open(dir.path()).unwrap();
    let token = md.sync_token().unwrap();
    let full = md.walk_stats();
    // The root, new/, cur/ (tmp/ is never read), three folders and their
    // cur/.
    assert_eq!(full.dirs_read, 9, "{full:?}");
    assert_eq!(list_all(&mut md, 1000).len(), n);
    // The token is the listing, but compact: well under format 1's
    // ~200 bytes a message.
    assert!(
        token.0.len() < 80 * n,
        "{} bytes for {n} messages",
        token.0.len()
    );

    let before = md.walk_stats();
    let again = md.changes(&token).unwrap();
    let after = md.walk_stats();
    assert!(again.changes.is_empty());
    assert_eq!(after.dirs_read, before.dirs_read, "no directory is read");
    assert_eq!(after.dirs_kept - before.dirs_kept, 9);
    assert_eq!(again.token, token, "an unchanged Maildir keeps its token");
    // A new source object (a new process) does the same from the token.
    let mut fresh = Maildir::open(dir.path()).unwrap();
    assert!(fresh.changes(&token).unwrap().changes.is_empty());
    assert_eq!(fresh.walk_stats().dirs_read, 0);
}

/// A delivery to one folder re-reads that folder's new/ only.
#[test]
fn maildir_new_message_rereads_only_its_folder() {
    let (dir, _) = big_maildir(40);
    let root = dir.path();
    fs::create_dir_all(root.join(".Sent/new")).unwrap();
    age_directories(root);
    let mut md = Maildir::open(root).unwrap();
    let token = md.sync_token().unwrap();
    assert_eq!(md.walk_stats().dirs_read, 10);

    write(&root.join(".Sent/new/1800000000.N1.host"), &mail("new"));
    let before = md.walk_stats();
    let c = md.changes(&token).unwrap();
    assert_eq!(summarise(&c.changes), ["+1800000000.N1.host"]);
    assert_eq!(md.walk_stats().dirs_read - before.dirs_read, 1);
    match &c.changes[0] {
        Change::Created(r) => {
            assert_eq!(r.locator, b".Sent/new/1800000000.N1.host");
            let m = md.fetch(std::slice::from_ref(r)).remove(0).unwrap();
            assert_eq!(m.folder.as_deref(), Some("Sent"));
        }
        other => panic!("{other:?}"),
    }
    // Listed within the racy window: read once more.
    let before = md.walk_stats();
    let c = md.changes(&c.token).unwrap();
    assert!(c.changes.is_empty());
    assert_eq!(md.walk_stats().dirs_read - before.dirs_read, 1);
    // Setting modification times back is noticed (it moves the ctime), so
    // every directory is read once...
    age_directories(root);
    let before = md.walk_stats();
    let c = md.changes(&c.token).unwrap();
    assert!(c.changes.is_empty());
    assert_eq!(md.walk_stats().dirs_read - before.dirs_read, 10);
    // ...and then left alone.
    let before = md.walk_stats();
    assert!(md.changes(&c.token).unwrap().changes.is_empty());
    assert_eq!(md.walk_stats().dirs_read, before.dirs_read);
}

/// A flag change and a move are metadata changes carrying the folder and
/// flags they set, never content updates.
#[test]
fn maildir_flag_change_and_move_are_metadata() {
    let (dir, _) = big_maildir(20);
    let root = dir.path();
    age_directories(root);
    let mut md = Maildir::open(root).unwrap();
    let token = md.sync_token().unwrap();
    // Flagged, in place (INBOX cur/), and read + moved out of INBOX new/.
    fs::rename(
        root.join("cur/17000100007.M7P1.host:2,S"),
        root.join("cur/17000100007.M7P1.host:2,FS"),
    )
    .unwrap();
    fs::rename(
        root.join("new/17000000003.M3P1.host"),
        root.join(".Archive.2020/cur/17000000003.M3P1.host:2,S"),
    )
    .unwrap();
    let before = md.walk_stats();
    let c = md.changes(&token).unwrap();
    // INBOX cur/ and new/, and the archive's cur/.
    assert_eq!(md.walk_stats().dirs_read - before.dirs_read, 3);
    assert_eq!(
        summarise(&c.changes),
        ["*17000100007.M7P1.host", ">17000000003.M3P1.host"]
    );
    for change in &c.changes {
        match change {
            Change::MetadataUpdated(r, m) => {
                assert_eq!(r.locator, b"cur/17000100007.M7P1.host:2,FS");
                assert_eq!(
                    *m,
                    Metadata {
                        folders: Some(vec!["INBOX".into()]),
                        labels: None,
                        unread: Some(false),
                        flagged: Some(true),
                    }
                );
            }
            Change::Moved(r, m) => {
                assert_eq!(r.locator, b".Archive.2020/cur/17000000003.M3P1.host:2,S");
                assert_eq!(
                    *m,
                    Metadata {
                        folders: Some(vec!["Archive/2020".into()]),
                        labels: None,
                        unread: Some(false),
                        flagged: Some(false),
                    }
                );
            }
            other => panic!("not a metadata change: {other:?}"),
        }
    }
    assert!(md.changes(&c.token).unwrap().changes.is_empty());
}

/// A token this build does not write is refused by name, or (format 1, the
/// whole listing an older build stored) diffed against a full listing;
/// never misread.
#[test]
fn maildir_old_and_foreign_tokens() {
    #[derive(serde::Serialize)]
    struct Format1Entry {
        key: Vec<u8>,
        id: String,
        locator: Vec<u8>,
        version: Option<String>,
        size: Option<u64>,
        folder: Option<String>,
        flags: Option<Flags>,
    }
    let dir = maildir_fixture();
    let mut md = Maildir::open(dir.path()).unwrap();
    // Format 1 listing one message under its current name but with another
    // version, and one that is gone.
    let listed = list_all(&mut md, 100);
    let one = listed.iter().find(|r| r.id == "1002.C.host").unwrap();
    let entries = vec![
        Format1Entry {
            key: b"0999.gone".to_vec(),
            id: "0999.gone".into(),
            locator: b"cur/0999.gone:2,S".to_vec(),
            version: Some("1-1".into()),
            size: Some(1),
            folder: Some("INBOX".into()),
            flags: Some(Flags::empty()),
        },
        Format1Entry {
            key: one.id.as_bytes().to_vec(),
            id: one.id.clone(),
            locator: one.locator.clone(),
            version: Some("0-0".into()),
            size: one.size,
            folder: Some("INBOX".into()),
            flags: Some(Flags::FLAGGED),
        },
    ];
    let old = postcard::to_allocvec(&(1u8, "maildir", entries)).unwrap();
    let c = md.changes(&SyncToken(old)).unwrap();
    let summary = summarise(&c.changes);
    assert!(summary.contains(&"-0999.gone".to_string()), "{summary:?}");
    assert!(summary.contains(&"~1002.C.host".to_string()), "{summary:?}");
    assert_eq!(summary.len(), listed.len() + 1, "{summary:?}");
    // The answer is a token of the current format.
    assert!(md.changes(&c.token).unwrap().changes.is_empty());

    for (bad, says) in [
        (
            postcard::to_allocvec(&(9u8, "maildir")).unwrap(),
            "format 9",
        ),
        (postcard::to_allocvec(&(2u8, "tree")).unwrap(), "tree"),
        (
            Tree::open(dir.path()).unwrap().sync_token().unwrap().0,
            "tree",
        ),
    ] {
        let e = md.changes(&SyncToken(bad)).unwrap_err();
        assert_eq!(e.kind(), SourceErrorKind::Malformed, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
}

/// A file rewritten in place under its name leaves its directory's mtime:
/// the default run does not see it, a full rescan does (the documented
/// trade of the tree backend).
#[test]
fn tree_in_place_edit_needs_a_full_rescan() {
    let dir = tree_fixture();
    let root = dir.path();
    age_directories(root);
    let mut tree = Tree::open(root).unwrap();
    let token = tree.sync_token().unwrap();
    fs::write(root.join("ham/1.txt"), mail("rewritten in place, longer")).unwrap();
    let before = tree.walk_stats();
    assert!(tree.changes(&token).unwrap().changes.is_empty());
    assert_eq!(tree.walk_stats().dirs_read, before.dirs_read);
    let mut full = Tree::open(root).unwrap().with_full_rescan(true);
    let c = full.changes(&token).unwrap();
    assert_eq!(summarise(&c.changes), ["~ham/1.txt"]);
    // A new file is seen either way, by re-reading its directory only.
    write(&root.join("ham/sub/4.eml"), &mail("four"));
    let before = tree.walk_stats();
    let c = tree.changes(&token).unwrap();
    assert_eq!(summarise(&c.changes), ["+ham/sub/4.eml"]);
    assert_eq!(tree.walk_stats().dirs_read - before.dirs_read, 1);
}

/// An unchanged mbox is not read again, and keeps its token.
#[test]
fn mbox_unchanged_is_not_reread() {
    let (_dir, path) = mbox_fixture();
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let mut mbox = Mbox::open(&path).unwrap();
    let token = mbox.sync_token().unwrap();
    let c = mbox.changes(&token).unwrap();
    assert!(c.changes.is_empty());
    assert_eq!(c.token, token);
    // Appending a message changes the stamp: read, and found.
    let mut more = fs::read(&path).unwrap();
    more.extend_from_slice(
        b"From x@example.org Sat Jan  3 01:05:38 1996\nMessage-ID: <five@example.org>\n\nfive\n",
    );
    fs::write(&path, more).unwrap();
    let c = mbox.changes(&token).unwrap();
    assert_eq!(summarise(&c.changes), ["+five@example.org"]);
}

// ---------------------------------------------------------------- Mbox

const MBOX: &str = "\
From alice@example.org Sat Jan  3 01:05:34 1996
Message-ID: <one@example.org>
Subject: one

first
From bob@example.org Sat Jan  3 01:05:35 1996
Subject: no id
Status: RO

second
>From here on, this line was escaped
>>From and this one twice

From alice@example.org Sat Jan  3 01:05:36 1996
Message-ID: <one@example.org>
Subject: one again

duplicate
From carol@example.org Sat Jan  3 01:05:37 1996
Message-Id:   <four@example.org>
X-Status: F

fourth
";

const MBOX_IDS: [&str; 4] = [
    "one@example.org",
    "box.mbox#2",
    "one@example.org#3",
    "four@example.org",
];

fn mbox_fixture() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("box.mbox");
    write(&path, MBOX.as_bytes());
    (dir, path)
}

#[test]
fn mbox_lists_by_message_id() {
    let (_dir, path) = mbox_fixture();
    let mut mbox = Mbox::open(&path).unwrap();
    check_paging(&mut mbox, &MBOX_IDS);
}

#[test]
fn mbox_resumes_from_a_mid_cursor() {
    let (_dir, path) = mbox_fixture();
    let mut first = Mbox::open(&path).unwrap();
    let mut second = Mbox::open(&path).unwrap();
    check_resume(&mut first, &mut second, &MBOX_IDS);
}

#[test]
fn mbox_fetch_returns_unescaped_messages() {
    let (_dir, path) = mbox_fixture();
    let mut mbox = Mbox::open(&path).unwrap();
    let refs = list_all(&mut mbox, 2);
    let fetched: Vec<_> = mbox.fetch(&refs).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        fetched[0].bytes,
        b"Message-ID: <one@example.org>\nSubject: one\n\nfirst\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&fetched[1].bytes),
        "Subject: no id\nStatus: RO\n\nsecond\nFrom here on, this line was escaped\n>From and this one twice\n\n"
    );
    assert!(fetched[3].bytes.starts_with(b"Message-Id:"));
    for (r, m) in refs.iter().zip(&fetched) {
        assert_eq!(m.id, r.id);
        assert_eq!(m.version, r.version);
        assert_eq!(m.folder, None);
        assert_eq!(m.flags, None);
    }
    // Every byte of the file belongs to exactly one message.
    let total: u64 = refs.iter().map(|r| r.size.unwrap()).sum();
    assert_eq!(total, MBOX.len() as u64);
}

#[test]
fn mbox_vanished_rewritten_and_oversized() {
    let (_dir, path) = mbox_fixture();
    let mut mbox = Mbox::open(&path).unwrap().with_max_message_bytes(120);
    let refs = list_all(&mut mbox, 10);
    let fetched = mbox.fetch(&refs);
    assert!(fetched[0].is_ok());
    let big = fetched[1].as_ref().unwrap_err();
    assert!(big.reason.contains("limit"), "{}", big.reason);

    // Rewritten under our feet: the hash check refuses to hand out the wrong
    // message under an old id.
    write(&path, MBOX.replace("first", "FIRST").as_bytes());
    assert!(mbox.fetch(&refs[..1])[0].is_err());

    fs::remove_file(&path).unwrap();
    let fetched = mbox.fetch(&refs);
    assert_eq!(fetched.len(), refs.len());
    assert!(fetched.iter().all(Result::is_err));
    assert!(
        mbox.list(None, 10).is_err(),
        "a vanished mbox is an error, not an empty one"
    );
}

#[test]
fn mbox_changes() {
    let (_dir, path) = mbox_fixture();
    let mut mbox = Mbox::open(&path).unwrap();
    let token = mbox.sync_token().unwrap();
    assert!(mbox.changes(&token).unwrap().changes.is_empty());

    // Drop the duplicate, edit the last one, append a new one.
    let start = MBOX
        .find("From alice@example.org Sat Jan  3 01:05:36")
        .unwrap();
    let end = MBOX.find("From carol").unwrap();
    let edited = format!(
        "{}{}From dave@example.org Sat Jan  3 01:05:38 1996\nMessage-ID: <five@example.org>\n\nfifth\n",
        &MBOX[..start],
        MBOX[end..].replace("X-Status: F", "X-Status: A")
    );
    write(&path, edited.as_bytes());
    let changes = mbox.changes(&token).unwrap();
    assert_eq!(
        summarise(&changes.changes),
        [
            "+five@example.org",
            "-one@example.org#3",
            "~four@example.org"
        ]
    );
    // Offsets moved for the edited message; the new locator fetches it.
    let updated = changes.changes.iter().find_map(|c| match c {
        Change::ContentUpdated(r) => Some(r.clone()),
        _ => None,
    });
    let m = mbox.fetch(&[updated.unwrap()]).remove(0).unwrap();
    assert!(m.bytes.ends_with(b"X-Status: A\n\nfourth\n"));
    assert!(mbox.changes(&changes.token).unwrap().changes.is_empty());
}

// ---------------------------------------------------------------- open_path

#[test]
fn open_path_detects_the_backend() {
    let md = maildir_fixture();
    let tree = tree_fixture();
    let (_mbox_dir, mbox) = mbox_fixture();
    let cases: [(&Path, &str, usize); 3] = [
        (md.path(), "maildir:", MAILDIR_IDS.len()),
        (tree.path(), "tree:", TREE_IDS.len()),
        (&mbox, "mbox:", MBOX_IDS.len()),
    ];
    for (path, prefix, count) in cases {
        let mut src = backends::open_path(path).unwrap();
        let canonical = fs::canonicalize(path).unwrap();
        assert_eq!(src.name(), format!("{prefix}{}", canonical.display()));
        assert_eq!(list_all(src.as_mut(), 4).len(), count);
    }
    assert!(backends::open_path(Path::new("/nonexistent/sealdex")).is_err());
}
