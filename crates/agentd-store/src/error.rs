//! The one error type of the relational store.
//!
//! Callers care about three outcomes: the row is not there (or belongs to
//! another tenant, which must look the same), the write conflicts with an
//! existing row, or the database itself failed. Everything else is detail.

/// What can go wrong in a repository call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row visible to the caller's tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A page cursor no listing hands out (a listing's own cursors are
    /// always well-formed, even once the row they name is gone).
    #[error("malformed cursor")]
    InvalidCursor,
    /// A uniqueness rule would be broken (e.g. a second user with one email).
    #[error("{0}")]
    Conflict(String),
    /// A value read from the database does not fit the domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Turns a unique-constraint violation into [`StoreError::Conflict`] with
    /// the given message, and passes every other error through.
    pub(crate) fn conflict_on_unique(err: sqlx::Error, message: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message.into()),
            _ => StoreError::Database(err),
        }
    }

    /// Whether the error means the database is unreachable rather than that
    /// a query was wrong; the server answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}
