//! The local embedder: all-MiniLM-L6-v2 on a dedicated inference thread.
//!
//! A forward pass is CPU-bound for milliseconds, so it must not run on the
//! async runtime's threads. One thread owns the model and takes requests
//! from a channel. Requests are batched dynamically: after the first one
//! arrives the thread waits a short window (2 ms by default) for more, or
//! until `max_batch` texts are queued, then embeds them all at once, sorted
//! by length so each forward pass pads little. Candle spreads the matrix
//! products of a pass over every core, so one thread keeps both cores busy,
//! and concurrent callers share passes instead of queueing for one each.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::embed::{EmbedError, Embedder};
use crate::manifest::Selection;
use crate::minilm::MiniLm;

/// How the local embedder truncates and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEmbedderOptions {
    /// Tokens read per text, `[CLS]` and `[SEP]` included (the model was
    /// trained with 256; at most 512).
    pub max_tokens: usize,
    /// The most texts in one forward pass, and the queue length at which the
    /// thread stops waiting for more requests.
    pub max_batch: usize,
    /// How long the thread waits for more requests after the first one.
    pub batch_window: Duration,
}

impl Default for LocalEmbedderOptions {
    fn default() -> Self {
        LocalEmbedderOptions { max_tokens: 256, max_batch: 32, batch_window: Duration::from_millis(2) }
    }
}

/// Counters of the inference thread's work, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedderStats {
    /// `embed` calls served.
    pub requests: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Forward passes run.
    pub forward_passes: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    texts: AtomicU64,
    forward_passes: AtomicU64,
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// all-MiniLM-L6-v2 running on this machine's CPU.
///
/// Dropping the embedder stops its thread once queued requests are done.
pub struct LocalEmbedder {
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    dimension: usize,
    max_tokens: usize,
}

impl LocalEmbedder {
    /// The model's name, also its directory under the models directory.
    pub const MODEL: &'static str = "all-minilm-l6-v2";

    /// Loads the model from `models_dir/all-minilm-l6-v2` with the default
    /// options. Blocking (it reads 90 MB); from async code call it through
    /// `tokio::task::spawn_blocking`. A missing or damaged model is an error
    /// naming the file and `agentd models fetch`.
    pub fn load(models_dir: &Path) -> Result<LocalEmbedder, EmbedError> {
        LocalEmbedder::load_with(models_dir, LocalEmbedderOptions::default())
    }

    /// [`LocalEmbedder::load`] with explicit options.
    pub fn load_with(models_dir: &Path, options: LocalEmbedderOptions) -> Result<LocalEmbedder, EmbedError> {
        crate::fetch::verify(models_dir, &Selection::model(Self::MODEL))?;
        let model = MiniLm::load(&models_dir.join(Self::MODEL), options.max_tokens)?;
        let (dimension, max_tokens) = (model.dimension(), model.max_tokens());
        let (jobs, queue) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let worker = Worker { model, queue, options, counters: counters.clone() };
        std::thread::Builder::new().name("agentd-embedder".into()).spawn(move || worker.run()).map_err(|e| {
            EmbedError::Load { path: models_dir.to_owned(), reason: format!("could not start thread: {e}") }
        })?;
        Ok(LocalEmbedder { jobs, counters, dimension, max_tokens })
    }

    /// What the inference thread has done so far.
    pub fn stats(&self) -> EmbedderStats {
        EmbedderStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            texts: self.counters.texts.load(Ordering::Relaxed),
            forward_passes: self.counters.forward_passes.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_name(&self) -> &str {
        Self::MODEL
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { texts: texts.to_vec(), reply }).map_err(|_| EmbedError::WorkerGone)?;
        answer.await.map_err(|_| EmbedError::WorkerGone)?
    }
}

/// The inference thread's state.
struct Worker {
    model: MiniLm,
    queue: mpsc::Receiver<Job>,
    options: LocalEmbedderOptions,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(self) {
        while let Ok(first) = self.queue.recv() {
            let jobs = self.gather(first);
            // A panic inside candle or the tokenizer fails this batch only;
            // the thread lives on for the next requests.
            let outcome = catch_unwind(AssertUnwindSafe(|| self.embed_jobs(&jobs)));
            let results = match outcome {
                Ok(Ok(vectors)) => vectors.into_iter().map(Ok).collect(),
                Ok(Err(err)) => jobs.iter().map(|_| Err(err.to_string())).collect(),
                Err(_) => jobs.iter().map(|_| Err("the inference thread panicked".to_owned())).collect::<Vec<_>>(),
            };
            self.counters.requests.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            for (job, result) in jobs.into_iter().zip(results) {
                // A caller that gave up (dropped its future) no longer listens.
                let _ = job.reply.send(result.map_err(EmbedError::Inference));
            }
        }
    }

    /// The first job plus whatever arrives within the batching window, up
    /// to `max_batch` texts.
    fn gather(&self, first: Job) -> Vec<Job> {
        let mut queued = first.texts.len();
        let mut jobs = vec![first];
        let deadline = Instant::now() + self.options.batch_window;
        while queued < self.options.max_batch {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            match self.queue.recv_timeout(left) {
                Ok(job) => {
                    queued += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        jobs
    }

    /// Vectors for every job, in job order: all texts tokenized, sorted by
    /// length, embedded `max_batch` at a time, and put back in place.
    fn embed_jobs(&self, jobs: &[Job]) -> Result<Vec<Vec<Vec<f32>>>, EmbedError> {
        let texts: Vec<&str> = jobs.iter().flat_map(|job| job.texts.iter().map(String::as_str)).collect();
        let tokens = self.model.tokenize(&texts)?;
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());

        let mut vectors = vec![Vec::new(); tokens.len()];
        for pass in order.chunks(self.options.max_batch.max(1)) {
            let batch: Vec<&[u32]> = pass.iter().map(|&i| tokens[i].as_slice()).collect();
            let embedded = self.model.embed_tokens(&batch)?;
            self.counters.forward_passes.fetch_add(1, Ordering::Relaxed);
            for (&i, vector) in pass.iter().zip(embedded) {
                vectors[i] = vector;
            }
        }
        self.counters.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);

        let mut vectors = vectors.into_iter();
        Ok(jobs.iter().map(|job| vectors.by_ref().take(job.texts.len()).collect()).collect())
    }
}
