//! The audit trail: one appended row per action, never changed.

use super::sql::{Param, Prepared};
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
    let params = [
        Param::NullableInt(entry.project_id),
        Param::NullableInt(entry.actor_id),
        Param::Text(entry.action),
        Param::Text(entry.object_type),
        Param::NullableInt(entry.object_id),
        Param::Text(&details),
        Param::Int(now_ms()),
    ];
    Prepared::new(
        "INSERT INTO audit_events (project_id, actor_id, action, object_type, object_id, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &params,
    )
    .execute(conn)?;
    Ok(())
}
