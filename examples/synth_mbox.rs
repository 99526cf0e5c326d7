//! Writes synthetic messages (`benches/common/synth.rs`) to an mbox file,
//! to look at what the scaling bench indexes, and prints what the model
//! learned from the corpora.
//!
//! ```sh
//! SEALDEX_CORPORA=~/.cache/sealdex-corpora \
//!   cargo run --release --example synth_mbox -- /tmp/synth.mbox 1000 [SEED [TOTAL]]
//! ```
//!
//! Message `i` is the one the scaling bench's source makes for a mailbox of
//! `TOTAL` messages (default: the count written); dates depend on the
//! total, everything else only on the seed and `i`. The file is mboxrd:
//! lines starting with `>*From ` get one more `>`.

#[path = "../benches/common/synth.rs"]
mod synth;

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: synth_mbox OUT.mbox COUNT [SEED [TOTAL]]  (needs SEALDEX_CORPORA)";
    let (Some(out), Some(count)) = (args.first(), args.get(1)) else {
        return Err(usage.into());
    };
    let count: u64 = count.parse().map_err(|_| usage)?;
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let total: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(count);
    let Some(root) = std::env::var_os("SEALDEX_CORPORA") else {
        return Err(format!("SEALDEX_CORPORA is not set; {usage}").into());
    };

    let t = Instant::now();
    let model = synth::Model::learn(root.as_ref(), synth::LearnOptions::default())?;
    eprintln!(
        "learned in {:.1}s (~{:.0} MB of model):",
        t.elapsed().as_secs_f64(),
        model.heap_bytes() as f64 / 1e6
    );
    eprintln!("{:#?}", model.stats);
    eprintln!("folders: {:?}", model.folder_names());

    let source = synth::Synth::new(Arc::new(model), seed, total);
    let mut w = BufWriter::new(std::fs::File::create(out)?);
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..count {
        let g = source.generate(i);
        bytes += g.bytes.len();
        let date = chrono::DateTime::from_timestamp(g.date, 0)
            .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
            .unwrap_or_default();
        writeln!(w, "From synth@sealdex {date}")?;
        let text = String::from_utf8_lossy(&g.bytes);
        for line in text.lines() {
            if line.trim_start_matches('>').starts_with("From ") {
                w.write_all(b">")?;
            }
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.write_all(b"\n")?;
    }
    w.flush()?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "wrote {count} messages ({:.1} MB, {:.1} KB each) to {out} in {secs:.2}s ({:.0} msg/s generated)",
        bytes as f64 / 1e6,
        bytes as f64 / count.max(1) as f64 / 1e3,
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}
