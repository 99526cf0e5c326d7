//! One index shared by several devices through the real relay on loopback
//! (issue 15): the leader crawls a Maildir and the others end with the same
//! search results without fetching; local changes, an offline device, a
//! new device bootstrapping from a snapshot (interrupted and resumed),
//! a device of another group, a malformed message, envelopes tampered
//! with or forged in the relay's own store, and no canary on any disk; and,
//! with the corpora, three devices sharing the SpamAssassin corpus. The
//! leader's SIGKILL mid-crawl is in `mediator_share_failover.rs`.
#![cfg(feature = "mediator")]

mod common;
use common::Counting;
mod mediator_util;

#[path = "../benches/common/battery.rs"]
mod battery;

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

/// Every hit of `q` in one mode and order, without snippets.
fn all_hits(index: &Index, q: &str, mode: SearchMode, order: Order) -> sealdex::SearchResults {
    let opts = SearchOptions {
        limit: None,
        mode,
        order,
        snippet_bytes: 0,
        ..SearchOptions::default()
    };
    index.search(q, &opts).unwrap()
}

/// Every query's total and ids in order, in the orders `orders`, in the
/// forward scan and the inverted index.
///
/// Ranking by relevance in the inverted index uses the index's term
/// statistics, which count a replaced document until its segment is
/// merged: two devices that applied the same changes with different
/// merges may order equal matches differently after records were
/// patched or upserted twice. Tests of such histories compare newest
/// first (and the totals).
fn answers_to(
    index: &Index,
    queries: &[&str],
    orders: &[Order],
) -> Vec<(String, usize, Vec<String>)> {
    index.wait_for_inverted().unwrap();
    let mut out = Vec::new();
    for &q in queries {
        for mode in [SearchMode::Forward, SearchMode::Inverted] {
            for &order in orders {
                let r = all_hits(index, q, mode, order);
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
    converge_in(a, b, &[Order::Newest, Order::Relevance]).await
}

/// [`converge`] for the orders `orders`.
async fn converge_in(a: &Index, b: &Index, orders: &[Order]) {
    let deadline = tokio::time::Instant::now() + STEP * 3;
    loop {
        if a.len() == b.len() {
            let (x, y) = (
                answers_to(a, &QUERIES, orders),
                answers_to(b, &QUERIES, orders),
            );
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
    converge_in(&a.index, &b.index, &[Order::Newest]).await;
    converge_in(&a.index, &c.index, &[Order::Newest]).await;
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
    converge_in(&a.index, &b.index, &[Order::Newest]).await;
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
    converge_in(&a.index, &b.index, &[Order::Newest]).await;
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
    // The index's form: records under the leader's document numbers, and
    // the leader's inverted index put in place (answers compared below).
    assert!(st.adopted > 0 && st.index_installed, "{st:?}");
    converge_in(&a.index, &n.index, &[Order::Newest]).await;
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

/// A device's sharing waits bounded by `within` (the corpus test's steps
/// take longer than [`STEP`]).
async fn wait_long(
    h: &mut SyncHandle,
    within: Duration,
    f: impl Fn(&sealdex::sync::share::Status) -> bool,
) -> sealdex::sync::share::Status {
    match tokio::time::timeout(within, h.wait_for(f)).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("timed out waiting; status {:?}", h.status()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALDEX_CORPORA"]
async fn three_devices_share_the_spamassassin_corpus() {
    let Some(corpus) = common::corpora("spamassassin") else {
        return;
    };
    // Bounds each step of a release build on a loaded 2-core machine (the
    // whole corpus is indexed in seconds); debug builds are far slower.
    let within = Duration::from_secs(600);
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let default_options = |c: &mut ShareConfig| c.options = IndexOptions::default();
    let mut a = dev(&url, 47, tmp.path(), "a", 0xa, &corpus, default_options).await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    // b joins while the leader crawls; c once it is done (so c gets some
    // of the corpus live and the rest, or all, from a snapshot).
    let mut b = dev(&url, 47, tmp.path(), "b", 0xb, &corpus, default_options).await;
    let st = wait_long(a.h(), within, |s| s.idle).await;
    assert!(st.ingested && st.reflected > 0, "{st:?}");
    let mut c = dev(&url, 47, tmp.path(), "c", 0xc, &corpus, default_options).await;
    for d in [&mut b, &mut c] {
        let st = wait_long(d.h(), within, |s| s.idle).await;
        assert_eq!(st.role, Role::Follower, "{st:?}");
    }
    let files = walkdir::WalkDir::new(&corpus)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(a.fetched.load(Ordering::SeqCst), files);
    // Most of the corpus parses; what does not is recorded as failures,
    // reflected too.
    let records = a.index.len();
    assert!(records > files * 9 / 10, "{records} of {files}");
    let queries: Vec<&str> = battery::MAIL.iter().map(|q| q.text).collect();
    let want = corpus_answers(&a.index, &queries);
    assert!(
        want.iter().filter(|(_, total, _)| *total > 0).count() > queries.len(),
        "the battery finds something in most queries"
    );
    for d in [&b, &c] {
        assert_eq!(d.fetched.load(Ordering::SeqCst), 0, "a follower fetched");
        assert_eq!(d.index.len(), records);
        assert_eq!(
            d.index.failures().unwrap().len(),
            a.index.failures().unwrap().len()
        );
        let got = corpus_answers(&d.index, &queries);
        for (p, q) in want.iter().zip(&got) {
            assert_eq!(p, q);
        }
    }
    for d in [&mut a, &mut b, &mut c] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
}

/// Every query's total, and its hits in both modes: newest first (with
/// the messages of one date in id order: a device breaks ties between
/// equal dates by a key of its own) and, by relevance, as a set (see
/// [`answers_to`] for why not in order).
fn corpus_answers(index: &Index, queries: &[&str]) -> Vec<(String, usize, Vec<String>)> {
    index.wait_for_inverted().unwrap();
    let mut out = Vec::new();
    for &q in queries {
        for mode in [SearchMode::Forward, SearchMode::Inverted] {
            for order in [Order::Newest, Order::Relevance] {
                let r = all_hits(index, q, mode, order);
                let mut hits: Vec<(std::cmp::Reverse<Option<i64>>, String)> = r
                    .hits
                    .into_iter()
                    .map(|h| (std::cmp::Reverse(h.record.timestamp), h.id))
                    .collect();
                if order == Order::Newest {
                    assert!(hits.is_sorted_by(|x, y| x.0 <= y.0), "{q}: newest first");
                    hits.sort();
                } else {
                    hits.sort_by(|x, y| x.1.cmp(&y.1));
                }
                let ids = hits.into_iter().map(|(_, id)| id).collect();
                out.push((format!("{q} {mode:?} {order:?}"), r.total, ids));
            }
        }
    }
    out
}

/// The upserts' ids in a queued envelope (as the relay stores it: sender
/// u64 LE, time u64 LE, envelope), opened with the group's keys.
/// Where a relay log entry's envelope starts: after the sender, the time,
/// and the count and list of its recipients (`src/sync/relay/sled_store.rs`).
fn envelope_at(value: &[u8]) -> usize {
    17 + 8 * usize::from(value[16])
}

fn ids_in(keys: &sealdex::sync::keys::GroupKeys, value: &[u8]) -> Vec<String> {
    use sealdex::sync::share::wire::{Msg, Reassembly, Received};
    let sender = u64::from_le_bytes(value[..8].try_into().unwrap());
    let opened =
        sealdex::sync::envelope::open(keys, sender, false, &value[envelope_at(value)..]).unwrap();
    match Reassembly::default().receive(1, &opened.plaintext).unwrap() {
        Received::Msg(m, _) => match *m {
            Msg::Batch(b) => b
                .ops
                .iter()
                .filter(|o| matches!(o, Op::Upsert(_)))
                .map(|o| o.id().to_owned())
                .collect(),
            _ => Vec::new(),
        },
        Received::Pending => Vec::new(),
    }
}

/// The relay is the attacker: while it is down, its store is edited (an
/// envelope's bit flipped, another's sender changed, a third truncated, a
/// valid one queued again, and a well-formed batch sealed under another
/// group's key injected). The device that was offline receives its queue
/// from the restarted relay: it refuses the five, applies everything else,
/// and its index holds none of what the altered envelopes carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_tampered_at_the_relay_never_reach_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("relay");
    std::fs::create_dir_all(&data).unwrap();
    let data_arg = data.to_str().unwrap().to_owned();
    let (mut relay_proc, url) = spawn_mediator(&["--listen", "127.0.0.1:0", "--data", &data_arg]);
    let k = keys(44);
    // b registers (its queue starts now), then goes offline.
    device(&url, &k, 0xb).await.close().await.unwrap();
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..200);
    let mut a = dev(&url, 44, tmp.path(), "a", 0xa, &mail, |c| {
        c.options.batch_messages = 20;
    })
    .await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    a.h().wait_for_within(|s| s.idle).await.unwrap();
    a.handle.take().unwrap().stop().await.unwrap();
    relay_proc.kill();

    let db = sled::Config::new()
        .path(data.join("relay.sled"))
        .open()
        .unwrap();
    // The group's log: every entry names b (registered before a crawled).
    let queues = db.open_tree("log").unwrap();
    let prefix = k.group_id().0.to_vec();
    let entries: Vec<(sled::IVec, sled::IVec)> =
        queues.scan_prefix(&prefix).map(Result::unwrap).collect();
    let with_ops: Vec<usize> = (0..entries.len())
        .filter(|&i| !ids_in(&k, &entries[i].1).is_empty())
        .collect();
    assert!(with_ops.len() >= 8, "{} batches queued", with_ops.len());
    let mut lost = std::collections::HashSet::new();
    let targets = [with_ops[1], with_ops[3], with_ops[5]];
    for (n, &i) in targets.iter().enumerate() {
        let (key, value) = &entries[i];
        lost.extend(ids_in(&k, value));
        let mut v = value.to_vec();
        match n {
            // One bit of the ciphertext.
            0 => v[envelope_at(value) + 40] ^= 0x01,
            // Attributed to another device.
            1 => v[..8].copy_from_slice(&0xcu64.to_le_bytes()),
            // Truncated.
            _ => v.truncate(v.len() - 17),
        }
        queues.insert(key, v).unwrap();
    }
    let last_seq = u64::from_be_bytes(entries.last().unwrap().0[32..40].try_into().unwrap());
    let queued_at = |seq: u64| {
        let mut key = prefix.clone();
        key.extend_from_slice(&seq.to_be_bytes());
        key
    };
    // A valid envelope queued a second time: a replay.
    queues
        .insert(queued_at(last_seq + 1), entries[with_ops[6]].1.clone())
        .unwrap();
    // A well-formed batch from "a", sealed under another group's key.
    let forged = {
        let record = sealdex::Record {
            source: "forged".into(),
            id: "forged-1".into(),
            subject: "forgedword".into(),
            body: format!("forgedword {CANARY}"),
            ..sealdex::Record::default()
        };
        let msg = sealdex::sync::share::wire::Msg::Batch(sealdex::sync::share::wire::Batch {
            ops: vec![Op::upsert(record).with_version(1 << 40)],
            ..Default::default()
        });
        let plaintext = sealdex::sync::share::wire::encode(&msg).unwrap().remove(0);
        // Sender, time and recipients as a real entry has them.
        let head = &entries[0].1;
        let mut v = head[..envelope_at(head)].to_vec();
        v.extend(
            sealdex::sync::envelope::seal(&keys(45), 0xa, false, 1 << 50, &plaintext).unwrap(),
        );
        v
    };
    queues.insert(queued_at(last_seq + 2), forged).unwrap();
    db.flush().unwrap();
    drop((queues, db));

    let (_relay_proc, url) = spawn_mediator(&["--listen", "127.0.0.1:0", "--data", &data_arg]);
    let dir = tmp.path().join("b");
    let b_index = new_index(&dir);
    let fetched = Arc::new(AtomicUsize::new(0));
    let mut b = start(&url, 44, &b_index, &dir, 0xb, &mail, &fetched, |c| {
        c.sources.clear();
    })
    .await;
    let st = b.wait_for_within(|s| s.idle).await.unwrap();
    assert_eq!(st.refused, 5, "{st:?}");
    assert!(st.error.is_none(), "{st:?}");
    assert!(!lost.is_empty());
    let name = sealdex::backends::open_path(&mail)
        .unwrap()
        .name()
        .to_owned();
    assert_eq!(b_index.len(), a.index.len() - lost.len());
    for r in a.index.store().records().map(Result::unwrap) {
        let there = b_index.get_by_id(&name, &r.id).unwrap().is_some();
        assert_eq!(there, !lost.contains(&r.id), "record {}", r.id);
    }
    for mode in [SearchMode::Forward, SearchMode::Inverted] {
        let opts = SearchOptions {
            mode,
            ..SearchOptions::default()
        };
        b_index.wait_for_inverted().unwrap();
        assert_eq!(b_index.search("forgedword", &opts).unwrap().total, 0);
    }
    assert!(b_index.get_by_id("forged", "forged-1").unwrap().is_none());
    assert!(b_index.verify().is_ok());
    b.stop().await.unwrap();
}

fn label_total(index: &Index, label: &str) -> usize {
    index
        .search(&format!("label:{label}"), &SearchOptions::default())
        .unwrap()
        .total
}

/// A mass relabel made on a follower runs inside the group's transaction:
/// while it is open another device cannot take the lock and the other
/// devices have received none of it; at the commit they receive all of it.
/// A large change is cut into several transactions, and every device ends
/// with the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_relabel_runs_in_group_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..300);
    let mut a = dev(&url, 48, tmp.path(), "a", 0xa, &mail, |_| {}).await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    let mut b = dev(&url, 48, tmp.path(), "b", 0xb, &mail, |_| {}).await;
    a.h().wait_for_within(|s| s.idle).await.unwrap();
    converge(&a.index, &b.index).await;
    let name = sealdex::backends::open_path(&mail)
        .unwrap()
        .name()
        .to_owned();
    let ids: Vec<String> = b.index.store().records().map(|r| r.unwrap().id).collect();
    assert_eq!(ids.len(), 300);
    let relabel = |label: &str| Metadata {
        labels: Some(vec![label.to_owned()]),
        ..Metadata::default()
    };

    // The change stops after its first 100 ops until the test lets it go.
    let (at_gate, gate_reached) = tokio::sync::oneshot::channel::<()>();
    let (go, gate) = std::sync::mpsc::channel::<()>();
    let mut at_gate = Some(at_gate);
    let ops = {
        let (name, label) = (name.clone(), relabel("moved"));
        ids.clone().into_iter().enumerate().map(move |(i, id)| {
            if i == 100 {
                if let Some(t) = at_gate.take() {
                    let _ = t.send(());
                }
                gate.recv_timeout(STEP)
                    .expect("the test lets the change go on");
            }
            Op::patch(&name, &id, label.clone())
        })
    };
    let handle = b.handle.take().unwrap();
    let running = tokio::spawn(async move {
        let r = handle.bulk_with(ops, 50, usize::MAX).await;
        (handle, r)
    });
    tokio::time::timeout(STEP, gate_reached)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(label_total(&b.index, "moved"), 100);
    // Another device of the group cannot take the lock meanwhile.
    let other = device(&url, &keys(48), 0xee).await;
    match other
        .begin_transaction(b"another bulk change", Duration::from_secs(5))
        .await
    {
        Err(sealdex::sync::SyncError::TransactionRejected { holder, .. }) => {
            assert_eq!(holder, 0xb)
        }
        r => panic!("the lock was not held: {r:?}"),
    }
    // The relay holds what the open transaction reflected.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(label_total(&a.index, "moved"), 0);
    go.send(()).unwrap();
    let (handle, report) = tokio::time::timeout(STEP, running).await.unwrap().unwrap();
    b.handle = Some(handle);
    let report = report.unwrap();
    assert_eq!(report.applied, 300, "{report:?}");
    assert_eq!(report.transactions, 1, "{report:?}");
    let index = Arc::clone(&a.index);
    eventually("the relabel reached the leader", || {
        label_total(&index, "moved") == 300
    })
    .await;
    // Released: the other device gets the lock now.
    tokio::time::timeout(
        STEP,
        other.begin_transaction(b"another bulk change", Duration::from_secs(5)),
    )
    .await
    .unwrap()
    .unwrap();
    other.commit_transaction().await.unwrap();
    other.close().await.unwrap();

    // A larger change in transactions of one batch each; running it again
    // changes nothing.
    let second: Vec<Op> = ids
        .iter()
        .map(|id| Op::patch(&name, id, relabel("sorted")))
        .collect();
    let report = b.h().bulk_with(second.clone(), 20, 1).await.unwrap();
    assert_eq!(
        (report.applied, report.transactions),
        (300, 15),
        "{report:?}"
    );
    let again = b.h().bulk(second, 1000).await.unwrap();
    assert_eq!((again.applied, again.unchanged), (0, 300), "{again:?}");
    let index = Arc::clone(&a.index);
    eventually("the second relabel reached the leader", || {
        label_total(&index, "sorted") == 300
    })
    .await;
    // Newest first: see `answers_to`.
    converge_in(&a.index, &b.index, &[Order::Newest]).await;
    for d in [&mut a, &mut b] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
}

/// A group member whose answer in the bodies' form does not check out (a
/// block body that is not one) is refused by the new device, which asks
/// again without bodies and ends with the leader's answers, having fetched
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_asks_again_without_bodies_when_a_peers_do_not_check_out() {
    use sealdex::sync::client::Event;
    use sealdex::sync::share::wire::{
        self, BodiesChunk, IndexChunk, Msg, Reassembly, Received, ShippedBody,
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail, 0..60);
    let mut a = dev(&url, 44, tmp.path(), "a", 1, &mail, |c| {
        c.snapshot_chunk_records = 5;
        c.snapshot_pace = Some(Duration::from_millis(300));
    })
    .await;
    a.h()
        .wait_for_within(|s| s.role == Role::Leader)
        .await
        .unwrap();
    a.h().wait_for_within(|s| s.idle).await.unwrap();
    let mut rogue = device(&url, &keys(44), 0xee).await;
    let mut n = dev(&url, 44, tmp.path(), "n", 9, &mail, |_| {}).await;
    // The rogue answers the new device's request for bodies at once, with
    // a body that is no block body.
    let mut reassembly = Reassembly::default();
    let request = loop {
        if let Event::Reflected {
            reflected_id,
            plaintext,
            ..
        } = next(&mut rogue).await
            && let Ok(Received::Msg(msg, _)) = reassembly.receive(reflected_id, &plaintext)
            && let Msg::BodiesRequest(r) = *msg
        {
            break r;
        }
    };
    let bad = Msg::BodiesChunk(BodiesChunk {
        index: IndexChunk {
            to: request.device,
            request: request.request,
            docno_end: 1000,
            blocks: Vec::new(),
            files: Vec::new(),
            meta: None,
            after: 500u64.to_be_bytes().to_vec(),
            last: false,
            checkpoints: Vec::new(),
            tokens: Vec::new(),
        },
        bodies: vec![ShippedBody {
            docnos: vec![400, 401],
            body: vec![1, 0x0e, 1, 2, 3],
        }],
        dictionary: None,
    });
    for p in wire::encode(&bad).unwrap() {
        rogue.reflect(&p).unwrap().await.unwrap();
    }
    let st = n
        .h()
        .wait_for_within(|s| s.refused > 0 && matches!(s.bootstrap, Bootstrap::Done { .. }))
        .await
        .unwrap();
    assert!(st.adopted > 0, "{st:?}");
    converge_in(&a.index, &n.index, &[Order::Newest]).await;
    assert_eq!(mail_ids(&n.index), 60);
    assert_eq!(
        n.fetched.load(Ordering::SeqCst),
        0,
        "the new device fetched"
    );
    assert!(n.index.verify().is_ok());
    rogue.close().await.unwrap();
    for d in [&mut a, &mut n] {
        d.handle.take().unwrap().stop().await.unwrap();
    }
}
