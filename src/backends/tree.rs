//! The directory-tree backend: every regular file under a root is one RFC 822
//! message, whatever its extension.
//!
//! This is the shape of exported mail (a folder of `.eml` files) and of test
//! corpora such as SpamAssassin's (`<group>/<n>.<md5>.txt`). Files may start
//! with an mbox `From ` line; the message parser deals with that, this
//! backend only delivers bytes.
//!
//! - **id**: the path relative to the root, with `/` separators
//!   (`spam-2/00001.7ce3307b56dbc6e7d3ef2e3e3fb01e1f.txt`). A name that is not
//!   UTF-8 appears lossily converted in the id, while the locator keeps the
//!   exact bytes so the file can still be read; should two such names convert
//!   to the same id, the later one gets `#` and the hex of its raw path
//!   appended.
//! - **order**: by relative path, byte order, so it is the same on every run
//!   and every platform.
//! - **folder**: the relative parent directory (`spam-2`); none at the root.
//! - **version**: size and modification time; **flags**: none.
//!
//! Hidden files and directories (a name starting with `.`) are skipped: they
//! are editor backups, `.DS_Store`, VCS metadata, never mail. Symbolic links
//! are followed, so a tree assembled from links works, but a link that loops
//! back to an ancestor is skipped (the walker detects it) and a dangling link
//! is ignored. Other non-regular files (FIFOs, sockets, devices) are skipped.
//! Moving a file to another directory changes its id: it is reported as a
//! deletion and a creation.
//!
//! Changes are found per directory (see `dirs.rs`): a run re-reads only the
//! directories whose modification time changed. A file rewritten in place,
//! under the same name, does not change its directory's, so it is not seen
//! until something else in that directory changes; exported mail is written
//! once, which makes that the right default for a run that costs
//! O(directories). [`Tree::with_full_rescan`] re-reads every directory and
//! re-stats every file on each run instead.
//!
//! Files that are not mail are refused when fetched, by content rather than
//! by name (`not_mail`): a binary, random bytes or a plain text file is a
//! [`FetchError`] whose reason says why (`not mail: …`), recorded as a
//! failure like any unreadable message, never a record full of NULs.
//! [`Tree::open_file`] makes a source of one RFC 822 file.

use std::ffi::OsStr;
use std::path::Path;

use super::dirs::{Class, Layout, WalkStats, Walker};
use super::snapshot::Entry;
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, locator_path, read_file_limited, relative_bytes,
};
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The kind tag of this backend's names and sync tokens.
const KIND: &str = "tree";

/// A directory tree of RFC 822 files as a [`Source`]. See the [module
/// documentation](self) for ids, order and what is skipped.
///
/// ```no_run
/// use sealdex::Source;
/// use sealdex::backends::Tree;
///
/// let mut tree = Tree::open("/data/spamassassin")?.with_max_message_bytes(10 << 20);
/// let mut cursor = None;
/// loop {
///     let page = tree.list(cursor.as_ref(), 256)?;
///     for message in tree.fetch(&page.refs) {
///         match message {
///             Ok(m) => println!("{} in {:?}: {} bytes", m.id, m.folder, m.bytes.len()),
///             Err(e) => eprintln!("{e}"),
///         }
///     }
///     match page.next {
///         Some(next) => cursor = Some(next),
///         None => break,
///     }
/// }
/// # Ok::<(), sealdex::SourceError>(())
/// ```
#[derive(Debug)]
pub struct Tree {
    /// The root, and which files are messages: every visible one, or for
    /// [`Tree::open_file`] the one file (a name in the root).
    walker: Walker<TreeLayout>,
    name: String,
    max_message_bytes: u64,
}

impl Tree {
    /// Opens the tree rooted at `root`, which must be a directory. Nothing
    /// is walked until the first listing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (root, name) = canonical_root(KIND, root.as_ref(), true)?;
        Ok(Tree {
            walker: Walker::new(root, TreeLayout { only: None }),
            name,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        })
    }

    /// A source of the single RFC 822 file at `path` (a leading mbox `From `
    /// line is fine). Its name is `file:` and the canonical path; the one
    /// message's id is the file name.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (file, _) = canonical_root(KIND, path.as_ref(), false)?;
        let (Some(root), Some(only)) = (file.parent(), file.file_name()) else {
            return Err(SourceError::not_found(format!(
                "{} is not a file",
                file.display()
            )));
        };
        Ok(Tree {
            walker: Walker::new(
                root.to_owned(),
                TreeLayout {
                    only: Some(only.to_owned()),
                },
            ),
            name: format!("file:{}", file.display()),
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

    /// With `true`, [`Source::changes`] re-reads every directory and
    /// re-stats every file, so that a file rewritten in place under the same
    /// name is seen too, at a cost of O(files) system calls a run. Default:
    /// `false`, O(directories): only directories whose modification time
    /// changed are re-read (see the [module documentation](self)).
    pub fn with_full_rescan(mut self, full: bool) -> Self {
        self.walker.full_rescan = full;
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

    /// Reads one message.
    fn fetch_one(&self, r: &MessageRef) -> Result<RawMessage, FetchError> {
        let fail = |reason: String| FetchError {
            id: r.id.clone(),
            reason,
        };
        let rel = locator_path(&r.locator).ok_or_else(|| fail("invalid locator".to_string()))?;
        let (bytes, version) =
            read_file_limited(&self.walker.root.join(&rel), self.max_message_bytes)
                .map_err(fail)?;
        if let Some(why) = not_mail(&bytes) {
            return Err(fail(format!("not mail: {why}")));
        }
        let folder = parent_folder(&rel);
        Ok(RawMessage {
            id: r.id.clone(),
            bytes,
            folder,
            labels: Vec::new(),
            flags: None,
            version: Some(version),
        })
    }
}

impl Source for Tree {
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

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        self.walker.changes(since)
    }
}

/// The tree's rules for the incremental listing: every visible regular file
/// is a message, every visible directory is walked. Symbolic links are
/// followed; a directory reached a second time (a link back to an ancestor)
/// is skipped, which keeps the walk finite.
#[derive(Debug)]
struct TreeLayout {
    /// Only this file at the root is a message (and nothing is walked).
    only: Option<std::ffi::OsString>,
}

impl Layout for TreeLayout {
    const KIND: &'static str = KIND;

    fn classify(&self, dir: &Path, name: &OsStr, is_dir: bool) -> Class {
        if let Some(only) = &self.only {
            let at_root = dir.as_os_str().is_empty();
            return if at_root && !is_dir && name == only.as_os_str() {
                Class::Message
            } else {
                Class::Skip
            };
        }
        files::classify(name, is_dir)
    }

    fn natural_id(&self, dir: &Path, name: &[u8]) -> String {
        files::natural_id(dir, name)
    }

    fn alt_id(&self, dir: &Path, name: &[u8], natural: &str) -> String {
        files::alt_id(dir, name, natural)
    }

    fn entry(&self, dir: &Path, name: &[u8], id: String, size: u64, mtime: i128) -> Entry {
        files::entry(dir, name, id, size, mtime)
    }
}

/// The rules a folder of plain files follows, whatever the files hold
/// (mail for [`Tree`], documents for `drive::Drive`): hidden names are
/// skipped, directories walked, a file's id is its relative path, and its
/// version its size and modification time.
pub(super) mod files {
    use std::ffi::OsStr;
    use std::path::Path;

    use super::super::dirs::Class;
    use super::super::snapshot::Entry;
    use super::super::{os_str, relative_bytes, version_string};
    use super::parent_folder;

    /// Hidden names are skipped; other directories walked, files listed.
    pub(in crate::backends) fn classify(name: &OsStr, is_dir: bool) -> Class {
        if name.as_encoded_bytes().starts_with(b".") {
            Class::Skip
        } else if is_dir {
            Class::Descend
        } else {
            Class::Message
        }
    }

    /// The file's path relative to the root, as UTF-8 (lossy).
    pub(in crate::backends) fn natural_id(dir: &Path, name: &[u8]) -> String {
        String::from_utf8_lossy(&relative_bytes(&dir.join(os_str(name)))).into_owned()
    }

    /// Ids collide only when two non-UTF-8 names convert to the same
    /// string: the later one gets the hex of its raw path.
    pub(in crate::backends) fn alt_id(dir: &Path, name: &[u8], natural: &str) -> String {
        let hex: String = relative_bytes(&dir.join(os_str(name)))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{natural}#{hex}")
    }

    /// The listing entry of a file: located by its relative path, in the
    /// folder of its parent directory.
    pub(in crate::backends) fn entry(
        dir: &Path,
        name: &[u8],
        id: String,
        size: u64,
        mtime: i128,
    ) -> Entry {
        let rel = dir.join(os_str(name));
        let locator = relative_bytes(&rel);
        Entry {
            key: locator.clone(),
            id,
            locator,
            version: Some(version_string(size, mtime)),
            size: Some(size),
            folder: parent_folder(&rel),
            flags: None,
        }
    }
}

/// The folder of a file: its relative parent directory, `None` at the root.
pub(super) fn parent_folder(rel: &Path) -> Option<String> {
    rel.parent()
        .map(relative_bytes)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(&p).into_owned())
}

/// Why `bytes` is not an RFC 822 message, or `None` if it looks like one.
///
/// The test is on content, since names say nothing (SpamAssassin's mail is
/// `*.txt`, exported mail often has no extension): no NUL bytes in the
/// first 64 KiB (binaries, random bytes), and a header block at the start:
/// after an optional mbox `From ` line, the first line is a header field
/// (`Name: value`), and the block up to the first empty line holds at least
/// one header every mail has one of (From, Date, Subject, Received, …).
/// The second rule is what tells `/etc/passwd` (`root:x:0:0:…`, shaped
/// like a header) from mail. Malformed mail that passes goes on to the
/// parser, which is tolerant; this only turns away what is not mail at all.
pub(crate) fn not_mail(bytes: &[u8]) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "content-type",
        "delivered-to",
        "reply-to",
        "sender",
        "in-reply-to",
        "references",
        "x-mailer",
        "envelope-to",
        "dkim-signature",
        "authentication-results",
        "x-original-to",
        "newsgroups",
    ];
    if bytes.is_empty() {
        return Some("the file is empty");
    }
    let head = &bytes[..bytes.len().min(64 << 10)];
    if memchr::memchr(0, head).is_some() {
        return Some("binary content (NUL bytes)");
    }
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut first = lines.next().unwrap_or_default();
    if first.starts_with(b"From ") {
        first = lines.next().unwrap_or_default();
    }
    let field = |line: &[u8]| -> Option<String> {
        let colon = memchr::memchr(b':', line)?;
        let name = &line[..colon];
        (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b)))
            .then(|| String::from_utf8_lossy(name).trim().to_ascii_lowercase())
    };
    let Some(name) = field(first) else {
        return Some("it does not start with a header line (`Name: value`)");
    };
    let mut known = KNOWN.contains(&name.as_str());
    for line in lines {
        if known || line.is_empty() {
            break;
        }
        if let Some(n) = field(line) {
            known = KNOWN.contains(&n.as_str());
        }
    }
    (!known).then_some("no mail header (From, Date, Subject, Received, …) in its header block")
}

#[cfg(test)]
mod tests {
    use super::not_mail;
    use proptest::prelude::*;

    #[test]
    fn mail_is_told_from_what_is_not() {
        assert_eq!(not_mail(b"From: a@b.c\r\nSubject: x\r\n\r\nhi\r\n"), None);
        assert_eq!(
            not_mail(b"From a@b.c Mon Jan  1 00:00:00 2024\nSubject: x\n\nhi\n"),
            None
        );
        // A known header after unknown ones still counts (X- headers first).
        assert_eq!(
            not_mail(b"X-Spam: yes\nX-Other: 1\nReceived: by x\n\nb\n"),
            None
        );
        assert!(not_mail(b"").is_some());
        assert!(
            not_mail(b"\x7fELF\x02\x01\x01\x00\x00")
                .unwrap()
                .contains("NUL")
        );
        assert!(not_mail(b"shopping list\nmilk\n").is_some());
        assert!(not_mail(b"root:x:0:0:root:/root:/bin/bash\n").is_some());
        // The header block ends at the first empty line.
        assert!(not_mail(b"Foo: bar\n\nFrom: a@b.c\n").is_some());
    }

    proptest! {
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = not_mail(&bytes);
        }
    }
}
