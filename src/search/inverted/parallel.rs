//! Segment parallelism: owns running one search's segments on several
//! threads when the index is large enough for it to pay.
//!
//! tantivy searches one segment at a time on the calling thread. At a
//! million messages a broad phrase or exclusion spends 15–30 ms in
//! position checks and unions that no cheaper query plan avoids
//! (`bench-notes/round4.md`); the segments are independent, so the only
//! way to answer sooner is to check them at the same time. tantivy's own
//! multi-threaded executor hands every segment to its pool, the tiny ones
//! too, and makes the caller wait idle; here the segments are grouped
//! into as many groups as there are threads, largest first onto the
//! least loaded group, and the caller works through the first group
//! itself while the pool takes the others.
//!
//! Small indexes are searched as before, on the caller alone: a thread
//! hop costs tens of microseconds, more than a whole query over a few
//! thousand records. The pool's threads are started by the first search
//! that is split, so an index that never grows that large never starts
//! them.
//!
//! Splitting changes nothing in what is found: each segment is collected
//! by the collector's own `collect_segment`, and the fruits are merged in
//! segment order, as tantivy merges them.

use std::sync::OnceLock;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{EnableScoring, Query as TQuery};
use tantivy::{DocId, Searcher, SegmentReader};
use tracing::warn;

/// Below this many records outside the largest group, a search is not
/// split: the thread hop would cost more than it saves.
pub(crate) const SPLIT_MIN_DOCS: u64 = 32_768;

/// What one segment's collector gives.
type SegmentFruit<C> = <<C as Collector>::Child as SegmentCollector>::Fruit;

/// What one group of segments gives: each segment's fruit, by ordinal.
type GroupFruits<C> = tantivy::Result<Vec<(usize, SegmentFruit<C>)>>;

/// Threads for one search: the caller plus the pool's.
pub(crate) struct SearchThreads {
    threads: usize,
    min_docs: u64,
    pool: OnceLock<Option<rayon::ThreadPool>>,
}

impl std::fmt::Debug for SearchThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchThreads")
            .field("threads", &self.threads)
            .field("min_docs", &self.min_docs)
            .field("started", &self.started())
            .finish()
    }
}

impl SearchThreads {
    /// Up to `threads` threads per search (the caller counts as one: 1 never
    /// splits), for indexes with at least `min_docs` records outside their
    /// largest group of segments.
    pub(crate) fn new(threads: usize, min_docs: u64) -> Self {
        SearchThreads {
            threads: threads.max(1),
            min_docs,
            pool: OnceLock::new(),
        }
    }

    /// Whether the pool's threads were started.
    pub(crate) fn started(&self) -> bool {
        self.pool.get().is_some_and(Option::is_some)
    }

    /// The pool of `threads - 1` helpers, started on first use; `None` if
    /// the system would not start them (searches then run on the caller).
    fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                match rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads - 1)
                    .thread_name(|i| format!("sealdex-search-{i}"))
                    .build()
                {
                    Ok(pool) => Some(pool),
                    Err(e) => {
                        warn!(error = %e, "search threads did not start; searching on one thread");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Runs `query` over every segment of `searcher` into `collector`, as
    /// `Searcher::search` does, on several threads when that pays.
    pub(crate) fn search<C: Collector>(
        &self,
        searcher: &Searcher,
        query: &dyn TQuery,
        collector: &C,
    ) -> tantivy::Result<C::Fruit> {
        let scoring = if collector.requires_scoring() {
            EnableScoring::enabled_from_searcher(searcher)
        } else {
            EnableScoring::disabled_from_searcher(searcher)
        };
        let weight = query.weight(scoring)?;
        let segments = searcher.segment_readers();
        let sizes: Vec<DocId> = segments.iter().map(SegmentReader::max_doc).collect();
        let groups = partition(&sizes, self.threads, self.min_docs);
        let collect = |group: &[usize]| -> GroupFruits<C> {
            group
                .iter()
                .map(|&i| {
                    let fruit = collector.collect_segment(&*weight, i as u32, &segments[i])?;
                    Ok((i, fruit))
                })
                .collect()
        };
        // The pool is asked for only when there is work to split: a small
        // index never starts its threads.
        let split = match groups.split_first() {
            Some((first, rest)) if !rest.is_empty() => self.pool().map(|pool| (pool, first, rest)),
            _ => None,
        };
        let mut fruits: Vec<(usize, SegmentFruit<C>)> = match split {
            Some((pool, first, rest)) => {
                let mut done: Vec<Option<GroupFruits<C>>> = (0..rest.len()).map(|_| None).collect();
                let mut own = None;
                pool.in_place_scope(|scope| {
                    for (slot, group) in done.iter_mut().zip(rest) {
                        let collect = &collect;
                        scope.spawn(move |_| *slot = Some(collect(group)));
                    }
                    own = Some(collect(first));
                });
                // Every slot is filled when the scope ends (a job that
                // panicked resumes its panic here instead).
                let unfinished = || {
                    Err(tantivy::TantivyError::InternalError(
                        "a search thread did not finish".into(),
                    ))
                };
                let mut all = own.unwrap_or_else(unfinished)?;
                for result in done {
                    all.extend(result.unwrap_or_else(unfinished)?);
                }
                all
            }
            None => collect(&(0..segments.len()).collect::<Vec<_>>())?,
        };
        fruits.sort_unstable_by_key(|(i, _)| *i);
        collector.merge_fruits(fruits.into_iter().map(|(_, f)| f).collect())
    }
}

/// Groups segments (given by their sizes) for `threads` threads: every
/// segment in exactly one group, largest first onto the least loaded
/// group. One group when there is one thread, or when the records outside
/// the largest group would number fewer than `min_docs`.
pub(crate) fn partition(sizes: &[DocId], threads: usize, min_docs: u64) -> Vec<Vec<usize>> {
    let everything = || vec![(0..sizes.len()).collect::<Vec<_>>()];
    let n = threads.min(sizes.len());
    if n <= 1 {
        return everything();
    }
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut groups: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
    for i in order {
        if let Some(g) = groups.iter_mut().min_by_key(|g| g.0) {
            g.0 += u64::from(sizes[i]);
            g.1.push(i);
        }
    }
    let total: u64 = groups.iter().map(|g| g.0).sum();
    let largest = groups.iter().map(|g| g.0).max().unwrap_or(0);
    if total - largest < min_docs {
        return everything();
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.0));
    groups
        .into_iter()
        .filter(|g| !g.1.is_empty())
        .map(|g| g.1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_indexes_and_one_thread_are_not_split() {
        assert_eq!(partition(&[], 4, 0), vec![Vec::<usize>::new()]);
        assert_eq!(partition(&[500_000, 400_000], 1, 0), vec![vec![0, 1]]);
        assert_eq!(partition(&[6_000, 40], 2, SPLIT_MIN_DOCS), vec![vec![0, 1]]);
        // One huge segment and crumbs: the crumbs are not worth a thread.
        assert_eq!(
            partition(&[900_000, 9_000, 8_000], 2, SPLIT_MIN_DOCS),
            vec![vec![0, 1, 2]]
        );
    }

    #[test]
    fn the_million_message_layout_splits_evenly() {
        // The segments of the 1M scaling run.
        let sizes = [514_048, 464_384, 7_884, 6_964, 3_774, 2_946];
        let groups = partition(&sizes, 2, SPLIT_MIN_DOCS);
        assert_eq!(groups, vec![vec![0], vec![1, 2, 3, 4, 5]]);
    }

    proptest! {
        /// Every segment lands in exactly one group, there are no more
        /// groups than threads, none is empty, and no group carries more
        /// than an even share plus the largest segment.
        #[test]
        fn groups_cover_every_segment_once(
            sizes in proptest::collection::vec(0u32..1_000_000, 0..24),
            threads in 1usize..6,
            min_docs in 0u64..100_000,
        ) {
            let groups = partition(&sizes, threads, min_docs);
            prop_assert!(!groups.is_empty() && groups.len() <= threads.max(1));
            let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..sizes.len()).collect::<Vec<_>>());
            if groups.len() > 1 {
                let total: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
                let biggest = u64::from(sizes.iter().copied().max().unwrap_or(0));
                for g in &groups {
                    prop_assert!(!g.is_empty());
                    let load: u64 = g.iter().map(|&i| u64::from(sizes[i])).sum();
                    prop_assert!(load <= total / groups.len() as u64 + biggest);
                }
            }
        }
    }
}
