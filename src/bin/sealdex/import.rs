//! `sealdex import`: ops as JSON Lines, one per line, from a file or stdin,
//! applied in batches through the index's one write path. The format is
//! the library's [`sealdex::jsonl`], documented in README.md ("Importing
//! ops").

use std::io::BufRead;
use std::process::ExitCode;

use sealdex::Index;
use sealdex::ops::Op;

/// Reads `input` (a path, or `-` for stdin) and applies its ops in batches
/// of `batch` lines. A bad line is reported with its number and skipped;
/// the exit code is 2 if any line failed.
pub fn run(
    index: &Index,
    source: &str,
    input: &str,
    batch: usize,
) -> Result<ExitCode, sealdex::Error> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(input).map_err(|e| sealdex::Error::Io {
            path: input.into(),
            source: e,
        })?;
        Box::new(std::io::BufReader::new(f))
    };
    let (mut ops, mut bad, mut applied, mut skipped) = (Vec::new(), 0u64, 0u64, 0u64);
    let mut flush = |ops: &mut Vec<Op>| -> Result<(), sealdex::Error> {
        if ops.is_empty() {
            return Ok(());
        }
        let done = index.apply(std::mem::take(ops))?;
        applied += done.ops.len() as u64;
        skipped += done.skipped as u64;
        Ok(())
    };
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| sealdex::Error::Io {
            path: input.into(),
            source: e,
        })?;
        let n = n + 1;
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(_) => {
                eprintln!("sealdex import: line {n}: not UTF-8; skipped");
                bad += 1;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match sealdex::jsonl::parse_line(source, text) {
            Ok(o) => ops.push(o),
            Err(e) => {
                eprintln!(
                    "sealdex import: line {n}: {}; skipped",
                    printable(&e.to_string())
                );
                bad += 1;
            }
        }
        if ops.len() >= batch.max(1) {
            flush(&mut ops)?;
        }
    }
    flush(&mut ops)?;
    eprintln!("applied {applied} op(s), {skipped} changed nothing, {bad} bad line(s)");
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `s` with control characters (escape sequences included) shown as
/// escapes, so that an error quoting input cannot act on the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}
