//! Forward-scan search over a warm cache, on two corpora, plus the time from
//! opening an index to its first result.
//!
//! - **mail**: SpamAssassin (`$SEALDEX_CORPORA/spamassassin`, ~6,000
//!   messages) through the real Tree source and the pass-through decryptor.
//! - **chat**: ChitChat (`$SEALDEX_CORPORA/chitchat/dataset.json`, 258,145
//!   messages) through `benches/common/chitchat.rs`.
//!
//! Each corpus is indexed once into a temporary index (cheap KDF, a 1 GiB
//! cache budget so that every record is cached). Then, for each query of a
//! battery covering every query type, criterion times
//! `Index::search(q, limit 10)` (count + newest ten, with snippets), and a
//! hand-timed loop of up to 200 runs gives the median and p99 that a table
//! on stderr reports, with the scanned throughput:
//!
//! ```text
//! scanned GB/s = token-stream bytes of the cache / median search time
//! ```
//!
//! The token-stream bytes are computed here from the stored records exactly
//! as the cache lays them out (`src/query/plan.rs`, `push_token_stream`):
//! per record and per field, the field is normalised with
//! `clean::normalise`, every token costs one space plus its bytes, and the
//! field one closing newline. Nothing is added to the public API for it.
//!
//! Last, the mail index is closed and reopened a few times: `Index::open`
//! (unseal every record, build the cache) plus the first query, the time to
//! first result. The KDF is the cheap test one; the cost of the default
//! Argon2id parameters is timed separately and reported beside it.
//!
//! Needs `SEALDEX_CORPORA`; skips loudly without it.
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --bench search
//! SEARCH_RUNS=50 cargo bench --bench search -- --quick   # faster, rougher
//! ```

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use common::chitchat::{ChatDecryptor, ChitChat};
use criterion::{Criterion, Throughput};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::IndexOptions;
use sealdex::{
    Credential, Decryptor, Field, Index, IndexConfig, KdfParams, SearchOptions, Source, Store,
    clean,
};

/// A query of the battery: its type, a short name for criterion, the text.
type Query = (&'static str, &'static str, &'static str);

/// The mail battery. Folders are the corpus's directories; the Tree source
/// sets no flags, so `is:unread` matches nothing and `is:read` everything.
const MAIL: &[Query] = &[
    ("rare word", "rare_bayesian", "bayesian"),
    ("rare word", "rare_garrigues", "garrigues"),
    ("common word", "common_the", "the"),
    ("common word", "common_email", "email"),
    ("1-letter prefix", "prefix_a", "a"),
    ("1-letter prefix", "prefix_t", "t"),
    ("2-letter prefix", "prefix_th", "th"),
    ("2-letter prefix", "prefix_re", "re"),
    ("phrase", "phrase_mailing_list", "\"mailing list\""),
    ("phrase", "phrase_click_here", "\"click here\""),
    ("AND", "and_free_money", "free money"),
    ("AND", "and_linux_kernel_patch", "linux kernel patch"),
    (
        "OR",
        "or_viagra_mortgage_casino",
        "viagra OR mortgage OR casino",
    ),
    ("exclusion", "excl_free_-money", "free -money"),
    ("exclusion", "excl_-the", "-the"),
    ("field", "field_from_garrigues", "from:garrigues"),
    ("field", "field_subject_sequences", "subject:sequences"),
    ("filter only", "filter_in_spam2", "in:spam-2"),
    ("filter only", "filter_after", "after:2002-10-01"),
    ("filter only", "filter_is_unread", "is:unread"),
    (
        "filter + word",
        "filter_in_easy_ham_perl",
        "in:easy-ham-1 perl",
    ),
    (
        "filter + word",
        "filter_after_linux",
        "after:2002-09-01 linux",
    ),
    ("non-ASCII", "nonascii_cafe", "café"),
    ("non-ASCII", "nonascii_cjk", "免费"),
    ("non-ASCII", "nonascii_strasse", "Straße"),
];

/// The chat battery: the same types, with words of the chat corpus.
/// Senders are UUIDs; every message is in folder `chat`, dated 2018.
const CHAT: &[Query] = &[
    ("rare word", "rare_xylophone", "xylophone"),
    ("rare word", "rare_giraffe", "giraffe"),
    ("common word", "common_the", "the"),
    ("common word", "common_love", "love"),
    ("1-letter prefix", "prefix_a", "a"),
    ("1-letter prefix", "prefix_t", "t"),
    ("2-letter prefix", "prefix_th", "th"),
    ("2-letter prefix", "prefix_re", "re"),
    ("phrase", "phrase_i_love", "\"i love\""),
    ("phrase", "phrase_favorite_movie", "\"favorite movie\""),
    ("AND", "and_pizza_weekend", "pizza weekend"),
    ("AND", "and_dog_cat_love", "dog cat love"),
    (
        "OR",
        "or_netflix_guitar_banana",
        "netflix OR guitar OR banana",
    ),
    ("exclusion", "excl_movie_-love", "movie -love"),
    ("exclusion", "excl_-the", "-the"),
    ("field", "field_from_uuid", "from:31267496"),
    ("field", "field_to_uuid", "to:549cc1d1 pizza"),
    ("filter only", "filter_in_chat", "in:chat"),
    ("filter only", "filter_after", "after:2018-10-01"),
    ("filter only", "filter_is_unread", "is:unread"),
    ("filter + word", "filter_in_chat_pizza", "in:chat pizza"),
    (
        "filter + word",
        "filter_after_netflix",
        "after:2018-10-01 netflix",
    ),
    ("non-ASCII", "nonascii_cafe", "café"),
    ("non-ASCII", "nonascii_cjk", "免费"),
    ("non-ASCII", "nonascii_strasse", "Straße"),
];

fn options() -> SearchOptions {
    SearchOptions {
        limit: Some(10),
        ..SearchOptions::default()
    }
}

fn config() -> IndexConfig {
    IndexConfig {
        cache_bytes: 1 << 30,
        kdf: KdfParams::insecure_fast(),
        // This bench measures the forward scan.
        inverted: false,
        ..IndexConfig::default()
    }
}

fn credential() -> Credential {
    Credential::passphrase("bench")
}

/// Bytes of the cache's token streams, computed from the stored records the
/// way `push_token_stream` lays them out.
fn token_stream_bytes(store: &Store) -> (u64, u64) {
    let (mut bytes, mut records) = (0u64, 0u64);
    let mut norm = String::new();
    for r in store.records() {
        let r = r.expect("record opens");
        records += 1;
        for f in Field::ALL {
            norm.clear();
            clean::normalise_into(r.field(f), &mut norm);
            bytes += clean::tokens(&norm)
                .map(|(_, t)| 1 + t.len() as u64)
                .sum::<u64>()
                + 1;
        }
    }
    (bytes, records)
}

fn index_corpus(
    dir: &Path,
    source: &mut dyn Source,
    decryptor: &dyn Decryptor,
    label: &str,
) -> Index {
    let index = Index::create(dir, &credential(), config()).expect("create index");
    let start = Instant::now();
    let report = index
        .index(source, decryptor, &IndexOptions::default())
        .expect("index corpus");
    eprintln!(
        "{label}: indexed {} messages ({} failed) in {:.1}s",
        report.stored,
        report.failed,
        start.elapsed().as_secs_f64()
    );
    index
}

/// Median and p99 of a sorted list of durations.
fn percentiles(sorted: &[Duration]) -> (Duration, Duration) {
    let n = sorted.len();
    let p99 = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
    (sorted[n / 2], sorted[p99])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs of the hand-timed loop: `SEARCH_RUNS` or 200, stopping early after
/// 5 s of one query (never fewer than 20 runs).
fn runs() -> usize {
    std::env::var("SEARCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Criterion over every query, then the hand-timed table.
fn bench_corpus(c: &mut Criterion, label: &str, index: &Index, queries: &[Query]) {
    let (bytes, records) = token_stream_bytes(index.store());
    eprintln!(
        "{label}: {records} records, {:.1} MB of token streams in the cache",
        bytes as f64 / 1e6
    );
    let opts = options();
    let mut g = c.benchmark_group(format!("search_{label}"));
    g.throughput(Throughput::Bytes(bytes));
    for (_, name, q) in queries {
        g.bench_function(*name, |b| {
            b.iter(|| index.search(black_box(q), &opts).expect("search"))
        });
    }
    g.finish();

    let max_runs = runs().max(1);
    eprintln!();
    eprintln!(
        "{label}: hand-timed, up to {max_runs} runs per query; scanned GB/s = {:.1} MB / median",
        bytes as f64 / 1e6
    );
    eprintln!("| type | query | hits | runs | median ms | p99 ms | GB/s (median) | GB/s (p99) |");
    eprintln!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (kind, _, q) in queries {
        for _ in 0..3 {
            black_box(index.search(q, &opts).expect("search"));
        }
        let total = index.search(q, &opts).expect("search").total;
        let mut times = Vec::with_capacity(max_runs);
        let started = Instant::now();
        while times.len() < max_runs
            && (times.len() < 20 || started.elapsed() < Duration::from_secs(5))
        {
            let t = Instant::now();
            black_box(index.search(black_box(q), &opts).expect("search"));
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let (median, p99) = percentiles(&times);
        eprintln!(
            "| {kind} | `{q}` | {total} ({:.1}%) | {} | {:.2} | {:.2} | {:.1} | {:.1} |",
            100.0 * total as f64 / records.max(1) as f64,
            times.len(),
            ms(median),
            ms(p99),
            bytes as f64 / median.as_secs_f64() / 1e9,
            bytes as f64 / p99.as_secs_f64() / 1e9,
        );
    }
    eprintln!();
}

/// Open an existing index and run one query, a few times; and the cost of
/// the default KDF, which the bench index does not pay.
fn cold_open(dir: &Path) {
    let opts = options();
    let mut times = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let index = Index::open(dir, &credential(), config()).expect("open");
        let opened = t.elapsed();
        let page = index.search("linux", &opts).expect("search");
        let first = t.elapsed();
        black_box(&page);
        eprintln!(
            "open run {i}: Index::open {:.0} ms, + first query `linux` ({} hits) = {:.0} ms to first result",
            ms(opened),
            page.total,
            ms(first)
        );
        times.push(first);
        drop(index);
    }
    times.sort_unstable();
    eprintln!(
        "open-to-first-result (cheap KDF): median {:.0} ms, max {:.0} ms over {} runs",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    );

    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("kdf");
    drop(Store::create(&path, &credential(), KdfParams::default()).expect("create"));
    let mut kdf = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        drop(Store::open(&path, &credential()).expect("open"));
        kdf.push(t.elapsed());
    }
    kdf.sort_unstable();
    eprintln!(
        "empty store opened with the default KDF (Argon2id 64 MiB, t=3): median {:.0} ms of 3 runs",
        ms(kdf[1])
    );
    eprintln!();
}

fn main() {
    let Some(root) = common::corpora_dir() else {
        eprintln!();
        eprintln!("******************************************************************");
        eprintln!("*  SKIPPED: benches/search.rs needs the corpora.                 *");
        eprintln!("*  Set SEALDEX_CORPORA to the directory they were fetched to.    *");
        eprintln!("******************************************************************");
        eprintln!();
        return;
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();

    let spam = root.join("spamassassin");
    if spam.is_dir() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("mail");
        let mut source = sealdex::backends::open_path(&spam).expect("spamassassin source");
        let index = index_corpus(&dir, source.as_mut(), &PassThrough::default(), "mail");
        bench_corpus(&mut c, "mail", &index, MAIL);
        drop(index);
        cold_open(&dir);
    } else {
        eprintln!("*** SKIPPED mail corpus: no {} ***", spam.display());
    }

    match common::chitchat_path().filter(|p| p.is_file()) {
        Some(path) => {
            let mut chat = ChitChat::open(&path).expect("chitchat corpus");
            let tmp = tempfile::tempdir().expect("temp dir");
            let index = index_corpus(&tmp.path().join("chat"), &mut chat, &ChatDecryptor, "chat");
            bench_corpus(&mut c, "chat", &index, CHAT);
        }
        None => eprintln!("*** SKIPPED chat corpus: no chitchat/dataset.json ***"),
    }
    c.final_summary();
}
