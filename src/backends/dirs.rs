//! Incremental directory listings: the sync token of the Maildir and tree
//! backends, and the change detection that re-lists only the directories
//! whose stamp changed.
//!
//! # Why per directory
//!
//! A token that is the whole listing (format 1 was: every message's id,
//! locator, version, folder and flags, about 200 bytes each) makes every
//! run cost O(messages): decode the token, stat every file, diff, encode it
//! again. At a million messages that is 200 MB and a million `stat` calls
//! to learn that nothing happened.
//!
//! A directory's modification time changes whenever a name is created,
//! removed or renamed in it. Maildir never edits a message in place (a
//! delivery, a flag change, a move and an expunge are each a create, a
//! rename or an unlink in `cur/` or `new/`), so an unchanged directory
//! stamp ([`Stamp`]: device, inode, mtime and ctime) means an unchanged set
//! of messages. [`refresh`] therefore stats every known directory (one call
//! each) and reads and re-stats files only in the directories whose stamp
//! differs; a no-change run costs O(directories) system calls.
//!
//! For a directory tree the same rule misses one change: a file rewritten in
//! place, under the same name, leaves its directory's mtime alone (an editor
//! that saves through a temporary file and a rename does not). Exported mail
//! and corpora are written once, so the tree backend takes this trade by
//! default and documents it; [`crate::backends::Tree::with_full_rescan`]
//! re-lists and re-stats every directory on each run instead, which is what
//! format 1 always did.
//!
//! Racy stamps: an mtime has the file system's granularity (a clock tick on
//! Linux, 2 s on FAT), so a change in the same tick as a listing could leave
//! the stamp equal. A directory whose mtime is within a few seconds of the
//! clock when it is listed is marked racy and listed again on the next run,
//! as git does with racily clean index entries.
//!
//! # The token, and what it costs in bytes
//!
//! The token must let a later run diff a changed directory against what was
//! in it, so it still holds every directory's listing, but in a form that
//! needs no decoding for the directories that did not change:
//!
//! ```text
//! header: postcard { format: 2, kind, dirs: [ { path, stamp, racy, chunk length } ] }
//! chunks: one per directory, in header order: postcard [ { name, id if not the
//!         natural one, size, mtime } ]
//! ```
//!
//! A run decodes only the header (O(directories)), copies the chunks of
//! unchanged directories byte for byte, and decodes only the chunks of the
//! directories it re-lists. The chunks hold a file name, its size and mtime:
//! the id, locator, folder and flags are derived from the directory and the
//! name, so a Maildir message costs about 43 bytes instead of about 200.
//! Measured with `benches/sync_tokens.rs` (synthetic Maildir in 6 folders,
//! tmpfs): at a million messages the token is 42.9 MB (8.1 MB after zstd),
//! a no-change run reads no directory and takes 7 ms (most of it copying
//! the token it returns), one delivery re-reads one directory in 0.35 s,
//! where a full listing takes 13.8 s.
//! When nothing changed, [`refresh`] returns the token it was given,
//! byte-identical, so that the caller can tell there is nothing to store.
//! What stays O(messages) is the caller's part: the store keeps the token as
//! one sealed blob, so it reads and authenticates those bytes each run
//! (at a million messages, tens of MB of AES-GCM: tens of milliseconds).
//!
//! One more O(messages) step happens only when a directory has a message
//! under a name it did not have before (a delivery or a move): its id must
//! not clash with an id elsewhere (two copies of one Maildir message), so the
//! chunks of unchanged directories are decoded, in memory and without
//! system calls, to learn their ids.
//!
//! # Ids
//!
//! A message's id is its backend's natural id (the Maildir unique name, the
//! tree's relative path) unless another message already has it; then it gets
//! the backend's alternative id, which the chunk stores. On a fresh listing,
//! the first in (natural id, locator) order keeps the natural id. On an
//! incremental run, messages whose directory and name are unchanged keep
//! their id, and a new name gets the natural id if no message has it: ids do
//! not move from one copy to another because a third one changed.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::snapshot::{Entry, Listing, Snapshot, Stamp, diff};
use super::{mtime_nanos, os_str, relative_bytes};
use crate::source::{Changes, Cursor, Page, SourceError, SyncToken};

/// The token format this module writes. Format 1 was the whole listing
/// (see `snapshot.rs`); it is still read, and diffed against a full
/// listing, so an index synced by an older build carries on.
pub(crate) const FORMAT: u8 = 2;

/// How deep a walk goes: a backstop against a symbolic link loop where the
/// platform gives no inode to detect it by.
const MAX_DEPTH: usize = 256;

/// What a backend does with a name found in a directory it lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A regular file that is a message.
    Message,
    /// A directory to list too.
    Descend,
    /// Neither.
    Skip,
}

/// How a backend lays out its messages in directories.
pub(crate) trait Layout {
    /// The kind tag of the backend's names and tokens.
    const KIND: &'static str;

    /// What `name`, found in the directory `dir` (relative to the root), is.
    fn classify(&self, dir: &Path, name: &OsStr, is_dir: bool) -> Class;

    /// The id a message file has unless another message has it first.
    fn natural_id(&self, dir: &Path, name: &[u8]) -> String;

    /// The id it has when the natural one is taken.
    fn alt_id(&self, dir: &Path, name: &[u8], natural: &str) -> String;

    /// The listing entry of a message file.
    fn entry(&self, dir: &Path, name: &[u8], id: String, size: u64, mtime: i128) -> Entry;
}

/// One message file of a listed directory, as the token keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileRec {
    /// The file name (raw bytes).
    name: Vec<u8>,
    /// The id, when it is not the natural one.
    id: Option<String>,
    /// Size in bytes.
    size: u64,
    /// Modification time, nanoseconds.
    mtime: i128,
}

/// One directory in the token's header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DirRec {
    /// Path relative to the root (raw bytes, `/`-separated; empty: the root).
    path: Vec<u8>,
    /// The directory's stamp when it was listed.
    stamp: Stamp,
    /// Listed within the racy window: list again next time.
    racy: bool,
    /// Length in bytes of its chunk.
    len: u64,
}

/// The token's header.
#[derive(Serialize, Deserialize)]
struct Header {
    format: u8,
    kind: String,
    dirs: Vec<DirRec>,
}

/// A decoded token: the header, and where each directory's chunk is.
struct OldToken<'t> {
    dirs: Vec<DirRec>,
    chunks: Vec<&'t [u8]>,
}

impl<'t> OldToken<'t> {
    /// Reads the header of a format-2 token of `kind` and locates the chunks
    /// (decoding none of them).
    fn parse(bytes: &'t [u8], kind: &str) -> Result<Self, SourceError> {
        let bad = |why: &str| SourceError::malformed(format!("{kind} sync token: {why}"));
        let (format, k) = postcard::take_from_bytes::<(u8, String)>(bytes)
            .map(|(t, _)| t)
            .map_err(|_| bad("undecodable"))?;
        if k != kind {
            return Err(bad(&format!("written by a {k} source")));
        }
        if format != FORMAT {
            return Err(bad(&format!(
                "format {format} is not one this build reads; list the source again"
            )));
        }
        let (h, mut rest) =
            postcard::take_from_bytes::<Header>(bytes).map_err(|_| bad("undecodable"))?;
        if h.format != FORMAT {
            return Err(bad(&format!("format {} (expected {FORMAT})", h.format)));
        }
        if h.kind != kind {
            return Err(bad(&format!("written by a {} source", h.kind)));
        }
        let mut chunks = Vec::with_capacity(h.dirs.len());
        for d in &h.dirs {
            let len = usize::try_from(d.len)
                .ok()
                .filter(|&l| l <= rest.len())
                .ok_or_else(|| bad("truncated"))?;
            let (chunk, tail) = rest.split_at(len);
            chunks.push(chunk);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(OldToken {
            dirs: h.dirs,
            chunks,
        })
    }

    /// The file records of directory `i`.
    fn files(&self, i: usize, kind: &str) -> Result<Vec<FileRec>, SourceError> {
        postcard::from_bytes(self.chunks[i]).map_err(|_| {
            SourceError::malformed(format!("{kind} sync token: undecodable directory listing"))
        })
    }
}

/// A directory found by a walk.
struct Dir {
    /// Relative path.
    rel: PathBuf,
    stamp: Stamp,
    racy: bool,
    /// Its files: listed now, or kept from the old token (index of its chunk).
    files: Files,
    /// Its index in the old token, if it was there.
    old: Option<usize>,
}

enum Files {
    Listed(Vec<Listed>),
    Kept(usize),
}

/// A file found by listing a directory now.
struct Listed {
    name: Vec<u8>,
    size: u64,
    mtime: i128,
}

/// The result of a walk.
struct Walk {
    /// Every directory reached, sorted by path.
    dirs: Vec<Dir>,
    /// Indexes (in the old token) of directories no longer reached.
    removed: Vec<usize>,
}

/// Counts of the work a walk did, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Directories whose entries were read (`read_dir`).
    pub dirs_read: u64,
    /// Directories whose stamp matched, so they were not read.
    pub dirs_kept: u64,
}

/// Walks the directories under `root`: every directory is stat'ed; it is
/// read only when `old` has no unchanged, non-racy stamp for it (or
/// `force`). Fails as a whole when a directory cannot be read, as the
/// backends' failure policy says.
fn walk<L: Layout>(
    root: &Path,
    layout: &L,
    old: Option<&OldToken<'_>>,
    force: bool,
    stats: &mut WalkStats,
) -> Result<Walk, SourceError> {
    let old_index: HashMap<&[u8], usize> = old.map_or_else(HashMap::new, |o| {
        o.dirs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.path.as_slice(), i))
            .collect()
    });
    // The children of each old directory, to walk on from one that is kept.
    let mut old_children: HashMap<Vec<u8>, Vec<PathBuf>> = HashMap::new();
    if let Some(o) = old {
        for d in &o.dirs {
            if let Some(p) = super::locator_path(&d.path) {
                let parent = relative_bytes(p.parent().unwrap_or(Path::new("")));
                old_children.entry(parent).or_default().push(p);
            }
        }
    }
    let mut visited: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_old = vec![false; old.map_or(0, |o| o.dirs.len())];
    let mut dirs = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        let is_root = rel.as_os_str().is_empty();
        let meta = match fs::metadata(&abs) {
            Ok(m) => m,
            // A subdirectory that vanished since its parent was read (or
            // since the old token) is simply not there any more.
            Err(e) if e.kind() == ErrorKind::NotFound && !is_root => continue,
            Err(e) => {
                return Err(SourceError::io(
                    format_args!("cannot list {}", abs.display()),
                    &e,
                ));
            }
        };
        if !meta.is_dir() {
            if is_root {
                return Err(SourceError::not_found(format!(
                    "{} is no longer a directory",
                    abs.display()
                )));
            }
            continue;
        }
        if rel.components().count() > MAX_DEPTH {
            tracing::warn!(path = ?abs, "skipping a directory nested deeper than {MAX_DEPTH}");
            continue;
        }
        let stamp = Stamp::of(&meta);
        // A second way to the same directory (a symbolic link back to an
        // ancestor, or two links to one place) is not walked again: that
        // keeps the walk finite and lists each message once.
        if let Some(id) = stamp.identity()
            && !visited.insert(id)
        {
            if rel.components().count() > 0 {
                tracing::warn!(path = ?abs, "skipping a directory reached twice (a symbolic link loop?)");
            }
            continue;
        }
        let key = relative_bytes(&rel);
        let old_i = old_index.get(key.as_slice()).copied();
        if let Some(i) = old_i {
            seen_old[i] = true;
        }
        let unchanged = old_i
            .and_then(|i| old.map(|o| &o.dirs[i]))
            .is_some_and(|d| !force && !d.racy && d.stamp == stamp);
        if unchanged {
            stats.dirs_kept += 1;
            let i = old_i.unwrap_or_default();
            if let Some(children) = old_children.get(&key) {
                stack.extend(children.iter().rev().cloned());
            }
            dirs.push(Dir {
                rel,
                stamp,
                racy: false,
                files: Files::Kept(i),
                old: old_i,
            });
            continue;
        }
        // Stat'ed before reading, so a change during the read moves the
        // mtime past the stamp kept (or within the racy window).
        stats.dirs_read += 1;
        let racy = stamp.is_racy();
        let read_err =
            |e: std::io::Error| SourceError::io(format_args!("cannot list {}", abs.display()), &e);
        let mut files = Vec::new();
        let mut children = Vec::new();
        for d in fs::read_dir(&abs).map_err(read_err)? {
            let d = d.map_err(read_err)?;
            let name = d.file_name();
            // Follows symbolic links, as a mail client would.
            let m = match fs::metadata(d.path()) {
                Ok(m) => m,
                // Gone since the read, or a dangling link: not there.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(read_err(e)),
            };
            match layout.classify(&rel, &name, m.is_dir()) {
                Class::Message if m.is_file() => files.push(Listed {
                    name: name.as_encoded_bytes().to_vec(),
                    size: m.len(),
                    mtime: mtime_nanos(&m),
                }),
                Class::Descend if m.is_dir() => children.push(rel.join(&name)),
                _ => {}
            }
        }
        files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        children.sort_unstable();
        stack.extend(children.into_iter().rev());
        dirs.push(Dir {
            rel,
            stamp,
            racy,
            files: Files::Listed(files),
            old: old_i,
        });
    }
    dirs.sort_by_cached_key(|d| relative_bytes(&d.rel));
    let removed = seen_old
        .iter()
        .enumerate()
        .filter(|(_, seen)| !**seen)
        .map(|(i, _)| i)
        .collect();
    Ok(Walk { dirs, removed })
}

/// Gives every listed file an id. `keep` holds the ids files had in the old
/// token, by (directory index, name); `taken` is filled lazily with the ids
/// of files in kept directories, only if a new name needs checking.
fn assign_ids<L: Layout>(
    layout: &L,
    dirs: &[Dir],
    keep: &HashMap<(usize, Vec<u8>), String>,
    taken_elsewhere: impl FnOnce(&HashSet<&str>) -> Result<HashSet<String>, SourceError>,
) -> Result<Vec<Vec<String>>, SourceError> {
    let mut ids: Vec<Vec<String>> = Vec::with_capacity(dirs.len());
    let mut taken: HashSet<String> = HashSet::new();
    // (natural id, locator, dir, file) of names that need an id.
    let mut fresh: Vec<(String, Vec<u8>, usize, usize)> = Vec::new();
    for (di, d) in dirs.iter().enumerate() {
        let Files::Listed(files) = &d.files else {
            ids.push(Vec::new());
            continue;
        };
        let mut dir_ids = vec![String::new(); files.len()];
        for (fi, f) in files.iter().enumerate() {
            let kept = if keep.is_empty() {
                None
            } else {
                keep.get(&(di, f.name.clone()))
            };
            if let Some(id) = kept {
                dir_ids[fi] = id.clone();
                taken.insert(id.clone());
            } else {
                let natural = layout.natural_id(&d.rel, &f.name);
                let locator = relative_bytes(&d.rel.join(os_str(&f.name)));
                fresh.push((natural, locator, di, fi));
            }
        }
        ids.push(dir_ids);
    }
    if fresh.is_empty() {
        return Ok(ids);
    }
    let wanted: HashSet<&str> = fresh.iter().map(|f| f.0.as_str()).collect();
    let elsewhere = taken_elsewhere(&wanted)?;
    taken.extend(elsewhere);
    fresh.sort_unstable();
    for (natural, _, di, fi) in fresh {
        let id = if taken.contains(&natural) {
            let Files::Listed(files) = &dirs[di].files else {
                continue;
            };
            let base = layout.alt_id(&dirs[di].rel, &files[fi].name, &natural);
            let mut id = base.clone();
            let mut n = 2u64;
            while taken.contains(&id) {
                id = format!("{base}#{n}");
                n += 1;
            }
            id
        } else {
            natural
        };
        taken.insert(id.clone());
        ids[di][fi] = id;
    }
    Ok(ids)
}

/// Encodes the token for `dirs`, with the listed directories' ids, copying
/// kept chunks from `old`.
fn encode<L: Layout>(
    layout: &L,
    dirs: &[Dir],
    ids: &[Vec<String>],
    old: Option<&OldToken<'_>>,
) -> Result<SyncToken, SourceError> {
    let enc_err =
        |e: postcard::Error| SourceError::other(format!("cannot encode the sync token: {e}"));
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(dirs.len());
    let mut header = Header {
        format: FORMAT,
        kind: L::KIND.to_string(),
        dirs: Vec::with_capacity(dirs.len()),
    };
    for (d, dir_ids) in dirs.iter().zip(ids) {
        let chunk = match (&d.files, old) {
            (Files::Kept(i), Some(o)) => o.chunks[*i].to_vec(),
            (Files::Kept(_), None) => Vec::new(),
            (Files::Listed(files), _) => {
                let recs: Vec<FileRec> = files
                    .iter()
                    .zip(dir_ids)
                    .map(|(f, id)| FileRec {
                        id: (*id != layout.natural_id(&d.rel, &f.name)).then(|| id.clone()),
                        name: f.name.clone(),
                        size: f.size,
                        mtime: f.mtime,
                    })
                    .collect();
                postcard::to_allocvec(&recs).map_err(enc_err)?
            }
        };
        header.dirs.push(DirRec {
            path: relative_bytes(&d.rel),
            stamp: d.stamp,
            racy: d.racy,
            len: chunk.len() as u64,
        });
        chunks.push(chunk);
    }
    let mut out = postcard::to_allocvec(&header).map_err(enc_err)?;
    for c in chunks {
        out.extend_from_slice(&c);
    }
    Ok(SyncToken(out))
}

/// The entries of one old directory's chunk.
fn old_entries<L: Layout>(
    layout: &L,
    old: &OldToken<'_>,
    i: usize,
) -> Result<Vec<Entry>, SourceError> {
    let rel = dir_path(&old.dirs[i].path, L::KIND)?;
    Ok(old
        .files(i, L::KIND)?
        .into_iter()
        .map(|f| {
            let id = f.id.unwrap_or_else(|| layout.natural_id(&rel, &f.name));
            layout.entry(&rel, &f.name, id, f.size, f.mtime)
        })
        .collect())
}

/// The relative directory a token names, refusing one that would leave the
/// root.
fn dir_path(bytes: &[u8], kind: &str) -> Result<PathBuf, SourceError> {
    if bytes.is_empty() {
        return Ok(PathBuf::new());
    }
    super::locator_path(bytes)
        .ok_or_else(|| SourceError::malformed(format!("{kind} sync token: invalid directory")))
}

/// A full listing: every directory read. Returns the snapshot (for paging)
/// and the token.
pub(crate) fn full<L: Layout>(
    root: &Path,
    layout: &L,
    stats: &mut WalkStats,
) -> Result<(Snapshot, SyncToken), SourceError> {
    let w = walk(root, layout, None, true, stats)?;
    let ids = assign_ids(layout, &w.dirs, &HashMap::new(), |_| Ok(HashSet::new()))?;
    let token = encode(layout, &w.dirs, &ids, None)?;
    Ok((listed_snapshot(layout, &w.dirs, &ids), token))
}

/// The entries of the directories a walk read.
fn listed_snapshot<L: Layout>(layout: &L, dirs: &[Dir], ids: &[Vec<String>]) -> Snapshot {
    let mut entries = Vec::new();
    for (d, dir_ids) in dirs.iter().zip(ids) {
        if let Files::Listed(files) = &d.files {
            entries.extend(
                files
                    .iter()
                    .zip(dir_ids)
                    .map(|(f, id)| layout.entry(&d.rel, &f.name, id.clone(), f.size, f.mtime)),
            );
        }
    }
    Snapshot::new(entries)
}

/// One directory tree listed through a [`Layout`]: what the tree, Maildir
/// and drive sources share. It owns the root, the listing that pages are
/// cut from, the walk's counters and the rescan policy, and answers
/// [`Source::list`](crate::Source::list),
/// [`Source::sync_token`](crate::Source::sync_token) and
/// [`Source::changes`](crate::Source::changes) for them; each source
/// keeps only what is its own (its name, its size limit, how it reads a
/// file).
#[derive(Debug)]
pub(crate) struct Walker<L> {
    /// The canonical root directory.
    pub root: PathBuf,
    /// Which names are messages, folders or skipped.
    pub layout: L,
    /// Whether [`Walker::changes`] re-reads every directory and re-stats
    /// every file (see `Tree::with_full_rescan`).
    pub full_rescan: bool,
    /// What the walks read and kept unread, for tests and benchmarks.
    pub stats: WalkStats,
    listing: Listing,
}

impl<L: Layout> Walker<L> {
    /// A walker of `root`; nothing is read until the first listing.
    pub fn new(root: PathBuf, layout: L) -> Self {
        Walker {
            root,
            layout,
            full_rescan: false,
            stats: WalkStats::default(),
            listing: Listing::default(),
        }
    }

    /// A page of the listing: a new walk when `cursor` is `None`.
    pub fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let (root, layout, stats) = (&self.root, &self.layout, &mut self.stats);
        self.listing.list(cursor, limit, || {
            super::check_root(root, true)?;
            Ok(full(root, layout, stats)?.0)
        })
    }

    /// A full walk's token; its listing is kept for the pages that follow.
    pub fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        super::check_root(&self.root, true)?;
        let (snapshot, token) = full(&self.root, &self.layout, &mut self.stats)?;
        self.listing.set(snapshot);
        Ok(token)
    }

    /// What changed since `since` (see [`refresh`]).
    pub fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        super::check_root(&self.root, true)?;
        self.listing.clear();
        refresh(
            &self.root,
            &self.layout,
            since,
            self.full_rescan,
            &mut self.stats,
        )
    }
}

/// What changed since `since`, reading only the directories whose stamp
/// changed (all of them with `force`). A format-1 token (a whole listing) is
/// diffed against a full listing and answered with a format-2 token.
pub(crate) fn refresh<L: Layout>(
    root: &Path,
    layout: &L,
    since: &SyncToken,
    force: bool,
    stats: &mut WalkStats,
) -> Result<Changes, SourceError> {
    if since.0.first() == Some(&super::snapshot::FORMAT_1) {
        let (old, _) = Snapshot::from_token(since, L::KIND)?;
        let (new, token) = full(root, layout, stats)?;
        return Ok(Changes {
            changes: diff(&old, &new),
            token,
        });
    }
    let old = OldToken::parse(&since.0, L::KIND)?;
    let w = walk(root, layout, Some(&old), force, stats)?;
    let changed = w.dirs.iter().any(|d| matches!(d.files, Files::Listed(_)));
    if !changed && w.removed.is_empty() {
        // Every directory kept, in the same order: the token is unchanged.
        return Ok(Changes {
            changes: Vec::new(),
            token: since.clone(),
        });
    }
    // What the re-listed and the removed directories held before.
    let mut before = Vec::new();
    let mut keep: HashMap<(usize, Vec<u8>), String> = HashMap::new();
    for (di, d) in w.dirs.iter().enumerate() {
        if let (Files::Listed(_), Some(i)) = (&d.files, d.old) {
            let rel = dir_path(&old.dirs[i].path, L::KIND)?;
            for f in old.files(i, L::KIND)? {
                let id =
                    f.id.clone()
                        .unwrap_or_else(|| layout.natural_id(&rel, &f.name));
                keep.insert((di, f.name.clone()), id.clone());
                before.push(layout.entry(&rel, &f.name, id, f.size, f.mtime));
            }
        }
    }
    for &i in &w.removed {
        before.extend(old_entries(layout, &old, i)?);
    }
    // Only names that are in `keep` are the same files in the same place;
    // a name missing from its directory's old listing is new there.
    // Which of the ids wanted for new names files in kept directories have:
    // their chunks are decoded (in memory), but no entry is built.
    let ids = assign_ids(layout, &w.dirs, &keep, |wanted| {
        let mut taken = HashSet::new();
        for d in &w.dirs {
            if let Files::Kept(i) = d.files {
                for f in old.files(i, L::KIND)? {
                    let id = f.id.unwrap_or_else(|| layout.natural_id(&d.rel, &f.name));
                    if wanted.contains(id.as_str()) {
                        taken.insert(id);
                    }
                }
            }
        }
        Ok(taken)
    })?;
    let after = listed_snapshot(layout, &w.dirs, &ids);
    let token = encode(layout, &w.dirs, &ids, Some(&old))?;
    Ok(Changes {
        changes: diff(&Snapshot::new(before), &after),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file is a message, every directory is walked: the tree's rules.
    struct All;

    impl Layout for All {
        const KIND: &'static str = "test";
        fn classify(&self, _: &Path, _: &OsStr, is_dir: bool) -> Class {
            if is_dir {
                Class::Descend
            } else {
                Class::Message
            }
        }
        fn natural_id(&self, _: &Path, name: &[u8]) -> String {
            String::from_utf8_lossy(name).into_owned()
        }
        fn alt_id(&self, dir: &Path, _: &[u8], natural: &str) -> String {
            format!("{natural}#{}", dir.display())
        }
        fn entry(&self, dir: &Path, name: &[u8], id: String, size: u64, mtime: i128) -> Entry {
            let locator = relative_bytes(&dir.join(os_str(name)));
            Entry {
                key: locator.clone(),
                id,
                locator,
                version: Some(super::super::version_string(size, mtime)),
                size: Some(size),
                folder: Some(dir.display().to_string()),
                flags: None,
            }
        }
    }

    #[test]
    fn token_round_trip_and_rejects() {
        let dir = tempfile::TempDir::new().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/x"), b"1").unwrap();
        fs::write(dir.path().join("a/b/x"), b"2").unwrap();
        let mut stats = WalkStats::default();
        let (snap, token) = full(dir.path(), &All, &mut stats).unwrap();
        assert_eq!(stats.dirs_read, 3);
        let ids: Vec<String> = snap.page(None, 10).refs.into_iter().map(|r| r.id).collect();
        // Same natural id "x" twice: the first in (id, locator) order,
        // a/b/x, keeps it.
        assert_eq!(ids, ["x", "x#a"]);
        let t = OldToken::parse(&token.0, "test").unwrap();
        assert_eq!(t.dirs.len(), 3);
        assert!(OldToken::parse(&token.0, "tree").is_err());
        for n in 0..token.0.len() {
            let cut = SyncToken(token.0[..n].to_vec());
            assert!(refresh(dir.path(), &All, &cut, false, &mut stats).is_err());
        }
        let mut long = token.0.clone();
        long.push(0);
        assert!(OldToken::parse(&long, "test").is_err());
    }
}
