//! Writing audit entries from handlers.
//!
//! An audit write happens after the action it records has succeeded. If the
//! write itself fails the action stands (it cannot be undone from here), so
//! the failure is logged at error level for operators to see.

use serde_json::Value;

use agentd_store::{NewAuditEntry, TenantId};

use crate::auth::Caller;
use crate::observe::ReqId;
use crate::state::AppState;

/// What to record: the action, the thing acted on, and any details.
pub struct Event<'a> {
    pub action: &'a str,
    pub target: Option<String>,
    pub details: Value,
}

/// Records an action by an authenticated caller.
pub async fn by_caller(state: &AppState, caller: &Caller, request_id: &ReqId, event: Event<'_>) {
    write(state, Some(caller.tenant_id), Some(caller.actor_id()), request_id, event).await;
}

/// Records an action by someone not (yet) authenticated, e.g. a login.
pub async fn write(
    state: &AppState,
    tenant_id: Option<TenantId>,
    actor_id: Option<uuid::Uuid>,
    request_id: &ReqId,
    event: Event<'_>,
) {
    let entry = NewAuditEntry {
        tenant_id,
        actor_id,
        action: event.action.to_string(),
        target: event.target,
        request_id: request_id.0.clone(),
        details: event.details,
    };
    if let Err(e) = state.store.audit().record(entry).await {
        tracing::error!(error = %e, action = event.action, "audit entry could not be written");
    }
}
