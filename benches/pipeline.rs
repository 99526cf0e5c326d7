//! The whole pipeline on the SpamAssassin corpus: raw files to a flushed,
//! sealed store, through the real Tree source and the pass-through decryptor.
//!
//! Needs `SEALDEX_CORPORA` (see `scripts/fetch-corpora.sh`); skips loudly
//! without it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{self, Control, IndexOptions};
use sealdex::{Credential, Index, IndexConfig, KdfParams};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("SEALDEX_CORPORA")?).join("spamassassin");
    dir.exists().then_some(dir)
}

fn index_once(corpus: &std::path::Path) -> (u64, Duration) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let index = Index::create(
        &tmp.path().join("idx"),
        &Credential::passphrase("bench"),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        },
    )
    .expect("create");
    let mut source = sealdex::backends::open_path(corpus).expect("source");
    let start = Instant::now();
    let report = pipeline::run(
        &index,
        source.as_mut(),
        &PassThrough::default(),
        &IndexOptions::default(),
        &Control::new(),
        &mut |_| {},
    )
    .expect("index");
    (report.stored + report.failed, start.elapsed())
}

fn pipeline(c: &mut Criterion) {
    let Some(corpus) = corpus() else {
        eprintln!(
            "\n*** SKIPPED pipeline bench: set SEALDEX_CORPORA (scripts/fetch-corpora.sh) ***\n"
        );
        return;
    };
    let (n, first) = index_once(&corpus);
    eprintln!(
        "spamassassin: {n} messages in {:.2}s = {:.0} msg/s (first run)",
        first.as_secs_f64(),
        n as f64 / first.as_secs_f64()
    );
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(n));
    g.bench_function("spamassassin_raw_to_flushed_store", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| index_once(&corpus).1).sum())
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
