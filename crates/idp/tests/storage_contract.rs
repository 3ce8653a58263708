//! Storage contract: every query function, the same tests on SQLite and on PostgreSQL.
//!
//! Each test gets its own database (a fresh SQLite file, a fresh PostgreSQL database). The
//! output names the backend: `sqlite::users_insert_and_find`, `postgres::users_insert_and_find`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[macro_use]
mod support;

use std::sync::{Arc, Barrier};

use chrono::{Duration, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use idp::store::audit::{self, NewAuditEvent};
use idp::store::authorization_codes::{self, AuthorizationCodeRecord, Redemption};
use idp::store::clients::{self, Client};
use idp::store::login_transactions::{self, LoginTransactionRecord};
use idp::store::one_time_codes::{self, OneTimeCodeRecord};
use idp::store::refresh_tokens::{self, RefreshTokenRecord};
use idp::store::revoked_access_tokens;
use idp::store::signing_keys::{self, SigningKeyRecord};
use idp::store::sso_sessions::{self, SsoSessionRecord};
use idp::store::users::{self, MfaMethod, MfaSetting, NewUser};
use idp::store::{now, run_migrations, DbConnection, StoreError};
use support::TestDb;

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs `attempt` on `threads` threads at once, each with a pooled connection taken after they
/// have all started (the pool may hold fewer connections than threads); the results in thread
/// order.
fn at_once<T, F>(db: &TestDb, threads: usize, attempt: F) -> Vec<T>
where
    F: Fn(usize, &mut DbConnection) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    let attempt = Arc::new(attempt);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, barrier, attempt) = (db.store.clone(), barrier.clone(), attempt.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut conn = store.connection().expect("connection");
                attempt(i, &mut conn)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect()
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: id(),
        email: email.into(),
        member_code: None,
        given_name: "Marie".into(),
        family_name: "Tremblay".into(),
        locale: "fr-CA".into(),
        password_hash: None,
        must_reset: true,
    }
}

fn add_user(conn: &mut DbConnection, email: &str) -> users::User {
    users::insert(conn, &new_user(email), now()).expect("insert user")
}

fn client(id: &str) -> Client {
    let t = now();
    Client {
        id: id.into(),
        name: "Portail des membres".into(),
        kind: "confidential".into(),
        secret_hash: Some(vec![1, 2, 3, 4]),
        redirect_uris: vec!["https://portal.example.org/callback".into()],
        post_logout_redirect_uris: vec!["https://portal.example.org/".into()],
        backchannel_logout_uri: Some("https://portal.example.org/backchannel".into()),
        allowed_scopes: vec!["openid".into(), "email".into(), "profile".into()],
        allowed_grants: vec!["authorization_code".into(), "refresh_token".into()],
        id_token_alg: "RS256".into(),
        first_party: true,
        first_factor: "password".into(),
        required_level: "mfa".into(),
        enabled: true,
        created_at: t,
        updated_at: t,
        jwks: None,
    }
}

fn add_client(conn: &mut DbConnection, id: &str) -> Client {
    clients::upsert(conn, &client(id), now()).expect("upsert client");
    clients::find(conn, id).expect("find").expect("exists")
}

fn session(user_id: &str, expires_at: NaiveDateTime) -> SsoSessionRecord {
    let t = now();
    SsoSessionRecord {
        id: id(),
        sid: id(),
        user_id: user_id.into(),
        auth_time: t,
        amr: "pwd otp mfa".into(),
        acr: "mfa".into(),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
        created_at: t,
        last_seen_at: t,
        expires_at,
        ended_at: None,
    }
}

fn code(user_id: &str, purpose: &str, created_at: NaiveDateTime) -> OneTimeCodeRecord {
    OneTimeCodeRecord {
        id: id(),
        user_id: user_id.into(),
        purpose: purpose.into(),
        code_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        attempts: 0,
        max_attempts: 5,
        created_at,
        expires_at: created_at + Duration::minutes(10),
        consumed_at: None,
        superseded_at: None,
        requested_in: Some("sign-in-1".into()),
        requested_from: Some("address-1".into()),
    }
}

fn refresh(
    user_id: &str,
    client_id: &str,
    family: &str,
    session: Option<&str>,
) -> RefreshTokenRecord {
    let t = now();
    RefreshTokenRecord {
        token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        family_id: family.into(),
        client_id: client_id.into(),
        user_id: user_id.into(),
        session_id: session.map(str::to_string),
        scope: "openid email".into(),
        created_at: t,
        expires_at: t + Duration::days(30),
        rotated_at: None,
        revoked_at: None,
        retry_response_enc: None,
    }
}

on_both_backends!(
    TestDb::new;
    migrations_are_idempotent,
    every_migration_reverts_and_applies_again,
    users_insert_and_find,
    users_email_unique_ignoring_case,
    users_member_code_unique,
    users_named_by_email_and_code_from_their_ids,
    name_keys_emptied_by_a_migration_are_filled_again,
    users_set_password_clears_reset,
    users_exactly_one_second_factor,
    users_totp_step_accepted_once,
            users_first_second_factor_is_set_once,
    write_transactions_that_read_first_wait_instead_of_failing,
    attempt_counters_count_lock_and_forget,
    attempt_counters_concurrent_attempts_counted_exactly,
    users_set_email_and_disabled,
    clients_upsert_find_list,
    clients_secret_and_enabled,
    clients_confidential_needs_secret,
    signing_keys_lifecycle,
    login_transactions_lifecycle,
    login_transactions_enforce_foreign_keys,
    sso_sessions_lifecycle,
    codes_new_code_supersedes_previous,
    codes_belong_to_the_sign_in_that_asked,
    backchannel_deliveries_are_taken_once,
    codes_attempt_limit,
    codes_attempt_limit_holds_under_concurrency,
    codes_expiry_counting_and_purge,
    authorization_codes_single_use,
    refresh_tokens_rotation_and_revocation,
    refresh_tokens_rotate_once_under_concurrency,
    refresh_tokens_spent_without_reading_first,
    refresh_tokens_spent_together,
    the_refresh_spender_spends_each_token_once,
    audit_append_and_read,
    audit_rows_cannot_be_changed,
    audit_search_narrows_by_each_filter_and_pages,
        revoked_access_tokens_are_remembered_until_expiry,
    short_reads_answer_with_or_without_an_idle_connection,
        sessions_remember_their_clients,
    users_batch_insert_skips_what_is_taken,
    users_found_by_words_of_their_name,
    email_changes_one_per_person_and_per_address,
    sign_in_policy_is_one_row,
    member_import_is_idempotent,
);

fn migrations_are_idempotent(db: &TestDb) {
    let mut conn = db.conn();
    assert_eq!(run_migrations(&mut conn).expect("re-run migrations"), 0);
}

/// The database's own description of its schema (tables, columns, indexes, constraints,
/// triggers), one line each, sorted; the migrations' bookkeeping table aside.
fn schema_lines(conn: &mut DbConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    let lines: Vec<Line> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT type || ' ' || name || ': ' || coalesce(sql, '') AS line FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '__diesel_schema_migrations'",
        )
        .load(c),
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' \
                    || is_nullable || ' ' || coalesce(column_default, '') AS line \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations' \
             UNION ALL SELECT 'index ' || indexdef FROM pg_indexes \
             WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
             UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
                    || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace \
             AND conrelid::regclass::text <> '__diesel_schema_migrations' \
             UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname \
             FROM pg_trigger WHERE NOT tgisinternal \
             UNION ALL SELECT 'function ' || proname FROM pg_proc \
             WHERE pronamespace = 'public'::regnamespace",
        )
        .load(c),
    }
    .expect("schema");
    let mut lines: Vec<String> = lines.into_iter().map(|l| l.line).collect();
    lines.sort();
    lines
}

/// Every migration's `down.sql` undoes its `up.sql`: reverting them all leaves nothing, and
/// applying them again gives the same schema.
fn every_migration_reverts_and_applies_again(db: &TestDb) {
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};
    let mut conn = db.conn();
    // A person, so that the downs that rewrite rows have one to rewrite.
    add_user(&mut conn, "revert@example.org");
    let migrated = schema_lines(&mut conn);
    assert!(migrated.len() > 30, "schema read: {}", migrated.len());
    let folder = |backend: &str| {
        FileBasedMigrations::from_path(format!(
            "{}/../../migrations/{backend}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("migration folder")
    };
    let reverted = match &mut *conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(folder("sqlite")),
        DbConnection::Postgres(c) => c.revert_all_migrations(folder("postgres")),
    }
    .expect("every down.sql runs")
    .len();
    assert!(reverted >= 12, "{reverted} reverted");
    assert_eq!(
        schema_lines(&mut conn),
        Vec::<String>::new(),
        "nothing left"
    );
    assert_eq!(run_migrations(&mut conn).expect("apply again"), reverted);
    assert_eq!(schema_lines(&mut conn), migrated);
}

fn users_insert_and_find(db: &TestDb) {
    let mut conn = db.conn();
    let mut new = new_user("  Marie.Tremblay@Example.ORG ");
    new.member_code = Some("r12345".into());
    let user = users::insert(&mut conn, &new, now()).expect("insert");
    assert_eq!(user.email, "Marie.Tremblay@Example.ORG");
    assert_eq!(user.member_code.as_deref(), Some("R12345"));
    assert_eq!(user.mfa_method, MfaMethod::None);
    assert!(user.must_reset);
    assert!(user.password_hash.is_none());
    assert_eq!(user.locale, "fr-CA");

    let by_id = users::find_by_id(&mut conn, &user.id)
        .expect("query")
        .expect("found");
    assert_eq!(by_id, user);
    let by_email = users::find_by_email(&mut conn, "marie.tremblay@example.org  ")
        .expect("query")
        .expect("found ignoring case and spaces");
    assert_eq!(by_email.id, user.id);
    let by_code = users::find_by_member_code(&mut conn, " r12345")
        .expect("query")
        .expect("found");
    assert_eq!(by_code.id, user.id);

    assert!(users::find_by_id(&mut conn, &id())
        .expect("query")
        .is_none());
    assert!(users::find_by_email(&mut conn, "nobody@example.org")
        .expect("query")
        .is_none());
    assert!(users::find_by_member_code(&mut conn, "54321")
        .expect("query")
        .is_none());
    assert_eq!(users::count(&mut conn).expect("count"), 1);
}

fn users_email_unique_ignoring_case(db: &TestDb) {
    let mut conn = db.conn();
    add_user(&mut conn, "jean@example.org");
    let err = users::insert(&mut conn, &new_user(" JEAN@Example.org"), now())
        .expect_err("duplicate email refused");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(users::count(&mut conn).expect("count"), 1);
}

fn users_named_by_email_and_code_from_their_ids(db: &TestDb) {
    let mut conn = db.conn();
    let mut member = new_user("membre@example.org");
    member.member_code = Some("R77001".into());
    let member = users::insert(&mut conn, &member, now()).expect("member");
    let staff = add_user(&mut conn, "soutien@example.org");
    let mut named =
        users::emails_and_codes(&mut conn, &[&member.id, "file-portal", &staff.id, "cli"])
            .expect("named");
    named.sort();
    let mut expected = vec![
        (
            member.id.clone(),
            "membre@example.org".to_string(),
            Some("R77001".to_string()),
        ),
        (staff.id.clone(), "soutien@example.org".to_string(), None),
    ];
    expected.sort();
    assert_eq!(named, expected, "only ids of people, each once");
    assert!(users::emails_and_codes(&mut conn, &[])
        .expect("none")
        .is_empty());
}

fn users_member_code_unique(db: &TestDb) {
    let mut conn = db.conn();
    let mut a = new_user("a@example.org");
    a.member_code = Some("50012345".into());
    users::insert(&mut conn, &a, now()).expect("first");
    let mut b = new_user("b@example.org");
    b.member_code = Some("50012345".into());
    let err = users::insert(&mut conn, &b, now()).expect_err("duplicate code refused");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

fn users_set_password_clears_reset(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "p@example.org");
    assert!(users::set_password(&mut conn, &user.id, "$argon2id$v=19$stub", now()).expect("set"));
    let user = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("found");
    assert_eq!(user.password_hash.as_deref(), Some("$argon2id$v=19$stub"));
    assert!(!user.must_reset);
    assert!(!users::set_password(&mut conn, &id(), "x", now()).expect("unknown id"));
}

fn write_transactions_that_read_first_wait_instead_of_failing(db: &TestDb) {
    let user = add_user(&mut db.conn(), "busy@example.org");
    let user_id = user.id.clone();
    at_once(db, 6, move |i, conn| {
        for n in 0..20 {
            // Read, then write: on SQLite a deferred BEGIN fails here (SQLITE_BUSY) when
            // another connection commits in between.
            idp::store::write_transaction(conn, |conn| {
                let found = users::find_by_id(conn, &user_id)?.expect("user");
                users::set_disabled(conn, &found.id, (i + n) % 2 == 0, now())?;
                Ok::<_, StoreError>(())
            })
            .expect("no transaction fails for want of the lock");
        }
    });
    // Nested, it is a savepoint; an error rolls back only what it wrote.
    let mut conn = db.conn();
    let outcome = idp::store::write_transaction(&mut conn, |conn| {
        users::set_disabled(conn, &user.id, false, now())?;
        let inner = idp::store::write_transaction(conn, |conn| {
            users::set_disabled(conn, &user.id, true, now())?;
            Err::<(), _>(StoreError::Corrupt("rolled back".into()))
        });
        assert!(inner.is_err());
        Ok::<_, StoreError>(())
    });
    assert!(outcome.is_ok());
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("user");
    assert!(
        !u.disabled,
        "the inner write was rolled back, the outer one kept"
    );
}

fn users_first_second_factor_is_set_once(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "first-mfa@example.org");
    assert!(users::set_first_mfa(&mut conn, &user.id, &MfaSetting::Email, now()).expect("email"));
    assert!(
        !users::set_first_mfa(&mut conn, &user.id, &MfaSetting::Totp(vec![7; 40]), now())
            .expect("second"),
        "a person who has a method keeps it"
    );
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("user");
    assert_eq!(u.mfa_method, MfaMethod::Email);
    assert!(u.totp_secret_enc.is_none());
    assert!(!users::set_first_mfa(&mut conn, &id(), &MfaSetting::Email, now()).expect("unknown"));
}

fn users_exactly_one_second_factor(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "mfa@example.org");
    assert!(
        users::set_mfa(&mut conn, &user.id, &MfaSetting::Totp(vec![9; 40]), now()).expect("totp")
    );
    assert!(users::accept_totp_step(&mut conn, &user.id, 10).expect("step"));
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("found");
    assert_eq!(u.mfa_method, MfaMethod::Totp);
    assert_eq!(u.totp_secret_enc, Some(vec![9; 40]));

    // Choosing email removes the TOTP secret: a person never holds both.
    assert!(users::set_mfa(&mut conn, &user.id, &MfaSetting::Email, now()).expect("email"));
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("found");
    assert_eq!(u.mfa_method, MfaMethod::Email);
    assert_eq!(u.totp_secret_enc, None);
    assert_eq!(u.totp_last_step, None);

    assert!(users::set_mfa(&mut conn, &user.id, &MfaSetting::None, now()).expect("none"));
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("found");
    assert_eq!(u.mfa_method, MfaMethod::None);

    // The database itself refuses an email method that keeps a TOTP secret.
    use idp::store::schema::users as t;
    let refused = diesel::update(t::table.find(&user.id))
        .set((
            t::mfa_method.eq("email"),
            t::totp_secret_enc.eq(Some(vec![1u8, 2])),
        ))
        .execute(&mut *conn);
    assert!(refused.is_err(), "check constraint must refuse two factors");
    assert!(!users::set_mfa(&mut conn, &id(), &MfaSetting::Email, now()).expect("unknown id"));
}

fn users_totp_step_accepted_once(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "totp@example.org");
    assert!(
        !users::accept_totp_step(&mut conn, &user.id, 100).expect("q"),
        "no step is accepted without TOTP enrolled"
    );
    users::set_mfa(&mut conn, &user.id, &MfaSetting::Totp(vec![1; 20]), now()).expect("totp");
    assert!(users::accept_totp_step(&mut conn, &user.id, 100).expect("q"));
    assert!(
        !users::accept_totp_step(&mut conn, &user.id, 100).expect("q"),
        "same step twice"
    );
    assert!(
        !users::accept_totp_step(&mut conn, &user.id, 99).expect("q"),
        "older step"
    );
    assert!(users::accept_totp_step(&mut conn, &user.id, 101).expect("q"));
    let u = users::find_by_id(&mut conn, &user.id)
        .expect("q")
        .expect("found");
    assert_eq!(u.totp_last_step, Some(101));
}

fn attempt_counters_count_lock_and_forget(db: &TestDb) {
    use idp::store::attempt_counters::{self, Counted, Counter};
    let mut conn = db.conn();
    let t = now();
    let window = t - Duration::minutes(15);
    let count = |conn: &mut DbConnection, counter, at| {
        attempt_counters::count_attempt(conn, "k1", counter, at - Duration::minutes(15), at)
            .expect("count")
    };
    assert_eq!(
        count(&mut conn, Counter::Password, t),
        Counted::Failures {
            count: 1,
            lock_count: 0
        }
    );
    assert_eq!(
        count(&mut conn, Counter::Password, t),
        Counted::Failures {
            count: 2,
            lock_count: 0
        }
    );
    assert_eq!(
        count(&mut conn, Counter::SecondFactor, t),
        Counted::Failures {
            count: 1,
            lock_count: 0
        },
        "separate counters"
    );
    // Sixteen minutes later the window has passed: counting starts over, for both counters.
    let later = t + Duration::minutes(16);
    assert_eq!(
        count(&mut conn, Counter::Password, later),
        Counted::Failures {
            count: 1,
            lock_count: 0
        }
    );
    let row = attempt_counters::find(&mut conn, "k1")
        .expect("q")
        .expect("row");
    assert_eq!(
        (row.second_factor_failures, row.window_started_at),
        (0, later),
        "the other counter starts over with the window"
    );

    let until = later + Duration::minutes(15);
    assert!(attempt_counters::lock(&mut conn, "k1", until, later).expect("lock"));
    assert!(
        !attempt_counters::lock(&mut conn, "k1", until, later).expect("lock"),
        "already locked"
    );
    assert_eq!(
        count(&mut conn, Counter::Password, later),
        Counted::Locked(until)
    );
    assert_eq!(
        attempt_counters::locked_until(&mut conn, "k1", later).expect("q"),
        Some(until)
    );
    // Once the lock is over, attempts count again and the lock is remembered.
    let after = until + Duration::seconds(1);
    assert_eq!(
        count(&mut conn, Counter::SecondFactor, after),
        Counted::Failures {
            count: 1,
            lock_count: 1
        }
    );
    attempt_counters::reset_counter(&mut conn, "k1", Counter::SecondFactor, after).expect("reset");
    assert_eq!(
        attempt_counters::find(&mut conn, "k1")
            .expect("q")
            .expect("row")
            .second_factor_failures,
        0
    );
    assert!(attempt_counters::clear(&mut conn, "k1").expect("clear"));
    assert!(attempt_counters::find(&mut conn, "k1")
        .expect("q")
        .is_none());

    // Idle rows are purged, locked ones kept.
    count(&mut conn, Counter::Password, window);
    attempt_counters::count_attempt(&mut conn, "k2", Counter::Password, window, t).expect("k2");
    attempt_counters::lock(&mut conn, "k2", t + Duration::days(1), t).expect("lock");
    let purged =
        attempt_counters::purge_idle(&mut conn, t + Duration::hours(2), t + Duration::hours(1))
            .expect("purge");
    assert_eq!(purged, 1);
    assert!(attempt_counters::find(&mut conn, "k2")
        .expect("q")
        .is_some());
}

fn attempt_counters_concurrent_attempts_counted_exactly(db: &TestDb) {
    use idp::store::attempt_counters::{self, Counted, Counter};
    let threads = 8;
    let per_thread = 20;
    let mut all: Vec<i32> = at_once(db, threads, move |_, conn| {
        let mut seen = Vec::new();
        for _ in 0..per_thread {
            let t = now();
            match attempt_counters::count_attempt(
                conn,
                "race",
                Counter::Password,
                t - Duration::minutes(15),
                t,
            )
            .expect("count")
            {
                Counted::Failures { count, .. } => seen.push(count),
                Counted::Locked(_) => panic!("never locked here"),
            }
        }
        seen
    })
    .into_iter()
    .flatten()
    .collect();
    all.sort_unstable();
    let expected: Vec<i32> = (1..=i32::try_from(threads * per_thread).expect("fits")).collect();
    assert_eq!(all, expected, "every attempt got its own number");
}

fn users_set_email_and_disabled(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "old@example.org");
    add_user(&mut conn, "taken@example.org");
    assert!(users::set_email(&mut conn, &user.id, " New@Example.org", true, now()).expect("set"));
    assert!(users::find_by_email(&mut conn, "old@example.org")
        .expect("q")
        .is_none());
    let u = users::find_by_email(&mut conn, "new@example.org")
        .expect("q")
        .expect("found");
    assert_eq!(u.email, "New@Example.org");
    assert!(u.email_verified);
    let err = users::set_email(&mut conn, &user.id, "TAKEN@example.org", true, now())
        .expect_err("taken address refused");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    assert!(users::set_disabled(&mut conn, &user.id, true, now()).expect("disable"));
    assert!(
        users::find_by_id(&mut conn, &user.id)
            .expect("q")
            .expect("found")
            .disabled
    );
    assert!(users::set_disabled(&mut conn, &user.id, false, now()).expect("enable"));
    assert!(
        !users::find_by_id(&mut conn, &user.id)
            .expect("q")
            .expect("found")
            .disabled
    );
}

fn clients_upsert_find_list(db: &TestDb) {
    let mut conn = db.conn();
    let created = add_client(&mut conn, "file-portal");
    assert_eq!(
        created.redirect_uris,
        vec!["https://portal.example.org/callback"]
    );
    assert_eq!(created.allowed_scopes, vec!["openid", "email", "profile"]);
    assert_eq!(
        created.backchannel_logout_uri.as_deref(),
        Some("https://portal.example.org/backchannel")
    );

    let mut changed = client("file-portal");
    changed.name = "Portail dossier".into();
    changed.redirect_uris = vec![
        "https://a.example.org/cb".into(),
        "https://b.example.org/cb?x=\"1\"".into(),
    ];
    changed.backchannel_logout_uri = None;
    let later = now() + Duration::seconds(5);
    clients::upsert(&mut conn, &changed, later).expect("update");
    let found = clients::find(&mut conn, "file-portal")
        .expect("q")
        .expect("found");
    assert_eq!(found.name, "Portail dossier");
    assert_eq!(found.redirect_uris, changed.redirect_uris);
    assert_eq!(found.backchannel_logout_uri, None);
    assert_eq!(
        found.created_at, created.created_at,
        "created_at survives an update"
    );
    assert_eq!(found.updated_at, later);

    add_client(&mut conn, "atip-portal");
    let ids: Vec<_> = clients::list(&mut conn)
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec!["atip-portal", "file-portal"]);
    assert!(clients::find(&mut conn, "nope").expect("q").is_none());
}

fn clients_secret_and_enabled(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "c1");
    assert!(clients::set_secret_hash(&mut conn, "c1", &[7; 32], now()).expect("rotate"));
    assert!(clients::set_enabled(&mut conn, "c1", false, now()).expect("disable"));
    let c = clients::find(&mut conn, "c1").expect("q").expect("found");
    assert_eq!(c.secret_hash, Some(vec![7; 32]));
    assert!(!c.enabled);
    assert!(!clients::set_secret_hash(&mut conn, "nope", &[1], now()).expect("unknown"));
    assert!(!clients::set_enabled(&mut conn, "nope", true, now()).expect("unknown"));

    let mut public = client("spa");
    public.kind = "public".into();
    public.secret_hash = None;
    clients::upsert(&mut conn, &public, now()).expect("public clients need no secret");
}

fn clients_confidential_needs_secret(db: &TestDb) {
    let mut conn = db.conn();
    let mut bad = client("bad");
    bad.secret_hash = None;
    assert!(clients::upsert(&mut conn, &bad, now()).is_err());
    assert!(
        clients::find(&mut conn, "bad").expect("q").is_none(),
        "nothing half-written"
    );
}

fn signing_keys_lifecycle(db: &TestDb) {
    let mut conn = db.conn();
    let t0 = now();
    let key = |kid: &str, created_at| SigningKeyRecord {
        kid: kid.into(),
        alg: "RS256".into(),
        private_key_enc: vec![1, 2, 3],
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at,
        retired_at: None,
        publish_until: None,
    };
    signing_keys::insert(&mut conn, &key("old", t0)).expect("insert");
    signing_keys::insert(&mut conn, &key("new", t0 + Duration::seconds(1))).expect("insert");
    let active: Vec<_> = signing_keys::active(&mut conn)
        .expect("q")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(active, vec!["new", "old"]);

    let until = t0 + Duration::hours(1);
    assert!(signing_keys::retire(&mut conn, "old", t0, until).expect("retire"));
    assert!(!signing_keys::retire(&mut conn, "old", t0, until).expect("retire twice"));
    let active: Vec<_> = signing_keys::active(&mut conn)
        .expect("q")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(active, vec!["new"]);
    let published: Vec<_> = signing_keys::publishable(&mut conn, t0 + Duration::minutes(30))
        .expect("q")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        published,
        vec!["new", "old"],
        "retired key published until its tokens expire"
    );
    let published: Vec<_> = signing_keys::publishable(&mut conn, t0 + Duration::hours(2))
        .expect("q")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(published, vec!["new"]);
    let all = signing_keys::list(&mut conn).expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].private_key_enc, vec![1, 2, 3]);
    assert!(
        signing_keys::insert(&mut conn, &key("new", t0)).is_err(),
        "kid is unique"
    );
}

fn login_transactions_lifecycle(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    let user = add_user(&mut conn, "tx@example.org");
    let t = now();
    let tx = LoginTransactionRecord {
        id: id(),
        client_id: "portal".into(),
        request: r#"{"scope":"openid"}"#.into(),
        user_id: None,
        step: "password".into(),
        created_at: t,
        expires_at: t + Duration::minutes(30),
        data: "{}".into(),
    };
    login_transactions::insert(&mut conn, &tx).expect("insert");
    assert_eq!(
        login_transactions::find_live(&mut conn, &tx.id, t).expect("q"),
        Some(tx.clone())
    );
    assert!(
        login_transactions::find_live(&mut conn, &tx.id, t + Duration::hours(1))
            .expect("q")
            .is_none()
    );

    assert!(
        !login_transactions::advance(&mut conn, &tx.id, "mfa", "done", Some(&user.id), "{}")
            .expect("q")
    );
    assert!(login_transactions::advance(
        &mut conn,
        &tx.id,
        "password",
        "mfa",
        Some(&user.id),
        r#"{"email":"tx@example.org"}"#
    )
    .expect("q"));
    assert!(
        !login_transactions::advance(&mut conn, &tx.id, "password", "mfa", Some(&user.id), "{}")
            .expect("q"),
        "advances once"
    );
    let found = login_transactions::find_live(&mut conn, &tx.id, t)
        .expect("q")
        .expect("live");
    assert_eq!(
        (found.step.as_str(), found.user_id.as_deref()),
        ("mfa", Some(user.id.as_str()))
    );
    assert_eq!(found.data, r#"{"email":"tx@example.org"}"#);

    let old = LoginTransactionRecord {
        id: id(),
        expires_at: t - Duration::seconds(1),
        ..tx.clone()
    };
    login_transactions::insert(&mut conn, &old).expect("insert");
    assert_eq!(
        login_transactions::purge_expired(&mut conn, t).expect("purge"),
        1
    );
    assert!(login_transactions::delete(&mut conn, &tx.id).expect("delete"));
    assert!(!login_transactions::delete(&mut conn, &tx.id).expect("delete again"));
}

fn login_transactions_enforce_foreign_keys(db: &TestDb) {
    let mut conn = db.conn();
    let t = now();
    let orphan = LoginTransactionRecord {
        id: id(),
        client_id: "no-such-client".into(),
        request: "{}".into(),
        user_id: None,
        step: "password".into(),
        created_at: t,
        expires_at: t + Duration::minutes(30),
        data: "{}".into(),
    };
    assert!(
        login_transactions::insert(&mut conn, &orphan).is_err(),
        "foreign keys are enforced on every connection"
    );
}

fn sso_sessions_lifecycle(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "sso@example.org");
    let t = now();
    let s1 = session(&user.id, t + Duration::hours(8));
    let s2 = session(&user.id, t + Duration::hours(8));
    let gone = session(&user.id, t - Duration::seconds(1));
    for s in [&s1, &s2, &gone] {
        sso_sessions::insert(&mut conn, s).expect("insert");
    }
    assert_eq!(
        sso_sessions::find_live(&mut conn, &s1.id, t).expect("q"),
        Some(s1.clone())
    );
    assert!(
        sso_sessions::find_live(&mut conn, &gone.id, t)
            .expect("q")
            .is_none(),
        "expired"
    );
    assert_eq!(
        sso_sessions::find_by_sid(&mut conn, &s2.sid)
            .expect("q")
            .map(|s| s.id),
        Some(s2.id.clone())
    );
    assert_eq!(
        sso_sessions::live_for_user(&mut conn, &user.id, t)
            .expect("q")
            .len(),
        2
    );

    let later = t + Duration::minutes(5);
    assert!(sso_sessions::touch(&mut conn, &s1.id, later).expect("touch"));
    assert_eq!(
        sso_sessions::find_live(&mut conn, &s1.id, t)
            .expect("q")
            .expect("live")
            .last_seen_at,
        later
    );

    assert!(sso_sessions::end(&mut conn, &s1.id, later).expect("end"));
    assert!(!sso_sessions::end(&mut conn, &s1.id, later).expect("end twice"));
    assert!(!sso_sessions::touch(&mut conn, &s1.id, later).expect("touch ended"));
    assert!(sso_sessions::find_live(&mut conn, &s1.id, t)
        .expect("q")
        .is_none());
    let ended = sso_sessions::end_all_for_user(&mut conn, &user.id, later).expect("end all");
    assert_eq!(ended.len(), 2);
    assert!(ended
        .iter()
        .all(|s| s.user_id == user.id && s.ended_at == Some(later)));
    assert!(sso_sessions::end_all_for_user(&mut conn, &user.id, later)
        .expect("end all again")
        .is_empty());
    assert!(sso_sessions::live_for_user(&mut conn, &user.id, t)
        .expect("q")
        .is_empty());
}

fn codes_new_code_supersedes_previous(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "code@example.org");
    let t = now();
    let first = code(&user.id, "login", t);
    let second = code(&user.id, "login", t + Duration::seconds(31));
    let other_purpose = code(&user.id, "reset", t);
    one_time_codes::issue(&mut conn, &first).expect("issue");
    one_time_codes::issue(&mut conn, &other_purpose).expect("issue");
    one_time_codes::issue(&mut conn, &second).expect("issue");

    let latest = one_time_codes::latest(&mut conn, &user.id, "login")
        .expect("q")
        .expect("some");
    assert_eq!(latest.id, second.id);
    let old = one_time_codes::find(&mut conn, &first.id)
        .expect("q")
        .expect("kept");
    assert_eq!(
        old.superseded_at,
        Some(second.created_at),
        "a new code kills the previous one"
    );
    assert!(!one_time_codes::consume(&mut conn, &first.id, t + Duration::seconds(40)).expect("q"));
    assert!(one_time_codes::consume(&mut conn, &second.id, t + Duration::seconds(40)).expect("q"));
    assert!(
        !one_time_codes::consume(&mut conn, &second.id, t + Duration::seconds(41)).expect("q"),
        "single use"
    );
    let reset = one_time_codes::find(&mut conn, &other_purpose.id)
        .expect("q")
        .expect("kept");
    assert_eq!(reset.superseded_at, None, "other purposes untouched");
    assert!(one_time_codes::find(&mut conn, &id()).expect("q").is_none());
}

fn codes_belong_to_the_sign_in_that_asked(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "deux@example.org");
    let t = now();
    let owners = code(&user.id, "reset", t);
    // Someone else asks for a reset code for the same person, from another sign-in and
    // address, after the owner did.
    let strangers = OneTimeCodeRecord {
        requested_in: Some("sign-in-2".into()),
        requested_from: Some("address-2".into()),
        ..code(&user.id, "reset", t + Duration::seconds(5))
    };
    one_time_codes::issue(&mut conn, &owners).expect("issue");
    one_time_codes::issue(&mut conn, &strangers).expect("issue");
    let kept = one_time_codes::find(&mut conn, &owners.id)
        .expect("q")
        .expect("kept");
    assert_eq!(kept.superseded_at, None, "another sign-in's code lives on");
    let judged = |conn: &mut idp::store::DbConnection, tx: Option<&str>| -> Vec<String> {
        one_time_codes::recent(conn, &user.id, "reset", tx, 6)
            .expect("q")
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(
        judged(&mut conn, Some("sign-in-1")),
        vec![owners.id.clone()]
    );
    assert_eq!(
        judged(&mut conn, Some("sign-in-2")),
        vec![strangers.id.clone()]
    );
    assert!(
        judged(&mut conn, None).is_empty(),
        "no code outside a sign-in"
    );
    // A new code in the owner's sign-in replaces only the owner's.
    let again = code(&user.id, "reset", t + Duration::seconds(40));
    one_time_codes::issue(&mut conn, &again).expect("issue");
    let find = |conn: &mut idp::store::DbConnection, id: &str| {
        one_time_codes::find(conn, id).expect("q").expect("kept")
    };
    assert_eq!(
        find(&mut conn, &owners.id).superseded_at,
        Some(again.created_at)
    );
    assert_eq!(find(&mut conn, &strangers.id).superseded_at, None);
    // The resend limits see every sign-in's unused codes, with the address that asked.
    let mut sent: Vec<(NaiveDateTime, Option<String>)> =
        one_time_codes::unused_issued_since(&mut conn, &user.id, "reset", t)
            .expect("q")
            .into_iter()
            .map(|s| (s.created_at, s.requested_from))
            .collect();
    sent.sort();
    let at = |c: &OneTimeCodeRecord| (c.created_at, c.requested_from.clone());
    assert_eq!(sent, vec![at(&owners), at(&strangers), at(&again)]);
}

fn backchannel_deliveries_are_taken_once(db: &TestDb) {
    use idp::store::backchannel_deliveries::{self, Delivery};
    let mut conn = db.conn();
    let t = now();
    let first = Delivery {
        id: id(),
        client_id: "portal".into(),
        user_id: id(),
        sid: id(),
        attempts: 0,
        next_attempt_at: t,
        created_at: t,
    };
    let later = Delivery {
        id: id(),
        next_attempt_at: t + Duration::seconds(10),
        ..first.clone()
    };
    backchannel_deliveries::enqueue(&mut conn, &first).expect("queue");
    backchannel_deliveries::enqueue(&mut conn, &later).expect("queue");
    let due = |conn: &mut DbConnection, at| -> Vec<String> {
        backchannel_deliveries::due(conn, at, 10)
            .expect("due")
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(due(&mut conn, t), vec![first.id.clone()]);
    let lease = t + Duration::seconds(30);
    assert!(backchannel_deliveries::claim(&mut conn, &first, t, lease).expect("claim"));
    assert!(
        !backchannel_deliveries::claim(&mut conn, &first, t, lease).expect("claim"),
        "taken once"
    );
    assert_eq!(
        due(&mut conn, t + Duration::seconds(20)),
        vec![later.id.clone()],
        "leased, not due"
    );
    assert_eq!(
        due(&mut conn, t + Duration::seconds(31)),
        vec![later.id.clone(), first.id.clone()],
        "due again once the lease is over"
    );
    backchannel_deliveries::reschedule(&mut conn, &first.id, 1, t + Duration::seconds(60))
        .expect("reschedule");
    assert!(
        !backchannel_deliveries::claim(&mut conn, &first, t + Duration::seconds(61), lease)
            .expect("claim"),
        "a claim of an earlier attempt takes nothing"
    );
    let rescheduled = Delivery {
        attempts: 1,
        next_attempt_at: t + Duration::seconds(60),
        ..first.clone()
    };
    assert!(backchannel_deliveries::claim(
        &mut conn,
        &rescheduled,
        t + Duration::seconds(61),
        t + Duration::seconds(91)
    )
    .expect("claim"));
    // Reading the queue takes what is due, once: the later notice; the first is leased.
    let take = |conn: &mut DbConnection| -> Vec<String> {
        let at = t + Duration::seconds(70);
        backchannel_deliveries::take_due(conn, at, at + Duration::seconds(30), 10)
            .expect("take")
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(take(&mut conn), vec![later.id.clone()]);
    assert!(take(&mut conn).is_empty(), "taken once");
    assert!(backchannel_deliveries::remove(&mut conn, &first.id).expect("remove"));
    assert!(!backchannel_deliveries::remove(&mut conn, &first.id).expect("remove"));
    assert_eq!(backchannel_deliveries::count(&mut conn).expect("count"), 1);
}

fn codes_attempt_limit(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "tries@example.org");
    let t = now();
    let c = code(&user.id, "login", t);
    one_time_codes::issue(&mut conn, &c).expect("issue");
    for expected in 1..=5 {
        assert_eq!(
            one_time_codes::register_failure(&mut conn, &c.id, t).expect("q"),
            Some(expected)
        );
    }
    assert_eq!(
        one_time_codes::register_failure(&mut conn, &c.id, t).expect("q"),
        None,
        "dead after 5"
    );
    assert!(
        !one_time_codes::consume(&mut conn, &c.id, t).expect("q"),
        "no tries left"
    );
}

fn codes_attempt_limit_holds_under_concurrency(db: &TestDb) {
    let user = add_user(&mut db.conn(), "burst@example.org");
    let c = code(&user.id, "login", now());
    one_time_codes::issue(&mut db.conn(), &c).expect("issue");
    let code_id = c.id.clone();
    let counted: usize = at_once(db, 10, move |_, conn| {
        (0..5)
            .filter(|_| {
                one_time_codes::register_failure(conn, &code_id, now())
                    .expect("q")
                    .is_some()
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(
        counted, 5,
        "50 concurrent wrong guesses never get more than 5 tries"
    );
}

fn codes_expiry_counting_and_purge(db: &TestDb) {
    let mut conn = db.conn();
    let user = add_user(&mut conn, "exp@example.org");
    let t = now();
    let c = code(&user.id, "login", t);
    one_time_codes::issue(&mut conn, &c).expect("issue");
    assert!(
        !one_time_codes::consume(&mut conn, &c.id, t + Duration::minutes(10)).expect("q"),
        "expired at 10 min"
    );
    assert_eq!(
        one_time_codes::register_failure(&mut conn, &c.id, t + Duration::minutes(11)).expect("q"),
        None
    );
    one_time_codes::issue(
        &mut conn,
        &code(&user.id, "login", t + Duration::minutes(1)),
    )
    .expect("issue");
    assert_eq!(
        one_time_codes::count_issued_since(&mut conn, &user.id, "login", t).expect("q"),
        2
    );
    assert_eq!(
        one_time_codes::count_issued_since(&mut conn, &user.id, "login", t + Duration::seconds(30))
            .expect("q"),
        1
    );
    assert_eq!(
        one_time_codes::count_issued_since(&mut conn, &user.id, "reset", t).expect("q"),
        0
    );
    assert_eq!(
        one_time_codes::purge_expired(&mut conn, t + Duration::minutes(10) + Duration::seconds(1))
            .expect("purge"),
        1
    );
    assert!(one_time_codes::find(&mut conn, &c.id).expect("q").is_none());
}

fn authorization_codes_single_use(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    let user = add_user(&mut conn, "ac@example.org");
    let t = now();
    let record = AuthorizationCodeRecord {
        code_hash: vec![0xAB; 32],
        client_id: "portal".into(),
        user_id: user.id.clone(),
        session_id: id(),
        redirect_uri: "https://portal.example.org/callback".into(),
        scope: "openid email".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        auth_time: t,
        amr: "pwd otp mfa".into(),
        acr: "mfa".into(),
        created_at: t,
        expires_at: t + Duration::seconds(60),
        consumed_at: None,
    };
    authorization_codes::insert(&mut conn, &record).expect("insert");
    let at = t + Duration::seconds(1);
    match authorization_codes::redeem(&mut conn, &record.code_hash, at).expect("q") {
        Redemption::Redeemed(r) => {
            assert_eq!(r.consumed_at, Some(at));
            assert_eq!(r.nonce, record.nonce);
            assert_eq!(r.code_challenge, record.code_challenge);
        }
        other => panic!("expected first redemption, got {other:?}"),
    }
    assert!(matches!(
        authorization_codes::redeem(&mut conn, &record.code_hash, at).expect("q"),
        Redemption::Replayed(_)
    ));
    assert_eq!(
        authorization_codes::redeem(&mut conn, &[1; 32], at).expect("q"),
        Redemption::Unknown
    );

    let late = AuthorizationCodeRecord {
        code_hash: vec![0xCD; 32],
        ..record.clone()
    };
    authorization_codes::insert(&mut conn, &late).expect("insert");
    assert_eq!(
        authorization_codes::redeem(&mut conn, &late.code_hash, t + Duration::seconds(61))
            .expect("q"),
        Redemption::Expired
    );
    assert_eq!(
        authorization_codes::purge_expired(&mut conn, t + Duration::seconds(61)).expect("purge"),
        2
    );
}

/// Eight connections rotate one token at once, each with its own successor: exactly one
/// succeeds, and only its successor is stored.
fn refresh_tokens_rotate_once_under_concurrency(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    let user = add_user(&mut conn, "race@example.org");
    let family = id();
    let first = refresh(&user.id, "portal", &family, None);
    refresh_tokens::insert(&mut conn, &first).expect("insert");
    let old = first.token_hash.clone();
    let user_id = user.id.clone();
    let outcomes = at_once(db, 8, move |_, conn| {
        let successor = refresh(&user_id, "portal", &family, None);
        let rotated = idp::store::write_transaction(conn, |conn| {
            refresh_tokens::rotate(conn, &old, &successor, None, now())
        })
        .expect("rotate");
        (rotated, successor.token_hash)
    });
    let winners: Vec<&Vec<u8>> = outcomes
        .iter()
        .filter(|(rotated, _)| *rotated)
        .map(|(_, hash)| hash)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    for (rotated, hash) in &outcomes {
        let stored = refresh_tokens::find(&mut conn, hash).expect("find");
        assert_eq!(
            stored.is_some(),
            *rotated,
            "only the winner's successor is stored"
        );
    }
    let old = refresh_tokens::find(&mut conn, &first.token_hash)
        .expect("find")
        .expect("old token");
    assert!(old.rotated_at.is_some());
}

/// `refresh_tokens::spend_many` for one use.
fn spend_one(
    conn: &mut DbConnection,
    old: &[u8],
    client: &str,
    next: &[u8],
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Option<refresh_tokens::SpentToken> {
    let one = refresh_tokens::Spend {
        old_hash: old.to_vec(),
        client_id: client.into(),
        successor_hash: next.to_vec(),
        expires_at,
    };
    let mut spent = refresh_tokens::spend_many(conn, &[one], now).expect("spend");
    assert_eq!(spent.len(), 1, "one answer per use");
    spent.pop().flatten()
}

/// The usual refresh in one step: only the client's own live token of an enabled person is
/// spent, its successor carries the grant on, and a refusal writes nothing. Eight concurrent
/// uses of one token spend it once.
fn refresh_tokens_spent_without_reading_first(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    add_client(&mut conn, "other");
    let user = add_user(&mut conn, "spend@example.org");
    let t = now();
    let family = id();
    let first = refresh(&user.id, "portal", &family, Some("sid-9"));
    refresh_tokens::insert(&mut conn, &first).expect("insert");
    let spend = |conn: &mut DbConnection, old: &[u8], client: &str, next: &[u8]| {
        spend_one(conn, old, client, next, t, t + Duration::days(30))
    };
    let stored =
        |conn: &mut DbConnection, hash: &[u8]| refresh_tokens::find(conn, hash).expect("find");

    // Another client's attempt and a disabled person's are refused and spend nothing.
    let next = id().into_bytes();
    assert_eq!(spend(&mut conn, &first.token_hash, "other", &next), None);
    assert!(users::set_disabled(&mut conn, &user.id, true, t).expect("disable"));
    assert_eq!(spend(&mut conn, &first.token_hash, "portal", &next), None);
    assert!(users::set_disabled(&mut conn, &user.id, false, t).expect("enable"));
    assert_eq!(stored(&mut conn, &first.token_hash), Some(first.clone()));
    assert_eq!(stored(&mut conn, &next), None);

    let spent = spend(&mut conn, &first.token_hash, "portal", &next).expect("spent");
    assert_eq!(
        spent,
        refresh_tokens::SpentToken {
            family_id: family.clone(),
            user_id: user.id.clone(),
            scope: "openid email".into(),
        }
    );
    assert_eq!(
        stored(&mut conn, &first.token_hash)
            .expect("kept")
            .rotated_at,
        Some(t)
    );
    let successor = stored(&mut conn, &next).expect("successor stored");
    assert_eq!(
        successor,
        RefreshTokenRecord {
            token_hash: next.clone(),
            created_at: t,
            expires_at: t + Duration::days(30),
            rotated_at: None,
            revoked_at: None,
            retry_response_enc: None,
            ..first.clone()
        }
    );

    // Spent, revoked or expired: nothing more is written.
    let again = id().into_bytes();
    assert_eq!(spend(&mut conn, &first.token_hash, "portal", &again), None);
    assert_eq!(stored(&mut conn, &again), None);
    let expired = RefreshTokenRecord {
        expires_at: t,
        ..refresh(&user.id, "portal", &id(), None)
    };
    refresh_tokens::insert(&mut conn, &expired).expect("insert");
    assert_eq!(
        spend(&mut conn, &expired.token_hash, "portal", &again),
        None
    );
    assert!(refresh_tokens::revoke(&mut conn, &next, t).expect("revoke"));
    assert_eq!(spend(&mut conn, &next, "portal", &again), None);
    assert_eq!(stored(&mut conn, &again), None);

    let live = refresh(&user.id, "portal", &id(), None);
    refresh_tokens::insert(&mut conn, &live).expect("insert");
    let old = live.token_hash.clone();
    let outcomes = at_once(db, 8, move |_, conn| {
        let next = id().into_bytes();
        let t = now();
        let spent = spend_one(conn, &old, "portal", &next, t, t + Duration::days(1));
        (spent.is_some(), next)
    });
    assert_eq!(
        outcomes.iter().filter(|(spent, _)| *spent).count(),
        1,
        "one use spends it"
    );
    for (spent, next) in &outcomes {
        assert_eq!(stored(&mut conn, next).is_some(), *spent);
    }
}

/// Several uses at once: each is answered for itself, two uses of one token spend it once,
/// and only what was spent has a successor.
fn refresh_tokens_spent_together(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    add_client(&mut conn, "other");
    let user = add_user(&mut conn, "together@example.org");
    let disabled = add_user(&mut conn, "disabled@example.org");
    let t = now();
    assert!(users::set_disabled(&mut conn, &disabled.id, true, t).expect("disable"));
    let tokens: Vec<RefreshTokenRecord> = (0..3)
        .map(|_| refresh(&user.id, "portal", &id(), None))
        .chain([refresh(&disabled.id, "portal", &id(), None)])
        .collect();
    for token in &tokens {
        refresh_tokens::insert(&mut conn, token).expect("insert");
    }
    let spend = |token: &[u8], client: &str| refresh_tokens::Spend {
        old_hash: token.to_vec(),
        client_id: client.into(),
        successor_hash: id().into_bytes(),
        expires_at: t + Duration::days(1),
    };
    let spends = vec![
        spend(&tokens[0].token_hash, "portal"),
        spend(&tokens[1].token_hash, "other"),
        spend(&tokens[2].token_hash, "portal"),
        spend(&tokens[2].token_hash, "portal"),
        spend(&tokens[3].token_hash, "portal"),
        spend(b"no such token", "portal"),
    ];
    assert_eq!(
        refresh_tokens::spend_many(&mut conn, &[], t).expect("nothing"),
        Vec::new()
    );
    let outcomes = refresh_tokens::spend_many(&mut conn, &spends, t).expect("spend");
    assert_eq!(outcomes.len(), spends.len());
    let spent_as = |n: usize| refresh_tokens::SpentToken {
        family_id: tokens[n].family_id.clone(),
        user_id: user.id.clone(),
        scope: "openid email".into(),
    };
    assert_eq!(outcomes[0], Some(spent_as(0)));
    assert_eq!(outcomes[1], None, "another client's use");
    assert_eq!(
        [&outcomes[2], &outcomes[3]]
            .iter()
            .filter(|o| o.is_some())
            .count(),
        1,
        "one token used twice is spent once"
    );
    assert!(outcomes[2..4].iter().flatten().all(|o| *o == spent_as(2)));
    assert_eq!(outcomes[4], None, "a disabled person's");
    assert_eq!(outcomes[5], None, "an unknown token");
    for (spend, outcome) in spends.iter().zip(&outcomes) {
        let successor = refresh_tokens::find(&mut conn, &spend.successor_hash).expect("find");
        assert_eq!(successor.is_some(), outcome.is_some());
        if let (Some(successor), Some(spent)) = (successor, outcome) {
            assert_eq!(
                (successor.family_id, successor.user_id, successor.client_id),
                (
                    spent.family_id.clone(),
                    user.id.clone(),
                    "portal".to_string()
                )
            );
            assert_eq!(successor.expires_at, spend.expires_at);
        }
    }
    for (n, token) in tokens.iter().enumerate() {
        let stored = refresh_tokens::find(&mut conn, &token.token_hash)
            .expect("find")
            .expect("kept");
        assert_eq!(stored.rotated_at.is_some(), n == 0 || n == 2, "token {n}");
    }
}

/// Refresh tokens spent by the batching thread, many uses at once: each token spent once,
/// a successor stored for each use that spent one and for no other.
fn the_refresh_spender_spends_each_token_once(db: &TestDb) {
    use idp::oidc::refresh_spender::RefreshSpender;
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    let user = add_user(&mut conn, "spender@example.org");
    let tokens: Vec<RefreshTokenRecord> = (0..40)
        .map(|_| refresh(&user.id, "portal", &id(), None))
        .collect();
    for token in &tokens {
        refresh_tokens::insert(&mut conn, token).expect("insert");
    }
    let runtime = support::runtime();
    let spender = RefreshSpender::start(db.store.clone()).expect("spender");
    // Every token used once and the first twenty twice, all at once.
    let uses: Vec<Vec<u8>> = tokens
        .iter()
        .chain(&tokens[..20])
        .map(|t| t.token_hash.clone())
        .collect();
    let outcomes: Vec<(Vec<u8>, Vec<u8>, Option<refresh_tokens::SpentToken>)> =
        runtime.block_on(async {
            let tasks: Vec<_> = uses
                .into_iter()
                .map(|old| {
                    let spender = spender.clone();
                    tokio::spawn(async move {
                        let successor = id().into_bytes();
                        let spend = refresh_tokens::Spend {
                            old_hash: old.clone(),
                            client_id: "portal".into(),
                            successor_hash: successor.clone(),
                            expires_at: now() + Duration::days(1),
                        };
                        let spent = spender.spend(spend).await.expect("spend");
                        (old, successor, spent)
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.expect("join"));
            }
            outcomes
        });
    for token in &tokens {
        let spent: Vec<_> = outcomes
            .iter()
            .filter_map(|(old, _, spent)| spent.as_ref().filter(|_| *old == token.token_hash))
            .collect();
        assert_eq!(spent.len(), 1, "each token spent exactly once");
        assert_eq!(spent[0].family_id, token.family_id);
    }
    for (_, successor, spent) in &outcomes {
        assert_eq!(
            refresh_tokens::find(&mut conn, successor)
                .expect("find")
                .is_some(),
            spent.is_some()
        );
    }
}

fn refresh_tokens_rotation_and_revocation(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "portal");
    let user = add_user(&mut conn, "rt@example.org");
    let t = now();
    let family = id();
    let first = refresh(&user.id, "portal", &family, Some("sid-1"));
    refresh_tokens::insert(&mut conn, &first).expect("insert");
    let second = refresh(&user.id, "portal", &family, Some("sid-1"));
    assert!(
        refresh_tokens::rotate(&mut conn, &first.token_hash, &second, None, t).expect("rotate")
    );
    let third = refresh(&user.id, "portal", &family, Some("sid-1"));
    assert!(
        !refresh_tokens::rotate(&mut conn, &first.token_hash, &third, None, t).expect("reuse"),
        "an old token rotates once"
    );
    assert!(
        refresh_tokens::find(&mut conn, &third.token_hash)
            .expect("q")
            .is_none(),
        "no successor stored on reuse"
    );
    assert_eq!(
        refresh_tokens::find(&mut conn, &first.token_hash)
            .expect("q")
            .expect("kept")
            .rotated_at,
        Some(t)
    );

    assert_eq!(
        refresh_tokens::revoke_family(&mut conn, &family, t).expect("family"),
        2
    );
    assert!(
        !refresh_tokens::rotate(&mut conn, &second.token_hash, &third, None, t).expect("revoked")
    );
    assert_eq!(
        refresh_tokens::revoke_family(&mut conn, &family, t).expect("again"),
        0
    );

    let other = refresh(&user.id, "portal", &id(), Some("sid-2"));
    refresh_tokens::insert(&mut conn, &other).expect("insert");
    assert!(refresh_tokens::revoke(&mut conn, &other.token_hash, t).expect("revoke"));
    assert!(!refresh_tokens::revoke(&mut conn, &other.token_hash, t).expect("revoke twice"));
    let last = refresh(&user.id, "portal", &id(), Some("sid-2"));
    refresh_tokens::insert(&mut conn, &last).expect("insert");
    assert_eq!(
        refresh_tokens::revoke_for_session(&mut conn, &user.id, "sid-2", t).expect("session"),
        1
    );
    // A password reset revokes the person's tokens of every session, and only theirs.
    let stranger = add_user(&mut conn, "autre@example.org");
    let theirs = refresh(&stranger.id, "portal", &id(), Some("sid-9"));
    refresh_tokens::insert(&mut conn, &theirs).expect("insert");
    for sid in [Some("sid-3"), Some("sid-4"), None] {
        refresh_tokens::insert(&mut conn, &refresh(&user.id, "portal", &id(), sid))
            .expect("insert");
    }
    assert_eq!(
        refresh_tokens::revoke_for_user(&mut conn, &user.id, t).expect("person"),
        3
    );
    assert!(refresh_tokens::find(&mut conn, &theirs.token_hash)
        .expect("find")
        .is_some_and(|r| r.revoked_at.is_none()));

    let mut expired = refresh(&user.id, "portal", &id(), None);
    expired.expires_at = t - Duration::seconds(1);
    refresh_tokens::insert(&mut conn, &expired).expect("insert");
    assert!(
        !refresh_tokens::rotate(&mut conn, &expired.token_hash, &third, None, t).expect("expired")
    );
}

fn audit_event(event_type: &str, subject: Option<&str>) -> NewAuditEvent {
    NewAuditEvent {
        id: id(),
        occurred_at: now(),
        event_type: event_type.into(),
        actor: None,
        subject: subject.map(str::to_string),
        client_id: Some("portal".into()),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
        request_id: Some(id()),
        detail: r#"{"method":"totp"}"#.into(),
    }
}

fn audit_append_and_read(db: &TestDb) {
    let mut conn = db.conn();
    let a = audit::append(&mut conn, &audit_event("signin.succeeded", Some("u1"))).expect("append");
    let b = audit::append(&mut conn, &audit_event("token.issued", Some("u2"))).expect("append");
    let c = audit::append(&mut conn, &audit_event("signin.failed", Some("u1"))).expect("append");
    assert!(a < b && b < c, "sequence grows");
    let recent: Vec<_> = audit::recent(&mut conn, 2)
        .expect("q")
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(recent, vec![c, b]);
    let mine: Vec<_> = audit::for_subject(&mut conn, "u1", 10)
        .expect("q")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(mine, vec!["signin.failed", "signin.succeeded"]);
    assert_eq!(audit::count(&mut conn).expect("count"), 3);
}

fn audit_rows_cannot_be_changed(db: &TestDb) {
    let mut conn = db.conn();
    audit::append(&mut conn, &audit_event("signin.succeeded", Some("u1"))).expect("append");
    assert!(conn
        .batch_execute("UPDATE audit_events SET event_type = 'x'")
        .is_err());
    assert!(conn.batch_execute("DELETE FROM audit_events").is_err());
    assert_eq!(audit::count(&mut conn).expect("count"), 1);
}

/// Every filter of the auditor console narrows the log on its own and with the others: `from`
/// is inclusive and `until` exclusive; pages follow each other newest first with no row twice,
/// and `count_matching` counts what the filter selects up to a row.
fn audit_search_narrows_by_each_filter_and_pages(db: &TestDb) {
    let mut conn = db.conn();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .unwrap();
    // Twelve events an hour apart: subjects, portals, addresses and types in turn.
    let events: Vec<NewAuditEvent> = (0..12)
        .map(|i| NewAuditEvent {
            occurred_at: start + Duration::hours(i),
            client_id: Some(["portal-a", "portal-b", "portal-c"][i as usize % 3].into()),
            ip: Some(
                if i % 4 == 0 {
                    "192.0.2.1"
                } else {
                    "198.51.100.2"
                }
                .into(),
            ),
            ..audit_event(
                if i % 2 == 0 {
                    "token.issued"
                } else {
                    "signin.succeeded"
                },
                Some(if i < 6 { "u1" } else { "u2" }),
            )
        })
        .collect();
    audit::append_all(&mut conn, &events).expect("append");
    let newest = audit::last_seq(&mut conn).expect("q").expect("rows");
    // The hours (0 to 11 after `start`) of what `filter` selects, newest first.
    let hours = |conn: &mut DbConnection, filter: &audit::AuditFilter| -> Vec<i64> {
        audit::search(conn, filter, None, 100)
            .expect("search")
            .iter()
            .map(|e| (e.occurred_at - start).num_hours())
            .collect()
    };
    let all = audit::AuditFilter::default();
    assert_eq!(hours(&mut conn, &all), (0..12).rev().collect::<Vec<_>>());
    let hour = |h: i64| Some(start + Duration::hours(h));
    let text = |t: &str| Some(t.to_string());
    let client = audit::AuditFilter {
        client_id: text("portal-b"),
        ..all.clone()
    };
    // Each filter alone, then several together, with the hours it must select.
    let cases: [(&str, audit::AuditFilter, Vec<i64>); 7] = [
        (
            "from inclusive, until exclusive",
            audit::AuditFilter {
                from: hour(3),
                until: hour(7),
                ..all.clone()
            },
            vec![6, 5, 4, 3],
        ),
        (
            "subject",
            audit::AuditFilter {
                subject: text("u2"),
                ..all.clone()
            },
            vec![11, 10, 9, 8, 7, 6],
        ),
        ("client", client.clone(), vec![10, 7, 4, 1]),
        (
            "event type",
            audit::AuditFilter {
                event_type: text("signin.succeeded"),
                ..all.clone()
            },
            vec![11, 9, 7, 5, 3, 1],
        ),
        (
            "address",
            audit::AuditFilter {
                ip: text("192.0.2.1"),
                ..all.clone()
            },
            vec![8, 4, 0],
        ),
        (
            "time, subject and type together",
            audit::AuditFilter {
                from: hour(2),
                until: hour(11),
                subject: text("u2"),
                event_type: text("token.issued"),
                ..all.clone()
            },
            vec![10, 8, 6],
        ),
        (
            "an empty intersection",
            audit::AuditFilter {
                event_type: text("signin.succeeded"),
                ip: text("192.0.2.1"),
                ..all.clone()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in cases {
        assert_eq!(hours(&mut conn, &filter), expected, "{what}");
    }

    // Pages of five of the whole log: each starts below the last row of the one before.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = audit::search(&mut conn, &all, before, 5).expect("page");
        seen.extend(page.iter().map(|e| e.seq));
        match page.last() {
            Some(last) if page.len() == 5 => before = Some(last.seq),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 12);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no row twice: {seen:?}"
    );
    assert_eq!(seen[0], newest);

    assert_eq!(
        audit::count_matching(&mut conn, &client, newest).expect("count"),
        4
    );
    // Up to the row of hour 6: portal-b's rows of hours 1 and 4.
    assert_eq!(
        audit::count_matching(&mut conn, &client, seen[5]).expect("count"),
        2
    );
}

fn revoked_access_tokens_are_remembered_until_expiry(db: &TestDb) {
    let mut conn = db.conn();
    let t = now();
    assert!(!revoked_access_tokens::is_revoked(&mut conn, "jti-1").expect("q"));
    revoked_access_tokens::revoke(&mut conn, "jti-1", "portal", t + Duration::minutes(10), t)
        .expect("revoke");
    revoked_access_tokens::revoke(&mut conn, "jti-1", "portal", t + Duration::minutes(10), t)
        .expect("twice is fine");
    revoked_access_tokens::revoke(&mut conn, "jti-2", "portal", t - Duration::minutes(1), t)
        .expect("revoke");
    assert!(revoked_access_tokens::is_revoked(&mut conn, "jti-1").expect("q"));
    assert_eq!(
        revoked_access_tokens::purge_expired(&mut conn, t).expect("purge"),
        1
    );
    assert!(!revoked_access_tokens::is_revoked(&mut conn, "jti-2").expect("q"));
    assert!(revoked_access_tokens::is_revoked(&mut conn, "jti-1").expect("q"));
}

/// `Store::read` (inline on SQLite when a connection is idle, else through the blocking pool)
/// sees committed writes, and still answers when every connection is taken for a while.
fn short_reads_answer_with_or_without_an_idle_connection(db: &TestDb) {
    let t = now();
    revoked_access_tokens::revoke(
        &mut db.conn(),
        "jti-read",
        "portal",
        t + Duration::minutes(10),
        t,
    )
    .expect("revoke");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let read = |jti: &'static str| {
        runtime.block_on(
            db.store
                .read(move |conn| revoked_access_tokens::is_revoked(conn, jti)),
        )
    };
    assert!(read("jti-read").expect("idle connection"));
    assert!(!read("jti-other").expect("idle connection"));
    // Every connection of the pool (8) taken, then given back after a moment.
    let held: Vec<_> = (0..8)
        .map(|_| db.store.connection().expect("conn"))
        .collect();
    let giver = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(held);
    });
    assert!(read("jti-read").expect("waits for a connection"));
    giver.join().expect("thread");
}

fn sessions_remember_their_clients(db: &TestDb) {
    let mut conn = db.conn();
    add_client(&mut conn, "a-portal");
    add_client(&mut conn, "b-portal");
    let t = now();
    sso_sessions::add_client(&mut conn, "sid-1", "b-portal", t).expect("add");
    sso_sessions::add_client(&mut conn, "sid-1", "a-portal", t).expect("add");
    sso_sessions::add_client(&mut conn, "sid-1", "a-portal", t).expect("once per pair");
    sso_sessions::add_client(&mut conn, "sid-2", "a-portal", t).expect("add");
    // A repeat inside a transaction leaves the transaction usable (on PostgreSQL a failed
    // statement would abort it).
    idp::store::write_transaction(&mut conn, |conn| {
        sso_sessions::add_client(conn, "sid-2", "a-portal", t)?;
        sso_sessions::add_client(conn, "sid-2", "b-portal", t)
    })
    .expect("repeat inside a transaction");
    assert_eq!(
        sso_sessions::clients_of(&mut conn, "sid-2").expect("q"),
        vec!["a-portal", "b-portal"]
    );
    assert_eq!(
        sso_sessions::clients_of(&mut conn, "sid-1").expect("q"),
        vec!["a-portal", "b-portal"]
    );
    assert!(sso_sessions::clients_of(&mut conn, "sid-3")
        .expect("q")
        .is_empty());
    assert!(
        sso_sessions::add_client(&mut conn, "sid-1", "no-such-client", t).is_err(),
        "foreign key"
    );
}

/// The paired migration folders describe the same tables and columns.
#[test]
fn both_backends_have_the_same_schema() {
    #[derive(QueryableByName, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let sqlite_db = TestDb::sqlite();
    let pg_db = TestDb::postgres();
    let mut sqlite_cols: Vec<Column> = match &mut *sqlite_db.conn() {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND m.name <> '__diesel_schema_migrations'",
        )
        .load(c)
        .expect("sqlite columns"),
        DbConnection::Postgres(_) => panic!("expected SQLite"),
    };
    let mut pg_cols: Vec<Column> = match &mut *pg_db.conn() {
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations'",
        )
        .load(c)
        .expect("postgres columns"),
        DbConnection::Sqlite(_) => panic!("expected PostgreSQL"),
    };
    sqlite_cols.sort();
    pg_cols.sort();
    assert!(sqlite_cols.len() > 50, "schema read: {}", sqlite_cols.len());
    assert_eq!(sqlite_cols, pg_cols);
}

fn users_batch_insert_skips_what_is_taken(db: &TestDb) {
    let mut conn = db.conn();
    let mut held = new_user("held@example.org");
    held.member_code = Some("54321".into());
    users::insert(&mut conn, &held, now()).expect("insert");
    let mut batch: Vec<NewUser> = (0..50)
        .map(|i| new_user(&format!("batch{i}@example.org")))
        .collect();
    batch.push(new_user("HELD@example.org"));
    let mut same_code = new_user("other@example.org");
    same_code.member_code = Some("54321".into());
    batch.push(same_code);
    assert_eq!(
        users::insert_new(&mut conn, &batch, now()).expect("batch"),
        50
    );
    assert_eq!(users::count(&mut conn).expect("count"), 51);
    assert_eq!(
        users::insert_new(&mut conn, &batch, now()).expect("again"),
        0
    );
    let taken = users::taken_email_keys(
        &mut conn,
        &["batch3@example.org".into(), "nobody@example.org".into()],
    )
    .expect("taken");
    assert_eq!(
        taken.into_iter().collect::<Vec<_>>(),
        vec!["batch3@example.org"]
    );
    let holders =
        users::member_code_holders(&mut conn, &["54321".into(), "12345".into()]).expect("holders");
    assert_eq!(
        holders.get("54321").map(String::as_str),
        Some("held@example.org")
    );
    assert_eq!(holders.len(), 1);
}

fn users_found_by_words_of_their_name(db: &TestDb) {
    let mut conn = db.conn();
    let mut marie = new_user("marie@example.org");
    marie.given_name = "Marie-Ève".into();
    marie.family_name = "Tremblay".into();
    users::insert(&mut conn, &marie, now()).expect("insert");
    let mut jean = new_user("jean@example.org");
    jean.given_name = "Jean".into();
    jean.family_name = "Tremblay_Roy".into();
    users::insert(&mut conn, &jean, now()).expect("insert");
    let mut names = |words: &str| -> Vec<String> {
        users::search_by_name(&mut conn, words, 10)
            .expect("search")
            .into_iter()
            .map(|u| u.email)
            .collect()
    };
    assert_eq!(names("tremblay").len(), 2);
    assert_eq!(names("TREMBLAY marie-ève"), vec!["marie@example.org"]);
    assert_eq!(names("ève"), vec!["marie@example.org"], "accents and case");
    assert_eq!(
        names("tremblay_"),
        vec!["jean@example.org"],
        "`_` is a letter, not a wildcard"
    );
    assert!(names("%").is_empty(), "`%` is a letter, not a wildcard");
    assert!(names("   ").is_empty());
    // Typed without accents, or with them where the name has none: still found.
    assert_eq!(names("marie-eve"), vec!["marie@example.org"]);
    assert_eq!(
        names("EVE marie"),
        vec!["marie@example.org"],
        "each word anywhere in the name"
    );
    assert_eq!(names("trémblay").len(), 2);
    // In alphabetical order, accents aside (byte order would put É after Z).
    for (email, given, family) in [
        ("zola@example.org", "Anne", "Zola"),
        ("emond@example.org", "Luc", "Émond"),
        ("cote@example.org", "Éric", "Côté"),
        ("cote2@example.org", "Alain", "Cote"),
    ] {
        let mut person = new_user(email);
        person.given_name = given.into();
        person.family_name = family.into();
        users::insert(&mut conn, &person, now()).expect("insert");
    }
    let in_order: Vec<String> = users::search_by_name(&mut conn, "e", 10)
        .expect("search")
        .into_iter()
        .map(|u| u.email)
        .filter(|e| !e.contains("tremblay") && !e.starts_with("marie") && !e.starts_with("jean"))
        .collect();
    assert_eq!(
        in_order,
        vec![
            "cote2@example.org",
            "cote@example.org",
            "emond@example.org",
            "zola@example.org"
        ]
    );
    // When more match than are asked for, the first in that order are the ones listed (byte
    // order would pick Tremblay_Roy before Émond).
    let first: Vec<String> = users::search_by_name(&mut conn, "o", 3)
        .expect("search")
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        first,
        vec!["cote2@example.org", "cote@example.org", "emond@example.org"]
    );
}

fn name_keys_emptied_by_a_migration_are_filled_again(db: &TestDb) {
    let mut conn = db.conn();
    let mut helene = new_user("helene@example.org");
    helene.given_name = "Hélène".into();
    helene.family_name = "Émond-Côté".into();
    let helene = users::insert(&mut conn, &helene, now()).expect("insert");
    let mut nameless = new_user("sans-nom@example.org");
    nameless.given_name = String::new();
    nameless.family_name = String::new();
    users::insert(&mut conn, &nameless, now()).expect("insert");
    // What the migration that changed the keys' form does to every row.
    conn.batch_execute("UPDATE users SET name_key = ''")
        .expect("empty the keys");
    assert!(users::search_by_name(&mut conn, "helene", 10)
        .expect("search")
        .is_empty());
    assert_eq!(users::fill_name_keys(&mut conn).expect("fill"), 1);
    assert_eq!(users::fill_name_keys(&mut conn).expect("fill"), 0, "once");
    let found = users::search_by_name(&mut conn, "helene emond-cote", 10).expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, helene.id);
    // Starting again (migrations, then the fill) changes nothing more.
    idp::store::run_migrations(&mut conn).expect("migrations");
    assert_eq!(users::fill_name_keys(&mut conn).expect("fill"), 0);
}

fn email_changes_one_per_person_and_per_address(db: &TestDb) {
    use idp::store::email_changes::{self, EmailChangeRecord};
    let mut conn = db.conn();
    let a = add_user(&mut conn, "a@example.org");
    let b = add_user(&mut conn, "b@example.org");
    let change = |user: &str, to: &str, expires_at| EmailChangeRecord {
        user_id: user.into(),
        new_email: to.into(),
        new_email_key: users::email_key(to),
        requested_by: "cli".into(),
        reason: "test".into(),
        created_at: now(),
        expires_at,
    };
    let later = now() + Duration::minutes(10);
    email_changes::replace(&mut conn, &change(&a.id, "new@example.org", later)).expect("first");
    email_changes::replace(&mut conn, &change(&a.id, "newer@example.org", later))
        .expect("replaced");
    assert_eq!(
        email_changes::of_user(&mut conn, &a.id)
            .expect("of")
            .map(|c| c.new_email),
        Some("newer@example.org".into())
    );
    assert!(email_changes::to_address(&mut conn, "new@example.org")
        .expect("to")
        .is_none());
    assert!(matches!(
        email_changes::replace(&mut conn, &change(&b.id, "NEWER@example.org", later)),
        Err(idp::store::StoreError::Conflict(_))
    ));
    assert_eq!(
        email_changes::of_user(&mut conn, &b.id).expect("of"),
        None,
        "the refused change left nothing"
    );
    email_changes::replace(
        &mut conn,
        &change(&b.id, "b2@example.org", now() - Duration::minutes(1)),
    )
    .expect("expired one");
    assert_eq!(
        email_changes::purge_expired(&mut conn, now()).expect("purge"),
        1
    );
    assert!(email_changes::remove(&mut conn, &a.id).expect("remove"));
    assert!(!email_changes::remove(&mut conn, &a.id).expect("again"));
}

fn sign_in_policy_is_one_row(db: &TestDb) {
    use idp::store::sign_in_policy;
    let mut conn = db.conn();
    assert_eq!(sign_in_policy::current(&mut conn).expect("none"), None);
    sign_in_policy::replace(&mut conn, r#"{"a":1}"#, now(), "admin").expect("first");
    sign_in_policy::replace(&mut conn, r#"{"a":2}"#, now(), "admin").expect("second");
    assert_eq!(
        sign_in_policy::current(&mut conn)
            .expect("current")
            .as_deref(),
        Some(r#"{"a":2}"#)
    );
}

fn member_import_is_idempotent(db: &TestDb) {
    let mut conn = db.conn();
    let csv = "family_name,given_name,email,member_code,locale\n\
               Tremblay,Marie,marie@example.org,R12345,fr\n\
               Roy,Jean,jean@example.org,E12342012,en\n\
               Roy,Jean,JEAN@example.org,,en\n\
               Côté,Luc,luc@example.org,1234,fr-CA\n\
               Gagnon,Anne,anne@example.org,50012345,\n";
    let report = idp::staff::import::import(&mut conn, csv.as_bytes(), |_| {}).expect("import");
    assert_eq!(
        (report.rows, report.imported, report.already_present),
        (5, 3, 0)
    );
    let lines: Vec<u64> = report.invalid.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 5]);
    let again = idp::staff::import::import(&mut conn, csv.as_bytes(), |_| {}).expect("again");
    assert_eq!((again.imported, again.already_present), (0, 3));
    let jean = users::find_by_email(&mut conn, "jean@example.org")
        .expect("find")
        .expect("imported");
    assert_eq!(jean.locale, "en");
    assert!(jean.must_reset && jean.password_hash.is_none());
}

/// Revoking a person's refresh tokens (password reset, logout) reads the index of their
/// tokens, not the whole table, while it holds SQLite's only write lock.
#[test]
fn a_persons_refresh_tokens_are_found_through_an_index() {
    #[derive(QueryableByName, Debug)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let db = TestDb::sqlite();
    let plans: Vec<Vec<Step>> = match &mut *db.conn() {
        DbConnection::Sqlite(c) => [
            "UPDATE refresh_tokens SET revoked_at = '2026-01-01' \
             WHERE user_id = 'u' AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = '2026-01-01' \
             WHERE user_id = 'u' AND session_id = 's' AND revoked_at IS NULL",
        ]
        .iter()
        .map(|sql| {
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load(c)
                .expect("plan")
        })
        .collect(),
        DbConnection::Postgres(_) => panic!("expected SQLite"),
    };
    for plan in plans {
        assert!(
            plan.iter()
                .any(|s| s.detail.contains("USING INDEX refresh_tokens_user_id")),
            "{plan:?}"
        );
    }
}
