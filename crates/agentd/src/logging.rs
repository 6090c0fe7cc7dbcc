//! Logs: human-readable text by default, one JSON object a line with
//! `AGENTD_LOG_FORMAT=json`, filtered by `AGENTD_LOG` (or `RUST_LOG`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Installs the global subscriber; call once, before logging anything.
pub fn init(config: &Config) -> anyhow::Result<()> {
    let mut filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?}: {e}", config.log_level))?;
    // llama.cpp and ONNX Runtime narrate every model load and session set-up
    // at info level; keep only their warnings unless the filter names them.
    for quiet in ["llama-cpp-2", "ort"] {
        if !config.log_level.contains(&format!("{quiet}=")) {
            filter = filter.add_directive(format!("{quiet}=warn").parse()?);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = if config.log_format == crate::config::LogFormat::Json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Like [`init`], for commands that print their own progress: the default
/// level is `warn` rather than `info`, so per-document logs do not tear
/// through the progress bar. A level set in the configuration still wins.
pub fn init_quiet(config: &Config) -> anyhow::Result<()> {
    let mut quiet = config.clone();
    if quiet.log_level == Config::default().log_level {
        quiet.log_level = "warn".into();
    }
    init(&quiet)
}
