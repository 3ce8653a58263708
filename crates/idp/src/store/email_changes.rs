//! Contact email changes waiting for the code sent to the new address.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::email_changes;
use super::{DbConnection, StoreResult};

/// A pending change: the person keeps signing in with the old address until it is confirmed.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_changes)]
pub struct EmailChangeRecord {
    pub user_id: String,
    pub new_email: String,
    /// Login-name form of the new address (see `users::email_key`).
    pub new_email_key: String,
    /// Who started it: a staff member's user id, or `cli`.
    pub requested_by: String,
    pub reason: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Records `change`, replacing any earlier pending change of the same person. A new address
/// already pending for someone else is [`super::StoreError::Conflict`].
pub fn replace(conn: &mut DbConnection, change: &EmailChangeRecord) -> StoreResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::delete(email_changes::table.find(&change.user_id)).execute(conn)?;
        diesel::insert_into(email_changes::table)
            .values(change)
            .execute(conn)?;
        Ok(())
    })
}

/// The person's pending change, if any (expired or not).
pub fn of_user(conn: &mut DbConnection, user_id: &str) -> StoreResult<Option<EmailChangeRecord>> {
    Ok(email_changes::table
        .find(user_id)
        .select(EmailChangeRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// The pending change towards this new address, if any.
pub fn to_address(
    conn: &mut DbConnection,
    new_email_key: &str,
) -> StoreResult<Option<EmailChangeRecord>> {
    Ok(email_changes::table
        .filter(email_changes::new_email_key.eq(new_email_key))
        .select(EmailChangeRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// Forgets the person's pending change; whether there was one.
pub fn remove(conn: &mut DbConnection, user_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(email_changes::table.find(user_id)).execute(conn)? > 0)
}

/// Removes changes that expired before `before`; how many.
pub fn purge_expired(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(email_changes::table.filter(email_changes::expires_at.lt(before)))
            .execute(conn)?,
    )
}
