//! Failure counters and locks for sign-in attempts, keyed by a keyed hash of what they protect
//! (an account's login name, or an IP address). Every change is one statement, so concurrent
//! attempts are counted exactly on both backends.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::attempt_counters;
use super::{DbConnection, StoreResult};

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
pub fn count_attempt(
    conn: &mut DbConnection,
    key: &str,
    counter: Counter,
    window_start: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<Counted> {
    // One transaction: one commit instead of three, and no half-counted attempt.
    crate::store::write_transaction(conn, |conn| {
        let row = (
            attempt_counters::key.eq(key),
            attempt_counters::window_started_at.eq(now),
            attempt_counters::updated_at.eq(now),
        );
        // Upserts are per backend: the multi-backend connection has no ON CONFLICT.
        match conn {
            DbConnection::Sqlite(c) => diesel::insert_into(attempt_counters::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConnection::Postgres(c) => diesel::insert_into(attempt_counters::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
        // A stale window starts over; the condition makes this idempotent under concurrency.
        diesel::update(
            attempt_counters::table
                .find(key)
                .filter(attempt_counters::window_started_at.lt(window_start))
                .filter(
                    attempt_counters::locked_until
                        .is_null()
                        .or(attempt_counters::locked_until.le(now)),
                ),
        )
        .set((
            attempt_counters::password_failures.eq(0),
            attempt_counters::second_factor_failures.eq(0),
            attempt_counters::window_started_at.eq(now),
        ))
        .execute(conn)?;
        let open = attempt_counters::table.find(key).filter(
            attempt_counters::locked_until
                .is_null()
                .or(attempt_counters::locked_until.le(now)),
        );
        let counted = match counter {
            Counter::Password => diesel::update(open)
                .set((
                    attempt_counters::password_failures.eq(attempt_counters::password_failures + 1),
                    attempt_counters::updated_at.eq(now),
                ))
                .returning((
                    attempt_counters::password_failures,
                    attempt_counters::lock_count,
                ))
                .get_result::<(i32, i32)>(conn)
                .optional()?,
            Counter::SecondFactor => diesel::update(open)
                .set((
                    attempt_counters::second_factor_failures
                        .eq(attempt_counters::second_factor_failures + 1),
                    attempt_counters::updated_at.eq(now),
                ))
                .returning((
                    attempt_counters::second_factor_failures,
                    attempt_counters::lock_count,
                ))
                .get_result::<(i32, i32)>(conn)
                .optional()?,
        };
        match counted {
            Some((count, lock_count)) => Ok(Counted::Failures { count, lock_count }),
            None => Ok(Counted::Locked(
                locked_until(conn, key, now)?.unwrap_or(now),
            )),
        }
    })
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
    Ok(attempt_counters::table
        .find(key)
        .select(attempt_counters::locked_until)
        .get_result::<Option<NaiveDateTime>>(conn)
        .optional()?
        .flatten()
        .filter(|until| *until > now))
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
    let target = attempt_counters::table.find(key);
    match counter {
        Counter::Password => diesel::update(target)
            .set((
                attempt_counters::password_failures.eq(0),
                attempt_counters::updated_at.eq(now),
            ))
            .execute(conn)?,
        Counter::SecondFactor => diesel::update(target)
            .set((
                attempt_counters::second_factor_failures.eq(0),
                attempt_counters::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Removes `key`'s counters and lock entirely: a completed sign-in, a completed reset (which
/// always unlocks) or a helpdesk unlock.
pub fn clear(conn: &mut DbConnection, key: &str) -> StoreResult<bool> {
    Ok(diesel::delete(attempt_counters::table.find(key)).execute(conn)? == 1)
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
