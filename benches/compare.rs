//! sealdex side by side with its peers: one run, one machine, the same
//! corpus, the same extracted text and the same queries.
//!
//! Engines (`COMPARE_ENGINES`, comma-separated; default all built here):
//!
//! - `forward`: sealdex, forward scan over the decrypted cache
//!   (`IndexConfig::inverted = false`, `SearchMode::Forward`).
//! - `inverted`: sealdex with its inverted index (tantivy on the encrypted
//!   Directory; `IndexConfig::inverted = true`, `SearchMode::Inverted`).
//!   Building includes `Index::wait_for_inverted`.
//! - `tantivy`: plaintext tantivy on its `MmapDirectory`, with sealdex's
//!   schema, tokenizer and query mapping (`benches/common/peers.rs`,
//!   `PlainTantivy`), the same writer threads and memory, a commit every
//!   20,000 records.
//! - `sqlcipher`: SQLCipher + FTS5 (`benches/common/peers.rs`): an
//!   external-content FTS5 table, `tokenize='unicode61 remove_diacritics
//!   2'`, keyed with `PRAGMA key` (a raw key, no PBKDF2), WAL with
//!   `synchronous = FULL`, one transaction per 512 records, SQLCipher's
//!   default page cache (2,000 KiB of decrypted pages).
//! - `sqlcipher-cache`: the same with a page cache that holds the whole
//!   database (`COMPARE_SQLITE_CACHE_KIB`, default 256 MiB), the
//!   counterpart of sealdex's decrypted cache.
//!
//! Corpora (`COMPARE_CORPUS=mail|chat|all`, default all): SpamAssassin
//! (`$SEALDEX_CORPORA/spamassassin`, raw mail through the real
//! `backends::open_path` Tree source) and ChitChat
//! (`$SEALDEX_CORPORA/chitchat/dataset.json`, 258,145 chat messages,
//! through `benches/common/chitchat.rs`). Queries: the battery of
//! `benches/common/battery.rs` (about fifty per corpus, every operator).
//!
//! # What is measured, and how
//!
//! Every step runs in a child process of its own: the runner re-executes its
//! own binary (`--child STEP ENGINE CORPUS WORKDIR`), the child prints one
//! JSON line (`COMPARE-JSON {...}`), and reads its peak resident set
//! (`VmHWM` in `/proc/self/status`) before it exits, so each engine's peak
//! RSS is its own. Per corpus:
//!
//! 1. **prepare**: sealdex (forward mode only) indexes the raw corpus end
//!    to end (Source → decrypt/MIME → clean → seal → flushed sled store):
//!    docs/s from raw mail. Its records (`Store::records()`, sorted by id)
//!    are written to `records.json`: the **extracted text** every other
//!    step indexes. **e2e inverted** does the same with the inverted index
//!    on (and waits for it), for inverted mode's docs/s from raw mail.
//!    This and the build steps run `COMPARE_BUILD_RUNS` times (default 3
//!    for mail, whose builds last about a second, 1 for chat); the run of
//!    median duration is reported, every run's time is in the JSON.
//! 2. **baseline**: only loads `records.json`: the RSS every build step
//!    starts from (the corpus in memory), to subtract by eye.
//! 3. **build ENGINE**: loads the records, then times building the index
//!    from them (sealdex: `Index::index` through a source that hands the
//!    records over and a decryptor that returns them as text messages, so
//!    the pipeline runs without MIME or HTML; tantivy: add, commit, wait
//!    for merges; SQLCipher: inserts and commits, then a WAL checkpoint),
//!    closes it, and sums the sizes of the
//!    files it left: **bytes on disk** against the **extracted text** (the
//!    UTF-8 bytes of the five text fields of every record).
//! 4. **query ENGINE**: a fresh process opens the index and answers a first
//!    query (count + newest ten of `linux` / `pizza`): **open to first
//!    result**; then, for each battery query, one warm-up run of each kind
//!    and `COMPARE_RUNS` (default 30; fewer, but at least 3, once a query
//!    has taken `COMPARE_MAX_SECONDS`, default 5) timed runs of **all
//!    hits** (every hit's id; sealdex: `Index::search_keys` with `limit:
//!    None`, every store key in order, nothing decrypted) and of **count +
//!    newest ten** (the total and the ten newest; sealdex:
//!    `Index::search_keys` with `limit: Some(10)`, the ten store keys, as
//!    the peers return ids; tantivy: `Count` and `TopDocs` by
//!    date; SQLCipher: id and stamp with `count(*) OVER ()`), and of the
//!    **first page** an app shows: the total and the ten newest with their
//!    message id, date, sender and subject (sealdex: `Index::search_query`
//!    with `limit: Some(10)` and no snippet; tantivy: the same top ten, each
//!    read from its document store, where the peer stores those four
//!    fields; SQLCipher: the four columns of `docs`, where the peer keeps
//!    the message id). Every engine must show the same ten dates as the
//!    forward scan (ties may be ordered differently). Queries are
//!    parsed (and translated) once, before timing. The latencies of all
//!    queries are pooled for one median and p99 per engine, each query
//!    weighing the same (its runs are read at `COMPARE_RUNS` evenly spaced
//!    quantiles); per query figures and every run are in the JSON. Peak
//!    RSS is read after the battery; then four more open + first query
//!    runs give the median open time.
//!
//! The parent prints the markdown tables (stdout), ratios of sealdex to
//! each peer, a per-query table (median µs and hits per engine, so
//! disagreements in hit counts are visible), and writes every figure to
//! `target/compare.json` (next to the `release` directory the runner was
//! built in; `COMPARE_JSON` overrides).
//!
//! Keys: sealdex opens with an app key (`Credential::AppKey`, no Argon2id)
//! and SQLCipher with a raw key (no PBKDF2), so neither pays a KDF. sealdex
//! gets a 1 GiB cache budget, as `benches/search.rs`, so every record is
//! cached. Files are in the OS page cache throughout (warm).
//!
//! # Reproduce
//!
//! ```sh
//! export SEALDEX_CORPORA=~/.cache/sealdex-corpora
//! cargo bench --features peers --bench compare                       # everything, ~10 min
//! COMPARE_CORPUS=mail COMPARE_RUNS=5 cargo bench --features peers --bench compare   # quick
//! COMPARE_ENGINES=forward,sqlcipher cargo bench --features peers --bench compare
//! ```
//!
//! Needs `SEALDEX_CORPORA`; skips loudly without it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::battery::{self, BenchQuery};
use common::chitchat::{ChatDecryptor, ChitChat};
use common::peers::{Fts5, Fts5Sql, PageRow, PlainTantivy, fts5_sql};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::IndexOptions;
use sealdex::{
    Body, Changes, Credential, Cursor, DecryptError, Decryptor, FetchError, Field, Index,
    IndexConfig, KdfParams, Message, MessageRef, Page, RawMessage, Record, SearchMode,
    SearchOptions, SecretKey, Source, SourceError, SyncToken,
};
use serde::{Deserialize, Serialize};

/// Leads the one line of JSON a child prints on stdout.
const RESULT_TAG: &str = "COMPARE-JSON ";

/// The engines, in table order.
const ENGINES: &[&str] = &[
    "forward",
    "inverted",
    "tantivy",
    "sqlcipher",
    "sqlcipher-cache",
];

/// The SQLCipher page cache of an engine: SQLCipher's default for
/// `sqlcipher`, one that holds the database for `sqlcipher-cache`.
fn sqlite_cache(engine: &str) -> Option<i64> {
    (engine == "sqlcipher-cache").then(common::peers::sqlite_cache_kib)
}

/// The engines this build can run.
const BUILT: &[&str] = ENGINES;

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/// The end-to-end sealdex run from raw messages (step 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct E2e {
    engine: String,
    docs: u64,
    failed: u64,
    /// The median run's.
    seconds: f64,
    /// Every run's, in run order.
    #[serde(default)]
    all_seconds: Vec<f64>,
    docs_per_s: f64,
    disk_bytes: u64,
    text_bytes: u64,
    peak_rss_kb: u64,
}

/// Loading the extracted records only (step 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Baseline {
    docs: u64,
    text_bytes: u64,
    peak_rss_kb: u64,
}

/// Building one engine from the extracted text (step 3).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Build {
    engine: String,
    docs: u64,
    /// The median run's.
    seconds: f64,
    /// Every run's, in run order.
    #[serde(default)]
    all_seconds: Vec<f64>,
    docs_per_s: f64,
    disk_bytes: u64,
    text_bytes: u64,
    peak_rss_kb: u64,
}

/// One query's timings on one engine (step 4), in µs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct QueryTimes {
    name: String,
    kind: String,
    text: String,
    /// Hits of the all-hits run.
    hits: usize,
    /// Total of the count + newest ten run.
    count: usize,
    all_median_us: f64,
    all_p99_us: f64,
    ten_median_us: f64,
    ten_p99_us: f64,
    /// The first page (count + newest ten with id, date, sender, subject).
    page_median_us: f64,
    page_p99_us: f64,
    /// The first page's dates, newest first: engines may order equal
    /// dates differently, but must show the same dates.
    page_dates: Vec<Option<i64>>,
    all_runs_us: Vec<f64>,
    ten_runs_us: Vec<f64>,
    page_runs_us: Vec<f64>,
}

/// Opening one engine and running the battery (step 4).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Queries {
    engine: String,
    first_query: String,
    /// Open + first query, ms: the first run (fresh process) then four more.
    open_first_ms: Vec<f64>,
    all_median_us: f64,
    all_p99_us: f64,
    ten_median_us: f64,
    ten_p99_us: f64,
    page_median_us: f64,
    page_p99_us: f64,
    runs: usize,
    peak_rss_kb: u64,
    queries: Vec<QueryTimes>,
}

/// Everything measured for one corpus.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CorpusReport {
    corpus: String,
    e2e: Vec<E2e>,
    baseline: Option<Baseline>,
    builds: Vec<Build>,
    queries: Vec<Queries>,
}

/// The JSON file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Report {
    runs: usize,
    max_seconds: f64,
    sqlite_cache_kib: i64,
    engines: Vec<String>,
    not_built: Vec<String>,
    load_average_start: String,
    load_average_end: String,
    corpora: Vec<CorpusReport>,
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Peak resident set of this process so far, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Total size of the files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// UTF-8 bytes of the five text fields of every record.
fn text_bytes(records: &[Record]) -> u64 {
    records
        .iter()
        .map(|r| {
            Field::ALL
                .iter()
                .map(|f| r.field(*f).len() as u64)
                .sum::<u64>()
        })
        .sum()
}

fn runs() -> usize {
    std::env::var("COMPARE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30usize)
        .max(1)
}

/// Fewest timed runs of a query, whatever `COMPARE_MAX_SECONDS` says.
const MIN_RUNS: usize = 3;

/// Time after which a query's timed runs stop (after at least
/// [`MIN_RUNS`]): `COMPARE_MAX_SECONDS`, default 5, per query and kind of
/// run.
fn max_time() -> Duration {
    Duration::from_secs_f64(
        std::env::var("COMPARE_MAX_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0),
    )
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median and p99 of some µs figures.
fn percentiles(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let p99 = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
    (v[n / 2], v[p99])
}

fn emit<T: Serialize>(value: &T) {
    let json = serde_json::to_string(value).expect("serialise result");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{RESULT_TAG}{json}").expect("stdout");
    out.flush().expect("stdout");
}

/// The key both sealdex and SQLCipher open with: fixed, so that a reopen in
/// another process finds the same index.
const KEY: [u8; 32] = [0x5e; 32];

fn credential() -> Credential {
    Credential::AppKey(SecretKey::from_bytes(KEY))
}

/// sealdex's configuration for `engine` (`forward` or `inverted`).
fn sealdex_config(engine: &str) -> IndexConfig {
    IndexConfig {
        cache_bytes: 1 << 30,
        kdf: KdfParams::insecure_fast(),
        inverted: engine == "inverted",
        ..IndexConfig::default()
    }
}

/// The search mode of a sealdex engine.
fn sealdex_mode(engine: &str) -> SearchMode {
    if engine == "inverted" {
        SearchMode::Inverted
    } else {
        SearchMode::Forward
    }
}

fn battery_of(corpus: &str) -> &'static [BenchQuery] {
    battery::battery(corpus).unwrap_or_else(|| panic!("unknown corpus {corpus}"))
}

/// The first query after opening.
fn first_query(corpus: &str) -> &'static str {
    if corpus == "mail" { "linux" } else { "pizza" }
}

fn records_path(work: &Path) -> PathBuf {
    work.join("records.json")
}

fn load_records(work: &Path) -> Vec<Record> {
    let bytes = std::fs::read(records_path(work)).expect("read records.json");
    serde_json::from_slice(&bytes).expect("parse records.json")
}

// ---------------------------------------------------------------------------
// Extracted records as a sealdex source
// ---------------------------------------------------------------------------

/// Hands already extracted records to sealdex's pipeline: the locator and
/// the raw bytes are the record's index, and [`RecordDecryptor`] turns it
/// back into a text message, which `clean` keeps as it is. So the pipeline
/// runs (MAC, encode, seal, store, cache) without MIME or HTML.
struct RecordSource {
    name: String,
    records: Arc<Vec<Record>>,
}

impl Source for RecordSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let start = match cursor {
            None => 0,
            Some(c) => {
                c.0.as_slice()
                    .try_into()
                    .map(|b| u64::from_le_bytes(b) as usize)
                    .map_err(|_| SourceError::malformed("bad cursor"))?
            }
        };
        let end = start.saturating_add(limit.max(1)).min(self.records.len());
        Ok(Page {
            refs: (start..end)
                .map(|i| MessageRef {
                    id: self.records[i].id.clone(),
                    locator: (i as u64).to_le_bytes().to_vec(),
                    version: None,
                    size: Some(self.records[i].text_len() as u64),
                })
                .collect(),
            next: (end < self.records.len()).then(|| Cursor((end as u64).to_le_bytes().to_vec())),
            total: Some(self.records.len() as u64),
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter()
            .map(|r| {
                Ok(RawMessage {
                    id: r.id.clone(),
                    bytes: r.locator.clone(),
                    folder: None,
                    labels: Vec::new(),
                    flags: None,
                    version: None,
                })
            })
            .collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        Ok(SyncToken(
            (self.records.len() as u64).to_le_bytes().to_vec(),
        ))
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        Ok(Changes {
            changes: Vec::new(),
            token: since.clone(),
        })
    }
}

struct RecordDecryptor {
    records: Arc<Vec<Record>>,
}

impl Decryptor for RecordDecryptor {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        let i = raw
            .bytes
            .as_slice()
            .try_into()
            .map(|b| u64::from_le_bytes(b) as usize)
            .map_err(|_| DecryptError::Malformed("bad locator".into()))?;
        let r = &self.records[i];
        Ok(Message {
            id: r.id.clone(),
            date: r.timestamp,
            from: r.from.clone(),
            to: r.to.clone(),
            subject: r.subject.clone(),
            body: Body::Text(r.body.clone()),
            folders: r.folders.clone(),
            flags: r.flags,
            attachments: if r.attachments.is_empty() {
                Vec::new()
            } else {
                r.attachments.split('\n').map(str::to_owned).collect()
            },
            kind: r.kind,
            labels: r.labels.clone(),
            message_id: r.message_id.clone(),
            end: r.end,
            location: r.location.clone(),
            media_type: r.media_type.clone(),
        })
    }
}

// ---------------------------------------------------------------------------
// Engines at query time
// ---------------------------------------------------------------------------

/// What the query step needs of an engine.
trait Engine {
    /// A query made ready to run (parsed, translated) once, before timing.
    type Prepared;
    fn prepare(&self, text: &str) -> Self::Prepared;
    /// Every hit; returns how many.
    fn all_hits(&self, q: &Self::Prepared) -> usize;
    /// The total and the ten newest; returns the total.
    fn count_newest_ten(&self, q: &Self::Prepared) -> usize;
    /// An app's first page: the total and the ten newest with what a
    /// results list shows of each (id, date, sender, subject).
    fn first_page(&self, q: &Self::Prepared) -> (usize, Vec<PageRow>);
}

struct Sealdex {
    index: Index,
    all: SearchOptions,
    ten: SearchOptions,
}

impl Sealdex {
    fn open(dir: &Path, engine: &str) -> Sealdex {
        let mode = sealdex_mode(engine);
        Sealdex {
            index: Index::open(dir, &credential(), sealdex_config(engine)).expect("open index"),
            all: SearchOptions {
                limit: None,
                snippet_bytes: 0,
                mode,
                ..SearchOptions::default()
            },
            ten: SearchOptions {
                limit: Some(10),
                snippet_bytes: 0,
                mode,
                ..SearchOptions::default()
            },
        }
    }
}

impl Engine for Sealdex {
    /// Parsed once, as the peers' queries are translated once.
    type Prepared = sealdex::query::Query;
    fn prepare(&self, text: &str) -> Self::Prepared {
        sealdex::query::parse(text).expect("battery query parses")
    }
    /// Every hit's store key, in order, nothing decrypted
    /// (`Index::search_keys`): what the peers return, ids.
    fn all_hits(&self, q: &Self::Prepared) -> usize {
        self.index
            .search_keys(q, &self.all)
            .expect("search")
            .keys
            .len()
    }
    /// The total and the ten newest, as store keys (`Index::search_keys`,
    /// `limit: Some(10)`), as tantivy gives doc addresses and SQLite row
    /// ids; the app loads a record as it shows it (`Index::get`).
    fn count_newest_ten(&self, q: &Self::Prepared) -> usize {
        let page = self.index.search_keys(q, &self.ten).expect("search");
        std::hint::black_box(&page.keys);
        page.total
    }
    /// `Index::search_query` with `limit: Some(10)` and no snippet: the
    /// hits' records, opened.
    fn first_page(&self, q: &Self::Prepared) -> (usize, Vec<PageRow>) {
        let r = self.index.search_query(q, &self.ten).expect("search");
        let rows = r
            .hits
            .iter()
            .map(|h| PageRow {
                id: h.id.clone(),
                date: h.record.timestamp,
                sender: h.record.from.clone(),
                subject: h.record.subject.clone(),
            })
            .collect();
        (r.total, rows)
    }
}

struct Tantivy {
    index: PlainTantivy,
}

impl Engine for Tantivy {
    type Prepared = Box<dyn tantivy::query::Query>;
    fn prepare(&self, text: &str) -> Self::Prepared {
        self.index
            .compile(&sealdex::query::parse(text).expect("battery query parses"))
    }
    fn all_hits(&self, q: &Self::Prepared) -> usize {
        self.index.all_hits(&**q).expect("tantivy search").len()
    }
    fn count_newest_ten(&self, q: &Self::Prepared) -> usize {
        let (count, ten) = self.index.count_newest_ten(&**q).expect("tantivy search");
        std::hint::black_box(&ten);
        count
    }
    fn first_page(&self, q: &Self::Prepared) -> (usize, Vec<PageRow>) {
        self.index.first_page(&**q).expect("tantivy search")
    }
}

struct Sqlcipher {
    db: Fts5,
}

impl Engine for Sqlcipher {
    type Prepared = Fts5Sql;
    fn prepare(&self, text: &str) -> Fts5Sql {
        fts5_sql(&sealdex::query::parse(text).expect("battery query parses"))
    }
    fn all_hits(&self, q: &Fts5Sql) -> usize {
        self.db
            .all_hits(q)
            .unwrap_or_else(|e| panic!("FTS5 {}: {e}", q.all))
            .len()
    }
    fn count_newest_ten(&self, q: &Fts5Sql) -> usize {
        let (count, ten) = self
            .db
            .count_newest_ten(q)
            .unwrap_or_else(|e| panic!("FTS5 {}: {e}", q.count_newest_ten));
        std::hint::black_box(&ten);
        count
    }
    fn first_page(&self, q: &Fts5Sql) -> (usize, Vec<PageRow>) {
        self.db
            .first_page(q)
            .unwrap_or_else(|e| panic!("FTS5 {}: {e}", q.first_page))
    }
}

/// Step 4 for any engine: open + first query (timed), the battery, peak
/// RSS, then four more opens.
fn run_queries<E: Engine>(
    engine: &str,
    corpus: &str,
    dir: &Path,
    open: impl Fn(&Path) -> E,
) -> Queries {
    let first = first_query(corpus);
    let mut open_first_ms = Vec::new();
    let t = Instant::now();
    let e = open(dir);
    let q = e.prepare(first);
    std::hint::black_box(e.count_newest_ten(&q));
    open_first_ms.push(t.elapsed().as_secs_f64() * 1e3);

    let runs = runs();
    let max_time = max_time();
    let mut queries = Vec::new();
    for bq in battery_of(corpus) {
        let q = e.prepare(bq.text);
        // One untimed run of each, which also gives the hit counts.
        let hits = e.all_hits(&q);
        let count = e.count_newest_ten(&q);
        let (page_count, page) = e.first_page(&q);
        assert_eq!(page_count, count, "{engine} {}: first page count", bq.name);
        let page_dates = page.iter().map(|r| r.date).collect();
        let time = |f: &dyn Fn() -> usize| -> Vec<f64> {
            let started = Instant::now();
            let mut times = Vec::with_capacity(runs);
            while times.len() < runs && (times.len() < MIN_RUNS || started.elapsed() < max_time) {
                let t = Instant::now();
                std::hint::black_box(f());
                times.push(us(t.elapsed()));
            }
            times
        };
        let all_runs_us = time(&|| e.all_hits(&q));
        let ten_runs_us = time(&|| e.count_newest_ten(&q));
        let page_runs_us = time(&|| e.first_page(&q).1.len());
        let (all_median_us, all_p99_us) = percentiles(&all_runs_us);
        let (ten_median_us, ten_p99_us) = percentiles(&ten_runs_us);
        let (page_median_us, page_p99_us) = percentiles(&page_runs_us);
        eprintln!(
            "  {engine:9} {:28} hits {hits:7}  all {all_median_us:9.1} µs  count+10 {ten_median_us:9.1} µs  page {page_median_us:9.1} µs",
            bq.name
        );
        queries.push(QueryTimes {
            name: bq.name.to_owned(),
            kind: bq.kind.to_owned(),
            text: bq.text.to_owned(),
            hits,
            count,
            all_median_us,
            all_p99_us,
            ten_median_us,
            ten_p99_us,
            page_median_us,
            page_p99_us,
            page_dates,
            all_runs_us,
            ten_runs_us,
            page_runs_us,
        });
    }
    let peak_rss_kb = peak_rss_kb();
    drop(e);

    for _ in 0..4 {
        let t = Instant::now();
        let e = open(dir);
        let q = e.prepare(first);
        std::hint::black_box(e.count_newest_ten(&q));
        open_first_ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop(e);
    }

    // Each query weighs the same, whatever its number of runs: its runs
    // are read at `runs` evenly spaced quantiles before pooling.
    let pooled = |f: fn(&QueryTimes) -> &Vec<f64>| {
        let all: Vec<f64> = queries
            .iter()
            .flat_map(|q| {
                let mut v = f(q).clone();
                v.sort_by(f64::total_cmp);
                (0..runs).map(move |i| v[i * v.len() / runs])
            })
            .collect();
        percentiles(&all)
    };
    let (all_median_us, all_p99_us) = pooled(|q| &q.all_runs_us);
    let (ten_median_us, ten_p99_us) = pooled(|q| &q.ten_runs_us);
    let (page_median_us, page_p99_us) = pooled(|q| &q.page_runs_us);
    Queries {
        engine: engine.to_owned(),
        first_query: first.to_owned(),
        open_first_ms,
        all_median_us,
        all_p99_us,
        ten_median_us,
        ten_p99_us,
        page_median_us,
        page_p99_us,
        runs,
        peak_rss_kb,
        queries,
    }
}

// ---------------------------------------------------------------------------
// Child steps
// ---------------------------------------------------------------------------

fn engine_dir(work: &Path, engine: &str) -> PathBuf {
    work.join(format!("engine-{engine}"))
}

/// Step 1: sealdex (`engine`: forward or inverted) end to end from the raw
/// corpus; for forward, also the extracted records for every other step.
fn child_prepare(engine: &str, corpus: &str, work: &Path) {
    let root = common::corpora_dir().expect("SEALDEX_CORPORA");
    let dir = work.join(format!("e2e-{engine}"));
    let _ = std::fs::remove_dir_all(&dir);
    let index = Index::create(&dir, &credential(), sealdex_config(engine)).expect("create index");
    let (mut source, decryptor): (Box<dyn Source>, Box<dyn Decryptor>) = match corpus {
        "mail" => (
            sealdex::backends::open_path(&root.join("spamassassin")).expect("spamassassin"),
            Box::new(PassThrough::default()),
        ),
        // Parsing the dataset file is the corpus loader, not indexing.
        "chat" => (
            Box::new(
                ChitChat::open(common::chitchat_path().expect("chitchat path"))
                    .expect("chitchat corpus"),
            ),
            Box::new(ChatDecryptor),
        ),
        other => panic!("unknown corpus {other}"),
    };
    let t = Instant::now();
    let report = index
        .index(
            source.as_mut(),
            decryptor.as_ref(),
            &IndexOptions::default(),
        )
        .expect("index");
    // The inverted index is timed until it is closed: closing waits for
    // the run's last merge, as the peers' builds wait for theirs.
    let index = if engine == "inverted" {
        index.wait_for_inverted().expect("inverted index");
        drop(index);
        None
    } else {
        Some(index)
    };
    let seconds = t.elapsed().as_secs_f64();
    drop(source);
    let mut text = 0;
    if let Some(index) = &index {
        let mut records: Vec<Record> = index
            .store()
            .records()
            .collect::<Result<_, _>>()
            .expect("records open");
        records.sort_by(|a, b| a.id.cmp(&b.id));
        text = text_bytes(&records);
        std::fs::write(
            records_path(work),
            serde_json::to_vec(&records).expect("encode records"),
        )
        .expect("write records.json");
    }
    drop(index);
    emit(&E2e {
        engine: engine.to_owned(),
        docs: report.stored,
        failed: report.failed,
        seconds,
        all_seconds: Vec::new(),
        docs_per_s: report.stored as f64 / seconds,
        disk_bytes: disk_bytes(&dir),
        text_bytes: text,
        peak_rss_kb: peak_rss_kb(),
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Step 2: the records in memory, nothing else.
fn child_baseline(work: &Path) {
    let records = load_records(work);
    emit(&Baseline {
        docs: records.len() as u64,
        text_bytes: text_bytes(&records),
        peak_rss_kb: peak_rss_kb(),
    });
}

/// Step 3: build one engine from the extracted records.
fn child_build(engine: &str, work: &Path) {
    let records = Arc::new(load_records(work));
    let dir = engine_dir(work, engine);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("engine dir");
    let t = Instant::now();
    let docs = match engine {
        "forward" | "inverted" => {
            let index = Index::create(&dir.join("index"), &credential(), sealdex_config(engine))
                .expect("create index");
            let mut source = RecordSource {
                name: records
                    .first()
                    .map(|r| r.source.clone())
                    .unwrap_or_default(),
                records: Arc::clone(&records),
            };
            let decryptor = RecordDecryptor {
                records: Arc::clone(&records),
            };
            let report = index
                .index(&mut source, &decryptor, &IndexOptions::default())
                .expect("index");
            assert_eq!(report.failed, 0, "no record may fail");
            let indexed = t.elapsed();
            if engine == "inverted" {
                index.wait_for_inverted().expect("inverted index");
            }
            let waited = t.elapsed();
            drop(index);
            eprintln!(
                "  {engine}: index {:.2} s, wait for inverted {:.2} s, close {:.2} s",
                indexed.as_secs_f64(),
                (waited - indexed).as_secs_f64(),
                (t.elapsed() - waited).as_secs_f64()
            );
            report.stored
        }
        "tantivy" => {
            PlainTantivy::build(&dir, &records).expect("build tantivy");
            records.len() as u64
        }
        "sqlcipher" | "sqlcipher-cache" => {
            let db = Fts5::build(&dir, &KEY, sqlite_cache(engine), &records).expect("build FTS5");
            drop(db);
            records.len() as u64
        }
        other => panic!("engine {other} is not built yet"),
    };
    let seconds = t.elapsed().as_secs_f64();
    emit(&Build {
        engine: engine.to_owned(),
        docs,
        seconds,
        all_seconds: Vec::new(),
        docs_per_s: docs as f64 / seconds,
        disk_bytes: disk_bytes(&dir),
        text_bytes: text_bytes(&records),
        peak_rss_kb: peak_rss_kb(),
    });
}

/// Step 4: open, first query, the battery.
fn child_query(engine: &str, corpus: &str, work: &Path) {
    let dir = engine_dir(work, engine);
    let result = match engine {
        "forward" | "inverted" => run_queries(engine, corpus, &dir, |d| {
            Sealdex::open(&d.join("index"), engine)
        }),
        "tantivy" => run_queries(engine, corpus, &dir, |d| Tantivy {
            index: PlainTantivy::open(d).expect("open tantivy"),
        }),
        "sqlcipher" | "sqlcipher-cache" => run_queries(engine, corpus, &dir, |d| Sqlcipher {
            db: Fts5::open(d, &KEY, sqlite_cache(engine)).expect("open FTS5"),
        }),
        other => panic!("engine {other} is not built yet"),
    };
    emit(&result);
}

fn child(args: &[String]) {
    match args {
        [step, engine, corpus, work, ..] => {
            let work = Path::new(work);
            match step.as_str() {
                "prepare" => child_prepare(engine, corpus, work),
                "baseline" => child_baseline(work),
                "build" => child_build(engine, work),
                "query" => child_query(engine, corpus, work),
                other => panic!("unknown step {other}"),
            }
        }
        _ => panic!("usage: compare --child STEP ENGINE CORPUS WORKDIR"),
    }
}

// ---------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------

/// Runs one child step and returns its JSON result.
fn spawn<T: for<'de> Deserialize<'de>>(step: &str, engine: &str, corpus: &str, work: &Path) -> T {
    let exe = std::env::current_exe().expect("own binary");
    eprintln!("== {corpus}: {step} {engine}");
    let mut child = Command::new(exe)
        .args(["--child", step, engine, corpus])
        .arg(work)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut found = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("child stdout");
        match line.strip_prefix(RESULT_TAG) {
            Some(json) => found = Some(serde_json::from_str(json).expect("child JSON")),
            None => println!("{line}"),
        }
    }
    let status = child.wait().expect("wait child");
    assert!(
        status.success(),
        "{step} {engine} {corpus} failed: {status}"
    );
    found.unwrap_or_else(|| panic!("{step} {engine} {corpus} printed no result"))
}

fn selected(var: &str, all: &[&str], default: &[&str]) -> Vec<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() && v != "all" => v
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| all.contains(&s.as_str()))
            .collect(),
        _ => default.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// How many times each build and end-to-end step runs (the median run is
/// reported, the others are in `all_seconds`): `COMPARE_BUILD_RUNS`, else 3
/// for mail (its builds last about a second, so one run is mostly noise)
/// and 1 for chat.
fn build_runs(corpus: &str) -> usize {
    std::env::var("COMPARE_BUILD_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if corpus == "mail" { 3 } else { 1 })
        .max(1)
}

/// Runs a step `n` times and keeps the run of median duration, with every
/// run's seconds.
fn median_of<T: WithRuns>(n: usize, run: impl Fn() -> T, seconds: impl Fn(&T) -> f64) -> T {
    let mut all: Vec<T> = (0..n).map(|_| run()).collect();
    let times: Vec<f64> = all.iter().map(&seconds).collect();
    all.sort_by(|a, b| seconds(a).total_cmp(&seconds(b)));
    let mut median = all.swap_remove(n / 2);
    median.set_runs(times);
    median
}

/// A step result that keeps the durations of all its runs.
trait WithRuns {
    fn set_runs(&mut self, seconds: Vec<f64>);
}

impl WithRuns for E2e {
    fn set_runs(&mut self, seconds: Vec<f64>) {
        self.all_seconds = seconds;
    }
}

impl WithRuns for Build {
    fn set_runs(&mut self, seconds: Vec<f64>) {
        self.all_seconds = seconds;
    }
}

fn run_corpus(corpus: &str, engines: &[String]) -> CorpusReport {
    let tmp = tempfile::Builder::new()
        .prefix("sealdex-compare-")
        .tempdir()
        .expect("temp dir");
    let work = tmp.path();
    let mut report = CorpusReport {
        corpus: corpus.to_owned(),
        ..CorpusReport::default()
    };
    let n = build_runs(corpus);
    report.e2e.push(median_of(
        n,
        || spawn("prepare", "forward", corpus, work),
        |e: &E2e| e.seconds,
    ));
    if engines.iter().any(|e| e == "inverted") {
        report.e2e.push(median_of(
            n,
            || spawn("prepare", "inverted", corpus, work),
            |e: &E2e| e.seconds,
        ));
    }
    report.baseline = Some(spawn("baseline", "-", corpus, work));
    for engine in engines {
        report.builds.push(median_of(
            n,
            || spawn("build", engine, corpus, work),
            |b: &Build| b.seconds,
        ));
        report.queries.push(spawn("query", engine, corpus, work));
        // Free the disk before the next engine.
        let _ = std::fs::remove_dir_all(engine_dir(work, engine));
    }
    report
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Rounds to three significant digits for tables.
fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn grouped(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn engine_label(engine: &str) -> &'static str {
    match engine {
        "forward" => "sealdex forward",
        "inverted" => "sealdex inverted",
        "tantivy" => "tantivy, plaintext MmapDirectory",
        "sqlcipher" => "SQLCipher + FTS5",
        "sqlcipher-cache" => "SQLCipher + FTS5, 256 MiB page cache",
        _ => "?",
    }
}

fn print_corpus(r: &CorpusReport) {
    let by_build: BTreeMap<&str, &Build> =
        r.builds.iter().map(|b| (b.engine.as_str(), b)).collect();
    let by_query: BTreeMap<&str, &Queries> =
        r.queries.iter().map(|q| (q.engine.as_str(), q)).collect();
    let by_e2e: BTreeMap<&str, &E2e> = r.e2e.iter().map(|e| (e.engine.as_str(), e)).collect();
    let docs = r.baseline.as_ref().map(|b| b.docs).unwrap_or(0);
    let text = r.baseline.as_ref().map(|b| b.text_bytes).unwrap_or(0);
    println!();
    println!(
        "### {} ({} messages, {:.1} MB of extracted text)",
        r.corpus,
        grouped(docs as f64),
        mb(text)
    );
    println!();
    println!(
        "| engine | docs/s from extracted text | docs/s from raw | on disk MB | disk / text | all hits median µs | all hits p99 µs | count + newest 10 median µs | p99 µs | first page median µs | p99 µs | open + first result ms | peak RSS build MiB | peak RSS open + queries MiB | same hits as forward | same first-page dates |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let forward = by_query.get("forward").copied();
    for engine in ENGINES {
        let (Some(b), Some(q)) = (by_build.get(engine), by_query.get(engine)) else {
            continue;
        };
        let raw = by_e2e
            .get(engine)
            .map(|e| grouped(e.docs_per_s))
            .unwrap_or_else(|| "–".into());
        let (open, _) = percentiles(&q.open_first_ms);
        let agree = forward
            .map(|f| {
                let same = f
                    .queries
                    .iter()
                    .zip(&q.queries)
                    .filter(|(a, b)| a.hits == b.hits && a.count == b.count)
                    .count();
                format!("{same}/{}", q.queries.len())
            })
            .unwrap_or_else(|| "–".into());
        let same_dates = forward
            .map(|f| {
                let same = f
                    .queries
                    .iter()
                    .zip(&q.queries)
                    .filter(|(a, b)| a.page_dates == b.page_dates)
                    .count();
                format!("{same}/{}", q.queries.len())
            })
            .unwrap_or_else(|| "–".into());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            engine_label(engine),
            grouped(b.docs_per_s),
            raw,
            sig(mb(b.disk_bytes)),
            sig(b.disk_bytes as f64 / b.text_bytes.max(1) as f64),
            sig(q.all_median_us),
            sig(q.all_p99_us),
            sig(q.ten_median_us),
            sig(q.ten_p99_us),
            sig(q.page_median_us),
            sig(q.page_p99_us),
            sig(open),
            sig(mib(b.peak_rss_kb)),
            sig(mib(q.peak_rss_kb)),
            agree,
            same_dates,
        );
    }
    if let Some(b) = &r.baseline {
        println!(
            "\nBaseline: loading the extracted records alone peaks at {} MiB (part of every build's peak RSS). Latencies pool up to {} runs (at least 3, fewer once a query has taken {} s) of each of {} queries, each query weighing the same.",
            sig(mib(b.peak_rss_kb)),
            r.queries.first().map(|q| q.runs).unwrap_or(0),
            max_time().as_secs_f64(),
            r.queries.first().map(|q| q.queries.len()).unwrap_or(0),
        );
    }

    // Ratios: sealdex / peer; below 1 is better for sealdex except docs/s.
    let peers: Vec<&str> = ["tantivy", "sqlcipher", "sqlcipher-cache"]
        .into_iter()
        .filter(|p| by_build.contains_key(p))
        .collect();
    for mode in ["forward", "inverted"] {
        let (Some(sb), Some(sq)) = (by_build.get(mode), by_query.get(mode)) else {
            continue;
        };
        for peer in &peers {
            let (pb, pq) = (by_build[peer], by_query[peer]);
            println!(
                "\nsealdex {mode} / {}: docs/s ×{} (higher is better), on disk ×{}, all hits median ×{} p99 ×{}, count + newest 10 median ×{} p99 ×{}, first page median ×{} p99 ×{}, open + first result ×{}, peak RSS build ×{} queries ×{} (lower is better)",
                engine_label(peer),
                sig(sb.docs_per_s / pb.docs_per_s),
                sig(sb.disk_bytes as f64 / pb.disk_bytes as f64),
                sig(sq.all_median_us / pq.all_median_us),
                sig(sq.all_p99_us / pq.all_p99_us),
                sig(sq.ten_median_us / pq.ten_median_us),
                sig(sq.ten_p99_us / pq.ten_p99_us),
                sig(sq.page_median_us / pq.page_median_us),
                sig(sq.page_p99_us / pq.page_p99_us),
                sig(percentiles(&sq.open_first_ms).0 / percentiles(&pq.open_first_ms).0),
                sig(sb.peak_rss_kb as f64 / pb.peak_rss_kb as f64),
                sig(sq.peak_rss_kb as f64 / pq.peak_rss_kb as f64),
            );
        }
    }

    // Per query: median µs (all hits / count + newest 10 / first page)
    // and hits.
    println!();
    print!("| kind | query |");
    for q in &r.queries {
        print!(" {} hits | {} µs all / 10 / page |", q.engine, q.engine);
    }
    println!();
    print!("|---|---|");
    for _ in &r.queries {
        print!("---:|---:|");
    }
    println!();
    let n = r.queries.first().map(|q| q.queries.len()).unwrap_or(0);
    for i in 0..n {
        let first = &r.queries[0].queries[i];
        print!("| {} | `{}` |", first.kind, first.text);
        for q in &r.queries {
            let t = &q.queries[i];
            let mark = if t.hits == first.hits && t.count == first.count {
                ""
            } else {
                " ≠"
            };
            print!(
                " {}{mark} | {} / {} / {} |",
                t.hits,
                sig(t.all_median_us),
                sig(t.ten_median_us),
                sig(t.page_median_us)
            );
        }
        println!();
    }
}

/// `target/compare.json`: beside the profile directory the runner is in
/// (`target/release/deps/compare-…`), or `COMPARE_JSON`.
fn json_path() -> PathBuf {
    if let Some(p) = std::env::var_os("COMPARE_JSON") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("own binary");
    exe.ancestors()
        .nth(3)
        .map(|t| t.join("compare.json"))
        .unwrap_or_else(|| PathBuf::from("compare.json"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    let Some(root) = common::corpora_dir() else {
        eprintln!();
        eprintln!("******************************************************************");
        eprintln!("*  SKIPPED: benches/compare.rs needs the corpora.                *");
        eprintln!("*  Set SEALDEX_CORPORA to the directory they were fetched to.    *");
        eprintln!("******************************************************************");
        eprintln!();
        return;
    };
    let corpora = selected("COMPARE_CORPUS", &["mail", "chat"], &["mail", "chat"]);
    let engines = selected("COMPARE_ENGINES", BUILT, BUILT);
    let not_built: Vec<String> = ENGINES
        .iter()
        .filter(|e| !BUILT.contains(e))
        .map(|e| (*e).to_owned())
        .collect();
    let load_average_start = load_average();
    let mut reports = Vec::new();
    for corpus in &corpora {
        let present = match corpus.as_str() {
            "mail" => root.join("spamassassin").is_dir(),
            _ => common::chitchat_path().is_some_and(|p| p.is_file()),
        };
        if !present {
            eprintln!(
                "*** SKIPPED {corpus}: its corpus is not under {} ***",
                root.display()
            );
            continue;
        }
        reports.push(run_corpus(corpus, &engines));
    }
    let report = Report {
        runs: runs(),
        max_seconds: max_time().as_secs_f64(),
        sqlite_cache_kib: common::peers::sqlite_cache_kib(),
        engines: engines.clone(),
        not_built: not_built.clone(),
        load_average_start,
        load_average_end: load_average(),
        corpora: reports,
    };
    println!();
    println!(
        "## sealdex and its peers (up to {} runs per query; load average {} at the start, {} at the end; {} cores)",
        report.runs,
        report.load_average_start,
        report.load_average_end,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    if !not_built.is_empty() {
        println!("\nNot measured (not built yet): {}.", not_built.join(", "));
    }
    for r in &report.corpora {
        print_corpus(r);
    }
    let path = json_path();
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).expect("encode report"),
    )
    .expect("write JSON");
    println!("\nRaw figures: {}", path.display());
}
