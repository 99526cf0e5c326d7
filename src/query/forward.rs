//! The forward scan: evaluates a plan over the cache's token-stream arenas
//! in parallel, and over the records beyond the cache budget streamed from
//! the store.
//!
//! Each shard is evaluated into a bit set of matching slots. Filters on
//! dates, folders and flags cost a few comparisons per record and run
//! first inside a conjunction; text terms then search only where needed:
//! a full `memmem` pass over the arena while many records are still
//! candidates, or a search of each candidate's own bytes once few are. A
//! hit maps to its record by binary search, is checked for field and token
//! end, and the search jumps to the next record: a record is never scanned
//! past its first match.

use memchr::memmem::Finder;
use rayon::prelude::*;

use crate::cache::{Entry, Shard};
use crate::query::plan::{FilterPlan, Needle, Plan};
use crate::record::{Field, Flags};

/// A growable bit set over a shard's slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    pub(crate) fn zeros(len: usize) -> Self {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }
    pub(crate) fn ones(len: usize) -> Self {
        let mut b = Bits {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        b.trim();
        b
    }
    fn trim(&mut self) {
        let r = self.len % 64;
        if r != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << r) - 1;
        }
    }
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    fn and(&mut self, o: &Bits) {
        self.words
            .iter_mut()
            .zip(&o.words)
            .for_each(|(a, b)| *a &= b);
    }
    fn or(&mut self, o: &Bits) {
        self.words
            .iter_mut()
            .zip(&o.words)
            .for_each(|(a, b)| *a |= b);
    }
    fn not(&mut self) {
        self.words.iter_mut().for_each(|w| *w = !*w);
        self.trim();
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

/// What filters need to know about a slot's record.
pub(crate) struct Meta<'a> {
    pub timestamp: Option<i64>,
    pub flags: Flags,
    pub folders: &'a [String],
}

/// Metadata of slots, whether cached entries or a streamed batch.
pub(crate) trait SlotMeta: Sync {
    /// `None` for a dead slot.
    fn meta(&self, shard: &Shard, slot: usize) -> Option<Meta<'_>>;
}

/// The cache's entries, as slot metadata.
pub(crate) struct Entries<'a>(pub &'a [Option<Entry>]);

impl SlotMeta for Entries<'_> {
    fn meta(&self, shard: &Shard, slot: usize) -> Option<Meta<'_>> {
        let idx = *shard.entries.get(slot)?;
        let e = self.0.get(idx as usize)?.as_ref()?;
        Some(Meta {
            timestamp: e.timestamp,
            flags: e.flags,
            folders: &e.folders,
        })
    }
}

fn filter_matches(f: &FilterPlan, m: &Meta<'_>) -> bool {
    match f {
        FilterPlan::Folder(name) => m.folders.iter().any(|x| x == name),
        FilterPlan::After(t) => m.timestamp.is_some_and(|ts| ts >= *t),
        FilterPlan::Before(t) => m.timestamp.is_some_and(|ts| ts < *t),
        FilterPlan::HasAttachment => m.flags.contains(Flags::HAS_ATTACHMENT),
        FilterPlan::Unread => m.flags.contains(Flags::UNREAD),
        FilterPlan::Read => !m.flags.contains(Flags::UNREAD),
        FilterPlan::Flagged => m.flags.contains(Flags::FLAGGED),
    }
}

/// Whether a hit at `hit` (in `slot`) is a real match of the needle.
#[inline]
fn accept(shard: &Shard, slot: usize, hit: usize, needle: &Needle) -> Result<(), usize> {
    let field = shard.field_at(slot, hit);
    if needle.fields & (1 << field) == 0 {
        // Skip the rest of this field.
        return Err(shard.bounds[slot * (Field::ALL.len() + 1) + field + 1] as usize);
    }
    if needle.exact_end {
        let after = shard.text.get(hit + needle.bytes.len());
        if !matches!(after, Some(b' ') | Some(b'\n')) {
            return Err(hit + 1);
        }
    }
    Ok(())
}

/// Slots whose text matches, scanning the whole arena.
fn scan_all(shard: &Shard, needle: &Needle, finder: &Finder<'_>) -> Bits {
    let mut bits = Bits::zeros(shard.slots());
    let text = &shard.text[..];
    let mut pos = 0;
    while pos < text.len() {
        let Some(i) = finder.find(&text[pos..]) else {
            break;
        };
        let hit = pos + i;
        let slot = shard.slot_at(hit);
        match accept(shard, slot, hit, needle) {
            Ok(()) => {
                bits.set(slot);
                pos = shard.slot_end(slot);
            }
            Err(next) => pos = next.max(hit + 1),
        }
    }
    bits
}

/// Whether one slot's text matches.
fn slot_matches(shard: &Shard, slot: usize, needle: &Needle, finder: &Finder<'_>) -> bool {
    let (start, end) = (shard.slot_start(slot), shard.slot_end(slot));
    let mut pos = start;
    while pos < end {
        let Some(i) = finder.find(&shard.text[pos..end]) else {
            return false;
        };
        let hit = pos + i;
        match accept(shard, slot, hit, needle) {
            Ok(()) => return true,
            Err(next) => pos = next.max(hit + 1),
        }
    }
    false
}

/// Evaluates `plan` over one shard, restricted to `candidates` (slots
/// outside it may come back set or not; the caller masks).
fn eval(plan: &Plan, shard: &Shard, meta: &dyn SlotMeta, candidates: &Bits) -> Bits {
    let n = shard.slots();
    match plan {
        Plan::All => Bits::ones(n),
        Plan::Filter(f) => {
            let mut bits = Bits::zeros(n);
            for slot in candidates.iter() {
                if meta
                    .meta(shard, slot)
                    .is_some_and(|m| filter_matches(f, &m))
                {
                    bits.set(slot);
                }
            }
            bits
        }
        Plan::Text(needle) => {
            let finder = Finder::new(&needle.bytes);
            let c = candidates.count();
            if c * 8 < n {
                let mut bits = Bits::zeros(n);
                for slot in candidates.iter() {
                    if slot_matches(shard, slot, needle, &finder) {
                        bits.set(slot);
                    }
                }
                bits
            } else {
                scan_all(shard, needle, &finder)
            }
        }
        Plan::And(children) => {
            let mut acc = candidates.clone();
            for child in ordered(children) {
                if acc.count() == 0 {
                    break;
                }
                let b = eval(child, shard, meta, &acc);
                acc.and(&b);
            }
            acc
        }
        Plan::Or(children) => {
            let mut acc = Bits::zeros(n);
            for child in children {
                let b = eval(child, shard, meta, candidates);
                acc.or(&b);
            }
            acc
        }
        Plan::Not(child) => {
            let mut b = eval(child, shard, meta, candidates);
            b.not();
            b
        }
    }
}

/// Children of a conjunction, cheapest and most selective first: filters,
/// then text by descending needle length (longer needles are rarer), then
/// the rest.
fn ordered(children: &[Plan]) -> Vec<&Plan> {
    let mut v: Vec<&Plan> = children.iter().collect();
    v.sort_by_key(|p| match p {
        Plan::Filter(_) => (0, 0),
        Plan::Text(n) => (1, usize::MAX - n.bytes.len()),
        Plan::And(_) | Plan::Or(_) => (2, 0),
        Plan::Not(_) => (3, 0),
        Plan::All => (4, 0),
    });
    v
}

/// Live matching slots of one shard.
pub(crate) fn matching_slots(plan: &Plan, shard: &Shard, meta: &dyn SlotMeta) -> Vec<usize> {
    let n = shard.slots();
    if n == 0 {
        return Vec::new();
    }
    // Dead slots are marked in the shard itself: no metadata lookup needed.
    let mut live = Bits::zeros(n);
    for (slot, &e) in shard.entries.iter().enumerate() {
        if e != u32::MAX {
            live.set(slot);
        }
    }
    let mut bits = eval(plan, shard, meta, &live);
    bits.and(&live);
    bits.iter().collect()
}

/// Matching slots of every shard, in parallel: `(shard, slot)` pairs.
pub(crate) fn scan(plan: &Plan, shards: &[Shard], entries: &[Option<Entry>]) -> Vec<(u32, u32)> {
    shards
        .par_iter()
        .enumerate()
        .flat_map_iter(|(si, shard)| {
            matching_slots(plan, shard, &Entries(entries))
                .into_iter()
                .map(move |slot| (si as u32, slot as u32))
        })
        .collect()
}

/// Occurrences of a needle in one slot (allowed fields only), and how many
/// of those are in the subject: the term frequencies relevance uses.
pub(crate) fn term_frequency(shard: &Shard, slot: usize, needle: &Needle) -> (u32, u32) {
    let finder = Finder::new(&needle.bytes);
    let (start, end) = (shard.slot_start(slot), shard.slot_end(slot));
    let (mut tf, mut subject) = (0, 0);
    let mut pos = start;
    while pos < end {
        let Some(i) = finder.find(&shard.text[pos..end]) else {
            break;
        };
        let hit = pos + i;
        match accept(shard, slot, hit, needle) {
            Ok(()) => {
                tf += 1;
                if shard.field_at(slot, hit) == Field::Subject as usize {
                    subject += 1;
                }
                pos = hit + needle.bytes.len();
            }
            Err(next) => pos = next.max(hit + 1),
        }
    }
    (tf, subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;
    use crate::query::{parse, plan::plan};

    struct Plain(Vec<Record>);
    impl SlotMeta for Plain {
        fn meta(&self, _shard: &Shard, slot: usize) -> Option<Meta<'_>> {
            let r = self.0.get(slot)?;
            Some(Meta {
                timestamp: r.timestamp,
                flags: r.flags,
                folders: &r.folders,
            })
        }
    }

    fn shard(records: &[Record]) -> Shard {
        let mut s = Shard::default();
        let mut scratch = String::new();
        for (i, r) in records.iter().enumerate() {
            s.push(r, i as u32, &mut scratch);
        }
        s
    }

    fn rec(subject: &str, body: &str) -> Record {
        Record {
            subject: subject.into(),
            body: body.into(),
            folders: vec!["inbox".into()],
            ..Default::default()
        }
    }

    fn hits(q: &str, records: &[Record]) -> Vec<usize> {
        let s = shard(records);
        matching_slots(&plan(&parse(q).unwrap()), &s, &Plain(records.to_vec()))
    }

    #[test]
    fn prefix_phrase_field_and_boolean() {
        let rs = vec![
            rec("Quarterly report", "numbers are up, see the café menu"),
            rec("Lunch", "the report is late"),
            rec("apt-get tips", "use o'reilly books"),
        ];
        assert_eq!(hits("report", &rs), vec![0, 1]);
        assert_eq!(hits("rep", &rs), vec![0, 1]);
        assert_eq!(hits("subject:report", &rs), vec![0]);
        assert_eq!(hits("\"report is\"", &rs), vec![1]);
        assert_eq!(hits("\"report i\"", &rs), Vec::<usize>::new());
        assert_eq!(hits("cafe", &rs), vec![0]);
        assert_eq!(hits("report -late", &rs), vec![0]);
        assert_eq!(hits("lunch OR apt", &rs), vec![1, 2]);
        assert_eq!(hits("apt-ge", &rs), vec![2]);
        assert_eq!(hits("oreilly", &rs), Vec::<usize>::new());
        assert_eq!(hits("o'reil", &rs), vec![2]);
        assert_eq!(hits("-report", &rs), vec![2]);
        assert_eq!(hits("in:INBOX report", &rs), vec![0, 1]);
        // A phrase never spans two fields.
        assert_eq!(hits("\"report numbers\"", &rs), Vec::<usize>::new());
    }

    #[test]
    fn bits_ops() {
        let mut b = Bits::ones(70);
        assert_eq!(b.count(), 70);
        b.not();
        assert_eq!(b.count(), 0);
        b.set(69);
        b.set(3);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 69]);
    }
}
