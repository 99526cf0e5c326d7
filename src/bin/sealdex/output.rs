//! How search results are printed: aligned lines for people (highlights in
//! colour only on a terminal), one JSON object per hit for programs.

use std::io::{IsTerminal, Write};

use sealdex::{Hit, SearchResults};

/// RFC 3339 in UTC, or `None` for an undated record.
pub fn rfc3339(ts: Option<i64>) -> Option<String> {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn day(ts: Option<i64>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "----------".into())
}

/// The sender's display name if it has one, else the address.
fn sender(from: &str) -> &str {
    let first = from.lines().next().unwrap_or("").trim();
    match first.find('<') {
        Some(i) if i > 0 => first[..i].trim().trim_matches('"'),
        _ => first.trim_matches(['<', '>']),
    }
}

fn clip(s: &str, chars: usize) -> String {
    let mut out: String = s.chars().take(chars).collect();
    if s.chars().count() > chars {
        out.pop();
        out.push('…');
    }
    out
}

fn json_hit(hit: &Hit) -> serde_json::Value {
    serde_json::json!({
        "id": hit.id,
        "date": rfc3339(hit.record.timestamp),
        "from": hit.record.from,
        "to": hit.record.to,
        "subject": hit.record.subject,
        "folders": hit.record.folders,
        "snippet": hit.snippet.text,
        "highlights": hit.snippet.highlights.iter().map(|r| [r.start, r.end]).collect::<Vec<_>>(),
        "score": hit.score,
    })
}

/// Prints a page of results to stdout; the count and the next-page cursor
/// go to stderr so that stdout stays one hit per line.
pub fn print_results(results: &SearchResults, json: bool, summary: bool) {
    let stdout = std::io::stdout();
    let colour = !json && stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = stdout.lock();
    for hit in &results.hits {
        let line = if json {
            json_hit(hit).to_string()
        } else {
            let snippet = highlighted(&hit.snippet.text, &hit.snippet.highlights, colour);
            format!(
                "{}  {:<22}  {:<40}  {}",
                day(hit.record.timestamp),
                clip(sender(&hit.record.from), 22),
                clip(&hit.record.subject, 40),
                snippet
            )
        };
        if writeln!(out, "{line}").is_err() {
            return; // stdout closed (a pager quit): stop quietly.
        }
    }
    let _ = out.flush();
    if summary {
        eprintln!("{} match(es), {} shown", results.total, results.hits.len());
        if let Some(next) = &results.next {
            eprintln!("next page: --cursor {}", next.encode());
        }
    }
}

fn highlighted(text: &str, ranges: &[std::ops::Range<usize>], colour: bool) -> String {
    let mut out = String::with_capacity(text.len() + ranges.len() * 12);
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > text.len() {
            continue;
        }
        out.push_str(&text[at..r.start]);
        if colour {
            out.push_str("\x1b[1;33m");
            out.push_str(&text[r.clone()]);
            out.push_str("\x1b[0m");
        } else {
            out.push('[');
            out.push_str(&text[r.clone()]);
            out.push(']');
        }
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_and_dates() {
        assert_eq!(
            sender("\"Alice Martin\" <alice@example.org>"),
            "Alice Martin"
        );
        assert_eq!(sender("<bob@example.org>"), "bob@example.org");
        assert_eq!(rfc3339(Some(0)).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(None), None);
        let ranges = vec![std::ops::Range { start: 2, end: 6 }];
        assert_eq!(highlighted("a cafe b", &ranges, false), "a [cafe] b");
    }
}
