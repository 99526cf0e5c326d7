//! The record: one type for a mail message, a chat message, a drive file or a
//! calendar event, and its compact encoding before sealing.
//!
//! A record holds exactly what search needs and nothing more: the id the
//! source gave, a timestamp, five searchable text fields, folders or labels,
//! and three flags. The body is cleaned text (never HTML), so that the search
//! side can normalise and scan it without parsing anything.
//!
//! Encoding: postcard (a compact serde format), then LZ4 when that saves
//! space, behind one codec byte. Compressing before sealing keeps the store
//! smaller than the extracted text; LZ4 decodes at several GB/s, so opening
//! the cache stays cheap.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Flags of a record, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags(u8);

impl Flags {
    /// Not yet read by the user.
    pub const UNREAD: Flags = Flags(1);
    /// Flagged / starred.
    pub const FLAGGED: Flags = Flags(2);
    /// Has at least one attachment.
    pub const HAS_ATTACHMENT: Flags = Flags(4);

    /// No flag set.
    pub const fn empty() -> Self {
        Flags(0)
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: Flags, on: bool) {
        if on {
            self.0 |= other.0
        } else {
            self.0 &= !other.0
        }
    }
    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// From raw bits; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Flags(bits & 7)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// What a record stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentKind {
    /// An email.
    #[default]
    Mail,
    /// A chat message.
    Chat,
    /// A file in a drive.
    File,
    /// A calendar event.
    Event,
}

/// The searchable text fields. Their order is the on-disk order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Subject, chat topic, file or event title.
    Subject = 0,
    /// Cleaned body text.
    Body = 1,
    /// Sender or author: display names and addresses.
    From = 2,
    /// Recipients (to and cc) or attendees: display names and addresses.
    To = 3,
    /// Attachment names, or the file name of a drive file.
    Filename = 4,
}

impl Field {
    /// Every field, in storage order.
    pub const ALL: [Field; 5] = [
        Field::Subject,
        Field::Body,
        Field::From,
        Field::To,
        Field::Filename,
    ];
}

/// One message, file or event, as stored (sealed) and searched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The id the source gave (for a directory tree: the path relative to its root).
    pub id: String,
    /// The stable name of the source the record came from.
    pub source: String,
    /// Seconds since the Unix epoch, UTC, if known.
    pub timestamp: Option<i64>,
    /// What the record stands for.
    pub kind: ContentKind,
    /// Subject or title.
    pub subject: String,
    /// Cleaned body text (never HTML).
    pub body: String,
    /// Sender or author, names and addresses (`Alice <alice@example.org>`).
    pub from: String,
    /// Recipients or attendees, names and addresses, one per line.
    pub to: String,
    /// Attachment or file names, one per line.
    pub attachments: String,
    /// Folder and labels; the first is the folder when the source has one.
    pub folders: Vec<String>,
    /// Unread, flagged, has attachment.
    pub flags: Flags,
    /// A fingerprint of the source's version of this message (size and
    /// mtime, a content hash, a server revision): lets re-indexing skip
    /// messages that did not change.
    pub version: Option<String>,
}

impl Record {
    /// The text of one searchable field.
    pub fn field(&self, f: Field) -> &str {
        match f {
            Field::Subject => &self.subject,
            Field::Body => &self.body,
            Field::From => &self.from,
            Field::To => &self.to,
            Field::Filename => &self.attachments,
        }
    }

    /// Bytes of text this record holds, a measure for cache budgets.
    pub fn text_len(&self) -> usize {
        Field::ALL
            .iter()
            .map(|f| self.field(*f).len())
            .sum::<usize>()
            + self.id.len()
            + self.folders.iter().map(String::len).sum::<usize>()
    }
}

const CODEC_RAW: u8 = 0;
/// LZ4 with a size prefix: written by earlier versions, still read.
const CODEC_LZ4: u8 = 1;
/// zstd frames (which carry their size).
const CODEC_ZSTD: u8 = 2;
/// zstd's level. Measured on SpamAssassin's records (13.5 MB encoded, one
/// core): LZ4 9.8 MB in 58 ms; zstd 1 7.2 MB in 138 ms; zstd 3 7.1 MB in
/// 269 ms. Level 1 keeps nearly all of the gain at half the cost.
const ZSTD_LEVEL: i32 = 1;
/// Below this, compression rarely pays for its header.
const COMPRESS_MIN: usize = 128;

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Encodes a record for sealing.
pub fn encode(record: &Record) -> Vec<u8> {
    compress(postcard::to_allocvec(record).expect("serialising a Record cannot fail"))
}

/// Puts a codec byte before `raw`, compressing it with zstd when that saves
/// space: the encoding of records, and (from store format 2 on) of the
/// store's other sealed state, whose sync tokens can be as large as a
/// listing.
pub(crate) fn compress(raw: Vec<u8>) -> Vec<u8> {
    if raw.len() >= COMPRESS_MIN {
        // A compression context per thread: making one costs more than
        // compressing a typical message.
        let compressed = COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            if c.is_none() {
                *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            c.as_mut().and_then(|c| c.compress(&raw).ok())
        });
        if let Some(compressed) = compressed
            && compressed.len() + 1 < raw.len()
        {
            let mut out = Vec::with_capacity(compressed.len() + 1);
            out.push(CODEC_ZSTD);
            out.extend_from_slice(&compressed);
            return out;
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    out.push(CODEC_RAW);
    out.extend_from_slice(&raw);
    out
}

/// Largest decoded record accepted, so that a corrupted size prefix cannot
/// make us allocate without bound.
const MAX_DECODED: usize = 1 << 30;

/// Decodes a record that [`encode`] produced.
pub fn decode(bytes: &[u8]) -> Result<Record> {
    let raw = decompress(bytes).map_err(|what| bad_record(&what))?;
    postcard::from_bytes(&raw).map_err(|_| bad_record("postcard"))
}

fn bad_record(what: &str) -> Error {
    Error::Corrupt(format!("undecodable record ({what})"))
}

/// Undoes [`compress`]. The error names what was wrong, for the caller's
/// message.
pub(crate) fn decompress(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let (&codec, rest) = bytes.split_first().ok_or("empty")?;
    match codec {
        CODEC_RAW => Ok(rest.to_vec()),
        CODEC_LZ4 => {
            let size = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("lz4 header")?;
            if size > MAX_DECODED {
                return Err("lz4 size".into());
            }
            lz4_flex::decompress_size_prepended(rest).map_err(|_| "lz4".into())
        }
        CODEC_ZSTD => {
            // The frame states its size; more than MAX_DECODED is refused
            // before anything is allocated.
            let size = match zstd::zstd_safe::get_frame_content_size(rest) {
                Ok(Some(n)) if n <= MAX_DECODED as u64 => n as usize,
                _ => return Err("zstd size".into()),
            };
            DECOMPRESSOR
                .with(|d| {
                    let mut d = d.borrow_mut();
                    if d.is_none() {
                        *d = zstd::bulk::Decompressor::new().ok();
                    }
                    d.as_mut().map(|d| d.decompress(rest, size))
                })
                .ok_or("zstd context")?
                .map_err(|_| "zstd".into())
        }
        _ => Err("unknown codec".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            (
                ".{0,20}",
                ".{0,10}",
                proptest::option::of(any::<i64>()),
                0u8..4,
            ),
            (".{0,40}", ".{0,400}", ".{0,30}", ".{0,30}", ".{0,20}"),
            (
                proptest::collection::vec(".{0,10}", 0..3),
                0u8..8,
                proptest::option::of(".{0,10}"),
            ),
        )
            .prop_map(
                |((id, source, ts, kind), (s, b, f, t, a), (folders, flags, version))| Record {
                    id,
                    source,
                    timestamp: ts,
                    kind: [
                        ContentKind::Mail,
                        ContentKind::Chat,
                        ContentKind::File,
                        ContentKind::Event,
                    ][kind as usize],
                    subject: s,
                    body: b.repeat(3),
                    from: f,
                    to: t,
                    attachments: a,
                    folders,
                    flags: Flags::from_bits(flags),
                    version,
                },
            )
    }

    proptest! {
        #[test]
        fn encode_round_trip(r in arb_record()) {
            prop_assert_eq!(decode(&encode(&r)).unwrap(), r);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn long_text_is_compressed() {
        let r = Record {
            body: "the quick brown fox ".repeat(200),
            ..Record::default()
        };
        let enc = encode(&r);
        assert_eq!(enc[0], CODEC_ZSTD);
        assert!(enc.len() < r.body.len() / 4);
        assert_eq!(decode(&enc).unwrap(), r);
    }

    /// Records written by earlier versions (LZ4) still read.
    #[test]
    fn lz4_records_still_decode() {
        let r = Record {
            body: "the quick brown fox ".repeat(200),
            ..Record::default()
        };
        let raw = postcard::to_allocvec(&r).unwrap();
        let mut old = vec![CODEC_LZ4];
        old.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
        assert_eq!(decode(&old).unwrap(), r);
    }
}
