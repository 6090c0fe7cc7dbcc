//! The external API fuzzer schemathesis (pinned in
//! `scripts/test-requirements.txt`) against a real `agentd serve`: every
//! operation of the served OpenAPI document, every phase (examples,
//! coverage, fuzzing, stateful), every check, a bounded number of examples.
//! It must find nothing: no 5xx, no answer outside the document, no
//! schema-valid request refused, no schema-violating one let in. The few
//! rules JSON Schema cannot state are configured, with their reasons, in
//! `tests/fuzz/schemathesis.toml`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{DataDir, Server, python};

/// Examples per operation and phase: enough to walk every operation's
/// shapes, small enough to stay within a few minutes.
const EXAMPLES: &str = "20";

/// The seed of CI's run, so that a red run is this change's doing and can
/// be replayed. `AGENTD_FUZZ_SEED` picks another; `random` a fresh one each
/// run (for hunting, not for CI).
const SEED: &str = "20261207";

#[test]
fn schemathesis_finds_no_failure_in_the_whole_api() {
    let dir = DataDir::new();
    // The fuzzer sends thousands of requests as one caller: limits that
    // would refuse it are lifted; a small context keeps each real
    // generation short.
    let env = [
        ("AGENTD_RATE_LIMIT_PER_SECOND", "1000000".to_string()),
        ("AGENTD_RATE_LIMIT_BURST", "1000000".to_string()),
        ("AGENTD_LOGIN_RATE_LIMIT_PER_MINUTE", "100000000".to_string()),
        ("AGENTD_MODEL_CONTEXT_TOKENS", "512".to_string()),
    ];
    let server = Server::start_env(&dir.0, &[], &env);
    let key = server.first_key.clone().expect("a first start prints an admin key");
    let python = python();
    let st = Path::new(&python).with_file_name("st");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/schemathesis.toml");
    let output = Command::new(&st)
        .current_dir(&dir.0)
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        // Every check is on unless the configuration turns it off for an
        // operation (`--checks all` would override that).
        .args(["--max-examples", EXAMPLES, "--request-timeout", "60"])
        .args(seed_args())
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", st.display()));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It did test every operation, in every phase.
    assert!(report.contains("Tested: "), "{report}");
    let selected = report.lines().find(|l| l.trim_start().starts_with("Selected:")).unwrap_or_default();
    let tested = report.lines().find(|l| l.trim_start().starts_with("Tested:")).unwrap_or_default();
    let total = selected.split('/').nth(1).map(str::trim).unwrap_or("?");
    assert_eq!(tested.trim().trim_start_matches("Tested:").trim(), total, "{report}");
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(report.lines().any(|l| l.contains('✅') && l.contains(phase)), "{phase} did not pass:\n{report}");
    }
}

fn seed_args() -> Vec<String> {
    match std::env::var("AGENTD_FUZZ_SEED").unwrap_or_else(|_| SEED.to_string()).as_str() {
        "random" => Vec::new(),
        seed => vec!["--seed".to_string(), seed.to_string()],
    }
}
