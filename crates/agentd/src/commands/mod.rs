//! One file per subcommand.

pub mod keys;
pub mod migrate;
pub mod serve;
pub mod users;
