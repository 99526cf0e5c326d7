//! The one write path, measured: push-API throughput at three batch sizes
//! against the pipeline on the same records, and search latency while a
//! large sync runs against the same searches idle.
//!
//! 1. **push**: the ChitChat corpus (258k chat messages) as records, pushed
//!    with `Index::apply` in batches of 10,000 (all of them), 100 (the first
//!    `WRITE_PUSH_100` = 50,000) and 1 (the first `WRITE_PUSH_1` = 2,000:
//!    each batch is one flushed store write), each into a new index with
//!    the inverted index on; and the same corpus through the pipeline
//!    (`Index::index` over the chat source, from text). Records per second,
//!    including a final `wait_for_inverted`.
//! 2. **sync**: `WRITE_SYNC_N` (default 100,000) synthetic mail messages
//!    (`benches/common/synth.rs`) indexed through the pipeline while a
//!    thread runs the mail battery (count + newest 10) in `SearchMode::Auto`
//!    over and over; then the same battery on the idle index. Median and
//!    p99 of each, and whether any search during the sync filled the
//!    decrypted cache (a forward fill: it must not).
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --bench write
//! WRITE_ONLY=sync WRITE_SYNC_N=1000000 cargo bench --bench write
//! ```
//!
//! Bounded: every phase stops on its own (the sync when its messages are
//! indexed). Needs `SEALDEX_CORPORA`; skips loudly without it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::chitchat::{ChatDecryptor, ChitChat};
use common::synth::{LearnOptions, Synth};
use sealdex::decrypt::PassThrough;
use sealdex::ops::Op;
use sealdex::pipeline::IndexOptions;
use sealdex::{Credential, Index, IndexConfig, KdfParams, Record, SearchMode, SearchOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn new_index(dir: &std::path::Path) -> Index {
    Index::create(
        dir,
        &Credential::passphrase("bench"),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        },
    )
    .expect("create")
}

fn push(records: &[Record], batch: usize) -> f64 {
    let tmp = tempfile::tempdir().expect("temp dir");
    let index = new_index(&tmp.path().join("idx"));
    let started = Instant::now();
    for chunk in records.chunks(batch) {
        index
            .apply(chunk.iter().cloned().map(Op::upsert).collect())
            .expect("apply");
    }
    index.wait_for_inverted().expect("inverted");
    records.len() as f64 / started.elapsed().as_secs_f64()
}

fn push_phase(corpora: &std::path::Path) {
    let path = corpora.join("chitchat/dataset.json");
    let chat = ChitChat::open(&path).expect("chitchat");
    let records = chat.records(None);
    println!("push: {} chat records", records.len());
    let n100 = env_usize("WRITE_PUSH_100", 50_000).min(records.len());
    let n1 = env_usize("WRITE_PUSH_1", 2_000).min(records.len());
    let r10k = push(&records, 10_000);
    println!(
        "  batch 10,000: {r10k:>9.0} records/s ({} records)",
        records.len()
    );
    let r100 = push(&records[..n100], 100);
    println!("  batch    100: {r100:>9.0} records/s ({n100} records)");
    let r1 = push(&records[..n1], 1);
    println!("  batch      1: {r1:>9.0} records/s ({n1} records)");
    // The pipeline on the same corpus, from text.
    let tmp = tempfile::tempdir().expect("temp dir");
    let index = new_index(&tmp.path().join("idx"));
    let mut source = ChitChat::open(&path).expect("chitchat");
    let started = Instant::now();
    let report = index
        .index(&mut source, &ChatDecryptor, &IndexOptions::default())
        .expect("index");
    index.wait_for_inverted().expect("inverted");
    let pipeline = report.stored as f64 / started.elapsed().as_secs_f64();
    println!(
        "  pipeline    : {pipeline:>9.0} records/s ({} records)",
        report.stored
    );
    println!(
        "  push at 10,000 / pipeline from text: {:.2}x",
        r10k / pipeline
    );
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, usize) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99), v.len())
}

fn battery(index: &Index, out: &mut Vec<f64>) {
    let options = SearchOptions {
        limit: Some(10),
        mode: SearchMode::Auto,
        ..SearchOptions::default()
    };
    for q in common::battery::MAIL {
        let text = q.text.replace("2002-", "2024-");
        let t = Instant::now();
        index.search(&text, &options).expect("search");
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
}

fn sync_phase() {
    let n = env_usize("WRITE_SYNC_N", 100_000) as u64;
    let model =
        Arc::new(common::synth::learn_from_env(LearnOptions::default()).expect("SEALDEX_CORPORA"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let index = Arc::new(new_index(&tmp.path().join("idx")));
    index.wait_for_inverted().expect("inverted");
    let done = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (index, done) = (Arc::clone(&index), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut during = Vec::new();
            // Let the sync get going before the first search.
            std::thread::sleep(Duration::from_millis(500));
            while !done.load(Ordering::Acquire) {
                battery(&index, &mut during);
            }
            during
        })
    };
    let started = Instant::now();
    let mut source = Synth::new(model, 0x5ca1e, n);
    let report = index
        .index(
            &mut source,
            &PassThrough::default(),
            &IndexOptions::default(),
        )
        .expect("index");
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    let during = searcher.join().expect("searcher");
    let filled = index.decrypted_cache_is_filled();
    index.wait_for_inverted().expect("inverted");
    let mut idle = Vec::new();
    for _ in 0..5 {
        battery(&index, &mut idle);
    }
    let (dm, dp, dn) = percentiles(during);
    let (im, ip, inn) = percentiles(idle);
    println!(
        "sync: {} messages in {secs:.1} s ({:.0} msg/s) with searches running",
        report.stored,
        report.stored as f64 / secs
    );
    println!("  during the sync: median {dm:.2} ms, p99 {dp:.2} ms ({dn} searches)");
    println!("  idle           : median {im:.2} ms, p99 {ip:.2} ms ({inn} searches)");
    println!("  median during / idle: {:.2}x", dm / im);
    println!("  a search filled the decrypted cache during the sync: {filled}");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: this runner only measures when asked to.
    let Some(corpora) = common::corpora_dir() else {
        eprintln!(
            "\n*** SKIPPED write bench: set SEALDEX_CORPORA (scripts/fetch-corpora.sh) ***\n"
        );
        return;
    };
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let only = std::env::var("WRITE_ONLY").unwrap_or_default();
    if only.is_empty() || only == "push" {
        push_phase(&corpora);
    }
    if only.is_empty() || only == "sync" {
        sync_phase();
    }
}
