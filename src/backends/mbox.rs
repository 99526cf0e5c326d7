//! The mbox backend: one mbox file, many messages.
//!
//! The file is split by mail-parser's mbox reader
//! ([`mail_parser::mailbox::mbox::MessageIterator`]), which also undoes
//! `>From ` quoting; this module only records where each message starts and
//! ends. A listing streams the file once (memory stays at one message, however
//! large the file) and keeps, per message, its offset and length: fetching
//! then seeks straight to it, so files of many gigabytes work.
//!
//! - **id**: the Message-ID (without angle brackets), read by parsing just
//!   the message's header. A message without one is `"{file name}#{n}"`, n
//!   being its 1-based position in the file (`inbox.mbox#3`). When a
//!   Message-ID repeats within the file (a message saved twice, a list copy
//!   and a direct copy), the first keeps it and later ones are
//!   `"{Message-ID}#{n}"`, so ids stay unique. Position-based ids shift when a
//!   message is deleted from the middle of the file, which is one reason
//!   Message-IDs are preferred.
//! - **order**: position in the file.
//! - **version**: a content hash (hex of the first 16 bytes of SHA-256 of the
//!   message as delivered). An mbox has no per-message modification time, and
//!   rewriting the file (as clients do on every expunge) moves offsets, so
//!   only the content says whether a message changed.
//! - **folder**: none (an mbox's file name is not reliably a folder name:
//!   Google Takeout calls its single file "All mail Including Spam and
//!   Trash"). **flags**: none; `Status`/`X-Status` headers stay in the bytes
//!   and the message parser reads them.
//!
//! Because an mbox can be rewritten between listing and fetching, fetch checks
//! the content hash against the reference's version and fails that message
//! (rather than delivering another message under its id) when they differ;
//! a fresh listing fixes it.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mail_parser::MessageParser;
use mail_parser::mailbox::mbox::MessageIterator;
use sha2::{Digest, Sha256};

use super::snapshot::{Entry, Listing, Snapshot, Stamp, diff, make_ids_unique, token_stamp};
use super::{DEFAULT_MAX_MESSAGE_BYTES, canonical_root, check_root, too_large};
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

/// The kind tag of this backend's names and sync tokens.
const KIND: &str = "mbox";

/// An mbox file as a [`Source`]. See the [module documentation](self) for
/// ids and versions.
///
/// ```no_run
/// use sealdex::Source;
/// use sealdex::backends::Mbox;
///
/// let mut mbox = Mbox::open("/home/me/mail/archive.mbox")?;
/// let page = mbox.list(None, 500)?;
/// println!("{} messages in {}", page.total.unwrap_or(0), mbox.name());
/// for message in mbox.fetch(&page.refs).into_iter().flatten() {
///     println!("{}: {} bytes", message.id, message.bytes.len());
/// }
/// # Ok::<(), sealdex::SourceError>(())
/// ```
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    name: String,
    max_message_bytes: u64,
    listing: Listing,
}

impl Mbox {
    /// Opens the mbox file at `path`, which must be a regular file. Nothing
    /// is read until the first listing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let (path, name) = canonical_root(KIND, path.as_ref(), false)?;
        Ok(Mbox {
            path,
            name,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            listing: Listing::default(),
        })
    }

    /// Sets the largest message [`Source::fetch`] will read; larger ones are
    /// refused with a [`FetchError`] without being read. Default:
    /// [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn with_max_message_bytes(mut self, max: u64) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// The canonical path of the mbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Source for Mbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        self.listing.list(cursor, limit, || scan(&self.path))
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        // One open file for the batch; a failure to open fails each message.
        let mut file =
            File::open(&self.path).map_err(|e| format!("cannot open {}: {e}", self.path.display()));
        refs.iter()
            .map(|r| {
                let fail = |reason: String| FetchError {
                    id: r.id.clone(),
                    reason,
                };
                let file = file.as_mut().map_err(|e| fail(e.clone()))?;
                let bytes = read_message(file, &r.locator, self.max_message_bytes).map_err(fail)?;
                let version = content_hash(&bytes);
                if r.version.as_ref().is_some_and(|v| *v != version) {
                    return Err(fail(
                        "the mbox changed since it was listed (content hash differs); list it again".to_string(),
                    ));
                }
                Ok(RawMessage {
                    id: r.id.clone(),
                    bytes,
                    folder: None,
                    labels: Vec::new(),
                    flags: None,
                    version: Some(version),
                })
            })
            .collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        let (snapshot, stamp) = scan_stamped(&self.path)?;
        let token = snapshot.to_stamped_token(KIND, stamp)?;
        self.listing.set(snapshot);
        Ok(token)
    }

    /// Reads the mbox only if its stamp (inode, mtime, ctime) changed since
    /// `since` was taken: an unchanged mbox costs one `stat`, however large.
    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        check_root(&self.path, false)?;
        let now = std::fs::metadata(&self.path).map_err(|e| {
            SourceError::io(format_args!("cannot read {}", self.path.display()), &e)
        })?;
        // Only the token's head is decoded to see that nothing changed.
        if token_stamp(since, KIND) == Some(Stamp::of(&now)) {
            return Ok(Changes {
                changes: Vec::new(),
                token: since.clone(),
            });
        }
        let (old, _) = Snapshot::from_token(since, KIND)?;
        let (new, stamp) = scan_stamped(&self.path)?;
        let token = new.to_stamped_token(KIND, stamp)?;
        let changes = diff(&old, &new);
        self.listing.set(new);
        Ok(Changes { changes, token })
    }
}

/// [`scan`], with the file's stamp taken before it is read (so that a write
/// during the read makes the next run read it again).
fn scan_stamped(path: &Path) -> Result<(Snapshot, Stamp), SourceError> {
    check_root(path, false)?;
    let meta = std::fs::metadata(path)
        .map_err(|e| SourceError::io(format_args!("cannot read {}", path.display()), &e))?;
    Ok((scan(path)?, Stamp::of(&meta)))
}

/// The version of a message: hex of the first 16 bytes of its SHA-256.
fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A locator: the byte offset of the message's `From ` line and the length of
/// the message up to the next one, both little-endian u64.
fn encode_locator(offset: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// The offset and length in a locator, `None` if it is not 16 bytes.
fn decode_locator(locator: &[u8]) -> Option<(u64, u64)> {
    let (offset, len) = locator.split_first_chunk::<8>()?;
    let len: &[u8; 8] = len.try_into().ok()?;
    Some((u64::from_le_bytes(*offset), u64::from_le_bytes(*len)))
}

/// Reads the message at `locator` and undoes its mbox quoting.
fn read_message(file: &mut File, locator: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let (offset, len) = decode_locator(locator).ok_or("invalid locator")?;
    if len > max {
        return Err(too_large(len, max));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot seek in the mbox: {e}"))?;
    let mut raw = Vec::with_capacity(len as usize);
    file.take(len)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the mbox: {e}"))?;
    if (raw.len() as u64) < len {
        return Err("the mbox is shorter than when it was listed; list it again".to_string());
    }
    match MessageIterator::new(raw.as_slice()).next() {
        Some(Ok(m)) => Ok(m.unwrap_contents()),
        Some(Err(e)) => Err(format!("cannot split the mbox: {e}")),
        None => {
            Err("no message at this position; the mbox changed since it was listed".to_string())
        }
    }
}

/// Where the reader is and where the last two `From ` lines started: shared
/// between [`Tracker`] (inside the mbox iterator) and [`scan`].
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    /// Bytes consumed so far.
    pos: u64,
    /// Start of the `From ` line before the last one.
    prev_from: Option<u64>,
    /// Start of the last `From ` line read.
    last_from: Option<u64>,
    /// The end of the file was reached.
    eof: bool,
}

/// A `BufRead` that counts what mail-parser's iterator reads, line by line,
/// so that each message it yields can be given its byte range in the file.
///
/// The iterator reads only through `read_until`, and recognises a new message
/// by a line starting with `From `; the tracker notes where such lines start.
/// When the iterator yields a message because it met the next `From ` line,
/// that message spans from the previous `From ` line to the one just read;
/// when it yields at the end of the file, it spans from the last `From ` line
/// to the end.
struct Tracker<R> {
    inner: R,
    marks: Rc<Cell<Marks>>,
}

impl<R: BufRead> Read for Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.advance(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tracker<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.advance(amt);
    }

    fn read_until(&mut self, byte: u8, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = self.marks.get().pos;
        let before = buf.len();
        let n = self.inner.read_until(byte, buf)?;
        self.advance(n);
        let mut m = self.marks.get();
        if n == 0 {
            m.eof = true;
        } else if buf[before..].starts_with(b"From ") {
            m.prev_from = m.last_from;
            m.last_from = Some(start);
        }
        self.marks.set(m);
        Ok(n)
    }
}

impl<R> Tracker<R> {
    fn advance(&self, n: usize) {
        let mut m = self.marks.get();
        m.pos += n as u64;
        self.marks.set(m);
    }
}

/// Reads the mbox once and returns its snapshot.
fn scan(path: &Path) -> Result<Snapshot, SourceError> {
    check_root(path, false)?;
    let err = |e: io::Error| SourceError::io(format_args!("cannot read {}", path.display()), &e);
    let file = File::open(path).map_err(err)?;
    let marks = Rc::new(Cell::new(Marks::default()));
    let tracker = Tracker {
        inner: BufReader::with_capacity(1 << 16, file),
        marks: Rc::clone(&marks),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parser = MessageParser::new();
    let mut entries = Vec::new();
    for (ordinal, message) in (1u64..).zip(MessageIterator::new(tracker)) {
        let message = message.map_err(err)?;
        let m = marks.get();
        let (start, end) = if m.eof {
            (m.last_from, m.pos)
        } else {
            (m.prev_from, m.last_from.unwrap_or(m.pos))
        };
        let lost = || {
            SourceError::malformed(format!(
                "lost track of message {ordinal} in {}",
                path.display()
            ))
        };
        let start = start.ok_or_else(lost)?;
        let len = end.checked_sub(start).ok_or_else(lost)?;
        let contents = message.contents();
        let message_id = parser
            .parse_headers(contents)
            .and_then(|h| h.message_id().map(|id| id.trim().to_string()))
            .filter(|id| !id.is_empty());
        entries.push(Entry {
            key: ordinal.to_be_bytes().to_vec(),
            id: message_id.unwrap_or_else(|| format!("{file_name}#{ordinal}")),
            locator: encode_locator(start, len),
            version: Some(content_hash(contents)),
            size: Some(len),
            folder: None,
            flags: None,
        });
    }
    // In file order, so the first copy of a Message-ID keeps it.
    make_ids_unique(&mut entries, |e| {
        let ordinal = e
            .key
            .first_chunk::<8>()
            .map_or(0, |k| u64::from_be_bytes(*k));
        format!("{}#{ordinal}", e.id)
    });
    Ok(Snapshot::new(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locator_round_trip() {
        assert_eq!(decode_locator(&encode_locator(7, 9)), Some((7, 9)));
        assert_eq!(decode_locator(b"short"), None);
        assert_eq!(decode_locator(&[0; 17]), None);
    }
}
