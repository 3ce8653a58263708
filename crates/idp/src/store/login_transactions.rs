//! Pending authorization requests, kept server-side while the person signs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_transactions;
use super::{on_backend, DbConnection, StoreResult};

/// A login transaction as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_transactions, treat_none_as_default_value = false)]
pub struct LoginTransactionRecord {
    /// Hash of the opaque cookie value that refers to it.
    pub id: String,
    pub client_id: String,
    /// The validated authorization request, as JSON.
    pub request: String,
    /// The person, once identified.
    pub user_id: Option<String>,
    /// Where the person is in the journey.
    pub step: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Journey state beyond the step, as JSON (see `authn::journey::JourneyData`).
    pub data: String,
}

/// Stores a new transaction.
pub fn insert(conn: &mut DbConnection, tx: &LoginTransactionRecord) -> StoreResult<()> {
    on_backend!(conn, c => diesel::insert_into(login_transactions::table)
        .values(tx)
        .execute(c))?;
    Ok(())
}

/// The transaction if it exists and has not expired at `now`.
pub fn find_live(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<LoginTransactionRecord>> {
    Ok(on_backend!(conn, c => login_transactions::table
        .find(id)
        .filter(login_transactions::expires_at.gt(now))
        .select(LoginTransactionRecord::as_select())
        .get_result(c)
        .optional())?)
}

/// Moves the transaction to `step` with `user_id` and `data`, only if it is still at
/// `from_step` (so two tabs cannot both advance it). Returns whether it moved.
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    from_step: &str,
    to_step: &str,
    user_id: Option<&str>,
    data: &str,
) -> StoreResult<bool> {
    struct Advance;
    let n = on_backend!(conn, c => super::fixed::<Advance, _>(
        diesel::update(
            login_transactions::table
                .find(id)
                .filter(login_transactions::step.eq(from_step)),
        )
        .set((
            login_transactions::step.eq(to_step),
            login_transactions::user_id.eq(user_id),
            login_transactions::data.eq(data),
        )),
    )
    .execute(c))?;
    Ok(n == 1)
}

/// Removes a finished or abandoned transaction. Returns whether it existed.
pub fn delete(conn: &mut DbConnection, id: &str) -> StoreResult<bool> {
    Ok(on_backend!(conn, c => diesel::delete(login_transactions::table.find(id)).execute(c))? == 1)
}

/// Removes every transaction expired at `now`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(login_transactions::table.filter(login_transactions::expires_at.le(now)))
            .execute(conn)?,
    )
}
