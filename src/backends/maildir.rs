//! The Maildir backend: a Maildir or Maildir++ mailbox, one file per message.
//!
//! Layout: the root's `cur/` and `new/` hold the `INBOX`; each Maildir++
//! subfolder is a directory `.Name` beside them with its own `cur/` and
//! `new/`, and `.` in its name separates hierarchy levels (`.Sent` is `Sent`,
//! `.Archive.2020` is `Archive/2020`). Folder names are reported as stored;
//! servers that write modified UTF-7 (`&AOk-`) keep that spelling.
//! `tmp/` holds messages still being delivered and is never read; hidden
//! files in `cur/` and `new/` are skipped, as the Maildir specification says.
//!
//! - **id**: the message's unique name: its file name up to the first `:`
//!   (the `:2,FLAGS` info is not part of it). Flag changes rename the file
//!   and moving it to another folder moves the file, but the unique name
//!   stays, so the message keeps its id and its record in the index. Should
//!   two files share a unique name (a copy made with `cp`), the first in
//!   path order keeps it and the others get `#` and their relative path
//!   appended (`1700000000.M1.host#.Sent/cur/1700000000.M1.host:2,S`).
//!   Once given, an id stays: a later run that finds a new copy gives the
//!   new copy the longer id, whatever its path.
//! - **order**: by id, byte order.
//! - **folder**: `INBOX`, or the subfolder name as above.
//! - **flags**: from the info suffix: `S` (seen) absent means
//!   [`Flags::UNREAD`], `F` means [`Flags::FLAGGED`]; messages in `new/` have
//!   not been seen by any client and are always unread.
//! - **version**: size and modification time. A rename leaves both alone, so
//!   moving a message or changing its flags is reported as
//!   [`Change::Moved`](crate::Change::Moved) or
//!   [`Change::MetadataUpdated`](crate::Change::MetadataUpdated), not as new
//!   content to re-index.
//!
//! Clients rename messages all the time (reading one moves it from `new/` to
//! `cur/` and adds `S`), so a locator may be stale by the time it is fetched.
//! When the file is gone, fetch looks for the same unique name in the same
//! folder's `cur/` and `new/` before giving up.

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::dirs::{Class, Layout, WalkStats, Walker};
use super::snapshot::Entry;
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, locator_path, os_str, read_file_limited,
    relative_bytes, version_string,
};
use crate::record::Flags;
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The kind tag of this backend's names and sync tokens.
const KIND: &str = "maildir";

/// The folder name of the Maildir root.
pub const INBOX: &str = "INBOX";

/// A Maildir or Maildir++ mailbox as a [`Source`]. See the [module
/// documentation](self) for ids, folders and flags.
///
/// ```no_run
/// use sealdex::{Flags, Source};
/// use sealdex::backends::Maildir;
///
/// let mut maildir = Maildir::open("/home/me/Maildir")?;
/// let page = maildir.list(None, 100)?;
/// for message in maildir.fetch(&page.refs).into_iter().flatten() {
///     let unread = message.flags.is_some_and(|f| f.contains(Flags::UNREAD));
///     println!("{} in {:?}, unread: {unread}", message.id, message.folder);
/// }
/// # Ok::<(), sealdex::SourceError>(())
/// ```
#[derive(Debug)]
pub struct Maildir {
    walker: Walker<MaildirLayout>,
    name: String,
    max_message_bytes: u64,
}

impl Maildir {
    /// Opens the Maildir at `root`, which must be a directory. Nothing is
    /// read until the first listing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (root, name) = canonical_root(KIND, root.as_ref(), true)?;
        Ok(Maildir {
            walker: Walker::new(root, MaildirLayout),
            name,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        })
    }

    /// Sets the largest file [`Source::fetch`] will read; larger ones are
    /// refused with a [`FetchError`] without being read. Default:
    /// [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn with_max_message_bytes(mut self, max: u64) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.walker.root
    }

    /// How many directories this source has read and kept unread since it
    /// was opened: for tests and benchmarks of the incremental sync.
    #[doc(hidden)]
    pub fn walk_stats(&self) -> WalkStats {
        self.walker.stats
    }

    /// Reads one message, following a rename within its folder.
    fn fetch_one(&self, r: &MessageRef) -> Result<RawMessage, FetchError> {
        let fail = |reason: String| FetchError {
            id: r.id.clone(),
            reason,
        };
        let rel = locator_path(&r.locator)
            .filter(|p| parse_locator(p).is_some())
            .ok_or_else(|| fail("invalid locator".to_string()))?;
        let rel = match fs::symlink_metadata(self.walker.root.join(&rel)) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                find_renamed(&self.walker.root, &rel).unwrap_or(rel)
            }
            _ => rel,
        };
        let (folder, flags) =
            parse_locator(&rel).ok_or_else(|| fail("invalid locator".to_string()))?;
        let (bytes, version) =
            read_file_limited(&self.walker.root.join(&rel), self.max_message_bytes)
                .map_err(fail)?;
        Ok(RawMessage {
            id: r.id.clone(),
            bytes,
            folder: Some(folder),
            labels: Vec::new(),
            flags: Some(flags),
            version: Some(version),
        })
    }
}

impl Source for Maildir {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        self.walker.list(cursor, limit)
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter().map(|r| self.fetch_one(r)).collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        self.walker.sync_token()
    }

    /// Re-reads only the `cur/` and `new/` directories (and the root and
    /// folder directories) whose stamp changed: see `dirs.rs`. Maildir never
    /// rewrites a message in place, so nothing is missed.
    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        self.walker.changes(since)
    }
}

/// The Maildir's directories and names, for the incremental listing.
#[derive(Debug)]
struct MaildirLayout;

/// Whether `dir` (relative to the root) is a `cur/` or `new/` directory,
/// and if so whether it is `new/`.
fn message_dir(dir: &Path) -> Option<bool> {
    match dir.file_name()?.as_encoded_bytes() {
        b"cur" => Some(false),
        b"new" => Some(true),
        _ => None,
    }
}

impl Layout for MaildirLayout {
    const KIND: &'static str = KIND;

    fn classify(&self, dir: &Path, name: &OsStr, is_dir: bool) -> Class {
        let depth = dir.components().count();
        let cur_or_new = matches!(name.as_encoded_bytes(), b"cur" | b"new");
        if message_dir(dir).is_some() {
            // Hidden files are not messages (the Maildir specification).
            if is_dir || name.as_encoded_bytes().starts_with(b".") {
                Class::Skip
            } else {
                Class::Message
            }
        } else if is_dir && (cur_or_new || (depth == 0 && folder_name(name).is_some())) {
            Class::Descend
        } else {
            Class::Skip
        }
    }

    fn natural_id(&self, _dir: &Path, name: &[u8]) -> String {
        String::from_utf8_lossy(unique_name(name)).into_owned()
    }

    fn alt_id(&self, dir: &Path, name: &[u8], natural: &str) -> String {
        let locator = relative_bytes(&dir.join(os_str(name)));
        format!("{natural}#{}", String::from_utf8_lossy(&locator))
    }

    fn entry(&self, dir: &Path, name: &[u8], id: String, size: u64, mtime: i128) -> Entry {
        let folder = match dir.parent().and_then(Path::file_name) {
            Some(f) => folder_name(f).unwrap_or_else(|| INBOX.to_string()),
            None => INBOX.to_string(),
        };
        Entry {
            key: id.as_bytes().to_vec(),
            id,
            locator: relative_bytes(&dir.join(os_str(name))),
            version: Some(version_string(size, mtime)),
            size: Some(size),
            folder: Some(folder),
            flags: Some(flags_of(message_dir(dir).unwrap_or(false), name)),
        }
    }
}

/// The folder name of a Maildir++ subfolder directory name, `None` for a
/// name that is not a subfolder (`.`, `..`, no leading dot).
fn folder_name(dir: &OsStr) -> Option<String> {
    let name = dir.to_string_lossy();
    let inner = name.strip_prefix('.')?;
    if inner.is_empty() || inner == "." {
        return None;
    }
    Some(inner.replace('.', "/"))
}

/// The unique name of a message file: its name up to the first `:`.
fn unique_name(file_name: &[u8]) -> &[u8] {
    file_name.split(|&b| b == b':').next().unwrap_or(file_name)
}

/// The flags a message file's location and name stand for.
fn flags_of(in_new: bool, file_name: &[u8]) -> Flags {
    let info = file_name
        .windows(3)
        .position(|w| w == b":2,")
        .map_or(&[][..], |i| &file_name[i + 3..]);
    let mut flags = Flags::empty();
    flags.set(Flags::UNREAD, in_new || !info.contains(&b'S'));
    flags.set(Flags::FLAGGED, info.contains(&b'F'));
    flags
}

/// The folder and flags of a message from its locator
/// (`cur/NAME`, `.Sent/new/NAME`), or `None` if the locator is not of that
/// shape.
fn parse_locator(rel: &Path) -> Option<(String, Flags)> {
    let parts: Vec<&OsStr> = rel.iter().collect();
    let (folder, sub, file) = match parts.as_slice() {
        [sub, file] => (INBOX.to_string(), *sub, *file),
        [dir, sub, file] => (folder_name(dir)?, *sub, *file),
        _ => return None,
    };
    let in_new = match sub.as_encoded_bytes() {
        b"new" => true,
        b"cur" => false,
        _ => return None,
    };
    Some((folder, flags_of(in_new, file.as_encoded_bytes())))
}

/// Where a message whose file is gone from `rel` went within its folder (a
/// client renamed it to change flags, or moved it from `new/` to `cur/`).
fn find_renamed(root: &Path, rel: &Path) -> Option<PathBuf> {
    let file = rel.file_name()?;
    let unique = unique_name(file.as_encoded_bytes());
    let folder_dir = rel.parent()?.parent()?;
    ["cur", "new"].into_iter().find_map(|sub| {
        let dir = folder_dir.join(sub);
        fs::read_dir(root.join(&dir)).ok()?.flatten().find_map(|d| {
            let name = d.file_name();
            (unique_name(name.as_encoded_bytes()) == unique).then(|| dir.join(&name))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags() {
        assert_eq!(folder_name(OsStr::new(".Sent")).as_deref(), Some("Sent"));
        assert_eq!(
            folder_name(OsStr::new(".Archive.2020")).as_deref(),
            Some("Archive/2020")
        );
        assert_eq!(folder_name(OsStr::new("..")), None);
        assert_eq!(folder_name(OsStr::new("cur")), None);
        assert_eq!(unique_name(b"123.M1.host:2,FS"), b"123.M1.host");
        assert_eq!(unique_name(b"123.M1.host"), b"123.M1.host");
        assert_eq!(flags_of(false, b"x:2,S"), Flags::empty());
        assert_eq!(flags_of(false, b"x:2,FS"), Flags::FLAGGED);
        assert_eq!(flags_of(false, b"x:2,"), Flags::UNREAD);
        assert_eq!(flags_of(true, b"x"), Flags::UNREAD);
        assert_eq!(flags_of(true, b"x:2,S"), Flags::UNREAD);
        assert_eq!(
            parse_locator(Path::new(".Archive.2020/cur/x:2,S")),
            Some(("Archive/2020".to_string(), Flags::empty()))
        );
        assert_eq!(parse_locator(Path::new("tmp/x")), None);
        assert_eq!(parse_locator(Path::new("a/b/c/d")), None);
    }
}
