//! What devices of one group say to each other about their shared index:
//! the messages (committed batches, snapshot requests and chunks), their
//! encoding, and their cutting into envelopes that fit the frame limit.
//!
//! ```text
//! envelope plaintext = postcard(Packet)
//! Packet::Whole(postcard(Msg))                      one envelope, one message
//! Packet::Part { id, index, count, bytes }          a message cut in `count` parts
//! ```
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
    /// Its position (an opaque store key of the server's).
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
}

fn malformed(detail: impl Into<String>) -> SyncError {
    SyncError::Malformed {
        what: "a shared-index message",
        detail: detail.into(),
    }
}

/// The envelope plaintexts carrying `msg`: one, or its parts.
pub fn encode(msg: &Msg) -> SyncResult<Vec<Vec<u8>>> {
    let bytes = postcard::to_allocvec(msg).map_err(|e| malformed(e.to_string()))?;
    let packets = if bytes.len() <= PART_BYTES {
        vec![Packet::Whole(bytes)]
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
            .map(|(index, b)| Packet::Part {
                id,
                index: index as u32,
                count: count as u32,
                bytes: b.to_vec(),
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
        match packet {
            Packet::Whole(bytes) => Ok(Received::Msg(Box::new(decode(&bytes)?), vec![position])),
            Packet::Part {
                id,
                index,
                count,
                bytes,
            } => {
                if count == 0 || count as usize > MAX_PARTS || index >= count {
                    return Err(malformed(format!("part {index} of {count}")));
                }
                let p = self.partial.entry(id).or_insert_with(|| Partial {
                    count,
                    parts: vec![None; count as usize],
                    positions: Vec::new(),
                });
                if p.count != count {
                    return Err(malformed("parts disagree on their count"));
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
                Ok(Received::Msg(Box::new(decode(&whole)?), p.positions))
            }
        }
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

fn decode(bytes: &[u8]) -> SyncResult<Msg> {
    postcard::from_bytes(bytes).map_err(|e| malformed(e.to_string()))
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

    #[test]
    fn an_op_larger_than_an_envelope_travels_in_parts() {
        let msg = Msg::Batch(Batch {
            ops: vec![upsert(1, 5 * PART_BYTES)],
            ..Batch::default()
        });
        let packets = encode(&msg).unwrap();
        assert!(packets.len() >= 5);
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
