//! The encrypted tantivy directory: round trips, a real index, tampering,
//! no plaintext on disk, the cache budget and cross-instance locking.
#![cfg(feature = "tantivy")]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sealdex::SecretKey;
use sealdex::inverted::{DirectoryOptions, EncryptedDirectory};
use tantivy::collector::Count;
use tantivy::directory::{Directory, Lock, RamDirectory, TerminatingWrite};
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, Schema, TEXT};
use tantivy::{Index, doc};

const CHUNK: usize = 1024;

fn key() -> SecretKey {
    SecretKey::from_bytes([11; 32])
}

fn open(root: &Path, budget: usize) -> EncryptedDirectory {
    EncryptedDirectory::open_with(
        root,
        &key(),
        DirectoryOptions {
            chunk_size: CHUNK,
            cache_budget_bytes: budget,
        },
    )
    .unwrap()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Bytes no compressor shrinks (SHA-256 in counter mode), so that every
/// chunk is stored as it is and lies at `i·(CHUNK + OVERHEAD)`.
fn noise(len: usize, seed: u8) -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        let mut h = sha2::Sha256::new();
        h.update([seed]);
        h.update(i.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        i += 1;
    }
    out.truncate(len);
    out
}

fn write(d: &EncryptedDirectory, name: &str, bytes: &[u8]) {
    let mut w = d.open_write(Path::new(name)).unwrap();
    // Odd-sized writes so chunk boundaries fall inside write calls.
    for part in bytes.chunks(333) {
        w.write_all(part).unwrap();
    }
    w.terminate().unwrap();
}

fn read_all(d: &EncryptedDirectory, name: &str) -> std::io::Result<Vec<u8>> {
    let h = d
        .get_file_handle(Path::new(name))
        .map_err(std::io::Error::other)?;
    Ok(h.read_bytes(0..h.len())?.as_slice().to_vec())
}

/// Every read of the file fails (and none returns other bytes).
fn assert_unreadable(d: &EncryptedDirectory, name: &str, original: &[u8]) {
    match d.get_file_handle(Path::new(name)) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(h) => {
            assert_eq!(h.len(), original.len());
            let whole = h.read_bytes(0..h.len());
            assert!(whole.is_err(), "tampered file read back");
            let msg = whole.err().unwrap().to_string();
            assert!(msg.contains("failed authentication"), "{msg}");
        }
    }
}

#[test]
fn round_trip_many_sizes_random_ranges() {
    let t = tempfile::tempdir().unwrap();
    let d = open(t.path(), 8 * CHUNK);
    let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17, 7 * CHUNK];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % (n as u64 + 1)) as usize
    };
    for (i, &len) in sizes.iter().enumerate() {
        let name = format!("file-{i}.idx");
        let bytes = data(len, i as u8);
        write(&d, &name, &bytes);
        assert_eq!(read_all(&d, &name).unwrap(), bytes);
        let h = d.get_file_handle(Path::new(&name)).unwrap();
        for _ in 0..200 {
            let (a, b) = (next(len), next(len));
            let r = a.min(b)..a.max(b);
            assert_eq!(h.read_bytes(r.clone()).unwrap().as_slice(), &bytes[r]);
        }
        // A reopened directory reads the same.
        let d2 = open(t.path(), 0);
        assert_eq!(read_all(&d2, &name).unwrap(), bytes);
    }
    // atomic files
    d.atomic_write(Path::new("meta.json"), b"{\"a\":1}")
        .unwrap();
    assert_eq!(d.atomic_read(Path::new("meta.json")).unwrap(), b"{\"a\":1}");
    d.atomic_write(Path::new("meta.json"), b"{}").unwrap();
    assert_eq!(d.atomic_read(Path::new("meta.json")).unwrap(), b"{}");
    // existence, write-once and delete
    assert!(d.exists(Path::new("file-1.idx")).unwrap());
    assert!(d.open_write(Path::new("file-1.idx")).is_err());
    d.delete(Path::new("file-1.idx")).unwrap();
    assert!(!d.exists(Path::new("file-1.idx")).unwrap());
    assert!(d.delete(Path::new("file-1.idx")).is_err());
    assert!(d.get_file_handle(Path::new("file-1.idx")).is_err());
    // Wrong key: nothing opens.
    let wrong = EncryptedDirectory::open(t.path(), &SecretKey::from_bytes([12; 32])).unwrap();
    assert!(wrong.get_file_handle(Path::new("file-2.idx")).is_err());
}

fn build_index(dir: Box<dyn Directory>, canary: &str) -> Vec<usize> {
    let mut sb = Schema::builder();
    let body = sb.add_text_field("body", TEXT | STORED);
    let schema = sb.build();
    let index = Index::create(dir, schema, tantivy::IndexSettings::default()).unwrap();
    let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    for i in 0..1000usize {
        let mut text = format!("message {i} {} {}", words[i % 7], words[(i / 7) % 7]);
        if i % 100 == 0 {
            text.push(' ');
            text.push_str(canary);
        }
        writer.add_document(doc!(body => text)).unwrap();
        if i == 500 {
            writer.commit().unwrap();
        }
    }
    writer.commit().unwrap();
    let reader = index.reader().unwrap();
    reader.reload().unwrap();
    let searcher = reader.searcher();
    let parser = QueryParser::for_index(&index, vec![body]);
    let mut counts = Vec::new();
    for q in [
        "alpha",
        "golf",
        "alpha AND bravo",
        "\"charlie delta\"",
        canary,
        "nothing",
    ] {
        let query = parser.parse_query(q).unwrap();
        counts.push(searcher.search(&query, &Count).unwrap());
    }
    counts
}

fn all_files_bytes(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

#[test]
fn real_index_matches_ram_directory_and_leaks_nothing() {
    let canary = "zyxwvcanary";
    let t = tempfile::tempdir().unwrap();
    let enc = open(&t.path().join("inv"), 64 * CHUNK);
    let ram = build_index(Box::new(RamDirectory::create()), canary);
    let sealed = build_index(Box::new(enc.clone()), canary);
    assert_eq!(ram, sealed);
    assert_eq!(sealed[4], 10);
    assert!(enc.cached_bytes() <= 64 * CHUNK);

    // Reopen from disk in a fresh directory instance and search again.
    let d2 = open(&t.path().join("inv"), 64 * CHUNK);
    let index = Index::open(d2).unwrap();
    let body = index.schema().get_field("body").unwrap();
    let searcher = index.reader().unwrap().searcher();
    let q = QueryParser::for_index(&index, vec![body])
        .parse_query(canary)
        .unwrap();
    assert_eq!(searcher.search(&q, &Count).unwrap(), 10);

    // Nothing in clear: not the canary in any encoding, nor tantivy's names.
    let files = all_files_bytes(t.path());
    assert!(files.len() > 3);
    let needles: Vec<Vec<u8>> = [
        canary.to_string(),
        canary.to_uppercase(),
        "meta.json".into(),
        ".managed.json".into(),
        "alpha".into(),
        "body".into(),
    ]
    .iter()
    .flat_map(|s| [s.as_bytes().to_vec(), utf16(s)])
    .collect();
    for (path, bytes) in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let (stem, ext) = name.split_once('.').unwrap();
        assert!(
            stem.len() == 64
                && stem.chars().all(|c| c.is_ascii_hexdigit())
                && (ext == "sdx" || ext == "lock"),
            "{name}"
        );
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == &n[..]),
                "{} found in {name}",
                String::from_utf8_lossy(n)
            );
        }
    }
}

#[test]
fn tampering_is_detected() {
    let t = tempfile::tempdir().unwrap();
    let d = open(t.path(), 0);
    // Incompressible, so that the chunks lie at fixed offsets; compressed
    // chunks are broken byte by byte in
    // `every_byte_of_a_compressed_file_is_authenticated`.
    let a = noise(4 * CHUNK + 100, 1);
    let b = noise(4 * CHUNK + 100, 2);
    write(&d, "a", &a);
    write(&d, "b", &b);
    let pa = d.disk_path(Path::new("a"));
    let pb = d.disk_path(Path::new("b"));
    let orig_a = fs::read(&pa).unwrap();
    let orig_b = fs::read(&pb).unwrap();
    let sealed_chunk = CHUNK + sealdex::seal::OVERHEAD;
    let restore = || {
        fs::write(&pa, &orig_a).unwrap();
        fs::write(&pb, &orig_b).unwrap();
    };

    // Flip one byte in chunk 1.
    let mut x = orig_a.clone();
    x[sealed_chunk + 40] ^= 0x01;
    fs::write(&pa, &x).unwrap();
    assert_unreadable(&d, "a", &a);
    // Only the chunk touched fails: chunk 0 still reads (random access).
    let h = d.get_file_handle(Path::new("a")).unwrap();
    assert_eq!(h.read_bytes(0..10).unwrap().as_slice(), &a[..10]);
    restore();
    assert_eq!(read_all(&d, "a").unwrap(), a);

    // Swap chunks 0 and 1 within a file.
    let mut x = orig_a.clone();
    let (c0, c1) = x.split_at_mut(sealed_chunk);
    c0.swap_with_slice(&mut c1[..sealed_chunk]);
    fs::write(&pa, &x).unwrap();
    assert_unreadable(&d, "a", &a);
    restore();

    // Put b's chunk 2 into a.
    let mut x = orig_a.clone();
    let r = 2 * sealed_chunk..3 * sealed_chunk;
    x[r.clone()].copy_from_slice(&orig_b[r]);
    fs::write(&pa, &x).unwrap();
    assert_unreadable(&d, "a", &a);
    restore();

    // Swap whole files.
    fs::write(&pa, &orig_b).unwrap();
    assert_unreadable(&d, "a", &a);
    restore();

    // Truncate: by one byte, by the header, to the chunks only, to nothing.
    for cut in [
        orig_a.len() - 1,
        orig_a.len() - 30,
        4 * sealed_chunk,
        sealed_chunk,
        0,
    ] {
        fs::write(&pa, &orig_a[..cut]).unwrap();
        assert_unreadable(&d, "a", &a);
    }
    restore();
    assert_eq!(read_all(&d, "a").unwrap(), a);

    // Replay: an older copy of meta.json after a rewrite.
    d.atomic_write(Path::new("meta.json"), b"OLD meta, longer")
        .unwrap();
    let pm = d.disk_path(Path::new("meta.json"));
    let old = fs::read(&pm).unwrap();
    d.atomic_write(Path::new("meta.json"), b"new meta, longer")
        .unwrap();
    let gen_new = d.generation(Path::new("meta.json")).unwrap();
    fs::write(&pm, &old).unwrap();
    assert!(d.atomic_read(Path::new("meta.json")).is_err());
    // Across a restart, once the embedder pins the generation it recorded.
    let d2 = open(t.path(), 0);
    d2.pin_generation(Path::new("meta.json"), gen_new);
    assert!(d2.atomic_read(Path::new("meta.json")).is_err());
    // Splicing the old copy's chunk into the new one fails even unpinned.
    d.atomic_write(Path::new("meta.json"), b"new meta, longer")
        .unwrap();
    let new = fs::read(&pm).unwrap();
    let mut spliced = old.clone();
    let tail = new.len() - 54;
    spliced.truncate(old.len() - 54);
    spliced.extend_from_slice(&new[tail..]);
    fs::write(&pm, &spliced).unwrap();
    let d3 = open(t.path(), 0);
    assert!(d3.atomic_read(Path::new("meta.json")).is_err());

    // Replay of a deleted file.
    write(&d, "c", b"gone soon");
    let pc = d.disk_path(Path::new("c"));
    let old_c = fs::read(&pc).unwrap();
    d.delete(Path::new("c")).unwrap();
    fs::write(&pc, &old_c).unwrap();
    assert!(d.get_file_handle(Path::new("c")).is_err());

    // Garbage of every length never panics.
    for len in 0..200 {
        fs::write(&pb, vec![0xA5; len]).unwrap();
        let d4 = open(t.path(), 0);
        let _ = read_all(&d4, "b");
    }
}

#[test]
fn every_byte_of_a_compressed_file_is_authenticated() {
    // Compressible chunks (zstd frames of varying sizes, placed by the
    // sealed table) and an incompressible one in the middle.
    let t = tempfile::tempdir().unwrap();
    let d = open(t.path(), 0);
    let mut a = data(2 * CHUNK, 1);
    a.extend(noise(CHUNK, 3));
    a.extend(data(CHUNK + 77, 4));
    write(&d, "a", &a);
    assert_eq!(read_all(&d, "a").unwrap(), a);
    let pa = d.disk_path(Path::new("a"));
    let orig = fs::read(&pa).unwrap();
    assert!(
        orig.len() < a.len(),
        "compressible chunks were stored compressed ({} on disk for {})",
        orig.len(),
        a.len()
    );
    // Any one byte flipped, anywhere: the file does not read back.
    for at in 0..orig.len() {
        let mut x = orig.clone();
        x[at] ^= 0x20;
        fs::write(&pa, &x).unwrap();
        let d2 = open(t.path(), 0);
        match d2.get_file_handle(Path::new("a")) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(h) => assert!(
                h.read_bytes(0..h.len()).is_err(),
                "byte {at} flipped and the file read back"
            ),
        }
    }
    // Cut anywhere, or grown by a byte: refused at open.
    for cut in 0..orig.len() {
        fs::write(&pa, &orig[..cut]).unwrap();
        assert!(open(t.path(), 0).get_file_handle(Path::new("a")).is_err());
    }
    let mut longer = orig.clone();
    longer.push(0);
    fs::write(&pa, &longer).unwrap();
    assert!(open(t.path(), 0).get_file_handle(Path::new("a")).is_err());
    fs::write(&pa, &orig).unwrap();
    assert_eq!(read_all(&open(t.path(), 0), "a").unwrap(), a);
}

#[test]
fn files_of_format_1_still_read() {
    // `tests/data/index-format1.sdx`: the file "legacy", `data(3 * CHUNK +
    // 5, 9)` under `key()`, as the directory wrote it before chunks were
    // compressed (fixed-size chunks, no table).
    let t = tempfile::tempdir().unwrap();
    let d = open(t.path(), 0);
    let fixture =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/index-format1.sdx"))
            .unwrap();
    let p = d.disk_path(Path::new("legacy"));
    fs::write(&p, &fixture).unwrap();
    let want = data(3 * CHUNK + 5, 9);
    assert_eq!(read_all(&d, "legacy").unwrap(), want);
    let h = d.get_file_handle(Path::new("legacy")).unwrap();
    assert_eq!(
        h.read_bytes(CHUNK - 3..2 * CHUNK + 4).unwrap().as_slice(),
        &want[CHUNK - 3..2 * CHUNK + 4]
    );
    // Still authenticated: a flipped byte in chunk 1 fails its read.
    let mut x = fixture.clone();
    x[CHUNK + sealdex::seal::OVERHEAD + 9] ^= 1;
    fs::write(&p, &x).unwrap();
    assert_unreadable(&open(t.path(), 0), "legacy", &want);
}

#[test]
fn a_second_instance_sees_rewrites_of_meta() {
    // A reader on the same path (another process, in real life) must not
    // take the writer's legitimate rewrite for a replay.
    let t = tempfile::tempdir().unwrap();
    let writer = open(t.path(), 0);
    let reader = open(t.path(), 4 * CHUNK);
    writer.atomic_write(Path::new("meta.json"), b"one").unwrap();
    assert_eq!(reader.atomic_read(Path::new("meta.json")).unwrap(), b"one");
    let seen = reader.generation(Path::new("meta.json"));
    writer.atomic_write(Path::new("meta.json"), b"two").unwrap();
    assert_eq!(reader.atomic_read(Path::new("meta.json")).unwrap(), b"two");
    assert_ne!(reader.generation(Path::new("meta.json")), seen);
    assert_eq!(
        reader.generation(Path::new("meta.json")),
        writer.generation(Path::new("meta.json"))
    );
}

#[test]
fn cache_stays_within_budget() {
    let t = tempfile::tempdir().unwrap();
    let budget = 3 * CHUNK + 10;
    let d = open(t.path(), budget);
    let bytes = data(20 * CHUNK + 5, 3);
    write(&d, "big", &bytes);
    let h = d.get_file_handle(Path::new("big")).unwrap();
    assert_eq!(d.cached_bytes(), 0, "opening decrypts nothing");
    for i in 0..200usize {
        let start = (i * 7919) % bytes.len();
        let end = (start + (i * 131) % (3 * CHUNK)).min(bytes.len());
        assert_eq!(
            h.read_bytes(start..end).unwrap().as_slice(),
            &bytes[start..end]
        );
        assert!(d.cached_bytes() <= budget, "{}", d.cached_bytes());
    }
    assert!(d.cached_bytes() > 0);
    d.delete(Path::new("big")).unwrap();
    assert_eq!(d.cached_bytes(), 0);
}

#[test]
fn lock_is_exclusive_across_instances() {
    let t = tempfile::tempdir().unwrap();
    let a = open(t.path(), 0);
    let b = open(t.path(), 0);
    let lock = |blocking| Lock {
        filepath: PathBuf::from(".tantivy-writer.lock"),
        is_blocking: blocking,
    };
    let held = a.acquire_lock(&lock(false)).unwrap();
    assert!(b.acquire_lock(&lock(false)).is_err());
    assert!(a.acquire_lock(&lock(false)).is_err(), "not re-entrant");
    // A blocking waiter gets it once released.
    let waiter = std::thread::spawn(move || b.acquire_lock(&lock(true)).is_ok());
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(held);
    assert!(waiter.join().unwrap());
    // The lock file's name leaks nothing either.
    for p in walk(t.path()) {
        assert!(!p.to_string_lossy().contains("tantivy"));
    }
}

#[test]
fn watch_fires_on_meta_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t = tempfile::tempdir().unwrap();
    let d = open(t.path(), 0);
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = Arc::clone(&hits);
    let _handle = d
        .watch(tantivy::directory::WatchCallback::new(move || {
            h2.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    d.atomic_write(Path::new(".managed.json"), b"[]").unwrap();
    d.atomic_write(Path::new("meta.json"), b"{}").unwrap();
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    d.sync_directory().unwrap();
}

/// Flips one byte in each sealed file of a real index in turn: every
/// search either fails or, when tantivy never reads the damaged chunk,
/// still gives the right count. Never a wrong count.
#[test]
fn tampered_real_index_never_gives_wrong_counts() {
    let canary = "zyxwvcanary";
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("inv");
    let expected = build_index(Box::new(open(&root, 0)), canary)[4];
    let search = |root: &Path| -> Result<usize, String> {
        let index = Index::open(open(root, 0)).map_err(|e| e.to_string())?;
        let body = index
            .schema()
            .get_field("body")
            .map_err(|e| e.to_string())?;
        let searcher = index.reader().map_err(|e| e.to_string())?.searcher();
        let q = QueryParser::for_index(&index, vec![body])
            .parse_query(canary)
            .map_err(|e| e.to_string())?;
        searcher.search(&q, &Count).map_err(|e| e.to_string())
    };
    assert_eq!(search(&root), Ok(expected));
    let (mut failed, mut intact, mut panicked) = (0, 0, 0);
    for p in walk(&root) {
        if p.extension().is_some_and(|e| e == "lock") {
            continue;
        }
        let orig = fs::read(&p).unwrap();
        let mut bad = orig.clone();
        bad[orig.len() / 3] ^= 0x10;
        fs::write(&p, &bad).unwrap();
        let root2 = root.clone();
        match std::panic::catch_unwind(move || search(&root2)) {
            Ok(Ok(n)) => {
                assert_eq!(n, expected, "wrong count after tampering");
                intact += 1;
            }
            Ok(Err(_)) => failed += 1,
            // A panic inside tantivy on an I/O error it does not expect:
            // reported, never wrong data.
            Err(_) => panicked += 1,
        }
        fs::write(&p, &orig).unwrap();
    }
    eprintln!(
        "tampered files: {failed} failed cleanly, {intact} unread, {panicked} panicked in tantivy"
    );
    assert!(failed > 0);
}

/// Bytes this process has passed to `write` so far (Linux), to compare how
/// much the directory and sled write for the same file.
fn written_bytes() -> Option<u64> {
    let io = fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

fn dir_size(root: &Path) -> u64 {
    walk(root)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

/// Why files rather than sled, measured: run with
/// `cargo test --release --features tantivy --test encrypted_directory -- --ignored --nocapture --test-threads=1`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_files_versus_sled() {
    let Some(_) = written_bytes() else { return };
    let t = tempfile::tempdir().unwrap();
    let total = 64 << 20;
    let bytes = data(total, 7);

    let d = EncryptedDirectory::open(&t.path().join("files"), &key()).unwrap();
    let (w0, t0) = (written_bytes().unwrap(), std::time::Instant::now());
    let mut w = d.open_write(Path::new("seg.idx")).unwrap();
    w.write_all(&bytes).unwrap();
    w.terminate().unwrap();
    let (files_w, files_t) = (written_bytes().unwrap() - w0, t0.elapsed());
    let files_disk = dir_size(&t.path().join("files"));

    let sealer = sealdex::seal::Sealer::new(&key());
    let db = sled::open(t.path().join("sled")).unwrap();
    let (w0, t0) = (written_bytes().unwrap(), std::time::Instant::now());
    for (i, c) in bytes.chunks(64 << 10).enumerate() {
        let k = (i as u64).to_be_bytes();
        let v = sealer.seal(sealdex::seal::RecordKind::IndexChunk, &k, c);
        db.insert(k, v).unwrap();
    }
    db.flush().unwrap();
    let (sled_w, sled_t) = (written_bytes().unwrap() - w0, t0.elapsed());
    drop(db);
    let sled_disk = dir_size(&t.path().join("sled"));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "64 MiB file: files wrote {:.1} MiB in {files_t:?} ({:.1} MiB on disk); \
         sled wrote {:.1} MiB in {sled_t:?} ({:.1} MiB on disk)",
        mib(files_w),
        mib(files_disk),
        mib(sled_w),
        mib(sled_disk)
    );
}

const LOCK_CHILD_ENV: &str = "SEALDEX_TEST_LOCK_DIR";

/// Not a test on its own: the child process of `lock_is_exclusive_across_processes`.
/// Takes the writer lock, says so, and holds it until stdin closes.
#[test]
#[ignore = "helper process for lock_is_exclusive_across_processes"]
fn lock_child() {
    let Some(dir) = std::env::var_os(LOCK_CHILD_ENV) else {
        return;
    };
    let d = open(Path::new(&dir), 0);
    let _held = d
        .acquire_lock(&Lock {
            filepath: PathBuf::from(".tantivy-writer.lock"),
            is_blocking: false,
        })
        .unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

#[test]
fn lock_is_exclusive_across_processes() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let t = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--ignored", "--nocapture"])
        .env(LOCK_CHILD_ENV, t.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("LOCKED") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child never locked");
    }
    let d = open(t.path(), 0);
    let lock = |blocking| Lock {
        filepath: PathBuf::from(".tantivy-writer.lock"),
        is_blocking: blocking,
    };
    assert!(d.acquire_lock(&lock(false)).is_err(), "held by the child");
    drop(child.stdin.take()); // the child lets go and exits
    assert!(child.wait().unwrap().success());
    assert!(d.acquire_lock(&lock(true)).is_ok());
}

/// A reader reload after a commit decrypts only what the commit wrote (the
/// new segment, `meta.json`), never the unchanged segments again: their
/// chunks are still in the cache, keyed by file and generation.
#[test]
fn reload_after_a_commit_does_not_decrypt_unchanged_segments() {
    use sealdex::inverted::{IndexSchema, compile};

    let tmp = tempfile::tempdir().unwrap();
    let dir = open(tmp.path(), 64 << 20);
    let schema = IndexSchema::new();
    let index = Index::create(
        dir.clone(),
        schema.schema().clone(),
        tantivy::IndexSettings::default(),
    )
    .unwrap();
    schema.register_tokenizer(&index);
    let mut writer = index.writer_with_num_threads(1, 20_000_000).unwrap();
    let record = |i: u64| sealdex::Record {
        id: format!("m{i}"),
        subject: format!("subject {i} quarterly report"),
        body: format!(
            "body text number {i} with some words alpha beta gamma {}",
            i * 7
        ),
        timestamp: Some(1_600_000_000 + i as i64),
        ..Default::default()
    };
    // Document keys come from a store.
    let tmp_store = tempfile::tempdir().unwrap();
    let store = sealdex::Store::create(
        &tmp_store.path().join("s"),
        &sealdex::Credential::AppKey(key()),
        sealdex::KdfParams::insecure_fast(),
    )
    .unwrap();
    for i in 0..5_000u64 {
        let r = record(i);
        let k = store.doc_key("src", &r.id);
        writer.add_document(schema.document(&k, i, &r)).unwrap();
    }
    writer.commit().unwrap();
    let reader = index
        .reader_builder()
        .reload_policy(tantivy::ReloadPolicy::Manual)
        .try_into()
        .unwrap();
    let q = sealdex::query::parse("quarterly OR alph").unwrap();
    let count = |reader: &tantivy::IndexReader| {
        let searcher = reader.searcher();
        searcher
            .search(&*compile(&q, &schema, &searcher, false), &Count)
            .unwrap()
    };
    assert_eq!(count(&reader), 5_000);
    let before = dir.chunks_decrypted();
    let bytes_before: u64 = walk(tmp.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();

    let r = record(99_999);
    writer
        .add_document(schema.document(&store.doc_key("src", &r.id), 1, &r))
        .unwrap();
    writer.commit().unwrap();
    reader.reload().unwrap();
    assert_eq!(count(&reader), 5_001);
    let bytes_after: u64 = walk(tmp.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    let decrypted = dir.chunks_decrypted() - before;
    // Each new or rewritten file is at most a few chunks here; the old
    // segment alone is many more.
    let new_chunks = (bytes_after.saturating_sub(bytes_before)).div_ceil(64 * 1024) + 12;
    eprintln!(
        "reload after a one-document commit decrypted {decrypted} chunks (first load: {before})"
    );
    assert!(
        decrypted <= new_chunks,
        "reload decrypted {decrypted} chunks; what the commit wrote is at most {new_chunks}"
    );
    assert!(
        before > decrypted,
        "the first load decrypts more than a reload"
    );
}

/// A merge reads every chunk of the segments it merges, once, on tantivy's
/// merge thread: it must not fill the cache that searches use, and what it
/// writes must still search right.
#[test]
fn merges_leave_the_cache_to_searches() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sb = Schema::builder();
    let body = sb.add_text_field("body", TEXT | STORED);
    let schema = sb.build();
    {
        let index = Index::create(
            Box::new(open(tmp.path(), 64 << 20)) as Box<dyn Directory>,
            schema.clone(),
            tantivy::IndexSettings::default(),
        )
        .unwrap();
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        for segment in 0..3 {
            for i in 0..2_000usize {
                let text = format!("message {segment} {i} alpha {}", i % 13);
                writer.add_document(doc!(body => text)).unwrap();
            }
            writer.commit().unwrap();
        }
    }
    // A fresh instance: nothing cached.
    let dir = open(tmp.path(), 64 << 20);
    let index = Index::open(dir.clone()).unwrap();
    let segments = index.searchable_segment_ids().unwrap();
    assert_eq!(segments.len(), 3);
    let cached = dir.cached_bytes();
    let decrypted = dir.chunks_decrypted();
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
    writer.merge(&segments).wait().unwrap();
    writer.wait_merging_threads().unwrap();
    assert!(
        dir.chunks_decrypted() > decrypted + 10,
        "the merge read the segments"
    );
    assert_eq!(dir.cached_bytes(), cached, "the merge cached nothing");

    let reader = index.reader().unwrap();
    reader.reload().unwrap();
    let searcher = reader.searcher();
    assert_eq!(searcher.segment_readers().len(), 1);
    let parser = QueryParser::for_index(&index, vec![body]);
    let count = |q: &str| {
        searcher
            .search(&parser.parse_query(q).unwrap(), &Count)
            .unwrap()
    };
    assert_eq!(count("alpha"), 6_000);
    assert_eq!(count("\"alpha 7\""), 3 * 154);
    assert!(dir.cached_bytes() > cached, "searches still fill the cache");
}
