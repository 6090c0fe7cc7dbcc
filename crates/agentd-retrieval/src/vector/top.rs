//! The best `k` hits seen so far during a scan.
//!
//! A scan looks at every stored vector but keeps only `k`: a min-heap of
//! the kept hits tells in one comparison whether a new score can enter, so
//! the common case (it cannot) costs no allocation and, for filtered
//! searches, no call to the filter.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{VectorHit, VectorKey};

/// Orders hits by score, ties broken by the smaller key ranking higher, so
/// results do not depend on storage order.
#[derive(Debug, Clone, Copy)]
struct Ranked(VectorHit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.score.total_cmp(&other.0.score).then_with(|| other.0.key.cmp(&self.0.key))
    }
}

pub(crate) struct TopHits {
    k: usize,
    worst_first: BinaryHeap<Reverse<Ranked>>,
}

impl TopHits {
    pub(crate) fn new(k: usize) -> Self {
        TopHits { k, worst_first: BinaryHeap::with_capacity(k.min(4096) + 1) }
    }

    /// Whether a hit with `score` could be kept (it beats the worst kept one,
    /// or fewer than `k` are kept).
    #[inline]
    pub(crate) fn admits(&self, score: f32) -> bool {
        if self.worst_first.len() < self.k {
            return self.k > 0;
        }
        self.worst_first.peek().is_some_and(|Reverse(worst)| score >= worst.0.score)
    }

    pub(crate) fn push(&mut self, key: VectorKey, score: f32) {
        let hit = Ranked(VectorHit { key, score });
        if self.worst_first.len() < self.k {
            self.worst_first.push(Reverse(hit));
        } else if let Some(mut worst) = self.worst_first.peek_mut()
            && hit > worst.0
        {
            *worst = Reverse(hit);
        }
    }

    /// The kept hits, best first.
    pub(crate) fn into_sorted(self) -> Vec<VectorHit> {
        self.worst_first.into_sorted_vec().into_iter().map(|Reverse(Ranked(hit))| hit).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_k_best_first() {
        let mut top = TopHits::new(3);
        for (key, score) in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.7), (5, 0.2), (6, 0.7)] {
            if top.admits(score) {
                top.push(key, score);
            }
        }
        let keys: Vec<_> = top.into_sorted().iter().map(|hit| hit.key).collect();
        assert_eq!(keys, [2, 4, 6]);
        assert!(TopHits::new(0).into_sorted().is_empty());
        assert!(!TopHits::new(0).admits(1.0));
    }
}
