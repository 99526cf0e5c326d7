//! The calendar backend: an iCalendar (`.ics`) file, or a folder of them
//! (a CalDAV export, an Evolution or Thunderbird calendar directory), as a
//! source of events (feature `calendar`).
//!
//! One file holds many events, so a listing reads and parses every file
//! (with [`crate::calendar`]) and lists each event, task and occurrence of
//! a recurring series as one message (a file of only time zones, free/busy
//! or journal entries lists none). What a message's bytes are: a small
//! standalone iCalendar object holding that one instance and the time
//! zones it uses, which [`IcsPassThrough`](crate::calendar::IcsPassThrough)
//! reads.
//!
//! - **id**: the file's path relative to the root, `#`, and the
//!   instance's id (`work.ics#1234@example.org`,
//!   `work.ics#standup@example.org@20240311T080000Z`); see
//!   [`crate::calendar`]. A UID that repeats within a file gets `~2`,
//!   `~3`… in file order.
//! - **version**: a hash of the instance's bytes, so editing one event of
//!   a large calendar re-indexes that event only.
//! - **folder**: the calendar's name (`X-WR-CALNAME`), else the file name
//!   without its extension.
//! - **which files**: in a folder, visible files named `*.ics`, `*.ical`
//!   or `*.icalendar`, and files without an extension whose content starts
//!   with `BEGIN:VCALENDAR`; hidden files and directories are skipped.
//!   [`Ics::open`] on a file takes that file, whatever its name.
//!
//! A malformed event is listed like any other and fails when fetched, with
//! the reason (`component at line 40: not valid iCalendar at line 42`),
//! recorded as a per-message failure; the calendar's other events are
//! indexed. A file that cannot be read or is over the size limit is one
//! failing message under the file's path.
//!
//! The sync token keeps each file's stamp (inode, mtime, ctime) and its
//! entries: a run re-parses only the files whose stamp changed, and
//! diffs entries by id and version, so a changed event is re-indexed, a
//! removed one deleted, and an unchanged calendar costs a `stat` per file.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::snapshot::{Entry, Listing, Snapshot, Stamp, diff, make_ids_unique};
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, check_root, locator_path, read_file_limited,
    relative_bytes,
};
use crate::calendar::{RecurrenceWindow, expand, looks_like_ics, split};
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The kind tag of this backend's names and sync tokens.
const KIND: &str = "ics";
/// The format of this backend's sync token.
const FORMAT: u8 = 1;
/// The file name extensions of iCalendar files.
const EXTENSIONS: [&str; 3] = ["ics", "ical", "icalendar"];

/// An iCalendar file or a folder of them as a [`Source`]. See the [module
/// documentation](self).
///
/// ```no_run
/// use sealdex::Source;
/// use sealdex::backends::Ics;
///
/// let mut cal = Ics::open("/home/me/calendars")?;
/// let page = cal.list(None, 500)?;
/// println!("{} events in {}", page.total.unwrap_or(0), cal.name());
/// # Ok::<(), sealdex::SourceError>(())
/// ```
#[derive(Debug)]
pub struct Ics {
    conf: Conf,
    name: String,
    listing: Listing,
    /// The per-file state of the last scan: unchanged files are not parsed
    /// again by the next one.
    last: Option<Token>,
    /// The last file fetch parsed: its locator and its instances by id.
    cache: Option<(Vec<u8>, HashMap<String, Item>)>,
}

/// What a scan needs: where, which files, and how.
#[derive(Debug)]
struct Conf {
    root: PathBuf,
    only: Option<OsString>,
    max_file_bytes: u64,
    window: RecurrenceWindow,
}

/// One listed instance: its entry, and its bytes or why there are none.
#[derive(Clone, Debug)]
struct Item {
    entry: Entry,
    ics: Result<String, String>,
}

/// One file in the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileState {
    rel: Vec<u8>,
    size: u64,
    stamp: Stamp,
    racy: bool,
    entries: Vec<Entry>,
}

/// The sync token.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Token {
    format: u8,
    kind: String,
    files: Vec<FileState>,
}

impl Ics {
    /// Opens a calendar: an iCalendar file, or a folder whose calendars
    /// (see the [module documentation](self)) are all listed. Nothing is
    /// read until the first listing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let is_dir = std::fs::metadata(path)
            .map_err(|e| SourceError::io(format_args!("cannot open {}", path.display()), &e))?
            .is_dir();
        let (canonical, name) = canonical_root(KIND, path, is_dir)?;
        let (root, only) = if is_dir {
            (canonical, None)
        } else {
            let (Some(root), Some(file)) = (canonical.parent(), canonical.file_name()) else {
                return Err(SourceError::not_found(format!(
                    "{} is not a file",
                    canonical.display()
                )));
            };
            (root.to_owned(), Some(file.to_owned()))
        };
        Ok(Ics {
            conf: Conf {
                root,
                only,
                max_file_bytes: DEFAULT_MAX_MESSAGE_BYTES,
                window: RecurrenceWindow::default(),
            },
            name,
            listing: Listing::default(),
            last: None,
            cache: None,
        })
    }

    /// Sets which occurrences of recurring series are listed. Default:
    /// [`RecurrenceWindow::default`].
    pub fn with_recurrence_window(mut self, window: RecurrenceWindow) -> Self {
        self.conf.window = window;
        self
    }

    /// Sets the largest calendar file read; a larger one is one failing
    /// message. Default: [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn with_max_file_bytes(mut self, max: u64) -> Self {
        self.conf.max_file_bytes = max;
        self
    }

    fn fetch_one(&mut self, r: &MessageRef) -> Result<RawMessage, FetchError> {
        let fail = |reason: String| FetchError {
            id: r.id.clone(),
            reason,
        };
        if self.cache.as_ref().is_none_or(|(loc, _)| *loc != r.locator) {
            let items = self.conf.items(&r.locator);
            let by_id = items.into_iter().map(|i| (i.entry.id.clone(), i)).collect();
            self.cache = Some((r.locator.clone(), by_id));
        }
        let Some((_, by_id)) = &self.cache else {
            return Err(fail("internal: no parsed calendar".into()));
        };
        let item = by_id.get(&r.id).ok_or_else(|| {
            fail("the event is no longer in its calendar (it changed since it was listed)".into())
        })?;
        let ics = item.ics.clone().map_err(fail)?;
        if r.version.is_some() && r.version != item.entry.version {
            return Err(fail(
                "the event changed since it was listed; list the calendar again".into(),
            ));
        }
        Ok(RawMessage {
            id: r.id.clone(),
            bytes: ics.into_bytes(),
            folder: item.entry.folder.clone(),
            labels: Vec::new(),
            flags: None,
            version: item.entry.version.clone(),
        })
    }
}

impl Conf {
    /// The calendar files to read, relative to the root, in byte order.
    fn files(&self) -> Result<Vec<PathBuf>, SourceError> {
        check_root(&self.root, true)?;
        if let Some(only) = &self.only {
            let p = self.root.join(only);
            check_root(&p, false)?;
            return Ok(vec![PathBuf::from(only)]);
        }
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(&self.root)
            .follow_links(true)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| !e.file_name().as_encoded_bytes().starts_with(b"."));
        for e in walk {
            let e = match e {
                Ok(e) => e,
                // A link back to an ancestor: skipped, as the tree does.
                Err(e) if e.loop_ancestor().is_some() => continue,
                Err(e) => {
                    let path = e.path().map(Path::to_owned).unwrap_or_default();
                    return Err(match e.into_io_error() {
                        Some(io) => {
                            SourceError::io(format_args!("cannot list {}", path.display()), &io)
                        }
                        None => SourceError::other(format!("cannot list {}", path.display())),
                    });
                }
            };
            if !e.file_type().is_file() {
                continue;
            }
            let path = e.path();
            let wanted = match path.extension() {
                Some(ext) => EXTENSIONS.iter().any(|x| ext.eq_ignore_ascii_case(x)),
                None => sniff(path),
            };
            if wanted && let Ok(rel) = path.strip_prefix(&self.root) {
                out.push(rel.to_owned());
            }
        }
        out.sort_by_key(|p| relative_bytes(p));
        Ok(out)
    }

    /// Lists every file, parsing those not in `old` with the same stamp.
    fn scan(&self, old: Option<&Token>) -> Result<(Snapshot, Token), SourceError> {
        let known: HashMap<&[u8], &FileState> = old
            .map(|t| t.files.iter().map(|f| (f.rel.as_slice(), f)).collect())
            .unwrap_or_default();
        let mut files = Vec::new();
        for rel in self.files()? {
            let rel_b = relative_bytes(&rel);
            let abs = self.root.join(&rel);
            let Ok(meta) = std::fs::metadata(&abs) else {
                continue; // vanished since the walk
            };
            let stamp = Stamp::of(&meta);
            let entries = match known.get(rel_b.as_slice()) {
                Some(f) if !f.racy && f.stamp == stamp && f.size == meta.len() => f.entries.clone(),
                _ => self.items(&rel_b).into_iter().map(|i| i.entry).collect(),
            };
            files.push(FileState {
                rel: rel_b,
                size: meta.len(),
                stamp,
                racy: stamp.is_racy(),
                entries,
            });
        }
        let snapshot = Snapshot::new(files.iter().flat_map(|f| f.entries.clone()).collect());
        let token = Token {
            format: FORMAT,
            kind: KIND.into(),
            files,
        };
        Ok((snapshot, token))
    }

    /// Reads and parses one file into its listed instances. A file that
    /// cannot be read is one item under its path, failing with the reason.
    fn items(&self, rel: &[u8]) -> Vec<Item> {
        let rel_s = String::from_utf8_lossy(rel).into_owned();
        let one = |reason: String| {
            vec![Item {
                entry: Entry {
                    key: rel.to_vec(),
                    id: rel_s.clone(),
                    locator: rel.to_vec(),
                    version: Some(hash(reason.as_bytes())),
                    size: None,
                    folder: None,
                    flags: None,
                },
                ics: Err(reason),
            }]
        };
        let Some(path) = locator_path(rel) else {
            return one("invalid path".into());
        };
        let bytes = match read_file_limited(&self.root.join(&path), self.max_file_bytes) {
            Ok((b, _)) => b,
            Err(reason) => return one(reason),
        };
        let text = String::from_utf8_lossy(&bytes);
        let split = split::split(&text);
        let folder = split
            .name
            .clone()
            .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let instances = expand::instances(&split, &self.window);
        if instances.is_empty() {
            // A calendar of time zones, free/busy or journal entries has
            // nothing to index; a file that is no calendar at all fails.
            let starts = text.trim_start_matches('\u{feff}').trim_start();
            return if starts
                .get(..6)
                .is_some_and(|h| h.eq_ignore_ascii_case("BEGIN:"))
            {
                Vec::new()
            } else {
                one("not an iCalendar file (it does not start with a BEGIN: line)".into())
            };
        }
        let mut items: Vec<Item> = instances
            .into_iter()
            .enumerate()
            .map(|(n, inst)| {
                let mut key = rel.to_vec();
                key.push(0);
                key.extend_from_slice(&(n as u32).to_be_bytes());
                let version = match &inst.ics {
                    Ok(t) => hash(t.as_bytes()),
                    Err(e) => hash(e.as_bytes()),
                };
                Item {
                    entry: Entry {
                        key,
                        id: format!("{rel_s}#{}", inst.id),
                        locator: rel.to_vec(),
                        version: Some(version),
                        size: inst.ics.as_ref().ok().map(|t| t.len() as u64),
                        folder: folder.clone(),
                        flags: None,
                    },
                    ics: inst.ics,
                }
            })
            .collect();
        let mut entries: Vec<Entry> = items.iter().map(|i| i.entry.clone()).collect();
        make_ids_unique(&mut entries, |e| format!("{}~2", e.id));
        for (item, e) in items.iter_mut().zip(entries) {
            item.entry.id = e.id;
        }
        items
    }
}

/// Whether a file without an extension is a calendar, by its first bytes.
fn sniff(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    looks_like_ics(&head[..n])
}

/// A version: hex of the first 16 bytes of SHA-256.
fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Token {
    fn encode(&self) -> Result<SyncToken, SourceError> {
        postcard::to_allocvec(self)
            .map(SyncToken)
            .map_err(|e| SourceError::other(format!("cannot encode the ics sync token: {e}")))
    }

    fn decode(t: &SyncToken) -> Result<Token, SourceError> {
        let bad = |why: &str| SourceError::malformed(format!("ics sync token: {why}"));
        let (tok, rest) =
            postcard::take_from_bytes::<Token>(&t.0).map_err(|_| bad("undecodable"))?;
        if tok.kind != KIND {
            return Err(bad(&format!("written by a {} source", tok.kind)));
        }
        if tok.format != FORMAT {
            return Err(bad(&format!("format {} (expected {FORMAT})", tok.format)));
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(tok)
    }
}

impl Source for Ics {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        if cursor.is_none() {
            // A new pass reads the files again; so does fetch.
            self.cache = None;
        }
        let mut last = self.last.take();
        let conf = &self.conf;
        let page = self.listing.list(cursor, limit, || {
            let (snapshot, token) = conf.scan(last.as_ref())?;
            last = Some(token);
            Ok(snapshot)
        });
        self.last = last;
        page
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter().map(|r| self.fetch_one(r)).collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        let (snapshot, token) = self.conf.scan(self.last.as_ref())?;
        let encoded = token.encode()?;
        self.listing.set(snapshot);
        self.last = Some(token);
        self.cache = None;
        Ok(encoded)
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        let old = Token::decode(since)?;
        let (new, token) = self.conf.scan(Some(&old))?;
        let before = Snapshot::new(old.files.iter().flat_map(|f| f.entries.clone()).collect());
        let changes = diff(&before, &new);
        self.cache = None;
        let unchanged = changes.is_empty()
            && old.files.len() == token.files.len()
            && old
                .files
                .iter()
                .zip(&token.files)
                .all(|(a, b)| a.rel == b.rel && a.stamp == b.stamp && a.racy == b.racy);
        let encoded = if unchanged {
            since.clone()
        } else {
            token.encode()?
        };
        self.listing.set(new);
        self.last = Some(token);
        Ok(Changes {
            changes,
            token: encoded,
        })
    }
}
