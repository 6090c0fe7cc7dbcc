//! The state every handler shares: the store, the bus, the settings, and
//! what is derived from them once at start-up (JWT keys).

use std::sync::Arc;

use agentd_store::{Bus, Store};

use crate::auth::jwt::JwtKeys;
use crate::config::ServerConfig;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub config: Arc<ServerConfig>,
    pub(crate) jwt: Arc<JwtKeys>,
}

impl AppState {
    /// Builds the state from its parts.
    pub fn new(store: Store, bus: Bus, config: ServerConfig) -> Self {
        let jwt = Arc::new(JwtKeys::new(&config.jwt_secret, config.jwt_ttl));
        AppState { store, bus, config: Arc::new(config), jwt }
    }
}
