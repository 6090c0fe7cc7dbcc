//! JSON Web Tokens (HS256) for users who log in with email and password.
//!
//! A token names the user, the tenant and the role, and expires; nothing is
//! stored server-side, so any node with the same secret accepts it.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use agentd_store::{Role, TenantId, UserId};

/// Who issues (and accepts) the tokens.
const ISSUER: &str = "agentd";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The user's tenant.
    pub tid: TenantId,
    /// The user's role when the token was issued.
    pub role: Role,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

/// Signing and checking keys, made once from the secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtKeys {
    /// Keys for `secret`; issued tokens live `ttl`.
    pub fn new(secret: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl,
        }
    }

    /// A signed token for this user, and its lifetime in seconds.
    pub fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        role: Role,
    ) -> Result<(String, u64), jsonwebtoken::errors::Error> {
        let now = unix_now();
        let ttl = self.ttl.as_secs().max(1);
        let claims = Claims { sub: user, tid: tenant, role, iss: ISSUER.into(), iat: now, exp: now + ttl };
        self.sign(&claims).map(|token| (token, ttl))
    }

    /// Signs arbitrary claims (tests use this to make expired tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The claims of a valid token; an error for a bad signature, a wrong
    /// issuer or an expired token.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_their_claims() {
        let keys = JwtKeys::new("secret", Duration::from_secs(60));
        let (user, tenant) = (UserId::new(), TenantId::new());
        let (token, ttl) = keys.issue(user, tenant, Role::Member).unwrap();
        assert_eq!(ttl, 60);
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.tid, claims.role), (user, tenant, Role::Member));
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let keys = JwtKeys::new("secret", Duration::from_secs(60));
        let now = unix_now();
        let expired = Claims {
            sub: UserId::new(),
            tid: TenantId::new(),
            role: Role::Admin,
            iss: ISSUER.into(),
            iat: now - 120,
            exp: now - 60,
        };
        assert!(keys.verify(&keys.sign(&expired).unwrap()).is_err());

        let other = JwtKeys::new("another secret", Duration::from_secs(60));
        let (forged, _) = other.issue(UserId::new(), TenantId::new(), Role::Admin).unwrap();
        assert!(keys.verify(&forged).is_err());

        assert!(keys.verify("not.a.token").is_err());
    }
}
