//! Six-digit codes sent by email (sign-in, first login / reset, email change), stored only as
//! keyed hashes. A new code for the same purpose supersedes the previous one.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::one_time_codes;
use super::{DbConnection, StoreError, StoreResult};

/// A stored code.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = one_time_codes, treat_none_as_default_value = false)]
pub struct OneTimeCodeRecord {
    pub id: String,
    pub user_id: String,
    /// `login`, `reset`, `email_change`, ...
    pub purpose: String,
    /// Keyed hash of the code.
    pub code_hash: Vec<u8>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    pub superseded_at: Option<NaiveDateTime>,
}

/// Stores `code` and supersedes every earlier unused code of the same person and purpose, in
/// one transaction: a new code kills the previous one.
pub fn issue(conn: &mut DbConnection, code: &OneTimeCodeRecord) -> StoreResult<()> {
    crate::store::write_transaction(conn, |conn| {
        diesel::update(
            one_time_codes::table
                .filter(one_time_codes::user_id.eq(&code.user_id))
                .filter(one_time_codes::purpose.eq(&code.purpose))
                .filter(one_time_codes::consumed_at.is_null())
                .filter(one_time_codes::superseded_at.is_null()),
        )
        .set(one_time_codes::superseded_at.eq(Some(code.created_at)))
        .execute(conn)?;
        diesel::insert_into(one_time_codes::table)
            .values(code)
            .execute(conn)?;
        Ok::<_, StoreError>(())
    })
}

/// The most recent code of this person and purpose, whatever its state, so the caller can
/// tell "expired", "replaced by a newer one" and "used" apart.
pub fn latest(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
) -> StoreResult<Option<OneTimeCodeRecord>> {
    Ok(one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .order((one_time_codes::created_at.desc(), one_time_codes::id.desc()))
        .select(OneTimeCodeRecord::as_select())
        .first(conn)
        .optional()?)
}

/// The person's most recent codes of this purpose, newest first.
pub fn recent(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    limit: i64,
) -> StoreResult<Vec<OneTimeCodeRecord>> {
    Ok(one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .order((one_time_codes::created_at.desc(), one_time_codes::id.desc()))
        .limit(limit)
        .select(OneTimeCodeRecord::as_select())
        .load(conn)?)
}

/// When the person's codes of this purpose that were never used were issued since `since`
/// (resend limits: a code that signed someone in was not wasted).
pub fn unused_issued_since(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    since: NaiveDateTime,
) -> StoreResult<Vec<NaiveDateTime>> {
    Ok(one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .filter(one_time_codes::created_at.ge(since))
        .filter(one_time_codes::consumed_at.is_null())
        .select(one_time_codes::created_at)
        .load(conn)?)
}

/// The code with this id.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<OneTimeCodeRecord>> {
    Ok(one_time_codes::table
        .find(id)
        .select(OneTimeCodeRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// The code `$id` if it can still be tried at `$now`: not used, not superseded, not expired,
/// tries left.
macro_rules! usable {
    ($id:expr, $now:expr) => {
        one_time_codes::table
            .find($id)
            .filter(one_time_codes::consumed_at.is_null())
            .filter(one_time_codes::superseded_at.is_null())
            .filter(one_time_codes::expires_at.gt($now))
            .filter(one_time_codes::attempts.lt(one_time_codes::max_attempts))
    };
}

/// Counts one wrong try against a usable code and returns the tries made so far, or `None`
/// when the code was no longer usable. Atomic, so concurrent guesses cannot exceed the limit.
pub fn register_failure(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<i32>> {
    Ok(diesel::update(usable!(id, now))
        .set(one_time_codes::attempts.eq(one_time_codes::attempts + 1))
        .returning(one_time_codes::attempts)
        .get_result::<i32>(conn)
        .optional()?)
}

/// Marks a usable code as used; returns false if it was used, superseded, expired or out of
/// tries in the meantime (so a code works once even when submitted twice at the same time).
pub fn consume(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(usable!(id, now))
        .set(one_time_codes::consumed_at.eq(Some(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// How many codes of this purpose were issued to the person since `since` (resend limits).
pub fn count_issued_since(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    since: NaiveDateTime,
) -> StoreResult<i64> {
    Ok(one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .filter(one_time_codes::created_at.ge(since))
        .count()
        .get_result(conn)?)
}

/// Deletes codes that expired before `before`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(one_time_codes::table.filter(one_time_codes::expires_at.lt(before)))
            .execute(conn)?,
    )
}
