//! `agentd-bench retrieval`: how fast documents go in and how fast hybrid
//! search answers, end to end on this machine, with the configured
//! embedding model, next to the Python stack doing the same work in the
//! same run (LangChain with FAISS and BM25,
//! `bench/reference/retrieval_langchain.py`).
//!
//! The corpus is real documentation (`bench/corpus-data` fetches it: the
//! Python and PostgreSQL manuals as HTML, the Node.js API reference as
//! Markdown). Two measures, agentd's each in a fresh embedded data dir:
//!
//! - Ingestion: a few hundred pages spread evenly over the corpus, ingested
//!   by in-process workers and indexed; documents/s, chunks/s and where the
//!   time went (parsing and chunking, embedding, store writes, building the
//!   vector and keyword indexes). The peer gets the same list of files and
//!   loads, splits, embeds and indexes them its own way.
//! - Search: the whole corpus cut into small chunks so that one tenant holds
//!   more than 100,000 of them (about 170,000 at 64 tokens: the chunker
//!   also cuts at headings and code blocks), then sentences about the same
//!   subjects (`bench/sentences.txt`) as queries, one client at a time, in
//!   every mode; latency percentiles and, for hybrid, each stage's median.
//!   The peer indexes agentd's chunks and vectors (written out for it), so
//!   both search the same passages; embedding them again in Python would
//!   take most of an hour on two cores and measure nothing new.
//!
//! Run it from the checkout in release mode on an otherwise idle machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use agentd_models::Selection;
use agentd_retrieval::{
    ChunkOptions, Knowledge, KnowledgeOptions, SearchMode, SearchRequest, SearchTimings, StageTotals, Upload,
};
use agentd_store::{ChunkId, DatabaseTarget, Store, TenantId};

use agentd::commands::ingest::{FileToIngest, collect_files};
use agentd::commands::knowledge::{knowledge_options, load_embedder};
use agentd::config::Config;
use agentd::wiring::for_each_item;

use crate::models::{median, read_sentences, reference_python, run_reference};

/// What `agentd-bench retrieval` measures.
#[derive(Debug, Clone, clap::Args)]
pub struct RetrievalBench {
    /// The corpus folder; by default `bench/corpus-data` fetches it.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// The corpus folders the ingestion measure takes its pages from.
    #[arg(long, value_delimiter = ',', default_value = "nodejs,python,postgresql")]
    pub ingest: Vec<String>,
    /// Pages the ingestion measure takes, spread evenly over those folders
    /// (0: all of them).
    #[arg(long, default_value_t = 400)]
    pub pages: usize,
    /// Ingestion workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// The chunk size (tokens) of the search measure's tenant: small enough
    /// that the whole corpus makes more than 100,000 chunks.
    #[arg(long, default_value_t = 64)]
    pub search_chunk_tokens: usize,
    /// Queries per mode (sentences of `--sentences`, after 20 warm-ups).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Queries per mode for the peer, whose BM25 scans every chunk in
    /// Python for each query word.
    #[arg(long, default_value_t = 200)]
    pub peer_queries: usize,
    /// Query sentences, one a line.
    #[arg(long, default_value = "bench/sentences.txt")]
    pub sentences: PathBuf,
    /// Where `corpus-data`, `setup-venv` and the reference scripts are.
    #[arg(long, default_value = "bench")]
    pub bench_dir: PathBuf,
    /// Run only the search measure.
    #[arg(long)]
    pub search_only: bool,
    /// Measure agentd only.
    #[arg(long)]
    pub no_reference: bool,
}

/// The packages of `bench/setup-venv` the peer imports.
const PEER_PACKAGES: [&str; 11] = [
    "onnxruntime",
    "tokenizers",
    "numpy",
    "faiss-cpu",
    "langchain-core",
    "langchain-community",
    "langchain-classic",
    "langchain-text-splitters",
    "beautifulsoup4",
    "lxml",
    "rank-bm25",
];

/// The default chunking, which the ingestion measure uses on both sides.
const CHUNK: ChunkOptions = ChunkOptions::DEFAULT;
const SEARCH_OVERLAP_TOKENS: usize = 16;

pub async fn retrieval(config: &Config, args: &RetrievalBench) -> anyhow::Result<()> {
    let corpus = match &args.corpus {
        Some(dir) => dir.clone(),
        None => fetch_corpus(&args.bench_dir)?,
    };
    eprintln!("fetching the embedding model if needed…");
    agentd_models::fetch(&config.models_dir(), &config.models_cache_dir(), &Selection::parse("embedding"))
        .context("cannot fetch the embedding model")?;
    let queries = read_queries(&args.sentences, args.queries + WARM_UP)?;
    let python = if args.no_reference { None } else { Some(reference_python(&args.bench_dir, &PEER_PACKAGES)?) };
    let handoff = tempfile::tempdir()?;

    let mut ingestion = None;
    if !args.search_only {
        let folders: Vec<PathBuf> = args.ingest.iter().map(|f| corpus.join(f)).collect();
        let files = spread(collect_files(&folders)?, args.pages);
        write_file_list(&handoff.path().join("files.txt"), &corpus, &files)?;
        let mut options = knowledge_options(config, true);
        options.ingest.chunk = CHUNK;
        let run = ingest(config, files, options, args.workers).await?;
        ingestion = Some(IngestFigures::of(&run));
    }

    let mut options = knowledge_options(config, true);
    options.ingest.chunk = ChunkOptions {
        max_tokens: args.search_chunk_tokens,
        overlap_tokens: SEARCH_OVERLAP_TOKENS,
        ..ChunkOptions::DEFAULT
    };
    let run = ingest(config, collect_files(std::slice::from_ref(&corpus))?, options, args.workers).await?;
    eprintln!("{} chunks indexed; searching…", run.chunks);
    let mut rows = Vec::new();
    for mode in SearchMode::ALL {
        rows.push(search(&run.knowledge, run.tenant, mode, &queries).await?);
    }
    if python.is_some() {
        export_chunks(&run.store, run.tenant, handoff.path()).await?;
    }
    let search_shape = (run.chunks, run.documents);
    drop(run);

    let peer = match &python {
        Some(python) => Some(run_peer(python, config, args, &corpus, handoff.path())?),
        None => None,
    };
    if let Some(ours) = &ingestion {
        print_ingestion(ours, peer.as_ref().and_then(|p| p.ingestion.as_ref()), args.workers);
    }
    print_search(&rows, peer.as_ref(), search_shape, args.search_chunk_tokens);
    Ok(())
}

fn fetch_corpus(bench_dir: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("fetching the corpus if needed (bench/corpus-data)…");
    let output = Command::new("bash")
        .arg(bench_dir.join("corpus-data"))
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run bench/corpus-data (run from the checkout, or pass --bench-dir or --corpus)")?;
    if !output.status.success() {
        bail!("bench/corpus-data failed");
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

const WARM_UP: usize = 20;

/// `count` queries: the sentences of `path` in order, cycled if fewer.
fn read_queries(path: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    Ok(read_sentences(path)?.iter().cycle().take(count).cloned().collect())
}

/// `count` of the items, evenly spaced (all of them if `count` is 0 or at
/// least their number), so a sample of a sorted corpus covers all of it.
fn spread<T>(items: Vec<T>, count: usize) -> Vec<T> {
    let total = items.len();
    if count == 0 || count >= total {
        return items;
    }
    items.into_iter().enumerate().filter(|(i, _)| (i * count) % total < count).map(|(_, item)| item).collect()
}

/// The ingestion measure's files, relative to the corpus, for the peer.
fn write_file_list(path: &Path, corpus: &Path, files: &[FileToIngest]) -> anyhow::Result<()> {
    let mut list = String::new();
    for file in files {
        let relative = file.path.strip_prefix(corpus).unwrap_or(&file.path);
        list.push_str(&relative.to_string_lossy());
        list.push('\n');
    }
    std::fs::write(path, list).with_context(|| format!("cannot write {}", path.display()))
}

/// One corpus ingested into a fresh data dir.
struct IngestRun {
    /// Kept alive: the data dir is removed when dropped.
    _dir: tempfile::TempDir,
    store: Store,
    knowledge: Arc<Knowledge>,
    tenant: TenantId,
    documents: usize,
    failed: usize,
    chunks: i64,
    bytes: usize,
    /// From the first upload to the last document ready.
    ingest: Duration,
    /// Building the tenant's vector and keyword indexes from the store.
    index: Duration,
    stages: StageTotals,
}

async fn ingest(
    config: &Config,
    files: Vec<FileToIngest>,
    mut options: KnowledgeOptions,
    workers: usize,
) -> anyhow::Result<IngestRun> {
    if files.is_empty() {
        bail!("no files to ingest");
    }
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&DatabaseTarget::Sqlite { path: dir.path().join("agentd.db") }, 8).await?;
    store.migrate().await?;
    let tenant = store.tenants().create("bench").await?.id;
    options.index_dir = Some(dir.path().join("index"));
    options.max_document_bytes = usize::MAX;
    let (embedder, _models) = load_embedder(config).await?;
    let knowledge = Knowledge::open(store.clone(), embedder, options).await?;

    eprintln!("agentd: ingesting {} files…", files.len());
    let started = Instant::now();
    let mut bytes = 0;
    for batch in files.chunks(32) {
        let mut uploads = Vec::new();
        for file in batch {
            let content = std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
            bytes += content.len();
            uploads.push(Upload::file(file.title.clone(), file.path.to_string_lossy(), content));
        }
        knowledge.submit(tenant, uploads).await?;
    }
    let drains: Vec<_> = (0..workers.max(1))
        .map(|n| {
            let worker = knowledge.worker(n);
            tokio::spawn(async move { worker.drain().await })
        })
        .collect();
    for drain in drains {
        drain.await??;
    }
    let ingest = started.elapsed();
    let indexing = Instant::now();
    knowledge.indexes().tenant(tenant).await?;
    let index = indexing.elapsed();

    let (mut documents, mut failed) = (0, 0);
    for_each_item(
        |cursor| {
            let store = &store;
            async move { store.documents().list(tenant, None, 500, cursor.as_deref()).await }
        },
        |document: &agentd_store::Document| {
            documents += 1;
            failed += usize::from(document.status == agentd_store::DocumentStatus::Failed);
        },
    )
    .await?;
    let chunks = store.chunks().count(tenant).await?;
    let stages = knowledge.ingest_stage_totals();
    Ok(IngestRun { _dir: dir, store, knowledge, tenant, documents, failed, chunks, bytes, ingest, index, stages })
}

/// Writes the tenant's chunks (`chunks.jsonl`: title and text a line) and
/// their vectors (`vectors.f32`: little-endian rows, in the same order)
/// for the peer to index.
async fn export_chunks(store: &Store, tenant: TenantId, dir: &Path) -> anyhow::Result<()> {
    let mut texts = std::io::BufWriter::new(std::fs::File::create(dir.join("chunks.jsonl"))?);
    let mut vectors = std::io::BufWriter::new(std::fs::File::create(dir.join("vectors.f32"))?);
    let mut after = ChunkId(0);
    loop {
        let page = store.chunks().indexable_page(tenant, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for chunk in &page {
            serde_json::to_writer(&mut texts, &serde_json::json!({"title": chunk.title, "text": chunk.text}))?;
            texts.write_all(b"\n")?;
            for value in &chunk.embedding {
                vectors.write_all(&value.to_le_bytes())?;
            }
        }
    }
    texts.flush()?;
    vectors.flush()?;
    Ok(())
}

/// What the peer printed (`retrieval_langchain.py`'s JSON).
#[derive(Debug, Deserialize)]
struct PeerRun {
    engine: String,
    ingestion: Option<PeerIngestion>,
    search: Option<PeerSearch>,
}

#[derive(Debug, Deserialize)]
struct PeerIngestion {
    documents: usize,
    failed: usize,
    chunks: usize,
    wall_s: f64,
    parse_s: f64,
    split_s: f64,
    embed_s: f64,
    index_s: f64,
}

#[derive(Debug, Deserialize)]
struct PeerSearch {
    chunks: usize,
    modes: std::collections::HashMap<String, Vec<f64>>,
}

fn run_peer(
    python: &str,
    config: &Config,
    args: &RetrievalBench,
    corpus: &Path,
    handoff: &Path,
) -> anyhow::Result<PeerRun> {
    eprintln!("the peer: LangChain + FAISS + BM25 (bench/reference/retrieval_langchain.py)…");
    let models = config.models_dir();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut argv = vec![
        "--corpus".to_owned(),
        path(corpus),
        "--model".to_owned(),
        path(&models.join("all-minilm-l6-v2-int8/model.onnx")),
        "--tokenizer".to_owned(),
        path(&models.join("all-minilm-l6-v2/tokenizer.json")),
        "--files".to_owned(),
        path(&handoff.join("files.txt")),
        "--chunk-tokens".to_owned(),
        CHUNK.max_tokens.to_string(),
        "--overlap-tokens".to_owned(),
        CHUNK.overlap_tokens.to_string(),
        "--search-from".to_owned(),
        path(handoff),
        "--queries".to_owned(),
        args.peer_queries.to_string(),
        "--warm-up".to_owned(),
        WARM_UP.to_string(),
        "--sentences".to_owned(),
        path(&args.sentences),
        "--threads".to_owned(),
        "2".to_owned(),
    ];
    if args.search_only {
        argv.push("--search-only".to_owned());
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let json = run_reference(python, &args.bench_dir.join("reference/retrieval_langchain.py"), &argv, "")?;
    serde_json::from_value(json).context("the peer's JSON has an unexpected shape")
}

/// agentd's ingestion figures.
struct IngestFigures {
    documents: usize,
    failed: usize,
    chunks: i64,
    bytes: usize,
    wall: f64,
    parse: f64,
    embed: f64,
    store: f64,
    index: f64,
}

impl IngestFigures {
    fn of(run: &IngestRun) -> Self {
        IngestFigures {
            documents: run.documents,
            failed: run.failed,
            chunks: run.chunks,
            bytes: run.bytes,
            wall: (run.ingest + run.index).as_secs_f64(),
            parse: run.stages.parse.as_secs_f64(),
            embed: run.stages.embed.as_secs_f64(),
            store: run.stages.store.as_secs_f64(),
            index: run.index.as_secs_f64(),
        }
    }
}

fn print_ingestion(ours: &IngestFigures, peer: Option<&PeerIngestion>, workers: usize) {
    println!();
    println!(
        "## Ingestion: {} pages, {:.1} MB, upload to searchable; agentd with {workers} workers",
        ours.documents,
        ours.bytes as f64 / 1e6,
    );
    println!();
    println!("| measure | agentd | LangChain | agentd's advantage |");
    println!("|---|---|---|---|");
    let row = |name: &str, ours: f64, theirs: Option<f64>, higher_is_better: bool, digits: usize| {
        let ratio =
            theirs.filter(|t| *t > 0.0 && ours > 0.0).map(|t| if higher_is_better { ours / t } else { t / ours });
        println!(
            "| {name} | {ours:.digits$} | {} | {} |",
            theirs.map_or_else(|| "–".to_owned(), |t| format!("{t:.digits$}")),
            ratio.map_or_else(String::new, |r| format!("{r:.2}×"))
        );
    };
    let peer_wall = peer.map(|p| p.wall_s);
    row("wall time (s)", ours.wall, peer_wall, false, 1);
    row("documents/s", ours.documents as f64 / ours.wall, peer.map(|p| p.documents as f64 / p.wall_s), true, 2);
    row("chunks/s", ours.chunks as f64 / ours.wall, peer.map(|p| p.chunks as f64 / p.wall_s), true, 1);
    row("chunks", ours.chunks as f64, peer.map(|p| p.chunks as f64), true, 0);
    row("failed pages", ours.failed as f64, peer.map(|p| p.failed as f64), false, 0);
    // agentd's stages run on every worker at once: their shares are of the
    // summed time, the index build (one task) added to it. The peer runs
    // its stages one after the other.
    let ours_total = ours.parse + ours.embed + ours.store + ours.index;
    let share = |t: f64, total: f64| format!("{t:.1} s ({:.0}%)", 100.0 * t / total);
    let theirs = |f: fn(&PeerIngestion) -> f64| {
        peer.map_or_else(|| "–".to_owned(), |p| share(f(p), p.parse_s + p.split_s + p.embed_s + p.index_s))
    };
    println!("| parsing and chunking | {} | {} | |", share(ours.parse, ours_total), theirs(|p| p.parse_s + p.split_s));
    println!("| embedding | {} | {} | |", share(ours.embed, ours_total), theirs(|p| p.embed_s));
    println!("| store writes | {} | – | |", share(ours.store, ours_total));
    println!("| index build | {} | {} | |", share(ours.index, ours_total), theirs(|p| p.index_s));
    if let Some(peer) = peer {
        println!();
        println!("Peer: {} pages tried.", peer.documents);
    }
}

/// One mode's latencies.
struct SearchRow {
    mode: SearchMode,
    latencies_ms: Vec<f64>,
    timings: Vec<SearchTimings>,
}

async fn search(
    knowledge: &Knowledge,
    tenant: TenantId,
    mode: SearchMode,
    queries: &[String],
) -> anyhow::Result<SearchRow> {
    let mut latencies_ms = Vec::new();
    let mut timings = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let mut request = SearchRequest::new(query.clone(), 10, mode);
        request.debug = true;
        let started = Instant::now();
        let response = knowledge.search(tenant, &request).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if i >= WARM_UP {
            latencies_ms.push(elapsed);
            timings.extend(response.timings);
        }
    }
    Ok(SearchRow { mode, latencies_ms, timings })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p90, p99 and mean of some latencies.
fn summary(latencies: &[f64]) -> [f64; 4] {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    [percentile(&sorted, 50.0), percentile(&sorted, 90.0), percentile(&sorted, 99.0), mean]
}

fn print_search(rows: &[SearchRow], peer: Option<&PeerRun>, (chunks, documents): (i64, usize), chunk_tokens: usize) {
    println!();
    println!(
        "## Search: {chunks} chunks of up to {chunk_tokens} tokens from {documents} pages, k = 10, one client; \
         latency in ms"
    );
    let peer_search = peer.and_then(|p| p.search.as_ref());
    if let (Some(peer), Some(search)) = (peer, peer_search) {
        println!();
        println!("Peer: {} on the same {} chunks and vectors.", peer.engine, search.chunks);
    }
    println!();
    println!("| mode | engine | queries | p50 | p90 | p99 | mean |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let mut lines = vec![("agentd", row.latencies_ms.clone())];
        if let Some(theirs) = peer_search.and_then(|s| s.modes.get(row.mode.name())) {
            lines.push(("LangChain", theirs.clone()));
        }
        for (engine, latencies) in lines {
            let [p50, p90, p99, mean] = summary(&latencies);
            println!(
                "| {} | {engine} | {} | {p50:.2} | {p90:.2} | {p99:.2} | {mean:.2} |",
                row.mode.name(),
                latencies.len()
            );
        }
    }
    if let Some(hybrid) = rows.iter().find(|r| r.mode == SearchMode::Hybrid) {
        let stage = |f: fn(&SearchTimings) -> f64| median(hybrid.timings.iter().map(f).collect());
        println!();
        println!(
            "agentd hybrid, median per stage (ms): embed the query {:.2}, vector {:.2}, keyword {:.2}, fusion {:.2}, \
             fetch {:.2}",
            stage(|t| t.embed_ms),
            stage(|t| t.vector_ms),
            stage(|t| t.keyword_ms),
            stage(|t| t.fusion_ms),
            stage(|t| t.fetch_ms)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(summary(&[4.0, 1.0, 3.0, 2.0]), [2.0, 4.0, 4.0, 2.5]);
    }

    #[test]
    fn a_spread_sample_covers_the_whole_list() {
        let sample = spread((0..10).collect(), 3);
        assert_eq!(sample, vec![0, 4, 7]);
        assert_eq!(spread((0..1730).collect::<Vec<_>>(), 400).len(), 400);
        assert_eq!(spread(vec![1, 2], 5), vec![1, 2]);
        assert_eq!(spread(vec![1, 2], 0), vec![1, 2]);
    }
}
