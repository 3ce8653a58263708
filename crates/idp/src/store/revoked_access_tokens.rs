//! Revoked access tokens, remembered by `jti` until they would have expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::revoked_access_tokens;
use super::{DbConnection, StoreError, StoreResult};

/// Records the revocation of `jti`; revoking twice is not an error.
pub fn revoke(
    conn: &mut DbConnection,
    jti: &str,
    client_id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<()> {
    let inserted = diesel::insert_into(revoked_access_tokens::table)
        .values((
            revoked_access_tokens::jti.eq(jti),
            revoked_access_tokens::client_id.eq(client_id),
            revoked_access_tokens::expires_at.eq(expires_at),
            revoked_access_tokens::revoked_at.eq(now),
        ))
        .execute(conn);
    match inserted.map_err(StoreError::from) {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `jti` was revoked.
pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> StoreResult<bool> {
    Ok(revoked_access_tokens::table
        .find(jti)
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Forgets revocations of tokens expired before `before`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(diesel::delete(
        revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(before)),
    )
    .execute(conn)?)
}
