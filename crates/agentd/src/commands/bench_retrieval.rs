//! `agentd bench retrieval`: how fast documents go in and how fast hybrid
//! search answers, end to end on this machine, with the configured
//! embedding model.
//!
//! The corpus is real documentation (`bench/corpus-data` fetches it: the
//! Python and PostgreSQL manuals as HTML, the Node.js API reference as
//! Markdown). Two measures, each in a fresh embedded data dir:
//!
//! - Ingestion: some of its folders submitted as uploads, ingested by
//!   in-process workers and indexed; documents/s, chunks/s and where the
//!   time went (parsing and chunking, embedding, store writes, building the
//!   vector and keyword indexes).
//! - Search: the whole corpus cut into small chunks so that one tenant holds
//!   about 100,000 of them, then sentences about the same subjects
//!   (`bench/sentences.txt`) as queries, one client at a time, in every
//!   mode; latency percentiles and, for hybrid, each stage's median.
//!
//! Run it from the checkout in release mode on an otherwise idle machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use agentd_models::Selection;
use agentd_retrieval::{
    ChunkOptions, Knowledge, KnowledgeOptions, SearchMode, SearchRequest, SearchTimings, StageTotals, Upload,
};
use agentd_store::{DatabaseTarget, Store, TenantId};

use crate::commands::ingest::collect_files;
use crate::commands::knowledge::{knowledge_options, load_embedder};
use crate::config::Config;

/// What `agentd bench retrieval` measures.
#[derive(Debug, Clone, clap::Args)]
pub struct RetrievalBench {
    /// The corpus folder; by default `bench/corpus-data` fetches it.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// The corpus folders the ingestion measure takes.
    #[arg(long, value_delimiter = ',', default_value = "nodejs,python")]
    pub ingest: Vec<String>,
    /// Ingestion workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// The chunk size (tokens) of the search measure's tenant: small enough
    /// that the whole corpus makes about 100,000 chunks.
    #[arg(long, default_value_t = 64)]
    pub search_chunk_tokens: usize,
    /// Queries per mode (sentences of `--sentences`, after 20 warm-ups).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Query sentences, one a line.
    #[arg(long, default_value = "bench/sentences.txt")]
    pub sentences: PathBuf,
    /// Where `corpus-data` is.
    #[arg(long, default_value = "bench")]
    pub bench_dir: PathBuf,
    /// Run only the search measure.
    #[arg(long)]
    pub search_only: bool,
}

pub async fn retrieval(config: &Config, args: &RetrievalBench) -> anyhow::Result<()> {
    let corpus = match &args.corpus {
        Some(dir) => dir.clone(),
        None => fetch_corpus(&args.bench_dir)?,
    };
    eprintln!("fetching the embedding model if needed…");
    agentd_models::fetch(&config.models_dir(), &config.models_cache_dir(), &Selection::parse("embedding"))
        .context("cannot fetch the embedding model")?;
    let queries = read_queries(&args.sentences, args.queries + WARM_UP)?;

    if !args.search_only {
        let folders: Vec<PathBuf> = args.ingest.iter().map(|f| corpus.join(f)).collect();
        let options = knowledge_options(config, true);
        let run = ingest(config, &folders, options, args.workers).await?;
        print_ingestion(&run, &args.ingest, args.workers);
    }

    let mut options = knowledge_options(config, true);
    options.ingest.chunk = ChunkOptions { max_tokens: args.search_chunk_tokens, overlap_tokens: 16 };
    let run = ingest(config, &[corpus], options, args.workers).await?;
    eprintln!("{} chunks indexed; searching…", run.chunks);
    let mut rows = Vec::new();
    for mode in SearchMode::ALL {
        rows.push(search(&run.knowledge, run.tenant, mode, &queries).await?);
    }
    print_search(&run, &rows, args.search_chunk_tokens);
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

fn read_queries(path: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if lines.is_empty() {
        bail!("{} holds no sentences", path.display());
    }
    Ok(lines.iter().cycle().take(count).cloned().collect())
}

/// One corpus ingested into a fresh data dir.
struct IngestRun {
    /// Kept alive: the data dir is removed when dropped.
    _dir: tempfile::TempDir,
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
    folders: &[PathBuf],
    mut options: KnowledgeOptions,
    workers: usize,
) -> anyhow::Result<IngestRun> {
    let files = collect_files(folders)?;
    if files.is_empty() {
        bail!("no files under {}", folders.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&DatabaseTarget::Sqlite { path: dir.path().join("agentd.db") }, 8).await?;
    store.migrate().await?;
    let tenant = store.tenants().create("bench").await?.id;
    options.index_dir = Some(dir.path().join("index"));
    options.max_document_bytes = usize::MAX;
    let (embedder, _models) = load_embedder(config).await?;
    let knowledge = Knowledge::open(store.clone(), embedder, options).await?;

    eprintln!("ingesting {} files from {}…", files.len(), folders[0].display());
    let started = Instant::now();
    let mut bytes = 0;
    for batch in files.chunks(32) {
        let mut uploads = Vec::new();
        for file in batch {
            let content = std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
            bytes += content.len();
            uploads.push(Upload {
                title: Some(file.title.clone()),
                file_name: Some(file.path.to_string_lossy().into_owned()),
                content_type: None,
                format: None,
                metadata: serde_json::json!({}),
                bytes: content,
            });
        }
        knowledge.submitter.submit(tenant, uploads).await?;
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
    let mut cursor = None;
    loop {
        let page = store.documents().list(tenant, None, 500, cursor.as_deref()).await?;
        for document in &page.items {
            documents += 1;
            if document.status == agentd_store::DocumentStatus::Failed {
                failed += 1;
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let chunks = store.chunks().count(tenant).await?;
    let stages = knowledge.ingest_stage_totals();
    Ok(IngestRun { _dir: dir, knowledge, tenant, documents, failed, chunks, bytes, ingest, index, stages })
}

fn print_ingestion(run: &IngestRun, folders: &[String], workers: usize) {
    let wall = run.ingest + run.index;
    let seconds = wall.as_secs_f64();
    println!();
    println!(
        "## Ingestion: {} pages ({}), {:.1} MB, {} failed, {workers} workers",
        run.documents,
        folders.join(", "),
        run.bytes as f64 / 1e6,
        run.failed
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| wall time, upload to searchable (s) | {seconds:.1} |");
    println!("| documents/s | {:.2} |", run.documents as f64 / seconds);
    println!("| chunks/s | {:.1} |", run.chunks as f64 / seconds);
    println!("| chunks | {} |", run.chunks);
    // The pipeline's stages run on every worker at once; their shares are
    // of the summed time, the index build (one task) added to it.
    let stages = [
        ("parsing and chunking", run.stages.parse),
        ("embedding", run.stages.embed),
        ("store writes", run.stages.store),
        ("index build (HNSW + BM25)", run.index),
    ];
    let total: f64 = stages.iter().map(|(_, d)| d.as_secs_f64()).sum();
    for (name, time) in stages {
        println!("| {name} (s, share) | {:.1} ({:.0}%) |", time.as_secs_f64(), 100.0 * time.as_secs_f64() / total);
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
        let response = knowledge.searcher.search(tenant, &request).await?;
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 50.0)
}

fn print_search(run: &IngestRun, rows: &[SearchRow], chunk_tokens: usize) {
    println!();
    println!(
        "## Search: {} chunks of up to {chunk_tokens} tokens from {} pages, k = 10, one client",
        run.chunks, run.documents
    );
    println!();
    println!("| mode | p50 (ms) | p90 (ms) | p99 (ms) | mean (ms) | queries/s |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let mut sorted = row.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            row.mode.name(),
            percentile(&sorted, 50.0),
            percentile(&sorted, 90.0),
            percentile(&sorted, 99.0),
            mean,
            1000.0 / mean
        );
    }
    if let Some(hybrid) = rows.iter().find(|r| r.mode == SearchMode::Hybrid) {
        let stage = |f: fn(&SearchTimings) -> f64| median(hybrid.timings.iter().map(f).collect());
        println!();
        println!(
            "Hybrid, median per stage (ms): embed the query {:.2}, vector {:.2}, keyword {:.2}, fusion {:.2}, \
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
    }
}
