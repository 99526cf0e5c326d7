//! Real message sources: Maildir, mbox, a directory tree of RFC 822 files,
//! and an IMAP account ([`imap`], feature `imap`).
//!
//! Each backend implements [`Source`] over local files:
//!
//! | backend | message id | version | folder | flags |
//! |---|---|---|---|---|
//! | [`Tree`] | path relative to the root | size + mtime | parent directory | none |
//! | [`Maildir`] | the Maildir unique name | size + mtime | `INBOX`, `Sent`, `Archive/2020` | from the file name |
//! | [`Mbox`] | the Message-ID | content hash | none | none (in the headers) |
//!
//! [`open_path`] picks the right one for a path.
//!
//! # How listing, tokens and changes work
//!
//! A backend walks its files once per listing pass (a [`Source::list`] call
//! without a cursor), sorts what it found by a stable key and caches that
//! snapshot; later pages are cut from the cache, so paging through 6,000 files
//! 256 at a time walks the tree once, not 24 times. The cursor is the key of
//! the last message handed out, so a pass resumed in a new process (with no
//! cache) walks once and continues exactly after it.
//!
//! [`Source::changes`] must not cost a walk of every file, or a no-change
//! run over a million messages would cost a million `stat` calls and a
//! token of 200 MB. The Maildir and tree tokens are per directory
//! (`dirs.rs`): each directory's stamp (inode, mtime, ctime) and a compact
//! listing of its files; a run stats the directories and re-reads only
//! those whose stamp changed, and returns the token it was given,
//! byte-identical, when none did. Maildir never rewrites a message in place,
//! so nothing is missed; a tree can be (a file edited under its name), which
//! [`Tree::with_full_rescan`] covers at O(files). The mbox token is the
//! listing with the file's stamp: an unchanged mbox is not read. The diff
//! rules are shared by all three backends (`snapshot.rs`).

//! # Failure policy
//!
//! A message that cannot be read (vanished, unreadable, larger than
//! `max_message_bytes`) is an `Err` entry of [`Source::fetch`], never a failed
//! batch. A listing that cannot be completed (root missing, a directory that
//! cannot be read) fails as a whole instead of returning a partial list:
//! a partial list would make [`Source::changes`] report every missing message
//! as deleted, and an unmounted disk would empty the index.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::source::{Source, SourceError};

mod dirs;
#[cfg(feature = "drive")]
pub mod drive;
#[cfg(feature = "calendar")]
pub mod ics;
#[cfg(feature = "imap")]
pub mod imap;
pub mod maildir;
pub mod mbox;
mod snapshot;
pub mod tree;

#[doc(hidden)]
pub use dirs::WalkStats;
#[cfg(feature = "drive")]
pub use drive::Drive;
#[cfg(feature = "calendar")]
pub use ics::Ics;
pub use maildir::Maildir;
pub use mbox::Mbox;
pub use tree::Tree;

/// The default largest message a backend will fetch: 64 MiB.
///
/// Mail servers commonly cap messages at 25–50 MB; anything bigger in a mail
/// store is almost certainly not text worth indexing, and reading it whole
/// into memory (as the decryptor needs) could exhaust a phone's RAM. Each
/// backend has `with_max_message_bytes` to change it.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 64 << 20;

/// Opens the right backend for `path`:
///
/// - a directory with `cur/` and `new/` subdirectories: [`Maildir`];
/// - a regular file starting with an mbox `From ` line: [`Mbox`];
/// - another regular file that looks like one RFC 822 message:
///   [`Tree::open_file`]; any other file is an error that says why;
/// - any other directory: [`Tree`].
///
/// Calendars are not mail: a caller that also takes them asks
/// [`is_calendar`] first and opens those with [`Ics`] (whose messages
/// need [`IcsPassThrough`](crate::calendar::IcsPassThrough), not the mail
/// decryptor), as `sealdex index` does.
///
/// The source's [`Source::name`] is the backend kind and the canonical
/// absolute path (`maildir:/home/me/Maildir`), so the same mailbox reached
/// through a different relative path or symlink keeps its name, and with it
/// its records and checkpoints in the index.
///
/// ```no_run
/// use sealdex::Source;
///
/// let mut source = sealdex::backends::open_path(std::path::Path::new("/home/me/Maildir"))?;
/// let page = source.list(None, 256)?;
/// let messages = source.fetch(&page.refs);
/// println!("{}: {} of {:?} messages", source.name(), messages.len(), page.total);
/// # Ok::<(), sealdex::SourceError>(())
/// ```
pub fn open_path(path: &Path) -> Result<Box<dyn Source>, SourceError> {
    let meta = fs::metadata(path).map_err(|e| io_error("cannot open", path, &e))?;
    if meta.is_file() {
        // An mbox starts with a `From ` line; a lone message with a header.
        let mut head = Vec::with_capacity(64 << 10);
        File::open(path)
            .and_then(|f| f.take(64 << 10).read_to_end(&mut head))
            .map_err(|e| io_error("cannot read", path, &e))?;
        if head.starts_with(b"From ") {
            Ok(Box::new(Mbox::open(path)?))
        } else if let Some(why) = tree::not_mail(&head) {
            Err(SourceError::malformed(format!(
                "no mail found in {}: it is neither an mbox nor an RFC 822 message ({why})",
                path.display()
            )))
        } else {
            Ok(Box::new(Tree::open_file(path)?))
        }
    } else if meta.is_dir() {
        if path.join("cur").is_dir() && path.join("new").is_dir() {
            Ok(Box::new(Maildir::open(path)?))
        } else {
            Ok(Box::new(Tree::open(path)?))
        }
    } else {
        Err(SourceError::other(format!(
            "{} is neither a regular file nor a directory",
            path.display()
        )))
    }
}

/// Whether `path` is a calendar for [`Ics`]: a file named `*.ics` (or
/// `.ical`, `.icalendar`) or starting with `BEGIN:VCALENDAR`, or a
/// directory (not a Maildir) in which a calendar file comes before any
/// file that looks like mail, among the first 256 files a walk meets.
#[cfg(feature = "calendar")]
pub fn is_calendar(path: &Path) -> bool {
    let head = |p: &Path| -> Vec<u8> {
        let mut head = Vec::with_capacity(4096);
        let _ = File::open(p).and_then(|f| f.take(4096).read_to_end(&mut head));
        head
    };
    let named = |p: &Path| {
        p.extension().is_some_and(|e| {
            ["ics", "ical", "icalendar"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        })
    };
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    if meta.is_file() {
        return named(path) || crate::calendar::looks_like_ics(&head(path));
    }
    if !meta.is_dir() || (path.join("cur").is_dir() && path.join("new").is_dir()) {
        return false;
    }
    let files = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().as_encoded_bytes().starts_with(b"."))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .take(256);
    for e in files {
        let bytes = head(e.path());
        if named(e.path()) || crate::calendar::looks_like_ics(&bytes) {
            return true;
        }
        if tree::not_mail(&bytes).is_none() {
            return false;
        }
    }
    false
}

/// A [`SourceError`] naming the path and the operation, of the kind the
/// I/O error's kind maps to (a missing path is
/// [`NotFound`](crate::SourceErrorKind::NotFound), not retried).
fn io_error(what: &str, path: &Path, e: &std::io::Error) -> SourceError {
    SourceError::io(format_args!("{what} {}", path.display()), e)
}

/// Canonicalises `path` and checks it is what the backend expects, for
/// `open`. Returns the canonical path and the source name `"{kind}:{path}"`.
fn canonical_root(
    kind: &str,
    path: &Path,
    want_dir: bool,
) -> Result<(PathBuf, String), SourceError> {
    let root = fs::canonicalize(path).map_err(|e| io_error("cannot open", path, &e))?;
    let meta = fs::metadata(&root).map_err(|e| io_error("cannot open", &root, &e))?;
    if want_dir && !meta.is_dir() {
        return Err(SourceError::other(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    if !want_dir && !meta.is_file() {
        return Err(SourceError::other(format!(
            "{} is not a regular file",
            root.display()
        )));
    }
    let name = format!("{kind}:{}", root.display());
    Ok((root, name))
}

/// Fails when the root of a listing has gone (see the module's failure
/// policy: an empty listing would read as "everything deleted").
fn check_root(root: &Path, want_dir: bool) -> Result<(), SourceError> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() == want_dir => Ok(()),
        Ok(_) => Err(SourceError::not_found(format!(
            "{} is no longer a {}",
            root.display(),
            if want_dir {
                "directory"
            } else {
                "regular file"
            }
        ))),
        Err(e) => Err(io_error("cannot list", root, &e)),
    }
}

/// The version of a file: its size and modification time in nanoseconds.
/// Writing a file changes one or the other; renaming it (a Maildir flag
/// change, a move) changes neither, which is what lets a move be told from
/// an edit.
fn file_version(meta: &Metadata) -> String {
    version_string(meta.len(), mtime_nanos(meta))
}

/// [`file_version`] from its parts.
fn version_string(size: u64, mtime_nanos: i128) -> String {
    format!("{size}-{mtime_nanos}")
}

/// A file's modification time in nanoseconds since the epoch (0 where the
/// platform has none).
fn mtime_nanos(meta: &Metadata) -> i128 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(before) => -(before.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}

/// The raw bytes of a relative path, components joined by `/`, for keys and
/// locators. Exact even when a name is not UTF-8.
fn relative_bytes(rel: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_os_str().as_encoded_bytes());
    }
    out
}

/// A file name from the raw bytes it was read as
/// (`OsStr::as_encoded_bytes`), exactly.
fn os_str(name: &[u8]) -> &std::ffi::OsStr {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(name)
    }
    #[cfg(not(unix))]
    {
        std::ffi::OsStr::new(std::str::from_utf8(name).unwrap_or_default())
    }
}

/// The relative path a locator names, refusing anything that could leave
/// the root (absolute paths, `..`): locators come back from storage, and a
/// source must never read outside the directory it was given.
fn locator_path(locator: &[u8]) -> Option<PathBuf> {
    #[cfg(unix)]
    let path = {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(locator))
    };
    #[cfg(not(unix))]
    let path = PathBuf::from(std::str::from_utf8(locator).ok()?);
    let safe = !locator.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    safe.then_some(path)
}

/// Reads a whole message file, refusing non-regular files and files larger
/// than `max` without reading them. Returns the bytes and the version of the
/// file that was read.
fn read_file_limited(path: &Path, max: u64) -> Result<(Vec<u8>, String), String> {
    // Stat before opening: opening a FIFO that replaced a message would block.
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > max {
        return Err(too_large(meta.len(), max));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    // `take` bounds the read even if the file grows after the size check.
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    Ok((bytes, file_version(&meta)))
}

/// The reason given for a message over the size limit.
fn too_large(size: u64, max: u64) -> String {
    format!("message of {size} bytes exceeds the {max}-byte limit (max_message_bytes); not read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_cannot_escape_the_root() {
        assert!(locator_path(b"a/b.eml").is_some());
        assert!(locator_path(b"").is_none());
        assert!(locator_path(b"../etc/passwd").is_none());
        assert!(locator_path(b"a/../../b").is_none());
        assert!(locator_path(b"/etc/passwd").is_none());
        assert!(locator_path(b"./a").is_none());
    }
}
