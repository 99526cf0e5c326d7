//! `sealdex import`: JSON Lines of ops through the CLI, bad lines reported
//! by number, and a SIGKILL between batches losing at most the batch in
//! flight.

mod common;

use std::io::Write;
use std::path::Path;

use common::{ok, run, sealdex};

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn search_ids(dir: &Path, query: &str) -> Vec<String> {
    let out = run(sealdex(dir).args(["search", "--json", "--all", "--", query]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .collect()
}

#[test]
fn import_applies_every_kind_and_reports_bad_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let input = tmp.path().join("ops.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"op":"upsert","id":"m1","kind":"mail","date":"2024-03-01T10:00:00Z","from":"Alice <alice@example.org>","to":["bob@example.org"],"subject":"Quarterly numbers","body":"see the attached sheet","folders":["INBOX"],"flags":{"unread":true},"attachments":["q1.xlsx"]}"#,
            r#"{"op":"upsert","id":"c1","kind":"chat","date":"2024-03-02T09:00:00Z","from":"Bob","body":"lunch at the harbour?","folders":["!lunch:example.org"]}"#,
            r#"{"op":"upsert","id":"e1","kind":"event","date":"2024-03-05T14:00:00+01:00","end":"2024-03-05T15:00:00+01:00","subject":"Design review","location":"Harbour room","to":["alice@example.org","bob@example.org"]}"#,
            r#"{"op":"upsert","id":"f1","kind":"file","date":"2024-02-20T08:00:00Z","path":"projects/harbour/plan.md","media_type":"text/markdown","html":"<h1>Harbour plan</h1><p>phase one</p>"}"#,
            r#"this line is not JSON"#,
            r#"{"op":"upsert","id":"bad","date":"last tuesday"}"#,
            "",
            r#"{"op":"patch","id":"m1","flags":{"unread":false,"flagged":true},"folders":["Archive"]}"#,
            r#"{"op":"delete","id":"c1"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = run(sealdex(&dir)
        .args(["import", "--source", "app"])
        .arg(&input));
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad line makes the exit non-zero"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5:"), "{err}");
    assert!(err.contains("line 6:") && err.contains("RFC 3339"), "{err}");
    assert!(
        !err.contains("line 7:"),
        "an empty line is not an error: {err}"
    );

    assert_eq!(search_ids(&dir, "harbour"), ["e1", "f1"]);
    assert_eq!(search_ids(&dir, "location:harbour"), ["e1"]);
    assert_eq!(search_ids(&dir, "filename:projects"), ["f1"]);
    assert_eq!(search_ids(&dir, "is:flagged in:archive"), ["m1"]);
    assert!(search_ids(&dir, "is:unread").is_empty());
    assert!(search_ids(&dir, "lunch").is_empty(), "c1 was deleted");
    assert_eq!(
        search_ids(&dir, "after:2024-03-05 before:2024-03-06"),
        ["e1"]
    );

    // From stdin, the same ops again: nothing breaks, nothing doubles.
    let mut child = sealdex(&dir)
        .args(["import", "--source", "app", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            br#"{"op":"upsert","id":"c2","kind":"chat","from":"Carol","body":"harbour at noon","folders":["!lunch:example.org"]}"#,
        )
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    // Undated, so last in newest-first order.
    assert_eq!(search_ids(&dir, "harbour"), ["e1", "f1", "c2"]);
    assert!(search_ids(&dir, "in:!lunch:example.org").contains(&"c2".to_string()));
    assert!(ok(sealdex(&dir).arg("verify")).status.success());
}

/// SIGKILL while importing loses at most the batch in flight: whatever
/// was stored is whole batches, the index verifies, and running the
/// import again completes it without duplicates.
#[cfg(unix)]
#[test]
fn sigkill_between_batches_loses_at_most_the_batch_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let input = tmp.path().join("ops.jsonl");
    const LINES: usize = 60_000;
    const BATCH: usize = 500;
    write_lines(
        &input,
        (0..LINES).map(|i| {
            format!(
                r#"{{"op":"upsert","id":"m{i}","kind":"chat","date":"2024-01-01T00:00:00Z","from":"user{}","body":"message number {i} about topic{}","folders":["room{}"]}}"#,
                i % 17,
                i % 101,
                i % 13
            )
        }),
    );
    let mut child = sealdex(&dir)
        .args(["import", "--batch", &BATCH.to_string()])
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it get some batches in, then kill it without warning.
    let started = std::time::Instant::now();
    while !dir.join("commit").exists() && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.kill().unwrap();
    let _ = child.wait();

    let stats = common::stats(&dir);
    let stored = stats["messages"].as_u64().unwrap() as usize;
    assert!(stored > 0, "nothing was stored before the kill");
    assert_eq!(
        stored % BATCH,
        0,
        "{stored} records: a batch landed in part"
    );
    assert!(ok(sealdex(&dir).arg("verify")).status.success());

    ok(sealdex(&dir)
        .args(["import", "--batch", &BATCH.to_string()])
        .arg(&input));
    assert_eq!(
        common::stats(&dir)["messages"].as_u64().unwrap() as usize,
        LINES
    );
    let out = ok(sealdex(&dir).args(["search", "--json", "--limit", "5", "--", "topic7"]));
    assert!(!out.stdout.is_empty());
}
