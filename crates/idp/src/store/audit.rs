//! The audit log: append-only rows (the database refuses updates and deletes), linked in one
//! hash chain.
//!
//! Every append locks the chain's head row, or (the audit writer's groups on PostgreSQL,
//! [`append_after_last`]) moves it only from where that writer last left it, so appends from
//! every instance form one linear chain: row `n` stores `n`, the hash of row `n - 1` and its
//! own hash, SHA-256 over a canonical encoding of its fields and the previous hash
//! ([`row_hash`]). [`verify`] walks the chain and reports the first broken link.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_chain_head, audit_checkpoints, audit_events};
use super::{DbConnection, StoreError, StoreResult};

/// One event to append. Never carries a token, code, password or secret: token-related events
/// name a `jti` or a keyed hash.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct NewAuditEvent {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific fields as a JSON object.
    pub detail: String,
}

/// A new event id: a time-ordered UUID (version 7), so the `id` index grows at its end
/// instead of taking every insert on a random page (which made each group commit rewrite as
/// many index pages as it had rows).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl NewAuditEvent {
    /// An event done outside any request, now, by `actor` (`cli` for the command line,
    /// `system` for the server itself).
    pub fn by(
        actor: &str,
        event_type: &str,
        subject: Option<String>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            id: crate::store::audit::new_event_id(),
            occurred_at: super::now(),
            event_type: event_type.into(),
            actor: Some(actor.into()),
            subject,
            client_id: None,
            ip: None,
            user_agent: None,
            request_id: None,
            detail: detail.to_string(),
        }
    }
}

/// A stored event with its position in the log and in the chain.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
    /// Position in the chain; `None` for rows written before the chain existed.
    pub chain_index: Option<i64>,
    pub prev_hash: Option<Vec<u8>>,
    pub row_hash: Option<Vec<u8>>,
}

/// Domain separation of the row hash, and the encoding's version.
const HASH_PREFIX: &[u8] = b"guichet-audit-v1\n";

/// SHA-256 over the canonical encoding of a row: a JSON array of its position, fields (time
/// as `YYYY-MM-DDTHH:MM:SS.ffffff`) and the previous row's hash in hex.
pub fn row_hash(index: i64, event: &NewAuditEvent, prev_hash: &[u8]) -> Vec<u8> {
    // Most rows' encodings fit: the buffer is not grown while it is written.
    let mut canonical = Vec::with_capacity(1024);
    canonical.extend_from_slice(HASH_PREFIX);
    // A tuple serialises as the JSON array the encoding defines, without building a
    // `serde_json::Value` first; serialising plain values into memory cannot fail.
    let _ = serde_json::to_writer(
        &mut canonical,
        &(
            index,
            &event.id,
            CanonicalTime(event.occurred_at),
            &event.event_type,
            &event.actor,
            &event.subject,
            &event.client_id,
            &event.ip,
            &event.user_agent,
            &event.request_id,
            &event.detail,
            crate::crypto::hex(prev_hash),
        ),
    );
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical)
        .as_ref()
        .to_vec()
}

/// A time as the canonical encoding writes it: `YYYY-MM-DDTHH:MM:SS.ffffff` (chrono's
/// `%Y-%m-%dT%H:%M:%S%.6f`), with the format parsed once instead of for every row, and
/// written straight into the encoding.
struct CanonicalTime(NaiveDateTime);

impl serde::Serialize for CanonicalTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use chrono::format::{Item, StrftimeItems};
        static ITEMS: std::sync::LazyLock<Vec<Item<'static>>> =
            std::sync::LazyLock::new(|| StrftimeItems::new("%Y-%m-%dT%H:%M:%S%.6f").collect());
        serializer.collect_str(&self.0.format_with_items(ITEMS.iter()))
    }
}

impl AuditEvent {
    /// The fields that were hashed.
    pub fn fields(&self) -> NewAuditEvent {
        NewAuditEvent {
            id: self.id.clone(),
            occurred_at: self.occurred_at,
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
            subject: self.subject.clone(),
            client_id: self.client_id.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// Appends an event to the chain and returns its sequence number.
pub fn append(conn: &mut DbConnection, event: &NewAuditEvent) -> StoreResult<i64> {
    super::write_transaction(conn, |conn| {
        let (rows, head) = chain(conn, std::slice::from_ref(event))?;
        let insert = diesel::insert_into(audit_events::table)
            .values(&rows[0])
            .returning(audit_events::seq);
        let seq = match conn {
            DbConnection::Sqlite(c) => {
                let seq = insert.get_result(c)?;
                head.move_on_sqlite(c)?;
                seq
            }
            DbConnection::Postgres(c) => head.moved_with(insert).get_result(c)?,
        };
        Ok::<_, StoreError>(seq)
    })
}

/// Appends events, in order, to the chain in one transaction; returns how many were written.
pub fn append_all(conn: &mut DbConnection, events: &[NewAuditEvent]) -> StoreResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    super::write_transaction(conn, |conn| append_in_transaction(conn, events))
}

/// [`append_all`] inside a write transaction the caller already holds.
pub fn append_in_transaction(
    conn: &mut DbConnection,
    events: &[NewAuditEvent],
) -> StoreResult<usize> {
    Ok(append_rows(conn, events)?.map_or(0, |(written, _)| written))
}

/// Appends `events` and returns how many were written with the chain's new head; `None` when
/// there were none. Must run inside a write transaction.
fn append_rows(
    conn: &mut DbConnection,
    events: &[NewAuditEvent],
) -> StoreResult<Option<(usize, ChainHead)>> {
    if events.is_empty() {
        return Ok(None);
    }
    let (rows, head) = chain(conn, events)?;
    // Per backend: the multi-backend connection has no batch insert. On SQLite, one
    // prepared single-row statement run for each row: a multi-row `INSERT` would be parsed
    // again for every group, as its text depends on the group's size. On PostgreSQL, one
    // statement inserts the group and moves the head: one round trip.
    let written = match conn {
        DbConnection::Sqlite(c) => {
            let mut written = 0;
            for row in &rows {
                written += sqlite_append::InsertRow(row).execute(c)?;
            }
            head.move_on_sqlite(c)?;
            written
        }
        DbConnection::Postgres(c) => head
            .moved_with(diesel::insert_into(audit_events::table).values(&rows))
            .execute(c)?,
    };
    Ok(Some((written, head)))
}

/// The group-committing writer's append: `events`, in order, after `last`, the head as this
/// writer left it after its previous group. Returns how many were written, and leaves in
/// `last` the new head (or nothing, when the append failed).
///
/// On PostgreSQL, when `last` is known, it is one statement and no transaction: the head
/// moves, and the rows are inserted, only if the head is still `last`
/// ([`postgres_append::AppendAfter`]). A group then costs one round trip instead of four
/// (`BEGIN`, the head's locking read, the insert, `COMMIT`), and the head's row lock is held
/// only for that statement and its commit, which is what every other append waits for. When
/// another writer (another instance, or a request's own transaction) has moved the head
/// since, the statement writes nothing, and the group is appended as [`append_all`] does,
/// after reading the head under its lock. On SQLite this is [`append_all`].
pub fn append_after_last(
    conn: &mut DbConnection,
    events: &[NewAuditEvent],
    last: &mut Option<ChainHead>,
) -> StoreResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    if let (DbConnection::Postgres(c), Some(known)) = (&mut *conn, last.take()) {
        let (rows, head) = link(known.index, known.hash.clone(), events);
        let written = postgres_append::AppendAfter {
            known: &known,
            head: &head,
            columns: postgres_append::Columns::of(&rows),
        }
        .execute(c)?;
        if written == rows.len() {
            *last = Some(head);
            return Ok(written);
        }
    }
    let appended = super::write_transaction(conn, |conn| append_rows(conn, events))?;
    Ok(appended.map_or(0, |(written, head)| {
        *last = Some(head);
        written
    }))
}

/// A row as inserted: the event and its place in the chain.
#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct ChainedRow {
    #[diesel(embed)]
    event: NewAuditEvent,
    chain_index: i64,
    prev_hash: Vec<u8>,
    row_hash: Vec<u8>,
}

/// Takes the chain's head (locking it until the transaction ends) and links `events` after
/// it. Writes nothing: the caller inserts the rows and moves the head to the returned
/// [`ChainHead`] in the same transaction. Must run inside a write transaction.
fn chain(
    conn: &mut DbConnection,
    events: &[NewAuditEvent],
) -> StoreResult<(Vec<ChainedRow>, ChainHead)> {
    let head = audit_chain_head::table
        .find(1)
        .select((audit_chain_head::last_index, audit_chain_head::last_hash));
    // On PostgreSQL, `FOR UPDATE` takes the head's row lock: appends of concurrent
    // transactions queue here and chain in turn. SQLite's write transaction already holds
    // the only writer lock.
    let (index, prev): (i64, Vec<u8>) = match conn {
        DbConnection::Sqlite(c) => head.get_result(c)?,
        DbConnection::Postgres(c) => head.for_update().get_result(c)?,
    };
    Ok(link(index, prev, events))
}

/// Links `events` after the row at `index` whose hash is `prev`: their rows, and the head
/// after them.
fn link(
    mut index: i64,
    mut prev: Vec<u8>,
    events: &[NewAuditEvent],
) -> (Vec<ChainedRow>, ChainHead) {
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        // Stored times keep microseconds on both backends: hash what reads back.
        let event = NewAuditEvent {
            occurred_at: super::truncate_micros(event.occurred_at),
            ..event.clone()
        };
        index += 1;
        let hash = row_hash(index, &event, &prev);
        rows.push(ChainedRow {
            event,
            chain_index: index,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            row_hash: hash,
        });
    }
    (rows, ChainHead { index, hash: prev })
}

/// The chain's head: the position and hash of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub index: i64,
    pub hash: Vec<u8>,
}

impl ChainHead {
    /// Moves the head here on SQLite, in the transaction that inserted the rows.
    fn move_on_sqlite(&self, c: &mut diesel::SqliteConnection) -> QueryResult<usize> {
        sqlite_append::MoveHead {
            index: self.index,
            hash: &self.hash,
        }
        .execute(c)
    }

    /// `insert` (of the rows up to this head) preceded, in the same PostgreSQL statement, by
    /// the head's move to them.
    fn moved_with<Q>(&self, insert: Q) -> postgres_append::WithHeadMoved<'_, Q> {
        postgres_append::WithHeadMoved { head: self, insert }
    }
}

/// The `INSERT` of chained rows, up to their values.
const INSERT_COLUMNS: &str = "INSERT INTO audit_events (id, occurred_at, event_type, actor, \
     subject, client_id, ip, user_agent, request_id, detail, chain_index, prev_hash, row_hash)";

/// PostgreSQL's append: the head's `UPDATE` as a data-modifying `WITH` before the `INSERT`,
/// so that a group costs one round trip after the head is read. The prefix's text is fixed,
/// so the statement is cached exactly when the `INSERT` it wraps is (a single row is; a group,
/// whose text depends on its size, is not).
mod postgres_append {
    use chrono::NaiveDateTime;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::{Array, BigInt, Binary, Nullable, Text, Timestamp};
    use diesel::QueryResult;

    use super::{ChainHead, ChainedRow};

    pub(super) struct WithHeadMoved<'a, Q> {
        pub head: &'a ChainHead,
        pub insert: Q,
    }

    impl<Q: QueryId> QueryId for WithHeadMoved<'_, Q> {
        type QueryId = WithHeadMoved<'static, Q::QueryId>;
        const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
    }

    impl<Q: Query> Query for WithHeadMoved<'_, Q> {
        type SqlType = Q::SqlType;
    }

    impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for WithHeadMoved<'_, Q> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("WITH moved_head AS (UPDATE audit_chain_head SET last_index = ");
            out.push_bind_param::<BigInt, _>(&self.head.index)?;
            out.push_sql(", last_hash = ");
            out.push_bind_param::<Binary, _>(&self.head.hash)?;
            out.push_sql(" WHERE id = 1) ");
            self.insert.walk_ast(out.reborrow())
        }
    }

    impl<Q> diesel::RunQueryDsl<diesel::PgConnection> for WithHeadMoved<'_, Q> {}

    /// Appends `rows` after `known` and moves the head to `head`, as one statement that writes
    /// nothing unless the head is still `known`. A concurrent writer's move of the head makes
    /// this `UPDATE` wait for its commit, then find the head changed: no fork, no gap.
    ///
    /// The rows go as one array per column, unnested: the text does not depend on the group's
    /// size, so each connection prepares it once. (With one `VALUES` row per event, each group
    /// of a few dozen rows had PostgreSQL parse and plan hundreds of parameters while every
    /// other append waited for the head.)
    pub(super) struct AppendAfter<'a> {
        pub known: &'a ChainHead,
        pub head: &'a ChainHead,
        pub columns: Columns<'a>,
    }

    /// Chained rows, column by column.
    pub(super) struct Columns<'a> {
        id: Vec<&'a str>,
        occurred_at: Vec<NaiveDateTime>,
        event_type: Vec<&'a str>,
        /// actor, subject, client_id, ip, user_agent, request_id.
        optional: [Vec<Option<&'a str>>; 6],
        detail: Vec<&'a str>,
        chain_index: Vec<i64>,
        prev_hash: Vec<&'a [u8]>,
        row_hash: Vec<&'a [u8]>,
    }

    impl<'a> Columns<'a> {
        pub(super) fn of(rows: &'a [ChainedRow]) -> Self {
            let column = |field: fn(&'a ChainedRow) -> Option<&'a str>| {
                rows.iter().map(field).collect::<Vec<_>>()
            };
            Self {
                id: rows.iter().map(|r| r.event.id.as_str()).collect(),
                occurred_at: rows.iter().map(|r| r.event.occurred_at).collect(),
                event_type: rows.iter().map(|r| r.event.event_type.as_str()).collect(),
                optional: [
                    column(|r| r.event.actor.as_deref()),
                    column(|r| r.event.subject.as_deref()),
                    column(|r| r.event.client_id.as_deref()),
                    column(|r| r.event.ip.as_deref()),
                    column(|r| r.event.user_agent.as_deref()),
                    column(|r| r.event.request_id.as_deref()),
                ],
                detail: rows.iter().map(|r| r.event.detail.as_str()).collect(),
                chain_index: rows.iter().map(|r| r.chain_index).collect(),
                prev_hash: rows.iter().map(|r| r.prev_hash.as_slice()).collect(),
                row_hash: rows.iter().map(|r| r.row_hash.as_slice()).collect(),
            }
        }
    }

    impl QueryId for AppendAfter<'_> {
        type QueryId = AppendAfter<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Pg> for AppendAfter<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            let c = &self.columns;
            out.push_sql("WITH moved_head AS (UPDATE audit_chain_head SET last_index = ");
            out.push_bind_param::<BigInt, _>(&self.head.index)?;
            out.push_sql(", last_hash = ");
            out.push_bind_param::<Binary, _>(&self.head.hash)?;
            out.push_sql(" WHERE id = 1 AND last_index = ");
            out.push_bind_param::<BigInt, _>(&self.known.index)?;
            out.push_sql(" AND last_hash = ");
            out.push_bind_param::<Binary, _>(&self.known.hash)?;
            out.push_sql(" RETURNING 1) ");
            out.push_sql(super::INSERT_COLUMNS);
            out.push_sql(" SELECT appended.* FROM moved_head, unnest(");
            out.push_bind_param::<Array<Text>, _>(&c.id)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Timestamp>, _>(&c.occurred_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&c.event_type)?;
            for optional in &c.optional {
                out.push_sql(", ");
                out.push_bind_param::<Array<Nullable<Text>>, _>(optional)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(&c.detail)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<BigInt>, _>(&c.chain_index)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Binary>, _>(&c.prev_hash)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Binary>, _>(&c.row_hash)?;
            out.push_sql(") AS appended");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::PgConnection> for AppendAfter<'_> {}
}

/// SQLite's two statements of the append path, written out with a fixed text.
///
/// Diesel gives its own `INSERT` of this row and its `UPDATE`s no static query id, so on
/// every row it rebuilt the SQL text, hashed it to find the prepared statement, and parsed
/// each `UPDATE` again (it never caches those). A fixed text with a static id is prepared
/// once per connection and found by its type.
mod sqlite_append {
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};
    use diesel::sql_types::{BigInt, Binary, Nullable, Text, Timestamp};
    use diesel::sqlite::Sqlite;
    use diesel::QueryResult;

    use super::ChainedRow;

    /// `INSERT` of one chained row.
    pub(super) struct InsertRow<'a>(pub &'a ChainedRow);

    impl QueryId for InsertRow<'_> {
        type QueryId = InsertRow<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Sqlite> for InsertRow<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            let (row, event) = (self.0, &self.0.event);
            // Diesel writes each placeholder as it binds the value.
            out.push_sql(super::INSERT_COLUMNS);
            out.push_sql(" VALUES (");
            out.push_bind_param::<Text, _>(&event.id)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(&event.occurred_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.event_type)?;
            for text in [
                &event.actor,
                &event.subject,
                &event.client_id,
                &event.ip,
                &event.user_agent,
                &event.request_id,
            ] {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<Text>, _>(text)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.detail)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&row.chain_index)?;
            out.push_sql(", ");
            out.push_bind_param::<Binary, _>(&row.prev_hash)?;
            out.push_sql(", ");
            out.push_bind_param::<Binary, _>(&row.row_hash)?;
            out.push_sql(")");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::SqliteConnection> for InsertRow<'_> {}

    /// `UPDATE` of the chain's head to its new last row.
    pub(super) struct MoveHead<'a> {
        pub index: i64,
        pub hash: &'a [u8],
    }

    impl QueryId for MoveHead<'_> {
        type QueryId = MoveHead<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Sqlite> for MoveHead<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            out.push_sql("UPDATE audit_chain_head SET last_index = ");
            out.push_bind_param::<BigInt, _>(&self.index)?;
            out.push_sql(", last_hash = ");
            out.push_bind_param::<Binary, _>(self.hash)?;
            out.push_sql(" WHERE id = 1");
            Ok(())
        }
    }

    impl diesel::RunQueryDsl<diesel::SqliteConnection> for MoveHead<'_> {}
}

/// The first broken link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// Row `expected` is missing: the next row found is `found` (a deleted or renumbered row).
    Missing { expected: i64, found: i64 },
    /// Row `index` does not hash to its stored hash (an edited row).
    Altered { index: i64 },
    /// Row `index` does not link to the row before it (a replaced or reordered row).
    Unlinked { index: i64 },
    /// The chain ends at `last` but its head records `head` (rows removed from the end, or the
    /// head rewritten).
    Truncated { last: i64, head: i64 },
    /// A signed checkpoint at `index` names another hash than the row there.
    CheckpointMismatch { index: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { expected, found } => write!(
                f,
                "row {expected} is missing (the next row is {found}): a row was deleted or renumbered"
            ),
            Self::Altered { index } => {
                write!(f, "row {index} was altered: it no longer matches its hash")
            }
            Self::Unlinked { index } => write!(
                f,
                "row {index} does not link to row {}: a row was replaced or reordered",
                index - 1
            ),
            Self::Truncated { last, head } => write!(
                f,
                "the chain ends at row {last} but its head records row {head}: rows were removed from the end"
            ),
            Self::CheckpointMismatch { index } => write!(
                f,
                "the signed checkpoint at row {index} names another hash: the chain was rewritten"
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked, in chain order.
    pub checked: i64,
    /// Rows written before the chain existed (not covered by it).
    pub unchained: i64,
    /// Checkpoints compared with the chain.
    pub checkpoints: i64,
    /// Rows archived and removed (the chain now starts after them, anchored on the checkpoint
    /// signed when they were archived).
    pub archived: i64,
    pub first_break: Option<ChainBreak>,
}

/// Walks the chain from its first row, recomputing every hash and link, then compares the end
/// with the head and every checkpoint's hash with its row. Stops at the first break.
pub fn verify(conn: &mut DbConnection, page: i64) -> StoreResult<ChainReport> {
    let unchained = audit_events::table
        .filter(audit_events::chain_index.is_null())
        .count()
        .get_result(conn)?;
    let mut report = ChainReport {
        checked: 0,
        unchained,
        checkpoints: 0,
        archived: 0,
        first_break: None,
    };
    let checkpoints: Vec<(i64, Vec<u8>)> = audit_checkpoints::table
        .select((audit_checkpoints::chain_index, audit_checkpoints::row_hash))
        .order(audit_checkpoints::chain_index.asc())
        .load(conn)?;
    let mut expected = 1i64;
    let mut prev: Vec<u8> = Vec::new();
    // After an archive the chain starts later, anchored on the checkpoint signed at the last
    // archived row; without that checkpoint the missing start is a break like any other.
    let first: Option<i64> = audit_events::table
        .select(diesel::dsl::min(audit_events::chain_index))
        .first(conn)?;
    if let Some(first) = first.filter(|f| *f > 1) {
        if let Some((_, hash)) = checkpoints.iter().find(|(at, _)| *at == first - 1) {
            expected = first;
            prev = hash.clone();
            report.archived = first - 1;
        }
    }
    let start = expected;
    let mut next_checkpoint = checkpoints
        .iter()
        .filter(move |(at, _)| *at >= start)
        .peekable();
    loop {
        let rows: Vec<AuditEvent> = audit_events::table
            .filter(audit_events::chain_index.ge(expected))
            .order(audit_events::chain_index.asc())
            .limit(page.max(1))
            .select(AuditEvent::as_select())
            .load(conn)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let index = row.chain_index.unwrap_or_default();
            let found = if index != expected {
                Some(ChainBreak::Missing {
                    expected,
                    found: index,
                })
            } else if row.prev_hash.as_deref() != Some(prev.as_slice()) {
                Some(ChainBreak::Unlinked { index })
            } else if row.row_hash.as_deref()
                != Some(row_hash(index, &row.fields(), &prev).as_slice())
            {
                Some(ChainBreak::Altered { index })
            } else {
                None
            };
            if found.is_some() {
                report.first_break = found;
                return Ok(report);
            }
            while let Some((at, hash)) = next_checkpoint.next_if(|(at, _)| *at <= index) {
                report.checkpoints += 1;
                if *at != index || row.row_hash.as_ref() != Some(hash) {
                    report.first_break = Some(ChainBreak::CheckpointMismatch { index: *at });
                    return Ok(report);
                }
            }
            prev = row.row_hash.unwrap_or_default();
            report.checked += 1;
            expected += 1;
        }
    }
    let (head, head_hash): (i64, Vec<u8>) = audit_chain_head::table
        .find(1)
        .select((audit_chain_head::last_index, audit_chain_head::last_hash))
        .first(conn)?;
    if head != expected - 1 || head_hash != prev {
        report.first_break = Some(ChainBreak::Truncated {
            last: expected - 1,
            head,
        });
    } else if let Some((at, _)) = next_checkpoint.next() {
        report.first_break = Some(ChainBreak::CheckpointMismatch { index: *at });
    }
    Ok(report)
}

/// The end of the chain: its last position and hash.
pub fn head(conn: &mut DbConnection) -> StoreResult<(i64, Vec<u8>)> {
    Ok(audit_chain_head::table
        .find(1)
        .select((audit_chain_head::last_index, audit_chain_head::last_hash))
        .first(conn)?)
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct Checkpoint {
    pub chain_index: i64,
    pub row_hash: Vec<u8>,
    pub created_at: NaiveDateTime,
    /// A JWS by a published signing key over the position and hash.
    pub signature: String,
}

/// Stores a checkpoint; false when one exists at that position already.
pub fn add_checkpoint(conn: &mut DbConnection, checkpoint: &Checkpoint) -> StoreResult<bool> {
    match diesel::insert_into(audit_checkpoints::table)
        .values(checkpoint)
        .execute(conn)
        .map_err(StoreError::from)
    {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every checkpoint, oldest first.
pub fn checkpoints(conn: &mut DbConnection) -> StoreResult<Vec<Checkpoint>> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::chain_index.asc())
        .select(Checkpoint::as_select())
        .load(conn)?)
}

/// The latest `limit` events, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// A subject's events, newest first.
pub fn for_subject(
    conn: &mut DbConnection,
    subject: &str,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::subject.eq(subject))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// Number of events.
pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(audit_events::table.count().get_result(conn)?)
}

/// A subject's events of the given types, newest first.
pub fn for_subject_of_types(
    conn: &mut DbConnection,
    subject: &str,
    types: &[&str],
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::subject.eq(subject))
        .filter(audit_events::event_type.eq_any(types))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// What an auditor narrows the log to; an empty filter selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditFilter {
    /// From this time (inclusive, UTC).
    pub from: Option<NaiveDateTime>,
    /// Before this time (exclusive, UTC).
    pub until: Option<NaiveDateTime>,
    /// A person's id.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub event_type: Option<String>,
    pub ip: Option<String>,
}

/// The `seq` of the newest row, if any.
pub fn last_seq(conn: &mut DbConnection) -> StoreResult<Option<i64>> {
    Ok(audit_events::table
        .select(diesel::dsl::max(audit_events::seq))
        .get_result(conn)?)
}

/// Events matching `filter`, newest first, older than `before_seq` when given.
pub fn search(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    let mut query = matching(filter);
    if let Some(before) = before_seq {
        query = query.filter(audit_events::seq.lt(before));
    }
    Ok(query
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// How many events match `filter` up to the row `through_seq` included.
pub fn count_matching(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    through_seq: i64,
) -> StoreResult<i64> {
    Ok(matching(filter)
        .filter(audit_events::seq.le(through_seq))
        .count()
        .get_result(conn)?)
}

/// The events `filter` selects, as a query to narrow further.
fn matching(
    filter: &AuditFilter,
) -> audit_events::BoxedQuery<'static, <DbConnection as diesel::Connection>::Backend> {
    let mut query = audit_events::table.into_boxed();
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(audit_events::subject.eq(subject.clone()));
    }
    if let Some(client) = &filter.client_id {
        query = query.filter(audit_events::client_id.eq(client.clone()));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(audit_events::event_type.eq(event_type.clone()));
    }
    if let Some(ip) = &filter.ip {
        query = query.filter(audit_events::ip.eq(ip.clone()));
    }
    query
}

/// The end of the longest start of the chain whose events all occurred before `before`: the
/// position just before the first event at or after it (or the last position when none is).
pub fn last_index_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> StoreResult<Option<i64>> {
    let first_later: Option<i64> = audit_events::table
        .filter(audit_events::occurred_at.ge(before))
        .select(diesel::dsl::min(audit_events::chain_index))
        .first(conn)?;
    Ok(match first_later {
        Some(first) => Some(first - 1).filter(|t| *t > 0),
        None => audit_events::table
            .select(diesel::dsl::max(audit_events::chain_index))
            .first(conn)?,
    })
}

/// Chained rows after position `after` up to `through`, in chain order, at most `limit`.
pub fn chained_between(
    conn: &mut DbConnection,
    after: i64,
    through: i64,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .filter(audit_events::chain_index.gt(after))
        .filter(audit_events::chain_index.le(through))
        .order(audit_events::chain_index.asc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// Deletes the chained rows through position `through`: the last step of an archive, after
/// the rows were exported and a checkpoint at `through` was signed. The append-only guard is
/// lifted for this transaction only. Returns how many rows went.
pub fn prune_through(conn: &mut DbConnection, through: i64) -> StoreResult<usize> {
    use diesel::connection::SimpleConnection;
    let delete = |conn: &mut DbConnection| {
        diesel::delete(audit_events::table.filter(audit_events::chain_index.le(through)))
            .execute(conn)
    };
    super::write_transaction(conn, |conn| {
        let deleted = match conn {
            DbConnection::Sqlite(c) => {
                c.batch_execute("DROP TRIGGER audit_events_no_delete")?;
                let deleted = diesel::delete(
                    audit_events::table.filter(audit_events::chain_index.le(through)),
                )
                .execute(c)?;
                c.batch_execute(
                    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events \
                     BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;",
                )?;
                deleted
            }
            DbConnection::Postgres(_) => {
                conn.batch_execute("SET LOCAL guichet.audit_archive = 'on'")?;
                delete(conn)?
            }
        };
        Ok::<_, StoreError>(deleted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    /// The encoding as first written: a `serde_json::Value` array. Rows hashed by either must
    /// verify with the other.
    fn first_encoding(index: i64, event: &NewAuditEvent, prev_hash: &[u8]) -> Vec<u8> {
        let canonical = serde_json::json!([
            index,
            event.id,
            event
                .occurred_at
                .format("%Y-%m-%dT%H:%M:%S%.6f")
                .to_string(),
            event.event_type,
            event.actor,
            event.subject,
            event.client_id,
            event.ip,
            event.user_agent,
            event.request_id,
            event.detail,
            crate::crypto::hex(prev_hash),
        ]);
        let mut bytes = HASH_PREFIX.to_vec();
        bytes.extend_from_slice(canonical.to_string().as_bytes());
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
            .as_ref()
            .to_vec()
    }

    #[test]
    fn the_row_hash_is_the_canonical_json_array_it_always_was() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let mut event = NewAuditEvent::by(
            "cli",
            "token.issued",
            Some("sujet \"é\" \\ \n\u{1}".into()),
            serde_json::json!({"jti": "j", "n": 1}),
        );
        event.ip = Some("192.0.2.7".into());
        for (time, index, prev) in [
            ("2026-12-04 01:02:03.000000", 1, vec![]),
            ("2026-12-04 23:59:59.123456", 42, vec![0xab; 32]),
            ("0999-01-01 00:00:00.000001", i64::MAX, vec![0; 32]),
            ("2026-06-30 23:59:60.5", 7, vec![1, 2, 3]),
        ] {
            event.occurred_at = if time.contains(":60") {
                // chrono's leap second: 59 s plus a nanosecond count past one second.
                at("2026-06-30 23:59:59.0")
                    .with_nanosecond(1_500_000_000)
                    .unwrap()
            } else {
                at(time)
            };
            assert_eq!(
                row_hash(index, &event, &prev),
                first_encoding(index, &event, &prev),
                "{time}"
            );
        }
        let mut other = event.clone();
        other.detail.push(' ');
        assert_ne!(row_hash(1, &event, &[]), row_hash(1, &other, &[]));
    }
}
