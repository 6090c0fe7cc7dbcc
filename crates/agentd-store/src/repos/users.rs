//! Users: people who log in with email and password. Emails are unique per
//! tenant and kept lower-case, so `Ann@X.org` and `ann@x.org` are one user.

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};
use crate::records::{NewUser, Page, User};
use crate::repos::{id_cursor, page_limit, stored_time};

/// Repository of users.
pub struct Users<'a> {
    pub(crate) store: &'a Store,
}

/// The columns a [`User`] is read from.
macro_rules! columns {
    () => {
        "id, tenant_id, email, display_name, role, created_at, password_hash"
    };
}

/// The form an email is stored and compared in.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Users<'_> {
    /// Creates a user; an email already used in the tenant is a conflict.
    pub async fn create(&self, new: NewUser) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new(),
            tenant_id: new.tenant_id,
            email: normalise_email(&new.email),
            display_name: new.display_name,
            role: new.role,
            created_at: stored_time(self.store.now()),
            password_hash: new.password_hash,
        };
        let sql = concat!("INSERT INTO users (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(user.id)
                .bind(user.tenant_id)
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(user.role.as_str())
                .bind(user.created_at)
                .bind(&user.password_hash)
                .execute(pool)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, format!("a user with email {:?} already exists", user.email)))?;
        });
        Ok(user)
    }

    /// The user with this id in this tenant.
    pub async fn get(&self, tenant: TenantId, id: UserId) -> Result<User, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM users WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, User>(sql)
                .bind(tenant)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("user"))
        })
    }

    /// Every user with this email, in any tenant (login without a tenant
    /// name needs them all), oldest first.
    pub async fn find_by_email(&self, email: &str) -> Result<Vec<User>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM users WHERE email = $1 ORDER BY id LIMIT 50");
        on_pool!(self.store, pool => {
            Ok(sqlx::query_as::<_, User>(sql).bind(normalise_email(email)).fetch_all(pool).await?)
        })
    }

    /// A page of the tenant's users, newest first.
    pub async fn list(&self, tenant: TenantId, limit: u32, cursor: Option<&str>) -> Result<Page<User>, StoreError> {
        let (limit, fetch) = page_limit(limit);
        let cursor = id_cursor(cursor)?;
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ",
            "ORDER BY id DESC LIMIT $3"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, User>(sql).bind(tenant).bind(cursor).bind(fetch).fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, limit, |u| u.id.to_string()))
    }
}
