//! Conversations and their messages.
//!
//! Every call takes the tenant and, for members, the owner: a session of
//! another tenant or another member is "not found", never "forbidden", so
//! ids do not leak. Messages are numbered per session (`seq`) by the
//! database, in the same statement that inserts them, so two nodes
//! appending at once can never give two messages one place.

use uuid::Uuid;

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{MessageId, SessionId, TenantId};
use crate::records::{Message, NewMessage, NewSession, Page, Session};
use crate::repos::{id_cursor, page_limit, stored_time};

/// Repository of sessions and messages.
pub struct Sessions<'a> {
    pub(crate) store: &'a Store,
}

/// The columns a [`Session`] is read from.
macro_rules! session_columns {
    () => {
        "id, tenant_id, owner_id, title, metadata, created_at, updated_at"
    };
}

/// The columns a [`Message`] is read from.
macro_rules! message_columns {
    () => {
        "id, session_id, seq, role, content, metadata, created_at"
    };
}

/// How often an append retries when another writer took the same `seq`.
const APPEND_ATTEMPTS: usize = 8;

impl Sessions<'_> {
    /// Starts a conversation.
    pub async fn create(&self, new: NewSession) -> Result<Session, StoreError> {
        let now = stored_time(self.store.now());
        let session = Session {
            id: SessionId::new(),
            tenant_id: new.tenant_id,
            owner_id: new.owner_id,
            title: new.title,
            metadata: sqlx::types::Json(new.metadata),
            created_at: now,
            updated_at: now,
        };
        let sql = concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(session.id)
                .bind(session.tenant_id)
                .bind(session.owner_id)
                .bind(&session.title)
                .bind(&session.metadata)
                .bind(session.created_at)
                .bind(session.updated_at)
                .execute(pool)
                .await?;
        });
        Ok(session)
    }

    /// The session with this id, if the tenant (and, when given, the owner)
    /// may see it.
    pub async fn get(&self, tenant: TenantId, owner: Option<Uuid>, id: SessionId) -> Result<Session, StoreError> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ",
            "WHERE tenant_id = $1 AND id = $2 AND ($3 IS NULL OR owner_id = $3)"
        );
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, Session>(sql)
                .bind(tenant)
                .bind(id)
                .bind(owner)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("session"))
        })
    }

    /// A page of sessions, most recently created first.
    pub async fn list(
        &self,
        tenant: TenantId,
        owner: Option<Uuid>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Session>, StoreError> {
        let (limit, fetch) = page_limit(limit);
        let cursor = id_cursor(cursor)?;
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions ",
            "WHERE tenant_id = $1 AND ($2 IS NULL OR owner_id = $2) AND ($3 IS NULL OR id < $3) ",
            "ORDER BY id DESC LIMIT $4"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, Session>(sql)
                .bind(tenant)
                .bind(owner)
                .bind(cursor)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |s| s.id.to_string()))
    }

    /// Deletes a session and its messages.
    pub async fn delete(&self, tenant: TenantId, owner: Option<Uuid>, id: SessionId) -> Result<(), StoreError> {
        let sql = "DELETE FROM sessions WHERE tenant_id = $1 AND id = $2 AND ($3 IS NULL OR owner_id = $3)";
        let deleted = on_pool!(self.store, pool => {
            sqlx::query(sql).bind(tenant).bind(id).bind(owner).execute(pool).await?.rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound("session"));
        }
        Ok(())
    }

    /// Appends a message at the end of a session and returns it with its
    /// place (`seq`, from 1).
    pub async fn append_message(
        &self,
        tenant: TenantId,
        owner: Option<Uuid>,
        session: SessionId,
        new: NewMessage,
    ) -> Result<Message, StoreError> {
        // One statement both checks that the caller may see the session and
        // takes the next place in it; it inserts nothing when the session is
        // not visible.
        let sql = concat!(
            "INSERT INTO messages (id, tenant_id, ",
            "session_id, seq, role, content, metadata, created_at) ",
            "SELECT $1, s.tenant_id, s.id, ",
            "COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.session_id = s.id), 0) + 1, ",
            "$2, $3, $4, $5 FROM sessions s ",
            "WHERE s.tenant_id = $6 AND s.id = $7 AND ($8 IS NULL OR s.owner_id = $8) ",
            "RETURNING ",
            message_columns!()
        );
        let touch = "UPDATE sessions SET updated_at = $1 WHERE id = $2 AND tenant_id = $3";
        let metadata = sqlx::types::Json(new.metadata);
        for _ in 0..APPEND_ATTEMPTS {
            let now = stored_time(self.store.now());
            let result = on_pool!(self.store, pool => {
                let mut tx = pool.begin().await?;
                // Touching the session first locks its row until commit, so
                // appends to one session take turns instead of racing for
                // one `seq` (a session the caller may not see is rolled back).
                sqlx::query(touch).bind(now).bind(session).bind(tenant).execute(&mut *tx).await?;
                let inserted = sqlx::query_as::<_, Message>(sql)
                    .bind(MessageId::new())
                    .bind(new.role.as_str())
                    .bind(&new.content)
                    .bind(&metadata)
                    .bind(now)
                    .bind(tenant)
                    .bind(session)
                    .bind(owner)
                    .fetch_optional(&mut *tx)
                    .await;
                match inserted {
                    Ok(Some(message)) => {
                        tx.commit().await?;
                        Ok(Some(message))
                    }
                    Ok(None) => {
                        // Explicitly: a dropped transaction stays open
                        // until its connection is next used.
                        tx.rollback().await?;
                        Err(StoreError::NotFound("session"))
                    }
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        tx.rollback().await?;
                        Ok(None)
                    }
                    Err(e) => Err(StoreError::Database(e)),
                }
            });
            if let Some(message) = result? {
                return Ok(message);
            }
        }
        Err(StoreError::Conflict("too many concurrent writers on this session; try again".into()))
    }

    /// Messages of a session in order, `limit` at a time, starting after
    /// the cursor of the previous page.
    pub async fn messages(
        &self,
        tenant: TenantId,
        owner: Option<Uuid>,
        session: SessionId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Message>, StoreError> {
        self.get(tenant, owner, session).await?;
        let (limit, fetch) = page_limit(limit);
        let after: i64 = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c.parse().ok().filter(|seq| *seq >= 0).ok_or(StoreError::InvalidCursor)?,
        };
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages ",
            "WHERE tenant_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, Message>(sql)
                .bind(tenant)
                .bind(session)
                .bind(after)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |m| m.seq.to_string()))
    }
}
