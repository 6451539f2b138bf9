//! The audit trail: one appended row per action, never changed.

use diesel::prelude::*;

use super::models::NewAuditEvent;
use super::schema::audit_events;
use super::{now_ms, DbConnection, StoreResult};

/// What an audit event records besides its action name.
pub struct AuditEntry<'a> {
    pub project_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: Option<i64>,
    pub details: serde_json::Value,
}

/// Appends one audit event. Call it inside the transaction of the change it records, so the
/// event exists exactly when the change does.
pub fn record(conn: &mut DbConnection, entry: AuditEntry<'_>) -> StoreResult<()> {
    let details = entry.details.to_string();
    let row = NewAuditEvent {
        project_id: entry.project_id,
        actor_id: entry.actor_id,
        action: entry.action,
        object_type: entry.object_type,
        object_id: entry.object_id,
        details: &details,
        created_at: now_ms(),
    };
    diesel::insert_into(audit_events::table).values(&row).execute(conn)?;
    Ok(())
}
