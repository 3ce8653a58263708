//! Single sign-on sessions shared by every portal.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{session_clients, sso_sessions};
use super::{DbConnection, StoreResult};

/// An SSO session as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sso_sessions, treat_none_as_default_value = false)]
pub struct SsoSessionRecord {
    /// Hash of the session cookie value.
    pub id: String,
    /// Public session id (`sid` claim), unrelated to the cookie.
    pub sid: String,
    pub user_id: String,
    pub auth_time: NaiveDateTime,
    /// Space-separated RFC 8176 method values.
    pub amr: String,
    pub acr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// Stores a new session.
pub fn insert(conn: &mut DbConnection, session: &SsoSessionRecord) -> StoreResult<()> {
    super::on_backend!(conn, c => diesel::insert_into(sso_sessions::table)
        .values(session)
        .execute(c))?;
    Ok(())
}

/// The session if it has neither ended nor expired at `now`.
pub fn find_live(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<SsoSessionRecord>> {
    Ok(sso_sessions::table
        .find(id)
        .filter(sso_sessions::ended_at.is_null())
        .filter(sso_sessions::expires_at.gt(now))
        .select(SsoSessionRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// The session with this public `sid`, live or not.
pub fn find_by_sid(conn: &mut DbConnection, sid: &str) -> StoreResult<Option<SsoSessionRecord>> {
    Ok(sso_sessions::table
        .filter(sso_sessions::sid.eq(sid))
        .select(SsoSessionRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// Records activity on a live session.
pub fn touch(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(
        sso_sessions::table
            .find(id)
            .filter(sso_sessions::ended_at.is_null()),
    )
    .set(sso_sessions::last_seen_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Ends one session; returns whether it was live.
pub fn end(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(
        sso_sessions::table
            .find(id)
            .filter(sso_sessions::ended_at.is_null()),
    )
    .set(sso_sessions::ended_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Ends every session of a person that has not ended, expired ones included (their portals
/// may still hold sessions of their own); returns exactly the sessions it ended, as they are
/// now (one statement, so a session opened meanwhile is either ended and returned or left
/// alone).
pub fn end_all_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<Vec<SsoSessionRecord>> {
    Ok(diesel::update(
        sso_sessions::table
            .filter(sso_sessions::user_id.eq(user_id))
            .filter(sso_sessions::ended_at.is_null()),
    )
    .set(sso_sessions::ended_at.eq(Some(now)))
    .returning(sso_sessions::all_columns)
    .get_results(conn)?)
}

/// A person's live sessions at `now`, most recent first.
pub fn live_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<Vec<SsoSessionRecord>> {
    Ok(sso_sessions::table
        .filter(sso_sessions::user_id.eq(user_id))
        .filter(sso_sessions::ended_at.is_null())
        .filter(sso_sessions::expires_at.gt(now))
        .order(sso_sessions::created_at.desc())
        .select(SsoSessionRecord::as_select())
        .load(conn)?)
}

/// Records that the session `sid` signed in to `client_id` (once per pair).
pub fn add_client(
    conn: &mut DbConnection,
    sid: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    // ON CONFLICT DO NOTHING rather than catching the unique violation: inside a PostgreSQL
    // transaction a failed statement aborts the whole transaction.
    // Per backend: the multi-backend connection has no ON CONFLICT.
    let row = (
        session_clients::sid.eq(sid),
        session_clients::client_id.eq(client_id),
        session_clients::created_at.eq(now),
    );
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(session_clients::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(session_clients::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}

/// The clients the session `sid` signed in to, by id.
pub fn clients_of(conn: &mut DbConnection, sid: &str) -> StoreResult<Vec<String>> {
    Ok(session_clients::table
        .filter(session_clients::sid.eq(sid))
        .order(session_clients::client_id.asc())
        .select(session_clients::client_id)
        .load(conn)?)
}
