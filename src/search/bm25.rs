//! BM25 for the forward scan: the relevance order of [`Order::Relevance`](super::Order::Relevance)
//! when the decrypted cache answers a query.

use super::forward;
use crate::cache::{CacheState, FolderSets, Shard};
use crate::query::plan::{Needle, Plan};

/// BM25 over the positive terms of a query. Document frequencies come from
/// the cached records, scaled to the whole index when part of it is not
/// cached; subject matches count double.
pub(crate) struct Scorer<'a> {
    needles: Vec<(&'a Needle, f32)>,
    avg_tokens: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

impl<'a> Scorer<'a> {
    pub(crate) fn new(needles: &[&'a Needle], cache: &CacheState) -> Self {
        let cached = cache.by_key.len().max(1) as f32;
        let total = cache.len().max(1) as f32;
        let avg_tokens = cache
            .entries
            .iter()
            .flatten()
            .map(|e| e.tokens as f64)
            .sum::<f64>() as f32
            / cached;
        let needles = needles
            .iter()
            .map(|n| {
                let df = forward::count(&Plan::Text((*n).clone()), &cache.shards, &cache.folders)
                    as f32
                    * total
                    / cached;
                let idf = (1.0 + (total - df + 0.5) / (df + 0.5)).ln();
                (*n, idf)
            })
            .collect();
        Scorer {
            needles,
            avg_tokens: avg_tokens.max(1.0),
        }
    }

    /// A scorer whose statistics come from `shards` alone (each with its
    /// folder sets): the tail of uncommitted batches (see
    /// [`super::scan::match_tail`]).
    #[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
    pub(crate) fn for_shards(needles: &[&'a Needle], shards: &[(&Shard, &FolderSets)]) -> Self {
        let docs: usize = shards.iter().map(|(s, _)| s.tokens.len()).sum();
        let total = docs.max(1) as f32;
        let tokens: f64 = shards
            .iter()
            .flat_map(|(s, _)| s.tokens.iter())
            .map(|t| *t as f64)
            .sum();
        let needles = needles
            .iter()
            .map(|n| {
                let plan = Plan::Text((*n).clone());
                let df = shards
                    .iter()
                    .map(|(shard, folders)| {
                        let prep = forward::Prepared::new(&plan, folders);
                        forward::shard_matches(&plan, shard, &prep).count()
                    })
                    .sum::<usize>() as f32;
                let idf = (1.0 + (total - df + 0.5) / (df + 0.5)).ln();
                (*n, idf)
            })
            .collect();
        Scorer {
            needles,
            avg_tokens: (tokens as f32 / total).max(1.0),
        }
    }

    pub(crate) fn score(&self, shard: &Shard, slot: usize, tokens: u32) -> f32 {
        let norm = K1 * (1.0 - B + B * tokens as f32 / self.avg_tokens);
        self.needles
            .iter()
            .map(|(n, idf)| {
                let (tf, subject) = forward::term_frequency(shard, slot, n);
                let tf = (tf + subject) as f32;
                idf * tf * (K1 + 1.0) / (tf + norm)
            })
            .sum()
    }
}
