//! Authorization codes, stored only as keyed hashes, single use.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::authorization_codes;
use super::{DbConnection, StoreResult};

/// A stored authorization code and what it was issued for.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes, treat_none_as_default_value = false)]
pub struct AuthorizationCodeRecord {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    /// Public `sid` of the SSO session it came from.
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub amr: String,
    pub acr: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// First use, within its lifetime: the code is now spent.
    Redeemed(AuthorizationCodeRecord),
    /// Already spent: a replay. The caller revokes what the first use issued.
    Replayed(AuthorizationCodeRecord),
    /// Known but past its lifetime.
    Expired,
    /// Never issued (or purged).
    Unknown,
}

/// Stores a new code.
pub fn insert(conn: &mut DbConnection, code: &AuthorizationCodeRecord) -> StoreResult<()> {
    super::on_backend!(conn, c => diesel::insert_into(authorization_codes::table)
        .values(code)
        .execute(c))?;
    Ok(())
}

/// Spends the code in one statement, so two concurrent exchanges cannot both succeed.
pub fn redeem(
    conn: &mut DbConnection,
    code_hash: &[u8],
    now: NaiveDateTime,
) -> StoreResult<Redemption> {
    let spent = diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::consumed_at.is_null())
            .filter(authorization_codes::expires_at.gt(now)),
    )
    .set(authorization_codes::consumed_at.eq(Some(now)))
    .returning(authorization_codes::all_columns)
    .get_result::<AuthorizationCodeRecord>(conn)
    .optional()?;
    if let Some(record) = spent {
        return Ok(Redemption::Redeemed(record));
    }
    let existing = authorization_codes::table
        .find(code_hash)
        .select(AuthorizationCodeRecord::as_select())
        .get_result(conn)
        .optional()?;
    Ok(match existing {
        Some(record) if record.consumed_at.is_some() => Redemption::Replayed(record),
        Some(_) => Redemption::Expired,
        None => Redemption::Unknown,
    })
}

/// Deletes codes that expired before `before`; returns how many.
pub fn purge_expired(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(diesel::delete(
        authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
    )
    .execute(conn)?)
}
