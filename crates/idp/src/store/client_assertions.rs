//! Client assertions already used (`private_key_jwt`), remembered by keyed hash of their `jti`
//! until they expire, so each is accepted once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::client_assertions;
use super::{DbConnection, StoreError, StoreResult};

/// Records a used assertion; false if it was seen before.
pub fn record(
    conn: &mut DbConnection,
    jti_hash: &[u8],
    client_id: &str,
    expires_at: NaiveDateTime,
) -> StoreResult<bool> {
    let inserted = diesel::insert_into(client_assertions::table)
        .values((
            client_assertions::jti_hash.eq(jti_hash),
            client_assertions::client_id.eq(client_id),
            client_assertions::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Forgets assertions expired before `before`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(client_assertions::table.filter(client_assertions::expires_at.lt(before)))
            .execute(conn)?,
    )
}
