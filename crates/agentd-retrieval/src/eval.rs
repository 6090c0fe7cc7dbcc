//! Retrieval evaluation: how well each search mode finds the documents a
//! question is about.
//!
//! An evaluation set is a JSON Lines file of `{"question": …, "relevant":
//! [document titles or ids]}`. Each question is searched in every mode, the
//! ranked documents are compared with the relevant ones, and the usual
//! measures are averaged: recall at 1, 5 and 10, MRR at 10 and nDCG at 10.
//! A result counts for a relevant entry when its document's title or id is
//! that entry; a document met twice in one ranking counts once.

use std::collections::HashSet;
use std::time::Instant;

use agentd_store::TenantId;
use serde::Deserialize;

use crate::metrics::{ndcg_at, recall_at, reciprocal_rank_at};
use crate::search::{SearchError, SearchMode, SearchRequest, Searcher};

/// One question of an evaluation set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalQuestion {
    pub question: String,
    /// Titles or ids of the documents that answer it.
    pub relevant: Vec<String>,
}

/// Reads an evaluation set; the error names the line that is wrong.
pub fn read_eval_set(text: &str) -> Result<Vec<EvalQuestion>, String> {
    let mut questions = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let question: EvalQuestion = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if question.relevant.is_empty() {
            return Err(format!("line {}: \"relevant\" must name at least one document", n + 1));
        }
        questions.push(question);
    }
    if questions.is_empty() {
        return Err("the evaluation set has no questions".into());
    }
    Ok(questions)
}

/// The averaged measures of one mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModeScores {
    pub recall_1: f64,
    pub recall_5: f64,
    pub recall_10: f64,
    pub mrr_10: f64,
    pub ndcg_10: f64,
    /// Mean search time, in milliseconds.
    pub mean_ms: f64,
    pub questions: usize,
}

/// The scores of every mode.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    pub modes: Vec<(SearchMode, ModeScores)>,
}

impl EvalReport {
    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "mode", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10", "ms/query"
        );
        for (mode, s) in &self.modes {
            out.push_str(&format!(
                "{:<8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.1}\n",
                mode.name(),
                s.recall_1,
                s.recall_5,
                s.recall_10,
                s.mrr_10,
                s.ndcg_10,
                s.mean_ms
            ));
        }
        out
    }
}

/// The ranking of document names a search gave, in the relevant set's
/// terms: a title or id that is relevant, or the id otherwise.
pub fn ranked_documents<'a>(
    results: impl Iterator<Item = (&'a str, String)>,
    relevant: &HashSet<String>,
) -> Vec<String> {
    results.map(|(title, id)| if relevant.contains(title) { title.to_string() } else { id }).collect()
}

/// Runs every question in every mode for `tenant`.
pub async fn evaluate(
    searcher: &Searcher,
    tenant: TenantId,
    questions: &[EvalQuestion],
) -> Result<EvalReport, SearchError> {
    let mut modes = Vec::new();
    for mode in SearchMode::ALL {
        let mut scores = ModeScores::default();
        for question in questions {
            let relevant: HashSet<String> = question.relevant.iter().cloned().collect();
            let started = Instant::now();
            let response = searcher.search(tenant, &SearchRequest::new(question.question.clone(), 10, mode)).await?;
            scores.mean_ms += started.elapsed().as_secs_f64() * 1000.0;
            let ranked = ranked_documents(
                response.results.iter().map(|r| (r.title.as_str(), r.document_id.to_string())),
                &relevant,
            );
            scores.recall_1 += recall_at(&ranked, &relevant, 1);
            scores.recall_5 += recall_at(&ranked, &relevant, 5);
            scores.recall_10 += recall_at(&ranked, &relevant, 10);
            scores.mrr_10 += reciprocal_rank_at(&ranked, &relevant, 10);
            scores.ndcg_10 += ndcg_at(&ranked, &relevant, 10);
            scores.questions += 1;
        }
        let n = scores.questions.max(1) as f64;
        for value in
            [&mut scores.recall_1, &mut scores.recall_5, &mut scores.recall_10, &mut scores.mrr_10, &mut scores.ndcg_10]
        {
            *value /= n;
        }
        scores.mean_ms /= n;
        modes.push((mode, scores));
    }
    Ok(EvalReport { modes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_sets_are_read_and_their_errors_name_the_line() {
        let set = "{\"question\": \"q1\", \"relevant\": [\"a.md\"]}\n\n{\"question\": \"q2\", \"relevant\": [\"b\", \"c\"]}\n";
        let questions = read_eval_set(set).expect("valid set");
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[1].relevant, vec!["b".to_string(), "c".to_string()]);
        let bad = "{\"question\": \"q1\", \"relevant\": [\"a\"]}\n{\"question\": \"q2\"}\n";
        assert!(read_eval_set(bad).expect_err("missing relevant").starts_with("line 2:"));
        let empty = "{\"question\": \"q1\", \"relevant\": []}";
        assert!(read_eval_set(empty).expect_err("no relevant").contains("at least one"));
        assert!(read_eval_set("\n").is_err());
    }

    #[test]
    fn results_are_named_by_the_relevant_title_or_their_id() {
        let relevant: HashSet<String> = ["guide.md".to_string(), "1234".to_string()].into();
        let results = vec![("other.md", "9".to_string()), ("guide.md", "5".to_string()), ("x", "1234".to_string())];
        let ranked = ranked_documents(results.into_iter(), &relevant);
        assert_eq!(ranked, vec!["9", "guide.md", "1234"]);
        assert_eq!(recall_at(&ranked, &relevant, 2), 0.5);
        assert_eq!(reciprocal_rank_at(&ranked, &relevant, 10), 0.5);
    }
}
