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

use super::snapshot::{Entry, Listing, Snapshot, make_ids_unique};
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, check_root, file_version, locator_path,
    read_file_limited, relative_bytes,
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
    root: PathBuf,
    name: String,
    max_message_bytes: u64,
    listing: Listing,
}

impl Maildir {
    /// Opens the Maildir at `root`, which must be a directory. Nothing is
    /// read until the first listing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (root, name) = canonical_root(KIND, root.as_ref(), true)?;
        Ok(Maildir {
            root,
            name,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            listing: Listing::default(),
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
        &self.root
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
        let rel = match fs::symlink_metadata(self.root.join(&rel)) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                find_renamed(&self.root, &rel).unwrap_or(rel)
            }
            _ => rel,
        };
        let (folder, flags) =
            parse_locator(&rel).ok_or_else(|| fail("invalid locator".to_string()))?;
        let (bytes, version) =
            read_file_limited(&self.root.join(&rel), self.max_message_bytes).map_err(fail)?;
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
        self.listing.list(cursor, limit, || scan(&self.root))
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter().map(|r| self.fetch_one(r)).collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        self.listing.sync_token(KIND, || scan(&self.root))
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        self.listing.changes(KIND, since, || scan(&self.root))
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

/// Lists every message of the Maildir once and returns the sorted snapshot.
fn scan(root: &Path) -> Result<Snapshot, SourceError> {
    check_root(root, true)?;
    let list_err = |path: &Path, e: std::io::Error| {
        SourceError::io(format_args!("cannot list {}", path.display()), &e)
    };
    // (relative folder directory, folder name): the root first, then every
    // Maildir++ subfolder.
    let mut folders: Vec<(PathBuf, String)> = vec![(PathBuf::new(), INBOX.to_string())];
    for d in fs::read_dir(root).map_err(|e| list_err(root, e))? {
        let d = d.map_err(|e| list_err(root, e))?;
        let Some(name) = folder_name(&d.file_name()) else {
            continue;
        };
        if d.path().is_dir() {
            folders.push((PathBuf::from(d.file_name()), name));
        }
    }
    let mut entries = Vec::new();
    for (dir, folder) in &folders {
        for sub in ["cur", "new"] {
            let rel_dir = dir.join(sub);
            let abs_dir = root.join(&rel_dir);
            let reader = match fs::read_dir(&abs_dir) {
                Ok(r) => r,
                // A folder without cur/ or new/ (or a dot-directory that is
                // not a folder at all) has no messages there.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(list_err(&abs_dir, e)),
            };
            for d in reader {
                let d = d.map_err(|e| list_err(&abs_dir, e))?;
                let file_name = d.file_name();
                let name = file_name.as_encoded_bytes();
                if name.starts_with(b".") {
                    continue;
                }
                // Follows a symlinked message, as a mail client would.
                let meta = match fs::metadata(d.path()) {
                    Ok(m) => m,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(list_err(&d.path(), e)),
                };
                if !meta.is_file() {
                    continue;
                }
                let locator = relative_bytes(&rel_dir.join(&file_name));
                entries.push(Entry {
                    key: Vec::new(),
                    id: String::from_utf8_lossy(unique_name(name)).into_owned(),
                    locator,
                    version: Some(file_version(&meta)),
                    size: Some(meta.len()),
                    folder: Some(folder.clone()),
                    flags: Some(flags_of(sub == "new", name)),
                });
            }
        }
    }
    entries.sort_unstable_by(|a, b| a.id.cmp(&b.id).then_with(|| a.locator.cmp(&b.locator)));
    make_ids_unique(&mut entries, |e| {
        format!("{}#{}", e.id, String::from_utf8_lossy(&e.locator))
    });
    for e in &mut entries {
        e.key = e.id.as_bytes().to_vec();
    }
    Ok(Snapshot::new(entries))
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
