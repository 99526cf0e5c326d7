//! Calendars, drive documents and chat JSON Lines (issue 16): events/s and
//! files/s indexed end to end (source, parse or extract, clean, seal,
//! both search modes' indexes), PDF text extraction on its own, and the
//! JSON Lines chat format applied from the ChitChat corpus.
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora cargo bench --bench formats --all-features
//! ```
//!
//! Without `SEALDEX_CORPORA` the generated inputs still run: a calendar of
//! 1,000 events (a tenth of them weekly series of 10) and a drive of 300
//! documents (text, Markdown, HTML, PDF, DOCX, ODT, fifty of each). With
//! it, also the 164 files of Python icalendar's test suite, pypdf's 65
//! PDFs and 20,000 ChitChat messages.

mod common;
#[path = "../tests/docs_fixtures/mod.rs"]
mod docs_fixtures;

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sealdex::backends::Ics;
use sealdex::backends::drive::{DocumentPassThrough, Drive};
use sealdex::calendar::IcsPassThrough;
use sealdex::{Credential, Decryptor, Index, IndexConfig, KdfParams, SecretKey, Source};

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: true,
        ..IndexConfig::default()
    }
}

fn fresh_index() -> (tempfile::TempDir, Index) {
    let tmp = tempfile::tempdir().unwrap();
    let cred = Credential::AppKey(SecretKey::from_bytes([9; 32]));
    let index = Index::create(&tmp.path().join("i"), &cred, config()).unwrap();
    (tmp, index)
}

/// Indexes `source` into a fresh index and waits for the inverted index:
/// what one run of `sealdex index` does. Returns the records stored.
fn index_all(mut source: Box<dyn Source>, decryptor: &dyn Decryptor) -> u64 {
    let (_tmp, index) = fresh_index();
    let r = index
        .index(source.as_mut(), decryptor, &Default::default())
        .unwrap();
    index.wait_for_inverted().unwrap();
    r.stored
}

/// A calendar of `n` events in one file, every tenth a weekly series of
/// ten, in a named zone.
fn calendar(dir: &Path, n: usize) -> u64 {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Bench\r\n");
    let mut events = 0;
    for i in 0..n {
        let day = 1 + i % 28;
        let month = 1 + (i / 28) % 12;
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:e{i}@bench\r\nDTSTART;TZID=Europe/Berlin:2024{month:02}{day:02}T{:02}0000\r\n\
             DURATION:PT1H\r\nSUMMARY:Meeting {i} about the quarterly plan\r\n\
             DESCRIPTION:Agenda item {i}: budget\\, hiring and the offsite in room {}\r\n\
             LOCATION:Room {}\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n\
             ATTENDEE;CN=Bob:mailto:bob@example.org\r\nATTENDEE;CN=Carol:mailto:carol@example.org\r\n",
            8 + i % 10,
            i % 40,
            i % 40
        ));
        events += 1;
        if i % 10 == 0 {
            s.push_str("RRULE:FREQ=WEEKLY;COUNT=10\r\n");
            events += 9;
        }
        s.push_str("END:VEVENT\r\n");
    }
    s.push_str("END:VCALENDAR\r\n");
    std::fs::write(dir.join("bench.ics"), s).unwrap();
    events
}

fn events(c: &mut Criterion) {
    let mut g = c.benchmark_group("calendar");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let tmp = tempfile::tempdir().unwrap();
    let n = calendar(tmp.path(), 1000);
    g.throughput(Throughput::Elements(n));
    g.bench_function("index_events_generated", |b| {
        b.iter(|| {
            let stored = index_all(
                Box::new(Ics::open(tmp.path()).unwrap()),
                &IcsPassThrough::default(),
            );
            assert_eq!(stored, n);
        })
    });
    if let Some(dir) = common::corpora_dir()
        .map(|d| d.join("icalendar"))
        .filter(|d| d.is_dir())
    {
        let n = index_all(
            Box::new(Ics::open(&dir).unwrap()),
            &IcsPassThrough::default(),
        );
        g.throughput(Throughput::Elements(n));
        g.bench_function("index_events_icalendar_corpus", |b| {
            b.iter(|| {
                index_all(
                    Box::new(Ics::open(&dir).unwrap()),
                    &IcsPassThrough::default(),
                )
            })
        });
    }
    // Parsing alone: the whole generated calendar into messages.
    let bytes = std::fs::read(tmp.path().join("bench.ics")).unwrap();
    g.throughput(Throughput::Elements(n));
    g.bench_function("parse_calendar", |b| {
        b.iter(|| sealdex::calendar::parse_calendar(&bytes, &Default::default()).len())
    });
    g.finish();
}

fn files(c: &mut Criterion) {
    let mut g = c.benchmark_group("drive");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let tmp = tempfile::tempdir().unwrap();
    let para = "The quarterly report covers revenue, hiring and the offsite; \
                every team wrote a page about its plans for the next quarter.";
    for i in 0..50 {
        let d = tmp.path().join(format!("d{}", i % 5));
        std::fs::create_dir_all(&d).unwrap();
        let lines: Vec<String> = (0..40).map(|l| format!("{para} ({i}.{l})")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let text = lines.join("\n");
        std::fs::write(d.join(format!("n{i}.txt")), &text).unwrap();
        std::fs::write(d.join(format!("m{i}.md")), format!("# Notes {i}\n\n{text}")).unwrap();
        std::fs::write(
            d.join(format!("h{i}.html")),
            format!("<html><body><p>{}</p></body></html>", lines.join("</p><p>")),
        )
        .unwrap();
        std::fs::write(
            d.join(format!("p{i}.pdf")),
            docs_fixtures::pdf(&refs, "Report", "Dana"),
        )
        .unwrap();
        std::fs::write(
            d.join(format!("w{i}.docx")),
            docs_fixtures::docx(&refs, "Report", "Eve"),
        )
        .unwrap();
        std::fs::write(
            d.join(format!("o{i}.odt")),
            docs_fixtures::odt(&refs, "Report", "Finn"),
        )
        .unwrap();
    }
    g.throughput(Throughput::Elements(300));
    g.bench_function("index_files_generated", |b| {
        b.iter(|| {
            let stored = index_all(
                Box::new(Drive::open(tmp.path()).unwrap()),
                &DocumentPassThrough::default(),
            );
            assert_eq!(stored, 300);
        })
    });
    g.finish();

    // PDF text extraction alone: pypdf's real PDFs when fetched, else the
    // generated ones.
    let mut g = c.benchmark_group("pdf");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let pdfs: Vec<Vec<u8>> = match common::corpora_dir()
        .map(|d| d.join("pdf"))
        .filter(|d| d.is_dir())
    {
        Some(dir) => std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .collect(),
        None => (0..50)
            .map(|i| std::fs::read(tmp.path().join(format!("d{}/p{i}.pdf", i % 5))).unwrap())
            .collect(),
    };
    let bytes: u64 = pdfs.iter().map(|p| p.len() as u64).sum();
    g.throughput(Throughput::Bytes(bytes));
    let limits = sealdex::extract::Limits::default();
    g.bench_function(format!("extract_text_{}_pdfs", pdfs.len()), |b| {
        b.iter(|| {
            pdfs.iter()
                .filter_map(|p| sealdex::extract::extract("a.pdf", p, &limits).ok())
                .map(|d| d.text.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

/// The JSON Lines chat format: ChitChat's first 20,000 messages, parsed
/// and applied in batches of 1,000, as `sealdex import` does.
fn chat(c: &mut Criterion) {
    let Some(path) = common::corpora_dir()
        .map(|d| d.join("chitchat/dataset.json"))
        .filter(|p| p.is_file())
    else {
        return;
    };
    let corpus = common::chitchat::ChitChat::open(&path).unwrap();
    let lines = corpus.jsonl(Some(20_000));
    let mut g = c.benchmark_group("chat");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("jsonl_apply_20k", |b| {
        b.iter_batched(
            fresh_index,
            |(_tmp, index)| {
                for chunk in lines.chunks(1000) {
                    let ops = chunk
                        .iter()
                        .map(|l| sealdex::jsonl::parse_line("chat", l).unwrap())
                        .collect();
                    index.apply(ops).unwrap();
                }
                index.wait_for_inverted().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, events, files, chat);
criterion_main!(benches);
