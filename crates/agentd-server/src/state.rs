//! The state every handler shares: the store, the bus, the settings, the
//! models, and what is derived from them once at start-up (JWT keys).

use std::sync::Arc;

use agentd_models::ModelRegistry;
use agentd_retrieval::Knowledge;
use agentd_store::{Bus, Store};

use crate::auth::jwt::JwtKeys;
use crate::config::ServerConfig;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub config: Arc<ServerConfig>,
    /// Chat models and embedders by name.
    pub models: Arc<ModelRegistry>,
    /// Documents and search; `None` when not enabled (their routes answer 503).
    pub knowledge: Option<Arc<Knowledge>>,
    pub(crate) jwt: Arc<JwtKeys>,
}

impl AppState {
    /// Builds the state from its parts, with no models yet (the model
    /// endpoints then answer that the model does not exist).
    pub fn new(store: Store, bus: Bus, config: ServerConfig) -> Self {
        let jwt = Arc::new(JwtKeys::new(&config.jwt_secret, config.jwt_ttl));
        let models = Arc::new(ModelRegistry::empty("", ""));
        AppState { store, bus, config: Arc::new(config), models, knowledge: None, jwt }
    }

    /// The same state serving `models`.
    pub fn with_models(mut self, models: Arc<ModelRegistry>) -> Self {
        self.models = models;
        self
    }

    /// The same state serving documents and search through `knowledge`.
    pub fn with_knowledge(mut self, knowledge: Arc<Knowledge>) -> Self {
        self.knowledge = Some(knowledge);
        self
    }
}
