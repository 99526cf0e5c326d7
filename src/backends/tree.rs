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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::dirs::{self, Class, Layout, WalkStats};
use super::snapshot::{Entry, Listing};
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, check_root, locator_path, os_str, read_file_limited,
    relative_bytes, version_string,
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
    root: PathBuf,
    name: String,
    max_message_bytes: u64,
    listing: Listing,
    full_rescan: bool,
    stats: WalkStats,
}

impl Tree {
    /// Opens the tree rooted at `root`, which must be a directory. Nothing
    /// is walked until the first listing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (root, name) = canonical_root(KIND, root.as_ref(), true)?;
        Ok(Tree {
            root,
            name,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            listing: Listing::default(),
            full_rescan: false,
            stats: WalkStats::default(),
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
        self.full_rescan = full;
        self
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many directories this source has read and kept unread since it
    /// was opened: for tests and benchmarks of the incremental sync.
    #[doc(hidden)]
    pub fn walk_stats(&self) -> WalkStats {
        self.stats
    }

    /// Reads one message.
    fn fetch_one(&self, r: &MessageRef) -> Result<RawMessage, FetchError> {
        let fail = |reason: String| FetchError {
            id: r.id.clone(),
            reason,
        };
        let rel = locator_path(&r.locator).ok_or_else(|| fail("invalid locator".to_string()))?;
        let (bytes, version) =
            read_file_limited(&self.root.join(&rel), self.max_message_bytes).map_err(fail)?;
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
        let (root, stats) = (&self.root, &mut self.stats);
        self.listing.list(cursor, limit, || {
            check_root(root, true)?;
            Ok(dirs::full(root, &TreeLayout, stats)?.0)
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter().map(|r| self.fetch_one(r)).collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        check_root(&self.root, true)?;
        let (snapshot, token) = dirs::full(&self.root, &TreeLayout, &mut self.stats)?;
        self.listing.set(snapshot);
        Ok(token)
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        check_root(&self.root, true)?;
        self.listing.clear();
        dirs::refresh(
            &self.root,
            &TreeLayout,
            since,
            self.full_rescan,
            &mut self.stats,
        )
    }
}

/// The tree's rules for the incremental listing: every visible regular file
/// is a message, every visible directory is walked. Symbolic links are
/// followed; a directory reached a second time (a link back to an ancestor)
/// is skipped, which keeps the walk finite.
struct TreeLayout;

impl Layout for TreeLayout {
    const KIND: &'static str = KIND;

    fn classify(&self, _dir: &Path, name: &OsStr, is_dir: bool) -> Class {
        if name.as_encoded_bytes().starts_with(b".") {
            Class::Skip
        } else if is_dir {
            Class::Descend
        } else {
            Class::Message
        }
    }

    fn natural_id(&self, dir: &Path, name: &[u8]) -> String {
        String::from_utf8_lossy(&relative_bytes(&dir.join(os_str(name)))).into_owned()
    }

    /// Ids collide only when two non-UTF-8 names convert to the same
    /// string: the later one gets the hex of its raw path.
    fn alt_id(&self, dir: &Path, name: &[u8], natural: &str) -> String {
        let hex: String = relative_bytes(&dir.join(os_str(name)))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{natural}#{hex}")
    }

    fn entry(&self, dir: &Path, name: &[u8], id: String, size: u64, mtime: i128) -> Entry {
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
fn parent_folder(rel: &Path) -> Option<String> {
    rel.parent()
        .map(relative_bytes)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(&p).into_owned())
}
