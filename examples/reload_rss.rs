//! Resident memory of an open index across repeated commits and reader
//! reloads of its inverted index (issue 4's memory criterion).
//!
//! Indexes a corpus directory (e.g. SpamAssassin) with the inverted index,
//! runs a battery of searches, then `CYCLES` times: rewrites one message,
//! indexes it (one commit and one reader reload) and runs the battery
//! again, printing VmRSS after each cycle and the decrypted-chunk cache's
//! size.
//!
//! ```sh
//! cargo run --release --example reload_rss -- $SEALDEX_CORPORA/spamassassin 50
//! ```

use sealdex::{
    Credential, Index, IndexConfig, InvertedStatus, KdfParams, SearchMode, SearchOptions,
    SecretKey, backends, decrypt::PassThrough,
};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const QUERIES: &[&str] = &[
    "the",
    "a",
    "th",
    "\"click here\"",
    "free -money",
    "in:spam-2",
    "after:2002-09-01 linux",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let corpus = args.next().ok_or("usage: reload_rss CORPUS [CYCLES]")?;
    let cycles: usize = args.next().map_or(Ok(50), |c| c.parse())?;
    let tmp = tempfile::tempdir()?;
    let key = Credential::AppKey(SecretKey::from_bytes([7; 32]));
    let config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    };
    let index = Index::create(&tmp.path().join("idx"), &key, config)?;
    let mut source = backends::open_path(corpus.as_ref())?;
    index.index(
        source.as_mut(),
        &PassThrough::default(),
        &Default::default(),
    )?;
    index.wait_for_inverted()?;
    let opts = SearchOptions {
        mode: SearchMode::Inverted,
        limit: Some(10),
        snippet_bytes: 0,
        ..SearchOptions::default()
    };
    let battery = |index: &Index| -> Result<(), sealdex::Error> {
        for q in QUERIES {
            index.search(q, &opts)?;
        }
        Ok(())
    };
    battery(&index)?;
    let cached = |index: &Index| match index.inverted_status() {
        Ok(InvertedStatus::Current { cached_bytes, .. }) => cached_bytes / 1024,
        _ => 0,
    };
    println!(
        "after build and one battery: VmRSS {} KiB, chunk cache {} KiB",
        rss_kib(),
        cached(&index)
    );
    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one)?;
    for cycle in 0..cycles {
        std::fs::write(
            one.join("m.eml"),
            format!("From: a@example.org\r\nSubject: cycle {cycle}\r\n\r\nbody {cycle}\r\n"),
        )?;
        let mut src = backends::open_path(&one)?;
        index.index(src.as_mut(), &PassThrough::default(), &Default::default())?;
        battery(&index)?;
        if cycle % 10 == 9 || cycle + 1 == cycles {
            println!(
                "after {} commits + reloads: VmRSS {} KiB, chunk cache {} KiB",
                cycle + 1,
                rss_kib(),
                cached(&index)
            );
        }
    }
    Ok(())
}
