//! Back-channel logout notices waiting to reach a portal. Each is written in the transaction
//! that ends the session, so it outlives a restart, and deleted once delivered or given up.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::backchannel_deliveries;
use super::{DbConnection, StoreResult};

/// One portal to tell that one session ended.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = backchannel_deliveries, treat_none_as_default_value = false)]
pub struct Delivery {
    pub id: String,
    pub client_id: String,
    /// The person whose session ended (`sub` of the logout token).
    pub user_id: String,
    /// The ended session (`sid` of the logout token).
    pub sid: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When to try next; while an attempt runs, when another instance may take it over.
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Queues `delivery`.
pub fn enqueue(conn: &mut DbConnection, delivery: &Delivery) -> StoreResult<()> {
    diesel::insert_into(backchannel_deliveries::table)
        .values(delivery)
        .execute(conn)?;
    Ok(())
}

/// Up to `limit` deliveries due at `now`, the longest waiting first.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> StoreResult<Vec<Delivery>> {
    Ok(backchannel_deliveries::table
        .filter(backchannel_deliveries::next_attempt_at.le(now))
        .order(backchannel_deliveries::next_attempt_at.asc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)?)
}

/// Takes `delivery` for one attempt: pushes its next attempt to `lease_until`, unless another
/// instance took it first (it is no longer due, or its attempts moved on). Returns whether
/// this caller has it. If the caller dies mid-attempt, the delivery is due again at
/// `lease_until`.
pub fn claim(
    conn: &mut DbConnection,
    delivery: &Delivery,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> StoreResult<bool> {
    let taken = diesel::update(
        backchannel_deliveries::table
            .find(&delivery.id)
            .filter(backchannel_deliveries::attempts.eq(delivery.attempts))
            .filter(backchannel_deliveries::next_attempt_at.le(now)),
    )
    .set(backchannel_deliveries::next_attempt_at.eq(lease_until))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Up to `limit` deliveries due at `now`, each taken ([`claim`]) until `lease_until`; those
/// another instance took first are left out.
pub fn take_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    let mut taken = Vec::new();
    for delivery in due(conn, now, limit)? {
        if claim(conn, &delivery, now, lease_until)? {
            taken.push(delivery);
        }
    }
    Ok(taken)
}

/// Records a failed attempt: `attempts` made, the next one at `at`.
pub fn reschedule(
    conn: &mut DbConnection,
    id: &str,
    attempts: i32,
    at: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(backchannel_deliveries::table.find(id))
        .set((
            backchannel_deliveries::attempts.eq(attempts),
            backchannel_deliveries::next_attempt_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets a delivery that was made or given up; returns whether it was still queued.
pub fn remove(conn: &mut DbConnection, id: &str) -> StoreResult<bool> {
    Ok(diesel::delete(backchannel_deliveries::table.find(id)).execute(conn)? == 1)
}

/// How many deliveries are queued (for tests and operators).
pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(backchannel_deliveries::table.count().get_result(conn)?)
}
