//! The `agentd` command line as a library: its configuration, wiring,
//! logging and subcommands, so that the workspace's other programs (the
//! benchmarks of `agentd-bench`) run the same code the binary runs.

pub mod commands;
pub mod config;
pub mod logging;
pub mod program;
pub mod wiring;
