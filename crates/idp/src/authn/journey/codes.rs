//! Sending emailed codes, with the resend limits.

use super::*;

/// What sending a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Queued,
    /// Too soon: seconds to wait (the previous code still works).
    Wait(i64),
    Failed,
}

impl Sent {
    /// The notice after the first code of a step: the page itself says a code was sent.
    pub(super) fn first_notice(self) -> Option<&'static str> {
        (self == Sent::Failed).then_some("code-send-failed")
    }

    /// The notice after "Send a new code".
    pub(super) fn notice(self) -> Option<&'static str> {
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

/// Who asks for a code: the address, for the audit log and the per-address limits, and the
/// browser's known-device cookie ([`known_device`]).
pub(super) struct Requester<'a> {
    pub origin: &'a RequestOrigin,
    pub known_device: Option<&'a str>,
}

impl Submission {
    pub(super) fn requester(&self) -> Requester<'_> {
        Requester {
            origin: &self.origin,
            known_device: self.known_device.as_deref(),
        }
    }
}

/// A code about to be sent: made before any database work, stored inside a transaction (the
/// caller's, or one of its own), then mailed. No `Debug`: it holds the code.
pub(super) struct CodeToSend {
    code: String,
    hash: Vec<u8>,
    user_id: String,
    email: String,
    purpose: &'static str,
    lang: Lang,
    known: bool,
    requested_in: String,
    requested_from: Option<String>,
    policy: CodePolicy,
    event: NewAuditEvent,
}

impl CodeToSend {
    /// A new code of `purpose` for `user` in the login transaction `transaction`.
    pub(super) fn new(
        state: &AppState,
        user: &User,
        purpose: &'static str,
        lang: Lang,
        requester: Requester<'_>,
        client_id: &str,
        transaction: &str,
    ) -> Self {
        let origin = requester.origin;
        let known = known_device::vouches_for(&state.hasher, requester.known_device, &user.id);
        let code = email_code::generate();
        let hash = email_code::hash(&state.hasher, &user.id, &code);
        let event = audit_event(
            origin,
            "code.sent",
            Some(&user.id),
            client_id,
            json!({ "purpose": purpose, "channel": "email", "known_browser": known }),
        );
        Self {
            code,
            hash,
            user_id: user.id.clone(),
            email: user.email.clone(),
            purpose,
            lang,
            known,
            requested_in: transaction.to_string(),
            requested_from: origin
                .ip
                .as_deref()
                .map(|ip| crate::authn::lockout::ip_key(&state.hasher, ip)),
            policy: CodePolicy::of(&state.policy.get()),
            event,
        }
    }

    /// Applies the resend limits of the requesting address (or, for the mailbox's, browser),
    /// then stores the code, killing the previous one of its login transaction, with its audit
    /// row. The code's expiry, or `Err(seconds)` to wait. Inside an open transaction it is part
    /// of it; otherwise it writes in one of its own.
    pub(super) fn store(
        &self,
        conn: &mut DbConnection,
    ) -> StoreResult<Result<chrono::NaiveDateTime, i64>> {
        let at = now();
        let sent = one_time_codes::unused_issued_since(
            conn,
            &self.user_id,
            self.purpose,
            at - Duration::hours(1),
        )?;
        if let Some(wait) = email_code::send_wait(
            &self.policy,
            &sent,
            self.requested_from.as_deref(),
            self.known,
            at,
        ) {
            return Ok(Err(wait.num_seconds().max(1)));
        }
        let write = |conn: &mut DbConnection| {
            one_time_codes::issue(
                conn,
                &OneTimeCodeRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    user_id: self.user_id.clone(),
                    purpose: self.purpose.into(),
                    code_hash: self.hash.clone(),
                    attempts: 0,
                    max_attempts: self.policy.max_attempts,
                    created_at: at,
                    expires_at: at + self.policy.ttl,
                    consumed_at: None,
                    superseded_at: None,
                    requested_in: Some(self.requested_in.clone()),
                    requested_from: self.requested_from.clone(),
                },
            )?;
            audit::append(conn, &self.event)
        };
        crate::store::write_within(conn, write)?;
        Ok(Ok(at + self.policy.ttl))
    }

    /// Queues the mail of a stored code (`stored` is what [`CodeToSend::store`] answered).
    pub(super) async fn mail(
        self,
        state: &AppState,
        stored: Result<chrono::NaiveDateTime, i64>,
    ) -> Sent {
        let expires_at = match stored {
            Ok(at) => at,
            Err(wait) => return Sent::Wait(wait),
        };
        let job = crate::mail::code_job(
            mail_template(self.purpose),
            &self.email,
            self.lang,
            &self.code,
            expires_at.and_utc(),
        );
        match state.mail.enqueue(job).await {
            Ok(()) => Sent::Queued,
            Err(e) => {
                tracing::warn!(error = %e, "could not queue a code");
                Sent::Failed
            }
        }
    }
}

/// Issues a new code of `purpose` for `user` in the login transaction `transaction` (killing
/// the previous one of that transaction) and queues the mail, unless the resend limits of the
/// requesting address (or, for the mailbox's, browser) say to wait.
pub(super) async fn send_code(
    state: &AppState,
    user: &User,
    purpose: &'static str,
    lang: Lang,
    requester: Requester<'_>,
    client_id: &str,
    transaction: &str,
) -> Result<Sent, Error> {
    let code = CodeToSend::new(
        state,
        user,
        purpose,
        lang,
        requester,
        client_id,
        transaction,
    );
    let (code, stored) = state
        .store
        .run(move |conn| {
            let stored = code.store(conn)?;
            Ok((code, stored))
        })
        .await?;
    Ok(code.mail(state, stored).await)
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
        submission.requester(),
        &client_id,
        &loaded.tx.id,
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
