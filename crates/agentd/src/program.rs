//! What every program of the workspace (`agentd`, `agentd-bench`) does the
//! same way: start the async runtime, read the configuration, and turn the
//! outcome into an exit code with the error printed once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, ProcessEnv};

/// Runs `command` to its end on a multi-threaded runtime.
pub fn exit_code(command: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The options every program takes, before or after its subcommand.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// A TOML configuration file (secrets stay in the environment).
    #[arg(long, global = true, value_name = "FILE", env = "AGENTD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where embedded state lives [env: AGENTD_DATA_DIR; default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl GlobalArgs {
    /// The configuration: defaults, the file (if given), the environment,
    /// then `--data-dir`.
    pub fn load_config(self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), &ProcessEnv)?;
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        Ok(config)
    }
}
