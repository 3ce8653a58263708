//! The sign-in policy an administrator set in the console, stored as JSON in one row.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::sign_in_policy;
use super::{DbConnection, StoreError, StoreResult};

/// The stored policy (JSON), if an administrator ever set one.
pub fn current(conn: &mut DbConnection) -> StoreResult<Option<String>> {
    Ok(sign_in_policy::table
        .find(1)
        .select(sign_in_policy::policy)
        .get_result(conn)
        .optional()?)
}

/// Stores `policy` (JSON) as the one in force.
pub fn replace(
    conn: &mut DbConnection,
    policy: &str,
    now: NaiveDateTime,
    by: &str,
) -> StoreResult<()> {
    super::write_transaction(conn, |conn| {
        let updated = diesel::update(sign_in_policy::table.find(1))
            .set((
                sign_in_policy::policy.eq(policy),
                sign_in_policy::updated_at.eq(now),
                sign_in_policy::updated_by.eq(by),
            ))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(sign_in_policy::table)
                .values((
                    sign_in_policy::id.eq(1),
                    sign_in_policy::policy.eq(policy),
                    sign_in_policy::updated_at.eq(now),
                    sign_in_policy::updated_by.eq(by),
                ))
                .execute(conn)?;
        }
        Ok::<_, StoreError>(())
    })
}
