//! One file per subcommand.

pub mod eval;
pub mod ingest;
pub mod keys;
pub mod knowledge;
pub mod migrate;
pub mod models;
pub mod serve;
pub mod users;
pub mod worker;
