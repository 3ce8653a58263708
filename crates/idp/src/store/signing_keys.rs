//! Token signing keys: private part sealed with the master key, public JWK in clear.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::signing_keys;
use super::{DbConnection, StoreResult};

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys, treat_none_as_default_value = false)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// Private key sealed with the master key.
    pub private_key_enc: Vec<u8>,
    /// Public JWK as JSON.
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    /// When it stops (or stopped) signing; `None` while it has no successor.
    pub retired_at: Option<NaiveDateTime>,
    /// Until when the public key stays in the JWKS (after the last token it signed expires).
    pub publish_until: Option<NaiveDateTime>,
}

/// Adds a key.
pub fn insert(conn: &mut DbConnection, key: &SigningKeyRecord) -> StoreResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

/// Keys without a successor, newest first.
pub fn active(conn: &mut DbConnection) -> StoreResult<Vec<SigningKeyRecord>> {
    Ok(signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(SigningKeyRecord::as_select())
        .load(conn)?)
}

/// Keys whose public part belongs in the JWKS at `now`: active ones and retired ones whose
/// tokens may still be valid.
pub fn publishable(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> StoreResult<Vec<SigningKeyRecord>> {
    Ok(signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::publish_until.gt(now)),
        )
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(SigningKeyRecord::as_select())
        .load(conn)?)
}

/// Every key, newest first (for `idp keys list`).
pub fn list(conn: &mut DbConnection) -> StoreResult<Vec<SigningKeyRecord>> {
    Ok(signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(SigningKeyRecord::as_select())
        .load(conn)?)
}

/// Schedules the end of a key: it stops signing at `retired_at` and stays published until
/// `publish_until`. Only a key not already retired can be.
pub fn retire(
    conn: &mut DbConnection,
    kid: &str,
    retired_at: NaiveDateTime,
    publish_until: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        signing_keys::table
            .find(kid)
            .filter(signing_keys::retired_at.is_null()),
    )
    .set((
        signing_keys::retired_at.eq(Some(retired_at)),
        signing_keys::publish_until.eq(Some(publish_until)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
