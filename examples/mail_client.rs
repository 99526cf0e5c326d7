//! How a mail client embeds sealdex: open (or create) an index under a key
//! the app derives, index a mailbox in the background with progress, search
//! while it runs, then page through results.
//!
//! ```sh
//! cargo run --release --example mail_client            # uses the bundled sample mailbox
//! cargo run --release --example mail_client -- ~/Maildir 'from:alice invoice'
//! ```

use std::sync::Arc;
use std::time::Duration;

use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{Control, IndexOptions};
use sealdex::{Credential, Index, IndexConfig, KdfParams, SearchOptions, SecretKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mailbox = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/demo/sample.mbox").into());
    let query = args.next().unwrap_or_else(|| "meeting OR invoice".into());

    // 1. The app supplies a 32-byte key (in a real client: derived from the
    //    user's account secret and kept in the platform keystore). A random
    //    one here, since the index is thrown away at the end.
    let dir = tempfile::tempdir()?;
    let key = Credential::AppKey(SecretKey::random()?);
    let config = IndexConfig {
        cache_bytes: 64 << 20,
        kdf: KdfParams::default(), // only used for passphrases
        ..IndexConfig::default()
    };
    let index = Arc::new(Index::create(&dir.path().join("index"), &key, config)?);

    // 2. Index in the background. The UI keeps a Control to pause, resume or
    //    cancel, and receives progress events.
    let control = Control::new();
    let worker = {
        let index = Arc::clone(&index);
        let control = control.clone();
        let mailbox = mailbox.clone();
        std::thread::spawn(move || -> sealdex::Result<_> {
            let mut source = sealdex::backends::open_path(mailbox.as_ref())
                .map_err(|e| sealdex::Error::source(mailbox.clone(), e))?;
            index.index_with(
                source.as_mut(),
                &PassThrough::default(),
                &IndexOptions {
                    batch_messages: 64,
                    ..IndexOptions::default()
                },
                &control,
                &mut |p| {
                    eprintln!(
                        "progress: {} of {} ({:.0} msg/s)",
                        p.done,
                        p.total.map_or("?".into(), |t| t.to_string()),
                        p.rate
                    )
                },
            )
        })
    };

    // 3. Searching while indexing runs is safe: it sees committed batches.
    control.pause();
    std::thread::sleep(Duration::from_millis(20));
    let early = index.search(&query, &SearchOptions::default())?;
    println!("while indexing (paused): {} match(es) so far", early.total);
    control.resume();
    let report = worker.join().map_err(|_| "indexing thread panicked")??;
    println!(
        "indexed {} messages ({} failed) in {:.2}s",
        report.stored,
        report.failed,
        report.elapsed.as_secs_f64()
    );

    // 4. Page through every result, five at a time, with the cursor.
    let mut options = SearchOptions {
        limit: Some(5),
        ..SearchOptions::default()
    };
    let mut page = 1;
    loop {
        let results = index.search(&query, &options)?;
        if page == 1 {
            println!("{query:?}: {} match(es)", results.total);
        }
        for hit in &results.hits {
            let marked = mark(&hit.snippet.text, &hit.snippet.highlights);
            println!("  p{page}  {:<45.45}  {marked}", hit.record.subject);
        }
        match results.next {
            Some(next) if page < 3 => {
                options.cursor = Some(next);
                page += 1;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Wraps highlighted ranges in brackets, as a UI would bold them.
fn mark(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for r in ranges {
        out.push_str(&text[at..r.start]);
        out.push('[');
        out.push_str(&text[r.clone()]);
        out.push(']');
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}
