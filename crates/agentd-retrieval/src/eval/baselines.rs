//! The plain baselines every retrieval figure is compared with, built in
//! the same run from the same pages and the same embedding model.
//!
//! These are what a team gets from a textbook retrieval stack, with no
//! work of agentd's own:
//! - **page BM25**: one tantivy document per page (title and whole text);
//! - **dense passages**: each page's text cut into passages of about
//!   [`PASSAGE_TOKENS`] model tokens, each embedded with the page's title in
//!   front; a page scores its best passage's cosine similarity;
//! - **fused**: the two page rankings merged by reciprocal rank (k = 60).
//!
//! Decisions:
//! - The pages' text is what agentd's parsers extract (visible text of
//!   HTML, Markdown as written), before any of agentd's chunking: the
//!   baselines share the parsers, so a difference in the figures comes from
//!   chunking, indexing and ranking, not from reading the files.
//! - Passages are packed from whole paragraphs; a paragraph longer than a
//!   passage is cut at words. Their vectors go through the store's
//!   embedding cache as ingestion's do, so a second run embeds nothing.

use std::collections::HashMap;
use std::sync::Arc;

use agentd_models::Embedder;
use agentd_store::{DocumentStatus, Store, TenantId};

use crate::fusion::{RRF_K, Ranked, reciprocal_rank_fusion};
use crate::ingest::{IngestError, StageClock, embed_through_cache};
use crate::keyword::{KeywordDoc, KeywordIndex};
use crate::parse::{Format, parse};
use crate::search::SearchError;

/// The size of a dense baseline passage, in the model's tokens.
pub const PASSAGE_TOKENS: usize = 224;
/// Texts embedded per call.
const EMBED_BATCH: usize = 32;

/// A page as the baselines see it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The document's title (what an evaluation set names it by).
    pub name: String,
    /// Its id, the other name an evaluation set may use.
    pub id: String,
    /// The page's own title when it names one, else `name`.
    pub title: String,
    pub text: String,
}

/// Which baseline ranked the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    PageBm25,
    DensePassages,
    Fused,
}

impl Baseline {
    pub const ALL: [Baseline; 3] = [Baseline::PageBm25, Baseline::DensePassages, Baseline::Fused];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::PageBm25 => "page BM25",
            Baseline::DensePassages => "dense passages",
            Baseline::Fused => "BM25+dense RRF",
        }
    }
}

/// The baselines over one tenant's pages.
pub struct Baselines {
    pages: Vec<Page>,
    bm25: KeywordIndex,
    /// Each passage's page and unit vector.
    passages: Vec<(usize, Vec<f32>)>,
    embedder: Arc<dyn Embedder>,
}

impl Baselines {
    /// Reads every ready document of `tenant`, and builds the baselines
    /// over them; passages are embedded by `embedder` (through the
    /// embedding cache).
    pub async fn build(store: &Store, tenant: TenantId, embedder: Arc<dyn Embedder>) -> Result<Self, SearchError> {
        let pages = load_pages(store, tenant).await?;
        let bm25 = KeywordIndex::in_memory().map_err(crate::IndexError::from)?;
        let ids: Vec<String> = pages.iter().map(|p| p.id.clone()).collect();
        let docs: Vec<KeywordDoc<'_>> = pages
            .iter()
            .enumerate()
            .map(|(n, page)| KeywordDoc {
                key: n as u64,
                document_id: &ids[n],
                title: &page.title,
                heading_path: &[],
                text: &page.text,
            })
            .collect();
        bm25.upsert(&docs).map_err(crate::IndexError::from)?;
        bm25.commit(1).map_err(crate::IndexError::from)?;

        let counter = |text: &str| embedder.count_tokens(text);
        let mut texts = Vec::new();
        let mut owners = Vec::new();
        for (n, page) in pages.iter().enumerate() {
            for passage in passages(&page.text, PASSAGE_TOKENS, &counter) {
                texts.push(format!("{}\n\n{passage}", page.title));
                owners.push(n);
            }
        }
        let clock = StageClock::default();
        let vectors =
            embed_through_cache(store, embedder.as_ref(), tenant, &texts, EMBED_BATCH, &clock, &mut |_, _| {})
                .await
                .map_err(|e| match e {
                    IngestError::Store(e) => SearchError::Store(e),
                    other => SearchError::Embed(other.to_string()),
                })?;
        let passages = owners.into_iter().zip(vectors).collect();
        Ok(Baselines { pages, bm25, passages, embedder })
    }

    /// How many pages and passages the baselines hold.
    pub fn size(&self) -> (usize, usize) {
        (self.pages.len(), self.passages.len())
    }

    /// The first `k` pages for `query` by `baseline`, as (name, id).
    pub async fn rank(&self, baseline: Baseline, query: &str, k: usize) -> Result<Vec<(String, String)>, SearchError> {
        let ranked = match baseline {
            Baseline::PageBm25 => self.bm25(query, k)?,
            Baseline::DensePassages => self.dense(query, k).await?,
            Baseline::Fused => {
                let depth = (k * 10).max(100);
                let (bm25, dense) = (self.bm25(query, depth)?, self.dense(query, depth).await?);
                reciprocal_rank_fusion(&[(&bm25[..], 1.0), (&dense[..], 1.0)], RRF_K, k)
            }
        };
        Ok(ranked
            .into_iter()
            .take(k)
            .map(|r| {
                let page = &self.pages[r.key as usize];
                (page.name.clone(), page.id.clone())
            })
            .collect())
    }

    fn bm25(&self, query: &str, k: usize) -> Result<Vec<Ranked>, SearchError> {
        let hits = self.bm25.search(query, k, None).map_err(crate::IndexError::from)?;
        Ok(hits.into_iter().map(|h| Ranked { key: h.key, score: h.score }).collect())
    }

    /// Pages by their best passage's cosine similarity.
    async fn dense(&self, query: &str, k: usize) -> Result<Vec<Ranked>, SearchError> {
        let query = self.embedder.embed_one(query).await.map_err(|e| SearchError::Embed(e.to_string()))?;
        let mut best: HashMap<usize, f32> = HashMap::new();
        for (page, vector) in &self.passages {
            let score: f32 = vector.iter().zip(&query).map(|(a, b)| a * b).sum();
            let entry = best.entry(*page).or_insert(f32::NEG_INFINITY);
            *entry = entry.max(score);
        }
        let mut ranked: Vec<Ranked> =
            best.into_iter().map(|(page, score)| Ranked { key: page as u64, score }).collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        ranked.truncate(k);
        Ok(ranked)
    }
}

/// Every ready document of the tenant, parsed.
async fn load_pages(store: &Store, tenant: TenantId) -> Result<Vec<Page>, SearchError> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.documents().list(tenant, None, 200, cursor.as_deref()).await?;
        for document in page.items {
            if document.status != DocumentStatus::Ready {
                continue;
            }
            let Some(format) = document.format.as_deref().and_then(Format::from_name) else { continue };
            let (_, bytes) = store.documents().content(tenant, document.id).await?;
            let Ok(parsed) = tokio::task::spawn_blocking(move || parse(format, &bytes))
                .await
                .map_err(|e| SearchError::Invalid(format!("parsing stopped: {e}")))?
            else {
                continue;
            };
            pages.push(Page {
                title: parsed.title.unwrap_or_else(|| document.title.clone()),
                name: document.title,
                id: document.id.to_string(),
                text: parsed.text,
            });
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // Listing is newest first; keys follow a stable order.
    pages.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(pages)
}

/// `text` packed into passages of at most `max_tokens` (as `count` counts
/// them) from whole paragraphs; a longer paragraph is cut at words.
pub fn passages(text: &str, max_tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_tokens = 0;
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let tokens = count(paragraph);
        if current_tokens + tokens > max_tokens && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            current_tokens = 0;
        }
        if tokens > max_tokens {
            out.extend(cut_at_words(paragraph, max_tokens, count));
            continue;
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(paragraph);
        current_tokens += tokens;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A long paragraph in pieces of at most `max_tokens`, cut between words.
fn cut_at_words(paragraph: &str, max_tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < words.len() {
        // Grow by a guess, then shrink until it fits.
        let mut end = (start + max_tokens * 3 / 4).clamp(start + 1, words.len());
        while end > start + 1 && count(&words[start..end].join(" ")) > max_tokens {
            end = start + (end - start) * 9 / 10;
        }
        pieces.push(words[start..end].join(" "));
        start = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn passages_pack_whole_paragraphs_up_to_the_budget() {
        let text = "one two three\n\nfour five\n\nsix seven eight nine\n\nten";
        let packed = passages(text, 5, &words);
        assert_eq!(packed, vec!["one two three\n\nfour five", "six seven eight nine\n\nten"]);
    }

    #[test]
    fn a_paragraph_longer_than_a_passage_is_cut_at_words() {
        let long: Vec<String> = (0..25).map(|n| format!("w{n}")).collect();
        let text = format!("intro\n\n{}\n\noutro", long.join(" "));
        let packed = passages(&text, 10, &words);
        assert_eq!(packed.first().map(String::as_str), Some("intro"));
        assert_eq!(packed.last().map(String::as_str), Some("outro"));
        assert!(packed.iter().all(|p| words(p) <= 10), "{packed:?}");
        let middle: Vec<&str> = packed[1..packed.len() - 1].iter().flat_map(|p| p.split_whitespace()).collect();
        assert_eq!(middle, long.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
