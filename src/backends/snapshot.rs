//! The listing snapshot shared by every backend: paging, sync tokens and the
//! change diff.
//!
//! Each backend turns its storage into a [`Snapshot`]: one [`Entry`] per
//! message, sorted by a byte key that is unique within the listing. The same
//! snapshot serves three purposes, which is why it lives in one place:
//!
//! - paging: the cursor is the key of the last entry handed out, and the next
//!   page starts at the first key after it (a binary search). A key-based
//!   cursor stays meaningful when the listing changes between pages: nothing
//!   listed before is repeated, and nothing that still exists is skipped;
//! - sync tokens: the snapshot, postcard-encoded, is the token;
//! - changes: [`diff`] compares an old snapshot with the current one, so the
//!   three backends classify changes by exactly the same rules.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::record::Flags;
use crate::source::{Change, Cursor, MessageRef, Metadata, Page, SourceError, SyncToken};

/// The sync token format this code writes and reads. Bumped whenever
/// [`Entry`] changes shape, so that an old token is refused with a clear
/// error instead of being misread.
const TOKEN_FORMAT: u8 = 1;

/// One message as a backend lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The listing order and cursor key; unique within a snapshot.
    pub key: Vec<u8>,
    /// The message id, unique within the snapshot.
    pub id: String,
    /// Where the backend finds the message (opaque outside the backend).
    pub locator: Vec<u8>,
    /// The backend's fingerprint of the message's content.
    pub version: Option<String>,
    /// Size in bytes, for progress reporting.
    pub size: Option<u64>,
    /// The folder the message is in, if the backend has folders.
    pub folder: Option<String>,
    /// Flags, if the backend keeps them outside the message.
    pub flags: Option<Flags>,
}

impl Entry {
    /// What a metadata-only change sets: the folder and flags as listed.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            folders: self.folder.as_ref().map(|f| vec![f.clone()]),
            labels: None,
            unread: self.flags.map(|f| f.contains(Flags::UNREAD)),
            flagged: self.flags.map(|f| f.contains(Flags::FLAGGED)),
        }
    }

    /// The reference handed to the pipeline.
    pub fn to_ref(&self) -> MessageRef {
        MessageRef {
            id: self.id.clone(),
            locator: self.locator.clone(),
            version: self.version.clone(),
            size: self.size,
        }
    }
}

/// The sync token as written.
#[derive(Serialize)]
struct TokenOut<'a> {
    format: u8,
    kind: &'a str,
    entries: &'a [Entry],
}

/// The sync token as read back.
#[derive(Deserialize)]
struct TokenIn {
    format: u8,
    kind: String,
    entries: Vec<Entry>,
}

/// A backend's full listing, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    entries: Vec<Entry>,
}

impl Snapshot {
    /// A snapshot of `entries`, sorted here by key (the caller need not).
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Snapshot { entries }
    }

    /// The page of at most `limit` entries after `cursor` (from the start
    /// when `None`). A `limit` of 0 is treated as 1, so that paging always
    /// makes progress.
    pub fn page(&self, cursor: Option<&Cursor>, limit: usize) -> Page {
        let len = self.entries.len();
        let start = match cursor {
            None => 0,
            Some(c) => self
                .entries
                .partition_point(|e| e.key.as_slice() <= c.0.as_slice()),
        };
        let end = start.saturating_add(limit.max(1)).min(len);
        let refs: Vec<MessageRef> = self.entries[start..end].iter().map(Entry::to_ref).collect();
        let next = if end < len {
            self.entries[..end].last().map(|e| Cursor(e.key.clone()))
        } else {
            None
        };
        Page {
            refs,
            next,
            total: Some(len as u64),
        }
    }

    /// This snapshot as a sync token of a backend of `kind`.
    pub fn to_token(&self, kind: &str) -> Result<SyncToken, SourceError> {
        let out = TokenOut {
            format: TOKEN_FORMAT,
            kind,
            entries: &self.entries,
        };
        postcard::to_allocvec(&out)
            .map(SyncToken)
            .map_err(|e| SourceError(format!("cannot encode the {kind} sync token: {e}")))
    }

    /// Reads back a token [`Snapshot::to_token`] wrote for a backend of
    /// `kind`. Anything else (garbage, trailing bytes, another format or
    /// another kind of backend) is an error, never a panic.
    pub fn from_token(token: &SyncToken, kind: &str) -> Result<Self, SourceError> {
        let bad = |why: &str| SourceError(format!("malformed {kind} sync token: {why}"));
        let (t, rest) =
            postcard::take_from_bytes::<TokenIn>(&token.0).map_err(|_| bad("undecodable"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        if t.format != TOKEN_FORMAT {
            return Err(bad(&format!(
                "format {} (expected {TOKEN_FORMAT})",
                t.format
            )));
        }
        if t.kind != kind {
            return Err(bad(&format!("written by a {} source", t.kind)));
        }
        Ok(Snapshot::new(t.entries))
    }
}

/// What changed from `old` to `new`, by id.
///
/// The rules, applied in this order to an id present in both:
/// 1. the version or size differs: [`Change::ContentUpdated`] (re-fetch and
///    re-index);
/// 2. the folder differs: [`Change::Moved`];
/// 3. the flags differ, or only the locator does (a Maildir file renamed by a
///    flag the index does not track): [`Change::MetadataUpdated`], so that the
///    consumer learns the new locator.
///
/// New ids are [`Change::Created`], vanished ids [`Change::Deleted`].
/// Creations and updates come in `new`'s listing order, then deletions in
/// `old`'s order. Every change concerns a distinct id, so applying them in
/// this order or any other gives the same result.
pub(crate) fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let before: HashMap<&str, &Entry> = old.entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut changes = Vec::new();
    for e in &new.entries {
        let Some(o) = before.get(e.id.as_str()) else {
            changes.push(Change::Created(e.to_ref()));
            continue;
        };
        if o.version != e.version || o.size != e.size {
            changes.push(Change::ContentUpdated(e.to_ref()));
        } else if o.folder != e.folder {
            changes.push(Change::Moved(e.to_ref(), e.metadata()));
        } else if o.flags != e.flags || o.locator != e.locator {
            changes.push(Change::MetadataUpdated(e.to_ref(), e.metadata()));
        }
    }
    let now: HashSet<&str> = new.entries.iter().map(|e| e.id.as_str()).collect();
    changes.extend(
        old.entries
            .iter()
            .filter(|o| !now.contains(o.id.as_str()))
            .map(|o| Change::Deleted { id: o.id.clone() }),
    );
    changes
}

/// Makes ids unique: walking `entries` in order, the first entry with an id
/// keeps it and every later one gets `alt(entry)` instead (followed by `#2`,
/// `#3`, … in the unlikely case that is taken too). The backend chooses the
/// order, and so which entry keeps the plain id.
pub(crate) fn make_ids_unique(entries: &mut [Entry], alt: impl Fn(&Entry) -> String) {
    let mut seen: HashSet<String> = HashSet::with_capacity(entries.len());
    for e in entries.iter_mut() {
        if seen.contains(&e.id) {
            let base = alt(e);
            let mut id = base.clone();
            let mut n = 2u64;
            while seen.contains(&id) {
                id = format!("{base}#{n}");
                n += 1;
            }
            e.id = id;
        }
        seen.insert(e.id.clone());
    }
}

/// The cached listing of one backend, and the [`crate::Source`] methods that
/// only need a way to take a fresh snapshot.
///
/// Walking a tree of thousands of files for every page would make paging
/// quadratic, so the listing is taken once per pass (when a pass starts with
/// no cursor, or when there is no listing yet) and pages are cut from it.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    current: Option<Snapshot>,
}

impl Listing {
    /// [`crate::Source::list`]: re-scans when `cursor` is `None` or nothing
    /// was scanned yet, then cuts the page from the cached snapshot.
    pub fn list(
        &mut self,
        cursor: Option<&Cursor>,
        limit: usize,
        scan: impl FnOnce() -> Result<Snapshot, SourceError>,
    ) -> Result<Page, SourceError> {
        let snapshot = match (&self.current, cursor) {
            (Some(s), Some(_)) => s,
            _ => self.current.insert(scan()?),
        };
        Ok(snapshot.page(cursor, limit))
    }

    /// [`crate::Source::sync_token`]: a fresh snapshot, encoded.
    pub fn sync_token(
        &mut self,
        kind: &str,
        scan: impl FnOnce() -> Result<Snapshot, SourceError>,
    ) -> Result<SyncToken, SourceError> {
        self.current.insert(scan()?).to_token(kind)
    }

    /// [`crate::Source::changes`]: diffs a fresh snapshot against the one in
    /// `since`. The token is checked before the (possibly slow) scan.
    pub fn changes(
        &mut self,
        kind: &str,
        since: &SyncToken,
        scan: impl FnOnce() -> Result<Snapshot, SourceError>,
    ) -> Result<crate::source::Changes, SourceError> {
        let old = Snapshot::from_token(since, kind)?;
        let new = self.current.insert(scan()?);
        Ok(crate::source::Changes {
            changes: diff(&old, new),
            token: new.to_token(kind)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        key: &str,
        id: &str,
        version: &str,
        folder: Option<&str>,
        flags: Option<Flags>,
    ) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            id: id.to_string(),
            locator: key.as_bytes().to_vec(),
            version: Some(version.to_string()),
            size: Some(1),
            folder: folder.map(str::to_string),
            flags,
        }
    }

    #[test]
    fn paging_resumes_after_cursor_key() {
        let s = Snapshot::new(vec![
            entry("b", "b", "1", None, None),
            entry("a", "a", "1", None, None),
        ]);
        let p = s.page(None, 1);
        assert_eq!(p.refs[0].id, "a");
        assert_eq!(p.total, Some(2));
        let p = s.page(p.next.as_ref(), 1);
        assert_eq!(p.refs[0].id, "b");
        assert!(p.next.is_none());
        // A cursor between keys (an entry vanished) resumes at the next key.
        let p = s.page(Some(&Cursor(b"aa".to_vec())), 10);
        assert_eq!(p.refs.len(), 1);
        // Past the end: an empty last page.
        let p = s.page(Some(&Cursor(b"z".to_vec())), 10);
        assert!(p.refs.is_empty() && p.next.is_none());
        // Limit 0 still makes progress.
        assert_eq!(s.page(None, 0).refs.len(), 1);
    }

    #[test]
    fn diff_classifies() {
        let old = Snapshot::new(vec![
            entry("a", "a", "1", Some("INBOX"), None),
            entry("b", "b", "1", Some("INBOX"), None),
            entry("c", "c", "1", Some("INBOX"), None),
            entry("d", "d", "1", Some("INBOX"), Some(Flags::UNREAD)),
            entry("e", "e", "1", Some("INBOX"), None),
        ]);
        let new = Snapshot::new(vec![
            entry("a", "a", "1", Some("INBOX"), None),
            entry("b", "b", "2", Some("INBOX"), None),
            entry("c", "c", "1", Some("Sent"), None),
            entry("d", "d", "1", Some("INBOX"), Some(Flags::empty())),
            entry("f", "f", "1", Some("INBOX"), None),
        ]);
        let ids: Vec<String> = diff(&old, &new)
            .into_iter()
            .map(|c| match c {
                Change::Created(r) => format!("+{}", r.id),
                Change::ContentUpdated(r) => format!("~{}", r.id),
                Change::Moved(r, _) => format!(">{}", r.id),
                Change::MetadataUpdated(r, _) => format!("*{}", r.id),
                Change::Deleted { id } => format!("-{id}"),
            })
            .collect();
        assert_eq!(ids, ["~b", ">c", "*d", "+f", "-e"]);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn token_round_trip_and_rejects() {
        let s = Snapshot::new(vec![entry("a", "a", "1", None, Some(Flags::FLAGGED))]);
        let t = s.to_token("tree").unwrap();
        assert_eq!(Snapshot::from_token(&t, "tree").unwrap(), s);
        assert!(Snapshot::from_token(&t, "mbox").is_err());
        let mut long = t.0.clone();
        long.push(0);
        assert!(Snapshot::from_token(&SyncToken(long), "tree").is_err());
        for n in 0..t.0.len() {
            let _ = Snapshot::from_token(&SyncToken(t.0[..n].to_vec()), "tree");
        }
        assert!(Snapshot::from_token(&SyncToken(vec![0xff; 40]), "tree").is_err());
    }

    #[test]
    fn unique_ids() {
        let mut es = vec![
            entry("1", "x", "1", None, None),
            entry("2", "x", "1", None, None),
            entry("3", "x#alt", "1", None, None),
            entry("4", "x", "1", None, None),
        ];
        make_ids_unique(&mut es, |e| format!("{}#alt", e.id));
        let ids: Vec<&str> = es.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["x", "x#alt", "x#alt#alt", "x#alt#2"]);
    }
}
