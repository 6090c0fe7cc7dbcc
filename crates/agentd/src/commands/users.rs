//! `agentd users create|list`: users from the command line. Passwords come
//! from the environment or standard input, never from arguments (which
//! other users of the machine can read in the process list).

use std::io::BufRead;

use serde_json::json;

use agentd_server::auth::password::hash_password_async;
use agentd_server::routes::users::validate_new_user;
use agentd_store::{NewUser, Role};

use crate::config::Config;
use crate::wiring;

/// The new user's password: the first line of standard input with
/// `--password-stdin`, else `AGENTD_USER_PASSWORD`.
pub fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    std::env::var("AGENTD_USER_PASSWORD").map_err(|_| {
        anyhow::anyhow!("give the password in AGENTD_USER_PASSWORD or on standard input with --password-stdin")
    })
}

/// Creates the tenant if needed and the user in it.
pub async fn create(
    config: &Config,
    tenant: &str,
    email: &str,
    role: Role,
    display_name: Option<String>,
    password: String,
) -> anyhow::Result<()> {
    validate_new_user(email, &password).map_err(anyhow::Error::msg)?;
    let store = wiring::store(config).await?;
    let (tenant, _) = store.tenants().get_or_create(tenant.trim()).await?;
    let password_hash = hash_password_async(password).await.map_err(anyhow::Error::msg)?;
    let user = store
        .users()
        .create(NewUser { tenant_id: tenant.id, email: email.to_string(), display_name, role, password_hash })
        .await?;
    wiring::audit_cli_action(&store, tenant.id, "user.create", user.id.to_string(), json!({ "email": user.email }))
        .await?;
    eprintln!("created {} user {} in tenant {:?}", user.role, user.email, tenant.name);
    println!("{}", user.id);
    Ok(())
}

/// Lists a tenant's users, one a line, newest first.
pub async fn list(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let store = wiring::store(config).await?;
    let tenant = wiring::existing_tenant(&store, tenant).await?;
    let (store, tenant) = (&store, tenant.id);
    wiring::for_each_item(
        |cursor| async move { store.users().list(tenant, 200, cursor.as_deref()).await },
        |user| println!("{}\t{}\t{}\t{}", user.id, user.email, user.role, user.display_name.as_deref().unwrap_or("")),
    )
    .await
}
