//! The drive backend: a folder of documents (a synced drive, a
//! Documents folder) as a source of files (feature `drive`), and
//! [`DocumentPassThrough`], the decryptor that extracts their text with
//! [`crate::extract`].
//!
//! Listing is the directory tree's (`dirs.rs`): per-directory sync
//! tokens, so an unchanged drive costs a `stat` per directory.
//!
//! - **id**: the path relative to the root (`Reports/2024/q3.pdf`); it is
//!   also the record's path, which `filename:` searches by name and by each
//!   component.
//! - **version**: size and modification time; the modification time is
//!   the record's date.
//! - **folder**: the parent directory; **labels**: the media type
//!   (`label:application/pdf`).
//! - **skipped, with a reason**: a file of a type sealdex does not read
//!   (by extension: images, archives, media) fails without being read
//!   (`skipped: a .jpeg file is not a document type sealdex extracts text
//!   from`), and so does a file over the size limit; both are recorded as
//!   failures, as `sealdex failures` lists them. Hidden files and
//!   directories are not listed at all.
//!
//! As with [`Tree`](super::Tree), a file rewritten in place under the same
//! name is seen when its directory changes, or on every run with
//! [`Drive::with_full_rescan`]; editors that save through a temporary
//! file and a rename (most do) change the directory.

use std::ffi::OsStr;
use std::path::Path;

use super::dirs::{Class, Layout, Walker};
use super::snapshot::Entry;
use super::{
    DEFAULT_MAX_MESSAGE_BYTES, canonical_root, locator_path, read_file_limited, tree::files,
    tree::parent_folder,
};
use crate::decrypt::Decryptor;
use crate::extract::{self, ExtractError, Limits};
use crate::message::{Body, DecryptError, Message};
use crate::record::ContentKind;
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The kind tag of this backend's names and sync tokens.
const KIND: &str = "drive";

/// A folder of documents as a [`Source`]. See the [module
/// documentation](self).
///
/// ```no_run
/// use sealdex::backends::drive::{Drive, DocumentPassThrough};
///
/// let index = sealdex::Index::open_or_create(
///     std::path::Path::new("/tmp/idx"),
///     &sealdex::Credential::passphrase("correct horse"),
///     sealdex::IndexConfig::default(),
/// )?;
/// let mut drive = Drive::open("/home/me/Documents")?;
/// let report = index.index(&mut drive, &DocumentPassThrough::default(), &Default::default())?;
/// println!("{} documents, {} skipped or failed", report.stored, report.failed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Drive {
    walker: Walker<DriveLayout>,
    name: String,
    max_document_bytes: u64,
}

impl Drive {
    /// Opens the folder `root`. Nothing is walked until the first listing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (root, name) = canonical_root(KIND, root.as_ref(), true)?;
        Ok(Drive {
            walker: Walker::new(root, DriveLayout),
            name,
            max_document_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        })
    }

    /// Sets the largest document read; larger ones are skipped with a
    /// recorded reason, without being read. Default:
    /// [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn with_max_document_bytes(mut self, max: u64) -> Self {
        self.max_document_bytes = max;
        self
    }

    /// With `true`, every run re-reads every directory and re-stats every
    /// file (see [`Tree::with_full_rescan`](super::Tree::with_full_rescan)).
    pub fn with_full_rescan(mut self, full: bool) -> Self {
        self.walker.full_rescan = full;
        self
    }

    fn fetch_one(&self, r: &MessageRef) -> Result<RawMessage, FetchError> {
        let fail = |reason: String| FetchError {
            id: r.id.clone(),
            reason,
        };
        let rel = locator_path(&r.locator).ok_or_else(|| fail("invalid locator".to_string()))?;
        if !extract::may_read(&r.id) {
            let what = extract::media_type(&r.id, b"")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "skipped: not a document".into());
            return Err(fail(what));
        }
        let path = self.walker.root.join(&rel);
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.len() > self.max_document_bytes
        {
            return Err(fail(
                ExtractError::TooLarge {
                    size: meta.len(),
                    limit: self.max_document_bytes,
                }
                .to_string(),
            ));
        }
        let (bytes, version) = read_file_limited(&path, self.max_document_bytes).map_err(fail)?;
        Ok(RawMessage {
            id: r.id.clone(),
            bytes,
            folder: parent_folder(&rel),
            labels: Vec::new(),
            flags: None,
            version: Some(version),
        })
    }
}

impl Source for Drive {
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

/// Every visible file is listed; hidden ones and hidden directories are
/// not. (What cannot be read is told at fetch time, with a reason.)
#[derive(Debug)]
struct DriveLayout;

impl Layout for DriveLayout {
    const KIND: &'static str = KIND;

    fn classify(&self, _dir: &Path, name: &OsStr, is_dir: bool) -> Class {
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

/// The decryptor for plaintext drive files ([`Drive`]): the text of each
/// document by [`extract::extract`], as a message of kind
/// [`File`](ContentKind::File).
///
/// | message | from |
/// |---|---|
/// | `subject` | the document's title, else its file name |
/// | `from` | its author, when it names one |
/// | `body` | its text |
/// | `attachments` | its path (the raw message's id) |
/// | `media_type`, `labels` | its media type |
/// | `date` | the file's modification time (from a [`Drive`] version) |
///
/// An app whose drive is end-to-end encrypted decrypts a file itself and
/// calls [`extract::extract`] the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocumentPassThrough {
    /// Bounds on what extraction reads and keeps.
    pub limits: Limits,
}

/// The modification time in a [`Drive`] version (`size-mtime_nanos`),
/// in seconds.
fn mtime_of(version: &str) -> Option<i64> {
    let (_, nanos) = version.split_once('-')?;
    let nanos: i128 = nanos.parse().ok()?;
    i64::try_from(nanos.div_euclid(1_000_000_000)).ok()
}

impl Decryptor for DocumentPassThrough {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        let doc = extract::extract(&raw.id, &raw.bytes, &self.limits).map_err(|e| match e {
            ExtractError::Encrypted => DecryptError::CannotDecrypt(e.to_string()),
            e => DecryptError::Malformed(e.to_string()),
        })?;
        let file_name = raw.id.rsplit('/').next().unwrap_or(&raw.id).to_owned();
        Ok(Message {
            id: raw.id.clone(),
            date: raw.version.as_deref().and_then(mtime_of),
            from: doc.author.unwrap_or_default(),
            subject: doc.title.unwrap_or(file_name),
            body: Body::Text(doc.text),
            folders: raw.folder.iter().cloned().collect(),
            attachments: vec![raw.id.clone()],
            kind: ContentKind::File,
            labels: std::iter::once(doc.media_type.to_owned())
                .chain(raw.labels.iter().cloned())
                .collect(),
            media_type: Some(doc.media_type.to_owned()),
            ..Message::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_from_a_version() {
        assert_eq!(mtime_of("120-1709251200123456789"), Some(1709251200));
        assert_eq!(mtime_of("abc"), None);
    }

    #[test]
    fn a_text_file_becomes_a_file_record() {
        let raw = RawMessage {
            id: "Notes/trip.txt".into(),
            bytes: b"Pack warm socks".to_vec(),
            folder: Some("Notes".into()),
            version: Some("15-1709251200000000000".into()),
            ..RawMessage::default()
        };
        let m = DocumentPassThrough::default().decrypt(&raw).unwrap();
        assert_eq!(m.kind, ContentKind::File);
        assert_eq!(m.subject, "trip.txt");
        assert_eq!(m.attachments, ["Notes/trip.txt"]);
        assert_eq!(m.media_type.as_deref(), Some("text/plain"));
        assert_eq!(m.labels, ["text/plain"]);
        assert_eq!(m.date, Some(1709251200));
        let photo = RawMessage {
            id: "p.jpeg".into(),
            ..raw
        };
        assert!(matches!(
            DocumentPassThrough::default().decrypt(&photo),
            Err(DecryptError::Malformed(r)) if r.starts_with("skipped")
        ));
    }
}
