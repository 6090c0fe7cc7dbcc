//! The local embedder on ONNX Runtime: all-MiniLM-L6-v2, F32, two to three
//! times faster than candle (`bench/README.md`).
//!
//! The same model and vectors as [`crate::LocalEmbedder`] (a cosine of
//! 0.9999 or more between the two), run by ONNX Runtime's fused CPU kernels. The
//! graph is the one of the int8 ONNX export (`all-minilm-l6-v2-int8`), with
//! the F32 weights of `all-minilm-l6-v2` put in place of its int8 ones when
//! the session is created: [`crate::onnx_weights`] explains why that is
//! strictly better than running the int8 weights. The runtime is a shared library
//! from the PyPI `onnxruntime` wheel that `agentd models fetch` extracts next
//! to the models (the `onnxruntime` entry of `models.toml`); it is loaded
//! once per process, from that path, the first time an embedder is loaded —
//! never from `ORT_DYLIB_PATH` or the system's library path, so the file
//! that runs is the one whose hash was checked.
//!
//! Tokenizing, batching and the inference thread are shared with the candle
//! engine ([`crate::batching`]), and so is the tokenizer (all-minilm-l6-v2's
//! `tokenizer.json`); this module only turns a pass of token ids
//! into vectors: input_ids, attention_mask and token_type_ids as i64,
//! last_hidden_state mean-pooled over the mask, L2-normalised.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorRef, ValueType};

use crate::batching::{BatchOptions, BatchingEmbedder, EmbedderStats, TokenEmbedder};
use crate::embed::{EmbedError, Embedder};
use crate::manifest::{Manifest, Selection};
use crate::sentence_tokenizer::SentenceTokenizer;

/// How the ONNX embedder truncates, batches and uses threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnnxEmbedderOptions {
    /// Tokens read per text, `[CLS]` and `[SEP]` included (the model was
    /// trained with 256; at most 512).
    pub max_tokens: usize,
    /// The most texts in one forward pass, and the queue length at which the
    /// thread stops waiting for more requests.
    pub max_batch: usize,
    /// How long the thread waits for more requests after the first one.
    /// Zero (the default) embeds at once whatever is queued: requests that
    /// arrive during a forward pass still share the next one.
    pub batch_window: Duration,
    /// Threads one forward pass runs on (ONNX Runtime's intra-op threads,
    /// the inference thread included). One per core the embedder may use.
    pub threads: usize,
    /// Whether ONNX Runtime's threads busy-wait for the next piece of work
    /// rather than sleep (ONNX Runtime's own default). Off: between passes
    /// the inference thread tokenizes and pools, and the server has requests
    /// to serve. Measured on two cores (`examples/embed_bench.rs`): on a
    /// busy machine spinning halved the throughput (and so did spinning for
    /// only 50 µs to 1 ms); on an idle one it gained about a fifth at batch 1
    /// and lost at batch 32.
    pub spin_wait: bool,
}

impl Default for OnnxEmbedderOptions {
    fn default() -> Self {
        OnnxEmbedderOptions {
            max_tokens: 256,
            max_batch: 32,
            batch_window: Duration::ZERO,
            threads: 2,
            spin_wait: false,
        }
    }
}

/// all-MiniLM-L6-v2 running on this machine's CPU with ONNX Runtime.
///
/// Dropping the embedder stops its thread once queued requests are done.
pub struct OnnxEmbedder {
    batcher: BatchingEmbedder,
    dimension: usize,
    max_tokens: usize,
}

impl OnnxEmbedder {
    /// The model's name (the one stored next to vectors: they are those of
    /// the F32 model), also the directory of its weights and tokenizer.
    pub const MODEL: &'static str = "all-minilm-l6-v2";
    /// The manifest entry whose `model.onnx` provides the graph.
    pub const GRAPH: &'static str = "all-minilm-l6-v2-int8";
    /// The manifest entry holding the ONNX Runtime library.
    pub const RUNTIME: &'static str = "onnxruntime";
    /// The positions the model has embeddings for.
    const MAX_POSITIONS: usize = 512;

    /// Loads the graph from `models_dir/all-minilm-l6-v2-int8`, the weights
    /// and tokenizer from `models_dir/all-minilm-l6-v2` and the runtime from
    /// `models_dir/onnxruntime`, with the default options. Blocking (it reads
    /// 110 MB and optimises the graph, about a second); from async code call
    /// it through `tokio::task::spawn_blocking`. A missing or damaged file is
    /// an error naming it and `agentd models fetch`.
    pub fn load(models_dir: &Path) -> Result<OnnxEmbedder, EmbedError> {
        OnnxEmbedder::load_with(models_dir, OnnxEmbedderOptions::default())
    }

    /// [`OnnxEmbedder::load`] with explicit options.
    pub fn load_with(models_dir: &Path, options: OnnxEmbedderOptions) -> Result<OnnxEmbedder, EmbedError> {
        // The graph's selection brings the weights and the runtime along (`needs`).
        crate::fetch::verify(models_dir, &Selection::model(Self::GRAPH))?;
        let dir = models_dir.join(Self::MODEL);
        let load_err = |path: &Path, reason: String| EmbedError::Load { path: path.to_owned(), reason };
        if options.max_tokens > Self::MAX_POSITIONS {
            let reason = format!("max_tokens {} must be at most {}", options.max_tokens, Self::MAX_POSITIONS);
            return Err(load_err(&dir, reason));
        }
        let tokenizer = SentenceTokenizer::load(&dir, options.max_tokens)?;

        let graph_path = models_dir.join(Self::GRAPH).join("model.onnx");
        let graph = std::fs::read(&graph_path).map_err(|e| load_err(&graph_path, e.to_string()))?;
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| load_err(&weights_path, e.to_string()))?;
        let model = crate::onnx_weights::f32_model(&graph, &weights).map_err(|reason| load_err(&graph_path, reason))?;
        drop((graph, weights));

        let environment = environment(&runtime_library(models_dir))?;
        let engine = OnnxMiniLm::load(&environment, &graph_path, &model, &options, tokenizer.pad_id())?;
        drop(model);
        let (dimension, max_tokens) = (engine.dimension, tokenizer.max_tokens());
        let batching = BatchOptions { max_batch: options.max_batch, batch_window: options.batch_window };
        let batcher = BatchingEmbedder::spawn("agentd-onnx-embedder", engine, tokenizer, batching)
            .map_err(|e| load_err(&dir, format!("could not start thread: {e}")))?;
        Ok(OnnxEmbedder { batcher, dimension, max_tokens })
    }

    /// What the inference thread has done so far.
    pub fn stats(&self) -> EmbedderStats {
        self.batcher.stats()
    }
}

#[async_trait]
impl Embedder for OnnxEmbedder {
    fn model_name(&self) -> &str {
        Self::MODEL
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.batcher.count_tokens(text)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.batcher.embed(texts).await
    }
}

/// Where `agentd models fetch` puts the ONNX Runtime library.
fn runtime_library(models_dir: &Path) -> PathBuf {
    let manifest = Manifest::builtin();
    let runtime = manifest.model(OnnxEmbedder::RUNTIME).expect("models.toml lists the ONNX Runtime");
    models_dir.join(&runtime.name).join(&runtime.files[0].path)
}

/// The process's ONNX Runtime environment, loading the library from
/// `library` the first time. ONNX Runtime allows one environment per
/// process, and a library once loaded stays: later calls get the same
/// environment whatever path they pass (each embedder still verified its
/// own copy of the file).
fn environment(library: &Path) -> Result<Environment, EmbedError> {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    static LOADING: Mutex<()> = Mutex::new(());
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment.clone());
    }
    let _loading = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment.clone());
    }
    let load_err = |reason: String| EmbedError::Load { path: library.to_owned(), reason };
    let builder = ort::init_from(library).map_err(|e| load_err(format!("could not load ONNX Runtime: {e}")))?;
    let environment = builder
        .with_name("agentd")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_err(format!("could not start ONNX Runtime: {e}")))?;
    tracing::info!(library = %library.display(), "ONNX Runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| environment).clone())
}

/// The int8 MiniLM session and the buffers its inputs are built in.
struct OnnxMiniLm {
    session: Session,
    output: usize,
    dimension: usize,
    pad_id: i64,
    ids: Vec<i64>,
    mask: Vec<i64>,
    types: Vec<i64>,
}

impl OnnxMiniLm {
    const INPUTS: [&'static str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
    const OUTPUT: &'static str = "last_hidden_state";

    /// A session on the model `bytes` (read from `path`, which errors name).
    fn load(
        environment: &Environment,
        path: &Path,
        bytes: &[u8],
        options: &OnnxEmbedderOptions,
        pad_id: u32,
    ) -> Result<OnnxMiniLm, EmbedError> {
        let load_err = |reason: String| EmbedError::Load { path: path.to_owned(), reason };
        let session = Session::builder(environment)
            .map_err(|e| load_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_threads(options.threads.max(1))
            .map_err(|e| load_err(e.to_string()))?
            .with_config_entry("session.intra_op.allow_spinning", if options.spin_wait { "1" } else { "0" })
            .map_err(|e| load_err(e.to_string()))?
            .commit_from_memory(bytes)
            .map_err(|e| load_err(e.to_string()))?;

        let inputs: Vec<&str> = session.inputs().iter().map(|input| input.name()).collect();
        if !Self::INPUTS.iter().all(|name| inputs.contains(name)) {
            return Err(load_err(format!("inputs are {inputs:?}, expected {:?}", Self::INPUTS)));
        }
        let Some(output) = session.outputs().iter().position(|output| output.name() == Self::OUTPUT) else {
            return Err(load_err(format!("the model has no output {:?}", Self::OUTPUT)));
        };
        // [batch, tokens, hidden]: the batch and token dimensions are dynamic (-1).
        let dimension = match session.outputs()[output].dtype() {
            ValueType::Tensor { shape, .. } if shape.len() == 3 && shape[2] > 0 => shape[2] as usize,
            other => return Err(load_err(format!("{} is {other:?}, expected [batch, tokens, hidden]", Self::OUTPUT))),
        };
        Ok(OnnxMiniLm {
            session,
            output,
            dimension,
            pad_id: i64::from(pad_id),
            ids: Vec::new(),
            mask: Vec::new(),
            types: Vec::new(),
        })
    }

    fn run(&mut self, batch: &[&[u32]]) -> ort::Result<Vec<Vec<f32>>> {
        let (rows, cols) = (batch.len(), batch.iter().map(|ids| ids.len()).max().unwrap_or(0).max(1));
        self.ids.clear();
        self.mask.clear();
        for tokens in batch {
            self.ids.extend(tokens.iter().map(|&id| i64::from(id)));
            self.ids.extend(std::iter::repeat_n(self.pad_id, cols - tokens.len()));
            self.mask.extend(std::iter::repeat_n(1, tokens.len()));
            self.mask.extend(std::iter::repeat_n(0, cols - tokens.len()));
        }
        self.types.clear();
        self.types.resize(rows * cols, 0);

        let shape = [rows, cols];
        let outputs = self.session.run(ort::inputs![
            Self::INPUTS[0] => TensorRef::from_array_view((shape, self.ids.as_slice()))?,
            Self::INPUTS[1] => TensorRef::from_array_view((shape, self.mask.as_slice()))?,
            Self::INPUTS[2] => TensorRef::from_array_view((shape, self.types.as_slice()))?,
        ])?;
        let (out_shape, hidden) = outputs[self.output].try_extract_tensor::<f32>()?;
        let dim = self.dimension;
        if out_shape.len() != 3 || hidden.len() != rows * cols * dim {
            return Err(ort::Error::new(format!("{} has shape {out_shape:?}", Self::OUTPUT)));
        }

        // Mean over each text's real tokens (the first ones of its row),
        // then L2 normalisation; normalising the sum gives the same vector.
        Ok(batch
            .iter()
            .enumerate()
            .map(|(row, tokens)| {
                let mut sum = vec![0f32; dim];
                for state in hidden[row * cols * dim..][..tokens.len() * dim].chunks_exact(dim) {
                    sum.iter_mut().zip(state).for_each(|(s, x)| *s += x);
                }
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                sum.iter_mut().for_each(|x| *x /= norm);
                sum
            })
            .collect())
    }
}

impl TokenEmbedder for OnnxMiniLm {
    /// Each run crosses into ONNX Runtime, wakes its thread pool, and runs
    /// smaller matrix products less efficiently. Measured on the benchmark's
    /// sentences at batch 32 (`examples/embed_bench.rs`): 16 to 64 were
    /// within noise of each other and twice as fast as one pass per call;
    /// 0 (a pass per distinct length) and 256 were a quarter slower.
    fn pass_overhead_tokens(&self) -> usize {
        32
    }

    fn embed_tokens(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.run(batch).map_err(|e| EmbedError::Inference(e.to_string()))
    }
}
