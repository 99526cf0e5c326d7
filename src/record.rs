//! The record: one type for a mail message, a chat message, a drive file or a
//! calendar event, and its compact encoding before sealing.
//!
//! A record holds exactly what search needs and nothing more: the id the
//! source gave, a timestamp, five searchable text fields, folders or labels,
//! and three flags. The body is cleaned text (never HTML), so that the search
//! side can normalise and scan it without parsing anything.
//!
//! Encoding: postcard (a compact serde format), then zstd when that saves
//! space, behind one codec byte: raw, LZ4 (written by earlier versions, still
//! read), zstd, or zstd against the store's dictionary (what makes short
//! chat messages compress at all). Each record stays compressed on its own,
//! so it can be read, replaced and deleted alone.

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl ContentKind {
    /// Every kind, in the order of their codes.
    pub const ALL: [ContentKind; 4] = [
        ContentKind::Mail,
        ContentKind::Chat,
        ContentKind::File,
        ContentKind::Event,
    ];

    /// The kind's name, as `kind:` and the import format spell it.
    pub const fn name(self) -> &'static str {
        match self {
            ContentKind::Mail => "mail",
            ContentKind::Chat => "chat",
            ContentKind::File => "file",
            ContentKind::Event => "event",
        }
    }

    /// A small number for the kind, stable on disk (the inverted index's
    /// `kind` column).
    pub const fn code(self) -> u8 {
        match self {
            ContentKind::Mail => 0,
            ContentKind::Chat => 1,
            ContentKind::File => 2,
            ContentKind::Event => 3,
        }
    }
}

impl std::str::FromStr for ContentKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ContentKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown kind {s:?}: use mail, chat, event or file"))
    }
}

impl std::fmt::Display for ContentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The searchable text fields. Their order is the on-disk order.
///
/// # Adding a field
///
/// Everything that lists fields iterates [`Field::ALL`] and names them by
/// [`Field::name`]: the query language (`name:` terms, its error messages,
/// and the fields a bare word searches, which are all of them), the
/// forward scan's token streams and field bounds in the cache, the inverted
/// index's text and short-prefix fields, the snippet's choice of field, and
/// the models of the differential tests. So a new field is:
///
/// 1. a variant here, its number the next one, added to [`Field::ALL`] and
///    given a name in [`Field::name`] (at most eight fields: a query's
///    field set is a byte);
/// 2. the text it reads, an arm of [`Record::field`]; if that text is a new
///    member of [`Record`], a new record layout (postcard is positional:
///    keep the previous layout as a read-only struct, as
///    `RecordLayout1` is, and bump the layout tag), the same member on
///    [`Message`](crate::decrypt::Message) and its copy in
///    [`clean`](crate::clean::clean);
/// 3. a new inverted-index format (its schema changed, so older indexes
///    rebuild), and a line in README.md's query table.
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
    /// Attachment names, or a drive file's path (`filename:` matches its
    /// name and each component of its path).
    Filename = 4,
    /// An event's location.
    Location = 5,
}

impl Field {
    /// Every field, in storage order.
    pub const ALL: [Field; 6] = [
        Field::Subject,
        Field::Body,
        Field::From,
        Field::To,
        Field::Filename,
        Field::Location,
    ];

    /// The field's name in the query language (`subject:`) and in the
    /// inverted index's schema.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Body => "body",
            Field::From => "from",
            Field::To => "to",
            Field::Filename => "filename",
            Field::Location => "location",
        }
    }
}

/// One message, file or event, as stored (sealed) and searched.
///
/// The fields every kind shares come first; then the few that only some
/// kinds fill (an event's end and location, a file's media type), empty
/// for the others. What a kind means for each shared field:
///
/// | field         | mail                 | chat              | event                   | file                     |
/// |---------------|----------------------|-------------------|-------------------------|--------------------------|
/// | `timestamp`   | date sent            | time sent         | start                   | last modified            |
/// | `subject`     | subject              | (topic, if any)   | summary                 | title or file name       |
/// | `from`        | sender               | author            | organizer               | owner, if known          |
/// | `to`          | to and cc            | (members)         | attendees               |                          |
/// | `attachments` | attachment names     | attachment names  | attachment names        | the file's path          |
/// | `folders`     | mailbox folder       | conversation      | calendar                | parent folder            |
///
/// Adding a searchable field is one variant of [`Field`] (see there) and
/// one arm of [`Record::field`]: the forward scan, the inverted schema,
/// snippets and the query language's `name:` terms all iterate
/// [`Field::ALL`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The id the source gave (for a directory tree: the path relative to its root).
    pub id: String,
    /// The stable name of the source the record came from.
    pub source: String,
    /// Seconds since the Unix epoch, UTC, if known (an event's start).
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
    /// Attachment names, one per line; a drive file's path.
    pub attachments: String,
    /// Folders the record is in (a chat message's conversation, an event's
    /// calendar); the first is the main one.
    pub folders: Vec<String>,
    /// Labels, apart from folders. `in:` and `label:` match either.
    pub labels: Vec<String>,
    /// Unread, flagged, has attachment.
    pub flags: Flags,
    /// A fingerprint of the source's version of this message (size and
    /// mtime, a content hash, a server revision), as the source gave it.
    pub version: Option<String>,
    /// The version of the last [`Op`](crate::ops::Op) applied to this
    /// record: an op at or below it changes nothing (see [`crate::ops`]).
    pub revision: u64,
    /// The `Message-ID` of a mail, without angle brackets: the same mail
    /// stored from two sources has the same one.
    pub message_id: Option<String>,
    /// An event's end, seconds since the Unix epoch, UTC.
    pub end: Option<i64>,
    /// An event's location (searched by `location:`).
    pub location: String,
    /// A file's media type (`application/pdf`).
    pub media_type: Option<String>,
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
            Field::Location => &self.location,
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
            + self.labels.iter().map(String::len).sum::<usize>()
    }

    /// Folders, then labels: what `in:` and `label:` match.
    pub fn places(&self) -> impl Iterator<Item = &str> + '_ {
        self.folders
            .iter()
            .chain(self.labels.iter())
            .map(String::as_str)
    }
}

const CODEC_RAW: u8 = 0;
/// LZ4 with a size prefix: written by earlier versions, still read.
const CODEC_LZ4: u8 = 1;
/// zstd frames (which carry their size).
const CODEC_ZSTD: u8 = 2;
/// zstd frames made with the store's dictionary (see [`Dictionary`]).
const CODEC_ZSTD_DICT: u8 = 3;
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
    // Contexts with a dictionary loaded, and which dictionary (its `uid`).
    static DICT_COMPRESSOR: std::cell::RefCell<Option<(u64, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    static DICT_DECOMPRESSOR: std::cell::RefCell<Option<(u64, zstd::bulk::Decompressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// A store's zstd dictionary: raw content (no training), the encodings of
/// the first records the store sealed.
///
/// Why: a chat message is shorter than zstd's frame overhead plus what it
/// can learn from one message, so records compressed one by one barely
/// shrink (ChitChat: 1.78× their text). Against a dictionary of earlier
/// records (the same contacts, folder and source names, common words) each
/// one compresses on its own, so records stay independently readable and
/// replaceable. Measured on ChitChat, 256 KiB of the first records: record
/// bytes -35 %; SpamAssassin -12 % (`tests/disk_usage.rs`,
/// `bench-notes/disk.md`).
///
/// It holds plaintext, so it is stored sealed like a record, and zeroized
/// when dropped.
pub(crate) struct Dictionary {
    // Tells thread-local contexts which dictionary they have loaded.
    uid: u64,
    bytes: zeroize::Zeroizing<Vec<u8>>,
}

/// Bytes of record encodings a [`Dictionary`] is made of.
///
/// Measured (`packing_potential` in `tests/disk_usage.rs`), records
/// compressed one by one against the first N bytes of records: ChitChat
/// 54.2 MB without, 39.4 MB with 110 KiB, 35.2 MB with 256 KiB, 36.9 MB
/// with 1 MiB; SpamAssassin 7.18, 6.46, 6.35, 6.56 MB.
pub(crate) const DICTIONARY_BYTES: usize = 256 << 10;
/// At most this much of one record goes into a dictionary, so that one long
/// mail does not fill it alone.
pub(crate) const DICTIONARY_SAMPLE: usize = 8 << 10;
/// Leads every dictionary: raw content must not start with zstd's
/// dictionary magic number, and this makes sure it cannot.
const DICTIONARY_MAGIC: &[u8; 8] = b"sealdex\0";

impl Dictionary {
    /// A dictionary from stored bytes, or from samples (see
    /// [`Dictionary::from_samples`]).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<Dictionary> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let bytes = zeroize::Zeroizing::new(bytes);
        bytes.starts_with(DICTIONARY_MAGIC).then(|| Dictionary {
            uid: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            bytes,
        })
    }

    /// A dictionary of concatenated record encodings.
    pub(crate) fn from_samples(samples: &[u8]) -> Dictionary {
        let mut bytes = Vec::with_capacity(DICTIONARY_MAGIC.len() + samples.len());
        bytes.extend_from_slice(DICTIONARY_MAGIC);
        bytes.extend_from_slice(samples);
        Dictionary::from_bytes(bytes).expect("the dictionary has its magic")
    }

    /// The bytes to store (sealed).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dictionary({} bytes)", self.bytes.len())
    }
}

/// Encodes a record for sealing.
pub fn encode(record: &Record) -> Vec<u8> {
    with_layout(compress(raw(record)))
}

/// The record layout of an encoding, in the high nibble of its codec byte:
/// 0 for the layout of store formats 1 and 2 ([`RecordLayout1`]), 1 for
/// today's [`Record`]. A store keeps records of both layouts side by side
/// after an upgrade: each decodes by its own tag, so nothing is rewritten.
const LAYOUT_SHIFT: u8 = 4;
const LAYOUT_CURRENT: u8 = 1;

/// Marks a codec-tagged encoding of [`raw`] as today's layout.
pub(crate) fn with_layout(mut encoded: Vec<u8>) -> Vec<u8> {
    if let Some(first) = encoded.first_mut() {
        *first |= LAYOUT_CURRENT << LAYOUT_SHIFT;
    }
    encoded
}

/// The record as store formats 1 and 2 wrote it: read, never written.
#[derive(Deserialize)]
struct RecordLayout1 {
    id: String,
    source: String,
    timestamp: Option<i64>,
    kind: ContentKind,
    subject: String,
    body: String,
    from: String,
    to: String,
    attachments: String,
    folders: Vec<String>,
    flags: Flags,
    version: Option<String>,
}

impl From<RecordLayout1> for Record {
    fn from(r: RecordLayout1) -> Record {
        Record {
            id: r.id,
            source: r.source,
            timestamp: r.timestamp,
            kind: r.kind,
            subject: r.subject,
            body: r.body,
            from: r.from,
            to: r.to,
            attachments: r.attachments,
            folders: r.folders,
            flags: r.flags,
            version: r.version,
            ..Record::default()
        }
    }
}

/// A record's postcard encoding, before compression.
pub(crate) fn raw(record: &Record) -> Vec<u8> {
    postcard::to_allocvec(record).expect("serialising a Record cannot fail")
}

/// Decodes a record's [`raw`] encoding of today's layout (the records of a
/// block, whose layout the block states once).
pub(crate) fn decode_raw(raw: &[u8]) -> Result<Record> {
    postcard::from_bytes(raw).map_err(|_| bad_record("postcard"))
}

/// [`compress`] with a dictionary: `raw` behind a codec byte, compressed
/// against `dict` when that saves space.
pub(crate) fn compress_with(raw: Vec<u8>, dict: &Dictionary) -> Vec<u8> {
    let compressed = DICT_COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(uid, _)| *uid != dict.uid) {
            *c = zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, dict.as_bytes())
                .ok()
                .map(|z| (dict.uid, z));
        }
        c.as_mut().and_then(|(_, c)| c.compress(&raw).ok())
    });
    match compressed {
        Some(compressed) if compressed.len() + 1 < raw.len() => {
            let mut out = Vec::with_capacity(compressed.len() + 1);
            out.push(CODEC_ZSTD_DICT);
            out.extend_from_slice(&compressed);
            out
        }
        _ => compress(raw),
    }
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
    decode_with(bytes, None)
}

/// Whether `bytes` (a record's encoding) needs the store's dictionary.
pub(crate) fn needs_dictionary(bytes: &[u8]) -> bool {
    bytes.first().map(|b| b & 0x0f) == Some(CODEC_ZSTD_DICT)
}

/// Decodes a record that [`encode`] or [`compress_with`] produced.
pub(crate) fn decode_with(bytes: &[u8], dict: Option<&Dictionary>) -> Result<Record> {
    let (&first, rest) = bytes.split_first().ok_or_else(|| bad_record("empty"))?;
    let layout = first >> LAYOUT_SHIFT;
    let raw = decompress_codec(first & 0x0f, rest, dict).map_err(|what| bad_record(&what))?;
    match layout {
        0 => postcard::from_bytes::<RecordLayout1>(&raw)
            .map(Record::from)
            .map_err(|_| bad_record("postcard")),
        LAYOUT_CURRENT => postcard::from_bytes(&raw).map_err(|_| bad_record("postcard")),
        _ => Err(bad_record("unknown layout")),
    }
}

fn bad_record(what: &str) -> Error {
    Error::Corrupt(format!("undecodable record ({what})"))
}

/// The size a zstd frame states; more than [`MAX_DECODED`] is refused
/// before anything is allocated.
fn zstd_size(frame: &[u8]) -> std::result::Result<usize, String> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_DECODED as u64 => Ok(n as usize),
        _ => Err("zstd size".into()),
    }
}

/// How many bytes [`decompress`] would make of `bytes` (a codec byte and
/// what follows), as its header states; `None` when it states nothing
/// readable. Lets a caller bound what a peer's bytes may allocate below
/// the general limit.
pub(crate) fn decompressed_size(bytes: &[u8]) -> Option<u64> {
    let (&codec, rest) = bytes.split_first()?;
    match codec {
        CODEC_RAW => Some(rest.len() as u64),
        CODEC_LZ4 => rest
            .get(..4)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        CODEC_ZSTD | CODEC_ZSTD_DICT => {
            zstd::zstd_safe::get_frame_content_size(rest).ok().flatten()
        }
        _ => None,
    }
}

/// Undoes [`compress`] and [`compress_with`] (`dict`: the store's
/// dictionary, if it has one). The error names what was wrong, for the
/// caller's message.
pub(crate) fn decompress(
    bytes: &[u8],
    dict: Option<&Dictionary>,
) -> std::result::Result<Vec<u8>, String> {
    let (&codec, rest) = bytes.split_first().ok_or("empty")?;
    decompress_codec(codec, rest, dict)
}

/// [`decompress`] with the codec byte apart from what follows it.
fn decompress_codec(
    codec: u8,
    rest: &[u8],
    dict: Option<&Dictionary>,
) -> std::result::Result<Vec<u8>, String> {
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
            let size = zstd_size(rest)?;
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
        CODEC_ZSTD_DICT => {
            let dict = dict.ok_or("compressed with a dictionary that is missing")?;
            let size = zstd_size(rest)?;
            DICT_DECOMPRESSOR
                .with(|d| {
                    let mut d = d.borrow_mut();
                    if d.as_ref().is_none_or(|(uid, _)| *uid != dict.uid) {
                        *d = zstd::bulk::Decompressor::with_dictionary(dict.as_bytes())
                            .ok()
                            .map(|z| (dict.uid, z));
                    }
                    d.as_mut().map(|(_, d)| d.decompress(rest, size))
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
                    ..Record::default()
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
        assert_eq!(enc[0] & 0x0f, CODEC_ZSTD);
        assert!(enc.len() < r.body.len() / 4);
        assert_eq!(decode(&enc).unwrap(), r);
    }

    #[test]
    fn dictionary_round_trip_and_needs_its_dictionary() {
        let samples: Vec<u8> = (0..2000)
            .flat_map(|i| raw(&chat(i)))
            .take(DICTIONARY_BYTES)
            .collect();
        let dict = Dictionary::from_samples(&samples);
        let other = Dictionary::from_samples(b"something else entirely");
        let r = chat(5000);
        let enc = with_layout(compress_with(raw(&r), &dict));
        assert!(needs_dictionary(&enc));
        assert!(enc.len() < encode(&r).len());
        assert_eq!(decode_with(&enc, Some(&dict)).unwrap(), r);
        // Without it, or with another one: an error, never a panic.
        assert!(decode(&enc).is_err());
        assert!(decode_with(&enc, None).is_err());
        assert!(decode_with(&enc, Some(&other)).is_err());
        // Records encoded without a dictionary still decode with one.
        assert_eq!(decode_with(&encode(&r), Some(&dict)).unwrap(), r);
        assert!(Dictionary::from_bytes(b"no magic".to_vec()).is_none());

        fn chat(i: u32) -> Record {
            Record {
                id: format!("c{}/{i}", i / 20),
                source: "chat".into(),
                body: format!("message {i}: shall we meet at {}?", i % 24),
                from: format!("user{}", i % 7),
                ..Record::default()
            }
        }
    }

    /// A record of the first layout (store formats 1 and 2), as those
    /// wrote it.
    fn layout1(r: &Record) -> Vec<u8> {
        #[derive(Serialize)]
        struct Old<'a>(
            &'a str,
            &'a str,
            Option<i64>,
            ContentKind,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a [String],
            Flags,
            &'a Option<String>,
        );
        postcard::to_allocvec(&Old(
            &r.id,
            &r.source,
            r.timestamp,
            r.kind,
            &r.subject,
            &r.body,
            &r.from,
            &r.to,
            &r.attachments,
            &r.folders,
            r.flags,
            &r.version,
        ))
        .unwrap()
    }

    /// Records of the first layout still read, into today's record.
    #[test]
    fn layout1_records_still_decode() {
        let r = Record {
            id: "inbox/1".into(),
            subject: "old".into(),
            body: "the quick brown fox ".repeat(200),
            folders: vec!["INBOX".into()],
            flags: Flags::UNREAD,
            version: Some("v".into()),
            ..Record::default()
        };
        assert_eq!(decode(&compress(layout1(&r))).unwrap(), r);
        let small = Record {
            id: "x".into(),
            ..Record::default()
        };
        assert_eq!(decode(&compress(layout1(&small))).unwrap(), small);
    }

    /// Records written by earlier versions (LZ4) still read.
    #[test]
    fn lz4_records_still_decode() {
        let r = Record {
            body: "the quick brown fox ".repeat(200),
            ..Record::default()
        };
        let raw = layout1(&r);
        let mut old = vec![CODEC_LZ4];
        old.extend_from_slice(&lz4_flex::compress_prepend_size(&raw));
        assert_eq!(decode(&old).unwrap(), r);
    }
}
