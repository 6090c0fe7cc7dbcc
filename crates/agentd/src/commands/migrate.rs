//! `agentd migrate`: apply pending migrations and say where.

use crate::config::Config;
use crate::wiring;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let store = wiring::store(config).await?;
    println!("migrations applied ({} database)", store.backend());
    Ok(())
}
