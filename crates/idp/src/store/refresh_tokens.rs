//! Refresh tokens: stored only as keyed hashes, rotated on every use, grouped in families so
//! reuse of an old token can revoke the whole line.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{refresh_tokens, users};
use super::{DbConnection, StoreError, StoreResult};

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens, treat_none_as_default_value = false)]
pub struct RefreshTokenRecord {
    pub token_hash: Vec<u8>,
    /// Shared by every token descended from one authorization.
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    /// Public `sid` of the SSO session, when there was one.
    pub session_id: Option<String>,
    pub scope: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The answer that rotated this token, sealed with the master key; kept only while a
    /// retry grace window applies.
    pub retry_response_enc: Option<Vec<u8>>,
}

/// Stores a new token.
pub fn insert(conn: &mut DbConnection, token: &RefreshTokenRecord) -> StoreResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)?;
    Ok(())
}

/// The token with this hash, in whatever state.
pub fn find(conn: &mut DbConnection, token_hash: &[u8]) -> StoreResult<Option<RefreshTokenRecord>> {
    Ok(refresh_tokens::table
        .find(token_hash)
        .select(RefreshTokenRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// A stored token, with whether its holder may still use it (the person exists and is not
/// disabled): one query where a refresh would otherwise need two round trips.
pub fn find_with_holder(
    conn: &mut DbConnection,
    token_hash: &[u8],
) -> StoreResult<Option<(RefreshTokenRecord, bool)>> {
    Ok(super::on_backend!(conn, c => refresh_tokens::table
        .left_join(users::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshTokenRecord::as_select(), users::disabled.nullable()))
        .get_result::<(RefreshTokenRecord, Option<bool>)>(c)
        .optional())?
    .map(|(token, disabled)| (token, disabled == Some(false))))
}

/// Marks `old_hash` as rotated and stores its successor, atomically; `retry_response_enc` is
/// kept on the old row for a retry within the grace window. Returns false (and stores nothing)
/// if the old token was already rotated, revoked or expired.
///
/// On PostgreSQL it is one statement, atomic by itself, so it needs no transaction: each
/// statement is a round trip, and they were most of a refresh's cost there. On SQLite, inside
/// a caller's transaction it runs in that transaction, whose rollback on error keeps it atomic.
pub fn rotate(
    conn: &mut DbConnection,
    old_hash: &[u8],
    successor: &RefreshTokenRecord,
    retry_response_enc: Option<&[u8]>,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    if let DbConnection::Postgres(pg) = conn {
        let stored = postgres_rotation::Rotate {
            old_hash,
            successor,
            retry_response_enc,
            now,
        }
        .execute(pg)?;
        return Ok(stored == 1);
    }
    let rotate = |conn: &mut DbConnection| {
        struct SpendOld;
        let n = super::on_backend!(conn, c => super::fixed::<SpendOld, _>(
            diesel::update(
                refresh_tokens::table
                    .find(old_hash)
                    .filter(refresh_tokens::rotated_at.is_null())
                    .filter(refresh_tokens::revoked_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(now)),
            )
            .set((
                refresh_tokens::rotated_at.eq(Some(now)),
                refresh_tokens::retry_response_enc.eq(retry_response_enc),
            )),
        )
        .execute(c))?;
        if n == 0 {
            return Ok::<_, StoreError>(false);
        }
        super::on_backend!(conn, c => diesel::insert_into(refresh_tokens::table)
            .values(successor)
            .execute(c))?;
        Ok(true)
    };
    crate::store::write_within(conn, rotate)
}

/// What [`spend_many`] spent for one use: the grant its successor carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentToken {
    pub family_id: String,
    pub user_id: String,
    pub scope: String,
}

/// One use of a refresh token, for [`spend_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub old_hash: Vec<u8>,
    pub client_id: String,
    pub successor_hash: Vec<u8>,
    pub expires_at: NaiveDateTime,
}

/// The usual refresh without reading first, for several uses at once. Each use spends
/// `old_hash` if it is `client_id`'s, unspent, unrevoked and unexpired, and its holder exists
/// and is enabled, and stores `successor_hash` in its place (same family, person, session and
/// scope, expiring at `expires_at`, no retry answer). Returns, for each use in order, what it
/// spent, or `None` when any condition failed, having written nothing for it: the caller then
/// reads the token to tell why. Two uses of one token spend it once.
///
/// On PostgreSQL it is one statement for the lot, atomic by itself, the uses sent as one array
/// per field: a burst of refreshes costs one round trip and one commit, and a concurrent use of
/// the same token waits for the row's lock, then finds it spent. On SQLite each use is the
/// read and [`rotate`], one after the other, in the caller's transaction or one of their own.
pub fn spend_many(
    conn: &mut DbConnection,
    spends: &[Spend],
    now: NaiveDateTime,
) -> StoreResult<Vec<Option<SpentToken>>> {
    let mut outcomes = vec![None; spends.len()];
    if spends.is_empty() {
        return Ok(outcomes);
    }
    if let DbConnection::Postgres(pg) = conn {
        let rows = postgres_rotation::SpendMany::new(spends, now)
            .load::<(i64, String, String, String)>(pg)?;
        for (ordinal, family_id, user_id, scope) in rows {
            let slot = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|at| outcomes.get_mut(at))
                .ok_or_else(|| StoreError::Corrupt("a spent use out of range".into()))?;
            *slot = Some(SpentToken {
                family_id,
                user_id,
                scope,
            });
        }
        return Ok(outcomes);
    }
    crate::store::write_within(conn, |conn| {
        for (spend, outcome) in spends.iter().zip(outcomes.iter_mut()) {
            *outcome = spend_one(conn, spend, now)?;
        }
        Ok(outcomes)
    })
}

/// One use of [`spend_many`] on SQLite, inside its transaction.
fn spend_one(
    conn: &mut DbConnection,
    spend: &Spend,
    now: NaiveDateTime,
) -> StoreResult<Option<SpentToken>> {
    let Some((old, holder_active)) = find_with_holder(conn, &spend.old_hash)? else {
        return Ok(None);
    };
    if old.client_id != spend.client_id || !holder_active {
        return Ok(None);
    }
    let successor = RefreshTokenRecord {
        token_hash: spend.successor_hash.clone(),
        created_at: now,
        expires_at: spend.expires_at,
        rotated_at: None,
        revoked_at: None,
        retry_response_enc: None,
        ..old.clone()
    };
    if !rotate(conn, &spend.old_hash, &successor, None, now)? {
        return Ok(None);
    }
    Ok(Some(SpentToken {
        family_id: old.family_id,
        user_id: old.user_id,
        scope: old.scope,
    }))
}

/// Rotations as single PostgreSQL statements: a successor is inserted only from the row the
/// update spent, so a concurrent use of the same token waits for the row's lock, then finds it
/// spent and stores nothing.
mod postgres_rotation {
    use chrono::NaiveDateTime;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};
    use diesel::sql_types::{Array, BigInt, Binary, Nullable, Text, Timestamp};
    use diesel::QueryResult;

    use super::RefreshTokenRecord;

    /// [`super::rotate`]: a fixed text with a static query id, so each connection prepares it
    /// once.
    pub(super) struct Rotate<'a> {
        pub old_hash: &'a [u8],
        pub successor: &'a RefreshTokenRecord,
        pub retry_response_enc: Option<&'a [u8]>,
        pub now: NaiveDateTime,
    }

    impl QueryId for Rotate<'_> {
        type QueryId = Rotate<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Pg> for Rotate<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            let next = self.successor;
            // Diesel writes each placeholder as it binds the value.
            out.push_sql("WITH spent AS (UPDATE refresh_tokens SET rotated_at = ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(", retry_response_enc = ");
            out.push_bind_param::<Nullable<Binary>, _>(&self.retry_response_enc)?;
            out.push_sql(" WHERE token_hash = ");
            out.push_bind_param::<Binary, _>(&self.old_hash)?;
            out.push_sql(" AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(
                " RETURNING 1) INSERT INTO refresh_tokens (token_hash, family_id, client_id, \
                 user_id, session_id, scope, created_at, expires_at, rotated_at, revoked_at, \
                 retry_response_enc) SELECT ",
            );
            out.push_bind_param::<Binary, _>(&next.token_hash)?;
            for text in [&next.family_id, &next.client_id, &next.user_id] {
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(text)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&next.session_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&next.scope)?;
            for time in [&next.created_at, &next.expires_at] {
                out.push_sql(", ");
                out.push_bind_param::<Timestamp, _>(time)?;
            }
            for time in [&next.rotated_at, &next.revoked_at] {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Timestamp>, _>(time)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Binary>, _>(&next.retry_response_enc)?;
            out.push_sql(" FROM spent");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::PgConnection> for Rotate<'_> {}

    /// [`super::spend_many`]: the uses go as one array per field, numbered by `WITH
    /// ORDINALITY`; each spent row returns its use's number. When two uses name one token, the
    /// row is updated once, from one of them, and only that one's successor is inserted.
    pub(super) struct SpendMany<'a> {
        old_hash: Vec<&'a [u8]>,
        client_id: Vec<&'a str>,
        successor_hash: Vec<&'a [u8]>,
        expires_at: Vec<NaiveDateTime>,
        now: NaiveDateTime,
    }

    impl<'a> SpendMany<'a> {
        pub fn new(spends: &'a [super::Spend], now: NaiveDateTime) -> Self {
            Self {
                old_hash: spends.iter().map(|s| s.old_hash.as_slice()).collect(),
                client_id: spends.iter().map(|s| s.client_id.as_str()).collect(),
                successor_hash: spends.iter().map(|s| s.successor_hash.as_slice()).collect(),
                expires_at: spends.iter().map(|s| s.expires_at).collect(),
                now,
            }
        }
    }

    impl QueryId for SpendMany<'_> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl diesel::query_builder::Query for SpendMany<'_> {
        type SqlType = (BigInt, Text, Text, Text);
    }

    impl QueryFragment<Pg> for SpendMany<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            // Planned at each batch, with its arrays: a plan prepared once would keep the join
            // chosen while the table was small (a scan of every token) as the table grows.
            out.unsafe_to_cache_prepared();
            out.push_sql("WITH asked AS (SELECT * FROM unnest(");
            out.push_bind_param::<Array<Binary>, _>(&self.old_hash)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&self.client_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Binary>, _>(&self.successor_hash)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Timestamp>, _>(&self.expires_at)?;
            out.push_sql(
                ") WITH ORDINALITY AS a (old_hash, client_id, successor_hash, expires_at, n)), \
                 spent AS (UPDATE refresh_tokens SET rotated_at = ",
            );
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(
                " FROM asked WHERE refresh_tokens.token_hash = asked.old_hash \
                 AND refresh_tokens.client_id = asked.client_id \
                 AND refresh_tokens.rotated_at IS NULL AND refresh_tokens.revoked_at IS NULL \
                 AND refresh_tokens.expires_at > ",
            );
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(
                " AND EXISTS (SELECT 1 FROM users WHERE users.id = refresh_tokens.user_id \
                 AND NOT users.disabled) RETURNING asked.n, asked.successor_hash, \
                 asked.expires_at, refresh_tokens.family_id, refresh_tokens.client_id, \
                 refresh_tokens.user_id, refresh_tokens.session_id, refresh_tokens.scope), \
                 successors AS (INSERT INTO refresh_tokens (token_hash, family_id, client_id, \
                 user_id, session_id, scope, created_at, expires_at) SELECT successor_hash, \
                 family_id, client_id, user_id, session_id, scope, ",
            );
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(", expires_at FROM spent) SELECT n, family_id, user_id, scope FROM spent");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::PgConnection> for SpendMany<'_> {}
}

/// Revokes one token; returns whether it was not revoked before.
pub fn revoke(conn: &mut DbConnection, token_hash: &[u8], now: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(token_hash)
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes every token of a family; returns how many were still unrevoked.
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?)
}

/// Revokes every token of a person's session (logout); returns how many. The person narrows
/// the search to their own tokens (an index).
pub fn revoke_for_session(
    conn: &mut DbConnection,
    user_id: &str,
    session_id: &str,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?)
}

/// Revokes every token of a person, whatever session or grant it came from (a password
/// reset); returns how many.
pub fn revoke_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)?)
}

/// Drops the retry answers of tokens rotated before `before` (the grace window is over) and
/// deletes tokens expired before `expired_before`. Returns how many rows changed.
pub fn purge(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    expired_before: NaiveDateTime,
) -> StoreResult<usize> {
    let cleared = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::retry_response_enc.is_not_null())
            .filter(refresh_tokens::rotated_at.lt(before)),
    )
    .set(refresh_tokens::retry_response_enc.eq(None::<Vec<u8>>))
    .execute(conn)?;
    let deleted =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(expired_before)))
            .execute(conn)?;
    Ok(cleared + deleted)
}
