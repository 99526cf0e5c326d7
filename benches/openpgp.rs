//! OpenPGP mail (issue 13): messages per second decrypted, and decrypted
//! and indexed, per key type (ed25519 + cv25519 against rsa3072), next to
//! the same messages in clear.
//!
//! 200 SpamAssassin messages are encrypted by real GnuPG as PGP/MIME (to a
//! cv25519 subkey, and to an rsa3072 one) at start-up; then
//!
//! - `decrypt/*`: `Decryptor::decrypt` over the 200, on one thread: the
//!   cost per message on one core, public-key operation included;
//! - `index/*`: the whole pipeline (Tree source, decryptor, cleaner, sealed
//!   and flushed store) over the 200 files, which decrypts on rayon's pool,
//!   one thread per core.
//!
//! Needs `SEALDEX_CORPORA` and `gpg` on PATH; skips loudly without them.
//! Short on purpose: `cargo bench --bench openpgp`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sealdex::backends::Tree;
use sealdex::decrypt::PassThrough;
use sealdex::decrypt::openpgp::{OpenPgp, SecretKeys};
use sealdex::pipeline::IndexOptions;
use sealdex::{Credential, Decryptor, Index, IndexConfig, KdfParams, RawMessage};

#[path = "../tests/openpgp_util/mod.rs"]
mod openpgp_util;

use openpgp_util::{Compress, Gpg};

const MESSAGES: usize = 200;

struct Set {
    name: &'static str,
    dir: PathBuf,
    raws: Vec<RawMessage>,
    decryptor: Box<dyn Decryptor>,
}

fn write_tree(dir: &Path, msgs: &[(String, Vec<u8>)]) -> Vec<RawMessage> {
    msgs.iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, bytes).expect("write");
            RawMessage {
                id: name.clone(),
                bytes: bytes.clone(),
                ..RawMessage::default()
            }
        })
        .collect()
}

fn index_once(dir: &Path, decryptor: &dyn Decryptor) -> Duration {
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
    let mut tree = Tree::open(dir).expect("tree");
    let start = Instant::now();
    let r = index
        .index(&mut tree, decryptor, &IndexOptions::default())
        .expect("index");
    let elapsed = start.elapsed();
    assert_eq!((r.stored as usize, r.failed), (MESSAGES, 0));
    elapsed
}

fn openpgp(c: &mut Criterion) {
    let Some(corpus) =
        std::env::var_os("SEALDEX_CORPORA").map(|d| PathBuf::from(d).join("spamassassin"))
    else {
        eprintln!(
            "\n*** SKIPPED openpgp bench: set SEALDEX_CORPORA (scripts/fetch-corpora.sh) ***\n"
        );
        return;
    };
    let gpg = Gpg::new();
    let ed = gpg.gen_key("Ed", "ed25519", "cv25519", "ed-pass");
    let rsa = gpg.gen_key("Rsa", "rsa3072", "rsa3072", "rsa-pass");
    let mut keys = SecretKeys::new();
    keys.add(&gpg.export_secret(&ed, true), Some(b"ed-pass"))
        .expect("ed key");
    keys.add(&gpg.export_secret(&rsa, true), Some(b"rsa-pass"))
        .expect("rsa key");

    let mut files = Vec::new();
    for sub in ["easy-ham-1", "spam-1", "hard-ham-1"] {
        let mut f: Vec<PathBuf> = std::fs::read_dir(corpus.join(sub))
            .expect("the SpamAssassin corpus")
            .map(|e| e.expect("entry").path())
            .collect();
        f.sort();
        files.extend(f);
    }
    let step = files.len() / MESSAGES;
    let picked: Vec<(String, Vec<u8>)> = files
        .iter()
        .step_by(step.max(1))
        .take(MESSAGES)
        .map(|p| {
            let name = p.strip_prefix(&corpus).expect("in corpus");
            (
                name.to_string_lossy().into_owned(),
                std::fs::read(p).expect("read"),
            )
        })
        .collect();
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut sets = vec![Set {
        name: "clear",
        dir: tmp.path().join("clear"),
        raws: Vec::new(),
        decryptor: Box::new(PassThrough::default()),
    }];
    sets[0].raws = write_tree(&sets[0].dir, &picked);
    for (name, key) in [("cv25519", &ed), ("rsa3072", &rsa)] {
        let enc: Vec<(String, Vec<u8>)> = picked
            .iter()
            .map(|(n, b)| {
                let e = openpgp_util::pgp_mime(b, true, |e| {
                    gpg.encrypt(e, &[key], None, Compress::Default, false)
                });
                (n.clone(), e)
            })
            .collect();
        let dir = tmp.path().join(name);
        let raws = write_tree(&dir, &enc);
        sets.push(Set {
            name,
            dir,
            raws,
            decryptor: Box::new(OpenPgp::new(keys.clone())),
        });
    }
    eprintln!(
        "openpgp bench: {MESSAGES} messages encrypted by gpg in {:.1}s; {} rayon threads",
        started.elapsed().as_secs_f64(),
        rayon_threads()
    );

    let mut g = c.benchmark_group("decrypt");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(MESSAGES as u64));
    for s in &sets {
        g.bench_function(s.name, |b| {
            b.iter(|| {
                for r in &s.raws {
                    std::hint::black_box(s.decryptor.decrypt(r).expect("decrypts"));
                }
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("index");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(MESSAGES as u64));
    for s in &sets {
        g.bench_function(s.name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| index_once(&s.dir, s.decryptor.as_ref()))
                    .sum()
            })
        });
    }
    g.finish();
}

/// The pipeline decrypts on rayon's global pool.
fn rayon_threads() -> usize {
    rayon::current_num_threads()
}

criterion_group!(benches, openpgp);
criterion_main!(benches);
