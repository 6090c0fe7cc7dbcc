//! The settings the HTTP layer needs, as plain data.
//!
//! Loading them (environment, TOML file, defaults) is the binary's job; this
//! crate only says what it needs, so tests can build a server with exactly
//! the settings they want.

use std::time::Duration;

use agentd_store::RateQuota;

/// Everything the router needs to know besides the store and the bus.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest JSON body accepted, in bytes (413 above).
    pub json_body_limit: usize,
    /// Largest upload accepted, in bytes (413 above).
    pub upload_body_limit: usize,
    /// Per caller (API key or user); `None` turns rate limiting off.
    pub rate_limit: Option<RateQuota>,
    /// Per email address on `POST /v1/auth/token`, against password guessing.
    pub login_rate_limit: Option<RateQuota>,
    /// Origins allowed by CORS: empty means no CORS headers; `*` means any.
    pub cors_origins: Vec<String>,
    /// The HS256 secret for JWTs.
    pub jwt_secret: String,
    /// How long an issued JWT stays valid.
    pub jwt_ttl: Duration,
    /// How long an API-key lookup is cached. Revocation deletes the entry
    /// through the bus; on an unshared (in-process) bus other nodes only
    /// notice when their entry expires, so keep this short there.
    pub api_key_cache_ttl: Duration,
    /// Longest a request may take before it is answered 408/503.
    pub request_timeout: Duration,
}

impl ServerConfig {
    /// The defaults (the binary's configuration defaults to these too);
    /// `jwt_secret` must be set by the caller.
    pub fn with_secret(jwt_secret: impl Into<String>) -> Self {
        ServerConfig {
            json_body_limit: 1024 * 1024,
            upload_body_limit: 64 * 1024 * 1024,
            rate_limit: Some(RateQuota { per_second: 20.0, burst: 40 }),
            // Ten a minute per email address.
            login_rate_limit: Some(RateQuota { per_second: 10.0 / 60.0, burst: 10 }),
            cors_origins: Vec::new(),
            jwt_secret: jwt_secret.into(),
            jwt_ttl: Duration::from_secs(3600),
            api_key_cache_ttl: Duration::from_secs(1),
            request_timeout: Duration::from_secs(300),
        }
    }
}
