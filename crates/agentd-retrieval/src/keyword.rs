//! The BM25 keyword index: finds chunks that share words with a question.
//!
//! Dense vectors miss what is rare or exact (an error code, a product name, a
//! function); a keyword index catches it, and [fusion](crate::fusion) combines
//! both rankings. This module wraps one tantivy index per tenant: the caller
//! keeps one [`KeywordIndex`] per tenant directory, so tenants are isolated by
//! construction, never by a filter a query could forget.
//!
//! Decisions:
//!
//! - **Derived data.** The SQL store is the source of truth; this index is a
//!   projection of it. Every commit records the sequence number of the last
//!   change applied ([`KeywordIndex::applied_seq`]) in the commit itself, so
//!   after a crash the caller replays from there. A directory that cannot be
//!   opened (damaged, or written with another schema or analyzer) is an
//!   error; the caller wipes it and rebuilds from the store.
//! - **Atomic batches.** Writes are buffered in one tantivy writer until
//!   [`KeywordIndex::commit`]; searches read the last commit only, so a
//!   document replaced by a new version is never seen half old, half new.
//!   The writer is created on the first write and then kept: a tenant that is
//!   only searched holds no writer threads and no directory lock.
//! - **Analysis.** Words are split on anything not alphanumeric, lowercased,
//!   folded to ASCII (`café` finds `cafe`) and stemmed for English
//!   (`indexing` finds `indexes`). Stop words are kept: BM25's IDF already
//!   makes them cheap, and words like `not` or `where` can matter. The
//!   analyzer's name carries a version, stored in the schema: changing the
//!   analysis means changing the name, and old indexes then fail to open and
//!   are rebuilt rather than searched with mismatched terms.
//! - **Fields.** The title and heading path are indexed besides the text and
//!   boosted a little ([`TITLE_BOOST`], [`HEADINGS_BOOST`]): a chunk under a
//!   heading that names the subject is likely about it. No text is stored;
//!   only the chunk key comes back (a fast field), the store has the rest.
//! - **Queries have no syntax.** Questions come from people and models, not
//!   search experts: `C++`, `AND OR`, `key:value`, an unbalanced quote or an
//!   emoji must neither fail nor change meaning. The query is analyzed like
//!   the text and every word is an optional clause (OR), so BM25 ranks by how
//!   many words match and how rare they are. The only thing read from the
//!   query is a pair of double quotes: a quoted phrase found verbatim earns a
//!   bonus, but its words still match on their own.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::LockError;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, PhraseQuery, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TantivyDocument, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{Index, IndexBuilder, IndexReader, IndexWriter, ReloadPolicy, TantivyError, Term};

/// The analyzer's registered name. Bump the version whenever the analysis
/// changes, so existing indexes are rebuilt (see the module's doc).
const ANALYZER: &str = "agentd_en_v1";

/// Longer tokens (base64, hashes, minified code) are dropped, in bytes.
const MAX_TOKEN_BYTES: usize = 40;

/// How much a query word found in the title counts against one in the text.
const TITLE_BOOST: f32 = 1.5;

/// How much a query word found in a heading counts against one in the text.
const HEADINGS_BOOST: f32 = 1.2;

/// Most distinct query words used; the rest of a pasted page is ignored.
const MAX_QUERY_TERMS: usize = 128;

/// Memory the writer may buffer before it writes a segment to disk. Small:
/// there is one writer per tenant, and ingestion commits often.
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// One chunk as the keyword index sees it.
#[derive(Debug, Clone, Copy)]
pub struct KeywordDoc<'a> {
    /// The chunk's key, the only thing a search returns.
    pub key: u64,
    /// The document the chunk belongs to, for deletion and filtering.
    pub document_id: &'a str,
    pub title: &'a str,
    /// Headings above the chunk, outermost first.
    pub heading_path: &'a [String],
    pub text: &'a str,
}

/// A chunk found by a search, with its BM25 score (higher is better; only
/// comparable within one search).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    pub key: u64,
    pub score: f32,
}

/// Why the keyword index failed.
#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    /// The directory holds no usable index: damaged, or written with another
    /// schema or analyzer. Wipe it and rebuild from the store.
    #[error("keyword index at {} cannot be opened: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    /// Another writer (another process, or a second [`KeywordIndex`] on the
    /// same directory) holds the index. Nothing is wrong with its contents.
    #[error("keyword index at {} is locked by another writer", path.display())]
    Locked { path: PathBuf },
    /// Reading or writing the index failed.
    #[error("keyword index failed: {0}")]
    Index(String),
}

impl From<TantivyError> for KeywordError {
    fn from(err: TantivyError) -> Self {
        KeywordError::Index(err.to_string())
    }
}

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    key: Field,
    document_id: Field,
    title: Field,
    headings: Field,
    text: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let mut builder = Schema::builder();
        let analyzed = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            key: builder.add_u64_field("key", INDEXED | FAST),
            document_id: builder.add_text_field("document_id", STRING),
            title: builder.add_text_field("title", analyzed.clone()),
            headings: builder.add_text_field("headings", analyzed.clone()),
            text: builder.add_text_field("text", analyzed),
        };
        (builder.build(), fields)
    }

    /// The analyzed fields with their boosts.
    fn searched(&self) -> [(Field, f32); 3] {
        [(self.title, TITLE_BOOST), (self.headings, HEADINGS_BOOST), (self.text, 1.0)]
    }
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// A tenant's BM25 index over chunks. Cheap to share: every method takes
/// `&self` and may be called from several threads.
pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    /// Created on the first write, then kept (see the module's doc).
    writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    fields: Fields,
    applied_seq: AtomicU64,
    /// Where the index lives, for errors; `None` in memory.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordIndex")
            .field("dir", &self.dir)
            .field("applied_seq", &self.applied_seq())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating the directory and an empty index
    /// if there is none.
    pub fn open(dir: &Path) -> Result<Self, KeywordError> {
        let fail = |reason: String| KeywordError::Open { path: dir.to_path_buf(), reason };
        std::fs::create_dir_all(dir).map_err(|err| fail(err.to_string()))?;
        let directory = MmapDirectory::open(dir).map_err(|err| fail(err.to_string()))?;
        let (schema, fields) = Fields::schema();
        let index =
            IndexBuilder::new().schema(schema).open_or_create(directory).map_err(|err| fail(err.to_string()))?;
        Self::from_index(index, fields, Some(dir.to_path_buf())).map_err(|err| match err {
            KeywordError::Index(reason) => fail(reason),
            other => other,
        })
    }

    /// An empty index in memory, gone when dropped.
    pub fn in_memory() -> Result<Self, KeywordError> {
        let (schema, fields) = Fields::schema();
        Self::from_index(Index::create_in_ram(schema), fields, None)
    }

    fn from_index(index: Index, fields: Fields, dir: Option<PathBuf>) -> Result<Self, KeywordError> {
        index.tokenizers().register(ANALYZER, analyzer());
        // Opening the reader opens every segment, so a damaged index fails
        // here rather than at its first search.
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let applied_seq = match index.load_metas()?.payload {
            None => 0,
            Some(payload) => payload.parse::<u64>().map_err(|_| {
                KeywordError::Index(format!("its commit payload {payload:?} is not an applied sequence number"))
            })?,
        };
        Ok(KeywordIndex {
            index,
            reader,
            writer: Mutex::new(None),
            fields,
            applied_seq: AtomicU64::new(applied_seq),
            dir,
        })
    }

    /// Adds chunks, replacing any chunk already indexed under the same key
    /// (within `docs`, the last one with a key wins). Seen by searches after
    /// the next [`commit`](Self::commit).
    pub fn upsert(&self, docs: &[KeywordDoc]) -> Result<(), KeywordError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().expect("writer() creates the writer");
        for doc in docs {
            writer.delete_term(Term::from_field_u64(self.fields.key, doc.key));
            let mut document = TantivyDocument::new();
            document.add_u64(self.fields.key, doc.key);
            document.add_text(self.fields.document_id, doc.document_id);
            document.add_text(self.fields.title, doc.title);
            for heading in doc.heading_path {
                document.add_text(self.fields.headings, heading);
            }
            document.add_text(self.fields.text, doc.text);
            writer.add_document(document)?;
        }
        Ok(())
    }

    /// Removes chunks by key; unknown keys are ignored. Seen by searches
    /// after the next [`commit`](Self::commit).
    pub fn delete(&self, keys: &[u64]) -> Result<(), KeywordError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().expect("writer() creates the writer");
        for &key in keys {
            writer.delete_term(Term::from_field_u64(self.fields.key, key));
        }
        Ok(())
    }

    /// Removes every chunk of a document. Seen by searches after the next
    /// [`commit`](Self::commit).
    pub fn delete_document(&self, document_id: &str) -> Result<(), KeywordError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().expect("writer() creates the writer");
        writer.delete_term(Term::from_field_text(self.fields.document_id, document_id));
        Ok(())
    }

    /// Removes every chunk (to rebuild the index). Seen by searches after the
    /// next [`commit`](Self::commit).
    pub fn delete_all(&self) -> Result<(), KeywordError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().expect("writer() creates the writer");
        writer.delete_all_documents()?;
        Ok(())
    }

    /// Makes every change since the last commit durable and visible to
    /// searches, all at once, recording `applied_seq` with them. Committing
    /// with no pending change still records `applied_seq`.
    pub fn commit(&self, applied_seq: u64) -> Result<(), KeywordError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().expect("writer() creates the writer");
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&applied_seq.to_string());
        prepared.commit()?;
        self.reader.reload()?;
        self.applied_seq.store(applied_seq, Ordering::Release);
        Ok(())
    }

    /// The `applied_seq` of the last commit; 0 for an index never committed.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// The committed chunks.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no chunk is committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` committed chunks that best match `query`, best first. With
    /// `documents`, only chunks of those document ids are searched (an empty
    /// list finds nothing). A query without a word finds nothing.
    pub fn search(&self, query: &str, k: usize, documents: Option<&[String]>) -> Result<Vec<KeywordHit>, KeywordError> {
        if k == 0 || documents.is_some_and(|ids| ids.is_empty()) {
            return Ok(Vec::new());
        }
        let Some(mut query) = self.build_query(query) else {
            return Ok(Vec::new());
        };
        if let Some(ids) = documents {
            let ids = ids.iter().map(|id| Term::from_field_text(self.fields.document_id, id));
            // A filter: it must match, but adds nothing to the score.
            let filter = ConstScoreQuery::new(Box::new(TermSetQuery::new(ids)), 0.0);
            query = Box::new(BooleanQuery::new(vec![(Occur::Must, query), (Occur::Must, Box::new(filter))]));
        }
        let searcher = self.reader.searcher();
        // TopDocs allocates for its limit: never more than there are chunks.
        let limit = k.min(usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX));
        if limit == 0 {
            return Ok(Vec::new());
        }
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut keys = Vec::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            keys.push(segment.fast_fields().u64("key")?);
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let key = keys[address.segment_ord as usize]
                .first(address.doc_id)
                .ok_or_else(|| KeywordError::Index(format!("chunk {address:?} has no key")))?;
            hits.push(KeywordHit { key, score });
        }
        Ok(hits)
    }

    /// The query for free text: each distinct word, optional, on every
    /// analyzed field; plus a bonus for each quoted phrase. `None` if the
    /// text has no word.
    fn build_query(&self, text: &str) -> Option<Box<dyn Query>> {
        let mut analyzer = analyzer();
        let mut words: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut phrases: Vec<Vec<(usize, String)>> = Vec::new();
        let segments: Vec<&str> = text.split('"').collect();
        for (i, segment) in segments.iter().enumerate() {
            // Odd segments are between quotes, except a last one after an
            // unbalanced quote.
            let quoted = i % 2 == 1 && i + 1 < segments.len();
            let mut phrase = Vec::new();
            let mut stream = analyzer.token_stream(segment);
            while let Some(token) = stream.next() {
                if quoted {
                    phrase.push((token.position, token.text.clone()));
                }
                if words.len() < MAX_QUERY_TERMS && seen.insert(token.text.clone()) {
                    words.push(token.text.clone());
                }
            }
            if phrase.len() > 1 {
                phrases.push(phrase);
            }
        }
        if words.is_empty() {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in &words {
            for (field, boost) in self.fields.searched() {
                let term = TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::WithFreqs);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term), boost))));
            }
        }
        for phrase in &phrases {
            for (field, boost) in self.fields.searched() {
                let terms = phrase.iter().map(|(position, word)| (*position, Term::from_field_text(field, word)));
                let phrase = PhraseQuery::new_with_offset(terms.collect());
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(phrase), boost))));
            }
        }
        Some(Box::new(BooleanQuery::new(clauses)))
    }

    /// The writer, created on first use.
    fn writer(&self) -> Result<MutexGuard<'_, Option<IndexWriter<TantivyDocument>>>, KeywordError> {
        let mut guard = self.writer.lock().map_err(|_| {
            KeywordError::Index("a write panicked earlier; reopen the index and replay from applied_seq".into())
        })?;
        if guard.is_none() {
            let writer = self.index.writer_with_options(
                IndexWriterOptions::builder()
                    .num_worker_threads(1)
                    .num_merge_threads(1)
                    .memory_budget_per_thread(WRITER_MEMORY_BYTES)
                    .build(),
            );
            *guard = Some(writer.map_err(|err| match err {
                TantivyError::LockFailure(LockError::LockBusy, _) => {
                    KeywordError::Locked { path: self.dir.clone().unwrap_or_default() }
                }
                other => other.into(),
            })?);
        }
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk with no title or headings.
    fn doc<'a>(key: u64, document_id: &'a str, text: &'a str) -> KeywordDoc<'a> {
        KeywordDoc { key, document_id, title: "", heading_path: &[], text }
    }

    fn keys(hits: &[KeywordHit]) -> Vec<u64> {
        hits.iter().map(|hit| hit.key).collect()
    }

    /// Three chunks on different subjects, committed at seq 1.
    fn three_chunks() -> KeywordIndex {
        let index = KeywordIndex::in_memory().unwrap();
        index
            .upsert(&[
                doc(1, "a", "The garden needs watering every morning in summer."),
                doc(2, "b", "To rotate the database credentials, run the rotation job and restart the workers."),
                doc(3, "c", "Our database backups run nightly; restore them with the restore command."),
            ])
            .unwrap();
        index.commit(1).unwrap();
        index
    }

    #[test]
    fn the_relevant_chunk_ranks_first() {
        let index = three_chunks();
        let hits = index.search("how do I rotate database credentials?", 10, None).unwrap();
        assert_eq!(keys(&hits), [2, 3], "only chunks sharing a word match, the one sharing most first");
        assert!(hits[0].score > hits[1].score);
    }

    #[test]
    fn words_match_across_forms_case_and_accents() {
        let index = KeywordIndex::in_memory().unwrap();
        index.upsert(&[doc(1, "a", "Indexing Cafés"), doc(2, "b", "something else")]).unwrap();
        index.commit(1).unwrap();
        assert_eq!(keys(&index.search("indexes", 10, None).unwrap()), [1]);
        assert_eq!(keys(&index.search("CAFE", 10, None).unwrap()), [1]);
    }

    #[test]
    fn the_title_and_headings_are_searched_and_count_more_than_the_text() {
        let index = KeywordIndex::in_memory().unwrap();
        let (operations, kubernetes) = (["Operations".to_string()], ["Kubernetes".to_string()]);
        // Fields of equal lengths, so only where the word is found differs.
        let chunk = |key, title, heading_path, text| KeywordDoc { key, document_id: "d", title, heading_path, text };
        index
            .upsert(&[
                chunk(1, "Handbook", &operations, "kubernetes cluster upgrades happen every month"),
                chunk(2, "Handbook", &kubernetes, "cluster upgrades happen every month always"),
                chunk(3, "Kubernetes", &operations, "cluster upgrades happen every month always"),
            ])
            .unwrap();
        index.commit(1).unwrap();
        assert_eq!(keys(&index.search("kubernetes", 10, None).unwrap()), [3, 2, 1]);
    }

    #[test]
    fn a_quoted_phrase_found_verbatim_ranks_first_but_does_not_exclude() {
        let index = KeywordIndex::in_memory().unwrap();
        index.upsert(&[doc(1, "a", "out of memory in the cache"), doc(2, "b", "the cache ran out of memory")]).unwrap();
        index.commit(1).unwrap();
        let hits = index.search("\"memory in the cache\"", 10, None).unwrap();
        assert_eq!(keys(&hits), [1, 2]);
        let unquoted = index.search("memory in the cache", 10, None).unwrap();
        assert!(hits[0].score > unquoted[0].score, "the phrase adds to the score");
    }

    #[test]
    fn k_limits_the_hits() {
        let index = three_chunks();
        assert_eq!(keys(&index.search("database", 1, None).unwrap()).len(), 1);
        assert!(index.search("database", 0, None).unwrap().is_empty());
        assert_eq!(index.search("database", usize::MAX, None).unwrap().len(), 2);
    }

    #[test]
    fn upsert_replaces_the_chunk_with_the_same_key() {
        let index = three_chunks();
        index.upsert(&[doc(2, "b", "Credentials now live in the vault.")]).unwrap();
        index.commit(2).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(keys(&index.search("rotate", 10, None).unwrap()), Vec::<u64>::new());
        assert_eq!(keys(&index.search("vault", 10, None).unwrap()), [2]);
    }

    #[test]
    fn the_last_of_two_chunks_with_one_key_in_a_batch_wins() {
        let index = KeywordIndex::in_memory().unwrap();
        index.upsert(&[doc(1, "a", "first version"), doc(1, "a", "second version")]).unwrap();
        index.commit(1).unwrap();
        assert_eq!(index.len(), 1);
        assert!(index.search("first", 10, None).unwrap().is_empty());
        assert_eq!(keys(&index.search("second", 10, None).unwrap()), [1]);
    }

    #[test]
    fn delete_removes_chunks_by_key() {
        let index = three_chunks();
        index.delete(&[3, 99]).unwrap();
        index.commit(2).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(keys(&index.search("database", 10, None).unwrap()), [2]);
    }

    #[test]
    fn delete_document_removes_all_its_chunks_and_only_them() {
        let index = KeywordIndex::in_memory().unwrap();
        index
            .upsert(&[doc(1, "manual", "alpha beta"), doc(2, "manual", "beta gamma"), doc(3, "guide", "beta delta")])
            .unwrap();
        index.commit(1).unwrap();
        index.delete_document("manual").unwrap();
        index.commit(2).unwrap();
        assert_eq!(keys(&index.search("beta", 10, None).unwrap()), [3]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn changes_are_seen_only_after_commit_and_all_at_once() {
        let index = three_chunks();
        // A new version of document b: old chunk out, two new ones in.
        index.delete_document("b").unwrap();
        index
            .upsert(&[doc(20, "b", "rotation is automatic now"), doc(21, "b", "credentials are in the vault")])
            .unwrap();
        assert_eq!(keys(&index.search("rotate credentials vault", 10, None).unwrap()), [2], "still the old version");
        assert_eq!(index.len(), 3);
        index.commit(2).unwrap();
        let mut found = keys(&index.search("rotate credentials vault", 10, None).unwrap());
        found.sort_unstable();
        assert_eq!(found, [20, 21], "only the new version");
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn the_documents_filter_keeps_only_their_chunks_without_changing_scores() {
        let index = three_chunks();
        let all = index.search("database restore", 10, None).unwrap();
        let only_b = index.search("database restore", 10, Some(&["b".to_string(), "zzz".to_string()])).unwrap();
        assert_eq!(keys(&only_b), [2]);
        let unfiltered_b = all.iter().find(|hit| hit.key == 2).unwrap();
        assert!((only_b[0].score - unfiltered_b.score).abs() < 1e-6, "the filter adds nothing to the score");
        assert!(index.search("database", 10, Some(&[])).unwrap().is_empty());
    }

    #[test]
    fn queries_with_special_characters_never_fail() {
        let index = three_chunks();
        for query in [
            "C++",
            "\"unbalanced",
            "AND OR",
            ":",
            "key:2",
            "title:",
            "a\"b\"c\"",
            "(",
            ")",
            "[1 TO 2]",
            "*",
            "-",
            "+",
            "~2",
            "^",
            "\\",
            "NOT",
            "database^10",
            "🦀🦀",
            "😀 database",
            "",
            "   ",
            "'",
            "{}",
            "!?",
            "\u{0}",
        ] {
            let result = index.search(query, 10, None);
            assert!(result.is_ok(), "{query:?} failed: {result:?}");
        }
        assert!(index.search("🦀", 10, None).unwrap().is_empty());
        assert_eq!(keys(&index.search("AND OR", 10, None).unwrap()), [2], "operators are plain words here");
        assert_eq!(keys(&index.search("😀 database:", 10, None).unwrap()).len(), 2);
        assert_eq!(keys(&index.search("-database", 10, None).unwrap()).len(), 2, "a dash does not exclude");
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = KeywordIndex::in_memory().unwrap();
        assert!(index.search("anything", 10, None).unwrap().is_empty());
        assert!(index.is_empty());
        assert_eq!(index.applied_seq(), 0);
    }

    #[test]
    fn reopening_keeps_committed_chunks_and_applied_seq_and_loses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = KeywordIndex::open(dir.path()).unwrap();
            assert_eq!(index.applied_seq(), 0);
            index.upsert(&[doc(1, "a", "committed chunk")]).unwrap();
            index.commit(41).unwrap();
            assert_eq!(index.applied_seq(), 41);
            index.upsert(&[doc(2, "b", "uncommitted chunk")]).unwrap();
            index.delete(&[1]).unwrap();
        }
        let index = KeywordIndex::open(dir.path()).unwrap();
        assert_eq!(index.applied_seq(), 41);
        assert_eq!(index.len(), 1);
        assert_eq!(keys(&index.search("chunk", 10, None).unwrap()), [1]);
        // The analyzer is registered again on reopen: new writes are searchable.
        index.upsert(&[doc(3, "c", "indexing again")]).unwrap();
        index.commit(42).unwrap();
        assert_eq!(keys(&index.search("indexes", 10, None).unwrap()), [3]);
        drop(index);
        assert_eq!(KeywordIndex::open(dir.path()).unwrap().applied_seq(), 42);
    }

    #[test]
    fn a_commit_without_changes_still_records_applied_seq() {
        let dir = tempfile::tempdir().unwrap();
        KeywordIndex::open(dir.path()).unwrap().commit(7).unwrap();
        assert_eq!(KeywordIndex::open(dir.path()).unwrap().applied_seq(), 7);
    }

    #[test]
    fn open_creates_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants").join("t1");
        let index = KeywordIndex::open(&path).unwrap();
        assert!(index.is_empty());
        assert!(path.join("meta.json").exists());
    }

    #[test]
    fn a_damaged_index_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meta.json"), "not json").unwrap();
        let err = KeywordIndex::open(dir.path()).unwrap_err();
        assert!(matches!(err, KeywordError::Open { .. }), "{err:?}");
    }

    #[test]
    fn an_index_from_another_analyzer_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = Schema::builder();
        builder.add_text_field("text", tantivy::schema::TEXT);
        Index::create_in_dir(dir.path(), builder.build()).unwrap();
        let err = KeywordIndex::open(dir.path()).unwrap_err();
        assert!(matches!(err, KeywordError::Open { .. }), "{err:?}");
    }

    #[test]
    fn a_second_writer_on_one_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeywordIndex::open(dir.path()).unwrap();
        first.commit(1).unwrap();
        let second = KeywordIndex::open(dir.path()).unwrap();
        assert_eq!(second.len(), 0, "reading is fine");
        let err = second.upsert(&[doc(1, "a", "text")]).unwrap_err();
        assert!(matches!(err, KeywordError::Locked { .. }), "{err:?}");
    }

    #[test]
    fn two_tenants_never_mix() {
        let dir = tempfile::tempdir().unwrap();
        let acme = KeywordIndex::open(&dir.path().join("acme")).unwrap();
        let globex = KeywordIndex::open(&dir.path().join("globex")).unwrap();
        // Same keys and document ids in both, on purpose.
        acme.upsert(&[doc(1, "handbook", "acme secret launch plan")]).unwrap();
        globex.upsert(&[doc(1, "handbook", "globex holiday calendar")]).unwrap();
        acme.commit(5).unwrap();
        globex.commit(9).unwrap();
        assert!(globex.search("secret launch plan", 10, None).unwrap().is_empty());
        assert!(acme.search("holiday calendar", 10, None).unwrap().is_empty());
        globex.delete_document("handbook").unwrap();
        globex.commit(10).unwrap();
        assert_eq!(keys(&acme.search("launch", 10, Some(&["handbook".to_string()])).unwrap()), [1]);
        assert_eq!((acme.applied_seq(), globex.applied_seq()), (5, 10));
    }

    #[test]
    fn writes_and_searches_from_several_threads() {
        let index = KeywordIndex::in_memory().unwrap();
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let index = &index;
                scope.spawn(move || {
                    for i in 0..25 {
                        let id = format!("doc-{t}");
                        index.upsert(&[doc(t * 100 + i, &id, "shared words here")]).unwrap();
                        index.search("shared", 5, None).unwrap();
                    }
                    index.commit(t).unwrap();
                });
            }
        });
        assert_eq!(index.len(), 100);
    }
}
