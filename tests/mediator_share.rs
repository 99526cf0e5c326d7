//! One index shared by several devices through the real relay on loopback
//! (issue 15): the leader crawls a Maildir and the others end with the same
//! search results without fetching; local changes, an offline device, a
//! new device bootstrapping from a snapshot (interrupted and resumed),
//! a device of another group, a malformed message, and no canary on any
//! disk. The leader's SIGKILL mid-crawl is in `mediator_share_failover.rs`.
#![cfg(feature = "mediator")]

mod mediator_util;

/// Bounded waits on a sharing handle.
trait WaitWithin {
    async fn wait_for_within(
        &mut self,
        f: impl Fn(&sealdex::sync::share::Status) -> bool,
    ) -> sealdex::sync::SyncResult<sealdex::sync::share::Status>;
}

impl WaitWithin for sealdex::sync::share::SyncHandle {
    async fn wait_for_within(
        &mut self,
        f: impl Fn(&sealdex::sync::share::Status) -> bool,
    ) -> sealdex::sync::SyncResult<sealdex::sync::share::Status> {
        let status = self.status();
        match tokio::time::timeout(mediator_util::STEP * 3, self.wait_for(f)).await {
            Ok(r) => r,
            Err(_) => panic!(
                "timed out waiting; status at the start {status:?}, now {:?}",
                self.status()
            ),
        }
    }
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mediator_util::*;
use sealdex::ops::Op;
use sealdex::pipeline::IndexOptions;
use sealdex::sync::envelope::ReplayGuard;
use sealdex::sync::share::{self, Bootstrap, Role, ShareConfig, SyncHandle};
use sealdex::{
    Credential, Index, IndexConfig, KdfParams, Metadata, Order, SearchMode, SearchOptions,
};

const CANARY: &str = "zqxcanaryqzx";

/// A source around a real Maildir that counts the messages it fetches.
struct Counting {
    inner: Box<dyn sealdex::Source>,
    fetched: Arc<AtomicUsize>,
}

impl sealdex::Source for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn list(
        &mut self,
        cursor: Option<&sealdex::Cursor>,
        limit: usize,
    ) -> Result<sealdex::Page, sealdex::SourceError> {
        self.inner.list(cursor, limit)
    }
    fn fetch(
        &mut self,
        refs: &[sealdex::MessageRef],
    ) -> Vec<Result<sealdex::RawMessage, sealdex::FetchError>> {
        self.fetched.fetch_add(refs.len(), Ordering::SeqCst);
        self.inner.fetch(refs)
    }
    fn sync_token(&mut self) -> Result<sealdex::SyncToken, sealdex::SourceError> {
        self.inner.sync_token()
    }
    fn changes(
        &mut self,
        since: &sealdex::SyncToken,
    ) -> Result<sealdex::Changes, sealdex::SourceError> {
        self.inner.changes(since)
    }
}

const WORDS: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

/// A Maildir of `n` messages: subjects and bodies from [`WORDS`], some
/// flagged, one in twenty carrying the canary.
fn maildir(dir: &Path, range: std::ops::Range<usize>) {
    for sub in [
        "cur",
        "new",
        "tmp",
        ".Archive/cur",
        ".Archive/new",
        ".Archive/tmp",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in range {
        let (a, b) = (WORDS[i % 8], WORDS[(i / 8) % 8]);
        let canary = if i.is_multiple_of(20) { CANARY } else { "" };
        let flags = if i.is_multiple_of(7) { "FS" } else { "S" };
        std::fs::write(
            dir.join(format!("cur/{i}.M.host:2,{flags}")),
            format!(
                "From: {b} <{b}{i}@example.org>\r\nTo: me@example.org\r\nSubject: {a} report {i}\r\n\
                 Date: Tue, {} Oct 2024 10:{:02}:00 +0000\r\nMessage-ID: <{i}@example.org>\r\n\r\n\
                 {a} {b} body number {i} {canary}\r\n",
                1 + i % 28,
                i % 60
            ),
        )
        .unwrap();
    }
}

fn new_index(dir: &Path) -> Arc<Index> {
    Arc::new(
        Index::open_or_create(
            dir,
            &Credential::passphrase("pw"),
            IndexConfig {
                kdf: KdfParams::insecure_fast(),
                ..IndexConfig::default()
            },
        )
        .unwrap(),
    )
}

struct Dev {
    index: Arc<Index>,
    handle: Option<SyncHandle>,
    fetched: Arc<AtomicUsize>,
    dir: PathBuf,
    id: u64,
}

impl Dev {
    fn h(&mut self) -> &mut SyncHandle {
        self.handle.as_mut().expect("running")
    }
}

/// A device with its index in `root/name`, crawling `mail` when it leads.
async fn dev(
    url: &str,
    seed: u8,
    root: &Path,
    name: &str,
    id: u64,
    mail: &Path,
    tune: impl FnOnce(&mut ShareConfig),
) -> Dev {
    let dir = root.join(name);
    let index = new_index(&dir);
    let fetched = Arc::new(AtomicUsize::new(0));
    let handle = start(url, seed, &index, &dir, id, mail, &fetched, tune).await;
    Dev {
        index,
        handle: Some(handle),
        fetched,
        dir,
        id,
    }
}

#[allow(clippy::too_many_arguments)]
async fn start(
    url: &str,
    seed: u8,
    index: &Arc<Index>,
    dir: &Path,
    id: u64,
    mail: &Path,
    fetched: &Arc<AtomicUsize>,
    tune: impl FnOnce(&mut ShareConfig),
) -> SyncHandle {
    init_tracing();
    let mut cfg = ShareConfig::new(url, keys(seed), id);
    cfg.guard = ReplayGuard::open(&dir.join("sync-nonces")).unwrap();
    cfg.sources.push(Box::new(Counting {
        inner: sealdex::backends::open_path(mail).unwrap(),
        fetched: Arc::clone(fetched),
    }));
    cfg.options = IndexOptions {
        batch_messages: 40,
        ..IndexOptions::default()
    };
    cfg.snapshot_patience = Duration::from_secs(3);
    tune(&mut cfg);
    tokio::time::timeout(STEP, share::start(Arc::clone(index), cfg))
        .await
        .unwrap()
        .unwrap()
}

const QUERIES: [&str; 10] = [
    "alpha",
    "bravo OR charlie",
    "report -delta",
    "is:flagged",
    "in:archive",
    "from:echo",
    "subject:golf",
    "body number",
    CANARY,
    "hotel is:unread",
];

/// Every query's total and ids in order, newest first and by relevance, in
/// the forward scan and the inverted index.
fn answers(index: &Index) -> Vec<(String, usize, Vec<String>)> {
    index.wait_for_inverted().unwrap();
    let mut out = Vec::new();
    for q in QUERIES {
        for mode in [SearchMode::Forward, SearchMode::Inverted] {
            for order in [Order::Newest, Order::Relevance] {
                let r = index
                    .search(
                        q,
                        &SearchOptions {
                            limit: None,
                            mode,
                            order,
                            snippet_bytes: 0,
                            ..SearchOptions::default()
                        },
                    )
                    .unwrap();
                let ids = r.hits.into_iter().map(|h| h.id).collect();
                out.push((format!("{q} {mode:?} {order:?}"), r.total, ids));
            }
        }
    }
    out
}

/// Waits (bounded) until `f` holds, checking every 50 ms.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP * 3;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `b` answers every query exactly as `a` does.
async fn converge(a: &Index, b: &Index) {
    let deadline = tokio::time::Instant::now() + STEP * 3;
    loop {
        if a.len() == b.len() {
            let (x, y) = (answers(a), answers(b));
            if x == y {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                for (p, q) in x.iter().zip(&y) {
                    assert_eq!(p, q);
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} records against {}",
            b.len(),
            a.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The id of message `i` of [`maildir`].
fn id_of(index: &Index, i: usize) -> String {
    index
        .store()
        .records()
        .map(Result::unwrap)
        .find(|r| r.subject == format!("{} report {i}", WORDS[i % 8]))
        .unwrap()
        .id
}

/// The file name of message `i` of [`maildir`], as written.
fn file_of(i: usize) -> String {
    let flags = if i.is_multiple_of(7) { "FS" } else { "S" };
    format!("{i}.M.host:2,{flags}")
}

fn mail_ids(index: &Index) -> usize {
    index
        .search(
            "report",
            &SearchOptions {
                limit: None,
                ..SearchOptions::default()
            },
        )
        .unwrap()
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_share_one_crawl_and_local_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let relay_dir = tmp.path().join("relay");
    let url = relay(&relay_dir, 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..300);

    let mut a = dev(&url, 40, tmp.path(), "a", 0xa, &mail, |_| {}).await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    let mut b = dev(&url, 40, tmp.path(), "b", 0xb, &mail, |_| {}).await;
    let mut c = dev(&url, 40, tmp.path(), "c", 0xc, &mail, |_| {}).await;
    // A device of another group (a wrong group key) with no sources.
    let mut w = dev(&url, 41, tmp.path(), "w", 0xd, &mail, |c| c.sources.clear()).await;

    let st = a.h().wait_for_within(|s| s.idle).await.unwrap();
    assert!(st.ingested && st.reflected > 0, "{st:?}");
    assert_eq!(a.fetched.load(Ordering::SeqCst), 300);
    converge(&a.index, &b.index).await;
    converge(&a.index, &c.index).await;
    assert_eq!(mail_ids(&b.index), 300);
    assert_eq!(b.fetched.load(Ordering::SeqCst), 0, "a follower fetched");
    assert_eq!(c.fetched.load(Ordering::SeqCst), 0, "a follower fetched");
    // The followers hold the leader's checkpoint and token: they could lead.
    let name = sealdex::backends::open_path(&mail)
        .unwrap()
        .name()
        .to_owned();
    assert_eq!(
        b.index.store().checkpoint(&name).unwrap(),
        a.index.store().checkpoint(&name).unwrap()
    );
    assert!(a.index.store().checkpoint(&name).unwrap().unwrap().synced);

    // The other group's device learnt nothing.
    let ws = w.h().status();
    assert_eq!(ws.applied_ops, 0);
    assert!(w.index.is_empty());

    // Local changes on a follower and on the leader reach everyone.
    let flag = Metadata {
        flagged: Some(true),
        labels: Some(vec!["urgent".into()]),
        ..Metadata::default()
    };
    let some_id = |i: usize| id_of(&a.index, i);
    let (id1, id2, id3) = (some_id(1), some_id(2), some_id(3));
    c.index
        .apply(vec![
            Op::patch(&name, &id1, flag.clone()),
            Op::delete(&name, &id2),
        ])
        .unwrap();
    a.index
        .apply(vec![Op::patch(
            &name,
            &id3,
            Metadata {
                unread: Some(true),
                ..Metadata::default()
            },
        )])
        .unwrap();
    for d in [&a, &b] {
        let index = Arc::clone(&d.index);
        eventually("the follower's patch and delete", || {
            index.get_by_id(&name, &id2).unwrap().is_none()
                && index
                    .search("label:urgent", &SearchOptions::default())
                    .unwrap()
                    .total
                    == 1
        })
        .await;
    }
    converge(&a.index, &b.index).await;
    converge(&a.index, &c.index).await;
    assert_eq!(mail_ids(&c.index), 299);

    // A malformed message from a group member is refused and never
    // reaches an index.
    let mut rogue = device(&url, &keys(40), 0xee).await;
    let _ = rogue.take_events();
    let refused = b.h().status().refused;
    rogue.reflect(b"not a message").unwrap().await.unwrap();
    b.h()
        .wait_for_within(|s| s.refused > refused)
        .await
        .unwrap();
    rogue.close().await.unwrap();

    for d in [&mut a, &mut b, &mut c, &mut w] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
    converge(&a.index, &b.index).await;
    // The canary is in the indexes (searchable) and on no disk in clear.
    assert_eq!(
        a.index
            .search(CANARY, &SearchOptions::default())
            .unwrap()
            .total,
        15
    );
    let (ai, bi, ci, wi) = (a.index, b.index, c.index, w.index);
    drop((ai, bi, ci, wi));
    no_canary(&relay_dir);
    for d in ["a", "b", "c", "w"] {
        no_canary(&tmp.path().join(d));
    }
    let _ = (a.dir, a.id);
}

/// No file under `dir` holds the canary raw, upper-cased, in UTF-16, hex
/// or base64 (at each of the three alignments).
fn no_canary(dir: &Path) {
    use base64_forms::forms;
    let files = all_files(dir);
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for (path, bytes) in files {
        for form in forms(CANARY) {
            assert!(
                !contains(&bytes, &form),
                "{} holds the canary ({})",
                path.display(),
                String::from_utf8_lossy(&form)
            );
        }
    }
}

mod base64_forms {
    /// The canary's encodings that a careless write could leave.
    pub fn forms(canary: &str) -> Vec<Vec<u8>> {
        let mut out = vec![
            canary.as_bytes().to_vec(),
            canary.to_uppercase().into_bytes(),
            canary.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            canary
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        ];
        for pad in 0..3 {
            let mut s = vec![b'.'; pad];
            s.extend_from_slice(canary.as_bytes());
            let enc = base64(&s);
            // Skip the characters the padding bytes touch.
            let skip = (pad * 4).div_ceil(3);
            out.push(enc.as_bytes()[skip..enc.len() - 4].to_vec());
        }
        out
    }

    fn base64(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in data.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        s
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_catches_up_with_flags_moves_deletes_and_new_mail() {
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..120);
    let mut a = dev(&url, 42, tmp.path(), "a", 1, &mail, |c| {
        c.rescan = Some(Duration::from_millis(300));
    })
    .await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    let mut b = dev(&url, 42, tmp.path(), "b", 2, &mail, |_| {}).await;
    a.h().wait_for_within(|s| s.idle).await.unwrap();
    converge(&a.index, &b.index).await;

    // b goes offline; the mailbox changes; the leader picks it up.
    b.handle.take().unwrap().stop().await.unwrap();
    let flagged = a
        .index
        .search("is:flagged", &SearchOptions::default())
        .unwrap()
        .total;
    for i in [1, 11, 31, 41, 51] {
        // flagged (none of these was)
        std::fs::rename(
            mail.join(format!("cur/{}", file_of(i))),
            mail.join(format!("cur/{i}.M.host:2,FS")),
        )
        .unwrap();
        // moved
        std::fs::rename(
            mail.join(format!("cur/{}", file_of(i + 1))),
            mail.join(format!(".Archive/cur/{}", file_of(i + 1))),
        )
        .unwrap();
        // deleted
        std::fs::remove_file(mail.join(format!("cur/{}", file_of(i + 2)))).unwrap();
    }
    maildir(&mail, 120..150);
    let index = Arc::clone(&a.index);
    eventually("the leader saw the changes", || {
        mail_ids(&index) == 145
            && index
                .search("in:archive", &SearchOptions::default())
                .unwrap()
                .total
                == 5
            // five flagged here, four among the new messages
            && index
                .search("is:flagged", &SearchOptions::default())
                .unwrap()
                .total
                == flagged + 9
    })
    .await;
    let before = b.fetched.load(Ordering::SeqCst);
    b.handle = Some(start(&url, 42, &b.index, &b.dir, b.id, &mail, &b.fetched, |_| {}).await);
    converge(&a.index, &b.index).await;
    assert_eq!(b.fetched.load(Ordering::SeqCst), before);
    assert_eq!(before, 0);
    for d in [&mut a, &mut b] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_bootstraps_from_a_snapshot_interrupted_once() {
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..300);
    let mut a = dev(&url, 43, tmp.path(), "a", 1, &mail, |c| {
        c.snapshot_chunk_records = 10;
        c.snapshot_pace = Some(Duration::from_millis(150));
    })
    .await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    a.h().wait_for_within(|s| s.idle).await.unwrap();
    // The leader's own change after the crawl: the snapshot carries it.
    let name = sealdex::backends::open_path(&mail)
        .unwrap()
        .name()
        .to_owned();
    let first = a
        .index
        .search("report", &SearchOptions::default())
        .unwrap()
        .hits[0]
        .id
        .clone();
    a.index
        .apply(vec![Op::patch(
            &name,
            &first,
            Metadata {
                labels: Some(vec!["kept".into()]),
                ..Metadata::default()
            },
        )])
        .unwrap();

    let mut n = dev(&url, 43, tmp.path(), "n", 9, &mail, |_| {}).await;
    let st = n
        .h()
        .wait_for_within(|s| matches!(s.bootstrap, Bootstrap::Running { records } if records >= 20))
        .await
        .unwrap();
    assert_eq!(st.role, Role::Bootstrapping);
    // Interrupted: stopped mid-snapshot, and while it is away the leader
    // changes a record the snapshot already delivered.
    n.handle.take().unwrap().stop().await.unwrap();
    let got = n.index.len();
    assert!(
        got > 0 && got < 300,
        "{got} records before the interruption"
    );
    a.index.apply(vec![Op::delete(&name, &first)]).unwrap();
    n.handle = Some(start(&url, 43, &n.index, &n.dir, n.id, &mail, &n.fetched, |_| {}).await);
    let st = n
        .h()
        .wait_for_within(|s| matches!(s.bootstrap, Bootstrap::Done { .. }))
        .await
        .unwrap();
    // Resumed where it stopped: every record came once (299 if the
    // record deleted meanwhile lay after the position it stopped at; a
    // restart from the start would have sent the first 20 or more again).
    let Bootstrap::Done { records } = st.bootstrap else {
        unreachable!()
    };
    assert!((299..=300).contains(&records), "{st:?}");
    converge(&a.index, &n.index).await;
    assert_eq!(
        n.fetched.load(Ordering::SeqCst),
        0,
        "the new device fetched"
    );
    assert_eq!(mail_ids(&n.index), 299);
    // It can lead later without crawling again: the checkpoint came too.
    assert_eq!(
        n.index.store().checkpoint(&name).unwrap(),
        a.index.store().checkpoint(&name).unwrap()
    );
    for d in [&mut a, &mut n] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
}
