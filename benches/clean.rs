//! Throughput of the cleaning stage on real mail: MIME parsing, HTML to
//! text, and Unicode normalisation (ASCII-heavy and multilingual text).
//!
//! Needs the corpora (`SEALDEX_CORPORA`, see `tests/mime_corpus.rs`):
//! `$SEALDEX_CORPORA/spamassassin/<group>/*.txt` and
//! `$SEALDEX_CORPORA/multilingual/*.yml`. Without it the bench says so
//! loudly and measures nothing.
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --bench clean -- --quick
//! ```
//!
//! Baselines sit beside each measurement so the numbers explain the design:
//! html2text, as sealdex configured it before the one-pass converter and
//! with its default decorated renderer, next to `clean::html_to_text`; and
//! a whole-string NFKD + case fold with no ASCII fast path next to
//! `clean::normalise`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use caseless::Caseless;
use criterion::{Criterion, Throughput};
use sealdex::decrypt::PassThrough;
use sealdex::{Body, Decryptor, RawMessage, clean};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

fn read_dir_sorted(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.to_string_lossy().ends_with(ext));
    files.sort();
    files
}

struct Corpus {
    /// Raw SpamAssassin messages.
    mails: Vec<RawMessage>,
    /// HTML bodies of the HTML-only messages among them.
    html: Vec<String>,
    /// Cleaned bodies of the ham messages: mostly ASCII English.
    ascii_text: String,
    /// The multilingual dialogues, 30-odd languages and scripts.
    multilingual: String,
}

fn load(root: &Path) -> Corpus {
    let mut mails = Vec::new();
    for group in ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"] {
        for path in read_dir_sorted(&root.join("spamassassin").join(group), ".txt") {
            if let Ok(bytes) = std::fs::read(&path) {
                mails.push(RawMessage {
                    id: path.to_string_lossy().into_owned(),
                    bytes,
                    ..RawMessage::default()
                });
            }
        }
    }
    let decryptor = PassThrough::default();
    let mut html = Vec::new();
    let mut ascii_text = String::new();
    for raw in &mails {
        match decryptor.decrypt(raw).map(|m| m.body) {
            Ok(Body::Html(h)) => html.push(h),
            Ok(Body::Text(t)) if raw.id.contains("ham") => {
                ascii_text.push_str(&t);
                ascii_text.push('\n');
            }
            _ => {}
        }
    }
    let mut multilingual = String::new();
    for path in read_dir_sorted(&root.join("multilingual"), ".yml") {
        if let Ok(text) = std::fs::read_to_string(&path) {
            multilingual.push_str(&text);
        }
    }
    Corpus {
        mails,
        html,
        ascii_text,
        multilingual,
    }
}

/// The straightforward normaliser, for comparison: every character through
/// NFKD, mark removal and full case folding, ASCII included.
fn naive_normalise(text: &str) -> String {
    text.nfkd()
        .filter(|&c| !is_combining_mark(c))
        .default_case_fold()
        .nfkd()
        .filter(|&c| !is_combining_mark(c))
        .collect()
}

fn bench_mime(c: &mut Criterion, corpus: &Corpus) {
    let bytes: usize = corpus.mails.iter().map(|m| m.bytes.len()).sum();
    let mut g = c.benchmark_group("mime");
    g.throughput(Throughput::Bytes(bytes as u64))
        .sample_size(10);
    let decryptor = PassThrough::default();
    g.bench_function("parse_rfc822/spamassassin", |b| {
        b.iter(|| {
            for raw in &corpus.mails {
                let _ = black_box(decryptor.decrypt(black_box(raw)));
            }
        })
    });
    g.bench_function("parse_and_clean/spamassassin", |b| {
        b.iter(|| {
            for raw in &corpus.mails {
                if let Ok(msg) = decryptor.decrypt(black_box(raw)) {
                    black_box(clean::clean(msg, "bench", None));
                }
            }
        })
    });
    g.finish();
}

fn bench_html(c: &mut Criterion, corpus: &Corpus) {
    let bytes: usize = corpus.html.iter().map(String::len).sum();
    let mut g = c.benchmark_group("html");
    g.throughput(Throughput::Bytes(bytes as u64))
        .sample_size(10);
    g.bench_function("html_to_text/spam_html", |b| {
        b.iter(|| {
            for h in &corpus.html {
                black_box(clean::html_to_text(black_box(h)));
            }
        })
    });
    // The converter sealdex used before the one-pass tokenizer: html2text
    // building a DOM and a render tree (still the fallback for documents
    // whose style sheets may hide elements).
    let previous = || {
        html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
            .raw_mode(true)
            .no_table_borders()
            .link_footnotes(false)
            .allow_width_overflow()
            .use_doc_css()
    };
    g.bench_function("baseline_html2text_trivial_raw_doc_css/spam_html", |b| {
        b.iter(|| {
            for h in &corpus.html {
                let _ = black_box(previous().string_from_read(black_box(h.as_bytes()), 1 << 20));
            }
        })
    });
    g.bench_function("baseline_html2text_plain_80cols/spam_html", |b| {
        b.iter(|| {
            for h in &corpus.html {
                let _ = black_box(
                    html2text::config::plain().string_from_read(black_box(h.as_bytes()), 80),
                );
            }
        })
    });
    g.finish();
}

fn bench_normalise(c: &mut Criterion, corpus: &Corpus) {
    let mut g = c.benchmark_group("normalise");
    for (name, text) in [
        ("ascii_heavy_ham", &corpus.ascii_text),
        ("multilingual", &corpus.multilingual),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        let mut out = String::with_capacity(text.len() * 2);
        g.bench_function(format!("normalise_into/{name}"), |b| {
            b.iter(|| {
                out.clear();
                clean::normalise_into(black_box(text), &mut out);
                black_box(out.len())
            })
        });
        g.bench_function(format!("baseline_naive_nfkd_fold/{name}"), |b| {
            b.iter(|| black_box(naive_normalise(black_box(text))))
        });
        let normalised = clean::normalise(text);
        g.throughput(Throughput::Bytes(normalised.len() as u64));
        g.bench_function(format!("tokens/{name}"), |b| {
            b.iter(|| black_box(clean::tokens(black_box(&normalised)).count()))
        });
    }
    g.finish();
}

fn main() {
    let Some(root) = std::env::var_os("SEALDEX_CORPORA").map(PathBuf::from) else {
        eprintln!();
        eprintln!("******************************************************************");
        eprintln!("*  SKIPPED: benches/clean.rs needs the mail corpora.             *");
        eprintln!("*  Set SEALDEX_CORPORA to the directory they were fetched to.    *");
        eprintln!("******************************************************************");
        eprintln!();
        return;
    };
    let corpus = load(&root);
    if corpus.mails.is_empty() || corpus.multilingual.is_empty() {
        eprintln!("SKIPPED: no corpus files under {}", root.display());
        return;
    }
    eprintln!(
        "corpus: {} messages ({} MB), {} HTML bodies ({} MB), {} MB ham text, {} MB multilingual",
        corpus.mails.len(),
        corpus.mails.iter().map(|m| m.bytes.len()).sum::<usize>() >> 20,
        corpus.html.len(),
        corpus.html.iter().map(String::len).sum::<usize>() >> 20,
        corpus.ascii_text.len() >> 20,
        corpus.multilingual.len() >> 20,
    );
    let mut c = Criterion::default().configure_from_args();
    bench_normalise(&mut c, &corpus);
    bench_html(&mut c, &corpus);
    bench_mime(&mut c, &corpus);
    c.final_summary();
}
