//! The forward scan: evaluates a plan over the cache's token-stream arenas
//! in parallel, and over the records beyond the cache budget streamed from
//! the store.
//!
//! Each shard is evaluated into a bit set of matching slots. Filters on
//! dates, folders, flags and kinds read the shard's per-slot columns (a load and a
//! compare per record, vectorisable) and run first inside a conjunction;
//! text terms then search only where needed: a full `memmem` pass over the
//! arena while many records are still candidates, or a search of each
//! candidate's own bytes once few are. A hit maps to its record with a
//! cursor that only moves forward over the slot bounds, is checked for
//! field and token end, and the search jumps to the next record: a record
//! is never scanned past its first match.
//!
//! What a search needs from the matches (their count, and the best page
//! of them in result order) is gathered per shard by the caller with
//! [`Best`], so no list of every match is ever built.

use std::cmp::Ordering;

use aho_corasick::{Span, packed};
use memchr::memmem::Finder;
use rayon::prelude::*;

use crate::cache::{FolderSets, STRIDE, Shard};
use crate::query::plan::{DEFAULT_FIELDS, FilterPlan, Needle, Plan};
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
    /// The bit set of `pred` over a column, built a word at a time.
    fn from_column<T>(column: &[T], pred: impl Fn(&T) -> bool) -> Self {
        let words = column
            .chunks(64)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, x)| w | (u64::from(pred(x)) << i))
            })
            .collect();
        Bits {
            words,
            len: column.len(),
        }
    }
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    #[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
    pub(crate) fn clear(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
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

/// What a plan needs resolved once per query against the folder sets of
/// the shards it runs over: for each folder name it filters on, which set
/// ids hold that name.
///
/// And for each disjunction of two or more text terms, one multi-pattern
/// searcher over their needles: a dense `a OR b OR c` then costs one pass
/// over an arena instead of one `memmem` pass per term.
#[derive(Debug, Default)]
pub(crate) struct Prepared<'p> {
    folders: Vec<(&'p str, Vec<bool>)>,
    /// Keyed by the disjunction's children (by address): the searcher and
    /// the text needles it searches for, in pattern order.
    any_of: Vec<(&'p [Plan], packed::Searcher, Vec<&'p Needle>)>,
}

impl<'p> Prepared<'p> {
    /// Resolves every folder filter of `plan` against `sets`.
    pub(crate) fn new(plan: &'p Plan, sets: &FolderSets) -> Self {
        fn walk<'p>(p: &'p Plan, sets: &FolderSets, out: &mut Prepared<'p>) {
            match p {
                Plan::And(ps) => ps.iter().for_each(|p| walk(p, sets, out)),
                Plan::Or(ps) => {
                    let needles: Vec<&Needle> = ps
                        .iter()
                        .filter_map(|p| match p {
                            Plan::Text(n) => Some(n),
                            _ => None,
                        })
                        .collect();
                    if needles.len() >= 2 {
                        // The packed (Teddy, SIMD) searcher directly: the
                        // general automaton's own choice of prefilter for
                        // patterns that all start with a space is a scan
                        // for that space, a stop at every token (30 times
                        // slower than one memmem pass per needle, measured).
                        // Leftmost-first: the scan re-checks every needle
                        // at a reported position, so which one it names
                        // does not matter.
                        let mut b = packed::Config::new()
                            .match_kind(packed::MatchKind::LeftmostFirst)
                            .builder();
                        // Without the leading space every needle has: the
                        // searcher fingerprints the first bytes of each
                        // pattern, and a space there tells nothing.
                        needles.iter().for_each(|n| {
                            b.add(&n.bytes[1..]);
                        });
                        // None where Teddy is unavailable (no SIMD, too
                        // many needles): the terms are then scanned one
                        // by one.
                        if let Some(searcher) = b.build() {
                            out.any_of.push((ps, searcher, needles));
                        }
                    }
                    ps.iter().for_each(|p| walk(p, sets, out));
                }
                Plan::Not(p) => walk(p, sets, out),
                Plan::Filter(FilterPlan::Folder(name)) => {
                    if !out.folders.iter().any(|(n, _)| n == name) {
                        out.folders.push((name, sets.sets_with(name)));
                    }
                }
                Plan::Filter(_) | Plan::Text(_) | Plan::All => {}
            }
        }
        let mut prep = Prepared::default();
        walk(plan, sets, &mut prep);
        prep
    }

    /// The searcher and needles prepared for a disjunction, if any.
    fn any_of(&self, children: &[Plan]) -> Option<(&packed::Searcher, &[&'p Needle])> {
        self.any_of
            .iter()
            .find(|(c, _, _)| std::ptr::eq(*c, children))
            .map(|(_, s, needles)| (s, &needles[..]))
    }

    /// For each set id, whether it holds folder `name` (empty if the plan
    /// was not prepared with it, which then matches nothing).
    fn folder(&self, name: &str) -> &[bool] {
        self.folders
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, t)| &t[..])
    }
}

/// The slots of a shard passing a filter, from its columns.
fn filter_bits(f: &FilterPlan, shard: &Shard, prep: &Prepared<'_>) -> Bits {
    let ts = &shard.timestamps[..];
    let flag =
        |want: Flags, on: bool| Bits::from_column(&shard.flags, move |f| f.contains(want) == on);
    match f {
        FilterPlan::Folder(name) => {
            let table = prep.folder(name);
            Bits::from_column(&shard.folder_sets, |&s| {
                table.get(s as usize).copied().unwrap_or(false)
            })
        }
        FilterPlan::After(t) => Bits::from_column(ts, |x| x.is_some_and(|x| x >= *t)),
        FilterPlan::Before(t) => Bits::from_column(ts, |x| x.is_some_and(|x| x < *t)),
        FilterPlan::HasAttachment => flag(Flags::HAS_ATTACHMENT, true),
        FilterPlan::Unread => flag(Flags::UNREAD, true),
        FilterPlan::Read => flag(Flags::UNREAD, false),
        FilterPlan::Flagged => flag(Flags::FLAGGED, true),
        FilterPlan::Kind(k) => Bits::from_column(&shard.kinds, |x| x == k),
    }
}

/// Whether a hit at `hit` (in `slot`) is a real match of the needle.
#[inline]
fn accept(shard: &Shard, slot: usize, hit: usize, needle: &Needle) -> Result<(), usize> {
    let field = shard.field_at(slot, hit);
    if needle.fields & (1 << field) == 0 {
        // Skip the rest of this field.
        return Err(shard.bounds[slot * STRIDE + field + 1] as usize);
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
    let (mut pos, mut slot) = (0, 0);
    while pos < text.len() {
        let Some(i) = finder.find(&text[pos..]) else {
            break;
        };
        let hit = pos + i;
        slot = shard.slot_from(slot, hit);
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

/// Slots where any of `needles` matches, in one pass of `searcher` (made
/// from them) over the whole arena. At each position the searcher
/// reports, every needle is checked there, so a rejected hit of one (wrong
/// field, or inside a token) never hides an accepted one of another at the
/// same place; the search goes on from the next byte, or from the end of an
/// accepted slot. (Needles always start with a space and a token byte, so
/// what the searcher looks for is never empty.)
fn scan_any(shard: &Shard, needles: &[&Needle], searcher: &packed::Searcher) -> Bits {
    let mut bits = Bits::zeros(shard.slots());
    let text = &shard.text[..];
    let (mut pos, mut slot) = (0, 0);
    while pos < text.len() {
        let Some(m) = searcher.find_in(text, Span::from(pos..text.len())) else {
            break;
        };
        // The searcher looks for the needles without their leading space:
        // a needle would start one byte earlier.
        let Some(hit) = m.start().checked_sub(1) else {
            pos = 1;
            continue;
        };
        slot = shard.slot_from(slot, hit);
        let here = &text[hit..];
        if needles
            .iter()
            .any(|n| here.starts_with(&n.bytes) && accept(shard, slot, hit, n).is_ok())
        {
            bits.set(slot);
            pos = shard.slot_end(slot);
        } else {
            pos = m.start() + 1;
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

/// Whether `count` candidates of `n` slots are many enough that one pass
/// over the whole shard costs less than visiting them one by one.
fn dense(count: usize, n: usize) -> bool {
    count * 8 >= n
}

/// Evaluates `plan` over one shard, restricted to `candidates` (slots
/// outside it may come back set or not; the caller masks).
fn eval(plan: &Plan, shard: &Shard, prep: &Prepared<'_>, candidates: &Bits) -> Bits {
    let n = shard.slots();
    match plan {
        Plan::All => Bits::ones(n),
        // Every slot: a column pass costs less than visiting the candidates.
        Plan::Filter(f) => filter_bits(f, shard, prep),
        Plan::Text(needle) => {
            let finder = Finder::new(&needle.bytes);
            if !dense(candidates.count(), n) {
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
                let b = eval(child, shard, prep, &acc);
                acc.and(&b);
            }
            acc
        }
        Plan::Or(children) => {
            let mut acc = Bits::zeros(n);
            let any_of = prep
                .any_of(children)
                .filter(|_| dense(candidates.count(), n));
            if let Some((searcher, needles)) = any_of {
                acc = scan_any(shard, needles, searcher);
            }
            for child in children {
                if any_of.is_some() && matches!(child, Plan::Text(_)) {
                    continue;
                }
                let b = eval(child, shard, prep, candidates);
                acc.or(&b);
            }
            acc
        }
        Plan::Not(child) => {
            let mut b = eval(child, shard, prep, candidates);
            b.not();
            b
        }
    }
}

/// Children of a conjunction, cheapest and most selective first: filters
/// (a column pass each, far cheaper than any text scan), then text, then
/// the rest. Among text terms, one searching every field before one
/// restricted to some (`to:x`): a restricted needle's full scan also pays
/// for every hit in the other fields, only to reject it (a sender's address
/// is in the from field of every message they sent, so `to:addr` hits
/// those too); then by descending length, since longer needles are rarer.
/// Only the first text term of a conjunction usually scans the whole
/// arena; the later ones search the few candidates left.
fn ordered(children: &[Plan]) -> Vec<&Plan> {
    let mut v: Vec<&Plan> = children.iter().collect();
    v.sort_by_key(|p| match p {
        Plan::Filter(_) => (0, 0, 0),
        Plan::Text(n) => (
            1,
            usize::from(n.fields != DEFAULT_FIELDS),
            usize::MAX - n.bytes.len(),
        ),
        Plan::And(_) | Plan::Or(_) => (2, 0, 0),
        Plan::Not(_) => (3, 0, 0),
        Plan::All => (4, 0, 0),
    });
    v
}

/// Live matching slots of one shard.
pub(crate) fn shard_matches(plan: &Plan, shard: &Shard, prep: &Prepared<'_>) -> Bits {
    let n = shard.slots();
    // Dead slots are marked in the shard itself: no metadata lookup needed.
    let live = Bits::from_column(&shard.entries, |&e| e != u32::MAX);
    if n == 0 {
        return live;
    }
    let mut bits = eval(plan, shard, prep, &live);
    bits.and(&live);
    bits
}

/// How many records of the shards match, in parallel.
pub(crate) fn count(plan: &Plan, shards: &[Shard], folders: &FolderSets) -> usize {
    let prep = Prepared::new(plan, folders);
    shards
        .par_iter()
        .map(|shard| shard_matches(plan, shard, &prep).count())
        .sum()
}

/// The best `k` items under an order, for gathering a page of results
/// without keeping every match: items are buffered up to `2k`, then cut
/// back to the best `k` (a selection, linear), which also sets the *bar*,
/// the worst item kept. Anything after the bar can never make the page, so
/// a caller that can tell that cheaply (from a timestamp column, before
/// looking the record up) skips it. Amortised O(1) per item.
pub(crate) struct Best<T, C> {
    k: usize,
    items: Vec<T>,
    bar: Option<T>,
    cmp: C,
}

impl<T: Clone, C: Fn(&T, &T) -> Ordering> Best<T, C> {
    /// Keeps the first `k` under `cmp` (`usize::MAX`: everything).
    pub(crate) fn new(k: usize, cmp: C) -> Self {
        Best {
            k,
            items: Vec::new(),
            bar: None,
            cmp,
        }
    }

    /// The worst item kept so far, once there are `k` of them.
    pub(crate) fn bar(&self) -> Option<&T> {
        self.bar.as_ref()
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.k == 0 {
            return;
        }
        self.items.push(item);
        if self.items.len() >= self.k.saturating_mul(2).max(64) {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.items.len() > self.k {
            let cmp = &self.cmp;
            self.items
                .select_nth_unstable_by(self.k - 1, |a, b| cmp(a, b));
            self.items.truncate(self.k);
            self.bar = self.items.iter().max_by(|a, b| cmp(a, b)).cloned();
        }
    }

    /// Adds another's items.
    pub(crate) fn merge(&mut self, other: Best<T, C>) {
        for item in other.items {
            self.push(item);
        }
    }

    /// The best `k`, in order.
    pub(crate) fn into_sorted(mut self) -> Vec<T> {
        self.cut();
        let cmp = &self.cmp;
        self.items.sort_unstable_by(|a, b| cmp(a, b));
        self.items
    }
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

    fn shard(records: &[Record]) -> (Shard, FolderSets) {
        let mut s = Shard::default();
        let mut sets = FolderSets::default();
        let mut scratch = String::new();
        for (i, r) in records.iter().enumerate() {
            s.push(r, i as u32, &mut sets, &mut scratch);
        }
        (s, sets)
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
        let (s, sets) = shard(records);
        let p = plan(&parse(q).unwrap());
        shard_matches(&p, &s, &Prepared::new(&p, &sets))
            .iter()
            .collect()
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

    #[test]
    fn filters_read_the_columns() {
        let mut rs = vec![
            rec("one", "x"),
            rec("two", "x"),
            rec("three", "x"),
            rec("four", "x"),
        ];
        rs[0].folders = vec!["Inbox".into(), "Work".into()];
        rs[1].folders = vec!["work".into()];
        rs[2].folders = vec![];
        rs[3].folders = vec!["STRASSE".into()];
        rs[0].timestamp = Some(100);
        rs[1].timestamp = Some(200);
        rs[3].timestamp = Some(300);
        rs[1].flags = Flags::UNREAD | Flags::HAS_ATTACHMENT;
        rs[2].flags = Flags::FLAGGED;
        assert_eq!(hits("in:work", &rs), vec![0, 1]);
        assert_eq!(hits("label:WORK in:inbox", &rs), vec![0]);
        assert_eq!(hits("in:straße", &rs), vec![3]);
        assert_eq!(hits("in:nowhere", &rs), Vec::<usize>::new());
        assert_eq!(hits("-in:work", &rs), vec![2, 3]);
        assert_eq!(hits("in:work OR in:inbox", &rs), vec![0, 1]);
        // Undated records match neither side of a date.
        assert_eq!(hits("after:1970-01-01", &rs), vec![0, 1, 3]);
        assert_eq!(hits("before:2000-01-01", &rs), vec![0, 1, 3]);
        assert_eq!(hits("-before:2000-01-01", &rs), vec![2]);
        assert_eq!(hits("is:unread", &rs), vec![1]);
        assert_eq!(hits("is:read", &rs), vec![0, 2, 3]);
        assert_eq!(hits("has:attachment", &rs), vec![1]);
        assert_eq!(hits("is:flagged two OR three", &rs), vec![2]);
        // Kinds: a column of their own; records of layout 1 are mail.
        rs[1].kind = crate::ContentKind::Event;
        rs[2].kind = crate::ContentKind::Chat;
        rs[3].kind = crate::ContentKind::File;
        assert_eq!(hits("kind:mail", &rs), vec![0]);
        assert_eq!(hits("kind:event", &rs), vec![1]);
        assert_eq!(hits("kind:chat OR kind:file", &rs), vec![2, 3]);
        assert_eq!(hits("-kind:mail x", &rs), vec![1, 2, 3]);
        assert_eq!(hits("kind:chat is:flagged", &rs), vec![2]);
    }

    #[test]
    fn a_disjunction_of_terms_is_one_pass_and_exact() {
        let rs = vec![
            rec("Films", "netflix tonight"),
            rec("net gains", "nothing"),
            rec("other", "a network issue"),
            rec("guitar", "x"),
            rec("nets", "x"),
        ];
        // Both needles start at the same place in record 0: the
        // restricted one is rejected there, the other accepted.
        assert_eq!(hits("subject:net OR netflix", &rs), vec![0, 1, 4]);
        assert_eq!(hits("netflix OR subject:net", &rs), vec![0, 1, 4]);
        assert_eq!(hits("\"net\" OR guitar OR zzz", &rs), vec![1, 3]);
        assert_eq!(hits("subject:\"net\" OR body:netw", &rs), vec![1, 2]);
        // Mixed with a filter and inside a conjunction.
        assert_eq!(hits("x (guitar OR nets OR is:unread)", &rs), vec![3, 4]);
        assert_eq!(hits("-(netflix OR network)", &rs), vec![1, 3, 4]);
    }

    #[test]
    fn dead_slots_never_match() {
        let rs: Vec<Record> = (0..130).map(|i| rec(&format!("w{i}"), "common")).collect();
        let (mut s, sets) = shard(&rs);
        s.entries[3] = u32::MAX;
        s.entries[129] = u32::MAX;
        let p = plan(&parse("common").unwrap());
        let got: Vec<usize> = shard_matches(&p, &s, &Prepared::new(&p, &sets))
            .iter()
            .collect();
        assert_eq!(got.len(), 128);
        assert!(!got.contains(&3) && !got.contains(&129));
        let p = plan(&parse("-common").unwrap());
        assert_eq!(shard_matches(&p, &s, &Prepared::new(&p, &sets)).count(), 0);
    }

    #[test]
    fn slot_cursor_agrees_with_a_linear_search() {
        let rs: Vec<Record> = (0..300)
            .map(|i| rec(&"s ".repeat(i % 7), &"word ".repeat(i % 13)))
            .collect();
        let (s, _) = shard(&rs);
        let linear = |pos: usize| {
            (0..s.slots())
                .rev()
                .find(|&i| s.slot_start(i) <= pos)
                .unwrap()
        };
        let mut from = 0;
        for pos in (0..s.text.len()).step_by(3) {
            let want = linear(pos);
            assert_eq!(s.slot_at(pos), want);
            assert_eq!(s.slot_from(from, pos), want);
            from = want;
        }
        // Far jumps from any earlier slot.
        for from in [0, 5, 100] {
            let pos = s.text.len() - 1;
            assert_eq!(s.slot_from(from, pos), s.slots() - 1);
        }
    }

    #[test]
    fn restricted_text_goes_after_unrestricted() {
        let p = plan(&parse("to:averylongaddress pizza in:x -y").unwrap());
        let Plan::And(children) = &p else { panic!() };
        let order: Vec<String> = ordered(children)
            .iter()
            .map(|p| match p {
                Plan::Filter(_) => "filter".into(),
                Plan::Text(n) => String::from_utf8_lossy(&n.bytes).into_owned(),
                Plan::Not(_) => "not".into(),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(order, ["filter", " pizza", " averylongaddress", "not"]);
    }

    #[test]
    fn best_keeps_the_first_k_in_order() {
        let cmp = |a: &u32, b: &u32| a.cmp(b);
        let mut b = Best::new(5, cmp);
        let mut other = Best::new(5, cmp);
        // A scrambled permutation of 0..1000.
        for i in 0..1000u32 {
            let x = (i * 7919) % 1000;
            if i % 2 == 0 {
                b.push(x);
            } else {
                other.push(x);
            }
        }
        assert!(b.bar().is_some_and(|&bar| bar >= 4));
        b.merge(other);
        assert_eq!(b.into_sorted(), vec![0, 1, 2, 3, 4]);
        let mut all = Best::new(usize::MAX, |a: &u32, b: &u32| b.cmp(a));
        (0..100).for_each(|x| all.push(x));
        assert!(all.bar().is_none());
        assert_eq!(all.into_sorted().len(), 100);
        let mut none = Best::new(0, |a: &u32, b: &u32| a.cmp(b));
        none.push(1);
        assert!(none.into_sorted().is_empty());
    }
}
