//! The staff side of "contact us": finding a person, seeing where their account stands, and
//! the helpdesk's repairs (second factor reset, contact email change, unlock, first-login
//! invitation, disable or enable, end every session), plus the administrator's client
//! operations and the member import.
//!
//! The console, the admin API and the command line all call these functions. Each action
//! takes the [`Actor`] doing it and a written [`Reason`], and commits its change together
//! with its audit row: an action that is not recorded did not happen.

pub mod actions;
pub mod import;
pub mod member_code;
pub mod portals;

use chrono::NaiveDateTime;
use serde_json::json;

use crate::accounts::SignInEntry;
use crate::audit::RequestOrigin;
use crate::authn::email_code::{self, CodePolicy, CodeVerdict};
use crate::authn::lockout;
use crate::authn::sign_in_policy::{PolicyInForce, SignInPolicy};
use crate::crypto::KeyedHasher;
use crate::store::audit::{self, NewAuditEvent};
use crate::store::email_changes::{self, EmailChangeRecord};
use crate::store::one_time_codes::{self, OneTimeCodeRecord};
use crate::store::roles::{self, Role};
use crate::store::users::{self, User};
use crate::store::{attempt_counters, sso_sessions, DbConnection, StoreError, StoreResult};

pub use actions::{act, PersonAction};
pub use member_code::MemberCode;

use crate::mail::{MailError, MailQueue};

/// Where a person confirms a new contact email with the code sent to it.
pub const EMAIL_CHANGE_PATH: &str = "/email-change";

/// Purpose of the code that confirms a new contact email.
pub const PURPOSE_EMAIL_CHANGE: &str = "email_change";
/// Most people a search lists.
pub const SEARCH_LIMIT: i64 = 50;
const REASON_MAX_CHARS: usize = 500;

/// Who acts: a staff member (their user id and where the request came from) or the command
/// line.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The staff member's user id, or `cli`.
    pub id: String,
    pub origin: RequestOrigin,
}

impl Actor {
    /// The command line, run by whoever operates the server.
    pub fn cli() -> Self {
        Self {
            id: "cli".into(),
            origin: RequestOrigin::default(),
        }
    }

    /// The audit row of an action on `subject`.
    pub fn event(
        &self,
        event_type: &str,
        subject: Option<&str>,
        detail: &serde_json::Value,
    ) -> NewAuditEvent {
        self.origin.event(
            event_type,
            Some(self.id.clone()),
            subject.map(str::to_string),
            None,
            detail,
        )
    }
}

/// Why a staff member acts, in their words: required for every action and kept in its audit
/// row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// A reason of 1 to 500 characters (surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Refusal::ReasonMissing);
        }
        if t.chars().count() > REASON_MAX_CHARS {
            return Err(Refusal::ReasonTooLong);
        }
        Ok(Self(t.to_string()))
    }

    /// The reason as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an action was not done; each says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a reason is required: say why, in a few words")]
    ReasonMissing,
    #[error("the reason is too long: at most 500 characters")]
    ReasonTooLong,
    #[error("no person has that id, email address or member code")]
    NoSuchPerson,
    #[error("that member code is not valid: 5 digits, R and 5 digits, E and 8 digits, or 8 digits starting with 500")]
    InvalidMemberCode,
    #[error("type at least two letters of a name, an email address or a member code")]
    QueryTooShort,
    #[error("that is not a valid email address")]
    InvalidEmail,
    #[error("that email address is already the contact email of someone")]
    EmailTaken,
    #[error("a change to that email address is already waiting for someone else")]
    EmailPending,
    #[error("that is already the person's contact email")]
    SameEmail,
    #[error("the person has already activated their account: they sign in, or use \"First login or forgot your password?\"")]
    AlreadyActive,
    #[error("the person is disabled: enable them first")]
    Disabled,
    #[error("the code is not the one sent to that address: check it, or ask the helpdesk to start again")]
    WrongCode,
    #[error("the code has expired: ask the helpdesk to start the change again")]
    CodeExpired,
    #[error("too many wrong codes: ask the helpdesk to start the change again")]
    TooManyTries,
    #[error("there is no change of contact email waiting for that address")]
    NoPendingChange,
    #[error("the configuration file declares that client: change it there")]
    ConfiguredClient,
    #[error("no client has that id")]
    NoSuchClient,
    #[error("a client with that id exists already")]
    ClientExists,
    /// The client's registration breaks a rule (the same rules as the configuration file).
    #[error("{0}")]
    InvalidClient(String),
    /// A policy value outside its safe bounds.
    #[error("{0}")]
    PolicyOutOfBounds(String),
}

impl Refusal {
    /// The message explaining this refusal on a page.
    pub fn message_id(&self) -> &'static str {
        match self {
            Self::ReasonMissing => "staff-reason-missing",
            Self::ReasonTooLong => "staff-reason-too-long",
            Self::NoSuchPerson => "staff-no-such-person",
            Self::InvalidMemberCode => "staff-invalid-member-code",
            Self::QueryTooShort => "staff-query-too-short",
            Self::InvalidEmail => "email-invalid",
            Self::EmailTaken => "staff-email-taken",
            Self::EmailPending => "staff-email-pending",
            Self::SameEmail => "staff-same-email",
            Self::AlreadyActive => "staff-already-active",
            Self::Disabled => "staff-disabled",
            Self::WrongCode => "email-change-wrong-code",
            Self::CodeExpired => "email-change-expired",
            Self::TooManyTries => "email-change-too-many",
            Self::NoPendingChange => "email-change-wrong-code",
            Self::ConfiguredClient => "admin-configured-client",
            Self::NoSuchClient => "admin-no-such-client",
            Self::ClientExists => "admin-client-exists",
            Self::InvalidClient(_) => "admin-invalid-client",
            Self::PolicyOutOfBounds(_) => "admin-policy-out-of-bounds",
        }
    }
}

/// What the outcome of an action is: done, or refused with a reason to show.
pub type Outcome<T> = Result<T, Refusal>;

/// What a staff member may do, from their roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaffRights {
    /// See people and clients: auditors, helpdesk, administrators.
    pub read: bool,
    /// Repair accounts: helpdesk and administrators.
    pub act: bool,
    /// Manage clients and signing keys: administrators.
    pub admin: bool,
}

/// The rights of the person with this id.
pub fn rights_of(conn: &mut DbConnection, user_id: &str) -> StoreResult<StaffRights> {
    let auditor = roles::has(conn, user_id, Role::Auditor)?;
    let helpdesk = roles::has(conn, user_id, Role::Helpdesk)?;
    let admin = roles::has(conn, user_id, Role::Admin)?;
    Ok(StaffRights {
        read: auditor || helpdesk || admin,
        act: helpdesk || admin,
        admin,
    })
}

/// Ends every live session of the person, each with its back-channel notices, and records
/// it. Returns how many were ended.
pub async fn end_all_sessions(
    state: &crate::app::AppState,
    actor: &Actor,
    user_id: &str,
    reason: &Reason,
) -> Result<Outcome<usize>, crate::error::Error> {
    let id = user_id.to_string();
    let live = state
        .store
        .run(move |conn| {
            Ok(match users::find_by_id(conn, &id)? {
                Some(_) => Some(sso_sessions::live_for_user(conn, &id, crate::store::now())?),
                None => None,
            })
        })
        .await?;
    let Some(live) = live else {
        return Ok(Err(Refusal::NoSuchPerson));
    };
    let count = live.len();
    for record in live {
        crate::oidc::logout::end(state, &crate::oidc::flow::Session { record }, "helpdesk").await?;
    }
    let event = sessions_ended_event(actor, user_id, count, reason);
    state
        .store
        .run(move |conn| audit::append(conn, &event).map(|_| ()))
        .await?;
    Ok(Ok(count))
}

/// Rotates the signing key of every algorithm (as `idp keys rotate` does) and records it.
/// Other instances pick the new keys up within their refresh interval.
pub async fn rotate_signing_keys(
    state: &crate::app::AppState,
    actor: &Actor,
    reason: &Reason,
) -> Result<(), crate::error::Error> {
    let (master_key, settings, actor, reason) = (
        state.master_key.clone(),
        state.settings.clone(),
        actor.clone(),
        reason.clone(),
    );
    let ring = state.keys.clone();
    state
        .store
        .run(move |conn| {
            for alg in crate::oidc::keys::SigningAlg::ALL {
                let at = crate::store::now();
                let created = crate::oidc::keys::rotate(
                    conn,
                    &master_key,
                    alg,
                    at,
                    settings.key_propagation(),
                    settings.retired_key_publication(),
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                audit::append(
                    conn,
                    &actor.event(
                        "signing_key.rotated",
                        None,
                        &json!({ "kid": created.kid, "alg": created.alg, "reason": reason.as_str() }),
                    ),
                )?;
            }
            ring.reload(conn, crate::store::now())
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await?;
    Ok(())
}

/// Changes the sign-in policy (administrators): the named fields, within their safe bounds.
/// Stored and recorded with each changed value, in force on this instance at once and on the
/// others within their refresh interval.
pub fn change_policy(
    conn: &mut DbConnection,
    in_force: &PolicyInForce,
    actor: &Actor,
    typed: &[(String, String)],
    reason: &Reason,
) -> StoreResult<Outcome<SignInPolicy>> {
    let before = in_force.get();
    let typed: Vec<(&str, &str)> = typed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let after = match before.changed(&typed) {
        Ok(p) => p,
        Err(e) => return Ok(Err(Refusal::PolicyOutOfBounds(e.to_string()))),
    };
    let changes: serde_json::Map<String, serde_json::Value> = before
        .values()
        .iter()
        .zip(after.values())
        .filter(|(old, new)| old.1 != new.1)
        .map(|(old, new)| (old.0.to_string(), json!({ "from": old.1, "to": new.1 })))
        .collect();
    if changes.is_empty() {
        return Ok(Ok(after));
    }
    let event = actor.event(
        "policy.changed",
        None,
        &json!({ "changes": changes, "reason": reason.as_str() }),
    );
    let stored = serde_json::to_string(&after).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    recorded(conn, &event, |conn| {
        crate::store::sign_in_policy::replace(conn, &stored, crate::store::now(), &actor.id)
    })?;
    in_force.set(after);
    Ok(Ok(after))
}

/// What a search for a person typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonQuery {
    Email(String),
    MemberCode(MemberCode),
    /// Words of the person's name.
    Name(String),
}

impl PersonQuery {
    /// An email address (has `@`), a member code (validated), or a name.
    pub fn parse(text: &str) -> Outcome<Self> {
        let t = text.trim();
        if t.contains('@') {
            return Ok(Self::Email(t.to_string()));
        }
        if MemberCode::looks_like_one(t) {
            return MemberCode::parse(t)
                .map(Self::MemberCode)
                .ok_or(Refusal::InvalidMemberCode);
        }
        if t.chars().filter(|c| c.is_alphabetic()).count() < 2 {
            return Err(Refusal::QueryTooShort);
        }
        Ok(Self::Name(t.to_string()))
    }
}

/// What a search found: at most [`SEARCH_LIMIT`] people, each with where their account stands
/// (the search of the console, the API and `idp users find`).
#[derive(Debug, Clone)]
pub struct PeopleFound {
    pub people: Vec<PersonStatus>,
    /// More people match than are listed: the first in alphabetical order are; a word more
    /// narrows the search.
    pub more: bool,
}

/// The people matching `query`: an email address and a member code name one person at most; a
/// name's words list the first [`SEARCH_LIMIT`] in alphabetical order.
pub fn find_with_status(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    query: &PersonQuery,
) -> StoreResult<PeopleFound> {
    let mut users = match query {
        PersonQuery::Email(email) => users::find_by_email(conn, email)?.into_iter().collect(),
        PersonQuery::MemberCode(code) => users::find_by_member_code(conn, code.as_str())?
            .into_iter()
            .collect(),
        // One more than listed says whether there are more.
        PersonQuery::Name(words) => users::search_by_name(conn, words, SEARCH_LIMIT + 1)?,
    };
    let limit = usize::try_from(SEARCH_LIMIT).unwrap_or(usize::MAX);
    let more = users.len() > limit;
    users.truncate(limit);
    let at = crate::store::now();
    let mut people = Vec::with_capacity(users.len());
    for user in users {
        people.extend(status(conn, hasher, &user.id, at)?);
    }
    Ok(PeopleFound { people, more })
}

/// The one person an email address, a member code or an id names (the command line's way of
/// naming a person).
pub fn person_named(conn: &mut DbConnection, name: &str) -> StoreResult<Outcome<User>> {
    let t = name.trim();
    let found = if t.contains('@') {
        users::find_by_email(conn, t)?
    } else if MemberCode::looks_like_one(t) {
        match MemberCode::parse(t) {
            Some(code) => users::find_by_member_code(conn, code.as_str())?,
            None => return Ok(Err(Refusal::InvalidMemberCode)),
        }
    } else {
        users::find_by_id(conn, t)?
    };
    Ok(found.ok_or(Refusal::NoSuchPerson))
}

/// Where a person's account stands, for the helpdesk.
#[derive(Debug, Clone)]
pub struct PersonStatus {
    pub user: User,
    /// Until when sign-in is locked after too many failures, if it is.
    pub locked_until: Option<NaiveDateTime>,
    pub roles: Vec<Role>,
    pub sign_ins: Vec<SignInEntry>,
    pub live_sessions: usize,
    pub pending_email: Option<EmailChangeRecord>,
}

impl PersonStatus {
    /// The status as the command line and the admin API give it.
    pub fn to_json(&self) -> serde_json::Value {
        let u = &self.user;
        json!({
            "id": u.id,
            "email": u.email,
            "member_code": u.member_code,
            "given_name": u.given_name,
            "family_name": u.family_name,
            "locale": u.locale,
            "state": self.state(),
            "locked_until": self.locked_until.map(|t| t.and_utc().to_rfc3339()),
            "must_reset": u.must_reset,
            "disabled": u.disabled,
            "second_factor": u.mfa_method.as_str(),
            "roles": self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "live_sessions": self.live_sessions,
            "pending_email": self.pending_email.as_ref().map(|c| c.new_email.clone()),
            "sign_ins": self.sign_ins.iter().map(|s| json!({
                "client_id": s.client_id,
                "at": s.at.and_utc().to_rfc3339(),
                "ip": s.ip,
                "how": s.how,
            })).collect::<Vec<_>>(),
        })
    }

    /// `active`, `disabled`, `locked` or `must_reset` (not activated, or told to start again).
    pub fn state(&self) -> &'static str {
        if self.user.disabled {
            "disabled"
        } else if self.locked_until.is_some() {
            "locked"
        } else if self.user.must_reset || self.user.password_hash.is_none() {
            "must_reset"
        } else {
            "active"
        }
    }
}

/// The status of the person with this id.
pub fn status(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<PersonStatus>> {
    let Some(user) = users::find_by_id(conn, user_id)? else {
        return Ok(None);
    };
    let key = lockout::account_key(hasher, &user.email);
    let locked_until = attempt_counters::locked_until(conn, &key, now)?;
    let mut held = Vec::new();
    for role in [Role::Auditor, Role::Helpdesk, Role::Admin] {
        if roles::has(conn, &user.id, role)? {
            held.push(role);
        }
    }
    let sign_ins = crate::accounts::sign_ins_of(conn, &user.id)?;
    let live_sessions = sso_sessions::live_for_user(conn, &user.id, now)?.len();
    let pending_email = email_changes::of_user(conn, &user.id)?.filter(|c| c.expires_at > now);
    Ok(Some(PersonStatus {
        user,
        locked_until,
        roles: held,
        sign_ins,
        live_sessions,
        pending_email,
    }))
}

/// The value of a checked outcome, or returns its refusal from the enclosing function (whose
/// answer is a `StoreResult<Outcome<_>>`).
macro_rules! refuse_unless {
    ($outcome:expr) => {
        match $outcome {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}
pub(crate) use refuse_unless;

/// Commits `change` and its audit row together.
fn recorded<T>(
    conn: &mut DbConnection,
    event: &NewAuditEvent,
    change: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    crate::store::write_transaction(conn, |conn| {
        let done = change(conn)?;
        audit::append(conn, event)?;
        Ok::<_, StoreError>(done)
    })
}

fn person(conn: &mut DbConnection, user_id: &str) -> StoreResult<Outcome<User>> {
    Ok(users::find_by_id(conn, user_id)?.ok_or(Refusal::NoSuchPerson))
}

/// Removes the person's second factor; at the next sign-in they prove their contact email
/// again (first-login journey), choose a new password and enrol a method.
pub fn reset_second_factor(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    reason: &Reason,
) -> StoreResult<Outcome<User>> {
    let user = refuse_unless!(person(conn, user_id)?);
    let event = actor.event(
        "mfa.reset",
        Some(&user.id),
        &json!({ "previous_method": user.mfa_method.as_str(), "reason": reason.as_str() }),
    );
    recorded(conn, &event, |conn| {
        users::reset_second_factor(conn, &user.id, crate::store::now())
    })?;
    Ok(Ok(user))
}

/// Lifts a lock and forgets the failures counted against the account. Returns whether it was
/// locked.
pub fn unlock(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    actor: &Actor,
    user_id: &str,
    reason: &Reason,
) -> StoreResult<Outcome<bool>> {
    let user = refuse_unless!(person(conn, user_id)?);
    let key = lockout::account_key(hasher, &user.email);
    let was_locked = attempt_counters::locked_until(conn, &key, crate::store::now())?.is_some();
    let event = actor.event(
        "account.unlocked",
        Some(&user.id),
        &json!({ "by": "helpdesk", "was_locked": was_locked, "reason": reason.as_str() }),
    );
    recorded(conn, &event, |conn| attempt_counters::clear(conn, &key))?;
    Ok(Ok(was_locked))
}

/// Disables (no sign-in at all) or enables the person again.
pub fn set_disabled(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    disabled: bool,
    reason: &Reason,
) -> StoreResult<Outcome<User>> {
    let user = refuse_unless!(person(conn, user_id)?);
    let event = actor.event(
        if disabled {
            "account.disabled"
        } else {
            "account.enabled"
        },
        Some(&user.id),
        &json!({ "reason": reason.as_str() }),
    );
    recorded(conn, &event, |conn| {
        users::set_disabled(conn, &user.id, disabled, crate::store::now())
    })?;
    Ok(Ok(user))
}

/// A first-login invitation to send: the person has not activated their account yet.
pub fn invitation(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    reason: &Reason,
) -> StoreResult<Outcome<User>> {
    let user = refuse_unless!(person(conn, user_id)?);
    if user.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    if !user.must_reset && user.password_hash.is_some() {
        return Ok(Err(Refusal::AlreadyActive));
    }
    let event = actor.event(
        "invitation.sent",
        Some(&user.id),
        &json!({ "reason": reason.as_str() }),
    );
    recorded(conn, &event, |_| Ok(()))?;
    Ok(Ok(user))
}

/// A contact email change just started: the code goes to the new address, a notice to the old
/// one.
#[derive(Debug, Clone)]
pub struct EmailChangeStarted {
    pub user: User,
    pub new_email: String,
    pub code: String,
    pub expires_at: NaiveDateTime,
}

/// Starts changing the person's contact email: records the pending change and a code for the
/// new address. Until the code is entered, sign-in keeps using the old address.
pub fn begin_email_change(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    policy: &CodePolicy,
    actor: &Actor,
    user_id: &str,
    new_email: &str,
    reason: &Reason,
) -> StoreResult<Outcome<EmailChangeStarted>> {
    let new_email = new_email.trim();
    if !crate::authn::plausible_email(new_email) {
        return Ok(Err(Refusal::InvalidEmail));
    }
    let user = refuse_unless!(person(conn, user_id)?);
    let new_key = users::email_key(new_email);
    if new_key == users::email_key(&user.email) {
        return Ok(Err(Refusal::SameEmail));
    }
    if users::find_by_email(conn, new_email)?.is_some() {
        return Ok(Err(Refusal::EmailTaken));
    }
    if email_changes::to_address(conn, &new_key)?.is_some_and(|c| c.user_id != user.id) {
        return Ok(Err(Refusal::EmailPending));
    }
    let at = crate::store::now();
    let code = email_code::generate();
    let change = EmailChangeRecord {
        user_id: user.id.clone(),
        new_email: new_email.to_string(),
        new_email_key: new_key,
        requested_by: actor.id.clone(),
        reason: reason.as_str().to_string(),
        created_at: at,
        expires_at: at + policy.ttl,
    };
    let record = OneTimeCodeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        purpose: PURPOSE_EMAIL_CHANGE.into(),
        code_hash: email_code::hash(hasher, &user.id, &code),
        attempts: 0,
        max_attempts: policy.max_attempts,
        created_at: at,
        expires_at: at + policy.ttl,
        consumed_at: None,
        superseded_at: None,
        requested_in: None,
        requested_from: None,
    };
    let event = actor.event(
        "email.change_requested",
        Some(&user.id),
        &json!({ "old": user.email, "new": new_email, "reason": reason.as_str() }),
    );
    let stored = recorded(conn, &event, |conn| {
        email_changes::replace(conn, &change)?;
        one_time_codes::issue(conn, &record)
    });
    match stored {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(Err(Refusal::EmailPending)),
        Err(e) => return Err(e),
    }
    Ok(Ok(EmailChangeStarted {
        user,
        new_email: new_email.to_string(),
        code,
        expires_at: change.expires_at,
    }))
}

/// The person enters the code sent to their new address: the change takes effect, and the
/// new address is the login name from now on.
pub fn confirm_email_change(
    conn: &mut DbConnection,
    hasher: &KeyedHasher,
    origin: &RequestOrigin,
    new_email: &str,
    submitted: &str,
) -> StoreResult<Outcome<User>> {
    let at = crate::store::now();
    let Some(change) = email_changes::to_address(conn, &users::email_key(new_email))?
        .filter(|c| c.expires_at > at)
    else {
        return Ok(Err(Refusal::NoPendingChange));
    };
    let codes = one_time_codes::recent(conn, &change.user_id, PURPOSE_EMAIL_CHANGE, None, 5)?;
    match email_code::judge(hasher, &codes, submitted, at) {
        CodeVerdict::Accept(id) => {
            let Some(user) = users::find_by_id(conn, &change.user_id)? else {
                return Ok(Err(Refusal::NoPendingChange));
            };
            let event = origin.event(
                "email.changed",
                Some(user.id.clone()),
                Some(user.id.clone()),
                None,
                &json!({ "old": user.email, "new": change.new_email, "requested_by": change.requested_by }),
            );
            let applied = recorded(conn, &event, |conn| {
                if !one_time_codes::consume(conn, &id, at)? {
                    return Err(StoreError::Conflict("code already used".into()));
                }
                users::set_email(conn, &user.id, &change.new_email, true, at)?;
                email_changes::remove(conn, &user.id)?;
                Ok(())
            });
            match applied {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => return Ok(Err(Refusal::EmailTaken)),
                Err(e) => return Err(e),
            }
            Ok(users::find_by_id(conn, &user.id)?.ok_or(Refusal::NoSuchPerson))
        }
        CodeVerdict::Wrong(id) => {
            one_time_codes::register_failure(conn, &id, at)?;
            Ok(Err(Refusal::WrongCode))
        }
        CodeVerdict::Expired => Ok(Err(Refusal::CodeExpired)),
        CodeVerdict::TooManyTries => Ok(Err(Refusal::TooManyTries)),
        CodeVerdict::Used | CodeVerdict::Replaced | CodeVerdict::NoLiveCode => {
            Ok(Err(Refusal::WrongCode))
        }
    }
}

/// The language of mail to `user`.
fn lang_of(user: &User) -> crate::i18n::Lang {
    crate::i18n::Lang::parse(&user.locale).unwrap_or(crate::i18n::Lang::FrCa)
}

/// Queues the two messages of a contact email change: the code to the new address (with the
/// confirmation page's address) and a notice to the old one.
pub async fn send_email_change_mails(
    mail: &MailQueue,
    issuer: &str,
    started: &EmailChangeStarted,
) -> Result<(), MailError> {
    let lang = lang_of(&started.user);
    let mut code = crate::mail::code_job(
        mail_queue::Template::EmailChangeCode,
        &started.new_email,
        lang,
        &started.code,
        started.expires_at.and_utc(),
    );
    code.parameters
        .insert("link".into(), format!("{issuer}{EMAIL_CHANGE_PATH}"));
    mail.enqueue(code).await?;
    mail.enqueue(crate::mail::notice_job(
        mail_queue::Template::EmailChangeNotice,
        &started.user.email,
        lang,
        None,
    ))
    .await
}

/// Queues a first-login invitation to `user`, pointing to the account page (which starts a
/// sign-in where "First login or forgot your password?" is offered).
pub async fn send_invitation(mail: &MailQueue, issuer: &str, user: &User) -> Result<(), MailError> {
    mail.enqueue(crate::mail::notice_job(
        mail_queue::Template::Invitation,
        &user.email,
        lang_of(user),
        Some(&format!("{issuer}/account")),
    ))
    .await
}

/// Records that staff ended every session of the person (the caller ends them, with their
/// back-channel notices).
pub fn sessions_ended_event(
    actor: &Actor,
    user_id: &str,
    count: usize,
    reason: &Reason,
) -> NewAuditEvent {
    actor.event(
        "sessions.ended",
        Some(user_id),
        &json!({ "count": count, "reason": reason.as_str() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert_eq!(Reason::parse("  "), Err(Refusal::ReasonMissing));
        assert_eq!(Reason::parse(&"x".repeat(501)), Err(Refusal::ReasonTooLong));
        assert_eq!(
            Reason::parse("  lost phone, identity checked by phone call ")
                .map(|r| r.as_str().to_string()),
            Ok("lost phone, identity checked by phone call".to_string())
        );
    }

    #[test]
    fn a_search_is_an_email_a_valid_member_code_or_a_name() {
        assert_eq!(
            PersonQuery::parse(" Marie@Example.org "),
            Ok(PersonQuery::Email("Marie@Example.org".into()))
        );
        assert!(matches!(
            PersonQuery::parse("r12345"),
            Ok(PersonQuery::MemberCode(c)) if c.as_str() == "R12345"
        ));
        assert_eq!(PersonQuery::parse("1234"), Err(Refusal::InvalidMemberCode));
        assert_eq!(PersonQuery::parse("E123"), Err(Refusal::InvalidMemberCode));
        assert_eq!(PersonQuery::parse("x"), Err(Refusal::QueryTooShort));
        assert_eq!(
            PersonQuery::parse("marie tremblay"),
            Ok(PersonQuery::Name("marie tremblay".into()))
        );
    }
}
