//! [`LiveMap`]: owns which document number is live for each key of a
//! format-4 store, in about 24 bytes a key.
//!
//! # Why not a `HashMap<Mac16, u64>`
//!
//! The map holds one entry per stored record and lives as long as the
//! store is open, so at a million messages it is part of the floor under
//! every other allocation of an indexing run (issue 17's 1M peak RSS
//! target). A `HashMap` of 24-byte entries keeps its table at most 7/8 full
//! and doubles it: at 1M keys it had 1.8M slots, about 50 MiB, and while it
//! grew past 917k keys the old and the new table (75 MiB together) were
//! both alive. Here every entry is exactly its 16-byte key and 8-byte
//! number, with at most an eighth of spare capacity, and no allocation is
//! larger than one bucket (a 4096th of the map), so growing never needs a
//! second copy of the whole.
//!
//! # Layout
//!
//! Keys are MACs under a key the store's owner holds, so they are spread
//! uniformly and nobody can choose keys that crowd one bucket. The first 12
//! bits pick one of 4096 buckets. A bucket is one `Vec` whose front is
//! sorted by key and whose back is a short unsorted tail of recent
//! inserts (at most [`TAIL`]); when the tail is full it is sorted and
//! merged into the front, moving the bucket's entries once. A key appears
//! at most once in its bucket. A lookup is a binary search of the front
//! and a scan of the tail: at a million keys, a bucket holds about 250.

/// A key: the first 16 bytes of a record's keyed MAC (`blocks::Mac16`,
/// spelled out here so that this module imports nothing of the store).
type Mac16 = [u8; 16];

/// Buckets, by the first [`BUCKET_BITS`] bits of the key.
const BUCKET_BITS: u32 = 12;
const BUCKETS: usize = 1 << BUCKET_BITS;
/// Most unsorted entries at the back of a bucket before they are merged.
const TAIL: usize = 8;

#[derive(Clone, Debug, Default)]
struct Bucket {
    /// `entries[..sorted]` sorted by key, then the tail in insertion order.
    entries: Vec<(Mac16, u64)>,
    sorted: usize,
}

impl Bucket {
    fn find(&self, mac: &Mac16) -> Option<usize> {
        let (front, tail) = self.entries.split_at(self.sorted);
        // Compared as big-endian integers: the same order as the bytes',
        // without a call to `memcmp` per step.
        let key = u128::from_be_bytes(*mac);
        if let Ok(i) = front.binary_search_by(|e| u128::from_be_bytes(e.0).cmp(&key)) {
            return Some(i);
        }
        tail.iter()
            .position(|e| e.0 == *mac)
            .map(|i| self.sorted + i)
    }

    fn push(&mut self, mac: Mac16, docno: u64) {
        if self.entries.len() == self.entries.capacity() {
            // A small step rather than `Vec`'s doubling: at most an eighth
            // of a bucket is spare.
            self.entries.reserve_exact((self.entries.len() / 8).max(4));
        }
        self.entries.push((mac, docno));
        if self.entries.len() - self.sorted >= TAIL {
            self.merge_tail();
        }
    }

    /// Sorts the tail and merges it into the front, from the back so that
    /// no entry is moved twice and no second buffer holds the front.
    fn merge_tail(&mut self) {
        let front = self.sorted;
        let total = self.entries.len();
        let mut tail = [([0u8; 16], 0u64); TAIL];
        let n = total - front;
        tail[..n].copy_from_slice(&self.entries[front..]);
        let tail = &mut tail[..n];
        tail.sort_unstable_by_key(|e| e.0);
        let (mut i, mut j, mut k) = (front, n, total);
        while j > 0 {
            k -= 1;
            if i > 0 && self.entries[i - 1].0 > tail[j - 1].0 {
                i -= 1;
                self.entries[k] = self.entries[i];
            } else {
                j -= 1;
                self.entries[k] = tail[j];
            }
        }
        self.sorted = total;
    }

    fn remove_at(&mut self, i: usize) -> u64 {
        if i < self.sorted {
            self.sorted -= 1;
            self.entries.remove(i).1
        } else {
            self.entries.swap_remove(i).1
        }
    }
}

/// The live document number of every key of a store (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct LiveMap {
    /// Empty until the first insert, then [`BUCKETS`] long.
    buckets: Vec<Bucket>,
    len: usize,
}

fn bucket_of(mac: &Mac16) -> usize {
    usize::from(u16::from_be_bytes([mac[0], mac[1]]) >> (16 - BUCKET_BITS))
}

impl LiveMap {
    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The live document number of `mac`.
    pub(super) fn get(&self, mac: &Mac16) -> Option<u64> {
        let b = self.buckets.get(bucket_of(mac))?;
        b.find(mac).map(|i| b.entries[i].1)
    }

    /// Makes `docno` the live number of `mac`; returns the one it replaces.
    pub(super) fn insert(&mut self, mac: Mac16, docno: u64) -> Option<u64> {
        if self.buckets.is_empty() {
            self.buckets = vec![Bucket::default(); BUCKETS];
        }
        let b = &mut self.buckets[bucket_of(&mac)];
        if let Some(i) = b.find(&mac) {
            return Some(std::mem::replace(&mut b.entries[i].1, docno));
        }
        b.push(mac, docno);
        self.len += 1;
        None
    }

    /// Forgets `mac`; returns its number if it had one.
    pub(super) fn remove(&mut self, mac: &Mac16) -> Option<u64> {
        let b = self.buckets.get_mut(bucket_of(mac))?;
        let i = b.find(mac)?;
        self.len -= 1;
        Some(b.remove_at(i))
    }

    /// Keeps only the keys for which `keep` is true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Mac16, u64) -> bool) {
        for b in &mut self.buckets {
            let before = b.entries.len();
            // The front stays sorted (retain keeps order); entries dropped
            // from it shrink it.
            let mut kept_front = 0;
            let mut at = 0;
            let sorted = b.sorted;
            b.entries.retain(|(m, d)| {
                let k = keep(m, *d);
                if k && at < sorted {
                    kept_front += 1;
                }
                at += 1;
                k
            });
            b.sorted = kept_front;
            self.len -= before - b.entries.len();
        }
    }

    /// Every `(key, number)`, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Mac16, u64)> + '_ {
        self.buckets.iter().flat_map(|b| b.entries.iter().copied())
    }

    /// Bytes of heap this map holds.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self
                .buckets
                .iter()
                .map(|b| b.entries.capacity() * std::mem::size_of::<(Mac16, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(Mac16, u64),
        Remove(Mac16),
        Retain(u64),
    }

    /// Keys from a small set, sharing their first bytes often, so that
    /// buckets fill, merge their tails and see repeated keys.
    fn mac() -> impl Strategy<Value = Mac16> {
        (0u8..3, 0u8..2, 0u16..120).prop_map(|(a, b, c)| {
            let mut m = [0u8; 16];
            m[0] = a;
            m[1] = b << 4;
            m[14..].copy_from_slice(&c.to_be_bytes());
            m
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (mac(), 1u64..1000).prop_map(|(m, d)| Op::Insert(m, d)),
            2 => mac().prop_map(Op::Remove),
            1 => (2u64..7).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Whatever the operations, the map answers as a `HashMap` does,
        /// and every bucket keeps its front sorted and its keys unique.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(op(), 0..1500)) {
            let mut live = LiveMap::default();
            let mut model: HashMap<Mac16, u64> = HashMap::new();
            for op in &ops {
                match op {
                    Op::Insert(m, d) => prop_assert_eq!(live.insert(*m, *d), model.insert(*m, *d)),
                    Op::Remove(m) => prop_assert_eq!(live.remove(m), model.remove(m)),
                    Op::Retain(k) => {
                        live.retain(|_, d| d % k != 0);
                        model.retain(|_, d| *d % k != 0);
                    }
                }
                prop_assert_eq!(live.len(), model.len());
            }
            for (m, d) in &model {
                prop_assert_eq!(live.get(m), Some(*d));
            }
            let mut all: Vec<(Mac16, u64)> = live.iter().collect();
            all.sort_unstable();
            let mut expected: Vec<(Mac16, u64)> = model.into_iter().collect();
            expected.sort_unstable();
            prop_assert_eq!(all, expected);
            for b in &live.buckets {
                let front = &b.entries[..b.sorted];
                prop_assert!(front.windows(2).all(|w| w[0].0 < w[1].0));
                let mut keys: Vec<Mac16> = b.entries.iter().map(|e| e.0).collect();
                keys.sort_unstable();
                keys.dedup();
                prop_assert_eq!(keys.len(), b.entries.len());
                prop_assert!(b.entries.len() - b.sorted < TAIL);
            }
        }
    }

    /// A missing key reads as absent, before and after the first insert.
    #[test]
    fn absent_keys() {
        let mut live = LiveMap::default();
        assert_eq!(live.get(&[7; 16]), None);
        assert_eq!(live.remove(&[7; 16]), None);
        live.insert([1; 16], 5);
        assert_eq!(live.get(&[7; 16]), None);
        assert_eq!(live.get(&[1; 16]), Some(5));
    }

    /// At 200,000 uniformly spread keys the map holds about 24 bytes a key
    /// (a `HashMap` of the same entries holds twice that or more).
    #[test]
    fn about_24_bytes_a_key() {
        use sha2::{Digest, Sha256};
        let mut live = LiveMap::default();
        let n = 200_000u64;
        for d in 1..=n {
            let h = Sha256::digest(d.to_le_bytes());
            let mut m = [0u8; 16];
            m.copy_from_slice(&h[..16]);
            live.insert(m, d);
        }
        assert_eq!(live.len(), n as usize);
        let per_key = live.heap_bytes() as f64 / n as f64;
        assert!(per_key < 30.0, "{per_key:.1} bytes a key");
    }
}
