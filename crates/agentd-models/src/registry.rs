//! Models by name: what the configuration declares, loaded when needed.
//!
//! The rest of agentd asks for "the default chat model" or "the model the
//! client named" and gets a [`ChatModel`] or an [`Embedder`], local or
//! remote alike. The local models of `models.toml` are always there under
//! their own names; `[[models]]` entries of the configuration add remote
//! ones (or other GGUF files) and may replace a built-in one by reusing its
//! name. The two defaults are loaded at start, so a broken setup is found
//! before the first request; any other local model is loaded on its first
//! use (loading takes a second and hundreds of megabytes, which a server
//! that never uses the model should not pay).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::chat::{ChatError, ChatModel};
use crate::embed::{EmbedError, Embedder};
use crate::engine::LocalEmbedderEngine;
use crate::local::LocalEmbedder;
use crate::local_chat::{LocalChatModel, LocalChatOptions};
use crate::manifest::{Manifest, ModelKind};
use crate::onnx::{OnnxEmbedder, OnnxEmbedderOptions};
use crate::remote::{
    AnthropicChat, AnthropicConfig, OpenAiChat, OpenAiChatConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RemoteOptions,
};
use crate::template::ChatTemplate;

/// Who runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// This process, on the CPU.
    Local,
    /// Any server speaking OpenAI's API (OpenAI, vLLM, llama.cpp, Ollama).
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

/// One `[[models]]` entry of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients use (`model` in API requests).
    pub name: String,
    pub kind: ModelKind,
    pub provider: Provider,
    /// Local: the GGUF file (absolute, or relative to the models directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Local chat: the prompt format, `smollm2` (ChatML) or `qwen2.5` (ChatML with tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Remote: the API's base URL, e.g. `https://api.openai.com/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Remote: the provider's name for the model; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Remote: the environment variable holding the API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Remote embeddings: the vector length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<usize>,
    /// Embeddings: tokens read per text. Chat (local): the context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Remote: seconds before a request is abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Remote: attempts on 429, 5xx and connection errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// What the registry is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelsConfig {
    /// The chat model used when a request names none.
    pub default_chat: String,
    /// The embedder used for documents and queries.
    pub default_embedding: String,
    /// CPU threads of each local model.
    pub threads: usize,
    /// What runs the built-in embedder.
    pub embedding_engine: LocalEmbedderEngine,
    /// Context window of local chat models, in tokens.
    pub context_tokens: u32,
    /// Models beyond (or replacing) the built-in local ones.
    pub entries: Vec<ModelConfig>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            default_chat: "smollm2-135m-instruct".into(),
            default_embedding: "all-minilm-l6-v2".into(),
            threads: LocalChatOptions::default().threads,
            embedding_engine: LocalEmbedderEngine::default(),
            context_tokens: LocalChatOptions::default().context_tokens,
            entries: Vec::new(),
        }
    }
}

/// A model the registry can hand out, as `/v1/models` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub kind: ModelKind,
    pub provider: Provider,
    /// Whether it is the default of its kind.
    pub default: bool,
}

/// Looking a model up or loading it failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No model of that kind by that name.
    #[error("no {kind} model named {name:?}")]
    Unknown { kind: ModelKind, name: String },
    /// The configuration is inconsistent.
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

type Loader<T> = Arc<dyn Fn() -> Result<Arc<T>, RegistryError> + Send + Sync>;

/// A model loaded on first use, or given ready.
struct Slot<T: ?Sized> {
    info: ModelInfo,
    cell: OnceCell<Arc<T>>,
    loader: Loader<T>,
}

impl<T: ?Sized + Send + Sync + 'static> Slot<T> {
    async fn get(&self) -> Result<Arc<T>, RegistryError> {
        let loader = Arc::clone(&self.loader);
        let model = self
            .cell
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || loader())
                    .await
                    .map_err(|e| RegistryError::Config(format!("loading the model failed: {e}")))?
            })
            .await?;
        Ok(Arc::clone(model))
    }
}

/// Every configured model, by kind and name.
pub struct ModelRegistry {
    chat: BTreeMap<String, Slot<dyn ChatModel>>,
    embedders: BTreeMap<String, Slot<dyn Embedder>>,
    default_chat: String,
    default_embedding: String,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry").field("models", &self.list()).finish()
    }
}

impl ModelRegistry {
    /// The registry `config` describes, with the local models of
    /// `models_dir`. The two defaults are loaded before this returns.
    pub async fn load(config: &ModelsConfig, models_dir: &Path) -> Result<ModelRegistry, RegistryError> {
        let registry = Self::describe(config, models_dir)?;
        registry.chat(None).await?;
        registry.embedder(None).await?;
        Ok(registry)
    }

    /// The registry `config` describes, loading nothing until first use:
    /// for commands that need one model of many (ingestion needs only the
    /// embedder).
    pub fn describe(config: &ModelsConfig, models_dir: &Path) -> Result<ModelRegistry, RegistryError> {
        let mut registry = ModelRegistry::empty(&config.default_chat, &config.default_embedding);
        let local = LocalChatOptions {
            threads: config.threads.max(1),
            context_tokens: config.context_tokens,
            ..Default::default()
        };
        for spec in &Manifest::builtin().models {
            let dir = models_dir.join(&spec.name);
            match (spec.kind, builtin_template(&spec.name)) {
                (ModelKind::Chat, Some(template)) => {
                    let Some(file) = spec.files.first() else { continue };
                    let (name, path) = (spec.name.clone(), dir.join(&file.path));
                    registry.add_chat(&spec.name, Provider::Local, move || {
                        Ok(Arc::new(LocalChatModel::load(name.clone(), &path, template, local)?))
                    });
                }
                (ModelKind::Embedding, _) if spec.name == LocalEmbedder::MODEL => {
                    let models_dir = models_dir.to_path_buf();
                    let (engine, threads) = (config.embedding_engine, config.threads.max(1));
                    registry.add_embedder(&spec.name, Provider::Local, move || {
                        Ok(match engine {
                            LocalEmbedderEngine::Onnx => {
                                let options = OnnxEmbedderOptions { threads, ..Default::default() };
                                Arc::new(OnnxEmbedder::load_with(&models_dir, options)?)
                            }
                            LocalEmbedderEngine::Candle => Arc::new(LocalEmbedder::load(&models_dir)?),
                        })
                    });
                }
                _ => {}
            }
        }
        for entry in &config.entries {
            registry.add_configured(entry, models_dir, local)?;
        }
        Ok(registry)
    }

    /// A registry with no models yet; for tests and embedding programs.
    pub fn empty(default_chat: &str, default_embedding: &str) -> ModelRegistry {
        ModelRegistry {
            chat: BTreeMap::new(),
            embedders: BTreeMap::new(),
            default_chat: default_chat.to_owned(),
            default_embedding: default_embedding.to_owned(),
        }
    }

    /// Adds a ready chat model under its own name.
    pub fn with_chat(mut self, model: Arc<dyn ChatModel>, provider: Provider) -> Self {
        let name = model.name().to_owned();
        self.add_chat(&name, provider, move || Ok(Arc::clone(&model)));
        self
    }

    /// Adds a ready embedder under its model name.
    pub fn with_embedder(mut self, model: Arc<dyn Embedder>, provider: Provider) -> Self {
        let name = model.model_name().to_owned();
        self.add_embedder(&name, provider, move || Ok(Arc::clone(&model)));
        self
    }

    fn add_chat(
        &mut self,
        name: &str,
        provider: Provider,
        loader: impl Fn() -> Result<Arc<dyn ChatModel>, RegistryError> + Send + Sync + 'static,
    ) {
        let info = ModelInfo { name: name.to_owned(), kind: ModelKind::Chat, provider, default: false };
        self.chat.insert(name.to_owned(), Slot { info, cell: OnceCell::new(), loader: Arc::new(loader) });
    }

    fn add_embedder(
        &mut self,
        name: &str,
        provider: Provider,
        loader: impl Fn() -> Result<Arc<dyn Embedder>, RegistryError> + Send + Sync + 'static,
    ) {
        let info = ModelInfo { name: name.to_owned(), kind: ModelKind::Embedding, provider, default: false };
        self.embedders.insert(name.to_owned(), Slot { info, cell: OnceCell::new(), loader: Arc::new(loader) });
    }

    fn add_configured(
        &mut self,
        entry: &ModelConfig,
        models_dir: &Path,
        local: LocalChatOptions,
    ) -> Result<(), RegistryError> {
        let name = entry.name.clone();
        let bad = |what: &str| RegistryError::Config(format!("model {name:?}: {what}"));
        match (entry.kind, entry.provider) {
            (ModelKind::Chat, Provider::Local) => {
                let path = entry.path.as_ref().ok_or_else(|| bad("a local chat model needs `path` (a GGUF file)"))?;
                let path = models_dir.join(path);
                let template = match entry.template.as_deref() {
                    Some("smollm2" | "chatml") => ChatTemplate::SmolLm2,
                    Some("qwen2.5") => ChatTemplate::Qwen25,
                    Some(other) => return Err(bad(&format!("unknown template {other:?} (smollm2, qwen2.5)"))),
                    None => return Err(bad("a local chat model needs `template` (smollm2 or qwen2.5)")),
                };
                let options = LocalChatOptions {
                    context_tokens: entry
                        .max_tokens
                        .map_or(local.context_tokens, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                    ..local
                };
                let model_name = name.clone();
                self.add_chat(&name, Provider::Local, move || {
                    Ok(Arc::new(LocalChatModel::load(model_name.clone(), &path, template, options)?))
                });
            }
            (ModelKind::Embedding, Provider::Local) => {
                return Err(bad("the local embedder is the built-in all-minilm-l6-v2; configure no other"));
            }
            (kind, provider) => self.add_remote(entry, kind, provider)?,
        }
        Ok(())
    }

    fn add_remote(&mut self, entry: &ModelConfig, kind: ModelKind, provider: Provider) -> Result<(), RegistryError> {
        let name = entry.name.clone();
        let bad = |what: String| RegistryError::Config(format!("model {name:?}: {what}"));
        let api_key = match &entry.api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|key| !key.is_empty())
                    .ok_or_else(|| bad(format!("the environment variable {var} (api_key_env) is not set")))?,
            ),
            None => None,
        };
        let mut options = RemoteOptions::default();
        if let Some(secs) = entry.timeout_secs {
            options.response_timeout = Duration::from_secs(secs);
            options.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(retries) = entry.max_retries {
            options.max_attempts = retries.saturating_add(1);
        }
        let remote_model = entry.model.clone().unwrap_or_else(|| name.clone());
        let base_url = || entry.base_url.clone().ok_or_else(|| bad("a remote model needs `base_url`".into()));
        match (kind, provider) {
            (ModelKind::Chat, Provider::Openai) => {
                let config = OpenAiChatConfig {
                    name: name.clone(),
                    base_url: base_url()?,
                    api_key,
                    model: remote_model,
                    options,
                };
                let model: Arc<dyn ChatModel> = Arc::new(OpenAiChat::new(config)?);
                self.add_chat(&name, provider, move || Ok(Arc::clone(&model)));
            }
            (ModelKind::Chat, Provider::Anthropic) => {
                let api_key = api_key.ok_or_else(|| bad("an Anthropic model needs `api_key_env`".into()))?;
                let mut config = AnthropicConfig::new(name.clone(), remote_model, api_key);
                if let Some(base_url) = &entry.base_url {
                    config.base_url = base_url.clone();
                }
                config.options = options;
                let model: Arc<dyn ChatModel> = Arc::new(AnthropicChat::new(config)?);
                self.add_chat(&name, provider, move || Ok(Arc::clone(&model)));
            }
            (ModelKind::Embedding, Provider::Openai) => {
                let dimension = entry.dimension.ok_or_else(|| bad("a remote embedder needs `dimension`".into()))?;
                let max_tokens = entry.max_tokens.unwrap_or(8191);
                let mut config =
                    OpenAiEmbedderConfig::new(name.clone(), base_url()?, remote_model, dimension, max_tokens);
                config.api_key = api_key;
                config.options = options;
                let model: Arc<dyn Embedder> = Arc::new(OpenAiEmbedder::new(config)?);
                self.add_embedder(&name, provider, move || Ok(Arc::clone(&model)));
            }
            (kind, provider) => return Err(bad(format!("a {kind} model cannot be served by {provider:?}"))),
        }
        Ok(())
    }

    /// The chat model named `name`, or the default one.
    pub async fn chat(&self, name: Option<&str>) -> Result<Arc<dyn ChatModel>, RegistryError> {
        let name = name.unwrap_or(&self.default_chat);
        let slot = self
            .chat
            .get(name)
            .ok_or_else(|| RegistryError::Unknown { kind: ModelKind::Chat, name: name.to_owned() })?;
        slot.get().await
    }

    /// The embedder named `name`, or the default one.
    pub async fn embedder(&self, name: Option<&str>) -> Result<Arc<dyn Embedder>, RegistryError> {
        let name = name.unwrap_or(&self.default_embedding);
        let slot = self
            .embedders
            .get(name)
            .ok_or_else(|| RegistryError::Unknown { kind: ModelKind::Embedding, name: name.to_owned() })?;
        slot.get().await
    }

    /// Whether `name` is a chat model, an embedder, or neither.
    pub fn kind_of(&self, name: &str) -> Option<ModelKind> {
        if self.chat.contains_key(name) {
            Some(ModelKind::Chat)
        } else if self.embedders.contains_key(name) {
            Some(ModelKind::Embedding)
        } else {
            None
        }
    }

    /// Every model, chat models first, by name.
    pub fn list(&self) -> Vec<ModelInfo> {
        let chat = self
            .chat
            .values()
            .map(|slot| ModelInfo { default: slot.info.name == self.default_chat, ..slot.info.clone() });
        let embed = self
            .embedders
            .values()
            .map(|slot| ModelInfo { default: slot.info.name == self.default_embedding, ..slot.info.clone() });
        chat.chain(embed).collect()
    }
}

/// The prompt format of each built-in chat model.
fn builtin_template(name: &str) -> Option<ChatTemplate> {
    match name {
        "smollm2-135m-instruct" => Some(ChatTemplate::SmolLm2),
        "qwen2.5-coder-0.5b-instruct" => Some(ChatTemplate::Qwen25),
        _ => None,
    }
}
