//! The read operations of the CLI (search, count, show, stats, failures) as
//! requests and answers that can cross a process boundary.
//!
//! Each command builds a [`Request`] and hands it to a [`Reader`]: the
//! index opened in this process, or, when another `sealdex` process holds
//! it (an `index` run), that process through its local socket
//! (`remote.rs`). Either way the same function here answers it, so a search
//! during indexing prints exactly what it would print afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use sealdex::{Index, InvertedStatus, Order, PageCursor, Record, SearchMode, SearchOptions};

use crate::fail::Fail;

/// `--order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum OrderArg {
    /// Newest first.
    Newest,
    /// Best match first (BM25).
    Relevance,
}

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ModeArg {
    /// The inverted index when it is current, else the forward scan.
    Auto,
    /// The forward scan over decrypted records.
    Forward,
    /// The inverted index (an error if it is not current).
    Inverted,
}

/// One search or count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchReq {
    /// The query text.
    pub query: String,
    /// Result order.
    pub order: OrderArg,
    /// Hits per page; `None` for all.
    pub limit: Option<usize>,
    /// A cursor printed by an earlier page.
    pub cursor: Option<String>,
    /// Search mode.
    pub mode: ModeArg,
}

/// What a second process may ask.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A page of hits.
    Search(SearchReq),
    /// The number of hits.
    Count(SearchReq),
    /// One record by its location (see [`location`]).
    Show {
        /// The location, canonicalised by the client.
        id: String,
    },
    /// `sealdex stats --json`'s object.
    Stats,
    /// The recorded failures.
    Failures,
}

/// A hit as printed.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireHit {
    /// The record.
    pub record: Record,
    /// Relevance score.
    pub score: f32,
    /// The snippet text.
    pub snippet: String,
    /// Byte ranges of `snippet` to highlight.
    pub highlights: Vec<(usize, usize)>,
    /// Where else the same message (by Message-ID) is stored.
    pub also: Vec<String>,
}

/// A page of hits.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// Matches in all.
    pub total: usize,
    /// This page.
    pub hits: Vec<WireHit>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Hits of this page folded into an earlier hit with the same
    /// Message-ID (see [`page_of`]).
    pub folded: usize,
}

/// A recorded failure.
#[derive(Debug, Serialize, Deserialize)]
pub struct FailureView {
    /// The source's name.
    pub source: String,
    /// The message id within it.
    pub id: String,
    /// Where to find it (see [`location`]).
    pub location: String,
    /// The kind of failure (`fetch`, `parse`, …).
    pub reason: String,
    /// What went wrong.
    pub detail: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was last tried (Unix seconds).
    pub last_attempt: i64,
    /// When it will be retried (Unix seconds).
    pub retry_after: i64,
}

/// An answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// To [`Request::Search`].
    Search(Page),
    /// To [`Request::Count`].
    Count(usize),
    /// To [`Request::Show`].
    Show(Option<Box<Record>>),
    /// To [`Request::Stats`].
    Stats(serde_json::Value),
    /// To [`Request::Failures`].
    Failures(Vec<FailureView>),
    /// The request failed.
    Error {
        /// What went wrong.
        message: String,
        /// For a query error, where.
        query_position: Option<usize>,
    },
}

impl Response {
    /// The answer to a failed request.
    pub fn from_fail(f: Fail) -> Response {
        match f {
            Fail::Query {
                position, message, ..
            } => Response::Error {
                message,
                query_position: Some(position),
            },
            Fail::Sealdex(e) => Response::Error {
                message: e.to_string(),
                query_position: None,
            },
            Fail::Message(m) | Fail::Interrupted(m) => Response::Error {
                message: m,
                query_position: None,
            },
            Fail::Closed => Response::Error {
                message: "closed".into(),
                query_position: None,
            },
        }
    }
}

/// Where a record can be found, as printed and as `show` takes it: the
/// file's path for a directory tree or a single file (so it can be
/// opened), else `SOURCE#ID` (`maildir:/home/me/Maildir#1700000000.x.host`).
pub fn location(source: &str, id: &str) -> String {
    if let Some(root) = source.strip_prefix("tree:") {
        return format!("{root}/{id}");
    }
    if let Some(file) = source.strip_prefix("file:") {
        return file.to_owned();
    }
    format!("{source}#{id}")
}

/// Answers one request on an open index.
pub fn answer(index: &Index, req: &Request, indexing: bool) -> Result<Response, Fail> {
    Ok(match req {
        Request::Search(s) => Response::Search(search(index, s)?),
        Request::Count(s) => Response::Count(count(index, s)?),
        Request::Show { id } => Response::Show(show(index, id)?.map(Box::new)),
        Request::Stats => Response::Stats(stats(index, indexing)?),
        Request::Failures => Response::Failures(failures(index)?),
    })
}

fn options(s: &SearchReq) -> Result<SearchOptions, Fail> {
    let cursor = match &s.cursor {
        Some(c) => Some(
            PageCursor::decode(c)
                .ok_or_else(|| Fail::msg("--cursor: not a cursor printed by sealdex search"))?,
        ),
        None => None,
    };
    Ok(SearchOptions {
        order: match s.order {
            OrderArg::Newest => Order::Newest,
            OrderArg::Relevance => Order::Relevance,
        },
        limit: s.limit,
        cursor,
        mode: match s.mode {
            ModeArg::Auto => SearchMode::Auto,
            ModeArg::Forward => SearchMode::Forward,
            ModeArg::Inverted => SearchMode::Inverted,
        },
        ..SearchOptions::default()
    })
}

/// Parses a query, refusing `NOT` typed as a word (see the README: the
/// language excludes with `-word`; `NOT` would otherwise search for "not"
/// and quietly find the opposite of what was meant).
pub fn parse(q: &str) -> Result<sealdex::query::Query, Fail> {
    if let Some(at) = bare_not(q) {
        return Err(Fail::Query {
            query: q.to_owned(),
            position: at,
            message: "NOT is not an operator: exclude with a leading minus (`-draft`, \
                      `-from:bob`), or write \"NOT\" in quotes to search for the word"
                .into(),
        });
    }
    sealdex::query::parse(q).map_err(|e| Fail::from(sealdex::Error::Query(e)).with_query(q))
}

/// The byte offset of a standalone, unquoted `NOT`, if any.
fn bare_not(q: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut start: Option<usize> = None;
    let check = |s: usize, e: usize| (&q[s..e] == "NOT").then_some(s);
    for (i, c) in q.char_indices() {
        if c == '"' {
            in_quote = !in_quote;
            start = None;
            continue;
        }
        if in_quote {
            continue;
        }
        let sep = c.is_whitespace() || c == '(' || c == ')';
        match (sep, start) {
            (true, Some(s)) => {
                if let Some(at) = check(s, i) {
                    return Some(at);
                }
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    start.and_then(|s| check(s, q.len()))
}

fn search(index: &Index, s: &SearchReq) -> Result<Page, Fail> {
    let q = parse(&s.query)?;
    let results = index
        .search_query(&q, &options(s)?)
        .map_err(|e| Fail::from(e).with_query(&s.query))?;
    Ok(page_of(results))
}

/// A page of library results as the CLI prints them.
///
/// The same mail stored from two places (an mbox archive and a Maildir
/// both holding it) is two records; like notmuch, the CLI shows it as one
/// hit that lists its locations. Hits are folded by Message-ID within the
/// page: copies of one mail share their date, so in newest-first order they
/// are neighbours and nearly always on one page (at a page boundary the
/// next page may show the copy again). The total still counts records.
pub fn page_of(results: sealdex::SearchResults) -> Page {
    let mut hits: Vec<WireHit> = Vec::with_capacity(results.hits.len());
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut folded = 0;
    for h in results.hits {
        if let Some(mid) = &h.record.message_id {
            if let Some(&first) = seen.get(mid) {
                hits[first]
                    .also
                    .push(location(&h.record.source, &h.record.id));
                folded += 1;
                continue;
            }
            seen.insert(mid.clone(), hits.len());
        }
        hits.push(WireHit {
            record: (*h.record).clone(),
            score: h.score,
            highlights: h
                .snippet
                .highlights
                .iter()
                .map(|r| (r.start, r.end))
                .collect(),
            snippet: h.snippet.text,
            also: Vec::new(),
        });
    }
    Page {
        total: results.total,
        next: results.next.as_ref().map(PageCursor::encode),
        hits,
        folded,
    }
}

fn count(index: &Index, s: &SearchReq) -> Result<usize, Fail> {
    let q = parse(&s.query)?;
    let mut o = options(s)?;
    o.limit = Some(0);
    let page = index
        .search_keys(&q, &o)
        .map_err(|e| Fail::from(e).with_query(&s.query))?;
    Ok(page.total)
}

/// Finds a record by the location [`location`] printed: `SOURCE#ID`, or a
/// file's path (tried against every ancestor directory as a tree's root).
fn show(index: &Index, spec: &str) -> Result<Option<Record>, Fail> {
    let store = index.store();
    // SOURCE#ID: the source name has a kind prefix; the id may hold '#'.
    for (i, _) in spec.match_indices('#') {
        let (source, id) = (&spec[..i], &spec[i + 1..]);
        if source.contains(':')
            && !id.is_empty()
            && let Some(r) = store.get(source, id)?
        {
            return Ok(Some(r));
        }
    }
    let path = Path::new(spec);
    if let Some(name) = path.file_name().and_then(|n| n.to_str())
        && let Some(r) = store.get(&format!("file:{spec}"), name)?
    {
        return Ok(Some(r));
    }
    for root in path.ancestors().skip(1) {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel: Vec<&str> = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        let root = root.to_string_lossy();
        let root = if root.len() > 1 {
            root.trim_end_matches('/')
        } else {
            &root
        };
        if let Some(r) = store.get(&format!("tree:{root}"), &rel.join("/"))? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

fn stats(index: &Index, indexing: bool) -> Result<serde_json::Value, Fail> {
    let store = index.store();
    let dir = store.path().to_owned();
    let manifest = store.manifest()?;
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for f in store.failures()? {
        *by_reason.entry(f.reason).or_default() += 1;
    }
    let bytes = store.disk_bytes();
    let inverted_bytes = dir_bytes(&dir.join("inverted"));
    let (inverted, inverted_docs) = match index.inverted_status()? {
        InvertedStatus::Disabled => ("disabled", None),
        InvertedStatus::Current { documents, .. } => ("current", Some(documents)),
        // Opening started a catch-up that this command does not wait for.
        InvertedStatus::Building | InvertedStatus::Behind => ("behind", None),
        InvertedStatus::Broken => ("damaged", None),
    };
    Ok(serde_json::json!({
        "messages": manifest.documents,
        "failures": manifest.failures,
        "failures_by_reason": by_reason,
        "bytes_on_disk": bytes,
        "inverted": inverted,
        "inverted_documents": inverted_docs,
        "inverted_bytes_on_disk": inverted_bytes,
        "path": dir.display().to_string(),
        "indexing": indexing,
    }))
}

fn failures(index: &Index) -> Result<Vec<FailureView>, Fail> {
    let mut out: Vec<FailureView> = index
        .store()
        .failures()?
        .into_iter()
        .map(|f| FailureView {
            location: location(&f.source, &f.message.id),
            source: f.source,
            id: f.message.id,
            reason: f.reason,
            detail: f.detail,
            attempts: f.attempts,
            last_attempt: f.last_attempt,
            retry_after: f.retry_after,
        })
        .collect();
    out.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(out)
}

/// Bytes of the files under `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_not_is_found_outside_quotes_only() {
        assert_eq!(bare_not("a NOT b"), Some(2));
        assert_eq!(bare_not("NOT"), Some(0));
        assert_eq!(bare_not("(NOT x)"), Some(1));
        assert_eq!(bare_not("\"a NOT b\""), None);
        assert_eq!(bare_not("not NOTE knot"), None);
        assert_eq!(bare_not("from:NOT"), None);
    }

    #[test]
    fn locations() {
        assert_eq!(location("tree:/m", "a/b.eml"), "/m/a/b.eml");
        assert_eq!(location("file:/m/x.eml", "x.eml"), "/m/x.eml");
        assert_eq!(location("maildir:/md", "17.x"), "maildir:/md#17.x");
    }
}
