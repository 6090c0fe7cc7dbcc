//! The rows agentd keeps, as domain types.
//!
//! These are what repository functions take and return. They derive
//! `Serialize` because the server returns most of them as they are; secrets
//! (password hashes, API key hashes) are never part of a serialised record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ApiKeyId, AuditId, MessageId, SessionId, TenantId, UserId};

/// What a caller may do inside its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Manages keys and users and sees every conversation of the tenant.
    Admin,
    /// Sees only its own conversations.
    Member,
}

impl Role {
    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role {other:?} (expected admin or member)")),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant: users, keys and data that never mix with another tenant's.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A person who logs in with email and password.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: Option<String>,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// The argon2 PHC string; never serialised.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub password_hash: String,
}

/// What it takes to create a user; the password arrives already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub password_hash: String,
}

/// An API key as listed; the secret is shown once at creation and only its
/// hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    /// The user the key acts as, if any; otherwise the key is its own actor.
    pub user_id: Option<UserId>,
    pub name: String,
    /// The first characters of the key, enough to recognise it in a list.
    pub prefix: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Whether the key may still be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// What it takes to create an API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: TenantId,
    /// The user or API key that created it; members see only their own.
    pub owner_id: uuid::Uuid,
    pub title: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: sqlx::types::Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to start a conversation.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub tenant_id: TenantId,
    pub owner_id: uuid::Uuid,
    pub title: Option<String>,
    pub metadata: serde_json::Value,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageRole {
    System,
    User,
    Assistant,
    Tool,
}

impl MessageRole {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Tool => "tool",
        }
    }
}

impl TryFrom<String> for MessageRole {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "system" => Ok(MessageRole::System),
            "user" => Ok(MessageRole::User),
            "assistant" => Ok(MessageRole::Assistant),
            "tool" => Ok(MessageRole::Tool),
            other => Err(format!("unknown message role {other:?}")),
        }
    }
}

/// One message of a conversation; `seq` orders messages within a session.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub session_id: SessionId,
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub role: MessageRole,
    pub content: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: sqlx::types::Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// What it takes to append a message.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: MessageRole,
    pub content: String,
    pub metadata: serde_json::Value,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: AuditId,
    pub tenant_id: Option<TenantId>,
    /// The user or API key that acted, when known.
    pub actor_id: Option<uuid::Uuid>,
    /// What happened, e.g. `api_key.create`, `auth.login_failed`.
    pub action: String,
    /// What it happened to, e.g. an id or an email.
    pub target: Option<String>,
    pub request_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: sqlx::types::Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// What it takes to write an audit entry.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<uuid::Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// One page of a keyset-paginated listing: pass `next_cursor` back to get
/// the next page; `None` means this was the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque to callers: pass it back as the `cursor` of the next call.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row, if present,
    /// only proves there is a next page.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }
}
