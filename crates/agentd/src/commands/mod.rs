//! One file per subcommand.

pub mod bench;
pub mod keys;
pub mod migrate;
pub mod models;
pub mod serve;
pub mod users;
