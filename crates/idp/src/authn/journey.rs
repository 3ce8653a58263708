//! The sign-in journey of the member portals, step by step: password, the person's one second
//! factor (authenticator app or emailed code), the first-login / forgotten-password journey
//! (email, code, new password) and the activation of a second factor.
//!
//! The state lives server-side in the login transaction (`step`, `user_id`, and
//! [`JourneyData`]); each function takes what a form carried and says what to show next. None
//! of them sees an HTTP request.

use chrono::{Duration, Utc};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::authn::email_code::{self, CodePolicy, CodeVerdict};
use crate::authn::lockout::{self, Gate, LockoutPolicy};
use crate::authn::policy;
use crate::authn::totp::{self, Authenticator, Enrolment, TotpCheck};
use crate::error::Error;
use crate::i18n::{negotiate, Lang};
use crate::oidc::authorize::ClientResponse;
use crate::oidc::flow::{
    consent_needed, create_session, csrf_matches, csrf_token, find_login, issue_code,
    Authentication, LoginTransaction, STEP_CONSENT, STEP_PASSWORD,
};
use crate::oidc::service::code_response;
use crate::store::attempt_counters::{self, Counter};
use crate::store::audit::{self, NewAuditEvent};
use crate::store::one_time_codes::{self, OneTimeCodeRecord};
use crate::store::users::{self, MfaMethod, MfaSetting, User};
use crate::store::{clients, login_transactions, now, sso_sessions, DbConnection, StoreResult};

/// Waiting for the second factor (the password was right).
pub const STEP_SECOND_FACTOR: &str = "second_factor";
/// First login / forgotten password: waiting for the emailed code.
pub const STEP_RESET_CODE: &str = "reset_code";
/// The reset code was right: waiting for the new password.
pub const STEP_NEW_PASSWORD: &str = "new_password";
/// No second factor yet: choosing one.
pub const STEP_ENROL: &str = "enrol";
/// Activating an authenticator app.
pub const STEP_ENROL_TOTP: &str = "enrol_totp";
/// Activating emailed codes.
pub const STEP_ENROL_EMAIL: &str = "enrol_email";

const PURPOSE_SIGN_IN: &str = "signin";
const PURPOSE_RESET: &str = "reset";
const PURPOSE_ENROL: &str = "enrol";
/// Codes looked at when judging a submission (the live one and those it replaced).
const CODES_JUDGED: i64 = 6;

/// Journey state beyond the step, stored as JSON in the login transaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JourneyData {
    /// The language the person chose with the switch during this journey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
    /// The email typed at the start of the reset journey (shown back, never looked up again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Wrong tries against the code of an email that has no account, so the answers match a
    /// real code's.
    #[serde(default)]
    pub phantom_tries: i32,
    /// A new authenticator secret waiting for its first code, sealed with the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_totp: Option<String>,
    /// Whether the reset journey proved the contact email (it then counts as the emailed
    /// second factor).
    #[serde(default)]
    pub email_proven: bool,
}

impl JourneyData {
    fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// A message for the person, translated by the web layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: &'static str,
    pub arg: Option<(&'static str, NoticeArg)>,
}

/// The value of a message's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeArg {
    Text(String),
    Count(i64),
}

impl Notice {
    fn plain(id: &'static str) -> Self {
        Self { id, arg: None }
    }

    fn count(id: &'static str, name: &'static str, n: i64) -> Self {
        Self {
            id,
            arg: Some((name, NoticeArg::Count(n))),
        }
    }

    fn text(id: &'static str, name: &'static str, value: String) -> Self {
        Self {
            id,
            arg: Some((name, NoticeArg::Text(value))),
        }
    }
}

/// Which code a code page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// The authenticator app's code at sign-in.
    Totp,
    /// The emailed sign-in code.
    SignInEmail,
    /// The code of the first-login / forgotten-password journey.
    Reset,
    /// The code confirming email as the second factor.
    EnrolEmail,
}

/// The page to show.
#[derive(Debug, Clone)]
pub enum Page {
    Password {
        email: String,
        error: Option<Notice>,
    },
    ResetEmail {
        email: String,
        error: Option<Notice>,
    },
    Code {
        kind: CodeKind,
        /// Where the code was sent (email kinds).
        email: String,
        notice: Option<Notice>,
        error: Option<Notice>,
    },
    NewPassword {
        email: String,
        error: Option<Notice>,
    },
    Enrol {
        error: Option<Notice>,
    },
    EnrolTotp {
        enrolment: Enrolment,
        error: Option<Notice>,
    },
}

/// A page with what every page of the journey needs.
#[derive(Debug, Clone)]
pub struct Screen {
    pub lang: Lang,
    pub csrf: String,
    /// Name of the portal that sent the person.
    pub portal: String,
    /// The authenticator issuer name (`CPAQCPROD` for the Order).
    pub issuer: String,
    pub page: Page,
}

/// What a journey request answers.
#[derive(Debug)]
pub enum JourneyOutcome {
    /// No live login transaction (expired, finished, or a forged form).
    Expired { lang: Lang },
    /// Show a page (a form, possibly with an error).
    Show(Box<Screen>),
    /// The step moved on: show `/login` (with a one-shot notice).
    Next { notice: Option<&'static str> },
    /// The person must agree to share first: session cookie, then the consent page.
    Consent { session_token: String },
    /// Signed in: session cookie, transaction cookie removed, back to the portal.
    Done {
        response: ClientResponse,
        session_token: String,
    },
}

/// What identifies the person's language outside the transaction.
#[derive(Debug, Clone, Default)]
pub struct LangHints {
    /// The remembered switch (cookie).
    pub remembered: Option<String>,
    /// The browser's `Accept-Language`.
    pub accept_language: Option<String>,
}

/// Fields common to every form of the journey. No `Debug`: forms carry passwords.
pub struct Submission {
    pub csrf: String,
    pub origin: RequestOrigin,
    pub hints: LangHints,
}

/// The language of a page outside any transaction.
pub fn page_lang(hints: &LangHints) -> Lang {
    negotiate(
        None,
        None,
        hints.remembered.as_deref(),
        hints.accept_language.as_deref(),
    )
}

/// A live transaction with what the pages need.
struct Loaded {
    tx: LoginTransaction,
    data: JourneyData,
    portal: String,
    user: Option<User>,
    lang: Lang,
}

async fn load(
    state: &AppState,
    token: Option<String>,
    hints: &LangHints,
) -> Result<Option<Loaded>, Error> {
    let Some(token) = token else {
        return Ok(None);
    };
    let hasher = state.hasher.clone();
    let found = state
        .store
        .run(move |conn| {
            let Some(tx) = find_login(conn, &hasher, &token, now())? else {
                return Ok(None);
            };
            let portal = clients::find(conn, &tx.request.client_id)?
                .map(|c| c.name)
                .unwrap_or_default();
            let user = match &tx.user_id {
                Some(id) => users::find_by_id(conn, id)?,
                None => None,
            };
            Ok(Some((tx, portal, user)))
        })
        .await?;
    Ok(found.map(|(tx, portal, user)| {
        let data = JourneyData::parse(&tx.data);
        let lang = negotiate(
            data.lang,
            tx.request.ui_locales.as_deref(),
            hints.remembered.as_deref(),
            hints.accept_language.as_deref(),
        );
        Loaded {
            tx,
            data,
            portal,
            user,
            lang,
        }
    }))
}

fn screen(state: &AppState, loaded: &Loaded, page: Page) -> JourneyOutcome {
    JourneyOutcome::Show(Box::new(Screen {
        lang: loaded.lang,
        csrf: csrf_token(&state.hasher, &loaded.tx.id),
        portal: loaded.portal.clone(),
        issuer: state.settings.sign_in.totp_issuer.clone(),
        page,
    }))
}

fn expired(loaded: Option<&Loaded>, hints: &LangHints) -> JourneyOutcome {
    JourneyOutcome::Expired {
        lang: loaded.map_or_else(|| page_lang(hints), |l| l.lang),
    }
}

/// Loads the transaction of a form submission: live, at one of `steps`, with a valid CSRF token.
async fn load_for(
    state: &AppState,
    token: Option<String>,
    submission: &Submission,
    steps: &[&str],
) -> Result<Result<Loaded, JourneyOutcome>, Error> {
    let loaded = load(state, token, &submission.hints).await?;
    match loaded {
        Some(l)
            if steps.contains(&l.tx.step.as_str())
                && csrf_matches(&state.hasher, &l.tx.id, &submission.csrf) =>
        {
            Ok(Ok(l))
        }
        // A form from an earlier step of a live journey (back button, second tab): show where
        // the journey is now instead of an error.
        Some(l) if csrf_matches(&state.hasher, &l.tx.id, &submission.csrf) => {
            Ok(Err(JourneyOutcome::Next { notice: None }))
        }
        other => Ok(Err(expired(other.as_ref(), &submission.hints))),
    }
}

/// The page of the step the journey is at. `notice` is a one-shot message from the previous
/// step (only known ids are shown).
pub async fn current_page(
    state: &AppState,
    token: Option<String>,
    hints: &LangHints,
    notice: Option<&str>,
) -> Result<JourneyOutcome, Error> {
    let Some(loaded) = load(state, token, hints).await? else {
        return Ok(expired(None, hints));
    };
    let notice = notice.and_then(|n| {
        ["code-sent", "code-send-failed"]
            .into_iter()
            .find(|known| *known == n)
    });
    let email_of_user = loaded
        .user
        .as_ref()
        .map(|u| u.email.clone())
        .unwrap_or_default();
    let sent_notice = |email: &str| {
        notice.map(|id| {
            if id == "code-sent" {
                Notice::text(id, "email", email.to_string())
            } else {
                Notice::plain(id)
            }
        })
    };
    let page = match loaded.tx.step.as_str() {
        STEP_PASSWORD => Page::Password {
            email: loaded.tx.request.login_hint.clone().unwrap_or_default(),
            error: None,
        },
        STEP_SECOND_FACTOR => match loaded.user.as_ref().map(|u| u.mfa_method) {
            Some(MfaMethod::Totp) => Page::Code {
                kind: CodeKind::Totp,
                email: String::new(),
                notice: None,
                error: None,
            },
            Some(MfaMethod::Email) => Page::Code {
                kind: CodeKind::SignInEmail,
                notice: sent_notice(&email_of_user),
                email: email_of_user,
                error: None,
            },
            _ => Page::Enrol { error: None },
        },
        STEP_RESET_CODE => {
            let email = loaded.data.email.clone().unwrap_or_default();
            Page::Code {
                kind: CodeKind::Reset,
                notice: sent_notice(&email),
                email,
                error: None,
            }
        }
        STEP_NEW_PASSWORD => Page::NewPassword {
            email: email_of_user,
            error: None,
        },
        STEP_ENROL => Page::Enrol { error: None },
        STEP_ENROL_TOTP => match pending_enrolment(state, &loaded) {
            Some(enrolment) => Page::EnrolTotp {
                enrolment,
                error: None,
            },
            None => Page::Enrol { error: None },
        },
        STEP_ENROL_EMAIL => Page::Code {
            kind: CodeKind::EnrolEmail,
            notice: sent_notice(&email_of_user),
            email: email_of_user,
            error: None,
        },
        _ => return Ok(expired(Some(&loaded), hints)),
    };
    Ok(screen(state, &loaded, page))
}

/// The reset journey's first page (email form), from the sign-in page.
pub async fn reset_page(
    state: &AppState,
    token: Option<String>,
    hints: &LangHints,
) -> Result<JourneyOutcome, Error> {
    let Some(loaded) = load(state, token, hints).await? else {
        return Ok(expired(None, hints));
    };
    let email = loaded.tx.request.login_hint.clone().unwrap_or_default();
    Ok(screen(
        state,
        &loaded,
        Page::ResetEmail { email, error: None },
    ))
}

/// Remembers the language chosen with the switch for the rest of the journey.
pub async fn choose_language(
    state: &AppState,
    token: Option<String>,
    lang: Lang,
) -> Result<(), Error> {
    let Some(loaded) = load(state, token, &LangHints::default()).await? else {
        return Ok(());
    };
    let mut data = loaded.data;
    data.lang = Some(lang);
    let json = data.to_json();
    let (id, step, user) = (loaded.tx.id, loaded.tx.step, loaded.tx.user_id);
    state
        .store
        .run(move |conn| {
            login_transactions::advance(conn, &id, &step, &step, user.as_deref(), &json)
        })
        .await?;
    Ok(())
}

/// Moves the journey from the step it was loaded at; false when another request moved it
/// first.
fn advance(
    conn: &mut DbConnection,
    loaded_tx: &LoginTransaction,
    to_step: &str,
    user_id: Option<&str>,
    data: &JourneyData,
) -> StoreResult<bool> {
    login_transactions::advance(
        conn,
        &loaded_tx.id,
        &loaded_tx.step,
        to_step,
        user_id,
        &data.to_json(),
    )
}

/// Back to the password form, forgetting who was identified.
pub async fn restart(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &ALL_SIGN_IN_STEPS).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let data = JourneyData {
        lang: loaded.data.lang,
        ..JourneyData::default()
    };
    let tx = loaded.tx.clone();
    state
        .store
        .run(move |conn| advance(conn, &tx, STEP_PASSWORD, None, &data))
        .await?;
    Ok(JourneyOutcome::Next { notice: None })
}

const ALL_SIGN_IN_STEPS: [&str; 7] = [
    STEP_PASSWORD,
    STEP_SECOND_FACTOR,
    STEP_RESET_CODE,
    STEP_NEW_PASSWORD,
    STEP_ENROL,
    STEP_ENROL_TOTP,
    STEP_ENROL_EMAIL,
];

fn audit_event(
    origin: &RequestOrigin,
    event_type: &str,
    subject: Option<&str>,
    client_id: &str,
    detail: serde_json::Value,
) -> NewAuditEvent {
    origin.event(
        event_type,
        subject.map(str::to_string),
        subject.map(str::to_string),
        Some(client_id),
        &detail,
    )
}

/// The password form. No `Debug`: it holds a password.
pub struct PasswordForm {
    pub email: String,
    pub password: String,
}

/// Checks email and password, then moves on to the person's second factor (or to choosing
/// one). The answer for a wrong password, an unknown email, a disabled account and an account
/// that was never activated is the same.
pub async fn submit_password(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: PasswordForm,
) -> Result<JourneyOutcome, Error> {
    let PasswordForm { email, password } = form;
    let loaded = match load_for(state, token, &submission, &[STEP_PASSWORD]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let email = email.trim().to_string();
    let show = |error: &'static str, email: String| {
        screen(
            state,
            &loaded,
            Page::Password {
                email,
                error: Some(Notice::plain(error)),
            },
        )
    };
    if email.is_empty() {
        return Ok(show("login-email-missing", email));
    }
    if password.is_empty() {
        return Ok(show("login-password-missing", email));
    }
    let policy = LockoutPolicy::from_settings(&state.settings.sign_in);
    let account_key = lockout::account_key(&state.hasher, &email);
    let ip_key = submission
        .origin
        .ip
        .as_deref()
        .map(|ip| lockout::ip_key(&state.hasher, ip));
    let client_id = loaded.tx.request.client_id.clone();
    let origin = submission.origin.clone();

    // Count the attempt before checking it, and find the person, in one call.
    let (gate, throttled, user) = {
        let account_key = account_key.clone();
        let ip_key = ip_key.clone();
        let lookup = email.clone();
        state
            .store
            .run(move |conn| {
                let at = now();
                if let Some(ip_key) = &ip_key {
                    if lockout::ip_throttled(conn, &policy, ip_key, at)? {
                        return Ok((Gate::Closed, true, None));
                    }
                }
                let gate = lockout::enter(conn, &policy, &account_key, Counter::Password, at)?;
                let user = users::find_by_email(conn, &lookup)?;
                Ok((gate, false, user))
            })
            .await?
    };
    if gate == Gate::Closed {
        let reason = if throttled { "throttled" } else { "locked" };
        let event = audit_event(
            &origin,
            "signin.failed",
            user.as_ref().map(|u| u.id.as_str()),
            &client_id,
            json!({ "reason": reason, "account": account_key }),
        );
        state.audit.record(event).await?;
        let message = if throttled {
            "login-throttled"
        } else {
            "login-locked"
        };
        return Ok(show(message, email));
    }
    let usable = user.filter(|u| !u.disabled && !u.must_reset && u.password_hash.is_some());
    let stored = usable.as_ref().and_then(|u| u.password_hash.clone());
    let matched = state
        .passwords
        .verify(password.clone(), stored.clone())
        .await;
    let Some(user) = usable.clone().filter(|_| matched) else {
        let reason = match &usable {
            Some(_) => "bad_password",
            None => "unknown_or_inactive_account",
        };
        let subject = usable.as_ref().map(|u| u.id.clone());
        let detail = json!({ "reason": reason, "account": account_key });
        let event = audit_event(
            &origin,
            "signin.failed",
            subject.as_deref(),
            &client_id,
            detail,
        );
        let locked = state
            .store
            .run(move |conn| {
                let at = now();
                let locked = lockout::after_failure(conn, &policy, &account_key, gate, at)?;
                if let Some(ip_key) = &ip_key {
                    lockout::ip_failed(conn, &policy, ip_key, at)?;
                }
                audit::append(conn, &event)?;
                if let Some(until) = locked {
                    let detail =
                        json!({ "counter": "password", "until": until, "account": account_key });
                    audit::append(
                        conn,
                        &audit_event(
                            &origin,
                            "account.locked",
                            subject.as_deref(),
                            &client_id,
                            detail,
                        ),
                    )?;
                }
                Ok(locked)
            })
            .await?;
        let message = if locked.is_some() {
            "login-locked"
        } else {
            "login-wrong"
        };
        return Ok(show(message, email));
    };

    // A hash made with older parameters is upgraded now that the password is known.
    if stored
        .as_deref()
        .is_some_and(|h| state.passwords.needs_rehash(h))
    {
        if let Ok(hash) = state.passwords.hash(password).await {
            let id = user.id.clone();
            state
                .store
                .run(move |conn| users::set_password(conn, &id, &hash, now()))
                .await?;
        }
    }
    let next = match user.mfa_method {
        MfaMethod::None => STEP_ENROL,
        MfaMethod::Totp | MfaMethod::Email => STEP_SECOND_FACTOR,
    };
    let tx = loaded.tx.clone();
    let data = loaded.data.clone();
    let user_id = user.id.clone();
    let moved = state
        .store
        .run(move |conn| {
            attempt_counters::reset_counter(conn, &account_key, Counter::Password, now())?;
            advance(conn, &tx, next, Some(&user_id), &data)
        })
        .await?;
    if !moved {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    if user.mfa_method == MfaMethod::Email {
        let sent = send_code(
            state,
            &user,
            PURPOSE_SIGN_IN,
            loaded.lang,
            &origin,
            &client_id,
        )
        .await?;
        return Ok(JourneyOutcome::Next {
            notice: sent.first_notice(),
        });
    }
    Ok(JourneyOutcome::Next { notice: None })
}

/// What sending a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Queued,
    /// Too soon: seconds to wait (the previous code still works).
    Wait(i64),
    Failed,
}

impl Sent {
    /// The notice after the first code of a step: the page itself says a code was sent.
    fn first_notice(self) -> Option<&'static str> {
        (self == Sent::Failed).then_some("code-send-failed")
    }

    /// The notice after "Send a new code".
    fn notice(self) -> Option<&'static str> {
        match self {
            Sent::Queued => Some("code-sent"),
            Sent::Wait(_) => None,
            Sent::Failed => Some("code-send-failed"),
        }
    }
}

fn mail_template(purpose: &str) -> mail_queue::Template {
    match purpose {
        PURPOSE_RESET => mail_queue::Template::PasswordResetCode,
        _ => mail_queue::Template::SignInCode,
    }
}

/// Issues a new code of `purpose` for `user` (killing the previous one) and queues the mail,
/// unless the resend limits say to wait.
async fn send_code(
    state: &AppState,
    user: &User,
    purpose: &'static str,
    lang: Lang,
    origin: &RequestOrigin,
    client_id: &str,
) -> Result<Sent, Error> {
    let code_policy = CodePolicy::from_settings(&state.settings.sign_in);
    let code = email_code::generate();
    let hash = email_code::hash(&state.hasher, &user.id, &code);
    let user_id = user.id.clone();
    let event = audit_event(
        origin,
        "code.sent",
        Some(&user.id),
        client_id,
        json!({ "purpose": purpose, "channel": "email" }),
    );
    let issued = state
        .store
        .run(move |conn| {
            let at = now();
            let sent = one_time_codes::unused_issued_since(
                conn,
                &user_id,
                purpose,
                at - Duration::hours(1),
            )?;
            if let Some(wait) = email_code::resend_wait(&code_policy, &sent, at) {
                return Ok(Err(wait.num_seconds().max(1)));
            }
            conn.transaction(|conn| {
                one_time_codes::issue(
                    conn,
                    &OneTimeCodeRecord {
                        id: uuid::Uuid::new_v4().to_string(),
                        user_id: user_id.clone(),
                        purpose: purpose.into(),
                        code_hash: hash,
                        attempts: 0,
                        max_attempts: code_policy.max_attempts,
                        created_at: at,
                        expires_at: at + code_policy.ttl,
                        consumed_at: None,
                        superseded_at: None,
                    },
                )?;
                audit::append(conn, &event)
            })?;
            Ok(Ok(at + code_policy.ttl))
        })
        .await?;
    let expires_at = match issued {
        Ok(at) => at,
        Err(wait) => return Ok(Sent::Wait(wait)),
    };
    let job = crate::mail::code_job(
        mail_template(purpose),
        &user.email,
        lang,
        &code,
        expires_at.and_utc(),
    );
    Ok(match state.mail.enqueue(job).await {
        Ok(()) => Sent::Queued,
        Err(e) => {
            tracing::warn!(error = %e, "could not queue a code");
            Sent::Failed
        }
    })
}

/// "Send a new code" on any page that waits for an emailed code.
pub async fn resend(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(
        state,
        token,
        &submission,
        &[STEP_SECOND_FACTOR, STEP_RESET_CODE, STEP_ENROL_EMAIL],
    )
    .await?
    {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let (purpose, kind) = match loaded.tx.step.as_str() {
        STEP_RESET_CODE => (PURPOSE_RESET, CodeKind::Reset),
        STEP_ENROL_EMAIL => (PURPOSE_ENROL, CodeKind::EnrolEmail),
        _ => (PURPOSE_SIGN_IN, CodeKind::SignInEmail),
    };
    let client_id = loaded.tx.request.client_id.clone();
    let Some(user) = loaded
        .user
        .as_ref()
        .filter(|u| purpose != PURPOSE_SIGN_IN || u.mfa_method == MfaMethod::Email)
    else {
        // An email without an account, in the reset journey: nothing is sent, and the answer is
        // the one a real send gives.
        if purpose == PURPOSE_RESET {
            let mut data = loaded.data.clone();
            data.phantom_tries = 0;
            let tx = loaded.tx.clone();
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_RESET_CODE, None, &data))
                .await?;
            return Ok(JourneyOutcome::Next {
                notice: Some("code-sent"),
            });
        }
        return Ok(JourneyOutcome::Next { notice: None });
    };
    match send_code(
        state,
        user,
        purpose,
        loaded.lang,
        &submission.origin,
        &client_id,
    )
    .await?
    {
        Sent::Wait(seconds) => {
            let email = match kind {
                CodeKind::Reset => loaded.data.email.clone().unwrap_or_default(),
                _ => user.email.clone(),
            };
            Ok(screen(
                state,
                &loaded,
                Page::Code {
                    kind,
                    email,
                    notice: None,
                    error: Some(Notice::count("code-resend-wait", "seconds", seconds)),
                },
            ))
        }
        sent => Ok(JourneyOutcome::Next {
            notice: sent.notice(),
        }),
    }
}

/// The code form.
pub struct CodeForm {
    pub code: String,
}

/// The second factor at sign-in: the authenticator app's code or the emailed code.
pub async fn submit_second_factor(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_SECOND_FACTOR]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded.user.clone() else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    let policy = LockoutPolicy::from_settings(&state.settings.sign_in);
    let account_key = lockout::account_key(&state.hasher, &user.email);
    let kind = match user.mfa_method {
        MfaMethod::Totp => CodeKind::Totp,
        MfaMethod::Email => CodeKind::SignInEmail,
        MfaMethod::None => return Ok(JourneyOutcome::Next { notice: None }),
    };
    let show = |error: Notice| {
        screen(
            state,
            &loaded,
            Page::Code {
                kind,
                email: user.email.clone(),
                notice: None,
                error: Some(error),
            },
        )
    };
    let gate = {
        let key = account_key.clone();
        state
            .store
            .run(move |conn| lockout::enter(conn, &policy, &key, Counter::SecondFactor, now()))
            .await?
    };
    if gate == Gate::Closed {
        return Ok(show(Notice::plain("mfa-locked")));
    }
    let verdict = match kind {
        CodeKind::Totp => check_totp(state, &user, &form.code).await?,
        _ => check_email_code(state, &user.id, PURPOSE_SIGN_IN, &form.code).await?,
    };
    let client_id = loaded.tx.request.client_id.clone();
    match verdict {
        Ok(()) => finish(state, &loaded, &user, kind_amr(kind), &submission.origin).await,
        Err(error) => {
            let origin = submission.origin.clone();
            let method = if kind == CodeKind::Totp {
                "totp"
            } else {
                "email"
            };
            let subject = user.id.clone();
            let reason = error.id;
            let locked = state
                .store
                .run(move |conn| {
                    let at = now();
                    let locked = lockout::after_failure(conn, &policy, &account_key, gate, at)?;
                    audit::append(
                        conn,
                        &audit_event(
                            &origin,
                            "signin.second_factor_failed",
                            Some(&subject),
                            &client_id,
                            json!({ "method": method, "reason": reason }),
                        ),
                    )?;
                    if let Some(until) = locked {
                        audit::append(
                            conn,
                            &audit_event(
                                &origin,
                                "account.locked",
                                Some(&subject),
                                &client_id,
                                json!({ "counter": "second_factor", "until": until }),
                            ),
                        )?;
                    }
                    Ok(locked)
                })
                .await?;
            Ok(show(if locked.is_some() {
                Notice::plain("mfa-locked")
            } else {
                error
            }))
        }
    }
}

fn kind_amr(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::Totp => "otp",
        // RFC 8176 has no value for a code sent by email; it is a one-time password too.
        _ => "otp",
    }
}

/// Checks an authenticator code against the person's secret and marks its step used.
async fn check_totp(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Result<(), Notice>, Error> {
    let Some(sealed) = user.totp_secret_enc.as_deref() else {
        return Ok(Err(Notice::plain("totp-wrong")));
    };
    let secret = totp::open_secret(&state.master_key, &user.id, sealed)?;
    let authenticator =
        Authenticator::new(&state.settings.sign_in.totp_issuer, &user.email, secret);
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    match authenticator.check(code, unix, user.totp_last_step) {
        TotpCheck::Wrong => Ok(Err(Notice::plain("totp-wrong"))),
        TotpCheck::Replayed => Ok(Err(Notice::plain("totp-replayed"))),
        TotpCheck::Accepted(step) => {
            let id = user.id.clone();
            let fresh = state
                .store
                .run(move |conn| users::accept_totp_step(conn, &id, step))
                .await?;
            // Another request used this step (or a later one) in the meantime.
            Ok(if fresh {
                Ok(())
            } else {
                Err(Notice::plain("totp-replayed"))
            })
        }
    }
}

/// Judges an emailed code, consuming it when right and counting a wrong try otherwise.
async fn check_email_code(
    state: &AppState,
    user_id: &str,
    purpose: &'static str,
    code: &str,
) -> Result<Result<(), Notice>, Error> {
    let hasher = state.hasher.clone();
    let user_id = user_id.to_string();
    let code = code.to_string();
    Ok(state
        .store
        .run(move |conn| {
            let at = now();
            let codes = one_time_codes::recent(conn, &user_id, purpose, CODES_JUDGED)?;
            Ok(match email_code::judge(&hasher, &codes, &code, at) {
                CodeVerdict::Accept(id) => {
                    if one_time_codes::consume(conn, &id, at)? {
                        Ok(())
                    } else {
                        Err(Notice::plain("code-used"))
                    }
                }
                CodeVerdict::Wrong(id) => {
                    let max = codes.first().map_or(0, |c| c.max_attempts);
                    match one_time_codes::register_failure(conn, &id, at)? {
                        Some(tries) if tries < max => {
                            Err(Notice::count("code-wrong", "tries", i64::from(max - tries)))
                        }
                        _ => Err(Notice::plain("code-too-many")),
                    }
                }
                CodeVerdict::Expired => Err(Notice::plain("code-expired")),
                CodeVerdict::Used => Err(Notice::plain("code-used")),
                CodeVerdict::Replaced => Err(Notice::plain("code-replaced")),
                CodeVerdict::TooManyTries => Err(Notice::plain("code-too-many")),
                CodeVerdict::NoLiveCode => Err(Notice::plain("code-none")),
            })
        })
        .await?)
}

/// Opens the SSO session and answers the portal (or asks for consent). The transaction is
/// spent in the same database transaction, so a second submission cannot sign in twice.
async fn finish(
    state: &AppState,
    loaded: &Loaded,
    user: &User,
    second_factor: &'static str,
    origin: &RequestOrigin,
) -> Result<JourneyOutcome, Error> {
    let Some(client) = state
        .store
        .run({
            let id = loaded.tx.request.client_id.clone();
            move |conn| clients::find(conn, &id)
        })
        .await?
    else {
        return Ok(expired(Some(loaded), &LangHints::default()));
    };
    let amr = vec![
        "pwd".to_string(),
        second_factor.to_string(),
        "mfa".to_string(),
    ];
    let auth = Authentication {
        user_id: user.id.clone(),
        amr: amr.clone(),
        acr: crate::oidc::flow::ACR_MFA.into(),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
    };
    let succeeded = audit_event(
        origin,
        "signin.succeeded",
        Some(&user.id),
        &client.id,
        json!({ "amr": amr, "method": user.mfa_method.as_str() }),
    );
    let hasher = state.hasher.clone();
    let request = loaded.tx.request.clone();
    let tx = loaded.tx.clone();
    let account_key = lockout::account_key(&state.hasher, &user.email);
    enum Finished {
        Code(String, String),
        Consent(String),
    }
    let done = state
        .store
        .run(move |conn| {
            conn.transaction(|conn| {
                let at = now();
                let consent = consent_needed(conn, &client, &auth.user_id, &request)?;
                let spent = if consent {
                    advance(
                        conn,
                        &tx,
                        STEP_CONSENT,
                        Some(&auth.user_id),
                        &JourneyData::default(),
                    )?
                } else {
                    login_transactions::delete(conn, &tx.id)?
                };
                if !spent {
                    return Ok(None);
                }
                attempt_counters::clear(conn, &account_key)?;
                let (session_token, session) = create_session(conn, &hasher, &auth, at)?;
                audit::append(conn, &succeeded)?;
                if consent {
                    return Ok(Some(Finished::Consent(session_token)));
                }
                let code = issue_code(conn, &hasher, &request, &session, at)?;
                Ok(Some(Finished::Code(session_token, code)))
            })
        })
        .await?;
    Ok(match done {
        None => JourneyOutcome::Next { notice: None },
        Some(Finished::Consent(session_token)) => JourneyOutcome::Consent { session_token },
        Some(Finished::Code(session_token, code)) => JourneyOutcome::Done {
            response: code_response(&loaded.tx.request, code, &state.settings.issuer()),
            session_token,
        },
    })
}

/// The reset journey's email form: a code goes to the address if it is an account's, and the
/// answer is the same either way.
pub async fn submit_reset_email(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    email: String,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &ALL_SIGN_IN_STEPS).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let email = email.trim().to_string();
    if !plausible_email(&email) {
        return Ok(screen(
            state,
            &loaded,
            Page::ResetEmail {
                email,
                error: Some(Notice::plain("email-invalid")),
            },
        ));
    }
    let lookup = email.clone();
    let user = state
        .store
        .run(move |conn| users::find_by_email(conn, &lookup))
        .await?
        .filter(|u| !u.disabled);
    let data = JourneyData {
        lang: loaded.data.lang,
        email: Some(email),
        ..JourneyData::default()
    };
    let tx = loaded.tx.clone();
    let user_id = user.as_ref().map(|u| u.id.clone());
    let moved = state
        .store
        .run(move |conn| advance(conn, &tx, STEP_RESET_CODE, user_id.as_deref(), &data))
        .await?;
    if !moved {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    if let Some(user) = user {
        // Sent in the background: waiting for the queue here would make a registered address
        // answer more slowly than an unknown one.
        let state = state.clone();
        let origin = submission.origin.clone();
        let client_id = loaded.tx.request.client_id.clone();
        let lang = loaded.lang;
        tokio::spawn(async move {
            if let Err(e) = send_code(&state, &user, PURPOSE_RESET, lang, &origin, &client_id).await
            {
                tracing::warn!(error = %e, "could not send a reset code");
            }
        });
    }
    Ok(JourneyOutcome::Next { notice: None })
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The reset journey's code.
pub async fn submit_reset_code(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_RESET_CODE]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let email = loaded.data.email.clone().unwrap_or_default();
    let show = |error: Notice| {
        screen(
            state,
            &loaded,
            Page::Code {
                kind: CodeKind::Reset,
                email: email.clone(),
                notice: None,
                error: Some(error),
            },
        )
    };
    let Some(user) = loaded.user.clone() else {
        // No account behind this email: every code is wrong, with the same countdown.
        let max = i32::try_from(state.settings.sign_in.email_code_max_attempts).unwrap_or(5);
        let mut data = loaded.data.clone();
        data.phantom_tries += 1;
        let tries = data.phantom_tries;
        if tries <= max {
            let tx = loaded.tx.clone();
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_RESET_CODE, None, &data))
                .await?;
        }
        return Ok(show(if tries < max {
            Notice::count("code-wrong", "tries", i64::from(max - tries))
        } else {
            Notice::plain("code-too-many")
        }));
    };
    match check_email_code(state, &user.id, PURPOSE_RESET, &form.code).await? {
        Err(error) => {
            let event = audit_event(
                &submission.origin,
                "reset.code_failed",
                Some(&user.id),
                &loaded.tx.request.client_id,
                json!({ "reason": error.id }),
            );
            state.audit.record(event).await?;
            Ok(show(error))
        }
        Ok(()) => {
            let mut data = loaded.data.clone();
            data.email_proven = true;
            let tx = loaded.tx.clone();
            let user_id = user.id.clone();
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_NEW_PASSWORD, Some(&user_id), &data))
                .await?;
            Ok(JourneyOutcome::Next { notice: None })
        }
    }
}

/// The new password form. No `Debug`: it holds passwords.
pub struct NewPasswordForm {
    pub password: String,
    pub confirmation: String,
}

/// Sets the new password (policy checked), unlocks the account, and moves on: to the
/// authenticator code for an app user, to choosing a method for someone without one, or
/// straight back to the portal for an email user (the reset code proved the mailbox).
pub async fn submit_new_password(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: NewPasswordForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_NEW_PASSWORD]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded.user.clone() else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    if let Err(violation) = policy::check(&form.password, &form.confirmation, &user.email) {
        return Ok(screen(
            state,
            &loaded,
            Page::NewPassword {
                email: user.email.clone(),
                error: Some(Notice::plain(violation.message_id())),
            },
        ));
    }
    let hash = state
        .passwords
        .hash(form.password)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let email_proven = user.mfa_method == MfaMethod::Email && loaded.data.email_proven;
    let next = match user.mfa_method {
        // Signed in at once below: the step stays until `finish` spends the transaction.
        MfaMethod::Email if email_proven => STEP_NEW_PASSWORD,
        MfaMethod::Totp | MfaMethod::Email => STEP_SECOND_FACTOR,
        MfaMethod::None => STEP_ENROL,
    };
    let tx = loaded.tx.clone();
    let data = loaded.data.clone();
    let user_id = user.id.clone();
    let account_key = lockout::account_key(&state.hasher, &user.email);
    let origin = submission.origin.clone();
    let client_id = loaded.tx.request.client_id.clone();
    let moved = state
        .store
        .run(move |conn| {
            conn.transaction(|conn| {
                let at = now();
                if !advance(conn, &tx, next, Some(&user_id), &data)? {
                    return Ok(false);
                }
                users::set_password(conn, &user_id, &hash, at)?;
                // The reset journey always unlocks: a stranger cannot keep someone locked out.
                let was_locked = attempt_counters::locked_until(conn, &account_key, at)?.is_some();
                attempt_counters::clear(conn, &account_key)?;
                // Sessions opened with the old password end.
                sso_sessions::end_all_for_user(conn, &user_id, at)?;
                audit::append(
                    conn,
                    &audit_event(
                        &origin,
                        "password.changed",
                        Some(&user_id),
                        &client_id,
                        json!({ "via": "reset" }),
                    ),
                )?;
                if was_locked {
                    audit::append(
                        conn,
                        &audit_event(
                            &origin,
                            "account.unlocked",
                            Some(&user_id),
                            &client_id,
                            json!({ "via": "reset" }),
                        ),
                    )?;
                }
                Ok(true)
            })
        })
        .await?;
    if !moved {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    if email_proven {
        return finish(state, &loaded, &user, "otp", &submission.origin).await;
    }
    Ok(JourneyOutcome::Next { notice: None })
}

/// The method chosen on the activation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenMethod {
    App,
    Email,
}

/// Starts activating the chosen second factor.
pub async fn submit_enrol_choice(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    choice: Option<ChosenMethod>,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(
        state,
        token,
        &submission,
        &[STEP_ENROL, STEP_ENROL_TOTP, STEP_ENROL_EMAIL],
    )
    .await?
    {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded
        .user
        .clone()
        .filter(|u| u.mfa_method == MfaMethod::None)
    else {
        return Ok(expired(Some(&loaded), &submission.hints));
    };
    let Some(choice) = choice else {
        return Ok(screen(
            state,
            &loaded,
            Page::Enrol {
                error: Some(Notice::plain("enrol-choose-missing")),
            },
        ));
    };
    let mut data = loaded.data.clone();
    let tx = loaded.tx.clone();
    let user_id = user.id.clone();
    match choice {
        ChosenMethod::App => {
            let sealed = totp::seal_secret(&state.master_key, &user.id, &totp::new_secret())?;
            use base64::Engine;
            data.pending_totp = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_ENROL_TOTP, Some(&user_id), &data))
                .await?;
            Ok(JourneyOutcome::Next { notice: None })
        }
        ChosenMethod::Email => {
            data.pending_totp = None;
            state
                .store
                .run(move |conn| advance(conn, &tx, STEP_ENROL_EMAIL, Some(&user_id), &data))
                .await?;
            let client_id = loaded.tx.request.client_id.clone();
            let sent = send_code(
                state,
                &user,
                PURPOSE_ENROL,
                loaded.lang,
                &submission.origin,
                &client_id,
            )
            .await?;
            Ok(JourneyOutcome::Next {
                notice: sent.first_notice(),
            })
        }
    }
}

fn pending_secret(state: &AppState, loaded: &Loaded) -> Option<Vec<u8>> {
    use base64::Engine;
    let user = loaded.user.as_ref()?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(loaded.data.pending_totp.as_deref()?)
        .ok()?;
    totp::open_secret(&state.master_key, &user.id, &sealed).ok()
}

fn pending_enrolment(state: &AppState, loaded: &Loaded) -> Option<Enrolment> {
    let user = loaded.user.as_ref()?;
    let secret = pending_secret(state, loaded)?;
    Some(Authenticator::new(&state.settings.sign_in.totp_issuer, &user.email, secret).enrolment())
}

/// The first code of a new authenticator: it activates the app as the person's one method.
pub async fn submit_enrol_totp(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_ENROL_TOTP]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let (Some(user), Some(secret)) = (loaded.user.clone(), pending_secret(state, &loaded)) else {
        return Ok(JourneyOutcome::Next { notice: None });
    };
    let authenticator = Authenticator::new(
        &state.settings.sign_in.totp_issuer,
        &user.email,
        secret.clone(),
    );
    let unix = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let step = match authenticator.check(&form.code, unix, None) {
        TotpCheck::Accepted(step) => step,
        _ => {
            return Ok(screen(
                state,
                &loaded,
                Page::EnrolTotp {
                    enrolment: authenticator.enrolment(),
                    error: Some(Notice::plain("totp-wrong")),
                },
            ))
        }
    };
    let sealed = totp::seal_secret(&state.master_key, &user.id, &secret)?;
    let activated = activate(
        state,
        &loaded,
        &user,
        MfaSetting::Totp(sealed),
        Some(step),
        &submission.origin,
    )
    .await?;
    if !activated {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    let mut user = user;
    user.mfa_method = MfaMethod::Totp;
    finish(state, &loaded, &user, "otp", &submission.origin).await
}

/// The first emailed code: it activates email as the person's one method.
pub async fn submit_enrol_email(
    state: &AppState,
    token: Option<String>,
    submission: Submission,
    form: CodeForm,
) -> Result<JourneyOutcome, Error> {
    let loaded = match load_for(state, token, &submission, &[STEP_ENROL_EMAIL]).await? {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let Some(user) = loaded.user.clone() else {
        return Ok(JourneyOutcome::Next { notice: None });
    };
    if let Err(error) = check_email_code(state, &user.id, PURPOSE_ENROL, &form.code).await? {
        return Ok(screen(
            state,
            &loaded,
            Page::Code {
                kind: CodeKind::EnrolEmail,
                email: user.email.clone(),
                notice: None,
                error: Some(error),
            },
        ));
    }
    if !activate(
        state,
        &loaded,
        &user,
        MfaSetting::Email,
        None,
        &submission.origin,
    )
    .await?
    {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    let mut user = user;
    user.mfa_method = MfaMethod::Email;
    finish(state, &loaded, &user, "otp", &submission.origin).await
}

/// Stores the person's one second factor, only if they still have none (two tabs cannot
/// activate two methods).
async fn activate(
    state: &AppState,
    loaded: &Loaded,
    user: &User,
    setting: MfaSetting,
    accepted_step: Option<i64>,
    origin: &RequestOrigin,
) -> Result<bool, Error> {
    let user_id = user.id.clone();
    let method = match &setting {
        MfaSetting::Totp(_) => "totp",
        MfaSetting::Email => "email",
        MfaSetting::None => "none",
    };
    let event = audit_event(
        origin,
        "mfa.enrolled",
        Some(&user.id),
        &loaded.tx.request.client_id,
        json!({ "method": method }),
    );
    Ok(state
        .store
        .run(move |conn| {
            conn.transaction(|conn| {
                let at = now();
                let current = users::find_by_id(conn, &user_id)?;
                if current.is_none_or(|u| u.mfa_method != MfaMethod::None) {
                    return Ok(false);
                }
                users::set_mfa(conn, &user_id, &setting, at)?;
                if let Some(step) = accepted_step {
                    // The activation code cannot be used again at the next sign-in.
                    users::accept_totp_step(conn, &user_id, step)?;
                }
                audit::append(conn, &event)?;
                Ok(true)
            })
        })
        .await?)
}
