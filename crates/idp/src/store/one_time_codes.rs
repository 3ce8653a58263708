//! Six-digit codes sent by email (sign-in, first login / reset, email change), stored only as
//! keyed hashes. A code belongs to the sign-in that asked for it (`requested_in`): a new code
//! for the same person, purpose and sign-in supersedes the previous one, and only that
//! sign-in's codes are judged there.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::one_time_codes;
use super::{fixed, on_backend, DbConnection, StoreError, StoreResult};

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
    /// The login transaction that asked for it (the hash its cookie refers to); `None` for
    /// codes issued outside a sign-in (email changes by staff).
    pub requested_in: Option<String>,
    /// Keyed hash of the address that asked for it, for the resend limits; `None` when there
    /// was no address or no sign-in.
    pub requested_from: Option<String>,
}

/// When a code that was never used was issued, and the keyed hash of the address that asked
/// for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCode {
    pub created_at: NaiveDateTime,
    pub requested_from: Option<String>,
}

/// Stores `code` and supersedes every earlier unused code of the same person, purpose and
/// sign-in, in one transaction: a new code kills the previous one. Codes another sign-in is
/// waiting for stay alive.
pub fn issue(conn: &mut DbConnection, code: &OneTimeCodeRecord) -> StoreResult<()> {
    let issue = |conn: &mut DbConnection| {
        let unused = one_time_codes::table
            .filter(one_time_codes::user_id.eq(&code.user_id))
            .filter(one_time_codes::purpose.eq(&code.purpose))
            .filter(one_time_codes::consumed_at.is_null())
            .filter(one_time_codes::superseded_at.is_null());
        let superseded = one_time_codes::superseded_at.eq(Some(code.created_at));
        // Two texts, one per kind of code: each is named as a statement of its own.
        struct SupersedeInTransaction;
        struct SupersedeOutside;
        match &code.requested_in {
            Some(tx) => on_backend!(conn, c => fixed::<SupersedeInTransaction, _>(
                diesel::update(unused.filter(one_time_codes::requested_in.eq(tx))).set(superseded)
            )
            .execute(c))?,
            None => on_backend!(conn, c => fixed::<SupersedeOutside, _>(
                diesel::update(unused.filter(one_time_codes::requested_in.is_null()))
                    .set(superseded)
            )
            .execute(c))?,
        };
        on_backend!(conn, c => diesel::insert_into(one_time_codes::table)
            .values(code)
            .execute(c))?;
        Ok::<_, StoreError>(())
    };
    crate::store::write_within(conn, issue)
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

/// The person's most recent codes of this purpose asked for in `requested_in` (`None`:
/// outside a sign-in), newest first.
pub fn recent(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    requested_in: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<OneTimeCodeRecord>> {
    let of_person = one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .order((one_time_codes::created_at.desc(), one_time_codes::id.desc()))
        .limit(limit);
    Ok(match requested_in {
        Some(tx) => on_backend!(conn, c => of_person
            .filter(one_time_codes::requested_in.eq(tx))
            .select(OneTimeCodeRecord::as_select())
            .load(c))?,
        None => on_backend!(conn, c => of_person
            .filter(one_time_codes::requested_in.is_null())
            .select(OneTimeCodeRecord::as_select())
            .load(c))?,
    })
}

/// The person's codes of this purpose that were never used, issued since `since`, from every
/// sign-in (resend limits: a code that signed someone in was not wasted).
pub fn unused_issued_since(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    since: NaiveDateTime,
) -> StoreResult<Vec<SentCode>> {
    let query = one_time_codes::table
        .filter(one_time_codes::user_id.eq(user_id))
        .filter(one_time_codes::purpose.eq(purpose))
        .filter(one_time_codes::created_at.ge(since))
        .filter(one_time_codes::consumed_at.is_null())
        .select((one_time_codes::created_at, one_time_codes::requested_from));
    Ok(
        on_backend!(conn, c => query.load::<(NaiveDateTime, Option<String>)>(c))?
            .into_iter()
            .map(|(created_at, requested_from)| SentCode {
                created_at,
                requested_from,
            })
            .collect(),
    )
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
    struct RegisterFailure;
    Ok(on_backend!(conn, c => fixed::<RegisterFailure, _>(
        diesel::update(usable!(id, now))
            .set(one_time_codes::attempts.eq(one_time_codes::attempts + 1))
            .returning(one_time_codes::attempts)
    )
    .get_result::<i32>(c)
    .optional())?)
}

/// Marks a usable code as used; returns false if it was used, superseded, expired or out of
/// tries in the meantime (so a code works once even when submitted twice at the same time).
pub fn consume(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<bool> {
    struct Consume;
    let n = on_backend!(conn, c => fixed::<Consume, _>(
        diesel::update(usable!(id, now)).set(one_time_codes::consumed_at.eq(Some(now)))
    )
    .execute(c))?;
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
