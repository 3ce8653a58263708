//! The password step.

use super::*;

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
    let policy = LockoutPolicy::of(&state.policy.get());
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
    // The first emailed code is stored in the same transaction that moves the journey on.
    let code = (user.mfa_method == MfaMethod::Email).then(|| {
        CodeToSend::new(
            state,
            &user,
            PURPOSE_SIGN_IN,
            loaded.lang,
            submission.requester(),
            &client_id,
            &loaded.tx.id,
        )
    });
    let tx = loaded.tx.clone();
    let data = loaded.data.clone();
    let user_id = user.id.clone();
    let (moved, code, stored) = state
        .store
        .run(move |conn| {
            crate::store::write_transaction(conn, |conn| {
                attempt_counters::reset_counter(conn, &account_key, Counter::Password, now())?;
                if !advance(conn, &tx, next, Some(&user_id), &data)? {
                    return Ok((false, code, None));
                }
                let stored = code.as_ref().map(|c| c.store(conn)).transpose()?;
                Ok::<_, crate::store::StoreError>((true, code, stored))
            })
        })
        .await?;
    if !moved {
        return Ok(JourneyOutcome::Next { notice: None });
    }
    if let (Some(code), Some(stored)) = (code, stored) {
        let sent = code.mail(state, stored).await;
        return Ok(JourneyOutcome::Next {
            notice: sent.first_notice(),
        });
    }
    Ok(JourneyOutcome::Next { notice: None })
}
