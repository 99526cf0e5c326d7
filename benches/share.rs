//! One index shared by the devices of an account (issue 15): what a second
//! device costs through the relay, against indexing from the source.
//!
//! For each corpus (SpamAssassin through the Tree source, ChitChat through
//! `benches/common/chitchat.rs`), on loopback with an in-process relay
//! (embedded store) in a temporary directory on the same disk as the
//! indexes:
//!
//! 1. **source**: a fresh index runs the pipeline over the corpus, alone;
//!    the time until `Index::index` returns (searchable in both modes),
//!    and until `wait_for_inverted` (everything committed to tantivy).
//! 2. **leader**: the same, on a fresh index that shares through the
//!    relay (reflection on), with one more device of the group offline
//!    (it joined while the leader was empty), so the relay queues every
//!    envelope durably for it: the time until
//!    `Index::index` returns, until the relay acknowledged every envelope,
//!    and the sealed bytes reflected per record.
//! 3. **catch-up**: that offline device comes online with an empty index
//!    and applies its queue: time until it is idle, and until its
//!    inverted index is committed.
//! 4. **snapshot**: on a second, fresh relay, the leader's full index and
//!    a new empty device: time until the new device's bootstrap is done
//!    (searchable) and until its inverted index is committed.
//!
//! Each new device's records, and the counts of the battery's queries, are
//! checked against the leader's. Everything shares this machine's cores:
//! the relay, the leader and the new device run in this one process.
//!
//! ```text
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --features mediator --bench share [mail] [chat]
//! SEALDEX_BENCH_RUNS=2   # repeat each corpus
//! ```
//!
//! Bounded: every wait is capped at ten minutes, and a run of both corpora
//! takes a few minutes. `cargo test` never runs it (harness = false).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::chitchat::{ChatDecryptor, ChitChat};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::IndexOptions;
use sealdex::sync::keys::{GroupKey, GroupKeys};
use sealdex::sync::relay::{Relay, RelayConfig};
use sealdex::sync::share::{self, Bootstrap, ShareConfig, Status, SyncHandle};
use sealdex::{
    Credential, Decryptor, Index, IndexConfig, KdfParams, SearchMode, SearchOptions, SecretKey,
    Source,
};

/// Every wait is bounded by this.
const BOUND: Duration = Duration::from_secs(600);

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    }
}

fn new_index(dir: &Path, key: u8) -> Arc<Index> {
    let cred = Credential::AppKey(SecretKey::from_bytes([key; 32]));
    Arc::new(Index::create(dir, &cred, config()).expect("create index"))
}

fn source(corpus: &str) -> (Box<dyn Source>, Box<dyn Decryptor>) {
    let root = common::corpora_dir().expect("set SEALDEX_CORPORA to the corpora directory");
    match corpus {
        "mail" => (
            sealdex::backends::open_path(&root.join("spamassassin")).expect("spamassassin"),
            Box::new(PassThrough::default()),
        ),
        "chat" => (
            Box::new(
                ChitChat::open(common::chitchat_path().expect("chitchat path"))
                    .expect("chitchat corpus"),
            ),
            Box::new(ChatDecryptor),
        ),
        other => panic!("unknown corpus {other} (mail or chat)"),
    }
}

async fn relay(dir: &Path) -> String {
    let relay = Relay::start(RelayConfig::embedded(dir.to_owned()))
        .await
        .expect("relay");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { relay.serve(listener).await });
    format!("ws://{addr}")
}

async fn share(url: &str, keys: &Arc<GroupKeys>, id: u64, index: &Arc<Index>) -> SyncHandle {
    let cfg = ShareConfig::new(url, Arc::clone(keys), id);
    tokio::time::timeout(BOUND, share::start(Arc::clone(index), cfg))
        .await
        .expect("connected in time")
        .expect("connected")
}

async fn wait(h: &mut SyncHandle, what: &str, f: impl Fn(&Status) -> bool) -> Status {
    match tokio::time::timeout(BOUND, h.wait_for(f)).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => panic!("{what}: timed out; {:?}", h.status()),
    }
}

/// Runs a blocking closure off the async threads and times it.
async fn timed<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, f64) {
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let r = f();
        (r, t.elapsed().as_secs_f64())
    })
    .await
    .expect("no panic")
}

/// The battery's totals in both modes (a sanity check that the copies
/// answer as the leader does).
fn totals(index: &Index, corpus: &str) -> Vec<usize> {
    index.wait_for_inverted().expect("inverted");
    let battery = common::battery::battery(corpus).expect("battery");
    let mut out = Vec::new();
    for q in battery {
        for mode in [SearchMode::Forward, SearchMode::Inverted] {
            let opts = SearchOptions {
                mode,
                limit: Some(10),
                snippet_bytes: 0,
                ..SearchOptions::default()
            };
            out.push(index.search(q.text, &opts).expect("search").total);
        }
    }
    out
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Default)]
struct Run {
    corpus: String,
    records: usize,
    load_before: String,
    load_after: String,
    source_searchable: f64,
    source_inverted: f64,
    leader_searchable: f64,
    leader_acked: f64,
    leader_inverted: f64,
    reflected_bytes: u64,
    catchup_idle: f64,
    catchup_inverted: f64,
    catchup_received_bytes: u64,
    snapshot_done: f64,
    snapshot_inverted: f64,
    snapshot_bytes: u64,
}

async fn run(corpus: &str, work: &Path) -> Run {
    let mut r = Run {
        corpus: corpus.to_owned(),
        load_before: load(),
        ..Run::default()
    };
    let options = IndexOptions::default();

    // 1. From the source, alone.
    {
        let index = new_index(&work.join("source"), 1);
        let (mut src, dec) = source(corpus);
        let i = Arc::clone(&index);
        let o = options.clone();
        let t = Instant::now();
        let (report, s) =
            timed(move || i.index(src.as_mut(), dec.as_ref(), &o).expect("index")).await;
        let i = Arc::clone(&index);
        timed(move || i.wait_for_inverted().expect("inverted")).await;
        r.source_searchable = s;
        r.source_inverted = t.elapsed().as_secs_f64();
        r.records = index.len();
        eprintln!(
            "[{corpus}] source: {} stored, {} failed, {s:.2} s searchable, {:.2} s inverted",
            report.stored, report.failed, r.source_inverted
        );
    }
    let _ = std::fs::remove_dir_all(work.join("source"));

    // 2. The leader, reflecting to the relay, with device 0xb1 offline.
    let keys = Arc::new(GroupKeys::derive(&GroupKey::from_bytes([7; 32])).unwrap());
    let url = relay(&work.join("relay1")).await;
    let leader = new_index(&work.join("leader"), 2);
    let mut lh = share(&url, &keys, 0xa1, &leader).await;
    wait(&mut lh, "leader promoted", |s| {
        s.role == share::Role::Leader && s.idle
    })
    .await;
    // The other device joins while the leader is still empty (an empty
    // snapshot), then goes offline for the crawl.
    let catchup = new_index(&work.join("catchup"), 3);
    {
        let mut h = share(&url, &keys, 0xb1, &catchup).await;
        wait(&mut h, "joined", |s| {
            s.idle && matches!(s.bootstrap, Bootstrap::Done { .. })
        })
        .await;
        h.stop().await.expect("stop");
    }
    {
        let (mut src, dec) = source(corpus);
        let i = Arc::clone(&leader);
        let o = options.clone();
        let t = Instant::now();
        let (_, s) = timed(move || i.index(src.as_mut(), dec.as_ref(), &o).expect("index")).await;
        r.leader_searchable = s;
        let st = wait(&mut lh, "everything reflected", |s| {
            s.outbox == 0 && s.reflected > 0
        })
        .await;
        r.leader_acked = t.elapsed().as_secs_f64();
        let i = Arc::clone(&leader);
        timed(move || i.wait_for_inverted().expect("inverted")).await;
        r.leader_inverted = t.elapsed().as_secs_f64();
        r.reflected_bytes = st.reflected_bytes;
        assert_eq!(leader.len(), r.records, "the leader indexed the corpus");
        eprintln!(
            "[{corpus}] leader: {s:.2} s searchable, {:.2} s acked, {:.2} s inverted, {} envelopes, {:.1} MB",
            r.leader_acked,
            r.leader_inverted,
            st.reflected,
            st.reflected_bytes as f64 / 1e6
        );
    }
    let want = totals(&leader, corpus);

    // 3. The offline device comes back (its index still empty).
    {
        let index = catchup;
        let t = Instant::now();
        let mut h = share(&url, &keys, 0xb1, &index).await;
        let st = wait(&mut h, "catch-up", |s| s.idle && s.applied_ops > 0).await;
        r.catchup_idle = t.elapsed().as_secs_f64();
        let i = Arc::clone(&index);
        timed(move || i.wait_for_inverted().expect("inverted")).await;
        r.catchup_inverted = t.elapsed().as_secs_f64();
        r.catchup_received_bytes = st.received_bytes;
        assert_eq!(
            index.len(),
            r.records,
            "the caught-up device has every record"
        );
        assert_eq!(
            totals(&index, corpus),
            want,
            "the caught-up device answers alike"
        );
        h.stop().await.expect("stop");
        eprintln!(
            "[{corpus}] catch-up: {:.2} s idle, {:.2} s inverted",
            r.catchup_idle, r.catchup_inverted
        );
    }
    lh.stop().await.expect("stop the leader");
    let _ = std::fs::remove_dir_all(work.join("catchup"));

    // 4. A new device bootstraps from the leader's snapshot on a fresh relay.
    let url = relay(&work.join("relay2")).await;
    let mut lh = share(&url, &keys, 0xa1, &leader).await;
    wait(&mut lh, "leader promoted", |s| {
        s.role == share::Role::Leader && s.idle
    })
    .await;
    {
        let index = new_index(&work.join("new"), 4);
        let t = Instant::now();
        let mut h = share(&url, &keys, 0xc1, &index).await;
        let st = wait(&mut h, "snapshot", |s| {
            matches!(s.bootstrap, Bootstrap::Done { .. }) && s.idle
        })
        .await;
        r.snapshot_done = t.elapsed().as_secs_f64();
        let i = Arc::clone(&index);
        timed(move || i.wait_for_inverted().expect("inverted")).await;
        r.snapshot_inverted = t.elapsed().as_secs_f64();
        r.snapshot_bytes = st.received_bytes;
        assert_eq!(index.len(), r.records, "the new device has every record");
        assert_eq!(totals(&index, corpus), want, "the new device answers alike");
        h.stop().await.expect("stop");
        eprintln!(
            "[{corpus}] snapshot: {:.2} s done, {:.2} s inverted",
            r.snapshot_done, r.snapshot_inverted
        );
    }
    lh.stop().await.expect("stop the leader");
    r.load_after = load();
    r
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let corpora: Vec<String> = if args.is_empty() {
        vec!["mail".into(), "chat".into()]
    } else {
        args
    };
    let runs: usize = std::env::var("SEALDEX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results = Vec::new();
    for corpus in &corpora {
        for _ in 0..runs {
            let work = tempfile::tempdir().unwrap();
            results.push(rt.block_on(run(corpus, work.path())));
        }
    }
    println!(
        "| corpus | records | source: searchable / inverted | leader: searchable / acked / inverted | leader rate ÷ alone | bytes/record | catch-up: idle / inverted | snapshot: done / inverted | snapshot ÷ source | load before → after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.2} / {:.2} s | {:.2} / {:.2} / {:.2} s | {:.2}× | {:.0} | {:.2} / {:.2} s | {:.2} / {:.2} s | {:.2}× / {:.2}× | {} → {} |",
            r.corpus,
            r.records,
            r.source_searchable,
            r.source_inverted,
            r.leader_searchable,
            r.leader_acked,
            r.leader_inverted,
            r.source_searchable / r.leader_searchable,
            r.reflected_bytes as f64 / r.records as f64,
            r.catchup_idle,
            r.catchup_inverted,
            r.snapshot_done,
            r.snapshot_inverted,
            r.snapshot_done / r.source_searchable,
            r.snapshot_inverted / r.source_inverted,
            r.load_before,
            r.load_after,
        );
    }
    for r in &results {
        println!(
            "{{\"corpus\":\"{}\",\"records\":{},\"source_searchable_s\":{:.3},\"source_inverted_s\":{:.3},\"leader_searchable_s\":{:.3},\"leader_acked_s\":{:.3},\"leader_inverted_s\":{:.3},\"reflected_bytes\":{},\"catchup_idle_s\":{:.3},\"catchup_inverted_s\":{:.3},\"catchup_received_bytes\":{},\"snapshot_done_s\":{:.3},\"snapshot_inverted_s\":{:.3},\"snapshot_bytes\":{}}}",
            r.corpus,
            r.records,
            r.source_searchable,
            r.source_inverted,
            r.leader_searchable,
            r.leader_acked,
            r.leader_inverted,
            r.reflected_bytes,
            r.catchup_idle,
            r.catchup_inverted,
            r.catchup_received_bytes,
            r.snapshot_done,
            r.snapshot_inverted,
            r.snapshot_bytes,
        );
    }
}
