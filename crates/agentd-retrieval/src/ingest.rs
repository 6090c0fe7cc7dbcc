//! One document through the ingestion pipeline: parse, chunk, embed, store.
//!
//! The pipeline writes a document's chunks in a single transaction at the
//! end, so a crash anywhere before leaves nothing behind and a retry starts
//! clean. What a retry must not redo is the costly part, embedding: every
//! vector goes into the embedding cache as soon as its batch is computed,
//! so a retried job (or a re-upload with a few paragraphs changed) embeds
//! only what it has not seen.
//!
//! Failures come in two kinds. A document that cannot be read (broken PDF,
//! invalid UTF-8, no text) fails alone, with a reason for the person who
//! uploaded it; retrying would not help. A store or model failure is
//! transient: the caller retries the job later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentd_models::Embedder;
use agentd_store::{ChunkReplacement, DocumentId, DocumentStatus, JobId, NewChunk, Store, StoreError, TenantId};
use sha2::{Digest, Sha256};

use crate::boilerplate;
use crate::chunk::{Block, ChunkOptions, TokenCounter, chunk_blocks};
use crate::parse::{Format, Parsed, parse};

/// How documents are cut and embedded.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Chunk sizes; `max_tokens` is capped by the embedding model's window.
    pub chunk: ChunkOptions,
    /// Texts embedded per call to the model.
    pub embed_batch: usize,
    /// Embed each chunk under its page title and headings
    /// ([`embedding_text`]).
    pub embed_headings: bool,
    /// Leave the tenant's repeated boilerplate out of chunks
    /// ([`boilerplate`]).
    pub drop_boilerplate: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { chunk: ChunkOptions::default(), embed_batch: 32, embed_headings: true, drop_boilerplate: true }
    }
}

/// Parses on a blocking thread: parsing is CPU work that can take seconds
/// on a large file.
async fn parse_blocking(format: Format, bytes: Vec<u8>) -> Result<Parsed, String> {
    let parsing = tokio::task::spawn_blocking(move || parse(format, &bytes).map_err(|e| e.to_string()));
    parsing.await.unwrap_or_else(|e| Err(format!("parsing stopped unexpectedly: {e}")))
}

/// Tokens kept free in the embedder's window for a chunk's headings.
const CONTEXT_TOKENS: usize = 24;

/// What is embedded for a chunk: where it sits (the page's title, then the
/// headings above it, each once) and then its text. A passage such as
/// "Returns the middle value" means little without "statistics > median"
/// above it; the stored text, which citations quote, stays the chunk's own.
pub fn embedding_text(title: &str, heading_path: &[String], text: &str) -> String {
    let mut context: Vec<&str> = Vec::with_capacity(heading_path.len() + 1);
    let title = title.trim();
    // The first heading is usually the page's title again, or a longer
    // form of it.
    let title_in_headings = heading_path.first().is_some_and(|h| h.contains(title) || title.contains(h.trim()));
    if !title.is_empty() && !title_in_headings {
        context.push(title);
    }
    for heading in heading_path {
        let heading = heading.trim();
        if !heading.is_empty() && context.last() != Some(&heading) {
            context.push(heading);
        }
    }
    if context.is_empty() {
        return text.to_string();
    }
    format!("{}\n\n{text}", context.join(" > "))
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentOutcome {
    /// Its chunks are stored and searchable.
    Ready { chunks: usize },
    /// It cannot be ingested; the document is marked failed with `reason`.
    Failed { reason: String },
    /// Nothing to do: it is gone, already done, or has a newer version.
    Skipped,
}

/// Why a document's ingestion stopped before it was decided.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding failed: {0}")]
    Embed(String),
    /// The job was taken over by another worker; this one must stop.
    #[error("the job's lease was lost to another worker")]
    LeaseLost,
}

/// Counts tokens with the embedding model's tokenizer.
struct ModelTokens<'a>(&'a dyn Embedder);

impl TokenCounter for ModelTokens<'_> {
    fn count(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
}

/// Where an ingestor's time went, summed over every document it ran (on
/// all its workers at once): what the ingestion benchmark reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTotals {
    /// Parsing and chunking.
    pub parse: Duration,
    /// The embedding model's calls (cache hits cost nothing here).
    pub embed: Duration,
    /// Writing to the store: new vectors into the embedding cache, and the
    /// chunks' transaction.
    pub store: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct StageClock {
    parse: AtomicU64,
    embed: AtomicU64,
    store: AtomicU64,
}

impl StageClock {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Runs documents through the pipeline.
#[derive(Clone)]
pub struct Ingestor {
    store: Store,
    embedder: Arc<dyn Embedder>,
    options: IngestOptions,
    clock: Arc<StageClock>,
}

impl Ingestor {
    pub fn new(store: Store, embedder: Arc<dyn Embedder>, options: IngestOptions) -> Self {
        Ingestor { store, embedder, options, clock: Arc::default() }
    }

    /// The time spent in each stage so far, by every clone of this ingestor.
    pub fn stage_totals(&self) -> StageTotals {
        let read = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        StageTotals { parse: read(&self.clock.parse), embed: read(&self.clock.embed), store: read(&self.clock.store) }
    }

    /// The store documents are read from and written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Ingests version `version` of a document. `progress` hears, as
    /// embedding goes on, how many of the document's chunks are embedded
    /// and how many it has. With `lease`, the chunks are written only while
    /// that job is still held by that worker.
    pub async fn ingest(
        &self,
        tenant: TenantId,
        id: DocumentId,
        version: i64,
        lease: Option<(JobId, &str)>,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<DocumentOutcome, IngestError> {
        let document = match self.store.documents().get(tenant, id).await {
            Ok(document) => document,
            Err(StoreError::NotFound(_)) => return Ok(DocumentOutcome::Skipped),
            Err(e) => return Err(e.into()),
        };
        if document.version != version || document.status.is_final() {
            return Ok(DocumentOutcome::Skipped);
        }
        if !self.store.documents().set_status(tenant, id, version, DocumentStatus::Processing, None).await? {
            return Ok(DocumentOutcome::Skipped);
        }
        let (stored_version, bytes) = self.store.documents().content(tenant, id).await?;
        if stored_version != version {
            return Ok(DocumentOutcome::Skipped);
        }
        let format = document.format.as_deref().and_then(Format::from_name);
        let parsing = Instant::now();
        let parsed = match format {
            None => Err(format!("unsupported format {:?}", document.format.as_deref().unwrap_or("unknown"))),
            Some(format) => parse_blocking(format, bytes).await,
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                StageClock::add(&self.clock.parse, parsing);
                return self.fail(tenant, id, version, reason).await;
            }
        };
        let blocks = match self.options.drop_boilerplate {
            true => self.without_boilerplate(tenant, id, parsed.blocks).await?,
            false => parsed.blocks,
        };
        let chunks = self.cut(parsed.text, blocks).await;
        StageClock::add(&self.clock.parse, parsing);
        let chunks = match chunks {
            Ok(chunks) => chunks,
            Err(reason) => return self.fail(tenant, id, version, reason).await,
        };
        progress(0, chunks.len());
        let title = parsed.title.unwrap_or(document.title);
        let texts: Vec<String> = match self.options.embed_headings {
            true => chunks.iter().map(|c| embedding_text(&title, &c.heading_path, &c.text)).collect(),
            false => chunks.iter().map(|c| c.text.clone()).collect(),
        };
        let batch = self.options.embed_batch;
        let embeddings =
            embed_through_cache(&self.store, self.embedder.as_ref(), tenant, &texts, batch, &self.clock, progress)
                .await?;
        let new: Vec<NewChunk> = chunks
            .into_iter()
            .zip(embeddings)
            .map(|(chunk, embedding)| NewChunk {
                position: chunk.position as i64,
                text: chunk.text,
                heading_path: chunk.heading_path,
                byte_span: (chunk.byte_span.start as i64, chunk.byte_span.end as i64),
                char_span: (chunk.char_span.start as i64, chunk.char_span.end as i64),
                tokens: chunk.tokens as i64,
                embedding,
            })
            .collect();
        let storing = Instant::now();
        let replaced = self.store.chunks().replace_for_document(tenant, id, version, &new, lease).await;
        StageClock::add(&self.clock.store, storing);
        match replaced? {
            ChunkReplacement::Replaced { chunks } => Ok(DocumentOutcome::Ready { chunks }),
            ChunkReplacement::Superseded => Ok(DocumentOutcome::Skipped),
            ChunkReplacement::LeaseLost => Err(IngestError::LeaseLost),
        }
    }

    async fn fail(
        &self,
        tenant: TenantId,
        id: DocumentId,
        version: i64,
        reason: String,
    ) -> Result<DocumentOutcome, IngestError> {
        self.store.documents().set_status(tenant, id, version, DocumentStatus::Failed, Some(&reason)).await?;
        Ok(DocumentOutcome::Failed { reason })
    }

    /// `blocks` without the boilerplate the tenant's other documents repeat
    /// at their ends; records this document's edge blocks for the next ones.
    async fn without_boilerplate(
        &self,
        tenant: TenantId,
        id: DocumentId,
        blocks: Vec<Block>,
    ) -> Result<Vec<Block>, StoreError> {
        let prints = boilerplate::edge_prints(&blocks);
        let others = self.store.block_prints().others_holding(tenant, id, &prints).await?;
        self.store.block_prints().replace(tenant, id, &prints).await?;
        let repeated = |print: i64| others.get(&print).is_some_and(|n| *n >= boilerplate::MIN_OTHER_DOCUMENTS);
        let (kept, dropped) = boilerplate::strip(blocks, repeated);
        if dropped > 0 {
            tracing::debug!(%tenant, document = %id, dropped, "boilerplate blocks left out of the chunks");
        }
        Ok(kept)
    }

    /// Chunks on a blocking thread: token counting is CPU work that can
    /// take seconds on a large file.
    async fn cut(&self, text: String, blocks: Vec<Block>) -> Result<Vec<crate::Chunk>, String> {
        let embedder = self.embedder.clone();
        let mut options = self.options.chunk;
        // Leave room for the model's own markers ([CLS], [SEP]) and for the
        // headings embedded with each chunk.
        let context = if self.options.embed_headings { CONTEXT_TOKENS } else { 0 };
        let window = embedder.max_tokens().saturating_sub(2 + context).max(16);
        options.max_tokens = options.max_tokens.min(window);
        options.overlap_tokens = options.overlap_tokens.min(options.max_tokens / 2);
        let cut = tokio::task::spawn_blocking(move || {
            let chunks = chunk_blocks(&text, &blocks, &ModelTokens(embedder.as_ref()), options);
            if chunks.is_empty() {
                return Err("the document has no text".to_string());
            }
            Ok(chunks)
        });
        cut.await.unwrap_or_else(|e| Err(format!("chunking stopped unexpectedly: {e}")))
    }
}

/// The vectors of `texts`, from the tenant's embedding cache where it has
/// them and from the model (then cached, `batch` texts a call) for the
/// rest. `progress` hears how many are done of how many; `clock` is charged
/// the model's time and the cache's writes.
pub(crate) async fn embed_through_cache(
    store: &Store,
    embedder: &dyn Embedder,
    tenant: TenantId,
    texts: &[String],
    batch: usize,
    clock: &StageClock,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Vec<Vec<f32>>, IngestError> {
    let model = embedder.model_name().to_string();
    let hashes: Vec<[u8; 32]> = texts.iter().map(|t| Sha256::digest(t.as_bytes()).into()).collect();
    let mut unique = hashes.clone();
    unique.sort_unstable();
    unique.dedup();
    let mut known = store.embedding_cache().get_many(tenant, &model, &unique).await?;
    let missing: Vec<usize> = {
        let mut seen = std::collections::HashSet::new();
        (0..texts.len()).filter(|&i| !known.contains_key(&hashes[i]) && seen.insert(hashes[i])).collect()
    };
    let total = texts.len();
    let mut done = total - missing.len();
    progress(done, total);
    for batch in missing.chunks(batch.max(1)) {
        let batch_texts: Vec<String> = batch.iter().map(|&i| texts[i].clone()).collect();
        let embedding = Instant::now();
        let vectors = embedder.embed(&batch_texts).await.map_err(|e| IngestError::Embed(e.to_string()));
        StageClock::add(&clock.embed, embedding);
        let vectors = vectors?;
        if vectors.len() != batch.len() {
            return Err(IngestError::Embed(format!("asked for {} vectors, got {}", batch.len(), vectors.len())));
        }
        let entries: Vec<([u8; 32], &[f32])> =
            batch.iter().zip(&vectors).map(|(&i, v)| (hashes[i], v.as_slice())).collect();
        let caching = Instant::now();
        let cached = store.embedding_cache().put_many(tenant, &model, &entries).await;
        StageClock::add(&clock.store, caching);
        cached?;
        for (&i, vector) in batch.iter().zip(vectors) {
            known.insert(hashes[i], vector);
        }
        done += batch.len();
        progress(done.min(total), total);
    }
    hashes
        .iter()
        .map(|h| known.get(h).cloned().ok_or_else(|| IngestError::Embed("a text's vector went missing".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(headings: &[&str]) -> Vec<String> {
        headings.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn a_chunk_is_embedded_under_its_title_and_headings() {
        let text = embedding_text("guide.md", &path(&["Backups", "Restoring"]), "Copy the folder back.");
        assert_eq!(text, "guide.md > Backups > Restoring\n\nCopy the folder back.");
    }

    #[test]
    fn a_title_the_first_heading_repeats_is_said_once() {
        let headings = path(&["statistics — Mathematical statistics functions", "Function details"]);
        let title = "statistics — Mathematical statistics functions — Python 3.11 documentation";
        let text = embedding_text(title, &headings, "Return the median.");
        assert_eq!(text, "statistics — Mathematical statistics functions > Function details\n\nReturn the median.");
        assert_eq!(embedding_text("File system", &path(&["File system", "File system"]), "x"), "File system\n\nx");
    }

    #[test]
    fn a_chunk_without_context_is_embedded_as_it_is() {
        assert_eq!(embedding_text("", &[], "plain"), "plain");
        assert_eq!(embedding_text("notes.txt", &[], "plain"), "notes.txt\n\nplain");
    }
}
