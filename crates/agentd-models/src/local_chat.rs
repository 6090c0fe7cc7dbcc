//! The local chat engine: GGUF models on the CPU through llama.cpp.
//!
//! llama.cpp was picked over candle's quantized models by measurement: on
//! the same GGUF files, prompt and two threads, candle generated at 0.21 to
//! 0.23 times llama.cpp's speed and evaluated prompts ten times slower
//! (`examples/chat_engines.rs`). Each model gets one inference thread that
//! owns the
//! llama.cpp context; requests queue for it and are answered one at a time,
//! each one streaming its tokens back through a channel as they are sampled.
//!
//! The thread keeps the tokens whose keys and values are still in the
//! context's cache, and a new prompt only evaluates what differs from them.
//! An agent's turns re-send the whole conversation each time, so most of a
//! prompt is usually already there and the first token comes quickly.
//!
//! When the consumer drops the stream the channel closes, and the thread
//! stops within one token.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use tokio::sync::mpsc as async_mpsc;

use crate::chat::{
    ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, FinishReason, Sampling, Usage,
};
use crate::stop::StopScanner;
use crate::template::{ChatTemplate, role_name};
use crate::tool_calls::{Parsed, ToolCallParser};
use crate::utf8::Utf8Pieces;

/// Events buffered between the inference thread and a slow consumer.
const EVENT_BUFFER: usize = 256;

/// How a local chat model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalChatOptions {
    /// CPU threads for prompt evaluation and generation.
    pub threads: usize,
    /// The context window in tokens: prompt and answer together.
    pub context_tokens: u32,
    /// Prompt tokens evaluated per forward pass.
    pub batch_tokens: u32,
    /// Requests that may wait for the model (one is answered at a time);
    /// more are refused as busy rather than queued without end.
    pub max_waiting: usize,
}

impl Default for LocalChatOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        LocalChatOptions { threads, context_tokens: 4096, batch_tokens: 512, max_waiting: 32 }
    }
}

/// A GGUF chat model answering on a thread of its own.
pub struct LocalChatModel {
    name: String,
    template: ChatTemplate,
    model: Arc<LlamaModel>,
    context_tokens: u32,
    jobs: Mutex<mpsc::Sender<Job>>,
    generated: Arc<AtomicU64>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

struct Job {
    prompt: Vec<LlamaToken>,
    sampling: Sampling,
    stops: Vec<String>,
    /// Declared tools, whose calls are parsed out of the answer.
    tools: Vec<String>,
    events: async_mpsc::Sender<Result<ChatEvent, ChatError>>,
    /// Counts the job as waiting until the thread takes it up.
    waiting: Option<Waiting>,
}

/// One request waiting for the inference thread; stops counting when dropped.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// llama.cpp's process-wide state, set up once.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl LocalChatModel {
    /// Loads the GGUF file at `path` and starts its inference thread.
    pub fn load(
        name: impl Into<String>,
        path: &Path,
        template: ChatTemplate,
        options: LocalChatOptions,
    ) -> Result<LocalChatModel, ChatError> {
        let name = name.into();
        let failed = |message: String| ChatError::Provider { provider: format!("local model {name}"), message };
        if !path.is_file() {
            return Err(failed(format!("{} is missing; run `{}`", path.display(), crate::error::FETCH_COMMAND)));
        }
        let backend = backend().map_err(|e| failed(format!("llama.cpp did not start: {e}")))?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| failed(format!("could not load {}: {e}", path.display())))?;
        let model = Arc::new(model);
        let context_tokens = options.context_tokens.min(model.n_ctx_train().max(1));

        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let worker_model = Arc::clone(&model);
        let generated = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&generated);
        let thread_name = format!("chat-{name}");
        let options = LocalChatOptions { context_tokens, ..options };
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || Worker::run(&worker_model, backend, options, queue, ready_tx, counter))
            .map_err(|e| failed(format!("could not start the inference thread: {e}")))?;
        ready_rx.recv().map_err(|_| failed("the inference thread stopped while starting".into()))?.map_err(failed)?;
        Ok(LocalChatModel {
            name,
            template,
            model,
            context_tokens,
            jobs: Mutex::new(jobs),
            generated,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: options.max_waiting,
        })
    }

    /// The prompt format this model uses.
    pub fn template(&self) -> ChatTemplate {
        self.template
    }

    /// The context window, in tokens.
    pub fn context_tokens(&self) -> u32 {
        self.context_tokens
    }

    /// The chat template stored in the GGUF file, if any.
    pub fn embedded_template(&self) -> Option<String> {
        self.model.meta_val_str("tokenizer.chat_template").ok()
    }

    /// `messages` rendered by llama.cpp from the template stored in the
    /// GGUF file (tool calls and tool results aside), ending with the
    /// opening of the assistant's turn: the check that [`ChatTemplate`]
    /// writes the turns the model was trained on.
    pub fn render_with_embedded_template(&self, messages: &[ChatMessage]) -> Result<String, ChatError> {
        let failed = |message: String| ChatError::Provider { provider: format!("local model {}", self.name), message };
        let template = self.model.chat_template(None).map_err(|e| failed(format!("no chat template: {e}")))?;
        let messages = messages
            .iter()
            .map(|m| LlamaChatMessage::new(role_name(m.role).into(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(e.to_string()))?;
        self.model.apply_chat_template(&template, &messages, true).map_err(|e| failed(e.to_string()))
    }

    /// Tokens generated since the model was loaded, all requests together.
    pub fn tokens_generated(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }

    /// The tokens of `text`, special markers such as `<|im_start|>` included.
    pub fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), true)
    }
}

#[async_trait]
impl ChatModel for LocalChatModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn supports_tools(&self) -> bool {
        self.template.supports_tools()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ChatError> {
        if !request.tools.is_empty() && !self.template.supports_tools() {
            return Err(ChatError::InvalidRequest(format!("model {} cannot call tools", self.name)));
        }
        let text = self.template.render(&request.messages, &request.tools);
        let prompt = self.tokenize(&text);
        if prompt.is_empty() {
            return Err(ChatError::InvalidRequest("the conversation is empty".into()));
        }
        if prompt.len() >= self.context_tokens as usize {
            return Err(ChatError::InvalidRequest(format!(
                "the prompt is {} tokens; model {} reads at most {} tokens, answer included",
                prompt.len(),
                self.name,
                self.context_tokens
            )));
        }
        let mut stops: Vec<String> = self.template.stop_texts().iter().map(|s| (*s).to_owned()).collect();
        stops.extend(request.sampling.stop.iter().cloned());
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(ChatError::Busy(format!(
                "model {} has {} requests waiting; try again shortly",
                self.name, self.max_waiting
            )));
        }
        let waiting = Some(Waiting(Arc::clone(&self.waiting)));
        let (events, mut receiver) = async_mpsc::channel(EVENT_BUFFER);
        let job = Job {
            prompt,
            sampling: request.sampling,
            stops,
            tools: request.tools.iter().map(|t| t.name.clone()).collect(),
            events,
            waiting,
        };
        let sent = self.jobs.lock().map_err(|_| self.gone())?.send(job);
        sent.map_err(|_| self.gone())?;
        Ok(Box::pin(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))))
    }
}

impl LocalChatModel {
    fn gone(&self) -> ChatError {
        ChatError::Provider {
            provider: format!("local model {}", self.name),
            message: "the inference thread has stopped".into(),
        }
    }
}

/// The inference thread's state.
struct Worker<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    batch: LlamaBatch<'m>,
    batch_tokens: usize,
    /// Tokens whose keys and values are in the cache, in position order.
    cached: Vec<LlamaToken>,
    generated: Arc<AtomicU64>,
}

/// Why a generation loop ended early.
enum Interrupt {
    ConsumerGone,
    Failed(String),
}

impl<'m> Worker<'m> {
    fn run(
        model: &'m LlamaModel,
        backend: &LlamaBackend,
        options: LocalChatOptions,
        queue: mpsc::Receiver<Job>,
        ready: mpsc::Sender<Result<(), String>>,
        generated: Arc<AtomicU64>,
    ) {
        let threads = i32::try_from(options.threads.max(1)).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(options.context_tokens))
            .with_n_batch(options.batch_tokens)
            .with_n_ubatch(options.batch_tokens)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let context = match model.new_context(backend, params) {
            Ok(context) => context,
            Err(e) => {
                let _ = ready.send(Err(format!("could not create a llama.cpp context: {e}")));
                return;
            }
        };
        let batch_tokens = options.batch_tokens.max(1) as usize;
        let mut worker = Worker {
            model,
            context,
            batch: LlamaBatch::new(batch_tokens, 1),
            batch_tokens,
            cached: Vec::new(),
            generated,
        };
        let _ = ready.send(Ok(()));
        while let Ok(mut job) = queue.recv() {
            job.waiting.take();
            if job.events.is_closed() {
                continue;
            }
            let events = job.events.clone();
            if let Err(Interrupt::Failed(message)) = worker.answer(job) {
                // The cache may hold half a batch: start the next prompt afresh.
                worker.forget();
                let _ = events
                    .blocking_send(Err(ChatError::Provider { provider: "local llama.cpp engine".into(), message }));
            }
        }
    }

    fn forget(&mut self) {
        self.context.clear_kv_cache();
        self.cached.clear();
    }

    /// Generates the answer to one job, sending its events as they come.
    fn answer(&mut self, job: Job) -> Result<(), Interrupt> {
        let prompt_tokens = job.prompt.len();
        self.evaluate_prompt(&job.prompt)?;
        let mut sampler = sampler(&job.sampling);
        let budget = (job.sampling.max_tokens.max(1) as usize)
            .min((self.context.n_ctx() as usize).saturating_sub(prompt_tokens));
        let mut pieces = Utf8Pieces::default();
        let mut stops = StopScanner::new(&job.stops);
        let mut calls = (!job.tools.is_empty()).then(|| ToolCallParser::for_tools(&job.tools));
        let model = self.model;
        let vocab = model.vocab();
        let mut piece_bytes = Vec::new();
        let mut generated = 0usize;
        let mut reason = FinishReason::Length;
        let mut logits_at = self.batch.n_tokens() - 1;
        while generated < budget {
            let token = sampler.sample(&self.context, logits_at);
            generated += 1;
            self.generated.fetch_add(1, Ordering::Relaxed);
            if vocab.is_eog(token) {
                reason = FinishReason::Stop;
                break;
            }
            piece_bytes.clear();
            // Special tokens too: Qwen writes `<tool_call>` as one.
            vocab.token_to_piece_into(token, &mut piece_bytes, true, None);
            let scanned = stops.push(&pieces.push(&piece_bytes));
            send_text(&job.events, calls.as_mut(), scanned.text)?;
            if scanned.stopped {
                reason = FinishReason::Stop;
                break;
            }
            if generated == budget {
                break;
            }
            self.decode(&[token], false)?;
            logits_at = 0;
        }
        if reason == FinishReason::Length {
            let mut rest = pieces.finish();
            rest.push_str(&stops.finish());
            send_text(&job.events, calls.as_mut(), rest)?;
        }
        if let Some(parser) = calls {
            let found = parser.found_calls();
            let rest = parser.finish();
            let bare_calls = rest.iter().any(|p| matches!(p, Parsed::ToolCall(_)));
            for parsed in rest {
                send(&job.events, parsed_event(parsed))?;
            }
            if found || bare_calls {
                reason = FinishReason::ToolCalls;
            }
        }
        let usage = Usage { prompt_tokens: count(prompt_tokens), completion_tokens: count(generated) };
        send(&job.events, ChatEvent::Finished { reason, usage })
    }

    /// Brings the cache to `prompt`, evaluating only what is not there yet,
    /// and leaves the last prompt token's logits in the batch.
    fn evaluate_prompt(&mut self, prompt: &[LlamaToken]) -> Result<(), Interrupt> {
        let mut common = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        // The last prompt token is always evaluated: its logits pick the first answer token.
        common = common.min(prompt.len().saturating_sub(1));
        let from = u32::try_from(common).map_err(|_| Interrupt::Failed("prompt too long".into()))?;
        match self.context.clear_kv_cache_seq(Some(0), Some(from), None) {
            Ok(true) => self.cached.truncate(common),
            _ => self.forget(),
        }
        let rest = prompt[self.cached.len()..].to_vec();
        let chunks = rest.chunks(self.batch_tokens);
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.enumerate() {
            self.decode(chunk, i == last)?;
        }
        Ok(())
    }

    /// Evaluates `tokens` after the cached ones; logits of the last one
    /// only when asked (or always for a single token).
    fn decode(&mut self, tokens: &[LlamaToken], logits_of_last: bool) -> Result<(), Interrupt> {
        self.batch.clear();
        let start = self.cached.len();
        for (i, token) in tokens.iter().enumerate() {
            let pos = i32::try_from(start + i).map_err(|_| Interrupt::Failed("context overflow".into()))?;
            let last = i + 1 == tokens.len();
            self.batch
                .add(*token, pos, &[0], last && (logits_of_last || tokens.len() == 1))
                .map_err(|e| Interrupt::Failed(format!("batch: {e}")))?;
        }
        self.context.decode(&mut self.batch).map_err(|e| Interrupt::Failed(format!("llama.cpp decode failed: {e}")))?;
        self.cached.extend_from_slice(tokens);
        Ok(())
    }
}

/// The sampler chain for `sampling`: greedy at temperature 0, else nucleus
/// sampling, seeded when a seed is given.
fn sampler(sampling: &Sampling) -> LlamaSampler {
    if sampling.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    // llama.cpp picks a random seed for u32::MAX.
    let seed = sampling.seed.map_or(u32::MAX, |s| (s % u64::from(u32::MAX)) as u32);
    let top_p = if sampling.top_p > 0.0 && sampling.top_p < 1.0 { sampling.top_p } else { 1.0 };
    LlamaSampler::chain_simple([
        LlamaSampler::top_p(top_p, 1),
        LlamaSampler::temp(sampling.temperature),
        LlamaSampler::dist(seed),
    ])
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn parsed_event(parsed: Parsed) -> ChatEvent {
    match parsed {
        Parsed::Text(text) => ChatEvent::Text { text },
        Parsed::ToolCall(mut call) => {
            call.id = fresh_call_id();
            ChatEvent::ToolCall { call }
        }
    }
}

/// A tool-call id unique in this process and unlikely to repeat across
/// restarts (clients match results to calls by id over a whole conversation,
/// which may span several answers and server restarts).
fn fresh_call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static EPOCH: OnceLock<u64> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    format!("call_{epoch:016x}{:06x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sends answer text, through the tool-call parser when there is one.
fn send_text(
    events: &async_mpsc::Sender<Result<ChatEvent, ChatError>>,
    calls: Option<&mut ToolCallParser>,
    text: String,
) -> Result<(), Interrupt> {
    if text.is_empty() {
        return if events.is_closed() { Err(Interrupt::ConsumerGone) } else { Ok(()) };
    }
    match calls {
        Some(parser) => {
            for parsed in parser.push(&text) {
                send(events, parsed_event(parsed))?;
            }
            Ok(())
        }
        None => send(events, ChatEvent::Text { text }),
    }
}

fn send(events: &async_mpsc::Sender<Result<ChatEvent, ChatError>>, event: ChatEvent) -> Result<(), Interrupt> {
    events.blocking_send(Ok(event)).map_err(|_| Interrupt::ConsumerGone)
}
