//! Split-word query: owns matching exact tokens followed, at the next
//! position, by any token that starts with a prefix (`e-mail`, `o'rei`).
//!
//! The query language reads `e-mail` as the tokens `e` and `mail`, the
//! last one a prefix, at adjacent positions, as the forward scan does.
//! tantivy's `PhrasePrefixQuery` has those semantics, but it walks every
//! record holding the exact tokens and, for each one, visits every term
//! the prefix expands to: on a million messages, `e-mail` (`e` in a few
//! hundred thousand records, `mail…` a few thousand terms) took 55 ms.
//!
//! This query works through a segment in windows of records: the exact
//! tokens give a window's candidates, then each expansion's postings are
//! walked across the window once, reading positions only on candidates not
//! yet matched (see [`SplitWordScorer`]). On the same million messages,
//! measured side by side: 44 ms against tantivy's 83–101 ms, same hits.
//! (A first version, a heap-ordered union of the expansions, was no faster
//! than tantivy: a logarithm per posting over thousands of expansions.)
//!
//! Scores are constant (the boost): a split word is a filter-like match,
//! and relevance ranks records by the other words of a query.

use std::fmt;

use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{EmptyScorer, EnableScoring, Explanation, Query as TQuery, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// Exact terms at consecutive positions, followed by a term that starts
/// with `prefix`, all in one field.
#[derive(Clone)]
pub(crate) struct SplitWordQuery {
    field: Field,
    exact: Vec<Term>,
    prefix: Vec<u8>,
}

impl fmt::Debug for SplitWordQuery {
    // Terms are query text: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitWordQuery")
            .field("exact_terms", &self.exact.len())
            .finish_non_exhaustive()
    }
}

impl SplitWordQuery {
    /// `exact` must be non-empty and every term in `field`; `prefix` is the
    /// last token's text.
    pub(crate) fn new(field: Field, exact: Vec<Term>, prefix: &str) -> Self {
        SplitWordQuery {
            field,
            exact,
            prefix: prefix.as_bytes().to_vec(),
        }
    }
}

impl TQuery for SplitWordQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for t in &self.exact {
            visitor(t, true);
        }
    }
}

/// The first byte string after every string that starts with `prefix`,
/// or `None` when there is none (a prefix of only `0xFF` bytes).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl SplitWordQuery {
    fn split_scorer(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<Option<SplitWordScorer>> {
        if self.exact.is_empty() {
            return Ok(None);
        }
        let inv = reader.inverted_index(self.field)?;
        let mut exact = Vec::with_capacity(self.exact.len());
        for t in &self.exact {
            match inv.read_postings(t, IndexRecordOption::WithFreqsAndPositions)? {
                Some(p) => exact.push(p),
                None => return Ok(None),
            }
        }
        let mut range = inv.terms().range().ge(&self.prefix);
        if let Some(end) = prefix_end(&self.prefix) {
            range = range.lt(end);
        }
        let mut stream = range.into_stream()?;
        let mut suffixes = Vec::new();
        while stream.advance() {
            let postings = inv.read_postings_from_terminfo(
                stream.value(),
                IndexRecordOption::WithFreqsAndPositions,
            )?;
            suffixes.push(postings);
        }
        if suffixes.is_empty() {
            return Ok(None);
        }
        Ok(Some(SplitWordScorer::new(exact, suffixes, boost)))
    }
}

impl Weight for SplitWordQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.split_scorer(reader, boost)? {
            Some(s) => Box::new(s),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let matched = match self.split_scorer(reader, 1.0)? {
            Some(mut s) => s.seek(doc) == doc,
            None => false,
        };
        if matched {
            Ok(Explanation::new("split word", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "record {doc} does not match"
            )))
        }
    }
}

/// Records per window of the scorer (see [`SplitWordScorer`]).
const WINDOW: DocId = 1 << 14;

/// The scorer. It works through the segment in windows of [`WINDOW`]
/// records:
///
/// 1. the exact terms' postings give the window's candidates (records with
///    every exact term at consecutive positions), with the positions where
///    the prefix's token would have to be;
/// 2. each expansion's postings are walked from the first candidate to the
///    last, and its positions are read only on candidates not yet matched.
///
/// A posting of an expansion thus costs an advance and a table lookup,
/// where tantivy's phrase-prefix visits every expansion for every record
/// holding the exact terms, and a heap-ordered union pays a logarithm per
/// posting. A window without candidates never touches the expansions.
struct SplitWordScorer {
    exact: Vec<SegmentPostings>,
    /// The expansions not yet exhausted.
    suffixes: Vec<SegmentPostings>,
    /// The matches of the current window, ascending, and the next one to
    /// yield.
    matched: Vec<DocId>,
    next: usize,
    /// The current window: `[window_start, window_end)`.
    window_start: DocId,
    window_end: DocId,
    doc: DocId,
    score: Score,
    /// The window's candidates; for each, where its `ends` are in
    /// `ends` and whether an expansion matched it.
    candidates: Vec<Candidate>,
    ends: Vec<u32>,
    /// For each record of the window, its candidate's index plus one (0:
    /// not a candidate).
    slot: Vec<u32>,
    scratch: Vec<u32>,
}

struct Candidate {
    doc: DocId,
    ends: std::ops::Range<usize>,
    matched: bool,
}

impl SplitWordScorer {
    fn new(exact: Vec<SegmentPostings>, suffixes: Vec<SegmentPostings>, score: Score) -> Self {
        let mut s = SplitWordScorer {
            exact,
            suffixes,
            matched: Vec::new(),
            next: 0,
            window_start: 0,
            window_end: 0,
            doc: 0,
            score,
            candidates: Vec::new(),
            ends: Vec::new(),
            slot: vec![0; WINDOW as usize],
            scratch: Vec::new(),
        };
        s.suffixes.retain(|p| p.doc() != TERMINATED);
        s.doc = s.first_match_from(0);
        s
    }

    /// The first match at or after `target`, filling windows as needed.
    fn first_match_from(&mut self, mut target: DocId) -> DocId {
        // Within the current window: its matches are already known.
        if target < self.window_end {
            while let Some(&d) = self.matched.get(self.next) {
                if d >= target {
                    return d;
                }
                self.next += 1;
            }
            target = self.window_end;
        }
        loop {
            let Some(start) = self.next_exact(target) else {
                self.window_end = TERMINATED;
                self.matched.clear();
                self.next = 0;
                return TERMINATED;
            };
            self.fill_window(start);
            if let Some(&d) = self.matched.first() {
                return d;
            }
            target = self.window_end;
        }
    }

    /// The first record at or after `target` holding every exact term.
    fn next_exact(&mut self, mut target: DocId) -> Option<DocId> {
        'outer: loop {
            if target == TERMINATED {
                return None;
            }
            for p in &mut self.exact {
                let mut d = p.doc();
                if d < target {
                    d = p.seek(target);
                }
                if d > target {
                    target = d;
                    continue 'outer;
                }
            }
            return Some(target);
        }
    }

    /// Finds the matches in `[start, start + WINDOW)`; `start` holds every
    /// exact term.
    fn fill_window(&mut self, start: DocId) {
        let end = start.saturating_add(WINDOW).min(TERMINATED);
        self.matched.clear();
        self.next = 0;
        // Clear the previous window's slots (only those set).
        for c in &self.candidates {
            self.slot[(c.doc - self.window_start) as usize] = 0;
        }
        self.window_start = start;
        self.window_end = end;
        self.candidates.clear();
        self.ends.clear();
        // 1. Candidates from the exact terms.
        let mut doc = Some(start);
        while let Some(d) = doc.filter(|&d| d < end) {
            let from = self.ends.len();
            if self.exact_ends() {
                self.candidates.push(Candidate {
                    doc: d,
                    ends: from..self.ends.len(),
                    matched: false,
                });
                self.slot[(d - start) as usize] = self.candidates.len() as u32;
            } else {
                self.ends.truncate(from);
            }
            doc = self.next_exact(d + 1);
        }
        let (Some(first), Some(last)) = (self.candidates.first(), self.candidates.last()) else {
            return;
        };
        let (first, last) = (first.doc, last.doc);
        // 2. The expansions, from the first candidate to the last.
        let mut i = 0;
        while i < self.suffixes.len() {
            let p = &mut self.suffixes[i];
            let mut d = p.doc();
            if d < first {
                d = p.seek(first);
            }
            while d <= last {
                let slot = self.slot[(d - start) as usize];
                if slot != 0 {
                    let c = &mut self.candidates[slot as usize - 1];
                    if !c.matched {
                        p.positions(&mut self.scratch);
                        c.matched = sorted_intersect(&self.ends[c.ends.clone()], &self.scratch);
                    }
                }
                d = p.advance();
            }
            if d == TERMINATED {
                self.suffixes.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.matched
            .extend(self.candidates.iter().filter(|c| c.matched).map(|c| c.doc));
    }

    /// Appends to `ends` the positions where the prefix's token would sit
    /// on `doc` (every exact term is on it): each exact term's positions
    /// shifted by its distance to the end, intersected. Whether any.
    fn exact_ends(&mut self) -> bool {
        let n = self.exact.len() as u32;
        let from = self.ends.len();
        for (j, p) in self.exact.iter_mut().enumerate() {
            let shift = n - j as u32;
            if j == 0 {
                p.append_positions_with_offset(shift, &mut self.ends);
            } else {
                p.positions_with_offset(shift, &mut self.scratch);
                let other = &self.scratch;
                let mut k = from;
                for r in from..self.ends.len() {
                    if other.binary_search(&self.ends[r]).is_ok() {
                        self.ends[k] = self.ends[r];
                        k += 1;
                    }
                }
                self.ends.truncate(k);
            }
            if self.ends.len() == from {
                return false;
            }
        }
        true
    }
}

/// Whether two sorted lists share an element.
fn sorted_intersect(a: &[u32], b: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

impl DocSet for SplitWordScorer {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.first_match_from(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.first_match_from(target);
        }
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.exact.iter().map(|p| p.size_hint()).min().unwrap_or(0)
    }

    fn cost(&self) -> u64 {
        // Positions are read for the candidates: dearer than a plain
        // intersection, as tantivy rates its phrase queries.
        self.size_hint() as u64 * 10
    }
}

impl Scorer for SplitWordScorer {
    fn score(&mut self) -> Score {
        self.score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::DocSetCollector;
    use tantivy::query::PhrasePrefixQuery;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, IndexWriter, TantivyDocument};

    /// Against tantivy's phrase-prefix query (same semantics, unlimited
    /// expansions) on segments larger than a window, with dense and rare
    /// exact terms, one and two exact terms, and expansions that run out.
    #[test]
    fn matches_tantivy_phrase_prefix_across_windows() {
        let mut builder = Schema::builder();
        let body = builder.add_text_field("body", TEXT);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, 50_000_000).unwrap();
        let words = [
            "e", "mail", "mailing", "mailbox", "x", "a", "b", "ma", "m", "email", "rare",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for segment in 0..2 {
            for i in 0..(WINDOW as usize * 2 + 517) {
                let len = 2 + next() % 7;
                let mut text = Vec::new();
                for _ in 0..len {
                    let w = words[(next() % (words.len() as u64 - 1)) as usize];
                    text.push(w);
                }
                if i % 4_099 == 0 {
                    text.push("rare");
                    text.push("mailbox");
                }
                let mut doc = TantivyDocument::default();
                doc.add_text(body, text.join(" "));
                writer.add_document(doc).unwrap();
            }
            if segment == 1 {
                // Mailbox runs out early in this segment's expansions.
                let mut doc = TantivyDocument::default();
                doc.add_text(body, "e mailzz");
                writer.add_document(doc).unwrap();
            }
            writer.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        let term = |t: &str| Term::from_field_text(body, t);
        for (exact, prefix) in [
            (&["e"][..], "mail"),
            (&["e"][..], "m"),
            (&["rare"][..], "mailb"),
            (&["a", "b"][..], "ma"),
            (&["x", "e"][..], "mailing"),
            (&["e"][..], "nothing"),
        ] {
            let ours = SplitWordQuery::new(body, exact.iter().map(|t| term(t)).collect(), prefix);
            let mut terms: Vec<Term> = exact.iter().map(|t| term(t)).collect();
            terms.push(term(prefix));
            let mut theirs = PhrasePrefixQuery::new(terms);
            theirs.set_max_expansions(u16::MAX.into());
            let got = searcher.search(&ours, &DocSetCollector).unwrap();
            let want = searcher.search(&theirs, &DocSetCollector).unwrap();
            assert_eq!(got, want, "{exact:?} {prefix}");
            if prefix != "nothing" {
                assert!(!want.is_empty(), "{exact:?} {prefix}: the test must match");
            }
        }
    }
}
