//! What a sync costs when nothing changed: a no-change re-run over a
//! generated Maildir of 100,000 messages (and a million, when asked), with
//! the time and the token's bytes, against a full listing (what every run
//! cost while the token was the whole listing).
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora \
//!   cargo bench --bench sync_tokens -- [COUNT ...] [--dir DIR]
//! ```
//!
//! COUNT defaults to 100000. The Maildir is written once under DIR (default
//! `$TMPDIR`; `/dev/shm` makes a million files quick to write) as
//! `sealdex-sync-COUNT/` and reused by later runs. Messages are the scaling
//! bench's synthetic mail (`benches/common/synth.rs`, learned from the
//! corpora), filed into Maildir++ folders named after their corpus folder,
//! unread ones in `new/`, the rest in `cur/` with their flags. Bounded: the
//! timed part is a handful of runs of each kind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::synth::{LearnOptions, Synth, learn_from_env};
use sealdex::backends::Maildir;
use sealdex::{Flags, Source};

/// Timed repetitions of each measurement; the median is reported.
const RUNS: usize = 5;

fn main() {
    let mut counts: Vec<u64> = Vec::new();
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = PathBuf::from(args.next().expect("--dir DIR")),
            // cargo bench passes --bench.
            "--bench" => {}
            n => counts.push(n.parse().expect("a message count")),
        }
    }
    if counts.is_empty() {
        counts.push(100_000);
    }
    let Some(model) = learn_from_env(LearnOptions {
        sample_every: 4,
        chat_conversations: 2_000,
    }) else {
        eprintln!("sync_tokens: set SEALDEX_CORPORA to generate the Maildir");
        return;
    };
    let model = Arc::new(model);
    println!(
        "| messages | folders | full listing | token | zstd -3 | no-change re-run | dirs read | one delivery | dirs read |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for count in counts {
        let root = dir.join(format!("sealdex-sync-{count}"));
        generate(&root, Arc::clone(&model), count);
        measure(&root, count);
    }
}

/// Writes the Maildir unless a complete one is there.
fn generate(root: &Path, model: Arc<common::synth::Model>, count: u64) {
    let done = root.join(".complete");
    if done.exists() {
        return;
    }
    let _ = fs::remove_dir_all(root);
    let start = Instant::now();
    let synth = Synth::new(model, 1, count);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).expect("create the Maildir");
    }
    let mut made: std::collections::HashSet<String> = Default::default();
    for i in 0..count {
        let g = synth.generate(i);
        let folder = if g.folder.is_empty() || g.folder == "INBOX" {
            String::new()
        } else {
            format!(".{}", g.folder.replace(['/', '.'], "_"))
        };
        if !folder.is_empty() && made.insert(folder.clone()) {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(root.join(&folder).join(sub)).expect("create a folder");
            }
        }
        let unique = format!("{}.M{i}P1.synth", 1_600_000_000 + i);
        let path = if g.flags.contains(Flags::UNREAD) && i % 3 == 0 {
            root.join(&folder).join("new").join(unique)
        } else {
            let mut info = String::from(":2,");
            if g.flags.contains(Flags::FLAGGED) {
                info.push('F');
            }
            if !g.flags.contains(Flags::UNREAD) {
                info.push('S');
            }
            root.join(&folder).join("cur").join(unique + &info)
        };
        fs::write(path, &g.bytes).expect("write a message");
    }
    fs::write(&done, b"").expect("mark the Maildir complete");
    eprintln!(
        "wrote {count} messages in {} folders to {} in {:.1} s",
        made.len() + 1,
        root.display(),
        start.elapsed().as_secs_f64()
    );
}

fn measure(root: &Path, count: u64) {
    // Directories written in the last seconds are re-read by design (racy
    // mtimes); a mailbox at rest has none.
    std::thread::sleep(Duration::from_millis(3_500));
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // A full listing: the first sync, and what format 1 cost every run.
    let mut full = Vec::new();
    let mut token = None;
    for _ in 0..RUNS.min(3) {
        let mut md = Maildir::open(root).expect("open");
        let t = Instant::now();
        let tok = md.sync_token().expect("sync token");
        full.push(t.elapsed());
        token = Some(tok);
    }
    let token = token.expect("a token");
    let zstd_bytes = zstd::bulk::compress(&token.0, 3).map_or(0, |z| z.len());
    let folders = Maildir::open(root)
        .map(|mut md| {
            md.sync_token().expect("sync token");
            md.walk_stats().dirs_read
        })
        .unwrap_or(0);

    // The no-change re-run, as a new process would do it.
    let mut rerun = Vec::new();
    let mut read = 0;
    for _ in 0..RUNS {
        let mut md = Maildir::open(root).expect("open");
        let t = Instant::now();
        let c = md.changes(&token).expect("changes");
        rerun.push(t.elapsed());
        assert!(c.changes.is_empty(), "the Maildir changed");
        assert_eq!(c.token, token);
        read = md.walk_stats().dirs_read;
    }

    // One delivery into INBOX/new.
    let new = root.join("new/1999999999.M1P1.delivered");
    fs::write(&new, b"From: a@example.org\nSubject: new\n\nhello\n").expect("deliver");
    let mut one = Vec::new();
    let mut one_read = 0;
    for _ in 0..RUNS {
        let mut md = Maildir::open(root).expect("open");
        let t = Instant::now();
        let c = md.changes(&token).expect("changes");
        one.push(t.elapsed());
        assert_eq!(c.changes.len(), 1);
        one_read = md.walk_stats().dirs_read;
    }
    fs::remove_file(&new).expect("undo the delivery");

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "| {count} | {} | {} | {} B ({:.0} B/msg) | {} B | {} | {read} | {} | {one_read} |",
        folders.saturating_sub(3) / 3 + 1,
        ms(median(full)),
        token.0.len(),
        token.0.len() as f64 / count as f64,
        zstd_bytes,
        ms(median(rerun)),
        ms(median(one)),
    );
}
