//! Failure counters and locks for sign-in attempts, keyed by a keyed hash of what they protect
//! (an account's login name, or an IP address). Every change is one statement, so concurrent
//! attempts are counted exactly on both backends.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::attempt_counters;
use super::{fixed, on_backend, DbConnection, StoreResult};

/// Which counter an attempt moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Password,
    SecondFactor,
}

/// A counter row as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = attempt_counters)]
pub struct AttemptCounterRecord {
    pub key: String,
    pub password_failures: i32,
    pub second_factor_failures: i32,
    pub window_started_at: NaiveDateTime,
    pub lock_count: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// What counting an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Locked until this instant: the attempt was not counted.
    Locked(NaiveDateTime),
    /// Counted: the counter's value including this attempt, and the locks so far.
    Failures { count: i32, lock_count: i32 },
}

/// Counts an attempt before it is checked, so that concurrent attempts can never be checked
/// more often than the limit allows. Failures older than `window_start` are forgotten first.
///
/// One statement (an upsert that starts a stale window over and adds the attempt, unless the
/// key is locked): concurrent attempts on both backends take turns on the row, and on
/// PostgreSQL it needs no transaction of its own.
pub fn count_attempt(
    conn: &mut DbConnection,
    key: &str,
    counter: Counter,
    window_start: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<Counted> {
    let statement = counting::CountAttempt {
        key,
        password: i32::from(counter == Counter::Password),
        second_factor: i32::from(counter == Counter::SecondFactor),
        window_start,
        now,
    };
    let counted = crate::store::write_statement(
        conn,
        |conn| on_backend!(conn, c => statement.get_result::<(i32, i32, i32)>(c).optional()),
    )?;
    match counted {
        Some((password, second_factor, lock_count)) => Ok(Counted::Failures {
            count: match counter {
                Counter::Password => password,
                Counter::SecondFactor => second_factor,
            },
            lock_count,
        }),
        None => Ok(Counted::Locked(
            locked_until(conn, key, now)?.unwrap_or(now),
        )),
    }
}

/// The counting upsert as a fixed text with a static query id: each connection prepares it
/// once (diesel builds and prepares its own upserts with updates again at every execution).
mod counting {
    use chrono::NaiveDateTime;
    use diesel::backend::Backend;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::serialize::ToSql;
    use diesel::sql_types::{HasSqlType, Integer, Text, Timestamp};
    use diesel::QueryResult;

    pub(super) struct CountAttempt<'a> {
        pub key: &'a str,
        /// What the attempt adds to each counter: 1 to the one it counts, 0 to the other.
        pub password: i32,
        pub second_factor: i32,
        pub window_start: NaiveDateTime,
        pub now: NaiveDateTime,
    }

    impl QueryId for CountAttempt<'_> {
        type QueryId = CountAttempt<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl Query for CountAttempt<'_> {
        type SqlType = (Integer, Integer, Integer);
    }

    impl<DB> QueryFragment<DB> for CountAttempt<'_>
    where
        DB: Backend + HasSqlType<Text> + HasSqlType<Integer> + HasSqlType<Timestamp>,
        str: ToSql<Text, DB>,
        i32: ToSql<Integer, DB>,
        NaiveDateTime: ToSql<Timestamp, DB>,
    {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
            // Diesel writes each placeholder as it binds the value (`?` or `$n`).
            out.push_sql(
                "INSERT INTO attempt_counters (key, password_failures, second_factor_failures, \
                 lock_count, window_started_at, updated_at) VALUES (",
            );
            out.push_bind_param::<Text, _>(self.key)?;
            out.push_sql(", ");
            out.push_bind_param::<Integer, _>(&self.password)?;
            out.push_sql(", ");
            out.push_bind_param::<Integer, _>(&self.second_factor)?;
            out.push_sql(", 0, ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            // A stale window starts over; a lock in force leaves the row as it is and returns
            // nothing.
            out.push_sql(
                ") ON CONFLICT (key) DO UPDATE SET password_failures = CASE WHEN \
                 attempt_counters.window_started_at < ",
            );
            out.push_bind_param::<Timestamp, _>(&self.window_start)?;
            out.push_sql(" THEN 0 ELSE attempt_counters.password_failures END + ");
            out.push_bind_param::<Integer, _>(&self.password)?;
            out.push_sql(
                ", second_factor_failures = CASE WHEN attempt_counters.window_started_at < ",
            );
            out.push_bind_param::<Timestamp, _>(&self.window_start)?;
            out.push_sql(" THEN 0 ELSE attempt_counters.second_factor_failures END + ");
            out.push_bind_param::<Integer, _>(&self.second_factor)?;
            out.push_sql(", window_started_at = CASE WHEN attempt_counters.window_started_at < ");
            out.push_bind_param::<Timestamp, _>(&self.window_start)?;
            out.push_sql(" THEN ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(" ELSE attempt_counters.window_started_at END, updated_at = ");
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(
                " WHERE attempt_counters.locked_until IS NULL OR attempt_counters.locked_until <= ",
            );
            out.push_bind_param::<Timestamp, _>(&self.now)?;
            out.push_sql(" RETURNING password_failures, second_factor_failures, lock_count");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::SqliteConnection> for CountAttempt<'_> {}
    impl diesel::RunQueryDsl<diesel::PgConnection> for CountAttempt<'_> {}
}

/// Adds one failure without a lock check (IP addresses count failures only); returns the count
/// in the current window.
pub fn add_failure(
    conn: &mut DbConnection,
    key: &str,
    window_start: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<i32> {
    match count_attempt(conn, key, Counter::Password, window_start, now)? {
        Counted::Failures { count, .. } => Ok(count),
        Counted::Locked(_) => Ok(i32::MAX),
    }
}

/// Until when `key` is locked, if it is at `now`.
pub fn locked_until(
    conn: &mut DbConnection,
    key: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<NaiveDateTime>> {
    let query = attempt_counters::table
        .find(key)
        .select(attempt_counters::locked_until);
    Ok(
        on_backend!(conn, c => query.get_result::<Option<NaiveDateTime>>(c).optional())?
            .flatten()
            .filter(|until| *until > now),
    )
}

/// Locks `key` until `until`, counts the lock and starts the counters afresh. Returns false if
/// it was already locked (another attempt locked it first).
pub fn lock(
    conn: &mut DbConnection,
    key: &str,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        attempt_counters::table.find(key).filter(
            attempt_counters::locked_until
                .is_null()
                .or(attempt_counters::locked_until.le(now)),
        ),
    )
    .set((
        attempt_counters::locked_until.eq(Some(until)),
        attempt_counters::lock_count.eq(attempt_counters::lock_count + 1),
        attempt_counters::password_failures.eq(0),
        attempt_counters::second_factor_failures.eq(0),
        attempt_counters::window_started_at.eq(now),
        attempt_counters::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Forgets `counter`'s failures after a success. The lock history stays for the password (a
/// right password is not proof of the person); use [`clear`] when the whole sign-in succeeded.
pub fn reset_counter(
    conn: &mut DbConnection,
    key: &str,
    counter: Counter,
    now: NaiveDateTime,
) -> StoreResult<()> {
    // Two texts, one per counter: each is named as a statement of its own.
    struct ResetPassword;
    struct ResetSecondFactor;
    let target = attempt_counters::table.find(key);
    match counter {
        Counter::Password => on_backend!(conn, c => fixed::<ResetPassword, _>(
            diesel::update(target).set((
                attempt_counters::password_failures.eq(0),
                attempt_counters::updated_at.eq(now),
            ))
        )
        .execute(c))?,
        Counter::SecondFactor => on_backend!(conn, c => fixed::<ResetSecondFactor, _>(
            diesel::update(target).set((
                attempt_counters::second_factor_failures.eq(0),
                attempt_counters::updated_at.eq(now),
            ))
        )
        .execute(c))?,
    };
    Ok(())
}

/// Removes `key`'s counters and lock entirely: a completed sign-in, a completed reset (which
/// always unlocks) or a helpdesk unlock.
pub fn clear(conn: &mut DbConnection, key: &str) -> StoreResult<bool> {
    Ok(on_backend!(conn, c => diesel::delete(attempt_counters::table.find(key)).execute(c))? == 1)
}

/// The row of `key`, for tools and tests.
pub fn find(conn: &mut DbConnection, key: &str) -> StoreResult<Option<AttemptCounterRecord>> {
    Ok(attempt_counters::table
        .find(key)
        .select(AttemptCounterRecord::as_select())
        .get_result(conn)
        .optional()?)
}

/// Deletes rows untouched since `before` and not locked at `now`; returns how many.
pub fn purge_idle(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::delete(
        attempt_counters::table
            .filter(attempt_counters::updated_at.lt(before))
            .filter(
                attempt_counters::locked_until
                    .is_null()
                    .or(attempt_counters::locked_until.le(now)),
            ),
    )
    .execute(conn)?)
}
