//! What devices of one group say to each other about their shared index:
//! the messages (committed batches, snapshot requests and chunks), their
//! encoding, and their cutting into envelopes that fit the frame limit.
//!
//! ```text
//! Msg::Batch(Batch)                     ops of a committed batch, with state
//! Msg::SnapshotRequest(SnapshotRequest) a new device asks for records
//! Msg::SnapshotChunk(SnapshotChunk)     records (upserts) for it
//! Msg::IndexRequest(SnapshotRequest)    a new device asks for the index (sent
//!                                       first, its SnapshotRequest twin after)
//! Msg::IndexChunk(IndexChunk)           blocks' records under the server's
//!                                       document numbers, then inverted index
//!                                       file pieces, then meta.json
//! Msg::BodiesRequest(SnapshotRequest)   a new device asks for the index with
//!                                       its blocks' bodies (sent before the
//!                                       IndexRequest and SnapshotRequest twins)
//! Msg::BodiesChunk(BodiesChunk)         an IndexChunk whose blocks travel as
//!                                       their compressed bodies where they can
//! ```
//!
//! Variants are only ever added at the end: a build that does not know one
//! refuses it as malformed (the envelope is acknowledged and counted in
//! `Status::refused`), which is how an earlier build ignores
//! `IndexRequest` and answers its twin.
//!
//! ```text
//! envelope plaintext = postcard(Packet)
//! Packet::Whole(postcard(Msg))                      one envelope, one message
//! Packet::Part { id, index, count, bytes }          a message cut in `count` parts
//! Packet::Zstd(zstd(postcard(Msg)))                 the same, compressed
//! Packet::ZstdPart { id, index, count, bytes }      a compressed message's part
//! ```
//!
//! Why compress: the relay stores every envelope once per other device and
//! a new device receives the whole index, so bytes through the relay are
//! what a group pays for; index ops (cleaned text, repeated field names,
//! ids with common prefixes) shrink two to three times with zstd at its
//! fastest level, for less CPU than sealing and storing the difference.
//! Compression happens before sealing, inside the envelope; the relay
//! sees sizes only in power-of-four buckets, so what compression could
//! reveal of the content through the length is no more than an order of
//! magnitude. A message that does not shrink is sent as it is.
//!
//! Why two layers: a batch is split by the sender at op boundaries
//! ([`split_batch`]), so most messages fit one envelope and a follower
//! applies each piece as it comes; only a single op larger than an
//! envelope (a huge message body) is cut into parts, which the receiver
//! holds unacknowledged until the last one arrives. The relay delivers at
//! most 64 unacknowledged envelopes to a device, so a message may have at
//! most [`MAX_PARTS`] parts.
//!
//! Everything here is authenticated before it is decoded (the envelope's
//! AEAD), but decoding still refuses malformed input with an error, never
//! a panic: a group member may run a different build.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ops::Op;
use crate::source::SyncToken;
use crate::store::{Checkpoint, Failure, TokenSlot};
use crate::sync::error::{SyncError, SyncResult};

/// The plaintext budget of one envelope's message: a quarter of the
/// envelope limit, so the padded envelope (and its frame) stays far below
/// the 4 MiB frame limit and the relay's buckets stay small.
pub const PART_BYTES: usize = 1 << 20;

/// Most parts one message may be cut into (below the relay's delivery
/// window of 64, which the receiver holds unacknowledged until complete).
pub const MAX_PARTS: usize = 48;

/// The largest message (encoded, before compression) a receiver accepts:
/// what [`MAX_PARTS`] parts carry. Bounds decompression.
pub const MAX_MESSAGE_BYTES: usize = MAX_PARTS * PART_BYTES;

/// zstd's level for messages: its fastest, since the sender is the leader
/// while it indexes.
const ZSTD_LEVEL: i32 = 1;

/// A message between the devices of a group.
// The batch variant is the common one; boxing it would cost an allocation
// per envelope for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// A batch committed on the sender: apply it.
    Batch(Batch),
    /// A device that joined empty asks for a snapshot.
    SnapshotRequest(SnapshotRequest),
    /// A piece of a snapshot, for one device.
    SnapshotChunk(SnapshotChunk),
    /// A device that joined empty asks for a snapshot of the index itself
    /// (blocks and inverted index: see `snapshot`). Sent just before a
    /// [`Msg::SnapshotRequest`] with the same request id, which a server
    /// that answered this one ignores, and which a build that does not know
    /// this message answers instead.
    IndexRequest(SnapshotRequest),
    /// A piece of a snapshot of the index, for one device.
    IndexChunk(IndexChunk),
    /// A device that joined empty asks for a snapshot of the index whose
    /// blocks travel as their compressed bodies ([`BodiesChunk`]). Sent
    /// first, before its [`Msg::IndexRequest`] and [`Msg::SnapshotRequest`]
    /// twins (same request id), which a server that answered this one
    /// ignores; a build that does not know this message refuses it and
    /// answers a twin.
    BodiesRequest(SnapshotRequest),
    /// A piece of a snapshot of the index, blocks as bodies where they can
    /// be, for one device.
    BodiesChunk(BodiesChunk),
}

/// A piece of a snapshot of the index in which each of the server's
/// blocks whose records are all live (and none sent before) travels as
/// its body: the layout byte and the zstd frame its store compressed,
/// decrypted from the server's key and sealed in the envelope under the
/// group's, so that the new device only checks it and seals it under its
/// own key. The other blocks travel as records, in `index.blocks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodiesChunk {
    /// Everything an [`IndexChunk`] carries; its `blocks` are those that
    /// travel as records.
    pub index: IndexChunk,
    /// The blocks that travel as their bodies, in document-number order
    /// (their ranges lie between those of `index.blocks`).
    pub bodies: Vec<ShippedBody>,
    /// The server store's compression dictionary, in the first chunk of a
    /// response whose bodies need it.
    pub dictionary: Option<Vec<u8>>,
}

/// One of the server's blocks as its body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedBody {
    /// The document numbers of every record it holds, increasing.
    pub docnos: Vec<u64>,
    /// The body: a layout byte, then the codec-tagged zstd frame of the
    /// records' encodings.
    pub body: Vec<u8>,
}

/// A piece of a snapshot of the index: records grouped as the server's
/// blocks hold them, under the server's document numbers, then the
/// server's inverted index files, then (last) its metadata and source
/// state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexChunk {
    /// The device it is for.
    pub to: u64,
    /// The request it answers.
    pub request: u64,
    /// Every document number the server used at its cut is below this.
    pub docno_end: u64,
    /// Live records of the server's blocks, in document-number order.
    pub blocks: Vec<ShippedBlock>,
    /// Pieces of the server's inverted index files, in order.
    pub files: Vec<FilePiece>,
    /// The inverted index's `meta.json` (last chunk only, when the server
    /// has an inverted index).
    pub meta: Option<Vec<u8>>,
    /// The server's position after these blocks (8 bytes big-endian: the
    /// last document number it sent, or covered).
    pub after: Vec<u8>,
    /// The last chunk: it carries the server's source state.
    pub last: bool,
    /// The server's source checkpoints (last chunk only).
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// The server's sync tokens (last chunk only).
    pub tokens: Vec<TokenEntry>,
}

/// The live records of one of the server's blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShippedBlock {
    /// Their document numbers, increasing.
    pub docnos: Vec<u64>,
    /// The records, at their revisions, in the same order.
    pub records: Vec<crate::Record>,
}

/// A piece of one inverted index file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePiece {
    /// tantivy's name of the file.
    pub name: String,
    /// Where in the file this piece starts.
    pub offset: u64,
    /// The file's length.
    pub len: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A committed batch: the ops as applied on the sender (with their
/// versions), and the state written with them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The ops, with their versions.
    pub ops: Vec<Op>,
    /// A source's checkpoint (on the last piece of a split batch only).
    pub checkpoint: Option<(String, Checkpoint)>,
    /// Sync tokens set or cleared (`None`) with it.
    pub tokens: Vec<TokenEntry>,
    /// Messages that failed on the sender, for whichever device leads next
    /// to retry.
    pub failures: Vec<Failure>,
}

/// One sync token of a source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The source.
    pub source: String,
    /// Whether it is the listing-start token (else the synced one).
    pub listing_start: bool,
    /// The token, or `None` to clear it.
    pub token: Option<SyncToken>,
}

impl TokenEntry {
    /// The store's slot.
    pub fn slot(&self) -> TokenSlot {
        if self.listing_start {
            TokenSlot::ListingStart
        } else {
            TokenSlot::Synced
        }
    }
}

/// A request for a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// The device asking (chunks are addressed to it).
    pub device: u64,
    /// A random id; chunks answering older requests are ignored.
    pub request: u64,
    /// Continue a snapshot that this server began: its device id and the
    /// position after which to go on.
    pub resume: Option<Resume>,
}

/// Where an interrupted snapshot stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The serving device.
    pub server: u64,
    /// Its position, opaque to every other device: the last store key
    /// sent (a server whose store is in format 1 to 3) or the last
    /// document number sent, 8 bytes big-endian (format 4).
    pub after: Vec<u8>,
}

/// Records of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The device it is for.
    pub to: u64,
    /// The request it answers.
    pub request: u64,
    /// Upserts of the server's records at their revisions.
    pub ops: Vec<Op>,
    /// The server's position after these records.
    pub after: Vec<u8>,
    /// The last chunk: it carries the server's source state.
    pub last: bool,
    /// The server's source checkpoints (last chunk only), so that the new
    /// device can lead later without crawling from the start.
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// The server's sync tokens (last chunk only).
    pub tokens: Vec<TokenEntry>,
}

#[derive(Serialize, Deserialize)]
enum Packet {
    Whole(Vec<u8>),
    Part {
        id: u64,
        index: u32,
        count: u32,
        bytes: Vec<u8>,
    },
    Zstd(Vec<u8>),
    ZstdPart {
        id: u64,
        index: u32,
        count: u32,
        bytes: Vec<u8>,
    },
}

fn malformed(detail: impl Into<String>) -> SyncError {
    SyncError::Malformed {
        what: "a shared-index message",
        detail: detail.into(),
    }
}

/// The envelope plaintexts carrying `msg`: one, or its parts.
pub fn encode(msg: &Msg) -> SyncResult<Vec<Vec<u8>>> {
    let plain = postcard::to_allocvec(msg).map_err(|e| malformed(e.to_string()))?;
    if plain.len() > MAX_MESSAGE_BYTES {
        return Err(SyncError::EnvelopeTooLarge {
            len: plain.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let (bytes, zstd) = match zstd::bulk::compress(&plain, ZSTD_LEVEL) {
        Ok(c) if c.len() < plain.len() => (c, true),
        _ => (plain, false),
    };
    let packets = if bytes.len() <= PART_BYTES {
        vec![if zstd {
            Packet::Zstd(bytes)
        } else {
            Packet::Whole(bytes)
        }]
    } else {
        let count = bytes.len().div_ceil(PART_BYTES);
        if count > MAX_PARTS {
            return Err(SyncError::EnvelopeTooLarge {
                len: bytes.len(),
                max: MAX_PARTS * PART_BYTES,
            });
        }
        let mut id = [0u8; 8];
        crate::sync::keys::fill_random(&mut id)?;
        let id = u64::from_le_bytes(id);
        bytes
            .chunks(PART_BYTES)
            .enumerate()
            .map(|(index, b)| {
                let (index, count, bytes) = (index as u32, count as u32, b.to_vec());
                if zstd {
                    Packet::ZstdPart {
                        id,
                        index,
                        count,
                        bytes,
                    }
                } else {
                    Packet::Part {
                        id,
                        index,
                        count,
                        bytes,
                    }
                }
            })
            .collect()
    };
    packets
        .iter()
        .map(|p| postcard::to_allocvec(p).map_err(|e| malformed(e.to_string())))
        .collect()
}

/// The encoded size of an op (what it adds to a message, roughly).
pub fn op_len(op: &Op) -> usize {
    postcard::serialize_with_flavor(op, postcard::ser_flavors::Size::default())
        .unwrap_or(usize::MAX)
}

/// Splits a committed batch into messages of at most about
/// [`PART_BYTES`]; the state goes with the last, so a follower that
/// crashes halfway has not advanced its checkpoint past ops it lacks.
pub fn split_batch(batch: Batch) -> Vec<Batch> {
    let Batch {
        ops,
        checkpoint,
        tokens,
        failures,
    } = batch;
    let mut out: Vec<Batch> = Vec::new();
    let mut cur = Batch::default();
    let mut size = 0usize;
    for op in ops {
        let n = op_len(&op);
        if !cur.ops.is_empty() && size.saturating_add(n) > PART_BYTES {
            out.push(std::mem::take(&mut cur));
            size = 0;
        }
        size = size.saturating_add(n);
        cur.ops.push(op);
    }
    cur.checkpoint = checkpoint;
    cur.tokens = tokens;
    cur.failures = failures;
    out.push(cur);
    out
}

/// Parts of messages received so far, by message id, with the queue
/// positions that carried them (acknowledged once the message is whole
/// and applied).
#[derive(Debug, Default)]
pub struct Reassembly {
    partial: HashMap<u64, Partial>,
}

#[derive(Debug)]
struct Partial {
    count: u32,
    zstd: bool,
    parts: Vec<Option<Vec<u8>>>,
    positions: Vec<u64>,
}

/// What one envelope gave.
#[derive(Debug)]
pub enum Received {
    /// A whole message, and the queue positions to acknowledge once it is
    /// applied.
    Msg(Box<Msg>, Vec<u64>),
    /// A part; the message is not complete yet.
    Pending,
}

impl Reassembly {
    /// Decodes the plaintext of the envelope at queue position `position`.
    pub fn receive(&mut self, position: u64, plaintext: &[u8]) -> SyncResult<Received> {
        let packet: Packet =
            postcard::from_bytes(plaintext).map_err(|e| malformed(e.to_string()))?;
        let (id, index, count, bytes, zstd) = match packet {
            Packet::Whole(bytes) => {
                return Ok(Received::Msg(
                    Box::new(decode(&bytes, false)?),
                    vec![position],
                ));
            }
            Packet::Zstd(bytes) => {
                return Ok(Received::Msg(
                    Box::new(decode(&bytes, true)?),
                    vec![position],
                ));
            }
            Packet::Part {
                id,
                index,
                count,
                bytes,
            } => (id, index, count, bytes, false),
            Packet::ZstdPart {
                id,
                index,
                count,
                bytes,
            } => (id, index, count, bytes, true),
        };
        if count == 0 || count as usize > MAX_PARTS || index >= count {
            return Err(malformed(format!("part {index} of {count}")));
        }
        let p = self.partial.entry(id).or_insert_with(|| Partial {
            count,
            zstd,
            parts: vec![None; count as usize],
            positions: Vec::new(),
        });
        if p.count != count || p.zstd != zstd {
            return Err(malformed("parts disagree on their count or form"));
        }
        p.positions.push(position);
        p.parts[index as usize] = Some(bytes);
        if p.parts.iter().any(Option::is_none) {
            return Ok(Received::Pending);
        }
        let Some(p) = self.partial.remove(&id) else {
            return Ok(Received::Pending);
        };
        let whole: Vec<u8> = p.parts.into_iter().flatten().flatten().collect();
        Ok(Received::Msg(
            Box::new(decode(&whole, p.zstd)?),
            p.positions,
        ))
    }

    /// Queue positions held for incomplete messages.
    pub fn held(&self) -> usize {
        self.partial.values().map(|p| p.positions.len()).sum()
    }

    /// Forgets incomplete messages (their parts come again after a
    /// reconnect, since they were not acknowledged).
    pub fn clear(&mut self) {
        self.partial.clear();
    }
}

fn decode(bytes: &[u8], zstd: bool) -> SyncResult<Msg> {
    if zstd {
        let plain = zstd::bulk::decompress(bytes, MAX_MESSAGE_BYTES)
            .map_err(|e| malformed(format!("decompressing: {e}")))?;
        postcard::from_bytes(&plain).map_err(|e| malformed(e.to_string()))
    } else {
        postcard::from_bytes(bytes).map_err(|e| malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;
    use proptest::prelude::*;

    fn upsert(id: usize, body: usize) -> Op {
        Op::upsert(Record {
            source: "s".into(),
            id: format!("m{id}"),
            body: "x".repeat(body),
            ..Record::default()
        })
        .with_version(id as u64 + 1)
    }

    #[test]
    fn a_big_batch_splits_at_ops_and_keeps_its_state_on_the_last_piece() {
        let batch = Batch {
            ops: (0..40).map(|i| upsert(i, 100_000)).collect(),
            checkpoint: Some(("s".into(), Checkpoint::default())),
            ..Batch::default()
        };
        let pieces = split_batch(batch.clone());
        assert!(pieces.len() >= 4, "{} pieces", pieces.len());
        let ops: Vec<Op> = pieces.iter().flat_map(|b| b.ops.clone()).collect();
        assert_eq!(ops, batch.ops);
        assert!(
            pieces[..pieces.len() - 1]
                .iter()
                .all(|b| b.checkpoint.is_none())
        );
        assert_eq!(pieces.last().unwrap().checkpoint, batch.checkpoint);
        for p in pieces {
            let env = encode(&Msg::Batch(p)).unwrap();
            assert_eq!(env.len(), 1);
            assert!(env[0].len() <= crate::sync::envelope::MAX_PLAINTEXT);
        }
    }

    /// A body of `n` letters that zstd barely shrinks (xorshift).
    fn noise(n: usize) -> String {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn messages_are_compressed_when_that_helps() {
        let text = Msg::Batch(Batch {
            ops: (0..200).map(|i| upsert(i, 300)).collect(),
            ..Batch::default()
        });
        let plain = postcard::to_allocvec(&text).unwrap().len();
        let packets = encode(&text).unwrap();
        assert_eq!(packets.len(), 1);
        assert!(
            packets[0].len() * 3 < plain,
            "{} of {plain}",
            packets[0].len()
        );
        let mut r = Reassembly::default();
        match r.receive(1, &packets[0]).unwrap() {
            Received::Msg(m, _) => assert_eq!(*m, text),
            Received::Pending => panic!("incomplete"),
        }
        // A message that does not shrink goes as it is.
        let mut record = Record {
            source: "s".into(),
            id: "n".into(),
            body: noise(4000),
            ..Record::default()
        };
        record.subject.clear();
        let random = Msg::Batch(Batch {
            ops: vec![Op::upsert(record).with_version(1)],
            ..Batch::default()
        });
        let packets = encode(&random).unwrap();
        assert!(packets[0].len() >= 2000, "{}", packets[0].len());
        match Reassembly::default().receive(1, &packets[0]).unwrap() {
            Received::Msg(m, _) => assert_eq!(*m, random),
            Received::Pending => panic!("incomplete"),
        }
        // A compression bomb is refused, not expanded.
        let bomb = postcard::to_allocvec(&Packet::Zstd(
            zstd::bulk::compress(&vec![0u8; MAX_MESSAGE_BYTES + 1], 19).unwrap(),
        ))
        .unwrap();
        assert!(Reassembly::default().receive(1, &bomb).is_err());
    }

    #[test]
    fn an_op_larger_than_an_envelope_travels_in_parts() {
        let msg = Msg::Batch(Batch {
            ops: vec![upsert(1, 0)],
            ..Batch::default()
        });
        let Msg::Batch(mut b) = msg else {
            unreachable!()
        };
        if let Op::Upsert(u) = &mut b.ops[0] {
            let mut r = (*u.record).clone();
            r.body = noise(5 * PART_BYTES);
            u.record = std::sync::Arc::new(r);
        }
        let msg = Msg::Batch(b);
        let packets = encode(&msg).unwrap();
        assert!(packets.len() >= 3, "{} parts", packets.len());
        let mut r = Reassembly::default();
        // Out of order, with positions.
        let n = packets.len();
        for (i, p) in packets.iter().enumerate().rev().skip(1) {
            assert!(matches!(r.receive(i as u64, p).unwrap(), Received::Pending));
        }
        assert_eq!(r.held(), n - 1);
        match r.receive(99, &packets[n - 1]).unwrap() {
            Received::Msg(m, mut positions) => {
                assert_eq!(*m, msg);
                positions.sort();
                assert_eq!(positions.len(), n);
            }
            Received::Pending => panic!("incomplete"),
        }
        assert_eq!(r.held(), 0);
        let too_big = Msg::Batch(Batch {
            ops: vec![upsert(1, (MAX_PARTS + 1) * PART_BYTES)],
            ..Batch::default()
        });
        assert!(matches!(
            encode(&too_big),
            Err(SyncError::EnvelopeTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut r = Reassembly::default();
            let _ = r.receive(1, &bytes);
        }
    }
}
