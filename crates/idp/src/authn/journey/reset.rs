//! First login or forgotten password: email, code, new password.

use super::*;

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
    if !crate::authn::plausible_email(&email) {
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
        let known_device = submission.known_device.clone();
        let client_id = loaded.tx.request.client_id.clone();
        let lang = loaded.lang;
        let transaction = loaded.tx.id.clone();
        tokio::spawn(async move {
            let sent = send_code(
                &state,
                &user,
                PURPOSE_RESET,
                lang,
                Requester {
                    origin: &origin,
                    known_device: known_device.as_deref(),
                },
                &client_id,
                &transaction,
            );
            if let Err(e) = sent.await {
                tracing::warn!(error = %e, "could not send a reset code");
            }
        });
    }
    Ok(JourneyOutcome::Next { notice: None })
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
        let max = i32::try_from(state.policy.get().email_code_max_attempts).unwrap_or(5);
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
    match check_email_code(state, &user.id, PURPOSE_RESET, &loaded.tx.id, &form.code).await? {
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
    // zxcvbn takes milliseconds on a long password: off the async threads.
    let NewPasswordForm {
        password,
        confirmation,
    } = form;
    let email = user.email.clone();
    let min_length = state.policy.get().password_min_length;
    let (checked, password) = tokio::task::spawn_blocking(move || {
        let checked = policy::check(&password, &confirmation, &email, min_length as usize);
        (checked, password)
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    if let Err(violation) = checked {
        return Ok(screen(
            state,
            &loaded,
            Page::NewPassword {
                email: user.email.clone(),
                error: Some(match violation {
                    policy::PolicyViolation::TooShort => {
                        Notice::count(violation.message_id(), "min", min_length.into())
                    }
                    _ => Notice::plain(violation.message_id()),
                }),
            },
        ));
    }
    let hash = state
        .passwords
        .hash(password)
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
            crate::store::write_transaction(conn, |conn| {
                let at = now();
                if !advance(conn, &tx, next, Some(&user_id), &data)? {
                    return Ok(false);
                }
                users::set_password(conn, &user_id, &hash, at)?;
                // The reset journey always unlocks: a stranger cannot keep someone locked out.
                let was_locked = attempt_counters::locked_until(conn, &account_key, at)?.is_some();
                attempt_counters::clear(conn, &account_key)?;
                // Whatever the old password opened ends: its sessions, with their portals told
                // once this commits, and every refresh token of the person.
                for record in sso_sessions::end_all_for_user(conn, &user_id, at)? {
                    crate::oidc::logout::record_end(conn, &record, "password_reset")?;
                }
                crate::store::refresh_tokens::revoke_for_user(conn, &user_id, at)?;
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
    // The sessions' back-channel notices were queued with the new password.
    state.backchannel.wake();
    if email_proven {
        return finish(state, &loaded, &user, "otp", &submission).await;
    }
    Ok(JourneyOutcome::Next { notice: None })
}
