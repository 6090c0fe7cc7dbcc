//! Models by name: configured entries, defaults, lazy loading and the
//! errors a broken configuration gives at start rather than at first use.

use std::sync::Arc;

use agentd_models::{ModelConfig, ModelKind, ModelRegistry, ModelsConfig, Provider, RegistryError, ScriptedChatModel};

fn entry(name: &str, kind: ModelKind, provider: Provider) -> ModelConfig {
    ModelConfig {
        name: name.into(),
        kind,
        provider,
        path: None,
        template: None,
        base_url: Some("http://127.0.0.1:9/v1".into()),
        model: None,
        api_key_env: None,
        dimension: None,
        max_tokens: None,
        timeout_secs: None,
        max_retries: None,
    }
}

/// A registry of the configured entries only: the defaults name a scripted
/// model added afterwards, so nothing local is loaded.
async fn load(entries: Vec<ModelConfig>) -> Result<ModelRegistry, RegistryError> {
    let config = ModelsConfig {
        default_chat: "remote-chat".into(),
        default_embedding: "remote-embed".into(),
        entries,
        ..ModelsConfig::default()
    };
    ModelRegistry::load(&config, std::path::Path::new("/nonexistent-models-dir")).await
}

fn remote_pair() -> Vec<ModelConfig> {
    let mut embed = entry("remote-embed", ModelKind::Embedding, Provider::Openai);
    embed.dimension = Some(1536);
    vec![entry("remote-chat", ModelKind::Chat, Provider::Openai), embed]
}

#[tokio::test]
async fn remote_entries_are_listed_with_their_kind_and_defaults() {
    let registry = load(remote_pair()).await.expect("remote models need no files");
    let remote: Vec<_> = registry.list().into_iter().filter(|m| m.provider == Provider::Openai).collect();
    assert_eq!(remote.len(), 2);
    assert!(remote.iter().all(|m| m.default));
    assert_eq!(registry.kind_of("remote-chat"), Some(ModelKind::Chat));
    assert_eq!(registry.kind_of("remote-embed"), Some(ModelKind::Embedding));
    // The built-in local models are listed too, but not loaded until used.
    assert_eq!(registry.kind_of("qwen2.5-coder-0.5b-instruct"), Some(ModelKind::Chat));
    assert_eq!(registry.embedder(None).await.unwrap().dimension(), 1536);
    assert_eq!(registry.chat(None).await.unwrap().name(), "remote-chat");
}

#[tokio::test]
async fn a_missing_default_fails_at_load() {
    let err = load(vec![]).await.expect_err("no model named remote-chat");
    assert!(matches!(err, RegistryError::Unknown { kind: ModelKind::Chat, .. }), "{err}");
}

#[tokio::test]
async fn a_local_model_whose_file_is_missing_fails_on_use_with_the_fix() {
    let registry = load(remote_pair()).await.unwrap();
    let err = registry.chat(Some("smollm2-135m-instruct")).await.err().expect("the GGUF is not there");
    let message = err.to_string();
    assert!(
        message.contains("SmolLM2-135M-Instruct.Q4_1.gguf") && message.contains("agentd models fetch"),
        "{message}"
    );
}

#[tokio::test]
async fn inconsistent_entries_are_refused_with_the_reason() {
    let mut no_url = entry("x", ModelKind::Chat, Provider::Openai);
    no_url.base_url = None;
    let no_dimension = entry("x", ModelKind::Embedding, Provider::Openai);
    let anthropic_embed = entry("x", ModelKind::Embedding, Provider::Anthropic);
    let anthropic_keyless = entry("x", ModelKind::Chat, Provider::Anthropic);
    let mut unset_key = entry("x", ModelKind::Chat, Provider::Openai);
    unset_key.api_key_env = Some("AGENTD_TEST_SURELY_UNSET_VARIABLE".into());
    let local_no_path = entry("x", ModelKind::Chat, Provider::Local);
    let mut local_bad_template = entry("x", ModelKind::Chat, Provider::Local);
    local_bad_template.path = Some("m.gguf".into());
    local_bad_template.template = Some("llama3".into());
    let cases = [
        (no_url, "base_url"),
        (no_dimension, "dimension"),
        (anthropic_embed, "cannot be served"),
        (anthropic_keyless, "api_key_env"),
        (unset_key, "AGENTD_TEST_SURELY_UNSET_VARIABLE"),
        (local_no_path, "path"),
        (local_bad_template, "llama3"),
    ];
    for (bad, says) in cases {
        let mut entries = remote_pair();
        entries.push(bad);
        let err = load(entries).await.expect_err("refused");
        assert!(matches!(err, RegistryError::Config(_)), "{err}");
        assert!(err.to_string().contains(says), "{err} should mention {says}");
    }
}

#[tokio::test]
async fn a_ready_model_is_handed_out_by_name() {
    let scripted = Arc::new(ScriptedChatModel::new("s"));
    let registry = ModelRegistry::empty("s", "none").with_chat(scripted, Provider::Local);
    assert_eq!(registry.chat(Some("s")).await.unwrap().name(), "s");
    assert!(matches!(registry.chat(Some("t")).await, Err(RegistryError::Unknown { .. })));
    assert!(matches!(registry.embedder(None).await, Err(RegistryError::Unknown { kind: ModelKind::Embedding, .. })));
}
