//! People who sign in: contact email, optional member code, password hash, their one second
//! factor, and lock state.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::{DbConnection, StoreError, StoreResult};

/// The one second factor a person holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMethod {
    /// Not enrolled yet: the person must choose at the end of the first-login journey.
    None,
    /// Authenticator app (TOTP).
    Totp,
    /// Six-digit code sent to the contact email.
    Email,
}

impl MfaMethod {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Totp => "totp",
            Self::Email => "email",
        }
    }

    fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "none" => Ok(Self::None),
            "totp" => Ok(Self::Totp),
            "email" => Ok(Self::Email),
            other => Err(StoreError::Corrupt(format!("unknown mfa_method `{other}`"))),
        }
    }
}

/// A stored person.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub member_code: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub locale: String,
    pub password_hash: Option<String>,
    pub must_reset: bool,
    pub mfa_method: MfaMethod,
    /// TOTP secret sealed with the master key; present exactly when the method is TOTP.
    pub totp_secret_enc: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    email: String,
    email_verified: bool,
    member_code: Option<String>,
    given_name: String,
    family_name: String,
    locale: String,
    password_hash: Option<String>,
    must_reset: bool,
    mfa_method: String,
    totp_secret_enc: Option<Vec<u8>>,
    totp_last_step: Option<i64>,
    disabled: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(Self {
            mfa_method: MfaMethod::parse(&r.mfa_method)?,
            id: r.id,
            email: r.email,
            email_verified: r.email_verified,
            member_code: r.member_code,
            given_name: r.given_name,
            family_name: r.family_name,
            locale: r.locale,
            password_hash: r.password_hash,
            must_reset: r.must_reset,
            totp_secret_enc: r.totp_secret_enc,
            totp_last_step: r.totp_last_step,
            disabled: r.disabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What is needed to create a person.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub member_code: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub locale: String,
    pub password_hash: Option<String>,
    /// Imported members start with no password and must go through the first-login journey.
    pub must_reset: bool,
}

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
struct UserInsert<'a> {
    id: &'a str,
    email: &'a str,
    email_key: String,
    member_code: Option<String>,
    given_name: &'a str,
    family_name: &'a str,
    locale: &'a str,
    password_hash: Option<&'a str>,
    must_reset: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    name_key: String,
}

impl<'a> UserInsert<'a> {
    fn of(new: &'a NewUser, now: NaiveDateTime) -> Self {
        Self {
            id: &new.id,
            email: new.email.trim(),
            email_key: email_key(&new.email),
            member_code: new.member_code.as_deref().map(|c| c.trim().to_uppercase()),
            given_name: &new.given_name,
            family_name: &new.family_name,
            locale: &new.locale,
            password_hash: new.password_hash.as_deref(),
            must_reset: new.must_reset,
            created_at: now,
            updated_at: now,
            name_key: name_key(&new.given_name, &new.family_name),
        }
    }
}

/// The searchable form of a full name: lower-cased, without accents, single spaces, so that
/// "helene emond" finds Hélène Émond (and "Émond" finds Emond). The family name comes first, so
/// that keys in byte order are people in the order they are listed.
pub fn name_key(given_name: &str, family_name: &str) -> String {
    fold(&format!("{family_name} {given_name}"))
}

/// `text` lower-cased, without the accents of Latin letters (canonical decomposition, then
/// the combining diacritical marks dropped), its words separated by single spaces.
fn fold(text: &str) -> String {
    let decomposed = icu_normalizer::DecomposingNormalizerBorrowed::new_nfd().normalize(text);
    let bare: String = decomposed
        .chars()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c))
        .collect();
    bare.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Fills the name keys left empty by the migration that changed their form: each is computed
/// again from the name. Runs after the migrations, at every start; once the keys are filled it
/// finds nothing to do, through a partial index of the empty keys alone
/// (`users_name_key_unfilled`), so it costs no scan of the people. Returns how many it filled.
pub fn fill_name_keys(conn: &mut DbConnection) -> StoreResult<usize> {
    let empty: Vec<(String, String, String)> = users::table
        .filter(users::name_key.eq(""))
        .filter(users::given_name.ne("").or(users::family_name.ne("")))
        .select((users::id, users::given_name, users::family_name))
        .load(conn)?;
    if empty.is_empty() {
        return Ok(0);
    }
    super::write_transaction(conn, |conn| match conn {
        // One statement per 10,000 people: a round trip per person made an upgrade of 100,000
        // people take 8 s on PostgreSQL.
        DbConnection::Postgres(pg) => {
            use diesel::sql_types::{Array, Text};
            let mut filled = 0;
            for chunk in empty.chunks(10_000) {
                let ids: Vec<&str> = chunk.iter().map(|(id, _, _)| id.as_str()).collect();
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|(_, given_name, family_name)| name_key(given_name, family_name))
                    .collect();
                filled += diesel::sql_query(
                    "UPDATE users SET name_key = filled.key \
                     FROM unnest($1::text[], $2::text[]) AS filled(id, key) \
                     WHERE users.id = filled.id AND users.name_key = ''",
                )
                .bind::<Array<Text>, _>(&ids)
                .bind::<Array<Text>, _>(&keys)
                .execute(pg)?;
            }
            Ok(filled)
        }
        DbConnection::Sqlite(_) => {
            let mut filled = 0;
            for (id, given_name, family_name) in &empty {
                filled += diesel::update(users::table.find(id))
                    .filter(users::name_key.eq(""))
                    .set(users::name_key.eq(name_key(given_name, family_name)))
                    .execute(conn)?;
            }
            Ok(filled)
        }
    })
}

/// The login name derived from a contact email: trimmed and lower-cased, so lookups and the
/// uniqueness rule ignore case on both backends alike.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Creates a person; a taken email or member code is [`StoreError::Conflict`].
pub fn insert(conn: &mut DbConnection, new: &NewUser, now: NaiveDateTime) -> StoreResult<User> {
    diesel::insert_into(users::table)
        .values(&UserInsert::of(new, now))
        .execute(conn)?;
    find_by_id(conn, &new.id)?.ok_or_else(|| StoreError::Corrupt("inserted user vanished".into()))
}

/// Creates many people in one statement, skipping any whose email or member code is taken
/// (so a re-run, or another import racing this one, adds nothing twice). Returns how many
/// were created.
pub fn insert_new(
    conn: &mut DbConnection,
    people: &[NewUser],
    now: NaiveDateTime,
) -> StoreResult<usize> {
    if people.is_empty() {
        return Ok(0);
    }
    let rows: Vec<UserInsert<'_>> = people.iter().map(|p| UserInsert::of(p, now)).collect();
    // Per backend: the multi-backend connection has no batch insert.
    Ok(match conn {
        DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(users::table)
            .values(&rows)
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(users::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(c)?,
    })
}

/// Of these login names (see [`email_key`]), the ones a person already has.
pub fn taken_email_keys(
    conn: &mut DbConnection,
    keys: &[String],
) -> StoreResult<std::collections::HashSet<String>> {
    Ok(users::table
        .filter(users::email_key.eq_any(keys))
        .select(users::email_key)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Of these member codes, the ones already held, with the login name of their holder.
pub fn member_code_holders(
    conn: &mut DbConnection,
    codes: &[String],
) -> StoreResult<std::collections::HashMap<String, String>> {
    Ok(users::table
        .filter(users::member_code.eq_any(codes.iter().map(|c| Some(c.as_str()))))
        .select((users::member_code, users::email_key))
        .load::<(Option<String>, String)>(conn)?
        .into_iter()
        .filter_map(|(code, key)| code.map(|c| (c, key)))
        .collect())
}

/// People whose full name contains every word of `words` (case and accents aside): the first
/// `limit` in alphabetical order of family then given name, in that order.
pub fn search_by_name(conn: &mut DbConnection, words: &str, limit: i64) -> StoreResult<Vec<User>> {
    let mut query = users::table.into_boxed();
    let mut any = false;
    for word in fold(words).split(' ').filter(|w| !w.is_empty()) {
        let escaped = word
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(users::name_key.like(format!("%{escaped}%")).escape('\\'));
        any = true;
    }
    if !any {
        return Ok(Vec::new());
    }
    let mut found = query
        .order((users::name_key.asc(), users::id.asc()))
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(User::try_from)
        .collect::<StoreResult<Vec<_>>>()?;
    // The keys' order picks which people are listed when more match. It is the listing's
    // order on SQLite and on a `C` collation; a linguistic collation on PostgreSQL weighs
    // spaces and hyphens differently, so the list is put in the same order on both.
    found.sort_by_cached_key(|u| (name_key(&u.given_name, &u.family_name), u.id.clone()));
    Ok(found)
}

/// Removes the person's second factor and requires the emailed first-login journey at the
/// next sign-in, where they choose and activate a method again (a helpdesk reset). Proving
/// the contact email again is what stops someone who knows only the password from enrolling
/// their own authenticator.
pub fn reset_second_factor(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::mfa_method.eq(MfaMethod::None.as_str()),
            users::totp_secret_enc.eq(None::<Vec<u8>>),
            users::totp_last_step.eq(None::<i64>),
            users::must_reset.eq(true),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// The person with this id.
pub fn find_by_id(conn: &mut DbConnection, id: &str) -> StoreResult<Option<User>> {
    super::on_backend!(conn, c => users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(c)
        .optional())?
    .map(User::try_from)
    .transpose()
}

/// The contact email and member code of each of `ids` that names a person, for showing who an
/// id is (ids of no one, such as client ids, are left out).
pub fn emails_and_codes(
    conn: &mut DbConnection,
    ids: &[&str],
) -> StoreResult<Vec<(String, String, Option<String>)>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email, users::member_code))
        .load(conn)?)
}

/// The person whose contact email this is, ignoring case and surrounding spaces.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> StoreResult<Option<User>> {
    let key = email_key(email);
    super::on_backend!(conn, c => users::table
        .filter(users::email_key.eq(&key))
        .select(UserRow::as_select())
        .get_result(c)
        .optional())?
    .map(User::try_from)
    .transpose()
}

/// The person holding this member code (exact match; codes are stored upper-cased).
pub fn find_by_member_code(conn: &mut DbConnection, code: &str) -> StoreResult<Option<User>> {
    users::table
        .filter(users::member_code.eq(code.trim().to_uppercase()))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// Stores a new password hash and clears the must-reset flag.
/// Returns whether the person exists.
pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::must_reset.eq(false),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// The second factor to set: exactly one method, so choosing one replaces the other.
#[derive(Debug, Clone)]
pub enum MfaSetting {
    None,
    Email,
    /// The sealed TOTP secret.
    Totp(Vec<u8>),
}

impl MfaSetting {
    /// The stored method and sealed secret.
    fn columns(&self) -> (MfaMethod, Option<&[u8]>) {
        match self {
            Self::None => (MfaMethod::None, None),
            Self::Email => (MfaMethod::Email, None),
            Self::Totp(sealed) => (MfaMethod::Totp, Some(sealed.as_slice())),
        }
    }
}

/// The assignments that set a second factor; the TOTP replay marker starts afresh.
macro_rules! mfa_assignments {
    ($setting:expr, $now:expr) => {{
        let (method, secret) = $setting.columns();
        (
            users::mfa_method.eq(method.as_str()),
            users::totp_secret_enc.eq(secret),
            users::totp_last_step.eq(None::<i64>),
            users::updated_at.eq($now),
        )
    }};
}

/// Sets the person's one second factor (a helpdesk change replaces the other method).
pub fn set_mfa(
    conn: &mut DbConnection,
    id: &str,
    setting: &MfaSetting,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set(mfa_assignments!(setting, now))
        .execute(conn)?;
    Ok(n == 1)
}

/// Sets the person's one second factor only if they have none yet; returns whether it did
/// (two activations racing cannot both win).
pub fn set_first_mfa(
    conn: &mut DbConnection,
    id: &str,
    setting: &MfaSetting,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    if matches!(setting, MfaSetting::None) {
        return Ok(false);
    }
    let n = diesel::update(
        users::table
            .find(id)
            .filter(users::mfa_method.eq(MfaMethod::None.as_str())),
    )
    .set(mfa_assignments!(setting, now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records `step` as the last accepted TOTP time step if it is newer than the previous one.
/// Returns false when the step (or a later one) was already used: each code works once, even
/// under concurrent submissions, because the check and the write are one statement.
pub fn accept_totp_step(conn: &mut DbConnection, id: &str, step: i64) -> StoreResult<bool> {
    struct AcceptTotpStep;
    let n = super::on_backend!(conn, c => super::fixed::<AcceptTotpStep, _>(
        diesel::update(
            users::table
                .find(id)
                .filter(users::mfa_method.eq(MfaMethod::Totp.as_str()))
                .filter(
                    users::totp_last_step
                        .is_null()
                        .or(users::totp_last_step.lt(step)),
                ),
        )
        .set(users::totp_last_step.eq(step)),
    )
    .execute(c))?;
    Ok(n == 1)
}

/// Changes the contact email (and so the login name); marks it verified or not.
pub fn set_email(
    conn: &mut DbConnection,
    id: &str,
    email: &str,
    verified: bool,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::email.eq(email.trim()),
            users::email_key.eq(email_key(email)),
            users::email_verified.eq(verified),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Enables or disables sign-in for the person.
pub fn set_disabled(
    conn: &mut DbConnection,
    id: &str,
    disabled: bool,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(users::table.find(id))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Number of stored people.
pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}
