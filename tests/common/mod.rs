//! Helpers shared by the integration tests: running the CLI, finding the
//! fetched corpora, and building small mailboxes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealdex::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The passphrase every CLI test uses.
pub const PASSPHRASE: &str = "pass-Xq7-canary-phrase";

/// Where `scripts/fetch-corpora.sh` put the corpus `name`. The tests that
/// call this are `#[ignore = "needs SEALDEX_CORPORA"]`, so they run only
/// when asked for (`cargo test -- --include-ignored`, as `.ci/run` does),
/// and then a missing corpus fails them: a plain `cargo test` lists them
/// as ignored instead of passing them without doing anything. Always
/// `Some`; the `Option` keeps the callers' `let … else` shape.
pub fn corpora(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SEALDEX_CORPORA") else {
        panic!(
            "SEALDEX_CORPORA is not set: this test needs the corpora (it is #[ignore]d, and was asked for with --ignored or --include-ignored): fetch them with `scripts/fetch-corpora.sh` and set SEALDEX_CORPORA to the directory it prints"
        );
    };
    let p = PathBuf::from(dir).join(name);
    assert!(
        p.exists(),
        "SEALDEX_CORPORA is set but {} is missing: run scripts/fetch-corpora.sh",
        p.display()
    );
    Some(p)
}

/// The corpus `name` if `SEALDEX_CORPORA` is set, for a test that runs
/// without it and does more with it.
pub fn corpora_if_set(name: &str) -> Option<PathBuf> {
    std::env::var_os("SEALDEX_CORPORA").and_then(|_| corpora(name))
}

/// A `sealdex` command on the index in `dir`, unlocked by [`PASSPHRASE`].
pub fn sealdex(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sealdex"));
    c.arg("--dir").arg(dir);
    c.env("SEALDEX_PASSPHRASE", PASSPHRASE);
    c.env_remove("SEALDEX_DIR");
    c.env_remove("RUST_LOG");
    c
}

/// Runs a command and returns its output, failing the test if it panicked.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("failed to start sealdex");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "sealdex panicked:\n{stderr}");
    assert_ne!(out.status.code(), Some(101), "sealdex panicked:\n{stderr}");
    out
}

/// Runs a command that must succeed.
pub fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "command failed: {:?}\nstdout: {}\nstderr: {}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `sealdex stats --json`, parsed.
pub fn stats(dir: &Path) -> serde_json::Value {
    let out = ok(sealdex(dir).args(["stats", "--json"]));
    serde_json::from_slice(&out.stdout).expect("stats --json prints one JSON object")
}

/// Counts regular files under a directory tree, skipping hidden ones.
pub fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            n += count_files(&p);
        } else if p.is_file() {
            n += 1;
        }
    }
    n
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Copies a directory tree (an index, a mailbox), leaving out the index's
/// lock file, which belongs to the process holding the original open.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "sealdex.lock" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A source over raw messages held in memory: lists them in order behind
/// an index cursor, fetches by id, and reports no changes.
pub struct Mem {
    /// The source's name.
    pub name: String,
    /// The messages, in listing order.
    pub messages: Vec<RawMessage>,
}

impl Source for Mem {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let start = cursor.map_or(0, |c| {
            usize::from_le_bytes(c.0.clone().try_into().unwrap_or([0; 8]))
        });
        let end = (start + limit.max(1)).min(self.messages.len());
        Ok(Page {
            refs: self.messages[start..end]
                .iter()
                .map(|m| MessageRef {
                    id: m.id.clone(),
                    version: m.version.clone(),
                    ..MessageRef::default()
                })
                .collect(),
            next: (end < self.messages.len()).then(|| Cursor(end.to_le_bytes().to_vec())),
            total: Some(self.messages.len() as u64),
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter()
            .map(|r| {
                self.messages
                    .iter()
                    .find(|m| m.id == r.id)
                    .cloned()
                    .ok_or_else(|| FetchError {
                        id: r.id.clone(),
                        reason: "gone".into(),
                    })
            })
            .collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        Ok(SyncToken(b"static".to_vec()))
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        Ok(Changes {
            changes: Vec::new(),
            token: since.clone(),
        })
    }
}

/// A word as it could sit on disk: as written, upper and lower case, in
/// UTF-8 and UTF-16 of both byte orders.
pub fn encodings(word: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for w in [word.to_string(), word.to_uppercase(), word.to_lowercase()] {
        out.push(w.as_bytes().to_vec());
        out.push(w.encode_utf16().flat_map(|u| u.to_le_bytes()).collect());
        out.push(w.encode_utf16().flat_map(|u| u.to_be_bytes()).collect());
    }
    out
}

/// Fails if any file under `index` holds any of `words` in clear (see
/// [`encodings`]): the canary check of the security model.
pub fn assert_no_plaintext(index: &Path, words: &[&str]) {
    let files = all_files(index);
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for w in words {
            for needle in encodings(w) {
                assert!(
                    memchr::memmem::find(&bytes, &needle).is_none(),
                    "{} holds {w:?} in clear",
                    f.display()
                );
            }
        }
    }
}

/// A source around another (a real Maildir in the tests) that counts the
/// messages it fetches: what the tests of patches and of followers that
/// must never fetch assert on.
pub struct Counting {
    /// The source that does the work.
    pub inner: Box<dyn Source>,
    /// Messages fetched so far.
    pub fetched: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Source for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        self.inner.list(cursor, limit)
    }
    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        self.fetched
            .fetch_add(refs.len(), std::sync::atomic::Ordering::SeqCst);
        self.inner.fetch(refs)
    }
    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        self.inner.sync_token()
    }
    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        self.inner.changes(since)
    }
}

/// An index configuration for tests that search in both modes: the
/// inverted index on, and a key derivation fast enough for tests.
pub fn both_modes_config() -> sealdex::IndexConfig {
    sealdex::IndexConfig {
        kdf: sealdex::KdfParams::insecure_fast(),
        inverted: true,
        ..sealdex::IndexConfig::default()
    }
}

/// Every hit's id, in order, in one mode; the total must count them all.
pub fn ids(
    index: &sealdex::Index,
    q: &str,
    mode: sealdex::SearchMode,
    order: sealdex::Order,
) -> Vec<String> {
    let r = index
        .search(
            q,
            &sealdex::SearchOptions {
                order,
                limit: None,
                cursor: None,
                snippet_bytes: 0,
                mode,
            },
        )
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(r.total, r.hits.len(), "{q}: total vs hits");
    r.hits.into_iter().map(|h| h.id).collect()
}

/// The ids both modes return, after checking that they agree: the same
/// ids in the same newest-first order, and the same set by relevance.
pub fn both(index: &sealdex::Index, q: &str) -> Vec<String> {
    use sealdex::{Order, SearchMode};
    let fwd = ids(index, q, SearchMode::Forward, Order::Newest);
    let inv = ids(index, q, SearchMode::Inverted, Order::Newest);
    assert_eq!(fwd, inv, "{q}: forward vs inverted, newest first");
    let set = |mode| -> std::collections::BTreeSet<String> {
        ids(index, q, mode, Order::Relevance).into_iter().collect()
    };
    assert_eq!(
        set(SearchMode::Forward),
        set(SearchMode::Inverted),
        "{q}: relevance"
    );
    fwd
}
