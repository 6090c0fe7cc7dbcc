//! The OpenAI-compatible endpoints driven by the official `openai` Python
//! package against a real `agentd serve` with the real local models: list
//! models, embeddings (base64 and float), a chat completion and a streamed
//! one, and the client's own error classes for a bad model and a bad key.
//!
//! The client comes from the virtual environment `scripts/python-env`
//! prepares (the test script exports its Python as `AGENTD_TEST_PYTHON`);
//! run on its own, this test prepares it the same way.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::{DataDir, Server, python};

#[test]
fn the_official_openai_client_works_unchanged() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0);
    let key = server.first_key.clone().expect("a first start prints an admin key");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai/client_check.py");
    let base_url = format!("http://{}/v1", server.addr);
    let output = Command::new(python())
        .arg(&script)
        .args([base_url.as_str(), key.as_str(), "smollm2-135m-instruct", "all-minilm-l6-v2"])
        .output()
        .expect("python runs");
    assert!(output.status.success(), "the client failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));

    let models: Vec<&str> = seen["models"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(models.contains(&"smollm2-135m-instruct") && models.contains(&"all-minilm-l6-v2"), "{models:?}");

    assert_eq!(seen["embedding_dims"], serde_json::json!([384, 384, 384]));
    for norm in seen["embedding_norms"].as_array().unwrap() {
        assert!((norm.as_f64().unwrap() - 1.0).abs() < 1e-3, "unit vectors: {norm}");
    }
    assert_eq!(seen["similar_beats_unrelated"], true, "{seen}");
    assert_eq!(seen["float_matches_base64"], true);
    assert!(seen["embedding_usage"].as_u64().unwrap() > 0);

    let completion = &seen["completion"];
    assert!(!completion["text"].as_str().unwrap().trim().is_empty(), "{completion}");
    let usage = &completion["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 10 && usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    let stream = &seen["stream"];
    assert!(stream["pieces"].as_u64().unwrap() > 1, "the answer arrives in pieces: {stream}");
    assert_eq!(stream["text"], completion["text"], "greedy: streamed and whole answers agree");
    assert_eq!(stream["finish_reason"], completion["finish_reason"]);
    assert_eq!(stream["usage"], completion["usage"]);

    assert_eq!(seen["unknown_model"]["status"], 404, "{seen}");
    assert_eq!(seen["unknown_model"]["code"], "model_not_found");
    assert_eq!(seen["bad_key"]["status"], 401);
}
