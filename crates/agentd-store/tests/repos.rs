//! The repositories against real databases, SQLite and PostgreSQL alike.
//!
//! Every repository function holds SQL for two dialects, and tenant
//! isolation is enforced in that SQL and nowhere else, so each case below
//! runs once per backend (`<case>::sqlite`, `<case>::postgres`) on a fresh,
//! migrated store of its own.

use std::collections::HashSet;
use std::str::FromStr;

#[macro_use]
mod common;

use agentd_store::testing::{Backend, TestStore};
use agentd_store::{
    ApiKey, DatabaseTarget, MessageRole, NewApiKey, NewAuditEntry, NewMessage, NewSession, NewUser, Role, Session,
    StoreError, Tenant, TenantId, UserId,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

// ---- fixtures -------------------------------------------------------------

async fn tenant(store: &TestStore, name: &str) -> anyhow::Result<Tenant> {
    Ok(store.tenants().create(name).await?)
}

fn new_user(tenant: TenantId, email: &str) -> NewUser {
    NewUser {
        tenant_id: tenant,
        email: email.to_string(),
        display_name: Some(format!("User {email}")),
        role: Role::Member,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${email}"),
    }
}

fn new_key(tenant: TenantId, hash: &str) -> NewApiKey {
    NewApiKey {
        tenant_id: tenant,
        user_id: None,
        name: format!("key {hash}"),
        prefix: "agk_1234".to_string(),
        key_hash: hash.to_string(),
        role: Role::Admin,
        expires_at: None,
    }
}

fn new_session(tenant: TenantId, owner: Uuid) -> NewSession {
    NewSession { tenant_id: tenant, owner_id: owner, title: Some("a chat".to_string()), metadata: json!({}) }
}

fn text(content: &str) -> NewMessage {
    NewMessage { role: MessageRole::User, content: content.to_string(), metadata: json!({}) }
}

fn audit(tenant: Option<TenantId>, action: &str) -> NewAuditEntry {
    NewAuditEntry { tenant_id: tenant, action: action.to_string(), ..Default::default() }
}

/// A fixed instant with whole microseconds, which both backends store exactly.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 123_456_000).unwrap()
}

/// Counts rows straight from the database, past the repositories, to see
/// what they left behind.
async fn count_rows(store: &TestStore, sql: &'static str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    Ok(match &store.target {
        DatabaseTarget::Sqlite { path } => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
            sqlx::query_scalar(sql).fetch_one(&mut conn).await?
        }
        DatabaseTarget::Postgres { url, schema } => {
            let schema = schema.as_deref().unwrap_or("public");
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?.options([("search_path", schema)]);
            let mut conn = sqlx::PgConnection::connect_with(&options).await?;
            sqlx::query_scalar(sql).fetch_one(&mut conn).await?
        }
    })
}

// ---- migrations and connection ------------------------------------------

on_both_backends!(migrate_twice_is_a_no_op, |store| {
    let acme = tenant(store, "acme").await?;
    store.migrate().await?;
    store.migrate().await?;
    assert_eq!(store.tenants().count().await?, 1, "data survives re-migration");
    assert_eq!(store.tenants().get(acme.id).await?, acme);
    Ok(())
});

on_both_backends!(closed_store_is_unavailable, |store| {
    store.ping().await?;
    store.close().await;
    let err = store.ping().await.expect_err("ping after close");
    assert!(err.is_unavailable(), "{err:?} should read as unavailable");
    let err = store.tenants().count().await.expect_err("query after close");
    assert!(err.is_unavailable(), "{err:?} should read as unavailable");
    Ok(())
});

// ---- tenants --------------------------------------------------------------

on_both_backends!(tenants_create_and_look_up, |store| {
    assert_eq!(store.tenants().count().await?, 0);
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    assert_ne!(acme.id, other.id);
    assert_eq!(store.tenants().count().await?, 2);

    assert_eq!(store.tenants().get(acme.id).await?, acme);
    assert_eq!(store.tenants().by_name("acme").await?, Some(acme));
    assert_eq!(store.tenants().by_name("ACME").await?, None);
    assert_eq!(store.tenants().by_name("nobody").await?, None);
    assert_err!(store.tenants().get(TenantId::new()).await, StoreError::NotFound("tenant"));
    Ok(())
});

on_both_backends!(tenants_duplicate_name_conflicts, |store| {
    let acme = tenant(store, "acme").await?;
    assert_err!(store.tenants().create("acme").await, StoreError::Conflict(_));
    assert_eq!(store.tenants().count().await?, 1);
    assert_eq!(store.tenants().by_name("acme").await?, Some(acme));
    Ok(())
});

on_both_backends!(tenants_get_or_create, |store| {
    let (created, was_created) = store.tenants().get_or_create("acme").await?;
    assert!(was_created);
    assert_eq!(created.name, "acme");
    let (again, was_created) = store.tenants().get_or_create("acme").await?;
    assert!(!was_created);
    assert_eq!(again, created);
    assert_eq!(store.tenants().count().await?, 1);
    Ok(())
});

on_both_backends!(tenants_get_or_create_is_safe_under_concurrency, |store| {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.store.clone();
            tokio::spawn(async move { store.tenants().get_or_create("raced").await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await??);
    }
    let created = results.iter().filter(|(_, created)| *created).count();
    assert_eq!(created, 1, "exactly one caller creates the tenant");
    let ids: HashSet<_> = results.iter().map(|(t, _)| t.id).collect();
    assert_eq!(ids.len(), 1, "every caller gets the same tenant");
    assert_eq!(store.tenants().count().await?, 1);
    Ok(())
});

// ---- users ----------------------------------------------------------------

on_both_backends!(users_create_normalises_email_and_round_trips, |store| {
    let acme = tenant(store, "acme").await?;
    let mut new = new_user(acme.id, "  Ann@Example.ORG ");
    new.role = Role::Admin;
    new.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string();
    let ann = store.users().create(new).await?;
    assert_eq!(ann.email, "ann@example.org");
    assert_eq!(ann.tenant_id, acme.id);
    assert_eq!(ann.role, Role::Admin);

    let read = store.users().get(acme.id, ann.id).await?;
    assert_eq!(read, ann);
    assert_eq!(read.password_hash, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");

    let mut no_name = new_user(acme.id, "bob@example.org");
    no_name.display_name = None;
    let bob = store.users().create(no_name).await?;
    assert_eq!(store.users().get(acme.id, bob.id).await?.display_name, None);

    assert_eq!(store.users().find_by_email(" ANN@example.org").await?, vec![ann]);
    assert!(store.users().find_by_email("nobody@example.org").await?.is_empty());
    Ok(())
});

on_both_backends!(users_email_is_unique_per_tenant_only, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let first = store.users().create(new_user(acme.id, "ann@x.org")).await?;
    assert_err!(store.users().create(new_user(acme.id, "ANN@x.org ")).await, StoreError::Conflict(_));
    let second = store.users().create(new_user(other.id, "Ann@X.org")).await?;
    assert_ne!(first.id, second.id);

    let found = store.users().find_by_email("ann@x.org").await?;
    assert_eq!(found, vec![first, second], "both tenants, oldest first");
    Ok(())
});

on_both_backends!(users_are_isolated_by_tenant, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let ann = store.users().create(new_user(acme.id, "ann@x.org")).await?;
    assert_err!(store.users().get(other.id, ann.id).await, StoreError::NotFound("user"));
    assert_err!(store.users().get(acme.id, UserId::new()).await, StoreError::NotFound("user"));
    let page = store.users().list(other.id, 50, None).await?;
    assert!(page.items.is_empty());
    assert_eq!(page.next_cursor, None);
    Ok(())
});

on_both_backends!(users_list_paginates_newest_first, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let mut created = Vec::new();
    for i in 0..5 {
        let user = new_user(acme.id, &format!("user{i}@x.org"));
        created.push(store.users().create(user).await?.id);
        // Interleave another tenant's users, which must never show up.
        store.users().create(new_user(other.id, &format!("user{i}@x.org"))).await?;
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.users().list(acme.id, 2, cursor.as_deref()).await?;
        sizes.push(page.items.len());
        assert!(page.items.iter().all(|u| u.tenant_id == acme.id));
        seen.extend(page.items.iter().map(|u| u.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not terminate");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, created, "every user once, newest first");

    // A page size of zero still makes progress.
    let one = store.users().list(acme.id, 0, None).await?;
    assert_eq!(one.items.len(), 1);
    assert!(one.next_cursor.is_some());

    assert_err!(store.users().list(acme.id, 2, Some("not-a-cursor")).await, StoreError::InvalidCursor);
    Ok(())
});

// ---- API keys -------------------------------------------------------------

on_both_backends!(api_keys_create_and_look_up, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let ann = store.users().create(new_user(acme.id, "ann@x.org")).await?;
    let mut new = new_key(acme.id, "hash-1");
    new.user_id = Some(ann.id);
    new.role = Role::Member;
    new.expires_at = Some(at(3600));
    let key = store.api_keys().create(new).await?;
    assert_eq!(key.user_id, Some(ann.id));
    assert_eq!(key.revoked_at, None);

    assert_eq!(store.api_keys().find_by_hash("hash-1").await?, Some(key.clone()));
    assert_eq!(store.api_keys().find_by_hash("hash-2").await?, None);
    assert_eq!(store.api_keys().get(acme.id, key.id).await?, key);
    assert_eq!(store.api_keys().hash_of(acme.id, key.id).await?, "hash-1");

    assert_err!(store.api_keys().get(other.id, key.id).await, StoreError::NotFound("api key"));
    assert_err!(store.api_keys().hash_of(other.id, key.id).await, StoreError::NotFound("api key"));
    Ok(())
});

on_both_backends!(api_keys_duplicate_hash_conflicts, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    store.api_keys().create(new_key(acme.id, "same")).await?;
    assert_err!(store.api_keys().create(new_key(acme.id, "same")).await, StoreError::Conflict(_));
    // Hashes are looked up without a tenant, so they are unique across all.
    assert_err!(store.api_keys().create(new_key(other.id, "same")).await, StoreError::Conflict(_));
    assert_eq!(store.api_keys().list(other.id, 10, None).await?.items, vec![]);
    Ok(())
});

on_both_backends!(api_keys_list_paginates_per_tenant, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(store.api_keys().create(new_key(acme.id, &format!("a{i}"))).await?);
        store.api_keys().create(new_key(other.id, &format!("o{i}"))).await?;
    }
    store.api_keys().revoke(acme.id, created[1].id, at(0)).await?;
    created[1].revoked_at = Some(at(0));
    created.reverse();

    let first = store.api_keys().list(acme.id, 2, None).await?;
    assert_eq!(first.items, created[..2]);
    let cursor = first.next_cursor.expect("a second page");
    let second = store.api_keys().list(acme.id, 2, Some(&cursor)).await?;
    assert_eq!(second.items, created[2..]);
    assert_eq!(second.next_cursor, None);

    assert_err!(store.api_keys().list(acme.id, 2, Some("42")).await, StoreError::InvalidCursor);
    Ok(())
});

on_both_backends!(api_keys_revoke, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let key = store.api_keys().create(new_key(acme.id, "hash-1")).await?;
    let bystander = store.api_keys().create(new_key(acme.id, "hash-2")).await?;
    assert!(key.is_active(Utc::now()));

    let revoked = store.api_keys().revoke(acme.id, key.id, at(0)).await?;
    assert_eq!(revoked.revoked_at, Some(at(0)));
    assert!(!revoked.is_active(at(-10)));

    let again = store.api_keys().revoke(acme.id, key.id, at(60)).await?;
    assert_eq!(again.revoked_at, Some(at(0)), "the first revocation stands");
    assert_eq!(store.api_keys().get(acme.id, key.id).await?.revoked_at, Some(at(0)));
    let found = store.api_keys().find_by_hash("hash-1").await?.expect("still stored");
    assert_eq!(found.revoked_at, Some(at(0)));

    assert_err!(store.api_keys().revoke(other.id, bystander.id, at(0)).await, StoreError::NotFound("api key"));
    let bystander = store.api_keys().get(acme.id, bystander.id).await?;
    assert_eq!(bystander.revoked_at, None, "another tenant cannot revoke it");
    assert!(bystander.is_active(Utc::now()));

    assert_err!(
        store.api_keys().revoke(acme.id, agentd_store::ApiKeyId::new(), at(0)).await,
        StoreError::NotFound("api key")
    );
    Ok(())
});

on_both_backends!(api_keys_expiry, |store| {
    let acme = tenant(store, "acme").await?;
    let now = Utc::now();
    let mut expired = new_key(acme.id, "expired");
    expired.expires_at = Some(now - Duration::seconds(1));
    let mut valid = new_key(acme.id, "valid");
    valid.expires_at = Some(now + Duration::hours(1));
    store.api_keys().create(expired).await?;
    store.api_keys().create(valid).await?;

    let read =
        |hash: &'static str| async move { anyhow::Ok(store.api_keys().find_by_hash(hash).await?.expect("stored")) };
    let expired: ApiKey = read("expired").await?;
    let valid: ApiKey = read("valid").await?;
    assert!(!expired.is_active(now));
    assert!(valid.is_active(now));
    assert!(!valid.is_active(now + Duration::hours(2)));
    Ok(())
});

// ---- sessions and messages ------------------------------------------------

on_both_backends!(sessions_round_trip_with_owner_filter, |store| {
    let acme = tenant(store, "acme").await?;
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let metadata = json!({"model": "m-1", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": true, "none": null}});
    let mut new = new_session(acme.id, ann);
    new.metadata = metadata.clone();
    let session = store.sessions().create(new).await?;
    assert_eq!(session.metadata.0, metadata);

    let read = store.sessions().get(acme.id, None, session.id).await?;
    assert_eq!(read, session);
    assert_eq!(read.metadata.0, metadata);
    assert_eq!(store.sessions().get(acme.id, Some(ann), session.id).await?, session);
    assert_err!(store.sessions().get(acme.id, Some(bob), session.id).await, StoreError::NotFound("session"));

    let mut untitled = new_session(acme.id, bob);
    untitled.title = None;
    let untitled = store.sessions().create(untitled).await?;
    assert_eq!(store.sessions().get(acme.id, None, untitled.id).await?.title, None);

    let ids = |sessions: Vec<Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = store.sessions().list(acme.id, None, 50, None).await?;
    assert_eq!(ids(all.items), [untitled.id, session.id], "newest first");
    let anns = store.sessions().list(acme.id, Some(ann), 50, None).await?;
    assert_eq!(ids(anns.items), [session.id]);
    let nobody = store.sessions().list(acme.id, Some(Uuid::now_v7()), 50, None).await?;
    assert!(nobody.items.is_empty());
    Ok(())
});

on_both_backends!(sessions_list_paginates, |store| {
    let acme = tenant(store, "acme").await?;
    let owner = Uuid::now_v7();
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(store.sessions().create(new_session(acme.id, owner)).await?.id);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [2, 2, 1] {
        let page = store.sessions().list(acme.id, Some(owner), 2, cursor.as_deref()).await?;
        assert_eq!(page.items.len(), expected);
        seen.extend(page.items.iter().map(|s| s.id));
        cursor = page.next_cursor;
    }
    assert_eq!(cursor, None, "the last page has no cursor");
    assert_eq!(seen, created);
    assert_err!(store.sessions().list(acme.id, None, 2, Some("garbage")).await, StoreError::InvalidCursor);
    Ok(())
});

on_both_backends!(sessions_are_isolated_by_tenant, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let owner = Uuid::now_v7();
    let theirs = store.sessions().create(new_session(acme.id, owner)).await?;
    store.sessions().append_message(acme.id, None, theirs.id, text("secret")).await?;
    let ours = store.sessions().create(new_session(other.id, owner)).await?;

    let sessions = store.sessions();
    assert_err!(sessions.get(other.id, None, theirs.id).await, StoreError::NotFound("session"));
    assert_err!(sessions.get(other.id, Some(owner), theirs.id).await, StoreError::NotFound("session"));
    assert_err!(
        sessions.append_message(other.id, None, theirs.id, text("intrusion")).await,
        StoreError::NotFound("session")
    );
    assert_err!(sessions.messages(other.id, None, theirs.id, 50, None).await, StoreError::NotFound("session"));
    assert_err!(sessions.delete(other.id, None, theirs.id).await, StoreError::NotFound("session"));
    for owner in [None, Some(owner)] {
        let listed = sessions.list(other.id, owner, 50, None).await?;
        let ids: Vec<_> = listed.items.iter().map(|s| s.id).collect();
        assert_eq!(ids, [ours.id], "only the tenant's own sessions");
    }

    // Nothing above touched tenant A's session.
    let messages = sessions.messages(acme.id, None, theirs.id, 50, None).await?;
    let contents: Vec<_> = messages.items.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["secret"]);
    Ok(())
});

on_both_backends!(sessions_delete_cascades_to_messages, |store| {
    let acme = tenant(store, "acme").await?;
    let (ann, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let doomed = store.sessions().create(new_session(acme.id, ann)).await?;
    let kept = store.sessions().create(new_session(acme.id, ann)).await?;
    for session in [doomed.id, doomed.id, kept.id] {
        store.sessions().append_message(acme.id, None, session, text("hi")).await?;
    }

    assert_err!(store.sessions().delete(acme.id, Some(bob), doomed.id).await, StoreError::NotFound("session"));
    store.sessions().get(acme.id, None, doomed.id).await?;

    store.sessions().delete(acme.id, Some(ann), doomed.id).await?;
    assert_err!(store.sessions().get(acme.id, None, doomed.id).await, StoreError::NotFound("session"));
    assert_err!(store.sessions().messages(acme.id, None, doomed.id, 50, None).await, StoreError::NotFound("session"));
    assert_err!(store.sessions().delete(acme.id, None, doomed.id).await, StoreError::NotFound("session"));
    assert_eq!(
        count_rows(store, "SELECT COUNT(*) FROM messages").await?,
        1,
        "the deleted session's messages are gone, the other's remain"
    );
    let kept_messages = store.sessions().messages(acme.id, None, kept.id, 50, None).await?;
    assert_eq!(kept_messages.items.len(), 1);
    Ok(())
});

on_both_backends!(append_message_numbers_from_one, |store| {
    let acme = tenant(store, "acme").await?;
    let owner = Uuid::now_v7();
    let session = store.sessions().create(new_session(acme.id, owner)).await?;
    let other = store.sessions().create(new_session(acme.id, owner)).await?;

    let metadata = json!({"tool_call": {"name": "search", "args": [1, 2]}});
    let first = store
        .sessions()
        .append_message(
            acme.id,
            Some(owner),
            session.id,
            NewMessage { role: MessageRole::Assistant, content: "héllo ✓".into(), metadata: metadata.clone() },
        )
        .await?;
    assert_eq!(first.seq, 1);
    assert_eq!(first.session_id, session.id);
    assert_eq!(first.role, MessageRole::Assistant);
    assert_eq!(first.content, "héllo ✓");
    assert_eq!(first.metadata.0, metadata);
    for expected in [2, 3] {
        let message = store.sessions().append_message(acme.id, None, session.id, text("more")).await?;
        assert_eq!(message.seq, expected);
    }
    let elsewhere = store.sessions().append_message(acme.id, None, other.id, text("x")).await?;
    assert_eq!(elsewhere.seq, 1, "numbering is per session");

    assert_err!(
        store.sessions().append_message(acme.id, Some(Uuid::now_v7()), session.id, text("no")).await,
        StoreError::NotFound("session")
    );

    let page = store.sessions().messages(acme.id, Some(owner), session.id, 50, None).await?;
    assert_eq!(page.items.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(page.items[0], first);
    assert_eq!(page.next_cursor, None);

    let touched = store.sessions().get(acme.id, None, session.id).await?;
    assert!(touched.updated_at >= first.created_at, "appending touches the session");
    assert!(touched.updated_at > session.updated_at);
    Ok(())
});

on_both_backends!(messages_paginate_in_order, |store| {
    let acme = tenant(store, "acme").await?;
    let owner = Uuid::now_v7();
    let session = store.sessions().create(new_session(acme.id, owner)).await?;
    for i in 1..=5 {
        store.sessions().append_message(acme.id, None, session.id, text(&format!("m{i}"))).await?;
    }
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.sessions().messages(acme.id, None, session.id, 2, cursor.as_deref()).await?;
        pages.push(page.items.iter().map(|m| m.content.clone()).collect::<Vec<_>>());
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not terminate");
    }
    assert_eq!(pages, [vec!["m1", "m2"], vec!["m3", "m4"], vec!["m5"]]);
    assert_err!(store.sessions().messages(acme.id, None, session.id, 2, Some("two")).await, StoreError::InvalidCursor);
    assert_err!(
        store.sessions().messages(acme.id, Some(Uuid::now_v7()), session.id, 2, None).await,
        StoreError::NotFound("session")
    );
    Ok(())
});

on_both_backends!(concurrent_appends_get_consecutive_seqs, |store| {
    let acme = tenant(store, "acme").await?;
    let session = store.sessions().create(new_session(acme.id, Uuid::now_v7())).await?;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.store.clone();
            tokio::spawn(async move {
                store.sessions().append_message(acme.id, None, session.id, text(&format!("m{i}"))).await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await??.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>(), "no gaps, no duplicates");

    let stored = store.sessions().messages(acme.id, None, session.id, 50, None).await?;
    let stored: Vec<i64> = stored.items.iter().map(|m| m.seq).collect();
    assert_eq!(stored, (1..=20).collect::<Vec<i64>>());
    Ok(())
});

// ---- audit log ------------------------------------------------------------

on_both_backends!(audit_lists_only_the_tenants_entries, |store| {
    let acme = tenant(store, "acme").await?;
    let other = tenant(store, "other").await?;
    let actor = Uuid::now_v7();
    let first = store
        .audit()
        .record(NewAuditEntry {
            tenant_id: Some(acme.id),
            actor_id: Some(actor),
            action: "api_key.create".into(),
            target: Some("key-1".into()),
            request_id: Some("req-1".into()),
            details: json!({"name": "ci"}),
        })
        .await?;
    let login = store.audit().record(audit(Some(acme.id), "auth.login")).await?;
    let second = store.audit().record(audit(Some(acme.id), "api_key.create")).await?;
    store.audit().record(audit(Some(other.id), "api_key.create")).await?;
    let anonymous = store.audit().record(audit(None, "auth.login_failed")).await?;
    assert_eq!(anonymous.tenant_id, None);
    assert_eq!(login.details.0, json!({}), "missing details are stored as {{}}");

    let all = store.audit().list(acme.id, None, 50, None).await?;
    assert_eq!(all.items, vec![second.clone(), login, first.clone()], "newest first");
    assert_eq!(all.next_cursor, None);

    let creates = store.audit().list(acme.id, Some("api_key.create"), 50, None).await?;
    assert_eq!(creates.items, vec![second, first]);
    let none = store.audit().list(acme.id, Some("auth.login_failed"), 50, None).await?;
    assert!(none.items.is_empty(), "tenant-less entries belong to no tenant");

    let others = store.audit().list(other.id, None, 50, None).await?;
    assert_eq!(others.items.len(), 1);
    assert_eq!(others.items[0].tenant_id, Some(other.id));
    Ok(())
});

on_both_backends!(audit_list_paginates, |store| {
    let acme = tenant(store, "acme").await?;
    let mut created = Vec::new();
    for i in 0..5 {
        let action = if i % 2 == 0 { "even" } else { "odd" };
        created.push(store.audit().record(audit(Some(acme.id), action)).await?.id);
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [2, 2, 1] {
        let page = store.audit().list(acme.id, None, 2, cursor.as_deref()).await?;
        assert_eq!(page.items.len(), expected);
        seen.extend(page.items.iter().map(|e| e.id));
        cursor = page.next_cursor;
    }
    assert_eq!(cursor, None);
    assert_eq!(seen, created);

    // The action filter and the cursor combine.
    let evens = store.audit().list(acme.id, Some("even"), 2, None).await?;
    assert_eq!(evens.items.len(), 2);
    let cursor = evens.next_cursor.expect("a third even entry");
    let rest = store.audit().list(acme.id, Some("even"), 2, Some(&cursor)).await?;
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].id, created[4]);
    assert_eq!(rest.next_cursor, None);

    assert_err!(store.audit().list(acme.id, None, 2, Some("garbage")).await, StoreError::InvalidCursor);
    // An empty cursor is no cursor: the first page.
    let first = store.audit().list(acme.id, None, 2, None).await?;
    assert_eq!(store.audit().list(acme.id, None, 2, Some("")).await?.items, first.items);
    Ok(())
});
