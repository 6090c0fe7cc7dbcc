//! Hybrid ranking: merging the vector and keyword rankings, then making the
//! merged list diverse and fair to documents.
//!
//! The steps run in this order, each on the output of the one before:
//!
//! 1. [`reciprocal_rank_fusion`] merges rankings. It reads only ranks, never
//!    scores: a cosine similarity and a BM25 score are on unrelated scales,
//!    and RRF needs no calibration between them. A weight per list lets one
//!    retriever count more than the other.
//! 2. [`mmr`] (Maximal Marginal Relevance) pushes down chunks that say what a
//!    chunk above them already says, so a handful of passages covers more.
//! 3. [`collapse`] keeps at most a few chunks per document, so one long
//!    document cannot fill every slot.
//!
//! Every function breaks ties deterministically, so the same inputs always
//! give the same answer (and the same citations).

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A chunk in a ranking, best first. Higher scores are better; how they
/// compare across rankings depends on who made them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    pub key: u64,
    pub score: f32,
}

/// The usual constant of reciprocal rank fusion: large enough that the first
/// few ranks of one list do not drown the others.
pub const RRF_K: f32 = 60.0;

/// Merges rankings (each best first) into one of at most `limit` chunks.
///
/// A chunk scores `Σ weight / (k_constant + rank)` over the lists it is in,
/// ranks counted from 1; the scores inside the lists are ignored. Lists with
/// a weight that is not positive are ignored. A chunk listed twice in one
/// list counts at its first place only. Equal scores are ordered by the best
/// rank the chunk has in any list, then by key. `k_constant` is usually
/// [`RRF_K`].
pub fn reciprocal_rank_fusion(lists: &[(&[Ranked], f32)], k_constant: f32, limit: usize) -> Vec<Ranked> {
    struct Fused {
        score: f32,
        best_rank: usize,
    }
    let mut fused: HashMap<u64, Fused> = HashMap::new();
    for &(list, weight) in lists {
        if weight.is_nan() || weight <= 0.0 {
            continue;
        }
        let mut seen = HashSet::with_capacity(list.len());
        for (index, item) in list.iter().enumerate() {
            if !seen.insert(item.key) {
                continue;
            }
            let rank = index + 1;
            let score = weight / (k_constant + rank as f32);
            match fused.entry(item.key) {
                Entry::Occupied(mut entry) => {
                    let entry = entry.get_mut();
                    entry.score += score;
                    entry.best_rank = entry.best_rank.min(rank);
                }
                Entry::Vacant(entry) => {
                    entry.insert(Fused { score, best_rank: rank });
                }
            }
        }
    }
    let mut merged: Vec<(u64, Fused)> = fused.into_iter().collect();
    merged.sort_by(|(key_a, a), (key_b, b)| {
        b.score.total_cmp(&a.score).then(a.best_rank.cmp(&b.best_rank)).then(key_a.cmp(key_b))
    });
    merged.into_iter().take(limit).map(|(key, fused)| Ranked { key, score: fused.score }).collect()
}

/// Reorders `candidates` so each next chunk is relevant but unlike those
/// already chosen, and keeps the first `limit`.
///
/// Each step picks the candidate with the highest
/// `lambda × relevance − (1 − lambda) × max cosine(candidate, chosen)`.
///
/// Relevance is the candidate's own score, rescaled so the best candidate
/// has 1 and the worst 0 (all 1 when they are equal). It is not the cosine
/// similarity to the query: the candidates come from fusion, and their fused
/// score carries the keyword evidence a query vector knows nothing of. So
/// `lambda = 1` keeps the order of the scores, and lower values trade
/// relevance for diversity (0.5 to 0.7 is usual).
///
/// `vector` gives a candidate's embedding; a candidate without one (or with
/// a zero vector, or one of another dimension) is taken to resemble nothing.
/// Scores come back unchanged, so they may no longer be in decreasing order.
/// A key listed twice is kept once, at its first place. Ties go to the
/// candidate listed first.
pub fn mmr<V: AsRef<[f32]>>(
    candidates: &[Ranked],
    vector: impl Fn(u64) -> Option<V>,
    lambda: f32,
    limit: usize,
) -> Vec<Ranked> {
    let lambda = if lambda.is_nan() { 1.0 } else { lambda.clamp(0.0, 1.0) };
    let mut seen = HashSet::with_capacity(candidates.len());
    let candidates: Vec<Ranked> = candidates.iter().copied().filter(|c| seen.insert(c.key)).collect();
    let (min, max) = candidates
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(min, max), c| (min.min(c.score), max.max(c.score)));
    let relevance = |score: f32| if max > min { (score - min) / (max - min) } else { 1.0 };

    struct Candidate {
        ranked: Ranked,
        relevance: f32,
        /// The candidate's vector divided by its norm; `None` if unusable.
        unit: Option<Vec<f32>>,
        /// The highest cosine similarity to a chosen candidate so far.
        redundancy: f32,
    }
    let mut remaining: Vec<Candidate> = candidates
        .iter()
        .map(|&ranked| Candidate {
            ranked,
            relevance: relevance(ranked.score),
            unit: vector(ranked.key).and_then(|v| unit(v.as_ref())),
            redundancy: 0.0,
        })
        .collect();

    let mut chosen = Vec::with_capacity(limit.min(remaining.len()));
    while chosen.len() < limit && !remaining.is_empty() {
        let value = |c: &Candidate| lambda * c.relevance - (1.0 - lambda) * c.redundancy;
        let mut best = 0;
        for (index, candidate) in remaining.iter().enumerate().skip(1) {
            // Strictly greater: ties keep the earlier candidate.
            if value(candidate).total_cmp(&value(&remaining[best])) == Ordering::Greater {
                best = index;
            }
        }
        // `remove`, not `swap_remove`: the order breaks ties.
        let picked = remaining.remove(best);
        if let Some(picked_unit) = &picked.unit {
            for candidate in &mut remaining {
                if let Some(candidate_unit) = &candidate.unit
                    && candidate_unit.len() == picked_unit.len()
                {
                    let cosine: f32 = candidate_unit.iter().zip(picked_unit).map(|(a, b)| a * b).sum();
                    candidate.redundancy = candidate.redundancy.max(cosine);
                }
            }
        }
        chosen.push(picked.ranked);
    }
    chosen
}

/// `v` scaled to length 1, or `None` for an empty, zero or non-finite vector.
fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|x| x / norm).collect())
}

/// Keeps the first `per_group` chunks of each group (usually: of each
/// document), in their order.
pub fn collapse<K: Eq + Hash>(ranked: &[Ranked], group: impl Fn(u64) -> K, per_group: usize) -> Vec<Ranked> {
    let mut counts: HashMap<K, usize> = HashMap::new();
    ranked
        .iter()
        .filter(|item| {
            let count = counts.entry(group(item.key)).or_insert(0);
            *count += 1;
            *count <= per_group
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ranking of these keys, scores decreasing from 1.
    fn ranking(keys: &[u64]) -> Vec<Ranked> {
        keys.iter().enumerate().map(|(i, &key)| Ranked { key, score: 1.0 - i as f32 * 0.1 }).collect()
    }

    fn keys(ranked: &[Ranked]) -> Vec<u64> {
        ranked.iter().map(|r| r.key).collect()
    }

    #[test]
    fn one_list_keeps_its_order_and_gets_rrf_scores() {
        let list = ranking(&[7, 3, 9]);
        let fused = reciprocal_rank_fusion(&[(&list, 1.0)], RRF_K, 10);
        assert_eq!(keys(&fused), [7, 3, 9]);
        // 1/(60+1), 1/(60+2), 1/(60+3)
        for (item, expected) in fused.iter().zip([1.0 / 61.0, 1.0 / 62.0, 1.0 / 63.0]) {
            assert!((item.score - expected).abs() < 1e-7, "{item:?} vs {expected}");
        }
    }

    #[test]
    fn a_chunk_found_by_both_lists_beats_one_found_by_one() {
        let vector = ranking(&[1, 2, 3]);
        let keyword = ranking(&[4, 2, 5]);
        let fused = reciprocal_rank_fusion(&[(&vector, 1.0), (&keyword, 1.0)], RRF_K, 10);
        // 2: 1/62 + 1/62 = 0.03226; 1 and 4: 1/61 = 0.01639; 3 and 5: 1/63.
        // Ties between 1 and 4 (both best rank 1), and 3 and 5, go by key.
        assert_eq!(keys(&fused), [2, 1, 4, 3, 5]);
        assert!((fused[0].score - 2.0 / 62.0).abs() < 1e-7);
    }

    #[test]
    fn ranks_count_not_scores() {
        let vector = [Ranked { key: 1, score: 0.9 }, Ranked { key: 2, score: 0.1 }];
        let keyword = [Ranked { key: 2, score: 1000.0 }, Ranked { key: 3, score: 999.0 }];
        let fused = reciprocal_rank_fusion(&[(&vector, 1.0), (&keyword, 1.0)], RRF_K, 10);
        // 2: 1/62 + 1/61; 1: 1/61; 3: 1/62.
        assert_eq!(keys(&fused), [2, 1, 3]);
    }

    #[test]
    fn weights_change_the_order() {
        let vector = ranking(&[1, 2]);
        let keyword = ranking(&[2, 1]);
        // Equal weights: 1 and 2 both score 1/61 + 1/62, both have best rank 1: key order.
        let equal = reciprocal_rank_fusion(&[(&vector, 1.0), (&keyword, 1.0)], RRF_K, 10);
        assert_eq!(keys(&equal), [1, 2]);
        assert_eq!(equal[0].score, equal[1].score);
        // Keyword counts double: 2 scores 1/62 + 2/61 > 1/61 + 2/62.
        let keyword_first = reciprocal_rank_fusion(&[(&vector, 1.0), (&keyword, 2.0)], RRF_K, 10);
        assert_eq!(keys(&keyword_first), [2, 1]);
        let vector_first = reciprocal_rank_fusion(&[(&vector, 2.0), (&keyword, 1.0)], RRF_K, 10);
        assert_eq!(keys(&vector_first), [1, 2]);
    }

    #[test]
    fn equal_scores_go_to_the_best_single_rank_then_the_key() {
        // With k = 0: key 5 at rank 2 in both lists scores 1/2 + 1/2 = 1;
        // key 9 at rank 1 in one list scores 1/1 = 1, and wins on best rank.
        let a = ranking(&[9, 5]);
        let b = ranking(&[8, 5]);
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 1.0)], 0.0, 10);
        assert_eq!(fused.iter().map(|r| r.score).collect::<Vec<_>>(), [1.0, 1.0, 1.0]);
        assert_eq!(keys(&fused), [8, 9, 5]);
    }

    #[test]
    fn fusion_keeps_the_limit_ignores_unweighted_lists_and_counts_duplicates_once() {
        let a = ranking(&[1, 1, 2, 3]);
        let ignored = ranking(&[4, 5]);
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&ignored, 0.0), (&ignored, f32::NAN)], RRF_K, 2);
        assert_eq!(keys(&fused), [1, 2]);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-7, "the second 1 adds nothing");
        // The duplicate keeps its place: 2 is third.
        assert!((fused[1].score - 1.0 / 63.0).abs() < 1e-7);
        assert!(reciprocal_rank_fusion(&[], RRF_K, 10).is_empty());
        assert!(reciprocal_rank_fusion(&[(&a, 1.0)], RRF_K, 0).is_empty());
    }

    /// Unit vectors: 1 and 2 nearly the same, 3 and 4 apart from them and
    /// from each other.
    fn vectors(key: u64) -> Option<Vec<f32>> {
        match key {
            1 => Some(vec![1.0, 0.0, 0.0]),
            2 => Some(vec![0.99, 0.141, 0.0]),
            3 => Some(vec![0.0, 1.0, 0.0]),
            4 => Some(vec![0.0, 0.0, 1.0]),
            _ => None,
        }
    }

    #[test]
    fn mmr_with_lambda_one_is_the_order_of_the_scores() {
        let candidates = [
            Ranked { key: 3, score: 0.2 },
            Ranked { key: 1, score: 0.9 },
            Ranked { key: 4, score: 0.1 },
            Ranked { key: 2, score: 0.8 },
        ];
        let reranked = mmr(&candidates, vectors, 1.0, 10);
        assert_eq!(keys(&reranked), [1, 2, 3, 4]);
        assert_eq!(reranked[0], Ranked { key: 1, score: 0.9 }, "scores come back unchanged");
    }

    #[test]
    fn mmr_pushes_a_near_duplicate_down() {
        let candidates = ranking(&[1, 2, 3, 4]); // scores 1.0, 0.9, 0.8, 0.7
        // Relevance 1, 2/3, 1/3, 0. After 1: 2 is worth 0.5×2/3 − 0.5×0.99 = −0.16,
        // 3 is worth 0.5×1/3 − 0 = 0.17, 4 is worth 0. After 3: 2 is still
        // −0.16, 4 is 0. So 2 comes last.
        assert_eq!(keys(&mmr(&candidates, vectors, 0.5, 10)), [1, 3, 4, 2]);
        assert_eq!(keys(&mmr(&candidates, vectors, 0.5, 2)), [1, 3]);
        // At 0.7, after 1: 2 is worth 0.7×2/3 − 0.3×0.99 = 0.17 and 3 is worth
        // 0.7×1/3 = 0.23, then 2 beats 4 (0): the duplicate drops one place.
        assert_eq!(keys(&mmr(&candidates, vectors, 0.7, 10)), [1, 3, 2, 4]);
        // At 0.9, 2 is worth 0.9×2/3 − 0.1×0.99 = 0.50 against 0.30 for 3: kept.
        assert_eq!(keys(&mmr(&candidates, vectors, 0.9, 10)), [1, 2, 3, 4]);
    }

    #[test]
    fn mmr_takes_a_candidate_without_a_vector_as_unlike_everything() {
        let candidates = ranking(&[1, 2, 99]);
        // Relevance 1, 1/2, 0. After 1, 99 (no vector) is worth 0.5×0 − 0 = 0,
        // 2 is worth 0.5×1/2 − 0.5×0.99 < 0.
        assert_eq!(keys(&mmr(&candidates, vectors, 0.5, 10)), [1, 99, 2]);
    }

    #[test]
    fn mmr_handles_equal_scores_duplicates_and_empty_input() {
        let same = [Ranked { key: 3, score: 0.5 }, Ranked { key: 4, score: 0.5 }, Ranked { key: 3, score: 0.5 }];
        assert_eq!(keys(&mmr(&same, vectors, 1.0, 10)), [3, 4]);
        assert!(mmr(&[], vectors, 0.5, 10).is_empty());
        assert!(mmr(&same, vectors, 0.5, 0).is_empty());
    }

    #[test]
    fn mmr_takes_vectors_from_a_map() {
        let map: HashMap<u64, Vec<f32>> = [1, 2, 3].into_iter().map(|k| (k, vectors(k).unwrap())).collect();
        let candidates = ranking(&[1, 2, 3]);
        assert_eq!(keys(&mmr(&candidates, |key| map.get(&key), 0.5, 10)), [1, 3, 2]);
    }

    #[test]
    fn collapse_keeps_the_best_per_group_in_order() {
        // Keys 10..19 belong to document 1, 20..29 to document 2, and so on.
        let ranked = ranking(&[11, 21, 12, 13, 31, 22, 14]);
        assert_eq!(keys(&collapse(&ranked, |key| key / 10, 1)), [11, 21, 31]);
        assert_eq!(keys(&collapse(&ranked, |key| key / 10, 2)), [11, 21, 12, 31, 22]);
        assert_eq!(collapse(&ranked, |key| key / 10, 9), ranked);
        assert!(collapse(&ranked, |key| key / 10, 0).is_empty());
    }
}
