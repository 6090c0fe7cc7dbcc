//! The inference thread and dynamic batching every local embedder shares.
//!
//! A forward pass is CPU-bound for milliseconds, so it must not run on the
//! async runtime's threads. One thread owns the engine (candle's BERT, or an
//! ONNX Runtime session) and takes requests from a channel. Whatever has
//! queued up by the time the thread is free is embedded together, up to
//! `max_batch` texts: under load, requests pile up while a pass runs and
//! share the next one, with no timer to wait on; an optional window makes
//! the thread wait a little longer for more after the first request.
//!
//! The texts of a round are tokenized together, sorted by length, and cut
//! into forward passes of similar lengths ([`plan_passes`]), since a pass
//! costs as much as if every text were as long as its longest. Engines only
//! see token ids: [`TokenEmbedder`] is all an engine has to implement.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::embed::EmbedError;
use crate::sentence_tokenizer::SentenceTokenizer;

/// An engine that embeds one forward pass of tokenized texts.
pub(crate) trait TokenEmbedder: Send + 'static {
    /// What a forward pass costs beyond its tokens, counted in tokens (one
    /// token of one text is 1): the weight [`plan_passes`] gives to running
    /// one more, smaller pass instead of padding.
    fn pass_overhead_tokens(&self) -> usize;

    /// Unit vectors of the texts, in order. Each text is `[CLS]`, its word
    /// pieces, `[SEP]`; the engine pads them to the longest of the batch and
    /// keeps the padding out of the result. `batch` is never empty.
    fn embed_tokens(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// How the inference thread batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOptions {
    /// The most texts in one forward pass, and in one round of requests.
    pub max_batch: usize,
    /// How long the thread waits for more requests after the first one.
    pub batch_window: Duration,
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

/// The handle callers hold: a queue to the inference thread.
///
/// Dropping it stops the thread once queued requests are done.
pub(crate) struct BatchingEmbedder {
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    /// The thread's tokenizer, copied, for counting tokens on the caller's side.
    counter: SentenceTokenizer,
}

impl BatchingEmbedder {
    /// Starts the inference thread, named `name`, owning `engine`.
    pub fn spawn<E: TokenEmbedder>(
        name: &str,
        engine: E,
        tokenizer: SentenceTokenizer,
        options: BatchOptions,
    ) -> std::io::Result<BatchingEmbedder> {
        let (jobs, queue) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let counter = tokenizer.clone();
        let worker = Worker { engine, tokenizer, queue, options, counters: counters.clone() };
        std::thread::Builder::new().name(name.into()).spawn(move || worker.run())?;
        Ok(BatchingEmbedder { jobs, counters, counter })
    }

    /// Tokens the model reads of `text`, markers and truncation included.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.counter.tokenize(&[text]).map_or(0, |ids| ids.first().map_or(0, Vec::len))
    }

    /// One unit vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { texts: texts.to_vec(), reply }).map_err(|_| EmbedError::WorkerGone)?;
        answer.await.map_err(|_| EmbedError::WorkerGone)?
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

/// The inference thread's state.
struct Worker<E> {
    engine: E,
    tokenizer: SentenceTokenizer,
    queue: mpsc::Receiver<Job>,
    options: BatchOptions,
    counters: Arc<Counters>,
}

impl<E: TokenEmbedder> Worker<E> {
    fn run(mut self) {
        while let Ok(first) = self.queue.recv() {
            let jobs = self.gather(first);
            // A panic inside the engine or the tokenizer fails this round
            // only; the thread lives on for the next requests.
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

    /// The first job plus whatever is already queued or arrives within the
    /// batching window, up to `max_batch` texts.
    fn gather(&self, first: Job) -> Vec<Job> {
        let mut queued = first.texts.len();
        let mut jobs = vec![first];
        let deadline = Instant::now() + self.options.batch_window;
        while queued < self.options.max_batch {
            let next = match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => self.queue.recv_timeout(left).ok(),
                _ => self.queue.try_recv().ok(),
            };
            let Some(job) = next else { break };
            queued += job.texts.len();
            jobs.push(job);
        }
        jobs
    }

    /// Vectors for every job, in job order: all texts tokenized, sorted by
    /// length, embedded in the passes [`plan_passes`] picks, and put back
    /// in place.
    fn embed_jobs(&mut self, jobs: &[Job]) -> Result<Vec<Vec<Vec<f32>>>, EmbedError> {
        let texts: Vec<&str> = jobs.iter().flat_map(|job| job.texts.iter().map(String::as_str)).collect();
        let tokens = self.tokenizer.tokenize(&texts)?;
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let lengths: Vec<usize> = order.iter().map(|&i| tokens[i].len()).collect();

        let mut vectors = vec![Vec::new(); tokens.len()];
        let mut start = 0;
        for size in plan_passes(&lengths, self.options.max_batch, self.engine.pass_overhead_tokens()) {
            let pass = &order[start..start + size];
            start += size;
            let batch: Vec<&[u32]> = pass.iter().map(|&i| tokens[i].as_slice()).collect();
            let embedded = self.engine.embed_tokens(&batch)?;
            if embedded.len() != batch.len() {
                return Err(EmbedError::Inference(format!(
                    "the engine returned {} vectors for {} texts",
                    embedded.len(),
                    batch.len()
                )));
            }
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

/// Cuts texts sorted by length (ascending) into consecutive forward passes
/// of at most `max_batch` texts, returning the size of each pass.
///
/// A pass over `n` texts padded to length `l` costs about
/// `overhead + n * (l + l² / 2304)`: the dense layers grow with the tokens,
/// attention with their square (its share, `l / 6h` with hidden size
/// `h = 384`, is about a tenth at 256 tokens). The cut minimising the total
/// is found exactly by dynamic programming over the sorted lengths, so a
/// batch of similar texts stays one pass and a batch of a few long and many
/// short texts is split where the padding saved outweighs the overhead.
pub(crate) fn plan_passes(sorted_lengths: &[usize], max_batch: usize, overhead_tokens: usize) -> Vec<usize> {
    let max_batch = max_batch.max(1);
    let n = sorted_lengths.len();
    // In units of 1/2304 token, so that costs are exact integers and equal
    // plans tie exactly (the first found, with the fewest passes, wins).
    let cost_of = |texts: usize, longest: usize| {
        let l = longest as u64;
        overhead_tokens as u64 * 2304 + texts as u64 * (l * 2304 + l * l)
    };
    // best[i]: the least cost of the first i texts; cut[i]: where its last pass starts.
    let mut best = vec![0u64; n + 1];
    let mut cut = vec![0usize; n + 1];
    for i in 1..=n {
        best[i] = u64::MAX;
        // The last pass holds texts j..i; sorted, so its longest is text i-1.
        for j in i.saturating_sub(max_batch)..i {
            let cost = best[j] + cost_of(i - j, sorted_lengths[i - 1]);
            if cost < best[i] {
                best[i] = cost;
                cut[i] = j;
            }
        }
    }
    let mut sizes = Vec::new();
    let mut i = n;
    while i > 0 {
        sizes.push(i - cut[i]);
        i = cut[i];
    }
    sizes.reverse();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_texts_no_passes() {
        assert!(plan_passes(&[], 32, 64).is_empty());
    }

    #[test]
    fn similar_lengths_stay_one_pass() {
        let lengths: Vec<usize> = (0..32).map(|i| 20 + i / 8).collect();
        assert_eq!(plan_passes(&lengths, 32, 64), [32]);
    }

    #[test]
    fn passes_never_exceed_max_batch_and_cover_every_text() {
        let lengths: Vec<usize> = (0..100).map(|i| 10 + i % 7).collect::<Vec<_>>();
        let mut sorted = lengths.clone();
        sorted.sort();
        let sizes = plan_passes(&sorted, 32, 64);
        assert!(sizes.iter().all(|&s| (1..=32).contains(&s)), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert_eq!(plan_passes(&sorted, 0, 64).iter().sum::<usize>(), 100, "max_batch 0 is read as 1");
    }

    #[test]
    fn a_few_long_texts_get_their_own_pass() {
        // 28 short texts and 4 at the limit: padding the short ones to 256
        // would cost far more than a second pass.
        let mut lengths = vec![12; 28];
        lengths.extend([256; 4]);
        assert_eq!(plan_passes(&lengths, 32, 64), [28, 4]);
    }

    #[test]
    fn a_large_overhead_keeps_one_pass() {
        let mut lengths = vec![19; 28];
        lengths.extend([20; 4]);
        assert_eq!(plan_passes(&lengths, 32, 64), [32], "saving 28 x 1 tokens does not pay for a pass");
        assert_eq!(plan_passes(&lengths, 32, 0), [28, 4], "with no overhead any saving pays");
    }
}
