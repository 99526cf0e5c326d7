//! The scaling curve: sealdex at 10k, 100k and 1M synthetic mail messages
//! (`benches/common/synth.rs`), per search mode.
//!
//! For each (size, mode) the runner starts its own binary twice as a child
//! process, so that each figure of peak memory belongs to one step alone:
//!
//! 1. **index**: creates an index in a temporary directory and indexes
//!    `size` messages generated on the fly (nothing of the corpus is on
//!    disk). Reports messages per second (generation, MIME parsing, HTML to
//!    text, sealing, sled and, in inverted mode, the inverted index, up to
//!    `wait_for_inverted`), the peak RSS (`VmHWM`, reset after the
//!    generator's model is loaded, so the model's own ≈ 100 MB are not
//!    counted; the model's RSS is reported beside it) and RSS sampled every
//!    100 ms and after every batch, against messages done.
//! 2. **query**: opens the index (`Index::open`) and runs the first query of
//!    the battery: the time from open to first result. Then every query of
//!    the mail battery (`benches/common/battery.rs`, with its 2002 dates
//!    moved to 2024, inside the synthetic date range) as "count + newest
//!    ten with snippets" (`limit 10`), a warm-up run and then up to
//!    `SCALE_QUERY_RUNS` (20) timed runs, fewer when a query has taken
//!    `SCALE_QUERY_SECS` (3 s) and has 3 runs; a query whose warm-up alone
//!    took longer than that is timed once (the warm-up is the sample), and
//!    once the battery has run `SCALE_BATTERY_SECS` (900 s) the remaining
//!    queries are skipped and listed as such. Reports the median and p99
//!    over all timed runs of all queries, the worst per-query p99, and the
//!    peak RSS of this process (open, cache fill, queries).
//!
//! Between the two, the parent sums the bytes of the index directory.
//!
//! Modes (`SCALE_MODES`, comma-separated; default `forward,inverted`):
//!
//! - `forward`: `IndexConfig { inverted: false, cache_bytes: 512 MiB }`
//!   (the default budget) and `SearchMode::Forward`: the first search fills
//!   the decrypted cache, and records beyond the budget are streamed from
//!   the encrypted store on every search.
//! - `forward@MB`: the same with a cache budget of `MB` MiB.
//! - `inverted`: `IndexConfig { inverted: true }` (decrypted-chunk cache
//!   32 MiB, the default) and `SearchMode::Inverted`.
//! - `inverted@MB`: the same with a decrypted-chunk cache of `MB` MiB.
//!
//! Sizes: `SCALE_SIZES=10000,100000,1000000` (default). Results are merged
//! into `SCALE_JSON` (default `bench-notes/scale.json`, by size and mode,
//! replacing earlier figures of the same pair), then the whole file is
//! printed as a markdown table and drawn into `SCALE_SVG` (default
//! `docs/scaling.svg`). `cargo bench --bench scale -- --report` only
//! prints and draws what the JSON holds. `SCALE_DIR` is where indexes are
//! built (default: the system temporary directory); they are removed
//! after each pair unless `SCALE_KEEP=1`. `SCALE_ONLY=name,name` runs only
//! those queries of the battery (by name, e.g. `split_e-mail`).
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora SCALE_SIZES=10000,100000 \
//!   cargo bench --bench scale
//! ```
//!
//! Needs `SEALDEX_CORPORA`; skips loudly without it.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::battery::{self, BenchQuery};
use common::synth::{self, Model, Synth};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{Control, IndexOptions};
use sealdex::{Credential, Index, IndexConfig, KdfParams, SearchMode, SearchOptions, SecretKey};
use serde_json::{Value, json};

/// The generator's seed: one mailbox for every size and mode.
const SEED: u64 = 0x5ca1e;

/// The first query, timed from open: a rare word of the corpus.
const FIRST_QUERY: &str = "bayesian";

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// A `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> u64 {
    status_bytes("VmRSS")
}

fn hwm() -> u64 {
    status_bytes("VmHWM")
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux ≥ 4.0).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    json!({ "cpu": model, "nproc": nproc, "mem_gib": (mem_kb as f64 / 1048576.0 * 10.0).round() / 10.0 })
}

fn git_commit() -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = out(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    }
}

fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Apparent and allocated bytes of every file under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    let (mut apparent, mut allocated) = (0, 0);
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                apparent += m.len();
                allocated += m.blocks() * 512;
            }
        }
    }
    (apparent, allocated)
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

struct Mode {
    name: String,
    config: IndexConfig,
    search: SearchMode,
}

fn mode(name: &str) -> Mode {
    let mut config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    };
    let (engine, mb) = name.split_once('@').unwrap_or((name, ""));
    let bytes = (!mb.is_empty()).then(|| {
        mb.parse::<usize>()
            .unwrap_or_else(|_| panic!("bad cache size in mode {name:?}"))
            << 20
    });
    let search = match engine {
        "inverted" => {
            config.inverted = true;
            config.inverted_cache_bytes = bytes.unwrap_or(config.inverted_cache_bytes);
            SearchMode::Inverted
        }
        "forward" => {
            config.inverted = false;
            config.cache_bytes = bytes.unwrap_or(config.cache_bytes);
            SearchMode::Forward
        }
        _ => panic!("unknown mode {name:?}: use forward, forward@MB, inverted or inverted@MB"),
    };
    Mode {
        name: name.to_string(),
        config,
        search,
    }
}

fn credential() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x5c; 32]))
}

/// The mail battery with its dates moved into the synthetic range.
fn queries() -> Vec<(BenchQuery, String)> {
    battery::MAIL
        .iter()
        .map(|q| (*q, q.text.replace("2002-", "2024-")))
        .collect()
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

fn arg<'a>(args: &'a [String], name: &str) -> &'a str {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("child needs {name}"))
}

/// `--child index --n N --mode M --dir D --model P`
fn child_index(args: &[String]) -> Value {
    let n: u64 = arg(args, "--n").parse().expect("--n");
    let mode = mode(arg(args, "--mode"));
    let dir = PathBuf::from(arg(args, "--dir"));
    let model = Arc::new(Model::load(Path::new(arg(args, "--model"))).expect("model"));
    let rss_model = rss();
    let reset = reset_hwm();

    let peak = Arc::new(AtomicU64::new(rss()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let mut source = Synth::new(model, SEED, n);
    let started = Instant::now();
    let index = Index::create(&dir, &credential(), mode.config.clone()).expect("create");
    let mut curve: Vec<(u64, u64)> = Vec::new();
    let mut raw_bytes = 0;
    let mut next_report = 0u64;
    let report = index
        .index_with(
            &mut source,
            &PassThrough::default(),
            &IndexOptions::default(),
            &Control::new(),
            &mut |p| {
                let now = rss();
                peak.fetch_max(now, Ordering::Relaxed);
                curve.push((p.done, now));
                raw_bytes = p.bytes;
                if p.done >= next_report {
                    eprintln!(
                        "  [{}] {:>8}/{n} messages, {:.0} msg/s, RSS {:.0} MiB, load {}",
                        mode.name,
                        p.done,
                        p.rate,
                        mib(now),
                        loadavg()
                    );
                    next_report = p.done + (n / 10).max(1);
                }
            },
        )
        .expect("index");
    let indexed = started.elapsed();
    if mode.search == SearchMode::Inverted {
        index.wait_for_inverted().expect("inverted index");
    }
    let total = started.elapsed();
    let status = format!("{:?}", index.inverted_status().ok());
    drop(index);
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    // At most 200 points of the RSS curve.
    let step = (curve.len() / 200).max(1);
    let curve: Vec<Value> = curve
        .iter()
        .step_by(step)
        .chain(curve.last())
        .map(|(d, r)| json!([d, r]))
        .collect();
    json!({
        "stored": report.stored,
        "failed": report.failed,
        "seconds": total.as_secs_f64(),
        "pipeline_seconds": indexed.as_secs_f64(),
        "msg_per_s": report.stored as f64 / total.as_secs_f64(),
        "raw_bytes": raw_bytes,
        "rss_model_bytes": rss_model,
        "hwm_reset": reset,
        "peak_rss_bytes": hwm().max(peak.load(Ordering::Relaxed)),
        "sampled_peak_rss_bytes": peak.load(Ordering::Relaxed),
        "rss_curve": curve,
        "inverted_status": status,
        "load_after": loadavg(),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}

/// `--child query --mode M --dir D`
fn child_query(args: &[String]) -> Value {
    let mode = mode(arg(args, "--mode"));
    let dir = PathBuf::from(arg(args, "--dir"));
    let max_runs: usize = env_or("SCALE_QUERY_RUNS", "20").parse().expect("runs");
    let budget = Duration::from_secs_f64(env_or("SCALE_QUERY_SECS", "3").parse().expect("secs"));
    let opts = SearchOptions {
        limit: Some(10),
        mode: mode.search,
        ..SearchOptions::default()
    };
    reset_hwm();
    let rss_start = rss();
    let t = Instant::now();
    let index = Index::open(&dir, &credential(), mode.config.clone()).expect("open");
    let opened = t.elapsed();
    let first = index.search(FIRST_QUERY, &opts).expect("first query");
    let to_first = t.elapsed();
    let rss_after_first = rss();
    eprintln!(
        "  [{}] open {:.0} ms, first result ({FIRST_QUERY}: {} hits) at {:.0} ms, RSS {:.0} MiB",
        mode.name,
        opened.as_secs_f64() * 1e3,
        first.total,
        to_first.as_secs_f64() * 1e3,
        mib(rss_after_first)
    );

    let battery_budget = Duration::from_secs_f64(
        env_or("SCALE_BATTERY_SECS", "900")
            .parse()
            .expect("SCALE_BATTERY_SECS"),
    );
    let battery_started = Instant::now();
    let mut all = Vec::new();
    let mut per_query = Vec::new();
    let mut skipped = Vec::new();
    let only = std::env::var("SCALE_ONLY").ok();
    let only: Option<Vec<&str>> = only.as_deref().map(|o| o.split(',').collect());
    for (q, text) in queries() {
        if only.as_ref().is_some_and(|o| !o.contains(&q.name)) {
            continue;
        }
        if battery_started.elapsed() > battery_budget {
            skipped.push(q.name);
            continue;
        }
        let t = Instant::now();
        let warm = index
            .search(&text, &opts)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let warm_time = t.elapsed();
        let mut times = Vec::new();
        // A query slower than the per-query budget is timed once: its
        // warm-up run is the sample (every run streams the same records).
        if warm_time > budget {
            times.push(warm_time.as_secs_f64() * 1e3);
            eprintln!(
                "  [{}] `{text}`: {:.1} s, timed once",
                mode.name,
                warm_time.as_secs_f64()
            );
        } else {
            let started = Instant::now();
            while times.len() < max_runs && (times.len() < 3 || started.elapsed() < budget) {
                let t = Instant::now();
                std::hint::black_box(index.search(&text, &opts).expect("search"));
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        all.extend_from_slice(&times);
        times.sort_by(f64::total_cmp);
        per_query.push(json!({
            "name": q.name, "kind": q.kind, "query": text, "hits": warm.total,
            "runs": times.len(), "median_ms": percentile(&times, 0.5),
            "p99_ms": percentile(&times, 0.99),
        }));
    }
    all.sort_by(f64::total_cmp);
    let worst = per_query
        .iter()
        .max_by(|a, b| {
            a["p99_ms"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["p99_ms"].as_f64().unwrap_or(0.0))
        })
        .cloned()
        .unwrap_or(Value::Null);
    eprintln!(
        "  [{}] battery: {} queries ({} skipped: over SCALE_BATTERY_SECS), {} runs, median {:.2} ms, p99 {:.2} ms, worst p99 {:.1} ms ({})",
        mode.name,
        per_query.len(),
        skipped.len(),
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        worst["p99_ms"].as_f64().unwrap_or(f64::NAN),
        worst["query"].as_str().unwrap_or("")
    );
    json!({
        "open_ms": opened.as_secs_f64() * 1e3,
        "first_result_ms": to_first.as_secs_f64() * 1e3,
        "first_query": FIRST_QUERY,
        "first_hits": first.total,
        "rss_start_bytes": rss_start,
        "rss_after_first_bytes": rss_after_first,
        "rss_end_bytes": rss(),
        "peak_rss_bytes": hwm(),
        "runs": all.len(),
        "median_ms": percentile(&all, 0.5),
        "p99_ms": percentile(&all, 0.99),
        "worst_query_p99_ms": worst["p99_ms"],
        "worst_query": worst["query"],
        "queries": per_query,
        "skipped_queries": skipped,
        "battery_seconds": battery_started.elapsed().as_secs_f64(),
        "load_after": loadavg(),
    })
}

/// Runs this binary as a child and returns the JSON it prints last.
fn run_child(args: &[String]) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("start child");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("child {args:?} printed no result"));
    serde_json::from_str(line).expect("child JSON")
}

// ---------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------

fn repo_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default))
}

fn load_results(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({ "runs": [] }))
}

fn save_results(path: &Path, results: &Value) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("results directory");
    }
    let text = serde_json::to_string_pretty(results).expect("encode results");
    std::fs::write(path, text + "\n").expect("write results");
}

fn measure(sizes: &[u64], modes: &[String], json_path: &Path) {
    let root = std::env::var_os("SCALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("sealdex-scale-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("work directory");
    let corpora = common::corpora_dir().expect("corpora");
    let t = Instant::now();
    let model = Model::learn(&corpora, synth::LearnOptions::default()).expect("learn model");
    let model_path = root.join("model.bin");
    model.save(&model_path).expect("save model");
    eprintln!(
        "model learned in {:.1}s ({:.0} MB in memory)",
        t.elapsed().as_secs_f64(),
        model.heap_bytes() as f64 / 1e6
    );
    drop(model);
    let commit = git_commit();

    for &n in sizes {
        for m in modes {
            let dir = root.join(format!("idx-{n}-{}", m.replace('@', "-")));
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("{n} messages, {m}: indexing (load {})", loadavg());
            let load_before = loadavg();
            let started = now_utc();
            let s = |x: &str| x.to_string();
            let index = run_child(&[
                s("index"),
                s("--n"),
                n.to_string(),
                s("--mode"),
                m.clone(),
                s("--dir"),
                dir.display().to_string(),
                s("--model"),
                model_path.display().to_string(),
            ]);
            eprintln!(
                "  indexed {} in {:.1}s = {:.0} msg/s, peak RSS {:.0} MiB",
                index["stored"],
                index["seconds"].as_f64().unwrap_or(0.0),
                index["msg_per_s"].as_f64().unwrap_or(0.0),
                mib(index["peak_rss_bytes"].as_u64().unwrap_or(0))
            );
            let (apparent, allocated) = disk_usage(&dir);
            eprintln!(
                "  disk {:.1} MiB ({:.0} bytes/message)",
                mib(apparent),
                apparent as f64 / n as f64
            );
            let query = run_child(&[
                s("query"),
                s("--mode"),
                m.clone(),
                s("--dir"),
                dir.display().to_string(),
            ]);
            if std::env::var("SCALE_KEEP").as_deref() != Ok("1") {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let entry = json!({
                "messages": n,
                "mode": m,
                "commit": commit,
                "started": started,
                "load_before": load_before,
                "index": index,
                "disk": { "apparent_bytes": apparent, "allocated_bytes": allocated },
                "query": query,
            });
            // Another run may have saved meanwhile: merge into the file as
            // it is now.
            let mut results = load_results(json_path);
            results["machine"] = machine();
            let runs = results["runs"].as_array_mut().expect("runs array");
            runs.retain(|r| !(r["messages"] == json!(n) && r["mode"] == json!(m)));
            runs.push(entry);
            runs.sort_by_key(|r| {
                (
                    r["mode"].as_str().unwrap_or("").to_string(),
                    r["messages"].as_u64().unwrap_or(0),
                )
            });
            save_results(json_path, &results);
        }
    }
    if std::env::var("SCALE_KEEP").as_deref() == Ok("1") {
        eprintln!("kept: {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn table(results: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| messages | mode | index msg/s | index time | disk MiB | disk B/msg | queries run | query median ms | query p99 ms | worst query p99 ms | open→first ms | index peak RSS MiB (of it generator) | query peak RSS MiB | load avg | commit |"
    );
    let _ = writeln!(
        s,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for r in results["runs"].as_array().into_iter().flatten() {
        let n = r["messages"].as_u64().unwrap_or(0);
        let disk = r["disk"]["apparent_bytes"].as_u64().unwrap_or(0);
        let secs = f(&r["index"]["seconds"]);
        let _ = writeln!(
            s,
            "| {n} | {} | {:.0} | {} | {:.1} | {:.0} | {} | {:.2} | {:.2} | {:.1} (`{}`) | {:.0} | {:.0} ({:.0}) | {:.0} | {} → {} | `{}` |",
            r["mode"].as_str().unwrap_or(""),
            f(&r["index"]["msg_per_s"]),
            if secs >= 120.0 {
                format!("{:.1} min", secs / 60.0)
            } else {
                format!("{secs:.1} s")
            },
            mib(disk),
            disk as f64 / n.max(1) as f64,
            {
                let ran = r["query"]["queries"].as_array().map_or(0, Vec::len);
                let skipped = r["query"]["skipped_queries"].as_array().map_or(0, Vec::len);
                format!("{ran}/{}", ran + skipped)
            },
            f(&r["query"]["median_ms"]),
            f(&r["query"]["p99_ms"]),
            f(&r["query"]["worst_query_p99_ms"]),
            r["query"]["worst_query"].as_str().unwrap_or(""),
            f(&r["query"]["first_result_ms"]),
            mib(r["index"]["peak_rss_bytes"].as_u64().unwrap_or(0)),
            mib(r["index"]["rss_model_bytes"].as_u64().unwrap_or(0)),
            mib(r["query"]["peak_rss_bytes"].as_u64().unwrap_or(0)),
            r["load_before"].as_str().unwrap_or(""),
            r["query"]["load_after"].as_str().unwrap_or(""),
            r["commit"].as_str().unwrap_or(""),
        );
    }
    s
}

// ---------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------

/// One figure of a run.
type Get = fn(&Value) -> f64;
/// A panel: title, y label, log y, and per mode the series (label suffix,
/// figure).
type Panel = (&'static str, &'static str, bool, Vec<(&'static str, Get)>);
/// A drawn series: label, colour index (2 per mode), points.
type Series = (String, usize, Vec<(f64, f64)>);

fn chart(results: &Value, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let runs: Vec<&Value> = results["runs"].as_array().into_iter().flatten().collect();
    let mut modes: Vec<String> = runs
        .iter()
        .filter_map(|r| r["mode"].as_str().map(str::to_string))
        .collect();
    modes.sort();
    modes.dedup();
    let commits: Vec<String> = {
        let mut c: Vec<String> = runs
            .iter()
            .filter_map(|r| r["commit"].as_str().map(str::to_string))
            .collect();
        c.sort();
        c.dedup();
        c
    };
    let m = &results["machine"];
    let title = format!(
        "sealdex scaling on synthetic mail — {} × {} ({} GiB), commit {}",
        m["nproc"],
        m["cpu"].as_str().unwrap_or("?"),
        m["mem_gib"],
        commits.join(", ")
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1500, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(60);
    top.draw(&Text::new(
        title,
        (15, 10),
        ("sans-serif", 20).into_font().color(&BLACK),
    ))?;
    top.draw(&Text::new(
        "Shared 2-core VM under other load (see load avg in bench-notes/scale.md): p99 and rates are pessimistic. Synthetic corpus: benches/common/synth.rs.",
        (15, 36),
        ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let panels = rest.split_evenly((2, 3));
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    let xs: Vec<f64> = runs.iter().filter_map(|r| r["messages"].as_f64()).collect();
    let x_lo = xs.iter().copied().fold(f64::INFINITY, f64::min).min(1e4) / 1.5;
    let x_hi = xs.iter().copied().fold(0.0, f64::max).max(1e6) * 1.5;

    // (title, y label, log y, series per mode: (label suffix, extractor))
    let specs: Vec<Panel> = vec![
        (
            "indexing rate",
            "messages/s",
            false,
            vec![("", |r| f(&r["index"]["msg_per_s"]))],
        ),
        (
            "index size on disk",
            "MiB",
            true,
            vec![("", |r| {
                mib(r["disk"]["apparent_bytes"].as_u64().unwrap_or(0))
            })],
        ),
        (
            "query latency, mail battery (count + newest 10)",
            "ms",
            true,
            vec![
                (" median", |r| f(&r["query"]["median_ms"])),
                (" p99", |r| f(&r["query"]["p99_ms"])),
            ],
        ),
        (
            "open to first result",
            "ms",
            true,
            vec![("", |r| f(&r["query"]["first_result_ms"]))],
        ),
        (
            "peak RSS",
            "MiB",
            false,
            vec![
                (" indexing", |r| {
                    mib(r["index"]["peak_rss_bytes"].as_u64().unwrap_or(0))
                }),
                (" querying", |r| {
                    mib(r["query"]["peak_rss_bytes"].as_u64().unwrap_or(0))
                }),
            ],
        ),
    ];
    for (panel, (name, ylabel, log_y, series)) in panels.iter().zip(&specs) {
        let mut points: Vec<Series> = Vec::new();
        for (mi, mode) in modes.iter().enumerate() {
            for (si, (suffix, get)) in series.iter().enumerate() {
                let mut pts: Vec<(f64, f64)> = runs
                    .iter()
                    .filter(|r| r["mode"].as_str() == Some(mode.as_str()))
                    .filter_map(|r| Some((r["messages"].as_f64()?, get(r))))
                    .filter(|(_, y)| y.is_finite() && *y > 0.0)
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                points.push((format!("{mode}{suffix}"), mi * 2 + si, pts));
            }
        }
        let ys: Vec<f64> = points
            .iter()
            .flat_map(|p| p.2.iter().map(|q| q.1))
            .collect();
        let y_hi = ys.iter().copied().fold(0.0, f64::max).max(1e-3) * 1.6;
        let y_lo = ys
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .min(y_hi / 10.0)
            / 1.6;
        let mut builder = ChartBuilder::on(panel);
        builder
            .caption(*name, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60);
        macro_rules! body {
            ($chart:ident) => {{
                $chart
                    .configure_mesh()
                    .light_line_style(RGBColor(238, 238, 238))
                    .x_desc("messages")
                    .y_desc(*ylabel)
                    .x_label_formatter(&|x| {
                        if *x >= 1e6 {
                            format!("{:.0}M", x / 1e6)
                        } else {
                            format!("{:.0}k", x / 1e3)
                        }
                    })
                    .draw()?;
                for (label, colour, pts) in &points {
                    let c = palette[(colour / 2) % palette.len()];
                    // A mode's second series (p99, querying) in a paler tone.
                    let dashed = colour % 2 == 1;
                    let style = ShapeStyle {
                        color: if dashed { c.mix(0.45) } else { c.to_rgba() },
                        filled: !dashed,
                        stroke_width: 2,
                    };
                    $chart
                        .draw_series(LineSeries::new(pts.iter().copied(), style))?
                        .label(label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                    $chart.draw_series(pts.iter().map(|p| {
                        if dashed {
                            Cross::new(*p, 5, style).into_dyn()
                        } else {
                            Circle::new(*p, 4, style).into_dyn()
                        }
                    }))?;
                }
                $chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()?;
            }};
        }
        if *log_y {
            let mut chart =
                builder.build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())?;
            body!(chart);
        } else {
            let mut chart = builder.build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..y_hi)?;
            body!(chart);
        }
    }

    // Last panel: RSS while indexing, against messages done, for the
    // largest run of each mode.
    if let Some(panel) = panels.get(5) {
        let mut curves = Vec::new();
        for (mi, mode) in modes.iter().enumerate() {
            let Some(r) = runs
                .iter()
                .filter(|r| r["mode"].as_str() == Some(mode.as_str()))
                .max_by_key(|r| r["messages"].as_u64().unwrap_or(0))
            else {
                continue;
            };
            let pts: Vec<(f64, f64)> = r["index"]["rss_curve"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p[0].as_f64()?, mib(p[1].as_u64()?))))
                .collect();
            curves.push((
                format!("{mode}, {} messages", r["messages"]),
                palette[mi % palette.len()],
                pts,
            ));
        }
        let x_hi = curves
            .iter()
            .flat_map(|c| c.2.iter().map(|p| p.0))
            .fold(1.0, f64::max);
        let y_hi = curves
            .iter()
            .flat_map(|c| c.2.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.3;
        let mut chart = ChartBuilder::on(panel)
            .caption("RSS while indexing (largest run)", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .x_desc("messages indexed")
            .y_desc("RSS MiB")
            .x_label_formatter(&|x| {
                if *x >= 1e6 {
                    format!("{:.2}M", x / 1e6)
                } else if *x >= 1e4 {
                    format!("{:.0}k", x / 1e3)
                } else {
                    format!("{x:.0}")
                }
            })
            .draw()?;
        for (label, c, pts) in curves {
            let style = ShapeStyle {
                color: c.to_rgba(),
                filled: true,
                stroke_width: 2,
            };
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let rest = &args[i + 1..];
        let result = match rest.first().map(String::as_str) {
            Some("index") => child_index(rest),
            Some("query") => child_query(rest),
            other => panic!("unknown child step {other:?}"),
        };
        println!("{result}");
        return;
    }
    let json_path = repo_path("SCALE_JSON", "bench-notes/scale.json");
    let svg_path = repo_path("SCALE_SVG", "docs/scaling.svg");
    if !args.iter().any(|a| a == "--report") {
        if common::corpora_dir().is_none() {
            eprintln!();
            eprintln!("******************************************************************");
            eprintln!("*  SKIPPED: benches/scale.rs needs the corpora.                  *");
            eprintln!("*  Set SEALDEX_CORPORA to the directory they were fetched to.    *");
            eprintln!("******************************************************************");
            eprintln!();
            return;
        }
        let sizes: Vec<u64> = env_or("SCALE_SIZES", "10000,100000,1000000")
            .split(',')
            .map(|s| s.trim().parse().expect("SCALE_SIZES: numbers"))
            .collect();
        let modes: Vec<String> = env_or("SCALE_MODES", "forward,inverted")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        for m in &modes {
            let _ = mode(m);
        }
        measure(&sizes, &modes, &json_path);
    }
    let results = load_results(&json_path);
    println!("{}", table(&results));
    match chart(&results, &svg_path) {
        Ok(()) => eprintln!("chart: {}", svg_path.display()),
        Err(e) => eprintln!("cannot draw {}: {e}", svg_path.display()),
    }
    eprintln!("results: {}", json_path.display());
}
