//! The audit log: append-only rows (the database refuses updates and deletes).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_events;
use super::{DbConnection, StoreResult};

/// One event to append. Never carries a token, code, password or secret: token-related events
/// name a `jti` or a keyed hash.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific fields as a JSON object.
    pub detail: String,
}

/// A stored event with its position in the log.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

/// Appends an event and returns its sequence number.
pub fn append(conn: &mut DbConnection, event: &NewAuditEvent) -> StoreResult<i64> {
    Ok(diesel::insert_into(audit_events::table)
        .values(event)
        .returning(audit_events::seq)
        .get_result(conn)?)
}

/// The latest `limit` events, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// A subject's events, newest first.
pub fn for_subject(
    conn: &mut DbConnection,
    subject: &str,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::subject.eq(subject))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// Number of events.
pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(audit_events::table.count().get_result(conn)?)
}

/// A subject's events of the given types, newest first.
pub fn for_subject_of_types(
    conn: &mut DbConnection,
    subject: &str,
    types: &[&str],
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::subject.eq(subject))
        .filter(audit_events::event_type.eq_any(types))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}
