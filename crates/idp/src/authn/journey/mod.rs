//! The sign-in journey of the member portals, step by step: password, the person's one second
//! factor (authenticator app or emailed code), the first-login / forgotten-password journey
//! (email, code, new password) and the activation of a second factor.
//!
//! The state lives server-side in the login transaction (`step`, `user_id`, and
//! [`JourneyData`]); each function takes what a form carried and says what to show next. None
//! of them sees an HTTP request.

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::audit::RequestOrigin;
use crate::authn::email_code::{self, CodePolicy, CodeVerdict};
use crate::authn::known_device;
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
use crate::store::clients::Client;
use crate::store::one_time_codes::{self, OneTimeCodeRecord};
use crate::store::users::{self, MfaMethod, MfaSetting, User};
use crate::store::{login_transactions, now, sso_sessions, DbConnection, StoreResult};

mod codes;
mod enrol;
mod password;
mod reset;
mod second_factor;

pub use codes::resend;
pub use enrol::{submit_enrol_choice, submit_enrol_email, submit_enrol_totp, ChosenMethod};
pub use password::{submit_password, PasswordForm};
pub use reset::{submit_new_password, submit_reset_code, submit_reset_email, NewPasswordForm};
pub use second_factor::{submit_second_factor, CodeForm};

use codes::{send_code, CodeToSend, Requester};
use enrol::pending_enrolment;
use second_factor::check_email_code;

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
    /// How long an emailed code lives, in minutes, and the shortest password: the sign-in
    /// policy in force, as the pages state it.
    pub code_minutes: u64,
    pub password_min_length: u32,
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
    Consent {
        session_token: String,
        /// The browser's new known-device cookie value ([`known_device::remember`]).
        known_device: String,
    },
    /// Signed in: session cookie, transaction cookie removed, back to the portal.
    Done {
        response: ClientResponse,
        session_token: String,
        /// The browser's new known-device cookie value ([`known_device::remember`]).
        known_device: String,
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
    /// The known-device cookie the browser sent, if any ([`known_device`]).
    pub known_device: Option<String>,
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
    /// The portal that sent the person (gone if deleted since).
    client: Option<Client>,
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
    // Two point lookups: a short read, on the calling thread when it can be.
    let found = state
        .store
        .read(move |conn| {
            let Some(tx) = find_login(conn, &hasher, &token, now())? else {
                return Ok(None);
            };
            let user = match &tx.user_id {
                Some(id) => users::find_by_id(conn, id)?,
                None => None,
            };
            Ok(Some((tx, user)))
        })
        .await?;
    let found = match found {
        Some((tx, user)) => {
            let client = state.client(&tx.request.client_id).await?;
            Some((tx, client, user))
        }
        None => None,
    };
    Ok(found.map(|(tx, client, user)| {
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
            client,
            user,
            lang,
        }
    }))
}

fn screen(state: &AppState, loaded: &Loaded, page: Page) -> JourneyOutcome {
    let policy = state.policy.get();
    JourneyOutcome::Show(Box::new(Screen {
        lang: loaded.lang,
        csrf: csrf_token(&state.hasher, &loaded.tx.id),
        portal: loaded
            .client
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        issuer: state.settings.sign_in.totp_issuer.clone(),
        code_minutes: policy.code_minutes(),
        password_min_length: policy.password_min_length,
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

/// What finishing a sign-in stored: the session's cookie value, and the code for the portal
/// unless the person must consent first.
enum Finished {
    Code(String, String),
    Consent(String),
}

/// Finishing a sign-in: what opening the SSO session and answering the portal needs, ready to
/// run inside a database transaction (its own, or the second factor's check).
struct Completion {
    client: Client,
    auth: Authentication,
    succeeded: NewAuditEvent,
    tx: LoginTransaction,
    account_key: String,
}

impl Completion {
    /// `None` when the portal is gone.
    fn new(
        state: &AppState,
        loaded: &Loaded,
        user: &User,
        second_factor: &'static str,
        origin: &RequestOrigin,
    ) -> Option<Self> {
        let client = loaded.client.clone()?;
        let amr = vec![
            "pwd".to_string(),
            second_factor.to_string(),
            "mfa".to_string(),
        ];
        let succeeded = audit_event(
            origin,
            "signin.succeeded",
            Some(&user.id),
            &client.id,
            json!({ "amr": amr, "method": user.mfa_method.as_str() }),
        );
        Some(Self {
            client,
            auth: Authentication {
                user_id: user.id.clone(),
                amr,
                acr: crate::oidc::flow::ACR_MFA.into(),
                ip: origin.ip.clone(),
                user_agent: origin.user_agent.clone(),
            },
            succeeded,
            tx: loaded.tx.clone(),
            account_key: lockout::account_key(&state.hasher, &user.email),
        })
    }

    /// Spends the transaction, clears the lockout counters, opens the session and issues the
    /// code. `None` when another submission spent the transaction first.
    fn run(
        &self,
        conn: &mut DbConnection,
        hasher: &crate::crypto::KeyedHasher,
    ) -> StoreResult<Option<Finished>> {
        let at = now();
        let user_id = &self.auth.user_id;
        let request = &self.tx.request;
        let consent = consent_needed(conn, &self.client, user_id, request)?;
        let spent = if consent {
            advance(
                conn,
                &self.tx,
                STEP_CONSENT,
                Some(user_id),
                &JourneyData::default(),
            )?
        } else {
            login_transactions::delete(conn, &self.tx.id)?
        };
        if !spent {
            return Ok(None);
        }
        attempt_counters::clear(conn, &self.account_key)?;
        let (session_token, session) = create_session(conn, hasher, &self.auth, at)?;
        audit::append(conn, &self.succeeded)?;
        if consent {
            return Ok(Some(Finished::Consent(session_token)));
        }
        let code = issue_code(conn, hasher, request, &session, at)?;
        Ok(Some(Finished::Code(session_token, code)))
    }
}

/// The answer to a finished sign-in (`None`: another submission finished it first).
fn finished(
    state: &AppState,
    loaded: &Loaded,
    user: &User,
    submission: &Submission,
    done: Option<Finished>,
) -> JourneyOutcome {
    let known_device =
        known_device::remember(&state.hasher, submission.known_device.as_deref(), &user.id);
    match done {
        None => JourneyOutcome::Next { notice: None },
        Some(Finished::Consent(session_token)) => JourneyOutcome::Consent {
            session_token,
            known_device,
        },
        Some(Finished::Code(session_token, code)) => JourneyOutcome::Done {
            response: code_response(&loaded.tx.request, code, &state.settings.issuer()),
            session_token,
            known_device,
        },
    }
}

/// Opens the SSO session and answers the portal (or asks for consent). The transaction is
/// spent in the same database transaction, so a second submission cannot sign in twice.
async fn finish(
    state: &AppState,
    loaded: &Loaded,
    user: &User,
    second_factor: &'static str,
    submission: &Submission,
) -> Result<JourneyOutcome, Error> {
    let Some(completion) = Completion::new(state, loaded, user, second_factor, &submission.origin)
    else {
        return Ok(expired(Some(loaded), &LangHints::default()));
    };
    let hasher = state.hasher.clone();
    let done = state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| completion.run(conn, &hasher))
        })
        .await?;
    Ok(finished(state, loaded, user, submission, done))
}
