//! Consents: which scopes a person agreed to share with a portal that is not first-party.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::consents;
use super::{decode_list, encode_list, DbConnection, StoreResult};

/// The scopes `user_id` granted to `client_id`, if any.
pub fn granted(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
) -> StoreResult<Option<Vec<String>>> {
    let stored: Option<String> = consents::table
        .find((user_id, client_id))
        .select(consents::scopes)
        .get_result(conn)
        .optional()?;
    stored
        .map(|s| decode_list("consents.scopes", &s))
        .transpose()
}

/// Records (or widens) a consent: the stored scopes become `scopes`.
pub fn grant(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: NaiveDateTime,
) -> StoreResult<()> {
    crate::store::write_transaction(conn, |conn| {
        diesel::delete(consents::table.find((user_id, client_id))).execute(conn)?;
        diesel::insert_into(consents::table)
            .values((
                consents::user_id.eq(user_id),
                consents::client_id.eq(client_id),
                consents::scopes.eq(encode_list(scopes)),
                consents::granted_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Withdraws a consent; returns whether there was one.
pub fn withdraw(conn: &mut DbConnection, user_id: &str, client_id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(consents::table.find((user_id, client_id))).execute(conn)? == 1)
}
