//! Retrieval evaluation: how well each search mode finds the pages a
//! question is about, next to plain baselines built from the same pages.
//!
//! An evaluation set is a JSON Lines file. Each line is a question with the
//! documents that answer it, by title or id:
//! `{"id": …, "question": …, "relevant": [...], "answer_contains": …,
//! "difficulty": "easy" | "medium" | "hard"}`, or a conversation whose last
//! user turn is the question: `"turns": [{"role": "user", "content": …},
//! {"role": "assistant", …}, …]`. Only `relevant` and one of `question` and
//! `turns` are required; lines starting with `#` are comments.
//!
//! Decisions:
//! - Pages, not chunks, are ranked: searches collapse to the best chunk of
//!   each document and ask for 10, so "hit@5" means a right page among the
//!   first five pages shown, as it does for the page-level baselines.
//! - A conversation is searched twice: with its earlier turns as the
//!   search's history (what agentd does for a follow-up) and with its last
//!   turn alone (what a search without memory can do; the baselines too).
//! - Every measure is reported per mode and per difficulty: an average over
//!   easy questions hides what hard ones need.

pub mod baselines;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use agentd_store::TenantId;
use serde::Deserialize;

use crate::metrics::MetricSummary;
use crate::search::{SearchError, SearchMode, SearchRequest, Searcher, Turn, TurnRole};
use baselines::{Baseline, Baselines};

/// How hard a question is for retrieval, as its author judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    /// The asker half knows the name of what they look for.
    Easy,
    Medium,
    /// No word in common with the answer.
    Hard,
}

impl Difficulty {
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

/// One question of an evaluation set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalQuestion {
    pub id: Option<String>,
    /// The question, or a conversation's last user turn.
    pub question: String,
    /// A conversation's turns before the question, oldest first.
    pub history: Vec<Turn>,
    /// Titles or ids of the documents that answer it.
    pub relevant: Vec<String>,
    /// Text a correct answer contains (found on every relevant page).
    pub answer_contains: Option<String>,
    pub difficulty: Option<Difficulty>,
}

/// A line as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    question: Option<String>,
    turns: Option<Vec<Turn>>,
    relevant: Vec<String>,
    answer_contains: Option<String>,
    difficulty: Option<Difficulty>,
    /// For the set's reviewers only.
    #[serde(rename = "note")]
    _note: Option<String>,
}

/// Reads an evaluation set; the error names the line that is wrong.
pub fn read_eval_set(text: &str) -> Result<Vec<EvalQuestion>, String> {
    let mut questions = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |message: &str| format!("line {}: {message}", n + 1);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let line: Line = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
        if line.relevant.is_empty() {
            return Err(at("\"relevant\" must name at least one document"));
        }
        let (question, history) = match (line.question, line.turns) {
            (Some(question), None) => (question, Vec::new()),
            (None, Some(mut turns)) => match turns.pop() {
                Some(last) if last.role == TurnRole::User => (last.content, turns),
                _ => return Err(at("\"turns\" must end with a user turn")),
            },
            _ => return Err(at("needs exactly one of \"question\" and \"turns\"")),
        };
        if question.trim().is_empty() {
            return Err(at("the question is empty"));
        }
        questions.push(EvalQuestion {
            id: line.id,
            question,
            history,
            relevant: line.relevant,
            answer_contains: line.answer_contains,
            difficulty: line.difficulty,
        });
    }
    if questions.is_empty() {
        return Err("the evaluation set has no questions".into());
    }
    Ok(questions)
}

/// The scores of one system on one group of questions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub metrics: MetricSummary,
    /// Mean time per question, in milliseconds.
    pub mean_ms: f64,
}

/// Every system's scores on every group of questions: groups such as
/// `single-turn`, `single-turn, hard`, `multi-turn` and `multi-turn, last
/// turn only`; systems such as `hybrid` or `baseline: page BM25`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    pub groups: BTreeMap<String, Vec<(String, Scores)>>,
}

impl EvalReport {
    /// One system's scores on one group, if it ran there.
    pub fn scores(&self, group: &str, system: &str) -> Option<Scores> {
        self.groups.get(group)?.iter().find(|(name, _)| name == system).map(|(_, s)| *s)
    }

    fn add(&mut self, group: &str, system: &str, ranked: &[String], relevant: &HashSet<String>, ms: f64) {
        let rows = self.groups.entry(group.to_string()).or_default();
        let index = match rows.iter().position(|(name, _)| name == system) {
            Some(index) => index,
            None => {
                rows.push((system.to_string(), Scores::default()));
                rows.len() - 1
            }
        };
        let scores = &mut rows[index].1;
        let n = scores.metrics.questions as f64;
        scores.mean_ms = (scores.mean_ms * n + ms) / (n + 1.0);
        scores.metrics.add(ranked, relevant);
    }

    /// The report as tables, one per group of questions.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (group, rows) in &self.groups {
            let questions = rows.first().map_or(0, |(_, s)| s.metrics.questions);
            out.push_str(&format!("\n{group} ({questions} questions)\n"));
            out.push_str(&format!(
                "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>9}\n",
                "system", "hit@1", "hit@5", "hit@10", "R@5", "R@10", "MRR@10", "nDCG@10", "ms/query"
            ));
            for (system, s) in rows {
                let m = &s.metrics;
                out.push_str(&format!(
                    "{:<28} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>7.3} {:>7.3} {:>9.1}\n",
                    system, m.hit_1, m.hit_5, m.hit_10, m.recall_5, m.recall_10, m.mrr_10, m.ndcg_10, s.mean_ms
                ));
            }
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

/// Pages ranked per question.
const DEPTH: usize = 10;

/// Runs every question in every mode for `tenant`, and through the
/// baselines when given.
pub async fn evaluate(
    searcher: &Searcher,
    tenant: TenantId,
    questions: &[EvalQuestion],
    baselines: Option<&Baselines>,
) -> Result<EvalReport, SearchError> {
    let mut report = EvalReport::default();
    for question in questions {
        let relevant: HashSet<String> = question.relevant.iter().cloned().collect();
        let conversation = !question.history.is_empty();
        let mut groups = Vec::new();
        if conversation {
            groups.push("multi-turn, last turn only".to_string());
        } else {
            groups.push("single-turn".to_string());
            if let Some(difficulty) = question.difficulty {
                groups.push(format!("single-turn, {}", difficulty.name()));
            }
        }
        for mode in SearchMode::ALL {
            let mut runs = vec![(Vec::new(), groups.clone())];
            if conversation {
                runs.push((question.history.clone(), vec!["multi-turn".to_string()]));
            }
            for (history, groups) in runs {
                let mut request = SearchRequest::new(question.question.clone(), DEPTH, mode);
                request.collapse = true;
                request.history = history;
                let started = Instant::now();
                let response = searcher.search(tenant, &request).await?;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let ranked = ranked_documents(
                    response.results.iter().map(|r| (r.title.as_str(), r.document_id.to_string())),
                    &relevant,
                );
                for group in &groups {
                    report.add(group, mode.name(), &ranked, &relevant, ms);
                }
            }
        }
        if let Some(baselines) = baselines {
            for baseline in Baseline::ALL {
                let started = Instant::now();
                let pages = baselines.rank(baseline, &question.question, DEPTH).await?;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let ranked = ranked_documents(pages.iter().map(|(name, id)| (name.as_str(), id.clone())), &relevant);
                for group in &groups {
                    report.add(group, &format!("baseline: {}", baseline.name()), &ranked, &relevant, ms);
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{recall_at, reciprocal_rank_at};

    #[test]
    fn eval_sets_are_read_and_their_errors_name_the_line() {
        let set = "# a comment\n{\"question\": \"q1\", \"relevant\": [\"a.md\"]}\n\n{\"question\": \"q2\", \"relevant\": [\"b\", \"c\"], \"difficulty\": \"hard\", \"id\": \"x\", \"answer_contains\": \"y\", \"note\": \"n\"}\n";
        let questions = read_eval_set(set).expect("valid set");
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[1].relevant, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(questions[1].difficulty, Some(Difficulty::Hard));
        let bad = "{\"question\": \"q1\", \"relevant\": [\"a\"]}\n{\"question\": \"q2\"}\n";
        assert!(read_eval_set(bad).expect_err("missing relevant").starts_with("line 2:"));
        let empty = "{\"question\": \"q1\", \"relevant\": []}";
        assert!(read_eval_set(empty).expect_err("no relevant").contains("at least one"));
        assert!(read_eval_set("\n# only a comment\n").is_err());
        let unknown = "{\"question\": \"q\", \"relevant\": [\"a\"], \"difficulty\": \"extreme\"}";
        assert!(read_eval_set(unknown).is_err());
    }

    #[test]
    fn a_conversation_is_its_last_user_turn_with_the_turns_before_as_history() {
        let line = r#"{"turns": [{"role": "user", "content": "copy a file?"}, {"role": "assistant", "content": "shutil.copy"}, {"role": "user", "content": "and folders?"}], "relevant": ["shutil"]}"#;
        let questions = read_eval_set(line).expect("valid");
        assert_eq!(questions[0].question, "and folders?");
        assert_eq!(questions[0].history.len(), 2);
        assert_eq!(questions[0].history[1].role, TurnRole::Assistant);
        let ends_with_assistant = r#"{"turns": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "relevant": ["x"]}"#;
        assert!(read_eval_set(ends_with_assistant).expect_err("bad turns").contains("user turn"));
        let both = r#"{"question": "q", "turns": [{"role": "user", "content": "a"}], "relevant": ["x"]}"#;
        assert!(read_eval_set(both).expect_err("both").contains("exactly one"));
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

    #[test]
    fn the_report_averages_each_system_per_group() {
        let mut report = EvalReport::default();
        let relevant: HashSet<String> = ["a".to_string()].into();
        report.add("single-turn", "hybrid", &["a".to_string()], &relevant, 2.0);
        report.add("single-turn", "hybrid", &["b".to_string(), "a".to_string()], &relevant, 4.0);
        report.add("single-turn", "keyword", &["b".to_string()], &relevant, 1.0);
        let hybrid = report.scores("single-turn", "hybrid").expect("hybrid ran");
        assert_eq!(hybrid.metrics.questions, 2);
        assert_eq!(hybrid.metrics.mrr_10, 0.75);
        assert_eq!(hybrid.metrics.hit_1, 0.5);
        assert_eq!(hybrid.mean_ms, 3.0);
        assert_eq!(report.scores("single-turn", "keyword").expect("ran").metrics.hit_10, 0.0);
        assert!(report.scores("multi-turn", "hybrid").is_none());
        let table = report.table();
        assert!(table.contains("single-turn (2 questions)") && table.contains("hybrid"), "{table}");
    }
}
