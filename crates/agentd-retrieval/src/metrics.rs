//! Retrieval quality, measured: how well a ranking of documents answers
//! questions whose relevant documents are known.
//!
//! `agentd eval` runs a question set through retrieval and reports these
//! numbers, so a change to chunking, fusion or a model can be judged by
//! more than impressions. All measures take document ids ranked best first
//! and the set of ids relevant to the question; relevance is binary.
//!
//! Decisions:
//!
//! - **A repeated document counts once**, where it first appears, and its
//!   later copies still take their places: showing the same document twice
//!   wastes a slot the reader sees, and the measures should show that. To
//!   measure distinct documents instead, collapse the ranking first (see
//!   [`collapse`](crate::fusion::collapse)).
//! - **A question without relevant documents scores 0** in every measure
//!   (recall is undefined for it). [`MetricSummary::add`] skips such
//!   questions and counts them apart, so they never drag the averages down.
//! - nDCG uses the `1 / log2(rank + 1)` discount, and the ideal ranking puts
//!   `min(|relevant|, k)` relevant documents first.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The relevant documents among the first `k` of `ranked`, each once, with
/// their ranks (from 1).
fn relevant_ranks<'a>(
    ranked: &'a [String],
    relevant: &'a HashSet<String>,
    k: usize,
) -> impl Iterator<Item = usize> + 'a {
    let mut seen = HashSet::new();
    ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(move |(_, id)| relevant.contains(*id) && seen.insert(id.as_str()))
        .map(|(index, _)| index + 1)
}

/// The share of the relevant documents found in the first `k`, out of as
/// many as `k` places can hold (`min(|relevant|, k)`), so a perfect ranking
/// scores 1 at every `k`; 0 if none is relevant.
pub fn recall_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    let possible = relevant.len().min(k);
    if possible == 0 {
        return 0.0;
    }
    relevant_ranks(ranked, relevant, k).count() as f64 / possible as f64
}

/// 1 if a relevant document is in the first `k`, else 0.
pub fn hit_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    if relevant_ranks(ranked, relevant, k).next().is_some() { 1.0 } else { 0.0 }
}

/// One over the rank of the first relevant document in the first `k`; 0 if
/// there is none.
pub fn reciprocal_rank_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    relevant_ranks(ranked, relevant, k).next().map_or(0.0, |rank| 1.0 / rank as f64)
}

/// Normalized discounted cumulative gain of the first `k`: 1 when the
/// relevant documents fill the first places, less the lower they are; 0 if
/// none is relevant.
pub fn ndcg_at(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    let discount = |rank: usize| 1.0 / (rank as f64 + 1.0).log2();
    let ideal: f64 = (1..=relevant.len().min(k)).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    relevant_ranks(ranked, relevant, k).map(discount).sum::<f64>() / ideal
}

/// The measures averaged over a set of questions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Questions with a relevant document in the first 1, 5, 10.
    pub hit_1: f64,
    pub hit_5: f64,
    pub hit_10: f64,
    /// Recall, capped by the number of relevant documents (see [`recall_at`]).
    pub recall_5: f64,
    pub recall_10: f64,
    /// Mean reciprocal rank in the first 10.
    pub mrr_10: f64,
    pub ndcg_10: f64,
    /// Questions averaged.
    pub questions: usize,
    /// Questions left out because no document is relevant to them.
    pub skipped: usize,
}

impl MetricSummary {
    /// Adds one question to the averages: `ranked` is what retrieval
    /// returned for it, best first. A question without relevant documents
    /// is only counted in `skipped`.
    pub fn add(&mut self, ranked: &[String], relevant: &HashSet<String>) {
        if relevant.is_empty() {
            self.skipped += 1;
            return;
        }
        let one = MetricSummary {
            hit_1: hit_at(ranked, relevant, 1),
            hit_5: hit_at(ranked, relevant, 5),
            hit_10: hit_at(ranked, relevant, 10),
            recall_5: recall_at(ranked, relevant, 5),
            recall_10: recall_at(ranked, relevant, 10),
            mrr_10: reciprocal_rank_at(ranked, relevant, 10),
            ndcg_10: ndcg_at(ranked, relevant, 10),
            questions: 1,
            skipped: 0,
        };
        self.merge(&one);
    }

    /// Combines two summaries of disjoint question sets, as if every
    /// question had been added to one.
    pub fn merge(&mut self, other: &MetricSummary) {
        let questions = self.questions + other.questions;
        if questions > 0 {
            let (mine, theirs) = (self.questions as f64 / questions as f64, other.questions as f64 / questions as f64);
            let mean = |a: f64, b: f64| a * mine + b * theirs;
            self.hit_1 = mean(self.hit_1, other.hit_1);
            self.hit_5 = mean(self.hit_5, other.hit_5);
            self.hit_10 = mean(self.hit_10, other.hit_10);
            self.recall_5 = mean(self.recall_5, other.recall_5);
            self.recall_10 = mean(self.recall_10, other.recall_10);
            self.mrr_10 = mean(self.mrr_10, other.mrr_10);
            self.ndcg_10 = mean(self.ndcg_10, other.ndcg_10);
        }
        self.questions = questions;
        self.skipped += other.skipped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn set(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    /// Ten documents, relevant ones at ranks 2 and 4; a third relevant
    /// document (`z`) was not retrieved.
    fn two_of_three() -> (Vec<String>, HashSet<String>) {
        (ids(&["a", "R1", "b", "R2", "c", "d", "e", "f", "g", "h"]), set(&["R1", "R2", "z"]))
    }

    #[test]
    fn recall_counts_the_relevant_documents_in_the_first_k_out_of_what_fits() {
        let (ranked, relevant) = two_of_three();
        close(recall_at(&ranked, &relevant, 1), 0.0);
        // Two places hold at most two of the three relevant documents.
        close(recall_at(&ranked, &relevant, 2), 1.0 / 2.0);
        close(recall_at(&ranked, &relevant, 4), 2.0 / 3.0);
        close(recall_at(&ranked, &relevant, 5), 2.0 / 3.0);
        close(recall_at(&ranked, &relevant, 100), 2.0 / 3.0);
        close(recall_at(&ranked, &relevant, 0), 0.0);
        close(recall_at(&ids(&["R1"]), &set(&["R1", "R2"]), 1), 1.0);
    }

    #[test]
    fn a_hit_is_any_relevant_document_in_the_first_k() {
        let (ranked, relevant) = two_of_three();
        close(hit_at(&ranked, &relevant, 1), 0.0);
        close(hit_at(&ranked, &relevant, 2), 1.0);
        close(hit_at(&ranked, &relevant, 10), 1.0);
        close(hit_at(&ranked, &HashSet::new(), 10), 0.0);
    }

    #[test]
    fn reciprocal_rank_is_one_over_the_first_relevant_rank() {
        let (ranked, relevant) = two_of_three();
        close(reciprocal_rank_at(&ranked, &relevant, 10), 0.5);
        close(reciprocal_rank_at(&ranked, &relevant, 1), 0.0);
        close(reciprocal_rank_at(&ids(&["R2"]), &relevant, 10), 1.0);
    }

    #[test]
    fn ndcg_discounts_by_rank_against_the_ideal_ranking() {
        let (ranked, relevant) = two_of_three();
        // DCG = 1/log2(3) + 1/log2(5); ideal: 3 relevant in the first 3 places,
        // 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.631 + 0.5.
        let expected = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5);
        close(ndcg_at(&ranked, &relevant, 10), expected);
        // At k = 2 the ideal holds 2 relevant: (1/log2(3)) / (1 + 1/log2(3)).
        close(ndcg_at(&ranked, &relevant, 2), (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2()));
        // Relevant documents first: perfect.
        close(ndcg_at(&ids(&["R2", "R1", "z", "a"]), &relevant, 10), 1.0);
        close(ndcg_at(&ids(&["a", "b"]), &relevant, 10), 0.0);
    }

    #[test]
    fn a_repeated_document_counts_once_and_keeps_its_place() {
        let relevant = set(&["R1", "R2"]);
        let ranked = ids(&["R1", "R1", "R2"]);
        close(recall_at(&ranked, &relevant, 1), 1.0);
        close(recall_at(&ranked, &relevant, 2), 0.5);
        close(recall_at(&ranked, &relevant, 3), 1.0);
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3).
        close(ndcg_at(&ranked, &relevant, 3), 1.5 / (1.0 + 1.0 / 3f64.log2()));
        assert!(ndcg_at(&ranked, &relevant, 3) <= 1.0);
    }

    #[test]
    fn no_relevant_document_scores_zero() {
        let ranked = ids(&["a", "b"]);
        let none = HashSet::new();
        close(recall_at(&ranked, &none, 10), 0.0);
        close(reciprocal_rank_at(&ranked, &none, 10), 0.0);
        close(ndcg_at(&ranked, &none, 10), 0.0);
        close(recall_at(&[], &set(&["a"]), 10), 0.0);
    }

    #[test]
    fn the_summary_averages_questions_and_skips_those_without_relevant_documents() {
        let mut summary = MetricSummary::default();
        let (ranked, relevant) = two_of_three();
        summary.add(&ranked, &relevant);
        // A perfect answer to a one-document question.
        summary.add(&ids(&["x", "y"]), &set(&["x"]));
        summary.add(&ids(&["x"]), &HashSet::new());
        assert_eq!((summary.questions, summary.skipped), (2, 1));
        close(summary.hit_1, (0.0 + 1.0) / 2.0);
        close(summary.hit_5, 1.0);
        close(summary.recall_5, (2.0 / 3.0 + 1.0) / 2.0);
        close(summary.recall_10, (2.0 / 3.0 + 1.0) / 2.0);
        close(summary.mrr_10, (0.5 + 1.0) / 2.0);
        close(summary.ndcg_10, (ndcg_at(&ranked, &relevant, 10) + 1.0) / 2.0);
    }

    #[test]
    fn merging_summaries_equals_adding_every_question_to_one() {
        let questions = [
            (ids(&["a", "b", "c"]), set(&["c"])),
            (ids(&["b", "a"]), set(&["a", "b"])),
            (ids(&["x"]), set(&["y"])),
            (ids(&["x"]), HashSet::new()),
        ];
        let mut all = MetricSummary::default();
        for (ranked, relevant) in &questions {
            all.add(ranked, relevant);
        }
        let (mut first, mut rest) = (MetricSummary::default(), MetricSummary::default());
        first.add(&questions[0].0, &questions[0].1);
        for (ranked, relevant) in &questions[1..] {
            rest.add(ranked, relevant);
        }
        first.merge(&rest);
        assert_eq!((first.questions, first.skipped), (3, 1));
        close(first.mrr_10, all.mrr_10);
        close(first.mrr_10, (1.0 / 3.0 + 1.0 + 0.0) / 3.0);
        close(first.ndcg_10, all.ndcg_10);
        close(first.hit_1, all.hit_1);
        close(first.recall_5, all.recall_5);
        let mut empty = MetricSummary::default();
        empty.merge(&MetricSummary::default());
        assert_eq!(empty, MetricSummary::default());
    }
}
