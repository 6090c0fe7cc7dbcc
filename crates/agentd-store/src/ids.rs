//! Typed identifiers.
//!
//! A `SessionId` and a `TenantId` are both UUIDs in the database, but mixing
//! them up is a bug the compiler should catch. All ids are UUIDv7, so sorting
//! by id sorts by creation time; keyset pagination relies on that.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A tenant: the unit of isolation.
    TenantId
);
id_type!(
    /// A user who logs in with email and password.
    UserId
);
id_type!(
    /// An API key (never the secret itself).
    ApiKeyId
);
id_type!(
    /// A conversation.
    SessionId
);
id_type!(
    /// One message of a conversation.
    MessageId
);
id_type!(
    /// One audit log entry.
    AuditId
);
id_type!(
    /// An uploaded document.
    DocumentId
);
id_type!(
    /// A job of the durable queue.
    JobId
);

/// A chunk of a document: a number, because it is also the chunk's key in
/// the vector and keyword indexes, which key entries by integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkId(pub i64);

impl ChunkId {
    /// The key the indexes use (chunk ids are positive).
    pub fn key(self) -> u64 {
        self.0 as u64
    }

    /// The chunk with this index key.
    pub fn from_key(key: u64) -> Self {
        ChunkId(key as i64)
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
