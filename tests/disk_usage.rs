//! Where the store's bytes go, on the real corpora (issue 5: store plus
//! encrypted index at most 1.0× the extracted text).
//!
//! Measurements, not checks: every test here is named `measure_*` and
//! ignored, and `.ci/run` leaves them out (`--skip measure_`) even though it
//! includes the other ignored tests, since each run indexes a whole corpus
//! and prints figures. Run them with
//!
//! ```sh
//! export SEALDEX_CORPORA=~/.cache/sealdex-corpora
//! cargo test --release --test disk_usage -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each test indexes its corpus through the real pipeline (forward mode: the
//! store alone), then prints, right after indexing and again after a close
//! and reopen: the files of the index (apparent size and allocated blocks)
//! and, for every sled tree, its item count, key bytes and value bytes,
//! against the extracted text (the UTF-8 bytes of the five text fields).
//! The figures are recorded in `bench-notes/disk.md`.

#[path = "../benches/common/chitchat.rs"]
mod chitchat;
mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use sealdex::pipeline::IndexOptions;
use sealdex::{Credential, Decryptor, Field, Index, IndexConfig, KdfParams, SecretKey, Source};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([9; 32]))
}

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: false,
        ..IndexConfig::default()
    }
}

/// UTF-8 bytes of a record's five text fields: the extracted text, as
/// `benches/compare.rs` counts it.
fn text_bytes(r: &sealdex::Record) -> u64 {
    Field::ALL.iter().map(|f| r.field(*f).len() as u64).sum()
}

fn mb(b: u64) -> String {
    format!("{:.2} MB", b as f64 / 1e6)
}

/// Every file under `dir`: (relative path, apparent bytes, allocated bytes).
fn files(dir: &Path) -> Vec<(String, u64, u64)> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<(String, u64, u64)>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.push((rel, m.len(), m.blocks() * 512));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn print_files(dir: &Path, text: u64) -> (u64, u64) {
    let fs = files(dir);
    let (mut len, mut alloc) = (0, 0);
    for (name, l, a) in &fs {
        if *l > 100_000 || *a > 100_000 {
            println!(
                "    {name:<24} apparent {:>12}  allocated {:>12}",
                mb(*l),
                mb(*a)
            );
        }
        len += l;
        alloc += a;
    }
    println!(
        "    {} files: apparent {} ({:.3}× text), allocated {} ({:.3}× text)",
        fs.len(),
        mb(len),
        len as f64 / text as f64,
        mb(alloc),
        alloc as f64 / text as f64
    );
    (len, alloc)
}

/// Opens the sled database directly (the index must be closed) and tallies
/// every tree.
fn print_trees(dir: &Path) {
    // sled releases its lock from a background thread after a close.
    let db = loop {
        match sled::open(dir.join("db")) {
            Ok(db) => break db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let mut total = (0u64, 0u64, 0u64);
    for name in db.tree_names() {
        let t = db.open_tree(&name).unwrap();
        let (mut n, mut kb, mut vb) = (0u64, 0u64, 0u64);
        let mut by_kind = std::collections::BTreeMap::<u8, (u64, u64, u64)>::new();
        for kv in t.iter() {
            let (k, v) = kv.unwrap();
            n += 1;
            kb += k.len() as u64;
            vb += v.len() as u64;
            let e = by_kind.entry(k.first().copied().unwrap_or(0)).or_default();
            e.0 += 1;
            e.1 += k.len() as u64;
            e.2 += v.len() as u64;
        }
        println!(
            "    tree {:<18} {n:>8} items, keys {}, values {}",
            String::from_utf8_lossy(&name),
            mb(kb),
            mb(vb)
        );
        if by_kind.len() > 1 {
            for (kind, (n, kb, vb)) in by_kind {
                println!(
                    "      kind {:?}: {n} items, keys {}, values {}",
                    kind as char,
                    mb(kb),
                    mb(vb)
                );
            }
        }
        total.0 += n;
        total.1 += kb;
        total.2 += vb;
    }
    println!(
        "    all trees: {} items, keys + values {}",
        total.0,
        mb(total.1 + total.2)
    );
}

fn measure(name: &str, source: &mut dyn Source, decryptor: &dyn Decryptor) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let started = std::time::Instant::now();
    let (text, docs) = {
        let index = Index::create(&dir, &cred(), config()).unwrap();
        let report = index
            .index(source, decryptor, &IndexOptions::default())
            .unwrap();
        println!("  {report:?}");
        let mut text = 0u64;
        let mut docs = 0u64;
        for r in index.store().records() {
            let r = r.unwrap();
            text += text_bytes(&r);
            docs += 1;
        }
        println!(
            "\n== {name}: {docs} records, extracted text {} (indexed in {:.1?}); disk_bytes() {}",
            mb(text),
            started.elapsed(),
            mb(index.store().disk_bytes())
        );
        (text, docs)
    };
    println!("  after indexing and close:");
    print_files(&dir, text);
    print_trees(&dir);
    {
        let index = Index::open(&dir, &cred(), config()).unwrap();
        assert_eq!(index.len(), docs as usize);
        // One thread opening every record (all must open): what reading
        // the store costs.
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let n = index
                .store()
                .records()
                .filter(|r| r.as_ref().is_ok())
                .count();
            println!(
                "  opened all {n} records on one thread in {:.1?}",
                started.elapsed()
            );
            assert_eq!(n as u64, docs);
        }
        assert!(index.store().verify().is_ok());
    }
    println!("  after reopen, verify and close:");
    print_files(&dir, text);
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_spamassassin_disk_usage() {
    let Some(path) = common::corpora("spamassassin") else {
        return;
    };
    let mut source = sealdex::backends::open_path(&path).unwrap();
    measure(
        "spamassassin",
        source.as_mut(),
        &sealdex::decrypt::PassThrough::default(),
    );
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_chat_disk_usage() {
    let Some(path) = common::corpora("chitchat") else {
        return;
    };
    let mut source = chitchat::ChitChat::open(path.join("dataset.json")).unwrap();
    measure("chat", &mut source, &chitchat::ChatDecryptor);
}

/// The sealed `(key, value)` pairs of a corpus's documents, in a fixed
/// pseudo-random order (the keys are MACs, so listing order is random too).
fn sealed_pairs(name: &str) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let (_tmp, index) = indexed(name)?;
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = index
        .store()
        .sealed_documents()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    assert!(
        !pairs.is_empty(),
        "store format 4 keeps its records in sealed blocks, not sled values: \
         this measures the sled layout of formats 1 to 3 (bench-notes/disk.md)"
    );
    // A fixed shuffle (xorshift), so every configuration sees one order.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..pairs.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        pairs.swap(i, (s % (i as u64 + 1)) as usize);
    }
    Some(pairs)
}

/// A corpus indexed into a fresh store (forward mode).
fn indexed(name: &str) -> Option<(tempfile::TempDir, Index)> {
    let path = common::corpora(name)?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let index = Index::create(&dir, &cred(), config()).unwrap();
    if name == "chitchat" {
        let mut source = chitchat::ChitChat::open(path.join("dataset.json")).unwrap();
        index
            .index(
                &mut source,
                &chitchat::ChatDecryptor,
                &IndexOptions::default(),
            )
            .unwrap();
    } else {
        let mut source = sealdex::backends::open_path(&path).unwrap();
        index
            .index(
                source.as_mut(),
                &sealdex::decrypt::PassThrough::default(),
                &IndexOptions::default(),
            )
            .unwrap();
    }
    Some((tmp, index))
}

/// Inserts `pairs` into a fresh sled database made by `config`, `batch` per
/// flushed batch, and returns the apparent bytes of its files after close.
fn sled_bytes(
    config: sled::Config,
    dir: &Path,
    pairs: &[(Vec<u8>, Vec<u8>)],
    batch: usize,
    flush_each: bool,
) -> u64 {
    {
        let db = config.path(dir).open().unwrap();
        let t = db.open_tree("sealed").unwrap();
        for chunk in pairs.chunks(batch) {
            let mut b = sled::Batch::default();
            for (k, v) in chunk {
                b.insert(&k[..], &v[..]);
            }
            t.apply_batch(b).unwrap();
            if flush_each {
                db.flush().unwrap();
            }
        }
        db.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    files(dir).iter().map(|f| f.1).sum()
}

/// How sled's knobs and the write pattern change its files, on one
/// corpus's sealed documents.
fn sled_knobs(name: &str) {
    let Some(pairs) = sealed_pairs(name) else {
        return;
    };
    let live: u64 = pairs.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    println!(
        "\n== {name}: {} documents, keys + values {}",
        pairs.len(),
        mb(live)
    );
    let tmp = tempfile::tempdir().unwrap();
    let run = |label: &str, config: sled::Config, pairs: &[(Vec<u8>, Vec<u8>)], batch, flush| {
        let dir = tmp.path().join(label.replace([' ', '/', ','], "_"));
        let started = std::time::Instant::now();
        let bytes = sled_bytes(config, &dir, pairs, batch, flush);
        println!(
            "  {label:<44} {:>10} ({:.2}× live) in {:.1?}",
            mb(bytes),
            bytes as f64 / live as f64,
            started.elapsed()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    };
    for seg in [64 << 10, 256 << 10, 512 << 10, 2 << 20, 8 << 20] {
        run(
            &format!("segment {} KiB, 512/batch, flush each", seg >> 10),
            sled::Config::new().segment_size(seg),
            &pairs,
            512,
            true,
        );
    }
    run(
        "default, one flush at the end",
        sled::Config::new(),
        &pairs,
        512,
        false,
    );
    run(
        "default, 8192/batch, flush each",
        sled::Config::new(),
        &pairs,
        8192,
        true,
    );
    run(
        "default, flush_every_ms None",
        sled::Config::new().flush_every_ms(None),
        &pairs,
        512,
        true,
    );
    let mut sorted = pairs.clone();
    sorted.sort();
    run(
        "default, key order, 512/batch, flush each",
        sled::Config::new(),
        &sorted,
        512,
        true,
    );
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_spamassassin_sled_knobs() {
    sled_knobs("spamassassin");
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_chat_sled_knobs() {
    sled_knobs("chitchat");
}

/// What packing records several to a sealed value would save: records in
/// id order (close to arrival order: a conversation's messages, a folder's
/// mails) compressed one by one as now, or `n` to a zstd frame.
fn packing_potential(name: &str) {
    let Some((_tmp, index)) = indexed(name) else {
        return;
    };
    let mut records: Vec<sealdex::Record> = index.store().records().map(|r| r.unwrap()).collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    let text: u64 = records.iter().map(text_bytes).sum();
    let each: u64 = records
        .iter()
        .map(|r| sealdex::record::encode(r).len() as u64)
        .sum();
    println!(
        "\n== {name}: {} records, text {}; encoded one by one {} ({:.3}× text; + 29 B envelope and 33 B key each: {})",
        records.len(),
        mb(text),
        mb(each),
        each as f64 / text as f64,
        mb(each + 62 * records.len() as u64)
    );
    // One record per frame, with a raw-content dictionary (no training):
    // the first records, or records sampled across the corpus.
    let raws: Vec<Vec<u8>> = records
        .iter()
        .map(|r| postcard::to_allocvec(r).unwrap())
        .collect();
    let step = (raws.len() / 2000).max(1);
    for (label, dict) in [
        (
            "first 110 KiB",
            raws.iter()
                .flatten()
                .take(110 << 10)
                .copied()
                .collect::<Vec<u8>>(),
        ),
        (
            "first 256 KiB",
            raws.iter().flatten().take(256 << 10).copied().collect(),
        ),
        (
            "first 1 MiB",
            raws.iter().flatten().take(1 << 20).copied().collect(),
        ),
        (
            "sampled 110 KiB",
            raws.iter()
                .step_by(step)
                .flatten()
                .take(110 << 10)
                .copied()
                .collect(),
        ),
    ] {
        let mut c = zstd::bulk::Compressor::with_dictionary(1, &dict).unwrap();
        let total: u64 = raws
            .iter()
            .map(|r| (c.compress(r).unwrap().len().min(r.len()) + 1) as u64)
            .sum();
        println!(
            "  one by one, raw dictionary of the {label} of records: {} ({:.3}× text)",
            mb(total),
            total as f64 / text as f64
        );
    }
    for n in [16, 64, 512] {
        for level in [1, 3] {
            let packed: u64 = records
                .chunks(n)
                .map(|c| {
                    let mut raw = Vec::new();
                    for r in c {
                        raw.extend_from_slice(&postcard::to_allocvec(r).unwrap());
                    }
                    zstd::bulk::compress(&raw, level).unwrap().len() as u64 + 29
                })
                .sum();
            println!(
                "  {n:>4} per block, zstd {level}: {} ({:.3}× text)",
                mb(packed),
                packed as f64 / text as f64
            );
        }
    }
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_spamassassin_packing_potential() {
    packing_potential("spamassassin");
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_chat_packing_potential() {
    packing_potential("chitchat");
}

/// What a packed layout would leave on disk, written through sled with the
/// pipeline's pattern (batches of 512 records, one flush each): every
/// record keeps a 33-byte key whose value is a 19-byte pointer (tag, 8-byte
/// stamp, block number, slot), and the records of a batch go `per_block`
/// to a block, compressed together and sealed once (29 bytes), at a 9-byte
/// key. Records in id order stand for arrival order. Nothing here is
/// encrypted for real (random bytes of the right size stand in for
/// ciphertext, which is what sled sees), so this measures sled only.
fn packed_layout(name: &str) {
    let Some((_tmp, index)) = indexed(name) else {
        return;
    };
    let mut records: Vec<(Vec<u8>, sealdex::Record)> = index
        .store()
        .sealed_documents()
        .map(|r| {
            let (k, v) = r.unwrap();
            let record = index.store().open_record(&k, &v).unwrap();
            (k.to_vec(), record)
        })
        .collect();
    assert!(
        !records.is_empty(),
        "store format 4 keeps its records in sealed blocks, not sled values: \
         this measures the sled layout of formats 1 to 3 (bench-notes/disk.md)"
    );
    records.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let text: u64 = records.iter().map(|(_, r)| text_bytes(r)).sum();
    println!("\n== {name}: {} records, text {}", records.len(), mb(text));
    let tmp = tempfile::tempdir().unwrap();
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect()
    };
    for per_block in [16usize, 64, 512] {
        let dir = tmp.path().join(format!("packed-{per_block}"));
        let (mut live, mut block_no) = (0u64, 0u64);
        {
            let db = sled::Config::new().path(&dir).open().unwrap();
            let t = db.open_tree("sealed").unwrap();
            for batch in records.chunks(512) {
                let mut b = sled::Batch::default();
                for block in batch.chunks(per_block) {
                    let mut raw = Vec::new();
                    for (slot, (k, r)) in block.iter().enumerate() {
                        raw.extend_from_slice(&postcard::to_allocvec(r).unwrap());
                        let mut ptr = vec![b'P'];
                        ptr.extend_from_slice(&random(8));
                        ptr.extend_from_slice(&block_no.to_be_bytes());
                        ptr.extend_from_slice(&(slot as u16).to_le_bytes());
                        live += (k.len() + ptr.len()) as u64;
                        b.insert(&k[..], ptr);
                    }
                    let sealed = random(zstd::bulk::compress(&raw, 1).unwrap().len() + 1 + 29);
                    let mut key = vec![b'B'];
                    key.extend_from_slice(&block_no.to_be_bytes());
                    live += (key.len() + sealed.len()) as u64;
                    b.insert(key, sealed);
                    block_no += 1;
                }
                t.apply_batch(b).unwrap();
                db.flush().unwrap();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (len, alloc) = files(&dir)
            .iter()
            .fold((0, 0), |(l, a), f| (l + f.1, a + f.2));
        println!(
            "  {per_block:>3} per block: keys + values {} ({:.3}× text); files apparent {} ({:.3}× text), allocated {}",
            mb(live),
            live as f64 / text as f64,
            mb(len),
            len as f64 / text as f64,
            mb(alloc)
        );
    }
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_spamassassin_packed_layout() {
    packed_layout("spamassassin");
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_chat_packed_layout() {
    packed_layout("chitchat");
}

/// Store bytes and inverted-index bytes (issue 17): `(store, index)`, the
/// index being everything under `inverted/` and the store the rest.
fn split_bytes(dir: &Path) -> (u64, u64) {
    let (mut store, mut index) = (0, 0);
    for (name, len, _) in files(dir) {
        if name.starts_with("inverted") {
            index += len;
        } else {
            store += len;
        }
    }
    (store, index)
}

/// Indexes a corpus with the inverted index on, as an app would, and
/// prints the store's and the index's bytes against the extracted text,
/// with the indexing rate (informational: a shared machine's clock).
fn footprint(name: &str, source: &mut dyn Source, decryptor: &dyn Decryptor) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    let config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: true,
        ..IndexConfig::default()
    };
    let started = std::time::Instant::now();
    let (text, docs, format) = {
        let index = Index::create(&dir, &cred(), config.clone()).unwrap();
        index
            .index(source, decryptor, &IndexOptions::default())
            .unwrap();
        index.commit().unwrap();
        let elapsed = started.elapsed();
        let (mut text, mut docs) = (0u64, 0u64);
        for r in index.store().records() {
            text += text_bytes(&r.unwrap());
            docs += 1;
        }
        println!(
            "  indexed {docs} records in {elapsed:.1?}: {:.0} records/s",
            docs as f64 / elapsed.as_secs_f64()
        );
        (text, docs, index.store().format())
    };
    first_page(&dir, &config);
    let (store, index) = split_bytes(&dir);
    println!(
        "== footprint {name} (store format {format}): {docs} records, text {}; store {} ({:.3}× text), \
         inverted index {} ({:.3}× text), total {} ({:.3}× text)",
        mb(text),
        mb(store),
        store as f64 / text as f64,
        mb(index),
        index as f64 / text as f64,
        mb(store + index),
        (store + index) as f64 / text as f64
    );
    print_files(&dir, text);
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_spamassassin_footprint() {
    let Some(path) = common::corpora("spamassassin") else {
        return;
    };
    let mut source = sealdex::backends::open_path(&path).unwrap();
    footprint(
        "spamassassin",
        source.as_mut(),
        &sealdex::decrypt::PassThrough::default(),
    );
}

#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_chat_footprint() {
    let Some(path) = common::corpora("chitchat") else {
        return;
    };
    let mut source = chitchat::ChitChat::open(path.join("dataset.json")).unwrap();
    footprint("chat", &mut source, &chitchat::ChatDecryptor);
}

/// The first page as an app shows it: the count, then the newest 10 hits
/// with their records, on a freshly opened index (nothing of the store in
/// memory), for a few queries; median and total over them (informational).
fn first_page(dir: &Path, config: &IndexConfig) {
    let index = Index::open(dir, &cred(), config.clone()).unwrap();
    index.wait_for_inverted().unwrap();
    let queries = [
        "the", "hello", "what", "you", "love", "free", "money", "a", "th", "how are", "linux",
        "spam", "nbsp", "thanks", "yes", "no", "good", "time", "work", "click",
    ];
    let options = sealdex::SearchOptions {
        limit: Some(10),
        mode: sealdex::SearchMode::Inverted,
        ..Default::default()
    };
    let mut times = Vec::new();
    for q in queries {
        let started = std::time::Instant::now();
        let r = index.search(q, &options).unwrap();
        let shown: usize = r
            .hits
            .iter()
            .map(|h| h.record.id.len() + h.record.subject.len() + h.record.from.len())
            .sum();
        times.push(started.elapsed().as_micros() as u64);
        std::hint::black_box(shown);
    }
    times.sort_unstable();
    println!(
        "  first page (count + newest 10 with records), cold, {} queries: median {} µs, total {} µs",
        times.len(),
        times[times.len() / 2],
        times.iter().sum::<u64>()
    );
}

/// Indexing alone, with the inverted index, committed, and the time it
/// took: what `bench-notes/indexing-profile.md` profiles under callgrind.
/// `SEALDEX_PROFILE` picks the corpus: `mail` (SpamAssassin, whole) or
/// `chat:N` (the first N ChitChat messages; `chat` for all of them).
#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA): run by hand, see the module doc"]
fn measure_indexing_profile() {
    let which = std::env::var("SEALDEX_PROFILE").unwrap_or_else(|_| "chat:40000".into());
    let tmp = tempfile::tempdir().unwrap();
    let config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: true,
        ..IndexConfig::default()
    };
    let index = Index::create(&tmp.path().join("index"), &cred(), config).unwrap();
    let started;
    let report = if which == "mail" {
        let Some(path) = common::corpora("spamassassin") else {
            return;
        };
        let mut source = sealdex::backends::open_path(&path).unwrap();
        started = std::time::Instant::now();
        index
            .index(
                source.as_mut(),
                &sealdex::decrypt::PassThrough::default(),
                &IndexOptions::default(),
            )
            .unwrap()
    } else {
        let Some(path) = common::corpora("chitchat") else {
            return;
        };
        let mut source = chitchat::ChitChat::open(path.join("dataset.json")).unwrap();
        if let Some(n) = which.strip_prefix("chat:") {
            source.truncate(n.parse().expect("SEALDEX_PROFILE=chat:N"));
        }
        started = std::time::Instant::now();
        index
            .index(
                &mut source,
                &chitchat::ChatDecryptor,
                &IndexOptions::default(),
            )
            .unwrap()
    };
    index.commit().unwrap();
    let elapsed = started.elapsed();
    println!(
        "  {which}: indexed {} records in {elapsed:.2?}: {:.0} records/s",
        report.stored,
        report.stored as f64 / elapsed.as_secs_f64()
    );
}

/// The compare bench's query battery, for [`measure_query_profile`].
#[path = "../benches/common/battery.rs"]
mod battery;

/// The three query kinds the comparison times, each query of the battery
/// `reps` times: every hit's key, count + newest 10 keys, the first page
/// (count + newest 10 records). Returns a checksum of the answers (hit
/// counts, and the first page's ids, dates, senders and subjects in
/// order), so that a change can be shown to keep them.
#[inline(never)]
fn run_query_battery(index: &Index, queries: &[sealdex::query::Query], reps: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let all = sealdex::SearchOptions {
        limit: None,
        snippet_bytes: 0,
        mode: sealdex::SearchMode::Inverted,
        ..Default::default()
    };
    let ten = sealdex::SearchOptions {
        limit: Some(10),
        ..all.clone()
    };
    // Keys are MACs under the store's own key: hashed, they compare runs
    // on one store; counts and ids compare stores built apart.
    let kinds = std::env::var("SEALDEX_QUERY_KINDS").unwrap_or_else(|_| "all,ten,page".into());
    let kind = |k: &str| kinds.split(',').any(|x| x == k);
    let (do_all, do_ten, do_page) = (kind("all"), kind("ten"), kind("page"));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for _ in 0..reps {
        for q in queries {
            if do_all {
                let page = index.search_keys(q, &all).unwrap();
                page.keys.len().hash(&mut h);
            }
            if do_ten {
                let page = index.search_keys(q, &ten).unwrap();
                (page.total, page.keys.len()).hash(&mut h);
            }
            if !do_page {
                continue;
            }
            let r = index.search_query(q, &ten).unwrap();
            r.total.hash(&mut h);
            for hit in &r.hits {
                (
                    &hit.id,
                    hit.record.timestamp,
                    &hit.record.from,
                    &hit.record.subject,
                )
                    .hash(&mut h);
            }
        }
    }
    h.finish()
}

/// [`run_query_battery`] after the warm-up: what callgrind collects
/// (`--toggle-collect='*timed_query_battery*'`).
#[inline(never)]
fn timed_query_battery(index: &Index, queries: &[sealdex::query::Query], reps: usize) -> u64 {
    run_query_battery(index, queries, reps)
}

/// Query costs for callgrind (`bench-notes/footprint-run10.md`): indexes
/// `SEALDEX_PROFILE` (`mail`, the default, or `chat`) into
/// `SEALDEX_QUERY_DIR` unless an index is there already (run it once
/// natively to build), then opens it, runs the battery once to warm the
/// caches and `SEALDEX_QUERY_REPS` (default 3) more times through
/// [`run_query_battery`], and prints the answers' checksum.
/// `SEALDEX_QUERY_ONLY` (battery names, comma-separated) and
/// `SEALDEX_QUERY_KINDS` (`all`, `ten`, `page`, comma-separated) narrow
/// it to some queries and kinds (`bench-notes/query-run12.md`); the
/// checksum then covers only those.
#[test]
#[ignore = "a measurement (needs SEALDEX_CORPORA and SEALDEX_QUERY_DIR): run by hand"]
fn measure_query_profile() {
    let which = std::env::var("SEALDEX_PROFILE").unwrap_or_else(|_| "mail".into());
    let dir = std::path::PathBuf::from(
        std::env::var_os("SEALDEX_QUERY_DIR").expect("SEALDEX_QUERY_DIR: where the index is kept"),
    );
    let config = IndexConfig {
        cache_bytes: 1 << 30,
        kdf: KdfParams::insecure_fast(),
        inverted: true,
        ..IndexConfig::default()
    };
    if !dir.exists() {
        let index = Index::create(&dir, &cred(), config.clone()).unwrap();
        if which == "mail" {
            let path = common::corpora("spamassassin").unwrap();
            let mut source = sealdex::backends::open_path(&path).unwrap();
            index
                .index(
                    source.as_mut(),
                    &sealdex::decrypt::PassThrough::default(),
                    &IndexOptions::default(),
                )
                .unwrap();
        } else {
            let path = common::corpora("chitchat").unwrap();
            let mut source = chitchat::ChitChat::open(path.join("dataset.json")).unwrap();
            index
                .index(
                    &mut source,
                    &chitchat::ChatDecryptor,
                    &IndexOptions::default(),
                )
                .unwrap();
        }
        index.commit().unwrap();
        println!("  built {} records in {}", index.len(), dir.display());
    }
    let index = Index::open(&dir, &cred(), config).unwrap();
    index.wait_for_inverted().unwrap();
    let only = std::env::var("SEALDEX_QUERY_ONLY").unwrap_or_default();
    let queries: Vec<sealdex::query::Query> = battery::battery(&which)
        .expect("a battery for mail or chat")
        .iter()
        .filter(|q| only.is_empty() || only.split(',').any(|n| n == q.name))
        .map(|q| sealdex::query::parse(q.text).unwrap())
        .collect();
    let reps: usize = std::env::var("SEALDEX_QUERY_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let warm = run_query_battery(&index, &queries, 1);
    let started = std::time::Instant::now();
    let sum = timed_query_battery(&index, &queries, reps);
    println!(
        "  {which}: {} queries × 3 kinds × {reps} in {:.2?}; answers {warm:016x} / {sum:016x}",
        queries.len(),
        started.elapsed()
    );
}

/// Bytes of the inverted index by tantivy file kind and field
/// (`bench-notes/footprint-run10.md`): the records of the index in
/// `SEALDEX_QUERY_DIR` (built by [`measure_query_profile`]), numbered in
/// store order, written with the index's own schema and documents
/// (`IndexSchema::with_docnos`, `IndexSchema::document`) into one
/// in-memory tantivy segment, then tantivy's space usage per component
/// (`.term` term dictionary, `.idx` postings, `.pos` positions, `.fast`,
/// `.fieldnorm`, `.store`) and per field. The sealed files add 29 bytes
/// per 64 KiB chunk to these.
#[cfg(feature = "tantivy")]
#[test]
#[ignore = "a measurement (needs SEALDEX_QUERY_DIR): run by hand"]
fn measure_index_space() {
    use sealdex::inverted::IndexSchema;
    let dir = std::path::PathBuf::from(
        std::env::var_os("SEALDEX_QUERY_DIR").expect("SEALDEX_QUERY_DIR: an index to read"),
    );
    let config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: false,
        ..IndexConfig::default()
    };
    let index = Index::open(&dir, &cred(), config).unwrap();
    let schema = IndexSchema::with_docnos();
    let tindex = tantivy::Index::create_in_ram(schema.schema().clone());
    schema.register_tokenizer(&tindex);
    let mut writer: tantivy::IndexWriter<tantivy::TantivyDocument> =
        tindex.writer_with_num_threads(1, 1 << 30).unwrap();
    let mut text = 0u64;
    for (i, r) in index.store().records().enumerate() {
        let r = r.unwrap();
        text += text_bytes(&r);
        let key = index.store().doc_key(&r.source, &r.id);
        writer
            .add_document(schema.document(&key, i as u64 + 1, &r))
            .unwrap();
    }
    writer.commit().unwrap();
    let ids = tindex.searchable_segment_ids().unwrap();
    if ids.len() > 1 {
        writer.merge(&ids).wait().unwrap();
    }
    writer.wait_merging_threads().unwrap();
    let reader = tindex.reader().unwrap();
    reader.reload().unwrap();
    let usage = reader.searcher().space_usage().unwrap();
    let b = |c: tantivy::ByteCount| c.get_bytes();
    println!(
        "== {}: {} segment(s), total {} ({:.3}× text {})",
        dir.display(),
        usage.segments().len(),
        mb(b(usage.total())),
        b(usage.total()) as f64 / text as f64,
        mb(text)
    );
    for seg in usage.segments() {
        for (kind, per) in [
            (".term", seg.termdict()),
            (".idx", seg.postings()),
            (".pos", seg.positions()),
            (".fast", seg.fast_fields()),
            (".fieldnorm", seg.fieldnorms()),
        ] {
            println!("  {kind:<10} {}", mb(b(per.total())));
            let mut fields: Vec<_> = per.fields().collect();
            fields.sort_by_key(|f| std::cmp::Reverse(b(f.total())));
            for f in fields {
                println!("      {:<18} {:>10} bytes", f.field_name(), b(f.total()));
            }
        }
        println!("  .store     {}", mb(b(seg.store().total())));
        println!("  deletes    {}", mb(b(seg.deletes())));
    }
}
