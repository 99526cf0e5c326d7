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
//! This query treats the expansions as one union, kept in a min-heap by
//! their current record, and intersects that union with the exact tokens
//! by leapfrogging: each side skips to the other's next record, so a term
//! of the expansion is only touched where it can matter, and a rare one is
//! dropped once it has run out. Positions are read only for records that
//! hold every part; the match is then checked position by position.
//!
//! Scores are constant (the boost): a split word is a filter-like match,
//! and relevance ranks records by the other words of a query.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

/// The scorer: leapfrogs the exact terms' postings and the heap of the
/// expansions' postings; see the module docs.
struct SplitWordScorer {
    exact: Vec<SegmentPostings>,
    suffixes: Vec<SegmentPostings>,
    /// `(current record, index into suffixes)` of every expansion not yet
    /// exhausted.
    heap: BinaryHeap<Reverse<(DocId, usize)>>,
    doc: DocId,
    score: Score,
    /// Scratch: the positions where a match ends, and one term's positions.
    ends: Vec<u32>,
    scratch: Vec<u32>,
    /// Scratch: the expansions positioned on the candidate record.
    on_doc: Vec<usize>,
}

impl SplitWordScorer {
    fn new(exact: Vec<SegmentPostings>, suffixes: Vec<SegmentPostings>, score: Score) -> Self {
        let heap = suffixes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.doc() != TERMINATED)
            .map(|(i, p)| Reverse((p.doc(), i)))
            .collect();
        let mut s = SplitWordScorer {
            exact,
            suffixes,
            heap,
            doc: 0,
            score,
            ends: Vec::new(),
            scratch: Vec::new(),
            on_doc: Vec::new(),
        };
        s.doc = s.next_match(0);
        s
    }

    /// The first record at or after `target` that holds every part at the
    /// right positions.
    fn next_match(&mut self, mut target: DocId) -> DocId {
        loop {
            let Some(candidate) = self.next_common(target) else {
                return TERMINATED;
            };
            if self.positions_match(candidate) {
                return candidate;
            }
            target = candidate + 1;
        }
    }

    /// The first record at or after `target` that holds every exact term
    /// and some expansion, with every postings list on it.
    fn next_common(&mut self, mut target: DocId) -> Option<DocId> {
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
            // Every exact term is on `target`: bring the union there.
            while let Some(&Reverse((d, i))) = self.heap.peek() {
                if d >= target {
                    break;
                }
                self.heap.pop();
                let nd = self.suffixes[i].seek(target);
                if nd != TERMINATED {
                    self.heap.push(Reverse((nd, i)));
                }
            }
            match self.heap.peek() {
                None => return None,
                Some(&Reverse((d, _))) if d > target => target = d,
                Some(_) => return Some(target),
            }
        }
    }

    /// Whether, on `doc` (where every list is positioned), the exact terms
    /// sit at consecutive positions followed by an expansion.
    fn positions_match(&mut self, doc: DocId) -> bool {
        // Positions where the last (prefix) token would be: each exact
        // term's positions shifted by its distance to the end.
        let n = self.exact.len() as u32;
        for (j, p) in self.exact.iter_mut().enumerate() {
            let shift = n - j as u32;
            if j == 0 {
                p.positions_with_offset(shift, &mut self.ends);
            } else {
                p.positions_with_offset(shift, &mut self.scratch);
                let other = &self.scratch;
                self.ends.retain(|e| other.binary_search(e).is_ok());
            }
            if self.ends.is_empty() {
                return false;
            }
        }
        self.on_doc.clear();
        while let Some(&Reverse((d, i))) = self.heap.peek() {
            if d != doc {
                break;
            }
            self.heap.pop();
            self.on_doc.push(i);
        }
        let mut found = false;
        for &i in &self.on_doc {
            if !found {
                self.suffixes[i].positions(&mut self.scratch);
                found = sorted_intersect(&self.ends, &self.scratch);
            }
            self.heap.push(Reverse((doc, i)));
        }
        found
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
            self.doc = self.next_match(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.next_match(target);
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
